"""plex.tv's PIN, user and resources endpoints as python-plexapi reads them (XML).

Shapes follow plex.tv's v2 API as python-plexapi 4.18 parses it (`plexapi/myplex.py`):
`POST /api/v2/pins?strong=true` answers a `<pin>` with `id` and `code`; `GET
/api/v2/pins/{id}` the same `<pin>`, with `authToken` once the person signed in, or 404 once
the PIN expired; `GET /api/v2/user` the account (`<user>` with `<subscription>` and
`<profile>`); `GET /api/v2/resources` the account's devices, each with `<connections>`.
`user` and `resources` need the account's token in `X-Plex-Token`.

```python
async with PlexTvStandIn() as plextv, plextv.patched():  # python-plexapi talks to it
    plextv.resources.append(StandInResource("Den", "machine-1", "server-token", [...]))
    plextv.approve()  # the latest PIN signs in
```
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
import itertools
from types import TracebackType
from typing import Self
from unittest.mock import patch
from xml.sax.saxutils import quoteattr

from aiohttp import web
from plexapi.myplex import MyPlexAccount, MyPlexPinLogin, MyPlexResource

ACCOUNT_TOKEN = "plextv-account-token-3b9e"


class PlexTvFault(StrEnum):
    """Ways an answer of the stand-in goes wrong."""

    STATUS_401 = "status_401"
    STATUS_404 = "status_404"
    STATUS_500 = "status_500"
    MALFORMED = "malformed"
    HANG = "hang"
    RESET = "reset"


@dataclass(slots=True)
class StandInConnection:
    """One `<connection>` of a resource."""

    uri: str
    address: str = "127.0.0.1"
    port: int = 32400
    protocol: str = "http"
    local: bool = True
    relay: bool = False
    ipv6: bool = False


@dataclass(slots=True)
class StandInResource:
    """One `<resource>` of the account (a server unless `provides` says otherwise)."""

    name: str
    client_identifier: str
    access_token: str
    connections: list[StandInConnection] = field(default_factory=list)
    provides: str = "server"
    owned: bool = True
    source_title: str = ""
    presence: bool = True
    https_required: bool = False
    public_address_matches: bool = True


@dataclass(slots=True)
class _Pin:
    id: int
    code: str
    client_identifier: str
    product: str
    token: str | None = None
    expired: bool = False


@dataclass(slots=True)
class Recorded:
    """A request the stand-in answered."""

    method: str
    path: str
    headers: dict[str, str]


class PlexTvStandIn:
    """Serve plex.tv's sign-in endpoints on 127.0.0.1 (a random port)."""

    def __init__(self, *, account_token: str = ACCOUNT_TOKEN) -> None:
        self.account_token = account_token
        self.resources: list[StandInResource] = []
        self.pins: dict[int, _Pin] = {}
        self.requests: list[Recorded] = []
        #: endpoint ("pins", "pin", "user", "resources") → fault, applied to every request…
        self.faults: dict[str, PlexTvFault] = {}
        #: …or to this many requests of the endpoint only.
        self.fault_times: dict[str, int] = {}
        self._ids = itertools.count(1001)
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._stopping = asyncio.Event()

    async def __aenter__(self) -> Self:
        """Start serving."""
        self._stopping = asyncio.Event()
        app = web.Application()
        app.router.add_post("/api/v2/pins", self._create_pin)
        app.router.add_get("/api/v2/pins/{pin_id}", self._get_pin)
        app.router.add_get("/api/v2/user", self._user)
        app.router.add_get("/api/v2/resources", self._resources)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop serving; hung requests end at once."""
        self._stopping.set()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    @property
    def url(self) -> str:
        """Return the base URL, `http://127.0.0.1:<port>`."""
        return f"http://127.0.0.1:{self._port}"

    @contextmanager
    def patched(self, base: str | None = None) -> Iterator[None]:
        """Point python-plexapi's plex.tv addresses at the stand-in (or at `base`)."""
        url = base or self.url
        with (
            patch.object(MyPlexPinLogin, "PINS", f"{url}/api/v2/pins"),
            patch.object(MyPlexAccount, "key", f"{url}/api/v2/user"),
            patch.object(
                MyPlexResource,
                "key",
                f"{url}/api/v2/resources?includeHttps=1&includeRelay=1&includeIPv6=1",
            ),
        ):
            yield

    # --------------------------------------------------------------- the person

    @property
    def latest_pin(self) -> _Pin:
        """Return the PIN created last."""
        return self.pins[max(self.pins)]

    def approve(self, token: str | None = None) -> None:
        """Sign in on Plex's page for the latest PIN: it gets the account's token."""
        self.latest_pin.token = token or self.account_token

    def expire(self) -> None:
        """Let the latest PIN expire: plex.tv answers 404 for it from now on."""
        self.latest_pin.expired = True

    # --------------------------------------------------------------- handlers

    async def _fault(self, endpoint: str, request: web.Request) -> web.StreamResponse | None:
        """Record the request; answer it with its endpoint's fault, if it has one."""
        self.requests.append(Recorded(request.method, request.path_qs, dict(request.headers)))
        fault = self.faults.get(endpoint)
        if fault is None:
            return None
        if endpoint in self.fault_times:
            self.fault_times[endpoint] -= 1
            if self.fault_times[endpoint] <= 0:
                del self.faults[endpoint], self.fault_times[endpoint]
        if fault is PlexTvFault.HANG:
            await self._stopping.wait()
        if fault in (PlexTvFault.HANG, PlexTvFault.RESET):
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=503)
        if fault is PlexTvFault.MALFORMED:
            return web.Response(text="<pin id=", content_type="application/xml")
        status = int(fault.removeprefix("status_"))
        return web.Response(status=status, text=_error(status), content_type="application/xml")

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("X-Plex-Token") == self.account_token

    async def _create_pin(self, request: web.Request) -> web.StreamResponse:
        if (answer := await self._fault("pins", request)) is not None:
            return answer
        pin_id = next(self._ids)
        pin = _Pin(
            id=pin_id,
            code=f"code{pin_id}strong",
            client_identifier=request.headers.get("X-Plex-Client-Identifier", ""),
            product=request.headers.get("X-Plex-Product", ""),
        )
        self.pins[pin_id] = pin
        return web.Response(status=201, text=_pin_xml(pin), content_type="application/xml")

    async def _get_pin(self, request: web.Request) -> web.StreamResponse:
        if (answer := await self._fault("pin", request)) is not None:
            return answer
        pin = self.pins.get(int(request.match_info["pin_id"]))
        if pin is None or pin.expired:
            return web.Response(status=404, text=_error(404), content_type="application/xml")
        return web.Response(text=_pin_xml(pin), content_type="application/xml")

    async def _user(self, request: web.Request) -> web.StreamResponse:
        if (answer := await self._fault("user", request)) is not None:
            return answer
        if not self._authorized(request):
            return web.Response(status=401, text=_error(401), content_type="application/xml")
        return web.Response(text=_user_xml(self.account_token), content_type="application/xml")

    async def _resources(self, request: web.Request) -> web.StreamResponse:
        if (answer := await self._fault("resources", request)) is not None:
            return answer
        if not self._authorized(request):
            return web.Response(status=401, text=_error(401), content_type="application/xml")
        body = "".join(_resource_xml(resource) for resource in self.resources)
        return web.Response(
            text=f'<?xml version="1.0" encoding="UTF-8"?>\n<resources>{body}</resources>',
            content_type="application/xml",
        )


def _attrs(**values: object) -> str:
    """Render XML attributes; booleans as plex.tv writes them ("1"/"0")."""
    parts = []
    for key, value in values.items():
        text = ("1" if value else "0") if isinstance(value, bool) else str(value)
        parts.append(f"{key}={quoteattr(text)}")
    return " ".join(parts)


def _error(status: int) -> str:
    return f'<errors><error code="{status}" message="HTTP {status}" status="{status}"/></errors>'


def _pin_xml(pin: _Pin) -> str:
    attrs = _attrs(
        id=pin.id,
        code=pin.code,
        product=pin.product,
        trusted=False,
        clientIdentifier=pin.client_identifier,
        expiresIn=1800,
        authToken=pin.token or "",
    )
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<pin {attrs}/>'


def _user_xml(token: str) -> str:
    user = _attrs(
        id=4242,
        uuid="a1b2c3d4e5f60718",
        username="retro",
        title="retro",
        email="retro@example.org",
        friendlyName="Retro",
        authToken=token,
        scrobbleTypes="1,4",
        joinedAt=1600000000,
        homeSize=1,
        maxHomeSize=15,
    )
    subscription = _attrs(active=False, status="Inactive", plan="", paymentService="")
    profile = _attrs(
        autoSelectAudio=True,
        defaultAudioLanguage="en",
        defaultSubtitleLanguage="en",
        autoSelectSubtitle=0,
        defaultSubtitleAccessibility=0,
        defaultSubtitleForces=0,
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<user {user}>'
        f"<subscription {subscription}><features/></subscription>"
        f"<profile {profile}/><entitlements/><roles/></user>"
    )


def _resource_xml(resource: StandInResource) -> str:
    attrs = _attrs(
        name=resource.name,
        product="Plex Media Server" if "server" in resource.provides else "Plex Web",
        productVersion="1.41.0.8992",
        platform="Linux",
        provides=resource.provides,
        clientIdentifier=resource.client_identifier,
        owned=resource.owned,
        accessToken=resource.access_token,
        sourceTitle=resource.source_title,
        presence=resource.presence,
        httpsRequired=resource.https_required,
        publicAddressMatches=resource.public_address_matches,
        relay=True,
        createdAt="2024-01-01T00:00:00Z",
        lastSeenAt="2025-01-01T00:00:00Z",
    )
    connections = "".join(
        "<connection "
        + _attrs(
            protocol=connection.protocol,
            address=connection.address,
            port=connection.port,
            uri=connection.uri,
            local=connection.local,
            relay=connection.relay,
            IPv6=connection.ipv6,
        )
        + "/>"
        for connection in resource.connections
    )
    return f"<resource {attrs}><connections>{connections}</connections></resource>"
