"""Shared test configuration."""

from __future__ import annotations

# The Home Assistant test harness ships its own `custom_components` package; importing ours at
# collection time makes sure `custom_components.retrovue` resolves to this repository.
import custom_components.retrovue  # noqa: F401
