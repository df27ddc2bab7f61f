"""Mapping repairs per library, and their fix flow, through the emulator and the repairs API."""

from __future__ import annotations

from dataclasses import dataclass
import json
from pathlib import Path
import posixpath
import re
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.retrovue.config_flow import entry_mappings
from custom_components.retrovue.const import (
    CONF_LOCAL_PREFIX,
    CONF_PLEX_PREFIX,
    DOMAIN,
    SUBENTRY_PATH_MAPPING,
)
from custom_components.retrovue.engine.store import CatalogStore
from custom_components.retrovue.repairs import (
    ISSUE_LIBRARY_NOT_MAPPED,
    async_check_mappings,
    async_delete_entry_issues,
    issue_id,
)
from tests.emulator import EmuItem, EmuServer

from .conftest import async_wait_synced, entry_with_mapping

pytestmark = pytest.mark.usefixtures("enable_custom_integrations")

STRINGS = Path(__file__).parents[1] / "custom_components" / "retrovue" / "strings.json"


@dataclass(frozen=True, slots=True)
class _Library:
    """A library's REMOTE_ONLY share, as the coordinator reads it from the catalog."""

    section_key: str
    title: str
    locations: tuple[str, ...]
    remote_only: int
    playable: int


async def _libraries(entry: MockConfigEntry) -> list[_Library]:
    """Read each library's REMOTE_ONLY and playable movies and episodes from the catalog."""
    found = await entry.runtime_data.catalog.call(
        CatalogStore.query,
        """
        SELECT l.section_key, l.title, l.locations,
               COALESCE(SUM(i.state = 'REMOTE_ONLY'), 0),
               COALESCE(SUM(i.state IN ('ACTIVE', 'REMOTE_ONLY')), 0)
        FROM libraries AS l
        JOIN servers AS s ON s.id = l.server_id
        LEFT JOIN items AS i ON i.library_id = l.id AND i.kind IN ('movie', 'episode')
        WHERE s.machine_identifier = ?
        GROUP BY l.id ORDER BY l.section_key
        """,
        (entry.unique_id,),
    )
    return [
        _Library(str(key), str(title), tuple(json.loads(locations)), int(remote), int(playable))
        for key, title, locations, remote, playable in found
    ]


async def _check(hass: HomeAssistant, entry: MockConfigEntry) -> list[_Library]:
    """Check the entry's libraries as the coordinator does after a sync; return them."""
    libraries = await _libraries(entry)
    async_check_mappings(hass, entry, libraries, entry_mappings(entry))
    return libraries


def _issues(hass: HomeAssistant) -> set[str]:
    return {issue for domain, issue in ir.async_get(hass).issues if domain == DOMAIN}


def _movies(server: EmuServer) -> list[EmuItem]:
    return [item for item in server.items.values() if item.type == "movie"]


def _files(item: EmuItem) -> list[str]:
    return [part.file for media in item.media for part in media.parts]


def _remote_only(server: EmuServer, folder: str) -> tuple[int, int]:
    """Return (REMOTE_ONLY, playable) movies when only `folder` is mapped."""
    playable = [movie for movie in _movies(server) if _files(movie)]
    inside = [m for m in playable if any(f.startswith(folder + "/") for f in _files(m))]
    return len(playable) - len(inside), len(playable)


async def _setup_with_one_movie_mapped(
    hass: HomeAssistant, plex_server: EmuServer, mock_config_entry: MockConfigEntry
) -> tuple[MockConfigEntry, str]:
    """Set up the server with only one movie's folder mapped; return the entry and folder."""
    folder = posixpath.dirname(_files(_movies(plex_server)[0])[0])
    entry = entry_with_mapping(mock_config_entry, folder, "/mnt/one")
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await async_wait_synced(hass)
    return entry, folder


async def _start_fix(hass_client: ClientSessionGenerator, issue: str) -> dict[str, Any]:
    client = await hass_client()
    response = await client.post(
        "/api/repairs/issues/fix", json={"handler": DOMAIN, "issue_id": issue}
    )
    assert response.status == 200, await response.text()
    result: dict[str, Any] = await response.json()
    return result


async def _submit(
    hass_client: ClientSessionGenerator, flow_id: str, user_input: dict[str, Any]
) -> dict[str, Any]:
    client = await hass_client()
    response = await client.post(f"/api/repairs/issues/fix/{flow_id}", json=user_input)
    assert response.status == 200, await response.text()
    result: dict[str, Any] = await response.json()
    return result


def _field(result: dict[str, Any], name: str) -> dict[str, Any]:
    field: dict[str, Any] = next(f for f in result["data_schema"] if f["name"] == name)
    return field


async def test_a_mostly_unmapped_library_raises_a_repair_that_adds_its_mapping(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    plex_server: EmuServer,
    mock_config_entry: MockConfigEntry,
) -> None:
    assert await async_setup_component(hass, "repairs", {})
    entry, folder = await _setup_with_one_movie_mapped(hass, plex_server, mock_config_entry)
    # What an older version raised for the whole server, an issue of a library gone since,
    # and another entry's issue (left alone).
    for stale in (
        f"mapping_probably_wrong_{entry.entry_id}",
        issue_id(entry.entry_id, "9"),
        issue_id("other-entry", "1"),
    ):
        ir.async_create_issue(
            hass,
            DOMAIN,
            stale,
            is_fixable=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key=ISSUE_LIBRARY_NOT_MAPPED,
        )

    libraries = await _check(hass, entry)

    remote_only, playable = _remote_only(plex_server, folder)
    assert remote_only > playable / 2
    # The movie library is mapped (one movie's folder); the show library is not: all ACTIVE.
    assert [(lib.section_key, lib.remote_only) for lib in libraries] == [
        ("1", remote_only),
        ("2", 0),
    ]
    movies_issue = issue_id(entry.entry_id, "1")
    assert _issues(hass) == {movies_issue, issue_id("other-entry", "1")}
    issue = ir.async_get(hass).async_get_issue(DOMAIN, movies_issue)
    assert issue is not None
    assert issue.is_fixable
    assert issue.severity is ir.IssueSeverity.WARNING
    assert issue.translation_key == ISSUE_LIBRARY_NOT_MAPPED
    assert issue.translation_placeholders == {
        "server": entry.title,
        "library": "Movies",
        "remote_only": str(remote_only),
        "total": str(playable),
        "folders": "`/data/movies`",
    }

    result = await _start_fix(hass_client, movies_issue)
    assert result["type"] == "form"
    assert result["step_id"] == "map"
    assert result["errors"] is None or result["errors"] == {}
    assert result["description_placeholders"] == issue.translation_placeholders
    plex_field = _field(result, CONF_PLEX_PREFIX)
    assert plex_field["description"] == {"suggested_value": "/data/movies"}
    assert plex_field["selector"]["select"]["options"] == ["/data/movies"]
    assert plex_field["selector"]["select"]["custom_value"] is True
    flow_id = result["flow_id"]

    # Errors belong to their field, and what was typed is kept.
    typed = {CONF_PLEX_PREFIX: "/data/movies", CONF_LOCAL_PREFIX: "mnt/movies"}
    result = await _submit(hass_client, flow_id, typed)
    assert result["errors"] == {CONF_LOCAL_PREFIX: "invalid_local_prefix"}
    assert "must be an absolute path" in result["description_placeholders"]["local_error"]
    assert _field(result, CONF_LOCAL_PREFIX)["description"] == {"suggested_value": "mnt/movies"}
    result = await _submit(
        hass_client, flow_id, {CONF_PLEX_PREFIX: folder + "/", CONF_LOCAL_PREFIX: "/mnt/x"}
    )
    assert result["errors"] == {CONF_PLEX_PREFIX: "duplicate_prefix"}
    assert result["description_placeholders"]["plex_prefix"] == folder
    assert movies_issue in _issues(hass)

    result = await _submit(
        hass_client,
        flow_id,
        {CONF_PLEX_PREFIX: "/data/movies/", CONF_LOCAL_PREFIX: "/mnt/movies/"},
    )
    assert result["type"] == "create_entry"
    assert movies_issue not in _issues(hass)
    added = [
        sub
        for sub in entry.subentries.values()
        if sub.subentry_type == SUBENTRY_PATH_MAPPING and sub.unique_id == "/data/movies"
    ]
    assert len(added) == 1
    assert dict(added[0].data) == {
        CONF_PLEX_PREFIX: "/data/movies",
        CONF_LOCAL_PREFIX: "/mnt/movies",
    }
    assert added[0].title == "/data/movies → /mnt/movies"

    # The entry reloads and syncs: the movie library is restated, and stays clear.
    await async_wait_synced(hass)
    libraries = await _check(hass, entry)
    assert [(lib.section_key, lib.remote_only) for lib in libraries] == [("1", 0), ("2", 0)]
    assert _issues(hass) == {issue_id("other-entry", "1")}


async def test_the_repair_clears_when_the_share_drops(
    hass: HomeAssistant, plex_server: EmuServer, mock_config_entry: MockConfigEntry
) -> None:
    entry, _ = await _setup_with_one_movie_mapped(hass, plex_server, mock_config_entry)
    await _check(hass, entry)
    assert _issues(hass) == {issue_id(entry.entry_id, "1")}

    subentry = next(iter(entry.subentries.values()))
    hass.config_entries.async_update_subentry(
        entry, subentry, data={CONF_PLEX_PREFIX: "/data", CONF_LOCAL_PREFIX: "/mnt"}
    )
    await async_wait_synced(hass)
    libraries = await _check(hass, entry)
    assert [lib.remote_only for lib in libraries] == [0, 0]
    assert _issues(hass) == set()


async def test_the_issues_of_a_removed_entry(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    plex_server: EmuServer,
    mock_config_entry: MockConfigEntry,
) -> None:
    assert await async_setup_component(hass, "repairs", {})
    entry, _ = await _setup_with_one_movie_mapped(hass, plex_server, mock_config_entry)
    await _check(hass, entry)
    movies_issue = issue_id(entry.entry_id, "1")
    result = await _start_fix(hass_client, movies_issue)
    assert result["type"] == "form"

    assert await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    result = await _submit(
        hass_client,
        result["flow_id"],
        {CONF_PLEX_PREFIX: "/data/movies", CONF_LOCAL_PREFIX: "/mnt/movies"},
    )
    assert result["type"] == "abort"
    assert result["reason"] == "entry_not_found"

    async_delete_entry_issues(hass, entry.entry_id)
    assert _issues(hass) == set()


async def test_a_fix_for_an_entry_not_loaded_sets_it_up(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    plex_server: EmuServer,
    mock_config_entry: MockConfigEntry,
) -> None:
    assert await async_setup_component(hass, "repairs", {})
    entry, _ = await _setup_with_one_movie_mapped(hass, plex_server, mock_config_entry)
    await _check(hass, entry)
    result = await _start_fix(hass_client, issue_id(entry.entry_id, "1"))
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert entry.state is ConfigEntryState.NOT_LOADED

    result = await _submit(
        hass_client,
        result["flow_id"],
        {CONF_PLEX_PREFIX: "/data/movies", CONF_LOCAL_PREFIX: "/mnt/movies"},
    )
    assert result["type"] == "create_entry"
    # No update listener reloads an entry that is not loaded: the fix sets it up itself.
    await async_wait_synced(hass)
    assert _entry_state(entry) is ConfigEntryState.LOADED
    libraries = await _check(hass, entry)
    assert [lib.remote_only for lib in libraries] == [0, 0]
    assert _issues(hass) == set()


def _entry_state(entry: MockConfigEntry) -> ConfigEntryState:
    """Read the state afresh (mypy would keep an earlier assert's narrowing)."""
    state: ConfigEntryState = entry.state
    return state


def test_the_repair_strings_name_what_the_flow_provides() -> None:
    """Every placeholder of the issue and its fix flow is one the code fills in."""
    strings = json.loads(STRINGS.read_text(encoding="utf-8"))
    issue = strings["issues"][ISSUE_LIBRARY_NOT_MAPPED]
    issue_placeholders = {"server", "library", "remote_only", "total", "folders"}
    assert set(re.findall(r"{(\w+)}", issue["title"])) <= issue_placeholders
    step = issue["fix_flow"]["step"]["map"]
    assert set(re.findall(r"{(\w+)}", step["description"])) <= issue_placeholders
    assert set(step["data"]) == {CONF_PLEX_PREFIX, CONF_LOCAL_PREFIX}
    errors = issue["fix_flow"]["error"]
    mapping_errors = strings["config_subentries"][SUBENTRY_PATH_MAPPING]["error"]
    for key, placeholder in (
        ("invalid_plex_prefix", "plex_error"),
        ("invalid_local_prefix", "local_error"),
        ("duplicate_prefix", "plex_prefix"),
    ):
        assert re.findall(r"{(\w+)}", errors[key]) == [placeholder]
        assert re.findall(r"{(\w+)}", mapping_errors[key]) == [placeholder]
    assert "entry_not_found" in issue["fix_flow"]["abort"]
    for step_id in ("user", "reconfigure"):
        description = strings["config_subentries"][SUBENTRY_PATH_MAPPING]["step"][step_id]
        assert re.findall(r"{(\w+)}", description["description"]) == ["libraries"]
