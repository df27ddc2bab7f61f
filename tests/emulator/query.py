"""Parse PMS listing parameters: paging, `type`, `sort` and date/number filters."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
import operator
import re
from typing import Any, Final
from urllib.parse import unquote_plus

from .model import EPISODE, SEASON, EmuItem, EmuServer

START: Final = "X-Plex-Container-Start"
SIZE: Final = "X-Plex-Container-Size"

#: Query keys that never change an answer (they are left out of cache keys).
NEUTRAL_KEYS: Final = frozenset(
    {
        "X-Plex-Token",
        START,
        SIZE,
        "X-Plex-Client-Identifier",
        "X-Plex-Product",
        "X-Plex-Version",
        "X-Plex-Platform",
        "X-Plex-Device",
        "X-Plex-Device-Name",
        "X-Plex-Language",
    }
)

_FILTER_FIELDS: Final[dict[str, str]] = {
    "addedAt": "added_at",
    "updatedAt": "updated_at",
    "lastViewedAt": "last_viewed_at",
    "viewCount": "view_count",
    "year": "year",
    "index": "index",
    "duration": "duration",
}
_RELATIVE: Final = re.compile(r"^-(\d+)(s|m|h|d|w|mon|y)$")
_UNIT_SECONDS: Final = {
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 604800,
    "mon": 2_592_000,
    "y": 31_536_000,
}
_OPS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    ">>": operator.gt,
    "<<": operator.lt,
    "!": operator.ne,
    "": operator.eq,
}


def parse_query(raw: str) -> dict[str, str]:
    """Parse a raw query string, keeping PMS operators (`updatedAt>>=5` -> `updatedAt>>`)."""
    result: dict[str, str] = {}
    for chunk in raw.split("&"):
        if not chunk:
            continue
        key, sep, value = chunk.partition("=")
        if not sep:
            # A client that escaped the "=" as well: `updatedAt%3E%3E%3D5`.
            key, sep, value = unquote_plus(chunk).partition("=")
            result[key] = value
            continue
        result[unquote_plus(key)] = unquote_plus(value)
    return result


@dataclass(frozen=True, slots=True)
class Filter:
    """Compare one item field against a value."""

    field: str
    op: str
    values: tuple[int, ...]

    def __call__(self, item: EmuItem) -> bool:
        """Return True if the item passes."""
        value = getattr(item, self.field)
        if value is None:
            return self.op == "!"
        compare = _OPS[self.op]
        if self.op == "!":
            return all(compare(value, v) for v in self.values)
        return any(compare(value, v) for v in self.values)


def _to_int(value: str, now: int) -> int | None:
    value = value.strip()
    if match := _RELATIVE.match(value):
        return now - int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    try:
        return int(value)
    except ValueError:
        return None


def parse_filters(query: Mapping[str, str], now: int) -> tuple[Filter, ...]:
    """Return the filters a listing query asks for; unknown keys are ignored."""
    filters = []
    for key, raw in query.items():
        name, op = key, ""
        for suffix in (">>", "<<", "!"):
            if key.endswith(suffix):
                name, op = key[: -len(suffix)], suffix
                break
        if name not in _FILTER_FIELDS:
            continue
        values = tuple(v for v in (_to_int(p, now) for p in raw.split(",")) if v is not None)
        if values:
            filters.append(Filter(_FILTER_FIELDS[name], op, values))
    return tuple(filters)


_SORT_FIELDS: Final[dict[str, str]] = {
    "titleSort": "sort_title",
    "title": "title",
    "addedAt": "added_at",
    "updatedAt": "updated_at",
    "id": "rating_key",
    "ratingKey": "rating_key",
    "year": "year",
    "originallyAvailableAt": "originally_available_at",
    "lastViewedAt": "last_viewed_at",
    "viewCount": "view_count",
    "index": "index",
    "duration": "duration",
}


def parse_sort(raw: str | None) -> tuple[tuple[str, bool], ...]:
    """Return (field, descending) pairs; unknown fields are ignored."""
    if not raw:
        return ()
    result = []
    for part in raw.split(","):
        name, _, direction = part.strip().partition(":")
        if name in _SORT_FIELDS:
            result.append((_SORT_FIELDS[name], direction.lower() == "desc"))
    return tuple(result)


def _field_key(field: str) -> Callable[[EmuItem], Any]:
    if field in ("sort_title", "title"):
        return lambda item: getattr(item, field).casefold()

    def key(item: EmuItem) -> tuple[bool, Any]:
        value = getattr(item, field)
        return (value is None, value if value is not None else 0)

    return key


def default_order(server: EmuServer, items: list[EmuItem], type_name: str) -> list[EmuItem]:
    """Order items as PMS does without `sort`: titleSort (episodes: show, season, number)."""
    if type_name in (SEASON, EPISODE):
        shows: dict[int, str] = {}

        def show_title(item: EmuItem) -> str:
            show = server.show_of(item)
            if show is None:
                return ""
            if show.rating_key not in shows:
                shows[show.rating_key] = show.sort_title.casefold()
            return shows[show.rating_key]

        if type_name == SEASON:
            return sorted(items, key=lambda i: (show_title(i), i.index or 0, i.rating_key))
        return sorted(
            items,
            key=lambda i: (
                show_title(i),
                server.items[i.parent_rk or -1].index or 0,
                i.index or 0,
                i.rating_key,
            ),
        )
    return sorted(items, key=lambda i: (i.sort_title.casefold(), i.rating_key))


def apply_sort(items: list[EmuItem], sort: Iterable[tuple[str, bool]]) -> list[EmuItem]:
    """Sort by the given fields, ties broken by ascending ratingKey."""
    result = sorted(items, key=lambda i: i.rating_key)
    for field, descending in reversed(tuple(sort)):
        result.sort(key=_field_key(field), reverse=descending)
    return result


@dataclass(frozen=True, slots=True)
class Paging:
    """Hold the requested window; None means not given."""

    start: int | None
    size: int | None

    @property
    def given(self) -> bool:
        """Return True if the client asked for a window at all."""
        return self.start is not None or self.size is not None


def _int_or_none(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def parse_paging(query: Mapping[str, str], headers: Mapping[str, str]) -> Paging:
    """Read Start/Size from the query string first, then from headers."""
    start = _int_or_none(query.get(START, headers.get(START)))
    size = _int_or_none(query.get(SIZE, headers.get(SIZE)))
    if size is not None and size < 0:
        size = None
    return Paging(max(start, 0) if start is not None else None, size)
