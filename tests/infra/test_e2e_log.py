"""The end-to-end test's log check finds the integration's errors and only those."""

from __future__ import annotations

from tests.e2e.run import integration_problems

LOG = """\
2026-11-20 23:52:47.782 WARNING (SyncWorker_0) [homeassistant.loader] custom integration retrovue
2026-11-20 23:52:49.213 ERROR (ImportExecutor_0) [homeassistant.components.camera] libturbojpeg
Traceback (most recent call last):
  File "turbojpeg.py", line 300, in __init__
RuntimeError: Unable to locate turbojpeg library automatically.
2026-11-20 23:53:01.000 ERROR (MainThread) [custom_components.retrovue.coordinator] Unexpected error
Traceback (most recent call last):
  File "/x/custom_components/retrovue/coordinator.py", line 1, in _async_update_data
KeyError: 'x'
2026-11-20 23:53:02.000 INFO (MainThread) [custom_components.retrovue] fine
2026-11-20 23:53:03.000 WARNING (Main) [homeassistant.helpers] Traceback (most recent call last):
  File "/x/custom_components/retrovue/sensor.py", line 5
2026-11-20 23:53:04.000 WARNING (MainThread) [homeassistant.helpers.frame] Detected that custom \
integration 'retrovue' has an update listener and should use it for scheduling a reload
2026-11-20 23:53:05.000 WARNING (MainThread) [homeassistant.helpers.frame] Detected that custom \
integration 'other' does something
"""


def test_finds_integration_errors_and_tracebacks_only() -> None:
    problems = integration_problems(LOG)
    assert len(problems) == 3
    assert "coordinator" in problems[0]
    assert "KeyError" in problems[0]
    assert "sensor.py" in problems[1]
    assert "update listener" in problems[2]
    assert not any("turbojpeg" in problem for problem in problems)


def test_other_integrations_are_not_blamed_on_a_path() -> None:
    log = """\
2026-11-20 23:52:49.213 ERROR (MainThread) [haffmpeg.core] FFmpeg fails
Traceback (most recent call last):
  File "/root/.cache/retrovue/python-3.13-newest/lib/python3.13/asyncio/subprocess.py", line 9
FileNotFoundError: ffmpeg
2026-11-20 23:52:50.000 ERROR (MainThread) [homeassistant.config_entries] Error setting up \
entry E2E Plex for retrovue
"""
    problems = integration_problems(log)
    assert len(problems) == 1
    assert "for retrovue" in problems[0]


def test_a_clean_log_has_no_problems() -> None:
    assert integration_problems(LOG.splitlines()[0]) == []
