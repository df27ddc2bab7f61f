"""Coordinator: what one Plex server's entities show, read from the catalog, and its syncs."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
import time
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryError
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.event import async_call_later
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
    EVENT_ITEM_WATCHED,
    EVENT_ITEMS_MISSING,
    EVENT_LIBRARY_SYNCED,
    EVENT_SYNC_PROGRESS,
    EVENT_SYNC_STARTED,
    LOGGER,
    PUSH_SYNC_FACTOR,
    SUBENTRY_PATH_MAPPING,
)
from .engine.paths import PathMapping
from .engine.plex import PlexAuthError, PlexClient, PlexError
from .engine.store import Catalog, CatalogError, CatalogStore, browse
from .engine.store.browse import MissingFolder
from .engine.sync import ServerContext, SyncProgress, SyncSummary, prepare_server, sync_library
from .live import RetrovueLive, folders_to_json, watched_to_json
from .repairs import async_check_mappings, async_check_missing_drop

type RetrovueConfigEntry = ConfigEntry[RetrovueDataUpdateCoordinator]

# Seconds before the first retry of a failed request (doubling after that).
RETRY_BACKOFF = 0.5
# Seconds a sync runs before the sync status says *syncing* (quick syncs stay *idle*).
SYNC_STATUS_DELAY = 5
_MISSING_TITLES = 5
# Folders named in a missing event.
_MISSING_FOLDERS = 5


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
    unwatched: int
    # Present shows of a show library (its other counts are of episodes).
    shows: int
    last_synced_at: datetime | None
    last_run: LastRun | None


@dataclass(frozen=True, slots=True)
class RetrovueData:
    """What the coordinator hands to entities."""

    libraries: dict[str, LibraryData]


@dataclass(frozen=True, slots=True)
class SyncActivity:
    """Live sync progress of the server, for the status and progress sensors."""

    syncing: bool = False
    library: str | None = None
    percent: int | None = None
    # The sync has run for SYNC_STATUS_DELAY: only then does the status say *syncing*, so
    # quick syncs leave no trace in the logbook.
    lasting: bool = False


def _when(epoch: int | None) -> datetime | None:
    return None if epoch is None else dt_util.utc_from_timestamp(epoch)


class RetrovueDataUpdateCoordinator(DataUpdateCoordinator[RetrovueData]):
    """Read one Plex server's libraries from the catalog, and sync them into it.

    The coordinator's data is a cheap read of the catalog. Syncs run apart from it, one at a
    time (scheduled by `async_start_sync`, or asked for by the sync_library action): each
    pushes fresh data after every library, reports its progress to activity listeners only,
    and a failed scheduled sync makes the entities unavailable (a refused token starts reauth).
    """

    config_entry: RetrovueConfigEntry

    def __init__(self, hass: HomeAssistant, entry: RetrovueConfigEntry, catalog: Catalog) -> None:
        """Set up the coordinator and its Plex client."""
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} {entry.title}",
            # Only syncs change the catalog, and each pushes what it wrote: nothing to poll.
            update_interval=None,
        )
        self.sync_interval = timedelta(
            minutes=entry.options.get(CONF_SCAN_INTERVAL, DEFAULT_SCAN_INTERVAL)
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
        self._unsub_lasting: CALLBACK_TYPE | None = None
        self._activity_listeners: list[CALLBACK_TYPE] = []
        self._sync_lock = asyncio.Lock()
        self._library_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._sync_task: asyncio.Task[None] | None = None
        self._stopped = False
        self._mirrored_mappings: list[PathMapping] | None = None
        # Plex's live side (websocket, webhook), set up by `async_setup_entry`.
        self.live: RetrovueLive | None = None
        self._last_scheduled_sync: float | None = None
        # A forced sync asked for while one ran: its libraries (None: all), run right after.
        self._pending = False
        self._pending_libraries: set[str] | None = None

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
        """Read the enabled libraries' counts from the catalog (no request to Plex)."""
        with self.translated_errors():
            return await self._async_read()

    async def async_shutdown(self) -> None:
        """Cancel a running scheduled sync (before the catalog closes), then stop."""
        self._stopped = True
        if self._unsub_lasting is not None:
            self._unsub_lasting()
            self._unsub_lasting = None
        if self.live is not None:
            await self.live.async_stop()
        if (task := self._sync_task) is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])
        await super().async_shutdown()

    # --- activity: the light path to the status and progress sensors -------------------------

    @callback
    def async_add_activity_listener(self, update_callback: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call `update_callback` whenever the sync activity changes; return the remover."""
        self._activity_listeners.append(update_callback)

        @callback
        def remove_listener() -> None:
            self._activity_listeners.remove(update_callback)

        return remove_listener

    @callback
    def _async_set_activity(self, activity: SyncActivity) -> None:
        if activity.syncing:
            activity = replace(activity, lasting=activity.lasting or self.activity.lasting)
            if self._unsub_lasting is None and not activity.lasting:
                self._unsub_lasting = async_call_later(
                    self.hass, SYNC_STATUS_DELAY, self._async_sync_lasts
                )
        elif self._unsub_lasting is not None:
            self._unsub_lasting()
            self._unsub_lasting = None
        self.activity = activity
        for update_callback in list(self._activity_listeners):
            update_callback()

    @callback
    def _async_sync_lasts(self, _now: datetime) -> None:
        self._unsub_lasting = None
        if self.activity.syncing:
            self._async_set_activity(replace(self.activity, lasting=True))

    # --- syncing -----------------------------------------------------------------------------

    @callback
    def async_start_sync(
        self,
        _now: datetime | None = None,
        *,
        libraries: list[str] | None = None,
        forced: bool = False,
    ) -> None:
        """Start a sync (default: every enabled library) in the background.

        Skipped while one is running. While Plex's websocket is connected, a scheduled sync
        (not `forced`) runs only every PUSH_SYNC_FACTOR intervals: notifications carry the
        changes, and the sync stays the safety net for what they miss.
        """
        if self._stopped:
            return
        if self._sync_lock.locked():
            if forced:
                # Asked for by a live update (a finished library scan): run it right after.
                if libraries is None or (self._pending and self._pending_libraries is None):
                    self._pending_libraries = None
                elif self._pending and self._pending_libraries is not None:
                    self._pending_libraries.update(libraries)
                else:
                    self._pending_libraries = set(libraries)
                self._pending = True
                return
            LOGGER.debug(
                "%s is still syncing; this scheduled sync is skipped", self.config_entry.title
            )
            return
        now = time.monotonic()
        if (
            not forced
            and self.last_update_success
            and self.live is not None
            and self.live.connected
            and self._last_scheduled_sync is not None
            and now - self._last_scheduled_sync
            < self.sync_interval.total_seconds() * PUSH_SYNC_FACTOR - 1
        ):
            LOGGER.debug(
                "%s: push is connected; this scheduled sync waits", self.config_entry.title
            )
            return
        if libraries is None:
            self._last_scheduled_sync = now
        self._sync_task = self.config_entry.async_create_background_task(
            self.hass, self._async_scheduled_sync(libraries), f"{self.name} sync"
        )

    async def _async_scheduled_sync(self, libraries: list[str] | None = None) -> None:
        """Sync; on failure make the entities unavailable, and start reauth on a refused token.

        As core's push-style coordinators do (imap): nothing awaits this task to hand an
        exception to, so the coordinator is told instead.
        """
        try:
            await self.async_sync(libraries)
        except ConfigEntryAuthFailed as err:
            self.async_set_update_error(err)
            self.config_entry.async_start_reauth(self.hass)
        except (UpdateFailed, ConfigEntryError) as err:
            self.async_set_update_error(err)
        except Exception as err:  # noqa: BLE001 - as DataUpdateCoordinator does for a refresh
            LOGGER.exception("Unexpected error syncing %s", self.config_entry.title)
            self.async_set_update_error(err)

    @contextmanager
    def translated_errors(self) -> Iterator[None]:
        """Turn the engine's refused-token, unreachable and catalog errors into HA's."""
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
        with self.translated_errors():
            server = await prepare_server(self.client, self.catalog)
        if server.machine_identifier != self.machine_identifier:
            raise ConfigEntryError(
                translation_domain=DOMAIN,
                translation_key="wrong_server",
                translation_placeholders={"server": self.config_entry.title},
            )
        mappings = self._path_mappings()
        if mappings != self._mirrored_mappings:
            with self.translated_errors():
                await self.catalog.call(CatalogStore.set_path_mappings, server.server_id, mappings)
            self._mirrored_mappings = mappings
        self.server = server
        return server

    async def async_sync(
        self, libraries: list[str] | None = None, *, deep: bool | None = None
    ) -> list[SyncSummary]:
        """Sync some (default: all enabled) libraries, after any sync already running.

        Each library is deep when asked or when due. Fresh data reaches the entities after
        every library. Raises ConfigEntryAuthFailed on a refused token, UpdateFailed when the
        server cannot be reached or the catalog fails, ConfigEntryError for another server.
        """
        try:
            async with self._sync_lock:
                try:
                    return await self._async_sync_libraries(libraries, deep)
                finally:
                    self._async_set_activity(SyncActivity())
        finally:
            if self._pending and not self._stopped:
                pending, self._pending = self._pending_libraries, False
                self._pending_libraries = None
                self.async_start_sync(
                    libraries=None if pending is None else sorted(pending), forced=True
                )

    async def _async_sync_libraries(
        self, libraries: list[str] | None, deep: bool | None
    ) -> list[SyncSummary]:
        server = await self._async_prepare()
        keys = [key for key in (libraries or self.enabled_libraries) if server.section(key)]
        options = self.config_entry.options
        retention = options.get(CONF_RETENTION_DAYS, DEFAULT_RETENTION_DAYS)
        deep_hours = options.get(CONF_DEEP_SYNC_INTERVAL, DEFAULT_DEEP_SYNC_INTERVAL)
        summaries: list[SyncSummary] = []
        with self.translated_errors():
            rows = {
                row.section_key: row
                for row in await self.catalog.call(CatalogStore.libraries, server.server_id)
            }
            now = time.time()
            for index, key in enumerate(keys, 1):
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
                if index < len(keys):
                    # Show this library's counts while the next one syncs.
                    await self.async_push_data()
            await self._check_mappings(server)
            # The last library's counts, and libraries that vanished from the server.
            await self.async_push_data()
        return summaries

    async def async_refresh_counts(self) -> None:
        """Read the catalog again after something else than a sync changed it.

        After a failed sync the entities stay unavailable until a sync succeeds.
        """
        if self.last_update_success:
            await self.async_refresh()

    async def async_push_data(self) -> None:
        """Hand the entities what the catalog holds now."""
        data = await self._async_read()
        if not self.last_update_success:
            LOGGER.info("Syncing %s recovered", self.config_entry.title)
        self.async_set_updated_data(data)

    @callback
    def _on_progress(self, progress: SyncProgress) -> None:
        summary = progress.summary
        base = self._event_base(summary)
        if progress.event == "library_start":
            self._async_set_activity(
                SyncActivity(syncing=True, library=summary.library_title, percent=0)
            )
            self.hass.bus.async_fire(EVENT_SYNC_STARTED, {**base, "deep": summary.deep})
        elif progress.event == "page_progress":
            percent = None
            if summary.total:
                percent = min(99, int(summary.processed * 100 / summary.total))
            self._async_set_activity(
                SyncActivity(syncing=True, library=summary.library_title, percent=percent)
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
            self._async_set_activity(
                SyncActivity(syncing=True, library=summary.library_title, percent=100)
            )
            self.hass.bus.async_fire(EVENT_LIBRARY_SYNCED, {**base, **summary_to_json(summary)})

    def _event_base(self, summary: SyncSummary) -> dict[str, Any]:
        return {
            "config_entry_id": self.config_entry.entry_id,
            "server": self.config_entry.title,
            "machine_identifier": summary.machine_identifier,
            "library_key": summary.library_key,
            "library": summary.library_title,
        }

    async def _after_library(self, summary: SyncSummary) -> None:
        base = self._event_base(summary)
        for item in summary.watched:
            self.hass.bus.async_fire(EVENT_ITEM_WATCHED, {**base, **watched_to_json(item)})
        if summary.status != "ok":
            return
        folders: list[MissingFolder] = []
        if summary.missing_promoted:
            titles = await self.catalog.call(
                CatalogStore.newly_missing_titles, summary.run_id, _MISSING_TITLES
            )
            folders = await self.async_missing_folders(summary.run_id)
            self.hass.bus.async_fire(
                EVENT_ITEMS_MISSING,
                {
                    **base,
                    "count": summary.missing_promoted,
                    "titles": titles,
                    "folders": folders_to_json(folders[:_MISSING_FOLDERS]),
                },
            )
        await self._check_missing_drop(summary, folders)

    async def async_missing_folders(self, run_id: int) -> list[MissingFolder]:
        """Return where the items a run marked MISSING were: grouped by folder, biggest first.

        All of them (up to the store's largest page): the lost-share repair counts them.
        """
        return list(
            await self.catalog.call(
                browse.missing_folders,
                machine_identifier=self.machine_identifier,
                run_id=run_id,
                limit=browse.MAX_LIMIT,
            )
        )

    async def _check_missing_drop(self, summary: SyncSummary, folders: list[MissingFolder]) -> None:
        """Raise or clear the repair of a library that lost many files in one run."""
        server = self.server
        if server is None:  # pragma: no cover - a run always follows _async_prepare
            return
        counts = next(
            (
                row
                for row in await self.catalog.call(CatalogStore.library_counts, server.server_id)
                if row.section_key == summary.library_key
            ),
            None,
        )
        if counts is not None:
            async_check_missing_drop(
                self.hass,
                self.config_entry,
                summary.library_key,
                summary.library_title,
                counts,
                folders,
            )

    async def _check_mappings(self, server: ServerContext) -> None:
        """Raise a repair per library most of whose files no path mapping resolves."""
        rows = await self.catalog.call(CatalogStore.remote_only_by_library, server.server_id)
        async_check_mappings(self.hass, self.config_entry, rows, self._path_mappings())

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
                unwatched=counts.unwatched,
                shows=counts.shows,
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
