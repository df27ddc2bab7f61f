"""Base entity for Retrovue."""

from __future__ import annotations

from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import CONF_URL, DOMAIN
from .coordinator import RetrovueDataUpdateCoordinator


class RetrovueEntity(CoordinatorEntity[RetrovueDataUpdateCoordinator]):
    """An entity of one Plex server's device."""

    _attr_has_entity_name = True

    def __init__(self, coordinator: RetrovueDataUpdateCoordinator, key: str) -> None:
        """Attach the entity to its server's device."""
        super().__init__(coordinator)
        server = coordinator.server
        machine_identifier = coordinator.machine_identifier
        self._attr_unique_id = f"{machine_identifier}_{key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, machine_identifier)},
            name=coordinator.config_entry.title,
            manufacturer="Plex",
            model="Plex Media Server",
            sw_version=server.version if server else None,
            configuration_url=f"{coordinator.config_entry.data[CONF_URL].rstrip('/')}/web",
        )
