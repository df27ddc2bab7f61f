"""Split a Plex XML answer into its entries' raw bytes without decoding them.

A full listing of an unchanged library should cost little more than reading it: each entry's
bytes are hashed and compared with the source digests the catalog holds, and only the entries
that differ are decoded (see `parse.parse_listing`). The split is byte-level and deliberately
narrow: it accepts what Plex writes — an optional UTF-8 declaration, one `MediaContainer`
whose children are elements separated by whitespace, no comments, CDATA, processing
instructions or DOCTYPE, no element nested in one of the same name — and returns None for
anything else, which the caller then decodes whole, as before.

Attribute values cannot hold `<` in XML, so an end tag such as `</Video>` found after a
start tag is that element's own end unless an element of the same name opened in between
(then the answer is not split). Start tags are matched with their quoted values, so a `>`
or `/>` inside a value does not end them early.
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple

_PROLOG: Final = re.compile(rb"(?:\xef\xbb\xbf)?[ \t\r\n]*(?:<\?xml[ \t\r\n][^>]*?\?>)?[ \t\r\n]*")
_ENCODING: Final = re.compile(rb"""encoding[ \t\r\n]*=[ \t\r\n]*["']([A-Za-z0-9._-]*)["']""")
_START_TAG: Final = re.compile(
    rb"""[ \t\r\n]*<([A-Za-z_][A-Za-z0-9_.:-]*)(?:[^>"']++|"[^"]*+"|'[^']*+')*+>"""
)
_CONTAINER_END: Final = re.compile(rb"[ \t\r\n]*</MediaContainer[ \t\r\n]*>[ \t\r\n]*\Z")
_NAME_END: Final = frozenset(b" \t\r\n/>")


class XmlEntries(NamedTuple):
    """An XML answer split: the container's start tag and each child element as sent."""

    # `<MediaContainer …>`, never self-closing (a `/>` is opened up), to wrap entries in.
    head: bytes
    # (tag, the element's bytes from `<` to the end of its end tag or `/>`), in order.
    entries: list[tuple[bytes, bytes]]


def split_entries(body: bytes) -> XmlEntries | None:
    """Return the container's start tag and its children's bytes, or None if unsure."""
    prolog = _PROLOG.match(body)
    if prolog is None:  # pragma: no cover - every part of the pattern is optional
        return None
    declared = _ENCODING.search(body, 0, prolog.end())
    if declared is not None and declared.group(1).lower() not in (b"utf-8", b"utf8"):
        return None
    position = prolog.end()
    if body.find(b"<!", position) >= 0 or body.find(b"<?", position) >= 0:
        return None
    container = _START_TAG.match(body, position)
    if container is None or container.group(1) != b"MediaContainer":
        return None
    head = body[container.start(1) - 1 : container.end()]
    if head.endswith(b"/>"):
        if body[container.end() :].strip():
            return None
        return XmlEntries(head[:-2].rstrip() + b">", [])
    entries: list[tuple[bytes, bytes]] = []
    position = container.end()
    match_tag = _START_TAG.match
    find = body.find
    while (tag := match_tag(body, position)) is not None:
        name = tag.group(1)
        start = tag.start(1) - 1
        if tag.group(0).endswith(b"/>"):
            end = tag.end()
        else:
            closing = b"</" + name + b">"
            close_at = find(closing, tag.end())
            if close_at < 0 or _opens(body, name, tag.end(), close_at):
                return None
            end = close_at + len(closing)
        entries.append((name, body[start:end]))
        position = end
    if _CONTAINER_END.match(body, position) is None:
        return None
    return XmlEntries(head, entries)


def _opens(body: bytes, name: bytes, start: int, stop: int) -> bool:
    """Return whether an element named `name` starts in `body[start:stop]`."""
    opening = b"<" + name
    at = body.find(opening, start, stop)
    while at >= 0:
        follows = at + len(opening)
        if follows >= len(body) or body[follows] in _NAME_END:
            return True
        at = body.find(opening, follows, stop)
    return False
