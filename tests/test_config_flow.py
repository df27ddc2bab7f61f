"""Tests for the Retrovue config flow, options flow and path mapping subentries."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any
from unittest.mock import patch

from homeassistant.config_entries import SOURCE_RECONFIGURE, SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

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

pytestmark = pytest.mark.usefixtures("enable_custom_integrations")

SERVER_INFO = "custom_components.retrovue.config_flow.PlexClient.server_info"
CLOSED_PORT_URL = "http://127.0.0.1:9"


def _user_input(plex: PlexEmulator, **changes: Any) -> dict[str, Any]:
    """Return valid input for the user step, with changes."""
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


# --- user step -------------------------------------------------------------------------------


@pytest.mark.usefixtures("mock_setup_entry")
async def test_user_flow(hass: HomeAssistant, plex: PlexEmulator, plex_server: EmuServer) -> None:
    """Test the full user flow, from the URL and token to the chosen libraries."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
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
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
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
        ({CONF_URL: "https"}, None, {"base": "ssl_error"}),
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
async def test_user_flow_errors(
    hass: HomeAssistant,
    plex: PlexEmulator,
    plex_server: EmuServer,
    changes: dict[str, Any],
    fault: Fault | None,
    expected_errors: dict[str, str],
) -> None:
    """Test the user step shows each connection error, keeps the URL and recovers."""
    if changes.get(CONF_URL) == "https":
        changes = {CONF_URL: _https_url(plex)}
    if fault is not None:
        plex_server.faults.add(fault)
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})

    user_input = _user_input(plex, **changes)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], user_input)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == expected_errors
    assert _suggested(result, CONF_URL) == user_input[CONF_URL]
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
async def test_user_flow_unknown_error(
    hass: HomeAssistant, plex: PlexEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    """Test an unexpected exception is logged and shown as unknown."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
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


async def test_user_flow_already_configured(
    hass: HomeAssistant, plex: PlexEmulator, mock_config_entry: MockConfigEntry
) -> None:
    """Test adding the same server twice aborts."""
    mock_config_entry.add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], _user_input(plex))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_user_flow_server_without_libraries(
    hass: HomeAssistant, plex: PlexEmulator, plex_server: EmuServer
) -> None:
    """Test a server without movie or show libraries aborts."""
    plex_server.sections.clear()
    plex_server.invalidate()
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
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
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
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


# --- reauth ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("mock_setup_entry", "plex")
async def test_reauth_flow(hass: HomeAssistant, mock_config_entry: MockConfigEntry) -> None:
    """Test reauthentication stores the new token."""
    mock_config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        mock_config_entry, data={**mock_config_entry.data, CONF_TOKEN: "stale-token"}
    )
    result = await mock_config_entry.start_reauth_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reauth_confirm"
    assert result["description_placeholders"] == {"name": "Living Room Plex"}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TOKEN: f" {HA_TOKEN} "}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
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
    result = await mock_config_entry.start_reauth_flow(hass)

    with patch(SERVER_INFO, side_effect=side_effect) if side_effect else nullcontext():
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_TOKEN: token}
        )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reauth_confirm"
    assert result["errors"] == expected_errors

    plex_server.faults.clear()
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TOKEN: HA_TOKEN}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"


@pytest.mark.usefixtures("mock_setup_entry", "plex")
async def test_reauth_flow_wrong_server(
    hass: HomeAssistant, plex_server: EmuServer, mock_config_entry: MockConfigEntry
) -> None:
    """Test reauthentication aborts when the URL now leads to another server."""
    mock_config_entry.add_to_hass(hass)
    result = await mock_config_entry.start_reauth_flow(hass)
    plex_server.machine_identifier = "another-server"
    plex_server.invalidate()

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TOKEN: HA_TOKEN}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_server"
    assert mock_config_entry.unique_id != "another-server"


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
        ("https", None, {"base": "ssl_error"}),
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
