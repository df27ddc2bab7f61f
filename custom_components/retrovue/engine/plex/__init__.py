"""Async Plex Media Server client: paging, JSON or XML, typed models and errors."""

from .client import DEFAULT_PAGE_SIZE, Listing, ListingStats, PlexClient
from .errors import (
    PlexAuthError,
    PlexConnectionError,
    PlexError,
    PlexNotFoundError,
    PlexResponseError,
    PlexSSLError,
    PlexTimeoutError,
)
from .models import (
    ItemKind,
    ItemProblem,
    Media,
    Page,
    Part,
    PlexItem,
    PlexType,
    Section,
    SectionType,
    ServerIdentity,
)

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "ItemKind",
    "ItemProblem",
    "Listing",
    "ListingStats",
    "Media",
    "Page",
    "Part",
    "PlexAuthError",
    "PlexClient",
    "PlexConnectionError",
    "PlexError",
    "PlexItem",
    "PlexNotFoundError",
    "PlexResponseError",
    "PlexSSLError",
    "PlexTimeoutError",
    "PlexType",
    "Section",
    "SectionType",
    "ServerIdentity",
]
