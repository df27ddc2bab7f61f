"""The sync's decisions, table by table, and how a run reports them."""

from __future__ import annotations

import logging

import pytest

from custom_components.retrovue.engine.plex import PlexClient
from custom_components.retrovue.engine.store import Catalog, StoredItem
from custom_components.retrovue.engine.sync import prepare_server, sync_library
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
