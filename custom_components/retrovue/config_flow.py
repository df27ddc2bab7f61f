"""Config flow for the Retrovue integration."""

from __future__ import annotations

import asyncio
from collections.abc import Container, Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit
from uuid import uuid4

from aiohttp import web
from homeassistant.components import webhook
from homeassistant.config_entries import (
    SOURCE_REAUTH,
    SOURCE_USER,
    ConfigEntry,
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryFlow,
    OptionsFlow,
    SubentryFlowResult,
)
from homeassistant.const import UnitOfTime
from homeassistant.core import HomeAssistant, callback
from homeassistant.data_entry_flow import AbortFlow, UnknownFlow
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.http import HomeAssistantView, current_request
from homeassistant.helpers.network import NoURLAvailableError
from homeassistant.helpers.selector import (
    BooleanSelector,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
from homeassistant.helpers.typing import DiscoveryInfoType
from homeassistant.util.hass_dict import HassKey
import voluptuous as vol

from .const import (
    CONF_DEEP_SYNC_INTERVAL,
    CONF_LIBRARIES,
    CONF_LOCAL_PREFIX,
    CONF_PLEX_PREFIX,
    CONF_RETENTION_DAYS,
    CONF_SCAN_INTERVAL,
    CONF_TOKEN,
    CONF_URL,
    CONF_VERIFY_SSL,
    CONF_WEBHOOK_ID,
    DEFAULT_DEEP_SYNC_INTERVAL,
    DEFAULT_RETENTION_DAYS,
    DEFAULT_SCAN_INTERVAL,
    DOMAIN,
    LOGGER,
    MAX_SCAN_INTERVAL,
    MIN_SCAN_INTERVAL,
    SUBENTRY_PATH_MAPPING,
)
from .discovery import ATTR_MACHINE_IDENTIFIER, ATTR_NAME, ATTR_URL, async_known_servers
from .engine.paths import InvalidPathMapping, PathMapper, PathMapping, check_prefix
from .engine.plex import (
    PlexAuthError,
    PlexClient,
    PlexError,
    PlexSSLError,
    Section,
    ServerIdentity,
)
from .engine.plex.account import (
    Candidate,
    NoConnectionError,
    PinExpiredError,
    PinLogin,
    PlexTvConnectionError,
    PlexTvError,
    PlexTvResponseError,
    ServerResource,
    async_choose_connection,
    candidate_connections,
    fetch_servers,
    is_ip_url,
)
from .engine.plex.gdm import GdmServer
from .engine.sync import ServerContext

# A person is waiting on the form: report a failure at once instead of retrying.
FLOW_RETRIES: Final = 0
MAX_DEEP_SYNC_INTERVAL: Final = 720
MAX_RETENTION_DAYS: Final = 3650

# The plex.tv sign-in: how long the person has to finish it on Plex's page, how often plex.tv
# is asked whether they did, and how many failed questions in a row end it.
SIGN_IN_TIMEOUT: Final = 600.0
PIN_POLL_INTERVAL: Final = 1.0
MAX_PIN_POLL_FAILURES: Final = 5
# Plex's sign-in page sends the browser here when it is done; the page only closes itself.
AUTH_CALLBACK_PATH: Final = "/auth/retrovue/callback"
HEADER_FRONTEND_BASE: Final = "HA-Frontend-Base"
_CALLBACK_PAGE: Final = (
    "<!DOCTYPE html><html><head><title>Retrovue</title></head><body>"
    "<script>window.close()</script><p>You can close this window.</p></body></html>"
)
_CALLBACK_VIEW: HassKey[bool] = HassKey(f"{DOMAIN}_auth_callback_view")

CONF_SERVER: Final = "server"

# The form field an error belongs to, when that field is on the form; otherwise "base".
_ERROR_FIELDS: Final[Mapping[str, str]] = {
    "invalid_url": CONF_URL,
    "cannot_connect": CONF_URL,
    "ssl_error": CONF_URL,
    "invalid_auth": CONF_TOKEN,
    "no_connection": CONF_SERVER,
}

_URL_SELECTOR: Final = TextSelector(
    TextSelectorConfig(type=TextSelectorType.URL, autocomplete="url")
)
_TOKEN_SELECTOR: Final = TextSelector(
    TextSelectorConfig(type=TextSelectorType.PASSWORD, autocomplete="off")
)
_PREFIX_SELECTOR: Final = TextSelector(TextSelectorConfig(autocomplete="off"))


class _ConnectError(Exception):
    """Connecting to the server failed; `error` is the translation key to show."""

    def __init__(self, error: str, placeholders: Mapping[str, str] | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.placeholders = dict(placeholders or {})


def _normalize_url(url: str) -> str:
    """Return the URL without surrounding whitespace, trailing slashes and user info.

    Plex authenticates with the token; a `user:pass@` would only be stored and shown.
    """
    text = url.strip().rstrip("/")
    parts = urlsplit(text)
    if "@" in parts.netloc:
        text = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    return text


async def _async_connect(
    hass: HomeAssistant, data: Mapping[str, Any]
) -> tuple[ServerIdentity, list[Section]]:
    """Check the server and token; return the identity and the movie and show sections."""
    try:
        client = PlexClient(
            async_get_clientsession(hass),
            data[CONF_URL],
            data[CONF_TOKEN],
            verify_ssl=data.get(CONF_VERIFY_SSL, True),
            retries=FLOW_RETRIES,
        )
    except ValueError as err:
        raise _ConnectError("invalid_url") from err
    try:
        identity = await client.server_info()
        sections = [section for section in await client.sections() if section.supported]
    except PlexAuthError as err:
        raise _ConnectError("invalid_auth") from err
    except PlexSSLError as err:
        raise _ConnectError("ssl_error") from err
    except PlexError as err:
        # Unreachable, timed out, or an answer that is not a Plex server's.
        raise _ConnectError("cannot_connect") from err
    except Exception as err:
        LOGGER.exception("Unexpected exception")
        raise _ConnectError("unknown") from err
    return identity, sections


async def _async_identity(hass: HomeAssistant, url: str) -> ServerIdentity | None:
    """Return who answers `/identity` at a URL (no token needed), or None if nobody does."""
    client = PlexClient(async_get_clientsession(hass), url, "", retries=FLOW_RETRIES)
    try:
        return await client.identity()
    except PlexError:
        return None


def discovered_url(discovery_info: ZeroconfServiceInfo) -> str:
    """Return the plain-HTTP URL of an announced server (IPv6 hosts in brackets)."""
    host = discovery_info.host
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{discovery_info.port or 32400}"


@callback
def _async_update_entry(
    hass: HomeAssistant, entry: ConfigEntry, data_updates: Mapping[str, Any]
) -> None:
    """Update an entry's data and have it reloaded exactly once.

    A loaded entry has an update listener (see `async_setup_entry`) that reloads it whenever
    its data, options or path mappings change, so a flow only updates the entry and lets the
    listener reload. Home Assistant's `async_update_reload_and_abort`, and
    `_abort_if_unique_id_configured` given updates, would schedule a second reload on top of
    the listener; Home Assistant reports that from 2026.6 and refuses it from 2026.12. The flow
    schedules the reload itself only where no listener will: the entry is not loaded (its
    setup failed or is being retried, as after a refused token) or nothing changed (a reauth
    with the same token still retries a failed setup).
    """
    changed = hass.config_entries.async_update_entry(entry, data={**entry.data, **data_updates})
    if not (changed and entry.update_listeners):
        hass.config_entries.async_schedule_reload(entry.entry_id)


def _follows_discovery(url: str) -> bool:
    """Return whether a configured URL may follow the address Plex announces.

    Only plain `http://<IP>` URLs do: a host name or an https address (e.g. plex.direct) was
    chosen on purpose and is never rewritten.
    """
    return is_ip_url(url, "http")


def _form_errors(error: str, fields: Container[str]) -> dict[str, str]:
    """Return the errors of a form, keyed by the field the error belongs to."""
    field = _ERROR_FIELDS.get(error, "base")
    return {field if field in fields else "base": error}


def _server_label(server: ServerResource) -> str:
    """Return how a server of the account is listed: its name, and its owner if shared."""
    if server.owned or not server.owner:
        return server.name
    return f"{server.name} ({server.owner})"


def _url_selector(servers: Sequence[GdmServer]) -> TextSelector | SelectSelector:
    """Return the URL field: free text, offering the servers found on the network if any."""
    if not servers:
        return _URL_SELECTOR
    return SelectSelector(
        SelectSelectorConfig(
            options=[
                SelectOptionDict(value=server.url, label=f"{server.name} ({server.url})")
                for server in servers
            ],
            custom_value=True,
            mode=SelectSelectorMode.DROPDOWN,
        )
    )


def _library_selector(sections: list[Section], selected: list[str] | None = None) -> SelectSelector:
    """Return a multi-select of library sections, keeping selected keys the server lacks."""
    options = [
        SelectOptionDict(value=section.key, label=f"{section.title} ({section.type})")
        for section in sections
    ]
    known = {section.key for section in sections}
    options.extend(
        SelectOptionDict(value=key, label=key) for key in selected or () if key not in known
    )
    return SelectSelector(
        SelectSelectorConfig(options=options, multiple=True, mode=SelectSelectorMode.LIST)
    )


def _number_selector(minimum: int, maximum: int, unit: str) -> vol.All:
    """Return a whole-number box selector."""
    return vol.All(
        NumberSelector(
            NumberSelectorConfig(
                min=minimum,
                max=maximum,
                step=1,
                unit_of_measurement=unit,
                mode=NumberSelectorMode.BOX,
            )
        ),
        vol.Coerce(int),
    )


class RetrovueAuthCallbackView(HomeAssistantView):
    """The page Plex's sign-in sends the browser back to: it closes its own window.

    It needs no authentication because it does nothing else: the flow learns of the sign-in
    by asking plex.tv, so nobody can move a flow forward through this address.
    """

    url = AUTH_CALLBACK_PATH
    name = f"api:{DOMAIN}:auth_callback"
    requires_auth = False

    async def get(self, request: web.Request) -> web.Response:
        """Return the page that closes the sign-in window."""
        return web.Response(text=_CALLBACK_PAGE, content_type="text/html")


@callback
def _async_forward_url(hass: HomeAssistant) -> str | None:
    """Return where Plex's sign-in page sends the browser afterwards, if the frontend said.

    The frontend names the address the person reaches Home Assistant at in a header of the
    request that runs this step; without it, Plex's page stays open and the person closes it.
    """
    request = current_request.get()
    base = request.headers.get(HEADER_FRONTEND_BASE) if request is not None else None
    if not base:
        return None
    if not hass.data.get(_CALLBACK_VIEW):
        hass.http.register_view(RetrovueAuthCallbackView())
        hass.data[_CALLBACK_VIEW] = True
    return f"{base.rstrip('/')}{AUTH_CALLBACK_PATH}"


class RetrovueConfigFlow(ConfigFlow, domain=DOMAIN):
    """Handle a Retrovue config flow."""

    VERSION = 1
    MINOR_VERSION = 1

    _data: dict[str, Any]
    _sections: list[Section]
    _title: str = ""
    # The plex.tv sign-in.
    _client_identifier: str
    _auth_url: str
    _sign_in_task: asyncio.Task[None] | None = None
    _account_token: str | None = None
    _sign_in_error: str | None = None
    _servers: list[ServerResource] | None = None

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> RetrovueOptionsFlowHandler:
        """Return the options flow."""
        return RetrovueOptionsFlowHandler()

    @classmethod
    @callback
    def async_get_supported_subentry_types(
        cls, config_entry: ConfigEntry
    ) -> dict[str, type[ConfigSubentryFlow]]:
        """Return the subentry types the integration supports."""
        return {SUBENTRY_PATH_MAPPING: PathMappingSubentryFlowHandler}

    @callback
    def async_remove(self) -> None:
        """Stop asking plex.tv about a sign-in nobody waits for any more."""
        if self._sign_in_task is not None:
            self._sign_in_task.cancel()

    # --- user ----------------------------------------------------------------------------

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Offer the plex.tv sign-in, or the server's URL and token."""
        return self.async_show_menu(step_id="user", menu_options=["sign_in", "manual"])

    async def async_step_manual(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the server's URL and token, offering the servers found on the network."""
        errors: dict[str, str] = {}
        if user_input is not None:
            data = {
                CONF_URL: _normalize_url(user_input[CONF_URL]),
                CONF_TOKEN: user_input[CONF_TOKEN].strip(),
                CONF_VERIFY_SSL: user_input[CONF_VERIFY_SSL],
            }
            try:
                identity, sections = await _async_connect(self.hass, data)
            except _ConnectError as err:
                errors = _form_errors(err.error, user_input)
            else:
                # Setting the server up by hand goes ahead of a discovery of it.
                await self.async_set_unique_id(identity.machine_identifier, raise_on_progress=False)
                self._abort_if_unique_id_configured()
                return await self._async_step_found(identity, sections, data)

        configured = self._async_current_ids(include_ignore=False)
        found = [
            server
            for server in await async_known_servers(self.hass)
            if server.machine_identifier not in configured
        ]
        schema = vol.Schema(
            {
                vol.Required(CONF_URL): _url_selector(found),
                vol.Required(CONF_TOKEN): _TOKEN_SELECTOR,
                vol.Required(CONF_VERIFY_SSL, default=True): BooleanSelector(),
            }
        )
        if user_input is not None:
            # What was typed stays, but the token: Home Assistant's forms never show it again.
            suggested = {key: user_input[key] for key in (CONF_URL, CONF_VERIFY_SSL)}
            schema = self.add_suggested_values_to_schema(schema, suggested)
        return self.async_show_form(step_id="manual", data_schema=schema, errors=errors)

    async def _async_step_found(
        self, identity: ServerIdentity, sections: list[Section], data: dict[str, Any]
    ) -> ConfigFlowResult:
        """Go on to the libraries of a server that answered with the token."""
        if not sections:
            return self.async_abort(reason="no_libraries")
        self._data = data
        self._sections = sections
        self._title = identity.friendly_name or self._title or identity.machine_identifier
        return await self.async_step_libraries()

    # --- plex.tv sign-in -----------------------------------------------------------------

    async def async_step_sign_in(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Create a PIN on plex.tv and send the person to Plex's sign-in page."""
        # A fresh identifier per sign-in, as Home Assistant's Plex integration does: plex.tv
        # lists each sign-in as a device of the account, with Home Assistant's name.
        self._client_identifier = f"{DOMAIN}-{uuid4().hex}"
        login = PinLogin(self._client_identifier, self.hass.config.location_name)
        try:
            self._auth_url = await self.hass.async_add_executor_job(
                login.auth_url, _async_forward_url(self.hass)
            )
        except PlexTvError as err:
            login.close()
            return self.async_abort(reason=_plex_tv_reason(err))
        self._sign_in_task = self.hass.async_create_background_task(
            self._async_wait_for_sign_in(login), f"{DOMAIN} plex.tv sign-in"
        )
        return self.async_external_step(step_id="authorize", url=self._auth_url)

    async def _async_wait_for_sign_in(self, login: PinLogin) -> None:
        """Ask plex.tv until the person signed in (or gave up), then resume the flow."""
        try:
            async with asyncio.timeout(SIGN_IN_TIMEOUT):
                self._account_token = await self._async_poll(login)
        except (TimeoutError, PinExpiredError):
            self._sign_in_error = "sign_in_timeout"
        except PlexTvError as err:
            self._sign_in_error = _plex_tv_reason(err)
        finally:
            login.close()
        with suppress(UnknownFlow):
            await self.hass.config_entries.flow.async_configure(self.flow_id)

    async def _async_poll(self, login: PinLogin) -> str:
        """Return the account's token once plex.tv has it; tolerate a few failed questions."""
        failures = 0
        while True:
            try:
                token = await self.hass.async_add_executor_job(login.check)
            except (PlexTvConnectionError, PlexTvResponseError):
                failures += 1
                if failures >= MAX_PIN_POLL_FAILURES:
                    raise
            else:
                failures = 0
                if token:
                    return token
            await asyncio.sleep(PIN_POLL_INTERVAL)

    async def async_step_authorize(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Go on once the sign-in is over (the waiting task resumes the flow)."""
        if self._sign_in_error is not None:
            return self.async_external_step_done(next_step_id="sign_in_failed")
        if self._account_token is None:
            return self.async_external_step(step_id="authorize", url=self._auth_url)
        return self.async_external_step_done(next_step_id="servers")

    async def async_step_sign_in_failed(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """End the flow: the sign-in expired or plex.tv could not be used."""
        return self.async_abort(
            reason=self._sign_in_error or "unknown",
            description_placeholders={"minutes": str(int(SIGN_IN_TIMEOUT // 60))},
        )

    async def async_step_servers(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Choose one of the account's servers (at once if there is one) and connect to it."""
        if self._servers is None:
            try:
                self._servers = await self.hass.async_add_executor_job(
                    fetch_servers,
                    self._account_token or "",
                    self._client_identifier,
                    self.hass.config.location_name,
                )
            except PlexTvError as err:
                return self.async_abort(reason=_plex_tv_reason(err))
        choices = self._server_choices(self._servers)

        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        chosen: ServerResource | None = None
        if len(choices) == 1:
            chosen = choices[0]
        elif user_input is not None:
            # The form offers only these, so the choice is one of them.
            chosen = next(s for s in choices if s.machine_identifier == user_input[CONF_SERVER])
        if chosen is not None:
            try:
                return await self._async_use_server(chosen)
            except _ConnectError as err:
                if len(choices) == 1:
                    return self.async_abort(
                        reason=err.error, description_placeholders=err.placeholders
                    )
                errors = _form_errors(err.error, (CONF_SERVER,))
                placeholders = err.placeholders

        schema = vol.Schema(
            {
                vol.Required(CONF_SERVER): SelectSelector(
                    SelectSelectorConfig(
                        options=[
                            SelectOptionDict(value=s.machine_identifier, label=_server_label(s))
                            for s in choices
                        ],
                        mode=SelectSelectorMode.LIST,
                    )
                )
            }
        )
        if user_input is not None:
            schema = self.add_suggested_values_to_schema(schema, user_input)
        return self.async_show_form(
            step_id="servers",
            data_schema=schema,
            errors=errors,
            description_placeholders=placeholders,
        )

    def _server_choices(self, servers: list[ServerResource]) -> list[ServerResource]:
        """Return the servers of the account this flow may set up; end it if there are none.

        A reauthentication or a discovered server's flow is for that server only; otherwise
        every server but those already configured (ignored ones may be set up after all).
        """
        if not servers:
            raise AbortFlow("no_servers")
        if (target := self._target_server_id()) is not None:
            if not (choices := [s for s in servers if s.machine_identifier == target]):
                raise AbortFlow("server_not_on_account", {"name": self._target_name()})
            return choices
        configured = self._async_current_ids(include_ignore=False)
        if not (choices := [s for s in servers if s.machine_identifier not in configured]):
            raise AbortFlow("all_configured")
        return choices

    def _target_server_id(self) -> str | None:
        """Return the server a sign-in is for: the reauthenticated or discovered one."""
        if self.source == SOURCE_REAUTH:
            return self._get_reauth_entry().unique_id
        if self.source == SOURCE_USER:
            return None
        return self.unique_id

    def _target_name(self) -> str:
        """Return the name of the server a sign-in is for."""
        if self.source == SOURCE_REAUTH:
            return self._get_reauth_entry().title
        return self._title

    async def _async_use_server(self, server: ServerResource) -> ConfigFlowResult:
        """Find the server's best address, check the token there and go on with it."""
        candidates = candidate_connections(server)
        if self.source == SOURCE_REAUTH:
            # The address in use comes first: a new token alone keeps it.
            entry_data = self._get_reauth_entry().data
            stored = Candidate(
                entry_data[CONF_URL], entry_data.get(CONF_VERIFY_SSL, True), "configured"
            )
            candidates = [stored, *(c for c in candidates if c.url != stored.url)]
        try:
            chosen = await async_choose_connection(
                async_get_clientsession(self.hass),
                server.name,
                server.machine_identifier,
                candidates,
                client_identifier=self._client_identifier,
            )
        except NoConnectionError as err:
            raise _ConnectError(
                "no_connection", {"name": server.name, "tried": err.tried or "-"}
            ) from err
        data = {
            CONF_URL: chosen.url,
            CONF_TOKEN: server.access_token,
            CONF_VERIFY_SSL: chosen.verify_ssl,
        }
        identity, sections = await _async_connect(self.hass, data)
        await self.async_set_unique_id(identity.machine_identifier, raise_on_progress=False)
        if self.source == SOURCE_REAUTH:
            self._abort_if_unique_id_mismatch(reason="wrong_server")
            _async_update_entry(self.hass, self._get_reauth_entry(), data)
            return self.async_abort(reason="reauth_successful")
        self._abort_if_unique_id_configured()
        self._title = self._title or server.name
        return await self._async_step_found(identity, sections, data)

    # --- discovery -----------------------------------------------------------------------

    async def async_step_zeroconf(self, discovery_info: ZeroconfServiceInfo) -> ConfigFlowResult:
        """Handle a Plex Media Server announced over zeroconf."""
        url = discovered_url(discovery_info)
        identity = await _async_identity(self.hass, url)
        if identity is None:
            return self.async_abort(reason="cannot_connect")
        name = discovery_info.hostname.removesuffix(".").removesuffix(".local") or url
        return await self._async_step_discovered(
            identity.machine_identifier, url, name, verified=True
        )

    async def async_step_integration_discovery(
        self, discovery_info: DiscoveryInfoType
    ) -> ConfigFlowResult:
        """Handle a Plex Media Server that answered a GDM search."""
        return await self._async_step_discovered(
            discovery_info[ATTR_MACHINE_IDENTIFIER],
            discovery_info[ATTR_URL],
            discovery_info[ATTR_NAME],
            verified=False,
        )

    async def _async_step_discovered(
        self, machine_identifier: str, url: str, name: str, *, verified: bool
    ) -> ConfigFlowResult:
        """Offer a discovered server, or bring a configured one's plain-IP URL up to date.

        `verified`: the server at `url` already proved to be `machine_identifier`; a GDM
        answer is checked with `/identity` before a configured entry's URL follows it. The URL
        follows only when the stored one no longer answers as that server: `/identity` needs no
        token, so a device that merely echoes the identifier never gets the token sent to it
        while the server still answers where it was.
        """
        await self.async_set_unique_id(machine_identifier)
        entry = self.hass.config_entries.async_entry_for_domain_unique_id(
            DOMAIN, machine_identifier
        )
        if (
            entry is not None
            and entry.data[CONF_URL] != url
            and _follows_discovery(entry.data[CONF_URL])
            and (verified or await self._async_is_server(url, machine_identifier))
            and not await self._async_is_server(entry.data[CONF_URL], machine_identifier)
        ):
            # Only updated here: a loaded entry's update listener reloads it, and one that is
            # retrying setup is reloaded by the abort below (it was just seen online).
            self.hass.config_entries.async_update_entry(entry, data={**entry.data, CONF_URL: url})
        self._abort_if_unique_id_configured()
        self._data = {CONF_URL: url, CONF_VERIFY_SSL: True}
        self._title = name
        self.context["title_placeholders"] = {"name": name}
        return await self.async_step_discovery_confirm()

    async def _async_is_server(self, url: str, machine_identifier: str) -> bool:
        """Return whether the server at `url` is the one with this machine identifier."""
        identity = await _async_identity(self.hass, url)
        return identity is not None and identity.machine_identifier == machine_identifier

    async def async_step_discovery_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Offer the plex.tv sign-in, or a token, for a discovered server."""
        return self.async_show_menu(
            step_id="discovery_confirm",
            menu_options=["sign_in", "discovery_token"],
            description_placeholders={"name": self._title, "url": self._data[CONF_URL]},
        )

    async def async_step_discovery_token(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for the token of a discovered server."""
        errors: dict[str, str] = {}
        if user_input is not None:
            data = {**self._data, CONF_TOKEN: user_input[CONF_TOKEN].strip()}
            try:
                identity, sections = await _async_connect(self.hass, data)
            except _ConnectError as err:
                errors = _form_errors(err.error, user_input)
            else:
                if identity.machine_identifier != self.unique_id:
                    # Another server answers at the discovered address now.
                    return self.async_abort(reason="wrong_server")
                # Set up another way meanwhile?
                self._abort_if_unique_id_configured()
                return await self._async_step_found(identity, sections, data)
        return self.async_show_form(
            step_id="discovery_token",
            data_schema=vol.Schema({vol.Required(CONF_TOKEN): _TOKEN_SELECTOR}),
            errors=errors,
            description_placeholders={"name": self._title, "url": self._data[CONF_URL]},
        )

    # --- libraries -----------------------------------------------------------------------

    async def async_step_libraries(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask which movie and show libraries to catalog."""
        errors: dict[str, str] = {}
        if user_input is not None:
            if user_input[CONF_LIBRARIES]:
                return self.async_create_entry(
                    title=self._title,
                    # The webhook's secret id (Plex Pass webhooks post to it).
                    data={**self._data, CONF_WEBHOOK_ID: webhook.async_generate_id()},
                    options={
                        CONF_LIBRARIES: user_input[CONF_LIBRARIES],
                        CONF_SCAN_INTERVAL: DEFAULT_SCAN_INTERVAL,
                        CONF_DEEP_SYNC_INTERVAL: DEFAULT_DEEP_SYNC_INTERVAL,
                        CONF_RETENTION_DAYS: DEFAULT_RETENTION_DAYS,
                    },
                )
            errors[CONF_LIBRARIES] = "no_libraries"

        default = [section.key for section in self._sections]
        return self.async_show_form(
            step_id="libraries",
            data_schema=vol.Schema(
                {vol.Required(CONF_LIBRARIES, default=default): _library_selector(self._sections)}
            ),
            errors=errors,
            description_placeholders={"name": self._title},
        )

    # --- reauth and reconfigure ----------------------------------------------------------

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """Start reauthentication after the server refused the token."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Offer the plex.tv sign-in, or a new token."""
        return self.async_show_menu(
            step_id="reauth_confirm",
            menu_options=["sign_in", "reauth_token"],
            description_placeholders={"name": self._get_reauth_entry().title},
        )

    async def async_step_reauth_token(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for a new token."""
        errors: dict[str, str] = {}
        reauth_entry = self._get_reauth_entry()
        if user_input is not None:
            token = user_input[CONF_TOKEN].strip()
            try:
                identity, _ = await _async_connect(
                    self.hass, {**reauth_entry.data, CONF_TOKEN: token}
                )
            except _ConnectError as err:
                errors = _form_errors(err.error, user_input)
            else:
                await self.async_set_unique_id(identity.machine_identifier, raise_on_progress=False)
                self._abort_if_unique_id_mismatch(reason="wrong_server")
                _async_update_entry(self.hass, reauth_entry, {CONF_TOKEN: token})
                return self.async_abort(reason="reauth_successful")

        return self.async_show_form(
            step_id="reauth_token",
            data_schema=vol.Schema({vol.Required(CONF_TOKEN): _TOKEN_SELECTOR}),
            errors=errors,
            description_placeholders={"name": reauth_entry.title},
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the server's URL or certificate check; the token is kept."""
        errors: dict[str, str] = {}
        reconfigure_entry = self._get_reconfigure_entry()
        if user_input is not None:
            updates = {
                CONF_URL: _normalize_url(user_input[CONF_URL]),
                CONF_VERIFY_SSL: user_input[CONF_VERIFY_SSL],
            }
            try:
                identity, _ = await _async_connect(self.hass, {**reconfigure_entry.data, **updates})
            except _ConnectError as err:
                errors = _form_errors(err.error, user_input)
            else:
                await self.async_set_unique_id(identity.machine_identifier, raise_on_progress=False)
                self._abort_if_unique_id_mismatch(reason="wrong_server")
                _async_update_entry(self.hass, reconfigure_entry, updates)
                return self.async_abort(reason="reconfigure_successful")

        schema = self.add_suggested_values_to_schema(
            vol.Schema(
                {
                    vol.Required(CONF_URL): _URL_SELECTOR,
                    vol.Required(CONF_VERIFY_SSL, default=True): BooleanSelector(),
                }
            ),
            user_input or reconfigure_entry.data,
        )
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=schema,
            errors=errors,
            description_placeholders={"name": reconfigure_entry.title},
        )


def _plex_tv_reason(err: PlexTvError) -> str:
    """Return the abort reason for a plex.tv failure."""
    if isinstance(err, PlexTvConnectionError):
        return "plex_tv_unreachable"
    return "plex_tv_error"


class RetrovueOptionsFlowHandler(OptionsFlow):
    """Handle Retrovue options."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Choose the libraries and the sync schedule."""
        errors: dict[str, str] = {}
        if user_input is not None:
            if user_input[CONF_LIBRARIES]:
                return self.async_create_entry(data=user_input)
            errors[CONF_LIBRARIES] = "no_libraries"

        options = self.config_entry.options
        selected: list[str] = list(options.get(CONF_LIBRARIES, []))
        try:
            _, sections = await _async_connect(self.hass, self.config_entry.data)
        except _ConnectError as err:
            # The schedule can still be changed while the server is away.
            errors["base"] = err.error
            sections = []

        schema = vol.Schema(
            {
                vol.Required(CONF_LIBRARIES, default=selected): _library_selector(
                    sections, selected
                ),
                vol.Required(
                    CONF_SCAN_INTERVAL,
                    default=options.get(CONF_SCAN_INTERVAL, DEFAULT_SCAN_INTERVAL),
                ): _number_selector(MIN_SCAN_INTERVAL, MAX_SCAN_INTERVAL, UnitOfTime.MINUTES),
                vol.Required(
                    CONF_DEEP_SYNC_INTERVAL,
                    default=options.get(CONF_DEEP_SYNC_INTERVAL, DEFAULT_DEEP_SYNC_INTERVAL),
                ): _number_selector(0, MAX_DEEP_SYNC_INTERVAL, UnitOfTime.HOURS),
                vol.Required(
                    CONF_RETENTION_DAYS,
                    default=options.get(CONF_RETENTION_DAYS, DEFAULT_RETENTION_DAYS),
                ): _number_selector(1, MAX_RETENTION_DAYS, UnitOfTime.DAYS),
            }
        )
        if user_input is not None:
            schema = self.add_suggested_values_to_schema(schema, user_input)
        return self.async_show_form(
            step_id="init",
            data_schema=schema,
            errors=errors,
            description_placeholders={
                "name": self.config_entry.title,
                "webhook_url": _webhook_url(self.hass, self.config_entry),
            },
        )


def _webhook_url(hass: HomeAssistant, entry: ConfigEntry) -> str:
    """Return the address of the entry's webhook, for Plex's webhook settings."""
    webhook_id = entry.data.get(CONF_WEBHOOK_ID)
    if not webhook_id:
        return "(shown once the server has been set up)"
    try:
        return webhook.async_generate_url(hass, webhook_id)
    except NoURLAvailableError:
        # No URL configured for Home Assistant: the path, to put after its address.
        return webhook.async_generate_path(webhook_id)


class PathMappingSubentryFlowHandler(ConfigSubentryFlow):
    """Add or change a mapping of Plex's file paths to paths Home Assistant can read."""

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Add a path mapping."""
        checked = MappingCheck()
        if user_input is not None:
            checked = validate_path_mapping(self._get_entry(), user_input)
            if (mapping := checked.mapping) is not None:
                return self.async_create_entry(
                    title=mapping_title(mapping),
                    data=mapping_data(mapping),
                    unique_id=mapping.plex_prefix,
                )
        return self._show_form("user", user_input, checked)

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Change a path mapping."""
        checked = MappingCheck()
        subentry = self._get_reconfigure_subentry()
        if user_input is not None:
            checked = validate_path_mapping(self._get_entry(), user_input, subentry.subentry_id)
            if (mapping := checked.mapping) is not None:
                return self.async_update_and_abort(
                    self._get_entry(),
                    subentry,
                    title=mapping_title(mapping),
                    data=mapping_data(mapping),
                    unique_id=mapping.plex_prefix,
                )
        return self._show_form("reconfigure", user_input or subentry.data, checked)

    def _show_form(
        self, step_id: str, values: Mapping[str, Any] | None, checked: MappingCheck
    ) -> SubentryFlowResult:
        """Show the mapping form, filled in with the given values, and the library folders."""
        schema = vol.Schema(
            {
                vol.Required(CONF_PLEX_PREFIX): _PREFIX_SELECTOR,
                vol.Required(CONF_LOCAL_PREFIX): _PREFIX_SELECTOR,
            }
        )
        if values is not None:
            schema = self.add_suggested_values_to_schema(schema, values)
        return self.async_show_form(
            step_id=step_id,
            data_schema=schema,
            errors=checked.errors,
            description_placeholders={
                **checked.placeholders,
                "libraries": library_folders(self._get_entry()),
            },
        )


@dataclass(slots=True)
class MappingCheck:
    """A checked path mapping form: the canonical mapping, or the errors by field."""

    mapping: PathMapping | None = None
    errors: dict[str, str] = field(default_factory=dict)
    placeholders: dict[str, str] = field(default_factory=dict)


def validate_path_mapping(
    entry: ConfigEntry, user_input: Mapping[str, Any], editing_id: str | None = None
) -> MappingCheck:
    """Check a path mapping typed into a form, as `engine.paths.validate_mapping` does.

    Each prefix is checked on its own field (`check_prefix`, the checks and messages of
    `validate_mapping`); a Plex prefix another mapping of the entry already has (Windows ones
    compared ignoring case, as resolving does) is refused on its field too. `editing_id` is the
    subentry being changed, which may keep its own prefix.
    """
    checked = MappingCheck()
    prefixes: dict[str, str] = {}
    for key, side, error, placeholder in (
        (CONF_PLEX_PREFIX, "Plex", "invalid_plex_prefix", "plex_error"),
        (CONF_LOCAL_PREFIX, "local", "invalid_local_prefix", "local_error"),
    ):
        try:
            prefixes[key] = check_prefix(str(user_input.get(key) or ""), side)
        except InvalidPathMapping as err:
            checked.errors[key] = error
            checked.placeholders[placeholder] = str(err)
    if checked.errors:
        return checked
    mapping = PathMapping(prefixes[CONF_PLEX_PREFIX], prefixes[CONF_LOCAL_PREFIX])
    try:
        # The mapper compares prefixes like resolving does: Windows ones ignore case.
        PathMapper([*entry_mappings(entry, editing_id), mapping])
    except InvalidPathMapping:
        checked.errors[CONF_PLEX_PREFIX] = "duplicate_prefix"
        checked.placeholders["plex_prefix"] = mapping.plex_prefix
        return checked
    checked.mapping = mapping
    return checked


def entry_mappings(entry: ConfigEntry, leave_out: str | None = None) -> list[PathMapping]:
    """Return the path mappings of an entry's subentries (but `leave_out`'s)."""
    return [
        PathMapping(subentry.data[CONF_PLEX_PREFIX], subentry.data[CONF_LOCAL_PREFIX])
        for subentry in entry.subentries.values()
        if subentry.subentry_type == SUBENTRY_PATH_MAPPING and subentry.subentry_id != leave_out
    ]


def library_folders(entry: ConfigEntry) -> str:
    """Return the entry's enabled libraries and their folders as Plex reports them (Markdown).

    Read from the loaded server's sections, as the last sync recorded them in the catalog;
    empty while the entry is not loaded.
    """
    loaded = entry.state is ConfigEntryState.LOADED
    server: ServerContext | None = entry.runtime_data.server if loaded else None
    if server is None:
        return ""
    enabled = set(entry.options.get(CONF_LIBRARIES, ()))
    return "\n".join(
        f"- {section.title}: {format_folders(section.locations)}"
        for section in server.sections
        if section.key in enabled and section.locations
    )


def format_folders(folders: Iterable[str]) -> str:
    """Return folders as Markdown code, comma-separated (backslashes shown as they are)."""
    return ", ".join(f"`{folder}`" for folder in folders)


def mapping_title(mapping: PathMapping) -> str:
    """Return the title of a path mapping subentry."""
    return f"{mapping.plex_prefix} → {mapping.local_prefix}"


def mapping_data(mapping: PathMapping) -> dict[str, str]:
    """Return the stored data of a path mapping subentry."""
    return {CONF_PLEX_PREFIX: mapping.plex_prefix, CONF_LOCAL_PREFIX: mapping.local_prefix}
