"""The fast item parser gives what the tolerant one gives, and leaves every odd entry to it."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from custom_components.retrovue.engine.plex import ItemKind, PlexItem
from custom_components.retrovue.engine.plex.parse import (
    _quick_item,
    _tolerant_item,
    decode_container,
    parse_items,
)
from tests.emulator import generate_server
from tests.emulator.render import render
from tests.emulator.shapes import container, item_node

_KINDS = tuple(ItemKind)


def _entries(fmt: str) -> list[dict[str, Any]]:
    """Every item of a generated server (watch state, specials, legacy agents, unicode)."""
    server = generate_server(seed=7, movies=40, shows=6)
    nodes = [item_node(server, item, include_guids=True) for item in server.items.values()]
    body = render(container({"size": len(nodes)}, nodes), fmt)
    decoded, _ = decode_container(body, f"application/{fmt}")
    entries = [
        entry
        for tag in ("Metadata", "Video", "Directory")
        for entry in decoded.get(tag, [])
        if isinstance(entry, dict)
    ]
    assert len(entries) == len(server.items)
    return entries


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_quick_and_tolerant_agree_on_every_generated_entry(fmt: str) -> None:
    entries = _entries(fmt)
    watched = 0
    for entry in entries:
        quick = _quick_item(entry, _KINDS, "9")
        assert quick is not None, entry.get("ratingKey")
        slow = _tolerant_item(entry, kinds=_KINDS, section_key="9")
        assert quick == slow
        assert isinstance(slow, PlexItem)
        assert slow.warnings == ()
        watched += quick.view_count is not None
    assert {e["type"] for e in entries} == {"movie", "show", "season", "episode"}
    assert watched  # watch state is compared too


_ODD_CHANGES: list[tuple[str, Any, str]] = [
    ("year", 1999.5, ""),
    ("year", "19x9", "year"),
    ("year", True, ""),
    ("addedAt", "", ""),
    ("title", "", "title missing"),
    ("title", None, "title missing"),
    ("guid", ["x"], "guid"),
    ("parentTitle", {"a": 1}, "parentTitle"),
    ("Guid", {"id": "imdb://tt1"}, ""),
    ("Guid", [{"id": 5}], ""),
    ("Guid", ["imdb://tt1"], "Guid"),
    ("Media", "none", "Media"),
    ("Media", [{"id": 1, "Part": [{"id": 2, "size": "big"}]}], "size"),
    ("Media", [{"id": 1, "Part": "file"}], "Part"),
    ("type", None, "type missing"),
    ("type", ["movie"], "type is not text"),
]


@pytest.mark.parametrize(("key", "value", "warning"), _ODD_CHANGES)
def test_odd_fields_go_to_the_tolerant_parser(key: str, value: Any, warning: str) -> None:
    entry = copy.deepcopy(next(e for e in _entries("json") if e["type"] == "movie"))
    entry[key] = value
    assert _quick_item(entry, (ItemKind.MOVIE,), None) is None
    page = parse_items({"Metadata": [entry]}, kinds=(ItemKind.MOVIE,))
    (item,) = page.items
    if warning:
        assert any(warning in text for text in item.warnings), item.warnings
    assert item.rating_key == entry["ratingKey"]


def test_unwanted_kinds_and_missing_keys_are_problems() -> None:
    movie = next(e for e in _entries("json") if e["type"] == "movie")
    assert _quick_item(movie, (ItemKind.EPISODE,), None) is None
    page = parse_items({"Metadata": [movie, {**movie, "ratingKey": ""}]}, kinds=(ItemKind.EPISODE,))
    assert not page.items
    assert [p.message for p in page.problems] == [
        "unexpected type 'movie'",
        "entry has no ratingKey",
    ]
