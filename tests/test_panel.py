"""The Retrovue panel: its registration, websocket commands and CSV export, through a real hass."""

from __future__ import annotations

import csv
import io
from typing import Any

from homeassistant.components import frontend
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import (
    ClientSessionGenerator,
    WebSocketGenerator,
)

from custom_components.retrovue.const import DOMAIN
from custom_components.retrovue.panel import EXPORT_COLUMNS, PANEL_URL_PATH
from tests.emulator import EmuServer

from .conftest import async_wait_synced, entry_with_mapping

pytestmark = pytest.mark.usefixtures("enable_custom_integrations")


async def _ws(client: Any, message: dict[str, Any]) -> dict[str, Any]:
    await client.send_json_auto_id(message)
    return dict(await client.receive_json())


async def _result(client: Any, message: dict[str, Any]) -> Any:
    answer = await _ws(client, message)
    assert answer["success"], answer
    return answer["result"]


def _movies(plex_server: EmuServer) -> list[Any]:
    return sorted(
        (item for item in plex_server.items.values() if item.type == "movie"),
        key=lambda item: item.rating_key,
    )


async def _resync(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    await hass.services.async_call(
        DOMAIN, "sync_library", {"config_entry_id": entry.entry_id}, blocking=True
    )
    await async_wait_synced(hass)


async def _library_ids(client: Any) -> dict[str, int]:
    result = await _result(client, {"type": "retrovue/libraries"})
    return {library["title"]: library["id"] for library in result["libraries"]}


async def test_panel_is_registered_for_admins_and_removed_with_the_last_server(
    hass: HomeAssistant, init_integration: MockConfigEntry, hass_client: ClientSessionGenerator
) -> None:
    panel = hass.data[frontend.DATA_PANELS][PANEL_URL_PATH]
    assert panel.require_admin is True
    assert panel.sidebar_title == "Retrovue"
    assert panel.config is not None
    config = panel.config["_panel_custom"]
    assert config["name"] == "retrovue-panel"
    assert config["module_url"].startswith("/retrovue_static/retrovue-panel.js?v=")

    client = await hass_client()
    response = await client.get(config["module_url"])
    assert response.status == 200
    assert "customElements.define" in await response.text()

    # A reload keeps it in the sidebar; removing the last server takes it out.
    assert await hass.config_entries.async_reload(init_integration.entry_id)
    await async_wait_synced(hass)
    assert PANEL_URL_PATH in hass.data[frontend.DATA_PANELS]
    await hass.config_entries.async_remove(init_integration.entry_id)
    await hass.async_block_till_done()
    assert PANEL_URL_PATH not in hass.data[frontend.DATA_PANELS]


async def test_libraries_command_counts_what_each_library_holds(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    plex_server: EmuServer,
    hass_ws_client: WebSocketGenerator,
) -> None:
    client = await hass_ws_client(hass)
    result = await _result(client, {"type": "retrovue/libraries"})
    libraries = {library["title"]: library for library in result["libraries"]}
    assert set(libraries) == {"Movies", "TV Shows"}
    movies, shows = libraries["Movies"], libraries["TV Shows"]
    assert movies["unit"] == "movies"
    assert shows["unit"] == "episodes"
    assert movies["counts"]["active"] == len(_movies(plex_server))
    episodes = [item for item in plex_server.items.values() if item.type == "episode"]
    assert shows["counts"]["active"] == len(episodes)
    assert shows["counts"]["shows"] == sum(
        1 for item in plex_server.items.values() if item.type == "show"
    )
    assert movies["machine_identifier"] == plex_server.machine_identifier
    assert movies["server"] == "Living Room Plex"
    assert movies["locations"]
    assert isinstance(movies["last_synced_at"], int)


async def test_items_pages_filters_sorts_and_finds_what_went_missing(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    plex_server: EmuServer,
    hass_ws_client: WebSocketGenerator,
) -> None:
    client = await hass_ws_client(hass)
    ids = await _library_ids(client)
    movies = _movies(plex_server)

    first = await _result(
        client, {"type": "retrovue/items", "library_ids": [ids["Movies"]], "limit": 5}
    )
    assert first["total"] == len(movies)
    assert first["offset"] == 0
    assert len(first["items"]) == 5
    second = await _result(
        client,
        {"type": "retrovue/items", "library_ids": [ids["Movies"]], "limit": 5, "offset": 5},
    )
    titles = [row["title"] for row in first["items"] + second["items"]]
    assert titles == sorted(titles, key=str.casefold)
    assert not {row["id"] for row in first["items"]} & {row["id"] for row in second["items"]}

    newest = await _result(
        client,
        {
            "type": "retrovue/items",
            "library_ids": [ids["Movies"]],
            "sort": "year",
            "descending": True,
            "limit": 100,
        },
    )
    years = [row["year"] for row in newest["items"] if row["year"] is not None]
    assert years == sorted(years, reverse=True)

    gone = movies[:2]
    for movie in gone:
        plex_server.remove_item(movie.rating_key)
    await _resync(hass, init_integration)

    missing = await _result(client, {"type": "retrovue/items", "states": ["missing"], "limit": 100})
    assert missing["total"] == 2
    assert {row["rating_key"] for row in missing["items"]} == {
        str(movie.rating_key) for movie in gone
    }
    row = missing["items"][0]
    assert row["state"] == "MISSING"
    assert row["since"] == row["missing_since"]
    assert row["plex_path"]
    assert row["kind"] == "movie"

    # Any case, also beyond ASCII ("amélie" finds "Amélie").
    search = await _result(
        client, {"type": "retrovue/items", "search": gone[0].title.lower(), "kinds": ["movie"]}
    )
    assert str(gone[0].rating_key) in {row["rating_key"] for row in search["items"]}


@pytest.mark.parametrize(
    "message",
    [
        {"type": "retrovue/items", "limit": 0},
        {"type": "retrovue/items", "limit": 501},
        {"type": "retrovue/items", "offset": -1},
        {"type": "retrovue/items", "states": ["GONE"]},
        {"type": "retrovue/items", "kinds": ["album"]},
        {"type": "retrovue/items", "sort": "rating_key; DROP TABLE items"},
        {"type": "retrovue/items", "library_ids": "1"},
        {"type": "retrovue/item"},
        {"type": "retrovue/duplicates", "scope": "everywhere"},
        {"type": "retrovue/missing_folders", "limit": 1000},
    ],
)
async def test_commands_refuse_invalid_messages(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
    message: dict[str, Any],
) -> None:
    client = await hass_ws_client(hass)
    answer = await _ws(client, message)
    assert answer["success"] is False
    assert answer["error"]["code"] == "invalid_format"


@pytest.mark.parametrize(
    "message",
    [
        {"type": "retrovue/libraries"},
        {"type": "retrovue/items"},
        {"type": "retrovue/item", "item_id": 1},
        {"type": "retrovue/missing_folders"},
        {"type": "retrovue/duplicates"},
    ],
)
async def test_commands_are_for_administrators_only(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
    hass_read_only_access_token: str,
    message: dict[str, Any],
) -> None:
    client = await hass_ws_client(hass, hass_read_only_access_token)
    answer = await _ws(client, message)
    assert answer["success"] is False
    assert answer["error"]["code"] == "unauthorized"


async def test_commands_without_a_server_say_so(
    hass: HomeAssistant, hass_ws_client: WebSocketGenerator
) -> None:
    from homeassistant.setup import async_setup_component

    assert await async_setup_component(hass, DOMAIN, {})
    client = await hass_ws_client(hass)
    answer = await _ws(client, {"type": "retrovue/items"})
    assert answer["success"] is False
    assert answer["error"]["code"] == "not_loaded"


async def test_item_shows_guids_parts_history_and_a_plex_web_link(
    hass: HomeAssistant,
    plex_server: EmuServer,
    mock_config_entry: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
) -> None:
    entry = entry_with_mapping(mock_config_entry, "/data/movies", "/mnt/films")
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await async_wait_synced(hass)
    client = await hass_ws_client(hass)
    movie = _movies(plex_server)[0]
    taken = plex_server.take_item(movie.rating_key)
    await _resync(hass, entry)
    plex_server.restore_items(taken)
    await _resync(hass, entry)

    found = await _result(
        client, {"type": "retrovue/items", "search": movie.media[0].parts[0].file}
    )
    (row,) = [row for row in found["items"] if row["rating_key"] == str(movie.rating_key)]
    detail = await _result(client, {"type": "retrovue/item", "item_id": row["id"]})

    assert detail["title"] == movie.title
    assert detail["state"] == "ACTIVE"
    assert detail["guids"]
    plex_path = movie.media[0].parts[0].file
    assert detail["parts"][0]["plex_path"] == plex_path
    assert detail["parts"][0]["local_path"] == "/mnt/films" + plex_path.removeprefix("/data/movies")
    assert [(step["previous"], step["state"]) for step in detail["history"]] == [
        ("ACTIVE", "MISSING"),
        ("MISSING", "ACTIVE"),
    ]
    assert detail["plex_web_url"].endswith(
        f"/web/index.html#!/server/{plex_server.machine_identifier}"
        f"/details?key=%2Flibrary%2Fmetadata%2F{movie.rating_key}"
    )
    assert "server_url" not in detail
    assert "token" not in str(detail).lower()

    unknown = await _ws(client, {"type": "retrovue/item", "item_id": 10**9})
    assert unknown["error"]["code"] == "not_found"


async def test_missing_folders_say_where_the_files_were(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    plex_server: EmuServer,
    hass_ws_client: WebSocketGenerator,
) -> None:
    show = next(item for item in plex_server.items.values() if item.type == "show")
    episodes = list(plex_server.leaves(show))
    plex_server.remove_item(show.rating_key)
    await _resync(hass, init_integration)

    client = await hass_ws_client(hass)
    result = await _result(client, {"type": "retrovue/missing_folders"})
    (folder,) = result["folders"]
    files = [part.file for episode in episodes for media in episode.media for part in media.parts]
    assert folder["items"] == len(episodes)
    assert folder["files"] == len(set(files))
    assert all(file.startswith(folder["path"] + "/") for file in files)
    assert folder["library"] == "TV Shows"
    assert folder["sample_titles"]


async def test_duplicates_within_a_server(
    hass: HomeAssistant,
    plex_server: EmuServer,
    mock_config_entry: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
) -> None:
    movie, imdb = next(
        (movie, guid)
        for movie in _movies(plex_server)
        for guid in movie.ext_guids
        if guid.startswith("imdb://")
    )
    copy = plex_server.add_movie(
        movie.section_key,
        movie.title,
        movie.year,
        file="/data/movies/Copy/copy.mkv",
        guids=(imdb,),
    )
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await async_wait_synced(hass)

    client = await hass_ws_client(hass)
    result = await _result(client, {"type": "retrovue/duplicates", "scope": "within"})
    assert result["total"] == 1
    (group,) = result["groups"]
    assert imdb in group["ids"]
    assert {item["rating_key"] for item in group["items"]} == {
        str(movie.rating_key),
        str(copy.rating_key),
    }
    across = await _result(client, {"type": "retrovue/duplicates", "scope": "across"})
    assert across["total"] == 0


async def _signed(client: Any, path: str) -> str:
    return str((await _result(client, {"type": "auth/sign_path", "path": path}))["path"])


async def test_csv_export_of_the_current_filter(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    plex_server: EmuServer,
    hass_ws_client: WebSocketGenerator,
    hass_client: ClientSessionGenerator,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    movies = _movies(plex_server)
    plex_server.change_item(movies[0].rating_key, title="=HYPERLINK(1)")
    plex_server.remove_item(movies[1].rating_key)
    await _resync(hass, init_integration)

    client = await hass_client()
    response = await client.get("/api/retrovue/export.csv?kinds=movie&sort=title")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(await response.text())))
    assert tuple(rows[0]) == EXPORT_COLUMNS
    assert len(rows) == len(movies)
    assert "'=HYPERLINK(1)" in {row["title"] for row in rows}
    (gone,) = [row for row in rows if row["state"] == "MISSING"]
    assert gone["rating_key"] == str(movies[1].rating_key)
    assert "T" in gone["missing_since"]

    # What the panel does: a signed path the browser downloads without a header.
    ws = await hass_ws_client(hass)
    signed = await _signed(ws, "/api/retrovue/export.csv?states=MISSING")
    download = await (await hass_client_no_auth()).get(signed)
    assert download.status == 200
    missing = list(csv.DictReader(io.StringIO(await download.text())))
    assert [row["rating_key"] for row in missing] == [str(movies[1].rating_key)]

    invalid = await client.get("/api/retrovue/export.csv?states=GONE")
    assert invalid.status == 400
    unsigned = await (await hass_client_no_auth()).get("/api/retrovue/export.csv")
    assert unsigned.status == 401


async def test_csv_export_is_for_administrators_only(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hass_client: ClientSessionGenerator,
    hass_read_only_access_token: str,
) -> None:
    client = await hass_client(hass_read_only_access_token)
    response = await client.get("/api/retrovue/export.csv")
    assert response.status == 403
