"""Send Plex-shaped webhooks (Plex Pass) about an emulated server's items.

PMS POSTs `multipart/form-data` with a `payload` part holding the JSON and, for some events
(`library.new` here by default), a small JPEG `thumb` part. `webhook_payload` builds the JSON
from the live model; `post_webhook` sends it.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Final

import aiohttp

from . import shapes
from .model import EmuItem, EmuServer
from .render import to_json_obj

#: Events PMS sends (owner-only admin events included).
EVENTS: Final = frozenset(
    {
        "library.new",
        "library.on.deck",
        "media.play",
        "media.pause",
        "media.resume",
        "media.stop",
        "media.scrobble",
        "media.rate",
        "admin.database.backup",
        "admin.database.corrupted",
        "device.new",
        "playback.started",
    }
)
#: An 8 by 8 pixel JPEG, small like the poster thumbnails PMS attaches.
THUMB_JPEG: Final = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQERX"
    "RTc4UG1RV19iZ2hnPk1xeXBkeFxlZ2P/2wBDARESEhgVGC8aGi9jQjhCY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2Nj"
    "Y2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2P/wAARCAAIAAgDASIAAhEBAxEB/8QAFQABAQAAAAAAAAAAAAAAAAAA"
    "AAT/xAAUEAEAAAAAAAAAAAAAAAAAAAAA/8QAFAEBAAAAAAAAAAAAAAAAAAAABf/EABQRAQAAAAAAAAAAAAAAAAAA"
    "AAD/2gAMAwEAAhEDEQA/AJgBh5//2Q=="
)
#: Metadata children PMS's webhooks leave out (the item's files and folders).
_LEFT_OUT: Final = ("Media", "Location")


def webhook_metadata(server: EmuServer, item: EmuItem) -> dict[str, Any]:
    """Return the `Metadata` object of a webhook about an item, as its detail answer has it.

    librarySectionType, ratingKey, key, parent/grandparentRatingKey, guid, librarySectionID
    (a number), type, title, grandparentTitle, parentIndex, index, viewCount, viewOffset and
    lastViewedAt (when set), addedAt, updatedAt, thumb, `Guid` array, … — no Media.
    """
    metadata = to_json_obj(shapes.item_node(server, item, detail=True))
    for name in _LEFT_OUT:
        metadata.pop(name, None)
    section = server.sections[item.section_key]
    return {"librarySectionType": section.type, **metadata}


def webhook_payload(
    event: str,
    *,
    server: EmuServer,
    item: EmuItem | None = None,
    account_id: int = 1,
    account_title: str = "emulated",
    player_title: str = "Emulated Player",
    player_uuid: str = "emulated-player",
    rating: float | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Return the JSON PMS sends for `event` (account 1 is the server's owner).

    `rating` (media.rate) goes to the top-level `rating` and `Metadata.userRating`. `extra`
    is merged in last: top-level keys replace, a dict value for a dict key (`"Metadata"`,
    `"Player"`, …) updates that object; a None value removes the key.
    """
    payload: dict[str, Any] = {
        "event": event,
        "user": True,
        "owner": account_id == 1,
        "Account": {
            "id": account_id,
            "thumb": f"https://plex.tv/users/{account_id:016x}/avatar?c=1700000000",
            "title": account_title,
        },
        "Server": {"title": server.friendly_name, "uuid": server.machine_identifier},
        "Player": {
            "local": True,
            "publicAddress": "203.0.113.10",
            "title": player_title,
            "uuid": player_uuid,
        },
    }
    if item is not None:
        payload["Metadata"] = webhook_metadata(server, item)
    if rating is not None:
        payload["rating"] = rating
        payload.setdefault("Metadata", {})["userRating"] = rating
    for key, value in (extra or {}).items():
        if value is None:
            payload.pop(key, None)
        elif isinstance(value, dict) and isinstance(payload.get(key), dict):
            payload[key].update(value)
        else:
            payload[key] = value
    return payload


async def post_webhook(
    session: aiohttp.ClientSession,
    url: str,
    event: str,
    *,
    server: EmuServer,
    item: EmuItem | int | str | None = None,
    account_id: int = 1,
    account_title: str = "emulated",
    player_title: str = "Emulated Player",
    rating: float | None = None,
    extra: dict[str, Any] | None = None,
    thumb: bool | bytes | None = None,
) -> int:
    """POST a webhook the way PMS does and return the answer's status.

    `item` is an `EmuItem` or a ratingKey of `server`. The body is `multipart/form-data`
    with a `payload` part (JSON) and a `thumb` JPEG part: by default for `library.new` only;
    `thumb=True`/`False` forces it, bytes replace the image.
    """
    if item is not None and not isinstance(item, EmuItem):
        item = server.item(item)
    payload = webhook_payload(
        event,
        server=server,
        item=item,
        account_id=account_id,
        account_title=account_title,
        player_title=player_title,
        rating=rating,
        extra=extra,
    )
    form = aiohttp.FormData(quote_fields=False)
    form.add_field(
        "payload",
        json.dumps(payload, ensure_ascii=False, separators=(",", ":")),
        content_type="application/json",
    )
    if thumb is None:
        thumb = event == "library.new" and item is not None
    if thumb is not False:
        image = thumb if isinstance(thumb, bytes) else THUMB_JPEG
        form.add_field("thumb", image, content_type="image/jpeg", filename="image.jpg")
    headers = {"User-Agent": f"PlexMediaServer/{server.version}"}
    async with session.post(url, data=form, headers=headers) as response:
        await response.read()
        return response.status
