"""Errors raised by the Plex client; each names the server and the endpoint, never the token."""

from __future__ import annotations


class PlexError(Exception):
    """Base error of the Plex client."""

    def __init__(self, message: str, *, server: str, endpoint: str | None = None) -> None:
        """Keep where the error happened next to the message."""
        where = f"{server} {endpoint}" if endpoint else server
        super().__init__(f"{where}: {message}")
        self.server = server
        self.endpoint = endpoint
        self.detail = message


class PlexAuthError(PlexError):
    """The server refused the token (401/403)."""


class PlexConnectionError(PlexError):
    """The server could not be reached or dropped the connection."""


class PlexSSLError(PlexConnectionError):
    """The TLS handshake or certificate check failed."""


class PlexTimeoutError(PlexConnectionError):
    """The server did not answer in time."""


class PlexResponseError(PlexError):
    """The server answered, but not with something usable (status, format or content)."""

    def __init__(
        self,
        message: str,
        *,
        server: str,
        endpoint: str | None = None,
        status: int | None = None,
    ) -> None:
        """Keep the HTTP status when there is one."""
        super().__init__(message, server=server, endpoint=endpoint)
        self.status = status


class PlexNotFoundError(PlexResponseError):
    """The server answered 404."""
