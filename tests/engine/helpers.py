"""Helpers for engine tests: what the emulator holds, what the catalog holds, one-call syncs."""

from __future__ import annotations

from typing import Any

from custom_components.retrovue.engine.plex import PlexClient
from custom_components.retrovue.engine.plex.guids import parse_guids
from custom_components.retrovue.engine.store import Catalog, CatalogStore
from custom_components.retrovue.engine.sync import (
    ServerContext,
    SyncSummary,
    prepare_server,
    sync_library,
)
from tests.emulator import EmuServer


def expected_items(server: EmuServer) -> set[tuple[str, str, str]]:
    """Return (ratingKey, kind, title) of every item the emulator serves."""
    return {(str(item.rating_key), item.type, item.title) for item in server.items.values()}


def expected_parts(server: EmuServer) -> set[tuple[str, str, str, int]]:
    """Return (ratingKey, part id, file, size) of every part the emulator serves."""
    return {
        (str(item.rating_key), str(part.id), part.file, part.size)
        for item in server.items.values()
        for media in item.media
        for part in media.parts
    }


def expected_guids(server: EmuServer) -> set[tuple[str, str]]:
    """Return (ratingKey, GUID uri) as the catalog should store them."""
    return {
        (str(item.rating_key), ext.uri)
        for item in server.items.values()
        for ext in parse_guids(item.guid, item.ext_guids)
    }


async def rows(catalog: Catalog, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Run a read query on the catalog."""
    result = await catalog.call(CatalogStore.query, sql, params)
    return [tuple(row) for row in result]


async def stored_items(catalog: Catalog, machine_identifier: str) -> set[tuple[str, str, str]]:
    """Return (ratingKey, kind, title) of a server's present items."""
    found = await rows(
        catalog,
        "SELECT rating_key, kind, title FROM catalog_items WHERE machine_identifier = ? "
        "AND state IN ('ACTIVE', 'REMOTE_ONLY', 'UNAVAILABLE')",
        machine_identifier,
    )
    return {(str(a), str(b), str(c)) for a, b, c in found}


async def states(catalog: Catalog, machine_identifier: str) -> dict[str, str]:
    """Return ratingKey → state for one server."""
    found = await rows(
        catalog,
        "SELECT rating_key, state FROM catalog_items WHERE machine_identifier = ?",
        machine_identifier,
    )
    return {str(key): str(state) for key, state in found}


async def sync_all(
    client: PlexClient, catalog: Catalog, **kwargs: Any
) -> tuple[ServerContext, list[SyncSummary]]:
    """Prepare the server and sync every library; return the summaries."""
    server = await prepare_server(
        client, catalog, **({"clock": kwargs["clock"]} if "clock" in kwargs else {})
    )
    summaries = [
        await sync_library(client, catalog, server, section.key, **kwargs)
        for section in server.sections
    ]
    return server, summaries
