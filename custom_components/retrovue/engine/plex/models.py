"""Typed models for what a Plex Media Server reports, the same for JSON and XML answers."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum

import msgspec


class ItemKind(StrEnum):
    """Kind of a catalog item."""

    MOVIE = "movie"
    SHOW = "show"
    SEASON = "season"
    EPISODE = "episode"


class PlexType(IntEnum):
    """Plex's numeric metadata types, as used by the `type=` listing parameter."""

    MOVIE = 1
    SHOW = 2
    SEASON = 3
    EPISODE = 4

    @property
    def kind(self) -> ItemKind:
        """Return the item kind for this type."""
        return _TYPE_KIND[self]


_TYPE_KIND = {
    PlexType.MOVIE: ItemKind.MOVIE,
    PlexType.SHOW: ItemKind.SHOW,
    PlexType.SEASON: ItemKind.SEASON,
    PlexType.EPISODE: ItemKind.EPISODE,
}


class SectionType(StrEnum):
    """Library section types the catalog keeps."""

    MOVIE = "movie"
    SHOW = "show"


@dataclass(frozen=True, slots=True)
class ServerIdentity:
    """Who a server is: from `/identity` or `/`."""

    machine_identifier: str
    version: str | None = None
    friendly_name: str | None = None
    platform: str | None = None


@dataclass(frozen=True, slots=True)
class Section:
    """A library section (`/library/sections`)."""

    key: str
    type: str
    title: str
    uuid: str | None = None
    agent: str | None = None
    scanner: str | None = None
    language: str | None = None
    locations: tuple[str, ...] = ()
    updated_at: int | None = None
    scanned_at: int | None = None
    content_changed_at: int | None = None

    @property
    def supported(self) -> bool:
        """Return whether the catalog syncs this kind of section."""
        return self.type in (SectionType.MOVIE, SectionType.SHOW)


# Items, media and parts are built by the hundred thousand in a full sync: msgspec structs are
# several times cheaper to build than frozen dataclasses, and `gc=False` keeps them out of the
# garbage collector, whose full passes over a large heap would stall Home Assistant's loop.
# They hold only strings, numbers and tuples of each other, so they can never form a cycle.


class Part(msgspec.Struct, frozen=True, gc=False):
    """One file of a media version."""

    id: str | None
    key: str | None = None
    file: str | None = None
    size: int | None = None
    duration: int | None = None
    container: str | None = None


class Media(msgspec.Struct, frozen=True, gc=False):
    """One media version of a movie or episode."""

    id: str | None
    duration: int | None = None
    bitrate: int | None = None
    width: int | None = None
    height: int | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    audio_channels: int | None = None
    video_resolution: str | None = None
    container: str | None = None
    parts: tuple[Part, ...] = ()


class PlexItem(msgspec.Struct, frozen=True, gc=False):
    """A movie, show, season or episode, normalized from a listing or detail answer."""

    kind: ItemKind
    rating_key: str
    title: str
    section_key: str | None = None
    parent_rating_key: str | None = None
    grandparent_rating_key: str | None = None
    parent_title: str | None = None
    grandparent_title: str | None = None
    index: int | None = None
    parent_index: int | None = None
    year: int | None = None
    guid: str | None = None
    guids: tuple[str, ...] = ()
    added_at: int | None = None
    updated_at: int | None = None
    originally_available_at: str | None = None
    child_count: int | None = None
    leaf_count: int | None = None
    viewed_leaf_count: int | None = None
    view_count: int | None = None
    last_viewed_at: int | None = None
    view_offset: int | None = None
    duration: int | None = None
    media: tuple[Media, ...] = ()
    warnings: tuple[str, ...] = ()
    # A digest of the entry exactly as Plex sent it (None when it had odd fields).
    source_digest: bytes | None = None

    @property
    def parts(self) -> tuple[Part, ...]:
        """Return every part of every media version."""
        return tuple(part for media in self.media for part in media.parts)


@dataclass(frozen=True, slots=True)
class ItemProblem:
    """An entry of a listing that could not be turned into a `PlexItem`."""

    rating_key: str | None
    title: str | None
    message: str


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a paged listing."""

    items: tuple[PlexItem, ...]
    problems: tuple[ItemProblem, ...]
    offset: int
    received: int
    total_size: int | None
    # Rating keys of entries the caller said it holds unchanged (see `parse_items`).
    unchanged: tuple[str, ...] = ()
