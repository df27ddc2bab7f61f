"""Digest-based incremental sync of Plex libraries into the catalog.

Movies: a light run lists what Plex updated since the catalog's newest `updatedAt` and checks
Plex's movie count against the catalog's; a full listing (with Media/Part, compared by content
digest) runs when the counts disagree, on deep runs, and at least every FULL_LISTING_MAX_AGE.
Shows: every run lists the shows; only shows whose digest changed, that were never hydrated,
that came back, or whose stored episodes no longer match leafCount are expanded — per show
(children + allLeaves) or by one section-level season and episode listing, whichever handles
fewer items. Deep runs expand everything. Unchanged rows are never rewritten. Items are marked
MISSING only after listings that completed fully, and only when Plex, asked for each of them
by ratingKey (in batches), no longer knows it.

The light pass cannot see a replaced episode file when Plex leaves the episode's and the show's
`updatedAt`, `childCount` and `leafCount` alone: a deep run (which lists every episode with its
parts) finds it. A movie file replaced that way is seen by the next full movie listing.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Callable,
    Collection,
    Mapping,
    Sequence,
)
import contextlib
from dataclasses import asdict, dataclass, field, replace
import hashlib
from itertools import chain, groupby
import logging
import math
from operator import itemgetter
import time
from typing import Any, Final, Literal

import msgspec

from ..paths import PathMapper, PathMapping
from ..plex.client import Listing, PlexClient
from ..plex.errors import PlexAuthError, PlexConnectionError, PlexError
from ..plex.guids import guid_rows
from ..plex.models import ItemKind, ItemProblem, Page, PlexItem, PlexType, Section
from ..store.catalog import CONTENT, PRESENT_STATES, Catalog, CatalogStore, StoredItem
from .policy import ExpandReason, expansion_reason

LOGGER = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS: Final = 30
DEFAULT_EXPAND_CONCURRENCY: Final = 4
# Light runs re-list seasons and episodes updated within this margin below the newest stored
# `updatedAt`: Plex may commit an item with an older `updatedAt` after a newer one (stragglers
# older than that are left to the deep sync). Kept short so that a bulk metadata refresh is
# re-listed once, not on every run.
UPDATED_SINCE_MARGIN: Final = 600
# Light runs of a movie library list only what Plex updated, verified by counts; a full
# listing runs at least this often (seconds) to catch files replaced without an update.
FULL_LISTING_MAX_AGE: Final = 6 * 3600
# Choosing how to expand shows: one request costs about as much as handling this many items.
REQUEST_COST_ITEMS: Final = 20
# Items a complete listing did not return are confirmed by detail requests, this many per
# request, however many there are: nothing is marked MISSING that Plex still answers for.
METADATA_BATCH: Final = 50
# Per library run, this many bad items are logged as warnings; the rest at debug level.
_WARN_LIMIT: Final = 20
# Listing pages fetched and decoded ahead of the store; those waiting are stored together.
READ_AHEAD_PAGES: Final = 8

type Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class ServerContext:
    """A server as the catalog knows it for one round of syncs."""

    server_id: int
    machine_identifier: str
    name: str
    sections: tuple[Section, ...]
    version: str | None = None

    def section(self, key: str) -> Section | None:
        """Return a section by key."""
        return next((section for section in self.sections if section.key == key), None)


@dataclass(slots=True)
class SyncSummary:
    """What one library run did."""

    machine_identifier: str
    library_key: str
    library_title: str
    run_id: int
    deep: bool
    started_at: int
    status: Literal["running", "ok", "failed"] = "running"
    processed: int = 0
    changed: int = 0
    skipped: int = 0
    errors: int = 0
    returned: int = 0
    watch_updated: int = 0
    # Entries of full listings that matched their stored source digest (not even parsed).
    matched: int = 0
    missing_promoted: int = 0
    deleted_promoted: int = 0
    expanded_shows: int = 0
    # How many shows were expanded for each reason (see `policy.ExpandReason`).
    expanded: dict[str, int] = field(default_factory=dict)
    strategy: str | None = None
    requests: int = 0
    total: int | None = None
    finished_at: int | None = None
    last_synced_at: int | None = None
    error: str | None = None

    def counts(self) -> dict[str, int]:
        """Return the counters stored on the run row."""
        return {
            "processed": self.processed,
            "changed": self.changed,
            "skipped": self.skipped,
            "errors": self.errors,
            "returned": self.returned,
            "missing_promoted": self.missing_promoted,
            "deleted_promoted": self.deleted_promoted,
            "requests": self.requests,
        }

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class SyncProgress:
    """A progress report: `library_start`, `page_progress` (after commit) or `library_done`."""

    event: Literal["library_start", "page_progress", "library_done"]
    summary: SyncSummary


type ProgressCallback = Callable[[SyncProgress], None]


# --- rows and digests --------------------------------------------------------------------------


def _digest(values: tuple[Any, ...]) -> str:
    # repr() of a tuple of str, int and None is stable across runs and computed in C.
    return hashlib.blake2b(
        repr(values).encode("utf-8", "surrogatepass"), digest_size=16
    ).hexdigest()


_MSGPACK: Final = msgspec.msgpack.Encoder()


def _content_digest(content: tuple[Any, ...]) -> str:
    # MessagePack of nested tuples of str, int and None is deterministic and about six times
    # cheaper than repr(), which was most of the cost of building a row.
    return hashlib.blake2b(_MSGPACK.encode(content), digest_size=16).hexdigest()


class _Row(msgspec.Struct, gc=False):
    """An item's catalog row, out of the collector's sight like `PlexItem`.

    A cold sync builds one per item, a batch of pages at a time; its tuples hold only scalars.
    """

    item: PlexItem
    values: tuple[Any, ...]
    digest: str
    state: str
    watch: tuple[int | None, int | None, int | None, int | None]
    parts: tuple[tuple[Any, ...], ...]

    def guid_rows(self) -> list[tuple[str, str, str]]:
        """Return the normalized GUIDs to store (parsed only for rows that are written)."""
        return guid_rows(self.item.guid, self.item.guids)


def _show_key(item: PlexItem) -> str | None:
    if item.kind is ItemKind.SEASON:
        return item.parent_rating_key
    if item.kind is ItemKind.EPISODE:
        return item.grandparent_rating_key
    return None


def build_row(item: PlexItem, *, server_id: int, library_id: int, mapper: PathMapper) -> _Row:
    """Turn an item into its catalog row, content digest and state."""
    parts: list[tuple[Any, ...]] = []
    for media_index, media in enumerate(item.media):
        parts.extend(
            (
                media_index,
                part_index,
                media.id,
                part.id,
                part.key,
                part.file,
                part.size,
                part.duration,
                part.container or media.container,
                media.video_codec,
                media.audio_codec,
                media.audio_channels,
                media.video_resolution,
                media.width,
                media.height,
                media.bitrate,
            )
            for part_index, part in enumerate(media.parts)
        )
    values = (
        server_id,
        library_id,
        item.rating_key,
        item.kind.value,
        _show_key(item),
        item.parent_rating_key,
        item.grandparent_rating_key,
        item.title,
        item.parent_title,
        item.grandparent_title,
        item.year,
        item.index,
        item.parent_index,
        item.guid,
        item.duration,
        item.added_at,
        item.updated_at,
        item.originally_available_at,
        item.child_count,
        item.leaf_count,
    )
    # Content digest: everything stored except watch state, state and the catalog's own ids
    # (the GUID list as Plex sends it: what is stored is derived from it).
    digest = _content_digest((values[2:], item.guids, parts))
    state = _state(item, parts, mapper)
    watch = (item.view_count, item.last_viewed_at, item.view_offset, item.viewed_leaf_count)
    return _Row(
        item,
        (*values, *watch, state, digest, item.source_digest),
        digest,
        state,
        watch,
        tuple(parts),
    )


def _state(item: PlexItem, parts: Sequence[tuple[Any, ...]], mapper: PathMapper) -> str:
    if item.kind in (ItemKind.SHOW, ItemKind.SEASON):
        return "ACTIVE"
    files = [part[5] for part in parts if part[5]]
    return _playable_state(files, mapper)


def _playable_state(files: Sequence[str], mapper: PathMapper) -> str:
    if not files:
        return "UNAVAILABLE"
    if mapper.mappings and not any(mapper.resolve(path) is not None for path in files):
        return "REMOTE_ONLY"
    return "ACTIVE"


# --- applying a page (runs on the catalog worker thread, one transaction) --------------------


@dataclass(slots=True)
class _PageResult:
    processed: int = 0
    changed: int = 0
    skipped: int = 0
    errors: int = 0
    returned: int = 0
    watch_updated: int = 0
    seen: list[str] = field(default_factory=list)
    # Shows of this page that need their children listed: rating key → (child, leaf counts),
    # and why (see `policy.expansion_reason`).
    expand: dict[str, tuple[int, int]] = field(default_factory=dict)
    reasons: dict[str, ExpandReason] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    unidentified: int = 0


@dataclass(frozen=True, slots=True)
class _ApplyContext:
    server_id: int
    library_id: int
    run_id: int
    now: int
    deep: bool
    mapper: PathMapper
    label: str


def _apply_page(
    store: CatalogStore, ctx: _ApplyContext, page: Page, hydrated: Sequence[str] = ()
) -> _PageResult:
    """Compare a page with the catalog and write what changed, in one transaction.

    `Page.unchanged` are rating keys whose entries matched their stored source digest: seen,
    and left alone. `hydrated` are shows whose children are all stored once this page is.
    """
    unchanged = page.unchanged
    result = _PageResult(processed=len(unchanged), skipped=len(unchanged), seen=[*unchanged])
    # A paged listing can repeat an item when Plex inserts one before the offset it reached;
    # the last copy stands (inserting both would break the catalog's unique key).
    items = list({item.rating_key: item for item in page.items}.values())
    rows, unbuildable = _build_rows(ctx, items)
    if unbuildable:
        page = replace(page, problems=(*page.problems, *unbuildable))
    inserts: list[_Row] = []
    updates: list[tuple[StoredItem, _Row]] = []
    states: list[tuple[int, str]] = []
    watches: list[tuple[int, tuple[int | None, int | None, int | None, int | None]]] = []
    dehydrate: list[int] = []
    sources: list[tuple[int, bytes | None]] = []
    digests: list[tuple[int, str]] = []
    errors: list[tuple[str, str]] = []
    shows: list[tuple[StoredItem | None, _Row]] = []

    def same_content(old: StoredItem, row: _Row) -> None:
        if old.source_digest != row.item.source_digest:
            # Same content, other entry (watch state, or fields the catalog ignores).
            sources.append((old.id, row.item.source_digest))
        # State and watch state are written independently: an item coming back with
        # another watch state gets both (its entry then matches its source digest).
        if old.state != row.state:
            states.append((old.id, row.state))
            if old.state not in PRESENT_STATES:
                result.returned += 1
        if old.watch != row.watch:
            watches.append((old.id, row.watch))
        if old.state == row.state and old.watch == row.watch:
            result.skipped += 1

    with store.transaction():
        existing = store.lookup(ctx.server_id, [row.item.rating_key for row in rows])
        for row in rows:
            item = row.item
            old = existing.get(item.rating_key)
            result.processed += 1
            result.seen.append(item.rating_key)
            if item.warnings:
                errors.append((item.rating_key, "; ".join(item.warnings)))
            if old is None:
                inserts.append(row)
            elif item.warnings:
                # Malformed data never overwrites what the catalog already holds; a show is
                # still expanded when the run expands it anyway (deep, or not hydrated).
                result.skipped += 1
                if item.kind is ItemKind.SHOW:
                    shows.append((old, row))
                continue
            elif old.digest != row.digest or old.library_id != ctx.library_id:
                updates.append((old, row))
            else:
                same_content(old, row)
            if item.kind is ItemKind.SHOW:
                shows.append((old, row))

        ids = store.insert_items([row.values for row in inserts], ctx.now, ctx.run_id)
        inserted = list(zip(ids, inserts, strict=True))
        # Updated items keep the parts and GUIDs that did not change: rewriting them would
        # touch their indexes for nothing.
        new_parts: list[tuple[int, _Row]] = []
        new_guids: list[tuple[int, list[tuple[str, str, str]]]] = []
        changed: set[int] = set()
        if updates:
            stored = store.stored_content([old.id for old, _ in updates])
            changes: list[tuple[int, tuple[Any, ...], tuple[Any, ...]]] = []
            for old, row in updates:
                # Looked up in this transaction: the row is there.
                before = stored[old.id]
                same_parts = before.parts == row.parts
                guids = row.guid_rows()
                same_guids = before.guids == frozenset(guids)
                if same_parts and same_guids and before.values[:CONTENT] == row.values[:CONTENT]:
                    # Another digest for the same content: one an older Retrovue computed, or
                    # the GUIDs listed in another order. Not a change.
                    digests.append((old.id, row.digest))
                    same_content(old, row)
                    continue
                changed.add(old.id)
                if old.state not in PRESENT_STATES:
                    result.returned += 1
                changes.append((old.id, row.values, before.values))
                if not same_parts:
                    new_parts.append((old.id, row))
                if not same_guids:
                    new_guids.append((old.id, guids))
            store.update_items(changes, ctx.now, ctx.run_id)
        for old, row in shows:
            _consider_show(ctx, row.item, old, old is None or old.id in changed, result, dehydrate)
        if inserted or new_parts:
            store.replace_parts(
                [item_id for item_id, _ in new_parts],
                (
                    (item_id, ctx.server_id, *part)
                    for item_id, row in chain(inserted, new_parts)
                    for part in row.parts
                ),
            )
        if inserted or new_guids:
            store.replace_guids(
                [item_id for item_id, _ in new_guids],
                chain(
                    ((item_id, *guid) for item_id, row in inserted for guid in row.guid_rows()),
                    ((item_id, *guid) for item_id, guids in new_guids for guid in guids),
                ),
            )
        if states:
            store.set_states(states, ctx.now, ctx.run_id)
        if watches:
            store.update_watch(watches, ctx.now, ctx.run_id)
        if dehydrate:
            store.set_children_hydrated(dehydrate, hydrated=False)
        if hydrated:
            store.mark_hydrated(ctx.server_id, hydrated)
        if sources:
            store.set_source_digests(sources)
        if digests:
            store.set_digests(digests)
        for problem in page.problems:
            if problem.rating_key is None:
                result.unidentified += 1
            else:
                result.seen.append(problem.rating_key)
                errors.append((problem.rating_key, problem.message))
            result.problems.append(
                f"{problem.title or '(untitled)'} [ratingKey {problem.rating_key or '?'}]: "
                f"{problem.message}"
            )
        if errors:
            store.record_errors(ctx.server_id, errors, ctx.now)
        wrote_children = any(
            row.item.kind in _CHILD_KINDS for row in chain(inserts, (r for _, r in updates))
        )
        if wrote_children or states:
            # A child stored under a MISSING show or season proves the parent is there.
            result.returned += store.revive_parents(ctx.library_id, ctx.now, ctx.run_id)
    result.changed = len(inserts) + len(changed)
    result.watch_updated = len(watches)
    result.errors = len(errors) + result.unidentified
    result.problems[:0] = [
        f"{row.item.title or '(untitled)'} [ratingKey {row.item.rating_key}]: "
        f"{'; '.join(row.item.warnings)}"
        for row in rows
        if row.item.warnings
    ]
    return result


def _build_rows(
    ctx: _ApplyContext, items: Sequence[PlexItem]
) -> tuple[list[_Row], list[ItemProblem]]:
    """Build the rows of a page's items; an item that cannot be stored becomes a problem."""
    rows: list[_Row] = []
    problems: list[ItemProblem] = []
    for item in items:
        try:
            rows.append(
                build_row(
                    item, server_id=ctx.server_id, library_id=ctx.library_id, mapper=ctx.mapper
                )
            )
        except (ValueError, TypeError, OverflowError, RecursionError) as err:
            problems.append(
                ItemProblem(item.rating_key, item.title, f"cannot be stored: {err!s:.160}")
            )
    return rows, problems


_CHILD_KINDS: Final = frozenset({ItemKind.SEASON, ItemKind.EPISODE})


def _consider_show(
    ctx: _ApplyContext,
    item: PlexItem,
    old: StoredItem | None,
    changed: bool,
    result: _PageResult,
    dehydrate: list[int],
) -> None:
    reason = expansion_reason(deep=ctx.deep, stored=old, content_changed=changed)
    if reason is None:
        return
    child, leaf = item.child_count or 0, item.leaf_count or 0
    LOGGER.debug(
        "%s: expanding %s [ratingKey %s]: %s (childCount %d, leafCount %d)",
        ctx.label,
        item.title,
        item.rating_key,
        reason,
        child,
        leaf,
    )
    result.expand[item.rating_key] = (child, leaf)
    result.reasons[item.rating_key] = reason
    if old is not None and old.children_hydrated:
        dehydrate.append(old.id)


def _mark_hydrated(store: CatalogStore, server_id: int, show_keys: Sequence[str]) -> None:
    with store.transaction():
        store.mark_hydrated(server_id, show_keys)


def _record_errors(
    store: CatalogStore, server_id: int, errors: Sequence[tuple[str, str]], now: int
) -> None:
    with store.transaction():
        store.record_errors(server_id, errors, now)


def _finalize(
    store: CatalogStore,
    ctx: _ApplyContext,
    seen: set[str],
    expanded: set[str],
    retention_seconds: int,
    mappings_digest: str,
    remap: bool,
    full_listing: bool,
    check_missing: bool,
    light_since: int | None,
) -> tuple[int, int]:
    with store.transaction():
        if remap:
            _restate_library(store, ctx)
        # A run verified by counts instead of a full listing saw only what changed: it may
        # promote DELETED items but never mark anything MISSING. Neither does a full listing
        # that saw every present item (`check_missing` is then False).
        missing, deleted = store.finalize_library(
            ctx.library_id,
            seen,
            expanded,
            ctx.now,
            retention_seconds,
            ctx.run_id,
            mark_missing=check_missing,
        )
        store.revive_parents(ctx.library_id, ctx.now, ctx.run_id)
        store.mark_library_synced(
            ctx.library_id,
            ctx.now,
            complete=True,
            deep=ctx.deep,
            mappings_digest=mappings_digest,
            full_listing=full_listing,
            light_since=light_since,
        )
    return missing, deleted


def _restate_library(store: CatalogStore, ctx: _ApplyContext) -> None:
    """Recompute ACTIVE/REMOTE_ONLY/UNAVAILABLE for every present item after a mapping change.

    Items this run wrote were judged with the current mappings already. The rest are taken
    one item at a time from rows of scalars: a library's worth of path lists held at once would
    be promoted to the collector's oldest generation and bring on a full collection on the
    event loop's process.
    """
    changes: list[tuple[int, str]] = []
    rows = store.parts_of_library(ctx.library_id, unless_run=ctx.run_id)
    for item_id, group in groupby(rows, key=itemgetter(0)):
        parts = list(group)
        state = _playable_state([path for _, _, path in parts if path], ctx.mapper)
        if state != parts[0][1]:
            changes.append((item_id, state))
    if changes:
        store.set_states(changes, ctx.now, ctx.run_id)


@dataclass(frozen=True, slots=True)
class _RunSetup:
    library_id: int
    mappings_digest: str | None
    mappings: list[PathMapping]
    watermark: int | None
    movie_watermark: int | None
    last_full_listing_at: int | None


def light_window_start(light_since: int | None, newest_stored: int | None) -> int | None:
    """Return the `updatedAt` from which a light run lists changes, or None for no window.

    The server's clock when the last successful run began (`light_since`) is where the window
    starts; a catalog that never recorded it falls back to the newest stored `updatedAt`.
    Either way UPDATED_SINCE_MARGIN is taken off for changes Plex commits late.
    """
    start = light_since if light_since is not None else newest_stored
    return None if start is None else max(start - UPDATED_SINCE_MARGIN, 0)


def _load_run_setup(store: CatalogStore, server_id: int, section_key: str) -> _RunSetup:
    library = next(
        (lib for lib in store.libraries(server_id) if lib.section_key == section_key), None
    )
    if library is None:
        raise KeyError(section_key)
    return _RunSetup(
        library_id=library.id,
        mappings_digest=library.mappings_digest,
        mappings=store.path_mappings(server_id),
        watermark=light_window_start(
            library.light_since, store.watermark(library.id, ("season", "episode"))
        ),
        movie_watermark=light_window_start(
            library.light_since, store.watermark(library.id, ("movie",))
        ),
        last_full_listing_at=library.last_full_listing_at,
    )


async def read_batches(
    listing: AsyncIterable[Page], *, entries: int, depth: int = READ_AHEAD_PAGES
) -> AsyncIterator[list[Page]]:
    """Iterate a listing in batches of the pages fetched so far (one at least).

    A producer keeps up to `depth` pages fetched and decoded ahead of the caller, so fetching
    overlaps storing (SQLite releases the GIL). When storing is the slower side, as in a cold
    sync, pages queue up and the caller gets them together, about `entries` entries at most,
    to store in one transaction: each commit then writes the pages of the randomly ordered
    indexes (GUIDs by provider and value) once for several listing pages instead of once per
    page. When fetching is the slower side, every batch is a single page, stored at once.
    An error of the listing comes after the pages fetched before it.
    """
    queue: asyncio.Queue[Page | Exception | None] = asyncio.Queue(depth)

    async def produce() -> None:
        iterator = aiter(listing)
        try:
            async for page in iterator:
                await queue.put(page)
        except Exception as err:  # noqa: BLE001 - handed to the consumer, which raises it
            await queue.put(err)
            return
        finally:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                await aclose()
        await queue.put(None)

    producer = asyncio.ensure_future(produce())
    try:
        failure: Exception | None = None
        finished = False
        while not finished:
            batch: list[Page] = []
            size = 0
            element = await queue.get()
            while True:
                if element is None or isinstance(element, Exception):
                    failure = element
                    finished = True
                    break
                batch.append(element)
                size += element.received
                if size >= entries or queue.empty():
                    break
                element = queue.get_nowait()
            if batch:
                yield batch
        if failure is not None:
            raise failure
    finally:
        if not producer.done():
            producer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await producer


def _merged(pages: Sequence[Page]) -> Page:
    """Return several pages as one (to store them in one transaction)."""
    if len(pages) == 1:
        return pages[0]
    return Page(
        items=tuple(item for page in pages for item in page.items),
        problems=tuple(problem for page in pages for problem in page.problems),
        offset=0,
        received=sum(page.received for page in pages),
        total_size=None,
        unchanged=tuple(key for page in pages for key in page.unchanged),
    )


@dataclass(frozen=True, slots=True)
class ShowPages:
    """A show's season and episode pages, with how many of each Plex returned."""

    pages: list[Page]
    seasons: int
    episodes: int

    def short_of(self, child_count: int, leaf_count: int) -> str | None:
        """Return why the expansion falls short of the show's own counts, or None."""
        if self.seasons >= child_count and self.episodes >= leaf_count:
            return None
        return (
            f"expansion returned {self.seasons} of {child_count} seasons and "
            f"{self.episodes} of {leaf_count} episodes"
        )


async def fetch_show_pages(
    client: PlexClient, show_key: str, known: Mapping[bytes, str] | None = None
) -> ShowPages:
    """Return every page of a show's seasons and episodes; raise if either listing was cut.

    Entries matching `known` source digests are not parsed (see `PlexClient.section_items`).
    """
    pages: list[Page] = []
    received: list[int] = []
    for listing in (
        client.children(show_key, known=known),
        client.all_leaves(show_key, known=known),
    ):
        pages.extend([page async for page in listing])
        if not listing.stats.complete:
            raise PlexError("a listing ended early", server=client.name, endpoint=show_key)
        received.append(listing.stats.received)
    return ShowPages(pages, received[0], received[1])


# --- the public entry points ---------------------------------------------------------------


async def prepare_server(
    client: PlexClient, catalog: Catalog, *, clock: Clock = time.time
) -> ServerContext:
    """Read the server's identity and sections and record them in the catalog."""
    identity = await client.server_info()
    sections = tuple(await client.sections())
    now = int(clock())
    server_id = await catalog.call(CatalogStore.upsert_server, identity, client.url, now)
    await catalog.call(CatalogStore.sync_sections, server_id, sections, now)
    name = identity.friendly_name or identity.machine_identifier
    client.with_name(name)
    return ServerContext(
        server_id=server_id,
        machine_identifier=identity.machine_identifier,
        name=name,
        sections=tuple(section for section in sections if section.supported),
        version=identity.version,
    )


async def sync_library(
    client: PlexClient,
    catalog: Catalog,
    server: ServerContext,
    section_key: str,
    *,
    deep: bool = False,
    retention_days: float = DEFAULT_RETENTION_DAYS,
    progress: ProgressCallback | None = None,
    expand_concurrency: int = DEFAULT_EXPAND_CONCURRENCY,
    clock: Clock = time.time,
) -> SyncSummary:
    """Sync one library section; return its summary.

    Raises `PlexAuthError` and `PlexConnectionError` (after recording the run as failed);
    other problems end the run as failed and come back in the summary.
    """
    section = server.section(section_key)
    if section is None:
        raise KeyError(f"{server.name} has no movie or show library {section_key!r}")
    run = _LibraryRun(
        client,
        catalog,
        server,
        section,
        deep,
        retention_days,
        progress,
        expand_concurrency,
        clock,
    )
    return await run.run()


class _IncompleteError(Exception):
    """The listing did not complete; nothing may be marked MISSING."""


class _LibraryRun:
    """State of one library sync."""

    def __init__(
        self,
        client: PlexClient,
        catalog: Catalog,
        server: ServerContext,
        section: Section,
        deep: bool,
        retention_days: float,
        progress: ProgressCallback | None,
        expand_concurrency: int,
        clock: Clock,
    ) -> None:
        self.client = client
        self.catalog = catalog
        self.server = server
        self.section = section
        self.deep = deep
        self.retention_seconds = int(retention_days * 86400)
        self.progress = progress
        self.expand_concurrency = max(1, expand_concurrency)
        self.clock = clock
        self.label = f"{server.name} / {section.title}"
        self.seen: set[str] = set()
        self.expanded: set[str] = set()
        self.incomplete: list[str] = []
        self.logged_problems = 0
        self.watermark: int | None = None
        # The server's clock before this run's first request (see `light_window_start`).
        self.light_since = client.server_time
        self.full_listing = True
        # Every movie, or every show with all its seasons and episodes, was listed.
        self.whole_library = False
        self.setup: _RunSetup
        self.summary: SyncSummary
        self.ctx: _ApplyContext

    def _emit(self, event: Literal["library_start", "page_progress", "library_done"]) -> None:
        if self.progress is None:
            return
        try:
            self.progress(SyncProgress(event, self.summary))
        except Exception:
            LOGGER.exception("%s: progress callback failed", self.label)

    async def run(self) -> SyncSummary:
        now = int(self.clock())
        setup = await self.catalog.call(_load_run_setup, self.server.server_id, self.section.key)
        self.setup = setup
        library_id = setup.library_id
        self.watermark = setup.watermark
        mapper = PathMapper(setup.mappings)
        mappings_digest = _digest(
            tuple((mapping.plex_prefix, mapping.local_prefix) for mapping in mapper.mappings)
        )
        run_id = await self.catalog.call(
            CatalogStore.start_run, self.server.server_id, library_id, self.deep, now
        )
        self.ctx = _ApplyContext(
            server_id=self.server.server_id,
            library_id=library_id,
            run_id=run_id,
            now=now,
            deep=self.deep,
            mapper=mapper,
            label=self.label,
        )
        self.summary = SyncSummary(
            machine_identifier=self.server.machine_identifier,
            library_key=self.section.key,
            library_title=self.section.title,
            run_id=run_id,
            deep=self.deep,
            started_at=now,
        )
        requests_before = self.client.requests.total()
        LOGGER.debug("%s: sync started (deep=%s)", self.label, self.deep)
        self._emit("library_start")
        try:
            if self.section.type == "movie":
                await self._sync_movies()
            else:
                await self._sync_shows()
            if self.incomplete:
                raise _IncompleteError("; ".join(self.incomplete))
            check_missing = self.full_listing and not await self._all_seen()
            if check_missing:
                await self._confirm_missing()
            missing, deleted = await self.catalog.call(
                _finalize,
                self.ctx,
                self.seen,
                self.expanded,
                self.retention_seconds,
                mappings_digest,
                mappings_digest != setup.mappings_digest,
                self.full_listing,
                check_missing,
                self.light_since,
            )
            self.summary.missing_promoted = missing
            self.summary.deleted_promoted = deleted
            self.summary.status = "ok"
            self.summary.last_synced_at = now
        except (PlexAuthError, PlexConnectionError) as err:
            await self._fail(str(err), requests_before)
            raise
        except (PlexError, _IncompleteError) as err:
            await self._fail(str(err), requests_before)
            return self.summary
        except Exception as err:
            # A fault of our own or of the catalog: it ends this run, recorded as failed,
            # and never leaves the engine untyped.
            LOGGER.exception("%s: sync failed unexpectedly", self.label)
            await self._fail(f"internal error: {err.__class__.__name__}: {err}", requests_before)
            return self.summary
        except BaseException as err:
            await self._fail(f"aborted: {err.__class__.__name__}", requests_before)
            raise
        await self._finish(requests_before)
        LOGGER.debug(
            "%s: sync done: %d processed, %d changed, %d skipped, %d errors, "
            "%d missing, %d deleted, %d requests",
            self.label,
            self.summary.processed,
            self.summary.changed,
            self.summary.skipped,
            self.summary.errors,
            self.summary.missing_promoted,
            self.summary.deleted_promoted,
            self.summary.requests,
        )
        self._emit("library_done")
        return self.summary

    async def _finish(self, requests_before: int) -> None:
        self.summary.requests = self.client.requests.total() - requests_before
        self.summary.finished_at = int(self.clock())
        await self.catalog.call(
            CatalogStore.finish_run,
            self.summary.run_id,
            self.summary.status,
            self.summary.counts(),
            self.summary.error,
            self.summary.finished_at,
        )

    async def _fail(self, error: str, requests_before: int) -> None:
        self.summary.status = "failed"
        self.summary.error = error
        LOGGER.warning("%s: sync failed, nothing marked missing: %s", self.label, error)
        # Record the failure even when the task is being cancelled.
        await asyncio.shield(self._finish(requests_before))
        self._emit("library_done")

    # --- listings ------------------------------------------------------------------------

    async def _all_seen(self) -> bool:
        """Return whether a run that listed the whole library saw every present item.

        Without a bad entry, every key a run saw is a present item of this library, so equal
        counts mean that nothing is missing, and the checks item by item can be skipped.
        """
        if not self.whole_library or self.summary.errors:
            return False
        present = await self.catalog.call(CatalogStore.present_count, self.ctx.library_id)
        return present == len(self.seen)

    async def _confirm_missing(self) -> None:
        """Ask Plex directly about items the listing did not return before calling them missing.

        A listing can skip an item when the library changes between two pages (offsets shift).
        Items Plex still knows are applied like any listed item and count as seen.
        """
        candidates = await self.catalog.call(
            CatalogStore.missing_candidates, self.ctx.library_id, self.seen, self.expanded
        )
        if not candidates:
            return
        LOGGER.debug(
            "%s: confirming %d items the listing did not return", self.label, len(candidates)
        )
        for start in range(0, len(candidates), METADATA_BATCH):
            page = await self.client.metadata(candidates[start : start + METADATA_BATCH])
            if page.items:
                LOGGER.debug(
                    "%s: %d items missing from the listing still exist",
                    self.label,
                    len(page.items),
                )
                await self._apply(page)

    async def _known(
        self,
        *kinds: ItemKind,
        show_keys: Sequence[str] | None = None,
        hydrated_only: bool = False,
    ) -> dict[bytes, str]:
        """Return the source digests of the library's present items of some kinds (→ key).

        A listing given these parses only the entries that differ from them (see
        `CatalogStore.source_digests` for `show_keys` and `hydrated_only`).
        """
        return await self.catalog.call(
            CatalogStore.source_digests,
            self.ctx.library_id,
            tuple(kind.value for kind in kinds),
            show_keys,
            hydrated_only=hydrated_only,
        )

    @property
    def _batch_entries(self) -> int:
        """Return how many listing entries one transaction may store at most."""
        return READ_AHEAD_PAGES * self.client.page_size

    async def _apply(self, page: Page, hydrated: Sequence[str] = ()) -> _PageResult:
        result = await self.catalog.call(_apply_page, self.ctx, page, hydrated)
        summary = self.summary
        summary.processed += result.processed
        summary.changed += result.changed
        summary.skipped += result.skipped
        summary.errors += result.errors
        summary.returned += result.returned
        summary.watch_updated += result.watch_updated
        summary.matched += len(page.unchanged)
        self.seen.update(result.seen)
        for problem in result.problems:
            self._log_problem(problem)
        if result.unidentified:
            self.incomplete.append(
                f"{result.unidentified} entries without ratingKey: the listing is not complete"
            )
        self._emit("page_progress")
        return result

    def _log_problem(self, problem: str) -> None:
        self.logged_problems += 1
        if self.logged_problems <= _WARN_LIMIT:
            LOGGER.warning("%s: bad item %s", self.label, problem)
            if self.logged_problems == _WARN_LIMIT:
                LOGGER.warning("%s: further bad items are logged at debug level", self.label)
        else:
            LOGGER.debug("%s: bad item %s", self.label, problem)

    async def _consume(self, listing: Listing, *, top_level: bool) -> list[_PageResult]:
        """Apply every page of a listing, then check the listing really was complete."""
        results: list[_PageResult] = []
        keys: set[str] = set()
        async for batch in read_batches(listing, entries=self._batch_entries):
            if top_level and self.summary.total is None:
                self.summary.total = batch[0].total_size
            result = await self._apply(_merged(batch))
            keys.update(result.seen)
            results.append(result)
        stats = listing.stats
        if not stats.complete:
            self.incomplete.append("listing ended early")
        elif stats.last_total is not None and len(keys) < stats.last_total:
            # The library changed while it was listed (offsets shifted), or the server counts
            # an entry it never sends: what was not seen is asked for one by one before
            # anything is marked MISSING (`_confirm_missing`), so the run still completes.
            LOGGER.debug(
                "%s: listing returned %d distinct items of %d",
                self.label,
                len(keys),
                stats.last_total,
            )
        return results

    async def _sync_movies(self) -> None:
        """List the movies Plex updated since the last run, or all of them when needed.

        The short way holds only while Plex's movie count equals the catalog's; otherwise, on
        deep runs, and at least every FULL_LISTING_MAX_AGE (which catches files replaced
        without an `updatedAt` change), every movie is listed.
        """
        setup = self.setup
        recent = (
            setup.last_full_listing_at is not None
            and self.ctx.now - setup.last_full_listing_at < FULL_LISTING_MAX_AGE
        )
        if not self.deep and recent and setup.movie_watermark is not None:
            since = {"updatedAt>>": str(setup.movie_watermark)}
            listing = self.client.section_items(self.section.key, PlexType.MOVIE, filters=since)
            async for batch in read_batches(listing, entries=self._batch_entries):
                await self._apply(_merged(batch))
            if listing.stats.complete and not self.incomplete:
                on_server = await self.client.count(self.section.key, PlexType.MOVIE)
                stored = await self.catalog.call(
                    CatalogStore.present_count, self.ctx.library_id, ("movie",)
                )
                if on_server is not None and on_server == stored:
                    self.full_listing = False
                    self.summary.total = self.summary.processed
                    return
                LOGGER.debug(
                    "%s: %s movies on the server, %d in the catalog: listing all",
                    self.label,
                    on_server,
                    stored,
                )
        listing = self.client.section_items(
            self.section.key, PlexType.MOVIE, known=await self._known(ItemKind.MOVIE)
        )
        await self._consume(listing, top_level=True)
        self.whole_library = True

    async def _sync_shows(self) -> None:
        # Light runs skip the shows whose entries did not change and whose children are all
        # stored: nothing about them needs a decision. Deep runs look at every show.
        known = None if self.deep else await self._known(ItemKind.SHOW, hydrated_only=True)
        listing = self.client.section_items(self.section.key, PlexType.SHOW, known=known)
        results = await self._consume(listing, top_level=True)
        expand: dict[str, tuple[int, int]] = {}
        reasons: dict[str, ExpandReason] = {}
        for result in results:
            expand.update(result.expand)
            reasons.update(result.reasons)
        if not self.deep:
            await self._recently_updated(expand.keys())
            # Self-healing: a show whose stored episodes no longer add up to Plex's leafCount
            # (an episode added and another removed leave the count, and often updatedAt,
            # unchanged) is expanded too.
            for show_key, counts in (
                await self.catalog.call(CatalogStore.drifted_shows, self.ctx.library_id)
            ).items():
                # Only shows this run's listing returned: one gone since is judged by the
                # finalize, not expanded into a 404.
                if show_key not in expand and show_key in self.seen:
                    LOGGER.debug(
                        "%s: expanding show [ratingKey %s]: %s (childCount %d, leafCount %d "
                        "against the episodes stored)",
                        self.label,
                        show_key,
                        ExpandReason.DRIFTED,
                        *counts,
                    )
                    expand[show_key] = counts
                    reasons[show_key] = ExpandReason.DRIFTED
        self.summary.expanded = dict(Counter(reasons.values()))
        if not expand:
            return
        seasons, episodes = await self.catalog.call(CatalogStore.show_totals, self.ctx.library_id)
        page = self.client.page_size
        # Cost in items handled, a request counting as REQUEST_COST_ITEMS: per show, only the
        # expanded shows' children; section-wide, every season and episode of the library.
        per_show = sum(
            child
            + leaf
            + REQUEST_COST_ITEMS
            * (math.ceil(max(child, 1) / page) + math.ceil(max(leaf, 1) / page))
            for child, leaf in expand.values()
        )
        section_wide = (
            seasons
            + episodes
            + REQUEST_COST_ITEMS
            * (math.ceil(max(seasons, 1) / page) + math.ceil(max(episodes, 1) / page))
        )
        self.summary.expanded_shows = len(expand)
        if self.summary.total is not None:
            self.summary.total += sum(child + leaf for child, leaf in expand.values())
        if section_wide < per_show:
            self.summary.strategy = "section"
            listed = {key for result in results for key in result.seen}
            await self._expand_section(list(expand), listed)
        else:
            self.summary.strategy = "per_show"
            await self._expand_shows(expand)

    async def _recently_updated(self, expanding: Collection[str]) -> None:
        """List seasons and episodes Plex updated since the catalog's newest, minus a margin.

        Plex does not reliably touch a show when one of its episodes changes, so the show
        digest alone would miss an edited episode. The watermark is Plex's own clock (the
        newest `updatedAt` stored), so the two clocks never need to agree. Entries of the
        shows in `expanding` are left to their expansion, which lists them all anyway.
        """
        if self.watermark is None:
            return
        since = {"updatedAt>>": str(self.watermark)}
        for plex_type in (PlexType.SEASON, PlexType.EPISODE):
            listing = self.client.section_items(self.section.key, plex_type, filters=since)
            async for batch in read_batches(listing, entries=self._batch_entries):
                page = _merged(batch)
                # Entries of shows this run's show listing did not return (Plex added the
                # show since) wait for the run that lists the show; entries of shows the run
                # expands are left to that expansion.
                page = replace(
                    page,
                    items=tuple(
                        i
                        for i in page.items
                        if _show_key(i) in self.seen and _show_key(i) not in expanding
                    ),
                )
                await self._apply(page)
            if not listing.stats.complete:
                self.incomplete.append("recently-updated listing ended early")

    async def _expand_section(self, show_keys: list[str], listed: set[str]) -> None:
        """List every season and episode of the section (cold and deep runs)."""
        before = len(self.incomplete)
        for plex_type in (PlexType.SEASON, PlexType.EPISODE):
            known = await self._known(plex_type.kind)
            await self._consume(
                self.client.section_items(self.section.key, plex_type, known=known),
                top_level=False,
            )
            del known
        if len(self.incomplete) > before:
            return
        # Every show's children were listed: all listed shows count as expanded, but for
        # those that now hold fewer seasons or episodes than their own counts (see
        # `ShowPages.short_of`): not hydrated, so expanded again next run. Their children are
        # judged like all others, with the confirmation that guards every MISSING.
        short = await self.catalog.call(CatalogStore.short_shows, self.ctx.library_id, show_keys)
        for show_key, reason in short.items():
            await self._expansion_short(show_key, reason)
        self.expanded.update(listed)
        self.whole_library = True
        await self.catalog.call(
            _mark_hydrated, self.server.server_id, [key for key in show_keys if key not in short]
        )

    async def _expand_shows(self, expected: Mapping[str, tuple[int, int]]) -> None:
        """Expand a few shows, each with its season and episode listings.

        `expected` holds each show's childCount and leafCount: an expansion that returns
        fewer seasons or episodes is stored but not taken as complete (see `ShowPages`).
        """
        show_keys = list(expected)
        semaphore = asyncio.Semaphore(self.expand_concurrency)
        known = await self._known(ItemKind.SEASON, ItemKind.EPISODE, show_keys=show_keys)

        async def fetch(show_key: str) -> tuple[str, ShowPages | PlexError]:
            async with semaphore:
                try:
                    return show_key, await fetch_show_pages(self.client, show_key, known)
                except (PlexAuthError, PlexConnectionError):
                    raise
                except PlexError as err:
                    return show_key, err

        # Shows are stored in batches of about a page (one transaction each), not one
        # transaction per show page; a show counts as expanded once its batch is stored.
        batch: list[Page] = []
        batch_shows: list[str] = []
        short_shows: list[str] = []

        async def store_batch() -> None:
            if not batch and not batch_shows and not short_shows:
                return
            await self._apply(_merged(batch), hydrated=list(batch_shows))
            self.expanded.update(batch_shows, short_shows)
            batch.clear()
            batch_shows.clear()
            short_shows.clear()

        tasks = [asyncio.ensure_future(fetch(key)) for key in show_keys]
        try:
            for next_done in asyncio.as_completed(tasks):
                show_key, outcome = await next_done
                if isinstance(outcome, PlexError):
                    self._expansion_failed(show_key, outcome)
                    await self.catalog.call(
                        _record_errors,
                        self.server.server_id,
                        [(show_key, f"expansion failed: {outcome.detail}")],
                        self.ctx.now,
                    )
                    continue
                batch.extend(outcome.pages)
                if short := outcome.short_of(*expected[show_key]):
                    await self._expansion_short(show_key, short)
                    # Not hydrated, but its children are judged like any expanded show's:
                    # the confirmation keeps a short answer from marking anything MISSING.
                    short_shows.append(show_key)
                else:
                    batch_shows.append(show_key)
                if sum(page.received for page in batch) >= self.client.page_size:
                    await store_batch()
            await store_batch()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _expansion_short(self, show_key: str, short: str) -> None:
        """Leave a show whose expansion fell short un-hydrated, to be expanded again."""
        self.summary.errors += 1
        LOGGER.warning(
            "%s: show %s: %s; it is expanded again next time", self.label, show_key, short
        )
        await self.catalog.call(
            _record_errors, self.server.server_id, [(show_key, short)], self.ctx.now
        )

    def _expansion_failed(self, show_key: str, error: PlexError) -> None:
        self.summary.errors += 1
        self.incomplete.append(f"show {show_key} could not be expanded: {error.detail}")
        LOGGER.warning("%s: show %s could not be expanded: %s", self.label, show_key, error)


@dataclass(slots=True)
class RefreshSummary:
    """What a targeted refresh did."""

    requested: list[str]
    found: int = 0
    changed: int = 0
    skipped: int = 0
    errors: int = 0
    not_found: list[str] = field(default_factory=list)
    run_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict."""
        return asdict(self)


async def refresh_items(
    client: PlexClient,
    catalog: Catalog,
    server: ServerContext,
    rating_keys: Sequence[str],
    *,
    clock: Clock = time.time,
) -> RefreshSummary:
    """Re-read some items (movie, show, season or episode) through the same digest and upsert.

    Shows and seasons bring their children. Nothing is marked MISSING: keys the server no
    longer knows are reported in `not_found` and left to the next complete listing.
    """
    keys = list(dict.fromkeys(rating_keys))
    summary = RefreshSummary(requested=keys)
    now = int(clock())
    libraries = {
        lib.section_key: lib.id
        for lib in await catalog.call(CatalogStore.libraries, server.server_id)
    }
    mappings = await catalog.call(CatalogStore.path_mappings, server.server_id)
    run_id = await catalog.call(
        CatalogStore.start_run, server.server_id, None, False, now, "refresh"
    )
    summary.run_id = run_id
    mapper = PathMapper(mappings)
    status = "failed"
    error: str | None = None
    try:
        found: list[PlexItem] = []
        for start in range(0, len(keys), METADATA_BATCH):
            page = await client.metadata(keys[start : start + METADATA_BATCH])
            found.extend(page.items)
        seen = {item.rating_key for item in found}
        summary.not_found = [key for key in keys if key not in seen]
        summary.found = len(found)
        for item in found:
            library_id = libraries.get(item.section_key or "")
            if library_id is None:
                summary.errors += 1
                LOGGER.warning(
                    "%s: %s [ratingKey %s] is in no synced library (section %s)",
                    server.name,
                    item.title,
                    item.rating_key,
                    item.section_key,
                )
                continue
            ctx = _ApplyContext(
                server_id=server.server_id,
                library_id=library_id,
                run_id=run_id,
                now=now,
                deep=False,
                mapper=mapper,
                label=f"{server.name} / section {item.section_key}",
            )
            pages = [Page((item,), (), 0, 1, 1)]
            hydrated = [item.rating_key] if item.kind is ItemKind.SHOW else []
            if item.kind is ItemKind.SHOW:
                show = await fetch_show_pages(client, item.rating_key)
                pages.extend(show.pages)
                if short := show.short_of(item.child_count or 0, item.leaf_count or 0):
                    # Stored, but not taken as all of the show's children: the next sync
                    # expands it again.
                    LOGGER.warning(
                        "%s: %s [ratingKey %s]: %s", server.name, item.title, item.rating_key, short
                    )
                    hydrated = []
            elif item.kind is ItemKind.SEASON:
                pages.extend([page async for page in client.children(item.rating_key)])
            # One transaction per item; a show is hydrated in it with its children.
            result = await catalog.call(_apply_page, ctx, _merged(pages), hydrated)
            summary.changed += result.changed
            summary.skipped += result.skipped
            summary.errors += result.errors
        status = "ok"
    except PlexError as err:
        error = str(err)
        raise
    finally:
        counts = {
            "processed": summary.found,
            "changed": summary.changed,
            "skipped": summary.skipped,
            "errors": summary.errors,
            "requests": 0,
        }
        await asyncio.shield(
            catalog.call(CatalogStore.finish_run, run_id, status, counts, error, int(clock()))
        )
    return summary
