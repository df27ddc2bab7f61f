"""The catalog's vocabulary: the state of an item and the status of a sync run.

Both are `StrEnum`s: they are stored as their text (SCHEMA.md lists the values) and compare
equal to it, so a row read back as text matches its member.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class ItemState(StrEnum):
    """Where an item stands (see `policy` for every transition and its reason)."""

    ACTIVE = "ACTIVE"  # listed by Plex; its file resolves locally, or no mapping applies
    REMOTE_ONLY = "REMOTE_ONLY"  # listed, but no path mapping covers any of its files
    UNAVAILABLE = "UNAVAILABLE"  # listed, without a file (a movie or episode with no parts)
    MISSING = "MISSING"  # a complete listing did not return it and Plex confirmed it gone
    DELETED = "DELETED"  # MISSING for longer than the retention


# Plex still lists these: they count as present.
PRESENT_STATES: Final = (ItemState.ACTIVE, ItemState.REMOTE_ONLY, ItemState.UNAVAILABLE)
GONE_STATES: Final = (ItemState.MISSING, ItemState.DELETED)


class RunStatus(StrEnum):
    """How a sync run stands (the `sync_runs.status` column)."""

    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
