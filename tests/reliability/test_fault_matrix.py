"""Fault matrix: every phase of a library sync against every way a Plex answer goes wrong.

Each case starts from a catalog holding the whole library (a copy of one cold sync per answer
format), changes the library (items removed, added, changed), injects one fault into the
requests of one phase and syncs that library once. The outcome the table names is checked,
then the catalog's invariants, then a clean sync that must converge on the library.

Phases: the movie listing (`/library/sections/1/all`), the show listing
(`/library/sections/2/all`), the expansion of a show (`/children` and `/allLeaves`) and the
confirmation of missing items (`/library/metadata`). Faults that fire once are retried by the
client (retries 2, backoff 0); those that persist fail the run.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
import sqlite3
from typing import Any, Final

import aiohttp
import pytest

from custom_components.retrovue.engine.plex import PlexAuthError, PlexClient
from custom_components.retrovue.engine.plex.errors import PlexConnectionError, PlexError
from custom_components.retrovue.engine.plex.models import PlexType
from custom_components.retrovue.engine.store import PRESENT_STATES, Catalog
from custom_components.retrovue.engine.sync import SyncSummary, prepare_server, sync_library
from tests.emulator import (
    EPISODE,
    MOVIE,
    SHOW,
    EmuServer,
    Fault,
    FaultKind,
    PlexEmulator,
    generate_server,
)
from tests.engine.helpers import expected_items, rows, states, stored_items, sync_all

from .invariants import assert_invariants

TOKEN: Final = "fault-matrix-token-71c4"
PAGE_SIZE: Final = 5
# The timeout rows use a short client timeout and an answer slower than it.
TIMEOUT: Final = 0.25
SLOW_ANSWER: Final = 1.0
ABSENT: Final = frozenset({"MISSING", "DELETED"})


class Outcome(StrEnum):
    """What a case must end in."""

    OK = "ok"  # retried or coped with: the run is ok and the catalog complete
    AUTH = "auth"  # PlexAuthError raised, the run recorded failed, nothing but upserts written
    FAILED = "failed"  # the run failed: nothing marked MISSING, nothing but upserts written
    KEPT = "kept"  # the omitted item is confirmed by /library/metadata: never MISSING
    GONE = "gone"  # left out of listings and /library/metadata alike: MISSING is right


OK, AUTH, FAILED, KEPT, GONE = Outcome


@dataclass(frozen=True, slots=True)
class Phase:
    """One phase of a library sync and the requests it makes."""

    name: str
    section: str
    endpoints: tuple[str, ...]
    #: Where an `omit_item` fault leaves its item out.
    omit_endpoints: tuple[str, ...]
    #: Whether the listings leave the item out in every case of the phase: the confirmation
    #: then asks about an item Plex still has, and its answer has a body to break.
    listed_without: bool = False


PHASES: Final = (
    Phase("movie-listing", "1", ("section_all",), ("section_all",)),
    Phase("show-listing", "2", ("section_all",), ("section_all",)),
    Phase("expansion", "2", ("children", "all_leaves"), ("children", "all_leaves")),
    Phase("confirmation", "1", ("metadata",), ("section_all", "metadata"), listed_without=True),
)


@dataclass(frozen=True, slots=True)
class Row:
    """One fault and the outcome it must have in each phase (in the order of PHASES)."""

    name: str
    kind: FaultKind
    times: int | None
    xml: bool
    outcomes: tuple[Outcome, Outcome, Outcome, Outcome]
    params: dict[str, Any] = field(default_factory=dict)


K = FaultKind
# "-once" faults fire on one request (the retry gets a good answer), the others on every one.
# "omitted-item" leaves one item out of the phase's listings (their totalSize agrees), and in
# the confirmation phase out of /library/metadata too; "omitted-counted" leaves it out of pages
# that still count it in totalSize. xml: the case runs against XML answers too.
# fmt: off
ROWS: Final = (
    #   fault              kind               times xml    movie l. show l.  expand  confirm
    Row("401",             K.STATUS_401,      None, False, (AUTH,   AUTH,   AUTH,   AUTH)),
    Row("500-once",        K.STATUS_500,      1,    False, (OK,     OK,     OK,     OK)),
    Row("500",             K.STATUS_500,      None, False, (FAILED, FAILED, FAILED, FAILED)),
    Row("429-once",        K.STATUS_429,      1,    False, (OK,     OK,     OK,     OK),
        {"seconds": 0}),
    Row("429",             K.STATUS_429,      None, False, (FAILED, FAILED, FAILED, FAILED),
        {"seconds": 0}),
    Row("timeout-once",    K.SLOW,            1,    False, (OK,     OK,     OK,     OK),
        {"delay": SLOW_ANSWER}),
    Row("timeout",         K.SLOW,            None, False, (FAILED, FAILED, FAILED, FAILED),
        {"delay": SLOW_ANSWER}),
    Row("reset-once",      K.RESET,           1,    False, (OK,     OK,     OK,     OK)),
    Row("reset",           K.RESET,           None, False, (FAILED, FAILED, FAILED, FAILED)),
    Row("truncated-once",  K.TRUNCATED,       1,    False, (OK,     OK,     OK,     OK)),
    Row("truncated",       K.TRUNCATED,       None, True,  (FAILED, FAILED, FAILED, FAILED)),
    Row("malformed-once",  K.MALFORMED,       1,    False, (OK,     OK,     OK,     OK)),
    Row("malformed",       K.MALFORMED,       None, True,  (FAILED, FAILED, FAILED, FAILED)),
    Row("html-once",       K.HTML_200,        1,    False, (OK,     OK,     OK,     OK)),
    Row("html",            K.HTML_200,        None, False, (FAILED, FAILED, FAILED, FAILED)),
    Row("ignored-paging",  K.IGNORE_PAGING,   None, True,  (OK,     OK,     OK,     OK)),
    Row("capped-size",     K.CAP_SIZE,        None, True,  (OK,     OK,     OK,     OK),
        {"cap": 2}),
    Row("no-total-size",   K.OMIT_TOTAL_SIZE, None, True,  (OK,     OK,     OK,     OK)),
    Row("omitted-item",    K.OMIT_ITEM,       None, True,  (KEPT,   KEPT,   KEPT,   GONE)),
    Row("omitted-counted", K.OMIT_ITEM,       None, False, (KEPT,   KEPT,   KEPT,   GONE),
        {"counted": True}),
)
# fmt: on

CASES: Final = [
    pytest.param(
        phase,
        row,
        outcome,
        fmt,
        id=f"{phase.name}-{row.name}-{fmt}",
    )
    for row in ROWS
    for phase, outcome in zip(PHASES, row.outcomes, strict=True)
    for fmt in (("json", "xml") if row.xml else ("json",))
]

# What a failed run may not touch: an item's content, state and the run that last changed it.
SNAPSHOT: Final = (
    "SELECT id, rating_key, kind, title, updated_at_plex, digest, state, missing_since, "
    "deleted_at, changed_run_id FROM items"
)
LIBRARY_MARKS: Final = (
    "SELECT section_key, last_synced_at, last_complete_sync_at, last_full_listing_at "
    "FROM libraries ORDER BY section_key"
)


def make_server(fmt: str) -> EmuServer:
    """Return the library every case starts from (the same for a format, ids included)."""
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


@dataclass(frozen=True, slots=True)
class Change:
    """What `change_library` did: the items it removed and the one a fault may leave out."""

    removed: frozenset[str]
    omitted: int


def change_library(server: EmuServer, phase: Phase) -> Change:
    """Remove, add and change items of the phase's library; pick an item to leave out."""
    if phase.section == "1":
        movies = [i.rating_key for i in server.items.values() if i.type == MOVIE]
        removed = movies[3], movies[4]
        for rk in removed:
            server.remove_item(rk)
        server.add_movie("1", "A Film Added Under Fire", 2025)
        server.change_item(movies[5], title="Retitled Under Fire")
        # The count now differs: the run lists every movie and confirms what it missed.
        return Change(frozenset(str(rk) for rk in removed), movies[7])
    shows = [i.rating_key for i in server.items.values() if i.type == SHOW]
    changed, grown, other = (server.item(rk) for rk in shows[1:4])
    episodes = list(server.leaves(changed))
    server.remove_item(episodes[0].rating_key)
    server.add_episodes(grown.rating_key, 2)
    # Both shows' leafCounts changed: each is expanded on its own (children + allLeaves).
    omitted = episodes[-1].rating_key if phase.name == "expansion" else other.rating_key
    assert server.item(omitted).type == (EPISODE if phase.name == "expansion" else SHOW)
    return Change(frozenset({str(episodes[0].rating_key)}), omitted)


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return the folder of the cold-synced catalogs the cases start from."""
    return tmp_path_factory.mktemp("fault-matrix")


def _copy(source: Path, target: Path) -> None:
    """Copy a catalog file with SQLite's backup (its WAL included)."""
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


async def open_catalog(templates: Path, emulator: PlexEmulator, fmt: str, path: Path) -> Catalog:
    """Open a copy of a catalog holding the whole library (synced cold on first use)."""
    template = templates / f"{fmt}.db"
    if not template.exists():
        building = templates / f"{fmt}.building.db"
        async with aiohttp.ClientSession() as session:
            client = PlexClient(session, emulator.url, TOKEN, page_size=PAGE_SIZE, backoff=0)
            catalog = await Catalog.open(building)
            try:
                _, summaries = await sync_all(client, catalog)
                assert [s.status for s in summaries] == ["ok", "ok"]
                assert await stored_items(
                    catalog, emulator.server.machine_identifier
                ) == expected_items(emulator.server)
                await assert_invariants(catalog)
            finally:
                await catalog.close()
        await asyncio.to_thread(_copy, building, template)
    await asyncio.to_thread(_copy, template, path)
    return await Catalog.open(path)


@pytest.fixture(autouse=True)
def enable_event_loop_debug() -> None:
    """Leave asyncio's debug mode off here (the harness turns it on for every test).

    Debug mode records a traceback for every callback and task: about a third of the time of
    these syncs. The engine's own tests run with it; this suite runs the same code a hundred
    times more.
    """


@dataclass(slots=True)
class Case:
    """One case under way: its emulator, clients and catalog."""

    server: EmuServer
    emulator: PlexEmulator
    #: The client of the faulty run (a short timeout in the timeout rows).
    client: PlexClient
    #: The client of the clean run.
    steady: PlexClient
    catalog: Catalog


@pytest.fixture
async def case(
    request: pytest.FixtureRequest, templates: Path, tmp_path: Path
) -> AsyncIterator[Case]:
    """Serve the library and open a catalog that holds all of it."""
    row: Row = request.node.callspec.params["row"]
    fmt: str = request.node.callspec.params["fmt"]
    server = make_server(fmt)
    async with PlexEmulator(server) as emulator, aiohttp.ClientSession() as session:
        client = PlexClient(
            session,
            emulator.url,
            TOKEN,
            page_size=PAGE_SIZE,
            retries=2,
            backoff=0,
            timeout=TIMEOUT if row.kind is FaultKind.SLOW else 10,
        )
        steady = PlexClient(session, emulator.url, TOKEN, page_size=PAGE_SIZE, backoff=0)
        catalog = await open_catalog(templates, emulator, fmt, tmp_path / "catalog.db")
        try:
            yield Case(server, emulator, client, steady, catalog)
        finally:
            await catalog.close()


async def _snapshot(catalog: Catalog) -> tuple[dict[int, tuple[Any, ...]], list[tuple[Any, ...]]]:
    items = {int(row[0]): row for row in await rows(catalog, SNAPSHOT)}
    return items, await rows(catalog, LIBRARY_MARKS)


@pytest.mark.parametrize(("phase", "row", "outcome", "fmt"), CASES)
async def test_fault_matrix(case: Case, phase: Phase, row: Row, outcome: Outcome, fmt: str) -> None:
    """Inject one fault into one phase; check the table's outcome, then a clean convergence."""
    server, catalog, client = case.server, case.catalog, case.client
    mid = server.machine_identifier
    context = await prepare_server(client, catalog)
    change = change_library(server, phase)
    before = await _snapshot(catalog)
    if phase.listed_without and row.kind is not FaultKind.OMIT_ITEM:
        server.faults.add(Fault(FaultKind.OMIT_ITEM, times=None, rating_key=change.omitted))
    params = dict(row.params)
    endpoints = phase.endpoints
    if row.kind is FaultKind.OMIT_ITEM:
        params["rating_key"] = change.omitted
        endpoints = phase.omit_endpoints
    faults = [
        server.faults.add(Fault(row.kind, endpoint=endpoint, times=row.times, **params))
        for endpoint in endpoints
    ]

    summary: SyncSummary | None = None
    raised: PlexError | None = None
    try:
        summary = await sync_library(client, catalog, context, phase.section)
    except PlexError as err:
        raised = err

    # The fault fired in this phase (else the case would prove nothing).
    assert sum(fault.hits for fault in faults) >= 1, faults
    await assert_invariants(catalog)
    found = await states(catalog, mid)
    missing = {key for key, state in found.items() if state in ABSENT}
    runs = await rows(catalog, "SELECT status, error FROM sync_runs ORDER BY id DESC LIMIT 1")
    if outcome in (AUTH, FAILED):
        if outcome is AUTH:
            assert isinstance(raised, PlexAuthError), raised or summary
        else:
            # Transport failures are raised (after the run was recorded); others returned.
            assert isinstance(raised, PlexConnectionError) or (
                raised is None and summary is not None and summary.status == "failed"
            ), raised or summary
        assert runs[0][0] == "failed"
        assert runs[0][1]
        await _assert_only_upserts(catalog, server, before)
    else:
        assert raised is None, raised
        assert summary is not None
        assert summary.status == "ok", summary.error
        assert runs[0][0] == "ok"
        omitted = str(change.omitted)
        if outcome is OK:
            assert missing == change.removed
            assert await stored_items(catalog, mid) == expected_items(server)
        elif outcome is KEPT:
            assert found[omitted] in PRESENT_STATES
            assert missing <= change.removed
        else:
            assert missing == change.removed | {omitted}

    server.faults.clear()
    summary = await sync_library(case.steady, catalog, context, phase.section)
    assert summary.status == "ok", summary.error
    await assert_invariants(catalog)
    assert await stored_items(catalog, mid) == expected_items(server)
    found = await states(catalog, mid)
    assert {key for key, state in found.items() if state in ABSENT} == change.removed


async def _assert_only_upserts(
    catalog: Catalog,
    server: EmuServer,
    before: tuple[dict[int, tuple[Any, ...]], list[tuple[Any, ...]]],
) -> None:
    """Check that a failed run wrote nothing but items as Plex sent them, and no MISSING."""
    items_before, libraries_before = before
    items_after, libraries_after = await _snapshot(catalog)
    (run_id,) = (await rows(catalog, "SELECT MAX(id) FROM sync_runs"))[0]
    served = {str(rk) for rk in server.items}
    assert set(items_before) <= set(items_after)
    for item_id, row in items_after.items():
        rating_key, state, changed_run = row[1], row[6], row[9]
        assert state not in ABSENT, row
        if changed_run == run_id:
            # Stored from an answer this run received: an upsert of an item Plex serves.
            assert rating_key in served, row
            assert state in PRESENT_STATES, row
        else:
            assert items_before.get(item_id) == row
    # The library is not recorded as synced.
    assert libraries_after == libraries_before


async def test_omit_item_fault_leaves_one_item_out(tmp_path: Path) -> None:
    """Check the emulator's `omit_item` fault: listings, totals and /library/metadata."""
    server = make_server("json")
    movies = [i.rating_key for i in server.items.values() if i.type == MOVIE]
    omitted = movies[2]
    async with PlexEmulator(server) as emulator, aiohttp.ClientSession() as session:
        client = PlexClient(session, emulator.url, TOKEN, page_size=PAGE_SIZE, backoff=0)
        listing = client.section_items("1", PlexType.MOVIE)
        server.faults.add(Fault(FaultKind.OMIT_ITEM, times=None, rating_key=omitted))
        listed = [item.rating_key async for page in listing for item in page.items]
        assert listed == [str(rk) for rk in movies if rk != omitted]
        assert listing.stats.last_total == len(movies) - 1
        server.faults.add(
            Fault(FaultKind.OMIT_ITEM, endpoint="metadata", times=None, rating_key=omitted)
        )
        page = await client.metadata([str(omitted), str(movies[0])])
        assert [item.rating_key for item in page.items] == [str(movies[0])]
        assert (await client.metadata([str(omitted)])).items == ()

        # Counted: totalSize still holds it, and the page that held it comes back one short.
        server.faults.clear()
        server.faults.add(Fault(FaultKind.OMIT_ITEM, times=None, rating_key=omitted, counted=True))
        listing = client.section_items("1", PlexType.MOVIE)
        listed = [item.rating_key async for page in listing for item in page.items]
        assert str(omitted) not in listed
        assert listing.stats.last_total == len(movies)
        assert len(set(listed)) == len(movies) - 1


async def test_clean_light_sync_after_a_failed_one_sees_older_changes(
    templates: Path, tmp_path: Path
) -> None:
    """A light run that failed after storing newer changes hides no older change from the next."""
    server = make_server("json")
    async with PlexEmulator(server) as emulator, aiohttp.ClientSession() as session:
        client = PlexClient(session, emulator.url, TOKEN, page_size=PAGE_SIZE, backoff=0)
        catalog = await open_catalog(templates, emulator, "json", tmp_path / "catalog.db")
        try:
            context = await prepare_server(client, catalog)
            ((newest,),) = await rows(
                catalog, "SELECT MAX(updated_at_plex) FROM items WHERE kind = 'episode'"
            )
            # Plex stamps an edit with its own clock: never before the newest stored one.
            newest = max(newest, server.now())
            episodes = [i.rating_key for i in server.items.values() if i.type == EPISODE]
            # Listed by ratingKey: the first page holds the later edits, the second the earlier.
            earlier = episodes[-1]
            server.change_item(earlier, title="Edited Before", updated_at=newest + 100)
            for rk in episodes[:PAGE_SIZE]:
                server.change_item(rk, title=f"Edited After {rk}", updated_at=newest + 3600)
            # The show listing, the recently updated seasons and the first page of the recently
            # updated episodes are answered; the episodes' second page never is.
            server.faults.add(Fault(FaultKind.STATUS_500, times=None, after=3))
            failed = await sync_library(client, catalog, context, "2")
            server.faults.clear()
            if failed.status != "failed" or await _title(catalog, episodes[0]) != (
                f"Edited After {episodes[0]}"
            ):
                pytest.fail(f"precondition: the run did not fail after its first page: {failed}")
            await assert_invariants(catalog)

            light = await sync_library(client, catalog, context, "2")
            assert light.status == "ok"
            await assert_invariants(catalog)
            assert await _title(catalog, earlier) == "Edited Before"
        finally:
            await catalog.close()


async def _title(catalog: Catalog, rating_key: int) -> str:
    ((title,),) = await rows(
        catalog, "SELECT title FROM items WHERE rating_key = ?", str(rating_key)
    )
    return str(title)
