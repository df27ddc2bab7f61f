"""Binary sensor: whether Plex's notification websocket is connected (push updates)."""

from __future__ import annotations

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import RetrovueConfigEntry, RetrovueDataUpdateCoordinator
from .entity import RetrovueEntity

PARALLEL_UPDATES = 0

PUSH = BinarySensorEntityDescription(
    key="push",
    translation_key="push",
    device_class=BinarySensorDeviceClass.CONNECTIVITY,
    entity_category=EntityCategory.DIAGNOSTIC,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: RetrovueConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the push-connected sensor of the server."""
    async_add_entities([RetrovuePushBinarySensor(entry.runtime_data)])


class RetrovuePushBinarySensor(RetrovueEntity, BinarySensorEntity):
    """On while Plex's notifications reach Retrovue."""

    entity_description = PUSH

    def __init__(self, coordinator: RetrovueDataUpdateCoordinator) -> None:
        """Follow the server's live side."""
        super().__init__(coordinator, PUSH.key)

    @property
    def available(self) -> bool:
        """Return True: the connection's state is known even when a sync failed."""
        return True

    @property
    def is_on(self) -> bool:
        """Return whether the notification websocket is connected."""
        live = self.coordinator.live
        return live is not None and live.connected

    async def async_added_to_hass(self) -> None:
        """Write the state whenever the websocket connects or disconnects."""
        await super().async_added_to_hass()
        if (live := self.coordinator.live) is not None:
            self.async_on_remove(live.async_add_listener(self.async_write_ha_state))
