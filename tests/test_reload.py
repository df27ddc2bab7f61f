"""Flows that change a set-up entry reload it exactly once, and it works afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import ip_address
from unittest.mock import AsyncMock, patch
from urllib.parse import urlsplit

from homeassistant.config_entries import SOURCE_ZEROCONF, ConfigEntryState, ConfigSubentryData
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

import custom_components.retrovue as integration
from custom_components.retrovue.const import (
    CONF_LOCAL_PREFIX,
    CONF_PLEX_PREFIX,
    CONF_TOKEN,
    CONF_URL,
    DOMAIN,
    SUBENTRY_PATH_MAPPING,
)
from tests.conftest import HA_TOKEN, async_wait_synced
from tests.emulator import EmuServer, PlexEmulator

pytestmark = pytest.mark.usefixtures("enable_custom_integrations")


@pytest.fixture
def setups() -> Iterator[AsyncMock]:
    """Count the entry's setups while running the real one."""
    with patch.object(
        integration, "async_setup_entry", wraps=integration.async_setup_entry
    ) as counted:
        yield counted


async def _settle(hass: HomeAssistant) -> None:
    await async_wait_synced(hass)


def _works(entry: MockConfigEntry) -> None:
    """Assert the entry is set up and its coordinator's last sync succeeded."""
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data.last_update_success


def _discovery(url: str) -> ZeroconfServiceInfo:
    port = urlsplit(url).port
    return ZeroconfServiceInfo(
        ip_address=ip_address("127.0.0.1"),
        ip_addresses=[ip_address("127.0.0.1")],
        hostname="media-box.local.",
        name="media-box._plexmediasvr._tcp.local.",
        port=port,
        type="_plexmediasvr._tcp.local.",
        properties={},
    )


async def test_reauth_with_a_new_token_reloads_once(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    plex_server: EmuServer,
    setups: AsyncMock,
) -> None:
    plex_server.token = "rotated-token"
    result = await init_integration.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "reauth_token"}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TOKEN: "rotated-token"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    await _settle(hass)
    assert setups.await_count == 1
    assert init_integration.data[CONF_TOKEN] == "rotated-token"
    _works(init_integration)


async def test_reauth_with_the_same_token_still_reloads_once(
    hass: HomeAssistant, init_integration: MockConfigEntry, setups: AsyncMock
) -> None:
    result = await init_integration.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "reauth_token"}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TOKEN: HA_TOKEN}
    )
    assert result["reason"] == "reauth_successful"
    await _settle(hass)
    assert setups.await_count == 1
    _works(init_integration)


@pytest.mark.usefixtures("plex")
async def test_reauth_after_a_refused_token_sets_the_entry_up(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    """The entry never loaded (no update listener): the flow reloads it itself, once."""
    mock_config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        mock_config_entry, data={**mock_config_entry.data, CONF_TOKEN: "stale-token"}
    )
    assert not await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await _settle(hass)
    assert mock_config_entry.state is ConfigEntryState.SETUP_ERROR
    assert not mock_config_entry.update_listeners
    (flow,) = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert flow["context"]["source"] == "reauth"

    with patch.object(
        integration, "async_setup_entry", wraps=integration.async_setup_entry
    ) as setups:
        await hass.config_entries.flow.async_configure(
            flow["flow_id"], {"next_step_id": "reauth_token"}
        )
        result = await hass.config_entries.flow.async_configure(
            flow["flow_id"], {CONF_TOKEN: HA_TOKEN}
        )
        assert result["reason"] == "reauth_successful"
        await _settle(hass)
    assert setups.await_count == 1
    _works(mock_config_entry)


async def test_reconfigure_reloads_once_on_the_new_url(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    plex_server: EmuServer,
    setups: AsyncMock,
) -> None:
    async with PlexEmulator(plex_server) as moved:
        result = await init_integration.start_reconfigure_flow(hass)
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_URL: moved.url, "verify_ssl": True}
        )
        assert result["reason"] == "reconfigure_successful"
        await _settle(hass)
        assert setups.await_count == 1
        assert init_integration.data[CONF_URL] == moved.url
        _works(init_integration)
        assert moved.counters, "the reloaded entry talks to the new URL"


async def test_rediscovery_at_a_new_address_reloads_once(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    plex: PlexEmulator,
    plex_server: EmuServer,
    setups: AsyncMock,
) -> None:
    async with PlexEmulator(plex_server) as moved:
        # The server moved: its old address no longer answers (the entry follows only then).
        await plex.stop()
        result = await hass.config_entries.flow.async_init(
            DOMAIN, context={"source": SOURCE_ZEROCONF}, data=_discovery(moved.url)
        )
        assert result["type"] is FlowResultType.ABORT
        assert result["reason"] == "already_configured"
        await _settle(hass)
        assert setups.await_count == 1
        assert init_integration.data[CONF_URL] == moved.url
        _works(init_integration)


async def test_rediscovery_at_the_same_address_does_not_reload(
    hass: HomeAssistant, init_integration: MockConfigEntry, plex: PlexEmulator, setups: AsyncMock
) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=_discovery(plex.url)
    )
    assert result["reason"] == "already_configured"
    await _settle(hass)
    assert setups.await_count == 0
    _works(init_integration)


async def test_adding_a_path_mapping_reloads_once(
    hass: HomeAssistant, init_integration: MockConfigEntry, setups: AsyncMock
) -> None:
    result = await hass.config_entries.subentries.async_init(
        (init_integration.entry_id, SUBENTRY_PATH_MAPPING), context={"source": "user"}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_PLEX_PREFIX: "/data/movies", CONF_LOCAL_PREFIX: "/media/movies"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await _settle(hass)
    assert setups.await_count == 1
    _works(init_integration)


async def test_removing_a_path_mapping_reloads_once(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, setups: AsyncMock
) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=mock_config_entry.title,
        unique_id=mock_config_entry.unique_id,
        data=dict(mock_config_entry.data),
        options=dict(mock_config_entry.options),
        subentries_data=[
            ConfigSubentryData(
                subentry_type=SUBENTRY_PATH_MAPPING,
                title="/data/movies → /media/movies",
                unique_id="/data/movies",
                data={CONF_PLEX_PREFIX: "/data/movies", CONF_LOCAL_PREFIX: "/media/movies"},
            )
        ],
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await _settle(hass)
    setups.reset_mock()
    (subentry_id,) = entry.subentries
    assert hass.config_entries.async_remove_subentry(entry, subentry_id)
    await _settle(hass)
    assert setups.await_count == 1
    _works(entry)
