"""Describe faults the emulator injects into its answers on demand."""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum
from typing import Any, Final


class FaultKind(StrEnum):
    """Name the ways an answer can go wrong."""

    STATUS_401 = "status_401"
    STATUS_404 = "status_404"
    STATUS_429 = "status_429"
    STATUS_500 = "status_500"
    STATUS_503 = "status_503"
    SLOW = "slow"
    HANG = "hang"
    RESET = "reset"
    TRUNCATED = "truncated"
    MALFORMED = "malformed"
    HTML_200 = "html_200"
    XML_INSTEAD_OF_JSON = "xml_instead_of_json"
    IGNORE_PAGING = "ignore_paging"
    CAP_SIZE = "cap_size"
    OMIT_TOTAL_SIZE = "omit_total_size"
    BAD_ITEM = "bad_item"
    OMIT_ITEM = "omit_item"


STATUS_FAULTS: Final[dict[FaultKind, int]] = {
    FaultKind.STATUS_401: 401,
    FaultKind.STATUS_404: 404,
    FaultKind.STATUS_429: 429,
    FaultKind.STATUS_500: 500,
    FaultKind.STATUS_503: 503,
}

#: Variants of the `bad_item` fault.
BAD_ITEM_VARIANTS: Final = (
    "missing_rating_key",
    "bad_added_at",
    "media_without_part",
    "missing_title",
    "bad_updated_at",
    "missing_type",
)


class Fault:
    """Apply `kind` to requests for `endpoint` (None: any but identity), after `after`."""

    __slots__ = ("after", "endpoint", "hits", "kind", "params", "seen", "times")

    def __init__(
        self,
        kind: FaultKind | str,
        endpoint: str | None = "section_all",
        times: int | None = 1,
        after: int = 0,
        **params: Any,
    ) -> None:
        self.kind = FaultKind(kind)
        self.endpoint = endpoint
        self.times = times
        self.after = after
        self.params = params
        #: Matching requests seen so far (including skipped ones).
        self.seen = 0
        #: Requests this fault was applied to.
        self.hits = 0
        if self.kind is FaultKind.BAD_ITEM and self.variant not in BAD_ITEM_VARIANTS:
            raise ValueError(f"unknown bad_item variant {self.variant!r}")
        if self.kind is FaultKind.OMIT_ITEM and not str(params.get("rating_key", "")).isdigit():
            raise ValueError("omit_item needs the rating_key of the item to leave out")

    def __repr__(self) -> str:
        """Return a readable description."""
        return (
            f"Fault({self.kind.value!r}, endpoint={self.endpoint!r}, times={self.times}, "
            f"after={self.after}, hits={self.hits}, params={self.params})"
        )

    @property
    def exhausted(self) -> bool:
        """Return True once the fault has been applied `times` times."""
        return self.times is not None and self.hits >= self.times

    @property
    def delay(self) -> float:
        """Return the `slow` delay in seconds."""
        return float(self.params.get("delay", 1.0))

    @property
    def retry_after(self) -> int:
        """Return the `status_429` Retry-After seconds."""
        return int(self.params.get("seconds", 1))

    @property
    def cap(self) -> int:
        """Return the `cap_size` page cap."""
        return int(self.params.get("cap", 50))

    @property
    def variant(self) -> str:
        """Return the `bad_item` variant."""
        return str(self.params.get("variant", "missing_rating_key"))

    @property
    def position(self) -> int:
        """Return which item of the page `bad_item` breaks."""
        return int(self.params.get("index", 0))

    @property
    def omitted(self) -> int:
        """Return the ratingKey `omit_item` leaves out."""
        return int(self.params["rating_key"])

    @property
    def counted(self) -> bool:
        """Return whether `omit_item` still counts the item in listings' `totalSize`."""
        return bool(self.params.get("counted", False))

    @property
    def fraction(self) -> float:
        """Return the share of the body sent before `reset` / `truncated` cut it."""
        return float(self.params.get("fraction", 0.5))

    def matches(self, endpoint: str) -> bool:
        """Return True if this fault is about requests to `endpoint`."""
        if self.endpoint is None:
            return endpoint != "identity"
        return self.endpoint == endpoint


class FaultSet:
    """Hold the faults of one server."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        """Add a fault and return it (its `hits` tell how often it fired)."""
        self._faults.append(fault)
        return fault

    def remove(self, fault: Fault) -> None:
        """Remove one fault."""
        self._faults.remove(fault)

    def clear(self) -> None:
        """Remove every fault."""
        self._faults.clear()

    def __iter__(self) -> Iterator[Fault]:
        """Iterate over the faults."""
        return iter(list(self._faults))

    def __len__(self) -> int:
        """Return how many faults are registered."""
        return len(self._faults)

    def take(self, endpoint: str) -> list[Fault]:
        """Return the faults that apply to this request, counting it against each."""
        active = []
        for fault in self._faults:
            if not fault.matches(endpoint) or fault.exhausted:
                continue
            fault.seen += 1
            if fault.seen <= fault.after:
                continue
            fault.hits += 1
            active.append(fault)
        return active
