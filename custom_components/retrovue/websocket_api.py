"""Websocket commands behind the Retrovue panel: libraries, items, an item, folders, duplicates.

Every command is for administrators only, validates its message, reads the catalog through the
store's typed queries (on the catalog's thread) and answers plain JSON with epoch-second times.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import asdict
from functools import wraps
from typing import Any
from urllib.parse import quote

from homeassistant.components.websocket_api import async_register_command
from homeassistant.components.websocket_api.connection import ActiveConnection
from homeassistant.components.websocket_api.const import ERR_INVALID_FORMAT, ERR_NOT_FOUND
from homeassistant.components.websocket_api.decorators import (
    async_response,
    require_admin,
    websocket_command,
)
from homeassistant.core import HomeAssistant, callback
import voluptuous as vol

from .const import DOMAIN, UNIT_BY_TYPE
from .engine.states import ItemState
from .engine.store import CatalogError, browse
from .engine.store.browse import ItemQuery, SortKey
from .shared import get_catalog

KINDS = ("movie", "show", "season", "episode")
STATES = tuple(state.value for state in ItemState)
DUPLICATE_SCOPES = ("all", "within", "across")
MAX_PAGE = 500
DEFAULT_PAGE = 100
MAX_FOLDERS = 200


type _Handler = Callable[
    [HomeAssistant, ActiveConnection, dict[str, Any]], Coroutine[Any, Any, None]
]

# The filter of an items page, shared with the CSV export (panel.py).
ITEM_FILTER: dict[str | vol.Marker, Any] = {
    vol.Optional("library_ids"): vol.All([vol.Coerce(int)], vol.Length(max=500)),
    vol.Optional("machine_identifier"): vol.All(str, vol.Length(min=1, max=200)),
    vol.Optional("states"): vol.All([vol.All(str, vol.Upper, vol.In(STATES))], vol.Length(max=5)),
    vol.Optional("kinds"): vol.All([vol.In(KINDS)], vol.Length(max=4)),
    vol.Optional("search"): vol.All(str, vol.Length(max=500)),
    vol.Optional("year"): vol.All(vol.Coerce(int), vol.Range(min=1800, max=3000)),
    vol.Optional("sort", default=SortKey.TITLE.value): vol.In([key.value for key in SortKey]),
    vol.Optional("descending", default=False): bool,
}


def item_query(msg: dict[str, Any], *, offset: int = 0, limit: int = DEFAULT_PAGE) -> ItemQuery:
    """Return the store query of a validated items filter."""
    search = (msg.get("search") or "").strip()
    return ItemQuery(
        machine_identifier=msg.get("machine_identifier"),
        library_ids=tuple(msg.get("library_ids", ())),
        states=tuple(msg.get("states", ())),
        kinds=tuple(msg.get("kinds", ())),
        search=search or None,
        year=msg.get("year"),
        sort=SortKey(msg["sort"]),
        descending=msg["descending"],
        offset=offset,
        limit=limit,
    )


def plex_web_url(server_url: str | None, machine_identifier: str, rating_key: str) -> str | None:
    """Return the item's page in the server's own Plex Web app (works without plex.tv)."""
    if not server_url:
        return None
    key = quote(f"/library/metadata/{rating_key}", safe="")
    return (
        f"{server_url.rstrip('/')}/web/index.html#!/server/{machine_identifier}/details?key={key}"
    )


def _catalog_command(handler: _Handler) -> _Handler:
    """Answer `not_loaded` without a catalog, and catalog or query errors as errors."""

    @wraps(handler)
    async def wrapper(
        hass: HomeAssistant, connection: ActiveConnection, msg: dict[str, Any]
    ) -> None:
        if get_catalog(hass) is None:
            connection.send_error(msg["id"], "not_loaded", "No Retrovue server is set up")
            return
        try:
            await handler(hass, connection, msg)
        except CatalogError as err:
            connection.send_error(msg["id"], "catalog_error", str(err))
        except ValueError as err:
            connection.send_error(msg["id"], ERR_INVALID_FORMAT, str(err))

    return wrapper


def _catalog(hass: HomeAssistant) -> Any:
    catalog = get_catalog(hass)
    if catalog is None:  # pragma: no cover - checked by _catalog_command
        raise CatalogError("the catalog is closed")
    return catalog


@websocket_command({vol.Required("type"): f"{DOMAIN}/libraries"})
@require_admin
@async_response
@_catalog_command
async def ws_libraries(
    hass: HomeAssistant, connection: ActiveConnection, msg: dict[str, Any]
) -> None:
    """List every library of every server with its counts."""
    libraries = await _catalog(hass).call(browse.libraries_overview)
    connection.send_result(
        msg["id"],
        {
            "libraries": [
                {
                    "id": library.id,
                    "machine_identifier": library.machine_identifier,
                    "server": library.server,
                    "server_url": library.server_url,
                    "section_key": library.section_key,
                    "title": library.title,
                    "type": library.type,
                    "unit": UNIT_BY_TYPE.get(library.type, "items"),
                    "locations": list(library.locations),
                    "present": library.present,
                    "counts": {
                        key: value
                        for key, value in asdict(library.counts).items()
                        if key not in ("section_key", "title", "type")
                    },
                    "last_synced_at": library.last_synced_at,
                }
                for library in libraries
            ]
        },
    )


@websocket_command(
    {
        vol.Required("type"): f"{DOMAIN}/items",
        **ITEM_FILTER,
        vol.Optional("offset", default=0): vol.All(vol.Coerce(int), vol.Range(min=0)),
        vol.Optional("limit", default=DEFAULT_PAGE): vol.All(
            vol.Coerce(int), vol.Range(min=1, max=MAX_PAGE)
        ),
    }
)
@require_admin
@async_response
@_catalog_command
async def ws_items(hass: HomeAssistant, connection: ActiveConnection, msg: dict[str, Any]) -> None:
    """Return one page of items matching a filter, and how many match in all."""
    query = item_query(msg, offset=msg["offset"], limit=msg["limit"])
    page = await _catalog(hass).call(browse.items, query)
    connection.send_result(
        msg["id"],
        {
            "total": page.total,
            "offset": query.offset,
            "limit": query.limit,
            "items": [asdict(row) for row in page.rows],
        },
    )


@websocket_command(
    {vol.Required("type"): f"{DOMAIN}/item", vol.Required("item_id"): vol.Coerce(int)}
)
@require_admin
@async_response
@_catalog_command
async def ws_item(hass: HomeAssistant, connection: ActiveConnection, msg: dict[str, Any]) -> None:
    """Return one item with its GUIDs, every part and its state history."""
    detail = await _catalog(hass).call(browse.item_detail, msg["item_id"])
    if detail is None:
        connection.send_error(msg["id"], ERR_NOT_FOUND, "No such item")
        return
    data = asdict(detail)
    data["plex_web_url"] = plex_web_url(
        data.pop("server_url", None), detail.machine_identifier, detail.rating_key
    )
    connection.send_result(msg["id"], data)


@websocket_command(
    {
        vol.Required("type"): f"{DOMAIN}/missing_folders",
        vol.Optional("library_ids"): vol.All([vol.Coerce(int)], vol.Length(max=500)),
        vol.Optional("machine_identifier"): vol.All(str, vol.Length(min=1, max=200)),
        vol.Optional("limit", default=50): vol.All(
            vol.Coerce(int), vol.Range(min=1, max=MAX_FOLDERS)
        ),
    }
)
@require_admin
@async_response
@_catalog_command
async def ws_missing_folders(
    hass: HomeAssistant, connection: ActiveConnection, msg: dict[str, Any]
) -> None:
    """Return missing items grouped by the Plex folder that held them, biggest first."""
    folders = await _catalog(hass).call(
        browse.missing_folders,
        machine_identifier=msg.get("machine_identifier"),
        library_ids=tuple(msg.get("library_ids", ())),
        limit=msg["limit"],
    )
    connection.send_result(msg["id"], {"folders": [asdict(folder) for folder in folders]})


@websocket_command(
    {
        vol.Required("type"): f"{DOMAIN}/duplicates",
        vol.Optional("scope", default="all"): vol.In(DUPLICATE_SCOPES),
        vol.Optional("kinds", default=["movie", "show"]): vol.All(
            [vol.In(KINDS)], vol.Length(min=1, max=4)
        ),
        vol.Optional("machine_identifier"): vol.All(str, vol.Length(min=1, max=200)),
        vol.Optional("offset", default=0): vol.All(vol.Coerce(int), vol.Range(min=0)),
        vol.Optional("limit", default=50): vol.All(vol.Coerce(int), vol.Range(min=1, max=200)),
    }
)
@require_admin
@async_response
@_catalog_command
async def ws_duplicates(
    hass: HomeAssistant, connection: ActiveConnection, msg: dict[str, Any]
) -> None:
    """Return groups of items that share an external id (IMDb, TMDB, TVDB)."""
    page = await _catalog(hass).call(
        browse.duplicates,
        scope=msg["scope"],
        kinds=tuple(msg["kinds"]),
        machine_identifier=msg.get("machine_identifier"),
        offset=msg["offset"],
        limit=msg["limit"],
    )
    connection.send_result(
        msg["id"], {"total": page.total, "groups": [asdict(group) for group in page.groups]}
    )


@callback
def async_setup_websocket_api(hass: HomeAssistant) -> None:
    """Register the panel's commands."""
    for command in (ws_libraries, ws_items, ws_item, ws_missing_folders, ws_duplicates):
        async_register_command(hass, command)
