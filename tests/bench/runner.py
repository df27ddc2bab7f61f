"""Run the scenarios and anchors of one workload and format; every measured part is a process.

Processes: the emulator (`tests.bench.emuproc`, controlled over a pipe), and one fresh worker
(`tests.bench.worker`) per measured task, so the sync's CPU and RSS are its own. Before each
timed task the pages it reads are rendered once (an untimed walk of the same listings), so the
emulator mostly serves cached bodies; what it still renders is reported as its share.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
import json
import os
from pathlib import Path
import sqlite3
import subprocess
import sys
import tempfile
import time
from typing import IO, Any, Final

import psutil  # type: ignore[import-untyped]

from .workloads import WORKLOADS, Workload

ROOT: Final = Path(__file__).resolve().parents[2]
SCENARIOS: Final = ("cold", "steady", "churn", "deep")
ANCHORS: Final = ("floor", "engine_parse", "store", "plexapi", "naive")
NAIVE_SAMPLE: Final = 500

type Log = Callable[[str], None]


class BenchError(RuntimeError):
    """A process of the benchmark failed."""


class EmulatorProcess:
    """The emulator in its own process; commands over stdin/stdout, CPU from psutil."""

    def __init__(self, workload: str, fmt: str) -> None:
        """Start the process and wait until it serves."""
        self._proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "tests.bench.emuproc", "--workload", workload, "--format", fmt],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        ready = self._read()
        self.url: str = ready["url"]
        self.token: str = ready["token"]
        self.pid: int = ready["pid"]
        self.process = psutil.Process(self._proc.pid)

    def _read(self) -> dict[str, Any]:
        stdout = self._proc.stdout
        assert stdout is not None
        line = stdout.readline()
        if not line:
            raise BenchError(f"the emulator process ended (status {self._proc.wait()})")
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise BenchError(f"emulator: {reply['error']}")
        return reply

    def command(self, cmd: str, **params: Any) -> dict[str, Any]:
        """Send one command and return the answer."""
        stdin: IO[str] | None = self._proc.stdin
        assert stdin is not None
        stdin.write(json.dumps({"cmd": cmd, **params}) + "\n")
        stdin.flush()
        return self._read()

    def cpu_seconds(self) -> float:
        """Return the emulator process's CPU seconds so far (user + system)."""
        times = self.process.cpu_times()
        return float(times.user + times.system)

    def rss(self) -> int:
        """Return the emulator's resident memory."""
        return int(self.process.memory_info().rss)

    def close(self) -> None:
        """Stop the process."""
        if self._proc.poll() is None:
            try:
                self.command("quit")
                self._proc.wait(timeout=30)
            except (BenchError, OSError, subprocess.TimeoutExpired):
                self._proc.kill()
                self._proc.wait()

    def __enter__(self) -> EmulatorProcess:
        """Use as a context manager."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop on leaving the context."""
        self.close()


def run_worker(task: dict[str, Any]) -> dict[str, Any]:
    """Run one task in a fresh worker process and return its result."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.bench.worker"],
        cwd=ROOT,
        input=json.dumps(task),
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise BenchError(
            f"worker {task['task']} failed (status {done.returncode}):\n{done.stderr[-4000:]}"
        )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@dataclass(slots=True)
class Run:
    """Results of one workload in one format."""

    workload: Workload
    fmt: str
    items: dict[str, int] = field(default_factory=dict)
    scenarios: dict[str, dict[str, Any]] = field(default_factory=dict)
    anchors: dict[str, dict[str, Any]] = field(default_factory=dict)
    churn: dict[str, Any] = field(default_factory=dict)
    profile: dict[str, Any] | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict."""
        return {
            "workload": self.workload.name,
            "format": self.fmt,
            "generate": self.workload.generate_kwargs() | {"token": "(bench token)"},
            "churn_spec": self.workload.churn.as_dict(),
            "items": self.items,
            "scenarios": self.scenarios,
            "anchors": self.anchors,
            "churn": self.churn,
            "profile": self.profile,
            "seconds": self.seconds,
        }


class Bench:
    """Drive one workload/format: emulator process, warm-ups, measured workers."""

    def __init__(
        self,
        workload: Workload,
        fmt: str,
        *,
        scenarios: Sequence[str] = SCENARIOS,
        anchors: Sequence[str] = ANCHORS,
        profile: bool = False,
        profile_dir: Path | None = None,
        log: Log = lambda _line: None,
    ) -> None:
        """Prepare; `run()` does the work."""
        self.workload = workload
        self.fmt = fmt
        self.scenarios = [name for name in SCENARIOS if name in scenarios]
        self.anchors = [name for name in ANCHORS if name in anchors]
        self.profile = profile
        self.profile_dir = profile_dir
        self.log = log
        self.result = Run(workload, fmt)

    def run(self) -> Run:
        """Run everything asked and return the results."""
        began = time.perf_counter()
        with (
            tempfile.TemporaryDirectory(prefix="retrovue-bench-") as tmp,
            EmulatorProcess(self.workload.name, self.fmt) as emu,
        ):
            self._run(emu, Path(tmp))
        self.result.seconds = time.perf_counter() - began
        return self.result

    # --- measuring --------------------------------------------------------------------------

    def _measure(self, emu: EmulatorProcess, task: dict[str, Any]) -> dict[str, Any]:
        """Run a worker task with the emulator's counters zeroed; attach the emulator's share."""
        emu.command("reset")
        cpu_before = emu.cpu_seconds()
        result = run_worker({"url": emu.url, "token": emu.token, **task})
        cpu_after = emu.cpu_seconds()
        stats = emu.command("stats")
        result["emulator"] = {
            "cpu_seconds": cpu_after - cpu_before,
            "render_seconds": stats["render_seconds"],
            "renders": stats["renders"],
            "cache_hits": stats["cache_hits"],
            "cache_misses": stats["cache_misses"],
            "bytes_sent": stats["bytes_sent"],
            "requests": stats["requests"],
            "counters": stats["counters"],
            "rss": emu.rss(),
        }
        return result

    def _warm(self, emu: EmulatorProcess, task: dict[str, Any], label: str) -> None:
        began = time.perf_counter()
        run_worker({"url": emu.url, "token": emu.token, **task})
        self.log(f"  warm {label}: {time.perf_counter() - began:.1f}s")

    def _rehearse(self, emu: EmulatorProcess, task: dict[str, Any], tmp: Path, name: str) -> None:
        """Run the same sync untimed on a copy of the catalog, so its pages are rendered."""
        copy = tmp / "rehearsal.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{copy}{suffix}").unlink(missing_ok=True)
        source = sqlite3.connect(task["db"])
        target = sqlite3.connect(copy)
        try:
            source.backup(target)
        finally:
            target.close()
            source.close()
        self._warm(emu, {**task, "db": str(copy)}, f"{name} (rehearsal on a copy)")

    def _note(self, name: str, result: dict[str, Any]) -> None:
        extra = ""
        if "requests" in result:
            extra = f", {result['requests']} requests"
        if "rows_written" in result:
            extra += f", {result['rows_written']} rows written"
        self.log(
            f"  {name}: {result['wall']:.2f}s wall, {result['cpu']:.2f}s CPU{extra}, "
            f"emulator {result['emulator']['cpu_seconds']:.2f}s CPU"
        )

    def _run(self, emu: EmulatorProcess, tmp: Path) -> None:
        res = self.result
        info = emu.command("info", sample=NAIVE_SAMPLE)
        res.items = info["counts"]
        self.log(
            f"{self.workload.name}/{self.fmt}: emulator pid {emu.pid} at {emu.url}, "
            f"items {res.items}"
        )
        floor_task = {"task": "floor", "which": "sections"}
        # Render every section listing page once (what cold and deep syncs read).
        self._warm(emu, floor_task, "section listings")
        if "floor" in self.anchors:
            res.anchors["floor"] = self._measure(emu, floor_task)
            self._note("floor", res.anchors["floor"])
        if "engine_parse" in self.anchors:
            res.anchors["engine_parse"] = self._measure(emu, {**floor_task, "parser": "engine"})
            self._note("engine_parse", res.anchors["engine_parse"])
        db = tmp / "catalog.db"
        if "cold" in self.scenarios:
            self._scenario(emu, "cold", {"task": "sync", "db": str(db), "deep": False})
            if "store" in self.anchors:
                # The rows the cold sync wrote, written again with nothing else to do.
                store_task = {"task": "store", "source": str(db), "db": str(tmp / "store.db")}
                res.anchors["store"] = self._measure(emu, store_task)
                self._note("store", res.anchors["store"])
        if "steady" in self.scenarios:
            self._scenario(emu, "steady", {"task": "sync", "db": str(db), "deep": False})
        if "naive" in self.anchors:
            naive_task = {"task": "naive", "keys": info["episode_sample"]}
            self._warm(emu, naive_task, "episode details")
            naive = self._measure(emu, naive_task)
            per_request = naive["wall"] / max(naive["requests"], 1)
            episodes = res.items.get("episode", 0)
            naive["method"] = (
                f"sequential GET+parse of /library/metadata/{{id}} for {naive['requests']} "
                f"episodes spread evenly over the library; mean {per_request * 1000:.2f} ms "
                f"per request x {episodes} episodes, plus the floor's movie, show and season "
                "listings"
            )
            naive["per_request"] = per_request
            listings = res.anchors.get("floor", {}).get("listings", {})
            discover = sum(
                listings.get(label, {}).get("seconds", 0.0)
                for label in ("movies", "shows", "seasons")
            )
            naive["estimated_wall"] = per_request * episodes + discover
            naive["estimated_requests"] = episodes + sum(
                int(listings.get(label, {}).get("pages", 0))
                for label in ("movies", "shows", "seasons")
            )
            res.anchors["naive"] = naive
            self.log(
                f"  naive: {per_request * 1000:.2f} ms/request -> "
                f"~{naive['estimated_wall']:.1f}s for the library"
            )
        if "plexapi" in self.anchors:
            self._warm(emu, {"task": "plexapi"}, "python-plexapi pages")
            res.anchors["plexapi"] = self._measure(emu, {"task": "plexapi"})
            self._note("plexapi", res.anchors["plexapi"])
        if "churn" in self.scenarios:
            res.churn = emu.command("churn", churn=self.workload.churn.as_dict(), seed=2)
            self.log(
                f"  churn applied: {len(res.churn['changed_shows'])} shows, "
                f"{res.churn['episodes_changed']} episodes changed, "
                f"{res.churn['episodes_added']} added, {res.churn['episodes_removed']} removed, "
                f"{len(res.churn['changed_movies'])} movies; "
                f"{res.churn['expected_written']} rows to write"
            )
            shows = [str(key) for key in res.churn["changed_shows"]]
            expansions_task = {"task": "floor", "which": "expansions", "shows": shows}
            self._warm(emu, expansions_task, "changed shows' expansions")
            res.anchors["expansions"] = self._measure(emu, expansions_task)
            self._note("expansions", res.anchors["expansions"])
            self._scenario(emu, "churn", {"task": "sync", "db": str(db), "deep": False})
        if "deep" in self.scenarios:
            self._scenario(emu, "deep", {"task": "sync", "db": str(db), "deep": True})
        if self.profile:
            profile_db = tmp / "profile.db"
            out = None
            if self.profile_dir is not None:
                self.profile_dir.mkdir(parents=True, exist_ok=True)
                out = str(self.profile_dir / f"cold-{self.workload.name}-{self.fmt}.prof")
            result = self._measure(
                emu,
                {
                    "task": "sync",
                    "db": str(profile_db),
                    "deep": False,
                    "profile": True,
                    "profile_out": out,
                },
            )
            res.profile = {
                "scenario": "cold (under cProfile; its times are inflated)",
                "wall": result["wall"],
                "cpu": result["cpu"],
                "file": out,
                **result["profile"],
            }
            self.log(f"  profiled cold sync: {result['wall']:.2f}s wall under cProfile")

    def _scenario(self, emu: EmulatorProcess, name: str, task: dict[str, Any]) -> None:
        if name != "cold":
            self._rehearse(emu, task, Path(task["db"]).parent, name)
        result = self._measure(emu, task)
        self.result.scenarios[name] = result
        self._note(name, result)


def run_all(
    workloads: Sequence[str],
    formats: Sequence[str],
    *,
    scenarios: Sequence[str] = SCENARIOS,
    anchors: Sequence[str] = ANCHORS,
    profile: bool = False,
    profile_dir: Path | None = None,
    log: Log = lambda _line: None,
) -> list[Run]:
    """Run every workload in every format."""
    return [
        Bench(
            WORKLOADS[name],
            fmt,
            scenarios=scenarios,
            anchors=anchors,
            profile=profile,
            profile_dir=profile_dir,
            log=log,
        ).run()
        for name in workloads
        for fmt in formats
    ]
