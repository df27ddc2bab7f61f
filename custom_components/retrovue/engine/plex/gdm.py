"""GDM ("G'Day Mate"): find Plex Media Servers on the local network over UDP multicast.

A search is one datagram to 239.0.0.250:32414; every server that hears it answers the sender
with HTTP-like headers (`Content-Type: plex/media-server`, `Resource-Identifier`, `Name`,
`Port`, `Version`, …). Clients and other GDM speakers answer with other content types.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
import logging
import socket
from typing import Final

LOGGER = logging.getLogger(__name__)

GDM_ADDRESS: Final = "239.0.0.250"
GDM_PORT: Final = 32414
SEARCH: Final = b"M-SEARCH * HTTP/1.1\r\n\r\n"
MEDIA_SERVER: Final = "plex/media-server"
# Seconds to collect answers after the search is sent.
DEFAULT_WINDOW: Final = 2.0
# An answer is a few hundred bytes; anything much larger is not GDM.
MAX_REPLY_BYTES: Final = 4096


class GdmError(Exception):
    """The search could not be started: no UDP socket could be opened."""


@dataclass(frozen=True, slots=True)
class GdmServer:
    """A Plex Media Server that answered a GDM search."""

    machine_identifier: str
    name: str
    address: str
    port: int
    version: str | None = None

    @property
    def url(self) -> str:
        """Return the server's plain-HTTP address on the network it answered from."""
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"http://{host}:{self.port}"


def parse_reply(data: bytes, address: str) -> GdmServer | None:
    """Return the server that sent a GDM answer from `address`, or None if it is not one.

    Only `200 OK` answers of `plex/media-server` with a `Resource-Identifier` count; a missing
    or unusable `Port` means Plex's default 32400, a missing `Name` the sender's address.
    """
    if len(data) > MAX_REPLY_BYTES:
        return None
    lines = data.decode("utf-8", errors="replace").splitlines()
    if not lines or "200 OK" not in lines[0]:
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        key, sep, value = line.partition(":")
        if sep:
            headers[key.strip().lower()] = value.strip()
    if headers.get("content-type", "").lower() != MEDIA_SERVER:
        return None
    if not (machine_identifier := headers.get("resource-identifier", "")):
        return None
    port_text = headers.get("port", "")
    port = int(port_text) if port_text.isdigit() and 0 < int(port_text) < 65536 else 32400
    return GdmServer(
        machine_identifier=machine_identifier,
        name=headers.get("name") or address,
        address=address,
        port=port,
        version=headers.get("version") or None,
    )


class _Collector(asyncio.DatagramProtocol):
    """Keep the servers that answer, the first answer of each."""

    def __init__(self) -> None:
        self.servers: dict[str, GdmServer] = {}

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        """Keep a server's answer."""
        server = parse_reply(data, str(addr[0]))
        if server is None:
            LOGGER.debug("GDM: ignored an answer from %s", addr[0])
            return
        self.servers.setdefault(server.machine_identifier, server)

    def error_received(self, exc: Exception) -> None:
        """Ignore ICMP errors: other hosts may not listen; the search goes on."""
        LOGGER.debug("GDM: %s", exc)


async def async_search(
    *,
    target: tuple[str, int] = (GDM_ADDRESS, GDM_PORT),
    window: float = DEFAULT_WINDOW,
    local_address: str = "0.0.0.0",  # noqa: S104 - answers come back to the sending socket
) -> list[GdmServer]:
    """Search for Plex Media Servers and return those that answered within `window` seconds.

    `target` is GDM's multicast group and port (tests send to a responder on loopback).
    Raise `GdmError` if no UDP socket can be opened.
    """
    loop = asyncio.get_running_loop()
    try:
        transport, collector = await loop.create_datagram_endpoint(
            _Collector, local_addr=(local_address, 0), family=socket.AF_INET
        )
    except OSError as err:
        raise GdmError(f"cannot open a UDP socket: {err.strerror or err}") from err
    try:
        sock = transport.get_extra_info("socket")
        # Stay on the local network, as Plex's own clients do.
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        # A send that fails (no route, for example) reaches `error_received`, not here.
        transport.sendto(SEARCH, target)
        await asyncio.sleep(window)
    finally:
        transport.close()
    return sorted(collector.servers.values(), key=lambda server: (server.name, server.address))
