"""Tables and target checks for benchmark results."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

MB: Final = 1024 * 1024
RSS_GROWTH_LIMIT: Final = 200 * MB
#: The steady re-sync's targets (spread or shared `updatedAt`s alike).
STEADY_REQUESTS: Final = 30
STEADY_RATIO: Final = 1.3
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
        f"== workload {_label(run)} ({run['format'].upper()}): {items.get('movie', 0)} movies, "
        f"{items.get('show', 0)} shows, {items.get('season', 0)} seasons, "
        f"{items.get('episode', 0)} episodes"
    )
    engines = run.get("engines") or []
    if len(engines) > 1:
        title += f"; engine {engines[-1]['name']}: {engines[-1]['revision']}"
    if run.get("repeat", 1) > 1:
        title += f"; median of {run['repeat']} runs each"
    lines = [title, timestamps_line(run), _table(headers, rows)]
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
    lines.extend(window_lines(run["scenarios"], run))
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
                STEADY_RATIO,
                "x",
                f"{steady['wall']:.2f}s / {sections:.2f}s",
            )
        )
    if steady:
        found.append(
            Target("steady requests", steady["requests"], STEADY_REQUESTS, "req", "client counter")
        )
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
    title = f"-- targets, workload {_label(run)} ({run['format'].upper()}){note}"
    return f"{title}\n{_table(headers, rows)}"


# --- timestamps and light windows -----------------------------------------------------------

_TYPES: Final = {"1": "movies", "2": "shows", "3": "seasons", "4": "episodes"}


def _label(run: dict[str, Any]) -> str:
    return str(run.get("label") or run["workload"])


def timestamps_line(run: dict[str, Any]) -> str:
    """Describe how the workload's `updatedAt`s lie."""
    updated = run.get("updated_at") or {}
    refresh = run.get("refresh") or {}
    if run.get("timestamps") == "refreshed":
        when = refresh.get("before_cold")
        gap = "" if when is None else f", {when} s before the cold sync began (server clock)"
        return (
            f"updatedAt: every item shares one, {refresh.get('at')} (a 'Refresh all metadata' "
            f"{refresh.get('ago')} s before the emulator started{gap})"
        )
    if not updated:
        return "updatedAt: spread"
    return (
        f"updatedAt: spread, {updated.get('distinct')} distinct values from "
        f"{updated.get('min')} to {updated.get('max')}"
    )


def windows(result: dict[str, Any], stamp: int | None = None) -> list[str]:
    """Return the `updatedAt` windows a run listed, with the requests each took.

    With `stamp` (the one `updatedAt` every item shares) each window says whether it holds it.
    """
    found = []
    for listing in result.get("emulator", {}).get("listings", []):
        window = [part for part in listing["filters"].split("&") if part.startswith("updatedAt>>=")]
        if not window:
            continue
        what = _TYPES.get(listing["type"], listing["path"])
        pages = listing["requests"] - listing["counts"]
        text = f"{what} {window[0]}: {pages} page{'s' if pages != 1 else ''}"
        if stamp is not None:
            since = int(window[0].split("=", 1)[1])
            held = "holds" if stamp > since else "excludes"
            text += f" ({held} the shared updatedAt, {stamp - since:+d} s)"
        found.append(text)
    return found


def window_lines(scenarios: dict[str, dict[str, Any]], run: dict[str, Any]) -> list[str]:
    """Return one line per light run: the `updatedAt` windows it listed."""
    stamp = (run.get("refresh") or {}).get("at")
    lines = []
    for name, result in scenarios.items():
        found = windows(result, stamp)
        if found:
            lines.append(f"{name} light windows: {'; '.join(found)}")
    return lines


# --- side by side ---------------------------------------------------------------------------

#: The acceptance of a change: no scenario's ratio to the floor worse by more than this.
WORSE_LIMIT: Final = 0.10


def floor_basis(run: dict[str, Any], scenario: str) -> tuple[float, str] | None:
    """Return the yardstick a scenario's time is divided by, and its name.

    Steady: listing the movie and show sections (the issue's steady target); every other
    scenario: the whole floor (GET + parse of every listing page a cold sync reads).
    """
    floor = run.get("anchors", {}).get("floor")
    if not floor:
        return None
    if scenario == "steady":
        listings = floor["listings"]
        sections = listings.get("movies", {}).get("seconds", 0.0) + listings.get("shows", {}).get(
            "seconds", 0.0
        )
        return (sections, "list movies+shows") if sections else None
    return floor["wall"], "floor"


def _delta(before: float, after: float) -> str:
    if before <= 0:
        return ""
    return f"{(after - before) / before * 100:+.1f}%"


def best(result: dict[str, Any], key: str = "wall") -> float:
    """Return the smallest value of a measurement over its repetitions.

    Other load on the machine only ever adds time, so the best of several interleaved runs
    is the figure it moves least.
    """
    reps = result.get("repetitions") or [result]
    return float(min(rep[key] for rep in reps))


def compare_rows(run: dict[str, Any]) -> list[dict[str, Any]]:
    """Return one row per scenario with both engines' figures and the verdict.

    The ratios are median wall times over the (median) floor both columns share, so they
    change by the same % as the times. `change` is the relative change of the best wall time;
    the verdict passes when it is at most WORSE_LIMIT.
    """
    engines = [engine["name"] for engine in run["engines"]]
    if len(engines) != 2:
        return []
    old, new = (run["sides"].get(name, {}) for name in engines)
    rows = []
    for scenario in ("cold", "steady", "churn", "deep"):
        a, b = old.get(scenario), new.get(scenario)
        if a is None and b is None:
            continue
        basis = floor_basis(run, scenario)
        row: dict[str, Any] = {"scenario": scenario, "before": a, "after": b}
        if basis is not None:
            row["basis"] = basis[1]
            row["ratio_before"] = None if a is None else a["wall"] / basis[0]
            row["ratio_after"] = None if b is None else b["wall"] / basis[0]
        if a is not None and b is not None:
            change = (best(b) - best(a)) / best(a) if best(a) else 0.0
            row["change"] = change
            row["passed"] = change <= WORSE_LIMIT
            row["same_work"] = a["requests"] == b["requests"] and a.get("rows_written") == b.get(
                "rows_written"
            )
        rows.append(row)
    return rows


def compare_table(run: dict[str, Any]) -> str:
    """Return the before/after table of a side-by-side run."""
    engines = run["engines"]
    if len(engines) != 2:
        return ""
    before, after = engines
    repeat = run.get("repeat", 1)
    headers = (
        "scenario",
        "requests",
        "rows written",
        "wall s, best",
        "change",
        "wall s, median",
        "change",
        "CPU s, best",
        "change",
        "ratio, median",
        "basis",
        f"change <= +{WORSE_LIMIT:.0%}",
    )

    def pair(
        a: dict[str, Any] | None,
        b: dict[str, Any] | None,
        value: Callable[[dict[str, Any]], Any],
        fmt: str = "{:.2f}",
    ) -> tuple[str, str]:
        """Return "before -> after" and the relative change."""
        numbers = [None if side is None else value(side) for side in (a, b)]
        shown = " -> ".join("n/a" if n is None else fmt.format(n) for n in numbers)
        change = ""
        if numbers[0] is not None and numbers[1] is not None:
            change = _delta(float(numbers[0]), float(numbers[1]))
        return shown, change

    rows = []
    for row in compare_rows(run):
        a, b = row["before"], row["after"]
        verdict = "n/a"
        if "passed" in row:
            verdict = "PASS" if row["passed"] else "FAIL"
            if not row["same_work"]:
                verdict += " (different work)"
        ratios = " -> ".join(
            "n/a" if row.get(key) is None else f"{row[key]:.2f}x"
            for key in ("ratio_before", "ratio_after")
        )
        rows.append(
            (
                row["scenario"],
                pair(a, b, lambda side: side["requests"], "{}")[0],
                pair(a, b, lambda side: side.get("rows_written"), "{}")[0],
                *pair(a, b, best),
                *pair(a, b, lambda side: side["wall"]),
                *pair(a, b, lambda side: best(side, "cpu")),
                ratios,
                row.get("basis", ""),
                verdict,
            )
        )
    title = (
        f"== side by side, workload {_label(run)} ({run['format'].upper()}): "
        f"before = {before['revision']}, after = {after['revision']}; "
        + (f"{repeat} runs each, interleaved" if repeat > 1 else "interleaved")
    )
    lines = [title, timestamps_line(run), _table(headers, rows)]
    floor = run.get("anchors", {}).get("floor")
    if floor:
        lines.append(
            f"floor {floor['wall']:.2f}s, list movies+shows "
            f"{(floor_basis(run, 'steady') or (0.0, ''))[0]:.2f}s (medians): both columns are "
            "divided by the same floor, so a ratio changes by the same % as the wall time; "
            "the verdict takes the best of the runs, the figure other load on the machine "
            "moves least"
        )
    for name, reason in (run.get("failed") or {}).items():
        lines.append(f"engine {name} left out after failing in {reason}")
    for engine in engines:
        lines.extend(
            f"[{engine['name']}] {line}" for line in window_lines(run["sides"][engine["name"]], run)
        )
    return "\n".join(lines)


def compare_targets_table(run: dict[str, Any]) -> str:
    """Return the issue's targets for both engines of a side-by-side run."""
    engines = run["engines"]
    if len(engines) != 2:
        return ""
    found = {
        engine["name"]: {
            target.name: target
            for target in targets({**run, "scenarios": run["sides"].get(engine["name"], {})})
        }
        for engine in engines
    }
    before, after = (found[engine["name"]] for engine in engines)
    names = list(dict.fromkeys([*before, *after]))
    headers = ("target", "before", "after", "limit", "before", "after")
    rows = []
    for name in names:
        a, b = before.get(name), after.get(name)
        limit = a or b
        assert limit is not None
        rows.append(
            (
                name,
                "n/a" if a is None else f"{a.measured:.2f} {a.unit}",
                "n/a" if b is None else f"{b.measured:.2f} {b.unit}",
                f"{limit.limit:g} {limit.unit}",
                "n/a" if a is None else ("PASS" if a.passed else "FAIL"),
                "n/a" if b is None else ("PASS" if b.passed else "FAIL"),
            )
        )
    title = f"-- targets side by side, workload {_label(run)} ({run['format'].upper()})"
    return f"{title}\n{_table(headers, rows)}"


def steady_summary(runs: Sequence[dict[str, Any]]) -> str:
    """Return the steady re-sync against its targets for every run and engine."""
    headers = ("workload", "engine", "wall s", "req", "list movies+shows s", "ratio", "result")
    rows = []
    for run in runs:
        basis = floor_basis(run, "steady")
        for engine in run.get("engines") or [{"name": "current", "revision": ""}]:
            sides = run.get("sides") or {engine["name"]: run["scenarios"]}
            steady = sides.get(engine["name"], {}).get("steady")
            if steady is None:
                continue
            ratio = None if basis is None else steady["wall"] / basis[0]
            passed = steady["requests"] <= STEADY_REQUESTS and (
                ratio is None or ratio <= STEADY_RATIO
            )
            rows.append(
                (
                    f"{_label(run)} ({run['format'].upper()})",
                    f"{engine['name']} {engine.get('revision', '')}".strip(),
                    f"{steady['wall']:.2f}",
                    str(steady["requests"]),
                    "n/a" if basis is None else f"{basis[0]:.2f}",
                    "n/a" if ratio is None else f"{ratio:.2f}x",
                    "PASS" if passed else "FAIL",
                )
            )
    if not rows:
        return ""
    title = (
        f"-- steady re-sync: <= {STEADY_REQUESTS} requests and <= {STEADY_RATIO:g} x listing the "
        "movie and show sections"
    )
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


def panel_table(run: dict[str, Any]) -> str:
    """Return the panel's query times (`--panel`), or nothing."""
    panel = run.get("panel")
    if not panel:
        return ""
    gone = panel["vanished"]
    lines = [
        f"-- panel queries on {run.get('label', run['workload'])} ({panel['items']} items, "
        f"{panel['history_rows']} state changes recorded) after {gone['shows']} shows "
        f"({gone['show_episodes']} episodes), {gone['single_episodes']} single episodes and "
        f"{gone['movies']} movies went; median of {panel['repeat']} on one open store",
        f"first page of the panel (libraries + 100 items by title): "
        f"{panel['first_panel_page_ms']:.1f} ms",
    ]
    rows = [
        (name, f"{query['ms']:.1f}", f"{query['min_ms']:.1f}-{query['max_ms']:.1f}", query["found"])
        for name, query in panel["queries"].items()
    ]
    lines.append(_table(("query", "ms", "range", "found"), rows))
    return "\n".join(lines)
