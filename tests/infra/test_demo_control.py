"""The demo's folder control: what it takes off the emulated server, and how it comes back."""

from __future__ import annotations

import aiohttp
from aiohttp.test_utils import TestClient, TestServer

from tests.emulator import PlexEmulator, generate_server
from tests.emulator.control import DemoControl, take_folder


def _files(server: object) -> set[str]:
    return {part.file for part in server.parts()}  # type: ignore[attr-defined]


def test_take_folder_takes_exactly_what_lies_under_it() -> None:
    server = generate_server(seed=3, movies=6, shows=3)
    before = _files(server)
    show = next(item for item in server.items.values() if item.type == "show")
    folder = next(server.leaves(show)).media[0].parts[0].file.rsplit("/", 2)[0]

    taken = take_folder(server, folder)

    gone = before - _files(server)
    assert gone
    assert all(file.startswith(folder + "/") for file in gone)
    assert not any(file.startswith(folder + "/") for file in _files(server))
    assert taken


async def test_control_endpoints_take_and_restore() -> None:
    server = generate_server(seed=3, movies=6, shows=3)
    before = _files(server)
    keys = set(server.items)
    async with TestClient(TestServer(DemoControl(server).app())) as client:
        bad = await client.post("/take", params={"folder": "relative"})
        assert bad.status == 400
        answer = await client.post("/take", params={"folder": "/data/tv"})
        taken = (await answer.json())["taken"]
        assert len(taken) == sum(1 for item in server.items.values() if item.type == "show") + 3
        assert not any(item.type == "episode" for item in server.items.values())
        restored = await (await client.post("/restore")).json()
        assert restored["restored"] == 3
    assert _files(server) == before
    assert set(server.items) == keys


async def test_the_visit_link_of_a_demo_server_opens_a_page() -> None:
    server = generate_server(seed=3, movies=6, shows=3, friendly_name="Demo <Plex>")
    async with (
        PlexEmulator(server) as emu,
        aiohttp.ClientSession() as session,
        session.get(f"{emu.url}/web") as answer,
    ):
        assert answer.status == 200
        page = await answer.text()
    assert "Demo &lt;Plex&gt;" in page
    assert "Movies: 6 movies" in page
