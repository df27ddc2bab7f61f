"""Sensors: catalog counts per library, last sync, and the server's sync progress."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import PERCENTAGE, EntityCategory
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import UNIT_BY_TYPE
from .coordinator import (
    LibraryData,
    RetrovueConfigEntry,
    RetrovueDataUpdateCoordinator,
    SyncActivity,
)
from .entity import RetrovueEntity

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class RetrovueLibrarySensorEntityDescription(SensorEntityDescription):
    """Describe a sensor of one library."""

    value_fn: Callable[[LibraryData], int | datetime | None]
    # Counts of movies or episodes say which in their unit (a translation per library type).
    per_kind: bool = False
    exists_fn: Callable[[LibraryData], bool] = lambda _library: True


@dataclass(frozen=True, kw_only=True)
class RetrovueServerSensorEntityDescription(SensorEntityDescription):
    """Describe a sensor of the server's sync activity."""

    value_fn: Callable[[SyncActivity], int | str | None]


def _count(
    key: str, value_fn: Callable[[LibraryData], int], *, enabled: bool = True
) -> RetrovueLibrarySensorEntityDescription:
    return RetrovueLibrarySensorEntityDescription(
        key=key,
        translation_key=key,
        state_class=SensorStateClass.MEASUREMENT,
        entity_registry_enabled_default=enabled,
        value_fn=value_fn,
        per_kind=True,
    )


def _last_run(
    key: str, value_fn: Callable[[LibraryData], int | None]
) -> RetrovueLibrarySensorEntityDescription:
    return RetrovueLibrarySensorEntityDescription(
        key=key,
        translation_key=key,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=value_fn,
    )


LIBRARY_SENSORS: tuple[RetrovueLibrarySensorEntityDescription, ...] = (
    _count("active", lambda lib: lib.active),
    _count("missing", lambda lib: lib.missing),
    _count("deleted", lambda lib: lib.deleted),
    _count("remote_only", lambda lib: lib.remote_only),
    _count("unavailable", lambda lib: lib.unavailable, enabled=False),
    _count("unwatched", lambda lib: lib.unwatched),
    RetrovueLibrarySensorEntityDescription(
        key="shows",
        translation_key="shows",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda lib: lib.shows,
        exists_fn=lambda lib: lib.type == "show",
    ),
    RetrovueLibrarySensorEntityDescription(
        key="last_synced",
        translation_key="last_synced",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=lambda lib: lib.last_synced_at,
    ),
    _last_run("last_changed", lambda lib: lib.last_run.changed if lib.last_run else None),
    _last_run("last_skipped", lambda lib: lib.last_run.skipped if lib.last_run else None),
    _last_run("last_errors", lambda lib: lib.last_run.errors if lib.last_run else None),
)

SERVER_SENSORS: tuple[RetrovueServerSensorEntityDescription, ...] = (
    RetrovueServerSensorEntityDescription(
        key="sync_status",
        translation_key="sync_status",
        device_class=SensorDeviceClass.ENUM,
        options=["idle", "syncing"],
        entity_category=EntityCategory.DIAGNOSTIC,
        # Only syncs that last show as *syncing*: a quick sync leaves no logbook entries.
        value_fn=lambda activity: "syncing" if activity.syncing and activity.lasting else "idle",
    ),
    RetrovueServerSensorEntityDescription(
        key="sync_progress",
        translation_key="sync_progress",
        native_unit_of_measurement=PERCENTAGE,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=lambda activity: activity.percent if activity.syncing else None,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: RetrovueConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add sensors, and follow libraries as they appear on or vanish from the server."""
    coordinator = entry.runtime_data
    async_add_entities(
        RetrovueServerSensorEntity(coordinator, description) for description in SERVER_SENSORS
    )
    followed: frozenset[str] | None = None

    @callback
    def _sync_libraries() -> None:
        nonlocal followed
        current = frozenset(coordinator.data.libraries)
        # Most updates bring new counts for the same libraries: nothing to add or remove.
        if current == followed:
            return
        if new := current - (followed or frozenset()):
            libraries = coordinator.data.libraries
            async_add_entities(
                RetrovueLibrarySensorEntity(coordinator, key, description)
                for key in sorted(new)
                for description in LIBRARY_SENSORS
                if description.exists_fn(libraries[key])
            )
        followed = current
        # Remove entities of libraries that vanished or were deselected, also across reloads.
        registry = er.async_get(hass)
        prefix = f"{coordinator.machine_identifier}_library_"
        for entity in er.async_entries_for_config_entry(registry, entry.entry_id):
            if not entity.unique_id.startswith(prefix):
                continue
            library_key = entity.unique_id.removeprefix(prefix).split("_", 1)[0]
            if library_key not in current:
                registry.async_remove(entity.entity_id)

    _sync_libraries()
    entry.async_on_unload(coordinator.async_add_listener(_sync_libraries))


class RetrovueLibrarySensorEntity(RetrovueEntity, SensorEntity):
    """A count or time of one library."""

    entity_description: RetrovueLibrarySensorEntityDescription

    def __init__(
        self,
        coordinator: RetrovueDataUpdateCoordinator,
        library_key: str,
        description: RetrovueLibrarySensorEntityDescription,
    ) -> None:
        """Set up the sensor for one library."""
        super().__init__(coordinator, f"library_{library_key}_{description.key}")
        self.entity_description = description
        self._library_key = library_key
        library = coordinator.data.libraries[library_key]
        self._attr_translation_placeholders = {"library": library.title}
        if description.per_kind and (unit := UNIT_BY_TYPE.get(library.type)):
            self._attr_translation_key = f"{description.key}_{unit}"

    @property
    def available(self) -> bool:
        """Return whether the library is still synced."""
        return super().available and self._library_key in self.coordinator.data.libraries

    @property
    def native_value(self) -> int | datetime | None:
        """Return the sensor's value."""
        library = self.coordinator.data.libraries.get(self._library_key)
        return None if library is None else self.entity_description.value_fn(library)


class RetrovueServerSensorEntity(RetrovueEntity, SensorEntity):
    """The server's sync status or progress."""

    entity_description: RetrovueServerSensorEntityDescription

    def __init__(
        self,
        coordinator: RetrovueDataUpdateCoordinator,
        description: RetrovueServerSensorEntityDescription,
    ) -> None:
        """Set up the sensor."""
        super().__init__(coordinator, description.key)
        self.entity_description = description

    async def async_added_to_hass(self) -> None:
        """Also follow the sync's progress, which does not change the coordinator's data."""
        await super().async_added_to_hass()
        self.async_on_remove(
            self.coordinator.async_add_activity_listener(self.async_write_ha_state)
        )

    @property
    def available(self) -> bool:
        """Stay available while a sync runs, even after a failed sync."""
        return super().available or self.coordinator.activity.syncing

    @property
    def native_value(self) -> int | str | None:
        """Return the sensor's value."""
        return self.entity_description.value_fn(self.coordinator.activity)
