"""Run the scenarios and anchors of one workload and format; every measured part is a process.

Processes: the emulator (`tests.bench.emuproc`, controlled over a pipe), and one fresh worker
(`tests.bench.worker`) per measured task, so the sync's CPU and RSS are its own. Before each
timed task the pages it reads are rendered once (an untimed walk of the same listings), so the
emulator mostly serves cached bodies; what it still renders is reported as its share.

Side by side (`--against REV`): the same emulator process serves two engines, the other
revision's (imported from a git worktree, see `EngineTree`) and this tree's. Each has its own
catalog; every scenario runs for both, one after the other, the order alternating from
scenario to scenario and from repetition to repetition, so that the machine's drift falls on
both alike. Anchors (the floor, the expansions) are engine-independent yardsticks, measured
once with this tree's worker, and both columns are divided by the same floor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
import functools
import json
import os
from pathlib import Path
import shutil
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
#: What goes before the panel's queries are timed: whole shows holding about this many
#: episodes, single episodes of other shows, movies (see emuproc's `vanish`).
PANEL_VANISH: Final = {"episodes": 1000, "singles": 20, "movies": 20, "seed": 3}
PANEL_REPEAT: Final = 5

type Log = Callable[[str], None]


class BenchError(RuntimeError):
    """A process of the benchmark failed."""


@dataclass(frozen=True, slots=True)
class EngineTree:
    """A tree whose `custom_components` the sync workers import.

    `name` labels the column ("current" alone; "before" and "after" side by side). A worker
    for this tree (`root` == ROOT) runs from ROOT as always. A worker for another tree runs
    from a directory holding two links: `custom_components` to that tree's and `tests` to
    this tree's, so `python -m tests.bench.worker` (its directory first on `sys.path`) runs
    this tree's worker on the other tree's engine, against this tree's emulator. The worker
    reports the engine package it imported; the runner checks it.
    """

    name: str
    root: Path
    revision: str

    @classmethod
    def current(cls, name: str = "current") -> EngineTree:
        """Return this tree's engine."""
        return cls(name, ROOT, describe_tree())

    def as_dict(self) -> dict[str, str]:
        """Return a JSON-safe dict."""
        return {"name": self.name, "root": str(self.root), "revision": self.revision}

    def workdir(self, tmp: Path) -> Path:
        """Return the directory a worker for this engine starts in (made on first use)."""
        if self.root.resolve() == ROOT:
            return ROOT
        shim = tmp / f"engine-{self.name}"
        if not shim.exists():
            shim.mkdir(parents=True)
            (shim / "custom_components").symlink_to(self.root.resolve() / "custom_components")
            (shim / "tests").symlink_to(ROOT / "tests")
        return shim

    def check(self, result: dict[str, Any]) -> None:
        """Raise unless the worker imported this tree's engine."""
        used = result.get("engine")
        if used is not None and not Path(used).is_relative_to(self.root.resolve()):
            raise BenchError(f"engine {self.name}: the worker imported {used}, not {self.root}")


def _git(*args: str, cwd: Path = ROOT) -> str:
    done = subprocess.run(  # noqa: S603 - git with our own arguments
        ["git", *args],  # noqa: S607 - git from PATH, as a developer runs it
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


def describe_tree(root: Path = ROOT) -> str:
    """Return "<short rev>" or "<short rev> + uncommitted engine changes" for a checkout."""
    try:
        revision = _git("rev-parse", "--short", "HEAD", cwd=root)
        dirty = _git("status", "--porcelain", "custom_components", cwd=root)
    except (BenchError, OSError):
        return "unknown"
    return f"{revision} + uncommitted engine changes" if dirty else revision


class Worktree:
    """A detached git worktree of a revision in a temporary directory, removed on exit.

    `git worktree add --detach` leaves the checkout's branches, index and working tree alone;
    it records the worktree under `.git/worktrees`, which `git worktree remove` takes back.
    """

    def __init__(self, revision: str) -> None:
        """Prepare; entering the context creates the worktree."""
        self.revision = revision
        self.path: Path | None = None
        self.short = ""

    def __enter__(self) -> EngineTree:
        """Create the worktree and return its engine."""
        self.short = _git("rev-parse", "--short", f"{self.revision}^{{commit}}")
        base = Path(tempfile.mkdtemp(prefix=f"retrovue-bench-{self.short}-"))
        self.path = base / "tree"
        _git("worktree", "add", "--detach", str(self.path), self.short)
        if not (self.path / "custom_components").is_dir():
            raise BenchError(f"{self.revision} has no custom_components")
        return EngineTree("before", self.path, self.short)

    def __exit__(self, *exc: object) -> None:
        """Remove the worktree and its directory."""
        if self.path is None:
            return
        try:
            _git("worktree", "remove", "--force", str(self.path))
        finally:
            shutil.rmtree(self.path.parent, ignore_errors=True)


class EmulatorProcess:
    """The emulator in its own process; commands over stdin/stdout, CPU from psutil."""

    def __init__(self, workload: Workload, fmt: str) -> None:
        """Start the process and wait until it serves."""
        argv = [
            sys.executable,
            "-m",
            "tests.bench.emuproc",
            "--workload",
            workload.name,
            "--format",
            fmt,
        ]
        if workload.refreshed_ago is not None:
            argv += ["--refreshed-ago", str(workload.refreshed_ago)]
        self._proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            argv,
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


def run_worker(task: dict[str, Any], cwd: Path = ROOT) -> dict[str, Any]:
    """Run one task in a fresh worker process started in `cwd` and return its result."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    if cwd != ROOT:
        # Another tree's engine: pytest-cov's subprocess measurement would write data this
        # tree's coverage cannot combine (and of code that is not this tree's).
        env = {key: value for key, value in env.items() if not key.startswith("COV_CORE_")}
    done = subprocess.run(
        [sys.executable, "-m", "tests.bench.worker"],
        cwd=cwd,
        input=json.dumps(task),
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise BenchError(
            f"worker {task['task']} failed (status {done.returncode}):\n{done.stderr[-4000:]}"
        )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def median_result(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Return the repetition with the median wall time, with every repetition's figures.

    Of an even count the lower middle one.
    """
    ordered = sorted(results, key=lambda result: result["wall"])
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    if len(results) > 1:
        chosen["repetitions"] = [
            {
                "wall": result["wall"],
                "cpu": result["cpu"],
                "requests": result.get("requests"),
                "order": result.get("order"),
            }
            for result in results
        ]
    return chosen


def _copy_catalog(source: Path, target: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    if not source.exists():
        return
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def _light_since(db: Path) -> dict[str, int | None]:
    """Return each library's `light_since` (None where the schema has no such column)."""
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    except sqlite3.Error:
        return {}
    try:
        rows = conn.execute("SELECT section_key, light_since FROM libraries").fetchall()
    except sqlite3.Error:
        return {}
    finally:
        conn.close()
    return {str(key): since for key, since in rows}


@dataclass(slots=True)
class Run:
    """Results of one workload in one format (with one engine, or two side by side)."""

    workload: Workload
    fmt: str
    engines: list[EngineTree]
    items: dict[str, int] = field(default_factory=dict)
    sides: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    anchors: dict[str, dict[str, Any]] = field(default_factory=dict)
    churn: dict[str, Any] = field(default_factory=dict)
    updated_at: dict[str, Any] = field(default_factory=dict)
    refresh: dict[str, Any] = field(default_factory=dict)
    profile: dict[str, Any] | None = None
    #: The panel's queries on the synced catalog (`--panel`).
    panel: dict[str, Any] | None = None
    repeat: int = 1
    seconds: float = 0.0
    #: Engines left out after failing (another revision only), with where and why.
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def scenarios(self) -> dict[str, dict[str, Any]]:
        """Return the scenarios of this tree's engine (the last one)."""
        return self.sides.setdefault(self.engines[-1].name, {})

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict."""
        data: dict[str, Any] = {
            "workload": self.workload.name,
            "timestamps": self.workload.timestamps,
            "label": self.workload.label,
            "format": self.fmt,
            "generate": self.workload.generate_kwargs() | {"token": "(bench token)"},
            "churn_spec": self.workload.churn.as_dict(),
            "items": self.items,
            "updated_at": self.updated_at,
            "refresh": self.refresh,
            "scenarios": self.scenarios,
            "anchors": self.anchors,
            "churn": self.churn,
            "profile": self.profile,
            "panel": self.panel,
            "repeat": self.repeat,
            "seconds": self.seconds,
            "engines": [engine.as_dict() for engine in self.engines],
        }
        if len(self.engines) > 1:
            data["sides"] = self.sides
            data["failed"] = self.failed
        return data


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
        engines: Sequence[EngineTree] | None = None,
        repeat: int = 1,
        panel: bool = False,
    ) -> None:
        """Prepare; `run()` does the work.

        `engines`: one (default: this tree's) or two, the other revision first; every
        scenario runs for each. `repeat`: how often each scenario and anchor is measured (on
        fresh copies of the catalog it starts from); the repetition with the median wall time
        is reported, with all of them. `panel`: time the panel's queries last (this tree's
        engine), once some shows, episodes and movies are gone.
        """
        self.workload = workload
        self.fmt = fmt
        self.scenarios = [name for name in SCENARIOS if name in scenarios]
        self.anchors = [name for name in ANCHORS if name in anchors]
        self.profile = profile
        self.profile_dir = profile_dir
        self.log = log
        self.engines = list(engines) if engines else [EngineTree.current()]
        if len({engine.name for engine in self.engines}) != len(self.engines):
            raise ValueError("engines need distinct names")
        self.repeat = max(1, repeat)
        self.panel = panel
        self.result = Run(workload, fmt, self.engines, repeat=self.repeat)
        self.tmp = Path()
        self.measurements = 0

    @property
    def current(self) -> EngineTree:
        """Return the engine the anchors and the profile use (this tree's, the last)."""
        return self.engines[-1]

    def run(self) -> Run:
        """Run everything asked and return the results."""
        began = time.perf_counter()
        with (
            tempfile.TemporaryDirectory(prefix="retrovue-bench-") as tmp,
            EmulatorProcess(self.workload, self.fmt) as emu,
        ):
            self.tmp = Path(tmp)
            for engine in self.engines:
                (self.tmp / engine.name).mkdir()
            self._run(emu)
        self.result.seconds = time.perf_counter() - began
        return self.result

    def db(self, engine: EngineTree, name: str = "catalog.db") -> Path:
        """Return a catalog path of one engine's."""
        return self.tmp / engine.name / name

    # --- measuring --------------------------------------------------------------------------

    def _measure(
        self, emu: EmulatorProcess, task: dict[str, Any], engine: EngineTree | None = None
    ) -> dict[str, Any]:
        """Run a worker task with the emulator's counters zeroed; attach the emulator's share."""
        engine = engine or self.current
        emu.command("reset")
        cpu_before = emu.cpu_seconds()
        result = run_worker({"url": emu.url, "token": emu.token, **task}, engine.workdir(self.tmp))
        cpu_after = emu.cpu_seconds()
        engine.check(result)
        # Where this measurement fell among the run's (the interleaving, for the report).
        self.measurements += 1
        result["order"] = self.measurements
        stats = emu.command("stats")
        listings = emu.command("log")["listings"]
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
            "listings": listings,
        }
        return result

    def _measure_repeated(
        self, emu: EmulatorProcess, task: dict[str, Any], name: str
    ) -> dict[str, Any]:
        result = median_result([self._measure(emu, task) for _ in range(self.repeat)])
        self._note(name, result)
        return result

    def _warm(
        self,
        emu: EmulatorProcess,
        task: dict[str, Any],
        label: str,
        engine: EngineTree | None = None,
    ) -> None:
        began = time.perf_counter()
        engine = engine or self.current
        engine.check(
            run_worker({"url": emu.url, "token": emu.token, **task}, engine.workdir(self.tmp))
        )
        self.log(f"  warm {label}: {time.perf_counter() - began:.1f}s")

    def _rehearse(self, emu: EmulatorProcess, task: dict[str, Any], engine: EngineTree) -> None:
        """Run the same sync untimed on a copy of the catalog, so its pages are rendered."""
        copy = self.db(engine, "rehearsal.db")
        _copy_catalog(Path(task["db"]), copy)
        self._warm(emu, {**task, "db": str(copy)}, f"{engine.name} (rehearsal on a copy)", engine)

    def _note(self, name: str, result: dict[str, Any]) -> None:
        extra = ""
        if "requests" in result:
            extra = f", {result['requests']} requests"
        if "rows_written" in result:
            extra += f", {result['rows_written']} rows written"
        if "repetitions" in result:
            walls = sorted(rep["wall"] for rep in result["repetitions"])
            extra += f" (median of {len(walls)}: {walls[0]:.2f}-{walls[-1]:.2f}s)"
        self.log(
            f"  {name}: {result['wall']:.2f}s wall, {result['cpu']:.2f}s CPU{extra}, "
            f"emulator {result['emulator']['cpu_seconds']:.2f}s CPU"
        )

    def _run(self, emu: EmulatorProcess) -> None:
        res = self.result
        info = emu.command("info", sample=NAIVE_SAMPLE)
        res.items = info["counts"]
        res.updated_at = info["updated_at"]
        if self.workload.refreshed_ago is not None:
            res.refresh = {"at": info["updated_at"]["max"], "ago": self.workload.refreshed_ago}
        self.log(
            f"{self.workload.label}/{self.fmt}: emulator pid {emu.pid} at {emu.url}, "
            f"items {res.items}, {res.updated_at['distinct']} distinct updatedAt"
            + "".join(f"; engine {e.name}: {e.revision} ({e.root})" for e in self.engines)
        )
        floor_task = {"task": "floor", "which": "sections"}
        # Render every section listing page once (what cold and deep syncs read).
        self._warm(emu, floor_task, "section listings")
        if "floor" in self.anchors:
            res.anchors["floor"] = self._measure_repeated(emu, floor_task, "floor")
        if "engine_parse" in self.anchors:
            res.anchors["engine_parse"] = self._measure_repeated(
                emu, {**floor_task, "parser": "engine"}, "engine_parse"
            )
        if "cold" in self.scenarios:
            if res.refresh:
                now = emu.command("stats")["now"]
                res.refresh["before_cold"] = now - res.refresh["at"]
                self.log(
                    f"  every updatedAt is {res.refresh['at']}: {res.refresh['before_cold']}s "
                    "before the cold sync starts (server clock)"
                )
            self._scenario(emu, "cold")
            if "store" in self.anchors:
                # The rows the cold sync wrote, written again with nothing else to do.
                store_task = {
                    "task": "store",
                    "source": str(self.db(self.current)),
                    "db": str(self.db(self.current, "store.db")),
                }
                res.anchors["store"] = self._measure_repeated(emu, store_task, "store")
        if "steady" in self.scenarios:
            self._scenario(emu, "steady")
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
            res.anchors["expansions"] = self._measure_repeated(emu, expansions_task, "expansions")
            self._scenario(emu, "churn")
        if "deep" in self.scenarios:
            self._scenario(emu, "deep")
        if self.profile:
            profile_db = self.db(self.current, "profile.db")
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
        if self.panel:
            self._panel(emu)

    def _panel(self, emu: EmulatorProcess) -> None:
        """Time the panel's queries on a copy of this tree's catalog after some items went.

        Runs last: it removes items from the emulator. A catalog the scenarios did not build
        is synced first (untimed).
        """
        engine = self.current
        db = self.db(engine, "panel.db")
        _copy_catalog(self.db(engine), db)
        sync_task = {"task": "sync", "db": str(db), "deep": False}
        self._warm(emu, sync_task, "panel: the catalog, up to date")
        gone = emu.command("vanish", **PANEL_VANISH)
        self.log(
            f"  panel: {len(gone['shows'])} shows ({gone['show_episodes']} episodes), "
            f"{len(gone['single_episodes'])} single episodes and {len(gone['movies'])} movies "
            "removed"
        )
        self._warm(emu, sync_task, "panel: the removals synced")
        result = run_worker(
            {"task": "panel", "db": str(db), "repeat": PANEL_REPEAT}, engine.workdir(self.tmp)
        )
        engine.check(result)
        result["vanished"] = {
            "shows": len(gone["shows"]),
            "show_episodes": gone["show_episodes"],
            "single_episodes": len(gone["single_episodes"]),
            "movies": len(gone["movies"]),
        }
        self.result.panel = result
        self.log(
            f"  panel: first page {result['first_panel_page_ms']:.1f} ms "
            "(libraries + 100 items by title)"
        )

    def _scenario(self, emu: EmulatorProcess, name: str) -> None:
        """Measure one scenario for every engine, interleaved, `repeat` times each.

        Each engine's catalog (`catalog.db`) goes through the scenarios in order. Every
        repetition but the last runs on a copy of the catalog the scenario starts from (an
        empty one for cold); the last runs on the catalog itself, which moves on.
        """
        deep = name == "deep"
        if name != "cold":
            for engine in self._active():
                task = {"task": "sync", "db": str(self.db(engine)), "deep": deep}
                self._attempt(engine, name, functools.partial(self._rehearse, emu, task, engine))
        measured: dict[str, list[dict[str, Any]]] = {engine.name: [] for engine in self.engines}
        turn = SCENARIOS.index(name)
        for rep in range(self.repeat):
            engines = self._active()
            order = engines if (turn + rep) % 2 == 0 else engines[::-1]
            for engine in order:
                db = self.db(engine)
                if rep < self.repeat - 1:
                    scratch = self.db(engine, "repetition.db")
                    _copy_catalog(db, scratch)
                    db = scratch
                task = {"task": "sync", "db": str(db), "deep": deep}

                def measure(e: EngineTree = engine, t: dict[str, Any] = task) -> None:
                    result = self._measure(emu, t, e)
                    result["light_since"] = _light_since(Path(t["db"]))
                    measured[e.name].append(result)

                self._attempt(engine, name, measure)
        for engine in self._active():
            result = median_result(measured[engine.name])
            self.result.sides.setdefault(engine.name, {})[name] = result
            label = name if len(self.engines) == 1 else f"{name} [{engine.name}]"
            self._note(label, result)

    def _active(self) -> list[EngineTree]:
        return [engine for engine in self.engines if engine.name not in self.result.failed]

    def _attempt(self, engine: EngineTree, scenario: str, action: Callable[[], None]) -> None:
        """Run an action for an engine; another revision that fails is left out from then on.

        An older engine may lack what this tree's worker calls: its column then ends where it
        failed ("run what both support"). This tree's engine failing ends the run.
        """
        try:
            action()
        except BenchError as err:
            if engine is self.current:
                raise
            self.result.failed[engine.name] = f"{scenario}: {err}"
            self.log(f"  engine {engine.name} failed in {scenario}; left out from here: {err}")


def run_all(
    workloads: Sequence[str],
    formats: Sequence[str],
    *,
    scenarios: Sequence[str] = SCENARIOS,
    anchors: Sequence[str] = ANCHORS,
    profile: bool = False,
    profile_dir: Path | None = None,
    log: Log = lambda _line: None,
    timestamps: Sequence[str] = ("spread",),
    refreshed_ago: int | None = None,
    engines: Sequence[EngineTree] | None = None,
    repeat: int = 1,
    panel: bool = False,
) -> list[Run]:
    """Run every workload with every timestamp variant in every format."""
    runs: list[Run] = []
    for name in workloads:
        for variant in timestamps:
            workload = (
                WORKLOADS[name].variant(variant)
                if refreshed_ago is None
                else WORKLOADS[name].variant(variant, refreshed_ago)
            )
            runs.extend(
                Bench(
                    workload,
                    fmt,
                    scenarios=scenarios,
                    anchors=anchors,
                    profile=profile,
                    profile_dir=profile_dir,
                    log=log,
                    engines=engines,
                    repeat=repeat,
                    panel=panel,
                ).run()
                for fmt in formats
            )
    return runs
