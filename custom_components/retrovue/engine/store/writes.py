"""The sync's writes: a page of items, the end of a library run, and what a run starts from.

Each function here runs on the catalog's worker thread as one transaction, through
`Catalog.call` (which runs nothing but the store's own code). The decisions they apply come
from `engine.policy`; what they find out (which shows to expand and why, what changed) goes back
to the run, which logs and counts it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from itertools import chain, groupby
from operator import itemgetter
from typing import Any, Final

from ..paths import PathMapper, PathMapping
from ..plex.models import ItemKind, ItemProblem, Page, PlexItem
from ..policy import (
    ExpandReason,
    expansion_reason,
    gone_by_lookup,
    is_present,
    item_state,
    library_mappings,
    light_window_start,
    watched,
)
from ..states import ItemState
from .catalog import _ITEM_COLUMNS, CONTENT, CatalogStore, StoredItem
from .rows import Row, Watch, build_row, values_digest

_CHILD_KINDS: Final = frozenset({ItemKind.SEASON, ItemKind.EPISODE})


@dataclass(frozen=True, slots=True)
class ApplyContext:
    """What every page of one library run is applied with."""

    server_id: int
    library_id: int
    run_id: int
    now: int
    deep: bool
    # The library's own mappings (`policy.library_mappings`): none when it is not mapped.
    mapper: PathMapper


@dataclass(frozen=True, slots=True)
class Expansion:
    """A listed show whose seasons and episodes the run lists, and why."""

    rating_key: str
    title: str | None
    reason: ExpandReason
    child_count: int
    leaf_count: int
    # What made the reason: the stored state, or the columns whose values differed.
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Watched:
    """A movie or episode whose view count rose (`policy.watched`)."""

    rating_key: str
    kind: str
    title: str | None
    show: str | None
    season: int | None
    episode: int | None
    view_count: int | None
    last_viewed_at: int | None
    guids: tuple[str, ...]


def _watched(row: Row) -> Watched:
    item = row.item
    episode = item.kind is ItemKind.EPISODE
    return Watched(
        rating_key=item.rating_key,
        kind=item.kind.value,
        title=item.title,
        show=item.grandparent_title if episode else None,
        season=item.parent_index if episode else None,
        episode=item.index if episode else None,
        view_count=item.view_count,
        last_viewed_at=item.last_viewed_at,
        guids=tuple(uri for uri, _, _ in row.guid_rows()),
    )


@dataclass(slots=True)
class PageResult:
    """What applying a page did."""

    processed: int = 0
    changed: int = 0
    skipped: int = 0
    errors: int = 0
    returned: int = 0
    watch_updated: int = 0
    seen: list[str] = field(default_factory=list)
    # Shows of this page whose children the run lists (see `policy.expansion_reason`).
    expansions: list[Expansion] = field(default_factory=list)
    # Movies and episodes whose view count rose (`policy.watched`).
    watched: list[Watched] = field(default_factory=list)
    # Rating keys and titles of the items this page inserted or changed.
    changed_keys: list[str] = field(default_factory=list)
    changed_titles: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    unidentified: int = 0


def apply_page(
    store: CatalogStore, ctx: ApplyContext, page: Page, hydrated: Sequence[str] = ()
) -> PageResult:
    """Compare a page with the catalog and write what changed, in one transaction.

    `Page.unchanged` are rating keys whose entries matched their stored source digest: seen,
    and left alone. `hydrated` are shows whose children are all stored once this page is.
    """
    unchanged = page.unchanged
    result = PageResult(processed=len(unchanged), skipped=len(unchanged), seen=[*unchanged])
    # A paged listing can repeat an item when Plex inserts one before the offset it reached;
    # the last copy stands (inserting both would break the catalog's unique key).
    items = list({item.rating_key: item for item in page.items}.values())
    rows, unbuildable = build_rows(ctx, items)
    if unbuildable:
        page = replace(page, problems=(*page.problems, *unbuildable))
    inserts: list[Row] = []
    updates: list[tuple[StoredItem, Row]] = []
    states: list[tuple[int, str]] = []
    watches: list[tuple[int, Watch]] = []
    dehydrate: list[int] = []
    sources: list[tuple[int, bytes | None]] = []
    digests: list[tuple[int, str]] = []
    errors: list[tuple[str, str]] = []
    # Listed shows: the stored row (None when new) and what of its content differed.
    shows: list[tuple[StoredItem | None, Row]] = []
    differed: dict[int, str] = {}

    def same_content(old: StoredItem, row: Row) -> None:
        if old.source_digest != row.item.source_digest:
            # Same content, other entry (watch state, or fields the catalog ignores).
            sources.append((old.id, row.item.source_digest))
        # State and watch state are written independently: an item coming back with
        # another watch state gets both (its entry then matches its source digest).
        if old.state != row.state:
            states.append((old.id, row.state))
            if not is_present(old.state):
                result.returned += 1
        if old.watch != row.watch:
            watches.append((old.id, row.watch))
            if watched(row.item.kind, old.watch[0], row.watch[0]):
                result.watched.append(_watched(row))
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
                # Malformed data never overwrites what the catalog already holds. A show is
                # still judged for expansion on everything but its content (deep runs and
                # un-hydrated shows expand it); its warning is recorded and reported.
                result.skipped += 1
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
        new_parts: list[tuple[int, Row]] = []
        new_guids: list[tuple[int, list[tuple[str, str, str]]]] = []
        changes: list[tuple[int, tuple[Any, ...], tuple[Any, ...]]] = []
        if updates:
            stored = store.stored_content([old.id for old, _ in updates])
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
                if not is_present(old.state):
                    result.returned += 1
                if watched(row.item.kind, old.watch[0], row.watch[0]):
                    result.watched.append(_watched(row))
                changes.append((old.id, row.values, before.values))
                result.changed_keys.append(row.item.rating_key)
                result.changed_titles.append(_label(row.item))
                if not same_parts:
                    new_parts.append((old.id, row))
                if not same_guids:
                    new_guids.append((old.id, guids))
                if row.item.kind is ItemKind.SHOW:
                    differed[old.id] = _differences(
                        before.values, row.values, parts=not same_parts, guids=not same_guids
                    )
            store.update_items(changes, ctx.now, ctx.run_id)
        for old, row in shows:
            expansion = _consider_show(ctx, row.item, old, differed)
            if expansion is None:
                continue
            result.expansions.append(expansion)
            if old is not None and old.children_hydrated:
                # Its children are no longer known to be all stored until it is expanded: a
                # run cut off before then expands it again.
                dehydrate.append(old.id)
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
    result.changed = len(inserts) + len(changes)
    result.changed_keys[:0] = [row.item.rating_key for row in inserts]
    result.changed_titles[:0] = [_label(row.item) for row in inserts]
    result.watch_updated = len(watches)
    result.errors = len(errors) + result.unidentified
    result.problems[:0] = [
        f"{row.item.title or '(untitled)'} [ratingKey {row.item.rating_key}]: "
        f"{'; '.join(row.item.warnings)}"
        for row in rows
        if row.item.warnings
    ]
    return result


def _label(item: PlexItem) -> str:
    if item.kind is ItemKind.EPISODE:
        return (
            f"{item.grandparent_title or '?'} S{item.parent_index or 0:02d}E{item.index or 0:02d}"
            f" {item.title or ''}"
        ).rstrip()
    if item.kind is ItemKind.SEASON:
        return f"{item.parent_title or '?'} {item.title or ''}".rstrip()
    return item.title or "(untitled)"


def build_rows(ctx: ApplyContext, items: Sequence[PlexItem]) -> tuple[list[Row], list[ItemProblem]]:
    """Build the rows of a page's items; an item that cannot be stored becomes a problem."""
    rows: list[Row] = []
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


def _differences(
    before: tuple[Any, ...], after: tuple[Any, ...], *, parts: bool, guids: bool
) -> str:
    names = [_ITEM_COLUMNS[index] for index in range(2, CONTENT) if before[index] != after[index]]
    if parts:
        names.append("parts")
    if guids:
        names.append("guids")
    return ", ".join(names)


def _consider_show(
    ctx: ApplyContext, item: PlexItem, old: StoredItem | None, differed: dict[int, str]
) -> Expansion | None:
    changed = old is not None and old.id in differed
    reason = expansion_reason(
        deep=ctx.deep,
        stored_state=None if old is None else old.state,
        hydrated=old is not None and old.children_hydrated,
        content_changed=old is None or changed,
    )
    if reason is None:
        return None
    detail = ""
    if reason is ExpandReason.CAME_BACK and old is not None:
        detail = f"stored {old.state}"
    elif reason is ExpandReason.CONTENT_CHANGED and old is not None:
        detail = f"changed: {differed[old.id]}"
    return Expansion(
        item.rating_key, item.title, reason, item.child_count or 0, item.leaf_count or 0, detail
    )


def confirm_gone(
    store: CatalogStore, server_id: int, gone: Sequence[str], now: int, run_id: int
) -> list[str]:
    """Mark MISSING what live updates reported deleted and Plex no longer knows; return keys.

    `gone` are rating keys Plex, asked for each, did not return. A show or season among them
    becomes MISSING only when none of its present seasons or episodes is left outside `gone`
    (`policy.gone_by_lookup`); a key the catalog does not hold is ignored.
    """
    with store.transaction():
        stored = store.lookup(server_id, gone)
        parents = [key for key, old in stored.items() if old.kind in ("show", "season")]
        children = store.present_children(server_id, parents) if parents else {}
        gone_set = set(gone)
        marked = [
            key
            for key, old in stored.items()
            if is_present(old.state)
            and gone_by_lookup(
                plex_knows=False,
                present_children_left=sum(child not in gone_set for child in children.get(key, ())),
            )
        ]
        store.mark_missing_ids([stored[key].id for key in marked], now, run_id)
    return marked


def set_hydrated(store: CatalogStore, server_id: int, show_keys: Sequence[str]) -> None:
    """Record that these shows' children are all stored."""
    with store.transaction():
        store.mark_hydrated(server_id, show_keys)


def note_errors(
    store: CatalogStore, server_id: int, errors: Sequence[tuple[str, str]], now: int
) -> None:
    """Record problems with items (by rating key) outside a page."""
    with store.transaction():
        store.record_errors(server_id, errors, now)


@dataclass(frozen=True, slots=True)
class Finish:
    """How a library run that completed ends (see `finalize_run`)."""

    seen: set[str]
    expanded: set[str]
    retention_seconds: int
    mappings_digest: str
    remap: bool
    full_listing: bool
    mark_missing: bool
    light_since: int | None


def finalize_run(store: CatalogStore, ctx: ApplyContext, finish: Finish) -> tuple[int, int]:
    """Close a completed library run in one transaction; return (MISSING, DELETED) counts.

    Restates the library after a mapping change, marks MISSING what the run judged and Plex
    no longer knows (only when `finish.mark_missing`: `policy.missing_check` said CONFIRM),
    promotes MISSING items past the retention to DELETED, and records the run's times.
    """
    with store.transaction():
        if finish.remap:
            _restate_library(store, ctx)
        missing, deleted = store.finalize_library(
            ctx.library_id,
            finish.seen,
            finish.expanded,
            ctx.now,
            finish.retention_seconds,
            ctx.run_id,
            mark_missing=finish.mark_missing,
        )
        store.revive_parents(ctx.library_id, ctx.now, ctx.run_id)
        store.mark_library_synced(
            ctx.library_id,
            ctx.now,
            complete=True,
            deep=ctx.deep,
            mappings_digest=finish.mappings_digest,
            full_listing=finish.full_listing,
            light_since=finish.light_since,
        )
    return missing, deleted


def _restate_library(store: CatalogStore, ctx: ApplyContext) -> None:
    """Recompute ACTIVE/REMOTE_ONLY/UNAVAILABLE for every present item after a mapping change.

    Runs when the library's mappings (`policy.library_mappings`, in `ctx.mapper`) differ from
    those its states were judged with: for an unmapped library, never because of a mapping
    for another library; a mapped library is judged with all the server's mappings, so one
    added for another library restates it (its files under its own folders keep their states).
    Items this run wrote were judged with the current mappings already. The rest are taken one
    item at a time from rows of scalars: a library's worth of path lists held at once would be
    promoted to the collector's oldest generation and bring on a full collection on the event
    loop's process.
    """
    changes: list[tuple[int, str]] = []
    rows = store.parts_of_library(ctx.library_id, unless_run=ctx.run_id)
    for item_id, group in groupby(rows, key=itemgetter(0)):
        parts = list(group)
        # Only movies and episodes have parts: the kind given is one with files.
        state = item_state(ItemKind.EPISODE, [path for _, _, path in parts if path], ctx.mapper)
        if state != parts[0][1]:
            changes.append((item_id, state))
    if changes:
        store.set_states(changes, ctx.now, ctx.run_id)


@dataclass(frozen=True, slots=True)
class RunSetup:
    """What a library run starts from."""

    library_id: int
    # The digest of the mappings the library's states were last judged with (None: never).
    mappings_digest: str | None
    # The mappings the run judges the library's files with (`policy.library_mappings`).
    mappings: tuple[PathMapping, ...]
    # Where light runs' windows start (`policy.light_window_start`): shows, then movies.
    window: int | None
    movie_window: int | None
    last_full_listing_at: int | None


def mappings_digest(mapper: PathMapper) -> str:
    """Return the digest of the mappings a library's states are judged with.

    A run restates the library when it differs from the one stored by the last complete run.
    The mappings are taken as the mapper holds them: canonical, in resolving order.
    """
    return values_digest(
        tuple((mapping.plex_prefix, mapping.local_prefix) for mapping in mapper.mappings)
    )


def run_setup(
    store: CatalogStore, server_id: int, section_key: str, locations: Sequence[str]
) -> RunSetup:
    """Read what a run of one library starts from; KeyError if the library is unknown.

    `locations` are the section's folders as Plex reports them: they decide whether the
    server's mappings apply to the library (`policy.library_mappings`).
    """
    library = next(
        (lib for lib in store.libraries(server_id) if lib.section_key == section_key), None
    )
    if library is None:
        raise KeyError(section_key)
    return RunSetup(
        library_id=library.id,
        mappings_digest=library.mappings_digest,
        mappings=library_mappings(locations, store.path_mappings(server_id)),
        window=light_window_start(
            library.light_since, store.watermark(library.id, ("season", "episode"))
        ),
        movie_window=light_window_start(
            library.light_since, store.watermark(library.id, ("movie",))
        ),
        last_full_listing_at=library.last_full_listing_at,
    )


__all__ = [
    "ApplyContext",
    "Expansion",
    "Finish",
    "ItemState",
    "PageResult",
    "RunSetup",
    "Watched",
    "apply_page",
    "build_rows",
    "confirm_gone",
    "finalize_run",
    "mappings_digest",
    "note_errors",
    "run_setup",
    "set_hydrated",
]
