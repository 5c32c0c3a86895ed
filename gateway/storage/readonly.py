"""A read-only connection to one of the gateway's databases, for readers that are not the
table's owner and may run without a gateway (the daily report from the CLI): opening never
creates, migrates or writes the file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gateway.storage.migrate import BUSY_TIMEOUT_S


def connect_readonly(path: Path) -> sqlite3.Connection:
    """Raises FileNotFoundError when there is no file (a plain connect would create one),
    sqlite3.Error when it cannot be opened."""
    if not path.exists():
        raise FileNotFoundError(f"no database at {path}")
    return sqlite3.connect(
        f"{path.resolve().as_uri()}?mode=ro",
        uri=True,
        timeout=BUSY_TIMEOUT_S,
        isolation_level=None,
    )
