"""Discovery of Plex Media Servers: zeroconf, and GDM through a responder on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator
from datetime import timedelta
from ipaddress import ip_address
from typing import Any
from unittest.mock import patch
from urllib.parse import urlsplit

from homeassistant.config_entries import (
    SOURCE_INTEGRATION_DISCOVERY,
    SOURCE_USER,
    SOURCE_ZEROCONF,
)
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.retrovue import discovery
from custom_components.retrovue.config_flow import discovered_url
from custom_components.retrovue.const import (
    CONF_LIBRARIES,
    CONF_TOKEN,
    CONF_URL,
    CONF_VERIFY_SSL,
    DOMAIN,
)
from custom_components.retrovue.engine.plex.gdm import GdmError, GdmServer
from tests.conftest import HA_TOKEN
from tests.emulator import EmuServer, PlexEmulator, generate_server
from tests.emulator.gdm import GdmAnswer, GdmResponder
from tests.plextv import PlexTvStandIn, StandInConnection, StandInResource

pytestmark = pytest.mark.usefixtures("enable_custom_integrations")

FLOW = "custom_components.retrovue.config_flow"


@pytest.fixture(autouse=True)
def _quick() -> Generator[None]:
    """Ask plex.tv often and keep GDM searches short."""
    with (
        patch(f"{FLOW}.PIN_POLL_INTERVAL", 0.01),
        patch.object(discovery, "SEARCH_WINDOW", 0.2),
        patch.object(discovery, "FORM_SEARCH_WINDOW", 0.2),
        patch.object(discovery, "GDM_TARGET", ("127.0.0.1", 9)),
    ):
        yield


@pytest.fixture(autouse=True)
async def _settled(hass: HomeAssistant) -> AsyncIterator[None]:
    """Let Home Assistant finish what a test started (the HTTP server's start, for one)."""
    yield
    await hass.async_block_till_done()


@pytest.fixture
async def gdm() -> AsyncIterator[GdmResponder]:
    """Answer GDM searches on loopback; the integration searches there."""
    async with GdmResponder() as responder:
        with patch.object(discovery, "GDM_TARGET", responder.target):
            yield responder


@pytest.fixture
async def plextv() -> AsyncIterator[PlexTvStandIn]:
    """Serve plex.tv's sign-in API on 127.0.0.1 and point python-plexapi at it."""
    async with PlexTvStandIn() as standin:
        with standin.patched():
            yield standin


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


def _gdm_data(server: EmuServer, url: str, name: str = "Den") -> dict[str, Any]:
    """Return the data of a GDM discovery flow for an emulated server."""
    port = urlsplit(url).port or 32400
    return discovery.discovery_data(
        GdmServer(server.machine_identifier, name, "127.0.0.1", port, "1.41.0")
    )


async def _choose(hass: HomeAssistant, result: Any, step: str) -> Any:
    return await hass.config_entries.flow.async_configure(result["flow_id"], {"next_step_id": step})


# --- zeroconf --------------------------------------------------------------------------------


@pytest.mark.usefixtures("mock_setup_entry")
async def test_discovered_server_is_added_with_its_token(
    hass: HomeAssistant, plex: PlexEmulator, plex_server: EmuServer
) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=_discovery(_port(plex))
    )
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "discovery_confirm"
    assert result["menu_options"] == ["sign_in", "discovery_token"]
    assert result["description_placeholders"] == {"name": "media-box", "url": plex.url}

    result = await _choose(hass, result, "discovery_token")
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "discovery_token"
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


@pytest.mark.usefixtures("mock_setup_entry")
async def test_discovered_server_is_added_by_signing_in(
    hass: HomeAssistant, plex: PlexEmulator, plex_server: EmuServer, plextv: PlexTvStandIn
) -> None:
    """The sign-in goes straight to the discovered server, among the account's others."""
    other = generate_server(seed=3, movies=1, shows=1, token="other-token")
    plextv.resources += [
        StandInResource("Other", other.machine_identifier, "other-token"),
        StandInResource(
            "Living Room Plex",
            plex_server.machine_identifier,
            HA_TOKEN,
            [StandInConnection(plex.url, port=_port(plex))],
        ),
    ]
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=_discovery(_port(plex))
    )
    result = await _choose(hass, result, "sign_in")
    assert result["type"] is FlowResultType.EXTERNAL_STEP
    plextv.approve()
    await hass.async_block_till_done(wait_background_tasks=True)
    result = await hass.config_entries.flow.async_configure(result["flow_id"])
    assert result["step_id"] == "libraries"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_LIBRARIES: ["1"]}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].unique_id == plex_server.machine_identifier
    assert result["data"][CONF_TOKEN] == HA_TOKEN


async def test_discovered_server_not_on_the_account(
    hass: HomeAssistant, plex: PlexEmulator, plextv: PlexTvStandIn
) -> None:
    plextv.resources.append(StandInResource("Other", "another-server", "t"))
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=_discovery(_port(plex))
    )
    result = await _choose(hass, result, "sign_in")
    plextv.approve()
    await hass.async_block_till_done(wait_background_tasks=True)
    result = await hass.config_entries.flow.async_configure(result["flow_id"])
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "server_not_on_account"
    assert result["description_placeholders"] == {"name": "media-box"}


async def test_discovered_address_now_another_server(
    hass: HomeAssistant, plex: PlexEmulator, plex_server: EmuServer
) -> None:
    """Between discovery and token, another server took the address."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=_discovery(_port(plex))
    )
    result = await _choose(hass, result, "discovery_token")
    plex_server.machine_identifier = "another-server"
    plex_server.invalidate()
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TOKEN: HA_TOKEN}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_server"


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
    result = await _choose(hass, result, "discovery_token")
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


# --- GDM discovery flows ---------------------------------------------------------------------


@pytest.mark.usefixtures("mock_setup_entry")
async def test_gdm_server_is_offered(
    hass: HomeAssistant, plex: PlexEmulator, plex_server: EmuServer
) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_INTEGRATION_DISCOVERY},
        data=_gdm_data(plex_server, plex.url),
    )
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "discovery_confirm"
    assert result["description_placeholders"] == {"name": "Den", "url": plex.url}
    (flow,) = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert flow["context"]["title_placeholders"] == {"name": "Den"}
    assert flow["context"]["unique_id"] == plex_server.machine_identifier

    result = await _choose(hass, result, "discovery_token")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TOKEN: HA_TOKEN}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_LIBRARIES: ["2"]}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Living Room Plex"
    assert result["data"][CONF_URL] == plex.url


@pytest.mark.parametrize(
    ("stored", "answers", "expected", "checked"),
    [
        ("http://127.0.0.1:1", "same", "discovered", True),
        ("http://127.0.0.1:1", "other", "stored", True),
        ("http://127.0.0.1:1", "nobody", "stored", False),
        ("http://plex.home.arpa:32400", "same", "stored", False),
        ("discovered", "same", "discovered", False),
        # Something else echoes the identifier while the server still answers where it was:
        # the token is never sent there.
        ("live", "same_elsewhere", "stored", True),
    ],
    ids=["moved", "another_server_there", "nobody_there", "host_name", "unchanged", "spoofed"],
)
async def test_gdm_updates_a_configured_ip_url(
    hass: HomeAssistant,
    plex: PlexEmulator,
    plex_server: EmuServer,
    mock_config_entry: MockConfigEntry,
    stored: str,
    answers: str,
    expected: str,
    checked: bool,
) -> None:
    """A configured server is not offered again; a plain-IP URL follows it if it is there."""
    url = {"same": plex.url, "nobody": "http://127.0.0.1:9"}.get(answers)
    # "same_elsewhere": a second address answering with the same machine identifier.
    other = plex_server if answers == "same_elsewhere" else generate_server(seed=8, movies=1)
    async with PlexEmulator(other) as other_plex:
        discovered = url or other_plex.url
        stored = {"discovered": discovered, "live": plex.url}.get(stored, stored)
        mock_config_entry.add_to_hass(hass)
        hass.config_entries.async_update_entry(
            mock_config_entry, data={**mock_config_entry.data, CONF_URL: stored}
        )
        plex.reset_log()
        result = await hass.config_entries.flow.async_init(
            DOMAIN,
            context={"source": SOURCE_INTEGRATION_DISCOVERY},
            data=_gdm_data(plex_server, discovered),
        )
        # The server at the new address is asked who it is; an unchanged URL is not checked.
        assert bool(plex.counters or other_plex.counters) is checked
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert mock_config_entry.data[CONF_URL] == (discovered if expected == "discovered" else stored)


# --- GDM searches ----------------------------------------------------------------------------


async def test_search_offers_new_servers_once(
    hass: HomeAssistant, plex: PlexEmulator, plex_server: EmuServer, gdm: GdmResponder
) -> None:
    """Every server that answers is offered; a configured one and a repeat are not."""
    configured = MockConfigEntry(
        domain=DOMAIN,
        unique_id="configured-server",
        data={CONF_URL: "http://plex.home.arpa:32400", CONF_TOKEN: "t", CONF_VERIFY_SSL: True},
    )
    configured.add_to_hass(hass)
    gdm.answers += [
        GdmAnswer(plex_server.machine_identifier, "Den", _port(plex)),
        GdmAnswer("configured-server", "Attic", 32400),
        GdmAnswer("player-1", "Living Room TV", 32500, content_type="plex/media-player"),
    ]
    gdm.raw_answers.append(b"not GDM at all")
    for _ in range(2):
        await discovery.async_offer_servers(hass)
        await hass.async_block_till_done(wait_background_tasks=True)
    assert gdm.searches == [b"M-SEARCH * HTTP/1.1\r\n\r\n"] * 2
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [(f["context"]["source"], f["context"]["unique_id"]) for f in flows] == [
        (SOURCE_INTEGRATION_DISCOVERY, plex_server.machine_identifier)
    ]
    assert configured.data[CONF_URL] == "http://plex.home.arpa:32400"


async def test_searches_run_after_start_and_every_15_minutes(
    hass: HomeAssistant, gdm: GdmResponder
) -> None:
    """Setting Retrovue up schedules the searches; Home Assistant's stop cancels them."""
    gdm.answers.append(GdmAnswer("machine-1", "Den", 9))
    assert await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    assert gdm.searches == []

    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=31))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert len(gdm.searches) == 1
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=16))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert len(gdm.searches) == 2
    # Offered once, although it answered twice.
    (flow,) = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert flow["context"]["unique_id"] == "machine-1"
    assert flow["context"]["source"] == SOURCE_INTEGRATION_DISCOVERY


async def test_search_that_cannot_start(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="custom_components.retrovue")
    with patch.object(discovery, "async_search", side_effect=GdmError("no socket")):
        assert await discovery.async_search_servers(hass) == []
    assert "GDM search not possible: no socket" in caplog.text


async def test_known_servers_are_searched_again_when_old(
    hass: HomeAssistant, gdm: GdmResponder
) -> None:
    gdm.answers.append(GdmAnswer("machine-1", "Den", 32400))
    (found,) = await discovery.async_known_servers(hass)
    assert found.url == "http://127.0.0.1:32400"
    assert len(gdm.searches) == 1
    assert await discovery.async_known_servers(hass) == [found]
    assert len(gdm.searches) == 1
    hass.data[discovery.DATA_GDM].searched_at = hass.loop.time() - 16 * 60
    await discovery.async_known_servers(hass)
    assert len(gdm.searches) == 2


# --- the manual step lists what GDM found ----------------------------------------------------


@pytest.mark.usefixtures("mock_setup_entry")
async def test_manual_step_offers_servers_found_on_the_network(
    hass: HomeAssistant, plex: PlexEmulator, plex_server: EmuServer, gdm: GdmResponder
) -> None:
    MockConfigEntry(domain=DOMAIN, unique_id="configured-server").add_to_hass(hass)
    gdm.answers += [
        GdmAnswer(plex_server.machine_identifier, "Den", _port(plex)),
        GdmAnswer("configured-server", "Attic", 32400),
    ]
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await _choose(hass, result, "manual")
    selector = result["data_schema"].schema[CONF_URL]
    assert selector.config["custom_value"] is True
    assert [(o["value"], o["label"]) for o in selector.config["options"]] == [
        (plex.url, f"Den ({plex.url})")
    ]
    # Any address can still be typed.
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {CONF_URL: f"{plex.url}/", CONF_TOKEN: HA_TOKEN, CONF_VERIFY_SSL: True},
    )
    assert result["step_id"] == "libraries"


@pytest.mark.usefixtures("mock_setup_entry")
async def test_setting_up_by_hand_ends_the_discovered_offer(
    hass: HomeAssistant, plex: PlexEmulator, plex_server: EmuServer
) -> None:
    """A server offered by discovery can still be set up by hand; the offer goes away."""
    await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_INTEGRATION_DISCOVERY},
        data=_gdm_data(plex_server, plex.url),
    )
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await _choose(hass, result, "manual")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: plex.url, CONF_TOKEN: HA_TOKEN, CONF_VERIFY_SSL: True}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_LIBRARIES: ["1"]}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert not hass.config_entries.flow.async_progress_by_handler(DOMAIN)
