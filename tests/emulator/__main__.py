"""Run an emulated Plex Media Server until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from aiohttp import web

from .app import PlexEmulator
from .control import DemoControl
from .generate import generate_server


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=32400)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--movies", type=int, default=200)
    parser.add_argument("--shows", type=int, default=20)
    parser.add_argument("--seasons", type=int, nargs=2, default=(1, 3), metavar=("MIN", "MAX"))
    parser.add_argument("--episodes", type=int, nargs=2, default=(2, 6), metavar=("MIN", "MAX"))
    parser.add_argument("--token", default="test-token")
    parser.add_argument("--name", default="Emulated Plex", help="friendlyName")
    parser.add_argument("--machine-identifier", default=None)
    parser.add_argument(
        "--control-port",
        type=int,
        default=None,
        help="also serve /take and /restore on 127.0.0.1 (tests/emulator/control.py)",
    )
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    server = generate_server(
        seed=args.seed,
        movies=args.movies,
        shows=args.shows,
        seasons_per_show=tuple(args.seasons),
        episodes_per_season=tuple(args.episodes),
        machine_identifier=args.machine_identifier,
        friendly_name=args.name,
        token=args.token,
    )
    async with PlexEmulator(server, host=args.host, port=args.port) as emu:
        print(f"url:               {emu.url}")  # noqa: T201
        print(f"machineIdentifier: {server.machine_identifier}")  # noqa: T201
        print(f"token:             {server.token}")  # noqa: T201
        print(f"items:             {len(server.items)}  (Ctrl-C stops)", flush=True)  # noqa: T201
        runner = None
        if args.control_port is not None:
            runner = web.AppRunner(DemoControl(server).app(), access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", args.control_port).start()
        try:
            await asyncio.Event().wait()
        finally:
            if runner is not None:
                await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    """Serve until Ctrl-C."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(_parse_args(argv)))


if __name__ == "__main__":
    main()
