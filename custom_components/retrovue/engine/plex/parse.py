"""Turn Plex answers (JSON or XML) into the typed models, tolerating odd types and bad entries.

Everything here is pure and synchronous: the client runs it off the event loop for large bodies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
import hashlib
from itertools import chain
import json
import math
from operator import itemgetter
import re
from typing import Annotated, Any, Final

import msgspec
import xmltodict

from .jsonsplit import salvage_keys, split_json_entries
from .models import (
    ItemKind,
    ItemProblem,
    Media,
    Page,
    Part,
    PlexItem,
    Section,
    ServerIdentity,
)
from .xmlsplit import XmlEntries, split_entries

try:  # orjson ships with Home Assistant and is several times faster than json.
    import orjson

    def _json_loads(body: bytes) -> Any:
        return orjson.loads(body)

    def _canonical(entry: dict[str, Any]) -> bytes:
        return orjson.dumps(entry)

except ImportError:  # pragma: no cover - exercised only without orjson

    def _json_loads(body: bytes) -> Any:
        return json.loads(body)

    def _canonical(entry: dict[str, Any]) -> bytes:
        return json.dumps(entry, separators=(",", ":")).encode()


type Node = Mapping[str, Any]

FORMAT_JSON: Final = "json"
FORMAT_XML: Final = "xml"

# XML children that are lists in Plex's JSON; forcing them keeps one shape for both formats.
_XML_LISTS: Final = (
    "Video",
    "Directory",
    "Media",
    "Part",
    "Guid",
    "Location",
    "Stream",
    "Metadata",
    "Track",
    "Photo",
    "Server",
    "Device",
)
_ITEM_TAGS: Final = ("Metadata", "Video", "Directory", "Track", "Photo")
# The same tags as XML names, with their place in that order.
_XML_ITEM_TAGS: Final = {tag.encode(): order for order, tag in enumerate(_ITEM_TAGS)}
_KINDS: Final = {kind.value: kind for kind in ItemKind}
# Part of every source digest: change it when what the catalog stores from an entry changes,
# so that the next full listing parses every entry again instead of trusting old digests.
_SOURCE_DIGEST_KIND: Final = b"retrovue-item-1"
# The catalog stores integers as SQLite's signed 64-bit ones and digests them as such: a number
# outside that range is read as missing, with a warning.
INT_MIN: Final = -(2**63)
INT_MAX: Final = 2**63 - 1
type _Int = Annotated[int, msgspec.Meta(ge=INT_MIN, le=INT_MAX)]


class BodyError(ValueError):
    """A body that is not a Plex MediaContainer in JSON or XML."""


def decode_container(body: bytes, content_type: str | None) -> tuple[dict[str, Any], str]:
    """Return the MediaContainer of a JSON or XML body and the format it came in."""
    ctype = (content_type or "").lower()
    head = body[:256].lstrip()
    if not head:
        raise BodyError("empty body")
    if head[:1] in (b"{", b"["):
        fmt = FORMAT_JSON
    elif head[:1] == b"<":
        lowered = head.lower()
        if lowered.startswith((b"<!doctype html", b"<html")) or "html" in ctype:
            raise BodyError(f"HTML page instead of a Plex answer ({_snippet(body)})")
        fmt = FORMAT_XML
    elif "html" in ctype:
        raise BodyError(f"HTML page instead of a Plex answer ({_snippet(body)})")
    else:
        raise BodyError(f"neither JSON nor XML (content type {ctype or 'none'}: {_snippet(body)})")

    if fmt == FORMAT_JSON:
        try:
            data = _json_loads(body)
        except ValueError as err:
            raise BodyError(f"malformed JSON: {err}") from err
    else:
        try:
            data = xmltodict.parse(body, attr_prefix="", cdata_key="#text", force_list=_XML_LISTS)
        except Exception as err:  # expat raises its own ExpatError, a ValueError subclass
            raise BodyError(f"malformed XML: {err}") from err

    if not isinstance(data, dict) or not isinstance(data.get("MediaContainer"), dict):
        raise BodyError(f"no MediaContainer in the {fmt.upper()} answer ({_snippet(body)})")
    return data["MediaContainer"], fmt


def _snippet(body: bytes) -> str:
    text = body[:80].decode("utf-8", "replace")
    return " ".join(text.split())


def container_int(container: Node, key: str) -> int | None:
    """Return an integer attribute of a container, or None when absent or not a number."""
    value, _ = _int(container.get(key))
    return value


def container_entries(container: Node) -> list[Any]:
    """Return the item entries of a container, whatever tag they came under."""
    entries: list[Any] = []
    for tag in _ITEM_TAGS:
        found = container.get(tag)
        if isinstance(found, list):
            entries.extend(found)
        elif isinstance(found, dict):
            entries.append(found)
    return entries


def _take_entries(container: dict[str, Any]) -> list[Any]:
    """Move the item entries out of a container, so each can be freed once converted."""
    entries: list[Any] = []
    for tag in _ITEM_TAGS:
        found = container.pop(tag, None)
        if isinstance(found, list):
            entries.extend(found)
            found.clear()
        elif isinstance(found, dict):
            entries.append(found)
    return entries


# --- scalar coercion -------------------------------------------------------------------------


def _int(value: Any) -> tuple[int | None, bool]:
    """Return (int or None, ok) for a JSON number or an XML string; None if out of range."""
    if value is None or value == "":
        return None, True
    number: int | float
    if isinstance(value, bool):
        return int(value), True
    if isinstance(value, int | float):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        try:
            number = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                return None, False
    else:
        return None, False
    if isinstance(number, float) and (math.isnan(number) or math.isinf(number)):
        return None, False
    if not INT_MIN <= number <= INT_MAX:
        return None, False
    return int(number), True


def _str(value: Any) -> tuple[str | None, bool]:
    """Return (str or None, ok) for a scalar."""
    if value is None or value == "":
        return None, True
    if isinstance(value, str):
        return value, True
    if isinstance(value, bool):
        return ("1" if value else "0"), True
    if isinstance(value, int | float):
        return str(value), True
    return None, False


class _Fields:
    """Read typed fields from one entry and collect warnings about odd values."""

    __slots__ = ("node", "warnings")

    def __init__(self, node: Node) -> None:
        self.node = node
        self.warnings: list[str] = []

    def number(self, key: str) -> int | None:
        raw = self.node.get(key)
        value, ok = _int(raw)
        if not ok:
            self.warnings.append(f"{key} is not a number in range: {raw!r:.40}")
        return value

    def text(self, key: str) -> str | None:
        raw = self.node.get(key)
        value, ok = _str(raw)
        if not ok:
            self.warnings.append(f"{key} is not text: {type(raw).__name__}")
        return value

    def nodes(self, key: str) -> list[Node]:
        raw = self.node.get(key)
        if raw is None:
            return []
        if isinstance(raw, dict):
            return [raw]
        if isinstance(raw, list):
            good: list[Node] = [entry for entry in raw if isinstance(entry, dict)]
            if len(good) != len(raw):
                self.warnings.append(f"{key} has {len(raw) - len(good)} malformed entries")
            return good
        self.warnings.append(f"{key} is not a list: {type(raw).__name__}")
        return []


# --- entities --------------------------------------------------------------------------------


def parse_identity(container: Node) -> ServerIdentity:
    """Return the server identity from `/identity` or `/`."""
    fields = _Fields(container)
    machine_identifier = fields.text("machineIdentifier")
    if not machine_identifier:
        raise BodyError("the answer has no machineIdentifier")
    return ServerIdentity(
        machine_identifier=machine_identifier,
        version=fields.text("version"),
        friendly_name=fields.text("friendlyName"),
        platform=fields.text("platform"),
    )


def parse_sections(container: Node) -> list[Section]:
    """Return the library sections of `/library/sections`; entries without key or type fail."""
    sections: list[Section] = []
    for entry in _Fields(container).nodes("Directory"):
        fields = _Fields(entry)
        key = fields.text("key")
        section_type = fields.text("type")
        if not key or not section_type:
            raise BodyError(f"library section without key or type: {dict(entry)!r:.120}")
        locations = tuple(
            path
            for location in fields.nodes("Location")
            if (path := _str(location.get("path"))[0]) is not None
        )
        sections.append(
            Section(
                key=key,
                type=section_type,
                title=fields.text("title") or key,
                uuid=fields.text("uuid"),
                agent=fields.text("agent"),
                scanner=fields.text("scanner"),
                language=fields.text("language"),
                locations=locations,
                updated_at=fields.number("updatedAt"),
                scanned_at=fields.number("scannedAt"),
                content_changed_at=fields.number("contentChangedAt"),
            )
        )
    return sections


def _parse_part(node: Node, fields_warnings: list[str]) -> Part:
    fields = _Fields(node)
    part = Part(
        id=fields.text("id"),
        key=fields.text("key"),
        file=fields.text("file"),
        size=fields.number("size"),
        duration=fields.number("duration"),
        container=fields.text("container"),
    )
    fields_warnings.extend(f"Part {warning}" for warning in fields.warnings)
    return part


def _parse_media(node: Node, warnings: list[str]) -> Media:
    fields = _Fields(node)
    parts = tuple(_parse_part(part, warnings) for part in fields.nodes("Part"))
    media = Media(
        id=fields.text("id"),
        duration=fields.number("duration"),
        bitrate=fields.number("bitrate"),
        width=fields.number("width"),
        height=fields.number("height"),
        video_codec=fields.text("videoCodec"),
        audio_codec=fields.text("audioCodec"),
        audio_channels=fields.number("audioChannels"),
        video_resolution=fields.text("videoResolution"),
        container=fields.text("container"),
        parts=parts,
    )
    warnings.extend(f"Media {warning}" for warning in fields.warnings)
    return media


# --- the common case, fast ----------------------------------------------------------------------
#
# Nearly every entry has every field in the type Plex documents. `_quick_item` builds those
# entries without the per-field bookkeeping of `_Fields` (several times faster on a 100k-item
# library) and gives up on anything odd: such entries go through `_tolerant_item`, which says
# what is wrong. Both give the same item for an entry `_quick_item` accepts (a test holds them
# to that, in JSON and XML).


class _Odd(Exception):
    """A field `_quick_item` leaves to the tolerant parser."""


def _quick_number(value: Any) -> int | None:
    if value is None:
        return None
    if value.__class__ is int:
        number = value
    elif value.__class__ is str and value:
        number = int(value)  # XML sends numbers as text; anything else raises ValueError
    else:
        raise _Odd
    if INT_MIN <= number <= INT_MAX:
        return number
    raise _Odd


def _quick_text(value: Any) -> str | None:
    if value.__class__ is str:
        return value or None
    if value is None:
        return None
    if value.__class__ is int:  # JSON ids and librarySectionID are numbers
        return str(value)
    raise _Odd


def _quick_list(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if value.__class__ is list and all(isinstance(entry, dict) for entry in value):
        return value
    raise _Odd


def _quick_part(node: dict[str, Any]) -> Part:
    get = node.get
    return Part(
        _quick_text(get("id")),
        _quick_text(get("key")),
        _quick_text(get("file")),
        _quick_number(get("size")),
        _quick_number(get("duration")),
        _quick_text(get("container")),
    )


def _quick_media(node: dict[str, Any]) -> Media:
    get = node.get
    return Media(
        _quick_text(get("id")),
        _quick_number(get("duration")),
        _quick_number(get("bitrate")),
        _quick_number(get("width")),
        _quick_number(get("height")),
        _quick_text(get("videoCodec")),
        _quick_text(get("audioCodec")),
        _quick_number(get("audioChannels")),
        _quick_text(get("videoResolution")),
        _quick_text(get("container")),
        tuple(_quick_part(part) for part in _quick_list(get("Part"))),
    )


def _quick_item(
    entry: dict[str, Any],
    kinds: Sequence[ItemKind],
    section_key: str | None,
    source_digest: bytes | None = None,
) -> PlexItem | None:
    """Return the item of a well-formed entry, or None for the tolerant parser to handle."""
    get = entry.get
    rating_key = get("ratingKey")
    title = get("title")
    type_name = get("type")
    kind = _KINDS.get(type_name) if type_name.__class__ is str else None
    if (
        "Part" in entry
        or rating_key.__class__ is not str
        or not rating_key
        or title.__class__ is not str
        or not title
        or kind not in kinds
    ):
        return None
    try:
        guids = []
        for node in _quick_list(get("Guid")):
            guid = node.get("id")
            if guid.__class__ is not str or not guid:
                return None
            guids.append(guid)
        return PlexItem(
            kind,  # type: ignore[arg-type]
            rating_key,
            title,
            _quick_text(get("librarySectionID")) or section_key,
            _quick_text(get("parentRatingKey")),
            _quick_text(get("grandparentRatingKey")),
            _quick_text(get("parentTitle")),
            _quick_text(get("grandparentTitle")),
            _quick_number(get("index")),
            _quick_number(get("parentIndex")),
            _quick_number(get("year")),
            _quick_text(get("guid")),
            tuple(guids),
            _quick_number(get("addedAt")),
            _quick_number(get("updatedAt")),
            _quick_text(get("originallyAvailableAt")),
            _quick_number(get("childCount")),
            _quick_number(get("leafCount")),
            _quick_number(get("viewedLeafCount")),
            _quick_number(get("viewCount")),
            _quick_number(get("lastViewedAt")),
            _quick_number(get("viewOffset")),
            _quick_number(get("duration")),
            tuple(_quick_media(media) for media in _quick_list(get("Media"))),
            source_digest=source_digest,
        )
    except (_Odd, ValueError):
        return None


# --- JSON listings, typed -----------------------------------------------------------------------
#
# A JSON listing page is first split into its entries' raw bytes, without building them. An
# entry whose bytes hash to a digest the caller holds is unchanged and never decoded (a deep
# re-sync of an unchanged library decodes nothing). The others are decoded by msgspec straight
# into typed structs; an entry whose fields do not have the types Plex documents fails that
# decode and goes through `parse_item`, which says what is odd about it. A page that is not
# the expected shape at all takes the general path (`decode_container` + `parse_items`).


class _JsonPart(msgspec.Struct, gc=False, rename="camel"):
    id: int | str | None = None
    key: str | None = None
    file: str | None = None
    size: _Int | None = None
    duration: _Int | None = None
    container: str | None = None


class _JsonMedia(msgspec.Struct, gc=False, rename="camel"):
    id: int | str | None = None
    duration: _Int | None = None
    bitrate: _Int | None = None
    width: _Int | None = None
    height: _Int | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    audio_channels: _Int | None = None
    video_resolution: str | None = None
    container: str | None = None
    parts: tuple[_JsonPart, ...] = msgspec.field(default=(), name="Part")


class _JsonGuid(msgspec.Struct, gc=False):
    id: str


class _JsonEntry(msgspec.Struct, gc=False, rename="camel"):
    rating_key: str | None = None
    title: str | None = None
    type: str | None = None
    section_key: int | str | None = msgspec.field(default=None, name="librarySectionID")
    parent_rating_key: str | None = None
    grandparent_rating_key: str | None = None
    parent_title: str | None = None
    grandparent_title: str | None = None
    index: _Int | None = None
    parent_index: _Int | None = None
    year: _Int | None = None
    guid: str | None = None
    guids: tuple[_JsonGuid, ...] = msgspec.field(default=(), name="Guid")
    added_at: _Int | None = None
    updated_at: _Int | None = None
    originally_available_at: str | None = None
    child_count: _Int | None = None
    leaf_count: _Int | None = None
    viewed_leaf_count: _Int | None = None
    view_count: _Int | None = None
    last_viewed_at: _Int | None = None
    view_offset: _Int | None = None
    duration: _Int | None = None
    media: tuple[_JsonMedia, ...] = msgspec.field(default=(), name="Media")
    # Parts belong inside Media; one outside is read in part, with a warning (`parse_item`).
    stray_parts: msgspec.Raw | None = msgspec.field(default=None, name="Part")


class _JsonContainer(msgspec.Struct, gc=False, rename="pascal"):
    # The item tags of `_ITEM_TAGS`, kept as raw entries.
    metadata: tuple[msgspec.Raw, ...] = ()
    video: tuple[msgspec.Raw, ...] = ()
    directory: tuple[msgspec.Raw, ...] = ()
    track: tuple[msgspec.Raw, ...] = ()
    photo: tuple[msgspec.Raw, ...] = ()
    total_size: int | None = msgspec.field(default=None, name="totalSize")
    section_key: int | str | None = msgspec.field(default=None, name="librarySectionID")


class _JsonListing(msgspec.Struct, gc=False, rename="pascal"):
    container: _JsonContainer = msgspec.field(name="MediaContainer")


_LISTING_DECODER: Final = msgspec.json.Decoder(_JsonListing)
_ENTRY_DECODER: Final = msgspec.json.Decoder(_JsonEntry)


def _id(value: int | str | None) -> str | None:
    return str(value) if value.__class__ is int else (value or None)  # type: ignore[return-value]


def _typed_item(
    entry: _JsonEntry, kinds: Sequence[ItemKind], section_key: str | None, digest: bytes
) -> PlexItem | None:
    """Return the item of a typed entry, or None when it needs `parse_item`'s judgement."""
    rating_key = entry.rating_key
    title = entry.title
    kind = _KINDS.get(entry.type) if entry.type is not None else None
    if not rating_key or not title or kind not in kinds or entry.stray_parts is not None:
        return None
    guids = tuple(node.id for node in entry.guids)
    if not all(guids):
        return None
    return PlexItem(
        kind,  # type: ignore[arg-type]
        rating_key,
        title,
        _id(entry.section_key) or section_key,
        entry.parent_rating_key or None,
        entry.grandparent_rating_key or None,
        entry.parent_title or None,
        entry.grandparent_title or None,
        entry.index,
        entry.parent_index,
        entry.year,
        entry.guid or None,
        guids,
        entry.added_at,
        entry.updated_at,
        entry.originally_available_at or None,
        entry.child_count,
        entry.leaf_count,
        entry.viewed_leaf_count,
        entry.view_count,
        entry.last_viewed_at,
        entry.view_offset,
        entry.duration,
        tuple(
            Media(
                _id(media.id),
                media.duration,
                media.bitrate,
                media.width,
                media.height,
                media.video_codec or None,
                media.audio_codec or None,
                media.audio_channels,
                media.video_resolution or None,
                media.container or None,
                tuple(
                    Part(
                        _id(part.id),
                        part.key or None,
                        part.file or None,
                        part.size,
                        part.duration,
                        part.container or None,
                    )
                    for part in media.parts
                ),
            )
            for media in entry.media
        ),
        source_digest=digest,
    )


# Copying a keyed hasher is cheaper than building one per entry (same digests).
_DIGEST_BASE: Final = hashlib.blake2b(digest_size=16, person=_SOURCE_DIGEST_KIND)


def _raw_digest(raw: bytes | msgspec.Raw) -> bytes:
    """Return the source digest of an entry's bytes as Plex sent them."""
    hasher = _DIGEST_BASE.copy()
    hasher.update(raw)
    return hasher.digest()


def _raw_item(
    raw: bytes | msgspec.Raw, kinds: Sequence[ItemKind], section_key: str | None, digest: bytes
) -> PlexItem | ItemProblem | None:
    """Return the item of one raw entry, its problem, or None for the "All episodes" shortcut."""
    try:
        item = _typed_item(_ENTRY_DECODER.decode(raw), kinds, section_key, digest)
    except msgspec.DecodeError:
        item = None
    if item is not None:
        return item
    entry = msgspec.json.decode(raw)  # valid JSON: part of a page that decoded
    if _is_pseudo(entry):
        return None
    return parse_item(entry, kinds=kinds, section_key=section_key, source_digest=digest)


def _unreadable(rating_key: str | None, title: str | None, err: BaseException) -> ItemProblem:
    """Return the problem of an entry that could not be read at all."""
    message = f"unreadable entry: {err.__class__.__name__}: {err!s:.160}"
    return ItemProblem(rating_key, title, message)


def _typed_page(
    container: _JsonContainer,
    kinds: Sequence[ItemKind],
    offset: int,
    known: Mapping[bytes, str] | None,
    raws: Iterable[bytes | msgspec.Raw] | None = None,
) -> Page:
    """Return the page of a decoded JSON container, or of its entries split out (`raws`)."""
    if raws is None:
        raws = chain(
            container.metadata,
            container.video,
            container.directory,
            container.track,
            container.photo,
        )
    section_key = _id(container.section_key)
    items: list[PlexItem] = []
    problems: list[ItemProblem] = []
    unchanged: list[str] = []
    received = 0
    for raw in raws:
        digest = _raw_digest(raw)
        if known is not None and (rating_key := known.get(digest)) is not None:
            unchanged.append(rating_key)
        else:
            try:
                parsed = _raw_item(raw, kinds, section_key, digest)
            except Exception as err:  # noqa: BLE001 - one unreadable entry never stops a page
                parsed = _unreadable(*salvage_keys(bytes(raw)), err)
            if parsed is None:
                continue  # not an entry of the listing
            if isinstance(parsed, ItemProblem):
                problems.append(parsed)
            else:
                items.append(parsed)
        received += 1
    return Page(
        items=tuple(items),
        problems=tuple(problems),
        offset=offset,
        received=received,
        total_size=container.total_size,
        unchanged=tuple(unchanged),
    )


def parse_listing(
    body: bytes,
    content_type: str | None,
    *,
    kinds: Sequence[ItemKind],
    offset: int = 0,
    known: Mapping[bytes, str] | None = None,
) -> Page:
    """Return the page of a listing or detail answer, in JSON or XML.

    `known` maps source digests the caller holds to their rating keys: entries that still
    match are not parsed, only listed in `Page.unchanged`. Every well-formed item carries the
    digest of its entry (`PlexItem.source_digest`).
    """
    if body[:1] == b"{":
        try:
            listing = _LISTING_DECODER.decode(body)
        except (msgspec.DecodeError, RecursionError):
            # Not the usual shape, or one entry nested too deep to decode: split the entries
            # out and read each on its own, or let the general path say what is wrong.
            page = _json_split_page(body, kinds, offset, known)
            if page is not None:
                return page
        else:
            return _typed_page(listing.container, kinds, offset, known)
    elif (split := split_entries(body)) is not None:
        page = _xml_page(split, kinds, offset, known)
        if page is not None:
            return page
    container, _fmt = decode_container(body, content_type)
    return parse_items(container, kinds=kinds, offset=offset, known=known)


def _json_split_page(
    body: bytes,
    kinds: Sequence[ItemKind],
    offset: int,
    known: Mapping[bytes, str] | None,
) -> Page | None:
    """Return the page of a JSON answer read entry by entry, or None if it does not split."""
    split = split_json_entries(body, _ITEM_TAGS)
    if split is None:
        return None
    try:
        listing = _LISTING_DECODER.decode(split.rest)
    except (msgspec.DecodeError, RecursionError):
        return None
    return _typed_page(listing.container, kinds, offset, known, [raw for _, raw in split.entries])


def _xml_page(
    split: XmlEntries,
    kinds: Sequence[ItemKind],
    offset: int,
    known: Mapping[bytes, str] | None,
) -> Page | None:
    """Return the page of a split XML answer, decoding only the entries `known` lacks.

    An entry's source digest is taken of its bytes as sent. The entries left are decoded in
    one document under the container's own start tag, grouped by tag as `_take_entries`
    returns them; None if that does not give back one entry per element (the caller then
    decodes the answer whole).
    """
    unchanged: list[str] = []
    pending: list[tuple[int, bytes, bytes]] = []
    for tag, raw in split.entries:
        order = _XML_ITEM_TAGS.get(tag)
        if order is None:
            continue  # not an entry: the decoded container would not list it either
        digest = _raw_digest(raw)
        if known is not None and (rating_key := known.get(digest)) is not None:
            unchanged.append(rating_key)
        else:
            pending.append((order, raw, digest))
    pending.sort(key=itemgetter(0))
    document = b"".join((split.head, *(raw for _, raw, _ in pending), b"</MediaContainer>"))
    digests = [digest for _, _, digest in pending]
    try:
        container, _fmt = decode_container(document, "text/xml")
    except BodyError:
        del document
        return _xml_page_by_entry(split, pending, kinds, offset, unchanged)
    del document
    entries = _take_entries(container)
    if len(entries) != len(digests):
        return None
    return _entries_page(container, entries, digests, kinds, offset, None, unchanged)


_XML_KEY: Final = re.compile(rb"""[ \t\r\n]ratingKey[ \t\r\n]*=[ \t\r\n]*["']([^"'<&]*)["']""")
_XML_TITLE: Final = re.compile(rb"""[ \t\r\n]title[ \t\r\n]*=[ \t\r\n]*["']([^"'<&]*)["']""")


def _xml_page_by_entry(
    split: XmlEntries,
    pending: list[tuple[int, bytes, bytes]],
    kinds: Sequence[ItemKind],
    offset: int,
    unchanged: list[str],
) -> Page | None:
    """Return the page of an XML answer whose entries are decoded one by one.

    An entry that does not decode on its own is a problem of that entry (its ratingKey and
    title read from its start tag where they can be); None when the container's own start
    tag does not decode (the answer is then decoded whole and its error says where).
    """
    close = b"</MediaContainer>"
    try:
        container, _fmt = decode_container(split.head + close, "text/xml")
    except BodyError:
        return None
    entries: list[Any] = []
    digests: list[bytes] = []
    problems: list[ItemProblem] = []
    for _, raw, digest in pending:
        try:
            decoded, _fmt = decode_container(split.head + raw + close, "text/xml")
            found = _take_entries(decoded)
            if len(found) != 1:
                raise BodyError(f"{len(found)} entries in one element")
        except BodyError as err:
            start_tag = raw[: raw.find(b">") + 1]
            key, title = (
                match[1].decode("utf-8", "replace")
                if (match := pattern.search(start_tag))
                else None
                for pattern in (_XML_KEY, _XML_TITLE)
            )
            problems.append(_unreadable(key or None, title or None, err))
            continue
        entries.extend(found)
        digests.append(digest)
    page = _entries_page(container, entries, digests, kinds, offset, None, unchanged)
    return replace(
        page, problems=(*page.problems, *problems), received=page.received + len(problems)
    )


def parse_item(
    entry: Any,
    *,
    kinds: Sequence[ItemKind],
    section_key: str | None = None,
    source_digest: bytes | None = None,
) -> PlexItem | ItemProblem:
    """Return one normalized item, or the problem that stops it from being one."""
    if entry.__class__ is dict:
        item = _quick_item(entry, kinds, section_key, source_digest)
        if item is not None:
            return item
    return _tolerant_item(entry, kinds=kinds, section_key=section_key)


def source_digest(entry: dict[str, Any]) -> bytes:
    """Return a digest of an entry exactly as Plex sent it, in its key order.

    Equal digests mean nothing Plex reports about the item changed (watch state included).
    Plex keeps its key order; if a server changed it, its entries would be parsed and
    compared once more (the content digest decides what changed), not taken for changes.
    """
    hasher = _DIGEST_BASE.copy()
    hasher.update(_canonical(entry))
    return hasher.digest()


def _tolerant_item(
    entry: Any, *, kinds: Iterable[ItemKind], section_key: str | None = None
) -> PlexItem | ItemProblem:
    """Return one normalized item, saying what is odd about it, or the problem that stops it."""
    if not isinstance(entry, dict):
        return ItemProblem(None, None, f"entry is not an object: {type(entry).__name__}")
    fields = _Fields(entry)
    rating_key = fields.text("ratingKey")
    title = fields.text("title")
    if not rating_key:
        return ItemProblem(None, title, "entry has no ratingKey")
    allowed = tuple(kinds)
    type_name = fields.text("type")
    kind = _KINDS.get(type_name or "")
    if kind is None and type_name is None and len(allowed) == 1:
        kind = allowed[0]
        fields.warnings.append(f"type missing, taken as {kind}")
    if kind is None or kind not in allowed:
        return ItemProblem(rating_key, title, f"unexpected type {type_name!r}")
    if title is None:
        fields.warnings.append("title missing")
    guids = tuple(
        guid for node in fields.nodes("Guid") if (guid := _str(node.get("id"))[0]) is not None
    )
    media_warnings: list[str] = []
    media = tuple(_parse_media(node, media_warnings) for node in fields.nodes("Media"))
    if "Part" in entry:
        media_warnings.append("Part outside Media ignored")
    return PlexItem(
        kind=kind,
        rating_key=rating_key,
        title=title or "",
        section_key=fields.text("librarySectionID") or section_key,
        parent_rating_key=fields.text("parentRatingKey"),
        grandparent_rating_key=fields.text("grandparentRatingKey"),
        parent_title=fields.text("parentTitle"),
        grandparent_title=fields.text("grandparentTitle"),
        index=fields.number("index"),
        parent_index=fields.number("parentIndex"),
        year=fields.number("year"),
        guid=fields.text("guid"),
        guids=guids,
        added_at=fields.number("addedAt"),
        updated_at=fields.number("updatedAt"),
        originally_available_at=fields.text("originallyAvailableAt"),
        child_count=fields.number("childCount"),
        leaf_count=fields.number("leafCount"),
        viewed_leaf_count=fields.number("viewedLeafCount"),
        view_count=fields.number("viewCount"),
        last_viewed_at=fields.number("lastViewedAt"),
        view_offset=fields.number("viewOffset"),
        duration=fields.number("duration"),
        media=media,
        warnings=(*fields.warnings, *media_warnings),
    )


def _is_pseudo(entry: Any) -> bool:
    """Return whether an entry is PMS's "All episodes" shortcut in a show's children."""
    if entry.__class__ is dict and entry.get("ratingKey"):
        return False  # nearly every entry: the shortcut has no ratingKey
    return (
        isinstance(entry, dict)
        and not entry.get("ratingKey")
        and str(entry.get("key", "")).endswith("/allLeaves")
    )


def parse_items(
    container: Node,
    *,
    kinds: Sequence[ItemKind],
    offset: int = 0,
    known: Mapping[bytes, str] | None = None,
) -> Page:
    """Return the items of a decoded listing or detail container as a page.

    Every well-formed item carries the digest of its entry. `known` maps the digests the
    caller already holds to their rating keys: entries that still match are not parsed, only
    listed in `Page.unchanged` (a full listing of an unchanged library then costs little more
    than reading it).

    A dict container is consumed: its entries are freed one by one as they are converted,
    which keeps the number of live objects flat while a large page is parsed (fewer objects
    survive into the garbage collector's old generation, whose full passes stall the loop).
    """
    if isinstance(container, dict):
        entries = _take_entries(container)
    else:
        entries = container_entries(container)
    return _entries_page(container, entries, None, kinds, offset, known, [])


def _entries_page(
    container: Node,
    entries: list[Any],
    digests: list[bytes] | None,
    kinds: Sequence[ItemKind],
    offset: int,
    known: Mapping[bytes, str] | None,
    unchanged: list[str],
) -> Page:
    """Return the page of a container's entries (consumed), with the entries' digests if known.

    Without `digests`, each entry is digested as decoded. Keys in `unchanged` were matched
    before decoding; they count as received.
    """
    section_key = _str(container.get("librarySectionID"))[0]
    entries.reverse()
    if digests is not None:
        digests.reverse()
    received = len(unchanged)
    items: list[PlexItem] = []
    problems: list[ItemProblem] = []
    while entries:
        entry = entries.pop()
        given = digests.pop() if digests is not None else None
        if _is_pseudo(entry):
            continue
        received += 1
        try:
            if digests is not None:
                digest = given
            else:
                digest = source_digest(entry) if entry.__class__ is dict else None
            if known is not None and digest is not None:
                rating_key = known.get(digest)
                if rating_key is not None and rating_key == entry.get("ratingKey"):
                    unchanged.append(rating_key)
                    continue
            parsed = parse_item(entry, kinds=kinds, section_key=section_key, source_digest=digest)
        except Exception as err:  # noqa: BLE001 - one unreadable entry never stops a page
            keys = entry if isinstance(entry, dict) else {}
            parsed = _unreadable(_str(keys.get("ratingKey"))[0], _str(keys.get("title"))[0], err)
        del entry
        if isinstance(parsed, ItemProblem):
            problems.append(parsed)
        else:
            items.append(parsed)
    return Page(
        items=tuple(items),
        problems=tuple(problems),
        offset=offset,
        received=received,
        total_size=container_int(container, "totalSize"),
        unchanged=tuple(unchanged),
    )
