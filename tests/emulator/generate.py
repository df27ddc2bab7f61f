"""Generate deterministic, realistic Plex libraries from a seed."""

from __future__ import annotations

from bisect import bisect
from collections.abc import Sequence
import itertools
import posixpath
import random
from typing import Final
import uuid

from .model import (
    DEFAULT_VERSION,
    EPISODE,
    MOVIE,
    SEASON,
    SHOW,
    EmuItem,
    EmuMedia,
    EmuPart,
    EmuServer,
    path_safe,
    season_folder,
    season_title,
)

#: Generated timestamps fall between these (2017-07 .. 2024-12); mutations use the real clock.
EPOCH_START: Final = 1_500_000_000
EPOCH_END: Final = 1_735_000_000

_ADJECTIVES: Final = (
    "Silent", "Crimson", "Broken", "Hidden", "Last", "Golden", "Dark", "Lost", "Frozen",
    "Electric", "Burning", "Distant", "Savage", "Quiet", "Hollow", "Endless", "Bitter", "Wild",
    "Iron", "Midnight", "Scarlet", "Fallen", "Northern", "Secret", "Paper", "Glass", "Velvet",
    "Winter", "Summer", "Infinite", "Rogue", "Pale", "Second", "Little", "Final", "Lonely",
)  # fmt: skip
_NOUNS: Final = (
    "River", "Empire", "Garden", "Horizon", "Kingdom", "Machine", "Harbor", "Signal", "Station",
    "Witness", "Island", "Frontier", "Mirror", "Protocol", "Orchard", "Voyage", "Circus",
    "Lighthouse", "Archive", "Covenant", "Labyrinth", "Paradox", "Canyon", "Monarch", "Echo",
    "Shadow", "Compass", "Tide", "Engine", "Harvest", "Citadel", "Meridian", "Outpost", "Relic",
)  # fmt: skip
_EPISODE_WORDS: Final = (
    "Pilot", "Homecoming", "The Trial", "Crossroads", "Aftermath", "Reunion", "Exodus",
    "Ghosts", "The Long Night", "Fault Lines", "Undertow", "Checkmate", "Lockdown", "Origins",
    "Blackout", "Sanctuary", "Ashes", "Reckoning", "Threshold", "Vanishing Point",
)  # fmt: skip
_UNICODE_MOVIES: Final = (
    ("Amélie", 2001),
    ("千と千尋の神隠し", 2001),
    ("Léon", 1994),
    ("Das Boot", 1981),
    ("Crouching Tiger, Hidden Dragon: 臥虎藏龍", 2000),
    ("Björk: Biophilia Live", 2014),
)
_SPECIAL_MOVIES: Final = (
    ('Tom & Jerry: "The <Movie>"', 1992),
    ("The Matrix", 1999),
)
_UNICODE_SHOWS: Final = (("Ørnen", 2004), ("Forbrydelsen", 2007), ("Café Señorita", 2019))
_SUMMARIES: Final = (
    "",
    "A reluctant hero is pulled into a conflict far larger than anyone expected.",
    "Two strangers meet on a night train and discover they share a dangerous secret.",
    'An "ordinary" town hides an extraordinary past & the people who guard it.',
    "Line one of a two-line summary.\nLine two, after a newline.",
    "Ein Film über Freundschaft, Verlust und Hoffnung.",
)
_CONTENT_RATINGS: Final = ("G", "PG", "PG-13", "R", "NR", "TV-14", "TV-MA")
_STUDIOS: Final = ("Warner Bros.", "A24", "Studio Ghibli", "Gaumont", "Nordisk Film", None)

# (video codec, resolution, container, frame rate, weight)
_VIDEO_PROFILES: Final = (
    ("h264", "1080", "mkv", "24p", 40),
    ("h264", "720", "mkv", "24p", 12),
    ("h264", "1080", "mp4", "24p", 10),
    ("hevc", "4k", "mkv", "24p", 12),
    ("hevc", "1080", "mkv", "24p", 14),
    ("mpeg4", "sd", "avi", "NTSC", 5),
    ("h264", "sd", "mp4", "PAL", 4),
    ("h264", "720", "mkv", "25p", 3),
)
_VIDEO_CUM: Final = tuple(itertools.accumulate(p[4] for p in _VIDEO_PROFILES))
# (audio codec, channels, weight)
_AUDIO: Final = (
    ("aac", 2, 30),
    ("ac3", 6, 25),
    ("eac3", 6, 20),
    ("dts", 6, 15),
    ("aac", 6, 5),
    ("mp3", 2, 3),
    ("truehd", 8, 2),
)
_AUDIO_CUM: Final = tuple(itertools.accumulate(a[2] for a in _AUDIO))
_GEOMETRY: Final = {
    "4k": ((3840, 2160, 1.78), (3840, 1600, 2.39)),
    "1080": ((1920, 1080, 1.78), (1920, 800, 2.35)),
    "720": ((1280, 720, 1.78), (1280, 544, 2.35)),
    "sd": ((720, 480, 1.33), (720, 576, 1.25)),
}
_BITRATES: Final = {"4k": (15000, 60000), "1080": (4000, 16000), "720": (1500, 5000)}


class _Generator:
    """Fill an EmuServer from a seeded random source."""

    def __init__(
        self,
        server: EmuServer,
        rng: random.Random,
        legacy_share: float,
        unicode: bool,
        timestamp_step: int | None = None,
    ) -> None:
        self.server = server
        self.timestamp_step = timestamp_step
        self.rng = rng
        self._random = rng.random
        self.legacy_share = legacy_share
        self.unicode = unicode
        self.clock = EPOCH_START
        self.used_titles: dict[str, int] = {}
        self.safe_names: dict[int, str] = {}

    # ---------------------------------------------------------------- helpers

    def random(self) -> float:
        return self._random()

    def randint(self, low: int, high: int) -> int:
        # Faster than Random.randint and just as deterministic.
        return low + int(self._random() * (high - low + 1))

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * self._random()

    def pick[T](self, seq: Sequence[T]) -> T:
        return seq[int(self._random() * len(seq))]

    def weighted[T](self, table: Sequence[T], cumulative: Sequence[int]) -> T:
        return table[bisect(cumulative, self._random() * cumulative[-1])]

    def hex_id(self) -> str:
        return f"5d77{self.rng.getrandbits(80):020x}"

    def tick(self) -> int:
        """Advance the generation clock so addedAt mostly grows with ratingKey."""
        step = self.timestamp_step or (EPOCH_END - EPOCH_START) // 4000 + 1
        self.clock = min(self.clock + self.randint(0, step), EPOCH_END - 86400)
        return self.clock

    def date(self, year: int) -> str:
        return f"{year}-{self.randint(1, 12):02d}-{self.randint(1, 28):02d}"

    def later(self, added: int) -> int:
        return min(added + self.pick((0, 0, 60, 3600, 86400 * 3, 86400 * 40)), EPOCH_END)

    def unique_title(self, title: str) -> str:
        count = self.used_titles.get(title, 0)
        self.used_titles[title] = count + 1
        return title if count == 0 else f"{title} {count + 1}"

    def random_title(self) -> str:
        title = f"{self.pick(_ADJECTIVES)} {self.pick(_NOUNS)}"
        if self.random() < 0.2:
            title = f"The {title}"
        return self.unique_title(title)

    def watch(self, item: EmuItem) -> None:
        roll = self.random()
        if roll < 0.3:
            item.view_count = self.randint(1, 5)
            item.last_viewed_at = self.randint(item.updated_at, EPOCH_END)
        elif roll < 0.36 and item.duration:
            item.view_offset = self.randint(60_000, max(60_001, item.duration - 60_000))
            item.last_viewed_at = self.randint(item.updated_at, EPOCH_END)

    def media(self, stems: list[str], duration: int, profile: int | None = None) -> EmuMedia:
        """Build one Media whose Parts are `stems` plus the container extension."""
        server = self.server
        if profile is None:
            vcodec, res, container, rate, _ = self.weighted(_VIDEO_PROFILES, _VIDEO_CUM)
        else:
            vcodec, res, container, rate, _ = _VIDEO_PROFILES[profile]
        acodec, channels, _ = self.weighted(_AUDIO, _AUDIO_CUM)
        width, height, aspect = self.pick(_GEOMETRY[res])
        low, high = _BITRATES.get(res, (800, 2500))
        bitrate = self.randint(low, high)
        part_duration = duration // len(stems)
        parts = []
        for stem in stems:
            path = f"{stem}.{container}"
            server.changestamp += 1
            parts.append(
                EmuPart(
                    server.next_part_id,
                    server.changestamp,
                    path,
                    bitrate * part_duration // 8 + self.randint(0, 999_999),
                    part_duration,
                    container,
                )
            )
            server.next_part_id += 1
        media = EmuMedia(
            server.next_media_id,
            duration,
            bitrate,
            width,
            height,
            aspect,
            channels,
            acodec,
            vcodec,
            res,
            container,
            rate,
            parts,
        )
        server.next_media_id += 1
        return media

    def register(self, item: EmuItem) -> EmuItem:
        server = self.server
        server.items[item.rating_key] = item
        if item.parent_rk is None:
            server.sections[item.section_key].roots[item.rating_key] = None
        else:
            server.items[item.parent_rk].children.append(item.rating_key)
        return item

    # ----------------------------------------------------------------- movies

    def movie_guids(self, rk: int) -> tuple[str, tuple[str, ...]]:
        imdb = f"tt{self.randint(100_000, 9_999_999):07d}"
        tmdb = self.randint(2, 999_999)
        roll = self.random()
        if roll < 0.01:
            return f"local://{rk}", ()
        if roll < 0.01 + self.legacy_share:
            if self.random() < 0.5:
                return f"com.plexapp.agents.imdb://{imdb}?lang=en", ()
            return f"com.plexapp.agents.themoviedb://{tmdb}?lang=en", ()
        guids = [f"imdb://{imdb}", f"tmdb://{tmdb}"]
        if self.random() < 0.6:
            guids.append(f"tvdb://{self.randint(1, 399_999)}")
        if self.random() < 0.05:
            guids.pop(0)  # Not every match has an IMDb id.
        return f"plex://movie/{self.hex_id()}", tuple(guids)

    def movie(self, section_key: str, location: str, title: str, year: int) -> None:
        rk = self.server.new_rating_key()
        added = self.tick()
        guid, ext = self.movie_guids(rk)
        label = path_safe(f"{title} ({year})")
        folder = f"{location}/{label}"
        duration = self.randint(80, 180) * 60_000 + self.randint(0, 59_999)
        item = EmuItem(
            rk,
            MOVIE,
            section_key,
            title,
            guid=guid,
            ext_guids=ext,
            added_at=added,
            updated_at=self.later(added),
            year=year,
            summary=self.pick(_SUMMARIES),
            duration=duration,
            originally_available_at=self.date(year),
            content_rating=self.pick(_CONTENT_RATINGS[:5]),
            studio=self.pick(_STUDIOS),
            rating=round(self.uniform(3.0, 9.5), 1),
        )
        shape = self.random()
        if shape < 0.08:
            # Two versions of the same movie, e.g. a 1080p and a 4K copy.
            item.media.append(self.media([f"{folder}/{label} - 1080p"], duration, 0))
            item.media.append(self.media([f"{folder}/{label} - 2160p"], duration, 3))
        elif shape < 0.14:
            stems = [f"{folder}/{label} - cd{n}" for n in (1, 2)]
            item.media.append(self.media(stems, duration))
        else:
            item.media.append(self.media([f"{folder}/{label}"], duration))
        self.watch(item)
        self.register(item)

    # ------------------------------------------------------------------ shows

    def show(
        self,
        section_key: str,
        location: str,
        title: str,
        year: int,
        seasons: int,
        episodes: tuple[int, int],
        *,
        specials: bool,
        multi: bool,
    ) -> None:
        server = self.server
        rk = server.new_rating_key()
        added = self.tick()
        legacy = self.random() < self.legacy_share
        tvdb = self.randint(70_000, 450_000)
        ext: tuple[str, ...] = ()
        if legacy:
            guid = f"com.plexapp.agents.thetvdb://{tvdb}?lang=en"
        else:
            guid = f"plex://show/{self.hex_id()}"
            ext = (
                f"imdb://tt{self.randint(100_000, 9_999_999):07d}",
                f"tmdb://{self.randint(1, 250_000)}",
                f"tvdb://{tvdb}",
            )
        show = self.register(
            EmuItem(
                rk,
                SHOW,
                section_key,
                title,
                guid=guid,
                ext_guids=ext,
                added_at=added,
                updated_at=self.later(added),
                year=year,
                summary=self.pick(_SUMMARIES),
                duration=self.pick((1_320_000, 2_640_000, 3_300_000)),
                originally_available_at=self.date(year),
                content_rating=self.pick(_CONTENT_RATINGS[4:]),
                studio=self.pick(_STUDIOS),
                rating=round(self.uniform(5.0, 9.5), 1),
                path=posixpath.join(location, path_safe(title)),
            )
        )
        indexes = ([0] if specials else []) + list(range(1, seasons + 1))
        for season_index in indexes:
            season_rk = server.new_rating_key()
            if legacy:
                season_guid = f"com.plexapp.agents.thetvdb://{tvdb}/{season_index}?lang=en"
            else:
                season_guid = f"plex://season/{self.hex_id()}"
            season = self.register(
                EmuItem(
                    season_rk,
                    SEASON,
                    section_key,
                    season_title(season_index),
                    guid=season_guid,
                    added_at=added,
                    updated_at=show.updated_at,
                    index=season_index,
                    parent_rk=rk,
                )
            )
            count = self.randint(1, 2) if season_index == 0 else self.randint(*episodes)
            pair = -1
            first_regular = season_index == 1
            if multi and count >= 2 and season_index > 0 and (first_regular or self.random() < 0.3):
                pair = self.randint(1, count - 1)
            shared: EmuMedia | None = None
            for number in range(1, count + 1):
                shared = self.episode(show, season, number, legacy, tvdb, year, pair, shared)

    def episode(
        self,
        show: EmuItem,
        season: EmuItem,
        number: int,
        legacy: bool,
        tvdb: int,
        year: int,
        pair: int,
        shared: EmuMedia | None,
    ) -> EmuMedia | None:
        """Add one episode; `pair` is the first number of a two-episode file."""
        server = self.server
        rk = server.new_rating_key()
        season_index = season.index or 0
        added = self.tick()
        if legacy:
            guid = f"com.plexapp.agents.thetvdb://{tvdb}/{season_index}/{number}?lang=en"
            ext: tuple[str, ...] = ()
        else:
            guid = f"plex://episode/{self.hex_id()}"
            ext = (
                f"imdb://tt{self.randint(100_000, 9_999_999):07d}",
                f"tmdb://{self.randint(1, 9_999_999)}",
                f"tvdb://{self.randint(1, 9_999_999)}",
            )
        duration = (show.duration or 2_640_000) + self.randint(-120_000, 120_000)
        air_year = min(year + max(season_index - 1, 0), 2024)
        item = EmuItem(
            rk,
            EPISODE,
            show.section_key,
            self.pick(_EPISODE_WORDS) if self.random() < 0.7 else f"Episode {number}",
            guid=guid,
            ext_guids=ext,
            added_at=added,
            updated_at=self.later(added),
            index=number,
            parent_rk=season.rating_key,
            summary=self.pick(_SUMMARIES),
            duration=duration,
            originally_available_at=self.date(air_year),
        )
        name = self.safe_names.get(show.rating_key) or path_safe(show.title)
        self.safe_names[show.rating_key] = name
        folder = f"{show.path}/{season_folder(season_index)}"
        result: EmuMedia | None = None
        if number == pair + 1 and shared is not None:
            # Second episode of a two-episode file: same Part (id, key, file), own Media id.
            media = EmuMedia(
                server.next_media_id,
                shared.duration,
                shared.bitrate,
                shared.width,
                shared.height,
                shared.aspect_ratio,
                shared.audio_channels,
                shared.audio_codec,
                shared.video_codec,
                shared.video_resolution,
                shared.container,
                shared.video_frame_rate,
                list(shared.parts),
            )
            server.next_media_id += 1
        else:
            code = f"S{season_index:02d}E{number:02d}"
            if number == pair:
                code = f"{code}-E{number + 1:02d}"
            media = self.media([f"{folder}/{name} - {code}"], duration)
            if number == pair:
                result = media
        item.media.append(media)
        self.watch(item)
        self.register(item)
        return result


def generate_server(
    seed: int = 1,
    movies: int = 50,
    shows: int = 5,
    seasons_per_show: tuple[int, int] = (1, 3),
    episodes_per_season: tuple[int, int] = (2, 6),
    machine_identifier: str | None = None,
    friendly_name: str = "Emulated Plex",
    token: str = "test-token",  # noqa: S107
    specials: bool = True,
    multi_episode_files: bool = True,
    legacy_agent_share: float = 0.3,
    unicode: bool = True,
    version: str = DEFAULT_VERSION,
    timestamp_step: int | None = None,
) -> EmuServer:
    """Build a server with a movie section "1" and a show section "2", the same for a seed.

    `addedAt` grows with ratingKey by a random step of up to `timestamp_step` seconds (default
    about 16 hours); past ~8,000 items the default reaches the end of the generated epoch, so
    large libraries should pass a smaller step to spread their timestamps over the years.
    """
    rng = random.Random(seed)
    server = EmuServer(
        machine_identifier=machine_identifier or f"{rng.getrandbits(160):040x}",
        friendly_name=friendly_name,
        token=token,
        version=version,
    )
    server.clock = lambda: EPOCH_END  # Deterministic while generating.
    movie_section = server.add_section(
        MOVIE,
        "Movies",
        ["/data/movies"],
        key="1",
        uuid=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        created_at=EPOCH_START,
    )
    show_section = server.add_section(
        SHOW,
        "TV Shows",
        ["/data/tv"],
        key="2",
        uuid=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        created_at=EPOCH_START,
    )
    gen = _Generator(server, rng, legacy_agent_share, unicode, timestamp_step)

    fixed: list[tuple[str, int]] = list(_SPECIAL_MOVIES)
    if unicode:
        fixed = [*_UNICODE_MOVIES[:3], *fixed, *_UNICODE_MOVIES[3:]]
    location = movie_section.locations[0][1]
    for number in range(movies):
        if number < len(fixed):
            title, year = fixed[number]
            title = gen.unique_title(title)
        else:
            title, year = gen.random_title(), gen.randint(1950, 2024)
        gen.movie(movie_section.key, location, title, year)

    fixed_shows = list(_UNICODE_SHOWS) if unicode else []
    location = show_section.locations[0][1]
    low, high = episodes_per_season
    for number in range(shows):
        if number < len(fixed_shows):
            title, year = fixed_shows[number]
            title = gen.unique_title(title)
        else:
            title, year = gen.random_title(), gen.randint(1960, 2024)
        # The first show always has specials and a two-episode file, so tests can rely on them.
        has_specials = specials and (number == 0 or gen.random() < 0.3)
        multi = multi_episode_files and (number == 0 or gen.random() < 0.15)
        gen.show(
            show_section.key,
            location,
            title,
            year,
            gen.randint(*seasons_per_show),
            (
                max(low, 2) if number == 0 and multi else low,
                max(high, 2) if number == 0 and multi else high,
            ),
            specials=has_specials,
            multi=multi,
        )

    for section in server.sections.values():
        section.updated_at = section.scanned_at = max(
            (server.items[rk].updated_at for rk in section.roots), default=EPOCH_START
        )
    server.generation = 0
    server.clock = _wall_clock
    return server


def _wall_clock() -> int:
    import time

    return int(time.time())
