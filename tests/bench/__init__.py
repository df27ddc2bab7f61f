"""Benchmark harness: the sync engine against the Plex emulator in separate processes.

`scripts/bench` (or `python -m tests.bench`) runs it; see `__main__.py` for the options.
"""
