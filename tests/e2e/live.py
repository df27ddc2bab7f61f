"""The live phase of the end-to-end test: push and webhooks in a real `hass`, through REST only.

Runs inside `running_stack` once the first sync is done. Every check goes through Home
Assistant's public interfaces: states (`/api/states`), actions with a response
(`/api/services/retrovue/…?return_response`), diagnostics (`/api/diagnostics/…`, for the
activity log), the options flow (for the webhook's address, as a user reads it), webhook POSTs
to `/api/webhook/<id>` shaped as Plex sends them, and the websocket API's `subscribe_events`
for Retrovue's events (the one interface that shows each event as it fires, so "fired once"
can be counted without writing automations into the configuration).

Steps (each live change must show within `LIVE_LIMIT` seconds): push connected; an added
episode in the catalog and the active sensor; a removed episode MISSING; a scrobble webhook,
delivered twice, raising `view_count` with one `retrovue_item_watched`; a webhook naming another
server changing nothing; a malformed one refused; the websocket dropped by the server and
reconnected, the next change arriving. Then the freshness figures: rounds that each make one
change of every kind at once (add an episode, edit a movie's title, remove a movie, watch a
movie to the end) and time each from the change in the emulator to where it shows through
REST (the active, missing and unwatched sensors; `find_items` for the title, which no sensor
counts). A round's four changes travel in one batch, as a scan's would; timing them in rounds
rather than one after another keeps 50 of each within about a minute.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
import contextlib
from dataclasses import dataclass, field
import statistics
import time
from typing import TYPE_CHECKING, Any

import aiohttp

from tests.emulator import EmuItem, EmuServer, post_webhook

from .common import E2EError, _log, _sensor

if TYPE_CHECKING:
    from .run import Stack

# Seconds a live change may take to show (the acceptance bound), and the polling interval.
LIVE_LIMIT = 5.0
POLL = 0.05
EVENTS = (
    "retrovue_items_changed",
    "retrovue_items_missing",
    "retrovue_item_watched",
    "retrovue_playback",
)
KINDS = ("add", "edit", "remove", "watch")
OTHER_SERVER = "another-e2e-server-uuid"


class EventRecorder:
    """Record Home Assistant events through its websocket API (`subscribe_events`)."""

    def __init__(self, session: aiohttp.ClientSession, base: str, token: str) -> None:
        """Connect on `start`; `events` holds every event received, oldest first."""
        self._session = session
        self._url = base.replace("http://", "ws://", 1) + "/api/websocket"
        self._token = token
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_id = 0
        self._pongs: dict[int, asyncio.Future[None]] = {}
        self.events: list[dict[str, Any]] = []

    async def start(self, event_types: tuple[str, ...]) -> None:
        """Authenticate and subscribe to each event type (confirmed before returning)."""
        ws = self._ws = await self._session.ws_connect(self._url)
        if (await ws.receive_json()).get("type") != "auth_required":
            raise E2EError("the websocket API did not ask for authentication")
        await ws.send_json({"type": "auth", "access_token": self._token})
        if (answer := await ws.receive_json()).get("type") != "auth_ok":
            raise E2EError(f"the websocket API refused the token: {answer}")
        for event_type in event_types:
            self._last_id += 1
            await ws.send_json(
                {"id": self._last_id, "type": "subscribe_events", "event_type": event_type}
            )
            answer = await ws.receive_json()
            if answer.get("id") != self._last_id or not answer.get("success"):
                raise E2EError(f"subscribe_events {event_type} failed: {answer}")
        self._task = asyncio.create_task(self._read(ws))

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                continue
            data = message.json()
            if data.get("type") == "event":
                self.events.append(data["event"])
            elif data.get("type") == "pong" and data.get("id") in self._pongs:
                self._pongs.pop(data["id"]).set_result(None)

    async def flush(self) -> None:
        """Return once every event fired before this call has been received.

        Home Assistant answers a ping on the same connection, after what it queued before.
        """
        if self._ws is None:
            raise E2EError("the event recorder was not started")
        self._last_id += 1
        pong = self._pongs[self._last_id] = asyncio.get_running_loop().create_future()
        await self._ws.send_json({"id": self._last_id, "type": "ping"})
        try:
            async with asyncio.timeout(LIVE_LIMIT):
                await pong
        except TimeoutError:
            raise E2EError("the websocket API did not answer a ping") from None

    def of(self, event_type: str, **match: Any) -> list[dict[str, Any]]:
        """Return the events of a type whose data has the given values."""
        return [
            event
            for event in self.events
            if event["event_type"] == event_type
            and all(event["data"].get(key) == value for key, value in match.items())
        ]

    async def close(self) -> None:
        """Close the websocket and stop reading."""
        if self._ws is not None:
            await self._ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


@dataclass
class Live:
    """What the live phase works with."""

    stack: Stack
    session: aiohttp.ClientSession
    webhook_url: str
    events: EventRecorder
    # Movies in the catalog picked for the steps: renamed as a marker, scrobbled, and named by
    # another server's webhook (the last two unwatched).
    marker_movie: EmuItem
    scrobbled: EmuItem
    elsewhere: EmuItem
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def server(self) -> EmuServer:
        """Return the emulated server."""
        return self.stack.plex_server

    def passed(self, what: str) -> None:
        """Record and print a passed step."""
        self.stack.passed.append(what)
        _log(what)

    async def find(self, title: str) -> list[dict[str, Any]]:
        """Return `retrovue.find_items` for a title."""
        answer = await self.stack.api.post(
            "/api/services/retrovue/find_items?return_response", {"title": title}
        )
        items: list[dict[str, Any]] = answer["service_response"]["items"]
        return items

    async def row(self, item: EmuItem, title: str | None = None) -> dict[str, Any] | None:
        """Return the catalog's row of an emulated item (by title, picked by ratingKey)."""
        key = str(item.rating_key)
        found = await self.find(title or item.title)
        return next((row for row in found if row["rating_key"] == key), None)

    async def sensors(self) -> dict[str, str | None]:
        """Return the states of the counts and the push sensor this phase follows."""
        states = await self.stack.api.states()
        values: dict[str, str | None] = {}
        for name in (
            "Movies active",
            "Movies missing",
            "Movies unwatched",
            "TV Shows active",
            "TV Shows missing",
        ):
            state = _sensor(states, name)
            values[name] = state["state"] if state else None
        push = next(
            (
                state
                for entity_id, state in states.items()
                if entity_id.startswith("binary_sensor.")
                and state["attributes"].get("friendly_name", "").endswith("Push connected")
            ),
            None,
        )
        values["push"] = push["state"] if push else None
        return values

    async def count(self, name: str) -> int:
        """Return a count sensor's value."""
        value = (await self.sensors())[name]
        if value is None or not value.isdigit():
            raise E2EError(f"sensor {name} is {value}")
        return int(value)

    async def activity(self) -> list[tuple[str, str, str | None, str, str | None]]:
        """Return the latest live-update records from the diagnostics, newest first."""
        diagnostics = await self.stack.api.get(
            f"/api/diagnostics/config_entry/{self.stack.entry_id}"
        )
        return [
            (row["source"], row["event"], row["rating_key"], row["outcome"], row["detail"])
            for row in diagnostics["data"]["live"]["recent_activity"]
        ]

    async def marker(self, title: str) -> float:
        """Rename a movie with a notification and wait until it shows; return the latency.

        Live updates are handled in order, one batch after the other. Once the marker's
        `retrovue_items_changed` is received (and a ping answered after it), everything
        notified before the marker was handled and its events received: a batch fires its
        events together, before its next await.
        """
        movie = self.marker_movie
        start = time.perf_counter()
        self.server.change_item(movie.rating_key, title=title)

        async def shown() -> bool:
            return await self.row(movie, title) is not None

        latency = await within(f"the marker {title!r}", shown, since=start)

        async def fired() -> bool:
            return any(
                title in event["data"]["titles"]
                for event in self.events.of("retrovue_items_changed")
            )

        await within(f"retrovue_items_changed for the marker {title!r}", fired)
        await self.events.flush()
        return latency


async def within(
    what: str,
    probe: Callable[[], Awaitable[bool]],
    *,
    since: float | None = None,
    limit: float = LIVE_LIMIT,
) -> float:
    """Poll until `probe` is true; return the seconds since `since` (default: now).

    Raises E2EError when `limit` seconds pass first.
    """
    start = time.perf_counter() if since is None else since
    while True:
        if await probe():
            return time.perf_counter() - start
        if time.perf_counter() - start > limit:
            raise E2EError(f"{what}: not within {limit:.0f} s")
        await asyncio.sleep(POLL)


async def webhook_address(stack: Stack) -> str:
    """Return the entry's webhook URL, read from its options form as a user reads it."""
    api = stack.api
    flow = await api.post(
        "/api/config/config_entries/options/flow",
        {"handler": stack.entry_id, "show_advanced_options": False},
    )
    try:
        shown = flow["description_placeholders"]["webhook_url"]
    finally:
        async with api.session.delete(
            f"{api.base}/api/config/config_entries/options/flow/{flow['flow_id']}",
            headers={"Authorization": f"Bearer {api.token}"},
        ) as resp:
            await resp.read()
    if "/api/webhook/" not in shown:
        raise E2EError(f"the options form shows no webhook address: {shown!r}")
    webhook_id = shown.rsplit("/api/webhook/", 1)[1]
    return f"{stack.base}/api/webhook/{webhook_id}"


async def run_live_phase(stack: Stack, *, changes: int) -> dict[str, Any]:
    """Run the live steps and the freshness rounds; return the figures."""
    # Earlier steps poisoned some movies' answers: they stay out of this phase.
    poisoned = set(stack.plex.poisons)
    stack.plex.poisons.clear()
    async with aiohttp.ClientSession() as session:
        events = EventRecorder(session, stack.base, str(stack.api.token))
        await events.start(EVENTS)
        try:
            webhook_url = await webhook_address(stack)
            live = Live(stack, session, webhook_url, events, *await _pick_movies(stack, poisoned))
            live.passed("the webhook address read from the options flow")
            await _push_connected(live)
            await _episode_added(live)
            await _episode_removed(live)
            await _scrobble_twice(live)
            await _other_server(live)
            await _malformed(live)
            await _reconnect(live)
            await _freshness(live, changes)
        finally:
            await events.close()
    return live.figures


async def _pick_movies(stack: Stack, poisoned: set[str]) -> tuple[EmuItem, EmuItem, EmuItem]:
    """Return three movies ACTIVE in the catalog, the last two unwatched in Plex and there."""
    api = stack.api
    picked: list[EmuItem] = []
    movies = [
        item
        for item in stack.plex_server.items.values()
        if item.type == "movie" and str(item.rating_key) not in poisoned
    ]
    for movie in reversed(movies):
        if picked and movie.view_count:
            continue
        answer = await api.post(
            "/api/services/retrovue/find_items?return_response", {"title": movie.title}
        )
        rows = answer["service_response"]["items"]
        row = next((r for r in rows if r["rating_key"] == str(movie.rating_key)), None)
        if row is None or row["state"] != "ACTIVE" or (picked and row["view_count"]):
            continue
        picked.append(movie)
        if len(picked) == 3:
            return picked[0], picked[1], picked[2]
    raise E2EError("not enough movies in the catalog for the live phase")


async def _push_connected(live: Live) -> None:
    async def on() -> bool:
        return (await live.sensors())["push"] == "on"

    # Connected long before: the first sync already finished.
    await within("the push sensor to be on", on)
    if live.stack.plex.notifications.connected != 1:
        raise E2EError(f"{live.stack.plex.notifications.connected} websocket clients, not 1")
    live.passed("the push sensor is on with one websocket to the server")


async def _episode_added(live: Live) -> None:
    server = live.server
    active = await live.count("TV Shows active")
    show = next(item for item in server.items.values() if item.type == "show")
    season = server.item(show.children[-1])
    number = len(season.children) + 1
    start = time.perf_counter()
    episode = server.add_episode(season.rating_key, number, "E2E Live Arrival")

    async def shown() -> bool:
        return await live.count("TV Shows active") == active + 1

    latency = await within("an added episode in the active sensor", shown, since=start)
    row = await live.row(episode)
    if row is None or row["state"] != "ACTIVE":
        raise E2EError(f"the added episode is not ACTIVE in the catalog: {row}")
    label = f"{show.title} S{season.index:02d}E{number:02d} E2E Live Arrival"

    async def fired() -> bool:
        return any(
            label in event["data"]["titles"] for event in live.events.of("retrovue_items_changed")
        )

    await within("retrovue_items_changed with the episode's title", fired, since=start)
    live.passed(f"an added episode was in the catalog and the active sensor in {latency:.2f} s")


async def _episode_removed(live: Live) -> None:
    server = live.server
    missing = await live.count("TV Shows missing")
    episode = next(item for item in server.items.values() if item.type == "episode")
    start = time.perf_counter()
    server.remove_item(episode.rating_key)

    async def shown() -> bool:
        return await live.count("TV Shows missing") == missing + 1

    latency = await within("a removed episode in the missing sensor", shown, since=start)
    row = await live.row(episode)
    if row is None or row["state"] != "MISSING":
        raise E2EError(f"the removed episode is not MISSING in the catalog: {row}")

    async def fired() -> bool:
        return any(
            episode.title in title
            for event in live.events.of("retrovue_items_missing")
            for title in event["data"]["titles"]
        )

    await within("retrovue_items_missing with the episode's title", fired, since=start)
    live.passed(f"a removed episode was MISSING in {latency:.2f} s")


async def _scrobble_twice(live: Live) -> None:
    server = live.server
    movie = live.scrobbled
    key = str(movie.rating_key)
    # What the scrobble reports happened in Plex (no notification); the webhook says to read it.
    with server.silent():
        server.set_watch_state(movie.rating_key, view_count=1, last_viewed_at=server.now())
    start = time.perf_counter()
    for _ in range(2):
        status = await post_webhook(
            live.session, live.webhook_url, "media.scrobble", server=server, item=movie
        )
        if status != 200:
            raise E2EError(f"a scrobble webhook was answered {status}")

    async def counted() -> bool:
        row = await live.row(movie)
        return row is not None and row["view_count"] == 1

    latency = await within("view_count to rise after a scrobble webhook", counted, since=start)

    async def recorded() -> bool:
        outcomes = {(e, k, o) for s, e, k, o, _ in await live.activity() if s == "webhook"}
        return {("media.scrobble", key, "watched"), ("media.scrobble", key, "duplicate")} <= (
            outcomes
        )

    await within("the scrobble's outcomes (watched, duplicate) in the diagnostics", recorded)
    await live.marker("Live Marker After The Scrobble")
    watched = live.events.of("retrovue_item_watched", rating_key=key)
    playback = live.events.of("retrovue_playback", rating_key=key)
    if (len(watched), len(playback)) != (1, 1):
        raise E2EError(
            f"a scrobble delivered twice fired {len(watched)} retrovue_item_watched and "
            f"{len(playback)} retrovue_playback events, not one each"
        )
    live.passed(
        f"a scrobble webhook delivered twice raised view_count in {latency:.2f} s and fired "
        "retrovue_item_watched once (the second recorded as a duplicate)"
    )


async def _other_server(live: Live) -> None:
    server = live.server
    movie = live.elsewhere
    key = str(movie.rating_key)
    with server.silent():
        server.set_watch_state(movie.rating_key, view_count=2, last_viewed_at=server.now())
    status = await post_webhook(
        live.session,
        live.webhook_url,
        "media.scrobble",
        server=server,
        item=movie,
        extra={"Server": {"uuid": OTHER_SERVER, "title": "Elsewhere"}},
    )
    if status != 200:
        raise E2EError(f"a webhook for another server was answered {status}")

    async def rejected() -> bool:
        return ("webhook", "media.scrobble", key, "rejected", "another server") in (
            await live.activity()
        )

    await within("the other server's webhook recorded as rejected", rejected)
    await live.marker("Live Marker After Another Server")
    row = await live.row(movie)
    if row is None or row["view_count"] not in (0, None):
        raise E2EError(f"a webhook for another server changed the catalog: {row}")
    if live.events.of("retrovue_item_watched", rating_key=key) or live.events.of(
        "retrovue_playback", rating_key=key
    ):
        raise E2EError("a webhook for another server fired an event")
    with server.silent():
        server.set_watch_state(movie.rating_key, view_count=0, last_viewed_at=None)
    live.passed("a webhook for another server changed nothing and was recorded as rejected")


async def _malformed(live: Live) -> None:
    async with live.session.post(
        live.webhook_url, data=b"{not json", headers={"Content-Type": "application/json"}
    ) as resp:
        status = resp.status
    if status != 400:
        raise E2EError(f"a malformed webhook was answered {status}, not 400")

    async def recorded() -> bool:
        return any(
            row[:2] == ("webhook", "?")
            and row[3] == "rejected"
            and (row[4] or "").startswith("payload is not JSON")
            for row in await live.activity()
        )

    await within("the malformed webhook recorded as rejected", recorded)
    live.passed("a malformed webhook was refused with 400 and recorded")


async def _reconnect(live: Live) -> None:
    plex = live.stack.plex
    connects = plex.notifications.connects
    start = time.perf_counter()
    if await plex.drop_notifications() != 1:
        raise E2EError("the server had no websocket client to drop")

    async def back() -> bool:
        return (
            plex.notifications.connects > connects
            and plex.notifications.connected == 1
            and (await live.sensors())["push"] == "on"
        )

    reconnect = await within("the websocket to reconnect", back, since=start)
    change = await live.marker("Live Marker After The Reconnect")
    live.figures["reconnect"] = {
        "reconnect_s": round(reconnect, 3),
        "change_after_reconnect_s": round(change, 3),
    }
    live.passed(
        f"after the server dropped the websocket it reconnected in {reconnect:.2f} s and the "
        f"next change arrived in {change:.2f} s"
    )


async def _freshness(live: Live, rounds: int) -> None:
    """Time `rounds` changes of each kind, one of every kind per round (see the docstring)."""
    server = live.server
    with server.silent():
        doomed = []
        for number in range(rounds):
            movie = server.add_movie("1", f"Live Remove {number:03d}", 2001)
            # Watched, so that removing it leaves the unwatched count to the watch changes.
            server.set_watch_state(movie.rating_key, view_count=1, last_viewed_at=server.now())
            doomed.append(movie)
        to_watch = [server.add_movie("1", f"Live Watch {n:03d}", 2002) for n in range(rounds)]
        to_edit = [server.add_movie("1", f"Live Edit {n:03d}", 2003) for n in range(rounds)]
    answer = await live.stack.api.post(
        "/api/services/retrovue/sync_library?return_response",
        {"config_entry_id": live.stack.entry_id, "library": "Movies"},
    )
    if answer["service_response"]["libraries"][0]["status"] != "ok":
        raise E2EError(f"syncing the movies for the freshness rounds failed: {answer}")
    shows = [item for item in server.items.values() if item.type == "show"]
    start_counts = await live.sensors()
    tv_active = int(start_counts["TV Shows active"] or 0)
    missing = int(start_counts["Movies missing"] or 0)
    unwatched = int(start_counts["Movies unwatched"] or 0)
    latencies: dict[str, list[float]] = {kind: [] for kind in KINDS}
    began = time.perf_counter()
    for number in range(rounds):
        at: dict[str, float] = {}
        at["add"] = time.perf_counter()
        server.add_episodes(shows[number % len(shows)].rating_key, 1)
        at["edit"] = time.perf_counter()
        edited = server.change_item(to_edit[number].rating_key, title=f"Live Edited {number:03d}")
        at["remove"] = time.perf_counter()
        server.remove_item(doomed[number].rating_key)
        at["watch"] = time.perf_counter()
        watch = to_watch[number]
        server.play(watch.rating_key, offset_ms=0)
        server.stop(watch.rating_key, offset_ms=int((watch.duration or 6_000_000) * 0.95))
        pending = set(KINDS)
        while pending:
            counts = await live.sensors()
            seen = time.perf_counter()
            expected = {
                "add": ("TV Shows active", tv_active + number + 1),
                "remove": ("Movies missing", missing + number + 1),
                "watch": ("Movies unwatched", unwatched - number - 1),
            }
            for kind, (name, value) in expected.items():
                if kind in pending and counts[name] == str(value):
                    latencies[kind].append(seen - at[kind])
                    pending.discard(kind)
            if "edit" in pending and await live.row(edited) is not None:
                latencies["edit"].append(time.perf_counter() - at["edit"])
                pending.discard("edit")
            if pending and time.perf_counter() - at["add"] > LIVE_LIMIT:
                raise E2EError(
                    f"freshness round {number}: {sorted(pending)} not shown within "
                    f"{LIVE_LIMIT:.0f} s (sensors: {counts})"
                )
            if pending:
                await asyncio.sleep(POLL)
    spent = time.perf_counter() - began
    for kind in KINDS:
        values = latencies[kind]
        live.figures[kind] = {
            "changes": len(values),
            "median_s": round(statistics.median(values), 3),
            "max_s": round(max(values), 3),
            "min_s": round(min(values), 3),
        }
    live.figures["rounds"] = {"count": rounds, "seconds": round(spent, 1), "poll_s": POLL}
    summary = ", ".join(
        f"{kind} {live.figures[kind]['median_s']:.2f}/{live.figures[kind]['max_s']:.2f} s"
        for kind in KINDS
    )
    live.passed(
        f"{rounds} changes of each kind shown within {LIVE_LIMIT:.0f} s "
        f"(change → REST, median/max: {summary})"
    )
