"""Retrovue's catalog engine: Plex client, SQLite store and sync, with no Home Assistant code."""
