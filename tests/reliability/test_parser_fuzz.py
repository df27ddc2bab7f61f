"""Parser fuzzing: mutated real pages give a clean page or a typed error, nothing else.

Pages are rendered by the emulator (the shapes Plex sends, JSON and XML); hypothesis mutates
them at the value level (a field replaced by any JSON value, numbers at and beyond SQLite's
range, deep nesting, wrong types, a Part outside its Media) and at the byte level (bytes
flipped, inserted or cut, a Latin-1 byte in a string). Every page that parses is also turned
into catalog rows, where the digest and SQLite's integer range apply. The default budget is
meant for every CI run on both lanes; RETROVUE_FUZZ_EXAMPLES raises it.

Entries mutated one by one also check the parser's own promise: the fast paths (a JSON entry
decoded from its bytes, a dict converted) either leave an entry to the tolerant path or give
exactly the item the tolerant path gives.
"""

from __future__ import annotations

import copy
import json
import os
from typing import Any, Final

from hypothesis import HealthCheck, example, given, settings, strategies as st
import msgspec
import pytest

from custom_components.retrovue.engine.paths import PathMapper
from custom_components.retrovue.engine.plex.models import ItemKind, Page, PlexItem
from custom_components.retrovue.engine.plex.parse import (
    BodyError,
    _quick_item,
    _raw_item,
    _tolerant_item,
    decode_container,
    parse_listing,
)
from custom_components.retrovue.engine.store.rows import build_row
from tests.emulator import generate_server
from tests.emulator.render import Node, render
from tests.emulator.shapes import container, item_node

# 3 tests x 1,700 examples on each of the two Home Assistant lanes: over 10,000 a CI run
# (the two single-entry tests are far cheaper per example).
EXAMPLES: Final = int(os.environ.get("RETROVUE_FUZZ_EXAMPLES", "1700"))
KINDS: Final = tuple(ItemKind)
_SERVER: Final = generate_server(seed=13, movies=4, shows=2, token="fuzz")
_MAPPER: Final = PathMapper([])
INT64: Final = 2**63


def _pages() -> list[Node]:
    """Return one container per item kind, as a listing of that kind renders it."""
    pages = []
    for kind in ("movie", "show", "season", "episode"):
        items = [item for item in _SERVER.items.values() if item.type == kind][:3]
        pages.append(
            container(
                {"size": len(items), "totalSize": len(items), "librarySectionID": 1},
                [item_node(_SERVER, item, include_guids=True) for item in items],
            )
        )
    return pages


PAGES: Final = _pages()

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([INT64 - 1, INT64, 2**64 - 1, 2**64, -INT64, -INT64 - 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["1e300", "-1e300", "nan", "inf", "", " 12 ", "0x10", "١٢"]),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _json_entries(page: Node) -> dict[str, Any]:
    return dict(json.loads(render(page, "json")))


def _deep(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


@st.composite
def _mutated_json(draw: st.DrawFn) -> bytes:
    """Return a JSON page with some of its entries' values replaced."""
    data = _json_entries(draw(st.sampled_from(PAGES)))
    entries = data["MediaContainer"]["Metadata"]
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        entry = draw(st.sampled_from(entries))
        target: dict[str, Any] = entry
        media_list = [m for m in _listed(entry.get("Media")) if isinstance(m, dict)]
        into_media: bool = draw(st.booleans())
        if media_list and into_media:
            media = draw(st.sampled_from(media_list))
            parts = [p for p in _listed(media.get("Part")) if isinstance(p, dict)]
            target = draw(st.sampled_from([media, *parts]))
        key = draw(st.sampled_from([*target, "Part", "Media", "Guid", "ratingKey", "extra"]))
        choice = draw(st.integers(min_value=0, max_value=9))
        if choice == 0:
            target[key] = _deep(draw(st.integers(min_value=900, max_value=1200)))
        elif choice == 1:
            target.pop(key, None)
        else:
            target[key] = draw(_VALUES)
    if draw(st.booleans()):
        entries.append(draw(_VALUES))  # not an object at all
    body = json.dumps(data, allow_nan=True).encode()
    return _byte_mutation(draw, body)


@st.composite
def _mutated_xml(draw: st.DrawFn) -> bytes:
    """Return an XML page with some attributes replaced and elements moved or nested."""
    page = draw(st.sampled_from(PAGES)).copy()
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        entry = draw(st.sampled_from(page.children))
        nodes = [entry, *entry.children, *(c for m in entry.children for c in m.children)]
        node = draw(st.sampled_from(nodes))
        choice = draw(st.integers(min_value=0, max_value=5))
        if choice == 0 and entry.children:
            media = entry.find("Media")
            if media is not None and media.children:
                entry.children.append(media.children.pop())  # a Part outside its Media
        elif choice == 1:
            nested = Node("Media", {})
            for _ in range(draw(st.integers(min_value=250, max_value=400))):
                nested = Node("Media", {}, [nested])
            node.children.append(nested)
        else:
            key = draw(st.sampled_from([*node.attrs, "ratingKey", "size", "year"]))
            node.attrs[key] = draw(
                st.one_of(
                    st.text(max_size=12),
                    st.integers(min_value=-(2**70), max_value=2**70),
                    st.sampled_from(["1e300", "nan", "-inf", "", "9223372036854775808"]),
                )
            )
    return _byte_mutation(draw, render(page, "xml"))


def _byte_mutation(draw: st.DrawFn, body: bytes) -> bytes:
    """Return the body, or with bytes flipped, inserted or cut, or a Latin-1 byte in it."""
    choice = draw(st.integers(min_value=0, max_value=7))
    if choice > 3 or not body:
        return body
    at = draw(st.integers(min_value=0, max_value=len(body) - 1))
    if choice == 0:
        return body[:at] + bytes([draw(st.integers(0, 255))]) + body[at + 1 :]
    if choice == 1:
        return body[:at] + draw(st.binary(min_size=1, max_size=4)) + body[at:]
    if choice == 2:
        return body[:at]
    quote = body.find(b'"', at)
    return body if quote < 0 else body[: quote + 1] + b"\xe9" + body[quote + 1 :]


def _check(body: bytes, content_type: str) -> None:
    """Parse a body: a typed error, or a page whose items all become catalog rows."""
    try:
        page = parse_listing(body, content_type, kinds=KINDS)
    except BodyError:
        return
    assert isinstance(page, Page)
    assert page.received >= len(page.items) + len(page.problems)
    for item in page.items:
        row = build_row(item, server_id=1, library_id=1, mapper=_MAPPER)
        for value in row.values:
            assert not isinstance(value, int) or -INT64 <= value < INT64, row.values
        for part in row.parts:
            for value in part:
                assert not isinstance(value, int) or -INT64 <= value < INT64, part


_FUZZ: Final = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)


@_FUZZ
@given(body=_mutated_json())
def test_mutated_json_pages_parse_or_fail_typed(body: bytes) -> None:
    _check(body, "application/json")


@_FUZZ
@given(body=_mutated_xml())
def test_mutated_xml_pages_parse_or_fail_typed(body: bytes) -> None:
    _check(body, "text/xml")


@_FUZZ
@given(body=st.binary(max_size=300), content_type=st.sampled_from(["application/json", None]))
def test_arbitrary_bytes_parse_or_fail_typed(body: bytes, content_type: str | None) -> None:
    _check(body, content_type or "")


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_unmutated_pages_parse_clean(fmt: str) -> None:
    """The pages the fuzzing starts from are well-formed: every entry becomes an item."""
    for page in PAGES:
        parsed = parse_listing(render(page, fmt), f"application/{fmt}", kinds=KINDS)
        assert len(parsed.items) == len(page.children)
        assert not parsed.problems
        assert not any(item.warnings for item in parsed.items)


# Text that msgspec reads as a number, or nearly: where the fast paths could part ways with
# the tolerant one.
_NUMBER_TEXTS = st.sampled_from(
    [
        "1e3",
        "1E3",
        "-1e3",
        "1.0",
        "0.5e1",
        "1.5",
        "-0",
        "00012",
        "+5",
        "null",
        "NULL",
        " null",
        " 7 ",
        "0x10",
        "1_000",
        "١٢",
        "9.2e18",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "-9223372036854775809",
        "12345678901234567.0",
        "1e19",
        "",
    ]
)
_FIELD_VALUES = st.one_of(
    _SCALARS,
    _NUMBER_TEXTS,
    st.floats(min_value=-(2.0**64), max_value=2.0**64).map(float.__round__).map(float),
    # Copied: a drawn object can be mutated further, and the samples must stay as they are.
    st.sampled_from([[], {}, [{}], [{"id": ""}], [{"id": "imdb://tt1"}], {"id": "x"}]).map(
        copy.deepcopy
    ),
    _VALUES,
)


def _mutate(draw: st.DrawFn, entry: dict[str, Any], values: st.SearchStrategy[Any]) -> None:
    """Replace or remove one to three fields of an entry, its Media or their Parts."""
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        targets: list[dict[str, Any]] = [entry]
        for media in _listed(entry.get("Media")):
            if isinstance(media, dict):
                targets.append(media)
                targets.extend(p for p in _listed(media.get("Part")) if isinstance(p, dict))
        target = draw(st.sampled_from(targets))
        key = draw(st.sampled_from([*target, "Part", "Guid", "librarySectionID", "extra"]))
        if draw(st.integers(min_value=0, max_value=5)) == 0:
            target.pop(key, None)
        else:
            target[key] = draw(values)


@st.composite
def _mutated_entry(draw: st.DrawFn) -> dict[str, Any]:
    """Return one JSON entry of a page with some values replaced (integers kept exact)."""
    data = _json_entries(draw(st.sampled_from(PAGES)))
    entry: dict[str, Any] = draw(st.sampled_from(data["MediaContainer"]["Metadata"]))
    _mutate(draw, entry, _FIELD_VALUES)
    return entry


# What an XML attribute can hold.
_XML_CHARS = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs"))


@st.composite
def _mutated_xml_entry(draw: st.DrawFn) -> dict[str, Any]:
    """Return one XML entry, decoded as the general path decodes it, with text replaced."""
    page = draw(st.sampled_from(PAGES)).copy()
    page.children = [draw(st.sampled_from(page.children))]
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        node = draw(st.sampled_from([page.children[0], *_descendants(page.children[0])]))
        key = draw(st.sampled_from([*node.attrs, "ratingKey", "type", "librarySectionID"]))
        node.attrs[key] = draw(st.one_of(_NUMBER_TEXTS, st.text(_XML_CHARS, max_size=8)))
    decoded, _ = decode_container(render(page, "xml"), "text/xml")
    (entry,) = (e for tag in ("Video", "Directory") for e in decoded.get(tag, []))
    assert isinstance(entry, dict)
    return entry


def _descendants(node: Node) -> list[Node]:
    return [d for child in node.children for d in (child, *_descendants(child))]


def _agree(entry: dict[str, Any]) -> PlexItem | None:
    """Check that the dict fast path gives the tolerant item or nothing; return its item."""
    tolerant = _tolerant_item(entry, kinds=KINDS, section_key="1")
    quick = _quick_item(entry, KINDS, "1")
    if quick is not None:
        assert quick == tolerant  # warnings included: none
    return tolerant if isinstance(tolerant, PlexItem) else None


@_FUZZ
@given(entry=_mutated_entry())
# Found by this test: lax conversion read the text "NULL" of a stray Part as null, so the fast
# path dropped the tolerant path's warning.
@example(entry={"ratingKey": "5", "type": "show", "title": "Ørnen", "Part": "NULL"})
def test_fast_json_paths_give_the_tolerant_item(entry: dict[str, Any]) -> None:
    tolerant = _agree(entry)
    try:
        raw = json.dumps(entry, allow_nan=False).encode()
    except ValueError:
        return  # NaN or infinity: not JSON, never decoded as an entry
    typed = _raw_item(raw, KINDS, "1", b"digest")
    if isinstance(typed, PlexItem) and typed.source_digest is not None:
        assert msgspec.structs.replace(typed, source_digest=None) == tolerant


@_FUZZ
@given(entry=_mutated_xml_entry())
def test_fast_xml_path_gives_the_tolerant_item(entry: dict[str, Any]) -> None:
    _agree(entry)
