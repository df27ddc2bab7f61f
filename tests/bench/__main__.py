"""Benchmark the sync engine against the Plex emulator.

    scripts/bench --workload S --format both
    scripts/bench --workload L --format json --out bench-results/L.json --profile
    scripts/bench --workload L --timestamps spread,refreshed --anchors floor
    scripts/bench --workload L --against d38cbb8 --repeat 3
    scripts/bench --workload L --scenarios cold --anchors none --panel

Workloads: S (1k movies, 100 shows, ~2k episodes), M (5k / 500 / ~20k), L (20k / 2k / ~20k
seasons / ~100k episodes). Timestamps: spread (updatedAt over years) or refreshed (every
movie, show, season and episode shares one updatedAt, --refreshed-ago seconds before the
emulator starts: what "Refresh all metadata" leaves). Scenarios: cold, steady (no change),
churn (about 1 %), deep.
Anchors: floor (GET + parse every listing page a cold sync needs), engine_parse (the same with
the engine's parser; a diagnostic), plexapi (python-plexapi walk), naive (one detail request per
episode, sampled and extrapolated). The expansions anchor (the changed shows' children and
allLeaves) comes with churn.
Side by side: --against REV runs every scenario with the engine of git revision REV (a
detached worktree in a temporary directory, removed afterwards; or REV may be a directory
holding custom_components) and with this tree's, interleaved against one emulator, and prints
both columns (the anchors default to the floor then).
Panel: --panel times the panel's catalog queries (engine/store/browse.py) last, on a copy of
this tree's catalog after whole shows (~1,000 episodes), single episodes and movies went.
"""

from __future__ import annotations

import argparse
import contextlib
from datetime import UTC, datetime
import json
import os
from pathlib import Path
import platform
import sqlite3
import subprocess
import sys
from typing import Any

import psutil  # type: ignore[import-untyped]

from .report import (
    compare_table,
    compare_targets_table,
    panel_table,
    profile_table,
    run_table,
    steady_summary,
    targets,
    targets_table,
)
from .runner import ANCHORS, ROOT, SCENARIOS, EngineTree, Worktree, describe_tree, run_all
from .workloads import REFRESHED_AGO, TIMESTAMPS, WORKLOADS


def _say(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _names(
    values: list[str] | None, allowed: tuple[str, ...] | list[str], default: list[str]
) -> list[str]:
    if not values:
        return default
    names: list[str] = []
    for value in values:
        for raw in value.split(","):
            name = raw.strip()
            if not name:
                continue
            if name == "all":
                names.extend(allowed)
                continue
            if name not in allowed:
                raise SystemExit(f"unknown name {name!r}; choose from {', '.join(allowed)}")
            names.append(name)
    return list(dict.fromkeys(names))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="scripts/bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--workload", action="append", help="S, M, L (repeatable or comma list)")
    parser.add_argument("--format", choices=("json", "xml", "both"), default="json")
    parser.add_argument("--scenarios", action="append", help="cold,steady,churn,deep or all")
    parser.add_argument(
        "--anchors", action="append", help="floor,engine_parse,store,plexapi,naive, all or none"
    )
    parser.add_argument("--out", type=Path, help="results file (default bench-results/<time>.json)")
    parser.add_argument(
        "--profile", action="store_true", help="also run a cold sync under cProfile"
    )
    parser.add_argument(
        "--timestamps",
        action="append",
        help="spread (default), refreshed (one shared updatedAt), or all",
    )
    parser.add_argument(
        "--refreshed-ago",
        type=int,
        default=REFRESHED_AGO,
        metavar="SECONDS",
        help=f"with refreshed: the refresh happened this long before the emulator started "
        f"(default {REFRESHED_AGO})",
    )
    parser.add_argument(
        "--against",
        metavar="REV",
        help="also run the engine of this git revision (or tree directory), side by side",
    )
    parser.add_argument(
        "--report",
        type=Path,
        metavar="RESULTS",
        help="run nothing: print the tables of an earlier results file",
    )
    parser.add_argument(
        "--panel",
        action="store_true",
        help="also time the panel's catalog queries, last, after some items went",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="measure every scenario and anchor this often; report the median (default 1)",
    )
    return parser.parse_args(argv)


def machine() -> dict[str, Any]:
    """Describe where the numbers come from."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        revision = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        engine_changes = subprocess.run(
            ["git", "status", "--porcelain", "custom_components"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split("\n")
    except OSError:  # pragma: no cover - git is missing
        revision, engine_changes = "", []
    import aiohttp
    import plexapi

    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 1024**3, 1),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "aiohttp": aiohttp.__version__,
        "plexapi": plexapi.VERSION,
        "git": revision,
        # Uncommitted engine files the numbers were measured with.
        "engine_uncommitted": sorted(line[3:] for line in engine_changes if line.strip()),
    }


def report(results: list[dict[str, Any]]) -> None:
    """Print the tables of every run, then the steady re-sync against its targets."""
    for data in results:
        _say()
        _say(run_table(data))
        _say(targets_table(data, targets(data)))
        if len(data.get("engines") or ()) > 1:
            _say()
            _say(compare_table(data))
            _say(compare_targets_table(data))
        if data.get("profile"):
            _say(profile_table(data))
        if data.get("panel"):
            _say()
            _say(panel_table(data))
    summary = steady_summary(results)
    if summary:
        _say()
        _say(summary)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the tables and write the results file."""
    args = parse_args(argv)
    if args.report:
        report(json.loads(args.report.read_text())["runs"])
        return 0
    workloads = _names(args.workload, sorted(WORKLOADS), ["S"])
    formats = ["json", "xml"] if args.format == "both" else [args.format]
    scenarios = _names(args.scenarios, SCENARIOS, list(SCENARIOS))
    timestamps = _names(args.timestamps, TIMESTAMPS, ["spread"])
    anchor_values = [value for value in args.anchors or [] if value != "none"]
    if args.anchors and not anchor_values:
        anchors: list[str] = []
    elif not args.anchors and args.against:
        anchors = ["floor"]
    else:
        anchors = _names(anchor_values, ANCHORS, list(ANCHORS))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out: Path = args.out or ROOT / "bench-results" / f"bench-{stamp}.json"
    facts = machine()
    _say(
        f"machine: {facts['cpu']}, {facts['cores']} cores, {facts['memory_gib']} GiB, "
        f"Python {facts['python']}, SQLite {facts['sqlite']}, git {facts['git']}"
        + (f" + uncommitted {facts['engine_uncommitted']}" if facts["engine_uncommitted"] else "")
    )
    with contextlib.ExitStack() as stack:
        engines = None
        if args.against:
            tree = Path(args.against)
            if (tree / "custom_components").is_dir():
                before = EngineTree("before", tree.resolve(), describe_tree(tree.resolve()))
            else:
                before = stack.enter_context(Worktree(args.against))
            engines = [before, EngineTree.current("after")]
            _say(f"side by side: before = {before.revision} ({before.root}), after = this tree")
        runs = run_all(
            workloads,
            formats,
            scenarios=scenarios,
            anchors=anchors,
            profile=args.profile,
            profile_dir=out.parent,
            log=_say,
            timestamps=timestamps,
            refreshed_ago=args.refreshed_ago,
            engines=engines,
            repeat=args.repeat,
            panel=args.panel,
        )
    results: list[dict[str, Any]] = []
    for run in runs:
        data = run.as_dict()
        data["targets"] = [target.as_dict() for target in targets(data)]
        results.append(data)
    report(results)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps({"machine": facts, "started": stamp, "runs": results}, indent=1) + "\n"
    )
    _say(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
