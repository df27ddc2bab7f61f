"""plex.tv: the PIN sign-in, the account's servers, and the choice of a server's address.

The sign-in and the server list go through python-plexapi, whose calls block: run `PinLogin`'s
methods and `fetch_servers` in an executor. Choosing an address is asynchronous and uses this
package's own client. No error message or log line holds a token.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import ip_address
import logging
from typing import Any, Final
from urllib.parse import urlsplit
from xml.etree.ElementTree import ParseError

import aiohttp
from plexapi.exceptions import PlexApiException
from plexapi.myplex import MyPlexAccount, MyPlexPinLogin
import requests  # type: ignore[import-untyped]

from .client import PRODUCT, PlexClient, client_headers
from .errors import PlexConnectionError, PlexError

LOGGER = logging.getLogger(__name__)

# Seconds one plex.tv request may take.
PLEX_TV_TIMEOUT: Final = 10.0
# Seconds a server address may take to answer `/identity` while addresses are compared.
PROBE_TIMEOUT: Final = 8.0

_LOCAL: Final = "local"
_REMOTE: Final = "remote"
_RELAY: Final = "relay"
_KIND_RANK: Final[Mapping[str, int]] = {_LOCAL: 0, _REMOTE: 1, _RELAY: 2}


class PlexTvError(Exception):
    """plex.tv could not be used; the message names what failed, never a token."""


class PlexTvConnectionError(PlexTvError):
    """plex.tv could not be reached or did not answer in time."""


class PlexTvAuthError(PlexTvError):
    """plex.tv refused the account's token."""


class PlexTvResponseError(PlexTvError):
    """plex.tv answered, but not with something usable."""


class PinExpiredError(PlexTvError):
    """plex.tv no longer knows the sign-in's PIN: it expired."""


@dataclass(frozen=True, slots=True)
class ResourceConnection:
    """One address plex.tv lists for a server."""

    uri: str
    address: str
    port: int
    protocol: str
    local: bool
    relay: bool
    ipv6: bool

    @property
    def kind(self) -> str:
        """Return `local`, `remote` or `relay`."""
        if self.relay:
            return _RELAY
        return _LOCAL if self.local else _REMOTE


@dataclass(frozen=True, slots=True)
class ServerResource:
    """A Plex Media Server the account may use (plex.tv's resources that provide `server`)."""

    name: str
    machine_identifier: str
    # The token for this server: a shared server has its own.
    access_token: str = field(repr=False)
    owned: bool
    owner: str | None
    presence: bool
    https_required: bool
    public_address_matches: bool
    connections: tuple[ResourceConnection, ...]


@dataclass(frozen=True, slots=True)
class Candidate:
    """An address to try for a server, with whether to check its certificate."""

    url: str
    verify_ssl: bool
    kind: str


@dataclass(frozen=True, slots=True)
class Attempt:
    """How one candidate address answered: `error` is None when it was the right server."""

    url: str
    error: str | None


class NoConnectionError(PlexConnectionError):
    """None of a server's addresses answered as that server."""

    def __init__(self, name: str, attempts: Sequence[Attempt]) -> None:
        """Keep what was tried."""
        # Each address and how it answered (the probes carry no token).
        self.tried = ", ".join(f"{attempt.url} ({attempt.error})" for attempt in attempts)
        super().__init__(f"no address answered; tried {self.tried or 'none'}", server=name)
        self.attempts = tuple(attempts)


class _PlexTvSession(requests.Session):  # type: ignore[misc]
    """A requests session that names Retrovue on every request and remembers the last answer.

    python-plexapi sends its own module-wide headers on each request; ours replace them here,
    so other users of python-plexapi in the same process keep theirs. python-plexapi's errors
    carry URLs and answer texts; `failure` describes the last request without them.
    """

    def __init__(self, headers: Mapping[str, str]) -> None:
        super().__init__()
        self._retrovue_headers = dict(headers)
        self.status: int | None = None
        self.transport_error: PlexTvConnectionError | None = None

    def request(
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        """Send a request with Retrovue's headers; remember its status or why it failed."""
        kwargs["headers"] = {**(kwargs.get("headers") or {}), **self._retrovue_headers}
        self.status = None
        self.transport_error = None
        try:
            response = super().request(method, url, *args, **kwargs)
        except requests.Timeout:
            self.transport_error = PlexTvConnectionError("plex.tv did not answer in time")
            raise
        except requests.RequestException as err:
            self.transport_error = PlexTvConnectionError(
                f"plex.tv could not be reached ({err.__class__.__name__})"
            )
            raise
        self.status = response.status_code
        return response

    def failure(self, what: str, *, pin: bool = False) -> PlexTvError:
        """Return the error that describes the last request about `what` (a PIN, if `pin`)."""
        if self.transport_error is not None:
            return self.transport_error
        status = self.status
        if pin and status == 404:
            return PinExpiredError("plex.tv no longer knows the PIN")
        if status in (401, 403, 422):
            return PlexTvAuthError(f"plex.tv refused the token (HTTP {status})")
        if status is not None and not 200 <= status < 300:
            return PlexTvResponseError(f"plex.tv answered HTTP {status} to {what}")
        return PlexTvResponseError(f"plex.tv's answer to {what} could not be read")


# What python-plexapi raises when a request fails or an answer does not read as expected.
_PLEXAPI_ERRORS: Final = (
    PlexApiException,
    requests.RequestException,
    ParseError,
    AttributeError,
    TypeError,
    ValueError,
)


def plex_tv_headers(client_identifier: str, device_name: str) -> dict[str, str]:
    """Return the headers that name Retrovue (and Home Assistant's name for itself) to plex.tv."""
    return {
        **client_headers(client_identifier),
        # python-plexapi reads XML; plex.tv answers JSON when asked for it.
        "Accept": "application/xml",
        "X-Plex-Device": "Home Assistant",
        "X-Plex-Device-Name": device_name,
        "X-Plex-Platform": "Home Assistant",
        "X-Plex-Model": PRODUCT,
    }


class PinLogin:
    """One plex.tv sign-in through Plex's web page (a PIN with `strong=true`); methods block."""

    def __init__(
        self, client_identifier: str, device_name: str, *, timeout: float = PLEX_TV_TIMEOUT
    ) -> None:
        """Prepare the sign-in; nothing is sent until `auth_url`."""
        headers = plex_tv_headers(client_identifier, device_name)
        self._session = _PlexTvSession(headers)
        self._login = MyPlexPinLogin(  # type: ignore[no-untyped-call]
            session=self._session, requestTimeout=timeout, headers=headers, oauth=True
        )

    def auth_url(self, forward_url: str | None = None) -> str:
        """Create the PIN on plex.tv and return the page to sign in at.

        After the sign-in the page sends the browser to `forward_url`, if given.
        """
        try:
            return str(self._login.oauthUrl(forward_url))  # type: ignore[no-untyped-call]
        except _PLEXAPI_ERRORS:
            raise self._session.failure("the new PIN") from None

    def check(self) -> str | None:
        """Return the account's token once the sign-in is done, None while it is not."""
        if self._login.checkLogin():  # type: ignore[no-untyped-call]
            return str(self._login.token)
        if not self._login.expired:
            return None
        # python-plexapi marks the PIN expired on any failure; the session knows which one.
        self._login.expired = False
        self._login.finished = False
        raise self._session.failure("the PIN", pin=True)

    def close(self) -> None:
        """Release the connections to plex.tv."""
        self._session.close()


def fetch_servers(
    token: str,
    client_identifier: str,
    device_name: str,
    *,
    timeout: float = PLEX_TV_TIMEOUT,
) -> list[ServerResource]:
    """Return the Plex Media Servers the account may use, owned and shared (blocks)."""
    session = _PlexTvSession(plex_tv_headers(client_identifier, device_name))
    try:
        account = MyPlexAccount(  # type: ignore[no-untyped-call]
            token=token, session=session, timeout=timeout
        )
        resources = account.resources()  # type: ignore[no-untyped-call]
        return [
            _server_resource(resource)
            for resource in resources
            if "server" in str(resource.provides or "").split(",")
        ]
    except _PLEXAPI_ERRORS:
        raise session.failure("the account's servers") from None
    finally:
        session.close()


def _server_resource(resource: Any) -> ServerResource:
    """Return the typed copy of a python-plexapi `MyPlexResource`."""
    return ServerResource(
        name=str(resource.name or resource.clientIdentifier),
        machine_identifier=str(resource.clientIdentifier),
        access_token=str(resource.accessToken or ""),
        owned=bool(resource.owned),
        owner=resource.sourceTitle or None,
        presence=bool(resource.presence),
        https_required=bool(getattr(resource, "httpsRequired", False)),
        public_address_matches=bool(getattr(resource, "publicAddressMatches", False)),
        connections=tuple(
            ResourceConnection(
                uri=str(connection.uri or ""),
                address=str(connection.address or ""),
                port=int(connection.port or 32400),
                protocol=str(connection.protocol or "http").lower(),
                local=bool(connection.local),
                relay=bool(connection.relay),
                ipv6=bool(connection.ipv6),
            )
            for connection in resource.connections
        ),
    )


def verify_ssl_for(url: str) -> bool:
    """Return whether to check the certificate of an address.

    Plex's certificates name `*.plex.direct` hosts, so they are checked there and on other host
    names; an https address with a plain IP cannot match and is used without the check.
    """
    return not is_ip_url(url, "https")


def is_ip_url(url: str, scheme: str) -> bool:
    """Return whether `url` has this scheme and a plain IP address (not a host name) as host."""
    parts = urlsplit(url)
    if parts.scheme != scheme or not parts.hostname:
        return False
    try:
        ip_address(parts.hostname)
    except ValueError:
        return False
    return True


def candidate_connections(resource: ServerResource) -> list[Candidate]:
    """Return the addresses to try for a server, best first.

    Local before remote before Plex's relay; within each, https (plex.direct) before plain
    http, IPv4 before IPv6. A local address is tried only for a server the account owns or
    one on the same public address (another household's LAN addresses mean nothing here);
    plain http only when the server does not require https, and never through the relay.
    """
    ranked: list[tuple[tuple[int, int, int, int], Candidate]] = []
    for index, connection in enumerate(resource.connections):
        if connection.local and not (resource.owned or resource.public_address_matches):
            continue
        kind = connection.kind
        urls: list[str] = []
        if connection.uri:
            urls.append(connection.uri.rstrip("/"))
        if (
            not resource.https_required
            and kind != _RELAY
            and connection.protocol == "https"
            and connection.address
        ):
            host = f"[{connection.address}]" if ":" in connection.address else connection.address
            urls.append(f"http://{host}:{connection.port}")
        for url in urls:
            scheme = 0 if url.startswith("https://") else 1
            rank = (_KIND_RANK[kind], scheme, int(connection.ipv6), index)
            ranked.append((rank, Candidate(url=url, verify_ssl=verify_ssl_for(url), kind=kind)))
    seen: set[str] = set()
    candidates: list[Candidate] = []
    for _, candidate in sorted(ranked, key=lambda pair: pair[0]):
        if candidate.url not in seen:
            seen.add(candidate.url)
            candidates.append(candidate)
    return candidates


async def async_choose_connection(
    session: aiohttp.ClientSession,
    name: str,
    machine_identifier: str,
    candidates: Sequence[Candidate],
    *,
    probe_timeout: float = PROBE_TIMEOUT,
    client_identifier: str = "retrovue",
) -> Candidate:
    """Return the best candidate that answers `/identity` as the given server.

    Every candidate is asked at once; the answers are read in rank order, so the first
    candidate whose own answer is good wins as soon as every better one has failed, and the
    others are cancelled. Raise `NoConnectionError` with what each candidate answered.

    Not python-plexapi's `MyPlexResource.connect()`: it also asks every address at once, but
    from threads with blocking requests, and waits for all of them (each up to its timeout)
    before it picks; it builds a whole `PlexServer` per address (`/` with the token), adds
    plain http for every connection including the relay's, and never compares the
    machineIdentifier. Here the asking runs on the event loop, sends no token (`/identity`
    needs none), ends as soon as the best address left has answered, and checks that the
    answer comes from the server plex.tv listed.
    """
    tasks = [
        asyncio.ensure_future(
            _probe(session, candidate, machine_identifier, probe_timeout, client_identifier)
        )
        for candidate in candidates
    ]
    attempts: list[Attempt] = []
    try:
        for candidate, task in zip(candidates, tasks, strict=True):
            error = await task
            attempts.append(Attempt(candidate.url, error))
            LOGGER.debug("%s: %s %s", name, candidate.url, error or "answered")
            if error is None:
                return candidate
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    raise NoConnectionError(name, attempts)


async def _probe(
    session: aiohttp.ClientSession,
    candidate: Candidate,
    machine_identifier: str,
    probe_timeout: float,
    client_identifier: str,
) -> str | None:
    """Return why a candidate is not the server, or None when it is."""
    try:
        client = PlexClient(
            session,
            candidate.url,
            "",
            verify_ssl=candidate.verify_ssl,
            client_identifier=client_identifier,
            timeout=probe_timeout,
            retries=0,
        )
    except ValueError:
        return "not an http(s) address"
    try:
        identity = await client.identity()
    except PlexError as err:
        return err.detail
    if identity.machine_identifier != machine_identifier:
        return f"another server answered ({identity.machine_identifier})"
    return None
