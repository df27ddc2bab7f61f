"""Fixtures of the reliability suite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from custom_components.retrovue.engine.store import Catalog


@pytest.fixture
async def catalog(tmp_path: Path) -> AsyncIterator[Catalog]:
    """Open a fresh catalog file."""
    opened = await Catalog.open(tmp_path / "catalog.db")
    yield opened
    await opened.close()
