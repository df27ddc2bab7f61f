"""Sync acceptance tests through the emulator over HTTP, in JSON and XML modes."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from custom_components.retrovue.engine.plex import PlexAuthError, PlexClient
from custom_components.retrovue.engine.store import Catalog
from custom_components.retrovue.engine.sync import (
    READ_AHEAD_PAGES,
    SyncProgress,
    prepare_server,
    sync_library,
)
from tests.catalog_probe import on_catalog_thread
from tests.emulator import EmuServer, Fault, FaultKind, PlexEmulator, generate_server

from .conftest import TOKEN
from .helpers import (
    expected_guids,
    expected_items,
    expected_parts,
    rows,
    states,
    stored_items,
    sync_all,
)

DAY = 86400


class Clock:
    """A controllable wall clock for retention tests."""

    def __init__(self, now: float = 1_800_000_000) -> None:
        self.now = now

    def __call__(self) -> float:
        """Return the current fake time."""
        return self.now


def _episode_of(server: EmuServer, show_rk: int) -> int:
    show = server.item(show_rk)
    season = server.item(next(rk for rk in show.children if server.item(rk).children))
    return season.children[0]


def _shows(server: EmuServer) -> list[int]:
    return [item.rating_key for item in server.items.values() if item.type == "show"]


async def test_cold_sync_stores_exactly_the_library(
    emu_server: EmuServer, client: PlexClient, catalog: Catalog
) -> None:
    _, summaries = await sync_all(client, catalog)
    mid = emu_server.machine_identifier

    assert [s.status for s in summaries] == ["ok", "ok"]
    assert await stored_items(catalog, mid) == expected_items(emu_server)
    parts = await rows(
        catalog,
        "SELECT i.rating_key, p.part_id, p.plex_path, p.size FROM parts p "
        "JOIN items i ON i.id = p.item_id",
    )
    assert {(str(a), str(b), str(c), int(d)) for a, b, c, d in parts} == expected_parts(emu_server)
    guids = await rows(
        catalog, "SELECT i.rating_key, g.uri FROM guids g JOIN items i ON i.id = g.item_id"
    )
    assert {(str(a), str(b)) for a, b in guids} == expected_guids(emu_server)
    # Timestamps are Plex's epoch ints.
    updated = await rows(catalog, "SELECT rating_key, updated_at_plex FROM items")
    assert {str(k): v for k, v in updated} == {
        str(item.rating_key): item.updated_at for item in emu_server.items.values()
    }
    # A cold run lists seasons and episodes section-wide: no per-show or per-item requests.
    assert client.requests["children"] == 0
    assert client.requests["all_leaves"] == 0
    assert client.requests["metadata"] == 0
    runs = await rows(catalog, "SELECT status, processed, changed FROM sync_runs")
    assert [r[0] for r in runs] == ["ok", "ok"]
    assert sum(r[2] for r in runs) == len(emu_server.items)


async def test_resync_without_changes_rewrites_nothing(
    emu_server: EmuServer, emulator: PlexEmulator, client: PlexClient, catalog: Catalog
) -> None:
    await sync_all(client, catalog)
    before = await rows(catalog, "SELECT * FROM items ORDER BY id")
    parts_before = await rows(catalog, "SELECT * FROM parts ORDER BY id")
    emulator.counters.clear()

    _, summaries = await sync_all(client, catalog)

    assert [s.status for s in summaries] == ["ok", "ok"]
    assert sum(s.changed for s in summaries) == 0
    # Every show entry matched its stored source digest: none was parsed.
    assert summaries[1].matched == len(_shows(emu_server))
    assert await rows(catalog, "SELECT * FROM items ORDER BY id") == before
    assert await rows(catalog, "SELECT * FROM parts ORDER BY id") == parts_before
    run_ids = [s.run_id for s in summaries]
    written = await rows(
        catalog, "SELECT COUNT(*) FROM items WHERE changed_run_id IN (?, ?)", *run_ids
    )
    assert written == [(0,)]
    # Only listing requests: nothing per show or per item.
    assert set(emulator.counters) <= {"root", "sections", "section_all"}


async def test_changed_episode_is_found_without_expanding_other_shows(
    emu_server: EmuServer, emulator: PlexEmulator, client: PlexClient, catalog: Catalog
) -> None:
    await sync_all(client, catalog)
    show_rk = _shows(emu_server)[1]
    episode_rk = _episode_of(emu_server, show_rk)
    changed = emu_server.change_item(episode_rk, title="A New Title — ünïcode")
    emulator.counters.clear()

    _, summaries = await sync_all(client, catalog)

    shows = summaries[1]
    assert shows.status == "ok"
    assert shows.changed == 1
    found = await rows(
        catalog,
        "SELECT title, updated_at_plex, changed_run_id FROM items WHERE rating_key = ?",
        str(episode_rk),
    )
    assert found == [("A New Title — ünïcode", changed.updated_at, shows.run_id)]
    others = await rows(
        catalog, "SELECT COUNT(*) FROM items WHERE changed_run_id = ?", shows.run_id
    )
    assert others == [(1,)]
    assert emulator.counters["children"] == 0
    assert emulator.counters["all_leaves"] == 0


async def test_added_episodes_expand_only_their_show(
    emu_server: EmuServer, emulator: PlexEmulator, client: PlexClient, catalog: Catalog
) -> None:
    await sync_all(client, catalog)
    show_rk = _shows(emu_server)[2]
    added = emu_server.add_episodes(show_rk, 2)
    emulator.counters.clear()

    _, summaries = await sync_all(client, catalog)

    assert summaries[1].status == "ok"
    assert summaries[1].expanded_shows == 1
    assert summaries[1].strategy == "per_show"
    # The show's other seasons and episodes match their stored source digests and are not
    # parsed; nor are the other shows. The recently-updated listing leaves this show's new
    # episodes and their season to its expansion (were they stored before it, the expansion
    # would find them unchanged and count them here).
    show = emu_server.item(show_rk)
    children = len(show.children) + emu_server.leaf_count(show)
    touched = {episode.parent_rk for episode in added}
    other_shows = len(_shows(emu_server)) - 1
    assert summaries[1].matched == other_shows + children - len(added) - len(touched)
    assert summaries[1].changed == len(added) + len(touched) + 1  # and the show
    # One children page and ceil(episodes / page size) allLeaves pages, for this show only.
    leaves = emu_server.leaf_count(emu_server.item(show_rk))
    assert emulator.counters["children"] == 1
    assert emulator.counters["all_leaves"] == -(-leaves // client.page_size)
    expanded = {
        r.path.split("/")[3]
        for r in emulator.requests
        if r.endpoint in ("children", "all_leaves", "metadata")
    }
    assert expanded == {str(show_rk)}
    assert await stored_items(catalog, emu_server.machine_identifier) == expected_items(emu_server)
    assert {str(e.rating_key) for e in added} <= set(
        await states(catalog, emu_server.machine_identifier)
    )


async def test_replaced_files_are_found_by_full_listings(
    emu_server: EmuServer, client: PlexClient, catalog: Catalog
) -> None:
    clock = Clock()
    await sync_all(client, catalog, clock=clock)
    episode_rk = _episode_of(emu_server, _shows(emu_server)[0])
    movie_rk = next(i.rating_key for i in emu_server.items.values() if i.type == "movie")
    new_episode_part = emu_server.replace_file(episode_rk)
    new_movie_part = emu_server.replace_file(movie_rk)
    query = (
        "SELECT p.part_id, p.plex_path FROM parts p JOIN items i ON i.id = p.item_id "
        "WHERE i.rating_key = ? AND p.media_index = 0 AND p.part_index = 0"
    )
    movie_now = [(str(new_movie_part.id), new_movie_part.file)]
    episode_now = [(str(new_episode_part.id), new_episode_part.file)]

    # A light run soon after a full listing lists only what Plex updated: neither file.
    clock.now += 60
    _, light = await sync_all(client, catalog, clock=clock)
    assert [s.status for s in light] == ["ok", "ok"]
    assert await rows(catalog, query, str(movie_rk)) != movie_now

    # The periodic full movie listing carries parts: it sees the movie's new file.
    clock.now += 7 * 3600
    _, full = await sync_all(client, catalog, clock=clock)
    assert full[0].changed == 1
    assert await rows(catalog, query, str(movie_rk)) == movie_now
    # The documented light-pass limit: nothing in the show listing changed.
    assert await rows(catalog, query, str(episode_rk)) != episode_now

    clock.now += 60
    _, deep = await sync_all(client, catalog, clock=clock, deep=True)
    assert deep[1].status == "ok"
    assert await rows(catalog, query, str(episode_rk)) == episode_now
    # A deep run rewrites only what changed.
    assert deep[1].changed == 1
    assert deep[0].changed == 0


async def test_light_movie_run_lists_only_updates_and_checks_the_count(
    emu_server: EmuServer, emulator: PlexEmulator, client: PlexClient, catalog: Catalog
) -> None:
    await sync_all(client, catalog)
    added = emu_server.add_movie("1", "A Brand New Film", 2026)
    emulator.reset_log()

    server = await prepare_server(client, catalog)
    summary = await sync_library(client, catalog, server, "1")

    assert summary.status == "ok"
    assert summary.changed == 1
    assert (await states(catalog, emu_server.machine_identifier))[str(added.rating_key)] == (
        "ACTIVE"
    )
    movie_pages = [r for r in emulator.requests if r.endpoint == "section_all"]
    assert all("updatedAt>>" in r.query for r in movie_pages[:-1])
    assert movie_pages[-1].query.get("X-Plex-Container-Size") == "0"  # the count
    assert summary.processed < sum(1 for i in emu_server.items.values() if i.type == "movie")


async def test_missing_then_deleted_then_back(
    emu_server: EmuServer, client: PlexClient, catalog: Catalog
) -> None:
    clock = Clock()
    await sync_all(client, catalog, clock=clock)
    mid = emu_server.machine_identifier
    movie = next(i for i in emu_server.items.values() if i.type == "movie")
    show_rk = _shows(emu_server)[3]
    show_items = {str(show_rk)} | {
        str(i.rating_key)
        for i in emu_server.items.values()
        if emu_server.show_of(i) is not None and emu_server.show_of(i).rating_key == show_rk  # type: ignore[union-attr]
    }
    emu_server.remove_item(movie.rating_key)
    emu_server.remove_item(show_rk)

    clock.now += 60
    _, summaries = await sync_all(client, catalog, clock=clock)
    found = await states(catalog, mid)
    assert found[str(movie.rating_key)] == "MISSING"
    assert {found[key] for key in show_items} == {"MISSING"}
    assert summaries[0].missing_promoted == 1
    assert summaries[1].missing_promoted == len(show_items)
    present = {k for k, v in found.items() if v != "MISSING"}
    assert present == {str(i.rating_key) for i in emu_server.items.values()}

    clock.now += 31 * DAY
    _, summaries = await sync_all(client, catalog, clock=clock, retention_days=30)
    found = await states(catalog, mid)
    assert found[str(movie.rating_key)] == "DELETED"
    assert summaries[0].deleted_promoted == 1

    # The movie comes back with the same ratingKey (e.g. a drive was remounted).
    emu_server.items[movie.rating_key] = movie
    emu_server.sections[movie.section_key].roots[movie.rating_key] = None
    emu_server.invalidate()
    clock.now += 60
    _, summaries = await sync_all(client, catalog, clock=clock)
    assert (await states(catalog, mid))[str(movie.rating_key)] == "ACTIVE"
    assert summaries[0].returned == 1
    back = await rows(
        catalog,
        "SELECT missing_since, deleted_at FROM items WHERE rating_key = ?",
        str(movie.rating_key),
    )
    assert back == [(None, None)]


FAILING_FAULTS = [
    pytest.param(Fault(FaultKind.STATUS_500, endpoint="section_all", times=None), id="500"),
    pytest.param(
        Fault(FaultKind.STATUS_429, endpoint="section_all", times=None, seconds=0), id="429"
    ),
    pytest.param(Fault(FaultKind.RESET, endpoint="section_all", times=None), id="reset"),
    pytest.param(Fault(FaultKind.TRUNCATED, endpoint="section_all", times=None), id="truncated"),
    pytest.param(Fault(FaultKind.MALFORMED, endpoint="section_all", times=None), id="malformed"),
    pytest.param(Fault(FaultKind.HTML_200, endpoint="section_all", times=None), id="html"),
    pytest.param(
        Fault(FaultKind.BAD_ITEM, endpoint="section_all", times=None, variant="missing_rating_key"),
        id="no-rating-key",
    ),
    # The second page fails: a partial listing must not mark the rest missing.
    pytest.param(
        Fault(FaultKind.STATUS_500, endpoint="section_all", after=1, times=None),
        id="500-second-page",
    ),
]


@pytest.mark.parametrize("fault", FAILING_FAULTS)
async def test_listing_fault_marks_nothing_missing(
    emu_server: EmuServer, client: PlexClient, catalog: Catalog, fault: Fault
) -> None:
    await sync_all(client, catalog)
    mid = emu_server.machine_identifier
    removed = next(i.rating_key for i in emu_server.items.values() if i.type == "movie")
    emu_server.remove_item(removed)
    emu_server.faults.add(fault)

    server = await prepare_server(client, catalog)
    summary = await sync_library(client, catalog, server, server.sections[0].key)

    assert summary.status == "failed"
    assert summary.error
    assert "MISSING" not in set((await states(catalog, mid)).values())
    runs = await rows(catalog, "SELECT status FROM sync_runs WHERE id = ?", summary.run_id)
    assert runs == [("failed",)]

    emu_server.faults.clear()
    summary = await sync_library(client, catalog, server, server.sections[0].key)
    assert summary.status == "ok"
    assert (await states(catalog, mid))[str(removed)] == "MISSING"
    assert summary.missing_promoted == 1


async def test_timeout_fails_the_run(
    emu_server: EmuServer, emulator: PlexEmulator, session: aiohttp.ClientSession, catalog: Catalog
) -> None:
    client = PlexClient(
        session, emulator.url, TOKEN, page_size=5, retries=1, backoff=0, timeout=0.3
    )
    await sync_all(client, catalog)
    emu_server.remove_item(
        next(i.rating_key for i in emu_server.items.values() if i.type == "movie")
    )
    emu_server.faults.add(Fault(FaultKind.SLOW, endpoint="section_all", times=None, delay=2))
    server = await prepare_server(client, catalog)

    with pytest.raises(Exception) as caught:
        await sync_library(client, catalog, server, server.sections[0].key)

    assert "no answer in time" in str(caught.value)
    assert "MISSING" not in set((await states(catalog, emu_server.machine_identifier)).values())
    runs = await rows(catalog, "SELECT status FROM sync_runs ORDER BY id DESC LIMIT 1")
    assert runs == [("failed",)]
    emu_server.faults.clear()


async def test_auth_failure_raises_and_records_the_run(
    emu_server: EmuServer, client: PlexClient, catalog: Catalog
) -> None:
    server = await prepare_server(client, catalog)
    emu_server.faults.add(Fault(FaultKind.STATUS_401, endpoint="section_all", times=None))

    with pytest.raises(PlexAuthError):
        await sync_library(client, catalog, server, server.sections[0].key)

    assert await rows(catalog, "SELECT status FROM sync_runs") == [("failed",)]


QUIRKS = [
    pytest.param(Fault(FaultKind.IGNORE_PAGING, times=None), id="ignore-paging"),
    pytest.param(Fault(FaultKind.CAP_SIZE, times=None, cap=2), id="cap-size"),
    pytest.param(Fault(FaultKind.OMIT_TOTAL_SIZE, times=None), id="no-total-size"),
    pytest.param(Fault(FaultKind.XML_INSTEAD_OF_JSON, times=None), id="xml-for-json"),
    pytest.param(Fault(FaultKind.STATUS_500, endpoint="section_all", times=2), id="500-twice"),
]


@pytest.mark.parametrize("fault", QUIRKS)
async def test_server_quirks_still_give_a_complete_catalog(
    emu_server: EmuServer, client: PlexClient, catalog: Catalog, fault: Fault
) -> None:
    emu_server.faults.add(fault)
    _, summaries = await sync_all(client, catalog)
    assert [s.status for s in summaries] == ["ok", "ok"]
    assert await stored_items(catalog, emu_server.machine_identifier) == expected_items(emu_server)


async def test_bad_item_is_recorded_and_the_run_goes_on(
    emu_server: EmuServer, client: PlexClient, catalog: Catalog, caplog: pytest.LogCaptureFixture
) -> None:
    await sync_all(client, catalog)
    before = await rows(catalog, "SELECT rating_key, added_at, digest FROM items ORDER BY id")
    emu_server.faults.add(
        Fault(FaultKind.BAD_ITEM, endpoint="section_all", times=1, variant="bad_added_at")
    )
    server = await prepare_server(client, catalog)
    # A deep run lists every movie (a light one lists only what Plex updated since the last).
    summary = await sync_library(client, catalog, server, server.sections[0].key, deep=True)

    assert summary.status == "ok"
    assert summary.errors == 1
    flagged = await rows(
        catalog, "SELECT rating_key, error_count, last_error FROM items WHERE error_count > 0"
    )
    assert len(flagged) == 1
    assert "not a number" in flagged[0][2]
    assert f"ratingKey {flagged[0][0]}" in caplog.text
    assert server.name in caplog.text
    # The stored addedAt was not overwritten by the malformed one.
    assert (
        await rows(catalog, "SELECT rating_key, added_at, digest FROM items ORDER BY id") == before
    )
    assert "MISSING" not in set((await states(catalog, emu_server.machine_identifier)).values())


async def test_two_servers_with_overlapping_rating_keys(
    session: aiohttp.ClientSession, catalog: Catalog
) -> None:
    first = generate_server(seed=1, movies=8, shows=2, token=TOKEN)
    second = generate_server(seed=2, movies=8, shows=2, token=TOKEN)
    assert set(first.items) & set(second.items), "the test needs overlapping ratingKeys"
    async with PlexEmulator(first) as emu_a, PlexEmulator(second) as emu_b:
        client_a = PlexClient(session, emu_a.url, TOKEN, page_size=4, backoff=0)
        client_b = PlexClient(session, emu_b.url, TOKEN, page_size=4, backoff=0)
        await sync_all(client_a, catalog)
        await sync_all(client_b, catalog)
        b_before = await rows(
            catalog,
            "SELECT * FROM catalog_items WHERE machine_identifier = ? ORDER BY id",
            second.machine_identifier,
        )
        removed = next(i.rating_key for i in first.items.values() if i.type == "movie")
        first.remove_item(removed)
        first.change_item(
            next(i.rating_key for i in first.items.values() if i.type == "movie"), title="Changed"
        )

        await sync_all(client_a, catalog)

        assert (await states(catalog, first.machine_identifier))[str(removed)] == "MISSING"
        assert (await states(catalog, second.machine_identifier))[str(removed)] == "ACTIVE"
        b_after = await rows(
            catalog,
            "SELECT * FROM catalog_items WHERE machine_identifier = ? ORDER BY id",
            second.machine_identifier,
        )
        assert b_after == b_before
        assert await stored_items(catalog, first.machine_identifier) == expected_items(first)


async def test_progress_reports_after_each_stored_batch(
    emu_server: EmuServer, client: PlexClient, catalog: Catalog
) -> None:
    events: list[tuple[str, int]] = []  # the summary is live: keep what it said then
    server = await prepare_server(client, catalog)
    summary = await sync_library(
        client,
        catalog,
        server,
        server.sections[0].key,
        progress=lambda event: events.append((event.event, event.summary.processed)),
    )

    assert events[0][0] == "library_start"
    assert events[-1][0] == "library_done"
    progress = [processed for name, processed in events if name == "page_progress"]
    movies = sum(1 for i in emu_server.items.values() if i.type == "movie")
    # One report per transaction: one page, or the pages that queued up while it was stored.
    steps = [after - before for before, after in zip([0, *progress], progress, strict=False)]
    assert all(0 < step <= READ_AHEAD_PAGES * client.page_size for step in steps), steps
    assert -(-movies // (READ_AHEAD_PAGES * client.page_size)) <= len(progress)
    assert len(progress) <= -(-movies // client.page_size)
    assert progress[-1] == events[-1][1] == movies == summary.processed
    assert summary.total == movies


async def test_catalog_survives_reopen(
    emu_server: EmuServer, client: PlexClient, tmp_path: Path
) -> None:
    catalog = await Catalog.open(tmp_path / "again.db")
    try:
        await sync_all(client, catalog)
    finally:
        await catalog.close()
    catalog = await Catalog.open(tmp_path / "again.db")
    try:
        assert await stored_items(catalog, emu_server.machine_identifier) == expected_items(
            emu_server
        )
    finally:
        await catalog.close()


async def test_failed_show_expansion_fails_the_run_and_converges(
    emu_server: EmuServer, client: PlexClient, catalog: Catalog
) -> None:
    await sync_all(client, catalog)
    mid = emu_server.machine_identifier
    show_rk = _shows(emu_server)[0]
    doomed = _episode_of(emu_server, show_rk)
    emu_server.remove_item(doomed)
    emu_server.faults.add(Fault(FaultKind.STATUS_500, endpoint="all_leaves", times=None))

    _, summaries = await sync_all(client, catalog)

    assert summaries[1].status == "failed"
    assert "could not be expanded" in (summaries[1].error or "")
    assert (await states(catalog, mid))[str(doomed)] == "ACTIVE"
    flagged = await rows(
        catalog, "SELECT error_count, last_error FROM items WHERE rating_key = ?", str(show_rk)
    )
    assert flagged[0][0] == 1
    assert "expansion failed" in flagged[0][1]

    emu_server.faults.clear()
    _, summaries = await sync_all(client, catalog)
    assert summaries[1].status == "ok"
    assert summaries[1].expanded_shows == 1
    assert (await states(catalog, mid))[str(doomed)] == "MISSING"


async def test_item_skipped_by_shifting_pages_is_not_marked_missing(
    emu_server: EmuServer, emulator: PlexEmulator, client: PlexClient, catalog: Catalog
) -> None:
    await sync_all(client, catalog)
    server = await prepare_server(client, catalog)
    movies = [i.rating_key for i in emu_server.items.values() if i.type == "movie"]
    removed_early = movies[0]
    emu_server.remove_item(removed_early)
    listing_pages = 0

    # Between the first and second page, a movie on an earlier page disappears: offsets shift
    # and one movie would never be seen. The run must notice and not mark it missing.
    def on_progress(event: SyncProgress) -> None:
        nonlocal listing_pages
        if event.event == "page_progress":
            listing_pages += 1
            if listing_pages == 1:
                emu_server.remove_item(movies[1])

    summary = await sync_library(client, catalog, server, "1", deep=True, progress=on_progress)

    # The movie skipped by the shift was confirmed by a detail request and stays ACTIVE;
    # movies[1] was listed before it vanished, so only the next run may call it missing.
    assert summary.status == "ok"
    assert emulator.counters["metadata"] >= 1
    found = await states(catalog, emu_server.machine_identifier)
    assert {key for key, state in found.items() if state == "MISSING"} == {str(removed_early)}
    assert {str(m) for m in movies[2:]} <= {k for k, v in found.items() if v == "ACTIVE"}

    summary = await sync_library(client, catalog, server, "1")
    found = await states(catalog, emu_server.machine_identifier)
    assert {key for key, state in found.items() if state == "MISSING"} == {
        str(removed_early),
        str(movies[1]),
    }


async def test_balanced_change_in_a_show_is_healed_by_a_light_sync(
    emu_server: EmuServer, emulator: PlexEmulator, client: PlexClient, catalog: Catalog
) -> None:
    await sync_all(client, catalog)
    mid = emu_server.machine_identifier
    show_rk = _shows(emu_server)[1]
    show = emu_server.item(show_rk)
    before = (show.updated_at, emu_server.leaf_count(show))
    removed = _episode_of(emu_server, show_rk)
    emu_server.remove_item(removed)
    added = emu_server.add_episodes(show_rk, 1)
    # Plex's view of the show did not change: same updatedAt, same leafCount.
    assert (show.updated_at, emu_server.leaf_count(show)) == before
    emulator.counters.clear()

    _, summaries = await sync_all(client, catalog)

    found = await states(catalog, mid)
    assert found[str(added[0].rating_key)] == "ACTIVE"
    assert found[str(removed)] == "MISSING"
    assert summaries[1].expanded_shows == 1
    assert await stored_items(catalog, mid) == expected_items(emu_server)


async def test_full_listings_parse_only_entries_that_changed(
    emu_server: EmuServer, emulator: PlexEmulator, client: PlexClient, catalog: Catalog
) -> None:
    await sync_all(client, catalog)
    listed = sum(1 for item in emu_server.items.values() if item.type != "show")
    before = await rows(catalog, "SELECT * FROM items ORDER BY id")

    _, deep = await sync_all(client, catalog, deep=True)
    assert [s.status for s in deep] == ["ok", "ok"]
    assert sum(s.matched for s in deep) == listed
    assert sum(s.changed for s in deep) == 0
    assert await rows(catalog, "SELECT * FROM items ORDER BY id") == before

    # A replaced file and a watched episode change their entries, and the episode's season
    # (its viewedLeafCount): those three are parsed.
    episode_rk = _episode_of(emu_server, _shows(emu_server)[0])
    movie_rk = next(i.rating_key for i in emu_server.items.values() if i.type == "movie")
    part = emu_server.replace_file(movie_rk)
    emu_server.set_watch_state(episode_rk, view_count=4, last_viewed_at=1_700_000_123)
    _, deep = await sync_all(client, catalog, deep=True)
    assert sum(s.matched for s in deep) == listed - 3
    # Watch state: the episode, its season and its show (listed in full on every run).
    assert [(s.changed, s.watch_updated) for s in deep] == [(1, 0), (0, 3)]
    assert await rows(
        catalog,
        "SELECT p.plex_path FROM parts p JOIN items i ON i.id = p.item_id "
        "WHERE i.rating_key = ? AND p.media_index = 0 AND p.part_index = 0",
        str(movie_rk),
    ) == [(part.file,)]
    assert await rows(
        catalog, "SELECT view_count FROM items WHERE rating_key = ?", str(episode_rk)
    ) == [(4,)]

    # Both entries were stored with their new digests: the next full listing matches them.
    _, deep = await sync_all(client, catalog, deep=True)
    assert sum(s.matched for s in deep) == listed
    assert sum(s.changed + s.watch_updated for s in deep) == 0


async def test_rows_without_source_digests_are_parsed_and_not_rewritten(
    emu_server: EmuServer, client: PlexClient, catalog: Catalog
) -> None:
    # As after the upgrade to schema v5: no row has a source digest yet.
    await sync_all(client, catalog)
    await on_catalog_thread(
        catalog, lambda store: store.conn.execute("UPDATE items SET source_digest = NULL")
    )
    changed_runs = await rows(catalog, "SELECT id, changed_run_id FROM items ORDER BY id")

    _, deep = await sync_all(client, catalog, deep=True)
    assert sum(s.matched for s in deep) == 0
    assert sum(s.changed + s.watch_updated for s in deep) == 0
    assert await rows(catalog, "SELECT id, changed_run_id FROM items ORDER BY id") == changed_runs
    assert await rows(catalog, "SELECT COUNT(*) FROM items WHERE source_digest IS NULL") == [(0,)]

    _, deep = await sync_all(client, catalog, deep=True)
    assert sum(s.matched for s in deep) == len(emu_server.items) - len(_shows(emu_server))


async def test_digests_of_an_older_version_are_refreshed_not_counted_as_changes(
    emu_server: EmuServer, client: PlexClient, catalog: Catalog
) -> None:
    # As after an upgrade that computes content digests differently: the content is the same,
    # so no row is reported changed and no show is expanded again.
    await sync_all(client, catalog)
    digests = await rows(catalog, "SELECT id, digest FROM items ORDER BY id")
    await on_catalog_thread(
        catalog,
        lambda store: store.conn.execute(
            "UPDATE items SET digest = 'older' || id, source_digest = NULL"
        ),
    )
    changed_runs = await rows(catalog, "SELECT id, changed_run_id FROM items ORDER BY id")

    _, light = await sync_all(client, catalog)
    assert sum(s.changed for s in light) == 0
    assert sum(s.expanded_shows for s in light) == 0
    refreshed = await rows(catalog, "SELECT COUNT(*) FROM items WHERE digest NOT LIKE 'older%'")
    assert refreshed[0][0] >= len(_shows(emu_server))

    _, deep = await sync_all(client, catalog, deep=True)
    assert sum(s.changed + s.watch_updated for s in deep) == 0
    assert await rows(catalog, "SELECT id, digest FROM items ORDER BY id") == digests
    assert await rows(catalog, "SELECT id, changed_run_id FROM items ORDER BY id") == changed_runs


async def test_one_item_replaced_by_another_is_still_marked_missing(
    emu_server: EmuServer, client: PlexClient, catalog: Catalog
) -> None:
    # Plex's totals stay the same; the catalog must still see which item went.
    await sync_all(client, catalog)
    movies = [i.rating_key for i in emu_server.items.values() if i.type == "movie"]
    episode_rk = _episode_of(emu_server, _shows(emu_server)[0])
    show_rk = _shows(emu_server)[1]
    emu_server.remove_item(movies[3])
    added = emu_server.add_movie("1", "Another Film", 2011)
    emu_server.remove_item(episode_rk)
    emu_server.add_episodes(show_rk, 1)

    _, summaries = await sync_all(client, catalog, deep=True)

    assert [s.status for s in summaries] == ["ok", "ok"]
    assert [s.missing_promoted for s in summaries] == [1, 1]
    found = await states(catalog, emu_server.machine_identifier)
    assert found[str(movies[3])] == "MISSING"
    assert found[str(episode_rk)] == "MISSING"
    assert found[str(added.rating_key)] == "ACTIVE"
    assert await stored_items(catalog, emu_server.machine_identifier) == expected_items(emu_server)


async def test_changes_rewrite_only_the_columns_parts_and_guids_that_changed(
    emu_server: EmuServer, client: PlexClient, catalog: Catalog
) -> None:
    await sync_all(client, catalog)
    movies = [i.rating_key for i in emu_server.items.values() if i.type == "movie"]
    retitled, reguided, refiled = (str(key) for key in movies[:3])
    parts_query = (
        "SELECT p.id, p.part_id, p.plex_path FROM parts p JOIN items i ON i.id = p.item_id "
        "WHERE i.rating_key = ? ORDER BY p.id"
    )
    guids_query = (
        "SELECT g.uri FROM guids g JOIN items i ON i.id = g.item_id WHERE i.rating_key = ? "
        "ORDER BY g.uri"
    )
    parts = {key: await rows(catalog, parts_query, key) for key in (retitled, reguided, refiled)}
    guids = {key: await rows(catalog, guids_query, key) for key in (retitled, reguided, refiled)}
    emu_server.change_item(retitled, title="Retitled")
    emu_server.change_item(reguided, ext_guids=("imdb://tt0000042", "tmdb://42"))
    new_part = emu_server.replace_file(refiled)
    statements: list[str] = []
    await on_catalog_thread(catalog, lambda store: store.conn.set_trace_callback(statements.append))

    _, summaries = await sync_all(client, catalog, deep=True)
    await on_catalog_thread(catalog, lambda store: store.conn.set_trace_callback(None))

    assert [(s.status, s.changed) for s in summaries] == [("ok", 3), ("ok", 0)]
    assert await stored_items(catalog, emu_server.machine_identifier) == expected_items(emu_server)
    # Parts and GUIDs that did not change keep their rows (same row ids).
    assert await rows(catalog, parts_query, retitled) == parts[retitled]
    assert await rows(catalog, parts_query, reguided) == parts[reguided]
    assert await rows(catalog, guids_query, retitled) == guids[retitled]
    assert await rows(catalog, guids_query, refiled) == guids[refiled]
    # What changed was replaced.
    now_guids = sorted((uri,) for key, uri in expected_guids(emu_server) if key == reguided)
    assert ("tmdb://42",) in now_guids
    assert await rows(catalog, guids_query, reguided) == now_guids != guids[reguided]
    assert [row[1:] for row in await rows(catalog, parts_query, refiled)] == [
        (str(new_part.id), new_part.file)
    ]
    assert (await rows(catalog, parts_query, refiled))[0][0] not in {
        row[0] for rows_of in parts.values() for row in rows_of
    }
    # The item rows were updated column by column: only what differs was assigned.
    # (update_items' statements: the only ones that set last_scan_at)
    updates = [s for s in statements if s.lstrip().startswith("UPDATE items SET")]
    updates = [s for s in updates if "last_scan_at" in s]
    assert updates
    assigned = {
        column.split("=")[0].strip()
        for statement in updates
        for column in statement.split("SET", 1)[1].split(" FROM (VALUES", 1)[0].split(",")
    }
    assert "title" in assigned
    assert "digest" in assigned
    assert not assigned & {"server_id", "library_id", "rating_key", "kind", "show_key", "state"}
