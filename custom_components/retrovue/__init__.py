"""The Retrovue integration: a complete SQLite catalog of Plex Media Servers."""
