"""What the end-to-end steps share: their error, their log line, and finding a sensor.

Its own module so that `run.py`, run as `python -m tests.e2e.run` (the `__main__` module), and
the modules it uses raise and catch one `E2EError`.
"""

from __future__ import annotations

import time
from typing import Any


class E2EError(AssertionError):
    """A step of the end-to-end test failed."""


def _log(message: str) -> None:
    print(f"[e2e {time.strftime('%H:%M:%S')}] {message}", flush=True)  # noqa: T201


def _sensor(states: dict[str, dict[str, Any]], name: str) -> dict[str, Any] | None:
    """Return the state of the sensor whose friendly name ends with `name`."""
    return next(
        (
            state
            for entity_id, state in states.items()
            if entity_id.startswith("sensor.")
            and state["attributes"].get("friendly_name", "").endswith(name)
        ),
        None,
    )
