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


def _catalog_facts(store: CatalogStore, server_id: int) -> dict[str, Any]:
    runs = store.query(
        """
        SELECT r.id, l.title AS library, r.kind, r.status, r.deep, r.started_at, r.finished_at,
               r.processed, r.changed, r.skipped, r.errors, r.missing_promoted,
               r.deleted_promoted, r.returned, r.requests, r.error
        FROM sync_runs AS r LEFT JOIN libraries AS l ON l.id = r.library_id
        WHERE r.server_id = ? ORDER BY r.id DESC LIMIT ?
        """,
        (server_id, _RUNS),
    )
    counts = store.query(
        "SELECT section_key, title, type, active, remote_only, unavailable, missing, deleted "
        "FROM library_counts WHERE server_id = ? ORDER BY section_key",
        (server_id,),
    )
    return {
        "schema_version": store.schema_version,
        "path_mappings": len(store.path_mappings(server_id)),
        "libraries": [dict(row) for row in counts],
        "last_runs": [dict(row) for row in runs],
    }


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: RetrovueConfigEntry
) -> dict[str, Any]:
    """Return diagnostics for a config entry."""
    coordinator = entry.runtime_data
    server = coordinator.server
    facts: dict[str, Any] = {}
    if server is not None:
        facts = await coordinator.catalog.call(_catalog_facts, server.server_id)
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
