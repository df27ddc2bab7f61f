"""Turn Plex answers (JSON or XML) into the typed models, tolerating odd types and bad entries.

What an item entry holds is declared once, in `wire.py`; this module pages through answers
and turns their entries into items by that declaration. Everything here is pure and
synchronous: the client runs it off the event loop for large bodies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
import hashlib
from itertools import chain
import json
from operator import itemgetter
import re
from typing import Any, Final

import msgspec
import xmltodict

from .jsonsplit import salvage_keys, split_json_entries
from .models import (
    ItemKind,
    ItemProblem,
    Page,
    PlexItem,
    Section,
    ServerIdentity,
)
from .wire import ITEM, FieldKind, Unusable, read_fields, read_id, read_number, read_text
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
    return _number(container.get(key))


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


# --- scalars, for what is not an item --------------------------------------------------------


def _number(value: Any) -> int | None:
    """Return an integer read as an item field is (`wire.read_number`), None if unusable."""
    try:
        return read_number(value)
    except Unusable:
        return None


def _text(value: Any) -> str | None:
    """Return text read as an item field is (`wire.read_text`), None if unusable."""
    try:
        return read_text(value)
    except Unusable:
        return None


def _id(value: Any) -> str | None:
    """Return an id read as an item's are (`wire.read_id`), None if unusable."""
    try:
        return read_id(value)
    except Unusable:
        return None


def _nodes(value: Any) -> list[Node]:
    """Return the objects of a list (one object is a list of one), skipping anything else."""
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [entry for entry in value if isinstance(entry, dict)]
    return []


# --- entities --------------------------------------------------------------------------------


def parse_identity(container: Node) -> ServerIdentity:
    """Return the server identity from `/identity` or `/`."""
    machine_identifier = _text(container.get("machineIdentifier"))
    if not machine_identifier:
        raise BodyError("the answer has no machineIdentifier")
    return ServerIdentity(
        machine_identifier=machine_identifier,
        version=_text(container.get("version")),
        friendly_name=_text(container.get("friendlyName")),
        platform=_text(container.get("platform")),
    )


def parse_sections(container: Node) -> list[Section]:
    """Return the library sections of `/library/sections`; entries without key or type fail."""
    sections: list[Section] = []
    for entry in _nodes(container.get("Directory")):
        get = entry.get
        key = _text(get("key"))
        section_type = _text(get("type"))
        if not key or not section_type:
            raise BodyError(f"library section without key or type: {dict(entry)!r:.120}")
        locations = tuple(
            path
            for location in _nodes(get("Location"))
            if (path := _text(location.get("path"))) is not None
        )
        sections.append(
            Section(
                key=key,
                type=section_type,
                title=_text(get("title")) or key,
                uuid=_text(get("uuid")),
                agent=_text(get("agent")),
                scanner=_text(get("scanner")),
                language=_text(get("language")),
                locations=locations,
                updated_at=_number(get("updatedAt")),
                scanned_at=_number(get("scannedAt")),
                content_changed_at=_number(get("contentChangedAt")),
            )
        )
    return sections


# --- items ---------------------------------------------------------------------------------------
#
# Every entry is decoded into the struct of its wire schema (`wire.ITEM`), and `_item` turns
# that struct into a `PlexItem`, whichever of three ways decoded it:
#
# - a JSON entry of a listing, straight from its bytes (`_raw_item`; a full sync reads 100k);
# - an entry already decoded as a dict (XML through xmltodict, or JSON decoded whole), by
#   `msgspec.convert`, which reads XML's numbers from text (`_quick_item`);
# - when either fails on a field that is not of its declared kind, field by field
#   (`_tolerant_item`), which says what is odd and names the field.
#
# The first two give up on anything odd, and give the tolerant path's item for every entry
# they accept (the tests hold them to that, in JSON and XML, on generated and mutated entries).

_WireItem: Final[type[Any]] = ITEM.struct
# Wire keys that only ever bring a warning (a Part outside Media): an entry with one goes the
# tolerant way, also when lax conversion would read its value as null (the text "NULL").
_STRAY_KEYS: Final = tuple(field.wire for field in ITEM.fields if field.kind is FieldKind.STRAY)
_ITEM_VALUES: Final = ITEM.values
# The item's values come in the model's order (checked by `wire`).
_SECTION: Final = PlexItem.__struct_fields__.index("section_key")


def _item(
    wire: Any,
    section_key: str | None,
    source_digest: bytes | None,
    warnings: tuple[str, ...] = (),
) -> PlexItem:
    """Return the item of a decoded entry: the one place a `PlexItem` is made from the wire.

    `section_key` is the container's, for entries that do not name their own.
    """
    values = _ITEM_VALUES(wire)
    if values[_SECTION] is None:
        values[_SECTION] = section_key
    values += (warnings, source_digest)  # the model's two fields after the declared ones
    return PlexItem(*values)


def _fast_item(
    wire: Any, kinds: Sequence[ItemKind], section_key: str | None, source_digest: bytes | None
) -> PlexItem | None:
    """Return the item of an entry decoded without fault, or None when it needs judgement.

    What decoding cannot see is left to the tolerant path too: a type the caller did not ask
    for (a problem) and a Part outside its Media (a warning).
    """
    if wire.kind not in kinds or wire.stray_parts is not None:
        return None
    return _item(wire, section_key, source_digest)


def _quick_item(
    entry: dict[str, Any],
    kinds: Sequence[ItemKind],
    section_key: str | None,
    source_digest: bytes | None = None,
) -> PlexItem | None:
    """Return the item of a well-formed entry, or None for the tolerant parser to handle."""
    if any(key in entry for key in _STRAY_KEYS):
        return None
    try:
        wire = msgspec.convert(entry, _WireItem, strict=False)
    except msgspec.ValidationError:
        return None
    return _fast_item(wire, kinds, section_key, source_digest)


def _tolerant_item(
    entry: Any, *, kinds: Iterable[ItemKind], section_key: str | None = None
) -> PlexItem | ItemProblem:
    """Return one normalized item, saying what is odd about it, or the problem that stops it.

    Its item carries no source digest: an entry with something odd is read, and its warnings
    reported, on every run.
    """
    if not isinstance(entry, dict):
        return ItemProblem(None, None, f"entry is not an object: {type(entry).__name__}")
    warnings: list[str] = []
    found = read_fields(ITEM, entry, "", warnings)
    rating_key = found["rating_key"]
    title = found["title"]
    if not rating_key:
        return ItemProblem(None, title, "entry has no ratingKey")
    allowed = tuple(kinds)
    type_name = found["kind"]
    kind = _KINDS.get(type_name or "")
    if kind is None and type_name is None and len(allowed) == 1:
        kind = allowed[0]
        warnings.append(f"type: missing, taken as {kind}")
    if kind is None or kind not in allowed:
        return ItemProblem(rating_key, title, f"unexpected type {type_name!r}")
    if title is None:
        warnings.append("title: missing")
    found["kind"] = kind
    found["title"] = title or ""
    return _item(_WireItem(**found), section_key, None, tuple(warnings))


# --- JSON listings, typed -----------------------------------------------------------------------
#
# A JSON listing page is first split into its entries' raw bytes, without building them. An
# entry whose bytes hash to a digest the caller holds is unchanged and never decoded (a deep
# re-sync of an unchanged library decodes nothing). The others are decoded by msgspec straight
# into the wire schema's struct; an entry whose fields do not have the types Plex documents
# fails that decode and goes through `parse_item`, which says what is odd about it. A page that
# is not the expected shape at all takes the general path (`decode_container` + `parse_items`).


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
_ENTRY_DECODER: Final[msgspec.json.Decoder[Any]] = msgspec.json.Decoder(_WireItem)


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
        wire = _ENTRY_DECODER.decode(raw)
    except msgspec.DecodeError:
        pass
    else:
        item = _fast_item(wire, kinds, section_key, digest)
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
    section_key = _id(container.get("librarySectionID"))
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
            parsed = _unreadable(_text(keys.get("ratingKey")), _text(keys.get("title")), err)
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
