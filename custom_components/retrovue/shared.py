"""The one catalog file every Retrovue config entry shares."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
import sqlite3

from homeassistant.const import EVENT_HOMEASSISTANT_STOP
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryError
from homeassistant.helpers import issue_registry as ir
from homeassistant.util.hass_dict import HassKey

from .const import CATALOG_DIR, CATALOG_FILE, DOMAIN, LOGGER
from .engine.store import Catalog, SchemaError

ISSUE_CATALOG_UNAVAILABLE = "catalog_unavailable"


@dataclass(slots=True)
class SharedCatalog:
    """The open catalog and the config entries using it."""

    catalog: Catalog | None = None
    users: set[str] = field(default_factory=set)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    unsub_stop: Callable[[], None] | None = None


DATA_CATALOG: HassKey[SharedCatalog] = HassKey(f"{DOMAIN}_catalog")


def _shared(hass: HomeAssistant) -> SharedCatalog:
    if (shared := hass.data.get(DATA_CATALOG)) is None:
        shared = hass.data[DATA_CATALOG] = SharedCatalog()
    return shared


async def async_acquire_catalog(hass: HomeAssistant, entry_id: str) -> Catalog:
    """Return the shared catalog, opening it for the first entry that needs it."""
    shared = _shared(hass)
    async with shared.lock:
        if shared.catalog is None:
            path = hass.config.path(CATALOG_DIR, CATALOG_FILE)
            try:
                shared.catalog = await Catalog.open(path)
            except (SchemaError, sqlite3.Error, OSError) as err:
                ir.async_create_issue(
                    hass,
                    DOMAIN,
                    ISSUE_CATALOG_UNAVAILABLE,
                    is_fixable=False,
                    severity=ir.IssueSeverity.ERROR,
                    translation_key=ISSUE_CATALOG_UNAVAILABLE,
                    translation_placeholders={"path": path, "error": str(err)},
                )
                raise ConfigEntryError(
                    translation_domain=DOMAIN,
                    translation_key="catalog_unavailable",
                    translation_placeholders={"path": path, "error": str(err)},
                ) from err
            ir.async_delete_issue(hass, DOMAIN, ISSUE_CATALOG_UNAVAILABLE)
            LOGGER.debug("Opened the catalog at %s", path)
            if interrupted := shared.catalog.interrupted_runs:
                LOGGER.warning(
                    "%d sync runs were interrupted last time; marked failed", interrupted
                )

            @callback
            def _close_on_stop(_event: Event) -> None:
                shared.unsub_stop = None
                hass.async_create_task(_async_close(hass), eager_start=True)

            shared.unsub_stop = hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STOP, _close_on_stop)
        shared.users.add(entry_id)
        return shared.catalog


async def async_release_catalog(hass: HomeAssistant, entry_id: str) -> None:
    """Stop using the catalog; the last entry to leave closes it."""
    shared = _shared(hass)
    async with shared.lock:
        shared.users.discard(entry_id)
        if shared.users:
            return
    await _async_close(hass)


def get_catalog(hass: HomeAssistant) -> Catalog | None:
    """Return the open catalog, if any entry has it open."""
    shared = hass.data.get(DATA_CATALOG)
    return None if shared is None else shared.catalog


async def _async_close(hass: HomeAssistant) -> None:
    shared = _shared(hass)
    async with shared.lock:
        catalog, shared.catalog = shared.catalog, None
        shared.users.clear()
        if shared.unsub_stop is not None:
            shared.unsub_stop()
            shared.unsub_stop = None
    if catalog is not None:
        await catalog.close()
        LOGGER.debug("Closed the catalog")
