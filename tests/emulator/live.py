"""Plex's live side of the model: notification messages and play sessions.

`EmuServer` mixes in `LiveMixin`. Every mutation builds the messages PMS would push over
`/:/websockets/notifications` (`{"NotificationContainer": {"type": …, "size": n, <Array>:
[…]}}`) and hands each to the callables in `server.listeners`; `PlexEmulator` subscribes one
that queues the message for every connected websocket. Messages are only built when someone
listens and the server is not `silent()`. Nothing here imports aiohttp.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
import uuid

if TYPE_CHECKING:
    from .model import EmuItem, EmuPart, EmuSection, Unset

IDENTIFIER: Final = "com.plexapp.plugins.library"
#: Plex's numeric metadata types, as in timeline entries (same numbers as `model.TYPE_NUMBERS`).
_TYPE_NUMBERS: Final = {"movie": 1, "show": 2, "season": 3, "episode": 4}
#: (state, metadataState) of the entries a new item gets, in order: created, metadata being
#: downloaded, then loaded, then processed (state 5 without metadataState: done).
CREATED_STAGES: Final[tuple[tuple[int, str | None], ...]] = (
    (0, "created"),
    (3, "processing"),
    (4, "loading"),
    (5, None),
)
STATE_PROCESSED: Final = 5
STATE_DELETED: Final = 9
#: Playback past this share of the duration is a scrobble (PMS's default threshold).
SCROBBLE_SHARE: Final = 0.9
DEFAULT_CLIENT: Final = "emulated-player"

type Message = dict[str, Any] | str
type Listener = Callable[[Message], None]


def container(kind: str, array: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Return one notification message: `{"NotificationContainer": {…}}`."""
    return {"NotificationContainer": {"type": kind, "size": len(entries), array: entries}}


def _activity(
    event: str, activity_uuid: str, kind: str, title: str, progress: int, context: dict[str, Any]
) -> dict[str, Any]:
    return {
        "event": event,
        "uuid": activity_uuid,
        "Activity": {
            "uuid": activity_uuid,
            "type": kind,
            "cancellable": kind == "library.update.section",
            "userID": 1,
            "title": title,
            "subtitle": "",
            "progress": progress,
            "Context": context,
        },
    }


@dataclass(slots=True)
class PlaySession:
    """One emulated playback (PMS's session) of a movie or episode."""

    session_key: str
    rating_key: int
    client_identifier: str
    play_queue_item_id: int
    #: playing, paused or stopped.
    state: str = "playing"
    view_offset: int = 0
    #: Set once the session passed `SCROBBLE_SHARE` (a session scrobbles once).
    scrobbled: bool = False


class LiveMixin:
    """Notifications and play sessions of an `EmuServer` (see the module docstring)."""

    #: Callables given every message (a dict, or raw text from `notify`), synchronously.
    listeners: list[Listener]
    #: Open play sessions by sessionKey.
    sessions: dict[str, PlaySession]
    _silent_depth: int
    _next_session_key: int

    if TYPE_CHECKING:  # what the mixin uses of EmuServer
        items: dict[int, EmuItem]
        sections: dict[str, EmuSection]

        def now(self) -> int: ...  # noqa: D102
        def item(self, rating_key: int | str) -> EmuItem: ...  # noqa: D102
        def show_of(self, item: EmuItem) -> EmuItem | None: ...  # noqa: D102
        def change_item(self, rating_key: int | str, **fields: Any) -> EmuItem: ...  # noqa: D102
        def _touch(self, section_key: str | None = None, *, content: bool = True) -> None: ...
        def set_watch_state(  # noqa: D102
            self,
            rating_key: int | str,
            view_count: int | Unset = ...,
            last_viewed_at: int | Unset | None = ...,
            view_offset: int | Unset | None = ...,
        ) -> EmuItem: ...

    def init_live(self) -> None:
        """Set up listeners and sessions (called by `EmuServer.__init__`)."""
        self.listeners = []
        self.sessions = {}
        self._silent_depth = 0
        self._next_session_key = 1

    # ------------------------------------------------------------- pushing

    @property
    def notifying(self) -> bool:
        """Return whether mutations push messages now (someone listens, not silent)."""
        return bool(self.listeners) and not self._silent_depth

    @contextmanager
    def silent(self) -> Iterator[None]:
        """Mutate without any notification inside the block (nests)."""
        self._silent_depth += 1
        try:
            yield
        finally:
            self._silent_depth -= 1

    def notify(self, message: Message) -> None:
        """Hand one message (a dict, or raw text such as a broken frame) to every listener."""
        if not self.notifying:
            return
        for listener in list(self.listeners):
            listener(message)

    def _timeline_entry(
        self, item: EmuItem, state: int, metadata_state: str | None = None
    ) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "identifier": IDENTIFIER,
            "sectionID": item.section_key,
            "itemID": str(item.rating_key),
        }
        if item.parent_rk is not None:
            show = self.show_of(item)
            entry["parentItemID"] = str(item.parent_rk)
            entry["rootItemID"] = str(show.rating_key if show else item.parent_rk)
        entry["type"] = _TYPE_NUMBERS.get(item.type, -1)
        entry["title"] = item.title
        entry["state"] = state
        if metadata_state is not None:
            entry["metadataState"] = metadata_state
        entry["updatedAt"] = item.updated_at
        return entry

    def notify_created(self, *items: EmuItem) -> None:
        """Push the timeline of new items: states 0 (created), 3, 4, then 5 (processed)."""
        if not self.notifying or not items:
            return
        entries = [
            self._timeline_entry(item, state, metadata_state)
            for state, metadata_state in CREATED_STAGES
            for item in items
        ]
        self.notify(container("timeline", "TimelineEntry", entries))

    def notify_changed(self, *items: EmuItem) -> None:
        """Push a state 5 (processed) timeline entry per changed item."""
        if not self.notifying or not items:
            return
        entries = [self._timeline_entry(item, STATE_PROCESSED) for item in items]
        self.notify(container("timeline", "TimelineEntry", entries))

    def notify_deleted(self, item: EmuItem) -> None:
        """Push state 9 (deleted) entries for an item and everything under it.

        Call it before the items leave `server.items` (their parents are looked up).
        """
        if not self.notifying:
            return
        doomed = [item]
        for each in doomed:
            doomed.extend(self.items[rk] for rk in each.children if rk in self.items)
        entries = [self._timeline_entry(each, STATE_DELETED, "deleted") for each in doomed]
        self.notify(container("timeline", "TimelineEntry", entries))

    def notify_part_changed(self, item: EmuItem, part: EmuPart) -> None:
        """Push state 5 for an item whose file changed, and for episodes sharing the file."""
        if not self.notifying:
            return
        sharers = [item]
        parent = self.items.get(item.parent_rk) if item.parent_rk is not None else None
        if parent is not None:
            siblings = (self.items[rk] for rk in parent.children if rk in self.items)
            sharers = [s for s in siblings if any(part in m.parts for m in s.media)] or [item]
        self.notify_changed(*sharers)

    # ------------------------------------------------------- scans, refreshes

    @contextmanager
    def scanning(self, section_key: str | int) -> Iterator[EmuSection]:
        """Scan a section around the block: activity started; the block; ended, status.

        Mutations inside the block push their own timelines between the two activities.
        The section's `scannedAt` moves to the server's clock when the scan ends.
        """
        section = self.sections[str(section_key)]
        activity_uuid = str(uuid.uuid4())
        title = f"Scanning {section.title}"
        context = {"librarySectionID": section.key}
        self.notify_activity("started", activity_uuid, "library.update.section", title, 0, context)
        try:
            yield section
        finally:
            section.scanned_at = max(section.scanned_at, self.now())
            self._touch(content=False)
            self.notify_activity(
                "ended", activity_uuid, "library.update.section", title, 100, context
            )
            self.notify_status(
                "Library scan complete", f'"{section.title}" scanned', "LIBRARY_UPDATE"
            )

    def scan(self, section_key: str | int) -> None:
        """Scan a section that did not change: activity started and ended, then the status."""
        with self.scanning(section_key):
            pass

    def refresh_item(
        self, rating_key: int | str, *, bump_updated_at: bool = True, **fields: Any
    ) -> EmuItem:
        """Refresh one item's metadata ("Refresh metadata" on it).

        Pushes activity started `library.refresh.items`, then (unless `bump_updated_at` is
        False and no `fields` are given) what `change_item(rating_key, **fields)` pushes, then
        activity ended, each with Context key `/library/metadata/<key>`.
        """
        item = self.item(rating_key)
        activity_uuid = str(uuid.uuid4())
        key = f"/library/metadata/{item.rating_key}"
        title = f"Refreshing {item.title}"
        context: dict[str, Any] = {"key": key, "librarySectionID": item.section_key}
        self.notify_activity("started", activity_uuid, "library.refresh.items", title, 0, context)
        if bump_updated_at or fields:
            self.change_item(item.rating_key, **fields)
        done = {**context, "accessible": True, "exists": True, "refreshed": True}
        self.notify_activity("ended", activity_uuid, "library.refresh.items", title, 100, done)
        return item

    def notify_activity(
        self,
        event: str,
        activity_uuid: str,
        kind: str,
        title: str,
        progress: int,
        context: dict[str, Any],
    ) -> None:
        """Push one `activity` message (event started, updated or ended)."""
        if not self.notifying:
            return
        entry = _activity(event, activity_uuid, kind, title, progress, context)
        self.notify(container("activity", "ActivityNotification", [entry]))

    def notify_status(self, title: str, description: str, name: str) -> None:
        """Push one `status` message."""
        if not self.notifying:
            return
        entry = {"title": title, "description": description, "notificationName": name}
        self.notify(container("status", "StatusNotification", [entry]))

    # -------------------------------------------------------------- playback

    def play(
        self,
        rating_key: int | str,
        *,
        offset_ms: int = 0,
        client_identifier: str = DEFAULT_CLIENT,
    ) -> PlaySession:
        """Start (or resume, or report progress of) playback; pushes `playing` state playing.

        The session of this item on this client is reused while it is open.
        """
        item = self._playable(rating_key)
        session = next(
            (
                s
                for s in self.sessions.values()
                if s.rating_key == item.rating_key and s.client_identifier == client_identifier
            ),
            None,
        )
        if session is None:
            key = self._next_session_key
            self._next_session_key += 1
            session = PlaySession(str(key), item.rating_key, client_identifier, key)
            self.sessions[session.session_key] = session
        return self._report(session, "playing", offset_ms)

    def pause(
        self,
        rating_key: int | str,
        *,
        offset_ms: int | None = None,
        client_identifier: str | None = None,
    ) -> PlaySession:
        """Pause an open session (at `offset_ms`, default where it is); pushes `paused`."""
        session = self._session(rating_key, client_identifier)
        return self._report(session, "paused", offset_ms)

    def stop(
        self,
        rating_key: int | str,
        offset_ms: int | None = None,
        *,
        client_identifier: str | None = None,
    ) -> PlaySession:
        """Stop an open session (at `offset_ms`, default where it is); pushes `stopped`.

        Like every report, at or past 90 % of the duration it scrobbles (viewCount + 1,
        lastViewedAt = now, viewOffset cleared) once per session; below, viewOffset is kept.
        """
        session = self._session(rating_key, client_identifier)
        del self.sessions[session.session_key]
        return self._report(session, "stopped", offset_ms)

    def _playable(self, rating_key: int | str) -> EmuItem:
        item = self.item(rating_key)
        if not item.is_leaf:
            raise ValueError(f"{item!r} cannot be played")
        return item

    def _session(self, rating_key: int | str, client_identifier: str | None) -> PlaySession:
        wanted = int(rating_key)
        for session in self.sessions.values():
            if session.rating_key == wanted and client_identifier in (
                None,
                session.client_identifier,
            ):
                return session
        raise KeyError(f"no play session of {wanted}")

    def _report(self, session: PlaySession, state: str, offset_ms: int | None) -> PlaySession:
        """Record the player's report in the model, then push it."""
        item = self._playable(session.rating_key)
        if offset_ms is not None:
            session.view_offset = max(0, int(offset_ms))
        session.state = state
        duration = item.duration or (item.media[0].duration if item.media else 0)
        if duration and session.view_offset >= SCROBBLE_SHARE * duration:
            if not session.scrobbled:
                session.scrobbled = True
                self.set_watch_state(
                    item.rating_key,
                    view_count=item.view_count + 1,
                    last_viewed_at=self.now(),
                    view_offset=None,
                )
        elif session.view_offset > 0 and not session.scrobbled:
            self.set_watch_state(item.rating_key, view_offset=session.view_offset)
        if self.notifying:
            entry = {
                "sessionKey": session.session_key,
                "clientIdentifier": session.client_identifier,
                "guid": item.guid,
                "ratingKey": str(item.rating_key),
                "url": "",
                "key": f"/library/metadata/{item.rating_key}",
                "viewOffset": session.view_offset,
                "playQueueItemID": session.play_queue_item_id,
                "state": state,
            }
            self.notify(container("playing", "PlaySessionStateNotification", [entry]))
        return session
