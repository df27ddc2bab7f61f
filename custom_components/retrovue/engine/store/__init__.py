"""SQLite catalog: schema, migrations, queries and read views."""

from .catalog import (
    PRESENT_STATES,
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
    "LibraryRow",
    "SchemaError",
    "StoredItem",
]
