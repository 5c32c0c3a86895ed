"""`HazardStore`: the one owner of `hazards.sqlite3` (hazards, their timelines, notices).

Synchronous (sqlite3), called from worker threads (`asyncio.to_thread`) like
`gateway.people.database`: one lock serialises the connection, every write is one short
`BEGIN IMMEDIATE` transaction, so a step and its timeline entry, and a notice closing with its
last hazard, are written together or not at all.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Iterable

from gateway.hazards.model import (
    Hazard,
    HazardAction,
    HazardEdit,
    HazardEvent,
    HazardLevel,
    HazardSource,
    HazardStatus,
    Notice,
    edit,
    notice_number,
    transition,
)
from gateway.storage.owned import OwnedDatabase
from gateway.storage.schemas import HAZARDS

_HAZARD_COLUMNS = (
    "id, site, location, description, level, source, alarm_id, found_at, found_by, "
    "responsible, measure, deadline, status, closed_at, verified_by, verified_at, "
    "verification_note"
)
_NOTICE_COLUMNS = (
    "id, number, site, issued_at, issued_by, person_in_charge, deadline, requirements, "
    "received_at, received_by, closed_at"
)


class UnknownHazard(Exception):
    pass


class UnknownNotice(Exception):
    pass


class HazardsOfAnotherSite(Exception):
    """A notice names hazards that are not its site's (or do not exist)."""

    def __init__(self, ids: list[int]) -> None:
        super().__init__(f"not hazards of the notice's site: {', '.join(map(str, ids))}")
        self.ids = ids


class AlreadyReceived(Exception):
    def __init__(self, notice: Notice) -> None:
        super().__init__(f"notice {notice.number} was received by {notice.received_by}")
        self.notice = notice


def _f(v: object) -> float | None:
    return float(v) if isinstance(v, int | float) else None


def _s(v: object) -> str | None:
    return v if isinstance(v, str) else None


def _hazard(row: tuple[object, ...]) -> Hazard:
    (id_, site, location, description, level, source, alarm_id, found_at, found_by,
     responsible, measure, deadline, status, closed_at, verified_by, verified_at,
     note) = row  # fmt: skip
    return Hazard(
        id=int(str(id_)),
        site=str(site),
        location=str(location),
        description=str(description),
        level=HazardLevel(str(level)),
        source=HazardSource(str(source)),
        alarm_id=_s(alarm_id),
        found_at=float(str(found_at)),
        found_by=str(found_by),
        responsible=str(responsible),
        measure=str(measure),
        deadline=_f(deadline),
        status=HazardStatus(str(status)),
        closed_at=_f(closed_at),
        verified_by=_s(verified_by),
        verified_at=_f(verified_at),
        verification_note=_s(note),
    )


def _event(row: tuple[object, ...]) -> HazardEvent:
    at, action, actor, frm, to, note = row
    return HazardEvent(
        float(str(at)),
        HazardAction(str(action)),
        str(actor),
        HazardStatus(str(frm)) if frm is not None else None,
        HazardStatus(str(to)),
        _s(note),
    )


class HazardStore(OwnedDatabase):
    SCHEMA = HAZARDS

    # ------------------------------------------------------------------ hazards
    def add(self, h: Hazard) -> Hazard:
        """Stores a new hazard (its `id` is ignored: the database gives one) with its
        finding as the first timeline entry."""
        with self._tx() as db:
            cur = db.execute(
                f"INSERT INTO hazards ({_HAZARD_COLUMNS}) "
                "VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, NULL)",
                (h.site, h.location, h.description, h.level.value, h.source.value,
                 h.alarm_id, h.found_at, h.found_by, h.responsible, h.measure, h.deadline,
                 HazardStatus.OPEN.value),
            )  # fmt: skip
            hazard_id = int(cur.lastrowid or 0)
            found = HazardEvent(h.found_at, HazardAction.FOUND, h.found_by, None, HazardStatus.OPEN)
            self._append(db, hazard_id, found)
            return self._get(db, hazard_id)

    def get(self, hazard_id: int) -> Hazard | None:
        with self._connection() as db:
            try:
                return self._get(db, hazard_id)
            except UnknownHazard:
                return None

    def events(self, hazard_id: int) -> list[HazardEvent]:
        with self._connection() as db:
            rows = db.execute(
                "SELECT at, action, actor, from_status, to_status, note FROM hazard_events "
                "WHERE hazard_id = ? ORDER BY seq",
                (hazard_id,),
            ).fetchall()
        return [
            HazardEvent(
                float(at),
                HazardAction(action),
                actor,
                HazardStatus(frm) if frm is not None else None,
                HazardStatus(to),
                note,
            )
            for at, action, actor, frm, to, note in rows
        ]

    def hazards(
        self,
        sites: Collection[str] | None = None,
        status: HazardStatus | None = None,
        level: HazardLevel | None = None,
    ) -> list[Hazard]:
        """Oldest first (the ledger's 序号 order); `sites` None: every site."""
        where, args = _where(sites, status, level)
        with self._connection() as db:
            rows = db.execute(
                f"SELECT {_HAZARD_COLUMNS} FROM hazards{where} ORDER BY id", args
            ).fetchall()
        return [_hazard(r) for r in rows]

    def to_rectify(self, sites: Collection[str] | None = None) -> list[Hazard]:
        """The hazards still open or being rectified (those a deadline can be overdue on or
        reminded of), open first: the closed history and those awaiting the bureau's check
        are not read."""
        return [
            h
            for status in (HazardStatus.OPEN, HazardStatus.RECTIFYING)
            for h in self.hazards(sites, status)
        ]

    def transition(
        self,
        hazard_id: int,
        to: HazardStatus,
        actor_role_is_bureau: bool,
        *,
        actor: str,
        now: float,
        note: str | None = None,
    ) -> Hazard:
        """The step (see `model.transition`, whose `TransitionRefused` it raises), its timeline
        entry, and the closing of every notice whose last open hazard this was."""
        with self._tx() as db:
            changed, event = transition(
                self._get(db, hazard_id), to, actor_role_is_bureau,
                actor=actor, now=now, note=note,
            )  # fmt: skip
            db.execute(
                "UPDATE hazards SET status = ?, closed_at = ?, verified_by = ?, "
                "verified_at = ?, verification_note = ? WHERE id = ?",
                (changed.status.value, changed.closed_at, changed.verified_by,
                 changed.verified_at, changed.verification_note, hazard_id),
            )  # fmt: skip
            self._append(db, hazard_id, event)
            if changed.status is HazardStatus.CLOSED:
                _close_done_notices(db, hazard_id, now)
            return changed

    def edit(
        self,
        hazard_id: int,
        changes: HazardEdit,
        actor_role_is_bureau: bool,
        *,
        actor: str,
        now: float,
        time_text: Callable[[float | None], str],
    ) -> tuple[Hazard, HazardEvent | None]:
        """The edit (see `model.edit`, whose `EditRefused` it raises) and its timeline entry,
        written together; nothing when no field differs."""
        with self._tx() as db:
            changed, event = edit(
                self._get(db, hazard_id), changes, actor_role_is_bureau,
                actor=actor, now=now, time_text=time_text,
            )  # fmt: skip
            if event is not None:
                db.execute(
                    "UPDATE hazards SET location = ?, description = ?, responsible = ?, "
                    "measure = ?, deadline = ?, level = ? WHERE id = ?",
                    (changed.location, changed.description, changed.responsible,
                     changed.measure, changed.deadline, changed.level.value, hazard_id),
                )  # fmt: skip
                self._append(db, hazard_id, event)
            return changed, event

    def steps_between(
        self, sites: Collection[str], start: float, end: float
    ) -> list[tuple[Hazard, HazardEvent]]:
        """Every timeline entry of `sites`' hazards in [start, end) with its hazard as it is
        now, in the order they were taken: a day's findings, steps, closings and edits."""
        if not sites:
            return []
        marks = ",".join("?" * len(sites))
        with self._connection() as db:
            rows = db.execute(
                "SELECT e.hazard_id, e.at, e.action, e.actor, e.from_status, e.to_status, "
                f"e.note FROM hazard_events e JOIN hazards h ON h.id = e.hazard_id "
                f"WHERE h.site IN ({marks}) AND e.at >= ? AND e.at < ? "
                "ORDER BY e.at, e.hazard_id, e.seq",
                (*sorted(sites), start, end),
            ).fetchall()
            hazards = {i: self._get(db, i) for i in {int(r[0]) for r in rows}}
        return [(hazards[int(r[0])], _event(r[1:])) for r in rows]

    @staticmethod
    def _get(db: sqlite3.Connection, hazard_id: int) -> Hazard:
        row = db.execute(
            f"SELECT {_HAZARD_COLUMNS} FROM hazards WHERE id = ?", (hazard_id,)
        ).fetchone()
        if row is None:
            raise UnknownHazard(hazard_id)
        return _hazard(row)

    @staticmethod
    def _append(db: sqlite3.Connection, hazard_id: int, e: HazardEvent) -> None:
        db.execute(
            "INSERT INTO hazard_events (hazard_id, seq, at, action, actor, from_status, "
            "to_status, note) VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM hazard_events "
            "WHERE hazard_id = ?), ?, ?, ?, ?, ?, ?)",
            (hazard_id, hazard_id, e.at, e.action.value, e.actor,
             e.from_status.value if e.from_status else None, e.to_status.value, e.note),
        )  # fmt: skip

    # ------------------------------------------------------------------ notices
    def issue(
        self,
        *,
        site: str,
        hazard_ids: Iterable[int],
        year: int,
        issued_at: float,
        issued_by: str,
        person_in_charge: str,
        deadline: float | None,
        requirements: str,
    ) -> Notice:
        """A new notice numbered next in `year` (the bureau's local year). Every hazard must
        be the site's: `HazardsOfAnotherSite` otherwise, and nothing is written."""
        ids = sorted(set(hazard_ids))
        with self._tx() as db:
            marks = ",".join("?" * len(ids))
            rows = db.execute(
                f"SELECT id, status FROM hazards WHERE site = ? AND id IN ({marks})",
                (site, *ids),
            ).fetchall()
            found = {int(i): str(s) for i, s in rows}
            foreign = [i for i in ids if i not in found]
            if foreign or not ids:
                raise HazardsOfAnotherSite(foreign)
            (seq,) = db.execute(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM notices WHERE year = ?", (year,)
            ).fetchone()
            # A notice about hazards already closed is closed from the start.
            done = all(s == HazardStatus.CLOSED.value for s in found.values())
            cur = db.execute(
                "INSERT INTO notices (year, seq, number, site, issued_at, issued_by, "
                "person_in_charge, deadline, requirements, closed_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (year, seq, notice_number(year, int(seq)), site, issued_at, issued_by,
                 person_in_charge, deadline, requirements, issued_at if done else None),
            )  # fmt: skip
            notice_id = int(cur.lastrowid or 0)
            db.executemany(
                "INSERT INTO notice_hazards (notice_id, hazard_id) VALUES (?, ?)",
                [(notice_id, i) for i in ids],
            )
            return self._notice(db, notice_id)

    def notice(self, notice_id: int) -> Notice | None:
        with self._connection() as db:
            try:
                return self._notice(db, notice_id)
            except UnknownNotice:
                return None

    def notices(self, sites: Collection[str] | None = None) -> list[Notice]:
        """Newest first; `sites` None: every site."""
        where, args = _where(sites, None, None)
        with self._connection() as db:
            ids = db.execute(f"SELECT id FROM notices{where} ORDER BY id DESC", args).fetchall()
            return [self._notice(db, int(i)) for (i,) in ids]

    def receive(self, notice_id: int, by: str, now: float) -> Notice:
        """The institution's acknowledgement of receipt, once (`AlreadyReceived` after)."""
        with self._tx() as db:
            notice = self._notice(db, notice_id)
            if notice.received_at is not None:
                raise AlreadyReceived(notice)
            db.execute(
                "UPDATE notices SET received_at = ?, received_by = ? WHERE id = ?",
                (now, by, notice_id),
            )
            return self._notice(db, notice_id)

    @staticmethod
    def _notice(db: sqlite3.Connection, notice_id: int) -> Notice:
        row = db.execute(
            f"SELECT {_NOTICE_COLUMNS} FROM notices WHERE id = ?", (notice_id,)
        ).fetchone()
        if row is None:
            raise UnknownNotice(notice_id)
        hazard_ids = tuple(
            int(h)
            for (h,) in db.execute(
                "SELECT hazard_id FROM notice_hazards WHERE notice_id = ? ORDER BY hazard_id",
                (notice_id,),
            )
        )
        (id_, number, site, issued_at, issued_by, person, deadline, requirements,
         received_at, received_by, closed_at) = row  # fmt: skip
        return Notice(
            id=int(id_), number=str(number), site=str(site), issued_at=float(issued_at),
            issued_by=str(issued_by), person_in_charge=str(person), deadline=_f(deadline),
            requirements=str(requirements), hazard_ids=hazard_ids,
            received_at=_f(received_at), received_by=_s(received_by), closed_at=_f(closed_at),
        )  # fmt: skip


def _where(
    sites: Collection[str] | None, status: HazardStatus | None, level: HazardLevel | None
) -> tuple[str, tuple[object, ...]]:
    clauses: list[str] = []
    args: list[object] = []
    if sites is not None:
        clauses.append(f"site IN ({','.join('?' * len(sites))})")
        args.extend(sites)
    if status is not None:
        clauses.append("status = ?")
        args.append(status.value)
    if level is not None:
        clauses.append("level = ?")
        args.append(level.value)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), tuple(args)


def _close_done_notices(db: sqlite3.Connection, hazard_id: int, now: float) -> None:
    """Closes the open notices naming `hazard_id` whose every hazard is now closed."""
    db.execute(
        "UPDATE notices SET closed_at = ? WHERE closed_at IS NULL AND id IN ("
        " SELECT notice_id FROM notice_hazards WHERE hazard_id = ?)"
        " AND NOT EXISTS (SELECT 1 FROM notice_hazards nh JOIN hazards h ON h.id = nh.hazard_id"
        "  WHERE nh.notice_id = notices.id AND h.status != 'closed')",
        (now, hazard_id),
    )
