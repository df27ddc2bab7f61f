"""The live catalog: Plex's notification websocket and webhooks, through the emulator.

Everything runs over real HTTP and a real websocket on 127.0.0.1: the emulator pushes Plex's
notification messages on every mutation (`with plex_server.silent():` mutates without), and
webhooks are POSTed to Home Assistant's test server as Plex sends them. Waits poll real time
with a deadline of `DEADLINE` seconds (the acceptance bound of a live change), never asserting
how long anything took.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
import inspect
import json
import logging
import time
from typing import Any
from unittest.mock import patch

from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.event import async_track_state_change_event
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.retrovue.const import (
    CONF_WEBHOOK_ID,
    DOMAIN,
    EVENT_ITEM_WATCHED,
    EVENT_ITEMS_CHANGED,
    EVENT_ITEMS_MISSING,
    EVENT_PLAYBACK,
)
from custom_components.retrovue.coordinator import RetrovueDataUpdateCoordinator
from custom_components.retrovue.engine.plex.webhooks import MAX_PAYLOAD
from custom_components.retrovue.engine.store import CatalogStore
from custom_components.retrovue.shared import get_catalog
from tests.emulator import (
    EmuItem,
    EmuServer,
    Fault,
    FaultKind,
    PlexEmulator,
    post_webhook,
    webhook_payload,
)

from .conftest import HA_TOKEN, async_wait_synced

pytestmark = pytest.mark.usefixtures("enable_custom_integrations")

# Seconds a live change may take to reach the catalog and the sensors.
DEADLINE = 5.0
MOVIES, SHOWS = "1", "2"
LIVE_EVENTS = (EVENT_ITEMS_CHANGED, EVENT_ITEMS_MISSING, EVENT_ITEM_WATCHED, EVENT_PLAYBACK)

type Activity = list[tuple[str, str, str | None, str, str | None]]


# --- helpers ----------------------------------------------------------------------------------


async def _until(
    hass: HomeAssistant,
    condition: Callable[[], Any],
    what: str,
    seconds: float = DEADLINE,
) -> Any:
    """Return the condition's first truthy value (awaited if need be), polling real time.

    Fails the test when `seconds` pass without one.
    """
    deadline = time.monotonic() + seconds
    while True:
        await hass.async_block_till_done()
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {seconds} s: {what}")
        await asyncio.sleep(0.05)


def _entity_id(hass: HomeAssistant, entry: MockConfigEntry, key: str) -> str:
    platform = "binary_sensor" if key == "push" else "sensor"
    entity_id = er.async_get(hass).async_get_entity_id(platform, DOMAIN, f"{entry.unique_id}_{key}")
    assert entity_id, key
    return entity_id


def _state(hass: HomeAssistant, entry: MockConfigEntry, key: str) -> str:
    state = hass.states.get(_entity_id(hass, entry, key))
    assert state is not None
    return state.state


def _count(hass: HomeAssistant, entry: MockConfigEntry, key: str) -> int:
    return int(_state(hass, entry, key))


def _coordinator(entry: MockConfigEntry) -> RetrovueDataUpdateCoordinator:
    coordinator: RetrovueDataUpdateCoordinator = entry.runtime_data
    return coordinator


async def _find(hass: HomeAssistant, title: str, kind: str | None = None) -> list[dict[str, Any]]:
    data: dict[str, Any] = {"title": title}
    if kind is not None:
        data["kind"] = kind
    response = await hass.services.async_call(
        DOMAIN, "find_items", data, blocking=True, return_response=True
    )
    assert response is not None
    items: list[dict[str, Any]] = response["items"]  # type: ignore[assignment]
    return items


async def _item(hass: HomeAssistant, item: EmuItem, title: str | None = None) -> dict[str, Any]:
    """Return the catalog's row of an emulated item (found by title, picked by ratingKey)."""
    rows = [
        row
        for row in await _find(hass, title or item.title)
        if row["rating_key"] == str(item.rating_key)
    ]
    return rows[0] if rows else {}


async def _activity(hass: HomeAssistant, entry: MockConfigEntry) -> Activity:
    """Return the server's activity log, newest first: (source, event, key, outcome, detail)."""
    catalog = get_catalog(hass)
    server = _coordinator(entry).server
    assert catalog is not None
    assert server is not None
    records = await catalog.call(CatalogStore.recent_activity, server.server_id, 200)
    return [
        (record.source, record.event, record.rating_key, record.outcome, record.detail)
        for record in records
    ]


def _requests(plex: PlexEmulator) -> int:
    """Return how many HTTP requests reached the emulator (websocket handshakes left out)."""
    return sum(count for endpoint, count in plex.counters.items() if endpoint != "notifications")


def _movies(plex_server: EmuServer) -> list[EmuItem]:
    return [item for item in plex_server.items.values() if item.type == "movie"]


def _unwatched_movie(plex_server: EmuServer, skip: int = 0) -> EmuItem:
    return [movie for movie in _movies(plex_server) if not movie.view_count][skip]


def _episodes(plex_server: EmuServer) -> list[EmuItem]:
    return [item for item in plex_server.items.values() if item.type == "episode"]


def _last_season(plex_server: EmuServer, show: EmuItem) -> EmuItem:
    return plex_server.item(show.children[-1])


def _deleted_entry(item: EmuItem) -> dict[str, Any]:
    """Return a hand-made notification: Plex saying the item was deleted (timeline state 9)."""
    return {
        "NotificationContainer": {
            "type": "timeline",
            "size": 1,
            "TimelineEntry": [
                {
                    "identifier": "com.plexapp.plugins.library",
                    "sectionID": item.section_key,
                    "itemID": str(item.rating_key),
                    "type": 1,
                    "title": item.title,
                    "state": 9,
                    "metadataState": "deleted",
                    "updatedAt": item.updated_at,
                }
            ],
        }
    }


@pytest.fixture
async def live_entry(
    hass: HomeAssistant, init_integration: MockConfigEntry, plex: PlexEmulator
) -> MockConfigEntry:
    """Return the synced entry once its notification websocket is connected."""
    await _until(
        hass,
        lambda: _state(hass, init_integration, "push") == STATE_ON,
        "the push sensor to turn on",
    )
    assert plex.notifications.connected == 1
    return init_integration


@pytest.fixture
async def webhook_url(live_entry: MockConfigEntry) -> str:
    """Return the path of the entry's webhook."""
    webhook_id = live_entry.data[CONF_WEBHOOK_ID]
    assert webhook_id
    return f"/api/webhook/{webhook_id}"


async def _marker(
    hass: HomeAssistant, entry: MockConfigEntry, plex_server: EmuServer, title: str
) -> None:
    """Rename a movie with a notification and wait until its batch is done.

    Live updates are handled in order, one batch after the other, and a batch logs its
    activity after its events: once the marker's row is in the activity log, everything
    notified before it has been handled, events fired included.
    """
    movie = _movies(plex_server)[-1]
    row = ("websocket", "timeline 5", str(movie.rating_key), "changed", None)
    logged = (await _activity(hass, entry)).count(row)
    plex_server.change_item(movie.rating_key, title=title)

    async def done() -> bool:
        return (await _activity(hass, entry)).count(row) > logged

    await _until(hass, done, f"the marker {title!r}")
    assert await _item(hass, movie, title)


# --- the websocket ----------------------------------------------------------------------------


async def test_push_sensor_follows_the_websocket(
    hass: HomeAssistant, live_entry: MockConfigEntry, plex: PlexEmulator
) -> None:
    entity_id = _entity_id(hass, live_entry, "push")
    state = hass.states.get(entity_id)
    assert state is not None
    assert state.attributes["device_class"] == "connectivity"
    seen: list[str] = []

    @callback
    def _record(event: Event[EventStateChangedData]) -> None:
        if (new_state := event.data["new_state"]) is not None:
            seen.append(new_state.state)

    async_track_state_change_event(hass, [entity_id], _record)

    assert await plex.drop_notifications() == 1
    # Off as soon as the server closes the websocket, on again after the reconnect (whose
    # first wait is about a second): both changes are recorded, in that order.
    await _until(hass, lambda: seen[:2] == [STATE_OFF, STATE_ON], "off, then on again")
    assert plex.notifications.connected == 1
    assert plex.notifications.connects == 2
    stats = _coordinator(live_entry).live.stream.stats  # type: ignore[union-attr]
    assert stats.connects == 2
    assert stats.reconnects == 1


@pytest.mark.parametrize("abort", [False, True], ids=["closed", "cut"])
async def test_changes_arrive_after_the_websocket_comes_back(
    hass: HomeAssistant,
    live_entry: MockConfigEntry,
    plex: PlexEmulator,
    plex_server: EmuServer,
    abort: bool,
) -> None:
    """Closed by the server (a restart) or cut (the network): it reconnects, changes arrive."""
    assert await plex.drop_notifications(abort=abort) == 1
    await _until(hass, lambda: plex.notifications.connects == 2, "the reconnect")
    await _until(hass, lambda: _state(hass, live_entry, "push") == STATE_ON, "push on again")

    movie = _movies(plex_server)[0]
    plex_server.change_item(movie.rating_key, title="Back Online")

    async def arrived() -> bool:
        return bool(await _item(hass, movie, "Back Online"))

    await _until(hass, arrived, "the change after the reconnect")


async def test_an_added_episode_arrives(
    hass: HomeAssistant, live_entry: MockConfigEntry, plex_server: EmuServer
) -> None:
    changed = async_capture_events(hass, EVENT_ITEMS_CHANGED)
    active = _count(hass, live_entry, f"library_{SHOWS}_active")
    show = next(item for item in plex_server.items.values() if item.type == "show")
    season = _last_season(plex_server, show)
    number = len(season.children) + 1

    episode = plex_server.add_episode(season.rating_key, number, "A Brand New Episode")

    await _until(
        hass,
        lambda: _count(hass, live_entry, f"library_{SHOWS}_active") == active + 1,
        "the active sensor to rise",
    )
    row = await _item(hass, episode)
    assert row["state"] == "ACTIVE"
    assert (row["kind"], row["show"], row["season"], row["episode"]) == (
        "episode",
        show.title,
        season.index,
        number,
    )
    label = f"{show.title} S{season.index:02d}E{number:02d} A Brand New Episode"
    await _until(hass, lambda: any(label in event.data["titles"] for event in changed), "the event")
    event = next(event for event in changed if label in event.data["titles"])
    assert event.data["source"] == "websocket"
    assert event.data["config_entry_id"] == live_entry.entry_id
    assert event.data["machine_identifier"] == plex_server.machine_identifier
    assert event.data["count"] >= 1
    assert _count(hass, live_entry, f"library_{MOVIES}_active") == len(_movies(plex_server))


async def test_a_burst_of_300_episodes_costs_few_requests(
    hass: HomeAssistant,
    live_entry: MockConfigEntry,
    plex: PlexEmulator,
    plex_server: EmuServer,
) -> None:
    """A scan adding 30 episodes to each of 10 shows: a few show expansions, not 300 lookups."""
    shows = [item for item in plex_server.items.values() if item.type == "show"]
    with plex_server.silent():
        for number in range(10 - len(shows)):
            show = plex_server.add_show(SHOWS, f"Burst Show {number}", 2001 + number)
            season = plex_server.add_season(show.rating_key, 1)
            plex_server.add_episode(season.rating_key, 1, "Pilot")
            shows.append(show)
    await _coordinator(live_entry).async_sync([SHOWS])
    await async_wait_synced(hass)
    assert len(shows) == 10
    active = _count(hass, live_entry, f"library_{SHOWS}_active")
    assert active == len(_episodes(plex_server))
    changed = async_capture_events(hass, EVENT_ITEMS_CHANGED)
    listings = plex.counters["section_all"]
    before = _requests(plex)

    for show in shows:
        plex_server.add_episodes(show.rating_key, 30)

    await _until(
        hass,
        lambda: _count(hass, live_entry, f"library_{SHOWS}_active") == active + 300,
        "300 new episodes in the active sensor",
    )
    # Let a batch of stragglers (if any) finish before counting.
    await asyncio.sleep(1.5)
    await hass.async_block_till_done()
    spent = _requests(plex) - before
    assert spent <= 30, dict(plex.counters)
    assert plex.counters["section_all"] == listings  # no library listing: targeted only
    assert sum(event.data["count"] for event in changed) >= 300
    assert _count(hass, live_entry, f"library_{SHOWS}_active") == active + 300


async def test_a_removed_episode_is_missing(
    hass: HomeAssistant, live_entry: MockConfigEntry, plex_server: EmuServer
) -> None:
    missing_events = async_capture_events(hass, EVENT_ITEMS_MISSING)
    missing = _count(hass, live_entry, f"library_{SHOWS}_missing")
    active = _count(hass, live_entry, f"library_{SHOWS}_active")
    episode = _episodes(plex_server)[-1]
    show = plex_server.show_of(episode)
    assert show is not None

    plex_server.remove_item(episode.rating_key)

    await _until(
        hass,
        lambda: (
            _count(hass, live_entry, f"library_{SHOWS}_missing") == missing + 1 and missing_events
        ),
        "the missing sensor to rise and the event",
    )
    assert _count(hass, live_entry, f"library_{SHOWS}_active") == active - 1
    assert (await _item(hass, episode))["state"] == "MISSING"
    (event,) = missing_events
    assert event.data["count"] == 1
    assert event.data["source"] == "websocket"
    assert len(event.data["titles"]) == 1
    assert episode.title in event.data["titles"][0]
    assert ("websocket", "timeline 9", str(episode.rating_key), "missing", None) in (
        await _activity(hass, live_entry)
    )


async def test_a_deletion_notification_for_an_item_still_there_marks_nothing(
    hass: HomeAssistant, live_entry: MockConfigEntry, plex_server: EmuServer
) -> None:
    """Plex is asked before anything is marked MISSING: a wrong notification changes nothing."""
    missing_events = async_capture_events(hass, EVENT_ITEMS_MISSING)
    movie = _movies(plex_server)[0]
    active = _count(hass, live_entry, f"library_{MOVIES}_active")

    plex_server.notify(_deleted_entry(movie))
    await _marker(hass, live_entry, plex_server, "Marker After A False Deletion")

    assert (await _item(hass, movie))["state"] == "ACTIVE"
    assert _count(hass, live_entry, f"library_{MOVIES}_missing") == 0
    assert _count(hass, live_entry, f"library_{MOVIES}_active") == active
    assert not missing_events
    assert not [row for row in await _activity(hass, live_entry) if row[3] == "missing"]


async def test_a_movie_watched_to_the_end(
    hass: HomeAssistant, live_entry: MockConfigEntry, plex_server: EmuServer
) -> None:
    watched = async_capture_events(hass, EVENT_ITEM_WATCHED)
    unwatched = _count(hass, live_entry, f"library_{MOVIES}_unwatched")
    movie = _unwatched_movie(plex_server)
    duration = movie.duration or movie.media[0].duration
    assert (await _item(hass, movie))["view_count"] in (0, None)

    plex_server.play(movie.rating_key, offset_ms=0)
    plex_server.stop(movie.rating_key, offset_ms=int(duration * 0.95))
    assert movie.view_count == 1  # the emulator scrobbled at 90 %

    await _until(
        hass,
        lambda: (
            watched and _count(hass, live_entry, f"library_{MOVIES}_unwatched") == unwatched - 1
        ),
        "the watched event and the unwatched sensor to drop",
    )
    row = await _item(hass, movie)
    assert row["view_count"] == 1
    assert row["last_viewed_at"] is not None
    # Everything notified so far is handled once the marker arrived: still one event.
    await _marker(hass, live_entry, plex_server, "Marker After Watching")
    (event,) = watched
    assert event.data["rating_key"] == str(movie.rating_key)
    assert (event.data["kind"], event.data["title"], event.data["view_count"]) == (
        "movie",
        movie.title,
        1,
    )
    assert dt_util.parse_datetime(event.data["last_viewed_at"]) is not None
    assert ("websocket", "playing stopped", str(movie.rating_key), "watched", None) in (
        await _activity(hass, live_entry)
    )


async def test_a_silent_change_waits_for_the_scheduled_sync(
    hass: HomeAssistant,
    live_entry: MockConfigEntry,
    plex: PlexEmulator,
    plex_server: EmuServer,
) -> None:
    """What Plex does not notify arrives with the next sync, which push makes rarer."""
    movie = _movies(plex_server)[1]
    messages = plex.notifications.messages
    with plex_server.silent():
        plex_server.change_item(movie.rating_key, title="Changed Quietly")
    assert plex.notifications.messages == messages

    # Longer than the live queue waits for quiet: nothing was asked for, nothing comes.
    await asyncio.sleep(1.5)
    await hass.async_block_till_done()
    assert not await _item(hass, movie, "Changed Quietly")

    # One interval later: while push is connected, the scheduled sync waits its turn.
    listings = plex.counters["section_all"]
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=16))
    await async_wait_synced(hass)
    assert plex.counters["section_all"] == listings
    assert not await _item(hass, movie, "Changed Quietly")

    _coordinator(live_entry).async_start_sync(forced=True)
    await async_wait_synced(hass)
    assert plex.counters["section_all"] > listings
    assert (await _item(hass, movie, "Changed Quietly"))["state"] == "ACTIVE"


async def test_while_push_is_down_every_scheduled_sync_runs(
    hass: HomeAssistant,
    live_entry: MockConfigEntry,
    plex: PlexEmulator,
    plex_server: EmuServer,
) -> None:
    """The websocket refused: the push sensor is off and syncs run at every interval."""
    plex_server.faults.add(Fault(FaultKind.STATUS_500, endpoint="notifications", times=None))
    await plex.drop_notifications()
    await _until(hass, lambda: _state(hass, live_entry, "push") == STATE_OFF, "push off")
    movie = _movies(plex_server)[2]
    with plex_server.silent():
        plex_server.change_item(movie.rating_key, title="Caught By Polling")
    listings = plex.counters["section_all"]

    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=16))
    await async_wait_synced(hass)

    assert plex.counters["section_all"] > listings
    assert (await _item(hass, movie, "Caught By Polling"))["state"] == "ACTIVE"
    assert _state(hass, live_entry, "push") == STATE_OFF
    plex_server.faults.clear()


# --- webhooks ---------------------------------------------------------------------------------


async def test_a_scrobble_webhook_delivered_twice_counts_once(
    hass: HomeAssistant,
    live_entry: MockConfigEntry,
    plex_server: EmuServer,
    webhook_url: str,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    client = await hass_client_no_auth()
    playback = async_capture_events(hass, EVENT_PLAYBACK)
    watched = async_capture_events(hass, EVENT_ITEM_WATCHED)
    movie = _unwatched_movie(plex_server)
    key = str(movie.rating_key)
    # What the scrobble reports happened in Plex; the webhook makes Retrovue read it.
    with plex_server.silent():
        plex_server.set_watch_state(movie.rating_key, view_count=1, last_viewed_at=1_700_000_000)

    for _ in range(2):
        status = await post_webhook(
            client, webhook_url, "media.scrobble", server=plex_server, item=movie
        )
        assert status == 200

    await _until(hass, lambda: watched, "the watched event")
    await _until(
        hass,
        lambda: _has_rows(hass, live_entry, {("media.scrobble", key, "watched")}),
        "the webhook's outcome in the activity log",
    )
    await _marker(hass, live_entry, plex_server, "Marker After The Scrobble")
    assert len(playback) == 1
    assert len(watched) == 1
    data = playback[0].data
    assert (data["event"], data["rating_key"], data["kind"], data["title"]) == (
        "media.scrobble",
        key,
        "movie",
        movie.title,
    )
    assert (data["account"], data["player"]) == ("emulated", "Emulated Player")
    assert data["machine_identifier"] == plex_server.machine_identifier
    assert watched[0].data["rating_key"] == key
    assert (await _item(hass, movie))["view_count"] == 1
    webhook_rows = [row for row in await _activity(hass, live_entry) if row[0] == "webhook"]
    assert sorted(row[3] for row in webhook_rows) == ["duplicate", "watched"]


async def _has_rows(
    hass: HomeAssistant, entry: MockConfigEntry, wanted: set[tuple[str, str | None, str]]
) -> bool:
    """Return whether the activity log has webhook rows (event, key, outcome) for all wanted."""
    rows = {(row[1], row[2], row[3]) for row in await _activity(hass, entry) if row[0] == "webhook"}
    return wanted <= rows


async def test_a_webhook_for_another_server_changes_nothing(
    hass: HomeAssistant,
    live_entry: MockConfigEntry,
    plex: PlexEmulator,
    plex_server: EmuServer,
    webhook_url: str,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    client = await hass_client_no_auth()
    playback = async_capture_events(hass, EVENT_PLAYBACK)
    watched = async_capture_events(hass, EVENT_ITEM_WATCHED)
    movie = _unwatched_movie(plex_server)
    with plex_server.silent():
        plex_server.set_watch_state(movie.rating_key, view_count=3, last_viewed_at=1_700_000_000)

    status = await post_webhook(
        client,
        webhook_url,
        "media.scrobble",
        server=plex_server,
        item=movie,
        extra={"Server": {"uuid": "another-server-uuid", "title": "Elsewhere"}},
    )

    assert status == 200
    assert (await _activity(hass, live_entry))[0] == (
        "webhook",
        "media.scrobble",
        str(movie.rating_key),
        "rejected",
        "another server",
    )
    await _marker(hass, live_entry, plex_server, "Marker After Another Server")
    # Not re-read: the catalog still has the movie unwatched.
    assert (await _item(hass, movie))["view_count"] in (0, None)
    assert not playback
    assert not watched


@pytest.mark.parametrize(
    ("body", "content_type", "detail"),
    [
        (b"{not json", "application/json", "payload is not JSON"),
        (b'{"event": "media.play"}', "application/json", "payload has no Server.uuid"),
        (b"[1, 2]", "application/json", "payload is not a JSON object"),
        (
            b'--xyz\r\nContent-Disposition: form-data; name="thumb"\r\n\r\nJPEG\r\n--xyz--\r\n',
            "multipart/form-data; boundary=xyz",
            "no payload part",
        ),
    ],
    ids=["not-json", "no-server", "not-an-object", "no-payload-part"],
)
async def test_a_malformed_webhook_is_refused_and_recorded(
    hass: HomeAssistant,
    live_entry: MockConfigEntry,
    webhook_url: str,
    hass_client_no_auth: ClientSessionGenerator,
    body: bytes,
    content_type: str,
    detail: str,
) -> None:
    client = await hass_client_no_auth()
    events = [async_capture_events(hass, name) for name in LIVE_EVENTS]

    response = await client.post(webhook_url, data=body, headers={"Content-Type": content_type})

    assert response.status == 400
    source, event, key, outcome, recorded = (await _activity(hass, live_entry))[0]
    assert (source, event, key, outcome) == ("webhook", "?", None, "rejected")
    assert recorded is not None
    assert recorded.startswith(detail)
    assert not [event for captured in events for event in captured]


async def test_a_json_webhook_arriving_in_chunks_is_read_whole(
    hass: HomeAssistant,
    live_entry: MockConfigEntry,
    plex_server: EmuServer,
    webhook_url: str,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """A plain JSON body (a relay's) is read to its end, however it is cut up on the wire."""
    client = await hass_client_no_auth()
    watched = async_capture_events(hass, EVENT_ITEM_WATCHED)
    movie = _unwatched_movie(plex_server)
    with plex_server.silent():
        plex_server.set_watch_state(movie.rating_key, view_count=1, last_viewed_at=1_700_000_000)
    body = json.dumps(webhook_payload("media.scrobble", server=plex_server, item=movie)).encode()

    async def chunks(data: bytes, size: int = 200) -> AsyncIterator[bytes]:
        for start in range(0, len(data), size):
            yield data[start : start + size]
            await asyncio.sleep(0.01)

    headers = {"Content-Type": "application/json"}
    response = await client.post(webhook_url, data=chunks(body), headers=headers)
    assert response.status == 200
    await _until(hass, lambda: watched, "the watched event")
    assert watched[0].data["rating_key"] == str(movie.rating_key)

    # Past the payload limit, the body is refused without being read further.
    response = await client.post(
        webhook_url, data=chunks(b" " * (MAX_PAYLOAD + 10) + body, 65536), headers=headers
    )
    assert response.status == 400
    detail = (await _activity(hass, live_entry))[0][4]
    assert detail is not None
    assert detail.endswith(f"exceeds {MAX_PAYLOAD}")


async def test_a_library_new_webhook_brings_the_item(
    hass: HomeAssistant,
    live_entry: MockConfigEntry,
    plex_server: EmuServer,
    webhook_url: str,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    client = await hass_client_no_auth()
    active = _count(hass, live_entry, f"library_{SHOWS}_active")
    show = next(item for item in plex_server.items.values() if item.type == "show")
    season = _last_season(plex_server, show)
    with plex_server.silent():
        episode = plex_server.add_episode(
            season.rating_key, len(season.children) + 1, "Told By Webhook"
        )

    status = await post_webhook(
        client, webhook_url, "library.new", server=plex_server, item=episode
    )

    assert status == 200

    await _until(
        hass,
        lambda: _count(hass, live_entry, f"library_{SHOWS}_active") == active + 1,
        "the active sensor to rise",
    )
    assert (await _item(hass, episode))["state"] == "ACTIVE"
    await _until(
        hass,
        lambda: _has_rows(hass, live_entry, {("library.new", str(episode.rating_key), "changed")}),
        "the webhook's outcome in the activity log",
    )


async def test_webhooks_are_rate_limited(
    hass: HomeAssistant,
    live_entry: MockConfigEntry,
    plex_server: EmuServer,
    webhook_url: str,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    client = await hass_client_no_auth()
    with patch("custom_components.retrovue.live.WEBHOOK_RATE_PER_MINUTE", 3):
        statuses = [
            await post_webhook(client, webhook_url, "media.play", server=plex_server, item=movie)
            for movie in _movies(plex_server)[:5]
        ]
    assert statuses == [200, 200, 200, 429, 429]
    outcomes = [row[3] for row in await _activity(hass, live_entry) if row[0] == "webhook"]
    assert outcomes.count("rate_limited") == 2


# --- the action -------------------------------------------------------------------------------


async def _refresh(hass: HomeAssistant, data: dict[str, Any]) -> dict[str, Any]:
    response = await hass.services.async_call(
        DOMAIN, "refresh_items", data, blocking=True, return_response=True
    )
    assert response is not None
    return dict(response)


async def test_refresh_items_by_rating_keys(
    hass: HomeAssistant, live_entry: MockConfigEntry, plex_server: EmuServer
) -> None:
    changed = async_capture_events(hass, EVENT_ITEMS_CHANGED)
    first, second = _movies(plex_server)[:2]
    with plex_server.silent():
        plex_server.change_item(first.rating_key, title="Refreshed By Key")

    response = await _refresh(
        hass,
        {
            "config_entry_id": live_entry.entry_id,
            "rating_keys": [str(first.rating_key), str(second.rating_key), "999999"],
        },
    )

    assert response["status"] == "ok"
    assert (response["requested"], response["found"], response["changed"]) == (3, 2, 1)
    assert response["titles"] == ["Refreshed By Key"]
    assert response["not_found"] == ["999999"]
    assert response["missing"] == []
    assert response["watched"] == []
    assert response["expanded_shows"] == 0
    assert response["error"] is None
    assert 1 <= response["requests"] <= 2
    assert (await _item(hass, first, "Refreshed By Key"))["state"] == "ACTIVE"
    assert [event.data["source"] for event in changed] == ["action"]


async def test_refresh_items_by_show_title_and_year(
    hass: HomeAssistant, live_entry: MockConfigEntry, plex_server: EmuServer
) -> None:
    show = next(item for item in plex_server.items.values() if item.type == "show")
    season = _last_season(plex_server, show)
    active = _count(hass, live_entry, f"library_{SHOWS}_active")
    with plex_server.silent():
        plex_server.add_episodes(show.rating_key, 2)

    response = await _refresh(
        hass,
        {"config_entry_id": live_entry.entry_id, "title": show.title.upper(), "year": show.year},
    )

    assert response["status"] == "ok"
    assert response["expanded_shows"] == 1
    assert response["requested"] == 1
    assert response["found"] >= 1
    assert response["changed"] >= 2
    assert response["not_found"] == []
    assert response["requests"] >= 2
    assert _count(hass, live_entry, f"library_{SHOWS}_active") == active + 2
    new = plex_server.item(season.children[-1])
    assert (await _item(hass, new))["state"] == "ACTIVE"


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"title": "No Such Show Anywhere"}, "title_not_found"),
        ({"title": "__show__", "year": 1801}, "title_not_found"),
        ({"title": "__show__", "rating_keys": ["1"]}, "refresh_what"),
        ({}, "refresh_what"),
    ],
    ids=["unknown-title", "wrong-year", "both", "neither"],
)
async def test_refresh_items_validation(
    hass: HomeAssistant,
    live_entry: MockConfigEntry,
    plex_server: EmuServer,
    data: dict[str, Any],
    key: str,
) -> None:
    show = next(item for item in plex_server.items.values() if item.type == "show")
    if data.get("title") == "__show__":
        data = {**data, "title": show.title}
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(
            DOMAIN,
            "refresh_items",
            {"config_entry_id": live_entry.entry_id, **data},
            blocking=True,
            return_response=True,
        )
    assert caught.value.translation_domain == DOMAIN
    assert caught.value.translation_key == key


# --- diagnostics and secrets ------------------------------------------------------------------


async def test_diagnostics_list_live_outcomes_and_the_token_stays_secret(
    hass: HomeAssistant,
    live_entry: MockConfigEntry,
    plex_server: EmuServer,
    webhook_url: str,
    hass_client: ClientSessionGenerator,
    hass_client_no_auth: ClientSessionGenerator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    # Before the test client freezes the HTTP router.
    assert await async_setup_component(hass, "diagnostics", {})
    client = await hass_client_no_auth()
    events = [async_capture_events(hass, name) for name in LIVE_EVENTS]
    movie = _unwatched_movie(plex_server)
    episode = _episodes(plex_server)[-1]

    with plex_server.silent():
        plex_server.set_watch_state(movie.rating_key, view_count=1, last_viewed_at=1_700_000_000)
    assert (
        await post_webhook(client, webhook_url, "media.scrobble", server=plex_server, item=movie)
        == 200
    )
    assert (
        await post_webhook(
            client,
            webhook_url,
            "media.scrobble",
            server=plex_server,
            item=movie,
            extra={"Server": {"uuid": "another-server-uuid"}},
        )
        == 200
    )
    assert (await client.post(webhook_url, data=b"{oops")).status == 400
    plex_server.remove_item(episode.rating_key)
    await _until(
        hass,
        lambda: _count(hass, live_entry, f"library_{SHOWS}_missing") == 1,
        "the removal",
    )
    await _marker(hass, live_entry, plex_server, "Marker For Diagnostics")

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, live_entry)

    live = diagnostics["live"]
    assert live["push_connected"] is True
    assert live["webhook"] is True
    assert live["stream"]["connects"] == 1
    assert live["stream"]["messages"] >= 2
    assert isinstance(live["stream"]["connected_at"], str)
    recent = {
        (row["source"], row["event"], row["rating_key"], row["outcome"])
        for row in live["recent_activity"]
    }
    key = str(movie.rating_key)
    assert {
        ("webhook", "media.scrobble", key, "watched"),
        ("webhook", "media.scrobble", key, "rejected"),
        ("webhook", "?", None, "rejected"),
        ("websocket", "timeline 9", str(episode.rating_key), "missing"),
        ("websocket", "timeline 5", str(_movies(plex_server)[-1].rating_key), "changed"),
    } <= recent
    assert all("T" in row["at"] for row in live["recent_activity"])

    # The token is in no log line, event, activity row or diagnostics; nor the webhook id.
    webhook_id = live_entry.data[CONF_WEBHOOK_ID]
    fired = [event.data for captured in events for event in captured]
    assert fired
    activity = await _activity(hass, live_entry)
    for secret in (HA_TOKEN, webhook_id):
        assert secret not in str(diagnostics)
        assert secret not in str(fired)
        assert secret not in str(activity)
    assert HA_TOKEN not in caplog.text
    assert "retrovue" in caplog.text


async def test_a_scan_finished_during_a_sync_syncs_its_library_right_after(
    hass: HomeAssistant,
    live_entry: MockConfigEntry,
    plex: PlexEmulator,
    plex_server: EmuServer,
) -> None:
    """A light sync asked for while another runs is not dropped: it runs when that ends."""
    synced: list[str] = []

    @callback
    def _synced(event: Event) -> None:
        synced.append(event.data["library_key"])

    hass.bus.async_listen("retrovue_library_synced", _synced)
    coordinator = _coordinator(live_entry)
    coordinator.async_start_sync(forced=True)
    # The sync above holds the lock: this one waits for it instead of being skipped.
    coordinator.async_start_sync(libraries=["1"], forced=True)
    coordinator.async_start_sync(libraries=["2"], forced=True)
    await async_wait_synced(hass)
    await async_wait_synced(hass)
    assert sorted(synced) == ["1", "1", "2", "2"]
