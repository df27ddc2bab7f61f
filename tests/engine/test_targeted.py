"""Targeted refreshes (what live updates run): against the emulator over real HTTP."""

from __future__ import annotations

import pytest

from custom_components.retrovue.engine.plex import PlexClient
from custom_components.retrovue.engine.states import RunStatus
from custom_components.retrovue.engine.store import Catalog, CatalogStore
from custom_components.retrovue.engine.sync import prepare_server, sync_library
from custom_components.retrovue.engine.sync.targeted import Targets, refresh
from tests.emulator import EmuServer, PlexEmulator

from .helpers import rows, states, sync_all


def _first(server: EmuServer, kind: str) -> str:
    return next(str(i.rating_key) for i in server.items.values() if i.type == kind)


def _episodes_of(server: EmuServer, show_key: str) -> list[str]:
    show = server.item(show_key)
    return [str(i.rating_key) for i in server.leaves(show)]


async def _no_violations(catalog: Catalog) -> None:
    assert await catalog.call(CatalogStore.invariant_violations) == []


async def test_a_changed_movie_is_stored_with_one_request(
    emu_server: EmuServer, client: PlexClient, catalog: Catalog
) -> None:
    await sync_all(client, catalog)
    movie = _first(emu_server, "movie")
    emu_server.change_item(movie, title="Dune")
    server = await prepare_server(client, catalog)

    summary = await refresh(client, catalog, server, Targets(items={movie}))

    assert summary.status is RunStatus.OK
    assert (summary.changed, summary.requests) == (1, 1)
    assert summary.changed_titles == ["Dune"]
    assert await rows(catalog, "SELECT title FROM items WHERE rating_key = ?", movie) == [("Dune",)]
    runs = await rows(catalog, "SELECT kind, status FROM sync_runs WHERE id = ?", summary.run_id)
    assert runs == [("refresh", "ok")]


async def test_added_episodes_arrive_and_the_show_stays_hydrated(
    emu_server: EmuServer, client: PlexClient, catalog: Catalog
) -> None:
    await sync_all(client, catalog)
    show = _first(emu_server, "show")
    added = emu_server.add_episodes(show, 2, bump_show_updated_at=True)
    season = str(added[0].parent_rk)
    server = await prepare_server(client, catalog)

    summary = await refresh(
        client,
        catalog,
        server,
        Targets(items={str(e.rating_key) for e in added}, parents={season, show}),
    )

    assert summary.status is RunStatus.OK
    assert summary.expanded_shows == 0
    assert summary.requests <= 3 * len(added)
    found = await states(catalog, emu_server.machine_identifier)
    assert all(found[str(e.rating_key)] == "ACTIVE" for e in added)
    await _no_violations(catalog)
    # Nothing is left for the next light run to expand: the show's counts hold.
    _, summaries = await sync_all(client, catalog)
    assert summaries[1].expanded_shows == 0
    assert summaries[1].changed == 0


async def test_a_new_show_is_expanded_whole(
    emu_server: EmuServer, client: PlexClient, catalog: Catalog
) -> None:
    await sync_all(client, catalog)
    show_section = next(key for key, s in emu_server.sections.items() if s.type == "show")
    show = emu_server.add_show(show_section, "Shōgun")
    season = emu_server.add_season(show.rating_key, 1)
    for number in (1, 2, 3):
        emu_server.add_episode(season.rating_key, number, f"Episode {number}")
    server = await prepare_server(client, catalog)

    summary = await refresh(client, catalog, server, Targets(items={str(show.rating_key)}))

    assert summary.expanded_shows == 1
    assert summary.changed == 5  # the show, its season and three episodes
    _, summaries = await sync_all(client, catalog)
    assert summaries[1].expanded == {}


async def test_a_reported_deletion_is_confirmed_before_missing(
    emu_server: EmuServer, client: PlexClient, catalog: Catalog
) -> None:
    await sync_all(client, catalog)
    show = _first(emu_server, "show")
    episodes = _episodes_of(emu_server, show)
    emu_server.remove_item(episodes[0])
    server = await prepare_server(client, catalog)

    # The second key still exists in Plex: a false report marks nothing.
    summary = await refresh(client, catalog, server, Targets(gone={episodes[0], episodes[1]}))

    assert summary.missing == [episodes[0]]
    found = await states(catalog, emu_server.machine_identifier)
    assert (found[episodes[0]], found[episodes[1]]) == ("MISSING", "ACTIVE")
    await _no_violations(catalog)


async def test_a_deleted_show_goes_missing_with_its_children(
    emu_server: EmuServer, client: PlexClient, catalog: Catalog
) -> None:
    await sync_all(client, catalog)
    show = _first(emu_server, "show")
    children = [str(rk) for rk in emu_server.item(show).children]
    episodes = _episodes_of(emu_server, show)
    emu_server.remove_item(show)
    server = await prepare_server(client, catalog)

    summary = await refresh(client, catalog, server, Targets(gone={show}))

    assert sorted(summary.missing) == sorted([show, *children, *episodes])
    await _no_violations(catalog)


async def test_a_show_reported_deleted_keeps_a_child_plex_still_knows(
    emu_server: EmuServer, client: PlexClient, catalog: Catalog
) -> None:
    # Never a MISSING parent with a present child: the show stays while one episode is known.
    await sync_all(client, catalog)
    show = _first(emu_server, "show")
    episodes = _episodes_of(emu_server, show)
    server = await prepare_server(client, catalog)

    summary = await refresh(client, catalog, server, Targets(gone={show}))

    assert summary.missing == []
    found = await states(catalog, emu_server.machine_identifier)
    assert found[show] == "ACTIVE"
    assert all(found[key] == "ACTIVE" for key in episodes)


async def test_watch_state_is_refreshed_and_a_rise_reported(
    emu_server: EmuServer, client: PlexClient, catalog: Catalog
) -> None:
    await sync_all(client, catalog)
    show = _first(emu_server, "show")
    episode = _episodes_of(emu_server, show)[0]
    before = emu_server.item(episode).view_count or 0
    emu_server.set_watch_state(episode, view_count=before + 1, last_viewed_at=1_800_000_000)
    server = await prepare_server(client, catalog)

    summary = await refresh(client, catalog, server, Targets(watch={episode}))

    assert [w.rating_key for w in summary.watched] == [episode]
    watched = summary.watched[0]
    assert (watched.kind, watched.view_count, watched.last_viewed_at) == (
        "episode",
        before + 1,
        1_800_000_000,
    )
    assert watched.show == emu_server.item(show).title
    assert summary.changed == 0  # watch state is not content
    assert await rows(catalog, "SELECT view_count FROM items WHERE rating_key = ?", episode) == [
        (before + 1,)
    ]
    # The same state again is not a new rise.
    again = await refresh(client, catalog, server, Targets(watch={episode}))
    assert again.watched == []


async def test_a_burst_of_episodes_costs_a_few_show_expansions(
    emu_server: EmuServer, emulator: PlexEmulator, client: PlexClient, catalog: Catalog
) -> None:
    await sync_all(client, catalog)
    shows = [str(i.rating_key) for i in emu_server.items.values() if i.type == "show"]
    for show in shows:
        emu_server.add_episodes(show, 30, bump_show_updated_at=True)
    server = await prepare_server(client, catalog)

    summary = await refresh(client, catalog, server, Targets(shows=set(shows)))

    assert summary.expanded_shows == len(shows)
    assert summary.changed >= 30 * len(shows)
    # One lookup of the shows, then per show its seasons and its episodes (five per page here).
    assert summary.requests <= 1 + len(shows) * (2 + 40 // 5 + 1)
    _, summaries = await sync_all(client, catalog)
    assert summaries[1].expanded == {}
    assert summaries[1].changed == 0


async def test_items_outside_the_synced_libraries_are_left_alone(
    emu_server: EmuServer, client: PlexClient, catalog: Catalog
) -> None:
    await sync_all(client, catalog)
    movie = _first(emu_server, "movie")
    emu_server.change_item(movie, title="Elsewhere")
    server = await prepare_server(client, catalog)
    show_section = next(key for key, s in emu_server.sections.items() if s.type == "show")

    summary = await refresh(
        client, catalog, server, Targets(items={movie}), sections=[show_section]
    )

    assert summary.changed == 0
    assert await rows(catalog, "SELECT title FROM items WHERE rating_key = ?", movie) != [
        ("Elsewhere",)
    ]


async def test_unknown_keys_are_reported_not_marked(
    emu_server: EmuServer, client: PlexClient, catalog: Catalog
) -> None:
    await sync_all(client, catalog)
    server = await prepare_server(client, catalog)
    summary = await refresh(client, catalog, server, Targets(items={"999999"}))
    assert (summary.status, summary.not_found, summary.missing) == (RunStatus.OK, ["999999"], [])


@pytest.mark.parametrize("fmt", ["json"])
async def test_a_refresh_cut_off_by_the_server_is_recorded_as_failed(
    emu_server: EmuServer, client: PlexClient, catalog: Catalog
) -> None:
    await sync_all(client, catalog)
    movie = _first(emu_server, "movie")
    server = await prepare_server(client, catalog)
    emu_server.remove_item(movie)
    # The library was synced; a refresh of a key whose section is gone changes nothing.
    summary = await refresh(client, catalog, server, Targets(items={movie}))
    assert summary.status is RunStatus.OK
    assert summary.not_found == [movie]
    # A light sync afterwards still works as before.
    summary_sync = await sync_library(client, catalog, server, "1")
    assert summary_sync.status == "ok"
