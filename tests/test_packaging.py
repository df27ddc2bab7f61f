"""Packaging invariants: translations, services, manifest and HACS metadata agree."""

from __future__ import annotations

import json
from pathlib import Path
import re

import yaml

ROOT = Path(__file__).parents[1]
INTEGRATION = ROOT / "custom_components" / "retrovue"


def _json(path: Path) -> dict:
    return dict(json.loads(path.read_text(encoding="utf-8")))


def test_english_translation_matches_strings() -> None:
    assert _json(INTEGRATION / "translations" / "en.json") == _json(INTEGRATION / "strings.json")


def test_every_action_and_field_is_translated() -> None:
    services = yaml.safe_load((INTEGRATION / "services.yaml").read_text(encoding="utf-8"))
    strings = _json(INTEGRATION / "strings.json")["services"]
    icons = _json(INTEGRATION / "icons.json")["services"]
    assert set(services) == set(strings) == set(icons)
    for name, service in services.items():
        assert set(service["fields"]) == set(strings[name]["fields"]), name


def test_manifest_keys_and_hacs() -> None:
    manifest = _json(INTEGRATION / "manifest.json")
    keys = list(manifest)
    assert keys[:2] == ["domain", "name"]
    assert keys[2:] == sorted(keys[2:])
    assert manifest["domain"] == "retrovue"
    hacs = _json(ROOT / "hacs.json")
    assert hacs["homeassistant"] == "2025.4.0"
    for name in ("icon.png", "icon@2x.png", "logo.png", "logo@2x.png"):
        assert (INTEGRATION / "brand" / name).stat().st_size > 0


def test_quality_scale_lists_no_open_rule() -> None:
    rules = yaml.safe_load((INTEGRATION / "quality_scale.yaml").read_text(encoding="utf-8"))
    statuses = {
        name: rule if isinstance(rule, str) else rule["status"]
        for name, rule in rules["rules"].items()
    }
    assert len(statuses) == 52
    assert set(statuses.values()) <= {"done", "exempt"}
    for name, rule in rules["rules"].items():
        if statuses[name] == "exempt":
            assert rule["comment"].strip(), name


def test_license_is_mit_and_named_in_the_readme() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License")
    assert "[LICENSE](LICENSE)" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_flows_leave_reloads_to_the_update_listener() -> None:
    """Home Assistant refuses flow helpers that reload an entry with an update listener."""
    source = (INTEGRATION / "config_flow.py").read_text(encoding="utf-8")
    assert "async_update_reload_and_abort(" not in source
    assert not re.search(r"_abort_if_unique_id_configured\([^)]*updates=", source)
    assert "add_update_listener" in (INTEGRATION / "__init__.py").read_text(encoding="utf-8")
