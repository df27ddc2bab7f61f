"""Workload S through the benchmark harness: behaviour only, never times.

The emulator and every sync run in their own processes, exactly as `scripts/bench` runs them.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from tests.bench.report import run_table, targets
from tests.bench.runner import Bench
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
