"""Shared test configuration and Home Assistant fixtures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Generator
from pathlib import Path
from unittest.mock import AsyncMock, PropertyMock, patch

from homeassistant.config_entries import ConfigSubentryData
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from syrupy.assertion import SnapshotAssertion

# The Home Assistant test harness ships its own `custom_components` package; importing ours at
# collection time makes sure `custom_components.retrovue` resolves to this repository.
import custom_components.retrovue  # noqa: F401
from custom_components.retrovue.const import (
    CONF_DEEP_SYNC_INTERVAL,
    CONF_LIBRARIES,
    CONF_LOCAL_PREFIX,
    CONF_PLEX_PREFIX,
    CONF_RETENTION_DAYS,
    CONF_SCAN_INTERVAL,
    CONF_TOKEN,
    CONF_URL,
    CONF_VERIFY_SSL,
    DOMAIN,
    SUBENTRY_PATH_MAPPING,
)
from tests.emulator import EmuServer, PlexEmulator, generate_server

HA_TOKEN = "ha-test-token-8c2d1e"


@pytest.fixture(autouse=True)
def _loopback_sockets(socket_enabled: None) -> None:
    """Let tests open sockets; the harness still allows connections to 127.0.0.1 only."""


@pytest.fixture(autouse=True)
def _no_integration_reports(caplog: pytest.LogCaptureFixture) -> Generator[None]:
    """Fail a test during which Home Assistant reported a deprecated use or a blocking call."""
    yield
    reports = [
        record.getMessage()
        for record in caplog.get_records("call")
        if record.getMessage().startswith(("Detected that custom integration", "Detected blocking"))
    ]
    assert not reports, reports


@pytest.fixture(autouse=True)
def _isolated_config_dir(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Give every Home Assistant test its own config dir (the catalog file lives there)."""
    if "hass" in request.fixturenames:
        if "recorder_mock" in request.fixturenames:
            # The recorder's database must be prepared before Home Assistant starts.
            request.getfixturevalue("recorder_db_url")
        hass = request.getfixturevalue("hass")
        hass.config.config_dir = str(tmp_path)


@pytest.fixture(autouse=True)
def _no_retry_backoff() -> Generator[None]:
    """Retry at once: under `freezer` the event loop's clock stands still."""
    with patch("custom_components.retrovue.coordinator.RETRY_BACKOFF", 0):
        yield


@pytest.fixture
def plex_server() -> EmuServer:
    """Return a small emulated Plex library for Home Assistant tests."""
    return generate_server(
        seed=11,
        movies=12,
        shows=3,
        seasons_per_show=(1, 2),
        episodes_per_season=(2, 4),
        token=HA_TOKEN,
        friendly_name="Living Room Plex",
    )


@pytest.fixture
async def plex(plex_server: EmuServer) -> AsyncIterator[PlexEmulator]:
    """Serve the emulated library on 127.0.0.1."""
    async with PlexEmulator(plex_server) as emulator:
        yield emulator


@pytest.fixture
def mock_config_entry(plex: PlexEmulator, plex_server: EmuServer) -> MockConfigEntry:
    """Return a config entry for the emulated server."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=plex_server.friendly_name,
        unique_id=plex_server.machine_identifier,
        data={CONF_URL: plex.url, CONF_TOKEN: HA_TOKEN, CONF_VERIFY_SSL: True},
        options={
            CONF_LIBRARIES: list(plex_server.sections),
            CONF_SCAN_INTERVAL: 15,
            CONF_DEEP_SYNC_INTERVAL: 24,
            CONF_RETENTION_DAYS: 30,
        },
    )


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Return the snapshot fixture with Home Assistant's extension (snapshots/*.ambr).

    The harness defines this fixture too, but syrupy's own plugin, registered after it,
    shadows it; a conftest fixture takes precedence over both, as in Home Assistant core.
    """
    return snapshot.use_extension(HomeAssistantSnapshotExtension)


@pytest.fixture
def entity_registry_enabled_by_default() -> Generator[None]:
    """Enable the entities that are disabled by default (as core's fixture of that name)."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        new_callable=PropertyMock,
        return_value=True,
    ):
        yield


@pytest.fixture(autouse=True)
def no_websocket_heartbeat() -> Generator[None]:
    """Send no websocket pings in tests.

    Tests move Home Assistant's clock, which aiohttp's heartbeat would take for a dead
    connection (and leave a timer behind).
    """
    with patch("custom_components.retrovue.live.HEARTBEAT", None):
        yield


@pytest.fixture
def mock_setup_entry() -> Generator[AsyncMock]:
    """Keep config flow tests from setting the entry up."""
    with patch("custom_components.retrovue.async_setup_entry", return_value=True) as setup_entry:
        yield setup_entry


async def async_wait_synced(hass: HomeAssistant) -> None:
    """Wait until every loaded server's running sync (if any) and all other work is done.

    Not `async_block_till_done(wait_background_tasks=True)`: the notification websocket and
    the live-update queue run as background tasks for as long as the entry is loaded.
    """
    for _ in range(3):
        await hass.async_block_till_done()
        tasks = [
            task
            for entry in hass.config_entries.async_entries("retrovue")
            if (coordinator := getattr(entry, "runtime_data", None)) is not None
            and (task := getattr(coordinator, "_sync_task", None)) is not None
            and not task.done()
        ]
        if not tasks:
            break
        await asyncio.wait(tasks)
    await hass.async_block_till_done()


@pytest.fixture
async def init_integration(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> MockConfigEntry:
    """Set up the integration and wait for its first sync."""
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await async_wait_synced(hass)
    return mock_config_entry


def entry_with_mapping(
    entry: MockConfigEntry, plex_prefix: str, local_prefix: str
) -> MockConfigEntry:
    """Return a copy of a config entry that has one path-mapping subentry."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=entry.title,
        unique_id=entry.unique_id,
        data=dict(entry.data),
        options=dict(entry.options),
        subentries_data=[
            ConfigSubentryData(
                subentry_type=SUBENTRY_PATH_MAPPING,
                title=f"{plex_prefix} → {local_prefix}",
                unique_id=plex_prefix,
                data={CONF_PLEX_PREFIX: plex_prefix, CONF_LOCAL_PREFIX: local_prefix},
            )
        ],
    )
