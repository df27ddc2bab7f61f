"""plex.tv sign-in, the account's servers and the choice of an address, over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import re
import time

import aiohttp
import pytest

from custom_components.retrovue.engine.plex.account import (
    Candidate,
    NoConnectionError,
    PinExpiredError,
    PinLogin,
    PlexTvAuthError,
    PlexTvConnectionError,
    PlexTvError,
    PlexTvResponseError,
    ResourceConnection,
    ServerResource,
    async_choose_connection,
    candidate_connections,
    fetch_servers,
    verify_ssl_for,
)
from tests.emulator import EmuServer, Fault, FaultKind, PlexEmulator, generate_server
from tests.plextv import (
    ACCOUNT_TOKEN,
    PlexTvFault,
    PlexTvStandIn,
    StandInConnection,
    StandInResource,
)

CLIENT_ID = "retrovue-engine-test"


@pytest.fixture
async def plextv() -> AsyncIterator[PlexTvStandIn]:
    """Serve plex.tv's sign-in API on 127.0.0.1 and point python-plexapi at it."""
    async with PlexTvStandIn() as standin:
        with standin.patched():
            yield standin


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """Return an aiohttp session for the address probes."""
    async with aiohttp.ClientSession() as client_session:
        yield client_session


def _connection(uri: str, **changes: object) -> ResourceConnection:
    values: dict[str, object] = {
        "uri": uri,
        "address": "192.168.1.20",
        "port": 32400,
        "protocol": "https" if uri.startswith("https") else "http",
        "local": True,
        "relay": False,
        "ipv6": False,
    }
    values.update(changes)
    return ResourceConnection(**values)  # type: ignore[arg-type]


def _server(*connections: ResourceConnection, **changes: object) -> ServerResource:
    values: dict[str, object] = {
        "name": "Den",
        "machine_identifier": "machine-1",
        "access_token": "server-token",
        "owned": True,
        "owner": None,
        "presence": True,
        "https_required": False,
        "public_address_matches": False,
        "connections": connections,
    }
    values.update(changes)
    return ServerResource(**values)  # type: ignore[arg-type]


PLEX_DIRECT = "https://192-168-1-20.0123abcd.plex.direct:32400"
REMOTE_DIRECT = "https://203-0-113-7.0123abcd.plex.direct:32400"
RELAY = "https://10-0-0-1.0123abcd.plex.direct:8443"
V6_DIRECT = "https://fd00--20.0123abcd.plex.direct:32400"


# --- which addresses, in which order ---------------------------------------------------------


def test_candidates_local_first_https_first_relay_last() -> None:
    server = _server(
        _connection(RELAY, address="10.0.0.1", port=8443, local=False, relay=True),
        _connection(REMOTE_DIRECT, address="203.0.113.7", local=False),
        _connection(V6_DIRECT, address="fd00::20", ipv6=True),
        _connection(PLEX_DIRECT),
        # The same address again (plex.tv lists some twice): tried once.
        _connection(PLEX_DIRECT),
        _connection("", protocol="https", address="192.168.1.21"),
    )
    assert [(c.url, c.verify_ssl, c.kind) for c in candidate_connections(server)] == [
        (PLEX_DIRECT, True, "local"),
        (V6_DIRECT, True, "local"),
        ("http://192.168.1.20:32400", True, "local"),
        ("http://192.168.1.21:32400", True, "local"),
        ("http://[fd00::20]:32400", True, "local"),
        (REMOTE_DIRECT, True, "remote"),
        ("http://203.0.113.7:32400", True, "remote"),
        # Through the relay: https only.
        (RELAY, True, "relay"),
    ]


def test_candidates_of_a_shared_server_and_of_one_that_requires_https() -> None:
    connections = (
        _connection(PLEX_DIRECT),
        _connection(REMOTE_DIRECT, address="203.0.113.7", local=False),
    )
    shared = _server(*connections, owned=False)
    # Another household's LAN addresses mean nothing here.
    assert [c.url for c in candidate_connections(shared)] == [
        REMOTE_DIRECT,
        "http://203.0.113.7:32400",
    ]
    same_network = _server(*connections, owned=False, public_address_matches=True)
    assert candidate_connections(same_network)[0].url == PLEX_DIRECT
    strict = _server(*connections, https_required=True)
    assert [c.url for c in candidate_connections(strict)] == [PLEX_DIRECT, REMOTE_DIRECT]


@pytest.mark.parametrize(
    ("url", "verify"),
    [
        (PLEX_DIRECT, True),
        ("https://plex.example.org:443", True),
        ("https://192.168.1.20:32400", False),
        ("https://[fd00::20]:32400", False),
        ("http://192.168.1.20:32400", True),
        ("https://", True),
    ],
)
def test_certificates_are_checked_except_for_https_to_an_ip(url: str, verify: bool) -> None:
    assert verify_ssl_for(url) is verify


# --- the address that answers ----------------------------------------------------------------


@pytest.fixture
def emu_server() -> EmuServer:
    return generate_server(seed=21, movies=1, shows=1, token="server-token")


async def test_the_best_address_that_answers_wins(
    session: aiohttp.ClientSession, emu_server: EmuServer
) -> None:
    """All addresses are asked at once; a better one that answers later still wins."""
    other = generate_server(seed=22, movies=1, shows=1)
    async with (
        PlexEmulator(emu_server) as slow,
        PlexEmulator(emu_server) as fast,
        PlexEmulator(other) as impostor,
    ):
        emu_server.faults.add(Fault(FaultKind.SLOW, endpoint="identity", times=1, delay=0.3))
        candidates = [
            Candidate("http://127.0.0.1:9", True, "local"),
            Candidate(impostor.url, True, "local"),
            Candidate(slow.url, True, "local"),
            Candidate(fast.url, True, "remote"),
        ]
        started = time.monotonic()
        chosen = await async_choose_connection(
            session, "Den", emu_server.machine_identifier, candidates, client_identifier=CLIENT_ID
        )
        elapsed = time.monotonic() - started
    assert chosen == candidates[2]
    assert elapsed < 2
    assert fast.counters["identity"] == 1
    assert slow.request_headers[0]["X-Plex-Client-Identifier"] == CLIENT_ID
    # `/identity` needs no token: none is sent while addresses are compared.
    assert all("X-Plex-Token" not in headers for headers in slow.request_headers)


async def test_a_good_address_does_not_wait_for_worse_ones(
    session: aiohttp.ClientSession, emu_server: EmuServer
) -> None:
    # The same server, once more, where `/identity` never answers.
    hung_server = generate_server(seed=21, movies=1, shows=1, token="server-token")
    hung_server.faults.add(Fault(FaultKind.HANG, endpoint="identity", times=None))
    async with PlexEmulator(emu_server) as good, PlexEmulator(hung_server) as hung:
        started = time.monotonic()
        chosen = await async_choose_connection(
            session,
            "Den",
            emu_server.machine_identifier,
            [Candidate(good.url, True, "local"), Candidate(hung.url, True, "relay")],
            probe_timeout=5,
        )
        assert chosen.url == good.url
        assert time.monotonic() - started < 1
        assert hung.counters["identity"] == 1


async def test_no_address_answers(session: aiohttp.ClientSession, emu_server: EmuServer) -> None:
    async with PlexEmulator(emu_server) as hung:
        hung_url = hung.url
        emu_server.faults.add(Fault(FaultKind.HANG, endpoint="identity", times=None))
        with pytest.raises(NoConnectionError) as caught:
            await async_choose_connection(
                session,
                "Den",
                emu_server.machine_identifier,
                [
                    Candidate("http://127.0.0.1:9", True, "local"),
                    Candidate(hung.url, True, "local"),
                    Candidate("ftp://example.org", True, "remote"),
                    Candidate(hung.url.replace("http:", "https:"), False, "relay"),
                ],
                probe_timeout=0.3,
            )
    attempts = caught.value.attempts
    assert [attempt.url for attempt in attempts] == [
        "http://127.0.0.1:9",
        hung_url,
        "ftp://example.org",
        hung_url.replace("http:", "https:"),
    ]
    assert attempts[0].error is not None
    assert attempts[0].error.startswith("cannot reach the server")
    assert attempts[1].error == "no answer in time"
    assert attempts[2].error == "not an http(s) address"
    assert attempts[3].error is not None
    assert "TLS" in attempts[3].error or "cannot reach" in attempts[3].error
    assert str(caught.value).startswith("Den: no address answered; tried http://127.0.0.1:9 (")
    assert "server-token" not in str(caught.value)


async def test_no_address_at_all(session: aiohttp.ClientSession) -> None:
    with pytest.raises(NoConnectionError, match="tried none"):
        await async_choose_connection(session, "Den", "machine-1", [])


# --- the sign-in -----------------------------------------------------------------------------


async def test_pin_sign_in(plextv: PlexTvStandIn) -> None:
    login = PinLogin(CLIENT_ID, "Home")
    try:
        url = await asyncio.to_thread(login.auth_url, "https://ha.example.org/auth/cb")
        assert url.startswith("https://app.plex.tv/auth/#!?clientID=retrovue-engine-test&")
        assert "forwardUrl=https%3A%2F%2Fha.example.org%2Fauth%2Fcb" in url
        assert await asyncio.to_thread(login.check) is None
        plextv.approve()
        assert await asyncio.to_thread(login.check) == ACCOUNT_TOKEN
    finally:
        login.close()
    create, *checks = plextv.requests
    assert create.method == "POST"
    assert create.path == "/api/v2/pins?strong=True"
    for request in (create, *checks):
        assert request.headers["X-Plex-Client-Identifier"] == CLIENT_ID
        assert request.headers["X-Plex-Product"] == "Retrovue"
        assert request.headers["X-Plex-Device-Name"] == "Home"
        assert "X-Plex-Token" not in request.headers


@pytest.mark.parametrize(
    ("fault", "error", "message"),
    [
        (PlexTvFault.STATUS_404, PinExpiredError, "no longer knows the PIN"),
        (PlexTvFault.STATUS_401, PlexTvAuthError, "refused the token (HTTP 401)"),
        (PlexTvFault.STATUS_500, PlexTvResponseError, "answered HTTP 500 to the PIN"),
        (PlexTvFault.MALFORMED, PlexTvResponseError, "answer to the PIN could not be read"),
        (PlexTvFault.RESET, PlexTvConnectionError, "could not be reached (ConnectionError)"),
    ],
)
async def test_pin_check_failures(
    plextv: PlexTvStandIn, fault: PlexTvFault, error: type[PlexTvError], message: str
) -> None:
    """Each failure of a check is told apart, and the next check asks again."""
    login = PinLogin(CLIENT_ID, "Home")
    try:
        await asyncio.to_thread(login.auth_url)
        plextv.faults["pin"] = fault
        with pytest.raises(error, match=re.escape(message)):
            await asyncio.to_thread(login.check)
        del plextv.faults["pin"]
        assert await asyncio.to_thread(login.check) is None
    finally:
        login.close()


async def test_pin_check_times_out(plextv: PlexTvStandIn) -> None:
    login = PinLogin(CLIENT_ID, "Home", timeout=0.2)
    try:
        await asyncio.to_thread(login.auth_url)
        plextv.faults["pin"] = PlexTvFault.HANG
        with pytest.raises(PlexTvConnectionError, match="did not answer in time"):
            await asyncio.to_thread(login.check)
    finally:
        login.close()


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (PlexTvFault.STATUS_500, PlexTvResponseError),
        (PlexTvFault.MALFORMED, PlexTvResponseError),
        (PlexTvFault.RESET, PlexTvConnectionError),
    ],
)
async def test_pin_cannot_be_created(
    plextv: PlexTvStandIn, fault: PlexTvFault, error: type[PlexTvError]
) -> None:
    plextv.faults["pins"] = fault
    login = PinLogin(CLIENT_ID, "Home")
    try:
        with pytest.raises(error) as caught:
            await asyncio.to_thread(login.auth_url)
    finally:
        login.close()
    # python-plexapi's own message (with plex.tv's address and answer) stays behind.
    assert plextv.url not in str(caught.value)
    assert caught.value.__cause__ is None


# --- the account's servers -------------------------------------------------------------------


async def test_fetch_servers(plextv: PlexTvStandIn) -> None:
    plextv.resources += [
        StandInResource(
            "Den",
            "machine-1",
            "owned-token",
            [
                StandInConnection(PLEX_DIRECT, address="192.168.1.20", protocol="https"),
                StandInConnection(
                    "http://[fd00::20]:32400", address="fd00::20", ipv6=True, local=False
                ),
            ],
        ),
        StandInResource(
            "Friend's",
            "machine-2",
            "shared-token",
            owned=False,
            source_title="friend",
            presence=False,
            https_required=True,
            public_address_matches=False,
        ),
        StandInResource("Phone", "phone-1", "phone-token", provides="client,player"),
    ]
    owned, shared = await asyncio.to_thread(fetch_servers, ACCOUNT_TOKEN, CLIENT_ID, "Home")
    assert owned == ServerResource(
        name="Den",
        machine_identifier="machine-1",
        access_token="owned-token",
        owned=True,
        owner=None,
        presence=True,
        https_required=False,
        public_address_matches=True,
        connections=(
            ResourceConnection(PLEX_DIRECT, "192.168.1.20", 32400, "https", True, False, False),
            ResourceConnection(
                "http://[fd00::20]:32400", "fd00::20", 32400, "http", False, False, True
            ),
        ),
    )
    assert (shared.owned, shared.owner, shared.presence, shared.https_required) == (
        False,
        "friend",
        False,
        True,
    )
    assert shared.public_address_matches is False
    # The token is no part of what a server prints as.
    assert "owned-token" not in repr(owned)
    tokens = {r.path: r.headers.get("X-Plex-Token") for r in plextv.requests}
    assert set(tokens.values()) == {ACCOUNT_TOKEN}
    assert {r.headers["X-Plex-Client-Identifier"] for r in plextv.requests} == {CLIENT_ID}


@pytest.mark.parametrize(
    ("endpoint", "fault", "error"),
    [
        ("user", PlexTvFault.STATUS_401, PlexTvAuthError),
        ("resources", PlexTvFault.STATUS_500, PlexTvResponseError),
        ("resources", PlexTvFault.STATUS_404, PlexTvResponseError),
        ("resources", PlexTvFault.MALFORMED, PlexTvResponseError),
        ("user", PlexTvFault.RESET, PlexTvConnectionError),
    ],
)
async def test_fetch_servers_failures(
    plextv: PlexTvStandIn, endpoint: str, fault: PlexTvFault, error: type[PlexTvError]
) -> None:
    plextv.faults[endpoint] = fault
    with pytest.raises(error) as caught:
        await asyncio.to_thread(fetch_servers, ACCOUNT_TOKEN, CLIENT_ID, "Home")
    assert ACCOUNT_TOKEN not in str(caught.value)
    assert plextv.url not in str(caught.value)


async def test_fetch_servers_with_a_refused_token(plextv: PlexTvStandIn) -> None:
    with pytest.raises(PlexTvAuthError, match="HTTP 401"):
        await asyncio.to_thread(fetch_servers, "not-the-token", CLIENT_ID, "Home")
