"""Take the README's dashboard screenshot: a real Home Assistant, Retrovue and headless Chromium.

Starts the same stack as the end-to-end test (with the demo library), saves a dashboard with
Retrovue's sensors through Home Assistant's websocket API, then drives Debian's Chromium through
chromedriver's WebDriver HTTP API (no Selenium needed), logged in with the onboarding token.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
from pathlib import Path
import shutil
import sys
import tempfile
import time
from typing import Any

import aiohttp

from tests.emulator import generate_server

from .common import E2EError, _log
from .run import Stack, _free_port, _until, running_stack

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ROOT = Path(__file__).parents[2]
DEFAULT_OUT = ROOT / "docs" / "dashboard.png"
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


class WebDriver:
    """Just enough of the W3C WebDriver protocol to load a page and take a screenshot."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base
        self.id = ""

    async def _call(self, method: str, path: str, payload: Any = None) -> Any:
        async with self.session.request(method, self.base + path, json=payload) as resp:
            body = await resp.json()
            if resp.status != 200:
                raise E2EError(f"WebDriver {method} {path}: {resp.status} {body}")
            return body["value"]

    async def start(self, width: int, height: int) -> None:
        """Open a headless Chromium session."""
        value = await self._call(
            "POST",
            "/session",
            {
                "capabilities": {
                    "alwaysMatch": {
                        "goog:chromeOptions": {
                            "binary": CHROMIUM,
                            "args": [
                                "--headless=new",
                                "--no-sandbox",
                                "--disable-gpu",
                                "--disable-quic",
                                "--no-first-run",
                                "--disable-background-networking",
                                "--disable-component-update",
                                "--disable-sync",
                                f"--window-size={width},{height}",
                            ],
                        }
                    }
                }
            },
        )
        self.id = value["sessionId"]

    async def open(self, url: str) -> None:
        """Navigate to a URL."""
        await self._call("POST", f"/session/{self.id}/url", {"url": url})

    async def run(self, script: str, *args: Any) -> Any:
        """Run JavaScript in the page."""
        return await self._call(
            "POST", f"/session/{self.id}/execute/sync", {"script": script, "args": list(args)}
        )

    async def screenshot(self) -> bytes:
        """Return a PNG of the viewport."""
        return base64.b64decode(await self._call("GET", f"/session/{self.id}/screenshot"))

    async def stop(self) -> None:
        """Close the browser."""
        if self.id:
            await self._call("DELETE", f"/session/{self.id}")


async def _capture(stack: Stack, out: Path, width: int, height: int) -> None:
    port = _free_port()
    driver_process = await asyncio.create_subprocess_exec(
        CHROMEDRIVER,
        f"--port={port}",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with aiohttp.ClientSession() as session:
            driver = WebDriver(session, f"http://127.0.0.1:{port}")

            async def driver_ready() -> bool | None:
                async with session.get(driver.base + "/status") as resp:
                    return True if resp.status == 200 else None

            await _until("chromedriver", driver_ready, 30)
            await driver.start(width, height)
            try:
                tokens = stack.api.tokens
                # The frontend keeps its login in localStorage; give it the onboarding token.
                await driver.open(stack.base + "/onboarding.html")
                await driver.run(
                    "localStorage.setItem('hassTokens', arguments[0]);",
                    json.dumps(
                        {
                            "hassUrl": stack.base,
                            "clientId": tokens["client_id"],
                            "access_token": tokens["access_token"],
                            "refresh_token": tokens["refresh_token"],
                            "token_type": "Bearer",
                            "expires_in": tokens["expires_in"],
                            "expires": int(time.time() * 1000) + tokens["expires_in"] * 1000,
                        }
                    ),
                )
                await driver.open(stack.base + "/lovelace/plex")
                await asyncio.sleep(SETTLE_SECONDS)
                await asyncio.to_thread(_write, out, await driver.screenshot())
            finally:
                await driver.stop()
    finally:
        driver_process.terminate()
        await asyncio.wait_for(driver_process.wait(), timeout=10)


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


async def _main(out: Path, width: int, height: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="retrovue-shot-"))
    try:
        server = generate_server(
            seed=7, movies=200, shows=20, token="shot-token", friendly_name="Retrovue Demo Plex"
        )
        movies = [i.rating_key for i in server.items.values() if i.type == "movie"]
        async with running_stack(workdir, server) as stack:
            # A little history, so the missing sensor has something to show.
            for rating_key in movies[:4]:
                server.remove_item(rating_key)
            await stack.api.post(
                "/api/services/retrovue/sync_library?return_response",
                {"config_entry_id": stack.entry_id},
            )
            await _save_dashboard(stack)
            await _capture(stack, out, width, height)
        _log(f"saved {out}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    """Parse arguments and take the screenshot."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=800)
    args = parser.parse_args()
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not Path(binary).exists():
            sys.stderr.write(f"{binary} is missing: apt-get install chromium chromium-driver\n")
            return 2
    asyncio.run(_main(args.out, args.width, args.height))
    return 0


if __name__ == "__main__":
    sys.exit(main())
