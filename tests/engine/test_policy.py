"""The sync's decisions, table by table, and how a run reports them."""

from __future__ import annotations

import logging
import random
from typing import Any

import pytest

from custom_components.retrovue.engine.paths import PathMapper, PathMapping
from custom_components.retrovue.engine.plex import PlexClient
from custom_components.retrovue.engine.plex.models import ItemKind
from custom_components.retrovue.engine.policy import (
    FULL_LISTING_MAX_AGE,
    UPDATED_SINCE_MARGIN,
    ExpandReason,
    Fetch,
    MissingCheck,
    MovieListing,
    Unseen,
    drifted,
    expansion_fetch,
    expansion_reason,
    expired,
    gone_by_lookup,
    item_state,
    judged,
    library_mappings,
    light_listing_holds,
    light_window_start,
    missing_check,
    movie_listing,
    next_state,
    saw_every_present_item,
    uncovered_folders,
    watched,
)
from custom_components.retrovue.engine.states import GONE_STATES, PRESENT_STATES, ItemState
from custom_components.retrovue.engine.store import Catalog, CatalogStore
from custom_components.retrovue.engine.sync import prepare_server, sync_library
from tests.catalog_probe import on_catalog_thread
from tests.emulator import EmuServer

from .helpers import sync_all


@pytest.mark.parametrize(
    ("deep", "stored", "hydrated", "content_changed", "expected"),
    [
        (False, None, False, True, ExpandReason.NEW),
        (True, None, False, True, ExpandReason.NEW),
        (False, "MISSING", True, False, ExpandReason.CAME_BACK),
        (False, "DELETED", False, True, ExpandReason.CAME_BACK),
        (False, "ACTIVE", True, True, ExpandReason.CONTENT_CHANGED),
        (True, "ACTIVE", False, True, ExpandReason.CONTENT_CHANGED),
        (False, "ACTIVE", False, False, ExpandReason.NEVER_HYDRATED),
        (True, "ACTIVE", False, False, ExpandReason.NEVER_HYDRATED),
        (True, "ACTIVE", True, False, ExpandReason.DEEP),
        (True, "REMOTE_ONLY", True, False, ExpandReason.DEEP),
        (False, "ACTIVE", True, False, None),
        (False, "UNAVAILABLE", True, False, None),
    ],
)
def test_why_a_show_is_expanded(
    deep: bool,
    stored: str | None,
    hydrated: bool,
    content_changed: bool,
    expected: ExpandReason | None,
) -> None:
    assert (
        expansion_reason(
            deep=deep, stored_state=stored, hydrated=hydrated, content_changed=content_changed
        )
        is expected
    )


async def test_a_run_logs_and_counts_why_it_expanded_each_show(
    emu_server: EmuServer,
    client: PlexClient,
    catalog: Catalog,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, summaries = await sync_all(client, catalog)
    shows = [item for item in emu_server.items.values() if item.type == "show"]
    assert summaries[1].expanded == {"new": len(shows)}

    emu_server.change_item(shows[0].rating_key, title="Retitled")
    server = await prepare_server(client, catalog)
    with caplog.at_level(logging.DEBUG, logger="custom_components.retrovue.engine.sync"):
        summary = await sync_library(client, catalog, server, "2")
    assert summary.expanded == {"content_changed": 1}
    assert summary.as_dict()["expanded"] == {"content_changed": 1}
    assert f"expanding Retitled [ratingKey {shows[0].rating_key}]: content_changed" in caplog.text

    summary = await sync_library(client, catalog, server, "2", deep=True)
    assert summary.expanded == {"deep": len(shows)}
    summary = await sync_library(client, catalog, server, "2")
    assert summary.expanded == {}


@pytest.mark.parametrize(
    ("light_since", "newest_stored", "expected"),
    [
        (10_000, 50_000, 10_000 - UPDATED_SINCE_MARGIN),  # the server's clock wins
        (None, 50_000, 50_000 - UPDATED_SINCE_MARGIN),  # never recorded: the stored newest
        (None, None, None),  # nothing stored: no window (a full listing)
        (100, None, 0),  # never before the epoch
    ],
)
def test_where_a_light_run_starts_listing(
    light_since: int | None, newest_stored: int | None, expected: int | None
) -> None:
    assert light_window_start(light_since, newest_stored) == expected


async def test_light_runs_stay_flat_after_a_bulk_metadata_refresh(
    emu_server: EmuServer, client: PlexClient, catalog: Catalog
) -> None:
    """Every item shares one recent updatedAt (as after "refresh all metadata")."""
    start = emu_server.now()
    emu_server.clock = lambda: start
    await sync_all(client, catalog)
    for item in list(emu_server.items.values()):
        emu_server.change_item(item.rating_key, updated_at=start)
    emu_server.clock = lambda: start + 60
    _, first = await sync_all(client, catalog)  # lists what the refresh touched
    assert sum(summary.processed for summary in first) > 0
    # The next run still lists them (its window opens a margin before the last run began);
    # from then on the window starts past them, and light runs list nothing again.
    emu_server.clock = lambda: start + 2 * UPDATED_SINCE_MARGIN
    _, second = await sync_all(client, catalog)
    emu_server.clock = lambda: start + 4 * UPDATED_SINCE_MARGIN
    _, third = await sync_all(client, catalog)
    emu_server.clock = lambda: start + 6 * UPDATED_SINCE_MARGIN
    _, fourth = await sync_all(client, catalog)
    for later in (third, fourth):
        assert [summary.processed for summary in later] == [0, len(_shows(emu_server))]
    assert [summary.requests for summary in fourth] == [summary.requests for summary in third]
    assert sum(s.requests for s in third) < sum(s.requests for s in second)
    assert all(summary.changed == 0 for summary in (*second, *third, *fourth))


def _shows(server: EmuServer) -> list[str]:
    return [str(item.rating_key) for item in server.items.values() if item.type == "show"]


_MAPPED = PathMapper([PathMapping("/data/movies", "/mnt/movies")])
_UNMAPPED = PathMapper([])


@pytest.mark.parametrize(
    ("kind", "files", "mapper", "expected"),
    [
        (ItemKind.SHOW, [], _MAPPED, ItemState.ACTIVE),  # shows and seasons have no files
        (ItemKind.SEASON, [], _MAPPED, ItemState.ACTIVE),
        (ItemKind.MOVIE, [], _UNMAPPED, ItemState.UNAVAILABLE),
        (ItemKind.EPISODE, [], _MAPPED, ItemState.UNAVAILABLE),
        (ItemKind.MOVIE, ["/data/movies/a.mkv"], _MAPPED, ItemState.ACTIVE),
        (ItemKind.MOVIE, ["/data/tv/a.mkv"], _MAPPED, ItemState.REMOTE_ONLY),
        (ItemKind.MOVIE, ["/data/tv/a.mkv", "/data/movies/b.mkv"], _MAPPED, ItemState.ACTIVE),
        # A library no mapping covers is judged without mappings: reachability not claimed.
        (ItemKind.EPISODE, ["/data/tv/a.mkv"], _UNMAPPED, ItemState.ACTIVE),
        (ItemKind.MOVIE, ["/data/movies/../tv/a.mkv"], _MAPPED, ItemState.REMOTE_ONLY),
    ],
)
def test_the_state_of_a_listed_item(
    kind: ItemKind, files: list[str], mapper: PathMapper, expected: ItemState
) -> None:
    assert item_state(kind, files, mapper) is expected


_MOVIES_MAP = PathMapping("/data/movies", "/mnt/movies")
_ANIME_MAP = PathMapping("/data/tv/Anime", "/mnt/anime")
_DATA_MAP = PathMapping("/data", "/mnt/data")
_ARCHIVE_MAP = PathMapping("/archive", "/mnt/archive")


@pytest.mark.parametrize(
    ("locations", "mappings", "expected"),
    [
        (["/data/movies"], [], ()),
        (["/data/movies"], [_MOVIES_MAP], (_MOVIES_MAP,)),  # the folder itself
        (["/data/movies"], [_DATA_MAP], (_DATA_MAP,)),  # a folder above
        (["/data/tv"], [_ANIME_MAP], (_ANIME_MAP,)),  # a folder inside: mapped in part
        (["/data/tv"], [_MOVIES_MAP], ()),  # another library's folder: not mapped
        (["/data/tv"], [_MOVIES_MAP, _ARCHIVE_MAP], ()),
        # One covered folder maps the library, with every mapping of the server.
        (["/data/tv", "/archive/tv"], [_MOVIES_MAP, _ARCHIVE_MAP], (_MOVIES_MAP, _ARCHIVE_MAP)),
        ([], [PathMapping("/", "/mnt")], ()),  # no known folder: not mapped
        (["D:\\TV"], [PathMapping("d:/tv/", "/mnt/tv")], (PathMapping("d:/tv/", "/mnt/tv"),)),
        (["/data/tv2"], [PathMapping("/data/tv", "/mnt/tv")], ()),  # whole names only
    ],
)
def test_the_mappings_of_a_library(
    locations: list[str], mappings: list[PathMapping], expected: tuple[PathMapping, ...]
) -> None:
    assert library_mappings(locations, mappings) == expected


@pytest.mark.parametrize(
    ("locations", "mappings", "expected"),
    [
        (["/data/tv"], [], ["/data/tv"]),
        (["/data/tv"], [_ANIME_MAP], ["/data/tv"]),  # mapped in part only
        (["/data/tv"], [_DATA_MAP], []),
        (["/data/tv", "/archive/tv"], [_ARCHIVE_MAP], ["/data/tv"]),
        (["/data/tv", "/archive/tv"], [_MOVIES_MAP], ["/data/tv", "/archive/tv"]),
        ([], [_DATA_MAP], []),
    ],
)
def test_the_folders_a_repair_names(
    locations: list[str], mappings: list[PathMapping], expected: list[str]
) -> None:
    assert uncovered_folders(locations, mappings) == expected


@pytest.mark.parametrize(
    ("hydrated", "leaf_count", "episodes", "expected"),
    [
        (True, 10, 10, False),
        (True, 10, 9, True),  # one fewer stored
        (True, None, 0, False),  # no leafCount: zero episodes expected
        (True, None, 2, True),
        (False, 10, 3, False),  # never hydrated: expanded for that reason instead
    ],
)
def test_when_a_show_has_drifted(
    hydrated: bool, leaf_count: int | None, episodes: int, expected: bool
) -> None:
    assert drifted(hydrated=hydrated, leaf_count=leaf_count, present_episodes=episodes) is expected


@pytest.mark.parametrize(
    ("expand", "seasons", "episodes", "expected"),
    [
        ([(2, 20)], 1_000, 20_000, Fetch.PER_SHOW),  # one show of a large library
        ([(2, 20)] * 400, 1_000, 10_000, Fetch.SECTION),  # most shows (a cold or deep run)
        ([(1, 1)], 1, 1, Fetch.PER_SHOW),  # a tie goes to per show
        ([], 10, 100, Fetch.PER_SHOW),
    ],
)
def test_how_expansions_are_fetched(
    expand: list[tuple[int, int]], seasons: int, episodes: int, expected: Fetch
) -> None:
    assert expansion_fetch(expand, seasons=seasons, episodes=episodes, page_size=200) is expected


_NOW = 1_800_000_000


@pytest.mark.parametrize(
    ("deep", "last_full", "window", "expected"),
    [
        (True, _NOW - 60, 5, MovieListing.DEEP),
        (False, _NOW - 60, None, MovieListing.NO_WINDOW),
        (False, None, 5, MovieListing.DUE),
        (False, _NOW - FULL_LISTING_MAX_AGE, 5, MovieListing.DUE),
        (False, _NOW - FULL_LISTING_MAX_AGE + 1, 5, MovieListing.LIGHT),
        (False, _NOW - 60, 0, MovieListing.LIGHT),  # a window at the epoch is still a window
    ],
)
def test_how_a_movie_library_is_listed(
    deep: bool, last_full: int | None, window: int | None, expected: MovieListing
) -> None:
    assert (
        movie_listing(deep=deep, now=_NOW, last_full_listing_at=last_full, window=window)
        is expected
    )


@pytest.mark.parametrize(
    ("on_server", "in_catalog", "expected"),
    [(10, 10, True), (11, 10, False), (9, 10, False), (None, 10, False)],
)
def test_when_a_light_movie_listing_stands_for_a_full_one(
    on_server: int | None, in_catalog: int, expected: bool
) -> None:
    assert light_listing_holds(on_server=on_server, in_catalog=in_catalog) is expected


@pytest.mark.parametrize(
    ("complete", "full_listing", "all_seen", "expected"),
    [
        (False, True, False, MissingCheck.INCOMPLETE),
        (False, False, True, MissingCheck.INCOMPLETE),
        (True, False, False, MissingCheck.LIGHT),
        (True, True, True, MissingCheck.ALL_SEEN),
        (True, True, False, MissingCheck.CONFIRM),
    ],
)
def test_whether_a_run_may_mark_missing(
    complete: bool, full_listing: bool, all_seen: bool, expected: MissingCheck
) -> None:
    assert (
        missing_check(complete=complete, full_listing=full_listing, all_seen=all_seen) is expected
    )


@pytest.mark.parametrize(
    ("whole_library", "errors", "present", "seen", "expected"),
    [
        (True, 0, 10, 10, True),
        (True, 0, 11, 10, False),  # one present item not seen
        (True, 1, 10, 10, False),  # a bad entry: the counts prove nothing
        (False, 0, 10, 10, False),  # only part of the library listed
        (True, 0, None, 10, False),
    ],
)
def test_when_counts_prove_every_item_was_seen(
    whole_library: bool, errors: int, present: int | None, seen: int, expected: bool
) -> None:
    assert (
        saw_every_present_item(
            whole_library=whole_library, errors=errors, present=present, seen=seen
        )
        is expected
    )


@pytest.mark.parametrize(
    ("unseen", "expected"),
    [
        (Unseen(ItemKind.MOVIE), True),
        (Unseen(ItemKind.SHOW), True),
        (Unseen(ItemKind.SHOW, child_seen=True), False),  # a child proves it is there
        (Unseen(ItemKind.SEASON), False),  # its show was not expanded: not judged
        (Unseen(ItemKind.EPISODE), False),
        (Unseen(ItemKind.EPISODE, show_expanded=True), True),
        (Unseen(ItemKind.EPISODE, show_gone=True), True),
        (Unseen(ItemKind.SEASON, show_expanded=True), True),
        (Unseen(ItemKind.SEASON, show_expanded=True, child_seen=True), False),
    ],
)
def test_which_unseen_items_are_judged(unseen: Unseen, expected: bool) -> None:
    assert judged(unseen) is expected


@pytest.mark.parametrize(
    ("state", "since", "retention", "expected"),
    [
        ("MISSING", _NOW - 100, 100, True),
        ("MISSING", _NOW - 99, 100, False),
        ("MISSING", None, 0, False),
        ("ACTIVE", _NOW - 1_000, 100, False),
        ("DELETED", _NOW - 1_000, 100, False),
    ],
)
def test_when_missing_becomes_deleted(
    state: str, since: int | None, retention: int, expected: bool
) -> None:
    assert (
        expired(state=state, missing_since=since, now=_NOW, retention_seconds=retention) is expected
    )


_GONE_MOVIE = Unseen(ItemKind.MOVIE)


@pytest.mark.parametrize(
    ("stored", "listed", "check", "unseen", "plex_knows", "since", "retention", "expected"),
    [
        # Listed: present, whatever it was.
        (None, ItemState.ACTIVE, MissingCheck.CONFIRM, None, True, None, 0, "ACTIVE"),
        ("MISSING", ItemState.ACTIVE, MissingCheck.LIGHT, None, True, 1, 0, "ACTIVE"),
        ("DELETED", ItemState.REMOTE_ONLY, MissingCheck.ALL_SEEN, None, True, 1, 0, "REMOTE_ONLY"),
        ("ACTIVE", ItemState.UNAVAILABLE, MissingCheck.CONFIRM, None, True, None, 0, "UNAVAILABLE"),
        # Not listed: MISSING only when the run may mark, judged it, and Plex confirms.
        ("ACTIVE", None, MissingCheck.CONFIRM, _GONE_MOVIE, False, None, 99, "MISSING"),
        ("ACTIVE", None, MissingCheck.CONFIRM, _GONE_MOVIE, True, None, 99, "ACTIVE"),
        ("ACTIVE", None, MissingCheck.LIGHT, _GONE_MOVIE, False, None, 99, "ACTIVE"),
        ("ACTIVE", None, MissingCheck.INCOMPLETE, _GONE_MOVIE, False, None, 99, "ACTIVE"),
        ("ACTIVE", None, MissingCheck.CONFIRM, Unseen(ItemKind.EPISODE), False, None, 99, "ACTIVE"),
        ("ACTIVE", None, MissingCheck.CONFIRM, _GONE_MOVIE, False, None, 0, "DELETED"),
        # Already gone: DELETED after the retention, by any finished run.
        ("MISSING", None, MissingCheck.LIGHT, None, False, _NOW - 50, 50, "DELETED"),
        ("MISSING", None, MissingCheck.LIGHT, None, False, _NOW - 49, 50, "MISSING"),
        ("DELETED", None, MissingCheck.CONFIRM, _GONE_MOVIE, False, _NOW - 50, 1, "DELETED"),
        (None, None, MissingCheck.CONFIRM, None, False, None, 0, None),
    ],
)
def test_the_life_of_an_item(
    stored: str | None,
    listed: ItemState | None,
    check: MissingCheck,
    unseen: Unseen | None,
    plex_knows: bool,
    since: int | None,
    retention: int,
    expected: str | None,
) -> None:
    assert (
        next_state(
            stored,
            listed_as=listed,
            check=check,
            unseen=unseen,
            plex_knows=plex_knows,
            missing_since=since,
            now=_NOW,
            retention_seconds=retention,
        )
        == expected
    )


def _finalize_probe(
    store: CatalogStore,
    library_id: int,
    gone: dict[str, str],
    seen: set[str],
    expanded: set[str],
) -> tuple[list[tuple[Any, ...]], dict[str, str]]:
    """Apply `finalize_library` to a catalog whose items `gone` names were gone; undo it."""
    conn = store.conn
    conn.execute("SAVEPOINT probe")
    try:
        conn.executemany(
            "UPDATE items SET state = ?, missing_since = 1 WHERE rating_key = ? AND library_id = ?",
            [(state, key, library_id) for key, state in gone.items()],
        )
        before = [
            tuple(row)
            for row in conn.execute(
                "SELECT rating_key, kind, show_key, parent_rating_key, state FROM items "
                "WHERE library_id = ?",
                (library_id,),
            )
        ]
        store.finalize_library(library_id, seen, expanded, _NOW, 10**9, 0)
        after = dict(
            conn.execute(
                "SELECT rating_key, state FROM items WHERE library_id = ?", (library_id,)
            ).fetchall()
        )
    finally:
        conn.execute("ROLLBACK TO probe")
        conn.execute("RELEASE probe")
    return before, after


def _marked_by_policy(
    before: list[tuple[Any, ...]], seen: set[str], expanded: set[str]
) -> set[str]:
    """Return what `policy.judged` marks MISSING (Plex confirming every judged item gone)."""
    items = {
        key: (ItemKind(kind), show, parent, state) for key, kind, show, parent, state in before
    }
    marked: set[str] = set()
    for key, (kind, _, _, state) in items.items():
        if kind in (ItemKind.MOVIE, ItemKind.SHOW) and state in PRESENT_STATES and key not in seen:
            child_seen = any(c[1] == key and c_key in seen for c_key, c in items.items())
            if judged(Unseen(kind, child_seen=child_seen)):
                marked.add(key)
    for key, (kind, show, _, state) in items.items():
        if kind not in (ItemKind.SEASON, ItemKind.EPISODE):
            continue
        if state not in PRESENT_STATES or key in seen:
            continue
        show_row = items.get(show) if show is not None else None
        show_gone = show is None or (
            show_row is not None and (show_row[3] in GONE_STATES or show in marked)
        )
        child_seen = kind is ItemKind.SEASON and any(
            c[0] is ItemKind.EPISODE and c[1] == show and c[2] == key and c_key in seen
            for c_key, c in items.items()
        )
        unseen = Unseen(
            kind, show_expanded=show in expanded, show_gone=show_gone, child_seen=child_seen
        )
        if judged(unseen):
            marked.add(key)
    return marked


@pytest.mark.parametrize("fmt", ["json"])
async def test_the_store_marks_missing_exactly_as_the_policy_judges(
    emu_server: EmuServer, client: PlexClient, catalog: Catalog
) -> None:
    """`CatalogStore.finalize_library` (SQL) agrees with `policy.judged` on 150 random runs."""
    server, _ = await sync_all(client, catalog)
    libraries = await catalog.call(CatalogStore.libraries, server.server_id)
    rng = random.Random(15)
    keys = {
        lib.id: [
            str(k) for k in emu_server.items if emu_server.items[k].section_key == lib.section_key
        ]
        for lib in libraries
    }
    shows = [str(i.rating_key) for i in emu_server.items.values() if i.type == "show"]
    assert shows
    assert all(keys.values())
    marked_any = 0
    for _ in range(150):
        library = rng.choice(libraries)
        pool = keys[library.id]
        seen = set(rng.sample(pool, rng.randint(0, len(pool))))
        expanded = set(rng.sample(shows, rng.randint(0, len(shows))))
        gone = {key: rng.choice(GONE_STATES) for key in rng.sample(pool, rng.randint(0, 4))}
        before, after = await on_catalog_thread(
            catalog, _finalize_probe, library.id, gone, seen, expanded
        )
        by_sql = {key for key, state in after.items() if state == "MISSING"} - {
            key for key, *_, state in before if state == "MISSING"
        }
        assert by_sql == _marked_by_policy(before, seen, expanded)
        marked_any += bool(by_sql)
    assert marked_any > 50


@pytest.mark.parametrize(
    ("kind", "before", "after", "expected"),
    [
        (ItemKind.MOVIE, None, 1, True),  # Plex leaves viewCount out until the first view
        (ItemKind.EPISODE, 1, 2, True),
        (ItemKind.EPISODE, 2, 2, False),
        (ItemKind.EPISODE, 2, 0, False),  # marked unwatched: not a view
        (ItemKind.SHOW, 0, 1, False),  # shows and seasons follow their episodes
        (ItemKind.SEASON, None, 3, False),
    ],
)
def test_when_an_item_counts_as_watched(
    kind: ItemKind, before: int | None, after: int | None, expected: bool
) -> None:
    assert watched(kind, before, after) is expected


@pytest.mark.parametrize(
    ("plex_knows", "children_left", "expected"),
    [(False, 0, True), (True, 0, False), (False, 2, False), (True, 1, False)],
)
def test_when_a_reported_deletion_becomes_missing(
    plex_knows: bool, children_left: int, expected: bool
) -> None:
    assert gone_by_lookup(plex_knows=plex_knows, present_children_left=children_left) is expected
