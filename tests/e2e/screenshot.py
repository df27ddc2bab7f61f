"""Take the docs' screenshots: a real Home Assistant, Retrovue and headless Chromium.

Starts the same stack as the end-to-end test (with the demo library, four movies and a season's
folder of episodes removed), saves a dashboard with Retrovue's sensors through Home Assistant's
websocket API, then drives Debian's Chromium through chromedriver's WebDriver HTTP API
(`browser.py`, no Selenium), logged in with the onboarding token: `docs/dashboard.png` (the
dashboard) and `docs/panel.png` (the Retrovue panel's Items tab filtered to what went missing).
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
import shutil
import sys
import tempfile

from tests.emulator import generate_server

from .browser import chromium, login, missing_binaries
from .common import E2EError, _log
from .panel import open_panel, show_missing
from .run import Stack, running_stack

ROOT = Path(__file__).parents[2]
DEFAULT_OUT = ROOT / "docs" / "dashboard.png"
DEFAULT_PANEL_OUT = ROOT / "docs" / "panel.png"
SETTLE_SECONDS = 8


async def _save_dashboard(stack: Stack) -> None:
    """Save a dashboard view with Retrovue's sensors (the README's card, and a glance)."""
    states = await stack.api.states()

    def ids(*suffixes: str) -> list[str]:
        return [
            entity_id
            for suffix in suffixes
            for entity_id, state in sorted(states.items())
            if entity_id.startswith("sensor.")
            and state["attributes"].get("friendly_name", "").endswith(suffix)
        ]

    config = {
        "title": "Home",
        "views": [
            {
                "title": "Plex catalog",
                "path": "plex",
                "cards": [
                    {
                        "type": "entities",
                        "title": "Plex catalog",
                        "entities": ids(
                            "Sync status",
                            "Movies active",
                            "Movies missing",
                            "TV Shows active",
                            "TV Shows missing",
                            "TV Shows remote only",
                            "Movies last synced",
                        ),
                    },
                    {
                        "type": "glance",
                        "title": "Movies",
                        "entities": [
                            {"entity": entity_id, "name": name}
                            for entity_id, name in zip(
                                ids("Movies active", "Movies missing", "Movies deleted"),
                                ("Active", "Missing", "Deleted"),
                                strict=True,
                            )
                        ],
                    },
                ],
            }
        ],
    }
    url = stack.base.replace("http://", "ws://") + "/api/websocket"
    async with stack.api.session.ws_connect(url) as ws:
        await ws.receive_json()  # auth_required
        await ws.send_json({"type": "auth", "access_token": stack.api.token})
        if (await ws.receive_json()).get("type") != "auth_ok":
            raise E2EError("websocket authentication failed")
        await ws.send_json({"id": 1, "type": "lovelace/config/save", "config": config})
        answer = await ws.receive_json()
        if not answer.get("success"):
            raise E2EError(f"saving the dashboard failed: {answer}")


async def _capture(stack: Stack, out: Path, panel_out: Path, width: int, height: int) -> None:
    async with chromium(width, height) as driver:
        await login(driver, stack.base, stack.api.tokens)
        await driver.open(stack.base + "/lovelace/plex")
        await asyncio.sleep(SETTLE_SECONDS)
        await asyncio.to_thread(_write, out, await driver.screenshot())
        _log(f"saved {out}")

        await open_panel(driver, stack, from_sidebar=False)
        await show_missing(driver)
        await driver.wait_js(
            "the missing items",
            "const root = deepQuery('retrovue-panel').shadowRoot;"
            "const rows = [...root.querySelectorAll('[data-testid=item-row]')];"
            "return rows.length && rows.every((row) => row.dataset.state === 'MISSING');",
        )
        await asyncio.sleep(1)  # Fonts and the last paint.
        await asyncio.to_thread(_write, panel_out, await driver.screenshot())
        _log(f"saved {panel_out}")


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


async def _main(out: Path, panel_out: Path, width: int, height: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="retrovue-shot-"))
    try:
        server = generate_server(
            seed=7, movies=200, shows=20, token="shot-token", friendly_name="Retrovue Demo Plex"
        )
        movies = [i.rating_key for i in server.items.values() if i.type == "movie"]
        # The season with the most episodes: its folder goes missing as a whole.
        season = max(
            (i for i in server.items.values() if i.type == "season" and i.index),
            key=lambda i: (len(i.children), -i.rating_key),
        )
        async with running_stack(workdir, server) as stack:
            # A little history, so the missing sensor and the panel have something to show.
            for rating_key in movies[:4]:
                server.remove_item(rating_key)
            server.remove_item(season.rating_key)
            await stack.api.post(
                "/api/services/retrovue/sync_library?return_response",
                {"config_entry_id": stack.entry_id},
            )
            await _save_dashboard(stack)
            await _capture(stack, out, panel_out, width, height)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    """Parse arguments and take the screenshot."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--panel-out", type=Path, default=DEFAULT_PANEL_OUT)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=800)
    args = parser.parse_args()
    if missing := missing_binaries():
        sys.stderr.write(
            f"{', '.join(missing)} missing: apt-get install chromium chromium-driver\n"
        )
        return 2
    asyncio.run(_main(args.out, args.panel_out, args.width, args.height))
    return 0


if __name__ == "__main__":
    sys.exit(main())
