"""Snapshots of the sensors of a synced server: registry entries and states."""

from __future__ import annotations

from typing import Any

from homeassistant.components.sensor import SensorDeviceClass
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from syrupy.assertion import SnapshotAssertion
from syrupy.matchers import path_type

from .conftest import async_wait_synced

pytestmark = pytest.mark.usefixtures("enable_custom_integrations")

# `snapshot_platform` snapshots whole registry entries, whose fields differ between the Home
# Assistant versions we test on (2026.x added `object_id_base` and `suggested_object_id`), so
# one snapshot cannot pass on both. These fields are the same on every version, and they are
# the ones this integration decides.
REGISTRY_FIELDS = (
    "entity_id",
    "unique_id",
    "platform",
    "has_entity_name",
    "original_name",
    "translation_key",
    "original_device_class",
    "entity_category",
    "unit_of_measurement",
    "capabilities",
    "disabled_by",
)


# The engine stamps syncs with the real clock (freezegun cannot reach it), so timestamps are
# checked to be times and snapshotted as `str`.
TIMESTAMP = path_type({"state.state": (str,)})


def _registry_fields(entry: er.RegistryEntry) -> dict[str, Any]:
    return {field: getattr(entry, field) for field in REGISTRY_FIELDS}


async def test_sensors(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    entries = er.async_entries_for_config_entry(entity_registry, init_integration.entry_id)
    assert {entry.domain for entry in entries} == {"binary_sensor", "sensor"}
    # The push sensor follows the websocket, which connects on its own time (see test_live).
    entries = [entry for entry in entries if entry.domain == "sensor"]
    registered = {entry.entity_id: _registry_fields(entry) for entry in entries}

    # Enable the sensors that are disabled by default, to snapshot every state.
    for entry in entries:
        if entry.disabled_by is not None:
            entity_registry.async_update_entity(entry.entity_id, disabled_by=None)
    assert await hass.config_entries.async_reload(init_integration.entry_id)
    await async_wait_synced(hass)

    for entity_id, fields in sorted(registered.items()):
        state = hass.states.get(entity_id)
        assert state is not None, entity_id
        matcher = None
        if state.attributes.get("device_class") == SensorDeviceClass.TIMESTAMP:
            assert dt_util.parse_datetime(state.state) is not None, state
            matcher = TIMESTAMP
        assert {"entry": fields, "state": state} == snapshot(name=entity_id, matcher=matcher)
