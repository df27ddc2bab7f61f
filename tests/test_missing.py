"""What went missing: folders in the missing event, and the repair when a share drops."""

from __future__ import annotations

from typing import Any

from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.retrovue.const import DOMAIN, EVENT_ITEMS_MISSING
from custom_components.retrovue.repairs import ISSUE_FILES_WENT_MISSING
from tests.emulator import EmuServer, generate_server

from .conftest import HA_TOKEN, async_wait_synced

pytestmark = pytest.mark.usefixtures("enable_custom_integrations")


@pytest.fixture
def plex_server() -> EmuServer:
    """Return a TV library with enough shows that losing one is a small share of it."""
    return generate_server(
        seed=5,
        movies=4,
        shows=12,
        seasons_per_show=(1, 2),
        episodes_per_season=(3, 5),
        token=HA_TOKEN,
        friendly_name="Living Room Plex",
    )


def _missing_events(hass: HomeAssistant) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []

    @callback
    def _record(event: Event) -> None:
        events.append(dict(event.data))

    hass.bus.async_listen(EVENT_ITEMS_MISSING, _record)
    return events


async def _sync(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    await hass.services.async_call(
        DOMAIN, "sync_library", {"config_entry_id": entry.entry_id}, blocking=True
    )
    await async_wait_synced(hass)


def _shows(plex_server: EmuServer) -> list[Any]:
    return sorted(
        (item for item in plex_server.items.values() if item.type == "show"),
        key=lambda item: item.rating_key,
    )


def _issue_id(entry: MockConfigEntry, plex_server: EmuServer) -> str:
    section = next(key for key, s in plex_server.sections.items() if s.type == "show")
    return f"{ISSUE_FILES_WENT_MISSING}_{entry.entry_id}_{section}"


async def test_missing_event_names_the_folder_and_one_show_raises_no_repair(
    hass: HomeAssistant, init_integration: MockConfigEntry, plex_server: EmuServer
) -> None:
    events = _missing_events(hass)
    show = _shows(plex_server)[0]
    episodes = list(plex_server.leaves(show))
    plex_server.remove_item(show.rating_key)
    await _sync(hass, init_integration)

    (event,) = events
    assert event["library"] == "TV Shows"
    (folder,) = event["folders"]
    files = [p.file for episode in episodes for m in episode.media for p in m.parts]
    assert all(file.startswith(folder["path"] + "/") for file in files)
    assert folder["items"] == len(episodes)
    assert folder["since"].endswith("+00:00")
    registry = ir.async_get(hass)
    assert registry.async_get_issue(DOMAIN, _issue_id(init_integration, plex_server)) is None


async def test_a_dropped_share_raises_a_repair_that_clears_when_the_files_return(
    hass: HomeAssistant, init_integration: MockConfigEntry, plex_server: EmuServer
) -> None:
    shows = _shows(plex_server)
    taken = [plex_server.take_item(show.rating_key) for show in shows[: len(shows) // 2]]
    await _sync(hass, init_integration)

    registry = ir.async_get(hass)
    issue = registry.async_get_issue(DOMAIN, _issue_id(init_integration, plex_server))
    assert issue is not None
    assert issue.translation_key == ISSUE_FILES_WENT_MISSING
    placeholders = issue.translation_placeholders or {}
    assert placeholders["library"] == "TV Shows"
    gone = sum(1 for items in taken for item in items if item.type == "episode")
    assert placeholders["count"] == str(gone)
    assert "/data/tv" in placeholders["folders"]

    # Another sync with nothing back keeps it; the files coming back clears it.
    await _sync(hass, init_integration)
    assert registry.async_get_issue(DOMAIN, _issue_id(init_integration, plex_server))
    for items in taken:
        plex_server.restore_items(items)
    await _sync(hass, init_integration)
    assert registry.async_get_issue(DOMAIN, _issue_id(init_integration, plex_server)) is None
