"""`IncidentStore`: the one owner of `incidents.sqlite3` (incidents and their reports).

Synchronous, in the manner of `gateway.people.database`: the gateway calls it from a worker
thread (`asyncio.to_thread`) so that a slow disk never stalls the event loop. One lock
serialises the connection; every write is one short `BEGIN IMMEDIATE` transaction.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Collection
from dataclasses import asdict, replace
from typing import Any

from gateway.incidents.model import (
    CloseRefusal,
    FollowUp,
    Incident,
    PhoneReport,
    ReportKind,
    WrittenReport,
    close_refusal,
    takes_report,
)
from gateway.storage.owned import OwnedDatabase
from gateway.storage.schemas import INCIDENTS

_INCIDENT_COLUMNS = "id, site, alarm_id, title, opened_at, opened_by, closed_at"
_CLOSING_COLUMNS = "closed_by, close_note"  # schema version 2


class UnknownIncident(Exception):
    pass


class AlreadyOpen(Exception):
    """The alarm has an open incident already (its id is the argument)."""

    def __init__(self, incident_id: str) -> None:
        super().__init__(incident_id)
        self.incident_id = incident_id


class AlreadyReported(Exception):
    """The phone or the written report is made once; follow-ups are what comes after."""

    def __init__(self, kind: ReportKind) -> None:
        super().__init__(f"the {kind.value} report is already recorded")
        self.kind = kind


class IncidentClosed(Exception):
    """A closed incident takes no phone or written report."""


class NotClosable(Exception):
    def __init__(self, reason: CloseRefusal, incident: Incident) -> None:
        super().__init__(reason.value)
        self.reason = reason
        self.incident = incident


def new_incident_id() -> str:
    return "inc-" + uuid.uuid4().hex[:16]


class IncidentStore(OwnedDatabase):
    SCHEMA = INCIDENTS

    # ------------------------------------------------------------------------ writes
    def open_incident(self, incident: Incident) -> Incident:
        """Stores a new incident (no reports yet). Raises AlreadyOpen when its alarm has one."""
        with self._tx() as db:
            if incident.alarm_id is not None:
                found = db.execute(
                    "SELECT id FROM incidents WHERE alarm_id = ? AND closed_at IS NULL",
                    (incident.alarm_id,),
                ).fetchone()
                if found is not None:
                    raise AlreadyOpen(str(found[0]))
            db.execute(
                f"INSERT INTO incidents ({_INCIDENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (incident.id, incident.site, incident.alarm_id, incident.title,
                 incident.opened_at, incident.opened_by, incident.closed_at),
            )  # fmt: skip
        return replace(incident, phone_report=None, written_report=None, follow_ups=())

    def add_phone_report(self, incident_id: str, report: PhoneReport) -> Incident:
        fields = {"to_whom": report.to_whom}
        return self._add(incident_id, ReportKind.PHONE, fields, report.at, report.by)

    def add_written_report(self, incident_id: str, report: WrittenReport) -> Incident:
        fields = {k: v for k, v in asdict(report).items() if k not in ("at", "by")}
        return self._add(incident_id, ReportKind.WRITTEN, fields, report.at, report.by)

    def add_follow_up(self, incident_id: str, follow_up: FollowUp) -> Incident:
        fields = {"text": follow_up.text}
        return self._add(incident_id, ReportKind.FOLLOW_UP, fields, follow_up.at, follow_up.by)

    def close_incident(self, incident_id: str, at: float, by: str, note: str) -> Incident:
        """Closes an open incident whose written report is in; NotClosable says why not."""
        with self._tx() as db:
            found = self._load(db, [incident_id])
            if not found:
                raise UnknownIncident(incident_id)
            refusal = close_refusal(found[0])
            if refusal is not None:
                raise NotClosable(refusal, found[0])
            db.execute(
                "UPDATE incidents SET closed_at = ?, closed_by = ?, close_note = ? WHERE id = ?",
                (at, by, note, incident_id),
            )
            return self._load(db, [incident_id])[0]

    def _add(
        self, incident_id: str, kind: ReportKind, fields: dict[str, str], at: float, by: str
    ) -> Incident:
        with self._tx() as db:
            found = self._load(db, [incident_id])
            if not found:
                raise UnknownIncident(incident_id)
            if not takes_report(found[0], kind):
                raise IncidentClosed(incident_id)
            if (
                kind is not ReportKind.FOLLOW_UP
                and db.execute(
                    "SELECT 1 FROM incident_reports WHERE incident_id = ? AND kind = ?",
                    (incident_id, kind.value),
                ).fetchone()
            ):
                raise AlreadyReported(kind)
            (seq,) = db.execute(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM incident_reports WHERE incident_id = ?",
                (incident_id,),
            ).fetchone()
            db.execute(
                "INSERT INTO incident_reports (incident_id, seq, kind, fields, at, by) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (incident_id, seq, kind.value, json.dumps(fields, ensure_ascii=False), at, by),
            )
            found = self._load(db, [incident_id])
        return found[0]

    # ------------------------------------------------------------------------- reads
    def get(self, incident_id: str) -> Incident | None:
        with self._connection() as db:
            found = self._load(db, [incident_id])
        return found[0] if found else None

    def query(
        self, sites: Collection[str] | None = None, limit: int = 200, is_open: bool | None = None
    ) -> list[Incident]:
        """The newest incidents first, of `sites` (None: every site), the open or the closed
        ones only when `is_open` says which."""
        where: list[str] = []
        args: list[Any] = []
        if sites is not None:
            where.append(f"site IN ({', '.join('?' * len(sites))})")
            args += sorted(sites)
        if is_open is not None:
            where.append("closed_at IS NULL" if is_open else "closed_at IS NOT NULL")
        sql = "SELECT id FROM incidents"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY opened_at DESC, id LIMIT ?"
        args.append(limit)
        with self._connection() as db:
            ids = [str(r[0]) for r in db.execute(sql, args).fetchall()]
            return self._load(db, ids)

    def open_for_alarm(self, alarm_id: str) -> Incident | None:
        with self._connection() as db:
            row = db.execute(
                "SELECT id FROM incidents WHERE alarm_id = ? AND closed_at IS NULL", (alarm_id,)
            ).fetchone()
            return self._load(db, [str(row[0])])[0] if row else None

    @staticmethod
    def _load(db: sqlite3.Connection, ids: list[str]) -> list[Incident]:
        """The incidents of `ids` with their reports, in the order of `ids`."""
        if not ids:
            return []
        marks = ", ".join("?" * len(ids))
        # A file at schema version 1 (read without migrating: `readonly`, from the CLI before
        # a newer gateway opened it) has no closings' columns: its closings name nobody.
        columns = {str(r[1]) for r in db.execute("PRAGMA table_info(incidents)")}
        closing = _CLOSING_COLUMNS if "close_note" in columns else "NULL, NULL"
        rows = db.execute(
            f"SELECT {_INCIDENT_COLUMNS}, {closing} FROM incidents WHERE id IN ({marks})", ids
        ).fetchall()
        reports: dict[str, list[tuple[str, dict[str, str], float, str]]] = {}
        for incident_id, kind, fields, at, by in db.execute(
            "SELECT incident_id, kind, fields, at, by FROM incident_reports "
            f"WHERE incident_id IN ({marks}) ORDER BY incident_id, seq",
            ids,
        ):
            reports.setdefault(incident_id, []).append((kind, json.loads(fields), at, by))
        found = {}
        for id_, site, alarm_id, title, opened_at, opened_by, closed_at, closed_by, note in rows:
            phone: PhoneReport | None = None
            written: WrittenReport | None = None
            follow_ups: list[FollowUp] = []
            for kind, fields, at, by in reports.get(id_, []):
                if kind == ReportKind.PHONE:
                    phone = PhoneReport(fields["to_whom"], at, by)
                elif kind == ReportKind.WRITTEN:
                    written = WrittenReport(**fields, at=at, by=by)
                else:
                    follow_ups.append(FollowUp(at, by, fields["text"]))
            found[id_] = Incident(
                id_, site, alarm_id, title, opened_at, opened_by,
                phone, written, tuple(follow_ups), closed_at, closed_by, note,
            )  # fmt: skip
        return [found[i] for i in ids if i in found]
