"""Diagnostics for Retrovue: settings (token redacted), catalog counts and recent runs."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant

from .const import CONF_TOKEN
from .coordinator import RetrovueConfigEntry
from .engine.store import CatalogStore

TO_REDACT = {CONF_TOKEN}
_RUNS = 10


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
    }
