"""Shared test configuration."""

from __future__ import annotations

import pytest

# The Home Assistant test harness ships its own `custom_components` package; importing ours at
# collection time makes sure `custom_components.retrovue` resolves to this repository.
import custom_components.retrovue  # noqa: F401


@pytest.fixture(autouse=True)
def _loopback_sockets(socket_enabled: None) -> None:
    """Let tests open sockets; the harness still allows connections to 127.0.0.1 only."""
