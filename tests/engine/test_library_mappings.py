"""Mappings apply per library: real syncs and refreshes against the emulator over real HTTP.

The generated server has a movie library "1" at /data/movies and a show library "2" at
/data/tv. A mapping covers a library when its Plex prefix is one of the library's folders, a
folder above one or a folder inside one (`policy.library_mappings`).
"""

from __future__ import annotations

import posixpath

from custom_components.retrovue.engine.paths import PathMapping
from custom_components.retrovue.engine.plex import PlexClient
from custom_components.retrovue.engine.states import RunStatus
from custom_components.retrovue.engine.store import Catalog, CatalogStore
from custom_components.retrovue.engine.sync import prepare_server
from custom_components.retrovue.engine.sync.targeted import Targets, refresh
from tests.emulator import EmuItem, EmuServer

from .helpers import rows, sync_all

MOVIES = "1"
TV = "2"

type Items = dict[str, tuple[str, int | None]]


def _of(server: EmuServer, kind: str) -> list[EmuItem]:
    return [item for item in server.items.values() if item.type == kind]


def _file(item: EmuItem) -> str:
    return str(item.media[0].parts[0].file)


async def _items(catalog: Catalog, section_key: str) -> Items:
    """Return rating key → (state, run that last changed it) of a library's movies/episodes."""
    found = await rows(
        catalog,
        "SELECT rating_key, state, changed_run_id FROM catalog_items "
        "WHERE section_key = ? AND kind IN ('movie', 'episode')",
        section_key,
    )
    return {str(key): (str(state), run) for key, state, run in found}


def _states(items: Items) -> dict[str, str]:
    return {key: state for key, (state, _) in items.items()}


async def _remote_only(catalog: Catalog) -> dict[str, int]:
    found = await rows(catalog, "SELECT section_key, remote_only FROM library_counts")
    return {str(key): int(count) for key, count in found}


async def _digests(catalog: Catalog) -> dict[str, str | None]:
    found = await rows(catalog, "SELECT section_key, mappings_digest FROM libraries")
    return {str(key): digest for key, digest in found}


async def _map(catalog: Catalog, server_id: int, *mappings: PathMapping) -> None:
    await catalog.call(CatalogStore.set_path_mappings, server_id, list(mappings))


async def test_a_mapping_restates_its_library_and_leaves_the_other_alone(
    emu_server: EmuServer, client: PlexClient, catalog: Catalog
) -> None:
    server, _ = await sync_all(client, catalog)
    movies, episodes = _of(emu_server, "movie"), _of(emu_server, "episode")
    tv_before = await _items(catalog, TV)
    digests_before = await _digests(catalog)
    assert set(_states(tv_before).values()) == {"ACTIVE"}

    # One movie's folder is mapped: a folder inside /data/movies maps part of the library.
    mapped = movies[0]
    await _map(catalog, server.server_id, PathMapping(posixpath.dirname(_file(mapped)), "/m"))
    _, summaries = await sync_all(client, catalog)

    # Nothing changed on the server: the new states come from restating the movie library.
    assert [summary.changed for summary in summaries] == [0, 0]
    assert _states(await _items(catalog, MOVIES)) == {
        str(movie.rating_key): "ACTIVE" if movie is mapped else "REMOTE_ONLY" for movie in movies
    }
    # The show library is not mapped: not one of its rows was written.
    assert await _items(catalog, TV) == tv_before
    assert await _remote_only(catalog) == {MOVIES: len(movies) - 1, TV: 0}
    digests = await _digests(catalog)
    assert digests[TV] == digests_before[TV]
    assert digests[MOVIES] != digests_before[MOVIES]

    # The whole movie folder as well: every movie resolves; the shows are still left alone.
    await _map(
        catalog,
        server.server_id,
        PathMapping(posixpath.dirname(_file(mapped)), "/m"),
        PathMapping("/data/movies", "/mnt/movies"),
    )
    await sync_all(client, catalog)
    assert set(_states(await _items(catalog, MOVIES)).values()) == {"ACTIVE"}
    assert await _items(catalog, TV) == tv_before

    # Only one show's folder: the show library is mapped now and the movie library no longer.
    show = _of(emu_server, "show")[0]
    show_folder = str(show.path)
    await _map(catalog, server.server_id, PathMapping(show_folder, "/mnt/show"))
    _, summaries = await sync_all(client, catalog)
    assert all(summary.status is RunStatus.OK for summary in summaries)
    assert set(_states(await _items(catalog, MOVIES)).values()) == {"ACTIVE"}
    assert _states(await _items(catalog, TV)) == {
        str(episode.rating_key): "ACTIVE"
        if _file(episode).startswith(show_folder + "/")
        else "REMOTE_ONLY"
        for episode in episodes
    }
    in_show = sum(_file(episode).startswith(show_folder + "/") for episode in episodes)
    assert 0 < in_show < len(episodes)
    assert await _remote_only(catalog) == {MOVIES: 0, TV: len(episodes) - in_show}

    # No mapping left: both libraries are back to ACTIVE, as before any mapping.
    await _map(catalog, server.server_id)
    await sync_all(client, catalog)
    assert set(_states(await _items(catalog, MOVIES)).values()) == {"ACTIVE"}
    assert set(_states(await _items(catalog, TV)).values()) == {"ACTIVE"}
    assert await _digests(catalog) == digests_before


async def test_a_first_sync_judges_each_library_by_its_own_mappings(
    emu_server: EmuServer, client: PlexClient, catalog: Catalog
) -> None:
    server = await prepare_server(client, catalog)
    # A mapping for another folder tree, one for the movies that resolves no file of theirs
    # (refused: `..`), and the movies' own.
    await _map(
        catalog,
        server.server_id,
        PathMapping("/archive", "/mnt/archive"),
        PathMapping("/data/movies", "/mnt/movies"),
    )
    odd = _of(emu_server, "movie")[0]
    odd.media[0].parts[0].file = "/data/movies/../elsewhere/odd.mkv"
    emu_server.invalidate()
    await sync_all(client, catalog)

    assert _states(await _items(catalog, MOVIES)) == {
        str(movie.rating_key): "REMOTE_ONLY" if movie is odd else "ACTIVE"
        for movie in _of(emu_server, "movie")
    }
    assert set(_states(await _items(catalog, TV)).values()) == {"ACTIVE"}

    # A mapping above both folders maps both libraries; the episodes it resolves stay ACTIVE,
    # and the movie it cannot resolve stays REMOTE_ONLY.
    await _map(catalog, server.server_id, PathMapping("/data", "/mnt/data"))
    await sync_all(client, catalog)
    assert _states(await _items(catalog, MOVIES))[str(odd.rating_key)] == "REMOTE_ONLY"
    assert set(_states(await _items(catalog, TV)).values()) == {"ACTIVE"}
    assert await _remote_only(catalog) == {MOVIES: 1, TV: 0}


async def test_a_targeted_refresh_uses_the_same_rule(
    emu_server: EmuServer, client: PlexClient, catalog: Catalog
) -> None:
    server, _ = await sync_all(client, catalog)
    await _map(catalog, server.server_id, PathMapping("/data/movies/Nothing Here", "/m"))
    movie = _of(emu_server, "movie")[0]
    episode = _of(emu_server, "episode")[0]
    emu_server.change_item(movie.rating_key, title="Changed movie")
    emu_server.change_item(episode.rating_key, title="Changed episode")
    server = await prepare_server(client, catalog)

    summary = await refresh(
        client,
        catalog,
        server,
        Targets(items={str(movie.rating_key), str(episode.rating_key)}),
    )

    assert summary.status is RunStatus.OK
    assert summary.changed == 2
    movies, tv = await _items(catalog, MOVIES), await _items(catalog, TV)
    # The movie library is mapped (in part) and the movie's file is outside the mapping.
    assert movies[str(movie.rating_key)] == ("REMOTE_ONLY", summary.run_id)
    # The show library is not mapped: the episode was rewritten, and stays ACTIVE.
    assert tv[str(episode.rating_key)] == ("ACTIVE", summary.run_id)
