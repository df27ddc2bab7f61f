"""Digest-based incremental sync of Plex libraries into the catalog: the runs.

A run lists, asks `engine.policy` what to do with what it found, and has the store apply the
answers (`engine/store/writes.py`). What each decision is, and why, is in `engine.policy`:

- Movies (`policy.movie_listing`): a light run lists what Plex updated since the server's clock
  at the last successful run (minus a margin) and checks Plex's movie count against the
  catalog's; everything is listed (with Media/Part, compared by content digest) when the counts
  disagree, on deep runs, and at least every FULL_LISTING_MAX_AGE.
- Shows (`policy.expansion_reason`): every run lists the shows; a show is expanded when it is
  new, came back, changed, was never hydrated, drifted from its leafCount (`policy.drifted`),
  or the run is deep. Expansions are fetched per show or section-wide, whichever handles fewer
  items (`policy.expansion_fetch`). Each is logged at debug level with its reason and counted
  in the summary's `expanded`. Unchanged rows are never rewritten.
- States (`policy.item_state`): a library's files are judged with its own mappings
  (`policy.library_mappings`: the server's when one covers its folders, none otherwise); when
  they differ from those of its last complete run, the run restates the library as it finishes.
- MISSING (`policy.missing_check`, `policy.judged`): only a run whose listings all completed
  and that listed the whole library may mark anything MISSING. It asks Plex by ratingKey (in
  batches of METADATA_BATCH) for every present item it did not see and that the rule judges,
  however many there are; what Plex no longer knows is marked MISSING, what it still knows is
  applied like a listed item. A failed, partial or aborted run marks nothing and is recorded
  as failed.

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
import logging
import time
from typing import Any, Final, Literal

from ..paths import PathMapper
from ..plex.client import Listing, PlexClient
from ..plex.errors import PlexAuthError, PlexConnectionError, PlexError
from ..plex.models import ItemKind, Page, PlexType, Section
from ..policy import (
    ExpandReason,
    Fetch,
    MissingCheck,
    MovieListing,
    expansion_fetch,
    light_listing_holds,
    missing_check,
    movie_listing,
    saw_every_present_item,
)
from ..states import RunStatus
from ..store import writes
from ..store.catalog import Catalog, CatalogError, CatalogStore
from ..store.rows import show_key as show_of
from ..store.writes import ApplyContext, Expansion, Finish, PageResult, RunSetup, Watched

LOGGER = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS: Final = 30
DEFAULT_EXPAND_CONCURRENCY: Final = 4
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
    status: RunStatus = RunStatus.RUNNING
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
    # How expansions were fetched (`policy.Fetch`), and how movies were listed
    # (`policy.MovieListing`) and whether the run could mark MISSING (`policy.MissingCheck`).
    strategy: Fetch | None = None
    movie_listing: MovieListing | None = None
    missing_check: MissingCheck | None = None
    requests: int = 0
    total: int | None = None
    finished_at: int | None = None
    last_synced_at: int | None = None
    error: str | None = None
    # Movies and episodes whose view count rose (`policy.watched`); not part of `as_dict`.
    watched: list[Watched] = field(default_factory=list)

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
        """Return a JSON-safe dict (without the watched items)."""
        data = asdict(self)
        del data["watched"]
        return data


@dataclass(frozen=True, slots=True)
class SyncProgress:
    """A progress report: `library_start`, `page_progress` (after commit) or `library_done`."""

    event: Literal["library_start", "page_progress", "library_done"]
    summary: SyncSummary


type ProgressCallback = Callable[[SyncProgress], None]


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
        # The server's clock before this run's first request (see `policy.light_window_start`).
        self.light_since = client.server_time
        self.full_listing = True
        # Every movie, or every show with all its seasons and episodes, was listed.
        self.whole_library = False
        self.setup: RunSetup
        self.summary: SyncSummary
        self.ctx: ApplyContext

    def _emit(self, event: Literal["library_start", "page_progress", "library_done"]) -> None:
        if self.progress is None:
            return
        try:
            self.progress(SyncProgress(event, self.summary))
        except Exception:
            LOGGER.exception("%s: progress callback failed", self.label)

    async def run(self) -> SyncSummary:
        now = int(self.clock())
        setup = await self.catalog.call(
            writes.run_setup, self.server.server_id, self.section.key, self.section.locations
        )
        self.setup = setup
        library_id = setup.library_id
        # `policy.library_mappings`: the server's mappings when one covers the library's
        # folders, none otherwise. Restated when they differ from the last complete run's.
        mapper = PathMapper(setup.mappings)
        mappings_digest = writes.mappings_digest(mapper)
        LOGGER.debug(
            "%s: %s",
            self.label,
            f"mapped ({len(mapper.mappings)} mappings)"
            if mapper.mappings
            else f"no mapping covers {list(self.section.locations)}: local files not claimed",
        )
        run_id = await self.catalog.call(
            CatalogStore.start_run, self.server.server_id, library_id, self.deep, now
        )
        self.ctx = ApplyContext(
            server_id=self.server.server_id,
            library_id=library_id,
            run_id=run_id,
            now=now,
            deep=self.deep,
            mapper=mapper,
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
            check = missing_check(
                complete=True, full_listing=self.full_listing, all_seen=await self._all_seen()
            )
            self.summary.missing_check = check
            LOGGER.debug("%s: missing check: %s", self.label, check)
            if check is MissingCheck.CONFIRM:
                await self._confirm_missing()
            missing, deleted = await self.catalog.call(
                writes.finalize_run,
                self.ctx,
                Finish(
                    seen=self.seen,
                    expanded=self.expanded,
                    retention_seconds=self.retention_seconds,
                    mappings_digest=mappings_digest,
                    remap=mappings_digest != setup.mappings_digest,
                    full_listing=self.full_listing,
                    mark_missing=check is MissingCheck.CONFIRM,
                    light_since=self.light_since,
                ),
            )
            self.summary.missing_promoted = missing
            self.summary.deleted_promoted = deleted
            self.summary.status = RunStatus.OK
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
        self.summary.status = RunStatus.FAILED
        self.summary.missing_check = MissingCheck.INCOMPLETE
        self.summary.error = error
        LOGGER.warning("%s: sync failed, nothing marked missing: %s", self.label, error)
        # Record the failure even when the task is being cancelled. A catalog that cannot
        # record it (closed under a cancelled run) fails the run when it is next opened.
        try:
            await asyncio.shield(self._finish(requests_before))
        except CatalogError as err:
            LOGGER.debug("%s: the failed run could not be recorded: %s", self.label, err)
        self._emit("library_done")

    # --- listings ------------------------------------------------------------------------

    async def _all_seen(self) -> bool:
        """Return `policy.saw_every_present_item` (reading the count only when it matters)."""
        present = None
        if self.whole_library and not self.summary.errors:
            present = await self.catalog.call(CatalogStore.present_count, self.ctx.library_id)
        return saw_every_present_item(
            whole_library=self.whole_library,
            errors=self.summary.errors,
            present=present,
            seen=len(self.seen),
        )

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

    async def _apply(self, page: Page, hydrated: Sequence[str] = ()) -> PageResult:
        result = await self.catalog.call(writes.apply_page, self.ctx, page, hydrated)
        summary = self.summary
        summary.processed += result.processed
        summary.changed += result.changed
        summary.skipped += result.skipped
        summary.errors += result.errors
        summary.returned += result.returned
        summary.watch_updated += result.watch_updated
        summary.watched.extend(result.watched)
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

    async def _consume(self, listing: Listing, *, top_level: bool) -> list[PageResult]:
        """Apply every page of a listing, then check the listing really was complete."""
        results: list[PageResult] = []
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
        """List the movies as `policy.movie_listing` says; all of them when a light one fails.

        A light listing stands for a full one only while Plex's movie count equals the
        catalog's (`policy.light_listing_holds`).
        """
        setup = self.setup
        how = movie_listing(
            deep=self.deep,
            now=self.ctx.now,
            last_full_listing_at=setup.last_full_listing_at,
            window=setup.movie_window,
        )
        self.summary.movie_listing = how
        LOGGER.debug("%s: movie listing: %s", self.label, how)
        if how is MovieListing.LIGHT:
            since = {"updatedAt>>": str(setup.movie_window)}
            listing = self.client.section_items(self.section.key, PlexType.MOVIE, filters=since)
            async for batch in read_batches(listing, entries=self._batch_entries):
                await self._apply(_merged(batch))
            if listing.stats.complete and not self.incomplete:
                on_server = await self.client.count(self.section.key, PlexType.MOVIE)
                stored = await self.catalog.call(
                    CatalogStore.present_count, self.ctx.library_id, ("movie",)
                )
                if light_listing_holds(on_server=on_server, in_catalog=stored):
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
        expansions = {
            expansion.rating_key: expansion for result in results for expansion in result.expansions
        }
        if not self.deep:
            await self._recently_updated(expansions.keys())
            # `policy.drifted`, applied in SQL. Only shows this run's listing returned: one
            # gone since is judged by the finalize, not expanded into a 404.
            for key, (child, leaf, episodes) in (
                await self.catalog.call(CatalogStore.drifted_shows, self.ctx.library_id)
            ).items():
                if key not in expansions and key in self.seen:
                    expansions[key] = Expansion(
                        key, None, ExpandReason.DRIFTED, child, leaf, f"{episodes} episodes stored"
                    )
        for expansion in expansions.values():
            LOGGER.debug(
                "%s: expanding %s [ratingKey %s]: %s (childCount %d, leafCount %d%s)",
                self.label,
                expansion.title or "show",
                expansion.rating_key,
                expansion.reason,
                expansion.child_count,
                expansion.leaf_count,
                f"; {expansion.detail}" if expansion.detail else "",
            )
        self.summary.expanded = dict(Counter(e.reason.value for e in expansions.values()))
        if not expansions:
            return
        expand = {key: (e.child_count, e.leaf_count) for key, e in expansions.items()}
        seasons, episodes = await self.catalog.call(CatalogStore.show_totals, self.ctx.library_id)
        fetch = expansion_fetch(
            expand.values(), seasons=seasons, episodes=episodes, page_size=self.client.page_size
        )
        self.summary.expanded_shows = len(expand)
        self.summary.strategy = fetch
        LOGGER.debug("%s: fetching %d expansions %s", self.label, len(expand), fetch)
        if self.summary.total is not None:
            self.summary.total += sum(child + leaf for child, leaf in expand.values())
        if fetch is Fetch.SECTION:
            listed = {key for result in results for key in result.seen}
            await self._expand_section(list(expand), listed)
        else:
            await self._expand_shows(expand)

    async def _recently_updated(self, expanding: Collection[str]) -> None:
        """List seasons and episodes Plex updated since the catalog's newest, minus a margin.

        Plex does not reliably touch a show when one of its episodes changes, so the show
        digest alone would miss an edited episode. The watermark is Plex's own clock (the
        newest `updatedAt` stored), so the two clocks never need to agree. Entries of the
        shows in `expanding` are left to their expansion, which lists them all anyway.
        """
        if self.setup.window is None:
            return
        since = {"updatedAt>>": str(self.setup.window)}
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
                        if show_of(i) in self.seen and show_of(i) not in expanding
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
            writes.set_hydrated,
            self.server.server_id,
            [key for key in show_keys if key not in short],
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
                        writes.note_errors,
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
            writes.note_errors, self.server.server_id, [(show_key, short)], self.ctx.now
        )

    def _expansion_failed(self, show_key: str, error: PlexError) -> None:
        self.summary.errors += 1
        self.incomplete.append(f"show {show_key} could not be expanded: {error.detail}")
        LOGGER.warning("%s: show %s could not be expanded: %s", self.label, show_key, error)
