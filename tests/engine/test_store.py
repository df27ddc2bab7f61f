"""Catalog store tests: migrations, the path view, states from mappings, targeted refresh."""

from __future__ import annotations

import ast
from pathlib import Path
import re
import sqlite3
import threading

import pytest

from custom_components.retrovue.engine.paths import PathMapper, PathMapping
from custom_components.retrovue.engine.plex import PlexClient
from custom_components.retrovue.engine.plex.models import ServerIdentity
from custom_components.retrovue.engine.store import (
    SCHEMA_VERSION,
    Catalog,
    CatalogStore,
    SchemaError,
    catalog as catalog_module,
)
from custom_components.retrovue.engine.sync import prepare_server
from tests.catalog_probe import on_catalog_thread
from tests.emulator import EmuServer

from .helpers import rows, states, sync_all

ENGINE = Path(__file__).parents[2] / "custom_components" / "retrovue" / "engine"


def test_engine_never_imports_homeassistant() -> None:
    offenders = []
    for path in ENGINE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [
                f"{path.name}: {name}" for name in names if name.split(".")[0] == "homeassistant"
            ]
    assert list(ENGINE.rglob("*.py")), "engine sources not found"
    assert offenders == []


_SQL = re.compile(
    r"\b(SELECT\s|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+(TABLE|INDEX|VIEW)|PRAGMA\s)"
)


def test_sql_lives_only_in_the_store() -> None:
    """No SQL in the Home Assistant layer, nor in the engine outside engine/store/."""
    sources = [*ENGINE.parent.glob("*.py"), *ENGINE.rglob("*.py")]
    offenders = [
        f"{path.relative_to(ENGINE.parent)}: {match.group(0).strip()}"
        for path in sources
        if "store" not in path.relative_to(ENGINE.parent).parts
        for match in _SQL.finditer(path.read_text(encoding="utf-8"))
    ]
    assert len(sources) > 20
    assert offenders == []


def test_upgrade_from_version_1_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = CatalogStore(path, migrate_to=1)
    assert old.schema_version == 1
    server_id = old.upsert_server(ServerIdentity("abc", "1.0", "Old"), "http://x", 100)
    old.close()

    store = CatalogStore(path)
    try:
        assert store.migrated_from == 1
        assert store.schema_version == SCHEMA_VERSION
        assert store.server_id("abc") == server_id
        columns = {row[1] for row in store.conn.execute("PRAGMA table_info(items)")}
        assert "changed_run_id" in columns
        indexes = {
            r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type='index'")
        }
        assert "items_title" not in indexes  # dropped by version 3
        assert "items_changed_run" in indexes  # added by version 2
        views = {
            r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type='view'")
        }
        assert views == {"part_paths", "catalog_items", "library_counts"}
    finally:
        store.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(SchemaError, match="newer"):
        CatalogStore(path)


def test_too_old_sqlite_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 31, 1))
    monkeypatch.setattr(sqlite3, "sqlite_version", "3.31.1")
    with pytest.raises(SchemaError, match=r"SQLite 3\.31\.1 is too old.*needs 3\.33\.0"):
        CatalogStore(tmp_path / "old-sqlite.db")
    assert not (tmp_path / "old-sqlite.db").exists()


def test_catalog_file_settings(tmp_path: Path) -> None:
    store = CatalogStore(tmp_path / "wal.db")
    try:
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    finally:
        store.close()


@pytest.mark.parametrize("count", [0, 1, 7, 127, 128, 129, 383, 1000])
def test_bulk_inserts_take_a_statement_per_128_rows(tmp_path: Path, count: int) -> None:
    # Each statement step lets go of the GIL; a step per row starves the catalog thread
    # beside a busy event loop, so inserts go 128 rows per statement (plus a few for the rest).
    store = CatalogStore(tmp_path / "bulk.db")
    try:
        store.conn.execute("CREATE TABLE t (a INTEGER, b TEXT, c BLOB)")
        expected = [(n, f"row {n}", None if n % 3 else bytes([n % 256])) for n in range(count)]
        statements: list[str] = []
        store.conn.set_trace_callback(statements.append)
        store.insert_rows("INSERT INTO t (a, b, c)", 3, iter(expected))
        store.conn.set_trace_callback(None)
        stored = store.conn.execute("SELECT a, b, c FROM t ORDER BY rowid").fetchall()
        assert stored == expected
        inserts = [sql for sql in statements if sql.startswith("INSERT")]
        assert len(inserts) == count // 128 + (count % 128).bit_count()
    finally:
        store.close()


def test_bulk_updates_take_a_statement_per_128_rows(tmp_path: Path) -> None:
    store = CatalogStore(tmp_path / "update.db")
    try:
        conn = store.conn
        conn.execute(
            "INSERT INTO servers (id, machine_identifier, name, version, url, "
            "created_at, updated_at) VALUES (1, 'm', 'n', 'v', 'u', 0, 0)"
        )
        conn.execute(
            "INSERT INTO libraries (id, server_id, section_key, type, title, "
            "first_seen_at) VALUES (1, 1, '1', 'movie', 'Movies', 0)"
        )
        conn.executemany(
            "INSERT INTO items (id, server_id, library_id, rating_key, kind, title, state, "
            "digest, first_seen_at, last_seen_at, last_scan_at) "
            "VALUES (?, 1, 1, ?, 'movie', 'old', 'ACTIVE', 'd', 0, 0, 0)",
            [(n, str(n)) for n in range(1, 401)],
        )
        statements: list[str] = []
        conn.set_trace_callback(statements.append)
        with store.transaction():
            store.update_rows(
                "title = v.column2, last_seen_at = ?",
                2,
                [(n, f"new {n}") for n in range(1, 301)],
                99,
            )
        conn.set_trace_callback(None)
        found = conn.execute("SELECT id, title, last_seen_at FROM items ORDER BY id").fetchall()
        assert found == [(n, f"new {n}", 99) if n <= 300 else (n, "old", 0) for n in range(1, 401)]
        updates = [sql for sql in statements if sql.startswith("UPDATE")]
        assert len(updates) == 300 // 128 + (300 % 128).bit_count()
    finally:
        store.close()


def test_checkpoint_thread_that_cannot_open_the_file_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    checkpointer = catalog_module.Checkpointer(tmp_path / "no such dir" / "catalog.db")
    checkpointer.poke()
    checkpointer.stop()
    assert checkpointer.checkpoints == 0
    assert "No checkpoint thread for catalog" in caplog.text
    assert "no such dir" in caplog.text


def test_json_rows_read_values_as_sqlite3_would(tmp_path: Path) -> None:
    store = CatalogStore(tmp_path / "read.db")
    try:
        store.conn.execute("CREATE TABLE t (a INTEGER, b TEXT, c BLOB)")
        values = [
            (2**62, 'quote " backslash \\ tab \t newline \n', b"\x00\xff" * 8),
            (-1, "Amélie 🎬 東京", None),
            (None, None, b""),
            (0, "", bytes(range(16))),
        ]
        store.conn.executemany("INSERT INTO t VALUES (?, ?, ?)", values)
        found = store.json_rows(
            f"a, b, {catalog_module._blob('c')}", "FROM t WHERE rowid > ?", (0,)
        )
        decoded = [(a, b, catalog_module._unhex(c)) for a, b, c in found]
        assert sorted(decoded, key=repr) == sorted(values, key=repr)
        assert store.json_rows("a", "FROM t WHERE a = ?", (12345,)) == []
        columns = store.json_columns(("a", "b"), "FROM t WHERE rowid > ?", (0,))
        assert sorted(zip(*columns, strict=True), key=repr) == sorted(
            ((a, b) for a, b, _ in values), key=repr
        )
        assert store.json_columns(("a", "b"), "FROM t WHERE a = ?", (12345,)) == [[], []]
    finally:
        store.close()


def test_checkpoints_run_on_their_own_thread(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.db"
    store = CatalogStore(path)
    try:
        assert "retrovue_checkpoint" in {thread.name for thread in threading.enumerate()}
        store.conn.execute("CREATE TABLE t (a TEXT)")
        assert store.checkpointer.wait_idle(10)
        before = path.stat().st_size
        done = store.checkpointer.checkpoints
        with store.transaction():
            store.insert_rows("INSERT INTO t (a)", 1, [(f"{n:0>1000}",) for n in range(2000)])
        # The writer's own automatic checkpoint would wait for a WAL 30 times this size; the
        # database file only grows when a checkpoint copies the new pages into it.
        assert store.checkpointer.wait_idle(10)
        assert store.checkpointer.checkpoints > done
        assert path.stat().st_size > before + 2_000_000
    finally:
        store.close()
    assert "retrovue_checkpoint" not in {thread.name for thread in threading.enumerate()}


async def test_worker_thread_is_not_the_loop_thread(catalog: Catalog) -> None:
    import threading

    def where(_store: CatalogStore) -> str:
        return threading.current_thread().name

    assert (await on_catalog_thread(catalog, where)).startswith("retrovue_catalog")
    # The catalog runs only the store's own code: a caller cannot bring its own.
    with pytest.raises(TypeError, match="not an operation of the catalog store"):
        await catalog.call(where)
    assert [tuple(row) for row in await catalog.call(CatalogStore.query, "SELECT 1")] == [(1,)]


MAPPING_CASES = [
    [PathMapping("/data/movies", "/mnt/movies")],
    [PathMapping("/data", "D:\\Media"), PathMapping("/data/tv", "\\\\nas\\tv")],
    [PathMapping("/", "/srv")],
    [PathMapping("/data/mov", "/wrong")],  # must not match /data/movies (separator-aware)
]


@pytest.mark.parametrize("mappings", MAPPING_CASES)
async def test_part_paths_view_agrees_with_the_path_mapper(
    emu_server: EmuServer, client: PlexClient, catalog: Catalog, mappings: list[PathMapping]
) -> None:
    server, _ = await sync_all(client, catalog)
    await catalog.call(CatalogStore.set_path_mappings, server.server_id, mappings)
    mapper = PathMapper(mappings)
    found = await rows(catalog, "SELECT plex_path, local_path FROM part_paths")
    assert found
    for plex_path, local_path in found:
        assert local_path == mapper.resolve(plex_path), plex_path
    # Local paths are derived, never stored.
    columns = {r[1] for r in await rows(catalog, "PRAGMA table_info(parts)")}
    assert "local_path" not in columns


async def test_part_paths_view_refuses_escapes(catalog: Catalog) -> None:
    def setup(store: CatalogStore) -> None:
        server_id = store.upsert_server(ServerIdentity("m1"), None, 1)
        store.set_path_mappings(server_id, [PathMapping("/media/tv", "/mnt/tv")])
        with store.transaction() as conn:
            conn.execute(
                "INSERT INTO libraries (server_id, section_key, type, title, first_seen_at) "
                "VALUES (?, '1', 'show', 'TV', 1)",
                (server_id,),
            )
            conn.execute(
                "INSERT INTO items (server_id, library_id, rating_key, kind, title, state, digest,"
                " first_seen_at, last_seen_at, last_scan_at) "
                "VALUES (?, 1, '1', 'episode', 'x', 'ACTIVE', 'd', 1, 1, 1)",
                (server_id,),
            )
            for index, path in enumerate(
                ["/media/tv/../../etc/passwd", "/media/tv2/a.mkv", "/media/tv/ok.mkv"]
            ):
                conn.execute(
                    "INSERT INTO parts (item_id, server_id, media_index, part_index, plex_path)"
                    " VALUES (1, ?, 0, ?, ?)",
                    (server_id, index, path),
                )

    await on_catalog_thread(catalog, setup)
    found = dict(await rows(catalog, "SELECT plex_path, local_path FROM part_paths"))
    assert found == {
        "/media/tv/../../etc/passwd": None,
        "/media/tv2/a.mkv": None,
        "/media/tv/ok.mkv": "/mnt/tv/ok.mkv",
    }


async def test_mappings_decide_remote_only_and_take_effect_next_sync(
    emu_server: EmuServer, client: PlexClient, catalog: Catalog
) -> None:
    server, _ = await sync_all(client, catalog)
    mid = emu_server.machine_identifier
    assert set((await states(catalog, mid)).values()) == {"ACTIVE"}

    # A folder inside the show library's /data/tv that holds no show is mapped: the show
    # library is mapped and every episode becomes REMOTE_ONLY, even unexpanded ones, while the
    # movie library, which no mapping covers, stays ACTIVE. Items the run rewrites (a changed
    # movie and episode) are judged as they are stored; the rest are restated when the run
    # finishes.
    await catalog.call(
        CatalogStore.set_path_mappings, server.server_id, [PathMapping("/data/tv/None", "/m")]
    )
    for kind in ("movie", "episode"):
        item = next(i for i in emu_server.items.values() if i.type == kind)
        emu_server.change_item(item.rating_key, title=f"Changed {kind}")
    _, summaries = await sync_all(client, catalog)
    assert [s.changed for s in summaries] == [1, 1]
    kinds = dict(
        await rows(catalog, "SELECT kind, group_concat(DISTINCT state) FROM items GROUP BY kind")
    )
    assert kinds == {
        "movie": "ACTIVE",
        "show": "ACTIVE",
        "season": "ACTIVE",
        "episode": "REMOTE_ONLY",
    }
    counts = await rows(catalog, "SELECT SUM(remote_only) FROM library_counts")
    assert counts == [(sum(1 for i in emu_server.items.values() if i.type == "episode"),)]

    await catalog.call(CatalogStore.set_path_mappings, server.server_id, [])
    await sync_all(client, catalog)
    assert set((await states(catalog, mid)).values()) == {"ACTIVE"}


async def test_item_without_parts_is_unavailable(
    emu_server: EmuServer, client: PlexClient, catalog: Catalog
) -> None:
    movie = next(i for i in emu_server.items.values() if i.type == "movie")
    movie.media = []
    emu_server.invalidate()
    await sync_all(client, catalog)
    assert (await states(catalog, emu_server.machine_identifier))[
        str(movie.rating_key)
    ] == "UNAVAILABLE"


async def test_steady_prepare_and_sync_write_nothing(
    emu_server: EmuServer, client: PlexClient, catalog: Catalog
) -> None:
    await sync_all(client, catalog)

    def changes(store: CatalogStore) -> int:
        return store.conn.total_changes

    before = await on_catalog_thread(catalog, changes)
    first = await prepare_server(client, catalog)
    assert await on_catalog_thread(catalog, changes) == before
    # A new server name is recorded; the id stays.
    emu_server.friendly_name = "Renamed Plex"
    emu_server.invalidate()
    second = await prepare_server(client, catalog)
    assert second.server_id == first.server_id
    names = await rows(catalog, "SELECT name FROM servers")
    assert names == [("Renamed Plex",)]
