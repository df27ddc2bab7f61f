"""Listing pages are fetched ahead of the store; those that queued up are stored together."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from custom_components.retrovue.engine.plex import Page, PlexError
from custom_components.retrovue.engine.sync import read_batches


class _Source:
    """A listing of `count` pages of 10 entries; records how far it was read and closed."""

    def __init__(self, count: int, *, fail: bool = False) -> None:
        self.count = count
        self.fail = fail
        self.fetched = 0
        self.closed = False

    def __aiter__(self) -> AsyncIterator[Page]:
        return self._pages()

    async def _pages(self) -> AsyncIterator[Page]:
        try:
            for offset in range(self.count):
                await asyncio.sleep(0)
                self.fetched += 1
                yield Page(items=(), problems=(), offset=offset, received=10, total_size=None)
            if self.fail:
                raise PlexError("the answer broke off", server="s", endpoint="/e")
        finally:
            self.closed = True


async def test_pages_that_queue_up_behind_a_slow_store_come_together() -> None:
    source = _Source(20)
    batches: list[list[int]] = []
    async for batch in read_batches(source, entries=50, depth=8):
        batches.append([page.offset for page in batch])
        await asyncio.sleep(0.01)  # storing is the slow side
    assert [offset for batch in batches for offset in batch] == list(range(20))
    assert batches[0] == [0]  # nothing waits at first
    assert max(len(batch) for batch in batches) == 5  # 50 entries at most
    assert len(batches) < 20
    assert source.closed


async def test_an_error_comes_after_the_pages_before_it() -> None:
    source = _Source(3, fail=True)
    seen: list[int] = []

    async def store_all() -> None:
        async for batch in read_batches(source, entries=50):
            seen.extend(page.offset for page in batch)
            await asyncio.sleep(0.01)

    with pytest.raises(PlexError, match="broke off"):
        await store_all()
    assert seen == [0, 1, 2]
    assert source.closed


async def test_leaving_early_stops_fetching() -> None:
    source = _Source(100)
    async for _batch in read_batches(source, entries=10, depth=2):
        break
    await asyncio.sleep(0.01)
    assert source.closed
    assert source.fetched <= 4  # the page handed over, two queued, one being put
