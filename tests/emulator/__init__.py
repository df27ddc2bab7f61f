"""Emulate Plex Media Servers over real HTTP for Retrovue's tests and benchmarks."""

from __future__ import annotations

from .app import PlexEmulator, RecordedRequest
from .faults import BAD_ITEM_VARIANTS, Fault, FaultKind, FaultSet
from .generate import generate_server
from .live import PlaySession
from .model import (
    EPISODE,
    MOVIE,
    SEASON,
    SHOW,
    UNSET,
    EmuItem,
    EmuMedia,
    EmuPart,
    EmuSection,
    EmuServer,
    ServerStats,
)
from .notifications import NotificationHub
from .webhooks import post_webhook, webhook_payload

__all__ = [
    "BAD_ITEM_VARIANTS",
    "EPISODE",
    "MOVIE",
    "SEASON",
    "SHOW",
    "UNSET",
    "EmuItem",
    "EmuMedia",
    "EmuPart",
    "EmuSection",
    "EmuServer",
    "Fault",
    "FaultKind",
    "FaultSet",
    "NotificationHub",
    "PlaySession",
    "PlexEmulator",
    "RecordedRequest",
    "ServerStats",
    "generate_server",
    "post_webhook",
    "webhook_payload",
]
