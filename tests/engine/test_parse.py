"""The fast item parser gives what the tolerant one gives, and leaves every odd entry to it."""

from __future__ import annotations

import copy
from typing import Any

import msgspec
import orjson
import pytest

from custom_components.retrovue.engine.plex import ItemKind, PlexItem
from custom_components.retrovue.engine.plex.parse import (
    _quick_item,
    _tolerant_item,
    decode_container,
    parse_items,
    parse_listing,
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


def _json_page(entries: list[Any], **attrs: Any) -> bytes:
    return orjson.dumps({"MediaContainer": {"size": len(entries), **attrs, "Metadata": entries}})


def test_typed_json_path_gives_what_the_quick_parser_gives() -> None:
    entries = _entries("json")
    page = parse_listing(_json_page(entries, totalSize=len(entries)), None, kinds=_KINDS)
    assert page.received == len(entries) == len(page.items)
    assert page.total_size == len(entries)
    assert not page.problems
    for entry, item in zip(entries, page.items, strict=True):
        quick = _quick_item(entry, _KINDS, None)
        assert msgspec.structs.replace(item, source_digest=None) == quick
        assert item.source_digest is not None
    # Every digest is the entry's: given them all, the same page parses nothing.
    known = {item.source_digest: item.rating_key for item in page.items if item.source_digest}
    again = parse_listing(_json_page(entries), None, kinds=_KINDS, known=known)
    assert again.items == ()
    assert again.unchanged == tuple(entry["ratingKey"] for entry in entries)
    assert again.received == len(entries)
    # One changed byte in one entry: only that entry is parsed.
    entries[3] = {**entries[3], "viewCount": 99}
    changed = parse_listing(_json_page(entries), None, kinds=_KINDS, known=known)
    assert [item.rating_key for item in changed.items] == [entries[3]["ratingKey"]]
    assert changed.items[0].view_count == 99
    assert len(changed.unchanged) == len(entries) - 1


@pytest.mark.parametrize(("key", "value", "warning"), _ODD_CHANGES)
def test_odd_fields_in_a_json_page_reach_the_tolerant_parser(
    key: str, value: Any, warning: str
) -> None:
    movies = [e for e in _entries("json") if e["type"] == "movie"][:3]
    movies[1] = {**movies[1], key: value}
    page = parse_listing(_json_page(movies), "application/json", kinds=(ItemKind.MOVIE,))
    assert [item.rating_key for item in page.items] == [e["ratingKey"] for e in movies]
    odd = page.items[1]
    if warning:
        assert any(warning in text for text in odd.warnings), odd.warnings
        assert odd.source_digest is None  # reported again on every run, never skipped
    assert page.items[0].warnings == page.items[2].warnings == ()


def test_odd_json_pages_take_the_general_path() -> None:
    container = {
        "librarySectionID": 3,
        "totalSize": "2",
        "Metadata": [
            {"ratingKey": 5, "type": "movie", "title": "T", "year": "19x9"},
            {"type": "movie", "title": "No key"},
            "garbage",
        ],
    }
    body = orjson.dumps({"MediaContainer": container})
    for variant in (body, b"  \n" + body):
        page = parse_listing(variant, "application/json", kinds=(ItemKind.MOVIE,))
        assert [item.rating_key for item in page.items] == ["5"]
        assert page.items[0].section_key == "3"
        assert any("year" in w for w in page.items[0].warnings)
        assert [(p.rating_key, p.title) for p in page.problems] == [(None, "No key"), (None, None)]
        assert page.total_size == 2


def test_json_entries_that_are_not_items_are_problems_or_skipped() -> None:
    movie = next(e for e in _entries("json") if e["type"] == "movie")
    shortcut = {"key": "/library/metadata/9/allLeaves", "title": "All episodes"}
    entries = [
        shortcut,
        movie,
        "garbage",
        {**movie, "ratingKey": ""},
        {**movie, "ratingKey": "x", "type": "clip"},
    ]
    page = parse_listing(_json_page(entries, librarySectionID=4), None, kinds=(ItemKind.MOVIE,))
    assert [item.rating_key for item in page.items] == [movie["ratingKey"]]
    assert page.items[0].section_key == "4"
    assert [p.message for p in page.problems] == [
        "entry is not an object: str",
        "entry has no ratingKey",
        "unexpected type 'clip'",
    ]
    assert page.received == 4  # the shortcut is not an entry of the listing
