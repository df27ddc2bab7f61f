"""Targeted refreshes: re-read the items live updates named, through the same digests and writes.

A live update (a websocket notification, a webhook, `retrovue.refresh_items`) names items; the
run here asks Plex for them by ratingKey (METADATA_BATCH per request), with the seasons and shows
above them (their digests change with their children), stores them like listed items, expands
the shows whose children it cannot otherwise know, and marks MISSING only what was reported
deleted and Plex, asked for it, no longer knows (`policy.gone_by_lookup`). It never judges
anything it was not told about: what notifications miss is left to the polled runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable, Sequence
import contextlib
from dataclasses import dataclass, field
import logging
import time

from ..paths import PathMapper, PathMapping
from ..plex.client import PlexClient
from ..plex.errors import PlexAuthError, PlexConnectionError, PlexError
from ..plex.models import ItemKind, Page, PlexItem
from ..policy import ExpandReason, library_mappings
from ..states import RunStatus
from ..store import writes
from ..store.catalog import Catalog, CatalogError, CatalogStore
from ..store.writes import ApplyContext, PageResult, Watched
from . import METADATA_BATCH, Clock, ServerContext, _merged, fetch_show_pages

LOGGER = logging.getLogger(__name__)

# A show is expanded (its seasons and episodes listed) rather than looked up item by item once
# a refresh names this many of its seasons and episodes: two listings beat several batches.
EXPAND_AT = 5
# Reasons for which a show's children must be listed: the catalog cannot know them otherwise.
_MUST_EXPAND = frozenset({ExpandReason.NEW, ExpandReason.CAME_BACK, ExpandReason.NEVER_HYDRATED})


@dataclass(slots=True)
class Targets:
    """What to refresh, merged from any number of live updates."""

    # Items added or changed (any kind).
    items: set[str] = field(default_factory=set)
    # Seasons and shows above them, re-read for their own digests (counts, updatedAt).
    parents: set[str] = field(default_factory=set)
    # Shows whose seasons and episodes are listed whole.
    shows: set[str] = field(default_factory=set)
    # Items reported deleted: MISSING once Plex confirms it no longer knows them.
    gone: set[str] = field(default_factory=set)
    # Items whose watch state is re-read (playback stopped or paused, a scrobble).
    watch: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        """Return whether there is anything to refresh."""
        return bool(self.items or self.parents or self.shows or self.gone or self.watch)

    def merge(self, other: Targets) -> None:
        """Add another set of targets to this one."""
        self.items |= other.items
        self.parents |= other.parents
        self.shows |= other.shows
        self.gone |= other.gone
        self.watch |= other.watch

    @property
    def size(self) -> int:
        """Return how many distinct keys are named."""
        return len(self.items | self.parents | self.shows | self.gone | self.watch)


@dataclass(slots=True)
class RefreshSummary:
    """What a targeted refresh did."""

    run_id: int
    requested: int
    status: RunStatus = RunStatus.RUNNING
    found: int = 0
    changed: int = 0
    skipped: int = 0
    errors: int = 0
    returned: int = 0
    watch_updated: int = 0
    expanded_shows: int = 0
    requests: int = 0
    # Keys marked MISSING (reported deleted and confirmed gone).
    missing: list[str] = field(default_factory=list)
    # Keys named but unknown to Plex and not reported deleted: left to the next listing.
    not_found: list[str] = field(default_factory=list)
    # Items inserted or changed: keys, and titles (episodes as "Show S01E02 Title").
    changed_keys: list[str] = field(default_factory=list)
    changed_titles: list[str] = field(default_factory=list)
    watched: list[Watched] = field(default_factory=list)
    # Section keys of the libraries the refresh wrote to.
    sections: set[str] = field(default_factory=set)
    error: str | None = None

    def counts(self) -> dict[str, int]:
        """Return the counters stored on the run row."""
        return {
            "processed": self.found,
            "changed": self.changed,
            "skipped": self.skipped,
            "errors": self.errors,
            "returned": self.returned,
            "missing_promoted": len(self.missing),
            "requests": self.requests,
        }


async def refresh(
    client: PlexClient,
    catalog: Catalog,
    server: ServerContext,
    targets: Targets,
    *,
    sections: Collection[str] | None = None,
    clock: Clock = time.time,
) -> RefreshSummary:
    """Refresh what `targets` name; items outside `sections` (section keys) are left alone.

    Raises `PlexAuthError` and `PlexConnectionError` (after recording the run as failed); any
    other problem ends the run as failed and comes back in the summary.
    """
    now = int(clock())
    run_id = await catalog.call(
        CatalogStore.start_run, server.server_id, None, False, now, "refresh"
    )
    summary = RefreshSummary(run_id=run_id, requested=targets.size)
    requests_before = client.requests.total()
    try:
        await _Refresh(client, catalog, server, targets, sections, now, summary).run()
        summary.status = RunStatus.OK
    except (PlexAuthError, PlexConnectionError) as err:
        summary.status, summary.error = RunStatus.FAILED, str(err)
        raise
    except (PlexError, CatalogError) as err:
        summary.status, summary.error = RunStatus.FAILED, str(err)
    except Exception as err:
        LOGGER.exception("%s: targeted refresh failed unexpectedly", server.name)
        summary.status = RunStatus.FAILED
        summary.error = f"internal error: {err.__class__.__name__}: {err}"
    except BaseException as err:
        summary.status, summary.error = RunStatus.FAILED, f"aborted: {err.__class__.__name__}"
        raise
    finally:
        summary.requests = client.requests.total() - requests_before
        # A catalog closed under a cancelled refresh must not replace the cancellation.
        with contextlib.suppress(CatalogError):
            await asyncio.shield(
                catalog.call(
                    CatalogStore.finish_run,
                    run_id,
                    summary.status,
                    summary.counts(),
                    summary.error,
                    int(clock()),
                )
            )
    LOGGER.debug(
        "%s: targeted refresh of %d keys: %d found, %d changed, %d missing, %d watched, "
        "%d shows expanded, %d requests",
        server.name,
        summary.requested,
        summary.found,
        summary.changed,
        len(summary.missing),
        len(summary.watched),
        summary.expanded_shows,
        summary.requests,
    )
    return summary


class _Refresh:
    def __init__(
        self,
        client: PlexClient,
        catalog: Catalog,
        server: ServerContext,
        targets: Targets,
        sections: Collection[str] | None,
        now: int,
        summary: RefreshSummary,
    ) -> None:
        self.client = client
        self.catalog = catalog
        self.server = server
        self.targets = targets
        self.sections = sections
        self.now = now
        self.summary = summary
        self.contexts: dict[str, ApplyContext] = {}

    async def run(self) -> None:
        targets = self.targets
        server_id = self.server.server_id
        libraries = {
            lib.section_key: lib.id
            for lib in await self.catalog.call(CatalogStore.libraries, server_id)
            if self.sections is None or lib.section_key in self.sections
        }
        mappings = await self.catalog.call(CatalogStore.path_mappings, server_id)
        self.contexts = {
            key: ApplyContext(
                server_id,
                library_id,
                self.summary.run_id,
                self.now,
                False,
                self._mapper(key, mappings),
            )
            for key, library_id in libraries.items()
        }
        # A show or season reported deleted takes its present children with it only if Plex
        # no longer knows them either: they are asked for in the same lookups.
        gone = set(targets.gone)
        parents_gone = list(gone)
        if parents_gone:
            for children in (
                await self.catalog.call(CatalogStore.present_children, server_id, parents_gone)
            ).values():
                gone.update(children)
        wanted = targets.items | targets.parents | targets.shows | targets.watch | gone
        found = await self._lookup(wanted)
        # Seasons and shows above what was found, unless already asked for.
        above = {
            key
            for item in found
            for key in (item.parent_rating_key, item.grandparent_rating_key)
            if key and item.kind in (ItemKind.SEASON, ItemKind.EPISODE) and key not in wanted
        }
        if above:
            found.extend(await self._lookup(above))
        known = {item.rating_key for item in found}
        self.summary.found = len(known)
        self.summary.not_found = sorted((wanted - gone) - known)
        expand: dict[str, str] = {}
        touched: dict[str, set[str]] = {}
        for section_key, items in _by_section(found).items():
            ctx = self.contexts.get(section_key)
            if ctx is None:
                LOGGER.debug(
                    "%s: %d refreshed items are in library %s, which is not synced",
                    self.server.name,
                    len(items),
                    section_key,
                )
                continue
            result = await self._apply(ctx, Page(tuple(items), (), 0, len(items), len(items)))
            self.summary.sections.add(section_key)
            for expansion in result.expansions:
                if expansion.reason in _MUST_EXPAND or expansion.rating_key in targets.shows:
                    expand[expansion.rating_key] = section_key
            touched.setdefault(section_key, set()).update(_shows_of(items))
        confirmed = sorted(gone - known)
        if confirmed:
            self.summary.missing = await self.catalog.call(
                writes.confirm_gone, server_id, confirmed, self.now, self.summary.run_id
            )
        for key in targets.shows:
            if key in known and key not in expand:
                section = next((s for s, keys in touched.items() if key in keys), None)
                if section is not None:
                    expand[key] = section
        await self._settle(touched, expand)

    def _mapper(self, section_key: str, mappings: Sequence[PathMapping]) -> PathMapper:
        """Return the mapper of one library, by the rule of library runs.

        `policy.library_mappings`: the server's mappings when one covers the section's folders,
        none otherwise (also for a section the server context does not list).
        """
        section = self.server.section(section_key)
        return PathMapper(library_mappings(section.locations if section else (), mappings))

    async def _lookup(self, keys: Iterable[str]) -> list[PlexItem]:
        ordered = sorted(keys)
        found: list[PlexItem] = []
        for start in range(0, len(ordered), METADATA_BATCH):
            page = await self.client.metadata(ordered[start : start + METADATA_BATCH])
            found.extend(page.items)
            for problem in page.problems:
                self.summary.errors += 1
                LOGGER.warning(
                    "%s: bad item %s [ratingKey %s]: %s",
                    self.server.name,
                    problem.title or "(untitled)",
                    problem.rating_key or "?",
                    problem.message,
                )
        return found

    async def _apply(
        self, ctx: ApplyContext, page: Page, hydrated: list[str] | None = None
    ) -> PageResult:
        result = await self.catalog.call(writes.apply_page, ctx, page, hydrated or [])
        summary = self.summary
        summary.changed += result.changed
        summary.skipped += result.skipped
        summary.errors += result.errors
        summary.returned += result.returned
        summary.watch_updated += result.watch_updated
        summary.watched.extend(result.watched)
        summary.changed_keys.extend(result.changed_keys)
        summary.changed_titles.extend(result.changed_titles)
        return result

    async def _settle(self, touched: dict[str, set[str]], expand: dict[str, str]) -> None:
        """Expand the shows that need it; mark the others hydrated when their counts hold.

        A show whose episode changed was re-read and lost `children_hydrated` (its digest
        changed). When the stored seasons and episodes still add up to its counts it is
        hydrated again here; when they fall short it is expanded now.
        """
        for section_key, shows in touched.items():
            ctx = self.contexts[section_key]
            if not shows:
                continue
            short = await self.catalog.call(CatalogStore.short_shows, ctx.library_id, shows)
            for key in short:
                expand.setdefault(key, section_key)
            whole = [key for key in shows if key not in short and key not in expand]
            if whole:
                await self.catalog.call(writes.set_hydrated, self.server.server_id, whole)
        for show_key, section_key in expand.items():
            await self._expand(self.contexts[section_key], show_key)

    async def _expand(self, ctx: ApplyContext, show_key: str) -> None:
        known = await self.catalog.call(
            CatalogStore.source_digests, ctx.library_id, ("season", "episode"), [show_key]
        )
        pages = await fetch_show_pages(self.client, show_key, known)
        self.summary.expanded_shows += 1
        child, leaf = await self.catalog.call(CatalogStore.show_counts, ctx.library_id, show_key)
        short = pages.short_of(child, leaf)
        if short:
            self.summary.errors += 1
            LOGGER.warning(
                "%s: show %s: %s; it is expanded again next time", self.server.name, show_key, short
            )
        await self._apply(ctx, _merged(pages.pages), [] if short else [show_key])


def _by_section(items: Iterable[PlexItem]) -> dict[str, list[PlexItem]]:
    grouped: dict[str, list[PlexItem]] = {}
    for item in {item.rating_key: item for item in items}.values():
        grouped.setdefault(item.section_key or "", []).append(item)
    return grouped


def _shows_of(items: Iterable[PlexItem]) -> set[str]:
    """Return the shows that items are or belong to."""
    shows: set[str] = set()
    for item in items:
        if item.kind is ItemKind.SHOW:
            shows.add(item.rating_key)
        elif item.kind is ItemKind.SEASON and item.parent_rating_key:
            shows.add(item.parent_rating_key)
        elif item.kind is ItemKind.EPISODE and item.grandparent_rating_key:
            shows.add(item.grandparent_rating_key)
    return shows
