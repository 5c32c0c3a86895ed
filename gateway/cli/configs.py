"""Reading the configuration file for a command: every problem printed with its path."""

from __future__ import annotations

import sys
from pathlib import Path

from gateway.config.errors import ConfigError
from gateway.config.loading import load_config
from gateway.config.schema import GatewayConfig


def load_or_report(path: Path) -> GatewayConfig | None:
    """The configuration, or None after printing every problem with its path."""
    try:
        return load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{path}: {len(exc.problems)} problem(s)", file=sys.stderr)
        return None
