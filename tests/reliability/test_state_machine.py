"""Random edits of an emulated Plex server, each sync checked against what the engine promises.

A hypothesis `RuleBasedStateMachine` edits a small movie library and a small show library on
an emulator served over real HTTP (add, remove, rename, replace files, move episodes between
seasons, watch, take items offline and bring them back with their ratingKeys), lets time pass
as Plex's clock would (every edit moves `updatedAt`; a scan interval goes by before every
sync), answers JSON or XML, and runs light and deep syncs into one catalog file, some of them
while Plex changes (one edit lands between two requests of the run). The emulator is the
model: after every sync the catalog is compared with it, as far as that kind of run promises
(see the docstring of `engine/sync/__init__.py`).

After every sync: the runs end `ok` (a run during which Plex changed may fail, never with an
internal error), the catalog's invariants hold, and nothing Plex serves is MISSING or DELETED
unless it was offline when the catalog last looked (nothing it held present is taken away).

After a light sync (only what changed is listed, and the shows):
- every item Plex serves is present with its kind, title, parents, index, year and
  `updatedAt`; a show also with its childCount, leafCount and viewedLeafCount. An item that
  came back with its old `updatedAt` may be unseen yet;
- nothing Plex removed is present, but for what nothing Plex reports tells a light run: a
  season whose episodes all moved to other seasons (childCount and leafCount stay), and as
  many removed movies (or episodes of a show) as there are unseen returned ones (the counts
  agree). Such a season keeps no episode Plex serves;
- parts equal Plex's, but for items whose file was replaced since the last deep sync (a light
  run may not see that, documented), which hold the catalog's previous parts or Plex's new ones.

After a deep sync (everything is listed and expanded): the catalog's present items are exactly
Plex's with every stored field (parents' titles and watch state included), parts are exactly
Plex's, and every removed item the catalog held is MISSING (or DELETED after the retention).

Five engine bugs the machine found are fixed; each keeps a regression test of its own at the
end, and the machine no longer steers around any of them.

`RETROVUE_STATE_EXAMPLES` (read once) sets the number of examples for longer runs.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Coroutine
from functools import partial
import os
from pathlib import Path
import shutil
import tempfile
from typing import Any, Final

import aiohttp
from aiohttp import web
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)
import pytest

from custom_components.retrovue.engine.plex import PlexClient
from custom_components.retrovue.engine.states import PRESENT_STATES
from custom_components.retrovue.engine.store import Catalog, CatalogStore
from custom_components.retrovue.engine.sync import SyncSummary, prepare_server, sync_library
from tests.catalog_probe import on_catalog_thread
from tests.emulator import EPISODE, MOVIE, SEASON, SHOW, EmuItem, EmuServer, PlexEmulator
from tests.engine.helpers import expected_items, expected_parts, stored_items
from tests.reliability.invariants import assert_invariants

TOKEN: Final = "state-machine-token-3b9e"
MOVIES: Final = "1"
SHOWS: Final = "2"
START: Final = 1_800_000_000
# Seconds Plex's clock moves between two edits (updatedAt stamps stay distinct and ordered).
EDIT_SECONDS: Final = 7
# Seconds between the last edit and a sync (a scan interval): more than the light window's
# margin (UPDATED_SINCE_MARGIN), so what changed before the last run is out of the window and
# an item coming back with its old `updatedAt` must be found some other way.
SYNC_GAP: Final = 900
RETENTION_DAYS: Final = 30

_ENV_EXAMPLES: Final = os.environ.get("RETROVUE_STATE_EXAMPLES", "").strip()
EXAMPLES: Final = int(_ENV_EXAMPLES) if _ENV_EXAMPLES else 80
STEPS: Final = 30

_TITLE_ALPHABET: Final = st.characters(
    codec="utf-8", exclude_categories=("Cc", "Cs", "Co", "Cn", "Zl", "Zp")
)
TITLES: Final = st.one_of(
    st.sampled_from(["The Thing", "Alien", "Amélie", "Tom & Jerry", 'Say "When"', "<b>"]),
    st.text(_TITLE_ALPHABET, min_size=1, max_size=8),
)
YEARS: Final = st.none() | st.integers(1900, 2030)
SUMMARIES: Final = st.text(_TITLE_ALPHABET, max_size=12)
# Episodes per season of a new show (one to three seasons).
SEASONS: Final = st.lists(st.integers(1, 3), min_size=1, max_size=3)
WATCH: Final = st.tuples(st.integers(0, 3), st.sampled_from([None, 0, 90_000]))

type PartRows = frozenset[tuple[str, str, str, int]]
type Edit = Callable[[], object]


class _Clock:
    """Plex's clock, which is also the wall clock the engine reads."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        """Return the current time in epoch seconds."""
        return self.now


# --- what the catalog holds --------------------------------------------------------------------

_ITEM_SQL: Final = """
    SELECT rating_key, kind, title, parent_rating_key, grandparent_rating_key, index_number,
           parent_index, year, updated_at_plex, child_count, leaf_count, viewed_leaf_count,
           parent_title, grandparent_title, view_count, last_viewed_at, view_offset, state
    FROM items
"""
# Fields a light run keeps current for every item Plex serves: kind … updatedAt.
_LIGHT_FIELDS: Final = 8
# Shows: their childCount, leafCount and viewedLeafCount too (every run lists the shows).
_SHOW_FIELDS: Final = 11
# Everything (a deep run): parents' titles and watch state as well; the state comes last.
_ALL_FIELDS: Final = 16


def _catalog_items(store: CatalogStore) -> dict[str, tuple[Any, ...]]:
    """Return ratingKey → (kind, title, …, state) for every stored item, watch zeros as 0."""
    found: dict[str, tuple[Any, ...]] = {}
    for row in store.query(_ITEM_SQL):
        values = tuple(row)
        found[str(values[0])] = (
            *values[1:11],
            values[11] or 0,
            values[12],
            values[13],
            values[14] or 0,
            values[15],
            values[16] or 0,
            values[17],
        )
    return found


def _catalog_parts(store: CatalogStore) -> dict[str, PartRows]:
    """Return ratingKey → (ratingKey, part id, file, size) of its stored parts."""
    found: dict[str, set[tuple[str, str, str, int]]] = {}
    for rating_key, part_id, path, size in store.query(
        "SELECT i.rating_key, p.part_id, p.plex_path, p.size FROM parts AS p "
        "JOIN items AS i ON i.id = p.item_id"
    ):
        key = str(rating_key)
        found.setdefault(key, set()).add((key, str(part_id), str(path), int(size)))
    return {key: frozenset(parts) for key, parts in found.items()}


# --- what Plex serves --------------------------------------------------------------------------


def _expected_row(server: EmuServer, item: EmuItem) -> tuple[Any, ...]:
    """Return the item as the catalog should hold it (the columns of `_catalog_items`)."""
    leaf = item.is_leaf
    parent = server.items[item.parent_rk] if item.parent_rk is not None else None
    grandparent = (
        server.items[parent.parent_rk] if parent is not None and parent.parent_rk else None
    )
    if item.type == SHOW:
        counts: tuple[Any, ...] = (
            len(item.children),
            server.leaf_count(item),
            server.viewed_leaf_count(item),
        )
    elif item.type == SEASON:
        counts = (None, len(item.children), server.viewed_leaf_count(item))
    else:
        counts = (None, None, 0)
    return (
        item.type,
        item.title,
        str(parent.rating_key) if parent else None,
        str(grandparent.rating_key) if grandparent else None,
        item.index,
        parent.index if item.type == EPISODE and parent else None,
        item.year if item.type in (MOVIE, SHOW) else None,
        item.updated_at,
        *counts,
        parent.title if parent else None,
        grandparent.title if grandparent else None,
        item.view_count if leaf else 0,
        item.last_viewed_at if leaf else None,
        (item.view_offset or 0) if leaf else 0,
    )


def _parts_by_key(server: EmuServer) -> dict[str, PartRows]:
    found: dict[str, set[tuple[str, str, str, int]]] = {}
    for part in expected_parts(server):
        found.setdefault(part[0], set()).add(part)
    return {key: frozenset(parts) for key, parts in found.items()}


class _EditingEmulator(PlexEmulator):
    """An emulator that lets Plex change just before it answers a chosen request."""

    def __init__(self, server: EmuServer) -> None:
        super().__init__(server)
        self.answered = 0
        #: (which request, edit): the edit is made before the first request chosen is answered.
        self.pending_edit: tuple[Callable[[web.Request], bool], Edit] | None = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.answered += 1
        if self.pending_edit is not None and self.pending_edit[0](request):
            edit = self.pending_edit[1]
            self.pending_edit = None
            edit()
        return await super()._handle(request)


# --- the machine -------------------------------------------------------------------------------


class CatalogStateMachine(RuleBasedStateMachine):
    """Edit an emulated server at random; sync lightly or deeply; check the catalog each time."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = _Clock(START)
        self.server = EmuServer(machine_identifier="state-machine-server", token=TOKEN)
        self.server.clock = self.clock
        self.server.add_section(MOVIE, "Movies", key=MOVIES)
        self.server.add_section(SHOW, "TV Shows", key=SHOWS)
        self.tmp = Path(tempfile.mkdtemp(prefix="retrovue-state-"))
        # A loop of its own, never set as the thread's current one: closing it must not leave the
        # test harness's later tests without one (pytest-asyncio on the newest lane).
        self.runner = asyncio.Runner(loop_factory=asyncio.new_event_loop)
        self.emulator = _EditingEmulator(self.server)
        self.session: aiohttp.ClientSession | None = None
        self.catalog: Catalog | None = None
        self.client: PlexClient
        self.run(self._open())
        # The catalog's states after the last sync.
        self.states: dict[str, str] = {}
        # Items that came back (`plug_back`) and were not seen present since.
        self.returned: set[str] = set()
        # Subtrees Plex stopped listing (`unplug`), to come back with their ratingKeys.
        self.offline: list[list[EmuItem]] = []
        # Items whose file was replaced since the last deep sync.
        self.replaced: set[str] = set()
        # Parts the catalog held after the last sync.
        self.catalog_parts: dict[str, PartRows] = {}
        # Plex changed during a run since the last deep sync.

    # --- plumbing ----------------------------------------------------------------------------

    def run[T](self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on this test case's event loop."""
        return self.runner.run(coro)

    async def _open(self) -> None:
        await self.emulator.start()
        self.session = aiohttp.ClientSession()
        self.client = PlexClient(
            self.session, self.emulator.url, TOKEN, page_size=3, retries=2, backoff=0, timeout=5
        )
        self.catalog = await Catalog.open(self.tmp / "catalog.db")

    async def _close(self) -> None:
        if self.catalog is not None:
            await self.catalog.close()
        if self.session is not None:
            await self.session.close()
        await self.emulator.stop()

    def teardown(self) -> None:
        """Close the catalog, the session and the emulator, then the loop."""
        try:
            self.run(self._close())
        finally:
            self.runner.close()
            shutil.rmtree(self.tmp, ignore_errors=True)

    def keys(self, kind: str) -> list[int]:
        """Return the rating keys of one kind, sorted."""
        return sorted(rk for rk, item in self.server.items.items() if item.type == kind)

    def has(self, kind: str) -> bool:
        """Return whether the server holds an item of a kind."""
        return any(item.type == kind for item in self.server.items.values())

    def new_show(self, title: str, year: int | None, seasons: list[int], first: int) -> None:
        """Add a show with seasons `first`, `first + 1`, … holding that many episodes each."""
        show = self.server.add_show(SHOWS, title, year)
        for number, episodes in enumerate(seasons, start=first):
            season = self.server.add_season(show.rating_key, number)
            for index in range(1, episodes + 1):
                self.server.add_episode(season.rating_key, index, f"Episode {index}")

    def remove_with_empty_parents(self, rating_key: int) -> None:
        """Remove an item, then its season and show if they are left empty (as Plex does)."""
        item = self.server.item(rating_key)
        parent = item.parent_rk
        self.server.remove_item(rating_key)
        while parent is not None and not self.server.items[parent].children:
            above = self.server.items[parent].parent_rk
            self.server.remove_item(parent)
            parent = above

    # --- setup -------------------------------------------------------------------------------

    @initialize(
        xml=st.booleans(),
        movies=st.lists(st.tuples(TITLES, YEARS), max_size=3),
        shows=st.lists(st.tuples(TITLES, SEASONS, st.integers(0, 1)), max_size=2),
    )
    def populate(
        self,
        xml: bool,
        movies: list[tuple[str, int | None]],
        shows: list[tuple[str, list[int], int]],
    ) -> None:
        """Start with a few movies and shows; Plex answers XML or JSON."""
        self.server.force_xml = xml
        for title, year in movies:
            self.server.add_movie(MOVIES, title, year)
        for title, seasons, first in shows:
            self.new_show(title, None, seasons, first)

    # --- edits -------------------------------------------------------------------------------
    # Each edit is chosen first (everything it needs is drawn), then made: a rule makes it at
    # once, `sync_while_plex_changes` in the middle of a run.

    def make(self, edit: Edit) -> None:
        """Let Plex's clock move on (so `updatedAt` moves like Plex's), then edit."""
        self.clock.now += EDIT_SECONDS
        edit()

    def pick(self, data: st.DataObject, kinds: tuple[str, ...], label: str) -> int:
        """Draw the ratingKey of an item of some kinds."""
        keys = sorted(rk for rk, item in self.server.items.items() if item.type in kinds)
        return data.draw(st.sampled_from(keys), label=label)

    def _choose_add_movie(self, data: st.DataObject) -> Edit:
        title, year = data.draw(TITLES, label="title"), data.draw(YEARS, label="year")
        return lambda: self.server.add_movie(MOVIES, title, year)

    def _choose_add_show(self, data: st.DataObject) -> Edit:
        title, year = data.draw(TITLES, label="title"), data.draw(YEARS, label="year")
        seasons = data.draw(SEASONS, label="episodes per season")
        first = data.draw(st.integers(0, 1), label="first season")
        return lambda: self.new_show(title, year, seasons, first)

    def _choose_add_episode(self, data: st.DataObject, *, new_show: bool = True) -> Edit:
        shows = [None, *self.keys(SHOW)] if new_show else self.keys(SHOW)
        show_rk = data.draw(st.sampled_from(shows), label="show (None: new)")
        seasons = self.server.item(show_rk).children if show_rk is not None else []
        season_rk = data.draw(st.sampled_from([None, *seasons]), label="season (None: new)")
        title = data.draw(TITLES, label="title")

        def add() -> None:
            show = (
                self.server.item(show_rk)
                if show_rk is not None
                else self.server.add_show(SHOWS, f"Show of {title}")
            )
            if season_rk is None:
                number = max((self.server.item(rk).index or 0 for rk in show.children), default=0)
                season = self.server.add_season(show.rating_key, number + 1)
            else:
                season = self.server.item(season_rk)
            children = season.children
            index = max((self.server.item(rk).index or 0 for rk in children), default=0) + 1
            self.server.add_episode(season.rating_key, index, title)

        return add

    def _choose_remove(self, data: st.DataObject, kind: str) -> Edit:
        rk = self.pick(data, (kind,), kind)
        return lambda: self.remove_with_empty_parents(rk)

    def _choose_change_metadata(self, data: st.DataObject) -> Edit:
        rk = self.pick(data, (MOVIE, SHOW, SEASON, EPISODE), "item")
        kind = self.server.item(rk).type
        fields = ["title", "summary"] + (["year"] if kind in (MOVIE, SHOW) else [])
        field = data.draw(st.sampled_from(fields), label="field")
        value = data.draw(
            {"title": TITLES, "summary": SUMMARIES, "year": YEARS}[field], label=field
        )
        return lambda: self.server.change_item(rk, **{field: value})

    def _choose_replace_file(self, data: st.DataObject) -> Edit:
        rk = self.pick(data, (MOVIE, EPISODE), "item")

        def replace() -> None:
            self.server.replace_file(rk)
            self.replaced.add(str(rk))

        return replace

    def _choose_move_episode(self, data: st.DataObject) -> Edit:
        rk = self.pick(data, (EPISODE,), "episode")
        source = self.server.item(self.server.item(rk).parent_rk or -1)
        show = self.server.item(source.parent_rk or -1)
        others = [season for season in show.children if season != source.rating_key]
        target_rk = data.draw(st.sampled_from([None, *others]), label="season (None: new)")

        def move() -> None:
            target = target_rk
            if target is None:
                number = max(self.server.item(s).index or 0 for s in show.children) + 1
                target = self.server.add_season(show.rating_key, number).rating_key
            self.server.move_episode(rk, target)
            if not source.children:
                self.server.remove_item(source.rating_key)

        return move

    def _choose_watch(self, data: st.DataObject) -> Edit:
        rk = self.pick(data, (MOVIE, EPISODE), "item")
        count, offset = data.draw(WATCH, label="view count, offset")
        return lambda: self.server.set_watch_state(
            rk, count, self.clock.now if count else None, offset or None
        )

    def unpluggable(self) -> list[int]:
        """Return what can go offline: anything."""
        return sorted(self.server.items)

    def _choose_unplug(self, data: st.DataObject) -> Edit:
        rk = data.draw(st.sampled_from(self.unpluggable()), label="item")

        def unplug() -> None:
            taken = self.server.take_item(rk)
            self.offline.append(taken)
            self.returned -= {str(item.rating_key) for item in taken}

        return unplug

    def can_come_back(self, *, shows: bool = True) -> list[int]:
        """Return the offline items whose parent is there (their ratingKeys), shows or not."""
        return [
            items[0].rating_key
            for items in self.offline
            if (shows or items[0].type != SHOW)
            and (items[0].parent_rk is None or items[0].parent_rk in self.server.items)
        ]

    def _choose_plug_back(self, data: st.DataObject, *, shows: bool = True) -> Edit:
        rk = data.draw(st.sampled_from(self.can_come_back(shows=shows)), label="item")
        bump = data.draw(st.booleans(), label="new updatedAt")

        def plug_back() -> None:
            items = next(items for items in self.offline if items[0].rating_key == rk)
            self.offline.remove(items)
            self.server.restore_items(items, bump_updated_at=bump)
            self.returned.update(str(item.rating_key) for item in items)

        return plug_back

    def edits(self, *, during_run: bool = False) -> dict[str, Callable[[st.DataObject], Edit]]:
        """Return the edits that can be made now, by name, each as its chooser.

        `during_run`: the edit lands between two requests of a run.
        """
        edits: dict[str, Callable[[st.DataObject], Edit]] = {
            "add_movie": self._choose_add_movie,
            "add_show": self._choose_add_show,
            "add_episode": self._choose_add_episode,
        }
        for kind in (MOVIE, EPISODE, SEASON, SHOW):
            if self.has(kind):
                edits[f"remove_{kind}"] = partial(self._choose_remove, kind=kind)
        if self.server.items:
            edits["change_metadata"] = self._choose_change_metadata
        if self.unpluggable():
            edits["unplug"] = self._choose_unplug
        if self.has(MOVIE) or self.has(EPISODE):
            edits |= {"replace_file": self._choose_replace_file, "watch": self._choose_watch}
        if self.has(EPISODE):
            edits["move_episode"] = self._choose_move_episode
        if self.can_come_back():
            edits["plug_back"] = self._choose_plug_back
        return edits

    @rule(data=st.data())
    def add_movie(self, data: st.DataObject) -> None:
        """Add a movie."""
        self.make(self._choose_add_movie(data))

    @rule(data=st.data())
    def add_show(self, data: st.DataObject) -> None:
        """Add a show with its seasons and episodes."""
        self.make(self._choose_add_show(data))

    @rule(data=st.data())
    def add_episode(self, data: st.DataObject) -> None:
        """Add an episode to an existing season, a new season, or a new show."""
        self.make(self._choose_add_episode(data))

    @precondition(lambda self: self.has(MOVIE))
    @rule(data=st.data())
    def remove_movie(self, data: st.DataObject) -> None:
        """Remove a movie."""
        self.make(self._choose_remove(data, MOVIE))

    @precondition(lambda self: self.has(EPISODE))
    @rule(data=st.data())
    def remove_episode(self, data: st.DataObject) -> None:
        """Remove an episode (and its season and show if they are left empty, as Plex does)."""
        self.make(self._choose_remove(data, EPISODE))

    @precondition(lambda self: self.has(SEASON))
    @rule(data=st.data())
    def remove_season(self, data: st.DataObject) -> None:
        """Remove a season with its episodes (and its show if it is left empty)."""
        self.make(self._choose_remove(data, SEASON))

    @precondition(lambda self: self.has(SHOW))
    @rule(data=st.data())
    def remove_show(self, data: st.DataObject) -> None:
        """Remove a show with everything under it."""
        self.make(self._choose_remove(data, SHOW))

    @precondition(lambda self: bool(self.server.items))
    @rule(data=st.data())
    def change_metadata(self, data: st.DataObject) -> None:
        """Change an item's title, year or summary (Plex bumps its `updatedAt`)."""
        self.make(self._choose_change_metadata(data))

    @precondition(lambda self: self.has(MOVIE) or self.has(EPISODE))
    @rule(data=st.data())
    def replace_file(self, data: st.DataObject) -> None:
        """Replace a movie's or episode's file (new part id, path and size; `updatedAt` stays)."""
        self.make(self._choose_replace_file(data))

    @precondition(lambda self: self.has(EPISODE))
    @rule(data=st.data())
    def move_episode(self, data: st.DataObject) -> None:
        """Move an episode to another season of its show, maybe a new one (Plex re-matched it).

        Plex bumps the episode's `updatedAt`; a season left empty goes away.
        """
        self.make(self._choose_move_episode(data))

    @precondition(lambda self: self.has(MOVIE) or self.has(EPISODE))
    @rule(data=st.data())
    def watch(self, data: st.DataObject) -> None:
        """Change a movie's or episode's watch state (`updatedAt` stays)."""
        self.make(self._choose_watch(data))

    @precondition(lambda self: bool(self.unpluggable()))
    @rule(data=st.data())
    def unplug(self, data: st.DataObject) -> None:
        """Take an item's share offline: Plex stops listing it and everything under it."""
        self.make(self._choose_unplug(data))

    @precondition(lambda self: bool(self.can_come_back()))
    @rule(data=st.data())
    def plug_back(self, data: st.DataObject) -> None:
        """Bring an offline item back with its ratingKey (and its `updatedAt`, or a new one)."""
        self.make(self._choose_plug_back(data))

    @rule(seconds=st.sampled_from([60, 7 * 3600, (RETENTION_DAYS + 1) * 86400]))
    def time_passes(self, seconds: int) -> None:
        """Let a minute, several hours (a full movie listing is due) or a month pass."""
        self.clock.now += seconds

    @rule(xml=st.booleans())
    def answer_format(self, xml: bool) -> None:
        """Plex (or a proxy in front of it) answers XML (or JSON again) when JSON is asked."""
        self.server.force_xml = xml

    # --- syncs -------------------------------------------------------------------------------

    async def _sync(self, deep: bool, concurrency: int) -> list[SyncSummary]:
        assert self.catalog is not None
        context = await prepare_server(self.client, self.catalog, clock=self.clock)
        return [
            await sync_library(
                self.client,
                self.catalog,
                context,
                section.key,
                deep=deep,
                retention_days=RETENTION_DAYS,
                expand_concurrency=concurrency,
                clock=self.clock,
            )
            for section in context.sections
        ]

    def sync(
        self, *, deep: bool, concurrency: int = 2, changing: bool = False
    ) -> tuple[dict[str, tuple[Any, ...]], dict[str, PartRows], bool]:
        """Sync both libraries; check what every run promises.

        Return the catalog's items and parts, and whether both runs ended ok. Only a run
        during which Plex changed (`changing`) may fail (nothing is marked MISSING then).
        """
        returned = set(self.returned)
        self.clock.now += SYNC_GAP
        summaries = self.run(self._sync(deep, concurrency))
        # Back during this run: Plex may have confirmed them gone before they came back.
        came_back = self.returned - returned
        outcomes = [(s.library_key, s.status, s.error) for s in summaries]
        assert [key for key, _, _ in outcomes] == [MOVIES, SHOWS]
        assert all((status == "ok") == (error is None) for _, status, error in outcomes)
        failed = [error or "" for _, status, error in outcomes if status != "ok"]
        # Never a fault of the engine's own (an exception it did not expect); a run fails only
        # when Plex changed during it.
        assert not any(error.startswith("internal error") for error in failed), outcomes
        if not changing:
            assert not failed, outcomes
        assert self.catalog is not None
        self.run(assert_invariants(self.catalog))
        stored = self.run(on_catalog_thread(self.catalog, _catalog_items))
        parts = self.run(on_catalog_thread(self.catalog, _catalog_parts))
        # No false MISSING: a run never takes away an item Plex serves, and what Plex served
        # all along (never unplugged since the catalog last held it present) stays present.
        false_missing = {
            rk: (self.states.get(rk), row[-1])
            for rk, row in stored.items()
            if int(rk) in self.server.items
            and row[-1] not in PRESENT_STATES
            and rk not in came_back
            and (self.states.get(rk) in PRESENT_STATES or rk not in self.returned)
        }
        assert not false_missing, f"served by Plex but not present (before, after): {false_missing}"
        self.returned -= {rk for rk, row in stored.items() if row[-1] in PRESENT_STATES}
        return stored, parts, not failed

    def settle(self, stored: dict[str, tuple[Any, ...]], parts: dict[str, PartRows]) -> None:
        """Remember what the catalog holds after a sync (for the next run's checks)."""
        self.states = {rk: row[-1] for rk, row in stored.items()}
        self.catalog_parts = parts

    def expected_rows(self) -> dict[str, tuple[Any, ...]]:
        """Return ratingKey → the row the catalog should hold, for every item Plex serves."""
        return {str(rk): _expected_row(self.server, item) for rk, item in self.server.items.items()}

    # The only rule without arguments: hypothesis tries it first, so light syncs come often.
    @rule()
    def light_sync(self) -> None:
        """Sync lightly (only what changed is listed, and the shows); check what it promises."""
        stored, parts, ok = self.sync(deep=False)
        if not ok:
            self.settle(stored, parts)
            return
        expected = self.expected_rows()
        present = {rk: row for rk, row in stored.items() if row[-1] in PRESENT_STATES}

        def fields(rk: str, row: tuple[Any, ...]) -> tuple[Any, ...]:
            return row[: _SHOW_FIELDS if row[0] == SHOW else _LIGHT_FIELDS]

        wrong = {
            rk: (fields(rk, present[rk]), fields(rk, row))
            for rk, row in expected.items()
            if rk in present and fields(rk, present[rk]) != fields(rk, row)
        }
        assert not wrong, f"light sync: catalog → expected: {wrong}"
        # Served but not present: only items that came back unseen (`sync` checked that).
        unseen = {rk: row for rk, row in expected.items() if rk not in present}
        stale = {rk: row for rk, row in present.items() if rk not in expected}
        # Every run lists the shows: they are always right.
        assert not any(row[0] == SHOW for row in (*unseen.values(), *stale.values())), (
            unseen,
            stale,
        )
        # A light run misses a removed movie only when a returned one it did not see (its
        # `updatedAt` is old) makes the counts agree; the same for a show's episodes and its
        # leafCount.
        for kind in (MOVIE, EPISODE):
            # Column 3: the show of an episode (None for every movie: one library-wide count).
            missed = Counter(row[3] for row in stale.values() if row[0] == kind)
            missed.subtract(row[3] for row in unseen.values() if row[0] == kind)
            assert not any(missed.values()), (kind, missed, unseen, stale)
        # A removed season stays present when nothing Plex counts changed: its episodes moved
        # to another season, or they went and as many came back unseen (see above). It never
        # keeps an episode Plex serves.
        for rk, row in stale.items():
            if row[0] == SEASON:
                kept = [
                    key
                    for key, child in present.items()
                    if child[0] == EPISODE and child[2] == rk and key in expected
                ]
                assert not kept, f"removed season {rk} keeps served episodes {kept}"

        plex_parts = _parts_by_key(self.server)
        for rk in expected.keys() & present.keys():
            have, want = parts.get(rk, frozenset()), plex_parts.get(rk, frozenset())
            if rk in self.replaced:
                assert have in (want, self.catalog_parts.get(rk, frozenset())), (rk, have, want)
                if have == want:
                    self.replaced.discard(rk)
            else:
                assert have == want, (rk, have, want)
        self.settle(stored, parts)

    @rule(concurrency=st.integers(1, 4))
    def deep_sync(self, concurrency: int) -> None:
        """Sync deeply (everything is listed and expanded); check the catalog equals Plex."""
        stored, parts, _ = self.sync(deep=True, concurrency=concurrency)
        assert self.catalog is not None
        mid = self.server.machine_identifier
        assert self.run(stored_items(self.catalog, mid)) == expected_items(self.server)
        present = {rk: row[:_ALL_FIELDS] for rk, row in stored.items() if row[-1] in PRESENT_STATES}
        expected = self.expected_rows()
        wrong = {
            rk: (present.get(rk), expected.get(rk))
            for rk in present.keys() | expected.keys()
            if present.get(rk) != expected.get(rk)
        }
        assert not wrong, f"deep sync: catalog → expected: {wrong}"
        # Parts of present items (a MISSING item keeps its parts until it is purged).
        assert {p for rk in present for p in parts.get(rk, ())} == expected_parts(self.server)
        gone = {
            rk: row[-1]
            for rk, row in stored.items()
            if int(rk) not in self.server.items and row[-1] not in ("MISSING", "DELETED")
        }
        assert not gone, f"removed from Plex but still present: {gone}"
        self.returned.clear()
        self.replaced.clear()
        self.settle(stored, parts)

    @rule(data=st.data(), deep=st.booleans(), after=st.integers(1, 12))
    def sync_while_plex_changes(self, data: st.DataObject, deep: bool, after: int) -> None:
        """Sync while Plex changes: one edit lands just before the run's `after`-th request.

        Checked: the run ends ok or failed, the invariants hold, nothing Plex serves is taken
        away. What the catalog holds is then checked by the next runs (a deep one: exactly).
        """
        edits = self.edits(during_run=True)
        edit = edits[data.draw(st.sampled_from(sorted(edits)), label="edit")](data)
        # One show expanded at a time: the requests come in the same order every time.
        target = self.emulator.answered + after
        self.emulator.pending_edit = (
            lambda _: self.emulator.answered >= target,
            partial(self.make, edit),
        )
        stored, parts, _ = self.sync(deep=deep, concurrency=1, changing=True)
        if self.emulator.pending_edit is not None:
            # The run made fewer requests: Plex changes after it.
            self.emulator.pending_edit = None
            self.make(edit)
        self.settle(stored, parts)


# Not cut off by the suite's timeout: a longer run (the environment variable), or hypothesis
# shrinking a failure (up to five minutes) before it prints the steps.
@pytest.mark.timeout(0 if _ENV_EXAMPLES else 900)
def test_catalog_follows_plex_through_random_edits_and_syncs() -> None:
    run_state_machine_as_test(
        CatalogStateMachine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        ),
    )


async def test_a_show_left_without_seasons_has_them_judged_by_a_light_sync(tmp_path: Path) -> None:
    # Found by the machine: populate(shows=[(…, [1], 1)]), light_sync(), unplug(the season),
    # light_sync() → "light sync left removed items present" (fixed: an expansion without
    # pages still counts).
    server = EmuServer(machine_identifier="empty-show", token=TOKEN)
    server.add_section(SHOW, "TV Shows", key=SHOWS)
    emptied = server.add_show(SHOWS, "Emptied")
    season = server.add_season(emptied.rating_key, 1)
    episode = server.add_episode(season.rating_key, 1, "Pilot")
    kept = server.add_show(SHOWS, "Kept")
    server.add_episode(server.add_season(kept.rating_key, 1).rating_key, 1, "Pilot")
    catalog = await Catalog.open(tmp_path / "catalog.db")
    try:
        async with PlexEmulator(server) as emulator, aiohttp.ClientSession() as session:
            client = PlexClient(session, emulator.url, TOKEN, page_size=3, retries=2, backoff=0)
            context = await prepare_server(client, catalog)
            assert (await sync_library(client, catalog, context, SHOWS)).status == "ok"
            server.take_item(season.rating_key)

            summary = await sync_library(client, catalog, context, SHOWS)

            assert summary.status == "ok"
            await assert_invariants(catalog)
            found = await on_catalog_thread(catalog, _catalog_items)
            assert {rk: row[-1] for rk, row in found.items()} == {
                str(emptied.rating_key): "ACTIVE",
                str(season.rating_key): "MISSING",
                str(episode.rating_key): "MISSING",
            } | {str(rk): "ACTIVE" for rk in server.items if rk != emptied.rating_key}
    finally:
        await catalog.close()


async def test_a_show_removed_during_a_sectionwide_expansion_goes_missing_next_run(
    tmp_path: Path,
) -> None:
    # Found by the machine: sync_while_plex_changes(deep=True, edit=unplug(the show), landing
    # before the section-wide season listing), then light_sync() → "show N could not be
    # expanded: not found (HTTP 404)" on every light run (fixed: drift is judged only for
    # shows the run listed).
    server = EmuServer(machine_identifier="raced-show", token=TOKEN)
    server.add_section(SHOW, "TV Shows", key=SHOWS)
    shows = [server.add_show(SHOWS, title) for title in ("Gone", "Kept")]
    for show in shows:
        server.add_episode(server.add_season(show.rating_key, 1).rating_key, 1, "Pilot")
    gone = shows[0]
    gone_keys = {
        str(key)
        for season in gone.children
        for key in (gone.rating_key, season, *server.item(season).children)
    }
    catalog = await Catalog.open(tmp_path / "catalog.db")
    emulator = _EditingEmulator(server)
    try:
        async with emulator, aiohttp.ClientSession() as session:
            client = PlexClient(session, emulator.url, TOKEN, page_size=3, retries=2, backoff=0)
            context = await prepare_server(client, catalog)
            assert (await sync_library(client, catalog, context, SHOWS)).status == "ok"
            # Gone just before the section-wide season listing (type 3) is answered.
            removed: list[int] = []

            def remove() -> None:
                server.remove_item(gone.rating_key)
                removed.append(gone.rating_key)

            emulator.pending_edit = (lambda request: request.query.get("type") == "3", remove)
            raced = await sync_library(client, catalog, context, SHOWS, deep=True)
            assert (raced.status, raced.strategy, removed) == ("ok", "section", [gone.rating_key])

            light = await sync_library(client, catalog, context, SHOWS)

            assert (light.status, light.error) == ("ok", None)
            await assert_invariants(catalog)
            found = await on_catalog_thread(catalog, _catalog_items)
            assert {rk for rk, row in found.items() if row[-1] == "MISSING"} == gone_keys
    finally:
        await catalog.close()


async def test_episodes_of_a_show_added_mid_run_wait_for_its_listing(
    tmp_path: Path,
) -> None:
    # Found by the machine: sync_while_plex_changes(deep=False, edit=add_show, landing after
    # the show listing), remove_show(that show), light_sync() → its episode stays present
    # (and deep_sync() → the catalog holds a season and an episode Plex never had listed).
    clock = _Clock(START)
    server = EmuServer(machine_identifier="orphans", token=TOKEN)
    server.clock = clock
    server.add_section(SHOW, "TV Shows", key=SHOWS)
    kept = server.add_show(SHOWS, "Kept")
    server.add_episode(server.add_season(kept.rating_key, 1).rating_key, 1, "Pilot")
    catalog = await Catalog.open(tmp_path / "catalog.db")
    emulator = _EditingEmulator(server)
    try:
        async with emulator, aiohttp.ClientSession() as session:
            client = PlexClient(session, emulator.url, TOKEN, page_size=3, retries=2, backoff=0)
            context = await prepare_server(client, catalog, clock=clock)
            assert (await sync_library(client, catalog, context, SHOWS, clock=clock)).status == "ok"
            clock.now += 60
            added: list[int] = []

            def add() -> None:
                show = server.add_show(SHOWS, "Brief")
                server.add_episode(server.add_season(show.rating_key, 1).rating_key, 1, "Pilot")
                added.append(show.rating_key)

            # Added just before the recently-updated season listing (type 3) is answered.
            emulator.pending_edit = (lambda request: request.query.get("type") == "3", add)
            raced = await sync_library(client, catalog, context, SHOWS, clock=clock)
            assert (raced.status, len(added)) == ("ok", 1)
            clock.now += 60
            server.remove_item(added[0])

            for deep in (False, True):
                summary = await sync_library(
                    client, catalog, context, SHOWS, deep=deep, clock=clock
                )

                assert summary.status == "ok"
                await assert_invariants(catalog)
                found = await on_catalog_thread(catalog, _catalog_items)
                present = {rk for rk, row in found.items() if row[-1] in PRESENT_STATES}
                assert present == {str(rk) for rk in server.items}, deep
    finally:
        await catalog.close()


async def test_an_item_listed_twice_by_a_shifting_expansion_is_stored_once(
    tmp_path: Path,
) -> None:
    # Found by the machine: sync_while_plex_changes(edit=move_episode or plug_back, landing
    # between two pages of a show's allLeaves) → the run fails with the IntegrityError.
    server = EmuServer(machine_identifier="shifting", token=TOKEN)
    server.add_section(SHOW, "TV Shows", key=SHOWS)
    show = server.add_show(SHOWS, "Shifting")
    first, second = (server.add_season(show.rating_key, number) for number in (1, 2))
    for season in (first, second):
        for index in (1, 2, 3):
            server.add_episode(season.rating_key, index, f"Episode {index}")
    last = second.children[-1]
    catalog = await Catalog.open(tmp_path / "catalog.db")
    emulator = _EditingEmulator(server)
    try:
        async with emulator, aiohttp.ClientSession() as session:
            client = PlexClient(session, emulator.url, TOKEN, page_size=3, retries=2, backoff=0)
            context = await prepare_server(client, catalog)
            # S02E03 becomes S01E00 just before the second page of allLeaves is answered:
            # that page repeats the first page's last episode.
            emulator.pending_edit = (
                lambda request: (
                    "allLeaves" in request.path
                    and request.query.get("X-Plex-Container-Start") == "3"
                ),
                lambda: server.move_episode(last, first.rating_key, 0),
            )

            summary = await sync_library(client, catalog, context, SHOWS)

            assert (summary.strategy, summary.error) == ("per_show", None)
            await assert_invariants(catalog)
    finally:
        await catalog.close()


async def test_an_item_coming_back_watched_keeps_its_new_watch_state(tmp_path: Path) -> None:
    # Found by the machine: add_movie(), light_sync(), watch(it), unplug(it), light_sync(),
    # plug_back(it, same updatedAt), deep_sync() → view_count 0 in the catalog, 1 in Plex.
    clock = _Clock(START)
    server = EmuServer(machine_identifier="watched-while-away", token=TOKEN)
    server.clock = clock
    server.add_section(MOVIE, "Movies", key=MOVIES)
    server.add_movie(MOVIES, "Kept")
    movie = server.add_movie(MOVIES, "Away")
    catalog = await Catalog.open(tmp_path / "catalog.db")
    try:
        async with PlexEmulator(server) as emulator, aiohttp.ClientSession() as session:
            client = PlexClient(session, emulator.url, TOKEN, page_size=3, retries=2, backoff=0)
            context = await prepare_server(client, catalog, clock=clock)
            assert (
                await sync_library(client, catalog, context, MOVIES, clock=clock)
            ).status == "ok"
            clock.now += 60
            server.set_watch_state(movie.rating_key, 1, clock.now)
            away = server.take_item(movie.rating_key)
            assert (
                await sync_library(client, catalog, context, MOVIES, clock=clock)
            ).status == "ok"
            clock.now += 60
            server.restore_items(away)

            summary = await sync_library(client, catalog, context, MOVIES, deep=True, clock=clock)

            assert summary.status == "ok"
            row = (await on_catalog_thread(catalog, _catalog_items))[str(movie.rating_key)]
            assert (row[-1], row[13], row[14]) == ("ACTIVE", 1, movie.last_viewed_at)
    finally:
        await catalog.close()
