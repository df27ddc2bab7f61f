"""Tables and target checks for benchmark results."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

MB: Final = 1024 * 1024
RSS_GROWTH_LIMIT: Final = 200 * MB
# Short names for the request counters by endpoint.
_ENDPOINTS: Final = {
    "root": "root",
    "sections": "sect",
    "section_all": "all",
    "children": "child",
    "all_leaves": "leaves",
    "metadata": "meta",
    "identity": "id",
    "library": "lib",
}


@dataclass(frozen=True, slots=True)
class Target:
    """One target: measured value against its limit."""

    name: str
    measured: float
    limit: float
    unit: str
    basis: str

    @property
    def passed(self) -> bool:
        """Return whether the measurement meets the target."""
        return self.measured <= self.limit

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict."""
        return {
            "name": self.name,
            "measured": self.measured,
            "limit": self.limit,
            "unit": self.unit,
            "basis": self.basis,
            "passed": self.passed,
        }


def _endpoints(counters: dict[str, int]) -> str:
    return " ".join(
        f"{_ENDPOINTS.get(name, name)}={count}" for name, count in sorted(counters.items()) if count
    )


def _row(name: str, result: dict[str, Any]) -> list[str]:
    emulator = result.get("emulator", {})
    counters = result.get("client_requests") or emulator.get("counters", {})
    rows = result.get("rows_written")
    return [
        name,
        f"{result['wall']:.2f}",
        f"{result['cpu']:.2f}",
        str(sum(counters.values())),
        _endpoints(counters),
        "" if rows is None else str(rows),
        "" if "changed" not in result else str(result["changed"]),
        f"{result['rss_peak'] / MB:.0f}",
        f"{result['rss_growth'] / MB:.0f}",
        f"{emulator.get('cpu_seconds', 0.0):.2f}",
        f"{emulator.get('render_seconds', 0.0):.2f}",
    ]


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * width for width in widths))
    lines.extend(
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    )
    return "\n".join(lines)


def run_table(run: dict[str, Any]) -> str:
    """Return the scenario and anchor table of one run."""
    headers = (
        "scenario",
        "wall s",
        "CPU s",
        "req",
        "requests by endpoint",
        "rows",
        "changed",
        "peak MB",
        "growth MB",
        "emu CPU s",
        "emu render s",
    )
    rows = [_row(name, result) for name, result in run["scenarios"].items()]
    labels = {
        "floor": "anchor: floor (GET+parse listings)",
        "engine_parse": "diag: listings + engine parse",
        "store": "diag: store the cold rows, no fetch",
        "expansions": "anchor: changed shows' expansions",
        "plexapi": "anchor: python-plexapi walk",
        "naive": "anchor: naive detail sample",
    }
    rows.extend(_row(labels.get(name, name), result) for name, result in run["anchors"].items())
    items = run["items"]
    title = (
        f"== workload {run['workload']} ({run['format'].upper()}): {items.get('movie', 0)} movies, "
        f"{items.get('show', 0)} shows, {items.get('season', 0)} seasons, "
        f"{items.get('episode', 0)} episodes"
    )
    lines = [title, _table(headers, rows)]
    floor = run["anchors"].get("floor")
    if floor:
        lines.append(
            "floor by listing: "
            + ", ".join(
                f"{label} {entry['seconds']:.2f}s/{entry['pages']:.0f} pages"
                for label, entry in floor["listings"].items()
            )
        )
    store = run["anchors"].get("store")
    if store:
        rows = store["rows"]
        share = f" = {store['wall'] / floor['wall']:.2f}x the floor" if floor else ""
        lines.append(
            f"store: {rows['items']} items, {rows['parts']} parts, {rows['guids']} GUIDs "
            f"written in {store['wall']:.2f}s{share} (transactions of {store['batch_items']} "
            "items, one thread, nothing fetched or parsed)"
        )
    naive = run["anchors"].get("naive")
    if naive:
        lines.append(
            f"naive estimate: {naive['estimated_wall']:.1f}s, {naive['estimated_requests']} "
            f"requests ({naive['method']})"
        )
    churn = run.get("churn")
    if churn:
        lines.append(
            f"churn: expected rows written {churn['expected_written']} "
            f"(listing elements changed by kind {churn['differing_by_kind']}, "
            f"+{len(churn['added_keys'])} added, +{len(churn['removed_keys'])} removed)"
        )
    for name, result in run["scenarios"].items():
        strategies = [
            f"{summary['library_title']}: {summary['strategy'] or '-'}"
            f"/{summary['expanded_shows']} shows"
            for summary in result["summaries"]
            if summary.get("expanded_shows") or summary.get("strategy")
        ]
        if strategies:
            lines.append(f"{name} expansion: {', '.join(strategies)}")
    return "\n".join(lines)


def targets(run: dict[str, Any]) -> list[Target]:
    """Return the issue's targets measured on one run (they are stated for workload L)."""
    scenarios, anchors = run["scenarios"], run["anchors"]
    found: list[Target] = []
    floor = anchors.get("floor")
    cold = scenarios.get("cold")
    steady = scenarios.get("steady")
    churn = scenarios.get("churn")
    deep = scenarios.get("deep")
    if cold and floor:
        found.append(
            Target(
                "cold time / floor",
                cold["wall"] / floor["wall"],
                1.3,
                "x",
                f"{cold['wall']:.2f}s / {floor['wall']:.2f}s",
            )
        )
    if cold:
        found.append(Target("cold requests", cold["requests"], 300, "req", "client counter"))
    if steady and floor:
        listings = floor["listings"]
        sections = listings.get("movies", {}).get("seconds", 0.0) + listings.get("shows", {}).get(
            "seconds", 0.0
        )
        found.append(
            Target(
                "steady time / list movies+shows",
                steady["wall"] / sections,
                1.3,
                "x",
                f"{steady['wall']:.2f}s / {sections:.2f}s",
            )
        )
    if steady:
        found.append(Target("steady requests", steady["requests"], 30, "req", "client counter"))
        found.append(
            Target("steady rows written", steady["rows_written"], 0, "rows", "changed_run_id = run")
        )
    expansions = anchors.get("expansions")
    if churn and steady and expansions:
        budget = steady["wall"] + expansions["wall"]
        found.append(
            Target(
                "churn time / (steady + expansions)",
                churn["wall"] / budget,
                1.0,
                "x",
                f"{churn['wall']:.2f}s / ({steady['wall']:.2f}s + {expansions['wall']:.2f}s)",
            )
        )
    if churn and run.get("churn"):
        expected = run["churn"]["expected_written"]
        found.append(
            Target(
                "churn rows written - expected",
                abs(churn["rows_written"] - expected),
                0,
                "rows",
                f"{churn['rows_written']} written, {expected} expected",
            )
        )
    if deep and floor:
        found.append(
            Target(
                "deep time / floor",
                deep["wall"] / floor["wall"],
                1.5,
                "x",
                f"{deep['wall']:.2f}s / {floor['wall']:.2f}s",
            )
        )
    if deep:
        found.append(
            Target(
                "deep rows rewritten (nothing changed)",
                deep["rows_written"],
                0,
                "rows",
                "changed_run_id = run",
            )
        )
    if scenarios:
        growth = max(result["rss_growth"] for result in scenarios.values())
        worst = max(scenarios, key=lambda name: scenarios[name]["rss_growth"])
        found.append(
            Target("peak RSS growth", growth / MB, RSS_GROWTH_LIMIT / MB, "MB", f"worst: {worst}")
        )
    return found


def targets_table(run: dict[str, Any], found: Sequence[Target]) -> str:
    """Return the PASS/FAIL table of one run."""
    headers = ("target", "measured", "limit", "result", "basis")
    rows = [
        (
            target.name,
            f"{target.measured:.2f} {target.unit}",
            f"{target.limit:g} {target.unit}",
            "PASS" if target.passed else "FAIL",
            target.basis,
        )
        for target in found
    ]
    note = "" if run["workload"] == "L" else " (the targets are stated for workload L)"
    title = f"-- targets, workload {run['workload']} ({run['format'].upper()}){note}"
    return f"{title}\n{_table(headers, rows)}"


def profile_table(run: dict[str, Any]) -> str:
    """Return the top functions of the profiled cold sync."""
    profile = run.get("profile")
    if not profile:
        return ""
    lines = [
        f"-- cProfile of {profile['scenario']}: {profile['wall']:.2f}s wall "
        f"(file: {profile['file'] or 'not kept'})"
    ]
    for key in ("cumulative", "tottime"):
        lines.append(f"top by {key}:")
        rows = [
            (row["function"], str(row["calls"]), f"{row['tottime']:.3f}", f"{row['cumtime']:.3f}")
            for row in profile[key]
        ]
        lines.append(_table(("function", "calls", "tottime", "cumtime"), rows))
    return "\n".join(lines)
