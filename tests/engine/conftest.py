"""Fixtures for engine tests: an emulated Plex server over real HTTP, a client, a catalog."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from custom_components.retrovue.engine.plex import PlexClient
from custom_components.retrovue.engine.store import Catalog
from tests.emulator import EmuServer, PlexEmulator, generate_server

TOKEN = "engine-test-token-5f1c"


@pytest.fixture(params=["json", "xml"])
def fmt(request: pytest.FixtureRequest) -> str:
    """Run a test once against JSON answers and once against XML answers."""
    return str(request.param)


@pytest.fixture
def emu_server(fmt: str) -> EmuServer:
    """Return a small generated library (paging is forced with a small page size)."""
    server = generate_server(
        seed=7,
        movies=23,
        shows=4,
        seasons_per_show=(1, 3),
        episodes_per_season=(2, 5),
        token=TOKEN,
    )
    server.force_xml = fmt == "xml"
    return server


@pytest.fixture
async def emulator(emu_server: EmuServer) -> AsyncIterator[PlexEmulator]:
    """Serve the library on 127.0.0.1."""
    async with PlexEmulator(emu_server) as emu:
        yield emu


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """Return an aiohttp session the client borrows."""
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
def client(session: aiohttp.ClientSession, emulator: PlexEmulator) -> PlexClient:
    """Return a client with small pages and instant retries."""
    return PlexClient(session, emulator.url, TOKEN, page_size=5, retries=2, backoff=0, timeout=5)


@pytest.fixture
async def catalog(tmp_path: Path) -> AsyncIterator[Catalog]:
    """Open a fresh catalog file."""
    opened = await Catalog.open(tmp_path / "catalog.db")
    yield opened
    await opened.close()
