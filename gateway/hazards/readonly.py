"""The ledger with every hazard's timeline, read over a read-only connection of the caller's
own (the daily report, also from the CLI without a gateway); `store` stays the only writer.
The timelines let a reader say where each hazard stood at a past time."""

from __future__ import annotations

import contextlib
from collections.abc import Collection
from pathlib import Path

from gateway.hazards.model import Hazard, HazardAction, HazardEvent, HazardStatus
from gateway.hazards.store import _HAZARD_COLUMNS, _hazard
from gateway.storage.readonly import connect_readonly


def ledger_readonly(
    path: Path, sites: Collection[str], until: float
) -> list[tuple[Hazard, tuple[HazardEvent, ...]]]:
    """The hazards of `sites` found before `until`, oldest first, each with its timeline up
    to `until`. Blocking; FileNotFoundError when there is no database, sqlite3.Error when
    it cannot be read."""
    marks = ", ".join("?" * len(sites))
    with contextlib.closing(connect_readonly(path)) as db:
        hazards = [
            _hazard(r)
            for r in db.execute(
                f"SELECT {_HAZARD_COLUMNS} FROM hazards WHERE site IN ({marks}) "
                "AND found_at < ? ORDER BY id",
                (*sorted(sites), until),
            ).fetchall()
        ]
        events: dict[int, list[HazardEvent]] = {}
        for hazard_id, at, action, actor, frm, to, note in db.execute(
            "SELECT e.hazard_id, e.at, e.action, e.actor, e.from_status, e.to_status, e.note "
            f"FROM hazard_events e JOIN hazards h ON h.id = e.hazard_id "
            f"WHERE h.site IN ({marks}) AND e.at < ? ORDER BY e.hazard_id, e.seq",
            (*sorted(sites), until),
        ):
            events.setdefault(int(hazard_id), []).append(
                HazardEvent(
                    float(at), HazardAction(action), str(actor),
                    HazardStatus(frm) if frm is not None else None, HazardStatus(to), note,
                )
            )  # fmt: skip
    return [(h, tuple(events.get(h.id, ()))) for h in hazards]
