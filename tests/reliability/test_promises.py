"""The catalog's promises one by one: parents and children, run rows, expansions, retries."""

from __future__ import annotations

from collections.abc import AsyncIterator
import json
from pathlib import Path
from typing import Any
from unittest.mock import patch

import aiohttp
from aiohttp import web
import pytest

from custom_components.retrovue.engine.plex import PlexClient
from custom_components.retrovue.engine.plex.models import ItemKind
from custom_components.retrovue.engine.plex.parse import parse_listing
from custom_components.retrovue.engine.store import Catalog, CatalogError, CatalogStore, RunStatus
from custom_components.retrovue.engine.sync import prepare_server, sync_library
from tests.catalog_probe import on_catalog_thread
from tests.emulator import EmuServer, Fault, FaultKind, PlexEmulator, generate_server
from tests.engine.helpers import rows, states, sync_all
from tests.reliability.invariants import assert_invariants

TOKEN = "promise-token"


@pytest.fixture(params=["json", "xml"])
def library(request: pytest.FixtureRequest) -> EmuServer:
    server = generate_server(
        seed=5,
        movies=6,
        shows=3,
        seasons_per_show=(2, 2),
        episodes_per_season=(2, 3),
        token=TOKEN,
    )
    server.force_xml = request.param == "xml"
    return server


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
async def emulator(library: EmuServer) -> AsyncIterator[PlexEmulator]:
    async with PlexEmulator(library) as emu:
        yield emu


@pytest.fixture
def client(session: aiohttp.ClientSession, emulator: PlexEmulator) -> PlexClient:
    return PlexClient(session, emulator.url, TOKEN, page_size=4, retries=1, backoff=0, timeout=5)


def _first_show(library: EmuServer) -> tuple[str, list[str], list[str]]:
    """Return a show's rating key, its seasons' and its episodes' keys."""
    show = next(item for item in library.items.values() if item.type == "show")
    seasons = [str(key) for key in show.children]
    episodes = [str(key) for season in show.children for key in library.item(season).children]
    return str(show.rating_key), seasons, episodes


# --- no MISSING parent with a present child ---------------------------------------------------


class _Rewriting(PlexEmulator):
    """A server stand-in that rewrites the entries of its JSON answers."""

    def rewrite(self, request: web.Request, container: dict[str, Any]) -> bool:
        """Change a decoded container in place; return whether anything changed."""
        raise NotImplementedError

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        response = await super()._handle(request)
        if (
            not isinstance(response, web.Response)
            or not isinstance(response.body, bytes)
            or not response.body.startswith(b"{")
        ):
            return response
        data = json.loads(response.body)
        if not self.rewrite(request, data["MediaContainer"]):
            return response
        return web.json_response(data)


class _OmitsOneItem(_Rewriting):
    """A server that leaves one item out of every listing and detail answer."""

    omitted = ""

    def rewrite(self, request: web.Request, container: dict[str, Any]) -> bool:
        entries = container.get("Metadata") or []
        kept = [entry for entry in entries if entry.get("ratingKey") != self.omitted]
        if len(kept) == len(entries):
            return False
        container["Metadata"] = kept
        container["size"] = len(kept)
        if "totalSize" in container:
            container["totalSize"] -= 1
        return True


async def test_a_show_omitted_while_its_episodes_are_listed_is_not_missing(
    session: aiohttp.ClientSession, catalog: Catalog
) -> None:
    """Left out of the show listing and of the confirmation, but its episodes are listed."""
    library = generate_server(seed=5, movies=2, shows=3, token=TOKEN)
    show, seasons, episodes = _first_show(library)
    async with _OmitsOneItem(library) as emulator:
        # Large pages make listing every season and episode of the section the cheaper way.
        client = PlexClient(session, emulator.url, TOKEN, page_size=50, retries=0, backoff=0)
        await sync_all(client, catalog)
        emulator.omitted = show
        for deep in (True, False, True):
            _, summaries = await sync_all(client, catalog, deep=deep)
            assert summaries[1].status == "ok", summaries[1].error
            await assert_invariants(catalog)
            found = await states(catalog, library.machine_identifier)
            if deep:
                # Its episodes were listed with the section's: the show is there.
                assert summaries[1].strategy == "section"
                assert found[show] == "ACTIVE"
                assert {found[key] for key in (*seasons, *episodes)} == {"ACTIVE"}
            else:
                # Nothing of it was listed: MISSING, and its children with it.
                assert {found[key] for key in (show, *seasons, *episodes)} == {"MISSING"}


async def test_finalize_keeps_parents_of_seen_children(
    library: EmuServer, client: PlexClient, catalog: Catalog
) -> None:
    await sync_all(client, catalog)
    show, seasons, _ = _first_show(library)
    season = seasons[0]
    kept, gone = library.item(season).children[:2]
    ((library_id,),) = await rows(catalog, "SELECT id FROM libraries WHERE section_key = '2'")
    every = {key for (key,) in await rows(catalog, "SELECT rating_key FROM items")}
    seen = every - {show, season, str(gone)}

    def finalize(store: CatalogStore) -> int:
        run_id = store.start_run(1, library_id, False, 100)
        with store.transaction():
            missing, _ = store.finalize_library(library_id, seen, [show], 100, 3600, run_id)
        store.finish_run(run_id, RunStatus.OK, {}, None, 100)
        return missing

    assert await on_catalog_thread(catalog, finalize) == 1
    found = await states(catalog, library.machine_identifier)
    # The show and the season hold a seen episode; the unseen episode goes missing.
    assert (found[show], found[season], found[str(kept)], found[str(gone)]) == (
        "ACTIVE",
        "ACTIVE",
        "ACTIVE",
        "MISSING",
    )
    await assert_invariants(catalog)


async def test_a_child_stored_under_a_missing_parent_revives_it(
    library: EmuServer, client: PlexClient, catalog: Catalog
) -> None:
    await sync_all(client, catalog)
    show, seasons, _ = _first_show(library)

    ((library_id,),) = await rows(catalog, "SELECT id FROM libraries WHERE section_key = '2'")

    def break_and_mend(store: CatalogStore) -> tuple[list[str], int, list[str]]:
        with store.transaction() as conn:
            conn.execute(
                "UPDATE items SET state = 'MISSING' WHERE rating_key IN (?, ?)",
                (show, seasons[0]),
            )
        broken = store.invariant_violations()
        run_id = store.start_run(1, library_id, False, 200)
        with store.transaction():
            revived = store.revive_parents(library_id, 200, run_id)
        store.conn.execute("UPDATE sync_runs SET status = 'ok'")
        return broken, revived, store.invariant_violations()

    broken, revived, after = await on_catalog_thread(catalog, break_and_mend)
    assert any(f"show {show} is MISSING" in problem for problem in broken), broken
    assert revived == 2
    assert after == []


# --- run rows ---------------------------------------------------------------------------------


async def test_opening_the_catalog_fails_runs_left_running(
    client: PlexClient, tmp_path: Path
) -> None:
    path = tmp_path / "c.db"
    catalog = await Catalog.open(path)
    server = await prepare_server(client, catalog)
    await catalog.call(CatalogStore.start_run, server.server_id, None, False, 100)
    await catalog.close()  # as if the process had been killed mid-run
    catalog = await Catalog.open(path)
    try:
        assert catalog.interrupted_runs == 1
        await assert_invariants(catalog)
        assert await rows(catalog, "SELECT status, error FROM sync_runs") == [
            ("failed", "interrupted")
        ]
    finally:
        await catalog.close()


async def test_sqlite_errors_leave_the_catalog_typed(catalog: Catalog) -> None:
    with pytest.raises(CatalogError, match="OperationalError"):
        await catalog.call(CatalogStore.query, "SELECT * FROM no_such_table")
    await catalog.close()
    with pytest.raises(CatalogError, match="closed"):
        await catalog.call(CatalogStore.query, "SELECT 1")


async def test_an_unexpected_fault_fails_the_run_and_is_not_raised(
    client: PlexClient, catalog: Catalog, caplog: pytest.LogCaptureFixture
) -> None:
    server = await prepare_server(client, catalog)
    with patch(
        "custom_components.retrovue.engine.store.writes.build_rows", side_effect=KeyError("boom")
    ):
        summary = await sync_library(client, catalog, server, "1")
    assert summary.status == "failed"
    assert summary.error == "internal error: KeyError: 'boom'"
    assert "sync failed unexpectedly" in caplog.text
    await assert_invariants(catalog)


# --- expansions -------------------------------------------------------------------------------


async def test_an_expansion_short_of_the_counts_is_retried(
    library: EmuServer, client: PlexClient, catalog: Catalog
) -> None:
    """A show whose expansion returns fewer episodes than its leafCount stays un-hydrated."""
    show, _, episodes = _first_show(library)
    real = EmuServer.leaf_count
    with patch.object(
        EmuServer,
        "leaf_count",
        lambda self, item: real(self, item) + (5 if str(item.rating_key) == show else 0),
    ):
        library.invalidate()
        _, summaries = await sync_all(client, catalog)
        assert summaries[1].status == "ok"
        assert summaries[1].errors == 1
        (hydrated, error) = (
            await rows(
                catalog,
                "SELECT children_hydrated, last_error FROM items WHERE rating_key = ?",
                show,
            )
        )[0]
        assert hydrated == 0
        assert "expansion returned" in error
        # The next light run expands it again (and again finds it short).
        _, summaries = await sync_all(client, catalog)
        assert summaries[1].expanded_shows >= 1
    library.invalidate()
    _, summaries = await sync_all(client, catalog)
    assert summaries[1].errors == 0
    found = await states(catalog, library.machine_identifier)
    assert {found[key] for key in episodes} == {"ACTIVE"}
    await assert_invariants(catalog)


# --- retries and hygiene ----------------------------------------------------------------------


class _EmptyPageOnce(PlexEmulator):
    """A server that answers one listing page mid-way with no entries (a short page)."""

    def __init__(self, server: EmuServer) -> None:
        super().__init__(server)
        self.emptied = 0

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        response = await super()._handle(request)
        start = request.headers.get("X-Plex-Container-Start") or request.query.get(
            "X-Plex-Container-Start"
        )
        if (
            self.emptied
            or start in (None, "0")
            or not isinstance(response, web.Response)
            or not isinstance(response.body, bytes)
            or not response.body.startswith(b"{")
        ):
            return response
        data = json.loads(response.body)
        container = data["MediaContainer"]
        if not container.get("Metadata"):
            return response
        self.emptied += 1
        container.pop("Metadata")
        container["size"] = 0
        return web.json_response(data)


async def test_an_empty_page_before_the_end_is_asked_again(
    session: aiohttp.ClientSession, catalog: Catalog
) -> None:
    library = generate_server(seed=9, movies=10, shows=0, token=TOKEN)
    async with _EmptyPageOnce(library) as emulator:
        client = PlexClient(session, emulator.url, TOKEN, page_size=4, retries=0, backoff=0)
        _, summaries = await sync_all(client, catalog, deep=True)
        assert emulator.emptied == 1
    assert summaries[0].status == "ok", summaries[0].error
    assert summaries[0].processed == 10


def test_urls_are_kept_without_user_info() -> None:
    client = PlexClient(
        aiohttp.ClientSession.__new__(aiohttp.ClientSession),
        "http://user:secret@10.0.0.5:32400/",
        "t",
    )
    assert client.url == "http://10.0.0.5:32400"
    assert "secret" not in client.name


def test_a_part_outside_its_media_is_a_warning() -> None:
    entry = {
        "ratingKey": "1",
        "title": "Film",
        "type": "movie",
        "Media": [{"id": 1}],
        "Part": [{"id": 1, "file": "/x.mkv"}],
    }
    for body, ctype in (
        (json.dumps({"MediaContainer": {"Metadata": [entry]}}).encode(), "application/json"),
        (
            b'<MediaContainer><Video ratingKey="1" title="Film" type="movie"><Media id="1"/>'
            b'<Part id="1" file="/x.mkv"/></Video></MediaContainer>',
            "text/xml",
        ),
    ):
        (item,) = parse_listing(body, ctype, kinds=(ItemKind.MOVIE,)).items
        assert item.warnings == ("Part outside Media ignored",)


async def test_a_show_with_a_warning_is_still_expanded_by_a_deep_run(
    library: EmuServer, client: PlexClient, catalog: Catalog
) -> None:
    """Its row is not overwritten, but a deep run expands it like every other show."""
    await sync_all(client, catalog)
    shows = sum(1 for item in library.items.values() if item.type == "show")
    library.faults.add(
        Fault(FaultKind.BAD_ITEM, endpoint="section_all", times=1, variant="bad_added_at")
    )
    server = await prepare_server(client, catalog)
    summary = await sync_library(client, catalog, server, "2", deep=True)
    assert summary.status == "ok"
    assert summary.errors == 1
    assert summary.expanded_shows == shows
    await assert_invariants(catalog)
