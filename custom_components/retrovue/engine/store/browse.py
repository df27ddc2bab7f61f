"""Typed queries behind the panel: pages of items, one item, libraries, missing folders, duplicates.

Each function takes the store first, so `await catalog.call(browse.items, query)` runs it on
the catalog's thread. Rows come back as frozen dataclasses; times are epoch seconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
import json
import re
import sqlite3
from typing import Any, Final

from ..states import PRESENT_STATES, ItemState
from .catalog import ITEM_KINDS, CatalogStore
from .reads import LibraryCounts, _counts, _locations

#: What an item page shows when no kind is asked for (seasons only when asked).
DEFAULT_KINDS: Final = ("movie", "show", "episode")
MAX_LIMIT: Final = 1000
#: External ids that make two items the same title (`duplicates`).
EXTERNAL_PROVIDERS: Final = ("imdb", "tmdb", "tvdb")
DUPLICATE_SCOPES: Final = ("all", "within", "across")
#: Movies and episodes have files: what `missing_folders` counts.
_FILE_KINDS: Final = ("movie", "episode")
_SAMPLES: Final = 5
# This many (or more) missing folders side by side in one folder are told as one group there.
MERGE_SIBLINGS: Final = 3
_DASH: Final = " \u2013 "
_STATES: Final = tuple(state.value for state in ItemState)
_PRESENT: Final = tuple(state.value for state in PRESENT_STATES)


class SortKey(StrEnum):
    """How a page of items is ordered (ties by id, in the same direction)."""

    TITLE = "title"
    YEAR = "year"
    # In the lifecycle's order: ACTIVE, REMOTE_ONLY, UNAVAILABLE, MISSING, DELETED.
    STATE = "state"
    SINCE = "since"
    SIZE = "size"
    ADDED = "added"
    LAST_SEEN = "last_seen"
    # Show title (a movie's or show's own title), then season, then episode.
    SHOW = "show"


@dataclass(frozen=True, slots=True)
class ItemQuery:
    """A filtered, sorted page of items; empty tuples mean no filter."""

    machine_identifier: str | None = None
    library_ids: tuple[int, ...] = ()
    states: tuple[str, ...] = ()
    # Empty: movies, shows and episodes.
    kinds: tuple[str, ...] = ()
    # A substring (ASCII letters in any case) of the title, the show's title or a file's path.
    search: str | None = None
    year: int | None = None
    sort: SortKey = SortKey.TITLE
    descending: bool = False
    offset: int = 0
    limit: int = 100


@dataclass(frozen=True, slots=True)
class ItemBase:
    """What the panel shows of any item (`ItemRow` and `ItemDetail` add to it)."""

    id: int
    machine_identifier: str
    server: str
    library_id: int
    library: str
    kind: str
    rating_key: str
    title: str
    # The show's title for seasons and episodes.
    show: str | None
    # Season number of a season or an episode; episode number of an episode.
    season: int | None
    episode: int | None
    year: int | None
    state: str
    # When the current state began.
    since: int
    first_seen_at: int
    last_seen_at: int
    missing_since: int | None
    deleted_at: int | None
    added_at: int | None
    # Bytes of all its files (None without any size).
    size: int | None
    # Of its first file (by media, then part).
    video_resolution: str | None
    video_codec: str | None
    container: str | None
    plex_path: str | None
    local_path: str | None
    view_count: int | None
    last_viewed_at: int | None


@dataclass(frozen=True, slots=True)
class ItemRow(ItemBase):
    """One row of an item page."""

    # How many files (parts).
    parts: int


@dataclass(frozen=True, slots=True)
class ItemPage:
    """A page of items and how many match the filter in all."""

    total: int
    rows: tuple[ItemRow, ...]


@dataclass(frozen=True, slots=True)
class PartDetail:
    """One file of an item."""

    media_index: int
    part_index: int
    plex_path: str | None
    local_path: str | None
    size: int | None
    duration: int | None
    container: str | None
    video_codec: str | None
    audio_codec: str | None
    audio_channels: int | None
    video_resolution: str | None
    width: int | None
    height: int | None
    bitrate: int | None


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """A change of an item's state."""

    at: int
    state: str
    previous: str | None
    run_id: int | None


@dataclass(frozen=True, slots=True)
class ItemDetail(ItemBase):
    """Everything the catalog holds about one item."""

    guids: tuple[str, ...]
    parts: tuple[PartDetail, ...]
    # Oldest first.
    history: tuple[HistoryEntry, ...]
    server_url: str | None
    section_key: str
    parent_rating_key: str | None
    grandparent_rating_key: str | None
    child_count: int | None
    leaf_count: int | None
    error_count: int
    last_error: str | None
    last_error_at: int | None
    duration: int | None
    guid: str | None


@dataclass(frozen=True, slots=True)
class LibraryOverview:
    """A library with its server and its counts (movies and episodes by state, and shows)."""

    id: int
    machine_identifier: str
    server: str
    server_url: str | None
    section_key: str
    title: str
    type: str
    present: bool
    locations: tuple[str, ...]
    counts: LibraryCounts
    last_synced_at: int | None


@dataclass(frozen=True, slots=True)
class MissingFolder:
    """A folder whose MISSING movies or episodes went together."""

    path: str
    machine_identifier: str
    server: str
    library_id: int
    library: str
    items: int
    files: int
    size: int
    # Earliest and latest `missing_since` among its items.
    since: int
    until: int
    sample_titles: tuple[str, ...]
    # 1: the folder went missing as a whole. More: that many folders inside it went missing
    # whole (say, 55 movie folders under /data/movies), while it still holds present files.
    folders: int = 1


@dataclass(frozen=True, slots=True)
class DuplicateItem:
    """One item of a duplicate group."""

    id: int
    machine_identifier: str
    server: str
    library: str
    rating_key: str
    title: str
    year: int | None
    state: str
    size: int | None
    video_resolution: str | None
    plex_path: str | None


@dataclass(frozen=True, slots=True)
class DuplicateGroup:
    """Present items of one kind linked by shared external ids."""

    # The shared ids, e.g. imdb://tt0133093.
    ids: tuple[str, ...]
    kind: str
    title: str
    year: int | None
    servers: int
    # By server name, library title, title, then id; `title` and `year` are the first's.
    items: tuple[DuplicateItem, ...]


@dataclass(frozen=True, slots=True)
class DuplicatePage:
    """A page of duplicate groups and how many there are in all."""

    total: int
    groups: tuple[DuplicateGroup, ...]


# --- items --------------------------------------------------------------------------------

_SHOW_TITLE: Final = (
    "CASE i.kind WHEN 'episode' THEN i.grandparent_title WHEN 'season' THEN i.parent_title END"
)
_SEASON: Final = (
    "CASE i.kind WHEN 'episode' THEN i.parent_index WHEN 'season' THEN i.index_number END"
)
_EPISODE: Final = "CASE i.kind WHEN 'episode' THEN i.index_number END"
# A present item's state began with its latest change to that state (before version 8 nothing
# was recorded: then when it was first seen).
_SINCE: Final = """COALESCE(CASE i.state
    WHEN 'MISSING' THEN i.missing_since
    WHEN 'DELETED' THEN i.deleted_at
    ELSE (SELECT h.at FROM item_history AS h WHERE h.item_id = i.id AND h.state = i.state
          ORDER BY h.at DESC LIMIT 1)
    END, i.first_seen_at)"""
_STATE_RANK: Final = (
    "CASE i.state " + " ".join(f"WHEN '{s}' THEN {n}" for n, s in enumerate(_STATES)) + " END"
)
_SIZE: Final = "(SELECT SUM(p.size) FROM parts AS p WHERE p.item_id = i.id)"
_ORDER: Final[dict[SortKey, tuple[str, ...]]] = {
    SortKey.TITLE: ("i.title COLLATE NOCASE",),
    SortKey.YEAR: ("i.year",),
    SortKey.STATE: (_STATE_RANK,),
    SortKey.SINCE: (_SINCE,),
    SortKey.SIZE: (_SIZE,),
    SortKey.ADDED: ("i.added_at",),
    SortKey.LAST_SEEN: ("i.last_seen_at",),
    SortKey.SHOW: (f"COALESCE({_SHOW_TITLE}, i.title) COLLATE NOCASE", _SEASON, _EPISODE),
}

_ITEM_COLUMNS: Final = f"""
    i.id, s.machine_identifier, COALESCE(s.name, s.machine_identifier) AS server,
    s.url AS server_url, i.library_id, l.title AS library, l.section_key, i.kind, i.rating_key,
    i.title, {_SHOW_TITLE} AS show, {_SEASON} AS season, {_EPISODE} AS episode, i.year,
    i.state, {_SINCE} AS since, i.first_seen_at, i.last_seen_at, i.missing_since,
    i.deleted_at, i.added_at, i.view_count, i.last_viewed_at, i.parent_rating_key,
    i.grandparent_rating_key, i.child_count, i.leaf_count, i.error_count, i.last_error,
    i.last_error_at, i.duration, i.guid
FROM items AS i
JOIN libraries AS l ON l.id = i.library_id
JOIN servers AS s ON s.id = i.server_id
"""
_PART_COLUMNS: Final = (
    "p.item_id, p.id AS part_row_id, p.media_index, p.part_index, p.plex_path, p.size, "
    "p.duration, p.container, p.video_codec, p.audio_codec, p.audio_channels, "
    "p.video_resolution, p.width, p.height, p.bitrate"
)


def _marks(count: int) -> str:
    return ",".join("?" * count)


def _like(text: str) -> str:
    r"""Return a LIKE pattern (with ESCAPE '\') matching `text` anywhere."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _check_limit(offset: int, limit: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
    if offset < 0:
        raise ValueError(f"offset must not be negative, not {offset}")


def _check_kinds(kinds: Iterable[str]) -> None:
    unknown = [kind for kind in kinds if kind not in ITEM_KINDS]
    if unknown:
        raise ValueError(f"unknown kinds {unknown}; choose from {', '.join(ITEM_KINDS)}")


def _server_id(store: CatalogStore, machine_identifier: str | None) -> int | None:
    """Return the catalog id of a server (-1 for one the catalog does not know)."""
    if machine_identifier is None:
        return None
    found = store.server_id(machine_identifier)
    return -1 if found is None else found


def _library_ids(store: CatalogStore, server_id: int | None) -> list[int]:
    """Return the ids of every library of one server, or of all servers."""
    if server_id is None:
        rows = store.query("SELECT id FROM libraries ORDER BY id")
    else:
        rows = store.query("SELECT id FROM libraries WHERE server_id = ? ORDER BY id", (server_id,))
    return [int(row["id"]) for row in rows]


def _where(store: CatalogStore, query: ItemQuery) -> tuple[str, list[Any]]:
    """Return the WHERE clause (on `items AS i`) and parameters of a query."""
    kinds = query.kinds or DEFAULT_KINDS
    _check_kinds(kinds)
    unknown = [state for state in query.states if state not in _STATES]
    if unknown:
        raise ValueError(f"unknown states {unknown}; choose from {', '.join(_STATES)}")
    where = [f"i.kind IN ({_marks(len(kinds))})"]
    params: list[Any] = [*kinds]
    server_id = _server_id(store, query.machine_identifier)
    if server_id is not None:
        where.append("i.server_id = ?")
        params.append(server_id)
    libraries: Sequence[int] = query.library_ids
    if query.states and not libraries:
        # Every library by id, so that the (library, kind, state) index finds the states.
        libraries = _library_ids(store, server_id)
    if libraries:
        where.append(f"i.library_id IN ({_marks(len(libraries))})")
        params.extend(libraries)
    if query.states:
        where.append(f"i.state IN ({_marks(len(query.states))})")
        params.extend(query.states)
    if query.year is not None:
        where.append("i.year = ?")
        params.append(query.year)
    if query.search:
        pattern = _like(query.search)
        where.append(
            "(i.title LIKE ? ESCAPE '\\' OR i.grandparent_title LIKE ? ESCAPE '\\' "
            "OR (i.kind = 'season' AND i.parent_title LIKE ? ESCAPE '\\') "
            "OR i.id IN (SELECT p.item_id FROM parts AS p WHERE p.plex_path LIKE ? ESCAPE '\\'))"
        )
        params.extend([pattern] * 4)
    return " AND ".join(where), params


def items(store: CatalogStore, query: ItemQuery) -> ItemPage:
    """Return one page of the items a query matches, and how many match in all.

    The page's ids come first (filter, order, offset, limit); details, files and local paths
    are read for those rows only. ValueError for a limit outside 1..1000, a negative offset,
    or an unknown kind or state.
    """
    _check_limit(query.offset, query.limit)
    where, params = _where(store, query)
    direction = "DESC" if query.descending else "ASC"
    order = ", ".join(f"{expr} {direction}" for expr in (*_ORDER[query.sort], "i.id"))
    page = (*params, query.limit, query.offset)
    if query.search:
        # A search reads every row anyway: the page and the count come from one pass.
        found = store.query(
            f"SELECT i.id, COUNT(*) OVER () AS total FROM items AS i WHERE {where} "
            f"ORDER BY {order} LIMIT ? OFFSET ?",
            page,
        )
        if found:
            ids = [int(row["id"]) for row in found]
            return ItemPage(total=int(found[0]["total"]), rows=tuple(_item_rows(store, ids)))
    total = int(store.query(f"SELECT COUNT(*) AS n FROM items AS i WHERE {where}", params)[0]["n"])
    if query.offset >= total:
        return ItemPage(total=total, rows=())
    ids = [
        int(row["id"])
        for row in store.query(
            f"SELECT i.id FROM items AS i WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?", page
        )
    ]
    return ItemPage(total=total, rows=tuple(_item_rows(store, ids)))


@dataclass(frozen=True, slots=True)
class _Files:
    """An item's files as its row shows them: how many, their size, the first one."""

    count: int
    size: int | None
    first: sqlite3.Row
    local_path: str | None


def _files(store: CatalogStore, ids: Sequence[int]) -> dict[int, _Files]:
    """Return the files of some items (their first file's local path resolved)."""
    grouped: dict[int, list[sqlite3.Row]] = {}
    for row in store.query(
        f"SELECT {_PART_COLUMNS} FROM parts AS p WHERE p.item_id IN ({_marks(len(ids))}) "
        "ORDER BY p.item_id, p.media_index, p.part_index, p.id",
        ids,
    ):
        grouped.setdefault(int(row["item_id"]), []).append(row)
    local = _local_paths(store, [parts[0]["part_row_id"] for parts in grouped.values()])
    return {item_id: _summary(parts, local) for item_id, parts in grouped.items()}


def _summary(parts: Sequence[sqlite3.Row], local: dict[int, str | None]) -> _Files:
    """Return what a row shows of an item's files (at least one, by media and part)."""
    sizes = [part["size"] for part in parts if part["size"] is not None]
    return _Files(
        count=len(parts),
        size=sum(sizes) if sizes else None,
        first=parts[0],
        local_path=local.get(parts[0]["part_row_id"]),
    )


def _local_paths(store: CatalogStore, part_row_ids: Sequence[int]) -> dict[int, str | None]:
    """Return the local path of some parts, as the `part_paths` view resolves them."""
    return {
        int(row["part_row_id"]): row["local_path"]
        for row in store.query(
            "SELECT part_row_id, local_path FROM part_paths "
            f"WHERE part_row_id IN ({_marks(len(part_row_ids))})",
            part_row_ids,
        )
    }


def _base_fields(row: sqlite3.Row, files: _Files | None) -> dict[str, Any]:
    """Return the `ItemBase` fields of an item row and its files (None: it has none)."""
    first = files.first if files is not None else None
    return {
        "id": row["id"],
        "machine_identifier": row["machine_identifier"],
        "server": row["server"],
        "library_id": row["library_id"],
        "library": row["library"],
        "kind": row["kind"],
        "rating_key": row["rating_key"],
        "title": row["title"],
        "show": row["show"],
        "season": row["season"],
        "episode": row["episode"],
        "year": row["year"],
        "state": row["state"],
        "since": row["since"],
        "first_seen_at": row["first_seen_at"],
        "last_seen_at": row["last_seen_at"],
        "missing_since": row["missing_since"],
        "deleted_at": row["deleted_at"],
        "added_at": row["added_at"],
        "size": files.size if files is not None else None,
        "video_resolution": first["video_resolution"] if first is not None else None,
        "video_codec": first["video_codec"] if first is not None else None,
        "container": first["container"] if first is not None else None,
        "plex_path": first["plex_path"] if first is not None else None,
        "local_path": files.local_path if files is not None else None,
        "view_count": row["view_count"],
        "last_viewed_at": row["last_viewed_at"],
    }


def _item_rows(store: CatalogStore, ids: Sequence[int]) -> list[ItemRow]:
    """Return the rows of some items, in the order of `ids`."""
    found = {
        int(row["id"]): row
        for row in store.query(f"SELECT {_ITEM_COLUMNS} WHERE i.id IN ({_marks(len(ids))})", ids)
    }
    files = _files(store, ids)
    rows: list[ItemRow] = []
    for item_id in ids:
        item_files = files.get(item_id)
        rows.append(
            ItemRow(
                **_base_fields(found[item_id], item_files),
                parts=item_files.count if item_files is not None else 0,
            )
        )
    return rows


def item_detail(store: CatalogStore, item_id: int) -> ItemDetail | None:
    """Return one item with its GUIDs, every file and its state history; None if unknown."""
    found = store.query(f"SELECT {_ITEM_COLUMNS} WHERE i.id = ?", (item_id,))
    if not found:
        return None
    row = found[0]
    parts = store.query(
        f"SELECT {_PART_COLUMNS} FROM parts AS p WHERE p.item_id = ? "
        "ORDER BY p.media_index, p.part_index, p.id",
        (item_id,),
    )
    local = _local_paths(store, [part["part_row_id"] for part in parts])
    files = _summary(parts, local) if parts else None
    guids = store.query("SELECT uri FROM guids WHERE item_id = ? ORDER BY uri", (item_id,))
    history = store.query(
        "SELECT at, state, previous, run_id FROM item_history WHERE item_id = ? ORDER BY at, rowid",
        (item_id,),
    )
    return ItemDetail(
        **_base_fields(row, files),
        guids=tuple(str(guid["uri"]) for guid in guids),
        parts=tuple(
            PartDetail(
                media_index=part["media_index"],
                part_index=part["part_index"],
                plex_path=part["plex_path"],
                local_path=local.get(part["part_row_id"]),
                size=part["size"],
                duration=part["duration"],
                container=part["container"],
                video_codec=part["video_codec"],
                audio_codec=part["audio_codec"],
                audio_channels=part["audio_channels"],
                video_resolution=part["video_resolution"],
                width=part["width"],
                height=part["height"],
                bitrate=part["bitrate"],
            )
            for part in parts
        ),
        history=tuple(
            HistoryEntry(
                at=entry["at"],
                state=entry["state"],
                previous=entry["previous"],
                run_id=entry["run_id"],
            )
            for entry in history
        ),
        server_url=row["server_url"],
        section_key=row["section_key"],
        parent_rating_key=row["parent_rating_key"],
        grandparent_rating_key=row["grandparent_rating_key"],
        child_count=row["child_count"],
        leaf_count=row["leaf_count"],
        error_count=row["error_count"],
        last_error=row["last_error"],
        last_error_at=row["last_error_at"],
        duration=row["duration"],
        guid=row["guid"],
    )


# --- libraries ----------------------------------------------------------------------------


def libraries_overview(store: CatalogStore) -> tuple[LibraryOverview, ...]:
    """Return every library of every server (`present` says if Plex still has it) with counts.

    Sorted by server name, then library title.
    """
    return tuple(
        LibraryOverview(
            id=row["id"],
            machine_identifier=row["machine_identifier"],
            server=row["server"],
            server_url=row["url"],
            section_key=row["section_key"],
            title=row["title"],
            type=row["type"],
            present=bool(row["present"]),
            locations=_locations(row["locations"]),
            counts=_counts(row),
            last_synced_at=row["last_synced_at"],
        )
        for row in store.query(
            """
            SELECT l.id, s.machine_identifier, COALESCE(s.name, s.machine_identifier) AS server,
                   s.url, l.section_key, l.title, l.type, l.present, l.locations,
                   l.last_synced_at, c.active, c.remote_only, c.unavailable, c.missing,
                   c.deleted, c.unwatched, c.shows
            FROM libraries AS l
            JOIN servers AS s ON s.id = l.server_id
            JOIN library_counts AS c ON c.library_id = l.id
            ORDER BY server COLLATE NOCASE, s.id, l.title COLLATE NOCASE, l.id
            """
        )
    )


# --- where did it go -----------------------------------------------------------------------

_POSIX_NAME: Final = re.compile(r"[^/]+")
_WINDOWS_NAME: Final = re.compile(r"[^\\/]+")
_DRIVE: Final = re.compile(r"[A-Za-z]:[\\/]")
_ASCII_LOWER: Final = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


@dataclass(frozen=True, slots=True)
class _SplitPath:
    r"""A path as Plex wrote it, split into its folders and file name.

    `root` is "" for a POSIX path, `D:` for a drive, `\\server\share` (as written) for a UNC
    path; `names` the components after it (empty and `.` ones dropped), `ends` where each ends
    in the text. Drive and UNC paths split on both separators and compare ignoring ASCII case.
    """

    text: str
    windows: bool
    root: str
    names: tuple[str, ...]
    ends: tuple[int, ...]

    @property
    def separator(self) -> str:
        return "\\" if self.windows and "\\" in self.text else "/"

    def key(self, depth: int) -> tuple[Any, ...]:
        """Return what identifies the folder of the first `depth` components."""
        names = self.names[:depth]
        if self.windows:
            return (
                True,
                self.root.translate(_ASCII_LOWER),
                *(n.translate(_ASCII_LOWER) for n in names),
            )
        return (False, *names)

    def prefix(self, depth: int) -> str:
        """Return the text of the path up to the end of its `depth`-th component (from 1)."""
        return self.text[: self.ends[depth - 1]]

    def display(self, depth: int) -> str:
        """Return the folder of the first `depth` components, written with one separator."""
        sep = self.separator
        names = self.names[:depth]
        if not self.windows:
            return "/" + "/".join(names)
        root = self.root
        if root.startswith(("\\", "/")):
            root = sep * 2 + sep.join(_WINDOWS_NAME.findall(root))
            return sep.join((root, *names))
        return root + sep + sep.join(names)

    def contains(self, folder: _SplitPath) -> bool:
        """Return whether `folder` is this path or one of its folders."""
        depth = len(folder.names)
        return depth <= len(self.names) and folder.key(depth) == self.key(depth)


def _split_path(text: str) -> _SplitPath | None:
    """Split an absolute POSIX, drive or UNC path; None for anything else."""
    if text[:2] in ("\\\\", "\\/", "/\\"):
        found = [m for m in _WINDOWS_NAME.finditer(text, 2) if m.group() != "."]
        if len(found) < 2:
            return None
        share = found[1]
        rest = found[2:]
        return _SplitPath(
            text,
            True,
            text[: share.end()],
            tuple(m.group() for m in rest),
            tuple(m.end() for m in rest),
        )
    if text.startswith("/"):
        found = [m for m in _POSIX_NAME.finditer(text) if m.group() != "."]
        return _SplitPath(
            text, False, "", tuple(m.group() for m in found), tuple(m.end() for m in found)
        )
    if _DRIVE.match(text):
        found = [m for m in _WINDOWS_NAME.finditer(text, 2) if m.group() != "."]
        return _SplitPath(
            text, True, text[:2], tuple(m.group() for m in found), tuple(m.end() for m in found)
        )
    return None


@dataclass(slots=True)
class _Group:
    """A missing folder being gathered."""

    path: str
    library_id: int
    # The folder above, as a key and as written; None when that is above the library location.
    parent: tuple[Any, ...] | None = None
    parent_path: str = ""
    key: tuple[Any, ...] = ()
    folders: int = 1
    items: set[int] = field(default_factory=set)
    # Each file's size (a file of several episodes counts once).
    files: dict[str, int] = field(default_factory=dict)
    since: int | None = None
    until: int | None = None
    # (path, item id) of each missing file, for the sample titles.
    samples: list[tuple[str, int]] = field(default_factory=list)

    def add(self, item_id: int, path: str, size: int | None, since: int) -> None:
        """Count one missing file of an item."""
        self.items.add(item_id)
        self.files.setdefault(path, size or 0)
        self.samples.append((path, item_id))
        self.add_time(since)

    def absorb(self, other: _Group) -> None:
        """Take in the files of a group inside this one."""
        self.items |= other.items
        for path, size in other.files.items():
            self.files.setdefault(path, size)
        self.samples += other.samples
        for since in (other.since, other.until):
            if since is not None:
                self.add_time(since)

    def add_time(self, since: int) -> None:
        """Widen the group's time span to `since`."""
        if self.since is None or since < self.since:
            self.since = since
        if self.until is None or since > self.until:
            self.until = since


def _merge_siblings(groups: dict[tuple[Any, ...], _Group]) -> list[_Group]:
    """Tell MERGE_SIBLINGS or more missing folders in one folder as one group of that folder."""
    by_parent: dict[tuple[Any, ...], list[_Group]] = {}
    for group in groups.values():
        if group.parent is not None:
            by_parent.setdefault(group.parent, []).append(group)
    for parent, siblings in by_parent.items():
        if len(siblings) < MERGE_SIBLINGS:
            continue
        first = siblings[0]
        target = groups.get(parent)
        if target is None:
            target = groups[parent] = _Group(first.parent_path, first.library_id, folders=0)
        for sibling in siblings:
            target.absorb(sibling)
            target.folders += sibling.folders
            del groups[(sibling.library_id, *sibling.key)]
    return list(groups.values())


@dataclass(frozen=True, slots=True)
class _Library:
    id: int
    server_id: int
    title: str
    machine_identifier: str
    server: str
    locations: tuple[_SplitPath, ...]


def _present_below(store: CatalogStore, server_id: int, folder: str, windows: bool) -> bool:
    """Return whether a file of a present item of the server lies under a folder (as written)."""
    ranges: list[str] = []
    params: list[Any] = [server_id]
    for sep in ("\\", "/") if windows else ("/",):
        ranges.append("(p.plex_path >= ? AND p.plex_path < ?)")
        params += [folder + sep, folder + chr(ord(sep) + 1)]
    (row,) = store.query(
        f"""
        SELECT EXISTS (
            SELECT 1 FROM parts AS p JOIN items AS i ON i.id = p.item_id
            WHERE p.server_id = ? AND ({" OR ".join(ranges)})
              AND i.state IN ({_marks(len(_PRESENT))})) AS found
        """,
        (*params, *_PRESENT),
    )
    return bool(row["found"])


def _floor(path: _SplitPath, locations: Sequence[_SplitPath]) -> int:
    """Return how high a group may reach: the library location holding the file, not the root."""
    holding = [len(loc.names) for loc in locations if path.contains(loc)]
    return max(max(holding, default=1), 1)


def missing_folders(
    store: CatalogStore,
    *,
    machine_identifier: str | None = None,
    library_ids: tuple[int, ...] = (),
    run_id: int | None = None,
    limit: int = 20,
) -> tuple[MissingFolder, ...]:
    """Return MISSING movies and episodes grouped by the folder they went from, largest first.

    Each missing file starts at its folder and climbs while the folder above holds no file of a
    present item of the server, never above the library location that holds the file nor to
    the root: a season folder when one episode is gone, the show's folder when all of it is.
    Paths are read as Plex writes them; drive and UNC paths split on both separators and group
    ignoring ASCII case.
    Movies and episodes only: a MISSING show or season is told by its episodes' folders, and
    an item without a file path is not placed. MERGE_SIBLINGS or more groups side by side in
    one folder (inside the library location) become one group of that folder, with `folders`
    saying how many went. With `run_id`, only items that run marked
    MISSING. Sorted by items (most first), then path.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
    libraries = _libraries(store, _server_id(store, machine_identifier), library_ids)
    if not libraries:
        return ()
    where = (
        f"i.library_id IN ({_marks(len(libraries))}) AND i.kind IN ({_marks(len(_FILE_KINDS))}) "
        "AND i.state = 'MISSING' AND p.plex_path IS NOT NULL"
    )
    params: list[Any] = [*libraries, *_FILE_KINDS]
    if run_id is not None:
        where += " AND i.changed_run_id = ?"
        params.append(run_id)
    ids, library_of, missing_since, paths, sizes = store.json_columns(
        (
            "i.id",
            "i.library_id",
            "COALESCE(i.missing_since, i.last_seen_at)",
            "p.plex_path",
            "p.size",
        ),
        f"FROM items AS i JOIN parts AS p ON p.item_id = i.id WHERE {where}",
        params,
    )
    groups: dict[tuple[Any, ...], _Group] = {}
    # Folder prefix (as written) → whether a present file lies under it, per server.
    present: dict[tuple[int, str], bool] = {}
    # The group of each file's folder (None: it cannot be placed), per library.
    placed: dict[tuple[int, str], _Group | None] = {}
    for item_id, library_id, since, text, size in zip(
        ids, library_of, missing_since, paths, sizes, strict=True
    ):
        # Where its folder ends: a backslash is part of a POSIX name.
        posix = text.startswith("/") and not text.startswith("/\\")
        end = text.rfind("/") if posix else max(text.rfind("/"), text.rfind("\\"))
        folder = (library_id, text[:end])
        if folder in placed:
            group = placed[folder]
        else:
            group = placed[folder] = _place(store, libraries[library_id], text, present, groups)
        if group is not None:
            group.add(item_id, text, size, since)
    ranked = sorted(_merge_siblings(groups), key=lambda g: (-len(g.items), g.path))[:limit]
    titles = _display_titles(store, {item for group in ranked for item in _sample_ids(group)})
    return tuple(
        MissingFolder(
            path=group.path,
            machine_identifier=libraries[group.library_id].machine_identifier,
            server=libraries[group.library_id].server,
            library_id=group.library_id,
            library=libraries[group.library_id].title,
            items=len(group.items),
            files=len(group.files),
            size=sum(group.files.values()),
            since=group.since or 0,
            until=group.until or 0,
            sample_titles=tuple(titles[item] for item in _sample_ids(group) if item in titles),
            folders=max(group.folders, 1),
        )
        for group in ranked
    )


def _place(
    store: CatalogStore,
    library: _Library,
    text: str,
    present: dict[tuple[int, str], bool],
    groups: dict[tuple[Any, ...], _Group],
) -> _Group | None:
    """Return the group of a missing file (made if new); None for a path with no folder."""
    path = _split_path(text)
    if path is None or not path.names:
        return None
    depth = _climb(store, library, path, present)
    key = (library.id, *path.key(depth))
    group = groups.get(key)
    if group is None:
        above = depth > _floor(path, library.locations)
        group = groups[key] = _Group(
            path.display(depth),
            library.id,
            parent=(library.id, *path.key(depth - 1)) if above else None,
            parent_path=path.display(depth - 1) if above else "",
            key=path.key(depth),
        )
    return group


def _climb(
    store: CatalogStore,
    library: _Library,
    path: _SplitPath,
    present: dict[tuple[int, str], bool],
) -> int:
    """Return how many components the group folder of a missing file keeps."""
    floor = _floor(path, library.locations)
    depth = len(path.names) - 1
    while depth > floor:
        above = path.prefix(depth - 1)
        known = present.get((library.server_id, above))
        if known is None:
            known = present[(library.server_id, above)] = _present_below(
                store, library.server_id, above, path.windows
            )
        if known:
            break
        depth -= 1
    return depth


def _sample_ids(group: _Group) -> list[int]:
    """Return the items of a group's first files (by path), up to five."""
    found: list[int] = []
    for _, item_id in sorted(group.samples):
        if item_id not in found:
            found.append(item_id)
            if len(found) == _SAMPLES:
                break
    return found


def _libraries(
    store: CatalogStore, server_id: int | None, library_ids: Sequence[int]
) -> dict[int, _Library]:
    where: list[str] = []
    params: list[Any] = []
    if server_id is not None:
        where.append("l.server_id = ?")
        params.append(server_id)
    if library_ids:
        where.append(f"l.id IN ({_marks(len(library_ids))})")
        params.extend(library_ids)
    rows = store.query(
        "SELECT l.id, l.server_id, l.title, l.locations, s.machine_identifier, "
        "COALESCE(s.name, s.machine_identifier) AS server "
        "FROM libraries AS l JOIN servers AS s ON s.id = l.server_id"
        + (f" WHERE {' AND '.join(where)}" if where else ""),
        params,
    )
    return {
        int(row["id"]): _Library(
            id=row["id"],
            server_id=row["server_id"],
            title=row["title"],
            machine_identifier=row["machine_identifier"],
            server=row["server"],
            locations=tuple(
                path for path in map(_split_path, _locations(row["locations"])) if path is not None
            ),
        )
        for row in rows
    }


def display_title(
    kind: str,
    title: str,
    year: int | None,
    show: str | None,
    season: int | None,
    episode: int | None,
) -> str:
    """Return "Show - S01E02 - Title" (with en dashes) for an episode, else "Title (Year)"."""
    if kind == "episode":
        return f"{show or '?'}{_DASH}S{season or 0:02d}E{episode or 0:02d}{_DASH}{title}"
    return f"{title} ({year})" if year else title


def _display_titles(store: CatalogStore, ids: Iterable[int]) -> dict[int, str]:
    wanted = sorted(ids)
    return {
        int(row["id"]): display_title(
            row["kind"], row["title"], row["year"], row["show"], row["season"], row["episode"]
        )
        for row in store.query(
            f"SELECT i.id, i.kind, i.title, i.year, {_SHOW_TITLE} AS show, {_SEASON} AS season, "
            f"{_EPISODE} AS episode FROM items AS i WHERE i.id IN ({_marks(len(wanted))})",
            wanted,
        )
    }


# --- duplicates ------------------------------------------------------------------------------


class _Links:
    """Union-find over item ids."""

    def __init__(self) -> None:
        self._parent: dict[int, int] = {}

    def find(self, item: int) -> int:
        while (parent := self._parent.setdefault(item, item)) != item:
            item = parent
        return item

    def join(self, items: Sequence[int]) -> None:
        root = self.find(items[0])
        for other in items[1:]:
            self._parent[self.find(other)] = root


@dataclass(slots=True)
class _Cluster:
    kind: str
    ids: set[str]
    items: set[int]


def duplicates(
    store: CatalogStore,
    *,
    scope: str = "all",
    kinds: tuple[str, ...] = ("movie", "show"),
    machine_identifier: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> DuplicatePage:
    """Return groups of present items of one kind that share an IMDb, TMDB or TVDB id.

    Items linked by any shared id form one group. `scope`: "all", "within" (two or more items
    on one server) or "across" (items on two or more servers); with `machine_identifier`, the
    groups holding an item of that server. Sorted by the first item's title, then the ids.
    """
    _check_limit(offset, limit)
    if scope not in DUPLICATE_SCOPES:
        raise ValueError(f"unknown scope {scope!r}; choose from {', '.join(DUPLICATE_SCOPES)}")
    kinds = tuple(dict.fromkeys(kinds)) or ("movie", "show")
    _check_kinds(kinds)
    server_id = _server_id(store, machine_identifier)
    clusters = _clusters(store, kinds)
    if not clusters:
        return DuplicatePage(total=0, groups=())
    servers = _servers_of(store, [item for cluster in clusters for item in cluster.items])
    kept = [
        cluster
        for cluster in clusters
        if _in_scope(scope, [servers[item][0] for item in cluster.items])
        and (server_id is None or any(servers[item][0] == server_id for item in cluster.items))
    ]
    ordered: list[tuple[tuple[Any, ...], _Cluster, list[int]]] = []
    for cluster in kept:
        members = sorted(cluster.items, key=lambda item: servers[item][1:])
        first = servers[members[0]]
        ordered.append(((first[3].casefold(), first[3], sorted(cluster.ids)), cluster, members))
    ordered.sort(key=lambda entry: entry[0])
    page = ordered[offset : offset + limit]
    details = _duplicate_items(store, [item for _, _, members in page for item in members])
    return DuplicatePage(
        total=len(ordered),
        groups=tuple(
            DuplicateGroup(
                ids=tuple(sorted(cluster.ids)),
                kind=cluster.kind,
                title=details[members[0]].title,
                year=details[members[0]].year,
                servers=len({servers[item][0] for item in members}),
                items=tuple(details[item] for item in members),
            )
            for _, cluster, members in page
        ),
    )


def _in_scope(scope: str, servers: Sequence[int]) -> bool:
    if scope == "within":
        return len(servers) > len(set(servers))
    if scope == "across":
        return len(set(servers)) > 1
    return True


def _clusters(store: CatalogStore, kinds: Sequence[str]) -> list[_Cluster]:
    """Return the groups of present items of some kinds linked by shared external ids."""
    # Every library by id: the present items of some kinds come from the index alone.
    libraries = _library_ids(store, None)
    shared_kinds, providers, values = store.json_columns(
        ("kind", "provider", "value"),
        f"""
        FROM (
            SELECT i.kind, g.provider, g.value FROM items AS i
            JOIN guids AS g ON g.item_id = i.id
            WHERE i.library_id IN ({_marks(len(libraries))}) AND i.kind IN ({_marks(len(kinds))})
              AND i.state IN ({_marks(len(_PRESENT))})
              AND g.provider IN ({_marks(len(EXTERNAL_PROVIDERS))})
            GROUP BY i.kind, g.provider, g.value HAVING COUNT(*) > 1)
        """,
        (*libraries, *kinds, *_PRESENT, *EXTERNAL_PROVIDERS),
    )
    if not shared_kinds:
        return []
    keys = json.dumps(
        [list(key) for key in zip(shared_kinds, providers, values, strict=True)],
        ensure_ascii=False,
    )
    item_ids, item_kinds, uris = store.json_columns(
        ("g.item_id", "i.kind", "g.uri"),
        f"""
        FROM json_each(?) AS k
        JOIN guids AS g ON g.provider = json_extract(k.value, '$[1]')
                       AND g.value = json_extract(k.value, '$[2]')
        JOIN items AS i ON i.id = g.item_id
        WHERE i.kind = json_extract(k.value, '$[0]')
          AND i.state IN ({_marks(len(_PRESENT))})
        """,
        (keys, *_PRESENT),
    )
    by_id: dict[tuple[str, str], list[int]] = {}
    for item_id, kind, uri in zip(item_ids, item_kinds, uris, strict=True):
        by_id.setdefault((kind, uri), []).append(item_id)
    # Shared (provider, value) pairs can still name different uris (an old agent's episode
    # guid carries the show's id and its own season/episode): only a uri on two items links.
    shared = {key: members for key, members in by_id.items() if len(set(members)) > 1}
    links = _Links()
    for members in shared.values():
        links.join(members)
    clusters: dict[int, _Cluster] = {}
    for (kind, uri), members in shared.items():
        root = links.find(members[0])
        cluster = clusters.setdefault(root, _Cluster(kind, set(), set()))
        cluster.ids.add(uri)
        cluster.items.update(members)
    return list(clusters.values())


def _servers_of(
    store: CatalogStore, item_ids: Sequence[int]
) -> dict[int, tuple[int, str, str, str, int]]:
    """Return (server id, server name, library title, title, id) of some items by id."""
    server_ids, names, library_titles, titles, ids = store.json_columns(
        ("i.server_id", "COALESCE(s.name, s.machine_identifier)", "l.title", "i.title", "i.id"),
        """
        FROM items AS i JOIN servers AS s ON s.id = i.server_id
        JOIN libraries AS l ON l.id = i.library_id
        WHERE i.id IN (SELECT value FROM json_each(?))
        """,
        (json.dumps(sorted(set(item_ids))),),
    )
    return {
        item_id: (server, name.casefold(), library.casefold(), title, item_id)
        for server, name, library, title, item_id in zip(
            server_ids, names, library_titles, titles, ids, strict=True
        )
    }


def _duplicate_items(store: CatalogStore, item_ids: Sequence[int]) -> dict[int, DuplicateItem]:
    rows = store.query(f"SELECT {_ITEM_COLUMNS} WHERE i.id IN ({_marks(len(item_ids))})", item_ids)
    files = _files(store, item_ids)
    found: dict[int, DuplicateItem] = {}
    for row in rows:
        item_files = files.get(int(row["id"]))
        first = item_files.first if item_files is not None else None
        found[int(row["id"])] = DuplicateItem(
            id=row["id"],
            machine_identifier=row["machine_identifier"],
            server=row["server"],
            library=row["library"],
            rating_key=row["rating_key"],
            title=row["title"],
            year=row["year"],
            state=row["state"],
            size=item_files.size if item_files is not None else None,
            video_resolution=first["video_resolution"] if first is not None else None,
            plex_path=first["plex_path"] if first is not None else None,
        )
    return found


__all__ = [
    "DEFAULT_KINDS",
    "DUPLICATE_SCOPES",
    "EXTERNAL_PROVIDERS",
    "MAX_LIMIT",
    "DuplicateGroup",
    "DuplicateItem",
    "DuplicatePage",
    "HistoryEntry",
    "ItemBase",
    "ItemDetail",
    "ItemPage",
    "ItemQuery",
    "ItemRow",
    "LibraryOverview",
    "MissingFolder",
    "PartDetail",
    "SortKey",
    "display_title",
    "duplicates",
    "item_detail",
    "items",
    "libraries_overview",
    "missing_folders",
]
