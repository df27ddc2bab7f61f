"""Zeroconf discovery of Plex Media Servers, through the emulator."""

from __future__ import annotations

from ipaddress import ip_address
from urllib.parse import urlsplit

from homeassistant.config_entries import SOURCE_ZEROCONF
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.retrovue.config_flow import discovered_url
from custom_components.retrovue.const import CONF_LIBRARIES, CONF_TOKEN, CONF_URL, DOMAIN
from tests.conftest import HA_TOKEN
from tests.emulator import EmuServer, PlexEmulator

pytestmark = pytest.mark.usefixtures("enable_custom_integrations")


def _discovery(port: int) -> ZeroconfServiceInfo:
    return ZeroconfServiceInfo(
        ip_address=ip_address("127.0.0.1"),
        ip_addresses=[ip_address("127.0.0.1")],
        hostname="media-box.local.",
        name="media-box._plexmediasvr._tcp.local.",
        port=port,
        type="_plexmediasvr._tcp.local.",
        properties={},
    )


def _port(plex: PlexEmulator) -> int:
    port = urlsplit(plex.url).port
    assert port is not None
    return port


@pytest.mark.usefixtures("mock_setup_entry")
async def test_discovered_server_is_added_with_its_token(
    hass: HomeAssistant, plex: PlexEmulator, plex_server: EmuServer
) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=_discovery(_port(plex))
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "zeroconf_confirm"
    assert result["description_placeholders"] == {"name": "media-box", "url": plex.url}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TOKEN: "wrong"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_TOKEN: "invalid_auth"}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TOKEN: HA_TOKEN}
    )
    assert result["step_id"] == "libraries"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_LIBRARIES: ["1"]}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == plex_server.friendly_name
    assert result["data"][CONF_URL] == plex.url
    assert result["result"].unique_id == plex_server.machine_identifier


async def test_discovery_updates_an_ip_url(
    hass: HomeAssistant, plex: PlexEmulator, mock_config_entry: MockConfigEntry
) -> None:
    mock_config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        mock_config_entry, data={**mock_config_entry.data, CONF_URL: "http://127.0.0.1:1"}
    )
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=_discovery(_port(plex))
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert mock_config_entry.data[CONF_URL] == plex.url


async def test_discovery_leaves_a_chosen_host_name_alone(
    hass: HomeAssistant, plex: PlexEmulator, mock_config_entry: MockConfigEntry
) -> None:
    mock_config_entry.add_to_hass(hass)
    chosen = "https://10-0-0-5.abcdef.plex.direct:32400"
    hass.config_entries.async_update_entry(
        mock_config_entry, data={**mock_config_entry.data, CONF_URL: chosen}
    )
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=_discovery(_port(plex))
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert mock_config_entry.data[CONF_URL] == chosen


async def test_unreachable_discovery_aborts(hass: HomeAssistant) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=_discovery(9)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "cannot_connect"


async def test_discovered_server_without_libraries(
    hass: HomeAssistant, plex: PlexEmulator, plex_server: EmuServer
) -> None:
    plex_server.sections.clear()
    plex_server.invalidate()
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=_discovery(_port(plex))
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TOKEN: HA_TOKEN}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "no_libraries"


async def test_discovery_leaves_an_http_host_name_alone(
    hass: HomeAssistant, plex: PlexEmulator, mock_config_entry: MockConfigEntry
) -> None:
    mock_config_entry.add_to_hass(hass)
    chosen = "http://plex.home.arpa:32400"
    hass.config_entries.async_update_entry(
        mock_config_entry, data={**mock_config_entry.data, CONF_URL: chosen}
    )
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=_discovery(_port(plex))
    )
    assert result["reason"] == "already_configured"
    assert mock_config_entry.data[CONF_URL] == chosen


def test_discovered_urls() -> None:
    info = _discovery(32400)
    assert discovered_url(info) == "http://127.0.0.1:32400"
    info.ip_address = ip_address("fe80::1")
    assert discovered_url(info) == "http://[fe80::1]:32400"
    info.port = None
    assert discovered_url(info) == "http://[fe80::1]:32400"
