"""Freshness of the live catalog: from a change in Plex to its row in the catalog.

    .venv/bin/python -m tests.bench.freshness --changes 50 --out bench-results/freshness.json

The emulator (in this process, real HTTP and websocket on 127.0.0.1) pushes Plex's
notification for every change; the engine's `NotificationStream` feeds a `LiveQueue` whose
batches run `targeted.refresh`, exactly as the integration wires them (without Home Assistant:
the change → sensor figure comes from the end-to-end test in a real `hass`). For each kind of
change (add an episode, edit a movie's title, remove an episode, watch a movie to the end) it
makes the change, then polls the catalog every 10 ms until the row shows it, and reports the
median and maximum latency and the requests per changed item; then a burst: 300 episodes added
to 10 shows at once, with its requests. Latency includes the queue's quiet time (1 s).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from contextlib import suppress
import json
from pathlib import Path
import statistics
import sys
import tempfile
import time
from typing import Any

import aiohttp

from custom_components.retrovue.engine.plex import PlexClient
from custom_components.retrovue.engine.plex.notifications import NotificationStream
from custom_components.retrovue.engine.store import Catalog, CatalogStore
from custom_components.retrovue.engine.sync import prepare_server, sync_library
from custom_components.retrovue.engine.sync.live import LiveBatch, LiveQueue
from custom_components.retrovue.engine.sync.targeted import refresh
from tests.emulator import EmuServer, PlexEmulator, generate_server

TOKEN = "freshness-token"
LIMIT = 10.0  # seconds a change may take before it counts as lost


async def _row(catalog: Catalog, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in await catalog.call(CatalogStore.query, sql, params)]


async def _until(probe: Callable[[], Awaitable[bool]]) -> float | None:
    start = time.perf_counter()
    while time.perf_counter() - start < LIMIT:
        if await probe():
            return time.perf_counter() - start
        await asyncio.sleep(0.01)
    return None


def _figures(latencies: list[float | None], requests: list[int]) -> dict[str, Any]:
    seen = [value for value in latencies if value is not None]
    return {
        "changes": len(latencies),
        "lost": len(latencies) - len(seen),
        "median_s": round(statistics.median(seen), 3) if seen else None,
        "max_s": round(max(seen), 3) if seen else None,
        "requests_per_change_median": statistics.median(requests) if requests else None,
        "requests_per_change_max": max(requests) if requests else None,
    }


async def measure(changes: int) -> dict[str, Any]:
    """Run every kind of change `changes` times and the burst; return the figures."""
    server = generate_server(
        seed=3, movies=max(60, changes + 10), shows=40, token=TOKEN, episodes_per_season=(4, 8)
    )
    with tempfile.TemporaryDirectory() as tmp:
        async with PlexEmulator(server) as emulator, aiohttp.ClientSession() as session:
            client = PlexClient(session, emulator.url, TOKEN, name="bench")
            catalog = await Catalog.open(Path(tmp) / "catalog.db")
            try:
                return await _run(server, emulator, client, catalog, session, changes)
            finally:
                await catalog.close()


async def _run(
    server: EmuServer,
    emulator: PlexEmulator,
    client: PlexClient,
    catalog: Catalog,
    session: aiohttp.ClientSession,
    changes: int,
) -> dict[str, Any]:
    context = await prepare_server(client, catalog)
    for section in context.sections:
        await sync_library(client, catalog, context, section.key)
    batches: list[int] = []

    async def flush(batch: LiveBatch) -> None:
        before = client.requests.total()
        await refresh(client, catalog, context, batch.targets)
        batches.append(client.requests.total() - before)

    queue = LiveQueue(flush, name="bench")
    stream = NotificationStream(session, emulator.url, TOKEN, name="bench")

    async def feed(notes: list[Any]) -> None:
        queue.feed(notes)

    tasks = [asyncio.create_task(stream.run(feed)), queue.start()]
    try:
        await emulator.notifications.wait_connected(1, 10)
        results = {
            "add": await _adds(server, catalog, batches, changes),
            "edit": await _edits(server, catalog, batches, changes),
            "remove": await _removes(server, catalog, batches, changes),
            "watch": await _watches(server, catalog, batches, changes),
            "burst": await _burst(server, catalog, batches),
        }
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with suppress(asyncio.CancelledError):
                await task
    return results


def _shows(server: EmuServer) -> list[str]:
    return [str(item.rating_key) for item in server.items.values() if item.type == "show"]


def _movies(server: EmuServer) -> list[str]:
    return [str(item.rating_key) for item in server.items.values() if item.type == "movie"]


async def _measure(
    batches: list[int], change: Callable[[], Awaitable[bool]], count: int
) -> tuple[list[float | None], list[int]]:
    latencies: list[float | None] = []
    requests: list[int] = []
    for _ in range(count):
        before = len(batches)
        latencies.append(await _until(change))
        # Let the batch that carried it finish, so its requests are counted.
        await asyncio.sleep(0.05)
        requests.append(sum(batches[before:]))
    return latencies, requests


async def _adds(server: EmuServer, catalog: Catalog, batches: list[int], n: int) -> dict[str, Any]:
    shows = _shows(server)
    latencies: list[float | None] = []
    requests: list[int] = []
    for index in range(n):
        (episode,) = server.add_episodes(shows[index % len(shows)], 1, bump_show_updated_at=True)
        key = str(episode.rating_key)

        async def arrived(key: str = key) -> bool:
            return bool(await _row(catalog, "SELECT 1 FROM items WHERE rating_key = ?", key))

        result, spent = await _measure(batches, arrived, 1)
        latencies += result
        requests += spent
    return _figures(latencies, requests)


async def _edits(server: EmuServer, catalog: Catalog, batches: list[int], n: int) -> dict[str, Any]:
    movies = _movies(server)
    latencies: list[float | None] = []
    requests: list[int] = []
    for index in range(n):
        key = movies[index % len(movies)]
        title = f"Edited {index}"
        server.change_item(key, title=title)

        async def arrived(key: str = key, title: str = title) -> bool:
            rows = await _row(catalog, "SELECT title FROM items WHERE rating_key = ?", key)
            return rows == [(title,)]

        result, spent = await _measure(batches, arrived, 1)
        latencies += result
        requests += spent
    return _figures(latencies, requests)


async def _removes(
    server: EmuServer, catalog: Catalog, batches: list[int], n: int
) -> dict[str, Any]:
    episodes = [str(item.rating_key) for item in server.items.values() if item.type == "episode"]
    latencies: list[float | None] = []
    requests: list[int] = []
    for key in episodes[:n]:
        server.remove_item(key)

        async def gone(key: str = key) -> bool:
            rows = await _row(catalog, "SELECT state FROM items WHERE rating_key = ?", key)
            return rows == [("MISSING",)]

        result, spent = await _measure(batches, gone, 1)
        latencies += result
        requests += spent
    return _figures(latencies, requests)


async def _watches(
    server: EmuServer, catalog: Catalog, batches: list[int], n: int
) -> dict[str, Any]:
    movies = _movies(server)
    latencies: list[float | None] = []
    requests: list[int] = []
    for index in range(n):
        key = movies[(index + 7) % len(movies)]
        item = server.item(key)
        before = item.view_count or 0
        server.play(key, offset_ms=0)
        server.stop(key, int((item.duration or 1_000_000) * 0.95))

        async def watched(key: str = key, before: int = before) -> bool:
            rows = await _row(catalog, "SELECT view_count FROM items WHERE rating_key = ?", key)
            return bool(rows) and (rows[0][0] or 0) > before

        result, spent = await _measure(batches, watched, 1)
        latencies += result
        requests += spent
    return _figures(latencies, requests)


async def _burst(server: EmuServer, catalog: Catalog, batches: list[int]) -> dict[str, Any]:
    shows = _shows(server)[:10]
    before = len(batches)
    added: list[str] = []
    start = time.perf_counter()
    for show in shows:
        added += [
            str(e.rating_key) for e in server.add_episodes(show, 30, bump_show_updated_at=True)
        ]

    async def all_there() -> bool:
        rows = await _row(
            catalog,
            f"SELECT COUNT(*) FROM items WHERE rating_key IN ({','.join('?' * len(added))})",
            *added,
        )
        return bool(rows[0][0] == len(added))

    latency = await _until(all_there)
    await asyncio.sleep(0.1)
    return {
        "episodes": len(added),
        "shows": len(shows),
        "seconds": None if latency is None else round(latency, 3),
        "since_first_change_s": round(time.perf_counter() - start, 3),
        "requests": sum(batches[before:]),
        "batches": len(batches) - before,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the freshness bench and print (and optionally write) the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=50, help="changes of each kind")
    parser.add_argument("--out", type=Path, help="write the figures as JSON")
    args = parser.parse_args(argv)
    figures = asyncio.run(measure(args.changes))
    sys.stdout.write("kind    changes  lost  median s  max s  requests/change (median, max)\n")
    for kind in ("add", "edit", "remove", "watch"):
        row = figures[kind]
        sys.stdout.write(
            f"{kind:<7} {row['changes']:>7} {row['lost']:>5} {row['median_s']!s:>9} "
            f"{row['max_s']!s:>6}  {row['requests_per_change_median']}, "
            f"{row['requests_per_change_max']}\n"
        )
    burst = figures["burst"]
    sys.stdout.write(
        f"burst: {burst['episodes']} episodes in {burst['shows']} shows -> "
        f"{burst['requests']} requests in {burst['batches']} batches, {burst['seconds']} s\n"
    )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
