"""Serialize element trees to PMS-style XML and JSON bodies."""

from __future__ import annotations

import json
import re
from typing import Any, Final

type Value = str | int | float | bool

XML_CONTENT_TYPE: Final = "text/xml;charset=utf-8"
JSON_CONTENT_TYPE: Final = "application/json"
XML_DECLARATION: Final = '<?xml version="1.0" encoding="UTF-8"?>\n'

_ESCAPES: Final = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        "\n": "&#10;",
        "\r": "&#13;",
        "\t": "&#9;",
    }
)
_NEEDS_ESCAPE_RE: Final = re.compile('[&<>"\n\r\t]')
_search: Final = _NEEDS_ESCAPE_RE.search


class Node:
    """Describe one element: XML tag, typed attributes, children and its JSON array name."""

    __slots__ = ("attrs", "children", "group", "tag")

    def __init__(
        self,
        tag: str,
        attrs: dict[str, Value],
        children: list[Node] | None = None,
        group: str | None = "",
    ) -> None:
        self.tag = tag
        self.attrs = attrs
        self.children = children if children is not None else []
        #: JSON key of the array this element joins; "" means the tag, None a single object.
        self.group = tag if group == "" else group

    def copy(self) -> Node:
        """Return a deep copy that can be changed freely."""
        return Node(self.tag, dict(self.attrs), [c.copy() for c in self.children], self.group)

    def find(self, tag: str) -> Node | None:
        """Return the first child with this tag."""
        return next((c for c in self.children if c.tag == tag), None)


def escape_attr(value: str) -> str:
    """Escape a string for a double-quoted XML attribute."""
    if _search(value) is None:
        return value
    return value.translate(_ESCAPES)


def _attrs_xml(attrs: dict[str, Value]) -> str:
    out = []
    for key, value in attrs.items():
        if isinstance(value, str):
            text = value if _search(value) is None else value.translate(_ESCAPES)
        elif value.__class__ is bool:
            text = "1" if value else "0"
        else:
            text = str(value)
        out.append(f' {key}="{text}"')
    return "".join(out)


def _xml(node: Node, out: list[str], depth: int) -> None:
    attrs = _attrs_xml(node.attrs)
    if not node.children:
        out.append(f"<{node.tag}{attrs} />")
        return
    out.append(f"<{node.tag}{attrs}>")
    if depth == 0:
        for child in node.children:
            out.append("\n")
            _xml(child, out, depth + 1)
        out.append("\n")
    else:
        for child in node.children:
            _xml(child, out, depth + 1)
    out.append(f"</{node.tag}>")


def to_xml(node: Node) -> bytes:
    """Render a MediaContainer tree as an XML document."""
    out = [XML_DECLARATION]
    _xml(node, out, 0)
    out.append("\n")
    return "".join(out).encode()


def to_json_obj(node: Node) -> dict[str, Any]:
    """Return the JSON object of a node (attributes plus grouped children)."""
    obj: dict[str, Any] = dict(node.attrs)
    for child in node.children:
        if child.group is None:
            obj[child.tag] = to_json_obj(child)
        else:
            obj.setdefault(child.group, []).append(to_json_obj(child))
    return obj


def to_json(node: Node) -> bytes:
    """Render a MediaContainer tree as a JSON document."""
    return json.dumps(
        {node.tag: to_json_obj(node)}, ensure_ascii=False, separators=(",", ":")
    ).encode()


def render(node: Node, fmt: str) -> bytes:
    """Render in "xml" or "json"."""
    return to_json(node) if fmt == "json" else to_xml(node)
