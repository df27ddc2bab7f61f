"""The SQLite catalog: one file, one connection, one dedicated worker thread.

`CatalogStore` is synchronous and must only be used from the thread that opened it.
`Catalog` owns that thread and is what asyncio code uses: `await catalog.call(fn, ...)` runs
`fn(store, ...)` on the worker, so sqlite3 never runs on the event loop. `fn` must be the
store's own code (a `CatalogStore` method, or a function of `engine/store/`, such as
`writes.apply_page`): callers choose an operation, they never bring one, so every statement that
touches the file is in this package.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
import json
import logging
from operator import itemgetter
from pathlib import Path
import sqlite3
import threading
import time
from typing import Any, Concatenate, Final

import msgspec

from ..paths import PathMapping, view_columns
from ..plex.models import Section, ServerIdentity
from ..states import PRESENT_STATES, RunStatus
from .reads import CatalogReads
from .schema import SCHEMA_VERSION, SchemaError, migrate

LOGGER = logging.getLogger(__name__)

ITEM_KINDS: Final = ("movie", "show", "season", "episode")
# SQLite 3.32+ allows 32766 bound variables; stay well below.
_CHUNK: Final = 5000
# UPDATE … FROM (3.33) and the variable limit above.
MIN_SQLITE: Final = (3, 33, 0)
# Rows per multi-row statement (see `CatalogStore.insert_rows`); a power of two.
_ROWS_PER_STATEMENT: Final = 128
# The checkpoint thread runs at most this often (seconds)...
CHECKPOINT_INTERVAL: Final = 0.25
# ...and the writer checkpoints by itself only if the WAL still reaches this many pages.
_WRITER_AUTOCHECKPOINT: Final = 16384

_ITEM_COLUMNS: Final = (
    "server_id",
    "library_id",
    "rating_key",
    "kind",
    "show_key",
    "parent_rating_key",
    "grandparent_rating_key",
    "title",
    "parent_title",
    "grandparent_title",
    "year",
    "index_number",
    "parent_index",
    "guid",
    "duration",
    "added_at",
    "updated_at_plex",
    "originally_available_at",
    "child_count",
    "leaf_count",
    "view_count",
    "last_viewed_at",
    "view_offset",
    "viewed_leaf_count",
    "state",
    "digest",
    "source_digest",
)
# `_ITEM_COLUMNS[:CONTENT]` are the columns that hold an item's content (the rest: watch
# state, state and digests).
CONTENT: Final = _ITEM_COLUMNS.index("view_count")
_PART_COLUMNS: Final = (
    "item_id",
    "server_id",
    "media_index",
    "part_index",
    "media_id",
    "part_id",
    "part_key",
    "plex_path",
    "size",
    "duration",
    "container",
    "video_codec",
    "audio_codec",
    "audio_channels",
    "video_resolution",
    "width",
    "height",
    "bitrate",
)


@dataclass(frozen=True, slots=True)
class StoredItem:
    """What the sync needs to know about an item already in the catalog."""

    id: int
    library_id: int
    kind: str
    digest: str
    state: str
    children_hydrated: bool
    watch: tuple[int | None, int | None, int | None, int | None]
    source_digest: bytes | None = None


@dataclass(frozen=True, slots=True)
class StoredContent:
    """An item's stored columns, parts and GUIDs, to write only what a change touched."""

    # In `_ITEM_COLUMNS` order.
    values: tuple[Any, ...]
    # In `_PART_COLUMNS` order without item and server ids, by media and part index.
    parts: tuple[tuple[Any, ...], ...]
    # (uri, provider, value)
    guids: frozenset[tuple[str, str, str]]


@dataclass(frozen=True, slots=True)
class LibraryRow:
    """A library section as stored."""

    id: int
    server_id: int
    section_key: str
    type: str
    title: str
    present: bool
    last_synced_at: int | None
    last_complete_sync_at: int | None
    last_deep_sync_at: int | None
    mappings_digest: str | None
    last_full_listing_at: int | None = None
    light_since: int | None = None


def _in(count: int) -> str:
    return ",".join("?" * count)


def _chunks[T](values: Sequence[T], size: int = _CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _flat(rows: Sequence[Sequence[Any]]) -> list[Any]:
    return list(chain.from_iterable(rows))


# Rows as tuples: the collector stops tracking a tuple of scalars at its first pass, so a large
# result does not pile up in the oldest generation (and bring on a full collection in Home
# Assistant) the way lists would.
_JSON_ROWS: Final = msgspec.json.Decoder(list[tuple[Any, ...]])
_JSON_COLUMNS: Final = msgspec.json.Decoder(list[list[Any]])


def _blob(column: str) -> str:
    """Select a BLOB column as hex text (NULL stays NULL) for `CatalogStore.json_rows`."""
    return f"CASE WHEN {column} IS NULL THEN NULL ELSE hex({column}) END"


def _unhex(value: str | None) -> bytes | None:
    return None if value is None else bytes.fromhex(value)


class Checkpointer:
    """Copies committed WAL frames into the database file, on its own thread and connection.

    SQLite's automatic checkpoint runs inside the COMMIT that takes the WAL past its limit, on
    the writer's thread, fsync included: 64 ms of a 0.45 s churn run, and ~1 s of a cold sync,
    with the catalog thread as the bottleneck. Here the writer only calls `poke()` after each
    write transaction, and this thread runs a PASSIVE checkpoint (which never waits for
    readers or the writer) at most every `interval` seconds while writes keep coming.
    """

    def __init__(self, path: Path, interval: float = CHECKPOINT_INTERVAL) -> None:
        """Start the thread; it opens its own connection to `path`."""
        self._path = path
        self._interval = interval
        self._wake = threading.Condition()
        self._pending = False
        self._running = False
        self._stopping = False
        self.checkpoints = 0
        self._thread = threading.Thread(target=self._run, name="retrovue_checkpoint", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        """Note that a write transaction committed."""
        with self._wake:
            self._pending = True
            self._wake.notify()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no checkpoint is due or running; return whether that happened in time."""
        with self._wake:
            return self._wake.wait_for(
                lambda: not (self._pending or self._running) or self._stopping, timeout
            )

    def stop(self) -> None:
        """Stop the thread (after the checkpoint it may be running) and close its connection."""
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        self._thread.join()

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self._path, autocommit=True)
        except sqlite3.Error as err:
            LOGGER.warning(
                "No checkpoint thread for catalog %s (the writer checkpoints by itself): %s",
                self._path,
                err,
            )
            return
        try:
            while True:
                with self._wake:
                    self._wake.wait_for(lambda: self._pending or self._stopping)
                    if self._stopping:
                        return
                    self._pending = False
                    self._running = True
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                except sqlite3.Error as err:
                    # The writer still checkpoints by itself once the WAL grows large enough.
                    LOGGER.warning("Checkpoint of catalog %s failed: %s", self._path, err)
                with self._wake:
                    self._running = False
                    self._wake.notify_all()
                    # Let more commits gather before the next checkpoint.
                    if self._wake.wait_for(lambda: self._stopping, self._interval):
                        return
        finally:
            conn.close()


class CatalogError(Exception):
    """The catalog file could not be read or written (disk full, locked, damaged)."""


class CatalogStore(CatalogReads):
    """Synchronous access to the catalog file; thread-bound."""

    def __init__(self, path: str | Path, *, migrate_to: int = SCHEMA_VERSION) -> None:
        """Open (creating if needed) and migrate the catalog at `path`."""
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            raise SchemaError(
                f"SQLite {sqlite3.sqlite_version} is too old for the catalog: Retrovue needs "
                f"{'.'.join(map(str, MIN_SQLITE))} or newer"
            )
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self.path, autocommit=True)
        try:
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA foreign_keys = ON")
            self.conn.execute("PRAGMA synchronous = NORMAL")
            self.conn.execute("PRAGMA temp_store = MEMORY")
            self.conn.execute("PRAGMA busy_timeout = 5000")
            self.conn.execute("PRAGMA cache_size = -16000")
            self.conn.execute(f"PRAGMA wal_autocheckpoint = {_WRITER_AUTOCHECKPOINT}")
            self.migrated_from = migrate(self.conn, target=migrate_to)
        except BaseException:
            self.conn.close()
            raise
        self.checkpointer = Checkpointer(self.path)

    def close(self) -> None:
        """Close the connection (after a passive checkpoint keeps the WAL small)."""
        try:
            self.checkpointer.stop()
            self.conn.execute("PRAGMA optimize")
            self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            self.conn.close()

    @property
    def schema_version(self) -> int:
        """Return the schema version of the open file."""
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run a block in one write transaction; roll back on any error."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
        self.checkpointer.poke()

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Run a read query and return rows that index by column name."""
        cursor = self.conn.execute(sql, params)
        cursor.row_factory = sqlite3.Row
        return cursor.fetchall()

    def insert_rows(self, head: str, width: int, rows: Iterable[Sequence[Any]]) -> None:
        """Run `head` (`INSERT … INTO t (columns)`) with `VALUES` for many rows at a time.

        sqlite3 releases the GIL around every statement step and must take it back afterwards;
        with one step per row, a thread busy in Python (the event loop parsing the next page)
        makes this thread wait for the GIL after every row (8,000 rows took 68 s instead of
        1 s beside a spinning thread). A step per 128 rows releases it 128 times less often,
        and is faster alone too. The remainder goes in power-of-two groups, so there are few
        distinct statements for the statement cache.
        """
        self._in_groups(lambda values: f"{head} VALUES {values}", width, rows)

    def update_rows(
        self, assignments: str, width: int, rows: Iterable[Sequence[Any]], *fixed: Any
    ) -> None:
        """Run `UPDATE items SET assignments` for many rows at a time, like `insert_rows`.

        A row is (item id, values…); `assignments` read the values as `v.column2`, … and may
        hold `?` placeholders, bound to `fixed`.
        """
        self._in_groups(
            lambda values: (
                f"UPDATE items SET {assignments} FROM (VALUES {values}) AS v "
                "WHERE items.id = v.column1"
            ),
            width,
            rows,
            fixed,
        )

    def _in_groups(
        self,
        statement: Callable[[str], str],
        width: int,
        rows: Iterable[Sequence[Any]],
        fixed: Sequence[Any] = (),
    ) -> None:
        """Run `statement(values)` over the rows, 128 per statement, the rest in halves."""
        batch = rows if isinstance(rows, list) else list(rows)
        row = f"({_in(width)})"
        per = _ROWS_PER_STATEMENT
        full = len(batch) // per * per
        if full:
            self.conn.executemany(
                statement(",".join([row] * per)),
                [[*fixed, *_flat(batch[start : start + per])] for start in range(0, full, per)],
            )
        start = full
        while start < len(batch):
            per //= 2
            if len(batch) - start >= per:
                self.conn.execute(
                    statement(",".join([row] * per)),
                    [*fixed, *_flat(batch[start : start + per])],
                )
                start += per

    def json_rows(self, columns: str, rest: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Run `SELECT columns rest` (no aliases) and return its rows in one statement step.

        Reading a row is a step too, and each step lets go of the GIL: beside a thread busy in
        Python, reading 1,000 rows one step at a time took 12 s instead of 8 ms. SQLite
        gathers the rows into one JSON array instead (text, integers and NULL come back as
        they are; select BLOBs through `_blob`). Row order is not guaranteed.
        """
        (text,) = self.conn.execute(
            f"SELECT json_group_array(json_array({columns})) {rest}",
            params,
        ).fetchone()
        return _JSON_ROWS.decode(text)

    def json_columns(
        self, columns: Sequence[str], rest: str, params: Sequence[Any]
    ) -> list[list[Any]]:
        """Like `json_rows`, but return one list per column (no object per row at all)."""
        aggregates = ", ".join(f"json_group_array({column})" for column in columns)
        (text,) = self.conn.execute(f"SELECT json_array({aggregates}) {rest}", params).fetchone()
        return _JSON_COLUMNS.decode(text)

    def delete_by_item(self, table: str, item_ids: Sequence[int]) -> None:
        """Delete the rows of some items from `parts` or `guids`, a chunk per statement."""
        for chunk in _chunks(item_ids):
            self.conn.execute(f"DELETE FROM {table} WHERE item_id IN ({_in(len(chunk))})", chunk)

    # --- servers and libraries ---------------------------------------------------------------

    def upsert_server(self, identity: ServerIdentity, url: str | None, now: int) -> int:
        """Record a server by machineIdentifier and return its id."""
        with self.transaction() as conn:
            row = conn.execute(
                """
                INSERT INTO servers (machine_identifier, name, version, url, created_at,
                                     updated_at)
                VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (machine_identifier) DO UPDATE SET
                    name = COALESCE(excluded.name, name),
                    version = COALESCE(excluded.version, version),
                    url = COALESCE(excluded.url, url),
                    updated_at = excluded.updated_at
                WHERE COALESCE(excluded.name, name) IS NOT name
                   OR COALESCE(excluded.version, version) IS NOT version
                   OR COALESCE(excluded.url, url) IS NOT url
                RETURNING id
                """,
                (
                    identity.machine_identifier,
                    identity.friendly_name,
                    identity.version,
                    url,
                    now,
                    now,
                ),
            ).fetchone()
        if row is None:  # known and unchanged: nothing was written
            row = self.conn.execute(
                "SELECT id FROM servers WHERE machine_identifier = ?",
                (identity.machine_identifier,),
            ).fetchone()
        return int(row[0])

    def server_id(self, machine_identifier: str) -> int | None:
        """Return the id of a server, or None if the catalog does not know it."""
        row = self.conn.execute(
            "SELECT id FROM servers WHERE machine_identifier = ?", (machine_identifier,)
        ).fetchone()
        return None if row is None else int(row[0])

    def remove_server(self, machine_identifier: str) -> bool:
        """Delete a server and everything cataloged for it."""
        with self.transaction() as conn:
            cursor = conn.execute(
                "DELETE FROM servers WHERE machine_identifier = ?", (machine_identifier,)
            )
        return cursor.rowcount > 0

    def sync_sections(self, server_id: int, sections: Iterable[Section], now: int) -> None:
        """Record the server's current sections; ones no longer listed become not present."""
        keys: list[str] = []
        with self.transaction() as conn:
            for section in sections:
                if not section.supported:
                    continue
                keys.append(section.key)
                conn.execute(
                    """
                    INSERT INTO libraries (server_id, section_key, uuid, type, title, agent,
                        locations, plex_updated_at, plex_scanned_at, present, first_seen_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)
                    ON CONFLICT (server_id, section_key) DO UPDATE SET
                        uuid = excluded.uuid, type = excluded.type, title = excluded.title,
                        agent = excluded.agent, locations = excluded.locations,
                        plex_updated_at = excluded.plex_updated_at,
                        plex_scanned_at = excluded.plex_scanned_at, present = 1
                    WHERE uuid IS NOT excluded.uuid OR type IS NOT excluded.type
                       OR title IS NOT excluded.title OR agent IS NOT excluded.agent
                       OR locations IS NOT excluded.locations
                       OR plex_updated_at IS NOT excluded.plex_updated_at
                       OR plex_scanned_at IS NOT excluded.plex_scanned_at OR present = 0
                    """,
                    (
                        server_id,
                        section.key,
                        section.uuid,
                        section.type,
                        section.title,
                        section.agent,
                        json.dumps(list(section.locations)),
                        section.updated_at,
                        section.scanned_at,
                        now,
                    ),
                )
            conn.execute(
                f"UPDATE libraries SET present = 0 WHERE server_id = ? AND present = 1 "
                f"AND section_key NOT IN ({_in(len(keys))})",
                (server_id, *keys),
            )

    def libraries(self, server_id: int) -> list[LibraryRow]:
        """Return the server's libraries."""
        rows = self.conn.execute(
            """
            SELECT id, server_id, section_key, type, title, present, last_synced_at,
                   last_complete_sync_at, last_deep_sync_at, mappings_digest, last_full_listing_at,
                   light_since
            FROM libraries WHERE server_id = ? ORDER BY CAST(section_key AS INTEGER), section_key
            """,
            (server_id,),
        ).fetchall()
        return [
            LibraryRow(
                id=row[0],
                server_id=row[1],
                section_key=row[2],
                type=row[3],
                title=row[4],
                present=bool(row[5]),
                last_synced_at=row[6],
                last_complete_sync_at=row[7],
                last_deep_sync_at=row[8],
                mappings_digest=row[9],
                last_full_listing_at=row[10],
                light_since=row[11],
            )
            for row in rows
        ]

    # --- path mappings -------------------------------------------------------------------------

    def set_path_mappings(self, server_id: int, mappings: Iterable[PathMapping]) -> None:
        """Replace the server's path mappings."""
        rows = [_mapping_row(server_id, mapping) for mapping in mappings]
        with self.transaction() as conn:
            conn.execute("DELETE FROM path_mappings WHERE server_id = ?", (server_id,))
            conn.executemany(
                """
                INSERT INTO path_mappings (server_id, plex_prefix, local_prefix, match_prefix,
                    fold_case, local_base, local_sep)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """,
                rows,
            )

    def path_mappings(self, server_id: int) -> list[PathMapping]:
        """Return the server's path mappings."""
        rows = self.conn.execute(
            "SELECT plex_prefix, local_prefix FROM path_mappings WHERE server_id = ? ORDER BY id",
            (server_id,),
        ).fetchall()
        return [PathMapping(plex_prefix=row[0], local_prefix=row[1]) for row in rows]

    # --- sync runs -----------------------------------------------------------------------------

    def start_run(
        self, server_id: int, library_id: int | None, deep: bool, now: int, kind: str = "library"
    ) -> int:
        """Record the start of a sync run ('library' or 'refresh') and return its id."""
        with self.transaction() as conn:
            row = conn.execute(
                """
                INSERT INTO sync_runs (server_id, library_id, kind, started_at, status, deep)
                VALUES (?, ?, ?, ?, ?, ?) RETURNING id
                """,
                (server_id, library_id, kind, now, RunStatus.RUNNING, int(deep)),
            ).fetchone()
        return int(row[0])

    def finish_run(
        self,
        run_id: int,
        status: RunStatus,
        counts: dict[str, int],
        error: str | None,
        now: int,
    ) -> None:
        """Record how a sync run ended."""
        with self.transaction() as conn:
            conn.execute(
                """
                UPDATE sync_runs SET finished_at = ?, status = ?, processed = ?, changed = ?,
                    skipped = ?, errors = ?, missing_promoted = ?, deleted_promoted = ?,
                    returned = ?, requests = ?, error = ?
                WHERE id = ?
                """,
                (
                    now,
                    status,
                    counts.get("processed", 0),
                    counts.get("changed", 0),
                    counts.get("skipped", 0),
                    counts.get("errors", 0),
                    counts.get("missing_promoted", 0),
                    counts.get("deleted_promoted", 0),
                    counts.get("returned", 0),
                    counts.get("requests", 0),
                    error,
                    run_id,
                ),
            )

    def fail_stale_runs(self, now: int) -> int:
        """Mark runs left 'running' by a crash as failed; return how many."""
        with self.transaction() as conn:
            cursor = conn.execute(
                "UPDATE sync_runs SET status = ?, finished_at = ?, "
                "error = 'interrupted' WHERE status = ?",
                (RunStatus.FAILED, now, RunStatus.RUNNING),
            )
        return cursor.rowcount

    # --- items (called inside `transaction()` by the sync) -----------------------------------

    def lookup(self, server_id: int, rating_keys: Sequence[str]) -> dict[str, StoredItem]:
        """Return the stored rows for some rating keys of a server."""
        found: dict[str, StoredItem] = {}
        for chunk in _chunks(rating_keys):
            for row in self.json_rows(
                "rating_key, id, library_id, kind, digest, state, children_hydrated, "
                "view_count, last_viewed_at, view_offset, viewed_leaf_count, "
                f"{_blob('source_digest')}",
                f"FROM items WHERE server_id = ? AND rating_key IN ({_in(len(chunk))})",
                (server_id, *chunk),
            ):
                found[row[0]] = StoredItem(
                    id=row[1],
                    library_id=row[2],
                    kind=row[3],
                    digest=row[4],
                    state=row[5],
                    children_hydrated=bool(row[6]),
                    watch=(row[7], row[8], row[9], row[10]),
                    source_digest=_unhex(row[11]),
                )
        return found

    def insert_items(self, rows: Sequence[Sequence[Any]], now: int, run_id: int) -> list[int]:
        """Insert new items (tuples in `_ITEM_COLUMNS` order); return their ids in order.

        Call inside `transaction()`: ids are handed out from the current maximum, which is
        safe because the transaction holds the only write lock.
        """
        if not rows:
            return []
        first = int(self.conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM items").fetchone()[0])
        ids = list(range(first, first + len(rows)))
        columns = ", ".join(_ITEM_COLUMNS)
        self.insert_rows(
            f"INSERT INTO items (id, {columns}, first_seen_at, last_seen_at, last_scan_at, "
            "changed_run_id)",
            len(_ITEM_COLUMNS) + 5,
            [
                (item_id, *row, now, now, now, run_id)
                for item_id, row in zip(ids, rows, strict=True)
            ],
        )
        return ids

    def stored_content(self, item_ids: Sequence[int]) -> dict[int, StoredContent]:
        """Return the stored columns, parts and GUIDs of some items (by item id)."""
        values: dict[int, tuple[Any, ...]] = {}
        parts: dict[int, list[tuple[Any, ...]]] = {}
        guids: dict[int, set[tuple[str, str, str]]] = {}
        item_columns = ", ".join(_ITEM_COLUMNS[:-1])
        for chunk in _chunks(item_ids):
            marks = _in(len(chunk))
            for item_id, *row, source in self.json_rows(
                f"id, {item_columns}, {_blob('source_digest')}",
                f"FROM items WHERE id IN ({marks})",
                chunk,
            ):
                values[item_id] = (*row, _unhex(source))
            for item_id, *row in sorted(
                self.json_rows(
                    f"item_id, {', '.join(_PART_COLUMNS[2:])}",
                    f"FROM parts WHERE item_id IN ({marks})",
                    chunk,
                ),
                key=itemgetter(0, 1, 2),
            ):
                parts.setdefault(item_id, []).append(tuple(row))
            for item_id, uri, provider, value in self.json_rows(
                "item_id, uri, provider, value", f"FROM guids WHERE item_id IN ({marks})", chunk
            ):
                guids.setdefault(item_id, set()).add((uri, provider, value))
        return {
            item_id: StoredContent(
                row, tuple(parts.get(item_id, ())), frozenset(guids.get(item_id, ()))
            )
            for item_id, row in values.items()
        }

    def update_items(
        self,
        rows: Sequence[tuple[int, Sequence[Any], Sequence[Any]]],
        now: int,
        run_id: int,
    ) -> None:
        """Rewrite changed items: content, state; a returning item loses its missing marks.

        Rows are (item id, values in `_ITEM_COLUMNS` order, the stored values as
        `stored_content` returns them). Only the columns whose value differs are written, so
        the indexes over columns that did not change are left alone.
        """
        groups: dict[tuple[int, ...], list[tuple[Any, ...]]] = {}
        for item_id, values, stored in rows:
            columns = tuple(
                index
                for index, (new, old) in enumerate(zip(values, stored, strict=True))
                if new != old or type(new) is not type(old)
            )
            groups.setdefault(columns, []).append((item_id, *(values[index] for index in columns)))
        for columns, params in groups.items():
            assignments = "".join(
                f"{_ITEM_COLUMNS[index]} = v.column{position}, "
                for position, index in enumerate(columns, start=2)
            )
            self.update_rows(
                f"{assignments}last_seen_at = ?, last_scan_at = ?, missing_since = NULL, "
                "deleted_at = NULL, changed_run_id = ?",
                len(columns) + 1,
                params,
                now,
                now,
                run_id,
            )

    def update_watch(
        self,
        rows: Sequence[tuple[int, tuple[int | None, int | None, int | None, int | None]]],
        now: int,
        run_id: int,
    ) -> None:
        """Store new watch state for items whose content did not change."""
        self.update_rows(
            "view_count = v.column2, last_viewed_at = v.column3, view_offset = v.column4, "
            "viewed_leaf_count = v.column5, last_seen_at = ?, changed_run_id = ?",
            5,
            [(item_id, *watch) for item_id, watch in rows],
            now,
            run_id,
        )

    def set_states(self, rows: Sequence[tuple[int, str]], now: int, run_id: int) -> None:
        """Set the state of unchanged items (a return from MISSING, or new path mappings)."""
        self.update_rows(
            "state = v.column2, last_seen_at = ?, missing_since = NULL, deleted_at = NULL, "
            "changed_run_id = ?",
            2,
            rows,
            now,
            run_id,
        )

    def replace_parts(self, item_ids: Sequence[int], rows: Iterable[Sequence[Any]]) -> None:
        """Remove the parts of `item_ids`, then insert `rows` (in `_PART_COLUMNS` order)."""
        self.delete_by_item("parts", item_ids)
        self.insert_rows(
            f"INSERT INTO parts ({', '.join(_PART_COLUMNS)})", len(_PART_COLUMNS), rows
        )

    def replace_guids(
        self, item_ids: Sequence[int], rows: Iterable[tuple[int, str, str, str]]
    ) -> None:
        """Remove the GUIDs of `item_ids`, then insert `rows`: (item_id, uri, provider, value)."""
        self.delete_by_item("guids", item_ids)
        self.insert_rows("INSERT OR IGNORE INTO guids (item_id, uri, provider, value)", 4, rows)

    def set_source_digests(self, rows: Sequence[tuple[int, bytes | None]]) -> None:
        """Store (item id, source digest) for rows whose content did not change."""
        self.update_rows("source_digest = v.column2", 2, rows)

    def set_digests(self, rows: Sequence[tuple[int, str]]) -> None:
        """Store (item id, content digest) for rows whose content did not change."""
        self.update_rows("digest = v.column2", 2, rows)

    def source_digests(
        self,
        library_id: int,
        kinds: Sequence[str],
        show_keys: Iterable[str] | None = None,
        *,
        hydrated_only: bool = False,
    ) -> dict[bytes, str]:
        """Return source digest → rating key of a library's present items of some kinds.

        With `show_keys`, only the seasons and episodes of those shows; with `hydrated_only`,
        only shows whose children are all stored.
        """
        sql = f"""
            FROM items
            WHERE library_id = ? AND kind IN ({_in(len(kinds))}) AND source_digest IS NOT NULL
              AND state IN ({_in(len(PRESENT_STATES))})
        """
        if hydrated_only:
            sql += " AND children_hydrated = 1"
        params: list[Any] = [library_id, *kinds, *PRESENT_STATES]
        if show_keys is not None:
            sql += " AND show_key IN (SELECT value FROM json_each(?))"
            params.append(_json_keys(show_keys))
        digests, keys = self.json_columns(("hex(source_digest)", "rating_key"), sql, params)
        return dict(zip(map(bytes.fromhex, digests), keys, strict=True))

    def set_children_hydrated(self, item_ids: Sequence[int], hydrated: bool) -> None:
        """Mark shows whose children are (or are no longer) completely stored."""
        self.update_rows("children_hydrated = ?", 1, [(item_id,) for item_id in item_ids], hydrated)

    def mark_hydrated(self, server_id: int, show_keys: Sequence[str]) -> None:
        """Mark the shows of some rating keys as having all their children stored."""
        self.conn.execute(
            "UPDATE items SET children_hydrated = 1 WHERE server_id = ? AND children_hydrated = 0 "
            "AND rating_key IN (SELECT value FROM json_each(?))",
            (server_id, _json_keys(show_keys)),
        )

    def record_errors(self, server_id: int, errors: Sequence[tuple[str, str]], now: int) -> None:
        """Count an error on the rows of some rating keys: (rating_key, message)."""
        self.conn.executemany(
            """
            UPDATE items SET error_count = error_count + 1, last_error_at = ?, last_error = ?
            WHERE server_id = ? AND rating_key = ?
            """,
            [(now, message[:500], server_id, rating_key) for rating_key, message in errors],
        )

    def parts_of_library(
        self, library_id: int, *, unless_run: int | None = None
    ) -> list[tuple[int, str, str | None]]:
        """Return (item id, state, plex path) of every part of present playable items, by item.

        With `unless_run`, items that run wrote are left out: their state is already current.
        Read as three columns in one step (see `json_rows`): a library's worth of rows, one
        step or one list each, would wait on the GIL per row or fill the collector's oldest
        generation.
        """
        ids, states, paths = self.json_columns(
            ("i.id", "i.state", "p.plex_path"),
            f"""
            FROM items AS i LEFT JOIN parts AS p ON p.item_id = i.id
            WHERE i.library_id = ? AND i.kind IN ('movie', 'episode')
              AND i.state IN ({_in(len(PRESENT_STATES))}) AND i.changed_run_id IS NOT ?
            """,
            (library_id, *PRESENT_STATES, unless_run),
        )
        return sorted(zip(ids, states, paths, strict=True), key=itemgetter(0))

    @contextmanager
    def _run_keys(
        self, seen_keys: Iterable[str], expanded_show_keys: Iterable[str]
    ) -> Iterator[None]:
        """Hold a run's seen keys and expanded shows in indexed temporary tables.

        Each is loaded by one statement from a JSON parameter; the queries then probe their
        primary keys (faster than one `IN (SELECT … json_each(?))` list per query).
        """
        conn = self.conn
        for table in ("run_seen", "run_expanded"):
            conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table} (rk TEXT PRIMARY KEY)")
        conn.execute(
            "INSERT OR IGNORE INTO temp.run_seen SELECT value FROM json_each(?)",
            (_json_keys(seen_keys),),
        )
        conn.execute(
            "INSERT OR IGNORE INTO temp.run_expanded SELECT value FROM json_each(?)",
            (_json_keys(expanded_show_keys),),
        )
        try:
            yield
        finally:
            conn.execute("DELETE FROM temp.run_seen")
            conn.execute("DELETE FROM temp.run_expanded")

    def missing_candidates(
        self, library_id: int, seen_keys: Iterable[str], expanded_show_keys: Iterable[str]
    ) -> list[str]:
        """Return present items a finished run did not see (what finalize would mark).

        Movies and shows count; seasons and episodes only under shows whose children were
        listed completely.
        """
        present = _in(len(PRESENT_STATES))
        with self._run_keys(seen_keys, expanded_show_keys):
            # Two indexed queries: an OR of both would scan the whole library.
            rows = self.conn.execute(
                f"""
                SELECT id, rating_key FROM items
                WHERE library_id = ? AND kind IN ('movie', 'show') AND state IN ({present})
                  AND rating_key NOT IN (SELECT rk FROM temp.run_seen)
                UNION ALL
                SELECT id, rating_key FROM items
                WHERE library_id = ? AND show_key IN (SELECT rk FROM temp.run_expanded)
                  AND kind IN ('season', 'episode') AND state IN ({present})
                  AND rating_key NOT IN (SELECT rk FROM temp.run_seen)
                """,
                (library_id, *PRESENT_STATES, library_id, *PRESENT_STATES),
            ).fetchall()
        # Sorted here: with ORDER BY, SQLite scans the whole table in id order instead.
        return [row[1] for row in sorted(rows)]

    def finalize_library(
        self,
        library_id: int,
        seen_keys: Iterable[str],
        expanded_show_keys: Iterable[str],
        now: int,
        retention_seconds: int,
        run_id: int,
        *,
        mark_missing: bool = True,
    ) -> tuple[int, int]:
        """Mark unseen items MISSING and old MISSING ones DELETED; return both counts.

        Movies and shows are judged against the whole listing. Seasons and episodes are judged
        only where their show's children were listed completely, or where the show itself is
        gone. Call this only after a listing that completed fully.
        """
        conn = self.conn
        missing = 0
        if mark_missing:
            with self._run_keys(seen_keys, expanded_show_keys):
                missing = self._mark_missing(library_id, now, run_id)
        deleted = conn.execute(
            """
            UPDATE items SET state = 'DELETED', deleted_at = ?, changed_run_id = ?
            WHERE library_id = ? AND kind IN ('movie', 'show', 'season', 'episode')
              AND state = 'MISSING' AND missing_since <= ?
            """,
            (now, run_id, library_id, now - retention_seconds),
        ).rowcount
        return missing, deleted

    def _mark_missing(self, library_id: int, now: int, run_id: int) -> int:
        conn = self.conn
        present = _in(len(PRESENT_STATES))
        # A show or season of which this run saw a child exists, whatever its own listing
        # said: it is never marked MISSING (no MISSING parent with a present child).
        missing = conn.execute(
            f"""
            UPDATE items SET state = 'MISSING', missing_since = ?, changed_run_id = ?,
                children_hydrated = 0
            WHERE library_id = ? AND kind IN ('movie', 'show') AND state IN ({present})
              AND rating_key NOT IN (SELECT rk FROM temp.run_seen)
              AND NOT EXISTS (
                  SELECT 1 FROM items AS c
                  WHERE c.library_id = items.library_id AND c.show_key = items.rating_key
                    AND c.rating_key IN (SELECT rk FROM temp.run_seen))
            """,
            (now, run_id, library_id, *PRESENT_STATES),
        ).rowcount
        missing += conn.execute(
            f"""
            UPDATE items SET state = 'MISSING', missing_since = ?, changed_run_id = ?
            WHERE library_id = ? AND kind IN ('season', 'episode') AND state IN ({present})
              AND rating_key NOT IN (SELECT rk FROM temp.run_seen)
              AND (show_key IN (SELECT rk FROM temp.run_expanded)
                   OR show_key IS NULL
                   OR show_key IN (SELECT rating_key FROM items
                                   WHERE library_id = ? AND kind = 'show'
                                     AND state IN ('MISSING', 'DELETED')))
              AND NOT (kind = 'season' AND EXISTS (
                  SELECT 1 FROM items AS c
                  WHERE c.library_id = items.library_id AND c.show_key = items.show_key
                    AND c.kind = 'episode' AND c.parent_rating_key = items.rating_key
                    AND c.rating_key IN (SELECT rk FROM temp.run_seen)))
            """,
            (now, run_id, library_id, *PRESENT_STATES, library_id),
        ).rowcount
        return missing

    def drifted_shows(self, library_id: int) -> dict[str, tuple[int, int, int]]:
        """Return the present shows that `policy.drifted` picks, in one query.

        Maps each to its (childCount, leafCount, present episodes stored). Each show's count
        comes from the (library, show, kind, state) index alone.
        """
        present = _in(len(PRESENT_STATES))
        rows = self.conn.execute(
            f"""
            SELECT rating_key, child_count, leaf_count, episodes FROM (
                SELECT s.rating_key, s.child_count, s.leaf_count, (
                    SELECT COUNT(*) FROM items AS e
                    WHERE e.library_id = s.library_id AND e.show_key = s.rating_key
                      AND e.kind = 'episode' AND e.state IN ({present})) AS episodes
                FROM items AS s
                WHERE s.library_id = ? AND s.kind = 'show' AND s.children_hydrated = 1
                  AND s.state IN ({present}))
            WHERE COALESCE(leaf_count, 0) != episodes
            """,
            (*PRESENT_STATES, library_id, *PRESENT_STATES),
        ).fetchall()
        return {
            str(key): (int(child or 0), int(leaf or 0), int(episodes))
            for key, child, leaf, episodes in rows
        }

    def short_shows(self, library_id: int, show_keys: Iterable[str]) -> dict[str, str]:
        """Return shows holding fewer present seasons or episodes than their own counts.

        Maps each such show's rating key to what it holds against what Plex counts.
        """
        present = _in(len(PRESENT_STATES))
        found: dict[str, str] = {}
        for chunk in _chunks(list(show_keys)):
            for key, child, leaf, seasons, episodes in self.conn.execute(
                f"""
                SELECT s.rating_key, COALESCE(s.child_count, 0), COALESCE(s.leaf_count, 0),
                    (SELECT COUNT(*) FROM items AS c WHERE c.library_id = s.library_id
                       AND c.show_key = s.rating_key AND c.kind = 'season'
                       AND c.state IN ({present})),
                    (SELECT COUNT(*) FROM items AS c WHERE c.library_id = s.library_id
                       AND c.show_key = s.rating_key AND c.kind = 'episode'
                       AND c.state IN ({present}))
                FROM items AS s
                WHERE s.library_id = ? AND s.kind = 'show'
                  AND s.rating_key IN ({_in(len(chunk))})
                """,
                (*PRESENT_STATES, *PRESENT_STATES, library_id, *chunk),
            ):
                if seasons < child or episodes < leaf:
                    found[str(key)] = (
                        f"expansion returned {seasons} of {child} seasons and "
                        f"{episodes} of {leaf} episodes"
                    )
        return found

    def show_counts(self, library_id: int, show_key: str) -> tuple[int, int]:
        """Return a stored show's (childCount, leafCount); zeros for a show not stored."""
        row = self.conn.execute(
            "SELECT COALESCE(child_count, 0), COALESCE(leaf_count, 0) FROM items "
            "WHERE library_id = ? AND rating_key = ? AND kind = 'show'",
            (library_id, show_key),
        ).fetchone()
        return (0, 0) if row is None else (int(row[0]), int(row[1]))

    def present_children(self, server_id: int, rating_keys: Sequence[str]) -> dict[str, list[str]]:
        """Return the present seasons and episodes of some shows and seasons (→ their keys)."""
        found: dict[str, list[str]] = {}
        present = _in(len(PRESENT_STATES))
        for chunk in _chunks(rating_keys):
            marks = _in(len(chunk))
            rows = self.conn.execute(
                f"""
                SELECT p.rating_key, c.rating_key FROM items AS p
                JOIN items AS c ON c.library_id = p.library_id
                  AND c.show_key = CASE p.kind WHEN 'show' THEN p.rating_key ELSE p.show_key END
                  AND (p.kind = 'show' OR c.parent_rating_key = p.rating_key)
                  AND c.kind IN ('season', 'episode') AND c.state IN ({present})
                WHERE p.server_id = ? AND p.kind IN ('show', 'season')
                  AND p.rating_key IN ({marks})
                """,
                (*PRESENT_STATES, server_id, *chunk),
            ).fetchall()
            for parent, child in rows:
                found.setdefault(str(parent), []).append(str(child))
        return found

    def mark_missing_ids(self, item_ids: Sequence[int], now: int, run_id: int) -> int:
        """Mark present items MISSING (Plex confirmed each gone); return how many changed."""
        changed = 0
        present = _in(len(PRESENT_STATES))
        for chunk in _chunks(item_ids):
            changed += self.conn.execute(
                f"""
                UPDATE items SET state = 'MISSING', missing_since = ?, changed_run_id = ?,
                    children_hydrated = 0
                WHERE id IN ({_in(len(chunk))}) AND state IN ({present})
                """,
                (now, run_id, *chunk, *PRESENT_STATES),
            ).rowcount
        return changed

    def log_activity(
        self,
        server_id: int,
        rows: Sequence[tuple[int, str, str, str | None, str, str | None]],
    ) -> None:
        """Append live-update records: (at, source, event, rating key, outcome, detail)."""
        with self.transaction() as conn:
            conn.executemany(
                "INSERT INTO activity (server_id, at, source, event, rating_key, outcome, detail) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(server_id, *row) for row in rows],
            )

    def prune_activity(self, older_than: int) -> int:
        """Delete live-update records from before `older_than`; return how many."""
        with self.transaction() as conn:
            return conn.execute("DELETE FROM activity WHERE at < ?", (older_than,)).rowcount

    def revive_parents(self, library_id: int, now: int, run_id: int) -> int:
        """Make MISSING or DELETED shows and seasons with a present child ACTIVE; return how many.

        Plex listed the child under its parent, so the parent exists. Call it in the
        transaction that stores children, so the catalog never holds a MISSING parent with
        a present child between two statements a reader can see.
        """
        present = _in(len(PRESENT_STATES))
        return self.conn.execute(
            f"""
            UPDATE items SET state = 'ACTIVE', missing_since = NULL, deleted_at = NULL,
                last_seen_at = ?, changed_run_id = ?
            WHERE library_id = ? AND kind IN ('show', 'season')
              AND state IN ('MISSING', 'DELETED')
              AND EXISTS (
                  SELECT 1 FROM items AS c
                  WHERE c.library_id = items.library_id
                    AND c.show_key = CASE items.kind WHEN 'show' THEN items.rating_key
                                                     ELSE items.show_key END
                    AND (items.kind = 'show' OR c.parent_rating_key = items.rating_key)
                    AND c.kind IN ('season', 'episode') AND c.state IN ({present}))
            """,
            (now, run_id, library_id, *PRESENT_STATES),
        ).rowcount

    def invariant_violations(self) -> list[str]:
        """Return what breaks the catalog's promises (empty when all hold).

        No MISSING or DELETED show or season has a present child; every part belongs to an
        item of its server; no foreign key dangles (GUIDs included); no run is left `running`.
        """
        present = _in(len(PRESENT_STATES))
        problems = [
            f"{kind} {rating_key} is {state} but has a present child {child}"
            for kind, rating_key, state, child in self.conn.execute(
                f"""
                SELECT p.kind, p.rating_key, p.state, c.rating_key FROM items AS p
                JOIN items AS c ON c.library_id = p.library_id
                 AND c.show_key = CASE p.kind WHEN 'show' THEN p.rating_key ELSE p.show_key END
                 AND (p.kind = 'show' OR c.parent_rating_key = p.rating_key)
                 AND c.kind IN ('season', 'episode') AND c.state IN ({present})
                WHERE p.kind IN ('show', 'season') AND p.state IN ('MISSING', 'DELETED')
                """,
                PRESENT_STATES,
            )
        ]
        problems += [
            f"part {part_id} does not belong to an item of its server"
            for (part_id,) in self.conn.execute(
                """
                SELECT p.id FROM parts AS p LEFT JOIN items AS i ON i.id = p.item_id
                WHERE i.id IS NULL OR i.server_id != p.server_id
                """
            )
        ]
        problems += [
            f"foreign key of {table} row {rowid} dangles ({parent})"
            for table, rowid, parent, _ in self.conn.execute("PRAGMA foreign_key_check")
        ]
        problems += [
            f"sync run {run_id} is still running"
            for (run_id,) in self.conn.execute("SELECT id FROM sync_runs WHERE status = 'running'")
        ]
        return problems

    def mark_library_synced(
        self,
        library_id: int,
        now: int,
        *,
        complete: bool,
        deep: bool,
        mappings_digest: str | None,
        full_listing: bool = True,
        light_since: int | None = None,
    ) -> None:
        """Record when a library was last synced (completely, deeply, listed in full).

        `light_since` (the server's clock when a complete run began) becomes where the next
        light run's window starts; None leaves it as it was.
        """
        self.conn.execute(
            """
            UPDATE libraries SET last_synced_at = ?,
                last_complete_sync_at = CASE WHEN ? THEN ? ELSE last_complete_sync_at END,
                last_deep_sync_at = CASE WHEN ? THEN ? ELSE last_deep_sync_at END,
                mappings_digest = CASE WHEN ? THEN ? ELSE mappings_digest END,
                last_full_listing_at = CASE WHEN ? THEN ? ELSE last_full_listing_at END,
                light_since = CASE WHEN ? THEN ? ELSE light_since END
            WHERE id = ?
            """,
            (
                now,
                complete,
                now,
                complete and deep,
                now,
                complete,
                mappings_digest,
                complete and full_listing,
                now,
                complete and light_since is not None,
                light_since,
                library_id,
            ),
        )

    def watermark(self, library_id: int, kinds: Sequence[str]) -> int | None:
        """Return the newest Plex `updatedAt` among a library's items of some kinds."""
        # One indexed MAX per kind (an IN over kinds would scan).
        newest = [
            self.conn.execute(
                "SELECT MAX(updated_at_plex) FROM items WHERE library_id = ? AND kind = ?",
                (library_id, kind),
            ).fetchone()[0]
            for kind in kinds
        ]
        found = [int(value) for value in newest if value is not None]
        return max(found) if found else None

    def show_totals(self, library_id: int) -> tuple[int, int]:
        """Return the seasons and episodes Plex reported for a library's present shows."""
        row = self.conn.execute(
            f"SELECT COALESCE(SUM(child_count), 0), COALESCE(SUM(leaf_count), 0) FROM items "
            f"WHERE library_id = ? AND kind = 'show' AND state IN ({_in(len(PRESENT_STATES))})",
            (library_id, *PRESENT_STATES),
        ).fetchone()
        return int(row[0]), int(row[1])

    def present_count(self, library_id: int, kinds: Sequence[str] = ITEM_KINDS) -> int:
        """Return how many items of some kinds (default: all) a library holds present."""
        row = self.conn.execute(
            f"SELECT COUNT(*) FROM items WHERE library_id = ? AND kind IN ({_in(len(kinds))}) "
            f"AND state IN ({_in(len(PRESENT_STATES))})",
            (library_id, *kinds, *PRESENT_STATES),
        ).fetchone()
        return int(row[0])

    # --- reads -------------------------------------------------------------------------------

    def purge_deleted(self, older_than: int) -> int:
        """Remove DELETED items deleted before `older_than`; return how many."""
        with self.transaction() as conn:
            cursor = conn.execute(
                "DELETE FROM items WHERE state = 'DELETED' AND deleted_at < ?", (older_than,)
            )
        return cursor.rowcount


def _json_keys(keys: Iterable[str]) -> str:
    """Pass a set of keys as one parameter (`IN (SELECT value FROM json_each(?))`)."""
    return json.dumps(list(keys), ensure_ascii=False)


def _mapping_row(server_id: int, mapping: PathMapping) -> tuple[Any, ...]:
    """Validate a mapping and precompute what the `part_paths` view resolves it with in SQL."""
    columns = view_columns(mapping)
    return (
        server_id,
        columns.plex_prefix,
        columns.local_prefix,
        columns.match_prefix,
        int(columns.fold_case),
        columns.local_base,
        columns.local_sep,
    )


# What `Catalog.call` runs: code of this package only.
_STORE_PACKAGE: Final = __name__.rpartition(".")[0] + "."

type StoreCall[**P, T] = Callable[Concatenate[CatalogStore, P], T]


class Catalog:
    """Asyncio access to a `CatalogStore` on its own worker thread."""

    def __init__(self, store: CatalogStore, executor: ThreadPoolExecutor) -> None:
        """Wrap an open store; use `Catalog.open`."""
        self._store = store
        self._executor = executor
        self._closed = False
        # Runs found `running` when the file was opened: cut off by a crash or a kill.
        self.interrupted_runs = 0

    @classmethod
    async def open(cls, path: str | Path) -> Catalog:
        """Open the catalog file on a new worker thread."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="retrovue_catalog")
        loop = asyncio.get_running_loop()
        try:
            store = await loop.run_in_executor(executor, CatalogStore, path)
        except BaseException:
            await loop.run_in_executor(None, executor.shutdown)
            raise
        catalog = cls(store, executor)
        # Nothing syncs before this returns: a run still marked running was cut off.
        catalog.interrupted_runs = await catalog.call(
            CatalogStore.fail_stale_runs, int(time.time())
        )
        return catalog

    @property
    def path(self) -> Path:
        """Return the catalog file's path."""
        return self._store.path

    async def call[**P, T](self, fn: StoreCall[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn(store, *args, **kwargs)` on the worker thread; SQLite errors as CatalogError.

        TypeError if `fn` is not the store's own code (see the module's docstring).
        """
        if not getattr(fn, "__module__", "").startswith(_STORE_PACKAGE):
            raise TypeError(f"not an operation of the catalog store: {fn!r}")
        return await self._submit(fn, *args, **kwargs)

    async def _submit[**P, T](self, fn: StoreCall[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run any `fn(store, ...)` on the worker (the store's own code, or a test's probe)."""
        if self._closed:
            raise CatalogError("the catalog is closed")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self._executor, lambda: fn(self._store, *args, **kwargs)
            )
        except sqlite3.Error as err:
            raise CatalogError(f"{err.__class__.__name__}: {err}") from err

    async def close(self) -> None:
        """Close the file and stop the worker thread."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, self._store.close)
        finally:
            # Joining the worker blocks, so it happens on a helper thread, not on the loop.
            await asyncio.to_thread(self._executor.shutdown, wait=True)
