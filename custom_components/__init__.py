"""Custom integrations (package marker so tests import ours, not the harness's)."""
