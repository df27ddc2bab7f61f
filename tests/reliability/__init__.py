"""Reliability suite: fuzzing, state machine, crash safety, fault matrix."""
