"""Find Plex Media Servers with GDM and offer them as discovered servers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from homeassistant.config_entries import SOURCE_INTEGRATION_DISCOVERY
from homeassistant.core import HassJob, HomeAssistant, callback
from homeassistant.helpers import discovery_flow
from homeassistant.helpers.event import async_call_later, async_track_time_interval
from homeassistant.util.hass_dict import HassKey

from .const import DOMAIN, LOGGER
from .engine.plex.gdm import GDM_ADDRESS, GDM_PORT, GdmError, GdmServer, async_search

# Where searches go: GDM's multicast group (tests point this at a responder on loopback).
GDM_TARGET: tuple[str, int] = (GDM_ADDRESS, GDM_PORT)
# Seconds a search collects answers: in the background, and while a form waits for it.
SEARCH_WINDOW: float = 2.0
FORM_SEARCH_WINDOW: float = 1.0
SEARCH_INTERVAL: Final = timedelta(minutes=15)
# The first search waits for Home Assistant's start to settle.
FIRST_SEARCH_DELAY: Final = timedelta(seconds=30)

# The data of a GDM discovery flow.
ATTR_MACHINE_IDENTIFIER: Final = "machine_identifier"
ATTR_NAME: Final = "name"
ATTR_URL: Final = "url"


@dataclass(slots=True)
class GdmResults:
    """The servers the latest GDM search found, and when (the event loop's clock)."""

    servers: list[GdmServer] = field(default_factory=list)
    searched_at: float | None = None


DATA_GDM: HassKey[GdmResults] = HassKey(f"{DOMAIN}_gdm")


async def async_search_servers(hass: HomeAssistant, window: float | None = None) -> list[GdmServer]:
    """Search the network now (`SEARCH_WINDOW` seconds by default); remember what answered."""
    try:
        servers = await async_search(
            target=GDM_TARGET, window=SEARCH_WINDOW if window is None else window
        )
    except GdmError as err:
        LOGGER.debug("GDM search not possible: %s", err)
        servers = []
    results = hass.data.setdefault(DATA_GDM, GdmResults())
    results.servers = servers
    results.searched_at = hass.loop.time()
    LOGGER.debug("GDM search found %d Plex Media Server(s)", len(servers))
    return servers


async def async_known_servers(hass: HomeAssistant) -> list[GdmServer]:
    """Return what the latest search found, searching briefly first if none ran lately."""
    results = hass.data.get(DATA_GDM)
    if (
        results is not None
        and results.searched_at is not None
        and hass.loop.time() - results.searched_at < SEARCH_INTERVAL.total_seconds()
    ):
        return results.servers
    return await async_search_servers(hass, FORM_SEARCH_WINDOW)


def discovery_data(server: GdmServer) -> dict[str, Any]:
    """Return the data a GDM discovery flow starts with."""
    return {
        ATTR_MACHINE_IDENTIFIER: server.machine_identifier,
        ATTR_NAME: server.name,
        ATTR_URL: server.url,
    }


async def async_offer_servers(hass: HomeAssistant) -> None:
    """Search the network and offer every server found as a discovered server.

    The flow of a server that is already configured only brings that entry's plain-IP URL up
    to date and ends (see the config flow), so servers are not filtered here.
    """
    for server in await async_search_servers(hass):
        discovery_flow.async_create_flow(
            hass,
            DOMAIN,
            context={"source": SOURCE_INTEGRATION_DISCOVERY},
            data=discovery_data(server),
            discovery_key=discovery_flow.DiscoveryKey(
                domain=DOMAIN, key=server.machine_identifier, version=1
            ),
        )


@callback
def async_setup_discovery(hass: HomeAssistant) -> None:
    """Search with GDM shortly after start and every 15 minutes until Home Assistant stops."""

    @callback
    def _async_start_search(_now: datetime) -> None:
        # A background task: Home Assistant cancels it when it stops.
        hass.async_create_background_task(async_offer_servers(hass), f"{DOMAIN} GDM search")

    async_call_later(
        hass,
        FIRST_SEARCH_DELAY,
        HassJob(_async_start_search, f"{DOMAIN} first GDM search", cancel_on_shutdown=True),
    )
    async_track_time_interval(
        hass,
        _async_start_search,
        SEARCH_INTERVAL,
        name=f"{DOMAIN} GDM search",
        cancel_on_shutdown=True,
    )
