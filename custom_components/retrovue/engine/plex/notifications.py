"""Plex's notification websocket: typed messages, and a stream that reconnects for good.

A Plex Media Server pushes what happens to it over `/:/websockets/notifications`, one JSON
message at a time: `{"NotificationContainer": {"type": T, "size": n, <Array>: [...]}}`.
`decode_message` turns a message into typed notifications (library changes, activities,
status lines, playback states, reachability); every entry is read on its own, so one bad
entry drops only itself. `NotificationStream` keeps a connection open for as long as it
runs: it reconnects after any failure with a capped, jittered backoff and gives up only
when the server refuses the token.

The token travels only in the `X-Plex-Token` header: never in the URL, a log line or an
error message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import IntEnum
import logging
import math
import random
import re
import time
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
import msgspec

from .client import client_headers
from .errors import (
    PlexAuthError,
    PlexConnectionError,
    PlexError,
    PlexResponseError,
    PlexSSLError,
    PlexTimeoutError,
)
from .models import PlexType

LOGGER = logging.getLogger(__name__)

NOTIFICATIONS_PATH: Final = "/:/websockets/notifications"
# The `identifier` of timeline entries about library items (DVR and others use their own).
LIBRARY_IDENTIFIER: Final = "com.plexapp.plugins.library"
# Messages larger than this are dropped unread: Plex's are a few kilobytes at most.
MAX_MESSAGE_BYTES: Final = 1024 * 1024
DEFAULT_HEARTBEAT: Final = 15.0
DEFAULT_BACKOFF_INITIAL: Final = 1.0
DEFAULT_BACKOFF_MAX: Final = 60.0
# A connection that stayed up this long was healthy: the next retry starts from the beginning.
DEFAULT_STABLE_AFTER: Final = 60.0
DEFAULT_JITTER: Final = 0.2
DEFAULT_CONNECT_TIMEOUT: Final = 30.0
# How long closing waits for the server's close frame.
_CLOSE_TIMEOUT: Final = 5.0
# Frames up to this many times the message limit are read and dropped; a larger one makes
# aiohttp close the connection (and the stream reconnects).
_FRAME_HEADROOM: Final = 4
# Distinct "reported once" log keys kept; beyond it new kinds are no longer logged.
_MAX_REPORTED: Final = 256
_RATING_KEY: Final = re.compile(r"/library/metadata/([^/?#]+)")


class TimelineState(IntEnum):
    """Values of a timeline entry's `state` (plexapi's numbering; other numbers occur)."""

    CREATED = 0
    PROGRESS = 1
    MATCHING = 2
    DOWNLOADING = 3
    LOADING = 4
    PROCESSED = 5
    DELETED = 9


class NotificationError(PlexResponseError):
    """A notification message that is not a Plex NotificationContainer (or is too large)."""

    def __init__(self, message: str, *, reason: str, server: str) -> None:
        """Keep a stable reason (`not_json`, `too_large`, …) for counting and logging once."""
        super().__init__(message, server=server, endpoint=NOTIFICATIONS_PATH)
        self.reason = reason


# --- the messages -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """A library item was created, changed, analysed or deleted (type `timeline`)."""

    item_id: str
    identifier: str | None = None
    # None for "-1": the entry is not about an item of a library section.
    section_id: str | None = None
    parent_item_id: str | None = None
    root_item_id: str | None = None
    # Plex's metadata type (1 movie, 2 show, 3 season, 4 episode, …); None for -1.
    type: int | None = None
    title: str | None = None
    # See `TimelineState`.
    state: int | None = None
    metadata_state: str | None = None
    media_state: str | None = None
    queue_size: int | None = None
    updated_at: int | None = None

    @property
    def plex_type(self) -> PlexType | None:
        """Return the type as a catalog type, None for types the catalog does not keep."""
        try:
            return PlexType(self.type) if self.type is not None else None
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class ActivityEvent:
    """A server activity started, progressed or ended (type `activity`)."""

    event: str
    uuid: str
    # e.g. `library.refresh.items`, `library.update.section`.
    type: str
    progress: int | None = None
    title: str | None = None
    subtitle: str | None = None
    # The context's key, e.g. `/library/metadata/45`.
    key: str | None = None
    section_id: str | None = None

    @property
    def rating_key(self) -> str | None:
        """Return the item's rating key when the context is `/library/metadata/<key>`."""
        if self.key is None:
            return None
        match = _RATING_KEY.fullmatch(self.key)
        return match.group(1) if match else None


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """A status line such as "Library scan complete" (type `status`)."""

    title: str | None = None
    description: str | None = None
    notification_name: str | None = None


@dataclass(frozen=True, slots=True)
class PlayingEvent:
    """A play session changed state (type `playing`); the watch count is not in it."""

    rating_key: str
    # playing, paused, stopped or buffering.
    state: str
    session_key: str | None = None
    client_identifier: str | None = None
    view_offset: int | None = None


@dataclass(frozen=True, slots=True)
class ReachabilityEvent:
    """Whether plex.tv can reach the server from outside (type `reachability`)."""

    reachable: bool


type Notification = TimelineEntry | ActivityEvent | StatusEvent | PlayingEvent | ReachabilityEvent


@dataclass(frozen=True, slots=True)
class NotificationMessage:
    """One decoded message: its type, its notifications and the entries it dropped."""

    type: str
    notifications: tuple[Notification, ...]
    # One line per dropped entry ("TimelineEntry: Object missing required field `itemID`");
    # they name fields, never values, so each kind of problem reads the same.
    problems: tuple[str, ...] = ()
    # False for types this module does not decode (progress, backgroundProcessingQueue, …).
    known: bool = True


# --- the wire schema ----------------------------------------------------------------------------
# Each notification's fields are declared once here, under their wire names. Numbers may come
# as numbers or as text, ids as either; `_number` and `_text` read them after decoding.

type _Number = int | float | str | None
type _Text = str | int | None


class _Unusable(ValueError):
    """A wire value that cannot be used; the message names the field, not the value."""


class _Envelope(msgspec.Struct, gc=False):
    container: dict[str, msgspec.Raw] = msgspec.field(name="NotificationContainer")


class _WireTimeline(msgspec.Struct, kw_only=True, gc=False):
    item_id: _Text = msgspec.field(name="itemID")
    identifier: _Text = None
    section_id: _Text = msgspec.field(default=None, name="sectionID")
    parent_item_id: _Text = msgspec.field(default=None, name="parentItemID")
    root_item_id: _Text = msgspec.field(default=None, name="rootItemID")
    type: _Number = None
    title: _Text = None
    state: _Number = None
    metadata_state: _Text = msgspec.field(default=None, name="metadataState")
    media_state: _Text = msgspec.field(default=None, name="mediaState")
    queue_size: _Number = msgspec.field(default=None, name="queueSize")
    updated_at: _Number = msgspec.field(default=None, name="updatedAt")


class _WireContext(msgspec.Struct, kw_only=True, gc=False):
    key: _Text = None
    section_id: _Text = msgspec.field(default=None, name="librarySectionID")


class _WireActivity(msgspec.Struct, kw_only=True, gc=False):
    uuid: _Text = None
    type: _Text = None
    title: _Text = None
    subtitle: _Text = None
    progress: _Number = None
    context: _WireContext | None = msgspec.field(default=None, name="Context")


class _WireActivityNotification(msgspec.Struct, kw_only=True, gc=False):
    event: _Text = None
    uuid: _Text = None
    activity: _WireActivity = msgspec.field(name="Activity")


class _WireStatus(msgspec.Struct, kw_only=True, gc=False):
    title: _Text = None
    description: _Text = None
    notification_name: _Text = msgspec.field(default=None, name="notificationName")


class _WirePlaying(msgspec.Struct, kw_only=True, gc=False):
    rating_key: _Text = msgspec.field(default=None, name="ratingKey")
    state: _Text = None
    session_key: _Text = msgspec.field(default=None, name="sessionKey")
    client_identifier: _Text = msgspec.field(default=None, name="clientIdentifier")
    view_offset: _Number = msgspec.field(default=None, name="viewOffset")


class _WireReachability(msgspec.Struct, kw_only=True, gc=False):
    reachability: bool


def _number(value: _Number, field: str) -> int | None:
    """Return an integer from a number or numeric text; empty text and `null` are missing."""
    if value is None:
        return None
    number: int | float
    if isinstance(value, str):
        text = value.strip()
        if not text or text.lower() == "null":
            return None
        try:
            number = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                raise _Unusable(f"{field}: not a number") from None
    else:
        number = value
    if isinstance(number, float):
        if not math.isfinite(number):
            raise _Unusable(f"{field}: not a number")
        number = int(number)
    return number


def _text(value: _Text) -> str | None:
    """Return text (an id sent as a number becomes text); empty text is missing."""
    if value is None or value == "":
        return None
    return str(value)


def _required(value: _Text, field: str) -> str:
    text = _text(value)
    if text is None:
        raise _Unusable(f"{field}: missing")
    return text


def _section(value: _Text) -> str | None:
    """Return a section id; Plex's "-1" (no section) is missing."""
    text = _text(value)
    return None if text == "-1" else text


def _timeline(wire: _WireTimeline) -> TimelineEntry:
    kind = _number(wire.type, "type")
    return TimelineEntry(
        item_id=_required(wire.item_id, "itemID"),
        identifier=_text(wire.identifier),
        section_id=_section(wire.section_id),
        parent_item_id=_text(wire.parent_item_id),
        root_item_id=_text(wire.root_item_id),
        type=None if kind is not None and kind < 0 else kind,
        title=_text(wire.title),
        state=_number(wire.state, "state"),
        metadata_state=_text(wire.metadata_state),
        media_state=_text(wire.media_state),
        queue_size=_number(wire.queue_size, "queueSize"),
        updated_at=_number(wire.updated_at, "updatedAt"),
    )


def _activity(wire: _WireActivityNotification) -> ActivityEvent:
    activity = wire.activity
    context = activity.context or _WireContext()
    return ActivityEvent(
        event=_required(wire.event, "event"),
        # The notification and its activity carry the same uuid; either will do.
        uuid=_required(wire.uuid or activity.uuid, "uuid"),
        type=_required(activity.type, "Activity.type"),
        progress=_number(activity.progress, "Activity.progress"),
        title=_text(activity.title),
        subtitle=_text(activity.subtitle),
        key=_text(context.key),
        section_id=_section(context.section_id),
    )


def _status(wire: _WireStatus) -> StatusEvent:
    return StatusEvent(
        title=_text(wire.title),
        description=_text(wire.description),
        notification_name=_text(wire.notification_name),
    )


def _playing(wire: _WirePlaying) -> PlayingEvent:
    return PlayingEvent(
        rating_key=_required(wire.rating_key, "ratingKey"),
        state=_required(wire.state, "state"),
        session_key=_text(wire.session_key),
        client_identifier=_text(wire.client_identifier),
        view_offset=_number(wire.view_offset, "viewOffset"),
    )


def _reachability(wire: _WireReachability) -> ReachabilityEvent:
    return ReachabilityEvent(reachable=wire.reachability)


@dataclass(frozen=True, slots=True)
class _Schema:
    """How a message type is read: its array, the wire struct of an entry, the builder."""

    array: str
    wire: type[msgspec.Struct]
    build: Callable[[Any], Notification]


_SCHEMAS: Final = {
    "timeline": _Schema("TimelineEntry", _WireTimeline, _timeline),
    "activity": _Schema("ActivityNotification", _WireActivityNotification, _activity),
    "status": _Schema("StatusNotification", _WireStatus, _status),
    "playing": _Schema("PlaySessionStateNotification", _WirePlaying, _playing),
    "reachability": _Schema("ReachabilityNotification", _WireReachability, _reachability),
}


# --- decoding -----------------------------------------------------------------------------------


def decode_message(
    data: str | bytes, *, max_bytes: int = MAX_MESSAGE_BYTES, server: str = "plex"
) -> NotificationMessage:
    """Decode one websocket message; raise `NotificationError` if it is not a usable one.

    Entries that cannot be read are left out and described in `problems`; a type this module
    does not decode gives no notifications and `known` False. Text is measured in characters.
    """
    if len(data) > max_bytes:
        raise NotificationError(
            f"message of {len(data)} bytes over the {max_bytes} byte limit",
            reason="too_large",
            server=server,
        )
    try:
        container = msgspec.json.decode(data, type=_Envelope).container
    except msgspec.ValidationError as err:
        raise NotificationError(
            f"not a NotificationContainer: {err}", reason="not_container", server=server
        ) from None
    except msgspec.DecodeError as err:
        raise NotificationError(
            f"malformed JSON: {err}", reason="not_json", server=server
        ) from None
    except RecursionError:
        raise NotificationError("JSON nested too deep", reason="too_deep", server=server) from None
    kind = _message_type(container.get("type"))
    if kind is None:
        raise NotificationError(
            "NotificationContainer without a type", reason="no_type", server=server
        )

    schema = _SCHEMAS.get(kind)
    if schema is None:
        return NotificationMessage(type=kind, notifications=(), known=False)
    raw = container.get(schema.array)
    if raw is None:
        return NotificationMessage(type=kind, notifications=())
    try:
        entries = msgspec.json.decode(raw, type=list[msgspec.Raw])
    except (msgspec.DecodeError, RecursionError):
        return NotificationMessage(
            type=kind, notifications=(), problems=(f"{schema.array}: not a list",)
        )

    notifications: list[Notification] = []
    problems: list[str] = []
    for entry in entries:
        try:
            wire = msgspec.json.decode(entry, type=schema.wire, strict=False)
            notifications.append(schema.build(wire))
        except (msgspec.DecodeError, _Unusable) as err:
            problems.append(f"{schema.array}: {err}")
    return NotificationMessage(
        type=kind, notifications=tuple(notifications), problems=tuple(problems)
    )


def _message_type(raw: msgspec.Raw | None) -> str | None:
    """Return a container's type, None when it is missing or not text."""
    if raw is None:
        return None
    try:
        return msgspec.json.decode(raw, type=str) or None
    except msgspec.DecodeError:
        return None


def parse_notifications(
    data: str | bytes, *, max_bytes: int = MAX_MESSAGE_BYTES, server: str = "plex"
) -> list[Notification]:
    """Return the notifications of one message (dropped entries left out; see `decode_message`)."""
    return list(decode_message(data, max_bytes=max_bytes, server=server).notifications)


def reconnect_delay(
    failures: int, *, initial: float, maximum: float, jitter: float, rand: float
) -> float:
    """Return how long to wait after `failures` failures in a row (1 → `initial`).

    The delay doubles with every failure up to `maximum`; `jitter` (0 to 1) takes up to that
    share off at random (`rand` in [0, 1)), so that many clients of one server restart apart.
    """
    step = min(maximum, initial * 2.0 ** min(max(failures - 1, 0), 60))
    return step * (1.0 - jitter * rand)


# --- the stream ---------------------------------------------------------------------------------

type NotificationHandler = Callable[[list[Notification]], Awaitable[None]]


@dataclass(slots=True)
class StreamStats:
    """What a stream has seen since it was made; for diagnostics."""

    # Connections opened; reconnect waits started (each is followed by an attempt).
    connects: int = 0
    reconnects: int = 0
    # Messages received; notifications handed to the handler.
    messages: int = 0
    notifications: int = 0
    # Messages of types not decoded; messages refused whole; entries dropped from messages.
    ignored: int = 0
    malformed: int = 0
    dropped: int = 0
    handler_errors: int = 0
    # The wait before the latest retry, in seconds.
    last_delay: float | None = None
    # Epoch seconds.
    connected_at: float | None = None
    disconnected_at: float | None = None
    last_message_at: float | None = None
    # Why the latest connection ended or failed (no token in it).
    last_error: str | None = None


class NotificationStream:
    """Keep one server's notification websocket open and hand its notifications on."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        token: str,
        *,
        verify_ssl: bool = True,
        client_identifier: str = "retrovue",
        name: str | None = None,
        heartbeat: float | None = DEFAULT_HEARTBEAT,
        backoff_initial: float = DEFAULT_BACKOFF_INITIAL,
        backoff_max: float = DEFAULT_BACKOFF_MAX,
        stable_after: float = DEFAULT_STABLE_AFTER,
        jitter: float = DEFAULT_JITTER,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        on_state: Callable[[bool], None] | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        """Set up the stream for a server's http(s) base URL; nothing connects until `run`."""
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        # User info (`user:pass@`) means nothing to Plex and must not be kept or shown.
        netloc = parts.netloc.rpartition("@")[2]
        scheme = "wss" if parts.scheme == "https" else "ws"
        self._url = f"{scheme}://{netloc}{parts.path.rstrip('/')}{NOTIFICATIONS_PATH}"
        self._session = session
        self._ssl = verify_ssl
        # The same identifying headers as `PlexClient` sends, so the server lists one device.
        self._headers = {**client_headers(client_identifier), "X-Plex-Token": token}
        self.name = name or netloc
        self._heartbeat = heartbeat
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._stable_after = stable_after
        self._jitter = jitter
        self._connect_timeout = connect_timeout
        self._max_message_bytes = max_message_bytes
        self._on_state = on_state
        self._sleep = sleep
        self._connected = False
        self._up_since: float | None = None
        self._running = False
        self._reported: set[str] = set()
        self.stats = StreamStats()

    @property
    def url(self) -> str:
        """Return the websocket URL (it never holds the token)."""
        return self._url

    @property
    def connected(self) -> bool:
        """Return whether the websocket is open now."""
        return self._connected

    @property
    def last_error(self) -> str | None:
        """Return why the latest connection ended or failed."""
        return self.stats.last_error

    async def run(self, handler: NotificationHandler) -> None:
        """Read notifications until cancelled, reconnecting after every failure.

        Each message's notifications go to `handler` in order, one call per message that has
        any; while it runs no message is read, so it should queue work rather than do it (a
        handler busy longer than the heartbeat and a half loses the connection). An exception
        from it is logged and the stream goes on. Raises `PlexAuthError` when the server
        refuses the token; cancelling the task closes the websocket and re-raises.
        """
        if self._running:
            raise RuntimeError(f"{self.name}: the notification stream is already running")
        self._running = True
        failures = 0
        try:
            while True:
                try:
                    reason = await self._connect_and_read(handler)
                except PlexAuthError as err:
                    self.stats.last_error = err.detail
                    raise
                except PlexError as err:
                    reason = err.detail
                up_for = self._uptime()
                if up_for is not None and up_for >= self._stable_after:
                    failures = 0
                failures += 1
                self.stats.last_error = reason
                delay = reconnect_delay(
                    failures,
                    initial=self._backoff_initial,
                    maximum=self._backoff_max,
                    jitter=self._jitter,
                    rand=random.random(),  # noqa: S311 - spreading retries, not a secret
                )
                self.stats.reconnects += 1
                self.stats.last_delay = delay
                # Once per outage at info (lost, then back in `_connect_and_read`); each
                # further failed attempt only at debug.
                level = logging.INFO if failures == 1 else logging.DEBUG
                LOGGER.log(
                    level,
                    "%s: notification stream down (%s); retry %d in %.1fs",
                    self.name,
                    reason,
                    failures,
                    delay,
                )
                await self._sleep(delay)
        finally:
            self._running = False

    # --- one connection ----------------------------------------------------------------------

    async def _connect_and_read(self, handler: NotificationHandler) -> str:
        """Connect and read until the connection ends; return why it ended.

        Raises `PlexError` when connecting fails or the connection breaks.
        """
        ws = await self._connect()
        try:
            self._up_since = time.monotonic()
            self.stats.connects += 1
            self.stats.connected_at = time.time()
            if self.stats.reconnects:
                LOGGER.info("%s: notification stream connected again", self.name)
            else:
                LOGGER.debug("%s: notification stream connected", self.name)
            self._set_connected(True)
            return await self._read(ws, handler)
        finally:
            # Also on cancellation: the server sees a clean close (code 1000).
            await ws.close()
            if self._connected:
                self.stats.disconnected_at = time.time()
                self._set_connected(False)

    async def _connect(self) -> aiohttp.ClientWebSocketResponse:
        """Open the websocket; map every failure to the engine's errors."""
        self._up_since = None
        try:
            async with asyncio.timeout(self._connect_timeout):
                return await self._session.ws_connect(
                    self._url,
                    headers=self._headers,
                    heartbeat=self._heartbeat,
                    ssl=self._ssl,
                    max_msg_size=self._max_message_bytes * _FRAME_HEADROOM,
                    timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=_CLOSE_TIMEOUT),
                )
        except aiohttp.WSServerHandshakeError as err:
            # `from None`: the aiohttp error holds the request's headers, token included.
            if err.status in (401, 403):
                raise PlexAuthError(
                    f"the server refused the token (HTTP {err.status})",
                    server=self.name,
                    endpoint=NOTIFICATIONS_PATH,
                ) from None
            raise PlexResponseError(
                f"no websocket (HTTP {err.status}: {err.message})",
                server=self.name,
                endpoint=NOTIFICATIONS_PATH,
                status=err.status,
            ) from None
        except TimeoutError as err:
            raise PlexTimeoutError(
                "no answer in time", server=self.name, endpoint=NOTIFICATIONS_PATH
            ) from err
        except aiohttp.ClientSSLError as err:
            raise PlexSSLError(
                f"TLS failed: {err.__class__.__name__}",
                server=self.name,
                endpoint=NOTIFICATIONS_PATH,
            ) from err
        except (aiohttp.ClientError, OSError) as err:
            raise PlexConnectionError(
                f"cannot reach the server: {err.__class__.__name__}: {str(err)[:200]}",
                server=self.name,
                endpoint=NOTIFICATIONS_PATH,
            ) from err

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, handler: NotificationHandler) -> str:
        """Hand on every message until the connection ends; return why it ended."""
        while True:
            message = await ws.receive()
            if message.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                await self._deliver(message.data, handler)
            elif message.type is aiohttp.WSMsgType.ERROR:
                error = message.data if isinstance(message.data, BaseException) else None
                raise PlexConnectionError(
                    f"the connection failed: {_describe(error or ws.exception())}",
                    server=self.name,
                    endpoint=NOTIFICATIONS_PATH,
                )
            elif message.type in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSING,
                aiohttp.WSMsgType.CLOSED,
            ):
                ended = f"the connection closed (code {ws.close_code})"
                error = ws.exception()
                return f"{ended}: {_describe(error)}" if error is not None else ended
            # Pings and pongs are answered by aiohttp; nothing else reaches here.

    async def _deliver(self, data: str | bytes, handler: NotificationHandler) -> None:
        notifications = self._decode(data)
        if not notifications:
            return
        self.stats.notifications += len(notifications)
        try:
            await handler(notifications)
        except Exception:
            self.stats.handler_errors += 1
            LOGGER.exception("%s: the notification handler failed", self.name)

    def _decode(self, data: str | bytes) -> list[Notification]:
        """Decode a message, counting and reporting (once per kind) what is dropped."""
        stats = self.stats
        stats.messages += 1
        stats.last_message_at = time.time()
        try:
            message = decode_message(data, max_bytes=self._max_message_bytes, server=self.name)
        except NotificationError as err:
            stats.malformed += 1
            self._report_once(
                f"malformed:{err.reason}",
                logging.WARNING,
                "%s: dropped a notification message: %s (reported once)",
                err.detail,
            )
            return []
        if not message.known:
            stats.ignored += 1
            self._report_once(
                f"ignored:{message.type}",
                logging.DEBUG,
                "%s: ignoring notifications of type %.64r",
                message.type,
            )
        for problem in message.problems:
            stats.dropped += 1
            self._report_once(
                f"dropped:{message.type}:{problem}",
                logging.WARNING,
                "%s: dropped a notification entry: %s (reported once)",
                problem,
            )
        return list(message.notifications)

    def _report_once(self, key: str, level: int, msg: str, detail: str) -> None:
        if key in self._reported or len(self._reported) >= _MAX_REPORTED:
            return
        self._reported.add(key)
        LOGGER.log(level, msg, self.name, detail)

    def _uptime(self) -> float | None:
        """Return how long the latest connection stayed up, None if it never opened."""
        since, self._up_since = self._up_since, None
        return None if since is None else time.monotonic() - since

    def _set_connected(self, connected: bool) -> None:
        self._connected = connected
        if self._on_state is None:
            return
        try:
            self._on_state(connected)
        except Exception:
            LOGGER.exception("%s: the connection state callback failed", self.name)


def _describe(error: BaseException | None) -> str:
    """Name a transport error without its arguments' reprs."""
    if error is None:
        return "unknown error"
    text = str(error)[:200]
    return f"{error.__class__.__name__}: {text}" if text else error.__class__.__name__
