"""Typed reads for the Home Assistant layer: dashboard counts, finds, diagnostics facts.

Every query the integration's sensors, actions, events, repairs and diagnostics need lives
here, behind a named method returning typed rows; the HA layer holds no SQL and reads no row
by position. `CatalogStore` inherits these methods (see catalog.py).
"""

from __future__ import annotations

from dataclasses import dataclass
import json
import sqlite3
from typing import Final

FIND_LIMIT: Final = 50
_MISSING_KINDS: Final = ("movie", "show", "episode")


@dataclass(frozen=True, slots=True)
class RunBrief:
    """How a library's latest finished run ended."""

    status: str
    finished_at: int | None
    changed: int
    skipped: int
    errors: int


@dataclass(frozen=True, slots=True)
class LibraryCounts:
    """A library's items by state (movies and episodes; shows and seasons are not counted)."""

    section_key: str
    title: str
    type: str
    active: int
    remote_only: int
    unavailable: int
    missing: int
    deleted: int
    # Present movies or episodes never watched (Plex's viewCount 0 or absent).
    unwatched: int = 0
    # Present shows (show libraries).
    shows: int = 0


@dataclass(frozen=True, slots=True)
class LibraryDashboard:
    """What a library's entities show: counts, last sync, the latest finished run."""

    counts: LibraryCounts
    last_synced_at: int | None
    last_run: RunBrief | None


@dataclass(frozen=True, slots=True)
class LibraryRemoteOnly:
    """How many of a library's playable movies or episodes no path mapping reaches."""

    library_id: int
    section_key: str
    title: str
    type: str
    # The section's folders on the Plex host.
    locations: tuple[str, ...]
    remote_only: int
    # ACTIVE and REMOTE_ONLY movies and episodes.
    playable: int


@dataclass(frozen=True, slots=True)
class FoundFile:
    """One file of a found item: as Plex reports it, and as this machine sees it."""

    plex_path: str | None
    local_path: str | None


@dataclass(frozen=True, slots=True)
class FoundItem:
    """An item found by `find_items`, with its GUIDs and files."""

    server: str | None
    machine_identifier: str
    library: str
    kind: str
    title: str
    year: int | None
    show: str | None
    season: int | None
    episode: int | None
    rating_key: str
    state: str
    guids: tuple[str, ...]
    files: tuple[FoundFile, ...]
    view_count: int | None = None
    last_viewed_at: int | None = None


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A sync run as diagnostics show it."""

    id: int
    library: str | None
    kind: str
    status: str
    deep: bool
    started_at: int
    finished_at: int | None
    processed: int
    changed: int
    skipped: int
    errors: int
    missing_promoted: int
    deleted_promoted: int
    returned: int
    requests: int
    error: str | None


@dataclass(frozen=True, slots=True)
class TitledItem:
    """A show or movie found by its exact title."""

    rating_key: str
    kind: str
    year: int | None


@dataclass(frozen=True, slots=True)
class ActivityRecord:
    """A live update (notification or webhook) that changed something, or was turned away."""

    at: int
    source: str
    event: str
    rating_key: str | None
    outcome: str
    detail: str | None


@dataclass(frozen=True, slots=True)
class CatalogFacts:
    """What diagnostics show of the catalog for one server."""

    schema_version: int
    path_mappings: int
    libraries: list[LibraryCounts]
    last_runs: list[RunRecord]


def _counts(row: sqlite3.Row) -> LibraryCounts:
    return LibraryCounts(
        section_key=str(row["section_key"]),
        title=row["title"],
        type=row["type"],
        active=row["active"],
        remote_only=row["remote_only"],
        unavailable=row["unavailable"],
        missing=row["missing"],
        deleted=row["deleted"],
        unwatched=row["unwatched"],
        shows=row["shows"],
    )


def _locations(text: str) -> tuple[str, ...]:
    """Return the folders of a library's `locations` (a JSON array, as the store writes it)."""
    return tuple(str(path) for path in json.loads(text))


class CatalogReads:
    """Named, typed reads of the catalog (mixed into `CatalogStore`)."""

    conn: sqlite3.Connection

    def _rows(self, sql: str, params: tuple[object, ...]) -> list[sqlite3.Row]:
        cursor = self.conn.execute(sql, params)
        cursor.row_factory = sqlite3.Row
        return cursor.fetchall()

    def dashboard(self, server_id: int) -> list[LibraryDashboard]:
        """Return each present library's counts, sync time and latest finished run."""
        return [
            LibraryDashboard(
                counts=_counts(row),
                last_synced_at=row["last_synced_at"],
                last_run=None
                if row["status"] is None
                else RunBrief(
                    status=row["status"],
                    finished_at=row["finished_at"],
                    changed=row["changed"],
                    skipped=row["skipped"],
                    errors=row["errors"],
                ),
            )
            for row in self._rows(
                """
                SELECT l.section_key, l.title, l.type, c.active, c.remote_only, c.unavailable,
                       c.missing, c.deleted, c.unwatched, c.shows, l.last_synced_at,
                       r.status, r.finished_at, r.changed, r.skipped, r.errors
                FROM libraries AS l
                JOIN library_counts AS c ON c.library_id = l.id
                LEFT JOIN sync_runs AS r ON r.id = (
                    SELECT id FROM sync_runs WHERE library_id = l.id AND status != 'running'
                    ORDER BY id DESC LIMIT 1)
                WHERE l.server_id = ? AND l.present = 1
                """,
                (server_id,),
            )
        ]

    def library_counts(self, server_id: int) -> list[LibraryCounts]:
        """Return every library's counts by state, present or not."""
        return [
            _counts(row)
            for row in self._rows(
                "SELECT section_key, title, type, active, remote_only, unavailable, missing, "
                "deleted, unwatched, shows FROM library_counts WHERE server_id = ? "
                "ORDER BY section_key",
                (server_id,),
            )
        ]

    def newly_missing_titles(self, run_id: int, limit: int) -> list[str]:
        """Return titles of movies, shows and episodes a run marked MISSING (A to Z)."""
        return [
            str(row["title"])
            for row in self._rows(
                "SELECT title FROM items WHERE changed_run_id = ? AND state = 'MISSING' "
                "AND kind IN (?, ?, ?) ORDER BY title LIMIT ?",
                (run_id, *_MISSING_KINDS, limit),
            )
        ]

    def remote_only_by_library(self, server_id: int) -> list[LibraryRemoteOnly]:
        """Return each present library's remote-only and playable movies or episodes."""
        return [
            LibraryRemoteOnly(
                library_id=row["id"],
                section_key=str(row["section_key"]),
                title=row["title"],
                type=row["type"],
                locations=_locations(row["locations"]),
                remote_only=row["remote_only"],
                playable=row["playable"],
            )
            for row in self._rows(
                """
                SELECT l.id, l.section_key, l.title, l.type, l.locations, c.remote_only,
                       c.active + c.remote_only AS playable
                FROM libraries AS l JOIN library_counts AS c ON c.library_id = l.id
                WHERE l.server_id = ? AND l.present = 1
                ORDER BY CAST(l.section_key AS INTEGER), l.section_key
                """,
                (server_id,),
            )
        ]

    def find_items(
        self,
        title: str | None = None,
        year: int | None = None,
        kind: str | None = None,
        *,
        state: str | None = None,
        library: str | None = None,
        machine_identifier: str | None = None,
        limit: int = FIND_LIMIT,
        offset: int = 0,
    ) -> list[FoundItem]:
        """Return items matching every filter given, A to Z by title, a page at a time.

        `title` is a substring (ASCII letters in any case); `library` a library's title (any
        case) or section key. ValueError for a limit below 1 or a negative offset.
        """
        if limit < 1 or offset < 0:
            raise ValueError(f"limit must be positive and offset not negative: {limit}, {offset}")
        where: list[str] = []
        params: list[object] = []
        if title is not None:
            escaped = title.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append("i.title LIKE ? ESCAPE '\\' COLLATE NOCASE")
            params.append(f"%{escaped}%")
        if year is not None:
            where.append("i.year = ?")
            params.append(year)
        if kind is not None:
            where.append("i.kind = ?")
            params.append(kind)
        if state is not None:
            where.append("i.state = ?")
            params.append(state)
        if library is not None:
            where.append("(i.library_title = ? COLLATE NOCASE OR i.section_key = ?)")
            params += [library, library]
        if machine_identifier is not None:
            where.append("i.machine_identifier = ?")
            params.append(machine_identifier)
        items = self._rows(
            f"""
            SELECT i.id, i.machine_identifier, i.server_name, i.library_title, i.kind, i.title,
                   i.year, i.rating_key, i.state, i.grandparent_title, i.parent_index,
                   i.index_number, i.view_count, i.last_viewed_at
            FROM catalog_items AS i WHERE {" AND ".join(where) or "1"}
            ORDER BY i.title COLLATE NOCASE, i.year, i.id LIMIT ? OFFSET ?
            """,
            (*params, limit, offset),
        )
        ids = tuple(row["id"] for row in items)
        guids: dict[int, list[str]] = {}
        files: dict[int, list[FoundFile]] = {}
        if ids:
            marks = ",".join("?" * len(ids))
            for row in self._rows(
                f"SELECT item_id, uri FROM guids WHERE item_id IN ({marks}) ORDER BY uri", ids
            ):
                guids.setdefault(row["item_id"], []).append(row["uri"])
            for row in self._rows(
                f"SELECT item_id, plex_path, local_path FROM part_paths "
                f"WHERE item_id IN ({marks}) ORDER BY part_row_id",
                ids,
            ):
                files.setdefault(row["item_id"], []).append(
                    FoundFile(plex_path=row["plex_path"], local_path=row["local_path"])
                )
        return [
            FoundItem(
                server=row["server_name"],
                machine_identifier=row["machine_identifier"],
                library=row["library_title"],
                kind=row["kind"],
                title=row["title"],
                year=row["year"],
                show=row["grandparent_title"],
                season=row["parent_index"] if row["kind"] == "episode" else None,
                episode=row["index_number"] if row["kind"] == "episode" else None,
                rating_key=row["rating_key"],
                state=row["state"],
                guids=tuple(guids.get(row["id"], ())),
                files=tuple(files.get(row["id"], ())),
                view_count=row["view_count"],
                last_viewed_at=row["last_viewed_at"],
            )
            for row in items
        ]

    def facts(self, server_id: int, runs: int) -> CatalogFacts:
        """Return the schema version, mapping count, counts and latest runs of a server."""
        ((version,),) = self.conn.execute("PRAGMA user_version").fetchall()
        ((mappings,),) = self.conn.execute(
            "SELECT COUNT(*) FROM path_mappings WHERE server_id = ?", (server_id,)
        ).fetchall()
        return CatalogFacts(
            schema_version=int(version),
            path_mappings=int(mappings),
            libraries=self.library_counts(server_id),
            last_runs=self.recent_runs(server_id, runs),
        )

    def recent_runs(self, server_id: int, limit: int) -> list[RunRecord]:
        """Return a server's latest runs, newest first."""
        return [
            RunRecord(
                id=row["id"],
                library=row["library"],
                kind=row["kind"],
                status=row["status"],
                deep=bool(row["deep"]),
                started_at=row["started_at"],
                finished_at=row["finished_at"],
                processed=row["processed"],
                changed=row["changed"],
                skipped=row["skipped"],
                errors=row["errors"],
                missing_promoted=row["missing_promoted"],
                deleted_promoted=row["deleted_promoted"],
                returned=row["returned"],
                requests=row["requests"],
                error=row["error"],
            )
            for row in self._rows(
                """
                SELECT r.id, l.title AS library, r.kind, r.status, r.deep, r.started_at,
                       r.finished_at, r.processed, r.changed, r.skipped, r.errors,
                       r.missing_promoted, r.deleted_promoted, r.returned, r.requests, r.error
                FROM sync_runs AS r LEFT JOIN libraries AS l ON l.id = r.library_id
                WHERE r.server_id = ? ORDER BY r.id DESC LIMIT ?
                """,
                (server_id, limit),
            )
        ]

    def recent_activity(self, server_id: int, limit: int) -> list[ActivityRecord]:
        """Return a server's latest live-update records, newest first."""
        return [
            ActivityRecord(
                at=row["at"],
                source=row["source"],
                event=row["event"],
                rating_key=row["rating_key"],
                outcome=row["outcome"],
                detail=row["detail"],
            )
            for row in self._rows(
                "SELECT at, source, event, rating_key, outcome, detail FROM activity "
                "WHERE server_id = ? ORDER BY id DESC LIMIT ?",
                (server_id, limit),
            )
        ]

    def titled(self, server_id: int, title: str, year: int | None = None) -> list[TitledItem]:
        """Return a server's present shows and movies titled `title` (any case), A to Z."""
        params: list[object] = [server_id, title]
        where = ""
        if year is not None:
            where = " AND year = ?"
            params.append(year)
        return [
            TitledItem(rating_key=row["rating_key"], kind=row["kind"], year=row["year"])
            for row in self._rows(
                "SELECT rating_key, kind, year FROM items WHERE server_id = ? "
                "AND kind IN ('show', 'movie') AND title = ? COLLATE NOCASE "
                f"AND state IN ('ACTIVE', 'REMOTE_ONLY', 'UNAVAILABLE'){where} "
                "ORDER BY year, rating_key",
                tuple(params),
            )
        ]
