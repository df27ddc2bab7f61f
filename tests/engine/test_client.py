"""Plex client tests against the emulator: paging, formats, errors, retries, token hygiene."""

from __future__ import annotations

import logging

import aiohttp
import pytest

from custom_components.retrovue.engine.plex import (
    ItemKind,
    PlexAuthError,
    PlexClient,
    PlexConnectionError,
    PlexResponseError,
    PlexType,
)
from custom_components.retrovue.engine.plex.parse import BodyError, decode_container, parse_items
from tests.emulator import EmuServer, Fault, FaultKind, PlexEmulator

from .conftest import TOKEN


async def test_identity_and_sections(emu_server: EmuServer, client: PlexClient) -> None:
    identity = await client.identity()
    assert identity.machine_identifier == emu_server.machine_identifier
    info = await client.server_info()
    assert info.friendly_name == emu_server.friendly_name
    assert info.version == emu_server.version
    sections = await client.sections()
    assert [(s.key, s.type) for s in sections] == [("1", "movie"), ("2", "show")]
    assert all(s.locations for s in sections)


@pytest.mark.parametrize(
    "fault",
    [
        None,
        Fault(FaultKind.CAP_SIZE, times=None, cap=3),
        Fault(FaultKind.OMIT_TOTAL_SIZE, times=None),
        Fault(FaultKind.IGNORE_PAGING, times=None),
    ],
    ids=["plain", "capped", "no-total", "ignored"],
)
async def test_listing_is_complete_whatever_the_paging(
    emu_server: EmuServer, emulator: PlexEmulator, client: PlexClient, fault: Fault | None
) -> None:
    if fault is not None:
        emu_server.faults.add(fault)
    listing = client.section_items("2", PlexType.EPISODE)
    keys = [item.rating_key async for page in listing for item in page.items]
    expected = {str(i.rating_key) for i in emu_server.items.values() if i.type == "episode"}
    assert len(keys) == len(set(keys)) == len(expected)
    assert set(keys) == expected
    assert listing.stats.complete
    # Every page request named its start and size (header and query).
    pages = [r for r in emulator.requests if r.endpoint == "section_all"]
    assert all("X-Plex-Container-Size" in r.query for r in pages)


async def test_count_uses_a_zero_size_page(emu_server: EmuServer, client: PlexClient) -> None:
    assert await client.count("1", PlexType.MOVIE) == emu_server.count("1", "movie")


async def test_items_carry_media_parts_and_guids(emu_server: EmuServer, client: PlexClient) -> None:
    items = [
        item async for page in client.section_items("1", PlexType.MOVIE) for item in page.items
    ]
    by_key = {item.rating_key: item for item in items}
    for emu in (i for i in emu_server.items.values() if i.type == "movie"):
        item = by_key[str(emu.rating_key)]
        assert item.kind is ItemKind.MOVIE
        assert item.section_key == "1"  # hoisted onto the container
        assert item.updated_at == emu.updated_at
        assert [p.file for p in item.parts] == [p.file for m in emu.media for p in m.parts]
        assert set(item.guids) == set(emu.ext_guids)


async def test_wrong_token_is_an_auth_error(
    session: aiohttp.ClientSession, emulator: PlexEmulator
) -> None:
    client = PlexClient(session, emulator.url, "wrong", backoff=0)
    with pytest.raises(PlexAuthError) as caught:
        await client.sections()
    assert "/library/sections" in str(caught.value)
    assert "127.0.0.1" in str(caught.value)


async def test_unreachable_server(session: aiohttp.ClientSession) -> None:
    client = PlexClient(session, "http://127.0.0.1:9", TOKEN, retries=1, backoff=0)
    with pytest.raises(PlexConnectionError, match="cannot reach"):
        await client.server_info()
    assert client.requests["root"] == 2


async def test_transient_errors_are_retried_with_backoff(
    emu_server: EmuServer, session: aiohttp.ClientSession, emulator: PlexEmulator
) -> None:
    delays: list[float] = []

    async def sleep(delay: float) -> None:
        delays.append(delay)

    client = PlexClient(session, emulator.url, TOKEN, retries=3, backoff=0.5, sleep=sleep)
    emu_server.faults.add(Fault(FaultKind.STATUS_503, endpoint="sections", times=1))
    emu_server.faults.add(
        Fault(FaultKind.STATUS_429, endpoint="sections", after=1, times=1, seconds=7)
    )
    emu_server.faults.add(Fault(FaultKind.TRUNCATED, endpoint="sections", after=2, times=1))
    assert len(await client.sections()) == 2
    assert client.requests["sections"] == 4
    assert sorted(delays) == sorted([0.5, 7.0, 2.0])


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (FaultKind.HTML_200, "HTML page"),
        (FaultKind.MALFORMED, "malformed"),
        (FaultKind.STATUS_500, "HTTP 500"),
    ],
)
async def test_bad_answers_become_response_errors(
    emu_server: EmuServer, client: PlexClient, fault: FaultKind, message: str
) -> None:
    emu_server.faults.add(Fault(fault, endpoint="sections", times=None))
    with pytest.raises(PlexResponseError, match=message) as caught:
        await client.sections()
    assert "/library/sections" in str(caught.value)


async def test_token_never_logged(
    emu_server: EmuServer, client: PlexClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    emu_server.faults.add(Fault(FaultKind.STATUS_500, endpoint="sections", times=1))
    emu_server.faults.add(Fault(FaultKind.BAD_ITEM, times=1, variant="missing_rating_key"))
    await client.sections()
    assert [page async for page in client.section_items("1", PlexType.MOVIE)]
    assert caplog.records
    assert TOKEN not in caplog.text


def test_parse_tolerates_odd_types_and_reports_them() -> None:
    container = {
        "librarySectionID": 3,
        "totalSize": "2",
        "Metadata": [
            {"ratingKey": 5, "type": "movie", "title": "T", "year": "19x9", "addedAt": 1.5},
            {"type": "movie", "title": "No key"},
            "garbage",
            {"ratingKey": "7", "type": "collection", "title": "C"},
        ],
    }
    page = parse_items(container, kinds=(ItemKind.MOVIE,))
    assert [i.rating_key for i in page.items] == ["5"]
    assert page.items[0].year is None
    assert page.items[0].added_at == 1
    assert page.items[0].section_key == "3"
    assert any("year" in w for w in page.items[0].warnings)
    assert [(p.rating_key, p.title) for p in page.problems] == [
        (None, "No key"),
        (None, None),
        ("7", "C"),
    ]
    assert page.total_size == 2


@pytest.mark.parametrize(
    ("body", "ctype", "error"),
    [
        (b"", "application/json", "empty"),
        (b"<html><body>Proxy</body></html>", "text/html", "HTML"),
        (b"{not json", "application/json", "malformed JSON"),
        (b"<MediaContainer><Video", "text/xml", "malformed XML"),
        (b'{"other": 1}', "application/json", "no MediaContainer"),
        (b"plain text", "text/plain", "neither JSON nor XML"),
    ],
)
def test_decode_rejects_what_is_not_plex(body: bytes, ctype: str, error: str) -> None:
    with pytest.raises(BodyError, match=error):
        decode_container(body, ctype)


async def test_bad_url_is_refused(session: aiohttp.ClientSession) -> None:
    with pytest.raises(ValueError, match="http"):
        PlexClient(session, "ftp://x", TOKEN)
