"""Live updates in, targeted refreshes out: merge a burst, then refresh once.

Notifications and webhooks arrive one item at a time, often hundreds in a few seconds (a
library scan). `LiveQueue` merges them into one `Targets` and hands it on once Plex has been
quiet for `quiet` seconds, or `max_delay` after the first of them, whichever comes first: a scan
that adds 300 episodes to 10 shows becomes about 10 show expansions, not 300 lookups (a show
with `expand_at` or more named seasons and episodes is expanded whole). Updates that arrive
while a batch is being refreshed wait for the next batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
import contextlib
from dataclasses import dataclass, field
import logging

from ..plex.notifications import (
    ActivityEvent,
    Notification,
    PlayingEvent,
    StatusEvent,
    TimelineEntry,
)
from ..policy import LiveAction, timeline_action
from .targeted import EXPAND_AT, Targets

LOGGER = logging.getLogger(__name__)

# Seconds of quiet before a batch is refreshed, and the most a first update waits.
QUIET: float = 1.0
MAX_DELAY: float = 3.0
# Plex metadata types (timeline `type`).
_SEASON, _EPISODE = 3, 4
# Activities whose end means their item changed, and the one that means a section was scanned.
_ITEM_ACTIVITIES = frozenset({"library.refresh.items", "library.update.item.metadata"})
_SECTION_ACTIVITY = "library.update.section"
_SCAN_COMPLETE = "Library scan complete"
# Playback states after which an item's watch state is re-read.
_WATCH_STATES = frozenset({"stopped", "paused"})


@dataclass(slots=True)
class LiveBatch:
    """What a batch of live updates asks for."""

    targets: Targets = field(default_factory=Targets)
    # Libraries (section keys) to run a light sync of: a scan of them completed.
    sections: set[str] = field(default_factory=set)
    # A scan completed without naming its library: every enabled library.
    all_sections: bool = False
    # How many live updates the batch merges.
    updates: int = 0
    # Where each named key came from: (source, event), e.g. ("websocket", "timeline").
    origins: dict[str, tuple[str, str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        """Return whether the batch asks for anything."""
        return bool(self.targets or self.sections or self.all_sections)


type Flush = Callable[[LiveBatch], Awaitable[None]]


class LiveQueue:
    """Merge live updates and flush them in batches (see the module's docstring)."""

    def __init__(
        self,
        flush: Flush,
        *,
        name: str = "",
        quiet: float = QUIET,
        max_delay: float = MAX_DELAY,
        expand_at: int = EXPAND_AT,
    ) -> None:
        """Call `flush` with each batch; `name` labels log lines."""
        self._flush = flush
        self._name = name
        self._quiet = quiet
        self._max_delay = max_delay
        self._expand_at = max(1, expand_at)
        self._batch = LiveBatch()
        # Seasons and episodes named per show, until the show is expanded whole.
        self._under: dict[str, set[str]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0

    # --- what comes in -----------------------------------------------------------------

    def feed(self, notifications: list[Notification]) -> None:
        """Take the notifications of one websocket message."""
        for note in notifications:
            if isinstance(note, TimelineEntry):
                self.timeline(
                    identifier=note.identifier,
                    section_id=note.section_id,
                    item_type=note.type,
                    state=note.state,
                    item_id=note.item_id,
                    parent_id=note.parent_item_id,
                    root_id=note.root_item_id,
                )
            elif isinstance(note, ActivityEvent):
                if note.event != "ended":
                    continue
                if note.type in _ITEM_ACTIVITIES and note.rating_key:
                    self.changed(note.rating_key, event=f"activity {note.type}")
                elif note.type == _SECTION_ACTIVITY and note.section_id:
                    self.scan_complete(note.section_id)
            elif isinstance(note, StatusEvent):
                if note.title == _SCAN_COMPLETE:
                    self.scan_complete(None)
            elif isinstance(note, PlayingEvent) and note.state in _WATCH_STATES:
                self.watch(note.rating_key, event=f"playing {note.state}")

    def timeline(
        self,
        *,
        identifier: str | None,
        section_id: str | None,
        item_type: int | None,
        state: int | None,
        item_id: str,
        parent_id: str | None = None,
        root_id: str | None = None,
    ) -> LiveAction:
        """Take a `timeline` entry; return what it asked for (`policy.timeline_action`)."""
        action = timeline_action(
            identifier=identifier, section_id=section_id, item_type=item_type, state=state
        )
        if action is LiveAction.REFRESH:
            self.changed(
                item_id,
                parent_id=parent_id,
                root_id=root_id,
                item_type=item_type,
                event=f"timeline {state if state is not None else '-'}",
            )
        elif action is LiveAction.GONE:
            self.gone(item_id, event=f"timeline {state}")
        elif action is LiveAction.COMING:
            self._poke()
        return action

    def changed(
        self,
        rating_key: str,
        *,
        parent_id: str | None = None,
        root_id: str | None = None,
        item_type: int | None = None,
        source: str = "websocket",
        event: str = "timeline",
    ) -> None:
        """Note an item added or changed, with its season and show when known."""
        targets = self._batch.targets
        self._batch.origins[rating_key] = (source, event)
        show = root_id if item_type == _EPISODE else parent_id if item_type == _SEASON else None
        if show and show in targets.shows:
            self._poke()  # listed whole with its show
            return
        targets.items.add(rating_key)
        targets.parents.update(key for key in (parent_id, root_id) if key)
        if show:
            named = self._under.setdefault(show, set())
            named.add(rating_key)
            if len(named) >= self._expand_at:
                targets.shows.add(show)
                targets.items -= named
                targets.parents -= named
                targets.parents.discard(show)
                del self._under[show]
        self._poke()

    def gone(self, rating_key: str, *, source: str = "websocket", event: str = "timeline") -> None:
        """Note an item reported deleted (confirmed before anything is marked MISSING)."""
        self._batch.targets.gone.add(rating_key)
        self._batch.origins[rating_key] = (source, event)
        self._poke()

    def watch(self, rating_key: str, *, source: str = "websocket", event: str = "playing") -> None:
        """Note an item whose watch state changed (playback stopped or paused, a scrobble)."""
        self._batch.targets.watch.add(rating_key)
        # A webhook's origin wins: every webhook gets its row in the activity log.
        if source == "webhook" or rating_key not in self._batch.origins:
            self._batch.origins[rating_key] = (source, event)
        self._poke()

    def scan_complete(self, section_key: str | None = None) -> None:
        """Note a finished library scan: a light sync of it (of all libraries when None)."""
        if section_key is None:
            self._batch.all_sections = True
        else:
            self._batch.sections.add(section_key)
        self._poke()

    def _poke(self) -> None:
        self._batch.updates += 1
        self._wake.set()

    # --- running -----------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        """Start merging and flushing in a task of the running loop."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self.run())
        return self._task

    async def stop(self) -> None:
        """Stop (what is waiting is dropped: the polled runs will find it)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run(self) -> None:
        """Flush batches until cancelled; a failing flush is logged and the next one runs."""
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            deadline = loop.time() + self._max_delay
            while True:
                self._wake.clear()
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    await asyncio.wait_for(self._wake.wait(), min(self._quiet, left))
                except TimeoutError:
                    break
            batch, self._batch = self._batch, LiveBatch()
            self._under.clear()
            self._wake.clear()
            if not batch:
                continue
            self.batches += 1
            try:
                await self._flush(batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    # Cancelled while the batch failed for it: stop, whatever it raised.
                    raise asyncio.CancelledError from None
                LOGGER.exception("%s: a live update batch failed", self._name)
