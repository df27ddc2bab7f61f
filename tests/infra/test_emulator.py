"""Test the Plex Media Server emulator over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import json
from typing import Any

import aiohttp
from aiohttp import web
import pytest
import xmltodict

from custom_components.retrovue.engine.plex.notifications import (
    ActivityEvent,
    Notification,
    NotificationStream,
    PlayingEvent,
    StatusEvent,
    TimelineEntry,
    decode_message,
    parse_notifications,
)
from custom_components.retrovue.engine.plex.webhooks import parse_webhook
from tests.emulator import (
    BAD_ITEM_VARIANTS,
    EPISODE,
    SEASON,
    SHOW,
    EmuServer,
    Fault,
    FaultKind,
    PlexEmulator,
    generate_server,
    post_webhook,
)
from tests.emulator.__main__ import _parse_args

TOKEN = "test-token"
JSON = {"Accept": "application/json"}


class Answer:
    """Hold one HTTP answer."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def json(self) -> dict[str, Any]:
        """Return the JSON MediaContainer."""
        data: dict[str, Any] = json.loads(self.body)["MediaContainer"]
        return data

    @property
    def xml(self) -> dict[str, Any]:
        """Return the XML MediaContainer as xmltodict sees it."""
        data: dict[str, Any] = xmltodict.parse(
            self.body, force_list=("Video", "Directory", "Media", "Part", "Guid", "Stream")
        )["MediaContainer"]
        return data

    @property
    def content_type(self) -> str:
        """Return the Content-Type header."""
        return self.headers.get("Content-Type", "")


@pytest.fixture
def server() -> EmuServer:
    return generate_server(seed=7, movies=30, shows=4)


@pytest.fixture
async def emu(server: EmuServer) -> AsyncIterator[PlexEmulator]:
    async with PlexEmulator(server) as emulator:
        yield emulator


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def fetch(
    session: aiohttp.ClientSession,
    emu: PlexEmulator,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    token: str | None = TOKEN,
    limit: float = 10,
) -> Answer:
    sent = dict(headers or {})
    if token is not None:
        sent["X-Plex-Token"] = token
    async with session.get(
        emu.url + path, headers=sent, timeout=aiohttp.ClientTimeout(total=limit)
    ) as response:
        body = await response.read()
        return Answer(response.status, dict(response.headers), body)


def metadata(answer: Answer) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = answer.json.get("Metadata", [])
    return items


def keys(answer: Answer) -> list[int]:
    return [int(item["ratingKey"]) for item in metadata(answer)]


# --------------------------------------------------------------------- identity


async def test_identity_needs_no_token(
    emu: PlexEmulator, server: EmuServer, session: aiohttp.ClientSession
) -> None:
    xml = await fetch(session, emu, "/identity", token=None)
    assert xml.status == 200
    assert xml.content_type == "text/xml;charset=utf-8"
    assert xml.body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert xml.xml["@machineIdentifier"] == server.machine_identifier
    assert xml.xml["@claimed"] == "1"
    answer = await fetch(session, emu, "/identity", token=None, headers=JSON)
    assert answer.content_type == "application/json"
    assert answer.json == {
        "size": 0,
        "claimed": True,
        "machineIdentifier": server.machine_identifier,
        "version": server.version,
    }


async def test_token_required(emu: PlexEmulator, session: aiohttp.ClientSession) -> None:
    for token in (None, "wrong"):
        answer = await fetch(session, emu, "/library/sections", token=token)
        assert answer.status == 401
        assert answer.content_type == "text/html"
        assert b"<title>Unauthorized</title>" in answer.body
    # An unknown path without a token is still a 401, like PMS.
    assert (await fetch(session, emu, "/nope", token=None)).status == 401
    query = await fetch(session, emu, f"/library/sections?X-Plex-Token={TOKEN}", token=None)
    assert query.status == 200


async def test_root_and_sections(
    emu: PlexEmulator, server: EmuServer, session: aiohttp.ClientSession
) -> None:
    root = (await fetch(session, emu, "/", headers=JSON)).json
    assert root["machineIdentifier"] == server.machine_identifier
    assert root["friendlyName"] == "Emulated Plex"
    assert root["myPlexSubscription"] is True
    assert root["platform"] == "Linux"

    library = (await fetch(session, emu, "/library", headers=JSON)).json
    assert [d["key"] for d in library["Directory"]] == ["sections", "recentlyAdded", "onDeck"]

    sections = (await fetch(session, emu, "/library/sections", headers=JSON)).json
    assert sections["size"] == 2
    movies, shows = sections["Directory"]
    assert (movies["key"], movies["type"], shows["key"], shows["type"]) == (
        "1",
        "movie",
        "2",
        "show",
    )
    assert movies["Location"] == [{"id": 1, "path": "/data/movies"}]
    for field in ("agent", "scanner", "language", "uuid", "updatedAt", "scannedAt"):
        assert field in movies
    assert isinstance(movies["contentChangedAt"], int)

    xml = (await fetch(session, emu, "/library/sections")).xml
    assert xml["Directory"][1]["@key"] == "2"
    assert xml["Directory"][1]["Location"]["@path"] == "/data/tv"
    assert xml["Directory"][0]["@hidden"] == "0"


async def test_unknown_paths_and_ids_404(emu: PlexEmulator, session: aiohttp.ClientSession) -> None:
    for path in (
        "/library/nothing",
        "/library/metadata/999999",
        "/library/metadata/abc",
        "/library/metadata/999999/children",
        "/library/metadata/999999/allLeaves",
        "/library/sections/9/all",
    ):
        answer = await fetch(session, emu, path)
        assert answer.status == 404, path
    assert emu.counters["metadata"] == 2


# ----------------------------------------------------------------------- paging


async def test_paging_headers_and_query(
    emu: PlexEmulator, server: EmuServer, session: aiohttp.ClientSession
) -> None:
    total = server.count("1")
    path = "/library/sections/1/all"
    by_header = await fetch(
        session,
        emu,
        path,
        headers={**JSON, "X-Plex-Container-Start": "5", "X-Plex-Container-Size": "10"},
    )
    by_query = await fetch(
        session, emu, f"{path}?X-Plex-Container-Start=5&X-Plex-Container-Size=10", headers=JSON
    )
    assert by_header.body == by_query.body
    page = by_header.json
    assert (page["size"], page["offset"], page["totalSize"]) == (10, 5, total)

    seen: list[int] = []
    start = 0
    while True:
        answer = await fetch(
            session,
            emu,
            f"{path}?X-Plex-Container-Start={start}&X-Plex-Container-Size=7&sort=id",
            headers=JSON,
        )
        if not metadata(answer):
            break
        seen += keys(answer)
        start += answer.json["size"]
    assert seen == sorted(seen)
    assert len(seen) == len(set(seen)) == total

    count = (await fetch(session, emu, f"{path}?X-Plex-Container-Size=0", headers=JSON)).json
    assert (count["size"], count["totalSize"]) == (0, total)
    assert "Metadata" not in count

    beyond = await fetch(session, emu, f"{path}?X-Plex-Container-Start=999", headers=JSON)
    assert (beyond.json["size"], beyond.json["totalSize"]) == (0, total)


async def test_unpaged_listing_returns_everything(
    emu: PlexEmulator, server: EmuServer, session: aiohttp.ClientSession
) -> None:
    answer = await fetch(session, emu, "/library/sections/1/all", headers=JSON)
    assert answer.json["size"] == server.count("1")
    assert "totalSize" not in answer.json
    assert server.stats.unpaged_listings == 1


async def test_listing_container_and_items_shape(
    emu: PlexEmulator, server: EmuServer, session: aiohttp.ClientSession
) -> None:
    answer = await fetch(
        session, emu, "/library/sections/1/all?X-Plex-Container-Size=50", headers=JSON
    )
    page = answer.json
    section = server.sections["1"]
    assert page["librarySectionID"] == 1
    assert page["librarySectionTitle"] == section.title
    assert page["librarySectionUUID"] == section.uuid
    assert page["identifier"] == "com.plexapp.plugins.library"
    assert page["allowSync"] is True
    for item in page["Metadata"]:
        assert "librarySectionID" not in item
        assert "Guid" not in item
        assert isinstance(item["ratingKey"], str)
        assert item["key"] == f"/library/metadata/{item['ratingKey']}"
        assert isinstance(item["addedAt"], int)
        assert isinstance(item["updatedAt"], int)
        assert item["type"] == "movie"
        for media in item["Media"]:
            assert isinstance(media["videoResolution"], str)
            assert isinstance(media["id"], int)
            for part in media["Part"]:
                assert part["key"].startswith(f"/library/parts/{part['id']}/")
                assert isinstance(part["size"], int)
                assert "Stream" not in part
    shapes = {(len(i["Media"]), len(i["Media"][0]["Part"])) for i in page["Metadata"]}
    assert {(1, 1), (2, 1), (1, 2)} <= shapes

    guids = await fetch(
        session,
        emu,
        "/library/sections/1/all?includeGuids=1&X-Plex-Container-Size=50",
        headers=JSON,
    )
    new_agent = [i for i in metadata(guids) if i["guid"].startswith("plex://movie/")]
    legacy = [i for i in metadata(guids) if i["guid"].startswith("com.plexapp.agents.")]
    assert new_agent
    assert legacy
    assert all(i["Guid"][0]["id"].split("://")[0] in {"imdb", "tmdb"} for i in new_agent)
    assert all("Guid" not in i for i in legacy)


async def test_xml_shape_and_escaping(
    emu: PlexEmulator, server: EmuServer, session: aiohttp.ClientSession
) -> None:
    answer = await fetch(session, emu, "/library/sections/1/all")
    assert answer.content_type == "text/xml;charset=utf-8"
    xml = answer.xml
    titles = {video["@title"] for video in xml["Video"]}
    assert 'Tom & Jerry: "The <Movie>"' in titles
    assert "千と千尋の神隠し" in titles
    assert "Amélie" in titles
    video = xml["Video"][0]
    assert all(isinstance(v, str) for k, v in video.items() if k.startswith("@"))
    assert video["Media"][0]["Part"][0]["@file"].startswith("/data/movies/")
    assert xml["@librarySectionID"] == "1"

    shows = (await fetch(session, emu, "/library/sections/2/all")).xml
    assert "Video" not in shows
    show = shows["Directory"][0]
    assert show["@type"] == "show"
    assert "@index" not in show
    assert show["@childCount"] == str(len(server.item(show["@ratingKey"]).children))


async def test_sort_orders(
    emu: PlexEmulator, server: EmuServer, session: aiohttp.ClientSession
) -> None:
    path = "/library/sections/1/all"
    default = metadata(await fetch(session, emu, path, headers=JSON))
    sort_titles = [i.get("titleSort", i["title"]).casefold() for i in default]
    assert sort_titles == sorted(sort_titles)
    matrix = next(i for i in default if i["title"] == "The Matrix")
    assert matrix["titleSort"] == "Matrix"
    assert "titleSort" not in next(i for i in default if i["title"] == "Amélie")

    by_id = keys(await fetch(session, emu, f"{path}?sort=id", headers=JSON))
    assert by_id == sorted(by_id)
    added_desc = metadata(await fetch(session, emu, f"{path}?sort=addedAt:desc", headers=JSON))
    stamps = [i["addedAt"] for i in added_desc]
    assert stamps == sorted(stamps, reverse=True)
    updated = metadata(await fetch(session, emu, f"{path}?sort=updatedAt", headers=JSON))
    assert [i["updatedAt"] for i in updated] == sorted(i["updatedAt"] for i in updated)

    # sort=id stays stable for existing items while the library changes.
    new = server.add_movie("1", "Aardvark Returns", 2024)
    after = keys(await fetch(session, emu, f"{path}?sort=id", headers=JSON))
    assert after == [*by_id, new.rating_key]


async def test_filters(
    emu: PlexEmulator, server: EmuServer, session: aiohttp.ClientSession
) -> None:
    movies = list(server.iter_items("1"))
    stamps = sorted(m.updated_at for m in movies)
    cut = stamps[len(stamps) // 2]
    newer = {m.rating_key for m in movies if m.updated_at > cut}
    path = "/library/sections/1/all"
    answer = await fetch(
        session, emu, f"{path}?updatedAt>>={cut}&X-Plex-Container-Size=5&sort=id", headers=JSON
    )
    assert answer.json["totalSize"] == len(newer)
    assert set(keys(answer)) <= newer
    everything = await fetch(session, emu, f"{path}?updatedAt%3E%3E={cut}", headers=JSON)
    assert set(keys(everything)) == newer
    older = await fetch(session, emu, f"{path}?addedAt<<={cut}&unknownParam=1", headers=JSON)
    assert set(keys(older)) == {m.rating_key for m in movies if m.added_at < cut}
    assert emu.requests[-1].query["addedAt<<"] == str(cut)
    relative = await fetch(session, emu, f"{path}?addedAt>>=-3d", headers=JSON)
    assert keys(relative) == []
    year = movies[0].year
    same_year = await fetch(session, emu, f"{path}?year={year}", headers=JSON)
    assert set(keys(same_year)) == {m.rating_key for m in movies if m.year == year}


async def test_type_listings_in_show_section(
    emu: PlexEmulator, server: EmuServer, session: aiohttp.ClientSession
) -> None:
    path = "/library/sections/2/all"
    seasons = (await fetch(session, emu, f"{path}?type=3", headers=JSON)).json
    assert seasons["size"] == server.count("2", SEASON)
    assert {i["type"] for i in seasons["Metadata"]} == {"season"}
    assert all("parentRatingKey" in i for i in seasons["Metadata"])
    assert any(i["index"] == 0 and i["title"] == "Specials" for i in seasons["Metadata"])

    episodes = await fetch(session, emu, f"{path}?type=4&X-Plex-Container-Size=1000", headers=JSON)
    assert episodes.json["totalSize"] == server.count("2", EPISODE)
    for item in metadata(episodes):
        season = server.item(item["parentRatingKey"])
        show = server.item(item["grandparentRatingKey"])
        assert item["parentIndex"] == season.index
        assert item["grandparentTitle"] == show.title
        assert item["parentTitle"] == season.title
        assert item["parentKey"] == f"/library/metadata/{season.rating_key}"
        assert "librarySectionID" not in item

    assert (await fetch(session, emu, f"{path}?type=1", headers=JSON)).json["size"] == 0
    shows = await fetch(session, emu, path, headers=JSON)
    assert shows.json["size"] == server.count("2", SHOW)


# ------------------------------------------------------------ detail endpoints


async def test_metadata_detail(
    emu: PlexEmulator, server: EmuServer, session: aiohttp.ClientSession
) -> None:
    movie = next(m for m in server.iter_items("1") if m.ext_guids)
    answer = await fetch(session, emu, f"/library/metadata/{movie.rating_key}", headers=JSON)
    (item,) = metadata(answer)
    assert item["librarySectionID"] == 1
    assert [g["id"] for g in item["Guid"]] == list(movie.ext_guids)
    streams = item["Media"][0]["Part"][0]["Stream"]
    assert {s["streamType"] for s in streams} >= {1, 2}

    several = await fetch(
        session, emu, f"/library/metadata/{movie.rating_key},999999,1", headers=JSON
    )
    assert keys(several) == [movie.rating_key, 1]

    show = next(server.iter_items("2"))
    nested = await fetch(
        session, emu, f"/library/metadata/{show.rating_key}?includeChildren=1", headers=JSON
    )
    (detail,) = metadata(nested)
    children = detail["Children"]["Metadata"]
    assert [int(c["ratingKey"]) for c in children] == show.children
    assert detail["Location"] == [{"path": show.path}]
    xml = (await fetch(session, emu, f"/library/metadata/{show.rating_key}?includeChildren=1")).xml
    assert len(xml["Directory"][0]["Children"]["Directory"]) == len(show.children)


async def test_children_and_all_leaves(
    emu: PlexEmulator, server: EmuServer, session: aiohttp.ClientSession
) -> None:
    show = next(server.iter_items("2"))
    children = await fetch(
        session, emu, f"/library/metadata/{show.rating_key}/children", headers=JSON
    )
    first, *seasons = metadata(children)
    assert first["title"] == "All episodes"
    assert "ratingKey" not in first
    assert [int(s["ratingKey"]) for s in seasons] == show.children
    assert seasons[0]["index"] == 0
    assert children.json["viewGroup"] == "season"

    exclude = await fetch(
        session,
        emu,
        f"/library/metadata/{show.rating_key}/children?excludeAllLeaves=1"
        "&X-Plex-Container-Start=1&X-Plex-Container-Size=1",
        headers=JSON,
    )
    assert keys(exclude) == show.children[1:2]
    assert exclude.json["totalSize"] == len(show.children)

    season = server.item(show.children[1])
    episodes = await fetch(
        session, emu, f"/library/metadata/{season.rating_key}/children", headers=JSON
    )
    assert keys(episodes) == season.children
    assert all(i["type"] == "episode" and i["Media"] for i in metadata(episodes))
    assert episodes.json["parentIndex"] == season.index

    leaves = await fetch(
        session,
        emu,
        f"/library/metadata/{show.rating_key}/allLeaves?includeGuids=1&X-Plex-Container-Size=500",
        headers=JSON,
    )
    assert keys(leaves) == [e.rating_key for e in server.leaves(show)]
    assert leaves.json["totalSize"] == server.leaf_count(show)
    assert all(i["Media"][0]["Part"] for i in metadata(leaves))
    assert all(
        ("Guid" in i) == bool(server.item(i["ratingKey"]).ext_guids) for i in metadata(leaves)
    )


async def test_generated_content(server: EmuServer) -> None:
    episodes = [i for i in server.items.values() if i.type == EPISODE]
    by_part: dict[int, list[int]] = {}
    for episode in episodes:
        by_part.setdefault(episode.media[0].parts[0].id, []).append(episode.rating_key)
    shared = [rks for rks in by_part.values() if len(rks) == 2]
    assert shared
    first, second = (server.item(rk) for rk in shared[0])
    assert first.media[0].parts[0] is second.media[0].parts[0]
    assert first.media[0].id != second.media[0].id
    assert "-E" in first.media[0].parts[0].file
    assert any(i.index == 0 for i in server.items.values() if i.type == SEASON)
    assert any(i.guid.startswith("com.plexapp.agents.thetvdb://") for i in episodes)
    assert any(i.guid.startswith("plex://episode/") for i in episodes)
    assert any(i.view_count for i in server.items.values())
    files = [p.file for p in server.parts()]
    assert all(f.startswith(("/data/movies/", "/data/tv/")) for f in files)
    assert any("/Season 01/" in f for f in files)


def _snapshot(server: EmuServer) -> list[tuple[Any, ...]]:
    return [
        (
            i.rating_key,
            i.type,
            i.title,
            i.guid,
            i.ext_guids,
            i.added_at,
            i.updated_at,
            i.view_count,
            [
                (m.id, m.video_codec, [(p.id, p.key, p.file, p.size) for p in m.parts])
                for m in i.media
            ],
        )
        for i in server.items.values()
    ]


async def test_generation_is_deterministic() -> None:
    one = generate_server(seed=3, movies=40, shows=6)
    two = generate_server(seed=3, movies=40, shows=6)
    other = generate_server(seed=4, movies=40, shows=6)
    assert one.machine_identifier == two.machine_identifier != other.machine_identifier
    assert _snapshot(one) == _snapshot(two)
    assert _snapshot(one) != _snapshot(other)
    assert list(one.items) == list(range(1, len(one.items) + 1))
    plain = generate_server(seed=3, movies=10, shows=2, unicode=False, legacy_agent_share=0)
    assert all(i.title.isascii() for i in plain.items.values())
    assert not any(i.guid.startswith("com.plexapp") for i in plain.items.values())


# --------------------------------------------------------------------- mutations


async def test_add_episodes_changes_counts_not_show_updated_at(
    emu: PlexEmulator, server: EmuServer, session: aiohttp.ClientSession
) -> None:
    show = next(server.iter_items("2"))
    path = f"/library/metadata/{show.rating_key}"
    before = metadata(await fetch(session, emu, path, headers=JSON))[0]
    generation = server.generation
    added = server.add_episodes(show.rating_key, 3)
    assert server.generation > generation
    after = metadata(await fetch(session, emu, path, headers=JSON))[0]
    assert after["leafCount"] == before["leafCount"] + 3
    assert after["childCount"] == before["childCount"]
    assert after["updatedAt"] == before["updatedAt"]
    leaves = keys(await fetch(session, emu, f"{path}/allLeaves", headers=JSON))
    assert [e.rating_key for e in added] == leaves[-3:]

    new_season = server.add_episodes(show.rating_key, 2, season_index=9, bump_show_updated_at=True)
    bumped = metadata(await fetch(session, emu, path, headers=JSON))[0]
    assert bumped["childCount"] == before["childCount"] + 1
    assert bumped["updatedAt"] > before["updatedAt"]
    assert server.item(new_season[0].parent_rk or 0).index == 9


async def test_change_remove_and_watch_state(
    emu: PlexEmulator, server: EmuServer, session: aiohttp.ClientSession
) -> None:
    movie = next(server.iter_items("1"))
    old = movie.updated_at
    server.change_item(movie.rating_key, title="Renamed", year=1999)
    item = metadata(
        await fetch(session, emu, f"/library/metadata/{movie.rating_key}", headers=JSON)
    )[0]
    assert (item["title"], item["year"]) == ("Renamed", 1999)
    assert item["updatedAt"] > old
    server.change_item(movie.rating_key, updated_at=old + 5)
    assert movie.updated_at == old + 5
    with pytest.raises(TypeError):
        server.change_item(movie.rating_key, colour="blue")

    show = next(server.iter_items("2"))
    episode = next(server.leaves(show))
    show_updated = show.updated_at
    server.change_item(episode.rating_key, title="New name")
    assert show.updated_at == show_updated

    stamp = episode.updated_at
    server.set_watch_state(episode.rating_key, view_count=4, last_viewed_at=1_700_000_000)
    detail = metadata(
        await fetch(session, emu, f"/library/metadata/{episode.rating_key}", headers=JSON)
    )
    assert (detail[0]["viewCount"], detail[0]["lastViewedAt"]) == (4, 1_700_000_000)
    assert detail[0]["updatedAt"] == stamp
    server.set_watch_state(episode.rating_key, view_count=0, last_viewed_at=None)
    detail = metadata(
        await fetch(session, emu, f"/library/metadata/{episode.rating_key}", headers=JSON)
    )
    assert "viewCount" not in detail[0]
    assert "lastViewedAt" not in detail[0]

    total = server.count("2", EPISODE)
    doomed = server.leaf_count(show)
    server.remove_item(show.rating_key)
    assert server.count("2", EPISODE) == total - doomed
    assert all(rk not in server.items for rk in show.children)
    gone = await fetch(session, emu, f"/library/metadata/{show.rating_key}", headers=JSON)
    assert gone.status == 404
    listing = await fetch(
        session, emu, "/library/sections/2/all?type=4&X-Plex-Container-Size=0", headers=JSON
    )
    assert listing.json["totalSize"] == total - doomed


async def test_replace_file_keeps_updated_at(
    emu: PlexEmulator, server: EmuServer, session: aiohttp.ClientSession
) -> None:
    movie = next(server.iter_items("1"))
    path = f"/library/metadata/{movie.rating_key}"
    before = metadata(await fetch(session, emu, path, headers=JSON))[0]
    server.replace_file(movie.rating_key)
    after = metadata(await fetch(session, emu, path, headers=JSON))[0]
    old_part, new_part = before["Media"][0]["Part"][0], after["Media"][0]["Part"][0]
    assert after["updatedAt"] == before["updatedAt"]
    for field in ("id", "key", "file", "size"):
        assert old_part[field] != new_part[field], field
    server.replace_file(movie.rating_key, file="/data/movies/x.mkv", size=12)
    assert (movie.media[0].parts[0].file, movie.media[0].parts[0].size) == (
        "/data/movies/x.mkv",
        12,
    )


async def test_refresh_metadata_gives_every_item_one_updated_at(
    emu: PlexEmulator, server: EmuServer, session: aiohttp.ClientSession
) -> None:
    added = {rk: item.added_at for rk, item in server.items.items()}
    assert len({item.updated_at for item in server.items.values()}) > 1
    stamp = server.now() - 3600

    assert server.refresh_metadata(at=stamp) == stamp

    assert {item.updated_at for item in server.items.values()} == {stamp}
    assert {rk: item.added_at for rk, item in server.items.items()} == added
    for section_key, plex_type in (("1", 1), ("2", 2), ("2", 3), ("2", 4)):
        total = server.count(section_key, plex_type)
        base = f"/library/sections/{section_key}/all?type={plex_type}&X-Plex-Container-Size=0"
        since_before = await fetch(session, emu, f"{base}&updatedAt>>={stamp - 1}", headers=JSON)
        since_stamp = await fetch(session, emu, f"{base}&updatedAt>>={stamp}", headers=JSON)
        assert since_before.json["totalSize"] == total > 0
        assert since_stamp.json["totalSize"] == 0
    sections = (await fetch(session, emu, "/library/sections", headers=JSON)).json["Directory"]
    assert all(section["updatedAt"] >= stamp for section in sections)

    # One section only, by the server's clock by default.
    later = server.refresh_metadata("1")
    assert later >= stamp
    assert {item.updated_at for item in server.iter_items("1")} == {later}
    assert {item.updated_at for item in server.iter_items("2", EPISODE)} == {stamp}


async def test_add_section_and_items(
    emu: PlexEmulator, server: EmuServer, session: aiohttp.ClientSession
) -> None:
    section = server.add_section(type="movie", title="Kids", locations=["/data/kids"])
    assert section.key == "3"
    movie = server.add_movie(section.key, "Ørnen & Co", 2020)
    assert movie.media[0].parts[0].file == "/data/kids/Ørnen & Co (2020)/Ørnen & Co (2020).mkv"
    listing = await fetch(session, emu, "/library/sections/3/all", headers=JSON)
    assert keys(listing) == [movie.rating_key]
    show = server.add_show("2", "Brand New")
    season = server.add_season(show.rating_key, 1)
    episode = server.add_episode(season.rating_key, 1, "Pilot")
    assert episode.media[0].parts[0].file == "/data/tv/Brand New/Season 01/Brand New - S01E01.mkv"
    assert server.leaf_count(show) == 1
    with pytest.raises(ValueError, match="section"):
        server.add_movie("2", "Wrong section")


# ------------------------------------------------------------------------ faults


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        (FaultKind.STATUS_401, 401),
        (FaultKind.STATUS_404, 404),
        (FaultKind.STATUS_429, 429),
        (FaultKind.STATUS_500, 500),
        (FaultKind.STATUS_503, 503),
    ],
)
async def test_status_faults(
    emu: PlexEmulator,
    server: EmuServer,
    session: aiohttp.ClientSession,
    kind: FaultKind,
    status: int,
) -> None:
    fault = server.faults.add(Fault(kind, seconds=7))
    answer = await fetch(session, emu, "/library/sections/1/all")
    assert answer.status == status
    if status == 429:
        assert answer.headers["Retry-After"] == "7"
    assert fault.hits == 1
    assert (await fetch(session, emu, "/library/sections/1/all")).status == 200


async def test_fault_after_times_and_endpoint(
    emu: PlexEmulator, server: EmuServer, session: aiohttp.ClientSession
) -> None:
    server.faults.add(Fault("status_500", endpoint="metadata", times=2, after=1))
    statuses = [(await fetch(session, emu, "/library/metadata/1")).status for _ in range(4)]
    assert statuses == [200, 500, 500, 200]
    assert (await fetch(session, emu, "/library/sections")).status == 200

    server.faults.add(Fault(FaultKind.STATUS_503, endpoint=None, times=None))
    assert (await fetch(session, emu, "/identity", token=None)).status == 200
    assert (await fetch(session, emu, "/")).status == 503
    assert (await fetch(session, emu, "/library/sections")).status == 503
    server.faults.clear()
    assert (await fetch(session, emu, "/")).status == 200
    with pytest.raises(ValueError, match="variant"):
        Fault(FaultKind.BAD_ITEM, variant="nonsense")


async def test_slow_and_hang(
    emu: PlexEmulator, server: EmuServer, session: aiohttp.ClientSession
) -> None:
    server.faults.add(Fault(FaultKind.SLOW, delay=0.3))
    loop = asyncio.get_running_loop()
    began = loop.time()
    assert (await fetch(session, emu, "/library/sections/1/all")).status == 200
    assert loop.time() - began >= 0.3

    server.faults.add(Fault(FaultKind.SLOW, delay=5))
    with pytest.raises(TimeoutError):
        await fetch(session, emu, "/library/sections/1/all", limit=0.2)

    server.faults.add(Fault(FaultKind.HANG, endpoint="root"))
    with pytest.raises(TimeoutError):
        await fetch(session, emu, "/", limit=0.2)


async def test_hang_ends_on_stop(server: EmuServer, session: aiohttp.ClientSession) -> None:
    emu = PlexEmulator(server)
    await emu.start()
    server.faults.add(Fault(FaultKind.HANG, endpoint="root"))
    request = asyncio.ensure_future(fetch(session, emu, "/", limit=10))
    await asyncio.sleep(0.1)
    assert not request.done()
    loop = asyncio.get_running_loop()
    began = loop.time()
    await emu.stop()
    with pytest.raises(aiohttp.ClientError):
        await request
    assert loop.time() - began < 3
    await emu.stop()


@pytest.mark.parametrize("kind", [FaultKind.RESET, FaultKind.TRUNCATED])
async def test_cut_connections(
    emu: PlexEmulator, server: EmuServer, session: aiohttp.ClientSession, kind: FaultKind
) -> None:
    server.faults.add(Fault(kind))
    with pytest.raises(aiohttp.ClientError):
        await fetch(session, emu, "/library/sections/1/all", headers=JSON)
    answer = await fetch(session, emu, "/library/sections/1/all", headers=JSON)
    assert answer.json["size"] == server.count("1")


async def test_malformed_html_and_xml_instead_of_json(
    emu: PlexEmulator, server: EmuServer, session: aiohttp.ClientSession
) -> None:
    path = "/library/sections/1/all"
    server.faults.add(Fault(FaultKind.MALFORMED, times=2))
    broken = await fetch(session, emu, path, headers=JSON)
    assert broken.status == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken.body)
    broken_xml = await fetch(session, emu, path)
    with pytest.raises(Exception, match=r"(?i)expat|syntax|token|unclosed|well-formed"):
        xmltodict.parse(broken_xml.body)

    server.faults.add(Fault(FaultKind.HTML_200))
    html = await fetch(session, emu, path, headers=JSON)
    assert (html.status, html.content_type) == (200, "text/html")
    assert html.body.startswith(b"<!DOCTYPE html>")

    server.faults.add(Fault(FaultKind.XML_INSTEAD_OF_JSON))
    xml = await fetch(session, emu, path, headers=JSON)
    assert xml.content_type == "text/xml;charset=utf-8"
    assert int(xml.xml["@size"]) == server.count("1")
    assert (await fetch(session, emu, path, headers=JSON)).content_type == "application/json"

    server.force_xml = True
    assert (await fetch(session, emu, "/", headers=JSON)).content_type.startswith("text/xml")


async def test_paging_quirks(
    emu: PlexEmulator, server: EmuServer, session: aiohttp.ClientSession
) -> None:
    total = server.count("1")
    path = "/library/sections/1/all?X-Plex-Container-Start=10&X-Plex-Container-Size=5"
    ignore = server.faults.add(Fault(FaultKind.IGNORE_PAGING, times=None))
    page = (await fetch(session, emu, path, headers=JSON)).json
    assert (page["size"], page["totalSize"]) == (total, total)
    server.faults.remove(ignore)

    server.faults.add(Fault(FaultKind.CAP_SIZE, times=None, cap=4))
    capped = (await fetch(session, emu, path.replace("Size=5", "Size=100"), headers=JSON)).json
    assert (capped["size"], capped["totalSize"], capped["offset"]) == (4, total, 10)
    server.faults.add(Fault(FaultKind.OMIT_TOTAL_SIZE, times=None))
    omitted = (await fetch(session, emu, path, headers=JSON)).json
    assert omitted["size"] == 4
    assert "totalSize" not in omitted
    server.faults.clear()
    assert (await fetch(session, emu, path, headers=JSON)).json["totalSize"] == total


@pytest.mark.parametrize("variant", BAD_ITEM_VARIANTS)
async def test_bad_item(
    emu: PlexEmulator, server: EmuServer, session: aiohttp.ClientSession, variant: str
) -> None:
    server.faults.add(Fault(FaultKind.BAD_ITEM, variant=variant, index=1))
    path = "/library/sections/1/all?X-Plex-Container-Size=3"
    good_first, bad, good_last = metadata(await fetch(session, emu, path, headers=JSON))
    assert "ratingKey" in good_first
    assert "ratingKey" in good_last
    if variant == "missing_rating_key":
        assert "ratingKey" not in bad
    elif variant == "bad_added_at":
        assert bad["addedAt"] == "not-a-number"
    elif variant == "bad_updated_at":
        assert bad["updatedAt"] == "not-a-number"
    elif variant == "media_without_part":
        assert "Part" not in bad["Media"][0]
    elif variant == "missing_title":
        assert "title" not in bad
    else:
        assert "type" not in bad
    clean = metadata(await fetch(session, emu, path, headers=JSON))
    assert all("ratingKey" in i and "Part" in i["Media"][0] for i in clean)


# -------------------------------------------------------------- bookkeeping


async def test_counters_requests_and_cache(
    emu: PlexEmulator, server: EmuServer, session: aiohttp.ClientSession
) -> None:
    await fetch(session, emu, "/identity", token=None)
    await fetch(session, emu, "/library/sections/1/all?X-Plex-Container-Size=5&type=1")
    await fetch(session, emu, "/library/sections/1/all?X-Plex-Container-Size=5&type=1")
    await fetch(session, emu, "/library/metadata/1/children")
    await fetch(session, emu, "/library/metadata/1/allLeaves")
    await fetch(session, emu, "/library/metadata/1")
    assert emu.counters == {
        "identity": 1,
        "section_all": 2,
        "children": 1,
        "all_leaves": 1,
        "metadata": 1,
    }
    endpoint, path, query = emu.requests[1]
    assert (endpoint, path) == ("section_all", "/library/sections/1/all")
    assert query == {"X-Plex-Container-Size": "5", "type": "1"}
    assert emu.request_headers[1]["X-Plex-Token"] == TOKEN
    assert server.stats.cache_hits == 1
    assert server.stats.render_seconds > 0
    emu.counters.clear()
    assert not emu.counters
    emu.reset_log()
    assert not emu.requests


async def test_two_servers_are_independent(session: aiohttp.ClientSession) -> None:
    one = generate_server(seed=1, movies=3, shows=1, token="a", friendly_name="One")
    two = generate_server(seed=2, movies=3, shows=1, token="b", friendly_name="Two")
    async with PlexEmulator(one) as emu_one, PlexEmulator(two) as emu_two:
        assert emu_one.url != emu_two.url
        first = await fetch(session, emu_one, "/", token="a", headers=JSON)
        second = await fetch(session, emu_two, "/", token="b", headers=JSON)
        assert first.json["friendlyName"] == "One"
        assert second.json["machineIdentifier"] == two.machine_identifier
        assert (await fetch(session, emu_two, "/", token="a")).status == 401


async def test_emulator_not_running() -> None:
    emu = PlexEmulator(generate_server(movies=1, shows=0))
    with pytest.raises(RuntimeError):
        _ = emu.url


def test_cli_arguments() -> None:
    args = _parse_args(["--port", "0", "--seed", "5", "--movies", "3", "--token", "t"])
    assert (args.port, args.seed, args.movies, args.shows, args.token) == (0, 5, 3, 20, "t")


# ------------------------------------------------------------------ live side

WS_PATH = "/:/websockets/notifications"


def ws_url(emu: PlexEmulator) -> str:
    return emu.url.replace("http://", "ws://") + WS_PATH


async def connect(
    session: aiohttp.ClientSession, emu: PlexEmulator, *, query_token: bool = False
) -> aiohttp.ClientWebSocketResponse:
    if query_token:
        return await session.ws_connect(f"{ws_url(emu)}?X-Plex-Token={TOKEN}")
    return await session.ws_connect(ws_url(emu), headers={"X-Plex-Token": TOKEN})


async def next_message(ws: aiohttp.ClientWebSocketResponse) -> tuple[str, list[Notification]]:
    """Return the type and the engine-decoded notifications of the next message."""
    message = await ws.receive(timeout=5)
    assert message.type is aiohttp.WSMsgType.TEXT, message
    container = json.loads(message.data)["NotificationContainer"]
    notifications = parse_notifications(message.data)
    assert container["size"] == len(notifications) > 0
    assert decode_message(message.data).problems == ()
    return container["type"], notifications


async def next_timeline(ws: aiohttp.ClientWebSocketResponse) -> list[TimelineEntry]:
    kind, notifications = await next_message(ws)
    assert kind == "timeline"
    assert all(isinstance(n, TimelineEntry) for n in notifications)
    return [n for n in notifications if isinstance(n, TimelineEntry)]


async def no_message(ws: aiohttp.ClientWebSocketResponse) -> None:
    with pytest.raises(TimeoutError):
        await ws.receive(timeout=0.2)


async def test_notifications_need_the_token(
    emu: PlexEmulator, server: EmuServer, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await session.ws_connect(ws_url(emu))
    assert refused.value.status == 401
    with pytest.raises(aiohttp.WSServerHandshakeError) as wrong:
        await session.ws_connect(ws_url(emu), headers={"X-Plex-Token": "nope"})
    assert wrong.value.status == 401
    # A plain GET with the token is no websocket.
    assert (await fetch(session, emu, WS_PATH)).status == 400
    assert emu.counters["notifications"] == 3
    assert emu.notification_clients == 0

    # The token as a query parameter works as well as the header.
    async with await connect(session, emu, query_token=True) as ws:
        assert emu.notification_clients == 1
        movie = server.add_movie("1", "By Query", 2020)
        assert [e.item_id for e in await next_timeline(ws)] == [str(movie.rating_key)] * 4


async def test_notifications_follow_the_fault_machinery(
    emu: PlexEmulator, server: EmuServer, session: aiohttp.ClientSession
) -> None:
    fault = server.faults.add(Fault(FaultKind.STATUS_503, endpoint="notifications"))
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await connect(session, emu)
    assert (refused.value.status, fault.hits) == (503, 1)
    async with await connect(session, emu) as ws:
        server.change_item(next(server.iter_items("1")).rating_key, title="After the fault")
        assert (await next_timeline(ws))[0].title == "After the fault"


async def test_timeline_for_new_changed_and_removed_items(
    emu: PlexEmulator, server: EmuServer, session: aiohttp.ClientSession
) -> None:
    async with await connect(session, emu) as ws:
        movie = server.add_movie("1", "Brand New", 2024)
        entries = await next_timeline(ws)
        assert [(e.state, e.metadata_state) for e in entries] == [
            (0, "created"),
            (3, "processing"),
            (4, "loading"),
            (5, None),
        ]
        for entry in entries:
            assert entry.identifier == "com.plexapp.plugins.library"
            assert (entry.item_id, entry.section_id, entry.type) == (str(movie.rating_key), "1", 1)
            assert (entry.title, entry.updated_at) == ("Brand New", movie.updated_at)
            assert entry.parent_item_id is None
            assert entry.root_item_id is None
            assert entry.queue_size is None

        show = server.add_show("2", "New Show", 2024)
        assert {(e.item_id, e.type) for e in await next_timeline(ws)} == {(str(show.rating_key), 2)}
        season = server.add_season(show.rating_key, 1)
        season_entries = await next_timeline(ws)
        assert {(e.type, e.parent_item_id, e.root_item_id) for e in season_entries} == {
            (3, str(show.rating_key), str(show.rating_key))
        }
        episode = server.add_episode(season.rating_key, 1, "Pilot")
        episode_entries = await next_timeline(ws)
        assert [e.state for e in episode_entries] == [0, 3, 4, 5]
        assert {
            (e.item_id, e.type, e.parent_item_id, e.root_item_id, e.section_id, e.title)
            for e in episode_entries
        } == {
            (str(episode.rating_key), 4, str(season.rating_key), str(show.rating_key), "2", "Pilot")
        }
        # add_episodes: one mutation per episode; a new season comes first.
        added = server.add_episodes(show.rating_key, 2, season_index=2)
        new_season = server.item(added[0].parent_rk or 0)
        assert [e.item_id for e in await next_timeline(ws)] == [str(new_season.rating_key)] * 4
        for each in added:
            assert {e.item_id for e in await next_timeline(ws)} == {str(each.rating_key)}

        # Changes: one state 5 entry carrying the new updatedAt.
        changed = server.change_item(movie.rating_key, title="Renamed")
        (entry,) = await next_timeline(ws)
        assert (entry.item_id, entry.state, entry.metadata_state) == (
            str(movie.rating_key),
            5,
            None,
        )
        assert (entry.title, entry.updated_at) == ("Renamed", changed.updated_at)
        server.replace_file(movie.rating_key)
        assert [(e.item_id, e.state) for e in await next_timeline(ws)] == [
            (str(movie.rating_key), 5)
        ]
        server.move_episode(added[1].rating_key, season.rating_key)
        (moved,) = await next_timeline(ws)
        assert (moved.item_id, moved.parent_item_id, moved.state) == (
            str(added[1].rating_key),
            str(season.rating_key),
            5,
        )

        # Removal: state 9 "deleted" for the item and everything under it.
        doomed = {show.rating_key, *show.children}
        doomed |= {rk for s in show.children for rk in server.item(s).children}
        server.remove_item(show.rating_key)
        removed = await next_timeline(ws)
        assert {int(e.item_id) for e in removed} == doomed
        assert {(e.state, e.metadata_state) for e in removed} == {(9, "deleted")}
        assert removed[0].item_id == str(show.rating_key)
        assert {e.type for e in removed} == {2, 3, 4}

        # Items taken away and put back come back as new.
        taken = server.take_item(movie.rating_key)
        assert [e.state for e in await next_timeline(ws)] == [9]
        server.restore_items(taken)
        assert [e.state for e in await next_timeline(ws)] == [0, 3, 4, 5]
        await no_message(ws)


async def test_shared_file_change_names_both_episodes(
    emu: PlexEmulator, server: EmuServer, session: aiohttp.ClientSession
) -> None:
    by_part: dict[int, list[int]] = {}
    for item in server.items.values():
        for media in item.media:
            for part in media.parts:
                by_part.setdefault(id(part), []).append(item.rating_key)
    shared = next(rks for rks in by_part.values() if len(rks) == 2)
    async with await connect(session, emu) as ws:
        server.replace_file(shared[0])
        assert sorted(int(e.item_id) for e in await next_timeline(ws)) == sorted(shared)


async def test_every_client_gets_every_message_and_counters(
    emu: PlexEmulator, server: EmuServer, session: aiohttp.ClientSession
) -> None:
    movie = next(server.iter_items("1"))
    async with await connect(session, emu) as first, await connect(session, emu) as second:
        assert emu.notification_clients == 2
        server.change_item(movie.rating_key, title="Seen by both")
        for ws in (first, second):
            (entry,) = await next_timeline(ws)
            assert entry.title == "Seen by both"
        # A mutation from another thread is handed to the emulator's loop.
        await asyncio.to_thread(server.change_item, movie.rating_key, title="From a thread")
        for ws in (first, second):
            assert (await next_timeline(ws))[0].title == "From a thread"
        # Raw text goes out as it is (for clients' malformed-message handling).
        server.notify('{"NotificationContainer": ')
        for ws in (first, second):
            assert (await ws.receive(timeout=5)).data == '{"NotificationContainer": '
        hub = emu.notifications
        assert (hub.connects, hub.messages, hub.sent) == (2, 3, 6)
        assert hub.log[-1] == '{"NotificationContainer": '
    await emu.notifications.wait_connected(0)
    assert emu.notification_clients == 0
    # Without clients, messages are still counted and logged, and nothing blocks.
    server.change_item(movie.rating_key, title="Nobody listens")
    assert emu.notifications.messages == 4
    assert emu.notifications.sent == 6


async def test_silent_mutations_send_nothing(
    emu: PlexEmulator, server: EmuServer, session: aiohttp.ClientSession
) -> None:
    movie = next(server.iter_items("1"))
    show = next(server.iter_items("2"))
    async with await connect(session, emu) as ws:
        with server.silent():
            quiet = server.add_movie("1", "Quiet Arrival", 2021)
            server.change_item(movie.rating_key, title="Quietly renamed")
            server.replace_file(movie.rating_key)
            server.remove_item(show.rating_key)
            server.scan("1")
            server.refresh_item(movie.rating_key)
            server.play(movie.rating_key, offset_ms=1000)
            server.stop(movie.rating_key, movie.duration)
            server.notify("raw")
            inside = server.notifying
        assert (inside, server.notifying) == (False, True)
        assert emu.notifications.messages == 0
        await no_message(ws)
        # The next message is the first loud one, and polling sees every silent change.
        server.change_item(quiet.rating_key, title="Loud")
        (entry,) = await next_timeline(ws)
        assert (entry.item_id, entry.title) == (str(quiet.rating_key), "Loud")
    assert (await fetch(session, emu, f"/library/metadata/{quiet.rating_key}")).status == 200
    detail = metadata(
        await fetch(session, emu, f"/library/metadata/{movie.rating_key}", headers=JSON)
    )[0]
    assert (detail["title"], detail["viewCount"]) == ("Quietly renamed", movie.view_count)
    assert movie.view_count >= 1
    assert (await fetch(session, emu, f"/library/metadata/{show.rating_key}")).status == 404


async def test_scan_and_refresh_item_activities(
    emu: PlexEmulator, server: EmuServer, session: aiohttp.ClientSession
) -> None:
    movie = next(server.iter_items("1"))
    server.clock = lambda: 1_800_000_000
    async with await connect(session, emu) as ws:
        server.scan("1")
        kind, (started,) = await next_message(ws)
        assert kind == "activity"
        assert isinstance(started, ActivityEvent)
        assert (started.event, started.type, started.section_id) == (
            "started",
            "library.update.section",
            "1",
        )
        kind, (ended,) = await next_message(ws)
        assert isinstance(ended, ActivityEvent)
        assert (ended.event, ended.uuid, ended.progress) == ("ended", started.uuid, 100)
        kind, (status,) = await next_message(ws)
        assert kind == "status"
        assert isinstance(status, StatusEvent)
        assert (status.title, status.notification_name) == (
            "Library scan complete",
            "LIBRARY_UPDATE",
        )
        sections = (await fetch(session, emu, "/library/sections", headers=JSON)).json
        assert sections["Directory"][0]["scannedAt"] == 1_800_000_000

        # A scan that finds something: the timeline comes between started and ended.
        with server.scanning("2") as section:
            show = server.add_show(section.key, "Found by the scan")
        kinds = [(await next_message(ws))[0] for _ in range(4)]
        assert kinds == ["activity", "timeline", "activity", "status"]
        assert show.rating_key in server.items

        refreshed = server.refresh_item(movie.rating_key, summary="Fresh summary")
        _, (begun,) = await next_message(ws)
        (entry,) = await next_timeline(ws)
        _, (done,) = await next_message(ws)
        for event in (begun, done):
            assert isinstance(event, ActivityEvent)
            assert event.type == "library.refresh.items"
            assert event.key == f"/library/metadata/{movie.rating_key}"
            assert event.rating_key == str(movie.rating_key)
            assert event.section_id == "1"
        assert isinstance(begun, ActivityEvent)
        assert isinstance(done, ActivityEvent)
        assert (begun.event, done.event) == ("started", "ended")
        assert (entry.item_id, entry.state, entry.updated_at) == (
            str(movie.rating_key),
            5,
            refreshed.updated_at,
        )
        assert refreshed.summary == "Fresh summary"
        # Nothing new found: only the two activities.
        stamp = movie.updated_at
        server.refresh_item(movie.rating_key, bump_updated_at=False)
        assert [(await next_message(ws))[0] for _ in range(2)] == ["activity", "activity"]
        assert movie.updated_at == stamp
        await no_message(ws)


async def test_drop_notifications_and_reconnect(
    emu: PlexEmulator, server: EmuServer, session: aiohttp.ClientSession
) -> None:
    movie = next(server.iter_items("1"))
    first = await connect(session, emu)
    second = await connect(session, emu)
    assert await emu.drop_notifications() == 2
    assert emu.notification_clients == 0
    for ws in (first, second):
        closing = await ws.receive(timeout=5)
        assert closing.type is aiohttp.WSMsgType.CLOSE
        assert closing.data == aiohttp.WSCloseCode.GOING_AWAY
        assert ws.closed or (await ws.receive(timeout=5)).type is aiohttp.WSMsgType.CLOSED

    # Connecting again works and receives what happens from then on.
    again = await connect(session, emu)
    server.change_item(movie.rating_key, title="After the drop")
    assert (await next_timeline(again))[0].title == "After the drop"
    # Cutting the TCP connection: no close frame, the client sees it end.
    assert await emu.drop_notifications(abort=True) == 1
    ended = await again.receive(timeout=5)
    assert ended.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
    assert emu.notifications.connects == 3
    await emu.drop_notifications()  # nobody left: nothing to do
    await again.close()


async def test_engine_stream_reconnects_after_a_drop(
    emu: PlexEmulator, server: EmuServer, session: aiohttp.ClientSession
) -> None:
    received: asyncio.Queue[Notification] = asyncio.Queue()

    async def handler(notifications: list[Notification]) -> None:
        for notification in notifications:
            received.put_nowait(notification)

    stream = NotificationStream(
        session, emu.url, TOKEN, backoff_initial=0.05, backoff_max=0.1, jitter=0
    )
    task = asyncio.create_task(stream.run(handler))
    try:
        await emu.notifications.wait_connected(1)
        movie = server.add_movie("1", "Live One", 2025)
        entries = [await asyncio.wait_for(received.get(), 5) for _ in range(4)]
        assert {getattr(e, "item_id", None) for e in entries} == {str(movie.rating_key)}
        await emu.drop_notifications()
        await emu.notifications.wait_connected(1)
        server.remove_item(movie.rating_key)
        gone = await asyncio.wait_for(received.get(), 5)
        assert isinstance(gone, TimelineEntry)
        assert (gone.item_id, gone.state) == (str(movie.rating_key), 9)
        assert stream.stats.connects == 2
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_playback_and_scrobble_at_ninety_percent(
    emu: PlexEmulator, server: EmuServer, session: aiohttp.ClientSession
) -> None:
    server.clock = lambda: 1_750_000_000
    movie = server.add_movie("1", "To Watch", 2020, duration=1_000_000)
    views = movie.view_count
    path = f"/library/metadata/{movie.rating_key}"
    async with await connect(session, emu) as ws:

        async def playing() -> PlayingEvent:
            kind, (event,) = await next_message(ws)
            assert kind == "playing"
            assert isinstance(event, PlayingEvent)
            return event

        session_info = server.play(movie.rating_key, offset_ms=0, client_identifier="tv-1")
        started = await playing()
        assert (started.state, started.rating_key, started.view_offset) == (
            "playing",
            str(movie.rating_key),
            0,
        )
        assert (started.session_key, started.client_identifier) == (
            session_info.session_key,
            "tv-1",
        )
        server.pause(movie.rating_key, offset_ms=400_000)
        paused = await playing()
        assert (paused.state, paused.view_offset, paused.session_key) == (
            "paused",
            400_000,
            started.session_key,
        )
        detail = metadata(await fetch(session, emu, path, headers=JSON))[0]
        assert detail["viewOffset"] == 400_000
        assert "viewCount" not in detail

        # Stopped short of 90 %: the offset is kept, no view.
        server.play(movie.rating_key, offset_ms=400_000, client_identifier="tv-1")
        assert (await playing()).session_key == started.session_key  # resumed
        server.stop(movie.rating_key, 899_999)
        stopped = await playing()
        assert (stopped.state, stopped.view_offset) == ("stopped", 899_999)
        detail = metadata(await fetch(session, emu, path, headers=JSON))[0]
        assert (detail["viewOffset"], movie.view_count) == (899_999, views)
        assert "lastViewedAt" not in detail

        # At 90 %: a scrobble. viewCount + 1, lastViewedAt now, viewOffset cleared.
        again = server.play(movie.rating_key, offset_ms=899_999)
        assert again.session_key != started.session_key
        await playing()
        server.stop(movie.rating_key, 900_000)
        assert (await playing()).state == "stopped"
        detail = metadata(await fetch(session, emu, path, headers=JSON))[0]
        assert (detail["viewCount"], detail["lastViewedAt"]) == (views + 1, 1_750_000_000)
        assert "viewOffset" not in detail
        assert detail["updatedAt"] == movie.updated_at
        assert not server.sessions

        # Passing 90 % while playing scrobbles once per session, not again at stop.
        server.play(movie.rating_key, offset_ms=950_000)
        server.stop(movie.rating_key)
        assert [(await playing()).state for _ in range(2)] == ["playing", "stopped"]
        assert movie.view_count == views + 2
        await no_message(ws)

    with pytest.raises(KeyError):
        server.pause(movie.rating_key)
    with pytest.raises(ValueError, match="cannot be played"):
        server.play(next(server.iter_items("2")).rating_key)


async def test_post_webhook_delivers_a_plex_shaped_payload(
    server: EmuServer, session: aiohttp.ClientSession
) -> None:
    received: list[tuple[str, dict[str, Any], Any]] = []

    async def hook(request: web.Request) -> web.Response:
        fields: dict[str, Any] = {}
        for name, value in (await request.post()).items():
            # The parts' files close when the handler returns: read them here.
            if isinstance(value, web.FileField):
                fields[name] = (value.content_type, value.file.read())
            else:
                fields[name] = value
        received.append((request.content_type, dict(request.headers), fields))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook/{secret}", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook/s3cret"
    try:
        show = next(server.iter_items("2"))
        season = server.item(show.children[-1])
        episode = server.item(season.children[0])
        server.set_watch_state(episode.rating_key, view_count=2, last_viewed_at=1_700_000_000)

        status = await post_webhook(
            session,
            url,
            "library.new",
            server=server,
            item=episode,
            account_title="alice",
            player_title="Living Room",
        )
        assert status == 200
        content_type, headers, form = received[-1]
        assert content_type == "multipart/form-data"
        assert headers["User-Agent"].startswith("PlexMediaServer/")
        event = parse_webhook(form["payload"])
        assert (event.event, event.server_uuid, event.server_title) == (
            "library.new",
            server.machine_identifier,
            server.friendly_name,
        )
        assert (event.account_id, event.account_title, event.player_title) == (
            "1",
            "alice",
            "Living Room",
        )
        assert (event.rating_key, event.parent_rating_key, event.grandparent_rating_key) == (
            str(episode.rating_key),
            str(season.rating_key),
            str(show.rating_key),
        )
        assert (event.section_id, event.item_type, event.title, event.grandparent_title) == (
            "2",
            "episode",
            episode.title,
            show.title,
        )
        assert (event.parent_index, event.index) == (season.index, episode.index)
        raw = json.loads(form["payload"])
        assert (raw["user"], raw["owner"]) == (True, True)
        meta = raw["Metadata"]
        assert meta["librarySectionType"] == "show"
        assert meta["key"] == f"/library/metadata/{episode.rating_key}"
        assert meta["librarySectionID"] == 2
        assert (meta["guid"], meta["addedAt"], meta["updatedAt"]) == (
            episode.guid,
            episode.added_at,
            episode.updated_at,
        )
        assert (meta["viewCount"], meta["lastViewedAt"]) == (2, 1_700_000_000)
        assert "Media" not in meta
        thumb_type, image = form["thumb"]
        assert thumb_type == "image/jpeg"
        assert image.startswith(b"\xff\xd8")
        assert image.endswith(b"\xff\xd9")

        # Playback events carry no thumb by default; a rating for media.rate.
        movie = next(server.iter_items("1"))
        assert (
            await post_webhook(
                session, url, "media.rate", server=server, item=movie.rating_key, rating=8.0
            )
            == 200
        )
        _, _, form = received[-1]
        assert "thumb" not in form
        rated = parse_webhook(form["payload"])
        assert (rated.event, rated.rating_key, rated.item_type, rated.user_rating) == (
            "media.rate",
            str(movie.rating_key),
            "movie",
            8.0,
        )
        assert rated.playback
        assert json.loads(form["payload"])["Metadata"]["librarySectionType"] == "movie"

        # A shared user's scrobble; `extra` reaches into the payload.
        await post_webhook(
            session,
            url,
            "media.scrobble",
            server=server,
            item=movie,
            account_id=7,
            account_title="bob",
            extra={"Metadata": {"viewOffset": 123_000}, "Player": {"local": False}},
        )
        _, _, form = received[-1]
        scrobble = parse_webhook(form["payload"])
        assert (scrobble.account_id, scrobble.account_title, scrobble.view_offset) == (
            "7",
            "bob",
            123_000,
        )
        raw = json.loads(form["payload"])
        assert (raw["owner"], raw["Player"]["local"]) == (False, False)
        assert len(received) == 3
    finally:
        await runner.cleanup()
