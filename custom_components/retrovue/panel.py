"""The Retrovue sidebar panel: its web component, its registration, and the CSV export.

The panel (frontend/retrovue-panel.js, a dependency-free web component) talks to Home
Assistant's websocket API (websocket_api.py). The CSV export is a plain authenticated GET the
panel opens through a signed path (`auth/sign_path`), so the browser downloads it directly.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
import hashlib
import io
from pathlib import Path
from typing import Any, Final

from aiohttp import web
from homeassistant.components import frontend, panel_custom
from homeassistant.components.http import StaticPathConfig
from homeassistant.components.http.const import KEY_HASS_USER
from homeassistant.core import HomeAssistant
from homeassistant.helpers.http import KEY_HASS, HomeAssistantView
from homeassistant.util.hass_dict import HassKey
import voluptuous as vol

from .const import DOMAIN, LOGGER
from .engine.store import CatalogError, browse
from .shared import get_catalog
from .websocket_api import ITEM_FILTER, item_query

PANEL_URL_PATH: Final = "retrovue"
PANEL_COMPONENT: Final = "retrovue-panel"
PANEL_ICON: Final = "mdi:filmstrip-box-multiple"
STATIC_URL: Final = "/retrovue_static"
EXPORT_URL: Final = "/api/retrovue/export.csv"
FRONTEND_DIR: Final = Path(__file__).parent / "frontend"
PANEL_FILE: Final = "retrovue-panel.js"
# Rows per catalog read while exporting (the store's largest page).
EXPORT_PAGE: Final = 1000

DATA_PANEL: HassKey[str] = HassKey(f"{DOMAIN}_panel")

# Texts starting with these can run as formulas in spreadsheet programs: written with a quote.
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")

EXPORT_COLUMNS: Final = (
    "server",
    "library",
    "kind",
    "title",
    "show",
    "season",
    "episode",
    "year",
    "state",
    "since",
    "first_seen_at",
    "last_seen_at",
    "missing_since",
    "deleted_at",
    "added_at",
    "size",
    "video_resolution",
    "video_codec",
    "container",
    "plex_path",
    "local_path",
    "parts",
    "view_count",
    "last_viewed_at",
    "rating_key",
    "machine_identifier",
)
_TIME_COLUMNS: Final = frozenset(
    {
        "since",
        "first_seen_at",
        "last_seen_at",
        "missing_since",
        "deleted_at",
        "added_at",
        "last_viewed_at",
    }
)
_EXPORT_SCHEMA: Final = vol.Schema(ITEM_FILTER)


def _version() -> str:
    """Return a short hash of the panel's module: its URL changes whenever it does."""
    return hashlib.sha256((FRONTEND_DIR / PANEL_FILE).read_bytes()).hexdigest()[:12]


async def async_setup_panel_support(hass: HomeAssistant) -> None:
    """Serve the panel's module and the CSV export (once per Home Assistant run)."""
    if DATA_PANEL in hass.data:
        return
    hass.data[DATA_PANEL] = await hass.async_add_executor_job(_version)
    await hass.http.async_register_static_paths(
        [StaticPathConfig(STATIC_URL, str(FRONTEND_DIR), cache_headers=False)]
    )
    hass.http.register_view(RetrovueExportView())


async def async_register_panel(hass: HomeAssistant) -> None:
    """Show the panel in the sidebar (administrators only)."""
    if PANEL_URL_PATH in hass.data.get(frontend.DATA_PANELS, {}):
        return
    version = hass.data[DATA_PANEL]
    await panel_custom.async_register_panel(
        hass,
        frontend_url_path=PANEL_URL_PATH,
        webcomponent_name=PANEL_COMPONENT,
        sidebar_title="Retrovue",
        sidebar_icon=PANEL_ICON,
        module_url=f"{STATIC_URL}/{PANEL_FILE}?v={version}",
        require_admin=True,
        config={"version": version},
    )


def async_remove_panel(hass: HomeAssistant) -> None:
    """Take the panel out of the sidebar (when no server is loaded any more)."""
    if PANEL_URL_PATH in hass.data.get(frontend.DATA_PANELS, {}):
        frontend.async_remove_panel(hass, PANEL_URL_PATH)


def _iso(epoch: int | None) -> str:
    return "" if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat()


def _cell(column: str, value: Any) -> Any:
    if column in _TIME_COLUMNS:
        return _iso(value)
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return f"'{value}"
    return value


def _filter_params(request: web.Request) -> dict[str, Any]:
    """Read the items filter from the query string (lists are comma-separated)."""
    raw: dict[str, Any] = {}
    for key, value in request.query.items():
        if key in ("library_ids", "states", "kinds"):
            raw[key] = [part for part in value.split(",") if part]
        elif key == "descending":
            raw[key] = value.lower() in ("1", "true", "yes")
        elif key in ("machine_identifier", "search", "year", "sort"):
            raw[key] = value
    return dict(_EXPORT_SCHEMA(raw))


class RetrovueExportView(HomeAssistantView):
    """The items of a panel filter as CSV (administrators only)."""

    url = EXPORT_URL
    name = "api:retrovue:export"
    requires_auth = True

    async def get(self, request: web.Request) -> web.StreamResponse:
        """Stream every item matching the filter, in the panel's order."""
        hass: HomeAssistant = request.app[KEY_HASS]
        if not request[KEY_HASS_USER].is_admin:
            return self.json_message("Administrators only", 403)
        try:
            params = _filter_params(request)
        except vol.Invalid as err:
            return self.json_message(f"Invalid filter: {err}", 400)
        catalog = get_catalog(hass)
        if catalog is None:
            return self.json_message("No Retrovue server is set up", 404)
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/csv; charset=utf-8",
                "Content-Disposition": f'attachment; filename="retrovue-{stamp}.csv"',
                "Cache-Control": "no-store",
            }
        )
        try:
            page = await catalog.call(browse.items, item_query(params, limit=EXPORT_PAGE))
        except ValueError as err:
            return self.json_message(f"Invalid filter: {err}", 400)
        except CatalogError as err:
            return self.json_message(f"The catalog cannot be read: {err}", 503)
        await response.prepare(request)
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(EXPORT_COLUMNS)
        offset = 0
        while True:
            for row in page.rows:
                writer.writerow([_cell(column, getattr(row, column)) for column in EXPORT_COLUMNS])
            await response.write(buffer.getvalue().encode())
            buffer.seek(0)
            buffer.truncate()
            offset += len(page.rows)
            if len(page.rows) < EXPORT_PAGE or offset >= page.total:
                break
            try:
                page = await catalog.call(
                    browse.items, item_query(params, offset=offset, limit=EXPORT_PAGE)
                )
            except CatalogError as err:
                # The header is sent: end the file early and say so in the log.
                LOGGER.warning("CSV export stopped after %d rows: %s", offset, err)
                break
        await response.write_eof()
        return response
