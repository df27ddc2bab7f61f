"""A GDM responder on loopback: answers M-SEARCH datagrams as Plex Media Servers do.

Real servers listen on 239.0.0.250:32414 and answer the sender with `HTTP/1.0 200 OK` and
headers (`Content-Type: plex/media-server`, `Resource-Identifier`, `Name`, `Port`, `Host`,
`Updated-At`, `Version`); python-plexapi's `gdm.py` documents the shape. The responder listens
on 127.0.0.1 and a random port instead, so searches are sent there in tests.

```python
async with GdmResponder([GdmAnswer("machine-1", "Den", 32400)]) as gdm:
    await async_search(target=gdm.target, window=0.2)
```
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import TracebackType
from typing import Self


@dataclass(slots=True)
class GdmAnswer:
    """One server's answer; `content_type` other than `plex/media-server` for other devices."""

    machine_identifier: str
    name: str
    port: int
    content_type: str = "plex/media-server"
    version: str = "1.41.0.8992-8463ad060"

    def render(self) -> bytes:
        """Return the datagram a server sends."""
        lines = [
            "HTTP/1.0 200 OK",
            f"Content-Type: {self.content_type}",
            f"Resource-Identifier: {self.machine_identifier}",
            f"Name: {self.name}",
            f"Port: {self.port}",
            f"Host: {self.machine_identifier[:32]}.plex.direct",
            "Updated-At: 1753656127",
            f"Version: {self.version}",
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()


class _Responder(asyncio.DatagramProtocol):
    def __init__(self, owner: GdmResponder) -> None:
        self._owner = owner
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.DatagramTransport)
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        owner = self._owner
        owner.searches.append(data)
        if not data.startswith(b"M-SEARCH * HTTP/1."):
            return
        assert self.transport is not None
        for answer in [*(a.render() for a in owner.answers), *owner.raw_answers]:
            self.transport.sendto(answer, addr)


class GdmResponder:
    """Answer GDM searches on 127.0.0.1 with the given servers' answers."""

    def __init__(self, answers: list[GdmAnswer] | None = None) -> None:
        self.answers: list[GdmAnswer] = list(answers or [])
        #: Extra datagrams sent after the answers (other devices, garbage).
        self.raw_answers: list[bytes] = []
        #: Every datagram received.
        self.searches: list[bytes] = []
        self._transport: asyncio.DatagramTransport | None = None
        self._port = 0

    async def __aenter__(self) -> Self:
        """Start listening."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Responder(self), local_addr=("127.0.0.1", 0)
        )
        self._transport = transport
        self._port = int(transport.get_extra_info("sockname")[1])
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop listening."""
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    @property
    def target(self) -> tuple[str, int]:
        """Return where to send searches."""
        return ("127.0.0.1", self._port)
