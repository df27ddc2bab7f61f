"""The fast item parser gives what the tolerant one gives, and leaves every odd entry to it."""

from __future__ import annotations

import copy
import json
from typing import Any

import msgspec
import orjson
import pytest

from custom_components.retrovue.engine.plex import ItemKind, Media, Part, PlexItem
from custom_components.retrovue.engine.plex.parse import (
    BodyError,
    _quick_item,
    _tolerant_item,
    container_int,
    decode_container,
    parse_identity,
    parse_items,
    parse_listing,
    parse_sections,
)
from custom_components.retrovue.engine.plex.wire import (
    GUID,
    INT_MAX,
    INT_MIN,
    ITEM,
    MEDIA,
    PART,
    FieldKind,
    WireNode,
)
from tests.emulator import generate_server
from tests.emulator.render import Node, render
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
    ("title", "", "title: missing"),
    ("title", None, "title: missing"),
    ("guid", ["x"], "guid"),
    ("parentTitle", {"a": 1}, "parentTitle"),
    ("Guid", {"id": "imdb://tt1"}, ""),
    ("Guid", [{"id": 5}], ""),
    ("Guid", ["imdb://tt1"], "Guid"),
    ("Media", "none", "Media"),
    ("Media", [{"id": 1, "Part": [{"id": 2, "size": "big"}]}], "size"),
    ("Media", [{"id": 1, "Part": "file"}], "Part"),
    ("type", None, "type: missing"),
    ("type", ["movie"], "type: not text"),
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


# --- the wire schema: one declaration, read alike by every path ----------------------------------


def _item_paths(entry: dict[str, Any] | Node, fmt: str) -> list[PlexItem]:
    """Return the item of one entry as each path reads it, in `fmt` ("json" or "xml").

    The listing path (typed JSON from raw bytes, or the XML split), the page decoded whole
    (dicts converted), and the tolerant path on the decoded dict.
    """
    if isinstance(entry, Node):
        body = render(container({"size": 1}, [entry]), fmt)
    else:
        body = _json_page([entry])
    ctype = f"application/{fmt}"
    listed = parse_listing(body, ctype, kinds=_KINDS)
    decoded, _ = decode_container(body, ctype)
    (raw_entry,) = (e for tag in ("Metadata", "Video") for e in decoded.get(tag, []))
    whole = parse_items(copy.deepcopy(decoded), kinds=_KINDS)
    tolerant = _tolerant_item(raw_entry, kinds=_KINDS)
    assert isinstance(tolerant, PlexItem), tolerant
    assert not listed.problems
    assert not whole.problems
    return [*listed.items, *whole.items, tolerant]


def _same(items: list[PlexItem]) -> PlexItem:
    """Return the one item every path gave (source digests aside)."""
    plain = {msgspec.structs.replace(item, source_digest=None) for item in items}
    assert len(plain) == 1, plain
    return items[-1]


_LITERAL_JSON = {
    "ratingKey": "4242",
    "key": "/library/metadata/4242",
    "parentRatingKey": "4241",
    "grandparentRatingKey": "4240",
    "guid": "plex://episode/5d9c086c46115600200aa2fe",
    "type": "episode",
    "title": "Pilot",
    "grandparentTitle": "The Show",
    "parentTitle": "Season 1",
    "librarySectionID": 2,
    "index": 1,
    "parentIndex": 1,
    "year": 2008,
    "duration": 3480000,
    "originallyAvailableAt": "2008-01-20",
    "addedAt": 1700000000,
    "updatedAt": 1700000100,
    "childCount": 0,
    "leafCount": 1,
    "viewedLeafCount": 1,
    "viewCount": 2,
    "lastViewedAt": 1700000200,
    "viewOffset": 60000,
    "Media": [
        {
            "id": 901,
            "duration": 3480000,
            "bitrate": 8000,
            "width": 1920,
            "height": 1080,
            "audioChannels": 6,
            "audioCodec": "eac3",
            "videoCodec": "h264",
            "videoResolution": "1080",
            "container": "mkv",
            "Part": [
                {
                    "id": 902,
                    "key": "/library/parts/902/1700000000/file.mkv",
                    "duration": 3480000,
                    "file": "/data/tv/The Show/S01E01.mkv",
                    "size": 3500000000,
                    "container": "mkv",
                }
            ],
        }
    ],
    "Guid": [{"id": "imdb://tt0959621"}, {"id": "tvdb://349232"}],
}

_LITERAL_XML = (
    b'<MediaContainer size="1"><Video ratingKey="4242" key="/library/metadata/4242" '
    b'parentRatingKey="4241" grandparentRatingKey="4240" '
    b'guid="plex://episode/5d9c086c46115600200aa2fe" type="episode" title="Pilot" '
    b'grandparentTitle="The Show" parentTitle="Season 1" librarySectionID="2" index="1" '
    b'parentIndex="1" year="2008" duration="3480000" originallyAvailableAt="2008-01-20" '
    b'addedAt="1700000000" updatedAt="1700000100" childCount="0" leafCount="1" '
    b'viewedLeafCount="1" viewCount="2" lastViewedAt="1700000200" viewOffset="60000">'
    b'<Media id="901" duration="3480000" bitrate="8000" width="1920" height="1080" '
    b'audioChannels="6" audioCodec="eac3" videoCodec="h264" videoResolution="1080" '
    b'container="mkv"><Part id="902" key="/library/parts/902/1700000000/file.mkv" '
    b'duration="3480000" file="/data/tv/The Show/S01E01.mkv" size="3500000000" '
    b'container="mkv" /></Media><Guid id="imdb://tt0959621" /><Guid id="tvdb://349232" />'
    b"</Video></MediaContainer>"
)

# Written out by hand from what Plex sends, not from the declaration: a misspelt wire name
# there would leave its field empty here.
_LITERAL_ITEM = PlexItem(
    kind=ItemKind.EPISODE,
    rating_key="4242",
    title="Pilot",
    section_key="2",
    parent_rating_key="4241",
    grandparent_rating_key="4240",
    parent_title="Season 1",
    grandparent_title="The Show",
    index=1,
    parent_index=1,
    year=2008,
    guid="plex://episode/5d9c086c46115600200aa2fe",
    guids=("imdb://tt0959621", "tvdb://349232"),
    added_at=1700000000,
    updated_at=1700000100,
    originally_available_at="2008-01-20",
    child_count=0,
    leaf_count=1,
    viewed_leaf_count=1,
    view_count=2,
    last_viewed_at=1700000200,
    view_offset=60000,
    duration=3480000,
    media=(
        Media(
            id="901",
            duration=3480000,
            bitrate=8000,
            width=1920,
            height=1080,
            video_codec="h264",
            audio_codec="eac3",
            audio_channels=6,
            video_resolution="1080",
            container="mkv",
            parts=(
                Part(
                    id="902",
                    key="/library/parts/902/1700000000/file.mkv",
                    file="/data/tv/The Show/S01E01.mkv",
                    size=3500000000,
                    duration=3480000,
                    container="mkv",
                ),
            ),
        ),
    ),
)


def test_a_plex_entry_reads_the_same_in_json_and_xml() -> None:
    json_items = _item_paths(_LITERAL_JSON, "json")
    decoded, _ = decode_container(_LITERAL_XML, "text/xml")
    xml_page = parse_listing(_LITERAL_XML, "text/xml", kinds=_KINDS)
    xml_items = [*xml_page.items, _tolerant_item(decoded["Video"][0], kinds=_KINDS)]
    for item in (*json_items, *xml_items):
        assert isinstance(item, PlexItem)
        assert msgspec.structs.replace(item, source_digest=None) == _LITERAL_ITEM
    assert json_items[0].source_digest is not None
    assert xml_page.items[0].source_digest is not None


def _declared(node: WireNode, tag: str, counter: list[int]) -> tuple[Node, Any]:
    """Return an element with every declared field of `node` set, and the values expected.

    Each scalar gets a value of its own (numbers and ids as numbers, rendered as text in
    XML); each list of children gets two. The expected values are the model's attributes,
    as `msgspec.to_builtins` gives them; a node without a model is its one field's value.
    """
    attrs: dict[str, Any] = {}
    children: list[Node] = []
    expected: dict[str, Any] = {}
    for field in node.fields:
        counter[0] += 1
        n = counter[0]
        if field.kind is FieldKind.NUMBER:
            attrs[field.wire] = expected[field.attr] = 1000 + n
        elif field.kind is FieldKind.ID:
            attrs[field.wire] = 500 + n
            expected[field.attr] = str(500 + n)
        elif field.kind in (FieldKind.TEXT, FieldKind.KEY):
            attrs[field.wire] = expected[field.attr] = f"{field.wire} {n} ü & <é>"
        elif field.kind is FieldKind.TYPE:
            attrs[field.wire] = expected[field.attr] = "episode"
        elif field.kind is FieldKind.NODES:
            assert field.node is not None
            pairs = [_declared(field.node, field.wire, counter) for _ in range(2)]
            children.extend(child for child, _ in pairs)
            expected[field.attr] = tuple(value for _, value in pairs)
    if node.model is None:
        (value,) = expected.values()
        return Node(tag, attrs, children), value
    return Node(tag, attrs, children, group="Metadata" if node is ITEM else ""), expected


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_every_declared_field_round_trips_to_its_attribute(fmt: str) -> None:
    node, expected = _declared(ITEM, "Video", [0])
    items = _item_paths(node, fmt)
    item = _same(items)
    # The listing and the page decoded whole read it on their fast paths: with its digest.
    assert [each.source_digest is not None for each in items] == [True, True, False]
    built = msgspec.to_builtins(item)
    assert {attr: built[attr] for attr in expected} == expected
    # Nothing is left out: every attribute of the models is declared, but what parsing adds.
    assert set(built) - set(expected) == {"warnings", "source_digest"}
    assert set(built["media"][0]) == set(expected["media"][0])
    assert set(built["media"][0]["parts"][0]) == set(expected["media"][0]["parts"][0])
    assert item.warnings == ()
    assert len(item.guids) == len(item.media) == len(item.media[0].parts) == 2


def test_the_declaration_covers_the_models() -> None:
    for node, model in ((ITEM, PlexItem), (MEDIA, Media), (PART, Part)):
        declared = [f.attr for f in node.fields if f.kind is not FieldKind.STRAY]
        assert set(node.struct.__struct_encode_fields__) == {f.wire for f in node.fields}
        assert model.__struct_fields__[: len(declared)] == tuple(declared)
    assert [f.attr for f in GUID.fields] == ["id"]
    with pytest.raises(TypeError, match="in its order"):
        WireNode("Part", Part, ("key", "key", "text"), ("id", "id", "id"))
    with pytest.raises(TypeError, match="needs its node"):
        WireNode("Media", None, ("Part", "parts", "nodes"))
    with pytest.raises(TypeError, match="identifiers"):  # compiled code names only those
        WireNode("Part", None, ("id", "id)", "id"))


def test_sections_identity_and_containers_read_values_as_items_do() -> None:
    container = {
        "totalSize": " 12 ",
        "size": "abc",
        "librarySectionID": 4.0,
        "Directory": {
            "key": 1,
            "type": "movie",
            "title": "",
            "Location": "nope",
            "updatedAt": "1e3",
            "scannedAt": 2**64,
            "uuid": ["x"],
        },
    }
    assert container_int(container, "totalSize") == 12
    assert container_int(container, "size") is None
    (section,) = parse_sections(container)
    assert (section.key, section.type, section.title) == ("1", "movie", "1")
    assert section.locations == ()
    assert (section.updated_at, section.scanned_at, section.uuid) == (1000, None, None)
    with pytest.raises(BodyError, match="machineIdentifier"):
        parse_identity({"machineIdentifier": {"id": "x"}})
    identity = parse_identity({"machineIdentifier": "abc", "version": 1.5, "platform": True})
    assert (identity.version, identity.platform, identity.friendly_name) == ("1.5", "1", None)
    # The container's section is an id like an entry's own.
    entry = _json_entry(_declared(ITEM, "Video", [0])[0])
    del entry["librarySectionID"]
    (item,) = parse_items({**container, "Metadata": [entry]}, kinds=_KINDS).items
    assert item.section_key == "4"


def _target(entry: Any, where: str) -> Any:
    """Return the item (""), its first Media ("media") or that Media's first Part ("part")."""
    if isinstance(entry, Node):
        media = entry.find("Media")
        assert media is not None
        return {"": entry, "media": media, "part": media.find("Part")}[where]
    if isinstance(entry, dict):
        return {"": entry, "media": entry["Media"][0], "part": entry["Media"][0]["Part"][0]}[where]
    return {"": entry, "media": entry.media[0], "part": entry.media[0].parts[0]}[where]


_PREFIX = {"": "", "media": "Media[0].", "part": "Media[0].Part[0]."}
_SCALARS = [
    (where, field)
    for where, node in (("", ITEM), ("media", MEDIA), ("part", PART))
    for field in node.fields
    if field.kind in (FieldKind.NUMBER, FieldKind.TEXT, FieldKind.ID)
]


def _json_entry(node: Node) -> dict[str, Any]:
    """Return an element as the entry of a JSON listing (its integers exact, unlike orjson's)."""
    body = json.loads(render(container({"size": 1}, [node]), "json"))
    (entry,) = body["MediaContainer"]["Metadata"]
    assert isinstance(entry, dict)
    return entry


def _with(item: PlexItem, where: str, **changes: Any) -> PlexItem:
    """Return an item with attributes of itself, its first Media or first Part changed."""
    replace = msgspec.structs.replace
    if where == "":
        return replace(item, **changes)
    media = item.media[0]
    if where == "media":
        media = replace(media, **changes)
    else:
        media = replace(media, parts=(replace(media.parts[0], **changes), *media.parts[1:]))
    return replace(item, media=(media, *item.media[1:]))


# Every scalar field, with a value it cannot hold (XML attributes are text: only numbers fail).
_FAILURES = [
    (fmt, where, field)
    for fmt in ("json", "xml")
    for where, field in _SCALARS
    if fmt == "json" or field.kind is FieldKind.NUMBER
]


@pytest.mark.parametrize(
    ("fmt", "where", "field"),
    _FAILURES,
    ids=[f"{fmt}-{_PREFIX[where]}{field.wire}" for fmt, where, field in _FAILURES],
)
def test_the_tolerant_path_names_the_field_that_failed(fmt: str, where: str, field: Any) -> None:
    node, _ = _declared(ITEM, "Video", [0])
    clean = _same(_item_paths(node, fmt))
    entry: Node | dict[str, Any] = node if fmt == "xml" else _json_entry(node)
    name = f"{_PREFIX[where]}{field.wire}"
    bad: Any
    if field.kind is FieldKind.NUMBER:
        bad, warning = "abc", f"{name}: not a number: 'abc'"
    else:
        bad, warning = {"a": 1}, f"{name}: not text: dict"
    target = _target(entry, where)
    if isinstance(target, Node):
        target.attrs[field.wire] = bad
    else:
        target[field.wire] = bad
    items = _item_paths(entry, fmt)
    item = _same(items)
    assert item.warnings == (warning,)
    assert getattr(_target(item, where), field.attr) is None
    assert all(each.source_digest is None for each in items)  # reported again on every run
    # Everything else is read as it was.
    restored = _with(item, where, **{field.attr: getattr(_target(clean, where), field.attr)})
    assert msgspec.structs.replace(restored, warnings=()) == msgspec.structs.replace(
        clean, source_digest=None
    )


@pytest.mark.parametrize(
    ("key", "value", "warning"),
    [
        ("Media", "none", "Media: not a list: str"),
        ("Guid", ["imdb://tt1"], "Guid[0]: not an object: str"),
        ("year", INT_MAX + 1, f"year: out of range: {INT_MAX + 1}"),
        ("year", INT_MIN - 1, f"year: out of range: {INT_MIN - 1}"),
        ("year", 1e300, "year: out of range: 1e+300"),
        ("year", [1999], "year: not a number: list"),
        ("title", None, "title: missing"),
        ("Part", [{"id": 1}], "Part outside Media ignored"),
    ],
)
def test_tolerant_warnings_name_the_wire_field(key: str, value: Any, warning: str) -> None:
    entry = _json_entry(_declared(ITEM, "Video", [0])[0])
    entry[key] = value
    item = _tolerant_item(entry, kinds=_KINDS)
    assert isinstance(item, PlexItem)
    assert item.warnings == (warning,)


@pytest.mark.parametrize(
    ("key", "value", "attr", "expected", "warnings"),
    [
        ("librarySectionID", 7.0, "section_key", "7", ()),
        ("librarySectionID", 7.5, "section_key", "7.5", ()),
        ("year", 1999.9, "year", 1999, ()),
        ("year", " 1999 ", "year", 1999, ()),
        ("year", float("nan"), "year", None, ("year: not a number: nan",)),
        ("Guid", [{"id": ""}, {"id": "imdb://tt1"}, {}], "guids", ("imdb://tt1",), ()),
        ("Guid", {"id": 5}, "guids", ("5",), ()),
    ],
)
def test_the_tolerant_path_reads_what_it_can(
    key: str, value: Any, attr: str, expected: Any, warnings: tuple[str, ...]
) -> None:
    entry = _json_entry(_declared(ITEM, "Video", [0])[0])
    entry[key] = value
    item = _tolerant_item(entry, kinds=_KINDS)
    assert isinstance(item, PlexItem)
    assert getattr(item, attr) == expected
    assert item.warnings == warnings
    if not warnings and _quick_item(entry, _KINDS, None) is not None:
        assert _quick_item(entry, _KINDS, None) == item


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize(
    ("value", "year", "warned"),
    [
        (INT_MAX, INT_MAX, False),
        (INT_MIN, INT_MIN, False),
        (INT_MAX + 1, None, True),
        (INT_MIN - 1, None, True),
    ],
)
def test_numbers_outside_sqlite_range_are_missing(
    fmt: str, value: int, year: int | None, warned: bool
) -> None:
    # Only the listing path and the tolerant one: orjson, which decodes a JSON page whole,
    # reads an integer beyond 64 bits as a float (-2**63 - 1 as -2**63).
    node, _ = _declared(ITEM, "Video", [0])
    node.attrs["year"] = value
    body = render(container({"size": 1}, [node]), fmt)
    (listed,) = parse_listing(body, f"application/{fmt}", kinds=_KINDS).items
    entry = _json_entry(node) if fmt == "json" else {**_json_entry(node), "year": str(value)}
    tolerant = _tolerant_item(entry, kinds=_KINDS)
    assert isinstance(tolerant, PlexItem)
    assert _same([listed, tolerant]).year == year
    sent = value if fmt == "json" else str(value)
    assert listed.warnings == ((f"year: out of range: {sent!r}",) if warned else ())
    assert (listed.source_digest is None) is warned


@pytest.mark.parametrize(
    ("text", "year"),
    [("1e3", 1000), ("1.0", 1), ("-0", 0), ("null", None), ("NULL", None), ("2001", 2001)],
)
def test_xml_numbers_read_alike_on_every_path(text: str, year: int | None) -> None:
    """Numbers msgspec reads from XML text on the fast path: the tolerant path agrees."""
    node, _ = _declared(ITEM, "Video", [0])
    node.attrs["year"] = text
    items = _item_paths(node, "xml")
    assert _same(items).year == year
    assert items[-1].warnings == ()
    assert items[0].source_digest is not None  # read by the fast path
