"""The sync's decisions, each a pure function of what the catalog holds and Plex reports.

A run asks these functions and applies their answers; it logs each answer with its reason at
debug level and counts the reasons in its summary, so "why was this show expanded?" has one
place to look in the code and one line to look for in the log.
"""

from __future__ import annotations

from enum import StrEnum

from ..store.catalog import PRESENT_STATES, StoredItem


class ExpandReason(StrEnum):
    """Why a show's seasons and episodes are listed in a run."""

    NEW = "new"  # not in the catalog yet
    CAME_BACK = "came_back"  # stored MISSING or DELETED, listed again
    CONTENT_CHANGED = "content_changed"  # its entry's content digest differs from the stored
    NEVER_HYDRATED = "never_hydrated"  # its children were never all stored (or fell short)
    DRIFTED = "drifted"  # its stored episodes no longer add up to its leafCount
    DEEP = "deep"  # a deep run expands every show


def expansion_reason(
    *, deep: bool, stored: StoredItem | None, content_changed: bool
) -> ExpandReason | None:
    """Return why a listed show is expanded, or None when its stored children still hold.

    The most telling reason wins: a new show in a deep run is expanded because it is new.
    Drift is judged after the show listing, for shows no other reason picked (see
    `CatalogStore.drifted_shows`), and reported as `DRIFTED`.
    """
    if stored is None:
        return ExpandReason.NEW
    if stored.state not in PRESENT_STATES:
        return ExpandReason.CAME_BACK
    if content_changed:
        return ExpandReason.CONTENT_CHANGED
    if not stored.children_hydrated:
        return ExpandReason.NEVER_HYDRATED
    if deep:
        return ExpandReason.DEEP
    return None
