"""Print the Python packages a real Home Assistant needs to run Retrovue with default_config.

The list is derived, not hand-kept: the dependency closure of `default_config`, of the
integrations Home Assistant's bootstrap always loads, and of Retrovue itself, read from the
installed Home Assistant's manifests. Install it with Home Assistant's own
package_constraints.txt so every version matches that release.
"""

from __future__ import annotations

import json
from pathlib import Path
import sys

from homeassistant import bootstrap
import homeassistant.components

COMPONENTS = Path(homeassistant.components.__file__).parent
RETROVUE = Path(__file__).parents[1] / "custom_components" / "retrovue" / "manifest.json"


def _manifest(domain: str) -> dict[str, object] | None:
    path = COMPONENTS / domain / "manifest.json"
    if not path.exists():
        return None
    return dict(json.loads(path.read_text(encoding="utf-8")))


def requirements() -> list[str]:
    """Return the sorted requirements of the integrations a develop instance loads."""
    retrovue = json.loads(RETROVUE.read_text(encoding="utf-8"))
    todo: list[str] = [
        "default_config",
        *bootstrap.CORE_INTEGRATIONS,
        *bootstrap.LOGGING_AND_HTTP_DEPS_INTEGRATIONS,
        *bootstrap.FRONTEND_INTEGRATIONS,
        *bootstrap.DEFAULT_INTEGRATIONS,
        *retrovue.get("dependencies", []),
        *retrovue.get("after_dependencies", []),
    ]
    found: set[str] = set(retrovue.get("requirements", []))
    seen: set[str] = set()
    while todo:
        domain = todo.pop()
        if domain in seen:
            continue
        seen.add(domain)
        manifest = _manifest(domain)
        if manifest is None:
            continue
        found.update(manifest.get("requirements", []))  # type: ignore[arg-type]
        todo.extend(manifest.get("dependencies", []))  # type: ignore[arg-type]
    return sorted(found, key=str.lower)


if __name__ == "__main__":
    sys.stdout.write("\n".join(requirements()) + "\n")
