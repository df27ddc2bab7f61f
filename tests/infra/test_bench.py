"""Workload S through the benchmark harness: behaviour only, never times.

The emulator and every sync run in their own processes, exactly as `scripts/bench` runs them.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path
import re
import shutil
from typing import Any

import pytest

from tests.bench.__main__ import main as bench_main
from tests.bench.report import (
    best,
    compare_rows,
    compare_table,
    compare_targets_table,
    run_table,
    steady_summary,
    targets,
    windows,
)
from tests.bench.runner import ROOT, Bench
from tests.bench.workloads import WORKLOADS

LISTING_ENDPOINTS = {"root", "sections", "section_all"}


@pytest.fixture(scope="module")
def run() -> dict[str, Any]:
    """Run cold, steady and churn on workload S (JSON) once for the module."""
    bench = Bench(WORKLOADS["S"], "json", scenarios=("cold", "steady", "churn"), anchors=("store",))
    return bench.run().as_dict()


def _pages(count: int, page_size: int) -> int:
    return max(1, math.ceil(count / page_size))


@pytest.mark.timeout(300)
def test_cold_sync_lists_sections_without_per_item_requests(run: dict[str, Any]) -> None:
    cold = run["scenarios"]["cold"]
    items = run["items"]
    size = cold["page_size"]

    assert [summary["status"] for summary in cold["summaries"]] == ["ok", "ok"]
    assert cold["rows_written"] == sum(items.values())
    assert cold["rows_written_by_kind"] == items
    requests = cold["client_requests"]
    # Nothing is missing on a cold run: no metadata confirmation, no per-show expansion.
    assert set(requests) <= LISTING_ENDPOINTS
    listing_pages = sum(
        _pages(items[kind], size) for kind in ("movie", "show", "season", "episode")
    )
    assert requests["section_all"] == listing_pages
    assert cold["requests"] == 2 + listing_pages
    # The emulator saw exactly what the client counted.
    assert cold["emulator"]["counters"] == requests


def test_steady_resync_writes_nothing_and_only_lists(run: dict[str, Any]) -> None:
    steady = run["scenarios"]["steady"]

    assert [summary["status"] for summary in steady["summaries"]] == ["ok", "ok"]
    assert steady["rows_written"] == 0
    assert steady["changed"] == 0
    assert set(steady["client_requests"]) <= LISTING_ENDPOINTS
    items = run["items"]
    size = steady["page_size"]
    # Movies: one recently-updated page and one Size=0 count instead of the full listing;
    # shows: every page; seasons and episodes: one recently-updated page each.
    assert steady["client_requests"]["section_all"] == 2 + _pages(items["show"], size) + 2


def test_churn_writes_exactly_the_changed_rows(run: dict[str, Any]) -> None:
    churn = run["scenarios"]["churn"]
    applied = run["churn"]
    spec = WORKLOADS["S"].churn

    assert applied["episodes_changed"] == spec.episodes_changed
    assert applied["episodes_added"] == spec.episodes_added
    assert applied["episodes_removed"] == spec.episodes_removed
    assert [summary["status"] for summary in churn["summaries"]] == ["ok", "ok"]
    assert churn["rows_written"] == applied["expected_written"]
    assert churn["missing_promoted"] == spec.episodes_removed
    assert churn["rows_written_by_kind"]["movie"] == spec.movies_changed
    requests = churn["client_requests"]
    # Details only to confirm the removed episodes before calling them missing.
    assert requests.get("metadata", 0) <= math.ceil(spec.episodes_removed / 50)
    # Expansion of the changed shows: per show (children + allLeaves) or section-wide.
    per_show = requests.get("children", 0) + requests.get("all_leaves", 0)
    assert per_show <= 2 * spec.shows
    assert churn["requests"] <= run["scenarios"]["steady"]["requests"] + 2 * spec.shows + 4


def test_store_anchor_writes_every_row_of_the_cold_catalog(run: dict[str, Any]) -> None:
    store = run["anchors"]["store"]

    assert store["rows"]["items"] == sum(run["items"].values())
    assert store["rows"] == store["source_rows"]
    # Every generated item has a file and external ids: the copy is not of empty tables.
    assert store["rows"]["parts"] >= run["items"]["movie"] + run["items"]["episode"]
    assert store["rows"]["guids"] > store["rows"]["items"]
    assert store["emulator"]["requests"] == 0


def test_report_renders(run: dict[str, Any]) -> None:
    table = run_table(run)
    assert "cold" in table
    assert "churn" in table
    assert "store:" in table
    names = {target.name for target in targets(run)}
    assert {"cold requests", "steady requests", "steady rows written"} <= names


# --- one shared updatedAt ("Refresh all metadata"), side by side ------------------------------


@pytest.fixture(scope="module")
def side_by_side(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`scripts/bench --workload S --timestamps refreshed --against <tree> --repeat 2`.

    Every item shares one updatedAt, an hour old; "before" is a copy of this tree's engine in
    another directory (what a git worktree of another revision is to the harness), "after"
    this tree's. Cold and steady, each twice per engine, interleaved.
    """
    tmp = tmp_path_factory.mktemp("side-by-side")
    other = tmp / "other"
    shutil.copytree(
        ROOT / "custom_components",
        other / "custom_components",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    out = tmp / "results.json"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = bench_main(
            [
                "--workload",
                "S",
                "--timestamps",
                "refreshed",
                "--scenarios",
                "cold,steady",
                "--against",
                str(other),
                "--repeat",
                "2",
                "--out",
                str(out),
            ]
        )
    assert status == 0
    (data,) = json.loads(out.read_text())["runs"]
    assert isinstance(data, dict)
    data["printed"] = printed.getvalue()
    data["other"] = str(other)
    return data


def _window_starts(result: dict[str, Any]) -> dict[str, int]:
    """Return the `updatedAt>>` value of each windowed listing a run made, by Plex type."""
    starts = {}
    for listing in result["emulator"]["listings"]:
        for part in listing["filters"].split("&"):
            if part.startswith("updatedAt>>="):
                starts[listing["type"]] = int(part.split("=", 1)[1])
    return starts


def _processed(result: dict[str, Any]) -> dict[str, int]:
    return {summary["library_title"]: summary["processed"] for summary in result["summaries"]}


@pytest.mark.timeout(300)
def test_refreshed_workload_shares_one_updated_at(side_by_side: dict[str, Any]) -> None:
    refresh = side_by_side["refresh"]
    stamp = refresh["at"]

    assert side_by_side["label"] == "S/refreshed"
    assert side_by_side["updated_at"] == {"distinct": 1, "min": stamp, "max": stamp}
    # The refresh came an hour (and the emulator's start-up) before the cold sync.
    assert refresh["before_cold"] >= refresh["ago"] == 3600
    for side in side_by_side["sides"].values():
        assert side["cold"]["rows_written"] == sum(side_by_side["items"].values())


@pytest.mark.timeout(300)
def test_refreshed_steady_is_as_flat_as_spread(
    run: dict[str, Any], side_by_side: dict[str, Any]
) -> None:
    steady, spread = side_by_side["scenarios"]["steady"], run["scenarios"]["steady"]
    stamp = side_by_side["refresh"]["at"]

    assert [summary["status"] for summary in steady["summaries"]] == ["ok", "ok"]
    assert steady["rows_written"] == steady["changed"] == 0
    assert steady["requests"] <= spread["requests"]
    assert steady["client_requests"] == spread["client_requests"]
    # Movies, seasons and episodes are listed since the cold run's server clock less the
    # margin, which leaves the refresh out: nothing comes back but the shows' own listing.
    starts = _window_starts(steady)
    assert set(starts) == {"1", "3", "4"}
    assert all(start > stamp for start in starts.values())
    assert _processed(steady) == {"Movies": 0, "TV Shows": side_by_side["items"]["show"]}
    assert _processed(steady) == _processed(spread)
    assert all("excludes the shared updatedAt" in line for line in windows(steady, stamp))
    names = {target.name: target for target in targets(side_by_side)}
    assert names["steady requests"].passed
    assert names["steady rows written"].passed


@pytest.mark.timeout(300)
def test_refresh_inside_the_margin_is_listed_once_more() -> None:
    """The variant puts the shared updatedAt where the light windows look.

    A refresh 60 s before the cold sync is inside the first light run's window (the margin is
    600 s), and that run lists every item again: the variant can show a re-listing.
    """
    workload = WORKLOADS["S"].variant("refreshed", refreshed_ago=60)
    result = Bench(workload, "json", scenarios=("cold", "steady"), anchors=()).run().as_dict()
    steady = result["scenarios"]["steady"]
    stamp = result["refresh"]["at"]

    assert all(start < stamp for start in _window_starts(steady).values())
    assert _processed(steady)["Movies"] == result["items"]["movie"]
    assert steady["rows_written"] == 0
    assert all("holds the shared updatedAt" in line for line in windows(steady, stamp))


@pytest.mark.timeout(300)
def test_side_by_side_runs_each_engine_from_its_own_tree(side_by_side: dict[str, Any]) -> None:
    data = side_by_side
    other = Path(data["other"])

    assert [engine["name"] for engine in data["engines"]] == ["before", "after"]
    assert data["anchors"].keys() == {"floor"}
    sides = data["sides"]
    for name, root in (("before", other), ("after", ROOT)):
        for scenario in ("cold", "steady"):
            result = sides[name][scenario]
            assert Path(result["engine"]).is_relative_to(root.resolve()), (name, scenario)
            assert len(result["repetitions"]) == 2
            assert result["wall"] == min(rep["wall"] for rep in result["repetitions"])
    # Interleaved: which engine goes first alternates from repetition to repetition and from
    # scenario to scenario.
    order = {
        (name, scenario, rep): entry["order"]
        for name in ("before", "after")
        for scenario in ("cold", "steady")
        for rep, entry in enumerate(sides[name][scenario]["repetitions"])
    }
    assert order["before", "cold", 0] < order["after", "cold", 0]
    assert order["after", "cold", 1] < order["before", "cold", 1]
    assert order["after", "steady", 0] < order["before", "steady", 0]
    assert order["before", "steady", 1] < order["after", "steady", 1]


@pytest.mark.timeout(300)
def test_side_by_side_report(side_by_side: dict[str, Any]) -> None:
    data = side_by_side
    printed = data["printed"]

    # The same engine twice: the same work on both sides, and the table says so.
    rows = {row["scenario"]: row for row in compare_rows(data)}
    assert rows.keys() == {"cold", "steady"}
    for scenario, row in rows.items():
        a, b = row["before"], row["after"]
        assert row["same_work"], scenario
        assert (a["requests"], a["rows_written"]) == (b["requests"], b["rows_written"])
        assert row["basis"] == ("list movies+shows" if scenario == "steady" else "floor")
        # The verdict is on the best of the two runs; the ratios share one yardstick.
        assert row["change"] == pytest.approx((best(b) - best(a)) / best(a))
        assert row["passed"] == (row["change"] <= 0.10)
        assert a["wall"] / row["ratio_before"] == pytest.approx(b["wall"] / row["ratio_after"])

    table = compare_table(data)
    assert table in printed
    title, timestamps, header, _rule, *lines = table.splitlines()
    assert f"before = {data['engines'][0]['revision']}" in title
    assert "2 runs each, interleaved" in title
    assert timestamps.startswith("updatedAt: every item shares one")
    assert re.split(r"\s{2,}", header.strip())[:4] == [
        "scenario",
        "requests",
        "rows written",
        "wall s, best",
    ]
    for line, scenario in zip(lines[:2], ("cold", "steady"), strict=True):
        cells = re.split(r"\s{2,}", line.strip())
        row = rows[scenario]
        a, b = row["before"], row["after"]
        assert cells[:3] == [
            scenario,
            f"{a['requests']} -> {b['requests']}",
            f"{a['rows_written']} -> {b['rows_written']}",
        ]
        assert cells[3:5] == [f"{best(a):.2f} -> {best(b):.2f}", f"{row['change'] * 100:+.1f}%"]
        assert cells[5] == f"{a['wall']:.2f} -> {b['wall']:.2f}"
        assert cells[9] == f"{row['ratio_before']:.2f}x -> {row['ratio_after']:.2f}x"
        assert cells[-1] == ("PASS" if row["passed"] else "FAIL")
    assert "[before] steady light windows" in table
    assert "[after] steady light windows" in table

    targets_text = compare_targets_table(data)
    assert targets_text in printed
    steady_requests = next(line for line in targets_text.splitlines() if "steady requests" in line)
    assert steady_requests.split()[-2:] == ["PASS", "PASS"]
    summary = steady_summary([data])
    assert summary in printed
    assert [line.split()[0] for line in summary.splitlines()[3:]] == ["S/refreshed"] * 2


async def test_freshness_bench_measures_every_kind_of_change() -> None:
    """The live-catalog bench at a tiny scale: every change arrives, at ≤ 3 requests each."""
    from tests.bench.freshness import measure

    figures = await measure(2)
    for kind in ("add", "edit", "remove", "watch"):
        row = figures[kind]
        assert (row["changes"], row["lost"]) == (2, 0), kind
        assert 1 <= row["requests_per_change_max"] <= 3, kind
    burst = figures["burst"]
    assert burst["episodes"] == 300
    assert burst["seconds"] is not None
    assert burst["requests"] <= 30
