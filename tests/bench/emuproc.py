"""The emulator's own process for benchmarks, controlled over stdin/stdout.

`python -m tests.bench.emuproc --workload L --format json` generates the workload, serves it on
a random port of 127.0.0.1 and prints one JSON line (`url`, `token`, `pid`, counts). With
`--refreshed-ago SECONDS` every item's `updatedAt` is first set to the emulator's clock minus
that many seconds (what "Refresh all metadata" leaves; `EmuServer.refresh_metadata`). Then it
reads one JSON command per line on stdin and answers one JSON line on stdout. Commands run on
the emulator's event loop between HTTP requests, so mutations never race a render:

- `{"cmd": "stats"}`: request counters by endpoint, `ServerStats`, the process's CPU seconds,
  the server's clock (`now`)
- `{"cmd": "reset"}`: zero counters, recorded requests and stats
- `{"cmd": "info"}`: item counts, an episode sample, the spread of `updatedAt`
- `{"cmd": "log"}`: the listings requested since the last reset, grouped by path, type and
  filter (`updatedAt>>` windows), with how many requests each took
- `{"cmd": "churn", "churn": {...}, "seed": 2}`: apply the churn; answer what changed
- `{"cmd": "vanish", "episodes": 1000, "singles": 20, "movies": 20, "seed": 3}`: remove whole
  shows until that many episodes are gone, then single episodes of other shows and movies
  (what the panel's "where did it go" groups); answer what went
- `{"cmd": "quit"}`
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
from typing import Any, Final

from tests.emulator import EPISODE, MOVIE, SEASON, SHOW, EmuServer, PlexEmulator, generate_server
from tests.emulator.render import render
from tests.emulator.shapes import container, item_node

from .workloads import WORKLOADS, Churn

# Every listing page of an L workload fits (JSON and XML, engine and python-plexapi pages).
CACHE_LIMIT_BYTES = 8 * 1024**3


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def _snapshot(server: EmuServer, rating_keys: list[int]) -> dict[int, bytes]:
    """Return each item's listing element as the engine would receive it."""
    return {
        rk: render(container({}, [item_node(server, server.items[rk], include_guids=True)]), "json")
        for rk in rating_keys
        if rk in server.items
    }


def _subtree(server: EmuServer, rk: int) -> list[int]:
    item = server.items[rk]
    keys = [rk]
    for child in item.children:
        keys.extend(_subtree(server, child))
    return keys


def apply_churn(server: EmuServer, churn: Churn, seed: int) -> dict[str, Any]:
    """Change, add and remove episodes across some shows and change some movies.

    Returns the changed shows and how many catalog rows a correct sync must write: items whose
    listing element changed (the changed episodes and movies, plus seasons and shows whose
    counts moved), the new episodes and the removed ones (they become MISSING).
    """
    rng = random.Random(seed)
    shows = [item for item in server.items.values() if item.type == SHOW]
    # Additions go to the first half of the picked shows, removals to the second half: a show
    # that gains and loses the same number of episodes keeps its leafCount and updatedAt, which
    # the light pass cannot see (a deep run finds it; see the README's "How the sync works").
    adders = max(1, churn.shows // 2)
    removers = max(1, churn.shows - adders)
    per_show_changed = -(-churn.episodes_changed // churn.shows)
    per_show_removed = -(-churn.episodes_removed // removers)
    eligible = [
        show for show in shows if server.leaf_count(show) >= per_show_changed + per_show_removed + 1
    ]
    picked = sorted(rng.sample(eligible, churn.shows), key=lambda item: item.rating_key)
    movies = sorted(
        rng.sample(
            [item for item in server.items.values() if item.type == MOVIE], churn.movies_changed
        ),
        key=lambda item: item.rating_key,
    )
    watched = [key for show in picked for key in _subtree(server, show.rating_key)]
    watched += [movie.rating_key for movie in movies]
    before = _snapshot(server, watched)

    changed = removed = added = 0
    removed_keys: list[int] = []
    added_keys: list[int] = []
    for number, show in enumerate(picked):
        episodes = list(server.leaves(show))
        rng.shuffle(episodes)
        want_changed = min(per_show_changed, churn.episodes_changed - changed)
        for episode in episodes[:want_changed]:
            server.change_item(episode.rating_key, title=f"{episode.title} (churned)")
        changed += want_changed
        if number < adders:
            want_added = -(-(churn.episodes_added - added) // (adders - number))
            if want_added > 0:
                new = server.add_episodes(show.rating_key, want_added)
                added_keys += [item.rating_key for item in new]
                added += want_added
            continue
        want_removed = min(per_show_removed, churn.episodes_removed - removed)
        for episode in episodes[want_changed : want_changed + want_removed]:
            removed_keys.append(episode.rating_key)
            server.remove_item(episode.rating_key)
        removed += want_removed
    for movie in movies:
        server.change_item(movie.rating_key, title=f"{movie.title} (churned)")

    after = _snapshot(server, [key for key in watched if key in server.items])
    differing = [key for key, body in after.items() if before.get(key) != body]
    kinds: dict[str, int] = {}
    for key in differing:
        kind = server.items[key].type
        kinds[kind] = kinds.get(kind, 0) + 1
    return {
        "changed_shows": [show.rating_key for show in picked],
        "changed_movies": [movie.rating_key for movie in movies],
        "episodes_changed": changed,
        "episodes_added": added,
        "episodes_removed": removed,
        "removed_keys": removed_keys,
        "added_keys": added_keys,
        # Rows a correct incremental sync writes: changed elements, new and removed items.
        "expected_written": len(differing) + len(added_keys) + len(removed_keys),
        "differing_by_kind": kinds,
    }


def vanish(
    server: EmuServer, episodes: int, singles: int, movies: int, seed: int
) -> dict[str, Any]:
    """Remove whole shows until `episodes` episodes are gone, then single episodes and movies."""
    rng = random.Random(seed)
    shows = sorted(
        (item for item in server.items.values() if item.type == SHOW),
        key=lambda item: item.rating_key,
    )
    rng.shuffle(shows)
    removed_shows: list[int] = []
    removed_episodes = 0
    while shows and removed_episodes < episodes:
        show = shows.pop()
        removed_episodes += server.leaf_count(show)
        removed_shows.append(show.rating_key)
        server.remove_item(show.rating_key)
    single_keys: list[int] = []
    for show in shows[:singles]:
        leaves = list(server.leaves(show))
        if len(leaves) > 1:
            single = rng.choice(leaves)
            single_keys.append(single.rating_key)
            server.remove_item(single.rating_key)
    movie_keys = sorted(
        rng.sample(
            [item.rating_key for item in server.items.values() if item.type == MOVIE], movies
        )
    )
    for key in movie_keys:
        server.remove_item(key)
    return {
        "shows": removed_shows,
        "show_episodes": removed_episodes,
        "single_episodes": single_keys,
        "movies": movie_keys,
    }


def info(server: EmuServer, sample: int) -> dict[str, Any]:
    """Return counts, shows with their leaf counts and an evenly spread episode sample."""
    counts = dict.fromkeys((MOVIE, SHOW, SEASON, EPISODE), 0)
    episodes: list[int] = []
    for item in server.items.values():
        counts[item.type] = counts.get(item.type, 0) + 1
        if item.type == EPISODE:
            episodes.append(item.rating_key)
    step = max(1, len(episodes) // max(sample, 1))
    updated = {item.updated_at for item in server.items.values()}
    return {
        "counts": counts,
        "episode_sample": episodes[::step][:sample],
        "sections": {key: section.type for key, section in server.sections.items()},
        "updated_at": {
            "distinct": len(updated),
            "min": min(updated, default=None),
            "max": max(updated, default=None),
        },
        "now": server.now(),
    }


_PAGING: Final = ("X-Plex-Container-Start", "X-Plex-Container-Size", "X-Plex-Token")


def listing_log(emulator: PlexEmulator) -> list[dict[str, Any]]:
    """Group the recorded listing requests by path, type and filters, in first-seen order."""
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for request in emulator.requests:
        if request.endpoint not in ("section_all", "children", "all_leaves"):
            continue
        query = request.query
        filters = "&".join(
            f"{key}={value}"
            for key, value in sorted(query.items())
            if key not in _PAGING and key not in ("type", "includeGuids", "excludeAllLeaves")
        )
        group = groups.setdefault(
            (
                request.endpoint if request.endpoint != "section_all" else request.path,
                query.get("type", ""),
                filters,
            ),
            {
                "path": request.path if request.endpoint == "section_all" else request.endpoint,
                "type": query.get("type", ""),
                "filters": filters,
                "requests": 0,
                "counts": 0,
            },
        )
        group["requests"] += 1
        if query.get("X-Plex-Container-Size") == "0":
            group["counts"] += 1
    return list(groups.values())


class Controller:
    """Run commands against one emulator."""

    def __init__(self, emulator: PlexEmulator) -> None:
        self.emulator = emulator
        self.server = emulator.server

    def handle(self, command: dict[str, Any]) -> dict[str, Any]:
        """Run one command and return the answer."""
        name = command.get("cmd")
        server = self.server
        if name == "stats":
            stats = server.stats
            return {
                "counters": dict(self.emulator.counters),
                "requests": stats.requests,
                "renders": stats.renders,
                "render_seconds": stats.render_seconds,
                "cache_hits": stats.cache_hits,
                "cache_misses": stats.cache_misses,
                "bytes_sent": stats.bytes_sent,
                "unpaged_listings": stats.unpaged_listings,
                "cpu_seconds": _cpu_seconds(),
                "now": server.now(),
            }
        if name == "reset":
            self.emulator.reset_log()
            server.stats.reset()
            return {"ok": True}
        if name == "log":
            return {"listings": listing_log(self.emulator)}
        if name == "info":
            return info(server, int(command.get("sample", 500)))
        if name == "churn":
            churn = Churn(**command["churn"])
            return apply_churn(server, churn, int(command.get("seed", 2)))
        if name == "vanish":
            return vanish(
                server,
                int(command.get("episodes", 1000)),
                int(command.get("singles", 20)),
                int(command.get("movies", 20)),
                int(command.get("seed", 3)),
            )
        return {"error": f"unknown command {name!r}"}


async def _serve(args: argparse.Namespace) -> None:
    workload = WORKLOADS[args.workload]
    server = generate_server(**workload.generate_kwargs())
    if args.refreshed_ago is not None:
        server.refresh_metadata(at=server.now() - args.refreshed_ago)
    server.force_xml = args.format == "xml"
    server.cache_limit_bytes = CACHE_LIMIT_BYTES
    loop = asyncio.get_running_loop()
    async with PlexEmulator(server, host="127.0.0.1", port=0) as emulator:
        controller = Controller(emulator)
        out = sys.stdout
        ready = {"url": emulator.url, "token": server.token, "pid": os.getpid()}
        out.write(json.dumps(ready) + "\n")
        out.flush()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                return
            command = json.loads(line)
            if command.get("cmd") == "quit":
                out.write(json.dumps({"ok": True}) + "\n")
                out.flush()
                return
            try:
                reply = controller.handle(command)
            except Exception as err:  # noqa: BLE001 - reported to the harness
                reply = {"error": f"{err.__class__.__name__}: {err}"}
            out.write(json.dumps(reply) + "\n")
            out.flush()


def main(argv: list[str] | None = None) -> None:
    """Serve a workload until stdin closes or `quit`."""
    parser = argparse.ArgumentParser(prog="python -m tests.bench.emuproc")
    parser.add_argument("--workload", choices=sorted(WORKLOADS), required=True)
    parser.add_argument("--format", choices=("json", "xml"), default="json")
    parser.add_argument(
        "--refreshed-ago",
        type=int,
        help="give every item one updatedAt, this many seconds before now (default: spread)",
    )
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
