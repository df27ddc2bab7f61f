"""SQLite catalog: schema, migrations, queries and read views."""

from ..states import PRESENT_STATES, ItemState, RunStatus
from . import browse
from .catalog import (
    Catalog,
    CatalogError,
    CatalogStore,
    LibraryRow,
    StoredItem,
)
from .schema import SCHEMA_VERSION, SchemaError

__all__ = [
    "PRESENT_STATES",
    "SCHEMA_VERSION",
    "Catalog",
    "CatalogError",
    "CatalogStore",
    "ItemState",
    "LibraryRow",
    "RunStatus",
    "SchemaError",
    "StoredItem",
    "browse",
]
