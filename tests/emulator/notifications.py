"""Serve `/:/websockets/notifications`: send the model's messages to every connected client.

`NotificationHub` listens on `EmuServer.listeners` while the emulator runs. A mutation calls
the listener synchronously; the listener serializes the message once and only queues it per
client (from another thread it hands over with `call_soon_threadsafe`), and each client's
pump task sends from the emulator's event loop, so mutating code never waits for a socket.
"""

from __future__ import annotations

import asyncio
from collections import deque
import contextlib
from dataclasses import dataclass, field
import json
from typing import TYPE_CHECKING, Final

from aiohttp import WSCloseCode, web

if TYPE_CHECKING:
    from .live import Message
    from .model import EmuServer

#: How long a server-side close waits before cutting the connection.
_CLOSE_TIMEOUT: Final = 1.0


@dataclass(eq=False, slots=True)
class _Client:
    ws: web.WebSocketResponse
    request: web.Request
    queue: asyncio.Queue[str] = field(default_factory=asyncio.Queue)


class NotificationHub:
    """Track websocket clients of one emulator and push every model message to them."""

    def __init__(self, server: EmuServer, *, log_size: int = 1000) -> None:
        self.server = server
        self._clients: set[_Client] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed = asyncio.Event()
        #: Websocket connections accepted so far.
        self.connects = 0
        #: Messages pushed (while the emulator runs, with or without clients).
        self.messages = 0
        #: Frames written to sockets (one message to three clients counts three).
        self.sent = 0
        #: The latest pushed messages (dicts, or raw text given to `server.notify`).
        self.log: deque[Message] = deque(maxlen=log_size)

    @property
    def connected(self) -> int:
        """Return how many clients are connected now."""
        return len(self._clients)

    def attach(self) -> None:
        """Start listening to the model (from the emulator's event loop)."""
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        if self._on_message not in self.server.listeners:
            self.server.listeners.append(self._on_message)

    def detach(self) -> None:
        """Stop listening to the model."""
        with contextlib.suppress(ValueError):
            self.server.listeners.remove(self._on_message)
        self._loop = None

    async def wait_connected(self, count: int, seconds: float = 5.0) -> None:
        """Wait until exactly `count` clients are connected (TimeoutError otherwise)."""
        async with asyncio.timeout(seconds):
            while self.connected != count:
                self._changed.clear()
                await self._changed.wait()

    # ---------------------------------------------------------------- pushing

    def _on_message(self, message: Message) -> None:
        self.messages += 1
        self.log.append(message)
        loop = self._loop
        if loop is None or not self._clients:
            return
        if isinstance(message, str):
            data = message
        else:
            data = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._fan_out(data)
        else:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens
                loop.call_soon_threadsafe(self._fan_out, data)

    def _fan_out(self, data: str) -> None:
        for client in self._clients:
            client.queue.put_nowait(data)

    async def _pump(self, client: _Client) -> None:
        while True:
            data = await client.queue.get()
            try:
                await client.ws.send_str(data)
            except (ConnectionError, RuntimeError):
                return
            self.sent += 1

    # ------------------------------------------------------------- connections

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Upgrade to a websocket and keep it until either side closes it."""
        ws = web.WebSocketResponse(autoping=True)
        if not ws.can_prepare(request).ok:
            return web.Response(
                status=400,
                text="<html><head><title>Bad Request</title></head>"
                "<body><h1>400 Bad Request</h1></body></html>",
                content_type="text/html",
            )
        # Registered before the handshake answer goes out: a mutation right after the
        # client's `ws_connect` returns is queued for it.
        client = _Client(ws, request)
        self._add(client)
        try:
            await ws.prepare(request)
        except BaseException:
            self._discard(client)
            raise
        self.connects += 1
        pump = asyncio.create_task(self._pump(client))
        try:
            async for _message in ws:
                pass  # Plex ignores what clients send; pings are answered by aiohttp.
        finally:
            self._discard(client)
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
        return ws

    async def drop(self, *, abort: bool = False) -> int:
        """Disconnect every client and return how many there were.

        By default each gets a close frame (1001 going away, as when PMS restarts);
        `abort=True` cuts the TCP connections without one, like a network failure.
        """
        clients = list(self._clients)
        for client in clients:
            self._discard(client)
        if abort:
            for client in clients:
                if client.request.transport is not None:
                    client.request.transport.abort()
        else:
            await asyncio.gather(*(self._close(client) for client in clients))
        return len(clients)

    async def _close(self, client: _Client) -> None:
        try:
            async with asyncio.timeout(_CLOSE_TIMEOUT):
                await client.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server going away")
        except TimeoutError:
            if client.request.transport is not None:
                client.request.transport.abort()

    def _add(self, client: _Client) -> None:
        self._clients.add(client)
        self._changed.set()

    def _discard(self, client: _Client) -> None:
        if client in self._clients:
            self._clients.remove(client)
            self._changed.set()
