"""The sync's decisions, table by table, and how a run reports them."""

from __future__ import annotations

import logging

import pytest

from custom_components.retrovue.engine.plex import PlexClient
from custom_components.retrovue.engine.store import Catalog, StoredItem
from custom_components.retrovue.engine.sync import (
    UPDATED_SINCE_MARGIN,
    light_window_start,
    prepare_server,
    sync_library,
)
from custom_components.retrovue.engine.sync.policy import ExpandReason, expansion_reason
from tests.emulator import EmuServer

from .helpers import sync_all


def _stored(state: str = "ACTIVE", *, hydrated: bool = True) -> StoredItem:
    return StoredItem(
        id=1,
        library_id=1,
        kind="show",
        digest="d",
        state=state,
        children_hydrated=hydrated,
        watch=(None, None, None, None),
    )


@pytest.mark.parametrize(
    ("deep", "stored", "content_changed", "expected"),
    [
        (False, None, True, ExpandReason.NEW),
        (True, None, True, ExpandReason.NEW),
        (False, _stored("MISSING"), False, ExpandReason.CAME_BACK),
        (False, _stored("DELETED", hydrated=False), True, ExpandReason.CAME_BACK),
        (False, _stored(), True, ExpandReason.CONTENT_CHANGED),
        (True, _stored(hydrated=False), True, ExpandReason.CONTENT_CHANGED),
        (False, _stored(hydrated=False), False, ExpandReason.NEVER_HYDRATED),
        (True, _stored(hydrated=False), False, ExpandReason.NEVER_HYDRATED),
        (True, _stored(), False, ExpandReason.DEEP),
        (True, _stored("REMOTE_ONLY"), False, ExpandReason.DEEP),
        (False, _stored(), False, None),
        (False, _stored("UNAVAILABLE"), False, None),
    ],
)
def test_why_a_show_is_expanded(
    deep: bool, stored: StoredItem | None, content_changed: bool, expected: ExpandReason | None
) -> None:
    assert expansion_reason(deep=deep, stored=stored, content_changed=content_changed) is expected


async def test_a_run_logs_and_counts_why_it_expanded_each_show(
    emu_server: EmuServer,
    client: PlexClient,
    catalog: Catalog,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, summaries = await sync_all(client, catalog)
    shows = [item for item in emu_server.items.values() if item.type == "show"]
    assert summaries[1].expanded == {"new": len(shows)}

    emu_server.change_item(shows[0].rating_key, title="Retitled")
    server = await prepare_server(client, catalog)
    with caplog.at_level(logging.DEBUG, logger="custom_components.retrovue.engine.sync"):
        summary = await sync_library(client, catalog, server, "2")
    assert summary.expanded == {"content_changed": 1}
    assert summary.as_dict()["expanded"] == {"content_changed": 1}
    assert f"expanding Retitled [ratingKey {shows[0].rating_key}]: content_changed" in caplog.text

    summary = await sync_library(client, catalog, server, "2", deep=True)
    assert summary.expanded == {"deep": len(shows)}
    summary = await sync_library(client, catalog, server, "2")
    assert summary.expanded == {}


@pytest.mark.parametrize(
    ("light_since", "newest_stored", "expected"),
    [
        (10_000, 50_000, 10_000 - UPDATED_SINCE_MARGIN),  # the server's clock wins
        (None, 50_000, 50_000 - UPDATED_SINCE_MARGIN),  # never recorded: the stored newest
        (None, None, None),  # nothing stored: no window (a full listing)
        (100, None, 0),  # never before the epoch
    ],
)
def test_where_a_light_run_starts_listing(
    light_since: int | None, newest_stored: int | None, expected: int | None
) -> None:
    assert light_window_start(light_since, newest_stored) == expected


async def test_light_runs_stay_flat_after_a_bulk_metadata_refresh(
    emu_server: EmuServer, client: PlexClient, catalog: Catalog
) -> None:
    """Every item shares one recent updatedAt (as after "refresh all metadata")."""
    start = emu_server.now()
    emu_server.clock = lambda: start
    await sync_all(client, catalog)
    for item in list(emu_server.items.values()):
        emu_server.change_item(item.rating_key, updated_at=start)
    emu_server.clock = lambda: start + 60
    _, first = await sync_all(client, catalog)  # lists what the refresh touched
    assert sum(summary.processed for summary in first) > 0
    # The next run still lists them (its window opens a margin before the last run began);
    # from then on the window starts past them, and light runs list nothing again.
    emu_server.clock = lambda: start + 2 * UPDATED_SINCE_MARGIN
    _, second = await sync_all(client, catalog)
    emu_server.clock = lambda: start + 4 * UPDATED_SINCE_MARGIN
    _, third = await sync_all(client, catalog)
    emu_server.clock = lambda: start + 6 * UPDATED_SINCE_MARGIN
    _, fourth = await sync_all(client, catalog)
    for later in (third, fourth):
        assert [summary.processed for summary in later] == [0, len(_shows(emu_server))]
    assert [summary.requests for summary in fourth] == [summary.requests for summary in third]
    assert sum(s.requests for s in third) < sum(s.requests for s in second)
    assert all(summary.changed == 0 for summary in (*second, *third, *fourth))


def _shows(server: EmuServer) -> list[str]:
    return [str(item.rating_key) for item in server.items.values() if item.type == "show"]
