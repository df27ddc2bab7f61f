"""The Retrovue integration: a complete SQLite catalog of Plex Media Servers."""

from __future__ import annotations

from homeassistant.components import webhook
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.helpers.typing import ConfigType

from .const import CONF_WEBHOOK_ID, DOMAIN
from .coordinator import RetrovueConfigEntry, RetrovueDataUpdateCoordinator
from .discovery import async_setup_discovery
from .engine.store import CatalogStore
from .live import RetrovueLive
from .panel import async_register_panel, async_remove_panel, async_setup_panel_support
from .repairs import async_delete_entry_issues
from .services import async_setup_services
from .shared import async_acquire_catalog, async_release_catalog
from .websocket_api import async_setup_websocket_api

PLATFORMS: list[Platform] = [Platform.BINARY_SENSOR, Platform.SENSOR]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register Retrovue's actions, the panel's commands and files, and GDM discovery."""
    async_setup_services(hass)
    async_setup_websocket_api(hass)
    await async_setup_panel_support(hass)
    async_setup_discovery(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: RetrovueConfigEntry) -> bool:
    """Set up one Plex server."""
    if CONF_WEBHOOK_ID not in entry.data:
        # Entries made before webhooks existed get their secret webhook id once.
        hass.config_entries.async_update_entry(
            entry, data={**entry.data, CONF_WEBHOOK_ID: webhook.async_generate_id()}
        )
    catalog = await async_acquire_catalog(hass, entry.entry_id)
    try:
        coordinator = RetrovueDataUpdateCoordinator(hass, entry, catalog)
        await coordinator.async_config_entry_first_refresh()
    except BaseException:
        await async_release_catalog(hass, entry.entry_id)
        raise
    entry.runtime_data = coordinator
    coordinator.live = RetrovueLive(hass, entry, coordinator)
    entry.async_on_unload(entry.add_update_listener(_async_reload))
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    await async_register_panel(hass)
    entry.async_on_unload(
        async_track_time_interval(
            hass,
            coordinator.async_start_sync,
            coordinator.sync_interval,
            name=f"{DOMAIN} {entry.title} sync",
            cancel_on_shutdown=True,
        )
    )
    # The first refresh only read the catalog; sync now without holding up setup.
    coordinator.async_start_sync()
    coordinator.live.async_start()
    return True


async def async_unload_entry(hass: HomeAssistant, entry: RetrovueConfigEntry) -> bool:
    """Unload a config entry; the last one closes the catalog."""
    unloaded = await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
    if unloaded:
        # A running sync is cancelled first: it still writes to the catalog.
        await entry.runtime_data.async_shutdown()
        await async_release_catalog(hass, entry.entry_id)
    return unloaded


async def async_remove_entry(hass: HomeAssistant, entry: RetrovueConfigEntry) -> None:
    """Forget a removed server: its repairs, its rows, and the panel if it was the last one.

    Only its own rows leave the catalog. Unloading (a reload) keeps the panel in the sidebar.
    """
    async_delete_entry_issues(hass, entry.entry_id)
    if not [
        other
        for other in hass.config_entries.async_entries(DOMAIN)
        if other.entry_id != entry.entry_id
    ]:
        async_remove_panel(hass)
    if entry.unique_id is None:
        return
    catalog = await async_acquire_catalog(hass, entry.entry_id)
    try:
        await catalog.call(CatalogStore.remove_server, entry.unique_id)
    finally:
        await async_release_catalog(hass, entry.entry_id)


async def _async_reload(hass: HomeAssistant, entry: RetrovueConfigEntry) -> None:
    """Apply changed options or path mappings."""
    await hass.config_entries.async_reload(entry.entry_id)
