"""Tests for the Retrovue config flow, options flow and path mapping subentries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Generator
from contextlib import nullcontext
import json
from pathlib import Path
import re
from typing import Any
from unittest.mock import Mock, patch
from urllib.parse import parse_qs, urlsplit

from homeassistant.config_entries import SOURCE_RECONFIGURE, SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.http import current_request
from homeassistant.helpers.network import NoURLAvailableError
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.retrovue import config_flow
from custom_components.retrovue.config_flow import AUTH_CALLBACK_PATH, CONF_SERVER
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
    DEFAULT_DEEP_SYNC_INTERVAL,
    DEFAULT_RETENTION_DAYS,
    DEFAULT_SCAN_INTERVAL,
    DOMAIN,
    SUBENTRY_PATH_MAPPING,
)
from tests.conftest import HA_TOKEN, async_wait_synced
from tests.emulator import EmuServer, Fault, FaultKind, PlexEmulator, generate_server
from tests.plextv import (
    ACCOUNT_TOKEN,
    PlexTvFault,
    PlexTvStandIn,
    StandInConnection,
    StandInResource,
)

pytestmark = pytest.mark.usefixtures("enable_custom_integrations")

FLOW = "custom_components.retrovue.config_flow"
SERVER_INFO = f"{FLOW}.PlexClient.server_info"
CLOSED_PORT_URL = "http://127.0.0.1:9"


@pytest.fixture(autouse=True)
def _quick_searches_and_sign_ins() -> Generator[None]:
    """Ask plex.tv often, and send GDM searches of the manual step nowhere, briefly."""
    with (
        patch(f"{FLOW}.PIN_POLL_INTERVAL", 0.01),
        patch("custom_components.retrovue.discovery.GDM_TARGET", ("127.0.0.1", 9)),
        patch("custom_components.retrovue.discovery.FORM_SEARCH_WINDOW", 0.01),
    ):
        yield


@pytest.fixture(autouse=True)
async def _settled(hass: HomeAssistant) -> AsyncIterator[None]:
    """Let Home Assistant finish what a test started (the HTTP server's start, a reload).

    The flows load the integration's dependencies; `http` starts its server and saves its
    settings a moment later, which must not happen while the test's Home Assistant stops.
    """
    yield
    await hass.async_block_till_done()


@pytest.fixture
async def plextv() -> AsyncIterator[PlexTvStandIn]:
    """Serve plex.tv's sign-in API on 127.0.0.1 and point python-plexapi at it."""
    async with PlexTvStandIn() as standin:
        with standin.patched():
            yield standin


def _resource(plex: PlexEmulator, server: EmuServer, *urls: str, **changes: Any) -> StandInResource:
    """Return the account's resource for an emulated server, reachable at its URL (or `urls`)."""
    return StandInResource(
        name=server.friendly_name,
        client_identifier=server.machine_identifier,
        access_token=server.token,
        connections=[
            StandInConnection(uri=url, port=urlsplit(url).port or 32400)
            for url in urls or (plex.url,)
        ],
        **changes,
    )


def _user_input(plex: PlexEmulator, **changes: Any) -> dict[str, Any]:
    """Return valid input for the manual step, with changes."""
    return {CONF_URL: plex.url, CONF_TOKEN: HA_TOKEN, CONF_VERIFY_SSL: True, **changes}


def _https_url(plex: PlexEmulator) -> str:
    """Return an https:// URL to the emulator's plain-HTTP port (the TLS handshake fails)."""
    return plex.url.replace("http://", "https://", 1)


def _select_options(result: Any, key: str) -> list[tuple[str, str]]:
    """Return the (value, label) pairs a form's select field offers."""
    selector = result["data_schema"].schema[key]
    return [(option["value"], option["label"]) for option in selector.config["options"]]


def _suggested(result: Any, key: str) -> Any:
    """Return the suggested value of a form field."""
    for marker in result["data_schema"].schema:
        if marker == key:
            return (marker.description or {}).get("suggested_value")
    raise KeyError(key)


def _mapping_subentry(plex_prefix: str, local_prefix: str, **changes: Any) -> dict[str, Any]:
    """Return stored data of a path mapping subentry."""
    return {
        "data": {CONF_PLEX_PREFIX: plex_prefix, CONF_LOCAL_PREFIX: local_prefix},
        "subentry_type": SUBENTRY_PATH_MAPPING,
        "title": f"{plex_prefix} → {local_prefix}",
        "unique_id": plex_prefix,
        **changes,
    }


async def _start_manual(hass: HomeAssistant) -> Any:
    """Start a user flow and choose to enter the URL and token."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "user"
    assert result["menu_options"] == ["sign_in", "manual"]
    return await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "manual"}
    )


async def _start_sign_in(hass: HomeAssistant, result: Any) -> Any:
    """Choose the plex.tv sign-in in a flow's menu; return the external step."""
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "sign_in"}
    )
    assert result["type"] is FlowResultType.EXTERNAL_STEP
    assert result["step_id"] == "authorize"
    return result


async def _finish_sign_in(hass: HomeAssistant, result: Any) -> Any:
    """Wait until the flow has seen the sign-in's outcome, then go on as the frontend does."""
    await hass.async_block_till_done(wait_background_tasks=True)
    assert hass.config_entries.flow.async_get(result["flow_id"])["step_id"] != "authorize"
    return await hass.config_entries.flow.async_configure(result["flow_id"])


async def _sign_in(hass: HomeAssistant, plextv: PlexTvStandIn, result: Any) -> Any:
    """Sign in with Plex from a flow's menu; return the step after the sign-in."""
    result = await _start_sign_in(hass, result)
    plextv.approve()
    return await _finish_sign_in(hass, result)


def test_every_step_error_and_reason_is_translated() -> None:
    """Every step, menu option, error and abort reason the flow uses has its text."""
    source = Path(config_flow.__file__).read_text(encoding="utf-8")
    strings = json.loads(
        (Path(config_flow.__file__).parent / "strings.json").read_text(encoding="utf-8")
    )["config"]
    # Steps that show something (`next_step_id`s only lead to other steps).
    steps = set(re.findall(r'[^_]step_id="(\w+)"', source)) - {"init"}
    assert steps <= set(strings["step"])
    for menu in re.findall(r"menu_options=\[([^\]]*)\]", source):
        options = re.findall(r'"(\w+)"', menu)
        assert any(
            set(strings["step"][step].get("menu_options", {})) == set(options) for step in steps
        )
    errors = set(re.findall(r'_ConnectError\(\s*"(\w+)"', source)) | {
        "cannot_connect",
        "invalid_auth",
        "invalid_url",
        "ssl_error",
        "unknown",
    }
    assert errors | {"no_libraries"} <= set(strings["error"])
    reasons = set(re.findall(r'(?:reason=|AbortFlow\()"(\w+)"', source)) | {
        "sign_in_timeout",
        "plex_tv_unreachable",
        "plex_tv_error",
        "already_configured",
        "already_in_progress",
    }
    # Failures after a server was chosen end the flow when there was nothing to choose.
    assert reasons | errors <= set(strings["abort"])


# --- user step: menu and manual URL and token ------------------------------------------------


@pytest.mark.usefixtures("mock_setup_entry")
async def test_manual_flow(hass: HomeAssistant, plex: PlexEmulator, plex_server: EmuServer) -> None:
    """Test the full manual flow, from the URL and token to the chosen libraries."""
    result = await _start_manual(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "manual"
    assert result["errors"] == {}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _user_input(plex, url=f"  {plex.url}/ ", token=f" {HA_TOKEN} ")
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "libraries"
    assert result["description_placeholders"] == {"name": "Living Room Plex"}
    assert _select_options(result, CONF_LIBRARIES) == [
        ("1", "Movies (movie)"),
        ("2", "TV Shows (show)"),
    ]

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_LIBRARIES: ["2"]}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Living Room Plex"
    data = dict(result["data"])
    assert len(data.pop("webhook_id")) == 64  # a fresh secret per entry
    assert data == {CONF_URL: plex.url, CONF_TOKEN: HA_TOKEN, CONF_VERIFY_SSL: True}
    assert result["options"] == {
        CONF_LIBRARIES: ["2"],
        CONF_SCAN_INTERVAL: DEFAULT_SCAN_INTERVAL,
        CONF_DEEP_SYNC_INTERVAL: DEFAULT_DEEP_SYNC_INTERVAL,
        CONF_RETENTION_DAYS: DEFAULT_RETENTION_DAYS,
    }
    assert result["result"].unique_id == plex_server.machine_identifier


@pytest.mark.usefixtures("mock_setup_entry")
async def test_user_info_in_the_url_is_not_kept(hass: HomeAssistant, plex: PlexEmulator) -> None:
    """Plex authenticates with the token: a `user:pass@` would only be stored and shown."""
    result = await _start_manual(hass)
    with_user = plex.url.replace("http://", "http://someone:secret@")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _user_input(plex, url=with_user)
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_LIBRARIES: ["1"]}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_URL] == plex.url


@pytest.mark.parametrize(
    ("changes", "fault", "expected_errors"),
    [
        ({CONF_TOKEN: "wrong-token"}, None, {CONF_TOKEN: "invalid_auth"}),
        (
            {},
            Fault(FaultKind.STATUS_401, endpoint="root", times=None),
            {CONF_TOKEN: "invalid_auth"},
        ),
        ({CONF_URL: CLOSED_PORT_URL}, None, {CONF_URL: "cannot_connect"}),
        (
            {},
            Fault(FaultKind.STATUS_500, endpoint="root", times=None),
            {CONF_URL: "cannot_connect"},
        ),
        (
            {},
            Fault(FaultKind.MALFORMED, endpoint="sections", times=None),
            {CONF_URL: "cannot_connect"},
        ),
        ({CONF_URL: "ftp://x"}, None, {CONF_URL: "invalid_url"}),
        ({CONF_URL: "https://"}, None, {CONF_URL: "invalid_url"}),
        ({CONF_URL: "https"}, None, {CONF_URL: "ssl_error"}),
    ],
    ids=[
        "wrong_token",
        "status_401",
        "closed_port",
        "status_500",
        "malformed_sections",
        "ftp_url",
        "no_host",
        "https_to_http",
    ],
)
@pytest.mark.usefixtures("mock_setup_entry")
async def test_manual_flow_errors(
    hass: HomeAssistant,
    plex: PlexEmulator,
    plex_server: EmuServer,
    changes: dict[str, Any],
    fault: Fault | None,
    expected_errors: dict[str, str],
) -> None:
    """Test the manual step shows each error on its field, keeps the input and recovers."""
    if changes.get(CONF_URL) == "https":
        changes = {CONF_URL: _https_url(plex)}
    if fault is not None:
        plex_server.faults.add(fault)
    result = await _start_manual(hass)

    user_input = _user_input(plex, **changes, verify_ssl=False)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], user_input)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "manual"
    assert result["errors"] == expected_errors
    assert _suggested(result, CONF_URL) == user_input[CONF_URL]
    assert _suggested(result, CONF_VERIFY_SSL) is False
    # Home Assistant's forms never show a secret again.
    assert _suggested(result, CONF_TOKEN) is None

    plex_server.faults.clear()
    result = await hass.config_entries.flow.async_configure(result["flow_id"], _user_input(plex))
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "libraries"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_LIBRARIES: ["1", "2"]}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["options"][CONF_LIBRARIES] == ["1", "2"]


@pytest.mark.usefixtures("mock_setup_entry", "plex_server")
async def test_manual_flow_unknown_error(
    hass: HomeAssistant, plex: PlexEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    """Test an unexpected exception is logged and shown as unknown."""
    result = await _start_manual(hass)
    with patch(SERVER_INFO, side_effect=RuntimeError("boom")):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], _user_input(plex)
        )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "unknown"}
    assert "Unexpected exception" in caplog.text

    result = await hass.config_entries.flow.async_configure(result["flow_id"], _user_input(plex))
    assert result["step_id"] == "libraries"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_LIBRARIES: ["1"]}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_manual_flow_already_configured(
    hass: HomeAssistant, plex: PlexEmulator, mock_config_entry: MockConfigEntry
) -> None:
    """Test adding the same server twice aborts."""
    mock_config_entry.add_to_hass(hass)
    result = await _start_manual(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], _user_input(plex))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_manual_flow_server_without_libraries(
    hass: HomeAssistant, plex: PlexEmulator, plex_server: EmuServer
) -> None:
    """Test a server without movie or show libraries aborts."""
    plex_server.sections.clear()
    plex_server.invalidate()
    result = await _start_manual(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], _user_input(plex))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "no_libraries"


@pytest.mark.usefixtures("mock_setup_entry")
async def test_libraries_step(
    hass: HomeAssistant, plex: PlexEmulator, plex_server: EmuServer
) -> None:
    """Test the libraries step offers movie and show sections only and needs one of them."""
    plex_server.sections["2"].type = "artist"
    plex_server.friendly_name = ""
    plex_server.invalidate()
    result = await _start_manual(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], _user_input(plex))
    assert result["step_id"] == "libraries"
    assert _select_options(result, CONF_LIBRARIES) == [("1", "Movies (movie)")]

    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_LIBRARIES: []})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "libraries"
    assert result["errors"] == {CONF_LIBRARIES: "no_libraries"}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_LIBRARIES: ["1"]}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    # Without a friendly name the server is named by its machine identifier.
    assert result["title"] == plex_server.machine_identifier
    assert result["options"][CONF_LIBRARIES] == ["1"]


# --- plex.tv sign-in -------------------------------------------------------------------------


@pytest.mark.usefixtures("mock_setup_entry")
async def test_sign_in_flow(
    hass: HomeAssistant, plex: PlexEmulator, plex_server: EmuServer, plextv: PlexTvStandIn
) -> None:
    """Sign in with Plex: the account's only server is connected to without a choice."""
    plextv.resources.append(_resource(plex, plex_server))
    # Devices that are no servers (players, Plex Web) are not offered.
    plextv.resources.append(
        StandInResource("Living Room TV", "player-1", "player-token", provides="player,client")
    )
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await _start_sign_in(hass, result)
    auth = urlsplit(result["url"])
    assert (auth.scheme, auth.netloc, auth.path) == ("https", "app.plex.tv", "/auth/")
    query = parse_qs(auth.fragment.removeprefix("!?"))
    pin = plextv.latest_pin
    assert query["code"] == [pin.code]
    assert query["clientID"] == [pin.client_identifier]
    assert pin.client_identifier.startswith("retrovue-")
    assert pin.product == "Retrovue"
    assert query["context[device][product]"] == ["Retrovue"]
    # Started without the frontend: no page to come back to.
    assert "forwardUrl" not in query

    # Still waiting: asking again shows the same external step.
    again = await hass.config_entries.flow.async_configure(result["flow_id"])
    assert again["type"] is FlowResultType.EXTERNAL_STEP
    assert again["url"] == result["url"]

    plextv.approve()
    result = await _finish_sign_in(hass, result)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "libraries"
    assert result["description_placeholders"] == {"name": "Living Room Plex"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_LIBRARIES: ["1", "2"]}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Living Room Plex"
    assert result["result"].unique_id == plex_server.machine_identifier
    data = dict(result["data"])
    data.pop("webhook_id")
    assert data == {CONF_URL: plex.url, CONF_TOKEN: HA_TOKEN, CONF_VERIFY_SSL: True}
    # Every plex.tv request named Retrovue with one client identifier and the account's token
    # went only where it belongs.
    assert {r.headers["X-Plex-Client-Identifier"] for r in plextv.requests} == {
        pin.client_identifier
    }
    assert {r.headers["X-Plex-Product"] for r in plextv.requests} == {"Retrovue"}
    assert [r.path.split("?")[0] for r in plextv.requests if "X-Plex-Token" in r.headers] == [
        "/api/v2/user",
        "/api/v2/resources",
    ]


async def test_sign_in_comes_back_to_home_assistant(
    hass: HomeAssistant, plextv: PlexTvStandIn, hass_client_no_auth: ClientSessionGenerator
) -> None:
    """Plex's page sends the browser to a page of Home Assistant that closes the window."""
    request = Mock(headers={"HA-Frontend-Base": "https://ha.example.org:8123/"})
    reset = current_request.set(request)
    try:
        for _ in range(2):
            result = await hass.config_entries.flow.async_init(
                DOMAIN, context={"source": SOURCE_USER}
            )
            result = await _start_sign_in(hass, result)
            query = parse_qs(urlsplit(result["url"]).fragment.removeprefix("!?"))
            assert query["forwardUrl"] == [f"https://ha.example.org:8123{AUTH_CALLBACK_PATH}"]
            hass.config_entries.flow.async_abort(result["flow_id"])
        # A request without the frontend's header: no page to come back to.
        request.headers = {}
        result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
        result = await _start_sign_in(hass, result)
        assert "forwardUrl" not in result["url"]
        hass.config_entries.flow.async_abort(result["flow_id"])
    finally:
        current_request.reset(reset)

    client = await hass_client_no_auth()
    response = await client.get(f"{AUTH_CALLBACK_PATH}?flow_id=anything")
    assert response.status == 200
    assert "window.close()" in await response.text()
    await hass.async_block_till_done(wait_background_tasks=True)


@pytest.mark.usefixtures("mock_setup_entry")
async def test_sign_in_with_several_servers(
    hass: HomeAssistant,
    plex: PlexEmulator,
    plex_server: EmuServer,
    plextv: PlexTvStandIn,
) -> None:
    """The account's servers are offered (not the configured ones); one that fails says why."""
    configured = MockConfigEntry(domain=DOMAIN, unique_id="configured-server")
    configured.add_to_hass(hass)
    ignored = MockConfigEntry(domain=DOMAIN, unique_id="ignored-server", source="ignore")
    ignored.add_to_hass(hass)
    plextv.resources += [
        StandInResource(
            "Already here", "configured-server", "token-1", [StandInConnection(CLOSED_PORT_URL)]
        ),
        StandInResource(
            "Ignored",
            "ignored-server",
            "token-2",
            [StandInConnection(CLOSED_PORT_URL, port=9)],
            owned=False,
        ),
        StandInResource(
            "Friend's Plex",
            "shared-server",
            "token-3",
            [StandInConnection(CLOSED_PORT_URL, port=9, local=False)],
            owned=False,
            source_title="friend",
        ),
        _resource(plex, plex_server),
    ]
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await _sign_in(hass, plextv, result)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "servers"
    assert result["errors"] == {}
    assert _select_options(result, CONF_SERVER) == [
        ("ignored-server", "Ignored"),
        ("shared-server", "Friend's Plex (friend)"),
        (plex_server.machine_identifier, "Living Room Plex"),
    ]

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_SERVER: "shared-server"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "servers"
    assert result["errors"] == {CONF_SERVER: "no_connection"}
    placeholders = result["description_placeholders"]
    assert placeholders is not None
    assert placeholders["name"] == "Friend's Plex"
    assert placeholders["tried"].startswith(f"{CLOSED_PORT_URL} (cannot reach the server")
    assert "token" not in placeholders["tried"]
    assert _suggested(result, CONF_SERVER) == "shared-server"

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_SERVER: plex_server.machine_identifier}
    )
    assert result["step_id"] == "libraries"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_LIBRARIES: ["1"]}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].unique_id == plex_server.machine_identifier
    # The servers were listed once, not again for the second choice.
    assert [r.path for r in plextv.requests].count("/api/v2/user") == 1


@pytest.mark.parametrize(
    ("resources", "reason"),
    [
        ([], "no_servers"),
        ([StandInResource("TV", "player-1", "t", provides="player")], "no_servers"),
        ([StandInResource("Here", "configured-server", "t")], "all_configured"),
    ],
    ids=["nothing", "only_players", "all_configured"],
)
async def test_sign_in_without_servers_to_add(
    hass: HomeAssistant,
    plextv: PlexTvStandIn,
    resources: list[StandInResource],
    reason: str,
) -> None:
    """An account with no server, or only configured ones, ends the flow."""
    MockConfigEntry(domain=DOMAIN, unique_id="configured-server").add_to_hass(hass)
    plextv.resources += resources
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await _sign_in(hass, plextv, result)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == reason


async def test_sign_in_server_that_does_not_answer(
    hass: HomeAssistant, plex_server: EmuServer, plextv: PlexTvStandIn
) -> None:
    """The only server answers on none of its addresses: the flow ends and says what it tried."""
    other = generate_server(seed=5, movies=1, shows=1, token=HA_TOKEN)
    async with PlexEmulator(other) as other_plex:
        other_url = other_plex.url
        plextv.resources.append(
            StandInResource(
                "Living Room Plex",
                plex_server.machine_identifier,
                HA_TOKEN,
                [
                    StandInConnection(CLOSED_PORT_URL, port=9),
                    # Another server answers here: not the one plex.tv listed.
                    StandInConnection(other_plex.url, local=False),
                ],
            )
        )
        result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
        result = await _sign_in(hass, plextv, result)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "no_connection"
    placeholders = result["description_placeholders"]
    assert placeholders is not None
    tried = placeholders["tried"]
    assert tried.index(CLOSED_PORT_URL) < tried.index(other_url)
    assert f"another server answered ({other.machine_identifier})" in tried
    assert HA_TOKEN not in tried
    assert ACCOUNT_TOKEN not in tried


@pytest.mark.parametrize(
    ("token", "sections", "reason"),
    [("wrong-token", True, "invalid_auth"), (HA_TOKEN, False, "no_libraries")],
    ids=["token_refused", "no_libraries"],
)
async def test_sign_in_server_refuses(
    hass: HomeAssistant,
    plex: PlexEmulator,
    plex_server: EmuServer,
    plextv: PlexTvStandIn,
    token: str,
    sections: bool,
    reason: str,
) -> None:
    """The server answers but refuses plex.tv's token, or has nothing to catalog."""
    if not sections:
        plex_server.sections.clear()
        plex_server.invalidate()
    resource = _resource(plex, plex_server)
    resource.access_token = token
    plextv.resources.append(resource)
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await _sign_in(hass, plextv, result)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == reason


@pytest.mark.parametrize(
    ("endpoint", "fault", "reason"),
    [
        ("pins", PlexTvFault.STATUS_500, "plex_tv_error"),
        ("pins", PlexTvFault.MALFORMED, "plex_tv_error"),
        ("pins", PlexTvFault.RESET, "plex_tv_unreachable"),
        (None, None, "plex_tv_unreachable"),
    ],
    ids=["status_500", "malformed", "reset", "unreachable"],
)
async def test_sign_in_cannot_start(
    hass: HomeAssistant,
    plextv: PlexTvStandIn,
    endpoint: str | None,
    fault: PlexTvFault | None,
    reason: str,
) -> None:
    """plex.tv cannot create the PIN: the flow ends at once."""
    if endpoint is not None and fault is not None:
        plextv.faults[endpoint] = fault
    with plextv.patched(CLOSED_PORT_URL) if endpoint is None else nullcontext():
        result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {"next_step_id": "sign_in"}
        )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == reason


async def test_sign_in_expires(hass: HomeAssistant, plextv: PlexTvStandIn) -> None:
    """plex.tv forgets the PIN before the person signed in."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await _start_sign_in(hass, result)
    plextv.expire()
    result = await _finish_sign_in(hass, result)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "sign_in_timeout"
    assert result["description_placeholders"] == {"minutes": "10"}


async def test_sign_in_times_out(hass: HomeAssistant, plextv: PlexTvStandIn) -> None:
    """Nobody signs in within the time allowed."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    with patch(f"{FLOW}.SIGN_IN_TIMEOUT", 0.1):
        result = await _start_sign_in(hass, result)
        result = await _finish_sign_in(hass, result)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "sign_in_timeout"
    assert plextv.requests[-1].path.startswith("/api/v2/pins/")


@pytest.mark.parametrize(
    ("fault", "reason", "questions"),
    [
        (PlexTvFault.RESET, "plex_tv_unreachable", 5),
        (PlexTvFault.STATUS_500, "plex_tv_error", 5),
        # A refusal is no passing failure: it ends the sign-in at once.
        (PlexTvFault.STATUS_401, "plex_tv_error", 1),
    ],
)
async def test_sign_in_plex_tv_fails_while_waiting(
    hass: HomeAssistant,
    plextv: PlexTvStandIn,
    fault: PlexTvFault,
    reason: str,
    questions: int,
) -> None:
    """plex.tv fails the questions about the PIN while the person signs in."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    plextv.faults["pin"] = fault
    result = await _start_sign_in(hass, result)
    result = await _finish_sign_in(hass, result)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == reason
    assert len([r for r in plextv.requests if r.path.startswith("/api/v2/pins/")]) == questions


@pytest.mark.usefixtures("mock_setup_entry")
async def test_sign_in_survives_a_failed_question(
    hass: HomeAssistant, plex: PlexEmulator, plex_server: EmuServer, plextv: PlexTvStandIn
) -> None:
    """A question plex.tv does not answer is asked again."""
    plextv.resources.append(_resource(plex, plex_server))
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    plextv.faults["pin"] = PlexTvFault.RESET
    plextv.fault_times["pin"] = 2
    result = await _start_sign_in(hass, result)
    plextv.approve()
    result = await _finish_sign_in(hass, result)
    assert result["step_id"] == "libraries"
    assert len([r for r in plextv.requests if r.path.startswith("/api/v2/pins/")]) == 3


@pytest.mark.parametrize(
    ("endpoint", "fault", "reason"),
    [
        ("user", PlexTvFault.STATUS_401, "plex_tv_error"),
        ("resources", PlexTvFault.STATUS_500, "plex_tv_error"),
        ("resources", PlexTvFault.MALFORMED, "plex_tv_error"),
        ("resources", PlexTvFault.RESET, "plex_tv_unreachable"),
    ],
)
async def test_sign_in_servers_cannot_be_listed(
    hass: HomeAssistant,
    plextv: PlexTvStandIn,
    endpoint: str,
    fault: PlexTvFault,
    reason: str,
) -> None:
    """plex.tv fails to list the account's servers after the sign-in."""
    plextv.faults[endpoint] = fault
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await _sign_in(hass, plextv, result)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == reason


async def test_abandoned_sign_in_stops_asking(hass: HomeAssistant, plextv: PlexTvStandIn) -> None:
    """Closing the dialog removes the flow: plex.tv is not asked any more."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await _start_sign_in(hass, result)
    hass.config_entries.flow.async_abort(result["flow_id"])
    await hass.async_block_till_done(wait_background_tasks=True)
    # A question already on its way may still arrive; none is asked after it.
    await asyncio.sleep(0.1)
    asked = len(plextv.requests)
    await asyncio.sleep(0.1)
    assert len(plextv.requests) == asked


# --- reauth ----------------------------------------------------------------------------------


async def _start_reauth_token(hass: HomeAssistant, entry: MockConfigEntry) -> Any:
    """Start reauthentication and choose to enter a token."""
    result = await entry.start_reauth_flow(hass)
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "reauth_confirm"
    assert result["menu_options"] == ["sign_in", "reauth_token"]
    assert result["description_placeholders"] == {"name": "Living Room Plex"}
    return await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "reauth_token"}
    )


@pytest.mark.usefixtures("mock_setup_entry", "plex")
async def test_reauth_flow(hass: HomeAssistant, mock_config_entry: MockConfigEntry) -> None:
    """Test reauthentication stores the new token."""
    mock_config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        mock_config_entry, data={**mock_config_entry.data, CONF_TOKEN: "stale-token"}
    )
    result = await _start_reauth_token(hass, mock_config_entry)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reauth_token"
    assert result["description_placeholders"] == {"name": "Living Room Plex"}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TOKEN: f" {HA_TOKEN} "}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    # The flow scheduled a reload of the entry: let it finish before the test ends.
    await async_wait_synced(hass)
    assert mock_config_entry.data[CONF_TOKEN] == HA_TOKEN


@pytest.mark.parametrize(
    ("token", "fault", "side_effect", "expected_errors"),
    [
        ("wrong-token", None, None, {CONF_TOKEN: "invalid_auth"}),
        (
            HA_TOKEN,
            Fault(FaultKind.STATUS_500, endpoint="root", times=None),
            None,
            {"base": "cannot_connect"},
        ),
        (
            HA_TOKEN,
            Fault(FaultKind.HTML_200, endpoint="sections", times=None),
            None,
            {"base": "cannot_connect"},
        ),
        (HA_TOKEN, None, RuntimeError("boom"), {"base": "unknown"}),
    ],
    ids=["wrong_token", "status_500", "html_200", "unexpected"],
)
@pytest.mark.usefixtures("mock_setup_entry", "plex")
async def test_reauth_flow_errors(
    hass: HomeAssistant,
    plex_server: EmuServer,
    mock_config_entry: MockConfigEntry,
    token: str,
    fault: Fault | None,
    side_effect: Exception | None,
    expected_errors: dict[str, str],
) -> None:
    """Test reauthentication shows each error and recovers."""
    mock_config_entry.add_to_hass(hass)
    if fault is not None:
        plex_server.faults.add(fault)
    result = await _start_reauth_token(hass, mock_config_entry)

    with patch(SERVER_INFO, side_effect=side_effect) if side_effect else nullcontext():
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_TOKEN: token}
        )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reauth_token"
    assert result["errors"] == expected_errors
    assert _suggested(result, CONF_TOKEN) is None

    plex_server.faults.clear()
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TOKEN: HA_TOKEN}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    await async_wait_synced(hass)


@pytest.mark.usefixtures("mock_setup_entry", "plex")
async def test_reauth_flow_wrong_server(
    hass: HomeAssistant, plex_server: EmuServer, mock_config_entry: MockConfigEntry
) -> None:
    """Test reauthentication aborts when the URL now leads to another server."""
    mock_config_entry.add_to_hass(hass)
    result = await _start_reauth_token(hass, mock_config_entry)
    plex_server.machine_identifier = "another-server"
    plex_server.invalidate()

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TOKEN: HA_TOKEN}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_server"
    assert mock_config_entry.unique_id != "another-server"


@pytest.mark.usefixtures("mock_setup_entry")
async def test_reauth_by_sign_in_keeps_a_working_url(
    hass: HomeAssistant,
    plex: PlexEmulator,
    plex_server: EmuServer,
    mock_config_entry: MockConfigEntry,
    plextv: PlexTvStandIn,
) -> None:
    """Signing in again stores plex.tv's token; the address in use answers, so it stays."""
    mock_config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        mock_config_entry,
        data={**mock_config_entry.data, CONF_TOKEN: "stale-token", CONF_VERIFY_SSL: False},
    )
    plex_server.token = "fresh-token"
    async with PlexEmulator(plex_server) as elsewhere:
        # plex.tv lists another address first; the one in use is tried before it.
        resource = _resource(elsewhere, plex_server, elsewhere.url, plex.url)
        plextv.resources.append(resource)
        result = await mock_config_entry.start_reauth_flow(hass)
        result = await _sign_in(hass, plextv, result)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    await async_wait_synced(hass)
    assert dict(mock_config_entry.data) == {
        CONF_URL: plex.url,
        CONF_TOKEN: "fresh-token",
        CONF_VERIFY_SSL: False,
    }


@pytest.mark.usefixtures("mock_setup_entry")
async def test_reauth_by_sign_in_moves_to_an_address_that_answers(
    hass: HomeAssistant,
    plex: PlexEmulator,
    plex_server: EmuServer,
    mock_config_entry: MockConfigEntry,
    plextv: PlexTvStandIn,
) -> None:
    """The address in use no longer answers: the best one plex.tv lists is stored instead."""
    mock_config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        mock_config_entry, data={**mock_config_entry.data, CONF_URL: CLOSED_PORT_URL}
    )
    plextv.resources.append(_resource(plex, plex_server))
    result = await mock_config_entry.start_reauth_flow(hass)
    result = await _sign_in(hass, plextv, result)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    await async_wait_synced(hass)
    assert mock_config_entry.data[CONF_URL] == plex.url
    assert mock_config_entry.data[CONF_TOKEN] == HA_TOKEN


@pytest.mark.usefixtures("mock_setup_entry", "plex")
async def test_reauth_by_sign_in_with_another_account(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, plextv: PlexTvStandIn
) -> None:
    """The account signed in with has no access to the server being reauthenticated."""
    mock_config_entry.add_to_hass(hass)
    plextv.resources.append(StandInResource("Another", "another-server", "t"))
    result = await mock_config_entry.start_reauth_flow(hass)
    result = await _sign_in(hass, plextv, result)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "server_not_on_account"
    assert result["description_placeholders"] == {"name": "Living Room Plex"}
    assert mock_config_entry.data[CONF_TOKEN] == HA_TOKEN


async def test_reauth_of_a_loaded_entry_leaves_the_reload_to_its_listener(
    hass: HomeAssistant, init_integration: MockConfigEntry, plex_server: EmuServer
) -> None:
    """A loaded entry reloads through its update listener once its token changed."""
    plex_server.token = "rotated-token"
    with patch.object(hass.config_entries, "async_schedule_reload") as schedule_reload:
        result = await _start_reauth_token(hass, init_integration)
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_TOKEN: "rotated-token"}
        )
        assert result["reason"] == "reauth_successful"
        await async_wait_synced(hass)
    schedule_reload.assert_not_called()
    assert init_integration.data[CONF_TOKEN] == "rotated-token"
    assert init_integration.runtime_data.last_update_success


# --- reconfigure -----------------------------------------------------------------------------


@pytest.mark.usefixtures("mock_setup_entry")
async def test_reconfigure_flow(
    hass: HomeAssistant,
    plex: PlexEmulator,
    plex_server: EmuServer,
    mock_config_entry: MockConfigEntry,
) -> None:
    """Test reconfiguring the URL and certificate check keeps the token."""
    mock_config_entry.add_to_hass(hass)
    result = await mock_config_entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"
    assert result["description_placeholders"] == {"name": "Living Room Plex"}
    assert _suggested(result, CONF_URL) == plex.url
    assert _suggested(result, CONF_VERIFY_SSL) is True

    # The same server, now reachable on another port.
    async with PlexEmulator(plex_server) as moved:
        moved_url = moved.url
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_URL: f" {moved_url}/", CONF_VERIFY_SSL: False}
        )
        assert result["type"] is FlowResultType.ABORT
        assert result["reason"] == "reconfigure_successful"
        await async_wait_synced(hass)
    assert mock_config_entry.data == {
        CONF_URL: moved_url,
        CONF_TOKEN: HA_TOKEN,
        CONF_VERIFY_SSL: False,
    }


@pytest.mark.parametrize(
    ("url", "fault", "expected_errors"),
    [
        (CLOSED_PORT_URL, None, {CONF_URL: "cannot_connect"}),
        ("ftp://x", None, {CONF_URL: "invalid_url"}),
        ("https", None, {CONF_URL: "ssl_error"}),
        (None, Fault(FaultKind.STATUS_401, endpoint="root", times=None), {"base": "invalid_auth"}),
        (
            None,
            Fault(FaultKind.STATUS_500, endpoint="sections", times=None),
            {CONF_URL: "cannot_connect"},
        ),
    ],
    ids=["closed_port", "ftp_url", "https_to_http", "status_401", "status_500"],
)
@pytest.mark.usefixtures("mock_setup_entry")
async def test_reconfigure_flow_errors(
    hass: HomeAssistant,
    plex: PlexEmulator,
    plex_server: EmuServer,
    mock_config_entry: MockConfigEntry,
    url: str | None,
    fault: Fault | None,
    expected_errors: dict[str, str],
) -> None:
    """Test reconfiguring shows each error, keeps the input and recovers."""
    mock_config_entry.add_to_hass(hass)
    if url == "https":
        url = _https_url(plex)
    if fault is not None:
        plex_server.faults.add(fault)
    result = await mock_config_entry.start_reconfigure_flow(hass)

    user_input = {CONF_URL: url or plex.url, CONF_VERIFY_SSL: False}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], user_input)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"
    assert result["errors"] == expected_errors
    assert _suggested(result, CONF_URL) == user_input[CONF_URL]
    assert _suggested(result, CONF_VERIFY_SSL) is False
    assert mock_config_entry.data[CONF_URL] == plex.url

    plex_server.faults.clear()
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: plex.url, CONF_VERIFY_SSL: True}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await async_wait_synced(hass)


@pytest.mark.usefixtures("mock_setup_entry", "plex")
async def test_reconfigure_flow_wrong_server(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    """Test reconfiguring to the URL of another server aborts and changes nothing."""
    mock_config_entry.add_to_hass(hass)
    old_data = dict(mock_config_entry.data)
    other = generate_server(seed=99, movies=1, shows=1, token=HA_TOKEN)
    async with PlexEmulator(other) as other_plex:
        result = await mock_config_entry.start_reconfigure_flow(hass)
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_URL: other_plex.url, CONF_VERIFY_SSL: True}
        )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_server"
    assert dict(mock_config_entry.data) == old_data


# --- options ---------------------------------------------------------------------------------


async def test_options_flow(hass: HomeAssistant, mock_config_entry: MockConfigEntry) -> None:
    """Test changing the libraries and the schedule."""
    mock_config_entry.add_to_hass(hass)
    result = await hass.config_entries.options.async_init(mock_config_entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "init"
    assert result["errors"] == {}
    assert result["description_placeholders"] == {
        "name": "Living Room Plex",
        "webhook_url": "(shown once the server has been set up)",
    }
    assert _select_options(result, CONF_LIBRARIES) == [
        ("1", "Movies (movie)"),
        ("2", "TV Shows (show)"),
    ]

    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            CONF_LIBRARIES: ["1"],
            CONF_SCAN_INTERVAL: 30.0,
            CONF_DEEP_SYNC_INTERVAL: 0,
            CONF_RETENTION_DAYS: 90,
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    expected = {
        CONF_LIBRARIES: ["1"],
        CONF_SCAN_INTERVAL: 30,
        CONF_DEEP_SYNC_INTERVAL: 0,
        CONF_RETENTION_DAYS: 90,
    }
    assert mock_config_entry.options == expected
    assert all(type(mock_config_entry.options[key]) is int for key in list(expected)[1:])


async def test_options_flow_shows_the_webhook_address(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    """The address to paste into Plex's webhook settings is in the options form."""
    mock_config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        mock_config_entry, data={**mock_config_entry.data, "webhook_id": "abc123"}
    )
    result = await hass.config_entries.options.async_init(mock_config_entry.entry_id)
    # No URL configured for Home Assistant in tests: the path to put after its address.
    placeholders = result["description_placeholders"]
    assert placeholders is not None
    assert placeholders["webhook_url"].endswith("/api/webhook/abc123")
    await hass.config.async_update(external_url="https://ha.example.org")
    result = await hass.config_entries.options.async_init(mock_config_entry.entry_id)
    placeholders = result["description_placeholders"]
    assert placeholders is not None
    assert placeholders["webhook_url"] == "https://ha.example.org/api/webhook/abc123"


async def test_options_flow_without_a_url_for_home_assistant(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    """Without any URL for Home Assistant, the form shows the webhook's path."""
    mock_config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        mock_config_entry, data={**mock_config_entry.data, "webhook_id": "abc123"}
    )
    with patch(f"{FLOW}.webhook.async_generate_url", side_effect=NoURLAvailableError("no URL")):
        result = await hass.config_entries.options.async_init(mock_config_entry.entry_id)
    assert (result["description_placeholders"] or {})["webhook_url"] == "/api/webhook/abc123"


async def test_options_flow_needs_a_library(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    """Test the options need at least one library and keep the other input."""
    mock_config_entry.add_to_hass(hass)
    result = await hass.config_entries.options.async_init(mock_config_entry.entry_id)
    user_input = {
        CONF_LIBRARIES: [],
        CONF_SCAN_INTERVAL: 5,
        CONF_DEEP_SYNC_INTERVAL: 12,
        CONF_RETENTION_DAYS: 7,
    }
    result = await hass.config_entries.options.async_configure(result["flow_id"], user_input)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_LIBRARIES: "no_libraries"}
    assert _suggested(result, CONF_SCAN_INTERVAL) == 5

    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**user_input, CONF_LIBRARIES: ["2"]}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert mock_config_entry.options[CONF_LIBRARIES] == ["2"]


@pytest.mark.parametrize(
    ("fault", "expected_error"),
    [
        (Fault(FaultKind.STATUS_500, endpoint="root", times=None), "cannot_connect"),
        (Fault(FaultKind.STATUS_401, endpoint="sections", times=None), "invalid_auth"),
    ],
    ids=["status_500", "status_401"],
)
async def test_options_flow_server_unreachable(
    hass: HomeAssistant,
    plex_server: EmuServer,
    mock_config_entry: MockConfigEntry,
    fault: Fault,
    expected_error: str,
) -> None:
    """Test the options can be changed while the server cannot list its libraries."""
    mock_config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(mock_config_entry, options={CONF_LIBRARIES: ["2", "7"]})
    plex_server.faults.add(fault)
    result = await hass.config_entries.options.async_init(mock_config_entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": expected_error}
    # Only the selected libraries are offered, by key; the defaults fill in the schedule.
    assert _select_options(result, CONF_LIBRARIES) == [("2", "2"), ("7", "7")]

    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            CONF_LIBRARIES: ["2", "7"],
            CONF_SCAN_INTERVAL: DEFAULT_SCAN_INTERVAL,
            CONF_DEEP_SYNC_INTERVAL: DEFAULT_DEEP_SYNC_INTERVAL,
            CONF_RETENTION_DAYS: DEFAULT_RETENTION_DAYS,
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert mock_config_entry.options[CONF_LIBRARIES] == ["2", "7"]


async def test_options_flow_keeps_missing_library(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    """Test a selected library the server no longer has stays selectable."""
    mock_config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        mock_config_entry, options={**mock_config_entry.options, CONF_LIBRARIES: ["1", "7"]}
    )
    result = await hass.config_entries.options.async_init(mock_config_entry.entry_id)
    assert result["errors"] == {}
    assert _select_options(result, CONF_LIBRARIES) == [
        ("1", "Movies (movie)"),
        ("2", "TV Shows (show)"),
        ("7", "7"),
    ]


# --- path mapping subentries -----------------------------------------------------------------


async def _start_mapping_flow(hass: HomeAssistant, entry: MockConfigEntry) -> Any:
    """Start adding a path mapping to an entry."""
    return await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_PATH_MAPPING), context={"source": SOURCE_USER}
    )


async def test_path_mapping_flow(hass: HomeAssistant, mock_config_entry: MockConfigEntry) -> None:
    """Test adding a path mapping stores canonical prefixes."""
    mock_config_entry.add_to_hass(hass)
    result = await _start_mapping_flow(hass, mock_config_entry)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == {}
    # The entry is not loaded: no library folders to show.
    assert result["description_placeholders"] == {"libraries": ""}

    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {CONF_PLEX_PREFIX: " /data//movies/ ", CONF_LOCAL_PREFIX: "/media/movies/"},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "/data/movies → /media/movies"
    assert result["data"] == {CONF_PLEX_PREFIX: "/data/movies", CONF_LOCAL_PREFIX: "/media/movies"}
    (subentry,) = mock_config_entry.subentries.values()
    assert subentry.subentry_type == SUBENTRY_PATH_MAPPING
    assert subentry.unique_id == "/data/movies"
    assert subentry.title == "/data/movies → /media/movies"
    assert dict(subentry.data) == result["data"]


@pytest.mark.parametrize(
    ("plex_prefix", "local_prefix", "errors", "messages"),
    [
        (
            "data/movies",
            "/media",
            {CONF_PLEX_PREFIX: "invalid_plex_prefix"},
            {"plex_error": "must be an absolute path"},
        ),
        (
            "/data/movies",
            "",
            {CONF_LOCAL_PREFIX: "invalid_local_prefix"},
            {"local_error": "must not be empty"},
        ),
        (
            "/data/../movies",
            "/media",
            {CONF_PLEX_PREFIX: "invalid_plex_prefix"},
            {"plex_error": "'..'"},
        ),
        (
            "\\\\nas",
            "/media",
            {CONF_PLEX_PREFIX: "invalid_plex_prefix"},
            {"plex_error": "server and a share"},
        ),
        (
            "movies",
            "C:\\...\\x",
            {CONF_PLEX_PREFIX: "invalid_plex_prefix", CONF_LOCAL_PREFIX: "invalid_local_prefix"},
            {"plex_error": "must be an absolute path", "local_error": "dots and spaces"},
        ),
    ],
    ids=["relative", "empty_local", "parent", "unc_without_share", "both"],
)
async def test_path_mapping_flow_invalid_path(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    plex_prefix: str,
    local_prefix: str,
    errors: dict[str, str],
    messages: dict[str, str],
) -> None:
    """Test an unusable prefix is refused on its field, with the reason and the input kept."""
    mock_config_entry.add_to_hass(hass)
    result = await _start_mapping_flow(hass, mock_config_entry)
    user_input = {CONF_PLEX_PREFIX: plex_prefix, CONF_LOCAL_PREFIX: local_prefix}
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], user_input)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors
    placeholders = result["description_placeholders"] or {}
    assert set(placeholders) == {*messages, "libraries"}
    for key, message in messages.items():
        assert message in placeholders[key]
    assert _suggested(result, CONF_PLEX_PREFIX) == plex_prefix
    assert _suggested(result, CONF_LOCAL_PREFIX) == local_prefix

    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_PLEX_PREFIX: "/data", CONF_LOCAL_PREFIX: "/media"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


@pytest.mark.parametrize(
    ("plex_prefix", "canonical"),
    [
        ("D:\\Media", "D:\\Media"),
        ("d:/media/", "d:\\media"),
        ("D:\\MEDIA\\.", "D:\\MEDIA"),
        ("\\\\NAS\\Share", "\\\\NAS\\Share"),
        ("\\\\nas/Share/", "\\\\nas\\Share"),
        ("/data//movies/", "/data/movies"),
    ],
)
async def test_path_mapping_flow_duplicate_prefix(
    hass: HomeAssistant, plex_prefix: str, canonical: str
) -> None:
    """Test a Plex prefix can be mapped once; Windows prefixes ignore case."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id="server-id",
        subentries_data=[
            _mapping_subentry("D:\\Media", "/media/d"),
            _mapping_subentry("\\\\nas\\share", "/mnt/share"),
            _mapping_subentry("/data/movies", "/media/movies"),
            # Subentries of other types are no path mappings.
            _mapping_subentry("/other", "/media/other", subentry_type="other", unique_id=None),
        ],
    )
    entry.add_to_hass(hass)
    result = await _start_mapping_flow(hass, entry)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_PLEX_PREFIX: plex_prefix, CONF_LOCAL_PREFIX: "/elsewhere"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_PLEX_PREFIX: "duplicate_prefix"}
    assert result["description_placeholders"] == {"plex_prefix": canonical, "libraries": ""}
    assert _suggested(result, CONF_PLEX_PREFIX) == plex_prefix

    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_PLEX_PREFIX: "/other", CONF_LOCAL_PREFIX: "/elsewhere"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert len(entry.subentries) == 5


async def _start_mapping_reconfigure(
    hass: HomeAssistant, entry: MockConfigEntry, subentry_id: str
) -> Any:
    """Start a mapping's reconfigure flow through Home Assistant itself.

    The harness's `start_subentry_reconfigure_flow` changed its arguments between the two
    Home Assistant lanes; the flow manager's own call is the same on both.
    """
    return await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_PATH_MAPPING),
        context={"source": SOURCE_RECONFIGURE, "subentry_id": subentry_id},
    )


async def test_path_mapping_reconfigure(hass: HomeAssistant) -> None:
    """Test editing a mapping: its own prefix may stay, another's may not be taken."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id="server-id",
        subentries_data=[
            _mapping_subentry("/data/movies", "/media/movies"),
            _mapping_subentry("/data/tv", "/media/tv"),
        ],
    )
    entry.add_to_hass(hass)
    movies_id, tv_id = entry.subentries
    result = await _start_mapping_reconfigure(hass, entry, movies_id)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"
    assert _suggested(result, CONF_PLEX_PREFIX) == "/data/movies"
    assert _suggested(result, CONF_LOCAL_PREFIX) == "/media/movies"

    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_PLEX_PREFIX: "/data/tv/", CONF_LOCAL_PREFIX: "/media/x"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_PLEX_PREFIX: "duplicate_prefix"}
    assert result["description_placeholders"] == {"plex_prefix": "/data/tv", "libraries": ""}

    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_PLEX_PREFIX: "data", CONF_LOCAL_PREFIX: "/media/x"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_PLEX_PREFIX: "invalid_plex_prefix"}
    assert _suggested(result, CONF_PLEX_PREFIX) == "data"
    assert _suggested(result, CONF_LOCAL_PREFIX) == "/media/x"

    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_PLEX_PREFIX: "/data/movies/", CONF_LOCAL_PREFIX: "/mnt/films"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    movies = entry.subentries[movies_id]
    assert dict(movies.data) == {CONF_PLEX_PREFIX: "/data/movies", CONF_LOCAL_PREFIX: "/mnt/films"}
    assert movies.title == "/data/movies → /mnt/films"
    assert movies.unique_id == "/data/movies"

    result = await _start_mapping_reconfigure(hass, entry, tv_id)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_PLEX_PREFIX: "/data/series", CONF_LOCAL_PREFIX: "/media/tv"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert entry.subentries[tv_id].unique_id == "/data/series"
    assert entry.subentries[tv_id].title == "/data/series → /media/tv"


async def test_path_mapping_form_lists_the_library_folders(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """Test the form of a loaded server shows its libraries' folders as Plex reports them."""
    result = await _start_mapping_flow(hass, init_integration)
    assert result["description_placeholders"] == {
        "libraries": "- Movies: `/data/movies`\n- TV Shows: `/data/tv`"
    }
    subentry_flow = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_PLEX_PREFIX: "/data/tv/", CONF_LOCAL_PREFIX: "relative"}
    )
    assert subentry_flow["errors"] == {CONF_LOCAL_PREFIX: "invalid_local_prefix"}
    assert (subentry_flow["description_placeholders"] or {})["libraries"].startswith("- Movies:")


async def test_path_mapping_form_lists_only_enabled_libraries(
    hass: HomeAssistant,
    plex: PlexEmulator,
    plex_server: EmuServer,
    mock_config_entry: MockConfigEntry,
) -> None:
    """Test a library the server syncs no longer is not offered as a hint."""
    plex_server.add_section("show", "Anime", ["/data/anime", "D:\\Anime"], key="7")
    mock_config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        mock_config_entry, options={**mock_config_entry.options, CONF_LIBRARIES: ["7", "1"]}
    )
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await async_wait_synced(hass)
    result = await _start_mapping_flow(hass, mock_config_entry)
    assert result["description_placeholders"] == {
        "libraries": "- Movies: `/data/movies`\n- Anime: `/data/anime`, `D:\\Anime`"
    }
