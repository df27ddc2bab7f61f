"""Constants for the Retrovue integration."""

from __future__ import annotations

import logging
from typing import Final

DOMAIN: Final = "retrovue"
LOGGER = logging.getLogger(__package__)

# Config entry data
CONF_URL: Final = "url"
CONF_TOKEN: Final = "token"  # noqa: S105 - a config key, not a secret
CONF_VERIFY_SSL: Final = "verify_ssl"
CONF_WEBHOOK_ID: Final = "webhook_id"

# Options
CONF_LIBRARIES: Final = "libraries"
CONF_SCAN_INTERVAL: Final = "scan_interval"  # minutes
CONF_DEEP_SYNC_INTERVAL: Final = "deep_sync_interval"  # hours; 0 turns scheduled deep syncs off
CONF_RETENTION_DAYS: Final = "retention_days"

DEFAULT_SCAN_INTERVAL: Final = 15
DEFAULT_DEEP_SYNC_INTERVAL: Final = 24
DEFAULT_RETENTION_DAYS: Final = 30
MIN_SCAN_INTERVAL: Final = 1
MAX_SCAN_INTERVAL: Final = 1440

# Path mapping subentries
SUBENTRY_PATH_MAPPING: Final = "path_mapping"
CONF_PLEX_PREFIX: Final = "plex_prefix"
CONF_LOCAL_PREFIX: Final = "local_prefix"

# The catalog file, shared by every server, under the config directory
CATALOG_DIR: Final = "retrovue"
CATALOG_FILE: Final = "catalog.db"

# Events on the Home Assistant bus
EVENT_SYNC_STARTED: Final = "retrovue_sync_started"
EVENT_SYNC_PROGRESS: Final = "retrovue_sync_progress"
EVENT_LIBRARY_SYNCED: Final = "retrovue_library_synced"
EVENT_ITEMS_MISSING: Final = "retrovue_items_missing"
EVENT_ITEMS_CHANGED: Final = "retrovue_items_changed"
EVENT_ITEM_WATCHED: Final = "retrovue_item_watched"
EVENT_PLAYBACK: Final = "retrovue_playback"

# Services
SERVICE_SYNC_LIBRARY: Final = "sync_library"
SERVICE_FIND_ITEMS: Final = "find_items"
SERVICE_PURGE_DELETED: Final = "purge_deleted"
SERVICE_REFRESH_ITEMS: Final = "refresh_items"
SERVICE_FIND_DUPLICATES: Final = "find_duplicates"
ATTR_RATING_KEYS: Final = "rating_keys"
ATTR_CONFIG_ENTRY_ID: Final = "config_entry_id"
ATTR_LIBRARY: Final = "library"
ATTR_DEEP: Final = "deep"
ATTR_TITLE: Final = "title"
ATTR_YEAR: Final = "year"
ATTR_KIND: Final = "kind"
ATTR_OLDER_THAN_DAYS: Final = "older_than_days"
ATTR_STATE: Final = "state"
ATTR_LIMIT: Final = "limit"
ATTR_OFFSET: Final = "offset"
ATTR_SCOPE: Final = "scope"

# What a library's movie or episode counts count, by library type (sensor units, the panel).
UNIT_BY_TYPE: Final = {"movie": "movies", "show": "episodes"}

# Repairs: most of a mapped library REMOTE_ONLY (per library; repairs.py)
REMOTE_ONLY_REPAIR_SHARE: Final = 0.5

# Live updates: while Plex's websocket is connected, scheduled syncs run this many times less
# often (notifications carry the changes; the sync is the safety net for what they miss).
PUSH_SYNC_FACTOR: Final = 4
# Webhooks: the same event for the same item and account within this many seconds counts once,
# and at most this many are handled per minute per server.
WEBHOOK_DEDUP_SECONDS: Final = 300
WEBHOOK_RATE_PER_MINUTE: Final = 100
# The activity log keeps this many days.
ACTIVITY_RETENTION_DAYS: Final = 30
