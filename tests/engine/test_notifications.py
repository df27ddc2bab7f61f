"""Notification websocket tests: message decoding tables, and the stream against a real server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
import json
import logging
from typing import Any

import aiohttp
from aiohttp import web
import pytest

from custom_components.retrovue.engine.plex import PlexAuthError, PlexError
from custom_components.retrovue.engine.plex.models import PlexType
from custom_components.retrovue.engine.plex.notifications import (
    NOTIFICATIONS_PATH,
    ActivityEvent,
    Notification,
    NotificationError,
    NotificationStream,
    PlayingEvent,
    ReachabilityEvent,
    StatusEvent,
    TimelineEntry,
    TimelineState,
    decode_message,
    parse_notifications,
    reconnect_delay,
)

from .conftest import TOKEN

LOGGER_NAME = "custom_components.retrovue.engine.plex.notifications"


def message(kind: str, array: str | None = None, *entries: Any) -> str:
    """Return a NotificationContainer message as Plex sends it."""
    container: dict[str, Any] = {"type": kind, "size": len(entries)}
    if array is not None:
        container[array] = list(entries)
    return json.dumps({"NotificationContainer": container})


def timeline(**fields: Any) -> str:
    return message("timeline", "TimelineEntry", fields)


TIMELINE_FULL = {
    "identifier": "com.plexapp.plugins.library",
    "sectionID": "1",
    "itemID": "45",
    "parentItemID": "44",
    "rootItemID": "40",
    "type": 4,
    "title": "Pilot",
    "state": 5,
    "metadataState": "created",
    "mediaState": "analyzing",
    "queueSize": 1,
    "updatedAt": 1753656127,
}
ACTIVITY_FULL = {
    "event": "ended",
    "uuid": "a1",
    "Activity": {
        "uuid": "a1",
        "type": "library.refresh.items",
        "cancellable": False,
        "userID": 1,
        "title": "Refreshing",
        "subtitle": "Pilot",
        "progress": 100,
        "Context": {
            "key": "/library/metadata/45",
            "accessible": True,
            "librarySectionID": "1",
        },
    },
}


# --- decoding -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected", "problems"),
    [
        pytest.param(
            timeline(**TIMELINE_FULL),
            [
                TimelineEntry(
                    item_id="45",
                    identifier="com.plexapp.plugins.library",
                    section_id="1",
                    parent_item_id="44",
                    root_item_id="40",
                    type=4,
                    title="Pilot",
                    state=5,
                    metadata_state="created",
                    media_state="analyzing",
                    queue_size=1,
                    updated_at=1753656127,
                )
            ],
            0,
            id="timeline",
        ),
        pytest.param(
            timeline(
                itemID=45,
                sectionID=2,
                type="1",
                state=" 0 ",
                queueSize="",
                updatedAt="1753656127",
                parentItemID="",
            ),
            [
                TimelineEntry(
                    item_id="45",
                    section_id="2",
                    type=1,
                    state=0,
                    queue_size=None,
                    updated_at=1753656127,
                )
            ],
            0,
            id="timeline-numbers-as-text",
        ),
        pytest.param(
            timeline(itemID="7", sectionID="-1", type=-1, state=9.0, metadataState="deleted"),
            [TimelineEntry(item_id="7", state=9, metadata_state="deleted")],
            0,
            id="timeline-no-section",
        ),
        pytest.param(
            timeline(itemID="7", sectionID=-1), [TimelineEntry(item_id="7")], 0, id="section-int"
        ),
        pytest.param(
            message(
                "timeline",
                "TimelineEntry",
                {"sectionID": "1", "state": 5},
                {"itemID": "8", "state": "abc"},
                {"itemID": ""},
                {"itemID": "9", "title": ["not", "text"]},
                "not an object",
                {"itemID": "10", "updatedAt": "inf"},
                {"itemID": "11"},
            ),
            [TimelineEntry(item_id="11")],
            6,
            id="timeline-bad-entries-dropped",
        ),
        pytest.param(
            message("activity", "ActivityNotification", ACTIVITY_FULL),
            [
                ActivityEvent(
                    event="ended",
                    uuid="a1",
                    type="library.refresh.items",
                    progress=100,
                    title="Refreshing",
                    subtitle="Pilot",
                    key="/library/metadata/45",
                    section_id="1",
                )
            ],
            0,
            id="activity",
        ),
        pytest.param(
            message(
                "activity",
                "ActivityNotification",
                {
                    "event": "started",
                    "Activity": {
                        "uuid": "b2",
                        "type": "library.update.section",
                        "progress": "50",
                        "Context": {"librarySectionID": 3},
                    },
                },
                {"event": "updated", "uuid": "c3"},
                {"event": "updated", "uuid": "c3", "Activity": {"uuid": "c3"}},
            ),
            [
                ActivityEvent(
                    event="started",
                    uuid="b2",
                    type="library.update.section",
                    progress=50,
                    section_id="3",
                )
            ],
            2,
            id="activity-loose",
        ),
        pytest.param(
            message(
                "status",
                "StatusNotification",
                {
                    "title": "Library scan complete",
                    "description": "Movies",
                    "notificationName": "LIBRARY_UPDATE",
                },
                {},
            ),
            [
                StatusEvent(
                    title="Library scan complete",
                    description="Movies",
                    notification_name="LIBRARY_UPDATE",
                ),
                StatusEvent(),
            ],
            0,
            id="status",
        ),
        pytest.param(
            message(
                "playing",
                "PlaySessionStateNotification",
                {
                    "sessionKey": "104",
                    "clientIdentifier": "tv",
                    "guid": "plex://episode/1",
                    "ratingKey": "45",
                    "key": "/library/metadata/45",
                    "viewOffset": "123000",
                    "playQueueItemID": 1,
                    "state": "stopped",
                },
                {"sessionKey": "105", "state": "playing"},
                {"ratingKey": 46},
            ),
            [
                PlayingEvent(
                    rating_key="45",
                    state="stopped",
                    session_key="104",
                    client_identifier="tv",
                    view_offset=123000,
                )
            ],
            2,
            id="playing",
        ),
        pytest.param(
            message(
                "reachability",
                "ReachabilityNotification",
                {"reachability": True},
                {"reachability": "false"},
                {},
            ),
            [ReachabilityEvent(reachable=True), ReachabilityEvent(reachable=False)],
            1,
            id="reachability",
        ),
        pytest.param(message("timeline"), [], 0, id="no-array"),
        pytest.param(
            json.dumps(
                {"NotificationContainer": {"type": "timeline", "TimelineEntry": {"itemID": "1"}}}
            ),
            [],
            1,
            id="array-not-a-list",
        ),
    ],
)
def test_decode_message(data: str, expected: list[Notification], problems: int) -> None:
    decoded = decode_message(data)
    assert decoded.known
    assert list(decoded.notifications) == expected
    assert len(decoded.problems) == problems
    # Problems name fields, never values.
    assert not any("abc" in problem for problem in decoded.problems)
    # Bytes decode the same as text, and parse_notifications is the short form.
    assert parse_notifications(data.encode()) == expected


@pytest.mark.parametrize(
    "kind", ["progress", "backgroundProcessingQueue", "update.statechange", "transcodeSession.end"]
)
def test_other_types_are_ignored(kind: str) -> None:
    decoded = decode_message(message(kind, "Whatever", {"a": 1}))
    assert decoded.type == kind
    assert not decoded.known
    assert decoded.notifications == ()
    assert parse_notifications(message(kind)) == []


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        pytest.param("not json", "not_json", id="text"),
        pytest.param(b"", "not_json", id="empty"),
        pytest.param(b'{"NotificationContainer": {"type": "tim', "not_json", id="cut-off"),
        pytest.param(b"\xff\xfe{}", "not_json", id="not-utf8"),
        pytest.param("[]", "not_container", id="array"),
        pytest.param('{"MediaContainer": {"size": 0}}', "not_container", id="other-container"),
        pytest.param('{"NotificationContainer": []}', "not_container", id="container-array"),
        pytest.param('{"NotificationContainer": {"size": 1}}', "no_type", id="no-type"),
        pytest.param('{"NotificationContainer": {"type": 5}}', "no_type", id="type-number"),
        pytest.param('{"NotificationContainer": {"type": ""}}', "no_type", id="type-empty"),
        pytest.param(
            '{"NotificationContainer": {"type": "status", "x": '
            + "[" * 100_000
            + "]" * 100_000
            + "}}",
            "too_deep",
            id="nested-too-deep",
        ),
        pytest.param(
            timeline(itemID="1", title="x" * (2 * 1024 * 1024)), "too_large", id="oversized"
        ),
    ],
)
def test_unusable_messages_raise_a_typed_error(data: str | bytes, reason: str) -> None:
    with pytest.raises(NotificationError) as caught:
        decode_message(data, server="Den")
    assert caught.value.reason == reason
    assert isinstance(caught.value, PlexError)
    assert str(caught.value).startswith(f"Den {NOTIFICATIONS_PATH}: ")


def test_nested_entry_is_dropped_alone() -> None:
    deep = "[" * 500 + "]" * 500
    data = (
        '{"NotificationContainer": {"type": "timeline", "TimelineEntry": '
        f'[{{"itemID": "1", "title": {deep}}}, {{"itemID": "2", "extra": {deep}}}]}}}}'
    )
    decoded = decode_message(data)
    assert decoded.notifications == (TimelineEntry(item_id="2"),)
    assert len(decoded.problems) == 1
    assert decoded.problems[0].startswith("TimelineEntry: ")
    assert "$.title" in decoded.problems[0]


@pytest.mark.parametrize(
    ("key", "rating_key"),
    [
        ("/library/metadata/45", "45"),
        ("/library/metadata/45/children", None),
        ("/library/sections/1", None),
        ("", None),
        (None, None),
    ],
)
def test_activity_rating_key(key: str | None, rating_key: str | None) -> None:
    event = ActivityEvent(event="ended", uuid="u", type="library.refresh.items", key=key)
    assert event.rating_key == rating_key


def test_timeline_helpers() -> None:
    assert TimelineEntry(item_id="1", type=4).plex_type is PlexType.EPISODE
    assert TimelineEntry(item_id="1", type=12).plex_type is None
    assert TimelineEntry(item_id="1").plex_type is None
    assert TimelineEntry(item_id="1", state=9).state == TimelineState.DELETED


@pytest.mark.parametrize(
    ("failures", "jitter", "rand", "expected"),
    [
        (1, 0.0, 0.5, 1.0),
        (2, 0.0, 0.5, 2.0),
        (3, 0.0, 0.5, 4.0),
        (6, 0.0, 0.5, 32.0),
        (7, 0.0, 0.5, 60.0),
        (10_000, 0.0, 0.5, 60.0),
        (0, 0.0, 0.5, 1.0),
        (3, 0.2, 0.0, 4.0),
        (3, 0.2, 0.5, 3.6),
        (7, 0.2, 0.999, 60.0 * (1 - 0.2 * 0.999)),
    ],
)
def test_reconnect_delay(failures: int, jitter: float, rand: float, expected: float) -> None:
    delay = reconnect_delay(failures, initial=1.0, maximum=60.0, jitter=jitter, rand=rand)
    assert delay == pytest.approx(expected)


# --- a notification endpoint on 127.0.0.1 -------------------------------------------------------


@dataclass
class Seen:
    """One upgrade request the server received."""

    path_qs: str
    headers: dict[str, str]


@dataclass
class NotifyServer:
    """A Plex-like notification websocket the test drives."""

    token: str = TOKEN
    # Answer with this HTTP status instead of upgrading.
    status: int | None = None
    # Close every websocket right after opening it.
    close_at_once: bool = False
    # Leave the client's pings unanswered, like a server that hung or a dead network path.
    silent: bool = False
    # Wait this long before answering the upgrade request.
    stall: float = 0.0
    seen: list[Seen] = field(default_factory=list)
    sockets: list[web.WebSocketResponse] = field(default_factory=list)
    client_close_codes: list[int | None] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """Return the base URL a Plex client would be given."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Listen on 127.0.0.1 (on the same port again after `stop`)."""
        app = web.Application()
        app.router.add_get(NOTIFICATIONS_PATH, self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.Server)
        self.port = server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close every websocket (going away) and stop listening."""
        await self.drop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def drop(self) -> None:
        """Close the open websockets from the server's side."""
        for ws in list(self.sockets):
            await ws.close(code=aiohttp.WSCloseCode.GOING_AWAY)

    async def send(self, *texts: str) -> None:
        """Send messages to every open websocket, in order."""
        for text in texts:
            for ws in self.open_sockets:
                await ws.send_str(text)

    @property
    def open_sockets(self) -> list[web.WebSocketResponse]:
        """Return the websockets still open."""
        return [ws for ws in self.sockets if not ws.closed]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(Seen(request.path_qs, dict(request.headers)))
        if self.stall:
            await asyncio.sleep(self.stall)
        if request.headers.get("X-Plex-Token") != self.token:
            return web.Response(status=401, text="Unauthorized")
        if self.status is not None:
            return web.Response(status=self.status)
        ws = web.WebSocketResponse(autoping=not self.silent)
        await ws.prepare(request)
        if self.close_at_once:
            await ws.close()
            return ws
        self.sockets.append(ws)
        async for _ in ws:
            pass
        self.sockets.remove(ws)
        self.client_close_codes.append(ws.close_code)
        return ws


async def until(check: Callable[[], bool], within: float = 5.0) -> None:
    """Wait until `check()` holds; it reads counters and flags, which have no event to await."""
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


@pytest.fixture
async def server() -> AsyncIterator[NotifyServer]:
    notify = NotifyServer()
    await notify.start()
    yield notify
    await notify.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


class Collector:
    """A handler that keeps every batch; it can be told to fail."""

    def __init__(self) -> None:
        self.batches: list[list[Notification]] = []
        self.fail_next = False

    async def __call__(self, batch: list[Notification]) -> None:
        """Keep a batch; raise once if told to."""
        self.batches.append(batch)
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("handler bug")

    @property
    def items(self) -> list[Notification]:
        """Return every notification received, in order."""
        return [n for batch in self.batches for n in batch]


class Running:
    """A stream's run() task, cancelled and awaited at the end of the test."""

    def __init__(self, stream: NotificationStream, handler: Collector) -> None:
        self.stream = stream
        self.task = asyncio.create_task(stream.run(handler))

    async def stop(self) -> None:
        """Cancel the task and check that cancellation propagates."""
        if not self.task.done():
            self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task


def make_stream(
    session: aiohttp.ClientSession, url: str, token: str = TOKEN, **kwargs: Any
) -> NotificationStream:
    options: dict[str, Any] = {
        "backoff_initial": 0.01,
        "backoff_max": 0.04,
        "jitter": 0.0,
        "connect_timeout": 2.0,
        "name": "Test server",
    }
    options.update(kwargs)
    return NotificationStream(session, url, token, **options)


def recording_sleep(delays: list[float]) -> Callable[[float], Awaitable[None]]:
    """Return a sleep that records the requested delay and waits only a moment."""

    async def sleep(delay: float) -> None:
        delays.append(delay)
        await asyncio.sleep(0.002)

    return sleep


# --- the stream ---------------------------------------------------------------------------------


async def test_stream_delivers_messages_in_order(
    server: NotifyServer, session: aiohttp.ClientSession
) -> None:
    states: list[bool] = []
    handler = Collector()
    stream = make_stream(session, server.url, on_state=states.append)
    assert stream.url == f"ws://127.0.0.1:{server.port}{NOTIFICATIONS_PATH}"
    running = Running(stream, handler)
    await until(lambda: stream.connected and bool(server.open_sockets))
    assert stream.connected
    assert states == [True]

    texts = [timeline(itemID=str(n), state=n % 6) for n in range(30)]
    texts.insert(5, message("progress", "ProgressNotification", {"message": "x"}))
    texts.insert(9, message("activity", "ActivityNotification", ACTIVITY_FULL))
    await server.send(*texts)
    await until(lambda: len(handler.items) == 31)
    ids = [n.item_id for n in handler.items if isinstance(n, TimelineEntry)]
    assert ids == [str(n) for n in range(30)]
    assert isinstance(handler.items[8], ActivityEvent)
    assert stream.stats.messages == 32
    assert stream.stats.notifications == 31
    assert stream.stats.ignored == 1
    assert stream.stats.connects == 1
    assert stream.stats.reconnects == 0
    await running.stop()
    assert states == [True, False]


async def test_stream_reconnects_after_the_server_closes(
    server: NotifyServer, session: aiohttp.ClientSession
) -> None:
    states: list[bool] = []
    handler = Collector()
    stream = make_stream(session, server.url, on_state=states.append)
    running = Running(stream, handler)
    await until(lambda: stream.connected and bool(server.open_sockets))
    await server.drop()
    await until(lambda: stream.stats.connects == 2 and bool(server.open_sockets))
    assert stream.stats.reconnects == 1
    assert stream.last_error is not None
    assert "code 1001" in stream.last_error
    assert states == [True, False, True]
    assert stream.stats.disconnected_at is not None
    assert stream.stats.connected_at is not None
    assert stream.stats.connected_at >= stream.stats.disconnected_at

    await server.send(timeline(itemID="99"))
    await until(lambda: len(handler.items) == 1)
    assert handler.items == [TimelineEntry(item_id="99")]
    await running.stop()


async def test_silent_server_is_left_after_the_heartbeat(
    server: NotifyServer, session: aiohttp.ClientSession
) -> None:
    server.silent = True
    states: list[bool] = []
    stream = make_stream(session, server.url, heartbeat=0.05, on_state=states.append)
    running = Running(stream, Collector())
    await until(lambda: stream.stats.reconnects >= 1)
    assert stream.last_error is not None
    assert "PONG" in stream.last_error
    server.silent = False
    await until(lambda: stream.stats.connects >= 2 and stream.connected)
    assert states[:3] == [True, False, True]
    await running.stop()
    # aiohttp (3.11) re-arms the heartbeat of the websocket that timed out when it hands on
    # the error; the timer ends itself after a heartbeat and a half. Let it, before the
    # harness looks for lingering timers.
    await asyncio.sleep(0.15)


async def test_connect_timeout_and_tls_failures_are_retried(
    server: NotifyServer, session: aiohttp.ClientSession
) -> None:
    server.stall = 0.2
    stream = make_stream(session, server.url, connect_timeout=0.05)
    running = Running(stream, Collector())
    await until(lambda: stream.stats.reconnects >= 1)
    await running.stop()
    assert stream.last_error == "no answer in time"
    await asyncio.sleep(0.3)  # the stalled server handlers end

    # TLS spoken to a plain HTTP port.
    server.stall = 0.0
    stream = make_stream(session, f"https://127.0.0.1:{server.port}", verify_ssl=False)
    assert stream.url.startswith("wss://")
    running = Running(stream, Collector())
    await until(lambda: stream.stats.reconnects >= 1)
    await running.stop()
    assert stream.last_error is not None
    assert stream.last_error.startswith("TLS failed")


async def test_backoff_grows_while_the_server_is_down_and_is_capped(
    server: NotifyServer, session: aiohttp.ClientSession
) -> None:
    delays: list[float] = []
    handler = Collector()
    stream = make_stream(session, server.url, stable_after=30.0, sleep=recording_sleep(delays))
    running = Running(stream, handler)
    await until(lambda: stream.connected and bool(server.open_sockets))
    await server.stop()
    await until(lambda: len(delays) >= 7)
    assert stream.connected is False
    assert stream.last_error is not None
    assert "cannot reach the server" in stream.last_error

    await server.start()  # the same port again
    await until(lambda: stream.connected)
    assert stream.stats.connects == 2
    assert stream.stats.reconnects == len(delays)
    # Doubling from the first failure, capped, without jitter.
    assert delays[:5] == pytest.approx([0.01, 0.02, 0.04, 0.04, 0.04])
    assert max(delays) == pytest.approx(0.04)
    await running.stop()


async def test_backoff_resets_after_a_stable_connection(
    server: NotifyServer, session: aiohttp.ClientSession
) -> None:
    delays: list[float] = []
    handler = Collector()
    stream = make_stream(session, server.url, stable_after=0.2, sleep=recording_sleep(delays))
    # Connections that close at once are failures too: the delay grows.
    server.close_at_once = True
    running = Running(stream, handler)
    await until(lambda: len(delays) >= 4)
    server.close_at_once = False
    await until(lambda: stream.connected and bool(server.open_sockets))
    grown = len(delays)
    assert delays[:4] == pytest.approx([0.01, 0.02, 0.04, 0.04])

    # Up for longer than `stable_after`: the next retry starts from the beginning.
    await asyncio.sleep(0.3)
    await server.drop()
    await until(lambda: len(delays) > grown)
    assert delays[grown] == pytest.approx(0.01)
    await running.stop()


async def test_jitter_keeps_delays_under_the_cap(
    server: NotifyServer, session: aiohttp.ClientSession
) -> None:
    delays: list[float] = []
    stream = make_stream(session, server.url, jitter=0.5, sleep=recording_sleep(delays))
    await server.stop()
    running = Running(stream, Collector())
    await until(lambda: len(delays) >= 8)
    await running.stop()
    steps = [0.01, 0.02, 0.04, 0.04, 0.04, 0.04, 0.04, 0.04]
    for delay, step in zip(delays, steps, strict=False):
        assert step * 0.5 <= delay <= step
    assert stream.stats.connects == 0
    assert stream.stats.last_delay == delays[-1]


@pytest.mark.parametrize("status", [401, 403])
async def test_refused_token_raises_auth_error(
    server: NotifyServer, session: aiohttp.ClientSession, status: int
) -> None:
    states: list[bool] = []
    if status == 401:
        stream = make_stream(session, server.url, token="wrong-token", on_state=states.append)
    else:
        server.status = 403
        stream = make_stream(session, server.url, on_state=states.append)
    with pytest.raises(PlexAuthError) as caught:
        await stream.run(Collector())
    assert f"HTTP {status}" in str(caught.value)
    assert TOKEN not in str(caught.value)
    assert "wrong-token" not in str(caught.value)
    assert caught.value.__cause__ is None
    assert stream.stats.reconnects == 0
    assert stream.stats.connects == 0
    assert stream.last_error is not None
    assert states == []
    assert not stream.connected


async def test_other_refusals_are_retried(
    server: NotifyServer, session: aiohttp.ClientSession
) -> None:
    server.status = 404
    delays: list[float] = []
    stream = make_stream(session, server.url, sleep=recording_sleep(delays))
    running = Running(stream, Collector())
    await until(lambda: len(delays) >= 2)
    assert stream.last_error is not None
    assert "HTTP 404" in stream.last_error
    server.status = None
    await until(lambda: stream.connected)
    await running.stop()


async def test_token_only_in_the_header(
    server: NotifyServer, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    handler = Collector()
    handler.fail_next = True
    stream = make_stream(session, f"http://user:pw@127.0.0.1:{server.port}/", verify_ssl=False)
    assert TOKEN not in stream.url
    assert "pw" not in stream.url
    running = Running(stream, handler)
    await until(lambda: stream.connected and bool(server.open_sockets))
    await server.send(
        timeline(itemID="1"),
        "not json",
        message("timeline", "TimelineEntry", {"state": 5}),
        message("update.statechange"),
    )
    await until(lambda: stream.stats.messages == 4)
    await server.drop()
    await until(lambda: stream.stats.connects == 2)
    await server.stop()
    await until(lambda: stream.stats.reconnects >= 3)
    await running.stop()

    # And a refused token.
    await server.start()
    with pytest.raises(PlexAuthError):
        await make_stream(session, server.url, token=TOKEN + "-old").run(Collector())

    assert server.seen
    for seen in server.seen[:-1]:
        assert seen.headers["X-Plex-Token"] == TOKEN
        assert seen.headers["X-Plex-Product"] == "Retrovue"
        assert seen.headers["X-Plex-Client-Identifier"] == "retrovue"
        assert seen.path_qs == NOTIFICATIONS_PATH
    assert TOKEN not in server.seen[-1].path_qs

    formatter = logging.Formatter()
    assert caplog.records
    assert any(record.exc_info for record in caplog.records)
    for record in caplog.records:
        text = formatter.format(record)
        assert TOKEN not in text, record.name
        assert "pw@" not in text


async def test_cancel_closes_the_websocket(
    server: NotifyServer, session: aiohttp.ClientSession
) -> None:
    states: list[bool] = []
    stream = make_stream(session, server.url, on_state=states.append)
    running = Running(stream, Collector())
    await until(lambda: stream.connected and bool(server.open_sockets))
    await running.stop()
    assert not stream.connected
    assert states == [True, False]
    await until(lambda: bool(server.client_close_codes))
    assert server.client_close_codes == [aiohttp.WSCloseCode.OK]
    # The session is borrowed: still open, and the stream can run again.
    assert not session.closed
    running = Running(stream, Collector())
    await until(lambda: stream.connected)
    await running.stop()


async def test_cancel_while_waiting_to_retry(session: aiohttp.ClientSession) -> None:
    stream = make_stream(session, "http://127.0.0.1:9", backoff_initial=30.0, backoff_max=30.0)
    running = Running(stream, Collector())
    await until(lambda: stream.stats.reconnects == 1)
    await running.stop()
    assert stream.stats.connects == 0


async def test_handler_error_does_not_stop_the_stream(
    server: NotifyServer, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    handler = Collector()
    handler.fail_next = True
    stream = make_stream(session, server.url)
    running = Running(stream, handler)
    await until(lambda: stream.connected and bool(server.open_sockets))
    await server.send(timeline(itemID="1"), timeline(itemID="2"))
    await until(lambda: len(handler.items) == 2)
    assert stream.stats.handler_errors == 1
    assert stream.stats.connects == 1
    failures = [r for r in caplog.records if "handler failed" in r.getMessage()]
    assert len(failures) == 1
    assert failures[0].exc_info is not None
    await running.stop()


async def test_state_callback_errors_are_contained(
    server: NotifyServer, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(connected: bool) -> None:
        raise ValueError(connected)

    stream = make_stream(session, server.url, on_state=broken)
    running = Running(stream, Collector())
    await until(lambda: stream.connected)
    await running.stop()
    assert not stream.connected
    assert sum("state callback failed" in r.getMessage() for r in caplog.records) == 2


async def test_bad_messages_are_dropped_and_reported_once(
    server: NotifyServer, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)
    handler = Collector()
    stream = make_stream(session, server.url, max_message_bytes=2000)
    running = Running(stream, handler)
    await until(lambda: stream.connected and bool(server.open_sockets))
    bad_entry = message("timeline", "TimelineEntry", {"state": 5}, {"itemID": "3"})
    await server.send(
        "not json",
        "{also not json",
        bad_entry,
        bad_entry,
        message("backgroundProcessingQueue"),
        message("backgroundProcessingQueue"),
        timeline(itemID="big", title="x" * 3000),
        timeline(itemID="big", title="x" * 3000),
        timeline(itemID="last"),
    )
    await until(lambda: stream.stats.messages == 9)
    await until(lambda: len(handler.items) == 3)
    assert [n.item_id for n in handler.items if isinstance(n, TimelineEntry)] == [
        "3",
        "3",
        "last",
    ]
    assert stream.stats.malformed == 4
    assert stream.stats.dropped == 2
    assert stream.stats.ignored == 2
    # A message a little over the limit is dropped without losing the connection.
    assert stream.stats.connects == 1

    ours = [r for r in caplog.records if r.name == LOGGER_NAME]
    warnings = [r.getMessage() for r in ours if r.levelno == logging.WARNING]
    assert len(warnings) == 3, warnings  # not_json, the missing itemID, too_large
    assert sum("malformed JSON" in w for w in warnings) == 1
    assert sum("itemID" in w for w in warnings) == 1
    assert sum("byte limit" in w for w in warnings) == 1
    ignored = [r.getMessage() for r in ours if "ignoring" in r.getMessage()]
    assert len(ignored) == 1
    assert all(r.levelno == logging.DEBUG for r in ours if "ignoring" in r.getMessage())
    await running.stop()


async def test_run_twice_at_once_is_refused(
    server: NotifyServer, session: aiohttp.ClientSession
) -> None:
    stream = make_stream(session, server.url)
    running = Running(stream, Collector())
    await until(lambda: stream.connected)
    with pytest.raises(RuntimeError):
        await stream.run(Collector())
    assert stream.connected
    await running.stop()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://plex.local:32400", "ws://plex.local:32400/:/websockets/notifications"),
        ("https://1-2-3-4.abc.plex.direct:32400/", "wss://1-2-3-4.abc.plex.direct:32400"),
        ("https://example.com/plex/", "wss://example.com/plex/:/websockets/notifications"),
    ],
)
async def test_websocket_url(session: aiohttp.ClientSession, url: str, expected: str) -> None:
    stream = NotificationStream(session, url, TOKEN)
    assert stream.url.startswith(expected)
    assert stream.url.endswith(NOTIFICATIONS_PATH)


@pytest.mark.parametrize("url", ["ftp://plex.local", "plex.local:32400", "http://"])
async def test_websocket_url_refuses_other_schemes(
    session: aiohttp.ClientSession, url: str
) -> None:
    with pytest.raises(ValueError, match="not an http"):
        NotificationStream(session, url, TOKEN)
