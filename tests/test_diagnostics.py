"""Snapshot of the diagnostics of a synced server."""

from __future__ import annotations

from datetime import datetime

from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion
from syrupy.matchers import path_type

from custom_components.retrovue.engine.store import SCHEMA_VERSION

from .conftest import HA_TOKEN

pytestmark = pytest.mark.usefixtures("enable_custom_integrations")

# What varies from run to run is snapshotted as its type: the emulator's URL (a free port),
# the run times (the engine's real clock, which freezegun cannot reach), and the schema
# version (checked against the engine's below, so a migration does not touch this snapshot).
VARYING = path_type(
    {
        r"entry\.data\.url": (str,),
        r"catalog\.last_runs\.\d+\.(started_at|finished_at)": (str,),
        r"catalog\.schema_version": (int,),
    },
    regex=True,
)


async def test_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    init_integration: MockConfigEntry,
    snapshot: SnapshotAssertion,
) -> None:
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, init_integration)

    assert HA_TOKEN not in str(diagnostics)
    assert diagnostics["entry"]["data"]["webhook_id"] == "**REDACTED**"
    assert diagnostics["catalog"]["schema_version"] == SCHEMA_VERSION
    # The websocket connects on its own time: its state and counters are checked, not kept.
    live = diagnostics["live"]
    stream = live.pop("stream")
    assert isinstance(live.pop("push_connected"), bool)
    assert stream["malformed"] == stream["handler_errors"] == 0
    # Times are ISO strings, also those of the runs and the server's sections.
    run = diagnostics["catalog"]["last_runs"][0]
    assert datetime.fromisoformat(run["finished_at"]).tzinfo is not None
    section = diagnostics["server"]["sections"][0]
    assert datetime.fromisoformat(section["updated_at"]).year > 2000
    assert diagnostics == snapshot(matcher=VARYING)
