"""Checking the chain: every row's hash over its fields, every link to the row before, the
head file against the table's end, and the gaps appends have recorded. Read-only: it can run
beside the gateway, and against a copy."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from gateway.audit.actions import AUDIT_GAP
from gateway.audit.entry import COLUMNS, GENESIS, row_hash
from gateway.audit.head import Head, HeadUnreadable, head_path, read_head
from gateway.audit.query import connect_readonly


class Broken(StrEnum):
    HASH_MISMATCH = "hash mismatch"  # a row's fields (or hashes) changed after it was written
    BROKEN_LINK = "broken link"  # a row does not follow the one before it: rows removed
    MISSING_AT_END = "missing rows at end"  # the head names a row the table no longer has
    HEAD_MISMATCH = "head mismatch"  # the head's row has another hash: replaced rows
    HEAD_MISSING = "head missing"  # rows, but no (readable) head file
    GAP_RECORDED = "gap recorded"  # an append found rows missing (an `audit.gap` row)


@dataclass(frozen=True, slots=True)
class VerifyResult:
    rows: int  # rows checked
    last_seq: int  # 0: empty
    last_hash: str
    broken_seq: int | None = None  # the first row found wrong (None: ok, or not a row)
    reason: Broken | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.reason is None


def verify(db_path: Path) -> VerifyResult:
    """The log at `db_path` checked from its first row to the head. Blocking."""
    # The head first: an append while the rows are read leaves the head behind the rows
    # read, which is no evidence; read after, it could be ahead.
    try:
        head: Head | None = read_head(db_path)
        unreadable = ""
    except HeadUnreadable as exc:
        head, unreadable = None, str(exc)
    if not db_path.exists():
        if head is not None and head.seq > 0:
            return VerifyResult(
                0,
                0,
                GENESIS,
                1,
                Broken.MISSING_AT_END,
                f"no {db_path.name}; the head says {head.seq} rows",
            )
        return VerifyResult(0, 0, GENESIS)
    db = connect_readonly(db_path)
    try:
        rows = 0
        prev_seq, prev_hash = 0, GENESIS
        head_row_hash: str | None = None
        gap: tuple[int, str] | None = None
        for r in db.execute(f"SELECT {COLUMNS} FROM audit ORDER BY seq"):
            rows += 1
            seq, stored_prev, digest = int(r[0]), r[11], r[12]
            if row_hash(stored_prev, tuple(r[:11])) != digest:
                return VerifyResult(
                    rows, prev_seq, prev_hash, seq, Broken.HASH_MISMATCH,
                    f"row {seq}'s hash is not that of its fields",
                )  # fmt: skip
            if stored_prev != prev_hash or seq != prev_seq + 1:
                missing = (
                    f": rows {prev_seq + 1} to {seq - 1} are missing" if seq > prev_seq + 1 else ""
                )
                return VerifyResult(
                    rows, prev_seq, prev_hash, seq, Broken.BROKEN_LINK,
                    f"row {seq} does not follow row {prev_seq}{missing}",
                )  # fmt: skip
            if gap is None and r[6] == AUDIT_GAP:
                gap = (seq, _gap_text(r[10]))
            if head is not None and seq == head.seq:
                head_row_hash = digest
            prev_seq, prev_hash = seq, digest
    finally:
        db.close()
    done = (rows, prev_seq, prev_hash)
    if gap is not None:
        return VerifyResult(*done, gap[0], Broken.GAP_RECORDED, gap[1])
    if head is None:
        if rows == 0:
            return VerifyResult(*done)
        why = unreadable or f"no {head_path(db_path).name}"
        return VerifyResult(*done, None, Broken.HEAD_MISSING, why)
    if head.seq > prev_seq:
        return VerifyResult(
            *done, prev_seq + 1, Broken.MISSING_AT_END,
            f"the table ends at row {prev_seq}, the head says {head.seq}",
        )  # fmt: skip
    if head.seq > 0 and head_row_hash != head.hash:
        return VerifyResult(
            *done, head.seq, Broken.HEAD_MISMATCH,
            f"row {head.seq} is not the one the head names",
        )  # fmt: skip
    return VerifyResult(*done)


def _gap_text(detail: str | None) -> str:
    try:
        found = json.loads(detail) if detail else {}
    except ValueError:
        found = {}
    reason = found.get("reason", "rows missing") if isinstance(found, dict) else "rows missing"
    return f"an append found: {reason} ({detail})"
