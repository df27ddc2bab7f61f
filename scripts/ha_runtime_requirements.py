"""Print the Python packages a real Home Assistant needs to run Retrovue with default_config.

Also those of the integrations onboarding sets up, so the demo starts without red cards.

The list is derived, not hand-kept: the dependency closure of `default_config`, of the
integrations Home Assistant's bootstrap always loads, and of Retrovue itself, read from the
installed Home Assistant's manifests. Install it with Home Assistant's own
package_constraints.txt so every version matches that release.
"""

from __future__ import annotations

import ast
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


def onboarding_integrations() -> list[str]:
    """Return the integrations Home Assistant's onboarding sets up (read from its source).

    Finishing onboarding starts their config flows (weather, radio, text-to-speech, shopping
    list); without their packages a new user's first look at the integrations page is a row
    of "Failed to set up" cards.
    """
    tree = ast.parse((COMPONENTS / "onboarding" / "views.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and any(
                isinstance(target, ast.Name) and target.id == "onboard_integrations"
                for target in node.targets
            )
            and isinstance(node.value, ast.List)
        ):
            return [ast.literal_eval(element) for element in node.value.elts]
    raise SystemExit("onboarding/views.py no longer lists onboard_integrations: update this")


def requirements() -> list[str]:
    """Return the sorted requirements of the integrations a develop instance loads."""
    retrovue = json.loads(RETROVUE.read_text(encoding="utf-8"))
    todo: list[str] = [
        "default_config",
        *bootstrap.CORE_INTEGRATIONS,
        *bootstrap.LOGGING_AND_HTTP_DEPS_INTEGRATIONS,
        *bootstrap.FRONTEND_INTEGRATIONS,
        *bootstrap.DEFAULT_INTEGRATIONS,
        *onboarding_integrations(),
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
