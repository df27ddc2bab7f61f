"""The wire schema of a Plex item: every field of a listing entry, declared once.

An entry carries the same fields in JSON and in XML: a JSON key is an XML attribute of the
same name (its value then text), and a JSON array of objects is a list of child elements of
that tag. `ITEM` declares the fields of an item, `MEDIA`, `PART` and `GUID` those of its
children: the name on the wire, the model attribute it fills, and its kind. What the parser
(`parse.py`) does with an entry is derived from those tables, so a field is added in one
place:

- `WireNode.struct`, the msgspec struct an entry decodes into: a JSON entry straight from its
  bytes, an entry already decoded as a dict (XML from xmltodict, its numbers as text) by
  `msgspec.convert`, which reads numbers from text. Either fails on any field that is not of
  its declared kind, or on a required one missing; the entry is then read by
- `read_fields`, field by field: it coerces what it can (a number with spaces around it, a
  float, a boolean) and names the wire field of every value it cannot use
  (`"year: not a number: 'abc'"`, `"Media[0].Part[1].size: out of range: …"`) into the same
  struct;
- `WireNode.values` and `WireNode.build`, the model's values of a decoded struct and its
  model, however it was decoded: empty text is missing, an id sent as a number is text, child
  structs become their models. They are compiled from the declaration, and the model's
  attributes are checked against it when this module is imported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import Enum
import math
from operator import attrgetter
from typing import Annotated, Any, Final, NamedTuple

import msgspec

from .models import ItemKind, Media, Part, PlexItem

# The catalog stores integers as SQLite's signed 64-bit ones and digests them as such: a number
# outside that range is read as missing, with a warning.
INT_MIN: Final = -(2**63)
INT_MAX: Final = 2**63 - 1
type _Int = Annotated[int, msgspec.Meta(ge=INT_MIN, le=INT_MAX)]
type _Key = Annotated[str, msgspec.Meta(min_length=1)]


class FieldKind(Enum):
    """What a wire field holds, and how each path reads it."""

    # An integer in SQLite's range: a JSON number, or XML text.
    NUMBER = "number"
    # Text; empty text is missing.
    TEXT = "text"
    # Text an entry cannot go without (empty is missing too): the fast paths leave an entry
    # without it to the tolerant one, which decides (a problem, a warning, a dropped child).
    KEY = "key"
    # An id: a number in JSON, text in XML; kept as text.
    ID = "id"
    # The item's type name, one of `ItemKind`; required like a KEY.
    TYPE = "type"
    # Child entries of `WireField.node`: a JSON array of objects, or XML child elements.
    NODES = "nodes"
    # A child that belongs inside `WireField.node`: ignored, with a warning.
    STRAY = "stray"


class WireField(NamedTuple):
    """One field of an entry: its name on the wire, its model attribute, what it holds."""

    wire: str
    attr: str
    kind: FieldKind
    node: WireNode | None = None


class Unusable(ValueError):
    """A wire value that cannot be read as its field's kind; the message says why."""


# --- scalars, read tolerantly -------------------------------------------------------------------


def read_number(value: Any) -> int | None:
    """Return an integer from a JSON number or XML text, None when missing.

    A float is truncated and a boolean is 0 or 1. The text `null` (any case) is missing, as
    msgspec reads it from XML text (`WireNode.struct`): both paths must agree on every entry
    the fast one accepts. Raises `Unusable`.
    """
    if value is None or value == "":
        return None
    number: int | float
    if isinstance(value, bool):
        return int(value)
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
                if text.lower() == "null":
                    return None
                raise Unusable(f"not a number: {value!r:.40}") from None
    else:
        raise Unusable(f"not a number: {type(value).__name__}")
    if isinstance(number, float) and (math.isnan(number) or math.isinf(number)):
        raise Unusable(f"not a number: {value!r:.40}")
    if not INT_MIN <= number <= INT_MAX:
        raise Unusable(f"out of range: {value!r:.40}")
    return int(number)


def read_text(value: Any) -> str | None:
    """Return the text of a scalar, None when missing; raises `Unusable`."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return str(value)
    raise Unusable(f"not text: {type(value).__name__}")


def read_id(value: Any) -> str | None:
    """Return an id as text, None when missing; raises `Unusable`.

    A whole float is the integer's text ("5", not "5.0"), as msgspec reads it
    (`WireNode.struct`).
    """
    if value.__class__ is float and value.is_integer():
        return str(int(value))
    return read_text(value)


# --- the declaration ----------------------------------------------------------------------------


class WireNode:
    """One kind of entry on the wire: its fields, its model and what is derived from them."""

    __slots__ = ("build", "fields", "model", "name", "source", "struct", "values")

    def __init__(
        self, name: str, model: type[msgspec.Struct] | None, *rows: tuple[Any, ...]
    ) -> None:
        """Declare a node from rows of `WireField`'s fields; `model` None keeps one field."""
        self.name = name
        self.model = model
        self.fields = tuple(
            WireField(wire, attr, FieldKind(kind), *child) for wire, attr, kind, *child in rows
        )
        self.struct = _struct(name, self.fields)
        # The source of `values` and `build`, for whoever reads a traceback through them.
        self.source = _source(self)
        self.values, self.build = _compile(self)


def _struct(name: str, fields: tuple[WireField, ...]) -> type[msgspec.Struct]:
    """Return the struct a node decodes into: a field per declared one, named as on the wire.

    Keyword-only, so required fields (KEY, TYPE) need no place before the optional ones, and
    out of the garbage collector like the models (they hold no cycles).
    """
    spec: list[tuple[str, Any, Any]] = []
    for field in fields:
        kind = field.kind
        if kind is FieldKind.KEY:
            spec.append((field.attr, _Key, msgspec.field(name=field.wire)))
        elif kind is FieldKind.TYPE:
            spec.append((field.attr, ItemKind, msgspec.field(name=field.wire)))
        elif kind is FieldKind.NODES:
            children = tuple[_child(field).struct, ...]  # type: ignore[misc, valid-type]
            spec.append((field.attr, children, msgspec.field(default=(), name=field.wire)))
        else:
            wire_type = {
                FieldKind.NUMBER: _Int | None,
                FieldKind.TEXT: str | None,
                FieldKind.ID: int | str | None,
                # Decoded only to see that it is there; `convert` fails on it, as it should.
                FieldKind.STRAY: msgspec.Raw | None,
            }[kind]
            spec.append((field.attr, wire_type, msgspec.field(default=None, name=field.wire)))
    return msgspec.defstruct(f"Wire{name}", spec, kw_only=True, gc=False)


def _child(field: WireField) -> WireNode:
    if field.node is None:
        raise TypeError(f"{field.wire}: a {field.kind.value} field needs its node")
    return field.node


def _used(node: WireNode) -> list[WireField]:
    """Return the fields of a node that fill its model (all but STRAY ones), in order."""
    return [field for field in node.fields if field.kind is not FieldKind.STRAY]


def _source(node: WireNode) -> str:
    """Return the source of a node's `values` and `build`: one expression per model field.

    Each reads a declared attribute of the decoded struct (TEXT: empty is missing; ID: a
    number becomes text; NODES: the children's own `build`), in the declared order.
    """
    expressions: list[str] = []
    for field in _used(node):
        # An attribute is an identifier (`msgspec.defstruct` refuses the node otherwise).
        value = f"struct.{field.attr}"
        if field.kind is FieldKind.TEXT:
            value = f"({value} or None)"
        elif field.kind is FieldKind.ID:
            value = f"(str({value}) if {value}.__class__ is int else {value} or None)"
        elif field.kind is FieldKind.NODES:
            value = f"tuple(map(build_{field.attr}, {value}))"
        expressions.append(value)
    listed = ",\n        ".join(expressions)
    return (
        f"def values(struct):\n    return [\n        {listed},\n    ]\n\n\n"
        f"def build(struct):\n    return model(\n        {listed},\n    )\n"
    )


def _compile(node: WireNode) -> tuple[Callable[[Any], list[Any]], Callable[[Any], Any]]:
    """Return what lists the model's values of a decoded struct, and what builds its model.

    Both are compiled from `node.source`, as `dataclasses` compiles an `__init__`, so that a
    decoded struct costs what a hand-written constructor call costs: a full sync builds 100k
    items, and a loop over the declared fields cost nearly twice as much per item. The model
    must list the declared attributes first, in their order: its values are passed by position.
    """
    used = _used(node)
    if node.model is not None:
        names = [field.name for field in msgspec.structs.fields(node.model)]
        if names[: len(used)] != [field.attr for field in used]:
            model = node.model.__name__
            raise TypeError(f"{node.name}: declare the fields of {model} in its order")
    namespace: dict[str, Any] = {"model": node.model}
    for field in used:
        if field.kind is FieldKind.NODES:
            namespace[f"build_{field.attr}"] = _child(field).build
    exec(compile(node.source, f"<wire schema of {node.name}>", "exec"), namespace)  # noqa: S102
    if node.model is None:  # the node stands for its one field
        (field,) = used
        return namespace["values"], attrgetter(field.attr)
    return namespace["values"], namespace["build"]


PART: Final = WireNode(
    "Part",
    Part,
    # wire name                model attribute            kind
    ("id",                     "id",                      "id"),
    ("key",                    "key",                     "text"),
    ("file",                   "file",                    "text"),
    ("size",                   "size",                    "number"),
    ("duration",               "duration",                "number"),
    ("container",              "container",               "text"),
)  # fmt: skip

MEDIA: Final = WireNode(
    "Media",
    Media,
    ("id",                     "id",                      "id"),
    ("duration",               "duration",                "number"),
    ("bitrate",                "bitrate",                 "number"),
    ("width",                  "width",                   "number"),
    ("height",                 "height",                  "number"),
    ("videoCodec",             "video_codec",             "text"),
    ("audioCodec",             "audio_codec",             "text"),
    ("audioChannels",          "audio_channels",          "number"),
    ("videoResolution",        "video_resolution",        "text"),
    ("container",              "container",               "text"),
    ("Part",                   "parts",                   "nodes", PART),
)  # fmt: skip

# Only the id of a Guid is kept (`model` None); a Guid without one is dropped.
GUID: Final = WireNode(
    "Guid",
    None,
    ("id",                     "id",                      "key"),
)  # fmt: skip

ITEM: Final = WireNode(
    "Item",
    PlexItem,
    ("type",                   "kind",                    "type"),
    ("ratingKey",              "rating_key",              "key"),
    ("title",                  "title",                   "key"),
    # Listings name the section on the container, details on each entry.
    ("librarySectionID",       "section_key",             "id"),
    ("parentRatingKey",        "parent_rating_key",       "text"),
    ("grandparentRatingKey",   "grandparent_rating_key",  "text"),
    ("parentTitle",            "parent_title",            "text"),
    ("grandparentTitle",       "grandparent_title",       "text"),
    ("index",                  "index",                   "number"),
    ("parentIndex",            "parent_index",            "number"),
    ("year",                   "year",                    "number"),
    ("guid",                   "guid",                    "text"),
    ("Guid",                   "guids",                   "nodes", GUID),
    ("addedAt",                "added_at",                "number"),
    ("updatedAt",              "updated_at",              "number"),
    ("originallyAvailableAt",  "originally_available_at", "text"),
    ("childCount",             "child_count",             "number"),
    ("leafCount",              "leaf_count",              "number"),
    ("viewedLeafCount",        "viewed_leaf_count",       "number"),
    ("viewCount",              "view_count",              "number"),
    ("lastViewedAt",           "last_viewed_at",          "number"),
    ("viewOffset",             "view_offset",             "number"),
    ("duration",               "duration",                "number"),
    ("Media",                  "media",                   "nodes", MEDIA),
    # Parts belong inside Media: one outside is ignored, with a warning.
    ("Part",                   "stray_parts",             "stray", MEDIA),
)  # fmt: skip


# --- the tolerant path ----------------------------------------------------------------------------


def read_fields(
    node: WireNode, entry: Mapping[str, Any], path: str, warnings: list[str]
) -> dict[str, Any]:
    """Return the declared fields of an entry by model attribute, read one by one.

    A value that cannot be read is missing, with a warning that names its wire field under
    `path` (`"Media[0].Part[1].size"`). KEY and TYPE fields are read as text: what their
    absence means is the caller's to decide. Child entries are read the same way into their
    structs; one that lacks a KEY field is dropped.
    """
    found: dict[str, Any] = {}
    for field in node.fields:
        raw = entry.get(field.wire)
        name = path + field.wire
        kind = field.kind
        try:
            if kind is FieldKind.NUMBER:
                found[field.attr] = read_number(raw)
            elif kind is FieldKind.NODES:
                found[field.attr] = _read_children(_child(field), raw, name, warnings)
            elif kind is FieldKind.ID:
                found[field.attr] = read_id(raw)
            elif kind is FieldKind.STRAY:
                found[field.attr] = None
                if raw is not None:
                    warnings.append(f"{name} outside {_child(field).name} ignored")
            else:
                found[field.attr] = read_text(raw)
        except Unusable as err:
            found[field.attr] = () if kind is FieldKind.NODES else None
            warnings.append(f"{name}: {err}")
    return found


def _read_children(node: WireNode, raw: Any, path: str, warnings: list[str]) -> tuple[Any, ...]:
    """Return the structs of a field's child entries (one object is taken as a list of one)."""
    if raw is None:
        return ()
    if isinstance(raw, dict):
        raw = [raw]
    elif not isinstance(raw, list):
        raise Unusable(f"not a list: {type(raw).__name__}")
    keys = [field.attr for field in node.fields if field.kind is FieldKind.KEY]
    children = []
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict):
            warnings.append(f"{path}[{index}]: not an object: {type(entry).__name__}")
            continue
        found = read_fields(node, entry, f"{path}[{index}].", warnings)
        if all(found[key] for key in keys):
            children.append(node.struct(**found))
    return tuple(children)
