"""The incidents a period has to account for, read over a read-only connection of the
caller's own (the daily report, also from the CLI without a gateway); `store` stays the
only writer, and this reuses its row loading so both read the table alike."""

from __future__ import annotations

import contextlib
from collections.abc import Collection
from pathlib import Path

from gateway.incidents.model import Incident
from gateway.incidents.store import IncidentStore
from gateway.storage.readonly import connect_readonly


def incidents_touching(
    path: Path, sites: Collection[str], since: float, until: float
) -> list[Incident]:
    """Incidents of `sites` opened before `until` that were opened at or after `since` or
    were not closed by then, oldest first. Blocking; FileNotFoundError when there is no
    database, sqlite3.Error when it cannot be read."""
    with contextlib.closing(connect_readonly(path)) as db:
        marks = ", ".join("?" * len(sites))
        ids = [
            str(r[0])
            for r in db.execute(
                f"SELECT id FROM incidents WHERE site IN ({marks}) AND opened_at < ? "
                "AND (opened_at >= ? OR closed_at IS NULL OR closed_at >= ?) "
                "ORDER BY opened_at, id",
                (*sorted(sites), until, since, since),
            )
        ]
        return IncidentStore._load(db, ids)  # the owner's row loading
