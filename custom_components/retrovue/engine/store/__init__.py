"""SQLite catalog: schema, migrations, queries and read views."""

from .catalog import PRESENT_STATES, Catalog, CatalogStore, LibraryRow, StoredItem
from .schema import SCHEMA_VERSION, SchemaError

__all__ = [
    "PRESENT_STATES",
    "SCHEMA_VERSION",
    "Catalog",
    "CatalogStore",
    "LibraryRow",
    "SchemaError",
    "StoredItem",
]
