r"""Map file paths as a Plex server reports them to local paths, resolved at read time.

The `part_paths` view (store/schema.py) implements the same rules in SQL; the two must agree
on every input (tests/reliability/test_path_agreement.py checks it). The rules:

- A prefix is POSIX (`/media`), drive (`D:\Media`) or UNC (`\\server\share`). Windows-style
  (drive and UNC) paths split on both separators; POSIX paths split on `/` only, so a
  backslash is part of a POSIX name. Empty and `.` components are dropped everywhere.
- A Plex path matches a prefix of its style when its leading components equal the prefix's;
  Windows-style components compare ignoring ASCII case only (as SQLite's NOCASE). A UNC path
  whose first component is `.` or `?` (a device or extended-length path) is not UNC at all.
- The longest matching prefix wins: the longest canonical match key (`match_prefix` in the
  table), ties broken by the key's text. A path the winner refuses does not fall back.
- The components after the prefix are the remainder. A POSIX remainder mapped to a Windows
  local prefix is split again on `\` too (a backslash would be a separator there).
- The remainder is refused (None) when any component is `..`; for a Windows local prefix also
  when any component is made only of dots and spaces (`...`, `. .`, `.. `), which Windows
  could read as `.` or `..`. Nothing is collapsed: `a/../b` is refused, not read as `b`.
- Otherwise the local path is the local prefix joined with the remainder by the local
  separator; an empty remainder gives the local prefix itself. Paths with NUL map to nothing.
- Prefixes are checked when configured: absolute, no NUL, no `..` component (no component made
  only of dots and spaces in Windows-style prefixes), UNC ones name a server and a share, and
  device or extended-length prefixes (`\\.\pipe`, `\\?\C:\`) are refused.
- A mapping covers a folder Plex reports (a library's Location) with the same component and
  case rules: wholly when its Plex prefix is the folder or a folder above it, in part when the
  prefix lies inside the folder (`coverage`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
import re
import string
from typing import Final

_POSIX_SEP: Final = "/"
_WINDOWS_SEP: Final = "\\"
_WINDOWS_SEPS: Final = "\\/"
_WINDOWS_SPLIT: Final = re.compile(r"[\\/]")
_DRIVE_PATTERN: Final = re.compile(r"[A-Za-z]:[\\/]")
_SKIPPED_PARTS: Final = frozenset({"", "."})
_PARENT: Final = ".."
_NUL: Final = "\x00"
_DEVICE_ROOTS: Final = frozenset({".", "?"})
_ASCII_LOWER: Final = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


class InvalidPathMapping(ValueError):
    """Raised when a path mapping cannot be used."""


class _Style(StrEnum):
    """Flavour of an absolute path."""

    POSIX = "posix"
    DRIVE = "drive"
    UNC = "unc"


@dataclass(frozen=True, slots=True)
class PathMapping:
    """Map a path prefix as the Plex server sees it to the same place seen locally."""

    plex_prefix: str
    local_prefix: str


@dataclass(frozen=True, slots=True)
class ViewColumns:
    """What the `part_paths` view needs to resolve one mapping in SQL."""

    plex_prefix: str
    local_prefix: str
    match_prefix: str
    fold_case: bool
    local_base: str
    local_sep: str


def _fold(text: str) -> str:
    """Lower ASCII letters only, as SQLite's NOCASE collation compares."""
    return text.translate(_ASCII_LOWER)


def _is_dot_like(part: str) -> bool:
    """Return whether Windows could read a component as `.` or `..` (only dots and spaces)."""
    return not part.strip(". ")


@dataclass(frozen=True, slots=True)
class _Prefix:
    """A parsed absolute prefix: style, drive letter (drive style only) and components."""

    style: _Style
    drive: str
    parts: tuple[str, ...]

    @property
    def windows(self) -> bool:
        """Return whether the prefix uses Windows separators and case rules."""
        return self.style is not _Style.POSIX

    @property
    def separator(self) -> str:
        """Return the separator local paths under this prefix use."""
        return _WINDOWS_SEP if self.windows else _POSIX_SEP

    def format(self) -> str:
        """Return the canonical text of the prefix."""
        if self.style is _Style.POSIX:
            return _POSIX_SEP + _POSIX_SEP.join(self.parts)
        if self.style is _Style.DRIVE:
            return f"{self.drive}:{_WINDOWS_SEP}" + _WINDOWS_SEP.join(self.parts)
        return _WINDOWS_SEP * 2 + _WINDOWS_SEP.join(self.parts)

    def base(self) -> str:
        """Return the canonical text minus a trailing separator (`/` becomes empty)."""
        return self.format().rstrip(self.separator)

    def match_key(self) -> str:
        """Return the key Plex paths are matched against: `/` separators, Windows ASCII-folded."""
        tail = "".join(_POSIX_SEP + part for part in self.parts)
        if self.style is _Style.POSIX:
            return tail
        if self.style is _Style.DRIVE:
            return _fold(f"{self.drive}:{tail}")
        return _fold(_POSIX_SEP + tail)


@dataclass(frozen=True, slots=True)
class _Rule:
    """A mapping precomputed for fast resolving."""

    columns: ViewColumns
    style: _Style
    drive: str
    parts: tuple[str, ...]
    local_windows: bool


def _detect_style(value: str) -> _Style | None:
    """Return the style of an absolute path, or None when it is not absolute."""
    if value[:2] in ("\\\\", "\\/", "/\\"):
        return _Style.UNC
    if value.startswith(_POSIX_SEP):
        return _Style.POSIX
    if _DRIVE_PATTERN.match(value):
        return _Style.DRIVE
    return None


def _split_parts(text: str, windows: bool) -> list[str]:
    """Split path text into components, dropping empty and `.` ones."""
    raw = _WINDOWS_SPLIT.split(text) if windows else text.split(_POSIX_SEP)
    return [part for part in raw if part not in _SKIPPED_PARTS]


def _is_device_root(body: str) -> bool:
    """Return whether a UNC body (after the two separators) starts with a `.` or `?` component."""
    return _WINDOWS_SPLIT.split(body, maxsplit=1)[0] in _DEVICE_ROOTS


def _parse_prefix(value: str, side: str) -> _Prefix:
    """Parse and check one configured prefix."""
    text = value.strip()
    if not text:
        raise InvalidPathMapping(f"The {side} prefix must not be empty")
    if _NUL in text:
        raise InvalidPathMapping(f"The {side} prefix {text!r} must not contain NUL characters")
    style = _detect_style(text)
    if style is None:
        raise InvalidPathMapping(
            f"The {side} prefix {text!r} must be an absolute path "
            "(like /media, D:\\Media or \\\\server\\share)"
        )
    if style is _Style.UNC and _is_device_root(text[2:]):
        raise InvalidPathMapping(
            f"The {side} prefix {text!r} must not be a device or extended-length path "
            "(\\\\.\\… or \\\\?\\…); use the plain form, like D:\\Media or \\\\server\\share"
        )
    drive = text[0] if style is _Style.DRIVE else ""
    body = text[2:] if style is not _Style.POSIX else text
    parts = _split_parts(body, windows=style is not _Style.POSIX)
    if _PARENT in parts:
        raise InvalidPathMapping(f"The {side} prefix {text!r} must not contain '..' components")
    if style is not _Style.POSIX and any(_is_dot_like(part) for part in parts):
        raise InvalidPathMapping(
            f"The {side} prefix {text!r} must not contain components made only of dots and spaces"
        )
    if style is _Style.UNC and len(parts) < 2:
        raise InvalidPathMapping(
            f"The {side} prefix {text!r} must name a server and a share (\\\\server\\share)"
        )
    return _Prefix(style, drive, tuple(parts))


def validate_mapping(plex_prefix: str, local_prefix: str) -> PathMapping:
    """Check a mapping and return it with both prefixes in canonical form."""
    plex = _parse_prefix(plex_prefix, "Plex")
    local = _parse_prefix(local_prefix, "local")
    return PathMapping(plex_prefix=plex.format(), local_prefix=local.format())


def _parse_mapping(mapping: PathMapping) -> tuple[_Prefix, _Prefix, ViewColumns]:
    """Validate a mapping and return both parsed prefixes and its view columns."""
    plex = _parse_prefix(mapping.plex_prefix, "Plex")
    local = _parse_prefix(mapping.local_prefix, "local")
    columns = ViewColumns(
        plex_prefix=plex.format(),
        local_prefix=local.format(),
        match_prefix=plex.match_key(),
        fold_case=plex.windows,
        local_base=local.base(),
        local_sep=local.separator,
    )
    return plex, local, columns


def view_columns(mapping: PathMapping) -> ViewColumns:
    """Validate a mapping and return the columns the `part_paths` view resolves it with."""
    return _parse_mapping(mapping)[2]


def _build_rule(mapping: PathMapping) -> _Rule:
    """Validate a mapping and precompute what resolving needs."""
    plex, local, columns = _parse_mapping(mapping)
    parts = tuple(_fold(part) for part in plex.parts) if plex.windows else plex.parts
    return _Rule(
        columns=columns,
        style=plex.style,
        drive=_fold(plex.drive),
        parts=parts,
        local_windows=local.windows,
    )


def _split_plex_path(plex_path: str, style: _Style) -> tuple[str, list[str]] | None:
    """Split a reported path in the given style into (drive, components), or None."""
    if style is _Style.POSIX:
        if not plex_path.startswith(_POSIX_SEP):
            return None
        return "", _split_parts(plex_path, windows=False)
    if style is _Style.DRIVE:
        if not _DRIVE_PATTERN.match(plex_path):
            return None
        return _fold(plex_path[0]), _split_parts(plex_path[2:], windows=True)
    if len(plex_path) < 2 or plex_path[0] not in _WINDOWS_SEPS or plex_path[1] not in _WINDOWS_SEPS:
        return None
    if _is_device_root(plex_path[2:]):
        return None
    return "", _split_parts(plex_path[2:], windows=True)


def _matches(rule: _Rule, drive: str, parts: list[str]) -> bool:
    """Return whether the path components start with the rule's Plex prefix."""
    count = len(rule.parts)
    if len(parts) < count or drive != rule.drive:
        return False
    if rule.style is _Style.POSIX:
        return tuple(parts[:count]) == rule.parts
    return tuple(_fold(part) for part in parts[:count]) == rule.parts


def _join_remainder(rule: _Rule, remainder: list[str]) -> str | None:
    """Join the remainder under the local prefix, or return None if it could escape."""
    columns = rule.columns
    if rule.local_windows and rule.style is _Style.POSIX:
        # A backslash in a POSIX name would act as a separator on the Windows side.
        remainder = _split_parts(_WINDOWS_SEP.join(remainder), windows=True)
    if not remainder:
        return columns.local_prefix
    if rule.local_windows:
        if any(_is_dot_like(part) for part in remainder):
            return None
    elif _PARENT in remainder:
        return None
    return columns.local_base + columns.local_sep + columns.local_sep.join(remainder)


class PathMapper:
    """Resolve Plex paths to local paths through a set of per-server prefix mappings."""

    __slots__ = ("_mappings", "_rules")

    def __init__(self, mappings: Iterable[PathMapping]) -> None:
        """Validate the mappings and order them longest match key first."""
        keyed: dict[str, _Rule] = {}
        for mapping in mappings:
            rule = _build_rule(mapping)
            key = rule.columns.match_prefix
            if key in keyed:
                raise InvalidPathMapping(
                    f"The Plex prefix {rule.columns.plex_prefix!r} is mapped more than once"
                )
            keyed[key] = rule
        rules = sorted(keyed.values(), key=_rule_order)
        self._rules: tuple[_Rule, ...] = tuple(rules)
        self._mappings: tuple[PathMapping, ...] = tuple(
            PathMapping(rule.columns.plex_prefix, rule.columns.local_prefix) for rule in rules
        )

    @property
    def mappings(self) -> tuple[PathMapping, ...]:
        """Return the canonical mappings in the order they are tried, longest prefix first."""
        return self._mappings

    def resolve(self, plex_path: str) -> str | None:
        """Return the local path for a Plex path, or None if unmapped or refused."""
        if not plex_path or _NUL in plex_path:
            return None
        split: dict[_Style, tuple[str, list[str]] | None] = {}
        for rule in self._rules:
            if rule.style not in split:
                split[rule.style] = _split_plex_path(plex_path, rule.style)
            found = split[rule.style]
            if found is None:
                continue
            drive, parts = found
            if _matches(rule, drive, parts):
                return _join_remainder(rule, parts[len(rule.parts) :])
        return None


def _rule_order(rule: _Rule) -> tuple[int, str]:
    """Sort longest match key first, then by the key's text (as the view's ORDER BY)."""
    return -len(rule.columns.match_prefix), rule.columns.match_prefix


def resolve_local_path(mappings: Iterable[PathMapping], plex_path: str) -> str | None:
    """Return the local path for a Plex path under the given mappings, or None."""
    return PathMapper(mappings).resolve(plex_path)


class Coverage(StrEnum):
    """How a mapping's Plex prefix covers a folder as Plex reports it."""

    NONE = "none"  # unrelated: no file in the folder matches the prefix
    WHOLE = "whole"  # the folder itself or a folder above it: every file in it matches
    PART = "part"  # a folder inside it: some of its files match


def check_prefix(value: str, side: str) -> str:
    """Check one configured prefix (`side` is "Plex" or "local"); return its canonical form.

    The checks and messages are those of `validate_mapping`, for forms that report each side
    on its own field.
    """
    return _parse_prefix(value, side).format()


def coverage(plex_prefix: str, folder: str) -> Coverage:
    """Return how a Plex prefix covers a folder Plex reports (like a library's Location).

    The folder is split and compared as a Plex path is when resolving: in the prefix's style,
    whole components only, Windows-style ones ignoring ASCII case. A folder in another style,
    or with NUL, is not covered. Raises InvalidPathMapping for an unusable prefix.
    """
    prefix = _parse_prefix(plex_prefix, "Plex")
    if not folder or _NUL in folder:
        return Coverage.NONE
    found = _split_plex_path(folder, prefix.style)
    if found is None:
        return Coverage.NONE
    drive, parts = found
    prefix_parts = prefix.parts
    if prefix.windows:
        if drive != _fold(prefix.drive):
            return Coverage.NONE
        prefix_parts = tuple(_fold(part) for part in prefix_parts)
        parts = [_fold(part) for part in parts]
    shared = min(len(prefix_parts), len(parts))
    if tuple(parts[:shared]) != prefix_parts[:shared]:
        return Coverage.NONE
    return Coverage.WHOLE if len(prefix_parts) <= len(parts) else Coverage.PART
