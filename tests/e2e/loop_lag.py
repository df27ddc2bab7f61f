"""Measure the longest event-loop block inside a real Home Assistant during a cold sync.

A probe integration, written into the test config, runs a task on Home Assistant's own event
loop that sleeps 10 ms again and again and records how late it wakes up: the overshoot is the
time something else held the loop; a watchdog thread records where the loop's thread was during
each block over 40 ms (`blocks`). The probe is reset right before Retrovue is added, and read
when the first (cold) sync has filled the sensors. Then it is reset again around a deep
re-sync (`retrovue.sync_library` with `deep: true`, nothing changed), reported under `deep`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
import shutil
import sys
import tempfile
import time
from typing import Any

from tests.emulator import generate_server

from .common import _log
from .run import HomeAssistantAPI, _until, running_stack

PROBE_MANIFEST = {
    "domain": "retrovue_probe",
    "name": "Retrovue loop-lag probe",
    "codeowners": [],
    "documentation": "https://github.com/retrovue/retrovue-ha",
    "iot_class": "calculated",
    "requirements": [],
    "version": "0.0.1",
}

PROBE_CODE = '''\
"""Record how late a 10 ms sleep on Home Assistant's event loop wakes up."""

import asyncio
import gc
import sys
import threading
import time
import traceback

from homeassistant.core import HomeAssistant, ServiceCall, SupportsResponse

DOMAIN = "retrovue_probe"
INTERVAL = 0.01


async def async_setup(hass: HomeAssistant, config: dict) -> bool:
    stats = {"max_ms": 0.0, "samples": 0, "over_10ms": 0, "over_25ms": 0, "over_50ms": 0,
             "gc_max_ms": [0.0, 0.0, 0.0], "gc_count": [0, 0, 0], "blocks": []}
    started = {}

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            started["t"] = time.perf_counter()
        elif "t" in started:
            gen = info["generation"]
            took = (time.perf_counter() - started.pop("t")) * 1000
            stats["gc_count"][gen] += 1
            stats["gc_max_ms"][gen] = max(stats["gc_max_ms"][gen], took)

    gc.callbacks.append(on_gc)

    beat = {"t": time.monotonic()}
    loop_thread = threading.get_ident()

    def watchdog() -> None:
        # Where the loop's thread is while the probe is late: one stack per block over 40 ms.
        block = None
        while True:
            time.sleep(0.005)
            late = (time.monotonic() - beat["t"] - INTERVAL) * 1000
            if late > 40:
                frame = sys._current_frames().get(loop_thread)
                stack = [
                    f"{'/'.join(f.filename.split('/')[-2:])}:{f.lineno} {f.name}"
                    for f in traceback.extract_stack(frame)[-10:]
                ]
                block = {"ms": round(late), "stack": stack}
            elif block is not None:
                if len(stats["blocks"]) < 20:
                    stats["blocks"].append(block)
                block = None

    threading.Thread(target=watchdog, name="loop-lag watchdog", daemon=True).start()

    async def probe() -> None:
        loop = asyncio.get_running_loop()
        while True:
            beat["t"] = time.monotonic()
            start = loop.time()
            await asyncio.sleep(INTERVAL)
            lag = (loop.time() - start - INTERVAL) * 1000
            stats["samples"] += 1
            stats["max_ms"] = max(stats["max_ms"], lag)
            for limit in (10, 25, 50):
                if lag > limit:
                    stats[f"over_{limit}ms"] += 1

    fresh = {key: list(value) if isinstance(value, list) else value for key, value in stats.items()}

    async def reset(call: ServiceCall) -> None:
        for key, value in fresh.items():
            stats[key] = list(value) if isinstance(value, list) else value

    async def report(call: ServiceCall) -> dict:
        return dict(stats)

    hass.async_create_background_task(probe(), "retrovue loop-lag probe")
    hass.services.async_register(DOMAIN, "reset", reset)
    hass.services.async_register(DOMAIN, "report", report, supports_response=SupportsResponse.ONLY)
    return True
'''

WORKLOADS = {
    # movies, shows, seasons per show, episodes per season
    "S": (1000, 100, (1, 3), (5, 10)),
    "L": (20000, 2000, (8, 12), (3, 7)),
}


def _write_probe(config_dir: Path) -> None:
    probe = config_dir / "custom_components" / "retrovue_probe"
    probe.mkdir(parents=True, exist_ok=True)
    (probe / "manifest.json").write_text(json.dumps(PROBE_MANIFEST), encoding="utf-8")
    (probe / "__init__.py").write_text(PROBE_CODE, encoding="utf-8")


async def _measure(workload: str) -> dict[str, Any]:
    movies, shows, seasons, episodes = WORKLOADS[workload]
    server = generate_server(
        seed=5,
        movies=movies,
        shows=shows,
        seasons_per_show=seasons,
        episodes_per_season=episodes,
        token="lag-token",
        friendly_name="Lag Plex",
    )
    counts = {
        kind: sum(1 for item in server.items.values() if item.type == kind)
        for kind in ("movie", "show", "season", "episode")
    }
    _log(f"workload {workload}: {counts}")
    workdir = Path(tempfile.mkdtemp(prefix="retrovue-lag-"))
    started = 0.0

    async def reset(api: HomeAssistantAPI) -> None:
        nonlocal started

        async def probe_loaded() -> bool | None:
            services = await api.get("/api/services")
            return True if any(s["domain"] == "retrovue_probe" for s in services) else None

        # HTTP answers before Home Assistant has set up every integration.
        await _until("the loop-lag probe", probe_loaded, 120)
        await api.post("/api/services/retrovue_probe/reset")
        started = time.monotonic()

    try:
        _write_probe(workdir / "config")
        async with running_stack(
            workdir,
            server,
            extra_yaml="\nretrovue_probe:\n",
            before_flow=reset,
            sync_timeout=3600,
        ) as stack:
            elapsed = time.monotonic() - started
            answer = await stack.api.post("/api/services/retrovue_probe/report?return_response")
            stats = answer["service_response"]
            await stack.api.post("/api/services/retrovue_probe/reset")
            began = time.monotonic()
            await stack.api.post(
                "/api/services/retrovue/sync_library?return_response",
                {"config_entry_id": stack.entry_id, "deep": True},
            )
            deep_seconds = time.monotonic() - began
            answer = await stack.api.post("/api/services/retrovue_probe/report?return_response")
            deep = {"seconds": deep_seconds, **answer["service_response"]}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "workload": workload,
        "counts": counts,
        "cold_sync_seconds": elapsed,
        **stats,
        "deep": deep,
    }


def main() -> int:
    """Run the measurement and print the result as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="L")
    parser.add_argument("--limit-ms", type=float, default=50.0)
    args = parser.parse_args()
    result = asyncio.run(_measure(args.workload))
    result["limit_ms"] = args.limit_ms
    result["pass"] = result["max_ms"] <= args.limit_ms
    print(json.dumps(result, indent=2))  # noqa: T201
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
