"""Retrovue actions: sync a library, refresh items, find items or duplicates, purge deleted rows."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any, cast

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import (
    ConfigEntryAuthFailed,
    HomeAssistantError,
    ServiceValidationError,
    Unauthorized,
    UnknownUser,
)
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.selector import ConfigEntrySelector
from homeassistant.helpers.update_coordinator import UpdateFailed
from homeassistant.util import dt as dt_util
import voluptuous as vol

from .const import (
    ATTR_CONFIG_ENTRY_ID,
    ATTR_DEEP,
    ATTR_KIND,
    ATTR_LIBRARY,
    ATTR_LIMIT,
    ATTR_OFFSET,
    ATTR_OLDER_THAN_DAYS,
    ATTR_RATING_KEYS,
    ATTR_SCOPE,
    ATTR_STATE,
    ATTR_TITLE,
    ATTR_YEAR,
    DOMAIN,
    SERVICE_FIND_DUPLICATES,
    SERVICE_FIND_ITEMS,
    SERVICE_PURGE_DELETED,
    SERVICE_REFRESH_ITEMS,
    SERVICE_SYNC_LIBRARY,
)
from .coordinator import RetrovueConfigEntry, summary_to_json
from .engine.store import Catalog, CatalogError, CatalogStore, browse
from .engine.store.reads import FIND_LIMIT
from .engine.sync.targeted import Targets
from .live import watched_to_json
from .shared import get_catalog
from .websocket_api import DUPLICATE_SCOPES, KINDS, STATES

MAX_FIND_LIMIT = 500

SYNC_LIBRARY_SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_CONFIG_ENTRY_ID): ConfigEntrySelector({"integration": DOMAIN}),
        vol.Optional(ATTR_LIBRARY): cv.string,
        vol.Optional(ATTR_DEEP, default=False): cv.boolean,
    }
)
FIND_ITEMS_SCHEMA = vol.Schema(
    {
        vol.Optional(ATTR_TITLE): vol.All(cv.string, vol.Length(min=1)),
        vol.Optional(ATTR_YEAR): vol.All(vol.Coerce(int), vol.Range(min=1800, max=3000)),
        vol.Optional(ATTR_KIND): vol.In(KINDS),
        vol.Optional(ATTR_STATE): vol.All(cv.string, vol.Upper, vol.In(STATES)),
        vol.Optional(ATTR_LIBRARY): vol.All(cv.string, vol.Length(min=1)),
        vol.Optional(ATTR_CONFIG_ENTRY_ID): ConfigEntrySelector({"integration": DOMAIN}),
        vol.Optional(ATTR_LIMIT, default=FIND_LIMIT): vol.All(
            vol.Coerce(int), vol.Range(min=1, max=MAX_FIND_LIMIT)
        ),
        vol.Optional(ATTR_OFFSET, default=0): vol.All(vol.Coerce(int), vol.Range(min=0)),
    }
)
FIND_DUPLICATES_SCHEMA = vol.Schema(
    {
        vol.Optional(ATTR_SCOPE, default="all"): vol.In(DUPLICATE_SCOPES),
        vol.Optional(ATTR_KIND): vol.All(cv.ensure_list, [vol.In(("movie", "show", "episode"))]),
        vol.Optional(ATTR_CONFIG_ENTRY_ID): ConfigEntrySelector({"integration": DOMAIN}),
        vol.Optional(ATTR_LIMIT, default=50): vol.All(vol.Coerce(int), vol.Range(min=1, max=200)),
        vol.Optional(ATTR_OFFSET, default=0): vol.All(vol.Coerce(int), vol.Range(min=0)),
    }
)
REFRESH_ITEMS_SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_CONFIG_ENTRY_ID): ConfigEntrySelector({"integration": DOMAIN}),
        vol.Optional(ATTR_RATING_KEYS): vol.All(
            cv.ensure_list, [vol.All(cv.string, vol.Length(min=1, max=32))], vol.Length(max=500)
        ),
        vol.Optional(ATTR_TITLE): vol.All(cv.string, vol.Length(min=1)),
        vol.Optional(ATTR_YEAR): vol.All(vol.Coerce(int), vol.Range(min=1800, max=3000)),
    }
)
PURGE_DELETED_SCHEMA = vol.Schema(
    {vol.Optional(ATTR_OLDER_THAN_DAYS, default=0): vol.All(vol.Coerce(int), vol.Range(min=0))}
)


def _loaded_entry(hass: HomeAssistant, entry_id: str) -> RetrovueConfigEntry:
    entry: RetrovueConfigEntry | None = hass.config_entries.async_get_entry(entry_id)
    if entry is None or entry.domain != DOMAIN:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="entry_not_found",
            translation_placeholders={"entry_id": entry_id},
        )
    if entry.state is not ConfigEntryState.LOADED:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="entry_not_loaded",
            translation_placeholders={"server": entry.title},
        )
    return entry


def _catalog(hass: HomeAssistant) -> Catalog:
    if (catalog := get_catalog(hass)) is None:
        raise ServiceValidationError(translation_domain=DOMAIN, translation_key="no_catalog")
    return catalog


@contextmanager
def _catalog_errors() -> Iterator[None]:
    """Answer a catalog that cannot be read (closing, locked, damaged) with a clear error."""
    try:
        yield
    except CatalogError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="catalog_read_error",
            translation_placeholders={"error": str(err)},
        ) from err


@contextmanager
def _action_errors(hass: HomeAssistant, entry: RetrovueConfigEntry) -> Iterator[None]:
    """Answer a refused token (starting reauth) or an unreachable server with a clear error."""
    try:
        yield
    except ConfigEntryAuthFailed as err:
        entry.async_start_reauth(hass)
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="invalid_auth",
            translation_placeholders={"server": entry.title},
        ) from err
    except UpdateFailed as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key=err.translation_key or "cannot_connect",
            translation_placeholders=err.translation_placeholders
            or {"server": entry.title, "error": str(err)},
        ) from err


async def _async_sync_library(call: ServiceCall) -> ServiceResponse:
    entry = _loaded_entry(call.hass, call.data[ATTR_CONFIG_ENTRY_ID])
    coordinator = entry.runtime_data
    wanted = call.data.get(ATTR_LIBRARY)
    libraries: list[str] | None = None
    if wanted is not None:
        enabled = coordinator.enabled_libraries
        titles = {
            section.key: section.title
            for section in (coordinator.server.sections if coordinator.server else ())
        }
        match = [
            key
            for key in enabled
            if key == wanted or titles.get(key, "").casefold() == wanted.casefold()
        ]
        if not match:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="unknown_library",
                translation_placeholders={"library": wanted, "server": entry.title},
            )
        libraries = match[:1]
    with _action_errors(call.hass, entry):
        summaries = await coordinator.async_sync(libraries, deep=call.data[ATTR_DEEP] or None)
    return {"libraries": [summary_to_json(summary) for summary in summaries]}


async def _async_refresh_items(call: ServiceCall) -> ServiceResponse:
    entry = _loaded_entry(call.hass, call.data[ATTR_CONFIG_ENTRY_ID])
    coordinator = entry.runtime_data
    keys: list[str] = list(call.data.get(ATTR_RATING_KEYS, []))
    title = call.data.get(ATTR_TITLE)
    if bool(keys) == bool(title):
        raise ServiceValidationError(translation_domain=DOMAIN, translation_key="refresh_what")
    targets = Targets(items=set(keys))
    server = coordinator.server
    if title and server is not None:
        found = await coordinator.catalog.call(
            CatalogStore.titled, server.server_id, title, call.data.get(ATTR_YEAR)
        )
        if not found:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="title_not_found",
                translation_placeholders={"title": title, "server": entry.title},
            )
        # A show is re-read whole, with every season and episode.
        targets.shows = {item.rating_key for item in found if item.kind == "show"}
        targets.items = {item.rating_key for item in found if item.kind == "movie"}
    live = coordinator.live
    summary = None
    if live is not None:
        with _action_errors(call.hass, entry), coordinator.translated_errors():
            summary = await live.async_refresh_or_raise(targets, source="action")
    if summary is None:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="cannot_connect",
            translation_placeholders={"server": entry.title, "error": "not connected yet"},
        )
    return {
        "status": str(summary.status),
        "requested": summary.requested,
        "found": summary.found,
        "changed": summary.changed,
        "titles": summary.changed_titles,
        "missing": summary.missing,
        "not_found": summary.not_found,
        "watched": cast("Any", [watched_to_json(item) for item in summary.watched]),
        "expanded_shows": summary.expanded_shows,
        "requests": summary.requests,
        "error": summary.error,
    }


def _server_filter(hass: HomeAssistant, data: dict[str, Any]) -> str | None:
    """Return the machineIdentifier of the server an action names (None: every server)."""
    if (entry_id := data.get(ATTR_CONFIG_ENTRY_ID)) is None:
        return None
    entry = hass.config_entries.async_get_entry(entry_id)
    if entry is None or entry.domain != DOMAIN or entry.unique_id is None:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="entry_not_found",
            translation_placeholders={"entry_id": entry_id},
        )
    return entry.unique_id


def _iso_times(record: dict[str, Any], *keys: str) -> dict[str, Any]:
    for key in keys:
        if (value := record.get(key)) is not None:
            record[key] = dt_util.utc_from_timestamp(value).isoformat()
    return record


async def _async_find_items(call: ServiceCall) -> ServiceResponse:
    catalog = _catalog(call.hass)
    limit = call.data[ATTR_LIMIT]
    # One more than asked for tells whether more items match.
    with _catalog_errors():
        items = await catalog.call(
            CatalogStore.find_items,
            call.data.get(ATTR_TITLE),
            call.data.get(ATTR_YEAR),
            call.data.get(ATTR_KIND),
            state=call.data.get(ATTR_STATE),
            library=call.data.get(ATTR_LIBRARY),
            machine_identifier=_server_filter(call.hass, call.data),
            limit=limit + 1,
            offset=call.data[ATTR_OFFSET],
        )
    found = [_iso_times(asdict(item), "last_viewed_at") for item in items[:limit]]
    return {"items": cast("Any", found), "truncated": len(items) > limit}


async def _async_find_duplicates(call: ServiceCall) -> ServiceResponse:
    catalog = _catalog(call.hass)
    machine_identifier = _server_filter(call.hass, call.data)
    with _catalog_errors():
        page = await catalog.call(
            browse.duplicates,
            scope=call.data[ATTR_SCOPE],
            kinds=tuple(call.data.get(ATTR_KIND) or ("movie", "show")),
            machine_identifier=machine_identifier,
            offset=call.data[ATTR_OFFSET],
            limit=call.data[ATTR_LIMIT],
        )
    return {
        "total": page.total,
        "groups": cast("Any", [asdict(group) for group in page.groups]),
    }


async def _async_purge_deleted(call: ServiceCall) -> ServiceResponse:
    # Deleting rows is for administrators only. `async_register_admin_service` takes
    # `supports_response` from Home Assistant 2025.6 on; on 2025.4 it registers no action
    # with a response, so this makes the check its handler makes, with the same errors.
    if call.context.user_id:
        user = await call.hass.auth.async_get_user(call.context.user_id)
        if user is None:
            raise UnknownUser(context=call.context)
        if not user.is_admin:
            raise Unauthorized(context=call.context)
    catalog = _catalog(call.hass)
    cutoff = int(dt_util.utcnow().timestamp()) - call.data[ATTR_OLDER_THAN_DAYS] * 86400
    with _catalog_errors():
        purged = await catalog.call(CatalogStore.purge_deleted, cutoff)
    # The deleted counts changed: let the sensors of every server read them again.
    for entry in call.hass.config_entries.async_loaded_entries(DOMAIN):
        await entry.runtime_data.async_refresh_counts()
    return {"purged": purged}


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the Retrovue actions."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_SYNC_LIBRARY,
        _async_sync_library,
        schema=SYNC_LIBRARY_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_REFRESH_ITEMS,
        _async_refresh_items,
        schema=REFRESH_ITEMS_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_FIND_ITEMS,
        _async_find_items,
        schema=FIND_ITEMS_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_FIND_DUPLICATES,
        _async_find_duplicates,
        schema=FIND_DUPLICATES_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_PURGE_DELETED,
        _async_purge_deleted,
        schema=PURGE_DELETED_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
