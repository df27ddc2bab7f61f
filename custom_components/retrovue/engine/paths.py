"""Map file paths as a Plex server reports them to local paths, resolved at read time."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
import re
from typing import Final

_POSIX_SEP: Final = "/"
_WINDOWS_SEP: Final = "\\"
_WINDOWS_SEPS: Final = "\\/"
_WINDOWS_SPLIT: Final = re.compile(r"[\\/]")
_DRIVE_PATTERN: Final = re.compile(r"[A-Za-z]:[\\/]")
_SKIPPED_PARTS: Final = frozenset({"", "."})
_PARENT: Final = ".."
_NUL: Final = "\x00"


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
class _Prefix:
    """A parsed absolute prefix: style, drive letter (drive style only) and components."""

    style: _Style
    drive: str
    parts: tuple[str, ...]

    @property
    def windows(self) -> bool:
        """Return whether the prefix uses Windows separators and case rules."""
        return self.style is not _Style.POSIX

    def format(self) -> str:
        """Return the canonical text of the prefix."""
        if self.style is _Style.POSIX:
            return _POSIX_SEP + _POSIX_SEP.join(self.parts)
        if self.style is _Style.DRIVE:
            return f"{self.drive}:{_WINDOWS_SEP}" + _WINDOWS_SEP.join(self.parts)
        return _WINDOWS_SEP * 2 + _WINDOWS_SEP.join(self.parts)

    def key(self) -> tuple[str, ...]:
        """Return the comparison key; Windows paths compare case-insensitively."""
        if self.style is _Style.POSIX:
            return (self.style, *self.parts)
        return (self.style, self.drive.casefold(), *(part.casefold() for part in self.parts))


@dataclass(frozen=True, slots=True)
class _Rule:
    """A mapping precomputed for fast resolving."""

    mapping: PathMapping
    style: _Style
    drive: str
    parts: tuple[str, ...]
    local_base: str
    local_sep: str
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
    drive = text[0] if style is _Style.DRIVE else ""
    body = text[2:] if style is not _Style.POSIX else text
    parts = _split_parts(body, windows=style is not _Style.POSIX)
    if _PARENT in parts:
        raise InvalidPathMapping(f"The {side} prefix {text!r} must not contain '..' components")
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


def _build_rule(mapping: PathMapping) -> tuple[tuple[str, ...], _Rule]:
    """Validate a mapping and precompute what resolving needs."""
    plex = _parse_prefix(mapping.plex_prefix, "Plex")
    local = _parse_prefix(mapping.local_prefix, "local")
    canonical = PathMapping(plex_prefix=plex.format(), local_prefix=local.format())
    parts = tuple(part.casefold() for part in plex.parts) if plex.windows else plex.parts
    rule = _Rule(
        mapping=canonical,
        style=plex.style,
        drive=plex.drive.casefold(),
        parts=parts,
        local_base=canonical.local_prefix,
        local_sep=_WINDOWS_SEP if local.windows else _POSIX_SEP,
        local_windows=local.windows,
    )
    return plex.key(), rule


def _split_plex_path(plex_path: str, style: _Style) -> tuple[str, list[str]] | None:
    """Split a reported path in the given style into (drive, components), or None."""
    if style is _Style.POSIX:
        if not plex_path.startswith(_POSIX_SEP):
            return None
        return "", _split_parts(plex_path, windows=False)
    if style is _Style.DRIVE:
        if not _DRIVE_PATTERN.match(plex_path):
            return None
        return plex_path[0].casefold(), _split_parts(plex_path[2:], windows=True)
    if len(plex_path) < 2 or plex_path[0] not in _WINDOWS_SEPS or plex_path[1] not in _WINDOWS_SEPS:
        return None
    return "", _split_parts(plex_path[2:], windows=True)


def _matches(rule: _Rule, drive: str, parts: list[str]) -> bool:
    """Return whether the path components start with the rule's Plex prefix."""
    count = len(rule.parts)
    if len(parts) < count or drive != rule.drive:
        return False
    if rule.style is _Style.POSIX:
        return tuple(parts[:count]) == rule.parts
    return tuple(part.casefold() for part in parts[:count]) == rule.parts


def _is_dot_like(part: str) -> bool:
    """Return whether Windows could read a component as `.` or `..` (only dots and spaces)."""
    return not part.strip(". ")


def _join_remainder(rule: _Rule, remainder: list[str]) -> str | None:
    """Join the remainder under the local prefix, or return None if it would escape."""
    if rule.local_windows and rule.style is _Style.POSIX:
        # A backslash in a POSIX name would act as a separator on the Windows side.
        remainder = _split_parts(_WINDOWS_SEP.join(remainder), windows=True)
    kept: list[str] = []
    for part in remainder:
        if part == _PARENT:
            if not kept:
                return None
            kept.pop()
        elif rule.local_windows and _is_dot_like(part):
            return None
        else:
            kept.append(part)
    if not kept:
        return rule.local_base
    base = rule.local_base
    if not base.endswith(rule.local_sep):
        base += rule.local_sep
    return base + rule.local_sep.join(kept)


class PathMapper:
    """Resolve Plex paths to local paths through a set of per-server prefix mappings."""

    __slots__ = ("_mappings", "_rules")

    def __init__(self, mappings: Iterable[PathMapping]) -> None:
        """Validate the mappings and order them longest Plex prefix first."""
        keyed: dict[tuple[str, ...], _Rule] = {}
        for mapping in mappings:
            key, rule = _build_rule(mapping)
            if key in keyed:
                raise InvalidPathMapping(
                    f"The Plex prefix {rule.mapping.plex_prefix!r} is mapped more than once"
                )
            keyed[key] = rule
        rules = sorted(
            keyed.values(),
            key=lambda rule: (len(rule.parts), len(rule.mapping.plex_prefix)),
            reverse=True,
        )
        self._rules: tuple[_Rule, ...] = tuple(rules)
        self._mappings: tuple[PathMapping, ...] = tuple(rule.mapping for rule in rules)

    @property
    def mappings(self) -> tuple[PathMapping, ...]:
        """Return the canonical mappings, longest Plex prefix first."""
        return self._mappings

    def resolve(self, plex_path: str) -> str | None:
        """Return the local path for a Plex path, or None if unmapped or escaping."""
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


def resolve_local_path(mappings: Iterable[PathMapping], plex_path: str) -> str | None:
    """Return the local path for a Plex path under the given mappings, or None."""
    return PathMapper(mappings).resolve(plex_path)
