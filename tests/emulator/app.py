"""Serve one emulated Plex Media Server over real HTTP with aiohttp."""

from __future__ import annotations

import asyncio
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import formatdate
import html
import re
import socket
import struct
import time
from types import TracebackType
from typing import Any, Final, NamedTuple, Self

from aiohttp import web
from aiohttp.typedefs import Handler

from . import shapes
from .faults import STATUS_FAULTS, Fault, FaultKind, FaultSet
from .model import MOVIE, SEASON, SHOW, TYPE_NAMES, EmuItem, EmuServer
from .notifications import NotificationHub
from .query import (
    NEUTRAL_KEYS,
    Paging,
    apply_sort,
    default_order,
    parse_filters,
    parse_paging,
    parse_query,
    parse_sort,
)
from .render import JSON_CONTENT_TYPE, XML_CONTENT_TYPE, Node, Value, render

HTML_CONTENT_TYPE: Final = "text/html"

_ROUTES: Final = (
    (re.compile(r"^/identity/?$"), "identity"),
    (re.compile(r"^/$"), "root"),
    (re.compile(r"^/library/?$"), "library"),
    (re.compile(r"^/library/sections/?$"), "sections"),
    (re.compile(r"^/library/sections/([^/]+)/all/?$"), "section_all"),
    (re.compile(r"^/library/metadata/([^/]+)/children/?$"), "children"),
    (re.compile(r"^/library/metadata/([^/]+)/allLeaves/?$"), "all_leaves"),
    (re.compile(r"^/library/metadata/([^/]+)/?$"), "metadata"),
    (re.compile(r"^/:/websockets/notifications/?$"), "notifications"),
    (re.compile(r"^/web(?:/.*)?$"), "web"),
)
_LISTINGS: Final = frozenset({"section_all", "children", "all_leaves"})
_STATUS_TITLES: Final = {
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
}
_MAINTENANCE: Final = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Response code="503" title="Maintenance" '
    'status="Plex Media Server is currently running startup maintenance tasks."/>\n'
)
_PMS_HEADERS: Final = {"X-Plex-Protocol": "1.0", "Cache-Control": "no-cache"}
_HTML_200: Final = (
    "<!DOCTYPE html><html><head><title>Plex</title></head><body>"
    "<h1>Service temporarily unavailable</h1><p>Please try again later.</p></body></html>"
)


class RecordedRequest(NamedTuple):
    """Describe one request the emulator received."""

    endpoint: str
    path: str
    query: dict[str, str]


class _NotFoundError(Exception):
    """Signal a 404 answer."""


@dataclass(frozen=True, slots=True)
class _PagingMods:
    """Hold persistent paging quirks active for one request."""

    ignore_paging: bool = False
    cap: int | None = None
    omit_total_size: bool = False
    #: `omit_item`: the ratingKey left out, and whether `totalSize` still counts it.
    omit: int | None = None
    omit_counted: bool = False


def route(path: str) -> tuple[str, str | None]:
    """Return the endpoint name of a path and its id argument."""
    for pattern, name in _ROUTES:
        if match := pattern.match(path):
            return name, match.group(1) if match.groups() else None
    return "unknown", None


def html_error(status: int, headers: Mapping[str, str] | None = None) -> web.Response:
    """Return PMS's small HTML error page."""
    title = _STATUS_TITLES.get(status, "Error")
    body = f"<html><head><title>{title}</title></head><body><h1>{status} {title}</h1></body></html>"
    return web.Response(
        status=status,
        body=body.encode(),
        headers={"Content-Type": HTML_CONTENT_TYPE, **(headers or {})},
    )


class _BodyCache:
    """Keep rendered bodies of the current generation, bounded in bytes."""

    def __init__(self) -> None:
        self.generation = -1
        self.bodies: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
        self.selections: dict[tuple[Any, ...], list[EmuItem]] = {}
        self.size = 0

    def sync(self, generation: int) -> None:
        if generation != self.generation:
            self.bodies.clear()
            self.selections.clear()
            self.size = 0
            self.generation = generation

    def get(self, key: tuple[Any, ...]) -> bytes | None:
        body = self.bodies.get(key)
        if body is not None:
            self.bodies.move_to_end(key)
        return body

    def put(self, key: tuple[Any, ...], body: bytes, limit: int) -> None:
        if len(body) > limit:
            return
        self.bodies[key] = body
        self.size += len(body)
        while self.size > limit and self.bodies:
            _, old = self.bodies.popitem(last=False)
            self.size -= len(old)


class PlexEmulator:
    """Run one EmuServer as an aiohttp app on 127.0.0.1 (a random port by default)."""

    def __init__(self, server: EmuServer, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.server = server
        self.host = host
        self._port = port
        self.counters: Counter[str] = Counter()
        self.requests: list[RecordedRequest] = []
        #: Request headers, parallel to `requests`.
        self.request_headers: list[dict[str, str]] = []
        self._cache = _BodyCache()
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        #: The notification websocket's clients and counters (`connected`, `connects`,
        #: `messages`, `sent`, `log`, `wait_connected()`).
        self.notifications = NotificationHub(server)

    # -------------------------------------------------------------- lifecycle

    async def start(self) -> Self:
        """Start serving."""
        if self._runner is not None:
            return self
        self._stopping = asyncio.Event()
        app = web.Application(middlewares=[self._stamp_date])
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._port)
        await site.start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        self.notifications.attach()
        return self

    @web.middleware
    async def _stamp_date(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Date every answer by the server's own clock, as Plex does (its `updatedAt` too)."""
        response = await handler(request)
        if not response.prepared:  # a websocket's headers are long gone
            response.headers["Date"] = formatdate(self.server.now(), usegmt=True)
        return response

    async def stop(self) -> None:
        """Stop serving; hung and slow requests end at once."""
        if self._runner is None:
            return
        self._stopping.set()
        self.notifications.detach()
        await self.notifications.drop()
        runner, self._runner = self._runner, None
        await runner.cleanup()

    async def __aenter__(self) -> Self:
        """Start on entering the context."""
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop on leaving the context."""
        await self.stop()

    @property
    def port(self) -> int:
        """Return the bound port."""
        if self._runner is None:
            raise RuntimeError("emulator is not running")
        return self._port

    @property
    def url(self) -> str:
        """Return the base URL, `http://127.0.0.1:<port>`."""
        return f"http://{self.host}:{self.port}"

    @property
    def notification_clients(self) -> int:
        """Return how many notification websockets are connected now."""
        return self.notifications.connected

    async def drop_notifications(self, *, abort: bool = False) -> int:
        """Disconnect every notification websocket (close 1001; `abort`: cut TCP)."""
        return await self.notifications.drop(abort=abort)

    @property
    def faults(self) -> FaultSet:
        """Return the server's FaultSet."""
        return self.server.faults

    def reset_log(self) -> None:
        """Forget counters and recorded requests."""
        self.counters.clear()
        self.requests.clear()
        self.request_headers.clear()

    # --------------------------------------------------------------- handling

    def _web_page(self) -> web.Response:
        """Stand in for Plex Web (`/web`): a page naming the server and its libraries.

        The device page's "Visit" link of a demo server opens this instead of a 404.
        """
        server = self.server
        rows = "".join(
            f"<li>{html.escape(section.title)}: {server.count(key)} "
            f"{'movies' if section.type == 'movie' else 'shows'}</li>"
            for key, section in server.sections.items()
        )
        body = (
            "<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<title>{html.escape(server.friendly_name)}</title></head><body>"
            f"<h1>{html.escape(server.friendly_name)}</h1>"
            "<p>An emulated Plex Media Server for Retrovue's demo and tests; Plex Web is not "
            f"part of it.</p><ul>{rows}</ul></body></html>"
        )
        return web.Response(text=body, content_type="text/html")

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        server = self.server
        path = request.path
        endpoint, arg = route(path)
        query = parse_query(request.query_string)
        self.counters[endpoint] += 1
        self.requests.append(RecordedRequest(endpoint, path, query))
        self.request_headers.append(dict(request.headers))
        server.stats.requests += 1

        if endpoint == "web":
            return self._web_page()
        if endpoint != "identity" and not self._authorized(request, query):
            return html_error(401)
        if request.method not in ("GET", "HEAD"):
            return html_error(405)

        active = server.faults.take(endpoint)
        kinds: dict[FaultKind, Fault] = {}
        for fault in active:
            kinds.setdefault(fault.kind, fault)

        if (slow := kinds.get(FaultKind.SLOW)) is not None and await self._sleep(slow.delay):
            return self._abort(request)
        if FaultKind.HANG in kinds:
            await self._stopping.wait()
            return self._abort(request)
        for kind, status in STATUS_FAULTS.items():
            if kind in kinds:
                return self._status_fault(status, kinds[kind])
        if endpoint == "unknown":
            return html_error(404)
        if FaultKind.HTML_200 in kinds:
            return web.Response(
                status=200, body=_HTML_200.encode(), headers={"Content-Type": HTML_CONTENT_TYPE}
            )
        if endpoint == "notifications":
            return await self.notifications.handle(request)

        wants_json = "application/json" in request.headers.get("Accept", "")
        fmt = "xml"
        if wants_json and not server.force_xml and FaultKind.XML_INSTEAD_OF_JSON not in kinds:
            fmt = "json"
        content_type = JSON_CONTENT_TYPE if fmt == "json" else XML_CONTENT_TYPE
        try:
            body = self._body(endpoint, arg, path, query, request.headers, fmt, kinds)
        except _NotFoundError:
            return html_error(404)
        server.stats.bytes_sent += len(body)

        if FaultKind.MALFORMED in kinds:
            body = _break(body, fmt)
        for kind in (FaultKind.RESET, FaultKind.TRUNCATED):
            if kind in kinds:
                return await self._partial(request, body, content_type, kinds[kind])
        return web.Response(body=body, headers={"Content-Type": content_type, **_PMS_HEADERS})

    def _authorized(self, request: web.Request, query: Mapping[str, str]) -> bool:
        token = request.headers.get("X-Plex-Token") or query.get("X-Plex-Token")
        return token == self.server.token

    async def _sleep(self, delay: float) -> bool:
        """Wait `delay` seconds; return True if the emulator is stopping instead."""
        try:
            async with asyncio.timeout(delay):
                await self._stopping.wait()
        except TimeoutError:
            return False
        return True

    @staticmethod
    def _abort(request: web.Request) -> web.StreamResponse:
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=503)

    @staticmethod
    def _status_fault(status: int, fault: Fault) -> web.Response:
        if status == 503:
            return web.Response(
                status=503, body=_MAINTENANCE.encode(), headers={"Content-Type": XML_CONTENT_TYPE}
            )
        if status == 429:
            return html_error(429, {"Retry-After": str(fault.retry_after)})
        return html_error(status)

    async def _partial(
        self, request: web.Request, body: bytes, content_type: str, fault: Fault
    ) -> web.StreamResponse:
        """Declare the full length, send part of the body, then cut the connection."""
        response = web.StreamResponse(
            status=200, headers={"Content-Type": content_type, **_PMS_HEADERS}
        )
        response.content_length = len(body)
        response.force_close()
        await response.prepare(request)
        cut = max(1, min(len(body) - 1, int(len(body) * fault.fraction)))
        await response.write(body[:cut])
        transport = request.transport
        if transport is None:
            return response
        if fault.kind is FaultKind.RESET:
            # Let the client read the headers first, then reset (RST, not FIN).
            await self._sleep(0.05)
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        else:
            transport.close()
        return response

    # ----------------------------------------------------------------- bodies

    def _body(
        self,
        endpoint: str,
        arg: str | None,
        path: str,
        query: dict[str, str],
        headers: Mapping[str, str],
        fmt: str,
        kinds: Mapping[FaultKind, Fault],
    ) -> bytes:
        server = self.server
        self._cache.sync(server.generation)
        paging = parse_paging(query, headers)
        cap = kinds.get(FaultKind.CAP_SIZE)
        omit = kinds.get(FaultKind.OMIT_ITEM)
        mods = _PagingMods(
            ignore_paging=FaultKind.IGNORE_PAGING in kinds,
            cap=cap.cap if cap is not None else None,
            omit_total_size=FaultKind.OMIT_TOTAL_SIZE in kinds,
            omit=omit.omitted if omit is not None else None,
            omit_counted=omit is not None and omit.counted,
        )
        bad = kinds.get(FaultKind.BAD_ITEM)
        if endpoint in _LISTINGS and not paging.given:
            server.stats.unpaged_listings += 1
        key = (
            path,
            tuple(sorted((k, v) for k, v in query.items() if k not in NEUTRAL_KEYS)),
            paging.start,
            paging.size,
            fmt,
            mods,
        )
        cacheable = bad is None and not _relative(query)
        if cacheable and (body := self._cache.get(key)) is not None:
            server.stats.cache_hits += 1
            return body
        server.stats.cache_misses += 1
        began = time.perf_counter()
        node = self._build(endpoint, arg, query, paging, mods)
        if bad is not None:
            _break_item(node, bad)
        body = render(node, fmt)
        server.stats.renders += 1
        server.stats.render_seconds += time.perf_counter() - began
        if cacheable:
            self._cache.put(key, body, server.cache_limit_bytes)
        return body

    def _build(
        self,
        endpoint: str,
        arg: str | None,
        query: dict[str, str],
        paging: Paging,
        mods: _PagingMods,
    ) -> Node:
        server = self.server
        if endpoint == "identity":
            return shapes.identity(server)
        if endpoint == "root":
            return shapes.root(server)
        if endpoint == "sections":
            return shapes.sections(server)
        if endpoint == "library":
            return shapes.library()
        if arg is None:
            raise _NotFoundError
        if endpoint == "section_all":
            return self._section_all(arg, query, paging, mods)
        if endpoint == "metadata":
            return self._metadata(arg, query, mods.omit)
        item = _lookup(server, arg)
        if endpoint == "children":
            return self._children(item, query, paging, mods)
        return self._all_leaves(item, query, paging, mods)

    def _select(
        self,
        scope: tuple[Any, ...],
        query: Mapping[str, str],
        base: Callable[[], list[EmuItem]],
        order: Callable[[list[EmuItem]], list[EmuItem]],
    ) -> list[EmuItem]:
        """Return filtered, sorted items, cached for the generation."""
        filters = parse_filters(query, self.server.now())
        sort = parse_sort(query.get("sort"))
        key = (*scope, filters, sort)
        cached = self._cache.selections.get(key)
        if cached is not None:
            return cached
        items = base()
        if filters:
            items = [i for i in items if all(f(i) for f in filters)]
        items = apply_sort(items, sort) if sort else order(items)
        self._cache.selections[key] = items
        return items

    def _section_all(
        self, section_key: str, query: dict[str, str], paging: Paging, mods: _PagingMods
    ) -> Node:
        server = self.server
        section = server.sections.get(section_key)
        if section is None:
            raise _NotFoundError
        type_number = section.primary_type
        if (raw_type := query.get("type", "")).isdigit():
            type_number = int(raw_type)
        type_name = TYPE_NAMES.get(type_number)
        allowed = (type_number == 1) if section.type == MOVIE else (type_number in (2, 3, 4))

        def base() -> list[EmuItem]:
            if not allowed or type_name is None:
                return []
            return list(server.iter_items(section.key, type_name))

        items = self._select(
            ("section", section.key, type_number),
            query,
            base,
            lambda found: default_order(server, found, type_name or MOVIE),
        )
        page, paging_attrs = _paginate(items, paging, mods)
        include_guids = query.get("includeGuids") == "1"
        nodes = [shapes.item_node(server, i, include_guids=include_guids) for i in page]
        attrs: dict[str, Value] = {"size": len(nodes), **paging_attrs}
        attrs.update(shapes.section_all_attrs(section, type_number))
        return shapes.container(attrs, nodes)

    def _metadata(self, arg: str, query: dict[str, str], omit: int | None = None) -> Node:
        server = self.server
        found = []
        for raw in arg.split(","):
            wanted = raw.strip()
            if wanted.isdigit() and int(wanted) in server.items and int(wanted) != omit:
                found.append(server.items[int(wanted)])
        if not found:
            raise _NotFoundError
        include_children = query.get("includeChildren") == "1"
        nodes = []
        for item in found:
            node = shapes.item_node(server, item, detail=True)
            if include_children and item.type in (SHOW, SEASON):
                node.children.append(shapes.children_of(server, item))
            nodes.append(node)
        section_keys = {i.section_key for i in found}
        section = server.sections.get(found[0].section_key) if len(section_keys) == 1 else None
        attrs: dict[str, Value] = {"size": len(nodes), **shapes.library_attrs(section)}
        return shapes.container(attrs, nodes)

    def _children(
        self, parent: EmuItem, query: dict[str, str], paging: Paging, mods: _PagingMods
    ) -> Node:
        server = self.server
        items = self._select(
            ("children", parent.rating_key),
            query,
            lambda: [server.items[rk] for rk in parent.children],
            lambda found: found,
        )
        page, paging_attrs = _paginate(items, paging, mods)
        include_guids = query.get("includeGuids") == "1"
        nodes = [shapes.item_node(server, i, include_guids=include_guids) for i in page]
        if (
            parent.type == SHOW
            and server.all_episodes_directory
            and query.get("excludeAllLeaves") != "1"
            and items
            and (paging.start or 0) == 0
            and paging.size != 0
        ):
            nodes.insert(0, shapes.all_episodes_node(server, parent))
        attrs: dict[str, Value] = {"size": len(nodes), **paging_attrs}
        attrs.update(shapes.children_attrs(server, parent))
        return shapes.container(attrs, nodes)

    def _all_leaves(
        self, parent: EmuItem, query: dict[str, str], paging: Paging, mods: _PagingMods
    ) -> Node:
        server = self.server
        items = self._select(
            ("all_leaves", parent.rating_key),
            query,
            lambda: list(server.leaves(parent)) if parent.type in (SHOW, SEASON) else [],
            lambda found: found,
        )
        page, paging_attrs = _paginate(items, paging, mods)
        include_guids = query.get("includeGuids") == "1"
        nodes = [shapes.item_node(server, i, include_guids=include_guids) for i in page]
        attrs: dict[str, Value] = {"size": len(nodes), **paging_attrs}
        attrs.update(shapes.all_leaves_attrs(server, parent))
        return shapes.container(attrs, nodes)


def _lookup(server: EmuServer, arg: str) -> EmuItem:
    if not arg.isdigit() or int(arg) not in server.items:
        raise _NotFoundError
    return server.items[int(arg)]


def _relative(query: Mapping[str, str]) -> bool:
    return any(v.startswith("-") for v in query.values())


def _paginate(
    items: list[EmuItem], paging: Paging, mods: _PagingMods
) -> tuple[list[EmuItem], dict[str, Value]]:
    """Cut one page and return it with the container's paging attributes."""
    omit = mods.omit
    if omit is not None and not mods.omit_counted:
        items = [item for item in items if item.rating_key != omit]
    total = len(items)
    attrs: dict[str, Value] = {}
    if mods.ignore_paging:
        page = items
        attrs = {"totalSize": total, "offset": 0}
    else:
        start = paging.start or 0
        size = paging.size
        if mods.cap is not None:
            size = mods.cap if size is None else min(size, mods.cap)
        page = items[start:] if size is None else items[start : start + size]
        # PMS reports totalSize/offset on paged requests only.
        if paging.given or mods.cap is not None:
            attrs = {"totalSize": total, "offset": start}
    if omit is not None and mods.omit_counted:
        # Counted and paged over, never sent: a page that held the item comes back one short.
        page = [item for item in page if item.rating_key != omit]
    if mods.omit_total_size:
        attrs.pop("totalSize", None)
    return page, attrs


def _break(body: bytes, fmt: str) -> bytes:
    """Return a syntactically broken body in the same format."""
    cut = max(1, len(body) * 2 // 3)
    junk = b'{"Metadata":[{"ratingKey":' if fmt == "json" else b'<Video ratingKey="1" title="&'
    return body[:cut] + junk


def _break_item(container: Node, fault: Fault) -> None:
    """Damage one item of a page the way the `bad_item` fault's variant says."""
    items = [c for c in container.children if c.group == "Metadata" and "ratingKey" in c.attrs]
    if not items:
        return
    node = items[min(fault.position, len(items) - 1)]
    variant = fault.variant
    if variant == "missing_rating_key":
        node.attrs.pop("ratingKey", None)
    elif variant == "bad_added_at":
        node.attrs["addedAt"] = "not-a-number"
    elif variant == "bad_updated_at":
        node.attrs["updatedAt"] = "not-a-number"
    elif variant == "missing_title":
        node.attrs.pop("title", None)
    elif variant == "missing_type":
        node.attrs.pop("type", None)
    elif variant == "media_without_part":
        media = [c for c in node.children if c.tag == "Media"]
        if not media:
            media = [Node("Media", {"id": 0})]
            node.children.insert(0, media[0])
        for element in media:
            element.children = [c for c in element.children if c.tag != "Part"]
