"""Retrovue actions and diagnostics through a set-up integration and the emulator."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import SOURCE_REAUTH
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import (
    HomeAssistantError,
    ServiceValidationError,
    Unauthorized,
    UnknownUser,
)
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, MockUser
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
import voluptuous as vol

from custom_components.retrovue.const import (
    DOMAIN,
)
from custom_components.retrovue.engine.store import SCHEMA_VERSION, CatalogStore
from custom_components.retrovue.shared import get_catalog
from tests.catalog_probe import on_catalog_thread
from tests.emulator import EmuServer, Fault, FaultKind

from .conftest import HA_TOKEN, async_wait_synced, entry_with_mapping

pytestmark = pytest.mark.usefixtures("enable_custom_integrations")


async def _call(hass: HomeAssistant, service: str, data: dict[str, object]) -> dict[str, object]:
    response = await hass.services.async_call(
        DOMAIN, service, data, blocking=True, return_response=True
    )
    assert response is not None
    return dict(response)


async def test_sync_library_returns_the_summary(
    hass: HomeAssistant, init_integration: MockConfigEntry, plex_server: EmuServer
) -> None:
    movie = next(item for item in plex_server.items.values() if item.type == "movie")
    plex_server.change_item(movie.rating_key, title="Renamed")

    response = await _call(
        hass, "sync_library", {"config_entry_id": init_integration.entry_id, "library": "movies"}
    )

    libraries = response["libraries"]
    assert isinstance(libraries, list)
    assert len(libraries) == 1
    summary = libraries[0]
    assert summary["library_title"] == "Movies"
    assert summary["status"] == "ok"
    assert summary["changed"] == 1
    assert summary["deep"] is False
    assert isinstance(summary["finished_at"], str)
    assert "T" in summary["finished_at"]


async def test_sync_library_deep_and_all_libraries(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    response = await _call(
        hass, "sync_library", {"config_entry_id": init_integration.entry_id, "deep": True}
    )
    libraries = response["libraries"]
    assert isinstance(libraries, list)
    assert [(s["library_key"], s["deep"], s["changed"]) for s in libraries] == [
        ("1", True, 0),
        ("2", True, 0),
    ]


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"config_entry_id": "nope"}, "entry_not_found"),
        ({"library": "Music"}, "unknown_library"),
    ],
)
async def test_sync_library_validation_errors(
    hass: HomeAssistant, init_integration: MockConfigEntry, data: dict[str, str], key: str
) -> None:
    payload = {"config_entry_id": init_integration.entry_id, **data}
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(DOMAIN, "sync_library", payload, blocking=True)
    assert caught.value.translation_key == key
    assert caught.value.translation_domain == DOMAIN


async def test_sync_library_on_an_unloaded_entry(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    await hass.config_entries.async_unload(init_integration.entry_id)
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(
            DOMAIN, "sync_library", {"config_entry_id": init_integration.entry_id}, blocking=True
        )
    assert caught.value.translation_key == "entry_not_loaded"


async def test_sync_library_failures_are_translated(
    hass: HomeAssistant, init_integration: MockConfigEntry, plex_server: EmuServer
) -> None:
    plex_server.faults.add(Fault(FaultKind.STATUS_500, endpoint="root", times=None))
    with pytest.raises(HomeAssistantError) as caught:
        await hass.services.async_call(
            DOMAIN, "sync_library", {"config_entry_id": init_integration.entry_id}, blocking=True
        )
    assert caught.value.translation_key == "cannot_connect"

    plex_server.faults.clear()
    plex_server.faults.add(Fault(FaultKind.STATUS_401, endpoint="section_all", times=None))
    with pytest.raises(HomeAssistantError) as caught:
        await hass.services.async_call(
            DOMAIN, "sync_library", {"config_entry_id": init_integration.entry_id}, blocking=True
        )
    assert caught.value.translation_key == "invalid_auth"
    flows = hass.config_entries.flow.async_progress()
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]


async def test_find_items_with_guids_state_and_local_path(
    hass: HomeAssistant,
    plex_server: EmuServer,
    mock_config_entry: MockConfigEntry,
) -> None:
    entry = entry_with_mapping(mock_config_entry, "/data/movies", "/mnt/films")
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await async_wait_synced(hass)
    movie = next(item for item in plex_server.items.values() if item.type == "movie")

    response = await _call(hass, "find_items", {"title": movie.title[1:5], "kind": "movie"})

    items = response["items"]
    assert isinstance(items, list)
    found = next(item for item in items if item["rating_key"] == str(movie.rating_key))
    assert found["title"] == movie.title
    assert found["state"] == "ACTIVE"
    assert found["server"] == entry.title
    plex_path = movie.media[0].parts[0].file
    assert found["files"][0] == {
        "plex_path": plex_path,
        "local_path": "/mnt/films" + plex_path.removeprefix("/data/movies"),
    }
    assert found["guids"]
    assert response["truncated"] is False

    none = await _call(hass, "find_items", {"title": "no such title 100%_"})
    assert none["items"] == []

    year = await _call(hass, "find_items", {"title": movie.title, "year": 1801})
    assert year["items"] == []


async def test_find_items_without_a_catalog(hass: HomeAssistant) -> None:
    await _setup_domain(hass)
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(
            DOMAIN, "find_items", {"title": "x"}, blocking=True, return_response=True
        )
    assert caught.value.translation_key == "no_catalog"


async def _setup_domain(hass: HomeAssistant) -> None:
    assert await async_setup_component(hass, DOMAIN, {})


async def test_purge_deleted(
    hass: HomeAssistant, init_integration: MockConfigEntry, plex_server: EmuServer
) -> None:
    catalog = get_catalog(hass)
    assert catalog is not None
    response = await _call(hass, "purge_deleted", {"older_than_days": 0})
    assert response == {"purged": 0}

    def mark_deleted(store: CatalogStore) -> None:
        with store.transaction() as conn:
            conn.execute(
                "UPDATE items SET state = 'DELETED', deleted_at = 1 WHERE kind = 'movie' "
                "AND rating_key = (SELECT MIN(rating_key) FROM items WHERE kind = 'movie')"
            )

    await on_catalog_thread(catalog, mark_deleted)
    assert await _call(hass, "purge_deleted", {"older_than_days": 10}) == {"purged": 1}
    # The sensors read the catalog again: one movie fewer (it was deleted, then purged).
    movies = sum(1 for item in plex_server.items.values() if item.type == "movie")
    entity_id = er.async_get(hass).async_get_entity_id(
        "sensor", DOMAIN, f"{init_integration.unique_id}_library_1_active"
    )
    assert entity_id is not None
    state = hass.states.get(entity_id)
    assert state is not None
    assert state.state == str(movies - 1)


async def test_purge_deleted_is_for_administrators(
    hass: HomeAssistant, init_integration: MockConfigEntry, hass_read_only_user: MockUser
) -> None:
    with pytest.raises(Unauthorized):
        await hass.services.async_call(
            DOMAIN,
            "purge_deleted",
            {},
            blocking=True,
            return_response=True,
            context=Context(user_id=hass_read_only_user.id),
        )
    with pytest.raises(UnknownUser):
        await hass.services.async_call(
            DOMAIN,
            "purge_deleted",
            {},
            blocking=True,
            return_response=True,
            context=Context(user_id="no-such-user"),
        )
    admin = await hass.auth.async_create_user("Admin", group_ids=["system-admin"])
    response = await hass.services.async_call(
        DOMAIN,
        "purge_deleted",
        {},
        blocking=True,
        return_response=True,
        context=Context(user_id=admin.id),
    )
    assert response == {"purged": 0}


async def test_diagnostics_redact_the_token(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    init_integration: MockConfigEntry,
    plex_server: EmuServer,
) -> None:
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, init_integration)
    assert HA_TOKEN not in str(diagnostics)
    assert diagnostics["entry"]["data"]["token"] == "**REDACTED**"
    catalog = diagnostics["catalog"]
    assert catalog["schema_version"] == SCHEMA_VERSION
    counts = {row["section_key"]: row["active"] for row in catalog["libraries"]}
    assert counts == {
        "1": sum(1 for i in plex_server.items.values() if i.type == "movie"),
        "2": sum(1 for i in plex_server.items.values() if i.type == "episode"),
    }
    assert [run["status"] for run in catalog["last_runs"]] == ["ok", "ok"]
    assert diagnostics["server"]["machine_identifier"] == plex_server.machine_identifier


def _list(value: object) -> list[dict[str, Any]]:
    assert isinstance(value, list)
    return value


async def test_find_items_lists_what_is_missing_page_by_page(
    hass: HomeAssistant, init_integration: MockConfigEntry, plex_server: EmuServer
) -> None:
    movies = sorted(
        (item for item in plex_server.items.values() if item.type == "movie"),
        key=lambda item: item.rating_key,
    )
    for movie in movies[:3]:
        plex_server.remove_item(movie.rating_key)
    await hass.services.async_call(
        DOMAIN, "sync_library", {"config_entry_id": init_integration.entry_id}, blocking=True
    )
    await async_wait_synced(hass)

    first = await _call(hass, "find_items", {"state": "missing", "limit": 2})
    rest = await _call(hass, "find_items", {"state": "missing", "limit": 2, "offset": 2})
    assert first["truncated"] is True
    assert rest["truncated"] is False
    found = [item["rating_key"] for item in [*_list(first["items"]), *_list(rest["items"])]]
    assert sorted(found) == sorted(str(movie.rating_key) for movie in movies[:3])
    assert {item["state"] for item in _list(first["items"])} == {"MISSING"}

    by_library = await _call(
        hass,
        "find_items",
        {"library": "tv shows", "config_entry_id": init_integration.entry_id, "limit": 500},
    )
    kinds = {item["kind"] for item in _list(by_library["items"])}
    assert kinds == {"show", "season", "episode"}
    none = await _call(hass, "find_items", {"state": "missing", "library": "TV Shows"})
    assert none["items"] == []


async def test_find_items_refuses_an_unknown_server_or_state(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    with pytest.raises(ServiceValidationError):
        await _call(hass, "find_items", {"config_entry_id": "nope"})
    with pytest.raises(vol.Invalid):
        await _call(hass, "find_items", {"state": "gone"})


async def test_find_duplicates_within_a_server(
    hass: HomeAssistant, init_integration: MockConfigEntry, plex_server: EmuServer
) -> None:
    response = await _call(hass, "find_duplicates", {})
    assert response == {"total": 0, "groups": []}

    movie, imdb = next(
        (movie, guid)
        for movie in sorted(plex_server.items.values(), key=lambda item: item.rating_key)
        if movie.type == "movie"
        for guid in movie.ext_guids
        if guid.startswith("imdb://")
    )
    plex_server.add_movie(
        movie.section_key, movie.title, movie.year, file="/data/movies/b/b.mkv", guids=(imdb,)
    )
    await hass.services.async_call(
        DOMAIN, "sync_library", {"config_entry_id": init_integration.entry_id}, blocking=True
    )
    response = await _call(hass, "find_duplicates", {"scope": "within", "kind": "movie"})
    assert response["total"] == 1
    (group,) = _list(response["groups"])
    assert imdb in group["ids"]
    assert len(group["items"]) == 2
    assert (await _call(hass, "find_duplicates", {"scope": "across"}))["total"] == 0


async def test_find_actions_answer_an_unreadable_catalog_with_an_error(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    catalog = get_catalog(hass)
    assert catalog is not None
    await catalog.close()
    for service in ("find_items", "find_duplicates", "purge_deleted"):
        with pytest.raises(HomeAssistantError) as caught:
            await _call(hass, service, {})
        assert caught.value.translation_key == "catalog_read_error", service
