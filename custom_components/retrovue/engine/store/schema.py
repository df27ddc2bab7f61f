"""Catalog schema, migrations by `PRAGMA user_version`, and the read views for other tools.

See SCHEMA.md beside this file for the tables, states and transitions.
"""

from __future__ import annotations

from collections.abc import Callable
import sqlite3
from typing import Final

# --- version 1: the catalog tables ----------------------------------------------------------

_V1: Final = """
CREATE TABLE servers (
    id                  INTEGER PRIMARY KEY,
    machine_identifier  TEXT NOT NULL UNIQUE,
    name                TEXT,
    version             TEXT,
    url                 TEXT,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);

CREATE TABLE libraries (
    id                      INTEGER PRIMARY KEY,
    server_id               INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    section_key             TEXT NOT NULL,
    uuid                    TEXT,
    type                    TEXT NOT NULL,
    title                   TEXT NOT NULL,
    agent                   TEXT,
    locations               TEXT NOT NULL DEFAULT '[]',
    plex_updated_at         INTEGER,
    plex_scanned_at         INTEGER,
    present                 INTEGER NOT NULL DEFAULT 1,
    first_seen_at           INTEGER NOT NULL,
    last_synced_at          INTEGER,
    last_complete_sync_at   INTEGER,
    last_deep_sync_at       INTEGER,
    mappings_digest         TEXT,
    UNIQUE (server_id, section_key)
);

CREATE TABLE items (
    id                      INTEGER PRIMARY KEY,
    server_id               INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    library_id              INTEGER NOT NULL REFERENCES libraries(id) ON DELETE CASCADE,
    rating_key              TEXT NOT NULL,
    kind                    TEXT NOT NULL
                            CHECK (kind IN ('movie', 'show', 'season', 'episode')),
    show_key                TEXT,
    parent_rating_key       TEXT,
    grandparent_rating_key  TEXT,
    title                   TEXT NOT NULL,
    parent_title            TEXT,
    grandparent_title       TEXT,
    year                    INTEGER,
    index_number            INTEGER,
    parent_index            INTEGER,
    guid                    TEXT,
    duration                INTEGER,
    added_at                INTEGER,
    updated_at_plex         INTEGER,
    originally_available_at TEXT,
    child_count             INTEGER,
    leaf_count              INTEGER,
    view_count              INTEGER,
    last_viewed_at          INTEGER,
    view_offset             INTEGER,
    viewed_leaf_count       INTEGER,
    state                   TEXT NOT NULL CHECK (state IN
                            ('ACTIVE', 'REMOTE_ONLY', 'UNAVAILABLE', 'MISSING', 'DELETED')),
    digest                  TEXT NOT NULL,
    children_hydrated       INTEGER NOT NULL DEFAULT 0,
    first_seen_at           INTEGER NOT NULL,
    last_seen_at            INTEGER NOT NULL,
    last_scan_at            INTEGER NOT NULL,
    missing_since           INTEGER,
    deleted_at              INTEGER,
    error_count             INTEGER NOT NULL DEFAULT 0,
    last_error_at           INTEGER,
    last_error              TEXT,
    UNIQUE (server_id, rating_key)
);
CREATE INDEX items_library_kind_state ON items (library_id, kind, state);
CREATE INDEX items_library_show ON items (library_id, show_key);
CREATE INDEX items_title ON items (title COLLATE NOCASE);

CREATE TABLE parts (
    id                  INTEGER PRIMARY KEY,
    item_id             INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    server_id           INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    media_index         INTEGER NOT NULL,
    part_index          INTEGER NOT NULL,
    media_id            TEXT,
    part_id             TEXT,
    part_key            TEXT,
    plex_path           TEXT,
    size                INTEGER,
    duration            INTEGER,
    container           TEXT,
    video_codec         TEXT,
    audio_codec         TEXT,
    audio_channels      INTEGER,
    video_resolution    TEXT,
    width               INTEGER,
    height              INTEGER,
    bitrate             INTEGER
);
CREATE INDEX parts_item ON parts (item_id);
CREATE INDEX parts_server_path ON parts (server_id, plex_path);

CREATE TABLE guids (
    item_id     INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    uri         TEXT NOT NULL,
    provider    TEXT NOT NULL,
    value       TEXT NOT NULL,
    PRIMARY KEY (item_id, uri)
) WITHOUT ROWID;
CREATE INDEX guids_lookup ON guids (provider, value);

CREATE TABLE path_mappings (
    id              INTEGER PRIMARY KEY,
    server_id       INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    plex_prefix     TEXT NOT NULL,
    local_prefix    TEXT NOT NULL,
    match_prefix    TEXT NOT NULL,
    fold_case       INTEGER NOT NULL,
    local_base      TEXT NOT NULL,
    local_sep       TEXT NOT NULL,
    UNIQUE (server_id, match_prefix)
);

CREATE TABLE sync_runs (
    id                  INTEGER PRIMARY KEY,
    server_id           INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    library_id          INTEGER REFERENCES libraries(id) ON DELETE CASCADE,
    kind                TEXT NOT NULL DEFAULT 'library',
    started_at          INTEGER NOT NULL,
    finished_at         INTEGER,
    status              TEXT NOT NULL CHECK (status IN ('running', 'ok', 'failed')),
    deep                INTEGER NOT NULL DEFAULT 0,
    processed           INTEGER NOT NULL DEFAULT 0,
    changed             INTEGER NOT NULL DEFAULT 0,
    skipped             INTEGER NOT NULL DEFAULT 0,
    errors              INTEGER NOT NULL DEFAULT 0,
    missing_promoted    INTEGER NOT NULL DEFAULT 0,
    deleted_promoted    INTEGER NOT NULL DEFAULT 0,
    returned            INTEGER NOT NULL DEFAULT 0,
    requests            INTEGER NOT NULL DEFAULT 0,
    error               TEXT
);
CREATE INDEX sync_runs_library ON sync_runs (library_id, started_at);
"""

# --- version 2: a change feed for readers ---------------------------------------------------

_V2: Final = """
ALTER TABLE items ADD COLUMN changed_run_id INTEGER;
CREATE INDEX items_changed_run ON items (changed_run_id);
"""

# --- version 3: drop an index no query can use ------------------------------------------------

# Title searches are substring matches (LIKE '%…%'), which never use a title index; keeping it
# only slowed every insert.
_V3: Final = """
DROP INDEX IF EXISTS items_title;
"""

# --- version 4: when a library was last listed in full -------------------------------------

_V4: Final = """
ALTER TABLE libraries ADD COLUMN last_full_listing_at INTEGER;
"""

# --- version 5: a digest of the entry as Plex sent it; indexes for light runs ---------------

# `source_digest` lets a full listing skip unchanged entries before parsing them (see
# engine/sync/). The updatedAt index answers a run's watermark without a scan; the wider
# show index counts a show's present episodes (drift check) from the index alone.
_V5: Final = """
ALTER TABLE items ADD COLUMN source_digest BLOB;
CREATE INDEX items_library_kind_updated ON items (library_id, kind, updated_at_plex);
DROP INDEX items_library_show;
CREATE INDEX items_library_show ON items (library_id, show_key, kind, state);
"""

# --- version 6: light runs anchored on the server's clock --------------------------------------
# `light_since`: the server's clock (its `Date` header) when the last successful run began.
# Light runs list what Plex updated since then (minus a margin), not since the newest stored
# `updatedAt`: many items sharing one recent `updatedAt` (after "refresh all metadata") are
# listed once, not by every run, and a failed run never moves the window past changes it did
# not store.
_V6: Final = """
ALTER TABLE libraries ADD COLUMN light_since INTEGER;
"""

# --- version 7: what live updates (websocket notifications, webhooks) did ------------------

_V7: Final = """
CREATE TABLE activity (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    server_id   INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    source      TEXT NOT NULL CHECK (source IN ('websocket', 'webhook')),
    event       TEXT NOT NULL,
    rating_key  TEXT,
    outcome     TEXT NOT NULL,
    detail      TEXT
);
CREATE INDEX activity_at ON activity (at);
CREATE INDEX activity_server ON activity (server_id, at)
"""

# --- version 8: each item's state changes; library counts from an index ---------------------

# `item_history`: one row per change of `items.state`, written by a trigger so that every write
# path (page writes, `set_states`, marking MISSING, promotion to DELETED, reviving parents,
# targeted refreshes) records it. The time is the run's clock as the writing statement sets it:
# every UPDATE of `state` also sets `missing_since` (→ MISSING), `deleted_at` (→ DELETED) or
# `last_seen_at` (→ a present state) to the run's `now`, and `changed_run_id` to its run
# (`last_seen_at` is NOT NULL, so a row always gets a time). Inserts write no row: the item's
# `first_seen_at` and its state are where its history starts. Rows go with their item (ON
# DELETE CASCADE; the index serves the cascade as well as an item's latest change).
#
# `items_library_kind_state` gains `view_count`: `library_counts` then reads that index alone
# (SEARCH i USING COVERING INDEX items_library_kind_state (library_id=? AND kind=? AND
# state=?) per count). The index is replaced, not added: a cold sync writes as many.
#
# No index for the panel's queries (browse.py) themselves. At bench workload L (137,816
# items, 118,991 parts, 378,997 GUIDs), with the plans SQLite chose:
#   first page by title (kind IN movie/show/episode, ORDER BY title COLLATE NOCASE, id
#     LIMIT 100): ~35 ms, SCAN items + USE TEMP B-TREE FOR ORDER BY (a top-100 sorter); its
#     count ~14 ms, SCAN items USING COVERING INDEX. An index on (title COLLATE NOCASE) could
#     save at most that scan and would cost every insert of a cold sync (version 3 dropped one).
#   by year, show, since: 35-80 ms, the same plan; by size: ~150 ms (a correlated SUM over
#     parts_item per row).
#   a state in some libraries: SEARCH items USING INDEX items_library_kind_state
#     (library_id=? AND kind=? AND state=?); MISSING ones in about a millisecond.
#   substring search over titles, shows and paths: ~90 ms, SCAN items + LIST SUBQUERY (SCAN
#     parts), page and count in one statement.
#   duplicated external ids: ~65 ms, SCAN items USING COVERING INDEX items_library_kind_state,
#     SEARCH guids USING PRIMARY KEY (item_id=?); then SEARCH guids USING COVERING INDEX
#     guids_lookup (provider=? AND value=?) for the shared ones.
#   whether a folder holds a present file: SEARCH parts USING INDEX parts_server_path
#     (server_id=? AND plex_path>? AND plex_path<?).
_V8: Final = (
    """
CREATE TABLE item_history (
    item_id     INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    at          INTEGER NOT NULL,
    state       TEXT NOT NULL,
    previous    TEXT,
    run_id      INTEGER
)
""",
    "CREATE INDEX item_history_item ON item_history (item_id, at)",
    "DROP INDEX items_library_kind_state",
    "CREATE INDEX items_library_kind_state ON items (library_id, kind, state, view_count)",
    """
CREATE TRIGGER items_state_history AFTER UPDATE OF state ON items
WHEN OLD.state IS NOT NEW.state
BEGIN
    INSERT INTO item_history (item_id, at, state, previous, run_id)
    VALUES (
        NEW.id,
        COALESCE(
            CASE NEW.state WHEN 'MISSING' THEN NEW.missing_since
                           WHEN 'DELETED' THEN NEW.deleted_at END,
            NEW.last_seen_at),
        NEW.state,
        OLD.state,
        NEW.changed_run_id);
END
""",
)

# --- views (recreated on every open, so they always match the code) -------------------------


def _components(text: str, *, escape: bool) -> str:
    r"""Return SQL rewriting `/`-separated `text` as `/c1/…/cn` (empty if nothing is left).

    Empty and `.` components are dropped with a fixed number of replace() calls: each `/`
    becomes the marker pair `\<\>`, a `.` component (`\>.\<`) is emptied, an empty component
    (`\>\<`) disappears, and each pair left is one `/` again. With `escape`, backslashes in the
    text are written as `\e` first (and restored last) so no marker can occur in it; without,
    the text must hold no backslash.
    """
    sql = f"'/' || {text} || '/'"
    if escape:
        sql = f"replace({sql}, '\\', '\\e')"
    sql = f"replace({sql}, '/', '\\<\\>')"
    sql = f"replace({sql}, '\\>.\\<', '\\>\\<')"
    sql = f"replace({sql}, '\\>\\<', '')"
    sql = f"replace({sql}, '\\<\\>', '/')"
    if escape:
        sql = f"replace({sql}, '\\e', '\\')"
    return f"rtrim({sql}, '/')"


_PATH: Final = "p.plex_path"
# A POSIX path as components; a drive or UNC path's components after its first two characters;
# a POSIX remainder split again on backslashes (for a Windows local prefix).
_POSIX_COMPONENTS: Final = _components(_PATH, escape=True)
_WINDOWS_COMPONENTS: Final = _components(f"replace(substr({_PATH}, 3), '\\', '/')", escape=False)
_REST_AS_WINDOWS: Final = _components(
    "replace(substr(x.posix_key, length(m.match_prefix) + 2), '\\', '/')", escape=False
)

# The rules are engine/paths.py's (its docstring lists them); tests/reliability checks that the
# two agree on every input. Plain SQL only: other tools read this view with a stock sqlite3.
#
# `x` gives each part two keys: `posix_key`, its components as a POSIX path (`/a/b`, empty for
# `/`), and `windows_key`, as a drive (`D:/a`, `D:` for `D:\`) or UNC (`//srv/share/a`) path
# with `/` separators; NULL when the path is not of that style or holds NUL. Paths without
# `//`, `/.` or a trailing `/` are already POSIX keys. DISTINCT is a no-op (rows carry p.id)
# that stops SQLite from flattening `x` into the outer query, which would compute a key once
# per use instead of once per part; WHERE terms on its columns are still pushed into it.
#
# A mapping matches when its `match_prefix` (ASCII-lowered for a Windows-style Plex prefix,
# compared NOCASE: never lower(), which an ICU build folds beyond ASCII) is the key or the
# key's leading components; the longest `match_prefix` wins, ties by its text. `r.rest` is the
# remainder after it, `/`-separated (`r` has no FROM, so it is never flattened either: the
# remainder is computed once per row). It is refused (NULL) when a component is `..` or, for a
# Windows local prefix, when a component is made only of dots and spaces; only a remainder with
# `/.` or `/ ` can hold such a component.
_PART_PATHS: Final = f"""
CREATE VIEW part_paths AS
SELECT
    x.part_row_id,
    x.item_id,
    x.server_id,
    x.part_id,
    x.plex_path,
    x.size,
    m.plex_prefix AS mapped_plex_prefix,
    (
        SELECT CASE
            WHEN r.rest IS NULL THEN NULL
            WHEN r.rest = '' THEN m.local_prefix
            WHEN m.local_sep = '/' THEN
                CASE WHEN instr('/' || r.rest || '/', '/../') > 0 THEN NULL
                     ELSE m.local_base || '/' || r.rest END
            WHEN (instr('/' || r.rest, '/.') > 0 OR instr('/' || r.rest, '/ ') > 0)
                AND instr(replace(replace('/' || r.rest || '/', '.', ''), ' ', ''), '//') > 0
                THEN NULL
            ELSE m.local_base || '\\' || replace(r.rest, '/', '\\')
        END
        FROM (
            SELECT CASE
                WHEN m.id IS NULL THEN NULL
                WHEN m.fold_case THEN substr(x.windows_key, length(m.match_prefix) + 2)
                WHEN m.local_sep = '/' OR instr(x.posix_key, '\\') = 0
                    THEN substr(x.posix_key, length(m.match_prefix) + 2)
                ELSE substr({_REST_AS_WINDOWS}, 2)
            END AS rest
        ) AS r
    ) AS local_path
FROM (
    SELECT DISTINCT
        p.id AS part_row_id,
        p.item_id,
        p.server_id,
        p.part_id,
        p.plex_path,
        p.size,
        CASE
            WHEN NOT {_PATH} GLOB '/*' OR instr({_PATH}, char(0)) > 0 THEN NULL
            WHEN instr({_PATH}, '//') = 0 AND instr({_PATH}, '/.') = 0
                AND {_PATH} NOT GLOB '*/' THEN {_PATH}
            ELSE {_POSIX_COMPONENTS}
        END AS posix_key,
        CASE
            WHEN instr({_PATH}, char(0)) > 0 THEN NULL
            WHEN {_PATH} GLOB '[A-Za-z]:[\\/]*'
                THEN substr({_PATH}, 1, 2) || {_WINDOWS_COMPONENTS}
            WHEN {_PATH} GLOB '[\\/][\\/]*'
                AND NOT {_PATH} GLOB '[\\/][\\/][.?]'
                AND NOT {_PATH} GLOB '[\\/][\\/][.?][\\/]*'
                THEN '/' || {_WINDOWS_COMPONENTS}
        END AS windows_key
    FROM parts AS p
) AS x
LEFT JOIN path_mappings AS m ON m.id = (
    SELECT m2.id FROM path_mappings AS m2
    WHERE m2.server_id = x.server_id
      AND CASE WHEN m2.fold_case
            THEN substr(x.windows_key || '/', 1, length(m2.match_prefix) + 1)
                 = (m2.match_prefix || '/') COLLATE NOCASE
            ELSE substr(x.posix_key || '/', 1, length(m2.match_prefix) + 1)
                 = m2.match_prefix || '/'
          END
    ORDER BY length(m2.match_prefix) DESC, m2.match_prefix
    LIMIT 1
)
"""

# `library_counts` counts each library from the (library, kind, state, view_count) index alone,
# one index range per column: 17 ms at L, where one pass over the library's rows with
# SUM(CASE …) took 102 ms (SEARCH items USING INDEX items_library_kind_updated, then every row).
VIEWS: Final = (
    r"""
DROP VIEW IF EXISTS part_paths;
DROP VIEW IF EXISTS catalog_items;
DROP VIEW IF EXISTS library_counts;
"""
    + _PART_PATHS
    + ";\n"
    + r"""
CREATE VIEW catalog_items AS
SELECT
    s.machine_identifier,
    s.name AS server_name,
    l.section_key,
    l.title AS library_title,
    i.*,
    CASE WHEN i.state IN ('ACTIVE', 'REMOTE_ONLY', 'UNAVAILABLE')
              AND l.last_complete_sync_at > i.last_seen_at
         THEN l.last_complete_sync_at ELSE i.last_seen_at END AS confirmed_at
FROM items AS i
JOIN libraries AS l ON l.id = i.library_id
JOIN servers AS s ON s.id = i.server_id;

CREATE VIEW library_counts AS
SELECT
    l.id AS library_id,
    l.server_id,
    l.section_key,
    l.title,
    l.type,
    (SELECT COUNT(*) FROM items AS i WHERE i.library_id = l.id
       AND i.kind IN ('movie', 'episode') AND i.state = 'ACTIVE') AS active,
    (SELECT COUNT(*) FROM items AS i WHERE i.library_id = l.id
       AND i.kind IN ('movie', 'episode') AND i.state = 'REMOTE_ONLY') AS remote_only,
    (SELECT COUNT(*) FROM items AS i WHERE i.library_id = l.id
       AND i.kind IN ('movie', 'episode') AND i.state = 'UNAVAILABLE') AS unavailable,
    (SELECT COUNT(*) FROM items AS i WHERE i.library_id = l.id
       AND i.kind IN ('movie', 'episode') AND i.state = 'MISSING') AS missing,
    (SELECT COUNT(*) FROM items AS i WHERE i.library_id = l.id
       AND i.kind IN ('movie', 'episode') AND i.state = 'DELETED') AS deleted,
    (SELECT COUNT(*) FROM items AS i WHERE i.library_id = l.id
       AND i.kind IN ('movie', 'episode') AND i.state IN ('ACTIVE', 'REMOTE_ONLY', 'UNAVAILABLE')
       AND COALESCE(i.view_count, 0) = 0) AS unwatched,
    (SELECT COUNT(*) FROM items AS i WHERE i.library_id = l.id
       AND i.kind = 'show' AND i.state IN ('ACTIVE', 'REMOTE_ONLY', 'UNAVAILABLE')) AS shows
FROM libraries AS l;
"""
)


def _script(sql: str) -> Callable[[sqlite3.Connection], None]:
    def apply(conn: sqlite3.Connection) -> None:
        for statement in _statements(sql):
            conn.execute(statement)

    return apply


def _steps(statements: tuple[str, ...]) -> Callable[[sqlite3.Connection], None]:
    """Run statements one by one (for scripts whose statements hold semicolons, like triggers)."""

    def apply(conn: sqlite3.Connection) -> None:
        for statement in statements:
            conn.execute(statement)

    return apply


def _statements(sql: str) -> list[str]:
    """Split a schema script on semicolons (the scripts here hold no literal semicolons)."""
    return [part.strip() for part in sql.split(";") if part.strip()]


# MIGRATIONS[n] brings a database from user_version n to n + 1.
MIGRATIONS: Final[tuple[Callable[[sqlite3.Connection], None], ...]] = (
    _script(_V1),
    _script(_V2),
    _script(_V3),
    _script(_V4),
    _script(_V5),
    _script(_V6),
    _script(_V7),
    _steps(_V8),
)
SCHEMA_VERSION: Final = len(MIGRATIONS)


class SchemaError(Exception):
    """The catalog file cannot be used with this version of the code."""


def migrate(conn: sqlite3.Connection, *, target: int = SCHEMA_VERSION) -> int:
    """Bring the database to `target`, one transaction per step; return the version before."""
    (before,) = conn.execute("PRAGMA user_version").fetchone()
    if before > SCHEMA_VERSION:
        raise SchemaError(
            f"catalog schema version {before} is newer than this Retrovue ({SCHEMA_VERSION})"
        )
    for version in range(before, target):
        conn.execute("BEGIN IMMEDIATE")
        try:
            MIGRATIONS[version](conn)
            conn.execute(f"PRAGMA user_version = {version + 1}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    if target == SCHEMA_VERSION:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(VIEWS):
                conn.execute(statement)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return int(before)
