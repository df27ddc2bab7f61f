"""Diagnostics for Retrovue: settings (secrets redacted), catalog, runs and live updates."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util

from .const import CONF_TOKEN, CONF_WEBHOOK_ID
from .coordinator import RetrovueConfigEntry, RetrovueDataUpdateCoordinator
from .engine.store import CatalogStore

TO_REDACT = {CONF_TOKEN, CONF_WEBHOOK_ID}
_RUNS = 10
_ACTIVITY = 20


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: RetrovueConfigEntry
) -> dict[str, Any]:
    """Return diagnostics for a config entry."""
    coordinator = entry.runtime_data
    server = coordinator.server
    facts: dict[str, Any] = {}
    if server is not None:
        facts = asdict(await coordinator.catalog.call(CatalogStore.facts, server.server_id, _RUNS))
    return {
        "entry": {
            "data": async_redact_data(dict(entry.data), TO_REDACT),
            "options": dict(entry.options),
            "subentries": [
                {"type": sub.subentry_type, "data": dict(sub.data)}
                for sub in entry.subentries.values()
            ],
        },
        "server": None
        if server is None
        else {
            "machine_identifier": server.machine_identifier,
            "name": server.name,
            "version": server.version,
            "sections": [asdict(section) for section in server.sections],
        },
        "catalog": facts,
        "activity": asdict(coordinator.activity),
        "requests": dict(coordinator.client.requests),
        "live": await _live(coordinator),
    }


async def _live(coordinator: RetrovueDataUpdateCoordinator) -> dict[str, Any]:
    """Return the websocket's state and counters and the latest live updates (ISO times)."""
    live, server = coordinator.live, coordinator.server
    if live is None:
        return {}
    recent = []
    if server is not None:
        for record in await coordinator.catalog.call(
            CatalogStore.recent_activity, server.server_id, _ACTIVITY
        ):
            row = asdict(record)
            row["at"] = dt_util.utc_from_timestamp(record.at).isoformat()
            recent.append(row)
    stats = asdict(live.stream.stats)
    for key in ("connected_at", "disconnected_at", "last_message_at"):
        if (value := stats.get(key)) is not None:
            stats[key] = dt_util.utc_from_timestamp(value).isoformat()
    return {
        "push_connected": live.connected,
        "webhook": live.webhook_id is not None,
        "stream": stats,
        "recent_activity": recent,
    }
