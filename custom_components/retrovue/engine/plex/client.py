"""Asynchronous client for the Plex Media Server HTTP API."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
import logging
from typing import Any, Final, Self
from urllib.parse import quote, urlsplit

import aiohttp

from .errors import (
    PlexAuthError,
    PlexConnectionError,
    PlexError,
    PlexNotFoundError,
    PlexResponseError,
    PlexSSLError,
    PlexTimeoutError,
)
from .models import ItemKind, Page, PlexType, Section, ServerIdentity
from .parse import (
    FORMAT_JSON,
    BodyError,
    decode_container,
    parse_identity,
    parse_listing,
    parse_sections,
)

LOGGER = logging.getLogger(__name__)

PRODUCT: Final = "Retrovue"
PRODUCT_VERSION: Final = "0.1.0"
DEFAULT_PAGE_SIZE: Final = 1000
DEFAULT_TIMEOUT: Final = 30.0
DEFAULT_RETRIES: Final = 3
DEFAULT_BACKOFF: Final = 0.5
MAX_RETRY_AFTER: Final = 30.0
# Bodies larger than this are decoded in a worker thread so the event loop stays responsive.
OFF_LOOP_BODY_BYTES: Final = 64 * 1024
# A listing may not need more pages than this; a server that keeps answering is broken.
MAX_PAGES: Final = 100_000

_RETRY_STATUSES: Final = frozenset({429, 500, 502, 503, 504})


def client_headers(client_identifier: str) -> dict[str, str]:
    """Return the headers that name Retrovue to a server (the token is added per request)."""
    return {
        "Accept": "application/json",
        "X-Plex-Client-Identifier": client_identifier,
        "X-Plex-Product": PRODUCT,
        "X-Plex-Version": PRODUCT_VERSION,
    }


_SHOW_CHILD_KINDS: Final = (ItemKind.SEASON, ItemKind.EPISODE)
_ANY_KIND: Final = tuple(ItemKind)


@dataclass(slots=True)
class ListingStats:
    """What one paged listing saw; read it after the iteration ends."""

    pages: int = 0
    received: int = 0
    last_total: int | None = None
    complete: bool = False


class Listing:
    """A paged listing: iterate it for pages, then read `stats`."""

    def __init__(
        self,
        client: PlexClient,
        endpoint: str,
        path: str,
        params: Mapping[str, str],
        kinds: Sequence[ItemKind],
        page_size: int,
        known: Mapping[bytes, str] | None = None,
    ) -> None:
        """Prepare the listing; nothing is requested until iteration."""
        self._client = client
        self._endpoint = endpoint
        self._path = path
        self._params = dict(params)
        self._kinds = kinds
        self._page_size = page_size
        self._known = known
        self.stats = ListingStats()

    def __aiter__(self) -> AsyncIterator[Page]:
        """Iterate over the pages."""
        return self._pages()

    async def _pages(self) -> AsyncIterator[Page]:
        # Page by the count actually received: servers may cap the size, ignore paging or omit
        # totalSize. Stop when the reported total is reached or on an empty page.
        stats = self.stats
        start = 0
        size = self._page_size
        retried = False
        while True:
            if stats.pages >= MAX_PAGES:
                raise PlexResponseError(
                    f"listing did not end after {MAX_PAGES} pages",
                    server=self._client.name,
                    endpoint=self._path,
                )
            page = await self._client._fetch_page(
                self._endpoint, self._path, self._params, self._kinds, start, size, self._known
            )
            stats.pages += 1
            if page.total_size is not None:
                stats.last_total = page.total_size
            if page.received == 0:
                if not retried and stats.last_total is not None and start < stats.last_total:
                    # An empty page before the reported end: asked once more before the
                    # listing is taken as ended early (the run would then fail).
                    retried = True
                    continue
                stats.complete = True
                return
            stats.received += page.received
            yield page
            start += page.received
            if page.received > size:
                # The server ignored paging and sent everything at once.
                stats.complete = True
                return
            if page.total_size is not None and start >= page.total_size:
                stats.complete = True
                return


class PlexClient:
    """Talk to one Plex Media Server through a caller's aiohttp session."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        token: str,
        *,
        verify_ssl: bool = True,
        client_identifier: str = "retrovue",
        name: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        backoff: float = DEFAULT_BACKOFF,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        """Set up the client; no request is made here."""
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        # User info (`user:pass@`) means nothing to Plex and must not be kept or shown.
        netloc = parts.netloc.rpartition("@")[2]
        self._base = f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"
        self._session = session
        self._token = token
        # True keeps aiohttp's default verification; False turns it off for this client only.
        self._ssl = verify_ssl
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._retries = retries
        self._backoff = backoff
        self._sleep = sleep
        self.page_size = page_size
        self.name = name or netloc
        self.requests: Counter[str] = Counter()
        # The server's clock (epoch seconds) from the `Date` header of its latest answer.
        self.server_time: int | None = None
        self._headers = client_headers(client_identifier)

    @property
    def url(self) -> str:
        """Return the server's base URL (it never holds the token)."""
        return self._base

    def with_name(self, name: str) -> Self:
        """Name the server in errors and logs, e.g. after reading its friendlyName."""
        self.name = name
        return self

    # --- endpoints ---------------------------------------------------------------------------

    async def identity(self) -> ServerIdentity:
        """Return the server's identity from `/identity` (no token needed)."""
        return await self._get("identity", "/identity", _container(parse_identity), auth=False)

    async def server_info(self) -> ServerIdentity:
        """Return identity, version and friendly name from `/` (checks the token)."""
        return await self._get("root", "/", _container(parse_identity))

    async def sections(self) -> list[Section]:
        """Return every library section."""
        return await self._get("sections", "/library/sections", _container(parse_sections))

    async def count(self, section_key: str, plex_type: PlexType, **filters: str) -> int | None:
        """Return how many items of a type a section holds (None when the server won't say)."""
        path = f"/library/sections/{quote(section_key)}/all"
        params = {"type": str(int(plex_type)), **filters}
        page = await self._fetch_page("section_all", path, params, (plex_type.kind,), 0, 0)
        return page.total_size

    def section_items(
        self,
        section_key: str,
        plex_type: PlexType,
        *,
        filters: Mapping[str, str] | None = None,
        page_size: int | None = None,
        known: Mapping[bytes, str] | None = None,
    ) -> Listing:
        """Return a paged listing of one type of item in a section, in ratingKey order.

        Entries whose digest is in `known` (`PlexItem.source_digest` → rating key) are not
        parsed: pages list them in `Page.unchanged`.
        """
        params = {
            "type": str(int(plex_type)),
            "includeGuids": "1",
            "includeCollections": "0",
            "sort": "id",
            **(filters or {}),
        }
        return Listing(
            self,
            "section_all",
            f"/library/sections/{quote(section_key)}/all",
            params,
            (plex_type.kind,),
            page_size or self.page_size,
            known,
        )

    def children(
        self,
        rating_key: str,
        *,
        page_size: int | None = None,
        known: Mapping[bytes, str] | None = None,
    ) -> Listing:
        """Return a paged listing of an item's children (show → seasons, season → episodes)."""
        return Listing(
            self,
            "children",
            f"/library/metadata/{quote(rating_key)}/children",
            {"includeGuids": "1", "excludeAllLeaves": "1"},
            _SHOW_CHILD_KINDS,
            page_size or self.page_size,
            known,
        )

    def all_leaves(
        self,
        rating_key: str,
        *,
        page_size: int | None = None,
        known: Mapping[bytes, str] | None = None,
    ) -> Listing:
        """Return a paged listing of every episode of a show or season."""
        return Listing(
            self,
            "all_leaves",
            f"/library/metadata/{quote(rating_key)}/allLeaves",
            {"includeGuids": "1"},
            (ItemKind.EPISODE,),
            page_size or self.page_size,
            known,
        )

    async def metadata(self, rating_keys: Iterable[str]) -> Page:
        """Return the detail of several items in one request (missing keys are left out)."""
        keys = [quote(key) for key in rating_keys]
        if not keys:
            return Page(items=(), problems=(), offset=0, received=0, total_size=0)
        path = f"/library/metadata/{','.join(keys)}"
        try:
            return await self._get("metadata", path, _items_builder(_ANY_KIND, 0))
        except PlexNotFoundError:
            return Page(items=(), problems=(), offset=0, received=0, total_size=0)

    # --- transport ---------------------------------------------------------------------------

    async def _fetch_page(
        self,
        endpoint: str,
        path: str,
        params: Mapping[str, str],
        kinds: Sequence[ItemKind],
        start: int,
        size: int,
        known: Mapping[bytes, str] | None = None,
    ) -> Page:
        paging = {"X-Plex-Container-Start": str(start), "X-Plex-Container-Size": str(size)}
        return await self._get(
            endpoint,
            path,
            _items_builder(kinds, start, known),
            params={**params, **paging},
            headers=paging,
        )

    async def _get[T](
        self,
        endpoint: str,
        path: str,
        build: Callable[[bytes, str | None], T],
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: bool = True,
    ) -> T:
        """GET a path, retrying transient failures, and return what `build` makes of it."""
        request_headers = dict(self._headers)
        if auth:
            request_headers["X-Plex-Token"] = self._token
        if headers:
            request_headers.update(headers)
        # Filters like `updatedAt>>=` must reach the server verbatim, so the query is built here.
        query = "&".join(
            f"{_q(key)}={quote(value, safe='')}" for key, value in (params or {}).items()
        )
        url = f"{self._base}{path}" + (f"?{query}" if query else "")
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._get_once(endpoint, path, url, request_headers, build)
            except _RetryError as retry:
                if attempt > self._retries:
                    raise retry.error from retry.__cause__
                delay = retry.delay
                if delay is None:
                    delay = self._backoff * 2 ** (attempt - 1)
                LOGGER.debug(
                    "%s %s: %s; retry %d of %d in %.1fs",
                    self.name,
                    path,
                    retry.error.detail,
                    attempt,
                    self._retries,
                    delay,
                )
                await self._sleep(delay)

    def _note_server_time(self, date: str | None) -> None:
        """Keep the server's clock from a `Date` header (HTTP date), if it can be read."""
        if not date:
            return
        try:
            self.server_time = int(parsedate_to_datetime(date).timestamp())
        except (TypeError, ValueError, OverflowError):
            return

    async def _get_once[T](
        self,
        endpoint: str,
        path: str,
        url: str,
        headers: Mapping[str, str],
        build: Callable[[bytes, str | None], T],
    ) -> T:
        self.requests[endpoint] += 1
        try:
            async with self._session.get(
                url, headers=headers, ssl=self._ssl, timeout=self._timeout, allow_redirects=False
            ) as response:
                status = response.status
                if status in (401, 403):
                    raise PlexAuthError(
                        f"the server refused the token (HTTP {status})",
                        server=self.name,
                        endpoint=path,
                    )
                if status == 404:
                    raise PlexNotFoundError(
                        "not found (HTTP 404)", server=self.name, endpoint=path, status=404
                    )
                if status in _RETRY_STATUSES:
                    raise _RetryError(
                        PlexResponseError(
                            f"HTTP {status}", server=self.name, endpoint=path, status=status
                        ),
                        _retry_after(response.headers.get("Retry-After")),
                    )
                if status != 200:
                    raise PlexResponseError(
                        f"unexpected HTTP {status}", server=self.name, endpoint=path, status=status
                    )
                body = await response.read()
                content_type = response.headers.get("Content-Type")
                self._note_server_time(response.headers.get("Date"))
        except PlexError:
            raise
        except _RetryError:
            raise
        except TimeoutError as err:
            raise _RetryError(
                PlexTimeoutError("no answer in time", server=self.name, endpoint=path)
            ) from err
        except aiohttp.ClientSSLError as err:
            raise PlexSSLError(
                f"TLS failed: {err.__class__.__name__}", server=self.name, endpoint=path
            ) from err
        except aiohttp.ClientPayloadError as err:
            raise _RetryError(
                PlexResponseError(
                    f"the answer broke off: {err.__class__.__name__}",
                    server=self.name,
                    endpoint=path,
                )
            ) from err
        except (aiohttp.ClientError, OSError) as err:
            raise _RetryError(
                PlexConnectionError(
                    f"cannot reach the server: {err.__class__.__name__}: {_safe(err)}",
                    server=self.name,
                    endpoint=path,
                )
            ) from err

        try:
            if len(body) > OFF_LOOP_BODY_BYTES:
                return await asyncio.to_thread(build, body, content_type)
            return build(body, content_type)
        except BodyError as err:
            raise _RetryError(PlexResponseError(str(err), server=self.name, endpoint=path)) from err


def _container[T](parse: Callable[[Mapping[str, Any]], T]) -> Callable[[bytes, str | None], T]:
    """Return a body builder that decodes the MediaContainer and hands it to `parse`."""

    def build(body: bytes, content_type: str | None) -> T:
        container, fmt = decode_container(body, content_type)
        if fmt != FORMAT_JSON:
            LOGGER.debug("XML answer although JSON was asked")
        return parse(container)

    return build


def _items_builder(
    kinds: Sequence[ItemKind], start: int, known: Mapping[bytes, str] | None = None
) -> Callable[[bytes, str | None], Page]:
    def build(body: bytes, content_type: str | None) -> Page:
        return parse_listing(body, content_type, kinds=kinds, offset=start, known=known)

    return build


class _RetryError(Exception):
    """A transient failure: retry, or raise `error` when the attempts are used up."""

    def __init__(self, error: PlexError, delay: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.delay = delay


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER)
    except ValueError:
        return None


def _q(key: str) -> str:
    # Keep Plex filter operators (`>>`, `<<`) literal in parameter names.
    return quote(key, safe=">=<!")


def _safe(err: BaseException) -> str:
    """Describe a transport error without the request URL's query (which never holds tokens)."""
    text = str(err)
    return text.split("?", 1)[0][:200]
