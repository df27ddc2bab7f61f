"""Split a Plex JSON answer into its entries' raw bytes when it cannot be decoded whole.

The fast path decodes a listing in one call (`parse.parse_listing`). One entry can make that
call fail for the whole page: nesting deeper than the decoder's recursion limit, or bytes
that are not UTF-8 inside a string. This module finds the item arrays of the
`MediaContainer` with a scan that keeps its own depth count (no recursion), so that every
entry can be read, or refused, on its own, and the container's other fields decoded without
them. It is the slow path of an odd page, never the common one.

It also salvages the `ratingKey` and `title` of an entry that cannot be decoded at all, so
that the entry still counts as seen by the run.
"""

from __future__ import annotations

from collections.abc import Iterator
import re
from typing import Final, NamedTuple

# A JSON string (escapes included), one structural character, or another scalar.
_TOKEN: Final = re.compile(
    rb'"(?:[^"\\]|\\.)*+"|[\[\]{}]|-?[0-9][0-9.eE+-]*+|true|false|null', re.DOTALL
)
_COLON: Final = re.compile(rb"[ \t\r\n]*:[ \t\r\n]*")
_SCALAR: Final = re.compile(rb'"(?:[^"\\]|\\.)*+"|-?[0-9]+', re.DOTALL)
_OPEN: Final = frozenset(b"[{")
_CLOSE: Final = frozenset(b"]}")


class JsonEntries(NamedTuple):
    """A JSON answer split: the answer with its item arrays emptied, and their entries."""

    # The answer with every item array of the container replaced by `[]`.
    rest: bytes
    # (array name, the entry's bytes as sent), in order.
    entries: list[tuple[str, bytes]]


def _tokens(body: bytes, start: int = 0, end: int | None = None) -> Iterator[re.Match[bytes]]:
    return _TOKEN.finditer(body, start, len(body) if end is None else end)


def _key_before(body: bytes, token: re.Match[bytes], last_string: re.Match[bytes] | None) -> str:
    """Return the object key an opening bracket is the value of, or "" if it has none."""
    if last_string is None:
        return ""
    colon = _COLON.match(body, last_string.end())
    if colon is None or colon.end() != token.start():
        return ""
    return last_string.group()[1:-1].decode("utf-8", "replace")


def split_json_entries(body: bytes, item_tags: tuple[str, ...]) -> JsonEntries | None:
    """Split `{"MediaContainer": {..., "<tag>": [entry, ...]}}`; None for another shape."""
    depth = 0
    last_string: re.Match[bytes] | None = None
    in_container = False
    array_key = ""
    entry_start = -1
    entries: list[tuple[str, bytes]] = []
    cuts: list[tuple[int, int]] = []
    array_start = -1
    for token in _tokens(body):
        char = body[token.start()]
        if char not in _OPEN and char not in _CLOSE:  # a scalar
            if depth == 3 and array_key:
                entries.append((array_key, token.group()))  # not an object: refused later
            last_string = token if char == 0x22 else None
            continue
        if char in _OPEN:
            key = _key_before(body, token, last_string)
            depth += 1
            if depth == 2 and char == 0x7B:  # {
                in_container = key == "MediaContainer"
            elif depth == 3 and in_container and char == 0x5B and key in item_tags:  # [
                array_key = key
                array_start = token.end()
            elif depth == 4 and array_key:
                entry_start = token.start()
        else:
            if depth == 4 and array_key and entry_start >= 0:
                entries.append((array_key, body[entry_start : token.end()]))
                entry_start = -1
            elif depth == 3 and array_key:
                cuts.append((array_start, token.start()))
                array_key = ""
            depth -= 1
            if depth < 0:
                return None
        last_string = None
    if depth != 0 or not cuts:
        return None
    pieces: list[bytes] = []
    position = 0
    for start, stop in cuts:
        pieces.append(body[position:start])
        position = stop
    pieces.append(body[position:])
    return JsonEntries(b"".join(pieces), entries)


def salvage_keys(raw: bytes) -> tuple[str | None, str | None]:
    """Return the top-level `ratingKey` and `title` of an object's bytes, where readable."""
    depth = 0
    found: dict[bytes, str] = {}
    for token in _tokens(raw):
        char = raw[token.start()]
        if char in _OPEN:
            depth += 1
        elif char in _CLOSE:
            depth -= 1
        elif depth == 1 and token.group() in (b'"ratingKey"', b'"title"'):
            colon = _COLON.match(raw, token.end())
            value = _SCALAR.match(raw, colon.end()) if colon is not None else None
            if value is not None:
                text = value.group()
                if text.startswith(b'"'):
                    text = text[1:-1]
                found.setdefault(token.group(), text.decode("utf-8", "replace"))
    return found.get(b'"ratingKey"') or None, found.get(b'"title"') or None
