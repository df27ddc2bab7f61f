"""A stand-in for plex.tv's sign-in and resources API, over real HTTP on 127.0.0.1."""

from __future__ import annotations

from .standin import (
    ACCOUNT_TOKEN,
    PlexTvFault,
    PlexTvStandIn,
    StandInConnection,
    StandInResource,
)

__all__ = [
    "ACCOUNT_TOKEN",
    "PlexTvFault",
    "PlexTvStandIn",
    "StandInConnection",
    "StandInResource",
]
