"""An emulator whose answers carry byte-level poisons in chosen entries.

The emulator renders well-formed JSON and XML; the values that once stopped a whole library
(bytes that are not UTF-8, integers beyond what SQLite and the digest hold, nesting deeper
than a decoder's recursion limit) can only be written into the bytes after rendering. Each
poison is tied to one rating key and written into that entry of every answer that holds it.
"""

from __future__ import annotations

from enum import StrEnum
import re
from typing import Final

from aiohttp import web

from tests.emulator import PlexEmulator


class Poison(StrEnum):
    """What is written into a poisoned entry."""

    INVALID_UTF8 = "invalid_utf8"  # a Latin-1 byte in the title
    INT_2_64 = "int_2_64"  # an integer ≥ 2**64
    INT_2_63 = "int_2_63"  # an integer between 2**63 and 2**64
    FLOAT_1E300 = "float_1e300"  # a number whose integer part is enormous
    DEEP_JSON = "deep_json"  # a value nested 10,000 deep
    DEEP_XML = "deep_xml"  # an element nested 300 deep


#: The five poisons of the original report, as they reach a client asking for JSON.
JSON_POISONS: Final = (
    Poison.INVALID_UTF8,
    Poison.INT_2_64,
    Poison.INT_2_63,
    Poison.FLOAT_1E300,
    Poison.DEEP_JSON,
)
DEPTH_JSON: Final = 10_000
DEPTH_XML: Final = 300


def _entry_span(body: bytes, rating_key: str, xml: bool) -> tuple[int, int] | None:
    """Return where an entry's own attributes start and the next entry begins."""
    marker = f'ratingKey="{rating_key}"' if xml else f'"ratingKey":"{rating_key}"'
    start = body.find(marker.encode())
    if start < 0:
        return None
    following = body.find(b'ratingKey="' if xml else b'"ratingKey":"', start + len(marker))
    return start, len(body) if following < 0 else following


def _replace_in(body: bytes, span: tuple[int, int], pattern: bytes, new: bytes) -> bytes | None:
    found = re.compile(pattern).search(body, span[0], span[1])
    if found is None:
        return None
    return body[: found.start()] + new + body[found.end() :]


def poison_body(body: bytes, rating_key: str, poison: Poison) -> bytes:
    """Return the answer with one entry poisoned (unchanged if the entry is not in it)."""
    xml = body.lstrip()[:1] == b"<"
    span = _entry_span(body, rating_key, xml)
    if span is None:
        return body
    start = span[0]
    if poison is Poison.INVALID_UTF8:
        return _insert_after_title(body, span, xml)
    if poison in (Poison.INT_2_64, Poison.INT_2_63, Poison.FLOAT_1E300):
        value = {
            Poison.INT_2_64: b"18446744073709551616",
            Poison.INT_2_63: b"9223372036854775808",
            Poison.FLOAT_1E300: b"1e300",
        }[poison]
        if xml:
            new = _replace_in(body, span, rb'duration="[0-9]+"', b'duration="' + value + b'"')
        else:
            new = _replace_in(body, span, rb'"duration":[0-9]+', b'"duration":' + value)
        return body if new is None else new
    if poison is Poison.DEEP_JSON and not xml:
        nested = b"[" * DEPTH_JSON + b"]" * DEPTH_JSON
        insert = start + len(f'"ratingKey":"{rating_key}"')
        return body[:insert] + b',"extra":' + nested + body[insert:]
    if poison is Poison.DEEP_XML and xml:
        close = body.find(b">", start)
        if close < 0 or body[close - 1 : close] == b"/":
            return body
        nested = b"<Extra>" * DEPTH_XML + b"</Extra>" * DEPTH_XML
        return body[: close + 1] + nested + body[close + 1 :]
    return body


def _insert_after_title(body: bytes, span: tuple[int, int], xml: bool) -> bytes:
    """Put a Latin-1 é (not UTF-8) at the start of the entry's title."""
    marker = b'title="' if xml else b'"title":"'
    at = body.find(marker, span[0], span[1])
    if at < 0:
        return body
    at += len(marker)
    return body[:at] + b"\xe9" + body[at:]


class PoisonedEmulator(PlexEmulator):
    """Serve an EmuServer, writing a poison into the entries named in `poisons`."""

    def __init__(self, *args: object, poisons: dict[str, Poison], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.poisons = poisons

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        response = await super()._handle(request)
        if not isinstance(response, web.Response) or not isinstance(response.body, bytes):
            return response
        body = response.body
        for rating_key, poison in self.poisons.items():
            body = poison_body(body, rating_key, poison)
        if body is response.body:
            return response
        return web.Response(body=body, status=response.status, content_type=response.content_type)
