"""Parse the GUIDs Plex gives items (new `plex://` agents, `Guid` lists and legacy agents)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
import re
from typing import Final

SCHEME_SEPARATOR: Final = "://"
DEFAULT_PREFERENCE: Final[tuple[str, ...]] = ("imdb", "tmdb", "tvdb", "plex")

_AGENT_PREFIXES: Final = ("com.plexapp.agents.", "tv.plex.agents.")
_PROVIDER_ALIASES: Final[dict[str, str]] = {"themoviedb": "tmdb", "thetvdb": "tvdb"}
# Providers whose value is an id optionally followed by `/season` and `/season/episode`.
_NUMBERED_PROVIDERS: Final = frozenset({"imdb", "tmdb", "tvdb", "anidb"})
_HAMA: Final = "hama"
# HAMA writes `<source>-<id>`; tvdb2…tvdb6 and anidb2… are numbering modes of the same source.
_HAMA_ID: Final = re.compile(r"(?P<source>anidb|tvdb|tmdb|imdb)\d*-(?P<id>[^/]*)")
_QUERY_CHARS: Final = re.compile(r"[?#]")
_SCHEME: Final = re.compile(r"[a-z][a-z0-9+.\-]*")
_VALID_TEXT: Final = re.compile(r"[^\s\x00-\x1f\x7f]+")
_MAX_NUMBERS: Final = 2
# What modern agents send, parsed without the general rules (the same result, faster).
_PLAIN: Final = re.compile(r"(imdb|tmdb|tvdb)://([A-Za-z0-9]+)|plex://([a-z]+/[0-9a-f]+)")


@dataclass(frozen=True, slots=True)
class ExternalId:
    """An identifier of an item in Plex or an external metadata database."""

    provider: str
    value: str
    season: int | None = None
    episode: int | None = None
    raw: str = field(default="", compare=False)

    @property
    def uri(self) -> str:
        """Return the canonical `provider://value[/season[/episode]]` form."""
        text = f"{self.provider}{SCHEME_SEPARATOR}{self.value}"
        if self.season is not None:
            text += f"/{self.season}"
            if self.episode is not None:
                text += f"/{self.episode}"
        return text


def _provider_for_scheme(scheme: str) -> str:
    """Return the provider name for a lower-cased GUID scheme."""
    for prefix in _AGENT_PREFIXES:
        if scheme.startswith(prefix):
            scheme = scheme[len(prefix) :]
            break
    else:
        scheme = scheme.rsplit(".", 1)[-1]
    return _PROVIDER_ALIASES.get(scheme, scheme)


def _parse_numbers(segments: list[str]) -> tuple[int | None, int | None] | None:
    """Return (season, episode) from trailing path segments, or None when malformed."""
    if len(segments) > _MAX_NUMBERS or not all(
        segment.isascii() and segment.isdigit() for segment in segments
    ):
        return None
    numbers = [int(segment) for segment in segments]
    season = numbers[0] if numbers else None
    episode = numbers[1] if len(numbers) > 1 else None
    return season, episode


def _numbered_id(provider: str, body: str, raw: str) -> ExternalId | None:
    """Build an id from `id[/season[/episode]]`, or None when malformed."""
    head, *segments = body.split("/")
    numbers = _parse_numbers(segments)
    if not head or numbers is None:
        return None
    value = head.lower() if provider == "imdb" else head
    return ExternalId(provider, value, numbers[0], numbers[1], raw)


def _hama_id(body: str, raw: str) -> ExternalId | None:
    """Build an id from a HAMA body such as `anidb-123/1/1`."""
    match = _HAMA_ID.fullmatch(body.split("/", 1)[0])
    if match is None:
        return ExternalId(_HAMA, body, raw=raw)
    rest = body[match.end("id") :]
    return _numbered_id(match["source"], match["id"] + rest, raw)


def parse_guid(guid: str | None) -> ExternalId | None:
    """Parse one GUID; return None when it is empty or unparseable."""
    if not guid:
        return None
    plain = _PLAIN.fullmatch(guid)
    if plain is not None:
        provider, value, plex_value = plain.groups()
        if plex_value is not None:
            return ExternalId("plex", plex_value, raw=guid)
        return ExternalId(provider, value.lower() if provider == "imdb" else value, raw=guid)
    return _parse_guid(guid)


def _parse_guid(guid: str) -> ExternalId | None:
    scheme, separator, rest = guid.strip().partition(SCHEME_SEPARATOR)
    scheme = scheme.strip().lower()
    body = _QUERY_CHARS.split(rest, 1)[0].strip().rstrip("/")
    if not separator or not scheme or not body or body.startswith("/"):
        return None
    if not _SCHEME.fullmatch(scheme) or not _VALID_TEXT.fullmatch(body):
        return None
    provider = _provider_for_scheme(scheme)
    if not provider:
        return None
    if provider == _HAMA:
        return _hama_id(body, guid)
    if provider in _NUMBERED_PROVIDERS:
        return _numbered_id(provider, body, guid)
    return ExternalId(provider, body, raw=guid)


def parse_guids(primary: str | None, extra: Iterable[str]) -> tuple[ExternalId, ...]:
    """Parse the primary GUID then the extra ones, skipping bad ones and duplicate URIs."""
    found: dict[str, ExternalId] = {}
    for guid in (primary, *extra):
        parsed = parse_guid(guid)
        if parsed is not None and parsed.uri not in found:
            found[parsed.uri] = parsed
    return tuple(found.values())


def guid_rows(primary: str | None, extra: Iterable[str]) -> list[tuple[str, str, str]]:
    """Return (uri, provider, value) of each id `parse_guids` gives, for storing.

    The same ids in the same order; plain GUIDs are turned into rows without building an
    `ExternalId` (a cold sync stores several per item).
    """
    rows: dict[str, tuple[str, str, str]] = {}
    for guid in (primary, *extra):
        if not guid:
            continue
        plain = _PLAIN.fullmatch(guid)
        if plain is not None:
            provider, value, plex_value = plain.groups()
            if plex_value is not None:
                provider, value = "plex", plex_value
            elif provider == "imdb":
                value = value.lower()
            uri = f"{provider}{SCHEME_SEPARATOR}{value}"
            if uri not in rows:
                rows[uri] = (uri, provider, value)
            continue
        parsed = _parse_guid(guid)
        if parsed is not None and (uri := parsed.uri) not in rows:
            rows[uri] = (uri, parsed.provider, parsed.value)
    return list(rows.values())


def primary_external_id(
    ids: Iterable[ExternalId], prefer: Sequence[str] = DEFAULT_PREFERENCE
) -> ExternalId | None:
    """Return the first id of the most preferred provider, or None if none is preferred."""
    candidates = list(ids)
    for provider in prefer:
        wanted = provider.lower()
        for candidate in candidates:
            if candidate.provider == wanted:
                return candidate
    return None
