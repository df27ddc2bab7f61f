"""Prepare a Home Assistant config dir that runs Retrovue from this working tree."""

from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).parents[1]

CONFIGURATION = """\
# Written by scripts/dev_config.py for local development; not for production use.
# Only what the demo uses (not default_config): its cameras, voice, Bluetooth and streaming
# parts want system libraries (ffmpeg, libturbojpeg) that have no part in Retrovue and would
# greet a newcomer with errors.
config:
frontend:
history:
logbook:
recorder:
repairs:
diagnostics:
system_health:
search:
my:
person:
sun:
zeroconf:

http:
  server_host: 127.0.0.1
  server_port: {port}

logger:
  default: info
  logs:
    custom_components.retrovue: debug
"""


def prepare(config_dir: Path, port: int, extra_yaml: str = "") -> Path:
    """Create the config dir, link the integration in, and write configuration.yaml."""
    config_dir.mkdir(parents=True, exist_ok=True)
    components = config_dir / "custom_components"
    components.mkdir(exist_ok=True)
    link = components / "retrovue"
    target = ROOT / "custom_components" / "retrovue"
    if link.is_symlink() or link.exists():
        if link.resolve() != target.resolve():
            raise SystemExit(f"{link} exists and is not a link to {target}")
    else:
        link.symlink_to(target, target_is_directory=True)
    (config_dir / "configuration.yaml").write_text(
        CONFIGURATION.format(port=port) + extra_yaml, encoding="utf-8"
    )
    return config_dir


def main() -> None:
    """Parse arguments and prepare the config dir."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config_dir", type=Path)
    parser.add_argument("--port", type=int, default=8123)
    args = parser.parse_args()
    print(prepare(args.config_dir, args.port))


if __name__ == "__main__":
    main()
