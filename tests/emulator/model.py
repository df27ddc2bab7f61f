"""Hold the emulated Plex server's data and the mutations tests apply between syncs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum
import posixpath
import time
from typing import TYPE_CHECKING, Any, Final, Literal

from .live import LiveMixin

if TYPE_CHECKING:
    from .faults import FaultSet

DEFAULT_VERSION: Final = "1.41.3.9314-a0bfb8370"

MOVIE: Final = "movie"
SHOW: Final = "show"
SEASON: Final = "season"
EPISODE: Final = "episode"

#: Plex's numeric metadata types as used by `type=` on listings.
TYPE_NUMBERS: Final[dict[str, int]] = {MOVIE: 1, SHOW: 2, SEASON: 3, EPISODE: 4}
TYPE_NAMES: Final[dict[int, str]] = {v: k for k, v in TYPE_NUMBERS.items()}

_ARTICLES: Final = ("the ", "a ", "an ")
_UNSAFE_PATH_CHARS: Final = str.maketrans("", "", '<>:"/\\|?*')


class _Unset(Enum):
    """Mark a keyword argument that was not given."""

    UNSET = 0


UNSET: Final = _Unset.UNSET
type Unset = Literal[_Unset.UNSET]


def sort_title(title: str) -> str:
    """Return the title without a leading English article, as PMS builds titleSort."""
    lowered = title.lower()
    for article in _ARTICLES:
        if lowered.startswith(article) and len(title) > len(article):
            return title[len(article) :]
    return title


def path_safe(name: str) -> str:
    """Return a name usable as one path component."""
    return name.translate(_UNSAFE_PATH_CHARS).strip() or "Untitled"


class EmuPart:
    """Describe one file of a Media (a Plex Part)."""

    __slots__ = ("changestamp", "container", "duration", "file", "id", "size")

    def __init__(
        self,
        id: int,  # noqa: A002
        changestamp: int,
        file: str,
        size: int,
        duration: int,
        container: str,
    ) -> None:
        self.id = id
        self.changestamp = changestamp
        self.file = file
        self.size = size
        self.duration = duration
        self.container = container

    @property
    def key(self) -> str:
        """Return the Part's download key, `/library/parts/{id}/{changestamp}/file.ext`."""
        ext = posixpath.splitext(self.file)[1] or f".{self.container}"
        return f"/library/parts/{self.id}/{self.changestamp}/file{ext}"


class EmuMedia:
    """Describe one version of an item (a Plex Media) with its Parts."""

    __slots__ = (
        "aspect_ratio",
        "audio_channels",
        "audio_codec",
        "bitrate",
        "container",
        "duration",
        "height",
        "id",
        "parts",
        "video_codec",
        "video_frame_rate",
        "video_resolution",
        "width",
    )

    def __init__(
        self,
        id: int,  # noqa: A002
        duration: int,
        bitrate: int,
        width: int,
        height: int,
        aspect_ratio: float,
        audio_channels: int,
        audio_codec: str,
        video_codec: str,
        video_resolution: str,
        container: str,
        video_frame_rate: str,
        parts: list[EmuPart],
    ) -> None:
        self.id = id
        self.duration = duration
        self.bitrate = bitrate
        self.width = width
        self.height = height
        self.aspect_ratio = aspect_ratio
        self.audio_channels = audio_channels
        self.audio_codec = audio_codec
        self.video_codec = video_codec
        self.video_resolution = video_resolution
        self.container = container
        self.video_frame_rate = video_frame_rate
        self.parts = parts


class EmuItem:
    """Describe one metadata item: a movie, show, season or episode."""

    __slots__ = (
        "added_at",
        "children",
        "content_rating",
        "duration",
        "ext_guids",
        "guid",
        "index",
        "last_viewed_at",
        "media",
        "originally_available_at",
        "parent_rk",
        "path",
        "rating",
        "rating_key",
        "section_key",
        "studio",
        "summary",
        "title",
        "title_sort",
        "type",
        "updated_at",
        "view_count",
        "view_offset",
        "year",
    )

    def __init__(
        self,
        rating_key: int,
        type: str,  # noqa: A002
        section_key: str,
        title: str,
        *,
        guid: str,
        added_at: int,
        updated_at: int,
        ext_guids: tuple[str, ...] = (),
        title_sort: str | None = None,
        year: int | None = None,
        index: int | None = None,
        parent_rk: int | None = None,
        summary: str = "",
        duration: int | None = None,
        originally_available_at: str | None = None,
        content_rating: str | None = None,
        studio: str | None = None,
        rating: float | None = None,
        path: str | None = None,
    ) -> None:
        self.rating_key = rating_key
        self.type = type
        self.section_key = section_key
        self.title = title
        self.title_sort = title_sort
        self.year = year
        self.index = index
        self.parent_rk = parent_rk
        self.guid = guid
        self.ext_guids = ext_guids
        self.summary = summary
        self.duration = duration
        self.added_at = added_at
        self.updated_at = updated_at
        self.originally_available_at = originally_available_at
        self.content_rating = content_rating
        self.studio = studio
        self.rating = rating
        self.path = path
        self.view_count = 0
        self.last_viewed_at: int | None = None
        self.view_offset: int | None = None
        self.media: list[EmuMedia] = []
        self.children: list[int] = []

    @property
    def sort_title(self) -> str:
        """Return titleSort: the explicit one or the title without its article."""
        return self.title_sort if self.title_sort is not None else sort_title(self.title)

    @property
    def is_leaf(self) -> bool:
        """Return True for playable items (movies and episodes)."""
        return self.type in (MOVIE, EPISODE)

    def __repr__(self) -> str:
        """Return a short description for assertion messages."""
        return f"EmuItem({self.rating_key}, {self.type}, {self.title!r})"


@dataclass(slots=True)
class EmuSection:
    """Describe one library section."""

    key: str
    type: str
    title: str
    uuid: str
    locations: list[tuple[int, str]]
    agent: str
    scanner: str
    language: str = "en-US"
    created_at: int = 0
    updated_at: int = 0
    scanned_at: int = 0
    content_changed_at: int = 0
    hidden: int = 0
    #: Top-level items (movies or shows) in creation order; a dict used as an ordered set.
    roots: dict[int, None] = field(default_factory=dict)

    @property
    def primary_type(self) -> int:
        """Return the numeric type a plain `/all` lists (1 movies, 2 shows)."""
        return TYPE_NUMBERS[MOVIE if self.type == MOVIE else SHOW]


@dataclass(slots=True)
class ServerStats:
    """Count work done by the emulator, for benchmarks that report its share."""

    requests: int = 0
    renders: int = 0
    render_seconds: float = 0.0
    cache_hits: int = 0
    cache_misses: int = 0
    bytes_sent: int = 0
    unpaged_listings: int = 0

    def reset(self) -> None:
        """Zero every counter."""
        self.requests = self.renders = self.cache_hits = self.cache_misses = 0
        self.bytes_sent = self.unpaged_listings = 0
        self.render_seconds = 0.0


_CHANGEABLE: Final[dict[str, str]] = {
    "title": "title",
    "title_sort": "title_sort",
    "titleSort": "title_sort",
    "year": "year",
    "index": "index",
    "duration": "duration",
    "summary": "summary",
    "guid": "guid",
    "ext_guids": "ext_guids",
    "guids": "ext_guids",
    "originally_available_at": "originally_available_at",
    "originallyAvailableAt": "originally_available_at",
    "content_rating": "content_rating",
    "contentRating": "content_rating",
    "studio": "studio",
    "rating": "rating",
    "added_at": "added_at",
    "addedAt": "added_at",
}


class EmuServer(LiveMixin):
    """Hold one emulated Plex server: identity, sections, items, faults and caches."""

    def __init__(
        self,
        *,
        machine_identifier: str,
        friendly_name: str = "Emulated Plex",
        token: str = "test-token",  # noqa: S107
        version: str = DEFAULT_VERSION,
        platform: str = "Linux",
        platform_version: str = "6.1.0",
        claimed: bool = True,
        my_plex_subscription: bool = True,
        my_plex_username: str = "emulated@example.com",
    ) -> None:
        from .faults import FaultSet

        self.machine_identifier = machine_identifier
        self.friendly_name = friendly_name
        self.token = token
        self.version = version
        self.platform = platform
        self.platform_version = platform_version
        self.claimed = claimed
        self.my_plex_subscription = my_plex_subscription
        self.my_plex_username = my_plex_username
        self.sections: dict[str, EmuSection] = {}
        self.items: dict[int, EmuItem] = {}
        self.faults: FaultSet = FaultSet()
        #: Answer XML even when JSON is asked (some proxies and old servers do).
        self.force_xml = False
        #: Put PMS's "All episodes" pseudo-directory first in a show's `/children`.
        self.all_episodes_directory = True
        #: Bumped by every mutation; rendered bodies are cached per generation.
        self.generation = 0
        #: Server-wide change stamp used for Part keys and section contentChangedAt.
        self.changestamp = 1000
        self.clock: Callable[[], int] = lambda: int(time.time())
        self.stats = ServerStats()
        #: Upper bound for cached rendered bodies (per emulator).
        self.cache_limit_bytes = 128 * 1024 * 1024
        self.next_rating_key = 1
        self.next_media_id = 1
        self.next_part_id = 1
        self.next_location_id = 1
        self.init_live()

    # ----------------------------------------------------------------- reading

    def item(self, rating_key: int | str) -> EmuItem:
        """Return the item for a ratingKey or raise KeyError."""
        return self.items[int(rating_key)]

    def show_of(self, item: EmuItem) -> EmuItem | None:
        """Return the show an episode or season belongs to."""
        if item.type == SEASON:
            return self.items.get(item.parent_rk or -1)
        if item.type == EPISODE:
            season = self.items.get(item.parent_rk or -1)
            return self.items.get(season.parent_rk or -1) if season else None
        return None

    def iter_items(
        self,
        section_key: str,
        type: str | int | None = None,  # noqa: A002
    ) -> Iterator[EmuItem]:
        """Yield the section's items of one type (default: its primary type) in creation order."""
        section = self.sections[section_key]
        wanted = _type_name(type) if type is not None else TYPE_NAMES[section.primary_type]
        items = self.items
        for rk in section.roots:
            root = items[rk]
            if root.type == wanted:
                yield root
            elif root.type == SHOW and wanted in (SEASON, EPISODE):
                for season_rk in root.children:
                    season = items[season_rk]
                    if wanted == SEASON:
                        yield season
                    else:
                        yield from (items[ep] for ep in season.children)

    def count(
        self,
        section_key: str,
        type: str | int | None = None,  # noqa: A002
    ) -> int:
        """Return how many items of a type the section holds."""
        section = self.sections[section_key]
        wanted = _type_name(type) if type is not None else TYPE_NAMES[section.primary_type]
        if wanted in (MOVIE, SHOW):
            return sum(1 for rk in section.roots if self.items[rk].type == wanted)
        return sum(1 for _ in self.iter_items(section_key, wanted))

    def leaves(self, item: EmuItem) -> Iterator[EmuItem]:
        """Yield the episodes under a show or season in season/episode order."""
        if item.type == EPISODE:
            yield item
        for rk in item.children:
            child = self.items[rk]
            if child.type == EPISODE:
                yield child
            else:
                yield from self.leaves(child)

    def leaf_count(self, item: EmuItem) -> int:
        """Return the number of episodes under a show or season."""
        if item.type == SEASON:
            return len(item.children)
        return sum(len(self.items[rk].children) for rk in item.children)

    def viewed_leaf_count(self, item: EmuItem) -> int:
        """Return the number of watched episodes under a show or season."""
        return sum(1 for leaf in self.leaves(item) if leaf.view_count > 0)

    def parts(self) -> Iterator[EmuPart]:
        """Yield every Part of every item (a shared multi-episode Part once per item)."""
        for item in self.items.values():
            for media in item.media:
                yield from media.parts

    # --------------------------------------------------------------- creating

    def now(self) -> int:
        """Return the server's clock in epoch seconds."""
        return self.clock()

    def _touch(self, section_key: str | None = None, *, content: bool = True) -> None:
        """Invalidate cached bodies and, for content changes, stamp the section."""
        self.generation += 1
        if content and section_key is not None and section_key in self.sections:
            self.changestamp += 1
            section = self.sections[section_key]
            section.content_changed_at = self.changestamp
            section.updated_at = max(self.now(), section.updated_at)

    def new_rating_key(self) -> int:
        """Allocate the next ratingKey."""
        rk = self.next_rating_key
        self.next_rating_key += 1
        return rk

    def new_part(self, file: str, size: int, duration: int, container: str) -> EmuPart:
        """Allocate a Part with the next Part id."""
        self.changestamp += 1
        part = EmuPart(self.next_part_id, self.changestamp, file, size, duration, container)
        self.next_part_id += 1
        return part

    def new_media(
        self,
        parts: list[EmuPart],
        *,
        duration: int,
        resolution: str = "1080",
        video_codec: str = "h264",
        audio_codec: str = "aac",
        audio_channels: int = 2,
        container: str = "mkv",
        bitrate: int | None = None,
        frame_rate: str = "24p",
    ) -> EmuMedia:
        """Allocate a Media with the next Media id."""
        width, height = RESOLUTION_SIZES.get(resolution, (1920, 1080))
        media = EmuMedia(
            self.next_media_id,
            duration,
            bitrate if bitrate is not None else DEFAULT_BITRATES.get(resolution, 8000),
            width,
            height,
            round(width / height, 2),
            audio_channels,
            audio_codec,
            video_codec,
            resolution,
            container,
            frame_rate,
            parts,
        )
        self.next_media_id += 1
        return media

    def add_section(
        self,
        type: str,  # noqa: A002
        title: str,
        locations: list[str] | None = None,
        *,
        key: str | None = None,
        agent: str | None = None,
        scanner: str | None = None,
        language: str = "en-US",
        uuid: str | None = None,
        created_at: int | None = None,
    ) -> EmuSection:
        """Add a movie or show section and return it."""
        if type not in (MOVIE, SHOW):
            raise ValueError(f"unsupported section type {type!r}")
        if key is None:
            key = str(max((int(k) for k in self.sections if k.isdigit()), default=0) + 1)
        if key in self.sections:
            raise ValueError(f"section {key} exists")
        if locations is None:
            locations = [f"/data/{path_safe(title).lower().replace(' ', '_')}"]
        locs = []
        for path in locations:
            locs.append((self.next_location_id, path))
            self.next_location_id += 1
        stamp = created_at if created_at is not None else self.now()
        self.changestamp += 1
        section = EmuSection(
            key=key,
            type=type,
            title=title,
            uuid=uuid or _uuid_for(self.machine_identifier, key),
            locations=locs,
            agent=agent or ("tv.plex.agents.movie" if type == MOVIE else "tv.plex.agents.series"),
            scanner=scanner or ("Plex Movie" if type == MOVIE else "Plex TV Series"),
            language=language,
            created_at=stamp,
            updated_at=stamp,
            scanned_at=stamp,
            content_changed_at=self.changestamp,
        )
        self.sections[key] = section
        self._touch()
        return section

    def _section(self, section_key: str | int, kind: str) -> EmuSection:
        section = self.sections[str(section_key)]
        if section.type != kind:
            raise ValueError(f"section {section.key} is a {section.type} section")
        return section

    def _register(self, item: EmuItem) -> EmuItem:
        self.items[item.rating_key] = item
        if item.parent_rk is None:
            self.sections[item.section_key].roots[item.rating_key] = None
        else:
            parent = self.items[item.parent_rk]
            parent.children.append(item.rating_key)
            self._sort_children(parent)
        return item

    def _sort_children(self, parent: EmuItem) -> None:
        items = self.items
        parent.children.sort(key=lambda rk: (items[rk].index or 0, rk))

    def add_movie(
        self,
        section_key: str | int,
        title: str,
        year: int | None = None,
        *,
        file: str | None = None,
        size: int | None = None,
        duration: int = 6_000_000,
        guid: str | None = None,
        guids: tuple[str, ...] = (),
        added_at: int | None = None,
        updated_at: int | None = None,
        title_sort: str | None = None,
        summary: str = "",
        resolution: str = "1080",
        video_codec: str = "h264",
        audio_codec: str = "aac",
        container: str = "mkv",
    ) -> EmuItem:
        """Add a movie with one Media and one Part and return it."""
        section = self._section(section_key, MOVIE)
        now = self.now()
        rk = self.new_rating_key()
        label = f"{title} ({year})" if year else title
        if file is None:
            folder = posixpath.join(section.locations[0][1], path_safe(label))
            file = posixpath.join(folder, f"{path_safe(label)}.{container}")
        media = self.new_media(
            [],
            duration=duration,
            resolution=resolution,
            video_codec=video_codec,
            audio_codec=audio_codec,
            container=container,
        )
        if size is None:
            size = media.bitrate * duration // 8
        media.parts.append(self.new_part(file, size, duration, container))
        item = EmuItem(
            rk,
            MOVIE,
            section.key,
            title,
            guid=guid or f"plex://movie/{rk:024x}",
            ext_guids=guids,
            added_at=added_at if added_at is not None else now,
            updated_at=updated_at if updated_at is not None else now,
            title_sort=title_sort,
            year=year,
            summary=summary,
            duration=duration,
            originally_available_at=f"{year}-01-01" if year else None,
        )
        item.media.append(media)
        self._register(item)
        self._touch(section.key)
        self.notify_created(item)
        return item

    def add_show(
        self,
        section_key: str | int,
        title: str,
        year: int | None = None,
        *,
        guid: str | None = None,
        guids: tuple[str, ...] = (),
        added_at: int | None = None,
        updated_at: int | None = None,
        title_sort: str | None = None,
        summary: str = "",
        duration: int = 2_700_000,
    ) -> EmuItem:
        """Add a show without seasons and return it."""
        section = self._section(section_key, SHOW)
        now = self.now()
        rk = self.new_rating_key()
        item = EmuItem(
            rk,
            SHOW,
            section.key,
            title,
            guid=guid or f"plex://show/{rk:024x}",
            ext_guids=guids,
            added_at=added_at if added_at is not None else now,
            updated_at=updated_at if updated_at is not None else now,
            title_sort=title_sort,
            year=year,
            summary=summary,
            duration=duration,
            originally_available_at=f"{year}-01-01" if year else None,
            path=posixpath.join(section.locations[0][1], path_safe(title)),
        )
        self._register(item)
        self._touch(section.key)
        self.notify_created(item)
        return item

    def add_season(
        self,
        show_rk: int | str,
        index: int,
        *,
        title: str | None = None,
        guid: str | None = None,
        added_at: int | None = None,
        updated_at: int | None = None,
        summary: str = "",
    ) -> EmuItem:
        """Add a season (index 0 = Specials) to a show and return it."""
        show = self.item(show_rk)
        if show.type != SHOW:
            raise ValueError(f"{show!r} is not a show")
        now = self.now()
        rk = self.new_rating_key()
        item = EmuItem(
            rk,
            SEASON,
            show.section_key,
            title or season_title(index),
            guid=guid or _child_guid(show.guid, rk, f"/{index}", "season"),
            added_at=added_at if added_at is not None else now,
            updated_at=updated_at if updated_at is not None else now,
            index=index,
            parent_rk=show.rating_key,
            summary=summary,
        )
        self._register(item)
        self._touch(show.section_key)
        self.notify_created(item)
        return item

    def add_episode(
        self,
        season_rk: int | str,
        index: int,
        title: str,
        *,
        file: str | None = None,
        part: EmuPart | None = None,
        size: int | None = None,
        duration: int = 2_700_000,
        guid: str | None = None,
        guids: tuple[str, ...] = (),
        added_at: int | None = None,
        updated_at: int | None = None,
        originally_available_at: str | None = None,
        summary: str = "",
        resolution: str = "1080",
        video_codec: str = "h264",
        audio_codec: str = "aac",
        container: str = "mkv",
    ) -> EmuItem:
        """Add an episode to a season and return it; `part` shares another episode's file."""
        season = self.item(season_rk)
        if season.type != SEASON:
            raise ValueError(f"{season!r} is not a season")
        show = self.items[season.parent_rk or -1]
        now = self.now()
        rk = self.new_rating_key()
        media = self.new_media(
            [],
            duration=duration,
            resolution=resolution,
            video_codec=video_codec,
            audio_codec=audio_codec,
            container=container,
        )
        if part is None:
            if file is None:
                file = episode_file(show, season.index or 0, f"E{index:02d}", container)
            if size is None:
                size = media.bitrate * duration // 8
            part = self.new_part(file, size, duration, container)
        media.parts.append(part)
        item = EmuItem(
            rk,
            EPISODE,
            season.section_key,
            title,
            guid=guid or _child_guid(show.guid, rk, f"/{season.index}/{index}", "episode"),
            ext_guids=guids,
            added_at=added_at if added_at is not None else now,
            updated_at=updated_at if updated_at is not None else now,
            index=index,
            parent_rk=season.rating_key,
            summary=summary,
            duration=duration,
            originally_available_at=originally_available_at,
        )
        item.media.append(media)
        self._register(item)
        self._touch(season.section_key)
        self.notify_created(item)
        return item

    def add_episodes(
        self,
        show_rk: int | str,
        count: int,
        season_index: int | None = None,
        bump_show_updated_at: bool = False,
    ) -> list[EmuItem]:
        """Append episodes to a show's season (default: its last regular season)."""
        show = self.item(show_rk)
        seasons = [self.items[rk] for rk in show.children]
        if season_index is None:
            regular = [s.index or 0 for s in seasons if (s.index or 0) > 0]
            season_index = max(regular, default=1)
        season = next((s for s in seasons if s.index == season_index), None)
        if season is None:
            season = self.add_season(show.rating_key, season_index)
        first = max((self.items[rk].index or 0 for rk in season.children), default=0) + 1
        added = [
            self.add_episode(season.rating_key, number, f"Episode {number}")
            for number in range(first, first + count)
        ]
        if bump_show_updated_at:
            show.updated_at = max(self.now(), show.updated_at + 1)
            self._touch(show.section_key)
            self.notify_changed(show)
        return added

    # --------------------------------------------------------------- changing

    def change_item(self, rating_key: int | str, **fields: Any) -> EmuItem:
        """Change metadata fields of an item and bump its updatedAt."""
        item = self.item(rating_key)
        updated_at = fields.pop("updated_at", fields.pop("updatedAt", None))
        for name, value in fields.items():
            if name not in _CHANGEABLE:
                raise TypeError(f"change_item() got an unexpected field {name!r}")
            setattr(item, _CHANGEABLE[name], value)
        if "index" in fields and item.parent_rk is not None:
            self._sort_children(self.items[item.parent_rk])
        item.updated_at = (
            int(updated_at) if updated_at is not None else max(self.now(), item.updated_at + 1)
        )
        self._touch(item.section_key)
        self.notify_changed(item)
        return item

    def remove_item(self, rating_key: int | str) -> None:
        """Remove an item and everything under it."""
        item = self.item(rating_key)
        self.notify_deleted(item)
        if item.parent_rk is None:
            self.sections[item.section_key].roots.pop(item.rating_key, None)
        elif (parent := self.items.get(item.parent_rk)) is not None:
            parent.children.remove(item.rating_key)
        stack = [item.rating_key]
        while stack:
            removed = self.items.pop(stack.pop())
            stack.extend(removed.children)
        self._touch(item.section_key)

    def replace_file(
        self,
        rating_key: int | str,
        file: str | None = None,
        size: int | None = None,
        *,
        new_media_id: bool = False,
    ) -> EmuPart:
        """Swap the first Part's file (new id, key, file, size) without touching updatedAt."""
        item = self.item(rating_key)
        if not item.media or not item.media[0].parts:
            raise ValueError(f"{item!r} has no file")
        media = item.media[0]
        part = media.parts[0]
        if file is None:
            stem, ext = posixpath.splitext(part.file)
            file = f"{stem.removesuffix(' [replaced]')} [replaced]{ext}"
        # Mutating in place keeps a shared multi-episode Part shared, like the one file it is.
        part.id = self.next_part_id
        self.next_part_id += 1
        self.changestamp += 1
        part.changestamp = self.changestamp
        part.file = file
        part.size = size if size is not None else part.size + 1_048_576 + part.id
        if new_media_id:
            media.id = self.next_media_id
            self.next_media_id += 1
        self._touch(item.section_key)
        self.notify_part_changed(item, part)
        return part

    def take_item(self, rating_key: int | str) -> list[EmuItem]:
        """Remove an item and everything under it, and return them (the item first).

        Like `remove_item`; `restore_items` puts them back with the same ratingKeys, as Plex
        lists items again when the share holding their files comes back.
        """
        item = self.item(rating_key)
        taken = [item]
        for taken_item in taken:
            taken.extend(self.items[rk] for rk in taken_item.children)
        self.remove_item(item.rating_key)
        return taken

    def restore_items(self, items: list[EmuItem], *, bump_updated_at: bool = False) -> None:
        """Put back what `take_item` returned; its parent must be there.

        `bump_updated_at` moves every restored item's `updatedAt` (Plex scanned them again).
        """
        root = items[0]
        if any(item.rating_key in self.items for item in items):
            raise ValueError(f"{root!r} is there already")
        if root.parent_rk is not None and root.parent_rk not in self.items:
            raise ValueError(f"the parent of {root!r} is gone")
        for item in items:
            if bump_updated_at:
                item.updated_at = max(self.now(), item.updated_at + 1)
            if item is not root:
                self.items[item.rating_key] = item
        self._register(root)
        self._touch(root.section_key)
        self.notify_created(*items)

    def move_episode(
        self,
        episode_rk: int | str,
        season_rk: int | str,
        index: int | None = None,
        *,
        bump_updated_at: bool = True,
    ) -> EmuItem:
        """Move an episode to another season of its show (as after fixing its file's name).

        `index` defaults to one past the target season's last episode. Plex re-matches the
        episode and bumps its `updatedAt` (`bump_updated_at=False` leaves it, like a quieter
        server would); the show's and seasons' own `updatedAt` stay. The Part stays as it is.
        """
        episode = self.item(episode_rk)
        season = self.item(season_rk)
        if episode.type != EPISODE:
            raise ValueError(f"{episode!r} is not an episode")
        if season.type != SEASON:
            raise ValueError(f"{season!r} is not a season")
        source = self.items[episode.parent_rk or -1]
        if source.rating_key == season.rating_key:
            raise ValueError(f"{episode!r} is in {season!r} already")
        if source.parent_rk != season.parent_rk:
            raise ValueError(f"{season!r} belongs to another show")
        source.children.remove(episode.rating_key)
        if index is None:
            index = max((self.items[rk].index or 0 for rk in season.children), default=0) + 1
        episode.index = index
        episode.parent_rk = season.rating_key
        season.children.append(episode.rating_key)
        self._sort_children(season)
        if bump_updated_at:
            episode.updated_at = max(self.now(), episode.updated_at + 1)
        self._touch(episode.section_key)
        self.notify_changed(episode)
        return episode

    def set_watch_state(
        self,
        rating_key: int | str,
        view_count: int | Unset = UNSET,
        last_viewed_at: int | Unset | None = UNSET,
        view_offset: int | Unset | None = UNSET,
    ) -> EmuItem:
        """Change watch state only (None clears a field); updatedAt stays."""
        item = self.item(rating_key)
        if view_count is not UNSET:
            item.view_count = view_count
        if last_viewed_at is not UNSET:
            item.last_viewed_at = last_viewed_at
        if view_offset is not UNSET:
            item.view_offset = view_offset
        self._touch(item.section_key, content=False)
        return item

    def refresh_metadata(self, section_key: str | None = None, *, at: int | None = None) -> int:
        """Do what "Refresh all metadata" leaves: every item gets one `updatedAt`.

        Every movie, show, season and episode of the section (default: of every section)
        gets `updatedAt` = `at` (default: the server's clock); `addedAt`, watch state and
        files stay. The sections' `updatedAt` and `contentChangedAt` move. Returns the stamp.
        """
        stamp = self.now() if at is None else int(at)
        keys = [section_key] if section_key is not None else list(self.sections)
        for item in self.items.values():
            if item.section_key in keys:
                item.updated_at = stamp
        for key in keys:
            self._touch(key)
            section = self.sections[key]
            section.updated_at = max(section.updated_at, stamp)
        return stamp

    def invalidate(self) -> None:
        """Drop cached bodies after changing items directly."""
        self._touch()


RESOLUTION_SIZES: Final[dict[str, tuple[int, int]]] = {
    "4k": (3840, 2160),
    "1080": (1920, 1080),
    "720": (1280, 720),
    "480": (720, 480),
    "sd": (720, 480),
}
DEFAULT_BITRATES: Final[dict[str, int]] = {
    "4k": 25000,
    "1080": 10000,
    "720": 4000,
    "480": 1500,
    "sd": 1500,
}


def season_title(index: int) -> str:
    """Return PMS's default season title."""
    return "Specials" if index == 0 else f"Season {index}"


def season_folder(index: int) -> str:
    """Return the conventional season folder name."""
    return "Specials" if index == 0 else f"Season {index:02d}"


def episode_file(show: EmuItem, season_index: int, episodes: str, container: str) -> str:
    """Return `/data/tv/Show/Season 01/Show - S01E02.mkv` style paths."""
    name = path_safe(show.title)
    folder = show.path or posixpath.join("/data/tv", name)
    return posixpath.join(
        folder, season_folder(season_index), f"{name} - S{season_index:02d}{episodes}.{container}"
    )


def _child_guid(show_guid: str, rk: int, suffix: str, kind: str) -> str:
    if show_guid.startswith("com.plexapp.agents."):
        base, _, query = show_guid.partition("?")
        return f"{base}{suffix}?{query}" if query else f"{base}{suffix}"
    return f"plex://{kind}/{rk:024x}"


def _uuid_for(machine_identifier: str, key: str) -> str:
    import uuid

    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"plex://{machine_identifier}/section/{key}"))


def _type_name(kind: str | int) -> str:
    if isinstance(kind, int):
        return TYPE_NAMES[kind]
    if kind.isdigit():
        return TYPE_NAMES[int(kind)]
    return kind
