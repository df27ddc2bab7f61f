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
# Plex's contentChangedAt is a change counter, not a time.
_NOT_TIMES = frozenset({"content_changed_at"})


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: RetrovueConfigEntry
) -> dict[str, Any]:
    """Return diagnostics for a config entry."""
    coordinator = entry.runtime_data
    server = coordinator.server
    facts: dict[str, Any] = {}
    if server is not None:
        facts = _iso_times(
            asdict(await coordinator.catalog.call(CatalogStore.facts, server.server_id, _RUNS))
        )
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
            "sections": [_iso_times(asdict(section)) for section in server.sections],
        },
        "catalog": facts,
        "activity": asdict(coordinator.activity),
        "requests": dict(coordinator.client.requests),
        "live": await _live(coordinator),
    }


def _iso_times(value: Any) -> Any:
    """Return `value` with every epoch time (an int under a key ending in `_at`) as ISO text."""
    if isinstance(value, dict):
        return {
            key: dt_util.utc_from_timestamp(item).isoformat()
            if key.endswith("_at")
            and key not in _NOT_TIMES
            and isinstance(item, int)
            and not isinstance(item, bool)
            else _iso_times(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_iso_times(item) for item in value]
    return value


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
