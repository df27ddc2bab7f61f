"""Reading Plex webhook payloads defensively."""

from __future__ import annotations

import json
from typing import Any

import pytest

from custom_components.retrovue.engine.plex.webhooks import (
    MAX_PAYLOAD,
    WebhookError,
    parse_webhook,
)


def _payload(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "event": "media.scrobble",
        "user": True,
        "owner": True,
        "Account": {"id": 1, "thumb": "https://plex.tv/users/x/avatar", "title": "ana"},
        "Server": {"title": "Living room", "uuid": "abc123"},
        "Player": {"local": True, "publicAddress": "203.0.113.7", "title": "TV", "uuid": "p1"},
        "Metadata": {
            "librarySectionType": "show",
            "ratingKey": "45",
            "parentRatingKey": "44",
            "grandparentRatingKey": "40",
            "librarySectionID": 2,
            "type": "episode",
            "title": "Pilot",
            "grandparentTitle": "Ørnen",
            "parentIndex": 1,
            "index": "1",
            "viewCount": 3,
            "viewOffset": 1234,
        },
    }
    payload.update(overrides)
    return payload


def test_a_scrobble_is_read() -> None:
    event = parse_webhook(json.dumps(_payload()).encode())
    assert event.playback
    assert (event.event, event.server_uuid, event.rating_key) == ("media.scrobble", "abc123", "45")
    assert (event.parent_rating_key, event.grandparent_rating_key, event.section_id) == (
        "44",
        "40",
        "2",
    )
    assert (event.account_id, event.account_title, event.player_title) == ("1", "ana", "TV")
    assert (event.grandparent_title, event.parent_index, event.index) == ("Ørnen", 1, 1)
    assert event.view_offset == 1234


def test_a_rating_and_a_new_item_are_read() -> None:
    rated = parse_webhook(json.dumps(_payload(event="media.rate", rating=8)))
    assert (rated.playback, rated.user_rating) == (True, 8.0)
    new = parse_webhook(json.dumps(_payload(event="library.new")))
    assert (new.playback, new.rating_key) == (False, "45")
    backup = parse_webhook(json.dumps({"event": "admin.database.backup", "Server": {"uuid": "u"}}))
    assert (backup.event, backup.rating_key) == ("admin.database.backup", None)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (json.dumps({"Server": {"uuid": "u"}}).encode(), "no event"),
        (json.dumps({"event": "media.play"}).encode(), "no Server.uuid"),
        (json.dumps({"event": "media.play", "Server": "abc"}).encode(), "no Server.uuid"),
        (
            json.dumps({"event": "media.play", "Server": {"uuid": "u"}, "Metadata": {}}).encode(),
            "media.play without Metadata.ratingKey",
        ),
        (b"{" + b" " * MAX_PAYLOAD + b"}", "exceeds"),
    ],
)
def test_unusable_payloads_are_refused_with_a_reason(body: bytes, reason: str) -> None:
    with pytest.raises(WebhookError, match=reason):
        parse_webhook(body)


def test_odd_field_types_are_read_as_missing() -> None:
    event = parse_webhook(
        json.dumps(
            _payload(
                Account=[1],
                Player=None,
                Metadata={"ratingKey": 45, "index": True, "parentIndex": "x", "title": {"a": 1}},
            )
        )
    )
    assert (event.rating_key, event.index, event.parent_index, event.title) == (
        "45",
        None,
        None,
        None,
    )
    assert (event.account_id, event.player_title) == (None, None)
