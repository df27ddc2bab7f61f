"""Sync every library of one server in a process of its own, to be killed by the crash tests.

`python -m tests.reliability.crash_worker URL TOKEN CATALOG [--page-size N] [--deep]
[--retention-days D] [--wait]` opens the catalog with `Catalog.open`, syncs every library and
closes it, printing one marker line per step on stdout (flushed at once, so the killer knows
where the run was): `boot` (the run begins), `open INTERRUPTED`, `start SECTION`,
`page SECTION PROCESSED`, `done SECTION STATUS` and `finished` (the catalog is closed).
With `--wait` it prints `ready` once imported and begins on a line on stdin (at end of file it
exits without touching the catalog): a test can start the next worker while it checks a run.

The engine is imported without the integration's `__init__`, which pulls in Home Assistant
(about 3 s per process); every engine module is the real one.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
import sys
import types


def _engine_without_home_assistant() -> None:
    """Register the two parent packages so the engine imports without Home Assistant."""
    root = Path(__file__).resolve().parents[2] / "custom_components"
    for name, path in (
        ("custom_components", root),
        ("custom_components.retrovue", root / "retrovue"),
    ):
        if name not in sys.modules:
            module = types.ModuleType(name)
            module.__path__ = [str(path)]
            sys.modules[name] = module


def _say(*words: object) -> None:
    """Print one marker line at once."""
    print(*words, flush=True)  # noqa: T201


async def run(args: argparse.Namespace) -> None:
    """Open the catalog, sync every library, close the catalog."""
    import aiohttp

    from custom_components.retrovue.engine.plex import PlexClient
    from custom_components.retrovue.engine.store import Catalog
    from custom_components.retrovue.engine.sync import SyncProgress, prepare_server, sync_library

    def progress(event: SyncProgress) -> None:
        summary = event.summary
        if event.event == "library_start":
            _say("start", summary.library_key)
        elif event.event == "page_progress":
            _say("page", summary.library_key, summary.processed)
        else:
            _say("done", summary.library_key, summary.status)

    _say("boot")
    catalog = await Catalog.open(args.catalog)
    _say("open", catalog.interrupted_runs)
    try:
        async with aiohttp.ClientSession() as session:
            client = PlexClient(
                session,
                args.url,
                args.token,
                page_size=args.page_size,
                retries=2,
                backoff=0,
                timeout=10,
            )
            server = await prepare_server(client, catalog)
            for section in server.sections:
                await sync_library(
                    client,
                    catalog,
                    server,
                    section.key,
                    deep=args.deep,
                    retention_days=args.retention_days,
                    progress=progress,
                )
    finally:
        await catalog.close()
    _say("finished")


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run."""
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.crash_worker")
    parser.add_argument("url")
    parser.add_argument("token")
    parser.add_argument("catalog", type=Path)
    parser.add_argument("--page-size", type=int, default=5)
    parser.add_argument("--deep", action="store_true")
    parser.add_argument("--retention-days", type=float, default=30.0)
    parser.add_argument("--wait", action="store_true")
    args = parser.parse_args(argv)
    _engine_without_home_assistant()
    # Imported here, before `ready`, so that a waiting worker begins at once.
    import aiohttp  # noqa: F401

    import custom_components.retrovue.engine.sync  # noqa: F401

    if args.wait:
        _say("ready")
        if not sys.stdin.readline():
            return
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
