"""Every decision of the sync, each a pure function of what the catalog holds and Plex reports.

A run asks these functions and applies their answers: it logs each answer with its reason at
debug level and counts the reasons in its summary, so "why was this show expanded?" and "when
does an item become MISSING?" have one place to look in the code (this module, table-tested in
`tests/engine/test_policy.py`) and one line to look for in the log.

Where the store applies a rule to many rows at once in SQL (marking MISSING, drift), the
function here is the rule's definition and `tests/engine/test_policy.py` checks that the SQL
agrees with it on generated catalogs.

The life of an item (see `next_state`)::

    listed by Plex ──► ACTIVE / REMOTE_ONLY / UNAVAILABLE   (`item_state`, by its files and
                                                            its library's mappings)
        ACTIVE       a show or season; a movie or episode with a file, in a library no
                     mapping covers (nothing claimed) or with a file the mappings resolve
        REMOTE_ONLY  a movie or episode of a mapped library none of whose files resolves
        UNAVAILABLE  a movie or episode without a file
    its library's mappings changed (`library_mappings`) ──► restated by the library's next
    complete run: ACTIVE ⇄ REMOTE_ONLY
    present, not returned by a complete listing, judged, and Plex (asked by ratingKey) no
    longer knows it ──► MISSING
    MISSING for `retention` ──► DELETED
    MISSING or DELETED and listed again ──► back to ACTIVE / REMOTE_ONLY / UNAVAILABLE
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
import math
from typing import Final

from .paths import Coverage, PathMapper, PathMapping, coverage
from .plex.models import ItemKind
from .states import GONE_STATES, PRESENT_STATES, ItemState

# --- item state ------------------------------------------------------------------------------


def library_mappings(
    locations: Sequence[str], mappings: Sequence[PathMapping]
) -> tuple[PathMapping, ...]:
    """Return the mappings a library's files are judged with: all the server's, or none.

    Mappings apply per library. A library is mapped when a mapping covers one of its locations
    (the Plex folders of the section), wholly or in part (`paths.coverage`): its Plex prefix is
    a location, a folder above one, or a folder inside one (a mapping for /data/tv/Anime maps
    part of a /data/tv library). A mapped library is judged with every mapping of the server;
    a library none covers (or without known locations) with none, so its files stay ACTIVE.
    """
    if any(
        coverage(mapping.plex_prefix, location) is not Coverage.NONE
        for mapping in mappings
        for location in locations
    ):
        return tuple(mappings)
    return ()


def uncovered_folders(locations: Sequence[str], mappings: Sequence[PathMapping]) -> list[str]:
    """Return a library's locations that no mapping covers whole (at or above the folder).

    These are the Plex folders a repair asks the user to map: a mapping inside a folder maps
    only part of it.
    """
    return [
        location
        for location in locations
        if not any(
            coverage(mapping.plex_prefix, location) is Coverage.WHOLE for mapping in mappings
        )
    ]


def mapping_repair_due(*, remote_only: int, playable: int, share: float) -> bool:
    """Return whether a library asks for a mapping repair: most of its files resolve nowhere.

    `playable` counts its present movies and episodes with a file, `remote_only` those of them
    REMOTE_ONLY; more than `share` of them is due. A library with nothing playable never is.
    """
    return playable > 0 and remote_only / playable > share


def item_state(kind: ItemKind, files: Sequence[str], mapper: PathMapper) -> ItemState:
    """Return the state of an item Plex lists, from its files (Plex paths) and the mappings.

    `mapper` holds its library's mappings (`library_mappings`). Shows and seasons have no
    files: listed means ACTIVE. A movie or episode without a file is UNAVAILABLE. In a mapped
    library, one whose files none resolves locally is REMOTE_ONLY; in a library no mapping
    covers, local reachability is not claimed either way and it stays ACTIVE.
    """
    if kind in (ItemKind.SHOW, ItemKind.SEASON):
        return ItemState.ACTIVE
    if not files:
        return ItemState.UNAVAILABLE
    if mapper.mappings and not any(mapper.resolve(path) is not None for path in files):
        return ItemState.REMOTE_ONLY
    return ItemState.ACTIVE


def is_present(state: str) -> bool:
    """Return whether a stored state means Plex still lists the item."""
    return state in PRESENT_STATES


# --- expanding shows -------------------------------------------------------------------------


class ExpandReason(StrEnum):
    """Why a show's seasons and episodes are listed in a run."""

    NEW = "new"  # not in the catalog yet
    CAME_BACK = "came_back"  # stored MISSING or DELETED, listed again
    CONTENT_CHANGED = "content_changed"  # its entry's content digest differs from the stored
    NEVER_HYDRATED = "never_hydrated"  # its children were never all stored (or fell short)
    DRIFTED = "drifted"  # its stored episodes no longer add up to its leafCount
    DEEP = "deep"  # a deep run expands every show


def expansion_reason(
    *, deep: bool, stored_state: str | None, hydrated: bool, content_changed: bool
) -> ExpandReason | None:
    """Return why a listed show is expanded, or None when its stored children still hold.

    `stored_state` is None for a show the catalog does not hold. The most telling reason wins:
    a new show in a deep run is expanded because it is new. A show whose listing entry had a
    parse warning keeps its stored content (`content_changed` is False) and is still expanded
    for every other reason, deep runs included. Drift is judged after the show listing, for
    shows no other reason picked (`drifted`).
    """
    if stored_state is None:
        return ExpandReason.NEW
    if not is_present(stored_state):
        return ExpandReason.CAME_BACK
    if content_changed:
        return ExpandReason.CONTENT_CHANGED
    if not hydrated:
        return ExpandReason.NEVER_HYDRATED
    if deep:
        return ExpandReason.DEEP
    return None


def drifted(*, hydrated: bool, leaf_count: int | None, present_episodes: int) -> bool:
    """Return whether a hydrated show's stored episodes no longer add up to its leafCount.

    An episode added and another removed leave a show's counts, and often its `updatedAt`,
    unchanged; the light pass then cannot see either, so such a show is expanded (self-healing).
    `CatalogStore.drifted_shows` applies this to a whole library in SQL.
    """
    return hydrated and (leaf_count or 0) != present_episodes


class Fetch(StrEnum):
    """How a run lists the seasons and episodes of the shows it expands."""

    PER_SHOW = "per_show"  # each show's children and allLeaves
    SECTION = "section"  # one season listing and one episode listing of the whole section


# Choosing how to expand shows: one request costs about as much as handling this many items.
REQUEST_COST_ITEMS: Final = 20


def expansion_fetch(
    expand: Iterable[tuple[int, int]], *, seasons: int, episodes: int, page_size: int
) -> Fetch:
    """Return the cheaper way to list the children of the shows in `expand`.

    `expand` holds each expanded show's (childCount, leafCount); `seasons` and `episodes` are
    what the library holds. Cost is counted in items handled, each request counting as
    REQUEST_COST_ITEMS: per show, only those shows' children; section-wide, every season and
    episode of the library. A tie goes to per show, which touches fewer rows.
    """

    def pages(count: int) -> int:
        return math.ceil(max(count, 1) / page_size)

    per_show = sum(
        child + leaf + REQUEST_COST_ITEMS * (pages(child) + pages(leaf)) for child, leaf in expand
    )
    section_wide = seasons + episodes + REQUEST_COST_ITEMS * (pages(seasons) + pages(episodes))
    return Fetch.SECTION if section_wide < per_show else Fetch.PER_SHOW


# --- listing windows -------------------------------------------------------------------------

# Light runs list what Plex updated from a margin before the server's clock at the start of the
# last successful run: Plex may commit an item with an `updatedAt` a little older than that
# (stragglers older still are left to the deep sync).
UPDATED_SINCE_MARGIN: Final = 600
# A light run of a movie library lists only what Plex updated, verified by counts; a full
# listing runs at least this often (seconds) to catch files replaced without an update.
FULL_LISTING_MAX_AGE: Final = 6 * 3600


def light_window_start(light_since: int | None, newest_stored: int | None) -> int | None:
    """Return the `updatedAt` from which a light run lists changes, or None for no window.

    The server's clock when the last successful run began (`light_since`, from the `Date`
    header of its first answer) is where the window starts, whatever `updatedAt` the items
    carry: a bulk metadata refresh that gave them all one recent `updatedAt` is listed by the
    runs that follow it, then never again. A catalog that never recorded the server's clock
    falls back to the newest stored `updatedAt`. Either way UPDATED_SINCE_MARGIN is taken off.
    """
    start = light_since if light_since is not None else newest_stored
    return None if start is None else max(start - UPDATED_SINCE_MARGIN, 0)


class MovieListing(StrEnum):
    """How a run lists a movie library, and why."""

    LIGHT = "light"  # what Plex updated in the window, then Plex's count against the catalog's
    DEEP = "deep"  # a deep run lists everything
    NO_WINDOW = "no_window"  # nothing to anchor a window on (a first sync)
    DUE = "due"  # the last full listing is older than FULL_LISTING_MAX_AGE, or never ran


def movie_listing(
    *, deep: bool, now: int, last_full_listing_at: int | None, window: int | None
) -> MovieListing:
    """Return how a run lists a movie library.

    A LIGHT run that finds Plex's movie count different from the catalog's lists everything
    after all (`light_listing_holds`).
    """
    if deep:
        return MovieListing.DEEP
    if window is None:
        return MovieListing.NO_WINDOW
    if last_full_listing_at is None or now - last_full_listing_at >= FULL_LISTING_MAX_AGE:
        return MovieListing.DUE
    return MovieListing.LIGHT


def light_listing_holds(*, on_server: int | None, in_catalog: int) -> bool:
    """Return whether a light movie listing stands for a full one: the counts agree."""
    return on_server is not None and on_server == in_catalog


# --- MISSING, DELETED and back ---------------------------------------------------------------


class MissingCheck(StrEnum):
    """Whether a finished run may mark anything MISSING, and why."""

    INCOMPLETE = "incomplete"  # a listing failed or fell short: nothing may be marked
    LIGHT = "light"  # verified by counts, not listed in full: it saw only what changed
    ALL_SEEN = "all_seen"  # the whole library was listed and every present item seen
    CONFIRM = "confirm"  # what was not seen is asked for by ratingKey; what Plex no longer
    # knows is marked MISSING


def missing_check(*, complete: bool, full_listing: bool, all_seen: bool) -> MissingCheck:
    """Return whether a run may mark items MISSING (only CONFIRM may).

    `complete`: every listing of the run completed and no entry lacked a ratingKey;
    `full_listing`: the run listed every movie or every show (not only what changed);
    `all_seen`: see `saw_every_present_item`.
    """
    if not complete:
        return MissingCheck.INCOMPLETE
    if not full_listing:
        return MissingCheck.LIGHT
    if all_seen:
        return MissingCheck.ALL_SEEN
    return MissingCheck.CONFIRM


def saw_every_present_item(
    *, whole_library: bool, errors: int, present: int | None, seen: int
) -> bool:
    """Return whether a run that listed the whole library saw every present item.

    Without a bad entry, every key a run saw is a present item of this library, so equal counts
    mean that nothing is missing and the checks item by item can be skipped. `present` is None
    when the count was not read (it is read only when the other conditions hold).
    """
    return whole_library and not errors and present is not None and present == seen


@dataclass(frozen=True, slots=True)
class Unseen:
    """A present item of the library that a complete run did not see."""

    kind: ItemKind
    # Its show was expanded (all its seasons and episodes listed) in this run.
    show_expanded: bool = False
    # It has no show, or its show is MISSING or DELETED (or judged so in this run).
    show_gone: bool = False
    # The run saw one of its children (an episode of this show or season).
    child_seen: bool = False


def judged(item: Unseen) -> bool:
    """Return whether an unseen item is judged: asked for by ratingKey, then MISSING if gone.

    Movies and shows are judged against the whole listing; seasons and episodes only where
    their show's children were listed completely, or where the show itself is gone. A show or
    season of which the run saw a child exists, whatever its own listing said: never MISSING
    (no MISSING parent with a present child). `CatalogStore.missing_candidates` and
    `CatalogStore.finalize_library` apply this rule in SQL.
    """
    if item.child_seen:
        return False
    if item.kind in (ItemKind.MOVIE, ItemKind.SHOW):
        return True
    return item.show_expanded or item.show_gone


def expired(*, state: str, missing_since: int | None, now: int, retention_seconds: int) -> bool:
    """Return whether a MISSING item becomes DELETED: missing for the whole retention."""
    return (
        state == ItemState.MISSING
        and missing_since is not None
        and missing_since <= now - retention_seconds
    )


def next_state(
    stored: str | None,
    *,
    listed_as: ItemState | None,
    check: MissingCheck,
    unseen: Unseen | None,
    plex_knows: bool,
    missing_since: int | None,
    now: int,
    retention_seconds: int,
) -> str | None:
    """Return an item's state after a run: the whole life cycle in one function.

    `listed_as` is the state the run's listing gave it (`item_state`), None when no listing or
    lookup returned it; `unseen` describes it when a complete run did not see it; `plex_knows`
    is the answer of the lookup by ratingKey that confirms every MISSING. None stays None (a
    row is created only by a listing).
    """
    if listed_as is not None:
        return listed_as  # listed: present, back from MISSING or DELETED if it was gone
    if stored is None:
        return None
    if (
        is_present(stored)
        and check is MissingCheck.CONFIRM
        and unseen is not None
        and judged(unseen)
        and not plex_knows
    ):
        stored, missing_since = ItemState.MISSING, now
    if expired(
        state=stored, missing_since=missing_since, now=now, retention_seconds=retention_seconds
    ):
        return ItemState.DELETED
    return stored


# --- live updates ----------------------------------------------------------------------------


def watched(kind: ItemKind, before: int | None, after: int | None) -> bool:
    """Return whether a stored item counts as watched again: its view count rose.

    Only movies and episodes: a show's or season's count follows its episodes. Plex leaves
    `viewCount` out for an unwatched item, so None counts as 0. Items a run inserts are never
    asked (a first sync reports nothing as watched).
    """
    if kind not in (ItemKind.MOVIE, ItemKind.EPISODE):
        return False
    return (after or 0) > (before or 0)


def gone_by_lookup(*, plex_knows: bool, present_children_left: int) -> bool:
    """Return whether an item a live update reported deleted becomes MISSING.

    Only when Plex, asked for it by ratingKey, no longer knows it (the confirmation a listing
    needs too), and, for a show or season, when none of its seasons or episodes stays present
    (no MISSING parent with a present child; those children are asked for in the same lookup).
    """
    return not plex_knows and present_children_left == 0


class LiveAction(StrEnum):
    """What a library `timeline` notification asks for."""

    REFRESH = "refresh"  # processed (state 5), or an update without a state: re-read it
    GONE = "gone"  # deleted (state 9): confirm with a lookup, then MISSING
    COMING = "coming"  # created … processing metadata (states 0-4): more is on its way
    IGNORE = "ignore"  # not a library item, or a state that says nothing


LIBRARY_IDENTIFIER: Final = "com.plexapp.plugins.library"
# Plex metadata types a catalog holds: movie, show, season, episode.
_CATALOG_TYPES: Final = frozenset({1, 2, 3, 4})


def timeline_action(
    *, identifier: str | None, section_id: str | None, item_type: int | None, state: int | None
) -> LiveAction:
    """Return what a `timeline` entry asks the catalog to do.

    Tautulli and PlexKodiConnect act on the same states. Entries of other plugins (DVR,
    `tv.plex…`), without a library section (`sectionID` -1) or of types the catalog does not
    hold are ignored.
    """
    if identifier != LIBRARY_IDENTIFIER or section_id in (None, "", "-1"):
        return LiveAction.IGNORE
    if item_type is not None and item_type not in _CATALOG_TYPES:
        return LiveAction.IGNORE
    if state == 9:
        return LiveAction.GONE
    if state == 5 or state is None:
        return LiveAction.REFRESH
    if 0 <= state <= 4:
        return LiveAction.COMING
    return LiveAction.IGNORE


__all__ = [
    "FULL_LISTING_MAX_AGE",
    "GONE_STATES",
    "PRESENT_STATES",
    "REQUEST_COST_ITEMS",
    "UPDATED_SINCE_MARGIN",
    "ExpandReason",
    "Fetch",
    "ItemState",
    "LiveAction",
    "MissingCheck",
    "MovieListing",
    "Unseen",
    "drifted",
    "expansion_fetch",
    "expansion_reason",
    "expired",
    "gone_by_lookup",
    "item_state",
    "judged",
    "library_mappings",
    "light_listing_holds",
    "light_window_start",
    "mapping_repair_due",
    "missing_check",
    "movie_listing",
    "next_state",
    "saw_every_present_item",
    "timeline_action",
    "uncovered_folders",
    "watched",
]


# --- a library that lost many files at once ------------------------------------------------

# A run that marks at least this many movies or episodes of a library MISSING, and at least this
# share of what the library held, probably saw a drive or share that Plex reads go away.
DROP_MIN_ITEMS: Final = 10
DROP_SHARE: Final = 0.2


def dropped_at_once(gone: int, present: int) -> bool:
    """Return whether `gone` items of a library (of `gone + present`) look like a lost share.

    Asked with a run's newly missing items to raise the repair, and with the library's
    MISSING count to keep it: it clears once that count falls below the same bar (the files
    came back, or expired to DELETED).
    """
    return gone >= DROP_MIN_ITEMS and gone >= DROP_SHARE * (gone + present)
