"""Merging live updates into batches (`LiveQueue`) and what a timeline entry asks for."""

from __future__ import annotations

import asyncio
import json

import pytest

from custom_components.retrovue.engine.plex.notifications import parse_notifications
from custom_components.retrovue.engine.policy import LIBRARY_IDENTIFIER, LiveAction, timeline_action
from custom_components.retrovue.engine.sync.live import LiveBatch, LiveQueue


@pytest.mark.parametrize(
    ("identifier", "section", "item_type", "state", "expected"),
    [
        (LIBRARY_IDENTIFIER, "1", 1, 5, LiveAction.REFRESH),  # processed
        (LIBRARY_IDENTIFIER, "2", 4, None, LiveAction.REFRESH),  # an update without a state
        (LIBRARY_IDENTIFIER, "2", 4, 9, LiveAction.GONE),
        (LIBRARY_IDENTIFIER, "2", 2, 0, LiveAction.COMING),  # created
        (LIBRARY_IDENTIFIER, "2", 4, 4, LiveAction.COMING),  # processing downloaded metadata
        (LIBRARY_IDENTIFIER, "2", 4, 7, LiveAction.IGNORE),  # no meaning known
        (LIBRARY_IDENTIFIER, "-1", 4, 5, LiveAction.IGNORE),  # not in a library section
        (LIBRARY_IDENTIFIER, None, 4, 5, LiveAction.IGNORE),
        (LIBRARY_IDENTIFIER, "3", 8, 5, LiveAction.IGNORE),  # an artist: not cataloged
        ("tv.plex.providers.epg", "1", 1, 5, LiveAction.IGNORE),  # DVR
        (None, "1", 1, 9, LiveAction.IGNORE),
    ],
)
def test_what_a_timeline_entry_asks_for(
    identifier: str | None,
    section: str | None,
    item_type: int,
    state: int | None,
    expected: LiveAction,
) -> None:
    assert (
        timeline_action(identifier=identifier, section_id=section, item_type=item_type, state=state)
        is expected
    )


class _Sink:
    def __init__(self, *, fail_first: bool = False) -> None:
        self.batches: list[LiveBatch] = []
        self.fail_first = fail_first
        self.arrived = asyncio.Event()

    async def __call__(self, batch: LiveBatch) -> None:
        self.batches.append(batch)
        self.arrived.set()
        if self.fail_first and len(self.batches) == 1:
            raise RuntimeError("boom")


async def _drain(queue: LiveQueue, sink: _Sink, count: int = 1) -> None:
    for _ in range(200):
        if len(sink.batches) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{len(sink.batches)} batches, expected {count}")


async def test_a_burst_of_300_episodes_in_10_shows_becomes_10_expansions() -> None:
    sink = _Sink()
    queue = LiveQueue(sink, quiet=0.05, max_delay=2)
    queue.start()
    try:
        for show in range(10):
            for episode in range(30):
                key = str(1000 + show * 100 + episode)
                assert (
                    queue.timeline(
                        identifier=LIBRARY_IDENTIFIER,
                        section_id="2",
                        item_type=4,
                        state=5,
                        item_id=key,
                        parent_id=f"s{show}",
                        root_id=f"show{show}",
                    )
                    is LiveAction.REFRESH
                )
        await _drain(queue, sink)
    finally:
        await queue.stop()
    (batch,) = sink.batches
    assert batch.targets.shows == {f"show{n}" for n in range(10)}
    assert batch.targets.items == set()
    assert batch.targets.parents == {f"s{n}" for n in range(10)}
    assert batch.updates == 300


async def test_a_few_items_are_looked_up_with_their_parents() -> None:
    sink = _Sink()
    queue = LiveQueue(sink, quiet=0.05, max_delay=2)
    queue.start()
    try:
        queue.changed("45", parent_id="44", root_id="40", item_type=4)
        queue.changed("7", item_type=1)
        queue.gone("46")
        queue.watch("45")
        queue.scan_complete("2")
        await _drain(queue, sink)
    finally:
        await queue.stop()
    (batch,) = sink.batches
    targets = batch.targets
    assert (targets.items, targets.parents, targets.shows) == ({"45", "7"}, {"44", "40"}, set())
    assert (targets.gone, targets.watch, batch.sections) == ({"46"}, {"45"}, {"2"})
    assert not batch.all_sections


async def test_updates_wait_for_quiet_but_not_past_the_maximum_delay() -> None:
    sink = _Sink()
    queue = LiveQueue(sink, quiet=0.2, max_delay=0.5)
    queue.start()
    loop = asyncio.get_running_loop()
    try:
        start = loop.time()
        # A steady trickle, faster than the quiet time: flushed at the maximum delay.
        while not sink.batches and loop.time() - start < 3:
            queue.changed(str(int((loop.time() - start) * 1000)), item_type=1)
            await asyncio.sleep(0.05)
        flushed_after = loop.time() - start
    finally:
        await queue.stop()
    assert sink.batches
    assert flushed_after >= 0.5
    assert len(sink.batches[0].targets.items) > 3


async def test_a_failing_flush_does_not_stop_the_queue(caplog: pytest.LogCaptureFixture) -> None:
    sink = _Sink(fail_first=True)
    queue = LiveQueue(sink, name="Plex", quiet=0.02, max_delay=1)
    queue.start()
    try:
        queue.changed("1", item_type=1)
        await _drain(queue, sink, 1)
        queue.changed("2", item_type=1)
        await _drain(queue, sink, 2)
    finally:
        await queue.stop()
    assert [b.targets.items for b in sink.batches] == [{"1"}, {"2"}]
    assert "Plex: a live update batch failed" in caplog.text


async def test_ignored_and_coming_entries_refresh_nothing() -> None:
    sink = _Sink()
    queue = LiveQueue(sink, quiet=0.02, max_delay=1)
    queue.start()
    try:
        queue.timeline(
            identifier=LIBRARY_IDENTIFIER, section_id="1", item_type=1, state=0, item_id="5"
        )
        queue.timeline(identifier="tv.plex.x", section_id="1", item_type=1, state=5, item_id="6")
        await asyncio.sleep(0.2)
    finally:
        await queue.stop()
    assert sink.batches == []


async def test_notifications_as_plex_sends_them_are_routed() -> None:
    messages = [
        {
            "type": "timeline",
            "size": 2,
            "TimelineEntry": [
                {
                    "identifier": LIBRARY_IDENTIFIER,
                    "sectionID": "2",
                    "itemID": "45",
                    "parentItemID": "44",
                    "rootItemID": "40",
                    "type": 4,
                    "state": 5,
                },
                {
                    "identifier": LIBRARY_IDENTIFIER,
                    "sectionID": "1",
                    "itemID": "9",
                    "type": 1,
                    "state": 9,
                    "metadataState": "deleted",
                },
            ],
        },
        {
            "type": "activity",
            "size": 1,
            "ActivityNotification": [
                {
                    "event": "ended",
                    "uuid": "u",
                    "Activity": {
                        "uuid": "u",
                        "type": "library.refresh.items",
                        "progress": 100,
                        "Context": {"key": "/library/metadata/77", "librarySectionID": "1"},
                    },
                }
            ],
        },
        {
            "type": "activity",
            "size": 1,
            "ActivityNotification": [
                {
                    "event": "started",
                    "uuid": "v",
                    "Activity": {
                        "uuid": "v",
                        "type": "library.refresh.items",
                        "Context": {"key": "/library/metadata/78"},
                    },
                }
            ],
        },
        {
            "type": "playing",
            "size": 1,
            "PlaySessionStateNotification": [
                {"sessionKey": "1", "ratingKey": "45", "state": "stopped", "viewOffset": 1000}
            ],
        },
        {
            "type": "playing",
            "size": 1,
            "PlaySessionStateNotification": [
                {"sessionKey": "1", "ratingKey": "46", "state": "playing", "viewOffset": 10}
            ],
        },
        {
            "type": "status",
            "size": 1,
            "StatusNotification": [
                {"title": "Library scan complete", "notificationName": "LIBRARY_UPDATE"}
            ],
        },
    ]
    sink = _Sink()
    queue = LiveQueue(sink, quiet=0.02, max_delay=1)
    queue.start()
    try:
        for message in messages:
            body = json.dumps({"NotificationContainer": message})
            queue.feed(parse_notifications(body, server="Plex"))
        await _drain(queue, sink)
    finally:
        await queue.stop()
    (batch,) = sink.batches
    targets = batch.targets
    assert (targets.items, targets.parents) == ({"45", "77"}, {"44", "40"})
    assert (targets.gone, targets.watch) == ({"9"}, {"45"})
    assert batch.all_sections
    assert batch.origins["77"] == ("websocket", "activity library.refresh.items")
    assert batch.origins["9"] == ("websocket", "timeline 9")
