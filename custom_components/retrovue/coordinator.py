"""Coordinator: runs the catalog sync for one Plex server and reads what entities show."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
import time
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryError
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util

from .const import (
    CONF_DEEP_SYNC_INTERVAL,
    CONF_LIBRARIES,
    CONF_LOCAL_PREFIX,
    CONF_PLEX_PREFIX,
    CONF_RETENTION_DAYS,
    CONF_SCAN_INTERVAL,
    CONF_TOKEN,
    CONF_URL,
    CONF_VERIFY_SSL,
    DEFAULT_DEEP_SYNC_INTERVAL,
    DEFAULT_RETENTION_DAYS,
    DEFAULT_SCAN_INTERVAL,
    DOMAIN,
    EVENT_ITEMS_MISSING,
    EVENT_LIBRARY_SYNCED,
    EVENT_SYNC_PROGRESS,
    EVENT_SYNC_STARTED,
    LOGGER,
    REMOTE_ONLY_REPAIR_SHARE,
    SUBENTRY_PATH_MAPPING,
)
from .engine.paths import PathMapping
from .engine.plex import PlexAuthError, PlexClient, PlexError
from .engine.store import Catalog, CatalogError, CatalogStore
from .engine.sync import ServerContext, SyncProgress, SyncSummary, prepare_server, sync_library

type RetrovueConfigEntry = ConfigEntry[RetrovueDataUpdateCoordinator]

ISSUE_MAPPING_WRONG = "mapping_probably_wrong"
# Seconds before the first retry of a failed request (doubling after that).
RETRY_BACKOFF = 0.5
_MISSING_TITLES = 5


@dataclass(frozen=True, slots=True)
class LastRun:
    """The latest finished run of a library."""

    status: str
    finished_at: datetime | None
    changed: int
    skipped: int
    errors: int


@dataclass(frozen=True, slots=True)
class LibraryData:
    """What the entities of one library show."""

    key: str
    title: str
    type: str
    active: int
    remote_only: int
    unavailable: int
    missing: int
    deleted: int
    last_synced_at: datetime | None
    last_run: LastRun | None


@dataclass(frozen=True, slots=True)
class RetrovueData:
    """What the coordinator hands to entities."""

    libraries: dict[str, LibraryData]


@dataclass(slots=True)
class SyncActivity:
    """Live sync progress of the server, for the status and progress sensors."""

    syncing: bool = False
    library: str | None = None
    percent: int | None = None


def _when(epoch: int | None) -> datetime | None:
    return None if epoch is None else dt_util.utc_from_timestamp(epoch)


class RetrovueDataUpdateCoordinator(DataUpdateCoordinator[RetrovueData]):
    """Sync one Plex server's enabled libraries into the shared catalog."""

    config_entry: RetrovueConfigEntry

    def __init__(self, hass: HomeAssistant, entry: RetrovueConfigEntry, catalog: Catalog) -> None:
        """Set up the coordinator and its Plex client."""
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} {entry.title}",
            update_interval=timedelta(
                minutes=entry.options.get(CONF_SCAN_INTERVAL, DEFAULT_SCAN_INTERVAL)
            ),
        )
        self.catalog = catalog
        self.client = PlexClient(
            async_get_clientsession(hass),
            entry.data[CONF_URL],
            entry.data[CONF_TOKEN],
            verify_ssl=entry.data.get(CONF_VERIFY_SSL, True),
            name=entry.title,
            backoff=RETRY_BACKOFF,
        )
        self.server: ServerContext | None = None
        self.activity = SyncActivity()
        self._library_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._synced_once = False
        self._mirrored_mappings: list[PathMapping] | None = None

    # --- options -----------------------------------------------------------------------------

    @property
    def enabled_libraries(self) -> list[str]:
        """Return the section keys the user chose to sync."""
        return list(self.config_entry.options.get(CONF_LIBRARIES, []))

    @property
    def machine_identifier(self) -> str:
        """Return the server's machineIdentifier (the entry's unique id)."""
        return str(self.config_entry.unique_id)

    def _path_mappings(self) -> list[PathMapping]:
        return [
            PathMapping(sub.data[CONF_PLEX_PREFIX], sub.data[CONF_LOCAL_PREFIX])
            for sub in self.config_entry.subentries.values()
            if sub.subentry_type == SUBENTRY_PATH_MAPPING
        ]

    # --- coordinator hooks -------------------------------------------------------------------

    async def _async_setup(self) -> None:
        """Check the server once before the first refresh."""
        await self._async_prepare()

    async def _async_update_data(self) -> RetrovueData:
        """Sync the enabled libraries (except on the first refresh) and read the counts."""
        if self._synced_once:
            await self.async_sync()
        # The first refresh only reads the catalog, so setup stays fast even before a cold
        # sync of a large library; `async_setup_entry` starts that sync right after.
        self._synced_once = True
        return await self._async_read()

    # --- syncing -----------------------------------------------------------------------------

    @contextmanager
    def _translated_errors(self) -> Iterator[None]:
        """Turn the engine's refused-token and unreachable errors into Home Assistant's."""
        try:
            yield
        except PlexAuthError as err:
            raise ConfigEntryAuthFailed(
                translation_domain=DOMAIN,
                translation_key="invalid_auth",
                translation_placeholders={"server": self.config_entry.title},
            ) from err
        except PlexError as err:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="cannot_connect",
                translation_placeholders={"server": self.config_entry.title, "error": str(err)},
            ) from err
        except CatalogError as err:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="catalog_error",
                translation_placeholders={"server": self.config_entry.title, "error": str(err)},
            ) from err

    async def _async_prepare(self) -> ServerContext:
        with self._translated_errors():
            server = await prepare_server(self.client, self.catalog)
        if server.machine_identifier != self.machine_identifier:
            raise ConfigEntryError(
                translation_domain=DOMAIN,
                translation_key="wrong_server",
                translation_placeholders={"server": self.config_entry.title},
            )
        mappings = self._path_mappings()
        if mappings != self._mirrored_mappings:
            await self.catalog.call(CatalogStore.set_path_mappings, server.server_id, mappings)
            self._mirrored_mappings = mappings
        self.server = server
        return server

    async def async_sync(
        self, libraries: list[str] | None = None, *, deep: bool | None = None
    ) -> list[SyncSummary]:
        """Sync some (default: all enabled) libraries; deep when asked or when due.

        Raises ConfigEntryAuthFailed on a refused token and UpdateFailed when unreachable.
        """
        server = await self._async_prepare()
        keys = [key for key in (libraries or self.enabled_libraries) if server.section(key)]
        options = self.config_entry.options
        retention = options.get(CONF_RETENTION_DAYS, DEFAULT_RETENTION_DAYS)
        deep_hours = options.get(CONF_DEEP_SYNC_INTERVAL, DEFAULT_DEEP_SYNC_INTERVAL)
        rows = {
            row.section_key: row
            for row in await self.catalog.call(CatalogStore.libraries, server.server_id)
        }
        now = time.time()
        summaries: list[SyncSummary] = []
        try:
            with self._translated_errors():
                for key in keys:
                    stored = rows.get(key)
                    last_deep = stored.last_deep_sync_at if stored else None
                    # A library's first sync walks everything anyway: record it as the deep one.
                    run_deep = last_deep is None or (
                        deep
                        if deep is not None
                        else deep_hours > 0 and now - last_deep >= deep_hours * 3600
                    )
                    async with self._library_locks[key]:
                        summary = await sync_library(
                            self.client,
                            self.catalog,
                            server,
                            key,
                            deep=run_deep,
                            retention_days=retention,
                            progress=self._on_progress,
                        )
                    summaries.append(summary)
                    await self._after_library(summary)
        finally:
            self.activity = SyncActivity()
            self.async_update_listeners()
        await self._check_mappings(server)
        return summaries

    async def async_sync_and_update(
        self, libraries: list[str] | None = None, *, deep: bool | None = None
    ) -> list[SyncSummary]:
        """Sync now (e.g. from a service call) and push fresh data to the entities."""
        summaries = await self.async_sync(libraries, deep=deep)
        self.async_set_updated_data(await self._async_read())
        return summaries

    @callback
    def _on_progress(self, progress: SyncProgress) -> None:
        summary = progress.summary
        base = self._event_base(summary)
        if progress.event == "library_start":
            self.activity = SyncActivity(syncing=True, library=summary.library_title, percent=0)
            self.hass.bus.async_fire(EVENT_SYNC_STARTED, {**base, "deep": summary.deep})
        elif progress.event == "page_progress":
            percent = None
            if summary.total:
                percent = min(99, int(summary.processed * 100 / summary.total))
            self.activity = SyncActivity(
                syncing=True, library=summary.library_title, percent=percent
            )
            self.hass.bus.async_fire(
                EVENT_SYNC_PROGRESS,
                {
                    **base,
                    "processed": summary.processed,
                    "total": summary.total,
                    "percent": percent,
                    "changed": summary.changed,
                    "errors": summary.errors,
                },
            )
        else:
            self.activity = SyncActivity(syncing=True, library=summary.library_title, percent=100)
            self.hass.bus.async_fire(EVENT_LIBRARY_SYNCED, {**base, **summary_to_json(summary)})
        self.async_update_listeners()

    def _event_base(self, summary: SyncSummary) -> dict[str, Any]:
        return {
            "config_entry_id": self.config_entry.entry_id,
            "server": self.config_entry.title,
            "machine_identifier": summary.machine_identifier,
            "library_key": summary.library_key,
            "library": summary.library_title,
        }

    async def _after_library(self, summary: SyncSummary) -> None:
        if summary.status != "ok" or not summary.missing_promoted:
            return
        titles = await self.catalog.call(
            CatalogStore.newly_missing_titles, summary.run_id, _MISSING_TITLES
        )
        self.hass.bus.async_fire(
            EVENT_ITEMS_MISSING,
            {**self._event_base(summary), "count": summary.missing_promoted, "titles": titles},
        )

    async def _check_mappings(self, server: ServerContext) -> None:
        """Raise a repair issue when most files resolve nowhere although mappings exist."""
        issue_id = f"{ISSUE_MAPPING_WRONG}_{self.config_entry.entry_id}"
        share = await self.catalog.call(CatalogStore.remote_only_share, server.server_id)
        remote_only, playable = share.remote_only, share.playable
        if playable and remote_only / playable > REMOTE_ONLY_REPAIR_SHARE:
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                issue_id,
                is_fixable=False,
                severity=ir.IssueSeverity.WARNING,
                translation_key=ISSUE_MAPPING_WRONG,
                translation_placeholders={
                    "server": self.config_entry.title,
                    "remote_only": str(remote_only),
                    "total": str(playable),
                },
            )
        else:
            ir.async_delete_issue(self.hass, DOMAIN, issue_id)

    async def _async_read(self) -> RetrovueData:
        server = self.server
        if server is None:  # pragma: no cover - _async_setup always runs first
            return RetrovueData(libraries={})
        enabled = set(self.enabled_libraries)
        libraries: dict[str, LibraryData] = {}
        for library in await self.catalog.call(CatalogStore.dashboard, server.server_id):
            counts, run = library.counts, library.last_run
            if counts.section_key not in enabled:
                continue
            libraries[counts.section_key] = LibraryData(
                key=counts.section_key,
                title=counts.title,
                type=counts.type,
                active=counts.active,
                remote_only=counts.remote_only,
                unavailable=counts.unavailable,
                missing=counts.missing,
                deleted=counts.deleted,
                last_synced_at=_when(library.last_synced_at),
                last_run=None
                if run is None
                else LastRun(
                    status=run.status,
                    finished_at=_when(run.finished_at),
                    changed=run.changed,
                    skipped=run.skipped,
                    errors=run.errors,
                ),
            )
        return RetrovueData(libraries=libraries)


def summary_to_json(summary: SyncSummary) -> dict[str, Any]:
    """Return a summary with ISO times, for events and service responses."""
    data = summary.as_dict()
    for key in ("started_at", "finished_at", "last_synced_at"):
        if (value := data.get(key)) is not None:
            data[key] = dt_util.utc_from_timestamp(value).isoformat()
    return data
