"""End-to-end test: a real Home Assistant process configured through its own HTTP API."""
