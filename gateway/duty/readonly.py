"""The self-reports of one day, read over a read-only connection of the caller's own (the
daily report, also from the CLI without a gateway); `store` stays the only writer."""

from __future__ import annotations

import contextlib
from collections.abc import Collection
from datetime import date
from pathlib import Path

from gateway.duty.model import DailyCheck
from gateway.duty.store import _check
from gateway.storage.readonly import connect_readonly


def checks_of_readonly(path: Path, day: date, sites: Collection[str]) -> dict[str, DailyCheck]:
    """`DutyStore.checks_of` without opening the store (which migrates, so writes). Blocking;
    FileNotFoundError when there is no database, sqlite3.Error when it cannot be read."""
    with contextlib.closing(connect_readonly(path)) as db:
        rows = db.execute(
            "SELECT site, day, items, submitted_at, submitted_by, first_submitted_at "
            "FROM daily_checks WHERE day=?",
            (day.isoformat(),),
        ).fetchall()
    return {str(r[0]): _check(r) for r in rows if r[0] in sites}
