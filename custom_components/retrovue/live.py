"""Live updates: Plex's notification websocket and webhooks, turned into targeted refreshes.

Per server entry: one `NotificationStream` (the engine's websocket client) feeding a
`LiveQueue` (merges bursts), whose batches run a targeted refresh, push fresh counts to the
entities, fire events and write the activity log; a webhook (Plex Pass) feeding the same queue;
and the state of the websocket for the "push connected" binary sensor. Scheduled syncs stay
the safety net for what notifications miss (see `RetrovueDataUpdateCoordinator`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
import time
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web
from homeassistant.components import webhook
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.util import dt as dt_util

from .const import (
    ACTIVITY_RETENTION_DAYS,
    CONF_TOKEN,
    CONF_URL,
    CONF_VERIFY_SSL,
    CONF_WEBHOOK_ID,
    DOMAIN,
    EVENT_ITEM_WATCHED,
    EVENT_ITEMS_CHANGED,
    EVENT_ITEMS_MISSING,
    EVENT_PLAYBACK,
    LOGGER,
    WEBHOOK_DEDUP_SECONDS,
    WEBHOOK_RATE_PER_MINUTE,
)
from .engine.plex import (
    Notification,
    NotificationStream,
    PlexAuthError,
    PlexError,
    WebhookError,
    WebhookEvent,
    parse_webhook,
)
from .engine.plex.webhooks import MAX_PAYLOAD
from .engine.states import RunStatus
from .engine.store import CatalogError, CatalogStore
from .engine.store.browse import MissingFolder
from .engine.store.writes import Watched
from .engine.sync.live import LiveBatch, LiveQueue
from .engine.sync.targeted import RefreshSummary, Targets, refresh

if TYPE_CHECKING:
    from .coordinator import RetrovueConfigEntry, RetrovueDataUpdateCoordinator

_TITLES: Final = 5
_ITEM_TYPES: Final = {"movie": 1, "show": 2, "season": 3, "episode": 4}
# A webhook body larger than this is refused before it is read (the payload part is small; the
# thumb part of library.new is a small JPEG).
_MAX_BODY: Final = 4 * 1024 * 1024
_PRUNE_EVERY: Final = 3600
# Seconds between websocket pings (None: no pings; the tests, whose clock jumps, use that).
HEARTBEAT: float | None = 15.0


class RetrovueLive:
    """The live side of one Plex server entry."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: RetrovueConfigEntry,
        coordinator: RetrovueDataUpdateCoordinator,
    ) -> None:
        """Set up the stream and the queue (nothing runs until `async_start`)."""
        self.hass = hass
        self.entry = entry
        self.coordinator = coordinator
        self.stream = NotificationStream(
            async_get_clientsession(hass),
            entry.data[CONF_URL],
            entry.data[CONF_TOKEN],
            verify_ssl=entry.data.get(CONF_VERIFY_SSL, True),
            name=entry.title,
            heartbeat=HEARTBEAT,
            on_state=self._on_state,
        )
        self.queue = LiveQueue(self._async_flush, name=entry.title)
        self._listeners: list[CALLBACK_TYPE] = []
        self._recent_webhooks: dict[tuple[str, str | None, str | None], float] = {}
        self._webhook_times: deque[float] = deque()
        self._last_prune = 0.0
        self._tasks: list[asyncio.Task[None]] = []
        self.webhook_id: str | None = entry.data.get(CONF_WEBHOOK_ID)

    # --- state ---------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Return whether Plex's notification websocket is connected."""
        return self.stream.connected

    @callback
    def async_add_listener(self, update_callback: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call `update_callback` when the websocket connects or disconnects."""
        self._listeners.append(update_callback)

        @callback
        def remove() -> None:
            self._listeners.remove(update_callback)

        return remove

    def _on_state(self, connected: bool) -> None:
        LOGGER.debug("%s: push %s", self.entry.title, "connected" if connected else "lost")
        for update_callback in list(self._listeners):
            update_callback()

    # --- running -------------------------------------------------------------------------

    @callback
    def async_start(self) -> None:
        """Start the websocket, the queue and the webhook (all stop when the entry unloads)."""
        entry = self.entry
        self._tasks = [
            entry.async_create_background_task(
                self.hass, self._async_run_stream(), f"{DOMAIN} {entry.title} notifications"
            ),
            entry.async_create_background_task(
                self.hass, self.queue.run(), f"{DOMAIN} {entry.title} live updates"
            ),
        ]
        if self.webhook_id:
            webhook.async_register(
                self.hass,
                DOMAIN,
                f"Retrovue {entry.title}",
                self.webhook_id,
                self._async_handle_webhook,
            )
            webhook_id = self.webhook_id
            entry.async_on_unload(lambda: webhook.async_unregister(self.hass, webhook_id))

    async def async_stop(self) -> None:
        """Stop the websocket and the queue (before the catalog closes: a batch writes to it)."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    async def _async_run_stream(self) -> None:
        try:
            await self.stream.run(self._async_on_notifications)
        except PlexAuthError:
            # The scheduled sync sees the same refusal; reauth is started once either way.
            LOGGER.warning("%s refused the token for notifications", self.entry.title)
            self.entry.async_start_reauth(self.hass)

    async def _async_on_notifications(self, notifications: list[Notification]) -> None:
        # Only merged here: the work runs in the queue's task, so the websocket keeps reading.
        self.queue.feed(notifications)

    # --- batches -------------------------------------------------------------------------

    async def _async_flush(self, batch: LiveBatch) -> None:
        coordinator = self.coordinator
        enabled = coordinator.enabled_libraries
        if batch.targets:
            await self.async_refresh(batch.targets, origins=batch.origins, source="websocket")
        sections = enabled if batch.all_sections else [s for s in batch.sections if s in enabled]
        if sections:
            coordinator.async_start_sync(libraries=sections, forced=True)

    async def async_refresh(
        self,
        targets: Targets,
        *,
        origins: dict[str, tuple[str, str]] | None = None,
        source: str,
    ) -> RefreshSummary | None:
        """Run a targeted refresh, then push counts, fire events and log what it did.

        Returns None when the server is not known yet or cannot be reached (the scheduled
        sync reports that; a refused token starts reauth); raises nothing.
        """
        try:
            return await self.async_refresh_or_raise(targets, origins=origins, source=source)
        except PlexAuthError:
            self.entry.async_start_reauth(self.hass)
        except (PlexError, CatalogError) as err:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise asyncio.CancelledError from None
            LOGGER.debug("%s: live refresh failed: %s", self.entry.title, err)
        return None

    async def async_refresh_or_raise(
        self,
        targets: Targets,
        *,
        origins: dict[str, tuple[str, str]] | None = None,
        source: str,
    ) -> RefreshSummary | None:
        """Do what `async_refresh` does, raising the engine's PlexError and CatalogError."""
        coordinator = self.coordinator
        server = coordinator.server
        if server is None:
            return None
        summary = await refresh(
            coordinator.client,
            coordinator.catalog,
            server,
            targets,
            sections=coordinator.enabled_libraries,
        )
        await self._async_after_refresh(summary, origins or {}, source)
        return summary

    async def _async_after_refresh(
        self, summary: RefreshSummary, origins: dict[str, tuple[str, str]], source: str
    ) -> None:
        coordinator = self.coordinator
        catalog = coordinator.catalog
        server = coordinator.server
        if server is None:  # pragma: no cover - the refresh needed it
            return
        base = {
            "config_entry_id": self.entry.entry_id,
            "server": self.entry.title,
            "machine_identifier": server.machine_identifier,
        }
        try:
            if summary.changed or summary.missing or summary.returned or summary.watch_updated:
                await coordinator.async_push_data()
            if summary.changed:
                self.hass.bus.async_fire(
                    EVENT_ITEMS_CHANGED,
                    {
                        **base,
                        "source": source,
                        "count": summary.changed,
                        "titles": summary.changed_titles[:_TITLES],
                    },
                )
            if summary.missing:
                titles = await catalog.call(
                    CatalogStore.newly_missing_titles, summary.run_id, _TITLES
                )
                folders = await self.coordinator.async_missing_folders(summary.run_id)
                self.hass.bus.async_fire(
                    EVENT_ITEMS_MISSING,
                    {
                        **base,
                        "source": source,
                        "count": len(summary.missing),
                        "titles": titles,
                        "folders": folders_to_json(folders[:_TITLES]),
                    },
                )
            for item in summary.watched:
                self.hass.bus.async_fire(EVENT_ITEM_WATCHED, {**base, **watched_to_json(item)})
            await self._async_log(server.server_id, _activity_rows(summary, origins))
        except CatalogError as err:
            LOGGER.debug("%s: reading after a live refresh failed: %s", self.entry.title, err)

    async def _async_log(
        self, server_id: int, rows: list[tuple[int, str, str, str | None, str, str | None]]
    ) -> None:
        catalog = self.coordinator.catalog
        if rows:
            await catalog.call(CatalogStore.log_activity, server_id, rows)
        now = time.time()
        if now - self._last_prune >= _PRUNE_EVERY:
            self._last_prune = now
            await catalog.call(
                CatalogStore.prune_activity, int(now) - ACTIVITY_RETENTION_DAYS * 86400
            )

    # --- webhooks ------------------------------------------------------------------------

    async def _async_handle_webhook(
        self, hass: HomeAssistant, webhook_id: str, request: web.Request
    ) -> web.Response:
        """Take a Plex webhook: check, de-duplicate, rate-limit, then queue or fire."""
        server = self.coordinator.server
        if server is None:
            return web.Response(status=503)
        now = time.monotonic()
        times = self._webhook_times
        while times and now - times[0] > 60:
            times.popleft()
        if len(times) >= WEBHOOK_RATE_PER_MINUTE:
            await self._async_webhook_record(None, "rate_limited", None)
            return web.Response(status=429)
        times.append(now)
        try:
            event = parse_webhook(await _read_payload(request))
        except WebhookError as err:
            LOGGER.warning("%s: webhook refused: %s", self.entry.title, err.detail)
            await self._async_webhook_record(None, "rejected", err.detail)
            return web.Response(status=400)
        if event.server_uuid != server.machine_identifier:
            LOGGER.warning(
                "%s: webhook for another server (%s) ignored",
                self.entry.title,
                event.server_title or event.server_uuid,
            )
            await self._async_webhook_record(event, "rejected", "another server")
            return web.Response(status=200)
        key = (event.event, event.rating_key, event.account_id)
        for seen_key, at in list(self._recent_webhooks.items()):
            if now - at > WEBHOOK_DEDUP_SECONDS:
                del self._recent_webhooks[seen_key]
        if key in self._recent_webhooks:
            await self._async_webhook_record(event, "duplicate", None)
            return web.Response(status=200)
        self._recent_webhooks[key] = now
        if event.playback and event.rating_key:
            self.hass.bus.async_fire(EVENT_PLAYBACK, self._playback_data(event))
            self.queue.watch(event.rating_key, source="webhook", event=event.event)
        elif event.event == "library.new" and event.rating_key:
            self.queue.changed(
                event.rating_key,
                parent_id=event.parent_rating_key,
                root_id=event.grandparent_rating_key,
                item_type=_ITEM_TYPES.get(event.item_type or ""),
                source="webhook",
                event=event.event,
            )
        else:
            await self._async_webhook_record(event, "ignored", None)
        return web.Response(status=200)

    def _playback_data(self, event: WebhookEvent) -> dict[str, Any]:
        return {
            "config_entry_id": self.entry.entry_id,
            "server": self.entry.title,
            "machine_identifier": event.server_uuid,
            "event": event.event,
            "rating_key": event.rating_key,
            "kind": event.item_type,
            "title": event.title,
            "show": event.grandparent_title,
            "season": event.parent_index,
            "episode": event.index,
            "account": event.account_title,
            "player": event.player_title,
            "view_offset": event.view_offset,
            "rating": event.user_rating,
        }

    async def _async_webhook_record(
        self, event: WebhookEvent | None, outcome: str, detail: str | None
    ) -> None:
        server = self.coordinator.server
        if server is None:
            return
        row = (
            int(time.time()),
            "webhook",
            event.event if event else "?",
            event.rating_key if event else None,
            outcome,
            detail,
        )
        try:
            await self._async_log(server.server_id, [row])
        except CatalogError as err:
            LOGGER.debug("%s: activity log failed: %s", self.entry.title, err)


async def _read_payload(request: web.Request) -> bytes:
    """Return the `payload` part of a webhook (bounded), or the body when it is JSON."""
    if request.content_length is not None and request.content_length > _MAX_BODY:
        raise WebhookError(f"body of {request.content_length} bytes is too large")
    if not request.content_type.startswith("multipart/"):
        # `read(n)` returns what has arrived (up to n bytes): a body in several chunks needs
        # several reads. One byte past the limit is enough for `parse_webhook` to refuse it.
        body = bytearray()
        while len(body) <= MAX_PAYLOAD and (
            chunk := await request.content.read(MAX_PAYLOAD + 1 - len(body))
        ):
            body.extend(chunk)
        return bytes(body)
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if getattr(part, "name", None) != "payload":
                await part.release()
                continue
            data = bytearray()
            while chunk := await part.read_chunk():  # type: ignore[union-attr]
                data.extend(chunk)
                if len(data) > MAX_PAYLOAD:
                    raise WebhookError("payload part is too large")
            return bytes(data)
    except (ValueError, AssertionError) as err:
        raise WebhookError(f"body is not valid multipart ({err.__class__.__name__})") from None
    raise WebhookError("no payload part")


def folders_to_json(folders: list[MissingFolder]) -> list[dict[str, Any]]:
    """Return missing folders for an event: path, items, files, and since when (ISO)."""
    return [
        {
            "path": folder.path,
            "library": folder.library,
            "items": folder.items,
            "files": folder.files,
            "folders": folder.folders,
            "since": None
            if folder.since is None
            else dt_util.utc_from_timestamp(folder.since).isoformat(),
        }
        for folder in folders
    ]


def watched_to_json(item: Watched) -> dict[str, Any]:
    """Return a watched item as event data (ISO time)."""
    return {
        "rating_key": item.rating_key,
        "kind": item.kind,
        "title": item.title,
        "show": item.show,
        "season": item.season,
        "episode": item.episode,
        "view_count": item.view_count,
        "last_viewed_at": None
        if item.last_viewed_at is None
        else dt_util.utc_from_timestamp(item.last_viewed_at).isoformat(),
        "guids": list(item.guids),
    }


def _activity_rows(
    summary: RefreshSummary, origins: dict[str, tuple[str, str]]
) -> list[tuple[int, str, str, str | None, str, str | None]]:
    """Return what each live update named came to: every webhook; notifications that mattered."""
    now = int(time.time())
    changed = set(summary.changed_keys)
    missing = set(summary.missing)
    watched = {item.rating_key for item in summary.watched}
    not_found = set(summary.not_found)
    failed = summary.status is RunStatus.FAILED
    rows: list[tuple[int, str, str, str | None, str, str | None]] = []
    for key, (source, event) in sorted(origins.items()):
        outcome = "failed" if failed else _outcome(key, changed, missing, watched, not_found)
        if source == "websocket" and outcome in ("unchanged", "not_found"):
            continue
        rows.append((now, source, event, key, outcome, summary.error))
    return rows


def _outcome(
    key: str,
    changed: set[str],
    missing: set[str],
    watched: set[str],
    not_found: Iterable[str],
) -> str:
    if key in missing:
        return "missing"
    if key in watched:
        return "watched"
    if key in changed:
        return "changed"
    if key in not_found:
        return "not_found"
    return "unchanged"
