"""How a Plex item becomes a catalog row: its columns, its content digest and its state."""

from __future__ import annotations

import hashlib
from typing import Any, Final

import msgspec

from ..paths import PathMapper
from ..plex.guids import guid_rows
from ..plex.models import ItemKind, PlexItem
from ..policy import item_state
from ..states import ItemState

_MSGPACK: Final = msgspec.msgpack.Encoder()

type Watch = tuple[int | None, int | None, int | None, int | None]


def content_digest(content: tuple[Any, ...]) -> str:
    """Return the digest of an item's content (nested tuples of str, int and None).

    MessagePack of such tuples is deterministic and about six times cheaper than repr(), which
    was most of the cost of building a row.
    """
    return hashlib.blake2b(_MSGPACK.encode(content), digest_size=16).hexdigest()


def values_digest(values: tuple[Any, ...]) -> str:
    """Return a digest of a tuple of str, int and None (stable across runs, computed in C)."""
    return hashlib.blake2b(
        repr(values).encode("utf-8", "surrogatepass"), digest_size=16
    ).hexdigest()


class Row(msgspec.Struct, gc=False):
    """An item's catalog row, out of the collector's sight like `PlexItem`.

    A cold sync builds one per item, a batch of pages at a time; its tuples hold only scalars.
    """

    item: PlexItem
    values: tuple[Any, ...]
    digest: str
    state: ItemState
    watch: Watch
    parts: tuple[tuple[Any, ...], ...]

    def guid_rows(self) -> list[tuple[str, str, str]]:
        """Return the normalized GUIDs to store (parsed only for rows that are written)."""
        return guid_rows(self.item.guid, self.item.guids)


def show_key(item: PlexItem) -> str | None:
    """Return the rating key of the show a season or episode belongs to."""
    if item.kind is ItemKind.SEASON:
        return item.parent_rating_key
    if item.kind is ItemKind.EPISODE:
        return item.grandparent_rating_key
    return None


# Where a part's Plex path sits in a row's part tuples.
PART_FILE: Final = 5


def build_row(item: PlexItem, *, server_id: int, library_id: int, mapper: PathMapper) -> Row:
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
        show_key(item),
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
    digest = content_digest((values[2:], item.guids, parts))
    state = item_state(item.kind, [part[PART_FILE] for part in parts if part[PART_FILE]], mapper)
    watch = (item.view_count, item.last_viewed_at, item.view_offset, item.viewed_leaf_count)
    return Row(
        item,
        (*values, *watch, state.value, digest, item.source_digest),
        digest,
        state,
        watch,
        tuple(parts),
    )
