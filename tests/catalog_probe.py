"""Run a test's own probe on the catalog's worker thread.

`Catalog.call` runs only the store's code; tests that must look at or damage the file in ways
the store offers no operation for go through this, and only tests do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from custom_components.retrovue.engine.store import Catalog


async def on_catalog_thread[T](
    catalog: Catalog, fn: Callable[..., T], *args: Any, **kwargs: Any
) -> T:
    """Run `fn(store, *args, **kwargs)` on the catalog's worker thread."""
    return await catalog._submit(fn, *args, **kwargs)
