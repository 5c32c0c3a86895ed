"""Reading the log: one query with its filters, over the owner's connection or a read-only
one of its own (the CLI, the report)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection
from pathlib import Path
from typing import Any, Final, TypedDict, Unpack

from gateway.audit.actions import SYSTEM
from gateway.audit.entry import COLUMNS, AuditRecord
from gateway.storage import migrate

MAX_LIMIT: Final = 10_000


class AuditFilter(TypedDict, total=False):
    """Which rows a query wants; every key may be left out."""

    since: float | None
    until: float | None
    sites: Collection[str] | None
    actor: str | None
    action: str | None
    limit: int  # 1 to MAX_LIMIT, default 500
    people_only: bool


def select(db: sqlite3.Connection, **want: Unpack[AuditFilter]) -> list[AuditRecord]:
    """Rows newest first (by seq). `since` <= at < `until`; `sites` None: every row, else
    only rows of those sites (rows without a site are left out); `action` matches as a
    prefix ("alarm." finds alarm.ack and alarm.close); `people_only` leaves out the
    system's rows."""
    since, until, sites = want.get("since"), want.get("until"), want.get("sites")
    actor, action = want.get("actor"), want.get("action")
    limit = want.get("limit", 500)
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit: 1 to {MAX_LIMIT}, not {limit}")
    where: list[str] = []
    args: list[Any] = []
    if since is not None:
        where.append("at >= ?")
        args.append(since)
    if until is not None:
        where.append("at < ?")
        args.append(until)
    if sites is not None:
        if not sites:
            return []
        # One parameter whatever the number of sites (a county has thousands).
        where.append("site IN (SELECT value FROM json_each(?))")
        args.append(json.dumps(sorted(sites)))
    if actor is not None:
        where.append("actor = ?")
        args.append(actor)
    if action:
        where.append("substr(action, 1, ?) = ?")
        args += [len(action), action]
    if want.get("people_only", False):
        where.append("actor != ?")
        args.append(SYSTEM)
    sql = f"SELECT {COLUMNS} FROM audit"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY seq DESC LIMIT ?"
    args.append(limit)
    return [_from_row(r) for r in db.execute(sql, args).fetchall()]


def _from_row(r: tuple[Any, ...]) -> AuditRecord:
    detail = json.loads(r[10]) if r[10] is not None else None
    return AuditRecord(
        int(r[0]), float(r[1]), r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], detail,
        r[11], r[12],
    )  # fmt: skip


def connect_readonly(db_path: Path) -> sqlite3.Connection:
    """Raises FileNotFoundError when there is no log yet (opening would create it)."""
    if not db_path.exists():
        raise FileNotFoundError(f"no audit log at {db_path}")
    return sqlite3.connect(
        f"{db_path.resolve().as_uri()}?mode=ro",
        uri=True,
        timeout=migrate.BUSY_TIMEOUT_S,
        isolation_level=None,
    )


def query_readonly(db_path: Path, **want: Unpack[AuditFilter]) -> list[AuditRecord]:
    """`select` over a read-only connection of its own (the CLI, the report), blocking;
    no log yet is no rows."""
    try:
        db = connect_readonly(db_path)
    except FileNotFoundError:
        return []
    try:
        return select(db, **want)
    finally:
        db.close()
