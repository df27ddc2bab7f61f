"""XML answers are split into their entries as sent; only entries the catalog lacks are decoded."""

from __future__ import annotations

import msgspec
import pytest

from custom_components.retrovue.engine.plex import ItemKind
from custom_components.retrovue.engine.plex.parse import (
    BodyError,
    _tolerant_item,
    decode_container,
    parse_listing,
)
from custom_components.retrovue.engine.plex.xmlsplit import split_entries
from tests.emulator import generate_server
from tests.emulator.render import Node, render
from tests.emulator.shapes import container, item_node

_KINDS = tuple(ItemKind)
_XML = "text/xml;charset=utf-8"


def _nodes() -> list[Node]:
    """Every item of a generated server (watch state, specials, legacy agents, unicode)."""
    server = generate_server(seed=7, movies=40, shows=6)
    return [item_node(server, item, include_guids=True) for item in server.items.values()]


def _page(nodes: list[Node], **attrs: int | str) -> bytes:
    return render(container({"size": len(nodes), **attrs}, nodes), "xml")


def test_entries_come_out_as_sent_and_decode_as_the_whole_page_does() -> None:
    nodes = _nodes()
    body = _page(nodes, totalSize=len(nodes), librarySectionID=4)

    split = split_entries(body)

    assert split is not None
    assert split.head.startswith(b"<MediaContainer ")
    assert split.head.endswith(b">")
    assert b'librarySectionID="4"' in split.head
    assert [tag for tag, _ in split.entries] == [node.tag.encode() for node in nodes]
    assert {tag for tag, _ in split.entries} == {b"Video", b"Directory"}
    # In order, each exactly once, nothing but whitespace between them.
    position = body.index(split.head) + len(split.head)
    for _, raw in split.entries:
        found = body.index(raw, position)
        assert body[position:found].strip() == b""
        position = found + len(raw)
    assert body[position:].strip() == b"</MediaContainer>"
    # Each element alone decodes to the entry the whole page gives.
    whole, _ = decode_container(body, _XML)
    expected = [entry for tag in ("Video", "Directory") for entry in whole[tag]]
    alone = []
    for tag, raw in split.entries:
        one, _ = decode_container(split.head + raw + b"</MediaContainer>", _XML)
        alone.extend(one[tag.decode()])
    key = "ratingKey"
    assert sorted(alone, key=lambda e: e[key]) == sorted(expected, key=lambda e: e[key])


def test_quoted_angle_brackets_and_slashes_do_not_end_a_tag() -> None:
    body = (
        b'<?xml version="1.0" encoding="utf-8"?>\n'
        b'<MediaContainer size="2" note="a > b">\n'
        b'<Directory ratingKey="1" title="x /> y" summary=\'say "q" >\' />\n'
        b'<Video ratingKey="2" title="a/>"><Media id="3" /></Video>\n'
        b"</MediaContainer>\n"
    )
    split = split_entries(b"\xef\xbb\xbf" + body)
    assert split is not None
    assert split.head == b'<MediaContainer size="2" note="a > b">'
    assert split.entries == [
        (b"Directory", b'<Directory ratingKey="1" title="x /> y" summary=\'say "q" >\' />'),
        (b"Video", b'<Video ratingKey="2" title="a/>"><Media id="3" /></Video>'),
    ]


def test_an_empty_container_splits_into_no_entries() -> None:
    split = split_entries(b'<?xml version="1.0"?>\n<MediaContainer size="0" />\n')
    assert split is not None
    assert split.head == b'<MediaContainer size="0">'
    assert split.entries == []


@pytest.mark.parametrize(
    "body",
    [
        b'<MediaContainer size="1"><!-- </Video> --><Video ratingKey="1" /></MediaContainer>',
        b'<MediaContainer size="1"><Video ratingKey="1"><![CDATA[x]]></Video></MediaContainer>',
        b'<!DOCTYPE MediaContainer><MediaContainer size="0"></MediaContainer>',
        b'<MediaContainer size="1"><?pi x?><Video ratingKey="1" /></MediaContainer>',
        b'<?xml version="1.0" encoding="ISO-8859-1"?><MediaContainer size="0"></MediaContainer>',
        b'<MediaContainer size="1"><Video ratingKey="1"><Video ratingKey="2" />'
        b"</Video></MediaContainer>",
        b'<MediaContainer size="2">text<Video ratingKey="1" /></MediaContainer>',
        b'<MediaContainer size="1"><Video ratingKey="1"></Video ></MediaContainer>',
        b'<MediaContainer size="1"><Video ratingKey="1" />',
        b'<MediaContainer size="1"><Video ratingKey="1" /></MediaContainer>trailing',
        b'<Response code="503" title="Maintenance" />',
        b"<html><body>Bad gateway</body></html>",
        b'{"MediaContainer": {"size": 0}}',
        b"",
    ],
)
def test_anything_unusual_is_left_to_the_whole_page_decoder(body: bytes) -> None:
    assert split_entries(body) is None


def test_only_entries_that_are_not_known_are_decoded() -> None:
    nodes = _nodes()
    page = parse_listing(_page(nodes, totalSize=len(nodes)), _XML, kinds=_KINDS)
    assert page.received == len(nodes) == len(page.items)
    assert page.total_size == len(nodes)
    assert not page.problems
    whole, _ = decode_container(_page(nodes), _XML)
    by_key = {e["ratingKey"]: e for tag in ("Video", "Directory") for e in whole[tag]}
    for item in page.items:
        tolerant = _tolerant_item(by_key[item.rating_key], kinds=_KINDS)
        assert msgspec.structs.replace(item, source_digest=None) == tolerant
        assert item.source_digest is not None
    known = {item.source_digest: item.rating_key for item in page.items if item.source_digest}

    # The same entries in another order and on other pages: nothing is decoded.
    half = len(nodes) // 2
    for part in (nodes[half:][::-1], nodes[:half]):
        again = parse_listing(_page(part), _XML, kinds=_KINDS, known=known)
        assert again.items == ()
        assert set(again.unchanged) == {node.attrs["ratingKey"] for node in part} - {None}
        assert again.received == len(part)

    # One changed attribute in one entry: only that entry is decoded.
    changed_node = nodes[3]
    nodes[3] = Node(
        changed_node.tag,
        {**changed_node.attrs, "viewCount": 99},
        changed_node.children,
        group=changed_node.group,
    )
    changed = parse_listing(_page(nodes), _XML, kinds=_KINDS, known=known)
    assert [item.rating_key for item in changed.items] == [str(changed_node.attrs["ratingKey"])]
    assert changed.items[0].view_count == 99
    assert len(changed.unchanged) == len(nodes) - 1


def test_mixed_tags_keep_their_own_digests() -> None:
    nodes = _nodes()
    mixed = nodes[::-1]  # shows and seasons (Directory) before movies and episodes (Video)
    page = parse_listing(_page(mixed), _XML, kinds=_KINDS)
    assert len(page.items) == len(nodes)
    # Each digest is that of the item's own element: alone on a page, every entry matches.
    known = {item.source_digest: item.rating_key for item in page.items if item.source_digest}
    for node in nodes[:5] + nodes[-5:]:
        alone = parse_listing(_page([node]), _XML, kinds=_KINDS, known=known)
        assert alone.unchanged == (str(node.attrs["ratingKey"]),)


def test_pages_that_cannot_be_split_still_parse_whole() -> None:
    nodes = _nodes()[:4]
    body = _page(nodes).replace(b"\n<", b"\n<!-- a note -->\n<", 1)
    assert split_entries(body) is None
    page = parse_listing(body, _XML, kinds=_KINDS)
    assert [item.rating_key for item in page.items] == [
        str(node.attrs["ratingKey"]) for node in nodes
    ]
    assert all(item.source_digest is not None for item in page.items)


def test_a_malformed_entry_is_a_problem_of_its_own() -> None:
    nodes = _nodes()[:6]
    body = _page(nodes).replace(b' ratingKey="', b' rating Key="', 1)
    assert split_entries(body) is not None  # the split does not validate attributes
    with pytest.raises(BodyError):
        decode_container(body, _XML)
    page = parse_listing(body, _XML, kinds=_KINDS)
    # The other entries are read; the broken one is a problem without a readable ratingKey
    # (so the run knows its listing is not complete).
    assert [item.rating_key for item in page.items] == [
        str(node.attrs["ratingKey"]) for node in nodes[1:]
    ]
    (problem,) = page.problems
    assert problem.rating_key is None
    assert "malformed XML" in problem.message
    assert page.received == 6


def test_a_malformed_entry_keeps_its_rating_key_where_readable() -> None:
    nodes = _nodes()[:3]
    body = _page(nodes).replace(b' title="', b' title="a & b', 1)
    page = parse_listing(body, _XML, kinds=_KINDS)
    (problem,) = page.problems
    assert problem.rating_key == str(nodes[0].attrs["ratingKey"])
    assert len(page.items) == 2


def test_an_answer_whose_container_is_broken_fails_whole() -> None:
    nodes = _nodes()[:3]
    body = _page(nodes).replace(b"<MediaContainer ", b"<MediaContainer a=1 ", 1)
    with pytest.raises(BodyError) as listed:
        parse_listing(body, _XML, kinds=_KINDS)
    with pytest.raises(BodyError) as whole:
        decode_container(body, _XML)
    assert str(listed.value) == str(whole.value)  # line and column of the answer itself
