"""Deterministic benchmark workloads and their churn."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Final

TOKEN: Final = "bench-token-7c2e"
SEED: Final = 1
#: How a workload's `updatedAt`s lie: spread over years (the generator's, made sparse), or all
#: one moment, as after Plex's "Refresh all metadata", an agent change or a restored backup.
TIMESTAMPS: Final = ("spread", "refreshed")
#: How long before the emulator starts serving the refreshed library was refreshed.
REFRESHED_AGO: Final = 3600
# The generator's epoch (tests/emulator/generate.py): addedAt/updatedAt fall in between.
_EPOCH_SPAN: Final = 1_735_000_000 - 1_500_000_000


@dataclass(frozen=True, slots=True)
class Churn:
    """What the churn scenario changes in the emulator before the re-sync."""

    shows: int
    episodes_changed: int
    episodes_added: int
    episodes_removed: int
    movies_changed: int

    def as_dict(self) -> dict[str, int]:
        """Return a JSON-safe dict."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Workload:
    """A generated library: `generate_server` arguments plus the churn to apply."""

    name: str
    movies: int
    shows: int
    seasons_per_show: tuple[int, int]
    episodes_per_season: tuple[int, int]
    churn: Churn
    seed: int = SEED
    #: None: spread timestamps. Otherwise every item's `updatedAt` is the emulator's clock
    #: minus this many seconds when it starts (see `EmuServer.refresh_metadata`).
    refreshed_ago: int | None = None

    @property
    def timestamps(self) -> str:
        """Return "spread" or "refreshed"."""
        return "spread" if self.refreshed_ago is None else "refreshed"

    @property
    def label(self) -> str:
        """Return the name with the timestamp variant, e.g. "L" or "L/refreshed"."""
        return self.name if self.refreshed_ago is None else f"{self.name}/refreshed"

    def variant(self, timestamps: str, refreshed_ago: int = REFRESHED_AGO) -> Workload:
        """Return this workload with spread or shared ("refreshed") `updatedAt`s."""
        if timestamps not in TIMESTAMPS:
            raise ValueError(f"unknown timestamps {timestamps!r}")
        return replace(self, refreshed_ago=None if timestamps == "spread" else refreshed_ago)

    @property
    def timestamp_step(self) -> int:
        """Return the addedAt step that spreads this library's timestamps over the epoch.

        With the generator's default step every item past the first ~8,000 is added within a
        day of the newest one (a library whose metadata was all refreshed at once); the
        benchmark wants the common case, timestamps spread over years.
        """
        seasons = sum(self.seasons_per_show) / 2
        episodes = sum(self.episodes_per_season) / 2
        ticks = self.movies + self.shows * (1 + seasons * episodes * 1.05)
        return int(2 * _EPOCH_SPAN / (ticks * 1.1))

    def generate_kwargs(self) -> dict[str, Any]:
        """Return the keyword arguments for `generate_server`."""
        return {
            "timestamp_step": self.timestamp_step,
            "seed": self.seed,
            "movies": self.movies,
            "shows": self.shows,
            "seasons_per_show": self.seasons_per_show,
            "episodes_per_season": self.episodes_per_season,
            "token": TOKEN,
        }


# About 1 % churn on L as the issue states it; S and M are scaled down in proportion.
WORKLOADS: Final[dict[str, Workload]] = {
    # 1,000 movies, 100 shows, ~235 seasons, ~1.9k episodes.
    "S": Workload("S", 1000, 100, (1, 3), (6, 12), Churn(2, 20, 4, 4, 1)),
    # 5,000 movies, 500 shows, ~2.1k seasons, ~20k episodes.
    "M": Workload("M", 5000, 500, (3, 5), (8, 12), Churn(20, 200, 40, 40, 10)),
    # 20,000 movies, 2,000 shows, ~19.6k seasons, ~96k episodes.
    "L": Workload("L", 20000, 2000, (8, 11), (3, 7), Churn(100, 1000, 200, 200, 50)),
}
