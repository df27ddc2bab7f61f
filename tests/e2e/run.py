"""Run Retrovue in a real `hass` process against the emulator, through HA's REST API.

Steps: start the emulator and Home Assistant on free ports, complete onboarding, add the
server through the config-flow API, wait for the first sync, check sensor states, call
`retrovue.sync_library` with a response, remove items and see the missing sensor rise, run the
live phase (`live.py`: notifications and webhooks, each change shown within 5 s, and the
change → sensor latencies), check the sidebar panel in headless Chromium (`panel.py`), stop Home
Assistant, and fail on any error or traceback from the integration in its log.

    python -m tests.e2e.run [--changes N] [--freshness-out PATH]

`--changes` sets how many changes of each kind the latencies are measured over (default 50);
`--freshness-out` writes them as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
import contextlib
from dataclasses import dataclass
import json
import os
from pathlib import Path
import re
import shutil
import signal
import socket
import sys
import tempfile
import time
from typing import Any

import aiohttp

from scripts.dev_config import prepare
from tests.emulator import EmuServer, generate_server
from tests.reliability.poison import JSON_POISONS, PoisonedEmulator

from .common import E2EError, _log, _sensor
from .demo import check_demo
from .live import run_live_phase
from .panel import check_panel

TOKEN = "e2e-plex-token"
CLIENT_ID = "http://127.0.0.1/"
START_TIMEOUT = 180.0
SYNC_TIMEOUT = 120.0
_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ (?P<level>[A-Z]+) ")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _until[T](what: str, probe: Callable[[], Awaitable[T | None]], limit: float) -> T:
    deadline = time.monotonic() + limit
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            if (value := await probe()) is not None:
                return value
        except (aiohttp.ClientError, OSError, KeyError) as err:
            last = err
        await asyncio.sleep(1)
    raise E2EError(f"timed out waiting for {what}" + (f" (last error: {last!r})" if last else ""))


class HomeAssistantAPI:
    """A small client for Home Assistant's REST API."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base
        self.token: str | None = None
        self.tokens: dict[str, Any] = {}

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def get(self, path: str) -> Any:
        """GET a path and return its JSON."""
        async with self.session.get(self.base + path, headers=self._headers()) as resp:
            if resp.status != 200:
                raise E2EError(f"GET {path}: HTTP {resp.status}: {await resp.text()}")
            return await resp.json()

    async def post(self, path: str, payload: Any = None) -> Any:
        """POST JSON to a path and return the JSON answer."""
        async with self.session.post(
            self.base + path, json=payload if payload is not None else {}, headers=self._headers()
        ) as resp:
            if resp.status not in (200, 201):
                raise E2EError(f"POST {path}: HTTP {resp.status}: {await resp.text()}")
            return await resp.json()

    async def onboard(self) -> None:
        """Create the owner, get a token, and finish the remaining onboarding steps."""
        user = await self.post(
            "/api/onboarding/users",
            {
                "client_id": CLIENT_ID,
                "name": "E2E Owner",
                "username": "e2e",
                "password": "e2e-password-1234",
                "language": "en",
            },
        )
        async with self.session.post(
            self.base + "/auth/token",
            data={
                "grant_type": "authorization_code",
                "code": user["auth_code"],
                "client_id": CLIENT_ID,
            },
        ) as resp:
            if resp.status != 200:
                raise E2EError(f"/auth/token: HTTP {resp.status}: {await resp.text()}")
            self.tokens = {**await resp.json(), "client_id": CLIENT_ID}
            self.token = self.tokens["access_token"]
        await self.post("/api/onboarding/core_config")
        await self.post("/api/onboarding/analytics")
        await self.post(
            "/api/onboarding/integration", {"client_id": CLIENT_ID, "redirect_uri": CLIENT_ID}
        )

    async def states(self) -> dict[str, dict[str, Any]]:
        """Return every state by entity id."""
        return {state["entity_id"]: state for state in await self.get("/api/states")}


# What names Retrovue in a record: its modules (logger or traceback) or its domain. A bare
# "retrovue" is not enough: paths such as the newest lane's Python cache hold the word too.
_ABOUT_RETROVUE = re.compile(
    r"custom_components[./\\]retrovue|'retrovue'|\bfor retrovue\b|\[retrovue\]", re.IGNORECASE
)
# Home Assistant's reports of a deprecated use or a blocking call, logged as warnings.
_REPORTS = ("Detected that custom integration", "Detected blocking call")


def integration_problems(log_text: str) -> list[str]:
    """Return log records at ERROR or above, with a traceback or a report, about Retrovue."""
    records: list[list[str]] = []
    for line in log_text.splitlines():
        if _RECORD.match(line) or not records:
            records.append([line])
        else:
            records[-1].append(line)
    problems = []
    for record in records:
        text = "\n".join(record)
        match = _RECORD.match(record[0])
        serious = (
            (match is not None and match["level"] in ("ERROR", "CRITICAL"))
            or "Traceback (most recent call last)" in text
            or any(report in text for report in _REPORTS)
        )
        if serious and _ABOUT_RETROVUE.search(text):
            problems.append(text)
    return problems


@dataclass
class Stack:
    """A running Home Assistant with Retrovue set up against the emulator."""

    api: HomeAssistantAPI
    plex: PoisonedEmulator
    plex_server: EmuServer
    entry_id: str
    base: str
    config_dir: Path
    passed: list[str]


@contextlib.asynccontextmanager
async def running_stack(
    workdir: Path,
    plex_server: EmuServer,
    *,
    extra_yaml: str = "",
    before_flow: Callable[[HomeAssistantAPI], Awaitable[None]] | None = None,
    sync_timeout: float = SYNC_TIMEOUT,
) -> AsyncIterator[Stack]:
    """Start the emulator and hass, onboard, add the server, wait for the first sync."""
    passed: list[str] = []
    movies = sum(1 for item in plex_server.items.values() if item.type == "movie")
    episodes = sum(1 for item in plex_server.items.values() if item.type == "episode")
    ha_port = _free_port()
    config_dir = prepare(workdir / "config", ha_port, extra_yaml)
    base = f"http://127.0.0.1:{ha_port}"

    # Serves the library as the plain emulator does until a test names entries to poison.
    async with PoisonedEmulator(plex_server, port=_free_port(), poisons={}) as plex:
        _log(f"emulator on {plex.url}; starting Home Assistant on {base}")
        hass = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "homeassistant",
            "--config",
            str(config_dir),
            "--skip-pip",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
            # Not the repository: its `custom_components` package would shadow the config's.
            cwd=config_dir,
        )
        try:
            async with aiohttp.ClientSession() as session:
                api = HomeAssistantAPI(session, base)

                async def onboarding_ready() -> bool | None:
                    steps = await api.get("/api/onboarding")
                    return True if isinstance(steps, list) else None

                await _until("Home Assistant's HTTP API", onboarding_ready, START_TIMEOUT)
                await api.onboard()
                passed.append("onboarding through the REST API")
                _log(passed[-1])

                if before_flow is not None:
                    await before_flow(api)
                flow = await api.post(
                    "/api/config/config_entries/flow",
                    {"handler": "retrovue", "show_advanced_options": False},
                )
                if flow.get("step_id") != "user":
                    raise E2EError(f"config flow did not start at the user step: {flow}")
                if flow.get("type") == "menu":
                    # Signing in with Plex is the default; a URL and token is one step away.
                    if "manual" not in flow.get("menu_options", []):
                        raise E2EError(f"the user step offers no manual path: {flow}")
                    flow = await api.post(
                        f"/api/config/config_entries/flow/{flow['flow_id']}",
                        {"next_step_id": "manual"},
                    )
                flow = await api.post(
                    f"/api/config/config_entries/flow/{flow['flow_id']}",
                    {"url": plex.url, "token": plex_server.token, "verify_ssl": True},
                )
                if flow.get("step_id") != "libraries":
                    raise E2EError(f"server step failed: {flow}")
                flow = await api.post(
                    f"/api/config/config_entries/flow/{flow['flow_id']}",
                    {"libraries": ["1", "2"]},
                )
                if flow.get("type") != "create_entry":
                    raise E2EError(f"libraries step failed: {flow}")
                entry_id = flow["result"]["entry_id"]
                passed.append("config flow through /api/config/config_entries/flow")
                _log(passed[-1])

                async def synced() -> bool | None:
                    states = await api.states()
                    movie = _sensor(states, "Movies active")
                    tv = _sensor(states, "TV Shows active")
                    if (
                        movie
                        and tv
                        and movie["state"] == str(movies)
                        and tv["state"] == str(episodes)
                    ):
                        return True
                    return None

                await _until("the first sync to fill the sensors", synced, sync_timeout)
                passed.append(f"sensors show {movies} movies and {episodes} episodes")
                _log(passed[-1])

                yield Stack(api, plex, plex_server, entry_id, base, config_dir, passed)

                await api.post("/api/services/homeassistant/stop")
            code = await asyncio.wait_for(hass.wait(), timeout=90)
            if code != 0:
                raise E2EError(f"Home Assistant exited with {code}")
            passed.append("Home Assistant stopped cleanly")
            _log(passed[-1])
        finally:
            if hass.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(hass.pid, signal.SIGTERM)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(hass.wait(), timeout=30)
                if hass.returncode is None:
                    os.killpg(hass.pid, signal.SIGKILL)
                    await hass.wait()


def run_alone(
    name: str, check: Callable[[Stack], Awaitable[None]], *, seed: int, movies: int, shows: int
) -> int:
    """Run one end-to-end check on a fresh stack (`python -m tests.e2e.<name>`); 1 on failure."""
    workdir = Path(tempfile.mkdtemp(prefix=f"retrovue-{name}-"))

    async def _alone() -> list[str]:
        server = generate_server(
            seed=seed, movies=movies, shows=shows, token=TOKEN, friendly_name="E2E Plex"
        )
        async with running_stack(workdir, server) as stack:
            await check(stack)
        return stack.passed

    try:
        passed = asyncio.run(_alone())
    except E2EError as err:
        _log(f"FAILED: {err}")
        _log(f"kept {workdir}")
        print(f"e2e {name}: 0 passed, 1 failed")  # noqa: T201
        return 1
    shutil.rmtree(workdir, ignore_errors=True)
    print(f"e2e {name}: {len(passed)} passed, 0 failed")  # noqa: T201
    return 0


async def _run(workdir: Path, *, changes: int = 50) -> tuple[list[str], dict[str, Any]]:
    """Run every step; return what passed and the live phase's freshness figures."""
    plex_server = generate_server(seed=7, movies=40, shows=5, token=TOKEN, friendly_name="E2E Plex")
    async with running_stack(workdir, plex_server) as stack:
        api, passed = stack.api, stack.passed
        # What a newcomer sees: no failed integration, a clean log, sign-in or a URL and token.
        await check_demo(stack)
        answer = await api.post(
            "/api/services/retrovue/sync_library?return_response",
            {"config_entry_id": stack.entry_id},
        )
        summaries = answer["service_response"]["libraries"]
        if [s["status"] for s in summaries] != ["ok", "ok"] or any(s["changed"] for s in summaries):
            raise E2EError(f"unexpected sync summaries: {summaries}")
        passed.append("retrovue.sync_library returned ok summaries with no changes")
        _log(passed[-1])

        gone = [i.rating_key for i in plex_server.items.values() if i.type == "movie"][:3]
        for rating_key in gone:
            plex_server.remove_item(rating_key)
        answer = await api.post(
            "/api/services/retrovue/sync_library?return_response",
            {"config_entry_id": stack.entry_id, "library": "Movies"},
        )
        if answer["service_response"]["libraries"][0]["missing_promoted"] != len(gone):
            raise E2EError(f"removed movies were not marked missing: {answer}")

        async def missing_risen() -> bool | None:
            state = _sensor(await api.states(), "Movies missing")
            return True if state and state["state"] == str(len(gone)) else None

        await _until("the missing sensor to rise", missing_risen, SYNC_TIMEOUT)
        passed.append(f"removing {len(gone)} movies raised the missing sensor")
        _log(passed[-1])

        # One entry each with the five poisons that once stopped a library, and a removal
        # elsewhere in the same listing: the action answers, counts five errors, and the
        # removal is still found.
        movies = [str(i.rating_key) for i in plex_server.items.values() if i.type == "movie"]
        stack.plex.poisons.update(zip(movies, JSON_POISONS, strict=False))
        plex_server.remove_item(movies[len(JSON_POISONS)])
        answer = await api.post(
            "/api/services/retrovue/sync_library?return_response",
            {"config_entry_id": stack.entry_id, "library": "Movies", "deep": True},
        )
        summary = answer["service_response"]["libraries"][0]
        if (summary["status"], summary["errors"], summary["missing_promoted"]) != (
            "ok",
            len(JSON_POISONS),
            1,
        ):
            raise E2EError(f"poisoned entries were not isolated: {summary}")
        passed.append(
            f"{len(JSON_POISONS)} poisoned entries counted as errors, a removal still found"
        )
        _log(passed[-1])

        figures = {
            "home_assistant": (await api.get("/api/config")).get("version"),
            "python": sys.version.split()[0],
            **await run_live_phase(stack, changes=changes),
        }
        _log("freshness (change in Plex → shown through REST):")
        for kind in ("add", "edit", "remove", "watch"):
            row = figures[kind]
            _log(
                f"  {kind:<6} {row['changes']:>3} changes: median {row['median_s']:.3f} s, "
                f"max {row['max_s']:.3f} s"
            )

        # The sidebar panel in headless Chromium (tests/e2e/panel.py).
        await check_panel(stack)

    log_file = stack.config_dir / "home-assistant.log"
    problems = integration_problems(log_file.read_text(encoding="utf-8", errors="replace"))
    if problems:
        raise E2EError("the integration logged errors:\n" + "\n---\n".join(problems))
    passed.append("no error or traceback from the integration in home-assistant.log")
    _log(passed[-1])
    return passed, figures


def main(argv: list[str] | None = None) -> int:
    """Run the end-to-end test; print a closing line; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--changes", type=int, default=50, help="changes of each kind timed in the live phase"
    )
    parser.add_argument(
        "--freshness-out", type=Path, help="write the change → sensor latencies as JSON"
    )
    args = parser.parse_args(argv)
    if args.changes < 1:
        parser.error("--changes must be at least 1")
    workdir = Path(tempfile.mkdtemp(prefix="retrovue-e2e-"))
    keep = os.environ.get("E2E_KEEP") == "1"
    try:
        passed, figures = asyncio.run(_run(workdir, changes=args.changes))
    except E2EError as err:
        _log(f"FAILED: {err}")
        log_file = workdir / "config" / "home-assistant.log"
        if log_file.exists():
            _log(f"home-assistant.log kept at {log_file}")
            keep = True
        print("e2e: 0 passed, 1 failed")  # noqa: T201
        return 1
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.freshness_out is not None:
        args.freshness_out.parent.mkdir(parents=True, exist_ok=True)
        args.freshness_out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
        _log(f"freshness figures written to {args.freshness_out}")
    print(f"e2e: {len(passed)} passed, 0 failed")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
