"""Setup, sync, sensors, availability, reauth, events and unload, through the emulator."""

from __future__ import annotations

import asyncio
from datetime import timedelta
import logging
import os
import sqlite3
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er, issue_registry as ir
from homeassistant.helpers.event import async_track_state_change_event
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.retrovue.const import (
    CONF_LIBRARIES,
    CONF_LOCAL_PREFIX,
    CONF_PLEX_PREFIX,
    DOMAIN,
    EVENT_ITEMS_MISSING,
    EVENT_LIBRARY_SYNCED,
    EVENT_SYNC_PROGRESS,
    EVENT_SYNC_STARTED,
)
from custom_components.retrovue.coordinator import SYNC_STATUS_DELAY
from custom_components.retrovue.engine.plex.models import ServerIdentity
from custom_components.retrovue.engine.store import Catalog, CatalogStore
from custom_components.retrovue.shared import get_catalog
from tests.emulator import EmuServer, Fault, FaultKind, PlexEmulator

from .conftest import HA_TOKEN, async_wait_synced, entry_with_mapping

pytestmark = pytest.mark.usefixtures("enable_custom_integrations")


def _count(server: EmuServer, kind: str) -> int:
    return sum(1 for item in server.items.values() if item.type == kind)


def _entity_id(hass: HomeAssistant, entry: MockConfigEntry, key: str) -> str:
    registry = er.async_get(hass)
    unique_id = f"{entry.unique_id}_{key}"
    entity_id = registry.async_get_entity_id("sensor", DOMAIN, unique_id)
    assert entity_id, unique_id
    return entity_id


def _state(hass: HomeAssistant, entry: MockConfigEntry, key: str) -> str:
    state = hass.states.get(_entity_id(hass, entry, key))
    assert state is not None
    return state.state


def _entry_state(entry: MockConfigEntry) -> ConfigEntryState:
    """Read the state afresh (mypy would keep an earlier assert's narrowing)."""
    state: ConfigEntryState = entry.state
    return state


async def _tick(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> None:
    freezer.tick(timedelta(minutes=16))
    async_fire_time_changed(hass)
    await async_wait_synced(hass)


async def test_setup_syncs_and_sensors_show_the_catalog(
    hass: HomeAssistant, init_integration: MockConfigEntry, plex_server: EmuServer
) -> None:
    entry = init_integration
    assert entry.state is ConfigEntryState.LOADED
    assert _state(hass, entry, "library_1_active") == str(_count(plex_server, "movie"))
    assert _state(hass, entry, "library_2_active") == str(_count(plex_server, "episode"))
    assert _state(hass, entry, "library_1_missing") == "0"
    assert _state(hass, entry, "library_2_deleted") == "0"
    assert _state(hass, entry, "library_1_remote_only") == "0"
    assert _state(hass, entry, "sync_status") == "idle"
    assert _state(hass, entry, "library_1_last_synced") not in ("unknown", STATE_UNAVAILABLE)
    # Entity names come from translations with the library title.
    state = hass.states.get(_entity_id(hass, entry, "library_1_active"))
    assert state is not None
    assert state.attributes["friendly_name"] == "Living Room Plex Movies active"
    # Counts say what they count: movies, or a show library's episodes (and its shows).
    assert state.attributes["unit_of_measurement"] == "movies"
    episodes = hass.states.get(_entity_id(hass, entry, "library_2_active"))
    assert episodes is not None
    assert episodes.attributes["unit_of_measurement"] == "episodes"
    assert _state(hass, entry, "library_2_shows") == str(_count(plex_server, "show"))
    shows = hass.states.get(_entity_id(hass, entry, "library_2_shows"))
    assert shows is not None
    assert shows.attributes["friendly_name"] == "Living Room Plex TV Shows shows"
    assert shows.attributes["unit_of_measurement"] == "shows"
    registry = er.async_get(hass)
    assert (
        registry.async_get_entity_id("sensor", DOMAIN, f"{entry.unique_id}_library_1_shows") is None
    )
    # Noisy sensors are disabled by default.
    last_changed = registry.async_get(_entity_id(hass, entry, "library_1_last_changed"))
    assert last_changed is not None
    assert last_changed.disabled_by is er.RegistryEntryDisabler.INTEGRATION


async def test_removed_items_raise_the_missing_sensor(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    plex_server: EmuServer,
    freezer: FrozenDateTimeFactory,
) -> None:
    entry = init_integration
    events: list[Event] = []
    for name in (
        EVENT_SYNC_STARTED,
        EVENT_SYNC_PROGRESS,
        EVENT_LIBRARY_SYNCED,
        EVENT_ITEMS_MISSING,
    ):
        hass.bus.async_listen(name, events.append)
    movies = [item for item in plex_server.items.values() if item.type == "movie"]
    for movie in movies[:3]:
        plex_server.remove_item(movie.rating_key)

    await _tick(hass, freezer)

    assert _state(hass, entry, "library_1_missing") == "3"
    assert _state(hass, entry, "library_1_active") == str(len(movies) - 3)
    names = [event.event_type for event in events]
    assert EVENT_SYNC_STARTED in names
    assert EVENT_SYNC_PROGRESS in names
    assert names.count(EVENT_LIBRARY_SYNCED) == 2
    missing = [event for event in events if event.event_type == EVENT_ITEMS_MISSING]
    assert len(missing) == 1
    assert missing[0].data["count"] == 3
    assert sorted(missing[0].data["titles"]) == sorted(movie.title for movie in movies[:3])
    assert all(HA_TOKEN not in str(event.data) for event in events)


async def test_unreachable_server_makes_entities_unavailable_then_recovers(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    plex_server: EmuServer,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    entry = init_integration
    plex_server.faults.add(Fault(FaultKind.STATUS_500, endpoint=None, times=None))
    plex_server.faults.add(Fault(FaultKind.STATUS_500, endpoint="root", times=None))

    await _tick(hass, freezer)
    assert _state(hass, entry, "library_1_active") == STATE_UNAVAILABLE
    await _tick(hass, freezer)
    assert _state(hass, entry, "library_1_active") == STATE_UNAVAILABLE
    assert caplog.text.count("Cannot reach the Plex server") == 1  # logged once

    plex_server.faults.clear()
    await _tick(hass, freezer)
    assert _state(hass, entry, "library_1_active") == str(_count(plex_server, "movie"))
    assert caplog.text.count("Syncing Living Room Plex recovered") == 1


async def test_another_server_behind_the_url_later_makes_entities_unavailable(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    plex_server: EmuServer,
    freezer: FrozenDateTimeFactory,
) -> None:
    plex_server.machine_identifier = "someone-else"
    plex_server.invalidate()
    await _tick(hass, freezer)
    assert _state(hass, init_integration, "library_1_active") == STATE_UNAVAILABLE


async def test_unexpected_sync_error_is_logged_and_makes_entities_unavailable(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with patch(
        "custom_components.retrovue.coordinator.sync_library", side_effect=RuntimeError("bug")
    ):
        await _tick(hass, freezer)
    assert _state(hass, init_integration, "library_1_active") == STATE_UNAVAILABLE
    assert _state(hass, init_integration, "sync_status") == STATE_UNAVAILABLE
    assert "Unexpected error syncing Living Room Plex" in caplog.text


async def test_refused_token_during_sync_starts_reauth(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    plex_server: EmuServer,
    freezer: FrozenDateTimeFactory,
) -> None:
    plex_server.faults.add(Fault(FaultKind.STATUS_401, endpoint="section_all", times=None))

    await _tick(hass, freezer)

    flows = hass.config_entries.flow.async_progress()
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]
    assert flows[0]["context"]["entry_id"] == init_integration.entry_id
    assert _state(hass, init_integration, "library_1_active") == STATE_UNAVAILABLE


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_progress_reaches_the_server_sensors_alone(
    hass: HomeAssistant, init_integration: MockConfigEntry, plex_server: EmuServer
) -> None:
    """Every page moves the progress sensors; the registry is scanned only for new libraries."""
    entry = init_integration
    status_id = _entity_id(hass, entry, "sync_status")
    progress_id = _entity_id(hass, entry, "sync_progress")
    states: dict[str, list[str]] = {status_id: [], progress_id: []}
    pages: list[Event] = []

    @callback
    def _record(event: Event[EventStateChangedData]) -> None:
        if (new_state := event.data["new_state"]) is not None:
            states[event.data["entity_id"]].append(new_state.state)

    async_track_state_change_event(hass, list(states), _record)
    hass.bus.async_listen(EVENT_SYNC_PROGRESS, pages.append)
    # Two items a page: a deep sync of the movies reads six pages (stored in two or more
    # batches, as they arrive).
    plex_server.faults.add(Fault(FaultKind.CAP_SIZE, endpoint="section_all", times=None, cap=2))

    with patch.object(
        er, "async_entries_for_config_entry", wraps=er.async_entries_for_config_entry
    ) as scans:
        await hass.services.async_call(
            DOMAIN,
            "sync_library",
            {"config_entry_id": entry.entry_id, "library": "1", "deep": True},
            blocking=True,
        )
        await hass.async_block_till_done()

    assert len(pages) >= 2
    assert not [call for call in scans.call_args_list if entry.entry_id in call.args]
    # A quick sync leaves the status alone (nothing in the logbook).
    assert states[status_id] == []
    progress = states[progress_id]
    assert progress[0] == "0"
    assert progress[-2:] == ["100", "unknown"]
    assert len(progress) >= 4
    assert [int(value) for value in progress[:-1]] == sorted(int(value) for value in progress[:-1])


async def test_each_library_shows_as_soon_as_it_is_synced(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    plex: PlexEmulator,
    plex_server: EmuServer,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A library's counts show while the next one syncs; syncs never overlap; unload stops."""
    caplog.set_level(logging.DEBUG)
    entry = init_integration
    movies = [item for item in plex_server.items.values() if item.type == "movie"]
    for movie in movies[:3]:
        plex_server.remove_item(movie.rating_key)
    shows_started = asyncio.Event()

    @callback
    def _hang_after_the_movies(event: Event) -> None:
        if event.data["library_key"] == "1":
            plex_server.faults.add(Fault(FaultKind.HANG, endpoint=None, times=None))

    @callback
    def _shows_started(event: Event) -> None:
        if event.data["library_key"] == "2":
            shows_started.set()

    hass.bus.async_listen(EVENT_LIBRARY_SYNCED, _hang_after_the_movies)
    hass.bus.async_listen(EVENT_SYNC_STARTED, _shows_started)

    freezer.tick(timedelta(minutes=16))
    async_fire_time_changed(hass)
    await asyncio.wait_for(shows_started.wait(), 30)
    await hass.async_block_till_done()

    assert _state(hass, entry, "library_1_missing") == "3"
    # A sync that lasts shows as syncing.
    assert _state(hass, entry, "sync_status") == "idle"
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=SYNC_STATUS_DELAY))
    await hass.async_block_till_done()
    assert _state(hass, entry, "sync_status") == "syncing"

    # The next tick finds the sync still running and leaves it alone.
    roots = plex.counters["root"]
    freezer.tick(timedelta(minutes=16))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert plex.counters["root"] == roots
    assert "still syncing" in caplog.text

    # Unloading cancels the hanging sync before the catalog closes.
    caplog.clear()
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert _entry_state(entry) is ConfigEntryState.NOT_LOADED
    assert get_catalog(hass) is None
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


async def test_unload_and_reload_close_the_catalog(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    assert get_catalog(hass) is not None
    assert await hass.config_entries.async_reload(init_integration.entry_id)
    await async_wait_synced(hass)
    assert _entry_state(init_integration) is ConfigEntryState.LOADED
    assert await hass.config_entries.async_unload(init_integration.entry_id)
    await hass.async_block_till_done()
    assert _entry_state(init_integration) is ConfigEntryState.NOT_LOADED
    assert get_catalog(hass) is None


async def test_unreachable_at_setup_retries(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, plex_server: EmuServer
) -> None:
    plex_server.faults.add(Fault(FaultKind.STATUS_500, endpoint="root", times=None))
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    assert mock_config_entry.state is ConfigEntryState.SETUP_RETRY
    assert get_catalog(hass) is None


async def test_refused_token_at_setup_starts_reauth(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, plex_server: EmuServer
) -> None:
    plex_server.token = "rotated"
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    assert mock_config_entry.state is ConfigEntryState.SETUP_ERROR
    flows = hass.config_entries.flow.async_progress()
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]


async def test_other_server_behind_the_url_is_an_error(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, plex_server: EmuServer
) -> None:
    plex_server.machine_identifier = "someone-else"
    plex_server.invalidate()
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    assert mock_config_entry.state is ConfigEntryState.SETUP_ERROR


async def test_catalog_that_cannot_be_opened_raises_a_repair(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    path = hass.config.path("retrovue", "catalog.db")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    assert mock_config_entry.state is ConfigEntryState.SETUP_ERROR
    issue = ir.async_get(hass).async_get_issue(DOMAIN, "catalog_unavailable")
    assert issue is not None
    assert issue.translation_key == "catalog_unavailable"


async def test_wrong_mapping_raises_a_repair_and_fixing_it_clears_it(
    hass: HomeAssistant,
    plex: PlexEmulator,
    plex_server: EmuServer,
    mock_config_entry: MockConfigEntry,
) -> None:
    entry = entry_with_mapping(mock_config_entry, "/data/movies/Nothing", "/mnt")
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await async_wait_synced(hass)
    issue_id = f"library_not_mapped_{entry.entry_id}_1"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None
    # The show library is not mapped: no issue, and its episodes stay active.
    assert (
        ir.async_get(hass).async_get_issue(DOMAIN, f"library_not_mapped_{entry.entry_id}_2") is None
    )
    assert _state(hass, entry, "library_1_remote_only") == str(_count(plex_server, "movie"))
    assert _state(hass, entry, "library_2_remote_only") == "0"

    subentry = next(iter(entry.subentries.values()))
    hass.config_entries.async_update_subentry(
        entry, subentry, data={CONF_PLEX_PREFIX: "/data", CONF_LOCAL_PREFIX: "/mnt"}
    )
    await async_wait_synced(hass)
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    assert _state(hass, entry, "library_1_remote_only") == "0"


async def test_libraries_follow_the_options(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    entry = init_integration
    hass.config_entries.async_update_entry(entry, options={**entry.options, CONF_LIBRARIES: ["2"]})
    await async_wait_synced(hass)
    registry = er.async_get(hass)
    assert (
        registry.async_get_entity_id("sensor", DOMAIN, f"{entry.unique_id}_library_1_active")
        is None
    )
    assert _state(hass, entry, "library_2_active") != STATE_UNAVAILABLE


async def test_a_vanished_library_loses_its_entities(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    plex_server: EmuServer,
    freezer: FrozenDateTimeFactory,
) -> None:
    entry = init_integration
    del plex_server.sections["1"]
    plex_server.invalidate()
    await _tick(hass, freezer)
    registry = er.async_get(hass)
    assert (
        registry.async_get_entity_id("sensor", DOMAIN, f"{entry.unique_id}_library_1_active")
        is None
    )
    assert _state(hass, entry, "library_2_active") != STATE_UNAVAILABLE


async def test_no_token_in_debug_logs_and_no_deprecation_report(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
    freezer: FrozenDateTimeFactory,
) -> None:
    caplog.set_level(logging.DEBUG)
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await async_wait_synced(hass)
    await _tick(hass, freezer)
    assert "retrovue" in caplog.text
    assert HA_TOKEN not in caplog.text
    assert "Detected that custom integration" not in caplog.text
    assert "Detected blocking call" not in caplog.text


async def test_removing_an_entry_deletes_only_its_rows(
    hass: HomeAssistant, init_integration: MockConfigEntry, plex_server: EmuServer
) -> None:
    catalog = get_catalog(hass)
    assert catalog is not None
    other = await catalog.call(CatalogStore.upsert_server, ServerIdentity("other-server"), None, 1)

    assert await hass.config_entries.async_remove(init_integration.entry_id)
    await hass.async_block_till_done()

    reopened = await Catalog.open(hass.config.path("retrovue", "catalog.db"))
    try:
        servers = await reopened.call(
            CatalogStore.query, "SELECT id, machine_identifier FROM servers"
        )
        items = await reopened.call(CatalogStore.query, "SELECT COUNT(*) FROM items")
    finally:
        await reopened.close()
    assert [tuple(row) for row in servers] == [(other, "other-server")]
    assert items[0][0] == 0


async def test_runs_cut_off_by_a_crash_are_marked_failed(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    catalog = await Catalog.open(hass.config.path("retrovue", "catalog.db"))
    try:
        server_id = await catalog.call(
            CatalogStore.upsert_server, ServerIdentity("crashed-server"), None, 1
        )
        await catalog.call(CatalogStore.start_run, server_id, None, False, 1)
    finally:
        await catalog.close()

    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await async_wait_synced(hass)

    shared = get_catalog(hass)
    assert shared is not None
    found = await shared.call(
        CatalogStore.query, "SELECT status, error FROM sync_runs WHERE server_id = ?", (server_id,)
    )
    assert [tuple(row) for row in found] == [("failed", "interrupted")]
