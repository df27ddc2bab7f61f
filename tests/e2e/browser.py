"""Headless Chromium for the end-to-end steps, driven through chromedriver's WebDriver HTTP API.

No Selenium: a handful of W3C WebDriver calls over aiohttp against Debian's `/usr/bin/chromium`
and `/usr/bin/chromedriver`. `chromium()` starts chromedriver on a free port and a browser
session, `login()` hands Home Assistant's frontend a token (as its own login page would store it),
and `deep_query()` / `wait_js()` find elements through shadow roots, which is where Home
Assistant's frontend and Retrovue's panel keep them.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
import contextlib
import json
from pathlib import Path
import socket
import time
from typing import Any

import aiohttp

from .common import E2EError

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# WebDriver's code points for special keys.
KEYS = {"ESCAPE": "\ue00c", "ENTER": "\ue007", "TAB": "\ue004"}

# JavaScript defining `deepQuery(selector, root)` and `deepQueryAll(selector, root)`: the first
# (or every) element matching a CSS selector in the document and in every open shadow root
# below it, depth first. Prepended to scripts run by `WebDriver.run_deep`.
DEEP_QUERY_JS = """
const deepQueryAll = (selector, root = document) => {
  const found = [];
  const walk = (node) => {
    for (const el of node.querySelectorAll('*')) {
      if (el.matches(selector)) found.push(el);
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(root);
  return found;
};
const deepQuery = (selector, root = document) => deepQueryAll(selector, root)[0] || null;
"""


def missing_binaries() -> list[str]:
    """Return which of Chromium and chromedriver are not installed."""
    return [binary for binary in (CHROMIUM, CHROMEDRIVER) if not Path(binary).exists()]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class WebDriver:
    """Just enough of the W3C WebDriver protocol (and chromedriver's extensions) for the tests."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        """Talk to the chromedriver at `base`; `start` opens the browser."""
        self.session = session
        self.base = base
        self.id = ""

    async def _call(self, method: str, path: str, payload: Any = None) -> Any:
        async with self.session.request(method, self.base + path, json=payload) as resp:
            body = await resp.json()
            if resp.status != 200:
                raise E2EError(f"WebDriver {method} {path}: {resp.status} {body}")
            return body["value"]

    async def start(self, width: int, height: int, download_dir: Path | None = None) -> None:
        """Open a headless Chromium session that keeps the browser console's messages."""
        options: dict[str, Any] = {
            "binary": CHROMIUM,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--lang=en-GB",
                f"--window-size={width},{height}",
            ],
        }
        if download_dir is not None:
            options["prefs"] = {
                "download.default_directory": str(download_dir),
                "download.prompt_for_download": False,
                "download.directory_upgrade": True,
                "safebrowsing.enabled": False,
            }
        value = await self._call(
            "POST",
            "/session",
            {
                "capabilities": {
                    "alwaysMatch": {
                        "goog:chromeOptions": options,
                        "goog:loggingPrefs": {"browser": "ALL"},
                        # Scripts that wait (execute/async) get up to a minute.
                        "timeouts": {"script": 60_000},
                    }
                }
            },
        )
        self.id = value["sessionId"]
        # The window's size includes room for a toolbar even when headless: pin the viewport.
        await self.cdp(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        if download_dir is not None:
            # Headless Chromium may refuse downloads unless told where to put them over CDP.
            await self.cdp(
                "Browser.setDownloadBehavior",
                {"behavior": "allow", "downloadPath": str(download_dir), "eventsEnabled": False},
            )

    async def cdp(self, command: str, params: dict[str, Any]) -> Any:
        """Send one Chrome DevTools Protocol command through chromedriver."""
        return await self._call(
            "POST", f"/session/{self.id}/goog/cdp/execute", {"cmd": command, "params": params}
        )

    async def open(self, url: str) -> None:
        """Navigate to a URL."""
        await self._call("POST", f"/session/{self.id}/url", {"url": url})

    async def run(self, script: str, *args: Any) -> Any:
        """Run JavaScript in the page (a function body; `arguments` holds `args`)."""
        return await self._call(
            "POST", f"/session/{self.id}/execute/sync", {"script": script, "args": list(args)}
        )

    async def run_async(self, script: str, *args: Any) -> Any:
        """Run JavaScript that calls `arguments[arguments.length - 1](result)` when done."""
        return await self._call(
            "POST", f"/session/{self.id}/execute/async", {"script": script, "args": list(args)}
        )

    async def run_deep(self, script: str, *args: Any) -> Any:
        """Run JavaScript with `deepQuery` and `deepQueryAll` defined (see `DEEP_QUERY_JS`)."""
        return await self.run(DEEP_QUERY_JS + script, *args)

    async def wait_js(self, what: str, script: str, *args: Any, limit: float = 30.0) -> Any:
        """Run `script` (with the deep helpers) until it returns something truthy; return that.

        After `limit` seconds, fail naming `what` and the last value or error seen.
        """
        deadline = time.monotonic() + limit
        last: Any = None
        while True:
            try:
                value = await self.run_deep(script, *args)
            except E2EError as err:  # A page between two documents answers with an error.
                value, last = None, err
            else:
                if value:
                    return value
                last = value
            if time.monotonic() > deadline:
                raise E2EError(f"timed out waiting for {what} (last: {last!r})")
            await asyncio.sleep(0.25)

    async def press(self, key: str) -> None:
        """Press and release one key in the focused element (`ESCAPE`, or a character)."""
        value = KEYS.get(key, key)
        await self._call(
            "POST",
            f"/session/{self.id}/actions",
            {
                "actions": [
                    {
                        "type": "key",
                        "id": "keyboard",
                        "actions": [
                            {"type": "keyDown", "value": value},
                            {"type": "keyUp", "value": value},
                        ],
                    }
                ]
            },
        )
        await self._call("DELETE", f"/session/{self.id}/actions")

    async def console(self) -> list[dict[str, Any]]:
        """Return the browser console's entries since the last call (level, message, source)."""
        entries: list[dict[str, Any]] = await self._call(
            "POST", f"/session/{self.id}/se/log", {"type": "browser"}
        )
        return entries

    async def screenshot(self) -> bytes:
        """Return a PNG of the viewport."""
        return base64.b64decode(await self._call("GET", f"/session/{self.id}/screenshot"))

    async def stop(self) -> None:
        """Close the browser."""
        if self.id:
            await self._call("DELETE", f"/session/{self.id}")
            self.id = ""


@contextlib.asynccontextmanager
async def chromium(
    width: int = 1280, height: int = 800, *, download_dir: Path | None = None
) -> AsyncIterator[WebDriver]:
    """Start chromedriver and a headless Chromium session; close both afterwards."""
    if missing := missing_binaries():
        raise E2EError(f"{', '.join(missing)} missing: apt-get install chromium chromium-driver")
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
            deadline = time.monotonic() + 30
            while True:
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with session.get(driver.base + "/status") as resp:
                        if resp.status == 200:
                            break
                if time.monotonic() > deadline:
                    raise E2EError("chromedriver did not start within 30 s")
                await asyncio.sleep(0.2)
            await driver.start(width, height, download_dir)
            try:
                yield driver
            finally:
                with contextlib.suppress(E2EError, aiohttp.ClientError):
                    await driver.stop()
    finally:
        if driver_process.returncode is None:
            driver_process.terminate()
            try:
                await asyncio.wait_for(driver_process.wait(), timeout=10)
            except TimeoutError:
                driver_process.kill()
                await driver_process.wait()


async def login(driver: WebDriver, base: str, tokens: dict[str, Any]) -> None:
    """Give Home Assistant's frontend at `base` a login (the tokens of `/auth/token`).

    The frontend keeps its login in localStorage under `hassTokens`; any page of the same origin
    can set it (the onboarding page is the lightest).
    """
    await driver.open(base + "/onboarding.html")
    await driver.run(
        "localStorage.setItem('hassTokens', arguments[0]);",
        json.dumps(
            {
                "hassUrl": base,
                "clientId": tokens["client_id"],
                "access_token": tokens["access_token"],
                "refresh_token": tokens["refresh_token"],
                "token_type": "Bearer",
                "expires_in": tokens["expires_in"],
                "expires": int(time.time() * 1000) + tokens["expires_in"] * 1000,
            }
        ),
    )
