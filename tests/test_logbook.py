"""A quiet logbook: syncs that change nothing leave only each library's last-synced time."""

from __future__ import annotations

import asyncio
from datetime import timedelta
import time
from typing import Any

from homeassistant.components.logbook.helpers import async_determine_event_types
from homeassistant.components.logbook.processor import EventProcessor
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.recorder import get_instance
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.retrovue.const import DOMAIN

from .conftest import async_wait_synced

pytestmark = pytest.mark.usefixtures("enable_custom_integrations", "recorder_mock")


async def test_five_unchanged_syncs_leave_only_last_synced_times(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
) -> None:
    assert await async_setup_component(hass, "logbook", {})
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await async_wait_synced(hass)
    await async_wait_recording_done(hass)
    start = dt_util.utcnow()

    # The syncs' times are whole seconds: start them in a later second than the first sync's,
    # so each library's last-synced time surely moves.
    await asyncio.sleep(1.01 - time.time() % 1)
    for _ in range(5):
        await hass.services.async_call(
            DOMAIN, "sync_library", {"config_entry_id": mock_config_entry.entry_id}, blocking=True
        )
        await async_wait_synced(hass)
    await async_wait_recording_done(hass)

    processor = EventProcessor(hass, async_determine_event_types(hass, None, None))
    result: list[dict[str, Any]] = await get_instance(hass).async_add_executor_job(
        processor.get_events, start, dt_util.utcnow() + timedelta(seconds=1)
    )
    registry = er.async_get(hass)
    ours = {
        entry.entity_id: entry.unique_id
        for entry in er.async_entries_for_config_entry(registry, mock_config_entry.entry_id)
    }
    entries: list[dict[str, Any]] = [entry for entry in result if entry.get("entity_id") in ours]
    # Not the sync status (a quick sync stays idle), not the counts (continuous sensors).
    assert {ours[entry["entity_id"]] for entry in entries} == {
        f"{mock_config_entry.unique_id}_library_1_last_synced",
        f"{mock_config_entry.unique_id}_library_2_last_synced",
    }
