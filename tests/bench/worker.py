"""One measured task in its own process: a sync scenario or an anchor.

`python -m tests.bench.worker` reads a JSON task on stdin and prints one JSON result line on
stdout. Wall and CPU time (all threads of this process, from `getrusage`) cover only the
measured part; RSS is sampled every 50 ms by a thread and the peak is the larger of that and
`ru_maxrss` (the fresh process's lifetime peak).

The engine is imported as `custom_components` from wherever `sys.path` finds it first: this
tree when the worker runs from its root, or another revision's tree when the runner starts it
from a directory that links `custom_components` there (`--against`; see `runner.EngineTree`).
Every result names the engine package it used (`engine`). Engine internals that only some
tasks need are imported inside those tasks, so an older engine still runs the syncs.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping
import contextlib
import cProfile
import io
import json
import os
from pathlib import Path
import pstats
import resource
import sqlite3
import sys
import threading
import time
from typing import Any
from urllib.parse import quote
from xml.etree import ElementTree as ET

import aiohttp
import orjson
import psutil  # type: ignore[import-untyped]

from custom_components.retrovue import engine as _engine
from custom_components.retrovue.engine.plex import PlexClient
from custom_components.retrovue.engine.plex.client import DEFAULT_PAGE_SIZE, Listing
from custom_components.retrovue.engine.plex.models import PlexType
from custom_components.retrovue.engine.store import Catalog, CatalogStore
from custom_components.retrovue.engine.sync import prepare_server, sync_library

_SAMPLE_SECONDS = 0.05


class Meter:
    """Measure wall time, CPU time and RSS of this process around a block."""

    def __init__(self, *, sample: bool = True) -> None:
        self._process = psutil.Process()
        self._sample_rss = sample
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rss_before = 0
        self.rss_peak = 0
        self.rss_after = 0
        self.wall = 0.0
        self.cpu = 0.0
        self._wall0 = 0.0
        self._cpu0 = 0.0

    @staticmethod
    def _cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    def _sample(self) -> None:
        while not self._stop.wait(_SAMPLE_SECONDS):
            self.rss_peak = max(self.rss_peak, self._process.memory_info().rss)

    def start(self) -> None:
        """Start measuring."""
        self.rss_before = self.rss_peak = self._process.memory_info().rss
        if self._sample_rss:
            self._thread = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)
            self._thread.start()
        self._cpu0 = self._cpu()
        self._wall0 = time.perf_counter()

    def stop(self) -> None:
        """Stop measuring."""
        self.wall = time.perf_counter() - self._wall0
        self.cpu = self._cpu() - self._cpu0
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.rss_after = self._process.memory_info().rss
        # ru_maxrss is this (fresh) process's lifetime peak: the sampler can miss a spike.
        max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        self.rss_peak = max(self.rss_peak, self.rss_after, max_rss)

    def as_dict(self) -> dict[str, Any]:
        """Return the measurements (bytes and seconds)."""
        return {
            "wall": self.wall,
            "cpu": self.cpu,
            "rss_before": self.rss_before,
            "rss_peak": self.rss_peak,
            "rss_after": self.rss_after,
            "rss_growth": self.rss_peak - self.rss_before,
            "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        }


def _client_headers() -> dict[str, str]:
    return {
        "Accept": "application/json",
        "X-Plex-Client-Identifier": "retrovue-bench",
        "X-Plex-Product": "Retrovue",
        "X-Plex-Version": "0.1.0",
    }


def _query(params: Mapping[str, str]) -> str:
    # As the engine's client builds it: filter operators stay literal in names.
    return "&".join(
        f"{quote(key, safe='>=<!')}={quote(value, safe='')}" for key, value in params.items()
    )


def listing_spec(listing: Listing, label: str) -> dict[str, Any]:
    """Return the path, parameters and page size the engine's client uses for a listing."""
    return {
        "label": label,
        "path": listing._path,
        "params": dict(listing._params),
        "page_size": listing._page_size,
    }


def _parse_page(body: bytes, content_type: str) -> tuple[int, int | None]:
    """Parse a listing body the fastest generic way; return (items, totalSize)."""
    if "json" in content_type:
        container = orjson.loads(body)["MediaContainer"]
        total = container.get("totalSize")
        return len(container.get("Metadata", ())), None if total is None else int(total)
    root = ET.fromstring(body)  # noqa: S314 - our own emulator's answer
    total_text = root.get("totalSize")
    return len(root), None if total_text is None else int(total_text)


async def _walk_listing(
    session: aiohttp.ClientSession,
    url: str,
    token: str,
    spec: Mapping[str, Any],
    parse: Callable[[bytes, str, int], tuple[int, int | None]],
) -> dict[str, Any]:
    """GET every page of one listing (paging by what came back, as the engine does)."""
    headers = {**_client_headers(), "X-Plex-Token": token}
    start, pages, items, size = 0, 0, 0, int(spec["page_size"])
    began = time.perf_counter()
    while True:
        paging = {"X-Plex-Container-Start": str(start), "X-Plex-Container-Size": str(size)}
        target = f"{url}{spec['path']}?{_query({**spec['params'], **paging})}"
        async with session.get(target, headers={**headers, **paging}) as response:
            response.raise_for_status()
            body = await response.read()
            content_type = response.headers.get("Content-Type", "")
        pages += 1
        received, total = parse(body, content_type, start)
        items += received
        start += received
        if received == 0 or received > size or (total is not None and start >= total):
            break
    return {
        "label": spec["label"],
        "seconds": time.perf_counter() - began,
        "pages": pages,
        "items": items,
    }


def _generic_parse(body: bytes, content_type: str, _start: int) -> tuple[int, int | None]:
    return _parse_page(body, content_type)


def _engine_parse(body: bytes, content_type: str, start: int) -> tuple[int, int | None]:
    from custom_components.retrovue.engine.plex.parse import parse_listing

    page = parse_listing(body, content_type, kinds=_ANY_KINDS, offset=start)
    return page.received, page.total_size


_ANY_KINDS: tuple[Any, ...] = ()


async def _listing_specs(
    session: aiohttp.ClientSession, url: str, token: str, which: str, shows: list[str]
) -> list[dict[str, Any]]:
    client = PlexClient(session, url, token)
    if which == "expansions":
        specs = []
        for show in shows:
            specs.append(listing_spec(client.children(show), f"children {show}"))
            specs.append(listing_spec(client.all_leaves(show), f"allLeaves {show}"))
        return specs
    sections = await client.sections()
    specs = []
    for section in sections:
        if section.type == "movie":
            specs.append(listing_spec(client.section_items(section.key, PlexType.MOVIE), "movies"))
    for section in sections:
        if section.type == "show":
            for plex_type, label in (
                (PlexType.SHOW, "shows"),
                (PlexType.SEASON, "seasons"),
                (PlexType.EPISODE, "episodes"),
            ):
                specs.append(listing_spec(client.section_items(section.key, plex_type), label))
    return specs


async def task_floor(task: Mapping[str, Any]) -> dict[str, Any]:
    """GET and parse every listing page (the floor), or the changed shows' expansions."""
    global _ANY_KINDS  # noqa: PLW0603 - set once per process
    from custom_components.retrovue.engine.plex.models import ItemKind

    _ANY_KINDS = tuple(ItemKind)
    parse = _engine_parse if task.get("parser") == "engine" else _generic_parse
    async with aiohttp.ClientSession() as session:
        specs = await _listing_specs(
            session, task["url"], task["token"], task["which"], task.get("shows", [])
        )
        meter = Meter()
        meter.start()
        walks = [
            await _walk_listing(session, task["url"], task["token"], spec, parse) for spec in specs
        ]
        meter.stop()
    by_label: dict[str, dict[str, float]] = {}
    for walk in walks:
        label = walk["label"].split(" ")[0]
        entry = by_label.setdefault(label, {"seconds": 0.0, "pages": 0, "items": 0})
        for key in ("seconds", "pages", "items"):
            entry[key] += walk[key]
    return {
        **meter.as_dict(),
        "listings": by_label,
        "requests": sum(walk["pages"] for walk in walks),
        "items": sum(walk["items"] for walk in walks),
        "page_size": DEFAULT_PAGE_SIZE,
    }


async def task_naive(task: Mapping[str, Any]) -> dict[str, Any]:
    """One detail request per episode, sequentially, on a sample."""
    headers = {**_client_headers(), "X-Plex-Token": task["token"]}
    keys = [str(key) for key in task["keys"]]
    async with aiohttp.ClientSession() as session:
        meter = Meter()
        meter.start()
        for key in keys:
            async with session.get(
                f"{task['url']}/library/metadata/{key}", headers=headers
            ) as response:
                response.raise_for_status()
                body = await response.read()
                content_type = response.headers.get("Content-Type", "")
            _parse_page(body, content_type)
        meter.stop()
    return {**meter.as_dict(), "requests": len(keys)}


def task_plexapi(task: Mapping[str, Any]) -> dict[str, Any]:
    """Walk the library the way most tools do: python-plexapi, synchronous."""
    from plexapi.server import PlexServer

    meter = Meter()
    meter.start()
    plex = PlexServer(task["url"], task["token"], timeout=120)  # type: ignore[no-untyped-call]
    counts: Counter[str] = Counter()
    for section in plex.library.sections():
        items = section.all()
        counts[section.type] += len(items)
        if section.type == "show":
            for show in items:
                counts["episode"] += len(show.episodes())
    meter.stop()
    return {**meter.as_dict(), "items": dict(counts)}


def task_store(task: Mapping[str, Any]) -> dict[str, Any]:
    """Write the rows a cold sync stored into an empty catalog: the catalog's own write cost.

    Items, parts and GUIDs are read from the finished cold catalog before the clock starts and
    written with the store's own methods, in transactions of as many items as a cold sync
    stores at most in one (`READ_AHEAD_PAGES` pages), on this one thread: no fetching, no
    parsing, no comparing, no other thread wanting the interpreter lock.
    """
    from custom_components.retrovue.engine.store.catalog import _ITEM_COLUMNS, _PART_COLUMNS
    from custom_components.retrovue.engine.sync import READ_AHEAD_PAGES

    item_columns = ", ".join(_ITEM_COLUMNS)
    source = sqlite3.connect(task["source"])
    try:
        servers = source.execute("SELECT * FROM servers ORDER BY id").fetchall()
        libraries = source.execute(
            "SELECT id, server_id, section_key, type, title, first_seen_at FROM libraries"
        ).fetchall()
        items = source.execute(f"SELECT id, {item_columns} FROM items ORDER BY id").fetchall()
        parts: dict[int, list[tuple[Any, ...]]] = {}
        for item_id, *part in source.execute(
            f"SELECT {', '.join(_PART_COLUMNS)} FROM parts ORDER BY id"
        ):
            parts.setdefault(item_id, []).append(tuple(part))
        guids: dict[int, list[tuple[str, str, str]]] = {}
        for item_id, *guid in source.execute(
            "SELECT item_id, uri, provider, value FROM guids ORDER BY item_id, uri"
        ):
            guids.setdefault(item_id, []).append((guid[0], guid[1], guid[2]))
    finally:
        source.close()
    store = CatalogStore(Path(task["db"]))
    try:
        with store.transaction() as conn:
            conn.executemany("INSERT INTO servers VALUES (?, ?, ?, ?, ?, ?, ?)", servers)
            conn.executemany(
                "INSERT INTO libraries (id, server_id, section_key, type, title, first_seen_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                libraries,
            )
        now = int(time.time())
        batch = READ_AHEAD_PAGES * DEFAULT_PAGE_SIZE
        meter = Meter()
        meter.start()
        for start in range(0, len(items), batch):
            chunk = items[start : start + batch]
            with store.transaction():
                ids = store.insert_items([row[1:] for row in chunk], now, 0)
                store.replace_parts(
                    (),
                    (
                        (new_id, *part)
                        for new_id, row in zip(ids, chunk, strict=True)
                        for part in parts.get(row[0], ())
                    ),
                )
                store.replace_guids(
                    (),
                    (
                        (new_id, *guid)
                        for new_id, row in zip(ids, chunk, strict=True)
                        for guid in guids.get(row[0], ())
                    ),
                )
        meter.stop()
        counts = {
            table: int(store.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
            for table in ("items", "parts", "guids")
        }
    finally:
        store.close()
    source_rows = {
        "items": len(items),
        "parts": sum(map(len, parts.values())),
        "guids": sum(map(len, guids.values())),
    }
    return {**meter.as_dict(), "rows": counts, "source_rows": source_rows, "batch_items": batch}


def task_panel(task: Mapping[str, Any]) -> dict[str, Any]:
    """Time the panel's queries (engine/store/browse.py) on a synced catalog, in this thread.

    Each query runs `repeat` times on one open store, as the integration's catalog thread
    runs them; the median and the range are reported in milliseconds, with what it found.
    """
    from custom_components.retrovue.engine.store import browse
    from custom_components.retrovue.engine.store.browse import ItemQuery, SortKey

    repeat = int(task.get("repeat", 5))
    store = CatalogStore(Path(task["db"]))
    try:
        overview = browse.libraries_overview(store)
        tv = next(library.id for library in overview if library.type == "show")
        missing = browse.items(
            store, ItemQuery(states=("MISSING",), kinds=("episode",), limit=1)
        ).rows
        (run,) = store.query(
            "SELECT MAX(changed_run_id) AS id FROM items WHERE state = 'MISSING' "
            "AND library_id = ?",
            (tv,),
        )
        detail_id = missing[0].id if missing else 1
        search = str(task.get("search", "river"))
        cases: dict[str, Callable[[], Any]] = {
            "libraries": lambda: browse.libraries_overview(store),
            "first page, by title": lambda: browse.items(store, ItemQuery()),
            "MISSING in the TV library": lambda: browse.items(
                store, ItemQuery(states=("MISSING",), library_ids=(tv,))
            ),
            "ACTIVE episodes": lambda: browse.items(
                store, ItemQuery(states=("ACTIVE",), kinds=("episode",))
            ),
            f"search {search!r}": lambda: browse.items(store, ItemQuery(search=search)),
            "by show, descending": lambda: browse.items(
                store, ItemQuery(sort=SortKey.SHOW, descending=True)
            ),
            "by since": lambda: browse.items(store, ItemQuery(sort=SortKey.SINCE)),
            "by size, descending": lambda: browse.items(
                store, ItemQuery(sort=SortKey.SIZE, descending=True)
            ),
            "page at offset 100,000": lambda: browse.items(store, ItemQuery(offset=100_000)),
            "item detail": lambda: browse.item_detail(store, detail_id),
            "missing folders": lambda: browse.missing_folders(store),
            "missing folders of the last run": lambda: browse.missing_folders(
                store, run_id=run["id"]
            ),
            "duplicates": lambda: browse.duplicates(store),
            "duplicates across servers": lambda: browse.duplicates(store, scope="across"),
        }
        queries: dict[str, dict[str, Any]] = {}
        for name, case in cases.items():
            times: list[float] = []
            for _ in range(repeat):
                began = time.perf_counter()
                found = case()
                times.append((time.perf_counter() - began) * 1000)
            times.sort()
            queries[name] = {
                "ms": times[(len(times) - 1) // 2],
                "min_ms": times[0],
                "max_ms": times[-1],
                "found": _panel_found(found),
            }
        items = store.query("SELECT COUNT(*) AS n FROM items")[0]["n"]
        history = store.query("SELECT COUNT(*) AS n FROM item_history")[0]["n"]
    finally:
        store.close()
    return {
        "wall": 0.0,
        "cpu": 0.0,
        "repeat": repeat,
        "items": items,
        "history_rows": history,
        "queries": queries,
        "first_panel_page_ms": queries["libraries"]["ms"] + queries["first page, by title"]["ms"],
    }


def _panel_found(found: Any) -> str:
    """Describe what a panel query returned."""
    if found is None:
        return "nothing"
    if hasattr(found, "total"):
        shown = len(getattr(found, "rows", getattr(found, "groups", ())))
        return f"{found.total} in all, {shown} on the page"
    if isinstance(found, tuple):
        if found and hasattr(found[0], "path"):
            return f"{len(found)} folders, the largest {found[0].path} ({found[0].items} items)"
        return f"{len(found)} rows"
    return f"{len(getattr(found, 'parts', ()))} parts, {len(getattr(found, 'history', ()))} changes"


async def _rows_written(catalog: Catalog, run_ids: list[int]) -> dict[str, int]:
    marks = ",".join("?" * len(run_ids))
    found = await catalog.call(
        CatalogStore.query,
        f"SELECT kind, COUNT(*) FROM items WHERE changed_run_id IN ({marks}) GROUP BY kind",
        run_ids,
    )
    return {str(row[0]): int(row[1]) for row in found}


async def task_sync(task: Mapping[str, Any]) -> dict[str, Any]:
    """prepare_server + sync_library for every library, as one round of the integration."""
    catalog = await Catalog.open(Path(task["db"]))
    profiler: cProfile.Profile | None = cProfile.Profile() if task.get("profile") else None
    try:
        async with aiohttp.ClientSession() as session:
            client = PlexClient(session, task["url"], task["token"])
            # No RSS sampler thread under the profiler: it would show up in the profile.
            meter = Meter(sample=profiler is None)
            meter.start()
            if profiler is not None:
                profiler.enable()
            server = await prepare_server(client, catalog)
            summaries = [
                await sync_library(client, catalog, server, section.key, deep=task["deep"])
                for section in server.sections
            ]
            if profiler is not None:
                profiler.disable()
            meter.stop()
        written = await _rows_written(catalog, [summary.run_id for summary in summaries])
        totals = await catalog.call(
            CatalogStore.query, "SELECT kind, COUNT(*) FROM items GROUP BY kind", ()
        )
    finally:
        await catalog.close()
    result: dict[str, Any] = {
        **meter.as_dict(),
        "client_requests": dict(client.requests),
        "requests": client.requests.total(),
        "summaries": [summary.as_dict() for summary in summaries],
        # The server's clock (its Date header) when the run ended.
        "server_time": getattr(client, "server_time", None),
        "changed": sum(summary.changed for summary in summaries),
        "missing_promoted": sum(summary.missing_promoted for summary in summaries),
        "rows_written": sum(written.values()),
        "rows_written_by_kind": written,
        "catalog_items": {str(row[0]): int(row[1]) for row in totals},
        "page_size": client.page_size,
    }
    if profiler is not None:
        result["profile"] = _profile_report(profiler, task.get("profile_out"))
    return result


def _profile_report(profiler: cProfile.Profile, out: str | None, top: int = 25) -> dict[str, Any]:
    if out:
        profiler.dump_stats(out)
    report: dict[str, Any] = {}
    for key in ("cumulative", "tottime"):
        stream = io.StringIO()
        stats = pstats.Stats(profiler, stream=stream)
        stats.sort_stats(key)
        rows = []
        for func in stats.fcn_list[:top]:  # type: ignore[attr-defined]
            _cc, nc, tt, ct, _ = stats.stats[func]  # type: ignore[attr-defined]
            filename, line, name = func
            rows.append(
                {
                    "function": f"{_short(filename)}:{line}({name})",
                    "calls": nc,
                    "tottime": tt,
                    "cumtime": ct,
                }
            )
        report[key] = rows
    return report


def _short(filename: str) -> str:
    for marker in ("custom_components/", "site-packages/", "lib/python3.13/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


_TASKS: dict[str, Callable[[Mapping[str, Any]], Coroutine[Any, Any, dict[str, Any]]]] = {
    "sync": task_sync,
    "floor": task_floor,
    "naive": task_naive,
}


def run(task: Mapping[str, Any]) -> dict[str, Any]:
    """Run one task in this process."""
    kind = task["task"]
    if kind == "plexapi":
        return task_plexapi(task)
    if kind == "store":
        return task_store(task)
    if kind == "panel":
        return task_panel(task)
    return asyncio.run(_TASKS[kind](task))


def main() -> None:
    """Read a task from stdin, print the result as the last line of stdout."""
    task = json.loads(sys.stdin.read())
    with contextlib.redirect_stdout(sys.stderr):
        result = run(task)
    # Which engine this process imported (a symlinked tree is resolved).
    result["engine"] = os.path.realpath(Path(_engine.__file__).parent)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
