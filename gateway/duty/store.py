"""`DutyStore`: the one reader and writer of `<data_dir>/duty.sqlite3` (daily_checks,
duty_roster, handovers).

Synchronous (sqlite3), called from a worker thread (`asyncio.to_thread`) as `gateway.people`
is: one connection, one lock, each write one short `BEGIN IMMEDIATE` transaction.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from datetime import date

from gateway.duty.model import (
    CheckAnswer,
    CheckResult,
    DailyCheck,
    DutyRole,
    Handover,
    RosterEntry,
)
from gateway.storage.owned import DatabaseUnavailable, OwnedDatabase
from gateway.storage.schemas import DUTY


class DutyUnavailable(DatabaseUnavailable):
    """The database is not open (it failed at start) or cannot answer."""


class CheckClosed(Exception):
    """The day's report is in and its due time has passed: it stands as it was submitted."""


def _answers_json(answers: Iterable[CheckAnswer]) -> str:
    return json.dumps(
        [{"item": a.item, "result": a.result.value, "note": a.note} for a in answers],
        ensure_ascii=False,
    )


def _check(row: Sequence[object]) -> DailyCheck:
    site, day, items, submitted_at, submitted_by, first = row
    answers = tuple(
        CheckAnswer(str(a["item"]), CheckResult(a["result"]), str(a["note"]))
        for a in json.loads(str(items))
    )
    return DailyCheck(
        str(site), date.fromisoformat(str(day)), answers, float(str(submitted_at)),
        str(submitted_by), float(str(first)),
    )  # fmt: skip


class DutyStore(OwnedDatabase):
    SCHEMA = DUTY
    Unavailable = DutyUnavailable

    # ------------------------------------------------------------------- daily checks
    def submit(self, check: DailyCheck, replace_until: float) -> DailyCheck:
        """Stores the site's report of the day; one already in is replaced while its
        submission is before `replace_until` (the due time), keeping its first time."""
        with self._tx() as db:
            row = db.execute(
                "SELECT first_submitted_at FROM daily_checks WHERE site=? AND day=?",
                (check.site, check.day.isoformat()),
            ).fetchone()
            if row is not None and check.submitted_at >= replace_until:
                raise CheckClosed(f"{check.site} {check.day}")
            first = check.submitted_at if row is None else float(row[0])
            db.execute(
                "INSERT INTO daily_checks (site, day, items, submitted_at, submitted_by, "
                "first_submitted_at) VALUES (?,?,?,?,?,?) ON CONFLICT (site, day) DO UPDATE "
                "SET items=excluded.items, submitted_at=excluded.submitted_at, "
                "submitted_by=excluded.submitted_by",
                (check.site, check.day.isoformat(), _answers_json(check.answers),
                 check.submitted_at, check.submitted_by, first),
            )  # fmt: skip
        return DailyCheck(
            check.site, check.day, check.answers, check.submitted_at, check.submitted_by, first
        )

    def checks_of(self, day: date, sites: Collection[str]) -> dict[str, DailyCheck]:
        with self._connection() as db:
            rows = db.execute(
                "SELECT site, day, items, submitted_at, submitted_by, first_submitted_at "
                "FROM daily_checks WHERE day=?",
                (day.isoformat(),),
            ).fetchall()
        return {str(r[0]): _check(r) for r in rows if r[0] in sites}

    # ------------------------------------------------------------------------- roster
    def set_shift(
        self,
        scope: str,
        day: date,
        shift: str,
        people: Sequence[tuple[str, DutyRole]],
        now: float,
        by: str,
    ) -> None:
        """The shift's people, replacing whoever it had (an empty list clears it)."""
        with self._tx() as db:
            db.execute(
                "DELETE FROM duty_roster WHERE scope=? AND day=? AND shift=?",
                (scope, day.isoformat(), shift),
            )
            db.executemany(
                "INSERT INTO duty_roster (scope, day, shift, login, role, set_at, set_by) "
                "VALUES (?,?,?,?,?,?,?)",
                [(scope, day.isoformat(), shift, login, role.value, now, by)
                 for login, role in people],
            )  # fmt: skip

    def roster_of(self, day: date, scopes: Collection[str]) -> list[RosterEntry]:
        with self._connection() as db:
            rows = db.execute(
                "SELECT scope, day, shift, login, role FROM duty_roster WHERE day=? "
                "ORDER BY scope, shift, role = 'leader' DESC, login",
                (day.isoformat(),),
            ).fetchall()
        return [
            RosterEntry(str(s), date.fromisoformat(str(d)), str(sh), str(lg), DutyRole(str(r)))
            for s, d, sh, lg, r in rows
            if s in scopes
        ]

    def hand_over(self, handover: Handover) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO handovers (scope, at, from_login, to_login, note) VALUES (?,?,?,?,?)",
                (handover.scope, handover.at, handover.from_login, handover.to_login,
                 handover.note),
            )  # fmt: skip

    def handovers_between(
        self, scopes: Collection[str], since: float, until: float
    ) -> list[Handover]:
        with self._connection() as db:
            rows = db.execute(
                "SELECT scope, at, from_login, to_login, note FROM handovers "
                "WHERE at >= ? AND at < ? ORDER BY at",
                (since, until),
            ).fetchall()
        return [
            Handover(str(s), float(at), str(f), str(t), str(n))
            for s, at, f, t, n in rows
            if s in scopes
        ]
