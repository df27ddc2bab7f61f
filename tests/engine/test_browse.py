"""The panel's queries (engine/store/browse.py) on catalogs built by real syncs of the emulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
import contextlib
from dataclasses import dataclass
import functools
import itertools
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from custom_components.retrovue.engine.paths import PathMapping
from custom_components.retrovue.engine.plex import PlexClient
from custom_components.retrovue.engine.states import ItemState
from custom_components.retrovue.engine.store import Catalog, CatalogStore, browse
from custom_components.retrovue.engine.store.browse import (
    HistoryEntry,
    ItemQuery,
    ItemRow,
    LibraryOverview,
    MissingFolder,
    SortKey,
)
from custom_components.retrovue.engine.store.reads import LibraryCounts
from custom_components.retrovue.engine.sync import SyncSummary, prepare_server
from custom_components.retrovue.engine.sync.targeted import Targets, refresh
from tests.catalog_probe import on_catalog_thread
from tests.emulator import EmuItem, EmuServer, PlexEmulator

from .helpers import rows, sync_all

TOKEN = "browse-test-token-3d9a"
T0 = 1_800_000_000
DAY = 86_400
ALPHA = "a1" * 20
BETA = "b2" * 20
GAMMA = "c3" * 20

type Serve = Callable[[EmuServer], Awaitable[PlexClient]]


class Clock:
    """Retrovue's clock, moved by the test."""

    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        """Return the current fake time."""
        return self.now


@pytest.fixture
async def serve(session: aiohttp.ClientSession) -> AsyncIterator[Serve]:
    """Serve emulated servers over HTTP for the test's duration; return a client for each."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(server: EmuServer) -> PlexClient:
            emu = await stack.enter_async_context(PlexEmulator(server))
            return PlexClient(session, emu.url, TOKEN, page_size=50, retries=1, backoff=0)

        yield start


def new_server(
    machine_identifier: str,
    name: str,
    movies: str = "/data/movies",
    tv: str = "/data/tv",
) -> EmuServer:
    """Return a server with a movie section "1" and a show section "2"."""
    server = EmuServer(machine_identifier=machine_identifier, friendly_name=name, token=TOKEN)
    server.add_section("movie", "Movies", [movies], key="1")
    server.add_section("show", "TV Shows", [tv], key="2")
    return server


def add_show(
    server: EmuServer,
    title: str,
    folder: str,
    seasons: tuple[int, ...] = (3,),
    *,
    section: str = "2",
    year: int = 2000,
    guids: tuple[str, ...] = (),
    sep: str = "/",
) -> EmuItem:
    """Add a show whose season folders under `folder` hold one file per episode."""
    show = server.add_show(section, title, year, guids=guids)
    for index, count in enumerate(seasons, start=1):
        season = server.add_season(show.rating_key, index)
        for number in range(1, count + 1):
            name = f"{title} - S{index:02d}E{number:02d}.mkv"
            server.add_episode(
                season.rating_key,
                number,
                f"Episode {number}",
                file=sep.join((folder, f"Season {index:02d}", name)),
            )
    return show


def episodes(server: EmuServer, show: EmuItem) -> list[EmuItem]:
    return list(server.leaves(show))


async def sync(
    client: PlexClient, catalog: Catalog, clock: Clock, **kwargs: Any
) -> list[SyncSummary]:
    """Sync every library of the client's server at the clock's time."""
    _, summaries = await sync_all(client, catalog, clock=clock, **kwargs)
    return summaries


async def library_ids(catalog: Catalog) -> dict[tuple[str, str], int]:
    """Return (server name, library title) → library id."""
    return {
        (library.server, library.title): library.id
        for library in await catalog.call(browse.libraries_overview)
    }


async def everything(catalog: Catalog, query: ItemQuery | None = None) -> list[ItemRow]:
    """Return every row a query matches, a page of 1,000 at a time."""
    found: list[ItemRow] = []
    query = query or ItemQuery()
    while True:
        page = await catalog.call(
            browse.items, ItemQuery(**{**_fields(query), "offset": len(found), "limit": 1000})
        )
        found += page.rows
        if len(found) >= page.total:
            return found


def _fields(query: ItemQuery) -> dict[str, Any]:
    return {name: getattr(query, name) for name in ItemQuery.__dataclass_fields__}


async def history_is_on_run_clocks(catalog: Catalog) -> None:
    """Every history row is dated by its run's clock and names its run."""
    found = await rows(
        catalog,
        "SELECT COUNT(*), COALESCE(SUM(r.id IS NULL OR h.at != r.started_at), 0) "
        "FROM item_history AS h LEFT JOIN sync_runs AS r ON r.id = h.run_id",
    )
    assert found[0][0] > 0
    assert found[0][1] == 0


# --- a catalog with two servers -----------------------------------------------------------


@dataclass
class Stand:
    """Two synced servers and what the tests look for in them."""

    alpha: EmuServer
    beta: EmuServer
    alpha_client: PlexClient
    beta_client: PlexClient
    clock: Clock
    libraries: dict[tuple[str, str], int]


def alpha_server() -> EmuServer:
    server = new_server(ALPHA, "Alpha")
    server.add_movie("1", "The Matrix", 1999, guids=("imdb://tt0133093", "tmdb://603"))
    server.add_movie("1", "Heat", 1995, guids=("imdb://tt0113277",))
    server.add_movie("1", "Twin", 2001)
    server.add_movie("1", "Twin", 2003)
    server.add_movie("1", "100% Pure", 2010)
    server.add_movie("1", "a_b", 2011)
    server.add_movie("1", "Back\\slash", 2012, file="/data/movies/Backslash/Backslash.mkv")
    server.add_movie("1", "No Year")
    add_show(server, "Drama", "/data/tv/Drama", (3, 2), year=2008)
    add_show(server, "Ninja Story", "/data/tv/Anime/Ninja Story", (2,), year=2002)
    return server


def beta_server() -> EmuServer:
    server = new_server(BETA, "Beta")
    server.add_movie("1", "Matrix", 1999, guids=("tmdb://603",))
    server.add_movie("1", "Zodiac", 2007)
    add_show(server, "Beta Show", "/data/tv/Beta Show", (2,), year=2015)
    return server


@pytest.fixture
async def stand(serve: Serve, catalog: Catalog) -> Stand:
    """Return two synced servers."""
    alpha, beta = alpha_server(), beta_server()
    alpha_client, beta_client = await serve(alpha), await serve(beta)
    clock = Clock()
    await sync(alpha_client, catalog, clock)
    await sync(beta_client, catalog, clock)
    return Stand(alpha, beta, alpha_client, beta_client, clock, await library_ids(catalog))


def _movie(server: EmuServer, title: str) -> EmuItem:
    return next(i for i in server.items.values() if i.type == "movie" and i.title == title)


def _show(server: EmuServer, title: str) -> EmuItem:
    return next(i for i in server.items.values() if i.type == "show" and i.title == title)


async def test_a_page_holds_movies_shows_and_episodes_of_every_server(
    stand: Stand, catalog: Catalog
) -> None:
    page = await catalog.call(browse.items, ItemQuery())

    kinds = {"movie": 0, "show": 0, "season": 0, "episode": 0}
    for server in (stand.alpha, stand.beta):
        for item in server.items.values():
            kinds[item.type] += 1
    assert page.total == kinds["movie"] + kinds["show"] + kinds["episode"]
    assert {row.kind for row in page.rows} == {"movie", "show", "episode"}
    assert [row.title for row in page.rows[:3]] == ["100% Pure", "a_b", "Back\\slash"]

    matrix = next(row for row in page.rows if row.title == "The Matrix")
    movie = _movie(stand.alpha, "The Matrix")
    part = movie.media[0].parts[0]
    assert matrix == ItemRow(
        id=matrix.id,
        machine_identifier=ALPHA,
        server="Alpha",
        library_id=stand.libraries[("Alpha", "Movies")],
        library="Movies",
        kind="movie",
        rating_key=str(movie.rating_key),
        title="The Matrix",
        show=None,
        season=None,
        episode=None,
        year=1999,
        state="ACTIVE",
        since=T0,
        first_seen_at=T0,
        last_seen_at=T0,
        missing_since=None,
        deleted_at=None,
        added_at=movie.added_at,
        size=part.size,
        video_resolution="1080",
        video_codec="h264",
        container="mkv",
        plex_path=part.file,
        local_path=None,
        view_count=None,
        last_viewed_at=None,
        parts=1,
    )
    episode = next(row for row in page.rows if row.kind == "episode" and row.show == "Drama")
    assert (episode.season, episode.episode) == (1, 1)
    show = next(row for row in page.rows if row.kind == "show")
    assert (show.size, show.plex_path, show.parts, show.season) == (None, None, 0, None)

    seasons = await catalog.call(browse.items, ItemQuery(kinds=("season",)))
    assert seasons.total == kinds["season"]
    assert {(row.show, row.season) for row in seasons.rows} >= {("Drama", 1), ("Drama", 2)}


async def test_filters_combine(stand: Stand, catalog: Catalog) -> None:
    movies = stand.libraries[("Alpha", "Movies")]
    tv = stand.libraries[("Alpha", "TV Shows")]

    async def titles(**filters: Any) -> list[str]:
        return [row.title for row in await everything(catalog, ItemQuery(**filters))]

    assert await titles(library_ids=(movies,), year=1999) == ["The Matrix"]
    assert await titles(machine_identifier=BETA, kinds=("movie",)) == ["Matrix", "Zodiac"]
    assert await titles(machine_identifier="no-such-server") == []
    assert await titles(year=1999) == ["Matrix", "The Matrix"]
    assert await titles(library_ids=(tv,), kinds=("show",)) == ["Drama", "Ninja Story"]
    assert await titles(library_ids=(movies, tv), kinds=("show", "movie"), year=2008) == ["Drama"]

    # Two movies and a whole show go; the states filter finds them, per library too.
    stand.alpha.remove_item(_movie(stand.alpha, "Heat").rating_key)
    stand.alpha.remove_item(_movie(stand.alpha, "Twin").rating_key)
    stand.alpha.remove_item(_show(stand.alpha, "Ninja Story").rating_key)
    stand.clock.now += 60
    await sync(stand.alpha_client, catalog, stand.clock)

    assert await titles(states=("MISSING",), kinds=("movie",)) == ["Heat", "Twin"]
    missing = await everything(catalog, ItemQuery(states=("MISSING",), library_ids=(tv,)))
    assert {row.kind for row in missing} == {"show", "episode"}
    assert len(missing) == 3
    assert {row.since for row in missing} == {T0 + 60}
    assert await titles(states=("MISSING",), machine_identifier=BETA) == []
    assert await titles(states=("MISSING",), kinds=("season",)) == ["Season 1"]
    active = await everything(catalog, ItemQuery(states=("ACTIVE",), kinds=("episode",)))
    assert {row.show for row in active} == {"Drama", "Beta Show"}
    assert await titles(states=("ACTIVE", "MISSING"), kinds=("movie",), year=2001) == ["Twin"]


@pytest.mark.parametrize(
    "bad",
    [
        {"limit": 0},
        {"limit": 1001},
        {"offset": -1},
        {"kinds": ("trailer",)},
        {"states": ("GONE",)},
    ],
)
async def test_bad_queries_are_refused(catalog: Catalog, bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"limit|offset|kinds|states"):
        await catalog.call(browse.items, ItemQuery(**bad))


_NONE_FIRST: dict[SortKey, Callable[[ItemRow], Any]] = {
    SortKey.TITLE: lambda row: row.title.lower(),
    SortKey.YEAR: lambda row: (row.year is not None, row.year or 0),
    SortKey.STATE: lambda row: list(ItemState).index(ItemState(row.state)),
    SortKey.SINCE: lambda row: row.since,
    SortKey.SIZE: lambda row: (row.size is not None, row.size or 0),
    SortKey.ADDED: lambda row: (row.added_at is not None, row.added_at or 0),
    SortKey.LAST_SEEN: lambda row: row.last_seen_at,
    SortKey.SHOW: lambda row: (
        (row.show or row.title).lower(),
        row.season is not None,
        row.season or 0,
        row.episode is not None,
        row.episode or 0,
    ),
}


@pytest.mark.parametrize("key", list(SortKey))
async def test_every_sort_both_ways_with_ties_by_id(
    stand: Stand, catalog: Catalog, key: SortKey
) -> None:
    # Some rows change state later, so that states and since differ.
    stand.alpha.remove_item(_movie(stand.alpha, "Heat").rating_key)
    stand.clock.now += 3600
    await sync(stand.alpha_client, catalog, stand.clock)

    up = await everything(
        catalog, ItemQuery(sort=key, kinds=("movie", "show", "season", "episode"))
    )
    down = await everything(
        catalog,
        ItemQuery(sort=key, descending=True, kinds=("movie", "show", "season", "episode")),
    )

    assert [row.id for row in down] == [row.id for row in reversed(up)]
    sort_key = _NONE_FIRST[key]
    assert [sort_key(row) for row in up] == sorted(sort_key(row) for row in up)
    ties = [(a.id, b.id) for a, b in itertools.pairwise(up) if sort_key(a) == sort_key(b)]
    assert ties, "the catalog should hold ties for every key"
    assert all(first < second for first, second in ties)


async def test_pages_follow_one_another(stand: Stand, catalog: Catalog) -> None:
    query = ItemQuery(sort=SortKey.SHOW)
    whole = await everything(catalog, query)
    pages: list[ItemRow] = []
    for offset in range(0, len(whole), 4):
        page = await catalog.call(
            browse.items, ItemQuery(sort=SortKey.SHOW, offset=offset, limit=4)
        )
        assert page.total == len(whole)
        assert len(page.rows) == min(4, len(whole) - offset)
        pages += page.rows
    assert pages == whole
    beyond = await catalog.call(browse.items, ItemQuery(offset=len(whole), limit=5))
    assert (beyond.total, beyond.rows) == (len(whole), ())


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("%", {"100% Pure"}),
        ("_", {"a_b"}),
        ("\\", {"Back\\slash"}),
        ("0% p", {"100% Pure"}),
        ("MATRIX", {"The Matrix", "Matrix"}),
        ("ninja", {"Ninja Story", "Episode 1", "Episode 2"}),
        # Only paths hold "anime": the show has no file, its episodes do.
        ("ANIME", {"Episode 1", "Episode 2"}),
        ("backslash.mkv", {"Back\\slash"}),
        ("no such thing", set()),
    ],
)
async def test_search_covers_titles_shows_and_paths(
    stand: Stand, catalog: Catalog, search: str, expected: set[str]
) -> None:
    found = await everything(catalog, ItemQuery(search=search))
    assert {row.title for row in found} == expected
    if search.lower() == "anime":
        assert {row.show for row in found} == {"Ninja Story"}
        assert {row.kind for row in found} == {"episode"}


async def test_search_finds_a_season_by_its_show(stand: Stand, catalog: Catalog) -> None:
    found = await everything(catalog, ItemQuery(search="drama", kinds=("season",)))
    assert sorted((row.show, row.season) for row in found) == [("Drama", 1), ("Drama", 2)]


async def test_local_paths_come_from_the_mappings(stand: Stand, catalog: Catalog) -> None:
    alpha_id = await catalog.call(CatalogStore.server_id, ALPHA)
    assert alpha_id is not None
    await catalog.call(
        CatalogStore.set_path_mappings, alpha_id, [PathMapping("/data/movies", "/mnt/films")]
    )

    found = await everything(catalog, ItemQuery(kinds=("movie",), year=1999))
    paths = {(row.server, row.local_path) for row in found}
    assert paths == {
        ("Alpha", "/mnt/films/The Matrix (1999)/The Matrix (1999).mkv"),
        ("Beta", None),
    }
    drama = await everything(catalog, ItemQuery(search="Drama - S01E01"))
    assert [(row.plex_path, row.local_path) for row in drama] == [
        ("/data/tv/Drama/Season 01/Drama - S01E01.mkv", None)
    ]
    matrix = next(row for row in found if row.server == "Alpha")
    detail = await catalog.call(browse.item_detail, matrix.id)
    assert detail is not None
    assert [part.local_path for part in detail.parts] == [matrix.local_path]


async def test_item_detail_tells_the_story_of_an_item(stand: Stand, catalog: Catalog) -> None:
    movie = _movie(stand.alpha, "The Matrix")
    (row,) = await everything(catalog, ItemQuery(search="The Matrix"))
    detail = await catalog.call(browse.item_detail, row.id)
    assert detail is not None
    assert detail.history == ()
    assert detail.since == detail.first_seen_at == T0
    assert detail.guids == (
        "imdb://tt0133093",
        f"plex://movie/{movie.rating_key:024x}",
        "tmdb://603",
    )
    assert (detail.server_url, detail.section_key) == (str(stand.alpha_client.url), "1")
    assert (detail.guid, detail.duration, detail.error_count) == (movie.guid, movie.duration, 0)
    media = movie.media[0]
    (part,) = detail.parts
    assert (part.media_index, part.part_index, part.plex_path, part.size) == (
        0,
        0,
        media.parts[0].file,
        media.parts[0].size,
    )
    assert (part.video_codec, part.audio_codec, part.width, part.height) == (
        media.video_codec,
        media.audio_codec,
        media.width,
        media.height,
    )

    # Gone in one run, DELETED past the retention, back again.
    taken = stand.alpha.take_item(movie.rating_key)
    stand.clock.now = T0 + 100
    gone_run = (await sync(stand.alpha_client, catalog, stand.clock))[0].run_id
    detail = await catalog.call(browse.item_detail, row.id)
    assert detail is not None
    assert (detail.state, detail.since, detail.missing_since) == ("MISSING", T0 + 100, T0 + 100)
    assert detail.history == (HistoryEntry(T0 + 100, "MISSING", "ACTIVE", gone_run),)

    stand.clock.now = T0 + 100 + 31 * DAY
    deleted_run = (await sync(stand.alpha_client, catalog, stand.clock, retention_days=30))[
        0
    ].run_id
    stand.alpha.restore_items(taken)
    stand.clock.now = T0 + 200 + 31 * DAY
    back_run = (await sync(stand.alpha_client, catalog, stand.clock))[0].run_id

    detail = await catalog.call(browse.item_detail, row.id)
    assert detail is not None
    assert detail.history == (
        HistoryEntry(T0 + 100, "MISSING", "ACTIVE", gone_run),
        HistoryEntry(T0 + 100 + 31 * DAY, "DELETED", "MISSING", deleted_run),
        HistoryEntry(T0 + 200 + 31 * DAY, "ACTIVE", "DELETED", back_run),
    )
    assert (detail.state, detail.since, detail.missing_since, detail.deleted_at) == (
        "ACTIVE",
        T0 + 200 + 31 * DAY,
        None,
        None,
    )
    assert detail.first_seen_at == T0
    (again,) = await everything(catalog, ItemQuery(search="The Matrix"))
    assert again.since == T0 + 200 + 31 * DAY
    assert await catalog.call(browse.item_detail, 10**9) is None
    await history_is_on_run_clocks(catalog)


async def test_every_write_path_records_history(stand: Stand, catalog: Catalog) -> None:
    alpha_id = await catalog.call(CatalogStore.server_id, ALPHA)
    assert alpha_id is not None
    drama = _show(stand.alpha, "Drama")
    drama_episodes = episodes(stand.alpha, drama)

    # A targeted refresh marks a reported deletion MISSING (mark_missing_ids).
    stand.alpha.remove_item(drama_episodes[0].rating_key)
    server = await prepare_server(stand.alpha_client, catalog)
    stand.clock.now = T0 + 10
    summary = await refresh(
        stand.alpha_client,
        catalog,
        server,
        Targets(gone={str(drama_episodes[0].rating_key)}),
        clock=stand.clock,
    )
    assert summary.missing == [str(drama_episodes[0].rating_key)]

    # A movie comes back changed (update_items), a show goes whole and comes back with its
    # children (their parents revived), new mappings restate the library (set_states).
    heat = stand.alpha.take_item(_movie(stand.alpha, "Heat").rating_key)
    ninja = stand.alpha.take_item(_show(stand.alpha, "Ninja Story").rating_key)
    stand.alpha.add_movie("1", "Far", 2020, file="/other/Far/Far.mkv")
    stand.clock.now = T0 + 20
    await sync(stand.alpha_client, catalog, stand.clock)
    stand.alpha.restore_items(heat)
    stand.alpha.change_item(heat[0].rating_key, title="Heat (Director's Cut)")
    stand.alpha.restore_items(ninja)
    await catalog.call(
        CatalogStore.set_path_mappings, alpha_id, [PathMapping("/data/movies", "/mnt/movies")]
    )
    stand.clock.now = T0 + 30
    await sync(stand.alpha_client, catalog, stand.clock)

    found = {
        (str(kind), str(title), str(state), str(previous), int(at))
        for kind, title, state, previous, at in await rows(
            catalog,
            "SELECT i.kind, i.title, h.state, h.previous, h.at FROM item_history AS h "
            "JOIN items AS i ON i.id = h.item_id",
        )
    }
    assert ("episode", "Episode 1", "MISSING", "ACTIVE", T0 + 10) in found
    assert ("movie", "Heat (Director's Cut)", "MISSING", "ACTIVE", T0 + 20) in found
    assert ("movie", "Heat (Director's Cut)", "ACTIVE", "MISSING", T0 + 30) in found
    assert ("show", "Ninja Story", "ACTIVE", "MISSING", T0 + 30) in found
    assert ("season", "Season 1", "ACTIVE", "MISSING", T0 + 30) in found
    # The mapping reaches every movie but the one outside its folder.
    assert ("movie", "Far", "REMOTE_ONLY", "ACTIVE", T0 + 30) in found
    assert not any(title == "The Matrix" for _, title, *_ in found)
    await history_is_on_run_clocks(catalog)
    # Items never changed have no history; inserts write none.
    counts = await rows(
        catalog,
        "SELECT COUNT(*) FROM items WHERE id NOT IN (SELECT item_id FROM item_history)",
    )
    assert counts[0][0] > 0


async def test_history_goes_with_its_item(stand: Stand, catalog: Catalog) -> None:
    stand.alpha.remove_item(_movie(stand.alpha, "Heat").rating_key)
    stand.clock.now = T0 + 100
    await sync(stand.alpha_client, catalog, stand.clock)
    stand.clock.now = T0 + 100 + 31 * DAY
    await sync(stand.alpha_client, catalog, stand.clock, retention_days=30)
    assert await rows(catalog, "SELECT COUNT(*) FROM item_history") == [(2,)]

    purged = await catalog.call(CatalogStore.purge_deleted, T0 + 100 + 32 * DAY)

    assert purged == 1
    assert await rows(catalog, "SELECT COUNT(*) FROM item_history") == [(0,)]
    assert await catalog.call(CatalogStore.invariant_violations) == []
    assert await catalog.call(CatalogStore.remove_server, ALPHA)
    assert await catalog.call(CatalogStore.invariant_violations) == []


# --- libraries --------------------------------------------------------------------------------


async def test_libraries_overview_counts_every_library(stand: Stand, catalog: Catalog) -> None:
    stand.alpha.remove_item(_show(stand.alpha, "Ninja Story").rating_key)
    stand.alpha.remove_item(_movie(stand.alpha, "Heat").rating_key)
    del stand.beta.sections["2"]
    stand.beta.invalidate()
    stand.clock.now += 60
    await sync(stand.alpha_client, catalog, stand.clock)
    await sync(stand.beta_client, catalog, stand.clock)

    overview = await catalog.call(browse.libraries_overview)

    assert [(lib.server, lib.title, lib.present) for lib in overview] == [
        ("Alpha", "Movies", True),
        ("Alpha", "TV Shows", True),
        ("Beta", "Movies", True),
        ("Beta", "TV Shows", False),
    ]
    alpha_tv = overview[1]
    assert alpha_tv == LibraryOverview(
        id=stand.libraries[("Alpha", "TV Shows")],
        machine_identifier=ALPHA,
        server="Alpha",
        server_url=str(stand.alpha_client.url),
        section_key="2",
        title="TV Shows",
        type="show",
        present=True,
        locations=("/data/tv",),
        counts=LibraryCounts(
            section_key="2",
            title="TV Shows",
            type="show",
            active=5,
            remote_only=0,
            unavailable=0,
            missing=2,
            deleted=0,
            unwatched=5,
            shows=1,
        ),
        last_synced_at=T0 + 60,
    )
    first = overview[0].counts
    assert (first.active, first.missing, first.shows) == (7, 1, 0)
    assert overview[3].counts.shows == 1  # kept from before the section went
    alpha_id = await catalog.call(CatalogStore.server_id, ALPHA)
    assert alpha_id is not None
    counts = await catalog.call(CatalogStore.library_counts, alpha_id)
    assert [(c.title, c.shows) for c in counts] == [("Movies", 0), ("TV Shows", 1)]
    dashboard = await catalog.call(CatalogStore.dashboard, alpha_id)
    assert [d.counts.shows for d in dashboard] == [0, 1]


async def test_remote_only_by_library(serve: Serve, catalog: Catalog) -> None:
    server = new_server(ALPHA, "Alpha")
    server.add_movie("1", "Near", 2001)
    server.add_movie("1", "Far", 2002, file="/other/Far/Far.mkv")
    add_show(server, "Drama", "/data/tv/Drama", (2,))
    server.add_section("movie", "Gone Soon", ["/data/gone"], key="3")
    server.add_movie("3", "Lost", 2003)
    client = await serve(server)
    await prepare_server(client, catalog)
    alpha_id = await catalog.call(CatalogStore.server_id, ALPHA)
    assert alpha_id is not None
    await catalog.call(
        CatalogStore.set_path_mappings,
        alpha_id,
        [
            PathMapping("/data/movies", "/mnt/movies"),
            PathMapping("/data/tv", "/mnt/tv"),
            PathMapping("/data/gone", "/mnt/gone"),
        ],
    )
    await sync(client, catalog, Clock())
    del server.sections["3"]
    server.invalidate()
    await prepare_server(client, catalog)

    shares = await catalog.call(CatalogStore.remote_only_by_library, alpha_id)

    assert [
        (s.section_key, s.title, s.type, s.locations, s.remote_only, s.playable) for s in shares
    ] == [
        ("1", "Movies", "movie", ("/data/movies",), 1, 2),
        ("2", "TV Shows", "show", ("/data/tv",), 0, 2),
    ]
    ids = await library_ids(catalog)
    assert [s.library_id for s in shares] == [ids[("Alpha", "Movies")], ids[("Alpha", "TV Shows")]]


# --- find_items ---------------------------------------------------------------------------


async def test_find_items_filters_and_pages(stand: Stand, catalog: Catalog) -> None:
    stand.alpha.remove_item(_movie(stand.alpha, "Heat").rating_key)
    stand.clock.now += 60
    await sync(stand.alpha_client, catalog, stand.clock)

    async def found(*args: Any, **kwargs: Any) -> list[tuple[str, str, str]]:
        items = await catalog.call(CatalogStore.find_items, *args, **kwargs)
        return [(item.title, item.library, item.state) for item in items]

    assert await found("matrix") == [
        ("Matrix", "Movies", "ACTIVE"),
        ("The Matrix", "Movies", "ACTIVE"),
    ]
    assert await found("matrix", machine_identifier=ALPHA) == [("The Matrix", "Movies", "ACTIVE")]
    assert await found(state="MISSING") == [("Heat", "Movies", "MISSING")]
    assert await found(kind="show", library="tv shows") == [
        ("Beta Show", "TV Shows", "ACTIVE"),
        ("Drama", "TV Shows", "ACTIVE"),
        ("Ninja Story", "TV Shows", "ACTIVE"),
    ]
    assert await found(kind="show", library="2", machine_identifier=BETA) == [
        ("Beta Show", "TV Shows", "ACTIVE")
    ]
    assert await found(kind="movie", limit=2, offset=1) == [
        ("a_b", "Movies", "ACTIVE"),
        ("Back\\slash", "Movies", "ACTIVE"),
    ]
    assert await found("%") == [("100% Pure", "Movies", "ACTIVE")]
    assert await found("twin", 2003) == [("Twin", "Movies", "ACTIVE")]
    assert await found(library="nowhere") == []
    with pytest.raises(ValueError, match="limit"):
        await catalog.call(CatalogStore.find_items, "x", limit=0)


# --- where did it go --------------------------------------------------------------------------


def folders_server() -> EmuServer:
    server = new_server(GAMMA, "Gamma")
    server.add_movie("1", "Film", 2001)
    server.add_movie("1", "Other", 2002)
    server.add_movie("1", "Stray", 2003, file="/elsewhere/stray/Stray.mkv")
    naruto = add_show(server, "Naruto", "/data/tv/Anime/Naruto", (3, 3))
    season = server.item(naruto.children[0])
    first = server.add_episode(
        season.rating_key,
        4,
        "Double",
        file="/data/tv/Anime/Naruto/Season 01/Naruto - S01E04-E05.mkv",
    )
    server.add_episode(season.rating_key, 5, "Double", part=first.media[0].parts[0])
    add_show(server, "Bleach", "/data/tv/Anime/Bleach", (3,))
    add_show(server, "Dexter", "/data/tv/Drama/Dexter", (2,))
    add_show(server, "Lost", "/data/tv/Drama/Lost", (3, 2))
    server.add_section("show", "Archive", ["/mnt/archive"], key="3")
    add_show(server, "Akira", "/mnt/archive/Akira", (2,), section="3")
    return server


def _files(items: list[EmuItem]) -> dict[str, int]:
    return {part.file: part.size for item in items for media in item.media for part in media.parts}


async def test_missing_folders_group_what_went_together(serve: Serve, catalog: Catalog) -> None:
    server = folders_server()
    client = await serve(server)
    clock = Clock()
    await sync(client, catalog, clock)
    naruto = episodes(server, _show(server, "Naruto"))
    bleach = episodes(server, _show(server, "Bleach"))
    lost = _show(server, "Lost")
    lost_season_1 = episodes(server, server.item(lost.children[0]))
    lost_season_2 = episodes(server, server.item(lost.children[1]))
    akira = episodes(server, _show(server, "Akira"))
    film = _files([_movie(server, "Film")])

    server.remove_item(_show(server, "Naruto").rating_key)
    clock.now = T0 + 100
    await sync(client, catalog, clock)
    server.remove_item(_show(server, "Bleach").rating_key)
    server.remove_item(lost.children[0])
    server.remove_item(lost_season_2[0].rating_key)
    server.remove_item(_show(server, "Akira").rating_key)
    for title in ("Film", "Stray"):
        server.remove_item(_movie(server, title).rating_key)
    clock.now = T0 + 200
    summaries = await sync(client, catalog, clock)
    ids = await library_ids(catalog)

    folders = await catalog.call(browse.missing_folders)

    anime = _files(naruto + bleach)
    assert folders[0] == MissingFolder(
        path="/data/tv/Anime",
        machine_identifier=GAMMA,
        server="Gamma",
        library_id=ids[("Gamma", "TV Shows")],
        library="TV Shows",
        items=len(naruto) + len(bleach),
        files=len(anime),
        size=sum(anime.values()),
        since=T0 + 100,
        until=T0 + 200,
        sample_titles=(
            "Bleach \u2013 S01E01 \u2013 Episode 1",
            "Bleach \u2013 S01E02 \u2013 Episode 2",
            "Bleach \u2013 S01E03 \u2013 Episode 3",
            "Naruto \u2013 S01E01 \u2013 Episode 1",
            "Naruto \u2013 S01E02 \u2013 Episode 2",
        ),
    )
    assert len(naruto) == 8
    assert len(anime) == 10  # the two-episode file counts once
    assert [(f.path, f.items, f.library) for f in folders] == [
        ("/data/tv/Anime", 11, "TV Shows"),
        ("/data/tv/Drama/Lost/Season 01", 3, "TV Shows"),
        ("/mnt/archive", 2, "Archive"),
        ("/data/movies/Film (2001)", 1, "Movies"),
        ("/data/tv/Drama/Lost/Season 02", 1, "TV Shows"),
        ("/elsewhere", 1, "Movies"),
    ]
    assert (folders[3].sample_titles, folders[3].files, folders[3].size) == (
        ("Film (2001)",),
        1,
        sum(film.values()),
    )
    assert (len(lost_season_1), len(akira)) == (3, 2)

    # The run that lost Bleach: its items only, grouped the same way.
    tv_run = next(s.run_id for s in summaries if s.library_key == "2")
    in_run = await catalog.call(browse.missing_folders, run_id=tv_run)
    assert [(f.path, f.items, f.since, f.until) for f in in_run] == [
        ("/data/tv/Anime", 3, T0 + 200, T0 + 200),
        ("/data/tv/Drama/Lost/Season 01", 3, T0 + 200, T0 + 200),
        ("/data/tv/Drama/Lost/Season 02", 1, T0 + 200, T0 + 200),
    ]
    movies_only = await catalog.call(
        browse.missing_folders, library_ids=(ids[("Gamma", "Movies")],), limit=1
    )
    assert [f.path for f in movies_only] == ["/data/movies/Film (2001)"]
    assert await catalog.call(browse.missing_folders, machine_identifier=ALPHA) == ()
    with pytest.raises(ValueError, match="limit"):
        await catalog.call(browse.missing_folders, limit=0)


async def test_missing_folders_side_by_side_are_told_as_one(serve: Serve, catalog: Catalog) -> None:
    """Three or more folders gone from one folder that still holds files: one group there."""
    server = new_server(GAMMA, "Gamma")
    for year, title in enumerate(("A", "B", "C", "D", "E", "F"), start=2001):
        server.add_movie("1", title, year)
    add_show(server, "Lost", "/data/tv/Lost", (2, 2, 2))
    client = await serve(server)
    clock = Clock()
    await sync(client, catalog, clock)
    lost = _show(server, "Lost")
    for title in ("A", "B", "C", "D"):
        server.remove_item(_movie(server, title).rating_key)
    # Two seasons of six: two groups, not merged (fewer than MERGE_SIBLINGS).
    for season in lost.children[:2]:
        server.remove_item(season)
    clock.now = T0 + 100
    await sync(client, catalog, clock)

    folders = await catalog.call(browse.missing_folders)

    assert [(f.path, f.items, f.files, f.folders) for f in folders] == [
        ("/data/movies", 4, 4, 4),
        ("/data/tv/Lost/Season 01", 2, 2, 1),
        ("/data/tv/Lost/Season 02", 2, 2, 1),
    ]
    assert folders[0].sample_titles == ("A (2001)", "B (2002)", "C (2003)", "D (2004)")
    assert browse.MERGE_SIBLINGS == 3


async def test_a_backslash_is_part_of_a_posix_name(serve: Serve, catalog: Catalog) -> None:
    server = new_server(GAMMA, "Gamma")
    server.add_movie("1", "AC/DC", 1990, file="/data/movies/AC\\DC.mkv")
    server.add_movie("1", "AC", 1991, file="/data/movies/AC/AC.mkv")
    server.add_movie("1", "Kept", 1992)
    client = await serve(server)
    clock = Clock()
    await sync(client, catalog, clock)
    for title in ("AC/DC", "AC"):
        server.remove_item(_movie(server, title).rating_key)
    clock.now += 60
    await sync(client, catalog, clock)

    folders = await catalog.call(browse.missing_folders)

    assert [(f.path, f.sample_titles) for f in folders] == [
        ("/data/movies", ("AC/DC (1990)",)),
        ("/data/movies/AC", ("AC (1991)",)),
    ]


def windows_server() -> EmuServer:
    server = EmuServer(machine_identifier=BETA, friendly_name="Windows", token=TOKEN)
    server.add_section("movie", "Movies", ["d:\\media\\movies"], key="1")
    server.add_section("show", "TV Shows", ["\\\\nas\\tv"], key="2")
    server.add_movie("1", "Film", 2001, file="D:\\Media\\Movies\\Film (2001)\\Film (2001).mkv")
    server.add_movie("1", "Keep", 2002, file="D:\\Media\\Movies\\Keep (2002)\\Keep.mkv")
    server.add_movie("1", "Loose", 2003, file="D:\\Media\\Movies\\Loose.mkv")
    server.add_movie("1", "Outside", 2004, file="E:/Other/Outside/Outside.mkv")
    add_show(server, "Naruto", "\\\\nas\\tv\\Anime\\Naruto", (2, 2), sep="\\")
    add_show(server, "Dexter", "\\\\NAS\\tv\\Drama\\Dexter", (2,), sep="\\")
    # Paths no folder can be told from: not placed.
    server.add_movie("1", "Lonely", 2005, file="\\\\lonely")
    server.add_movie("1", "Relative", 2006, file="relative/Relative.mkv")
    server.add_movie("1", "Root", 2007, file="/")
    return server


async def test_missing_folders_of_windows_paths(serve: Serve, catalog: Catalog) -> None:
    server = windows_server()
    client = await serve(server)
    clock = Clock()
    await sync(client, catalog, clock)
    for title in ("Film", "Loose", "Outside", "Lonely", "Relative", "Root"):
        server.remove_item(_movie(server, title).rating_key)
    server.remove_item(_show(server, "Naruto").rating_key)
    clock.now += 60
    await sync(client, catalog, clock)

    folders = await catalog.call(browse.missing_folders)

    assert [(f.path, f.items, f.files) for f in folders] == [
        ("\\\\nas\\tv\\Anime", 4, 4),
        ("D:\\Media\\Movies", 1, 1),
        ("D:\\Media\\Movies\\Film (2001)", 1, 1),
        ("E:/Other", 1, 1),
    ]
    missing = await everything(catalog, ItemQuery(states=("MISSING",), kinds=("movie",)))
    assert len(missing) == 6


# --- duplicates -----------------------------------------------------------------------------


async def test_duplicates_link_items_by_any_shared_id(serve: Serve, catalog: Catalog) -> None:
    alpha = new_server(ALPHA, "Alpha")
    alpha.add_movie("1", "The Matrix", 1999, guids=("imdb://tt0133093", "tmdb://603"))
    alpha.add_movie("1", "Matrix Copy", 1999, guids=("imdb://tt0133093",))
    alpha.add_movie("1", "Heat", 1995, guids=("imdb://tt0113277",))
    alpha.add_movie("1", "Alien", 1979, guids=("imdb://tt0078748",))
    gone = alpha.add_movie("1", "Alien Again", 1979, guids=("imdb://tt0078748",))
    alpha.add_movie("1", "Unique", 1980, guids=("imdb://tt0000001",))
    alpha.add_show("2", "Dark", 2017, guids=("tvdb://334824",))
    # A chain: each shares one id with the next, so all four are one group.
    alpha.add_movie("1", "Chain D", 2000, guids=("tvdb://9000003",))
    alpha.add_movie("1", "Chain C", 2000, guids=("tmdb://9000002", "tvdb://9000003"))
    alpha.add_movie("1", "Chain B", 2000, guids=("imdb://tt9000001", "tmdb://9000002"))
    alpha.add_movie("1", "Chain A", 2000, guids=("imdb://tt9000001",))
    beta = new_server(BETA, "Beta")
    beta.add_movie("1", "Matrix", 1999, guids=("tmdb://603",))
    beta.add_movie("1", "Heat", 1995, guids=("imdb://tt0113277",))
    beta.add_movie("1", "Solo", 2018, guids=("imdb://tt3778644",))
    beta.add_movie("1", "Solo (Extended)", 2018, guids=("imdb://tt3778644",))
    beta.add_show("2", "Dark", 2017, guids=("tvdb://334824",))
    # A movie sharing a show's id is not the same title.
    beta.add_movie("1", "Dark Movie", 2017, guids=("tvdb://334824",))
    # An old agent's episode guids carry the show's id and their own season/episode: the
    # episodes share a (provider, value) but no uri, so they are no duplicates.
    legacy = beta.add_show("2", "Legacy", 2005, guid="com.plexapp.agents.thetvdb://78874?lang=en")
    legacy_season = beta.add_season(legacy.rating_key, 1)
    for number in (1, 2):
        beta.add_episode(
            legacy_season.rating_key,
            number,
            f"Old {number}",
            guid=f"com.plexapp.agents.thetvdb://78874/1/{number}?lang=en",
        )
    alpha_client, beta_client = await serve(alpha), await serve(beta)
    clock = Clock()
    await sync(alpha_client, catalog, clock)
    await sync(beta_client, catalog, clock)
    alpha.remove_item(gone.rating_key)
    clock.now += 60
    await sync(alpha_client, catalog, clock)

    async def groups(**kwargs: Any) -> list[tuple[str, str, tuple[str, ...], int, int]]:
        page = await catalog.call(browse.duplicates, **kwargs)
        assert page.total >= len(page.groups)
        return [(g.kind, g.title, g.ids, g.servers, len(g.items)) for g in page.groups]

    chain = ("movie", "Chain A", ("imdb://tt9000001", "tmdb://9000002", "tvdb://9000003"), 1, 4)
    everything_found = [
        chain,
        ("show", "Dark", ("tvdb://334824",), 2, 2),
        ("movie", "Heat", ("imdb://tt0113277",), 2, 2),
        ("movie", "Matrix Copy", ("imdb://tt0133093", "tmdb://603"), 2, 3),
        ("movie", "Solo", ("imdb://tt3778644",), 1, 2),
    ]
    assert await groups() == everything_found
    assert await groups(scope="within") == [chain, *everything_found[3:]]
    assert await groups(scope="across") == everything_found[1:4]
    assert await groups(kinds=("show",)) == [everything_found[1]]
    assert await groups(machine_identifier=ALPHA) == everything_found[:4]
    assert await groups(machine_identifier="no-such-server") == []
    assert await groups(kinds=("episode",)) == []
    assert await groups(offset=5) == []
    page = await catalog.call(browse.duplicates, offset=2, limit=2)
    assert page.total == 5
    assert [g.title for g in page.groups] == ["Heat", "Matrix Copy"]

    matrix = page.groups[1]
    assert [(i.server, i.title, i.library) for i in matrix.items] == [
        ("Alpha", "Matrix Copy", "Movies"),
        ("Alpha", "The Matrix", "Movies"),
        ("Beta", "Matrix", "Movies"),
    ]
    first = matrix.items[0]
    movie = _movie(alpha, "Matrix Copy")
    part = movie.media[0].parts[0]
    assert (first.machine_identifier, first.rating_key, first.year, first.state) == (
        ALPHA,
        str(movie.rating_key),
        1999,
        "ACTIVE",
    )
    assert (first.size, first.plex_path, first.video_resolution) == (part.size, part.file, "1080")
    dark = (await catalog.call(browse.duplicates, kinds=("show",))).groups[0]
    assert [(i.server, i.size, i.plex_path) for i in dark.items] == [
        ("Alpha", None, None),
        ("Beta", None, None),
    ]


@pytest.mark.parametrize(
    "bad", [{"scope": "everywhere"}, {"kinds": ("trailer",)}, {"limit": 0}, {"offset": -1}]
)
async def test_bad_duplicate_queries_are_refused(catalog: Catalog, bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"scope|kinds|limit|offset"):
        await catalog.call(browse.duplicates, **bad)


# --- migration ------------------------------------------------------------------------------


async def test_a_populated_version_7_catalog_migrates(serve: Serve, tmp_path: Path) -> None:
    path = tmp_path / "v7.db"
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="retrovue_catalog")
    loop = asyncio.get_running_loop()
    store = await loop.run_in_executor(
        executor, functools.partial(CatalogStore, path, migrate_to=7)
    )
    old = Catalog(store, executor)
    server = alpha_server()
    client = await serve(server)
    clock = Clock()
    await sync(client, old, clock)
    server.remove_item(_movie(server, "Heat").rating_key)
    clock.now = T0 + 100
    await sync(client, old, clock)
    assert await on_catalog_thread(old, lambda s: s.schema_version) == 7
    tables = await rows(old, "SELECT name FROM sqlite_master WHERE type = 'table'")
    assert ("item_history",) not in tables
    await old.close()

    catalog = await Catalog.open(path)
    try:
        assert await on_catalog_thread(catalog, lambda s: (s.migrated_from, s.schema_version)) == (
            7,
            8,
        )
        names = {
            str(name)
            for (name,) in await rows(
                catalog,
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'index', 'trigger')",
            )
        }
        assert {"item_history", "item_history_item", "items_state_history"} <= names
        heat = await everything(catalog, ItemQuery(search="Heat"))
        assert [(row.state, row.since) for row in heat] == [("MISSING", T0 + 100)]
        detail = await catalog.call(browse.item_detail, heat[0].id)
        assert detail is not None
        assert detail.history == ()
        overview = await catalog.call(browse.libraries_overview)
        assert [(lib.title, lib.counts.shows, lib.counts.missing) for lib in overview] == [
            ("Movies", 0, 1),
            ("TV Shows", 2, 0),
        ]
        # Changes after the migration are recorded.
        server.remove_item(_movie(server, "Twin").rating_key)
        clock.now = T0 + 200
        await sync(client, catalog, clock)
        assert await rows(catalog, "SELECT state, previous, at FROM item_history") == [
            ("MISSING", "ACTIVE", T0 + 200)
        ]
        assert await catalog.call(CatalogStore.invariant_violations) == []
    finally:
        await catalog.close()
