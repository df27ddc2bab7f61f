"""Developer scripts (importable for the end-to-end test)."""
