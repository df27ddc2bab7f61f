"""The catalog's promises, checked by the reliability tests after every sync."""

from __future__ import annotations

from custom_components.retrovue.engine.store import Catalog, CatalogStore


async def assert_invariants(catalog: Catalog) -> None:
    """Fail when the catalog breaks one of its promises (see `invariant_violations`)."""
    problems = await catalog.call(CatalogStore.invariant_violations)
    assert not problems, problems


def assert_store_invariants(store: CatalogStore) -> None:
    """Fail when a synchronously opened catalog breaks one of its promises."""
    problems = store.invariant_violations()
    assert not problems, problems
