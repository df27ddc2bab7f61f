"""Plex webhooks (Plex Pass): the `payload` JSON of the multipart POST, read defensively.

Plex POSTs `multipart/form-data` with a `payload` part (JSON) and, for some events, a small
JPEG `thumb` part. Delivery is best effort and the sender is only as trustworthy as the URL's
secret: everything here is bounded and checked, and a payload that does not hold what an event
needs is refused with a reason, never half-read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import orjson

from .errors import PlexError

# The largest `payload` part read (Plex's are a few kB; the thumb part is not read).
MAX_PAYLOAD: Final = 256 * 1024

PLAYBACK_EVENTS: Final = frozenset(
    {"media.play", "media.pause", "media.resume", "media.stop", "media.scrobble", "media.rate"}
)
LIBRARY_EVENTS: Final = frozenset({"library.new", "library.on.deck"})


class WebhookError(PlexError):
    """A webhook payload that cannot be used."""

    def __init__(self, detail: str, *, server: str = "webhook") -> None:
        """Describe what is wrong with the payload (never its content)."""
        super().__init__(detail, server=server)


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """What Retrovue uses of a webhook."""

    event: str
    server_uuid: str
    server_title: str | None
    account_id: str | None
    account_title: str | None
    player_title: str | None
    rating_key: str | None
    parent_rating_key: str | None
    grandparent_rating_key: str | None
    section_id: str | None
    item_type: str | None
    title: str | None
    grandparent_title: str | None
    parent_index: int | None
    index: int | None
    view_offset: int | None
    user_rating: float | None

    @property
    def playback(self) -> bool:
        """Return whether the event is about playback (play, pause, stop, scrobble, rate …)."""
        return self.event in PLAYBACK_EVENTS


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value[:500] or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit() and len(value) < 20:
        return int(value)
    return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    return None


def _object(payload: dict[str, Any], key: str) -> dict[str, Any]:
    value = payload.get(key)
    return value if isinstance(value, dict) else {}


def parse_webhook(payload: bytes | str) -> WebhookEvent:
    """Read a webhook's `payload` part; raise `WebhookError` saying why it cannot be used."""
    raw = payload.encode() if isinstance(payload, str) else payload
    if len(raw) > MAX_PAYLOAD:
        raise WebhookError(f"payload of {len(raw)} bytes exceeds {MAX_PAYLOAD}")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise WebhookError(f"payload is not JSON ({err.msg})") from None
    if not isinstance(data, dict):
        raise WebhookError("payload is not a JSON object")
    event = _text(data.get("event"))
    if event is None:
        raise WebhookError("payload has no event")
    server = _object(data, "Server")
    uuid = _text(server.get("uuid"))
    if uuid is None:
        raise WebhookError("payload has no Server.uuid")
    account = _object(data, "Account")
    player = _object(data, "Player")
    metadata = _object(data, "Metadata")
    rating_key = _text(metadata.get("ratingKey"))
    if (event in PLAYBACK_EVENTS or event == "library.new") and rating_key is None:
        raise WebhookError(f"{event} without Metadata.ratingKey")
    return WebhookEvent(
        event=event,
        server_uuid=uuid,
        server_title=_text(server.get("title")),
        account_id=_text(account.get("id")),
        account_title=_text(account.get("title")),
        player_title=_text(player.get("title")),
        rating_key=rating_key,
        parent_rating_key=_text(metadata.get("parentRatingKey")),
        grandparent_rating_key=_text(metadata.get("grandparentRatingKey")),
        section_id=_text(metadata.get("librarySectionID")),
        item_type=_text(metadata.get("type")),
        title=_text(metadata.get("title")),
        grandparent_title=_text(metadata.get("grandparentTitle")),
        parent_index=_int(metadata.get("parentIndex")),
        index=_int(metadata.get("index")),
        view_offset=_int(metadata.get("viewOffset")),
        user_rating=_float(data.get("rating", metadata.get("userRating"))),
    )
