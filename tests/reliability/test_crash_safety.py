"""Crash safety: a sync killed with SIGKILL at a random point leaves a sound catalog.

Each trial changes the emulated library (items removed, added, changed, brought back), runs a
sync in a child process (`tests.reliability.crash_worker`) and kills it after a random delay
within the duration such a run takes. The catalog file must then pass `PRAGMA integrity_check`,
open with `Catalog.open` (which records the cut-off run as failed), keep its invariants, hold
no item MISSING that Plex still serves, and converge: a light sync brings the show library in
line with Plex, a deep sync the whole catalog.

The emulator runs in the test's event loop, so it answers while the worker runs. Trials are
seeded: `RETROVUE_CRASH_TRIALS` (default 20) and `RETROVUE_CRASH_SEED` choose more or others.
The figures (trials, kills mid-run, where they landed, failures) are printed at the end.
"""

from __future__ import annotations

import asyncio
from collections import Counter
import contextlib
from dataclasses import dataclass, field
import os
from pathlib import Path
import random
import signal
import sqlite3
import sys
from typing import Any, Final

import aiohttp
import pytest

from custom_components.retrovue.engine.plex import PlexClient
from custom_components.retrovue.engine.store import Catalog
from tests.emulator import (
    EPISODE,
    MOVIE,
    SEASON,
    SHOW,
    EmuItem,
    EmuServer,
    PlexEmulator,
    generate_server,
)
from tests.engine.helpers import (
    expected_items,
    expected_parts,
    rows,
    states,
    stored_items,
    sync_all,
)

from .invariants import assert_invariants

ROOT: Final = Path(__file__).resolve().parents[2]
TRIALS: Final = int(os.environ.get("RETROVUE_CRASH_TRIALS", "20"))
SEED: Final = int(os.environ.get("RETROVUE_CRASH_SEED", "20250611"))
TOKEN: Final = "crash-test-token-3e9a"
PAGE_SIZE: Final = 5
# Kill runs: a fresh catalog (cold sync: inserts), a light run, a deep run (with a retention of
# zero days now and then, so MISSING items become DELETED in the run that is killed).
MODES: Final = ("cold", "light", "deep")
MODE_WEIGHTS: Final = (1, 2, 2)
SECTION_NAMES: Final = {"1": "movies", "2": "shows"}
ABSENT: Final = frozenset({"MISSING", "DELETED"})
WORKER_TIMEOUT: Final = 60.0
PARTS_QUERY: Final = (
    "SELECT i.rating_key, p.part_id, p.plex_path, p.size FROM parts p "
    "JOIN items i ON i.id = p.item_id WHERE i.state NOT IN ('MISSING', 'DELETED')"
)
# A present movie or episode always has its file: the item and its parts share a transaction.
WITHOUT_PARTS: Final = (
    "SELECT rating_key FROM items AS i WHERE kind IN ('movie', 'episode') AND state = 'ACTIVE' "
    "AND NOT EXISTS (SELECT 1 FROM parts AS p WHERE p.item_id = i.id)"
)


@dataclass(slots=True)
class WorkerRun:
    """What one worker process printed and how it ended."""

    markers: list[str]
    returncode: int
    seconds: float
    stderr: str

    @property
    def killed(self) -> bool:
        """Return whether the process ended by SIGKILL."""
        return self.returncode == -signal.SIGKILL

    @property
    def finished(self) -> bool:
        """Return whether the worker closed the catalog after its syncs."""
        return "finished" in self.markers

    @property
    def mid_run(self) -> bool:
        """Return whether the kill cut the run off (between opening and closing the catalog)."""
        return self.killed and "boot" in self.markers and not self.finished

    @property
    def phase(self) -> str:
        """Name the step the run was in when it ended (after its last marker)."""
        if not self.markers:
            return "starting"
        word, *rest = self.markers[-1].split()
        if word in ("start", "page", "done") and rest:
            return f"{word} {SECTION_NAMES.get(rest[0], rest[0])}"
        return {"boot": "opening the catalog", "open": "preparing the server"}.get(word, word)

    def describe(self) -> str:
        """Describe the run for a failure message."""
        return (
            f"rc={self.returncode} after {self.seconds:.2f}s, last marker "
            f"{self.markers[-1] if self.markers else None!r}; stderr: {self.stderr[-800:]}"
        )


class Worker:
    """One worker process, started ahead (imports take most of a second) and run on demand."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        """Follow a started process's markers."""
        assert process.stdout is not None
        assert process.stderr is not None
        self.process = process
        self.markers: list[str] = []
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._ready: asyncio.Future[None] = loop.create_future()
        self._booted: asyncio.Future[float] = loop.create_future()
        self._reader = asyncio.ensure_future(self._read(process.stdout))
        self._errors = asyncio.ensure_future(process.stderr.read())
        self._exited = asyncio.ensure_future(process.wait())

    @classmethod
    async def start(
        cls, url: str, catalog_path: Path, *, deep: bool = False, retention_days: float = 30.0
    ) -> Worker:
        """Start a worker that waits for `run`."""
        command = [
            sys.executable,
            "-m",
            "tests.reliability.crash_worker",
            url,
            TOKEN,
            str(catalog_path),
            "--page-size",
            str(PAGE_SIZE),
            "--retention-days",
            str(retention_days),
            "--wait",
        ]
        if deep:
            command.append("--deep")
        process = await asyncio.create_subprocess_exec(
            *command,
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(process)

    async def _read(self, stdout: asyncio.StreamReader) -> None:
        while line := await stdout.readline():
            marker = line.decode(errors="replace").strip()
            self.markers.append(marker)
            if marker == "ready" and not self._ready.done():
                self._ready.set_result(None)
            elif marker == "boot" and not self._booted.done():
                self._booted.set_result(self._loop.time())

    async def run(self, kill_after: float | None = None) -> WorkerRun:
        """Let the worker begin; SIGKILL it `kill_after` seconds after it printed `boot`."""
        process, exited = self.process, self._exited
        try:
            async with asyncio.timeout(WORKER_TIMEOUT):
                await _first(self._ready, exited)
                if not exited.done():
                    assert process.stdin is not None
                    process.stdin.write(b"go\n")
                    await process.stdin.drain()
                await _first(self._booted, exited)
                began = self._booted.result() if self._booted.done() else self._loop.time()
                if kill_after is not None and not exited.done():
                    wait = max(0.0, began + kill_after - self._loop.time())
                    done, _ = await asyncio.wait({exited}, timeout=wait)
                    if not done:
                        with contextlib.suppress(ProcessLookupError):
                            process.send_signal(signal.SIGKILL)
                returncode = await exited
                ended = self._loop.time()
                await self._reader
                stderr = (await self._errors).decode(errors="replace")
        finally:
            await self.discard()
        return WorkerRun(self.markers, returncode, ended - began, stderr)

    async def discard(self) -> None:
        """Kill the process if it still runs (a waiting worker has not touched the catalog)."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        await self._exited
        for task in (self._reader, self._errors):
            task.cancel()
        await asyncio.gather(self._reader, self._errors, return_exceptions=True)


async def _first(*futures: asyncio.Future[Any]) -> None:
    """Wait until one of some futures is done."""
    await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)


def file_health(path: Path) -> tuple[list[str], int]:
    """Return `PRAGMA integrity_check`'s answer and how many runs the file holds as running."""
    conn = sqlite3.connect(path)
    try:
        check = [str(row[0]) for row in conn.execute("PRAGMA integrity_check")]
        has_runs = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sync_runs'"
        ).fetchone()
        running = 0
        if has_runs:
            running = conn.execute(
                "SELECT COUNT(*) FROM sync_runs WHERE status = 'running'"
            ).fetchone()[0]
    finally:
        conn.close()
    return check, int(running)


def remove_catalog(path: Path) -> None:
    """Delete a catalog file with its WAL and shared-memory files."""
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def _keys(server: EmuServer, kind: str) -> list[int]:
    return [item.rating_key for item in server.items.values() if item.type == kind]


def mutate(server: EmuServer, rng: random.Random, gone: list[EmuItem], trial: int) -> None:
    """Remove, add, change and bring back some items, as a library changes between syncs."""
    for rk in rng.sample(_keys(server, MOVIE), rng.randint(0, 3)):
        gone.append(server.item(rk))
        server.remove_item(rk)
    for _ in range(rng.randint(0, 3)):
        server.add_movie("1", f"Crash Film {server.next_rating_key}", rng.randint(1950, 2024))
    for rk in rng.sample(_keys(server, MOVIE), rng.randint(0, 2)):
        server.change_item(rk, title=f"Retitled Film {rk}.{trial}")
    if rng.random() < 0.3:
        server.replace_file(rng.choice(_keys(server, MOVIE)))
    if gone and rng.random() < 0.25:
        # A movie comes back with its ratingKey (a drive was remounted).
        movie = gone.pop(rng.randrange(len(gone)))
        server.items[movie.rating_key] = movie
        server.sections[movie.section_key].roots[movie.rating_key] = None
        server.invalidate()

    for rk in rng.sample(_keys(server, EPISODE), rng.randint(0, 3)):
        server.remove_item(rk)
    for rk in rng.sample(_keys(server, SHOW), rng.randint(0, 2)):
        server.add_episodes(rk, rng.randint(1, 4))
    if rng.random() < 0.15 and (seasons := _keys(server, SEASON)):
        server.remove_item(rng.choice(seasons))
    if rng.random() < 0.15 and len(shows := _keys(server, SHOW)) > 4:
        server.remove_item(rng.choice(shows))
    if rng.random() < 0.2:
        show = server.add_show("2", f"Crash Show {server.next_rating_key}", 2000 + trial)
        for season in range(1, rng.randint(1, 2) + 1):
            server.add_episodes(show.rating_key, rng.randint(2, 5), season_index=season)
    for rk in rng.sample(_keys(server, EPISODE), rng.randint(0, 2)):
        server.change_item(rk, title=f"Retitled Episode {rk}.{trial}")


def _show_library(items: set[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
    return {item for item in items if item[1] != MOVIE}


@dataclass(frozen=True, slots=True)
class Plan:
    """How one worker run is made: killed at a random point, or measured to its end."""

    mode: str
    xml: bool = False
    retention_days: float = 30.0
    kill: bool = True


# First a cold, a light and a deep run to their end: they measure how long each mode takes.
CALIBRATION: Final = (
    Plan("cold", kill=False),
    Plan("light", kill=False),
    Plan("deep", kill=False),
)


@dataclass(slots=True)
class CrashTrials:
    """The state of one series of kill trials against one emulated server."""

    server: EmuServer
    url: str
    client: PlexClient
    path: Path
    rng: random.Random
    #: Seconds a run of each mode takes (measured, then adjusted), to draw kill delays from.
    durations: dict[str, float] = field(default_factory=dict)
    #: Item states after the last converged sync (what a kill may not make worse).
    before: dict[str, str] = field(default_factory=dict)
    gone: list[EmuItem] = field(default_factory=list)
    mid_run: int = 0
    phases: Counter[str] = field(default_factory=Counter)
    modes: Counter[str] = field(default_factory=Counter)
    interrupted: int = 0
    failures: list[str] = field(default_factory=list)

    def draw(self) -> Plan:
        """Draw how the next trial runs."""
        rng = self.rng
        mode = rng.choices(MODES, MODE_WEIGHTS)[0]
        xml = rng.random() < 0.5
        retention = 0.0 if mode == "deep" and rng.random() < 0.3 else 30.0
        return Plan(mode, xml, retention)

    async def start(self, plan: Plan) -> Worker:
        """Start the worker of a run (it waits until the run begins)."""
        return await Worker.start(
            self.url, self.path, deep=plan.mode == "deep", retention_days=plan.retention_days
        )

    async def run_all(self, trials: int) -> None:
        """Calibrate, then run the trials; each next worker starts while a run is checked."""
        plans = [*CALIBRATION, *(None for _ in range(trials))]
        started: list[Worker] = []

        async def start(index: int) -> tuple[Plan, Worker]:
            plan = plans[index] or self.draw()
            started.append(await self.start(plan))
            return plan, started[-1]

        try:
            plan, worker = await start(0)
            for index in range(len(plans)):
                number = index - len(CALIBRATION)
                run = await self.execute(number, plan, worker)
                following = await start(index + 1) if index + 1 < len(plans) else None
                if not plan.kill:
                    await self.check_complete(plan, run)
                else:
                    try:
                        assert run.killed or run.returncode == 0, run.describe()
                        await self.check_killed(run)
                    except AssertionError as err:
                        self.failures.append(
                            f"trial {number} ({plan.mode}, {'xml' if plan.xml else 'json'}, "
                            f"retention {plan.retention_days:g} d, {run.phase}): {err}"
                        )
                        remove_catalog(self.path)
                        self.before = {}
                if following is None:
                    break
                plan, worker = following
        finally:
            for worker in started:
                await worker.discard()

    async def execute(self, number: int, plan: Plan, worker: Worker) -> WorkerRun:
        """Change the library, then let the worker run (and kill it after a random delay)."""
        self.server.force_xml = plan.xml
        mutate(self.server, self.rng, self.gone, number)
        if plan.mode == "cold":
            remove_catalog(self.path)
            self.before = {}
        if not plan.kill:
            run = await worker.run()
            assert run.returncode == 0, run.describe()
            assert run.finished, run.describe()
            self.durations[plan.mode] = run.seconds
            return run
        self.modes[plan.mode] += 1
        run = await worker.run(kill_after=self.rng.uniform(0, self.durations[plan.mode]))
        self.phases[run.phase] += 1
        if run.mid_run:
            self.mid_run += 1
        elif run.finished:
            # The run was shorter than the delay: draw the next ones from a shorter window.
            self.durations[plan.mode] = (self.durations[plan.mode] + run.seconds) / 2
        return run

    async def check_complete(self, plan: Plan, run: WorkerRun) -> None:
        """Check the catalog a worker run left when nothing cut it off."""
        catalog = await Catalog.open(self.path)
        try:
            assert catalog.interrupted_runs == 0
            await assert_invariants(catalog)
            mid = self.server.machine_identifier
            found = await stored_items(catalog, mid)
            if plan.mode == "light":
                assert _show_library(found) == _show_library(expected_items(self.server))
            else:
                assert found == expected_items(self.server)
            self.before = await states(catalog, mid)
        finally:
            await catalog.close()

    async def check_killed(self, run: WorkerRun) -> None:
        """Check the file a kill left, then converge with a light and a deep sync."""
        check, running = await asyncio.to_thread(file_health, self.path)
        assert check == ["ok"], f"integrity_check: {check}"
        assert running <= 1, f"{running} runs left running"
        if run.phase in ("done shows", "finished"):
            assert running == 0, "a finished run was left running"
        catalog = await Catalog.open(self.path)
        try:
            assert catalog.interrupted_runs == running
            self.interrupted += running
            await assert_invariants(catalog)
            mid = self.server.machine_identifier
            served = {str(rk) for rk in self.server.items}
            false_missing = sorted(
                (
                    key
                    for key, state in (await states(catalog, mid)).items()
                    if state in ABSENT and key in served and self.before.get(key) not in ABSENT
                ),
                key=int,
            )
            assert not false_missing, f"MISSING although Plex serves them: {false_missing}"
            without_parts = await rows(catalog, WITHOUT_PARTS)
            assert not without_parts, f"present items without parts: {without_parts}"

            _, light = await sync_all(self.client, catalog)
            assert [s.status for s in light] == ["ok", "ok"], [s.error for s in light]
            await assert_invariants(catalog)
            expected = expected_items(self.server)
            assert _show_library(await stored_items(catalog, mid)) == _show_library(expected)

            _, deep = await sync_all(self.client, catalog, deep=True)
            assert [s.status for s in deep] == ["ok", "ok"], [s.error for s in deep]
            await assert_invariants(catalog)
            assert await stored_items(catalog, mid) == expected
            parts = {
                (str(a), str(b), str(c), int(d)) for a, b, c, d in await rows(catalog, PARTS_QUERY)
            }
            assert parts == expected_parts(self.server)
            self.before = await states(catalog, mid)
        finally:
            await catalog.close()

    def report(self, trials: int) -> str:
        """Return the figures of the series."""
        return (
            f"crash safety: {trials} trials (seed {SEED}), {self.mid_run} killed mid-run, "
            f"{trials - self.mid_run} after the run ended, {self.interrupted} runs found "
            f"running and failed by Catalog.open, {len(self.failures)} failures; "
            f"modes {dict(self.modes)}; phases {dict(self.phases)}; "
            f"run seconds { ({mode: round(s, 2) for mode, s in self.durations.items()}) }"
        )


@pytest.fixture(autouse=True)
def enable_event_loop_debug() -> None:
    """Leave asyncio's debug mode off here (the harness turns it on for every test).

    Debug mode records a traceback for every callback and task: about a third of the time of
    these syncs. The engine's own tests run with it; this suite runs the same code a hundred
    times more.
    """


async def test_sync_killed_at_random_points_leaves_a_sound_catalog(tmp_path: Path) -> None:
    """Kill syncs at random points; every catalog left behind is sound and converges."""
    rng = random.Random(SEED)
    server = generate_server(
        seed=SEED % 1000,
        movies=100,
        shows=8,
        seasons_per_show=(1, 3),
        episodes_per_season=(3, 8),
        token=TOKEN,
    )
    async with PlexEmulator(server) as emulator, aiohttp.ClientSession() as session:
        client = PlexClient(
            session, emulator.url, TOKEN, page_size=PAGE_SIZE, retries=2, backoff=0, timeout=10
        )
        trials = CrashTrials(server, emulator.url, client, tmp_path / "catalog.db", rng)
        await trials.run_all(TRIALS)

    print(trials.report(TRIALS))  # noqa: T201 - the figures of the series
    assert not trials.failures, "\n".join([trials.report(TRIALS), *trials.failures])
    # Kills are drawn within a run's measured duration: many must cut a run off (a run may
    # also end before its kill: runs of one mode differ with what changed).
    assert trials.mid_run >= max(1, TRIALS * 2 // 5), trials.report(TRIALS)
