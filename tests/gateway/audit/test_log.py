"""The audit log: appends and queries, the hash chain and what `verify` finds after the
table is changed by hand (a field, a middle row, the last rows), appends from two processes,
and the text cleaning."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.audit import (
    GENESIS,
    AuditEntry,
    AuditLog,
    Broken,
    append_sync,
    query_readonly,
    verify,
)
from gateway.audit.entry import row_hash
from gateway.audit.head import head_path
from gateway.config.text import clean_text
from tests.conftest import REPO_ROOT

T0 = 1_764_000_000.0


def entry(i: int, **kw: object) -> AuditEntry:
    fields: dict[str, object] = {
        "at": T0 + i,
        "actor": "wang",
        "actor_name": "王值班",
        "role": "duty",
        "source": "10.0.0.7",
        "action": "alarm.ack",
        "site": "xingfu",
        "target": f"alarm-{i}",
        "result": "ok",
        "detail": {"n": i},
    }
    fields.update(kw)
    return AuditEntry(**fields)  # type: ignore[arg-type]


@pytest.fixture
async def log(tmp_path: Path) -> AuditLog:
    a = AuditLog(tmp_path / "audit.sqlite3")
    await a.open()
    yield a  # type: ignore[misc]
    await a.close()


def _sql(path: Path, sql: str, *args: object) -> None:
    with sqlite3.connect(path) as db:
        db.execute(sql, args)
    db.close()


# ================================================================== append and query
async def test_append_chains_rows_and_writes_the_head(log: AuditLog) -> None:
    first = await log.append(entry(1))
    second = await log.append(entry(2, detail=None))
    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == GENESIS
    assert second.prev_hash == first.hash
    fields = (1, T0 + 1, "wang", "王值班", "duty", "10.0.0.7", "alarm.ack", "xingfu")
    assert first.hash == row_hash(GENESIS, (*fields, "alarm-1", "ok", '{"n":1}'))
    assert json.loads(head_path(log.path).read_text()) == {"seq": 2, "hash": second.hash}
    assert [r.seq for r in await log.query()] == [2, 1]
    assert (await log.query(limit=1))[0] == second
    third = append_sync(log.path, entry(3, source="cli"))  # another connection, same chain
    assert (third.seq, third.prev_hash) == (3, second.hash)
    assert (await log.append(entry(4))).prev_hash == third.hash
    result = verify(log.path)
    assert (result.ok, result.rows, result.last_seq) == (True, 4, 4)


async def test_query_filters(log: AuditLog) -> None:
    await log.append(entry(1, action="alarm.ack"))
    await log.append(entry(2, action="alarm.close", site="anning"))
    await log.append(entry(3, action="session.login", site=None, actor="li"))
    await log.append(entry(4, action="alarmist.x"))  # "alarm." is a prefix, not "alarm"
    await log.append(entry(5, action="config.reload", actor="system", site=None))

    async def seqs(**kw: object) -> list[int]:
        return [r.seq for r in await log.query(**kw)]  # type: ignore[arg-type]

    assert await seqs() == [5, 4, 3, 2, 1]
    assert await seqs(action="alarm.") == [2, 1]
    assert await seqs(actor="li") == [3]
    assert await seqs(since=T0 + 2, until=T0 + 4) == [3, 2]  # until is exclusive
    assert await seqs(sites=["xingfu"]) == [4, 1]  # no site-less rows
    assert await seqs(sites=["xingfu", "anning"], action="alarm.") == [2, 1]
    assert await seqs(sites=[]) == []
    assert await seqs(people_only=True, sites=None) == [4, 3, 2, 1]
    assert await seqs(limit=2) == [5, 4]
    with pytest.raises(ValueError):
        await log.query(limit=0)
    read = query_readonly(log.path, sites=["anning"])
    assert [(r.seq, r.detail) for r in read] == [(2, {"n": 2})]
    assert query_readonly(log.path.with_name("none.sqlite3")) == []


async def test_text_is_cleaned_before_it_is_stored(log: AuditLog) -> None:
    rec = await log.append(
        entry(1, actor="wang\u202e", actor_name="王\x1b[31m值班", detail={"note": "a\nb\u2066c\r"})
    )
    assert (rec.actor, rec.actor_name, rec.detail) == ("wang", "王[31m值班", {"note": "a\nbc"})
    assert (await log.query())[0] == rec
    assert verify(log.path).ok


def test_entries_refuse_what_cannot_be_hashed() -> None:
    with pytest.raises(ValueError):
        entry(1, at=float("nan"))
    with pytest.raises(ValueError):
        entry(1, detail={"x": float("inf")})
    with pytest.raises(TypeError):
        entry(1, detail={"x": [1, 2]})
    with pytest.raises(ValueError):
        entry(1, action="\x00")
    assert entry(1, at=5).at == 5.0  # stored as REAL: hashed as 5.0, not 5


async def test_a_closed_log_raises(tmp_path: Path) -> None:
    a = AuditLog(tmp_path / "audit.sqlite3")
    with pytest.raises(RuntimeError):
        await a.append(entry(1))


async def test_a_failed_append_raises_and_leaves_the_chain_whole(log: AuditLog) -> None:
    await log.append(entry(1))
    _sql(log.path, "CREATE TRIGGER no BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'x'); END")
    with pytest.raises(sqlite3.IntegrityError):
        await log.append(entry(2))
    _sql(log.path, "DROP TRIGGER no")
    assert (await log.append(entry(3))).seq == 2
    assert verify(log.path).ok


# ======================================================================= tampering
async def _three(log: AuditLog, n: int = 5) -> None:
    for i in range(1, n + 1):
        await log.append(entry(i))


async def test_a_changed_field_is_named_by_its_seq(log: AuditLog) -> None:
    await _three(log)
    _sql(log.path, "UPDATE audit SET actor_name = '李某' WHERE seq = 3")
    result = verify(log.path)
    assert (result.ok, result.broken_seq, result.reason) == (False, 3, Broken.HASH_MISMATCH)
    assert result.rows == 3


async def test_a_changed_detail_is_found(log: AuditLog) -> None:
    await _three(log)
    _sql(log.path, """UPDATE audit SET detail = '{"n":99}' WHERE seq = 2""")
    assert (verify(log.path).broken_seq, verify(log.path).reason) == (2, Broken.HASH_MISMATCH)


async def test_a_rehashed_row_breaks_the_next_link(log: AuditLog) -> None:
    await _three(log)
    rows = sqlite3.connect(log.path).execute("SELECT * FROM audit WHERE seq = 3").fetchone()
    forged = (*rows[:3], "李某", *rows[4:11])
    _sql(log.path, "UPDATE audit SET actor_name = ?, hash = ? WHERE seq = 3",
         "李某", row_hash(rows[11], forged))  # fmt: skip
    result = verify(log.path)
    assert (result.broken_seq, result.reason) == (4, Broken.BROKEN_LINK)


async def test_a_deleted_middle_row_breaks_the_link(log: AuditLog) -> None:
    await _three(log)
    _sql(log.path, "DELETE FROM audit WHERE seq = 3")
    result = verify(log.path)
    assert (result.ok, result.broken_seq, result.reason) == (False, 4, Broken.BROKEN_LINK)
    assert "rows 3 to 3 are missing" in result.detail


async def test_a_deleted_first_row_breaks_the_link(log: AuditLog) -> None:
    await _three(log)
    _sql(log.path, "DELETE FROM audit WHERE seq = 1")
    assert (verify(log.path).broken_seq, verify(log.path).reason) == (2, Broken.BROKEN_LINK)


async def test_deleted_last_rows_are_found_through_the_head(log: AuditLog) -> None:
    await _three(log)
    _sql(log.path, "DELETE FROM audit WHERE seq >= 4")
    result = verify(log.path)
    assert (result.ok, result.broken_seq, result.reason) == (False, 4, Broken.MISSING_AT_END)
    # The next append moves the head on, but the loss stays in the chain.
    rec = await log.append(entry(6))
    assert rec.seq == 5
    gap = (await log.query(action="audit.gap"))[0]
    assert gap.seq == 4
    assert gap.detail == {
        "reason": "missing rows at end",
        "head_seq": 5,
        "head_hash": gap.detail["head_hash"] if gap.detail else None,
        "last_seq": 3,
    }
    result = verify(log.path)
    assert (result.ok, result.broken_seq, result.reason) == (False, 4, Broken.GAP_RECORDED)


async def test_a_replaced_last_row_does_not_match_the_head(log: AuditLog) -> None:
    await _three(log)
    db = sqlite3.connect(log.path)
    row = db.execute("SELECT * FROM audit WHERE seq = 5").fetchone()
    db.close()
    forged = (*row[:2], "forger", *row[3:11])  # well chained to row 4, hashed anew
    _sql(log.path, "UPDATE audit SET actor = 'forger', hash = ? WHERE seq = 5",
         row_hash(row[11], forged))  # fmt: skip
    result = verify(log.path)
    assert (result.ok, result.broken_seq, result.reason) == (False, 5, Broken.HEAD_MISMATCH)


async def test_a_missing_head_is_reported(log: AuditLog) -> None:
    await _three(log, 2)
    head_path(log.path).unlink()
    result = verify(log.path)
    assert (result.ok, result.reason) == (False, Broken.HEAD_MISSING)


def test_an_empty_or_absent_log_verifies(tmp_path: Path) -> None:
    assert verify(tmp_path / "audit.sqlite3").ok
    assert not (tmp_path / "audit.sqlite3").exists()  # verify creates nothing


# ========================================================== two processes, one chain
_CHILD = """
import sys
import time
from pathlib import Path
from gateway.audit import AuditEntry, append_sync
path, n = Path(sys.argv[1]), int(sys.argv[2])
for i in range(n):
    append_sync(path, AuditEntry(1.0 + i, "cli", "命令行", "admin", "cli", "user.add",
                                  target=f"cli-{i}"))
"""


async def test_two_processes_append_to_one_chain(log: AuditLog) -> None:
    n = 150
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(log.path), str(n)], cwd=REPO_ROOT)
    try:
        # Start once the child appends, so that the two really run side by side.
        deadline = time.monotonic() + 20
        while not await log.query(actor="cli", limit=1):
            assert time.monotonic() < deadline, "the child never appended"
            await asyncio.sleep(0.01)
        for i in range(n):
            await log.append(entry(i))
    finally:
        assert child.wait(timeout=60) == 0
    rows = await log.query(limit=10_000)
    assert len(rows) == 2 * n
    assert sorted(r.seq for r in rows) == list(range(1, 2 * n + 1))
    cli = sorted(r.seq for r in rows if r.actor == "cli")
    assert {r.target for r in rows if r.actor == "cli"} == {f"cli-{i}" for i in range(n)}
    assert cli[-1] - cli[0] + 1 > n, "the appends did not interleave"
    assert not [r for r in rows if r.action == "audit.gap"]
    result = verify(log.path)
    assert (result.ok, result.rows) == (True, 2 * n), result


# ====================================================================== clean_text
@pytest.mark.parametrize(
    ("raw", "single", "multi"),
    [
        ("王值班", "王值班", "王值班"),
        ("a\nb\tc\r\n", "abc", "a\nb\tc\n"),
        ("\x00\x1f\x7f\x80\x9f", "", ""),
        ("x\u200ey\u200fz", "xyz", "xyz"),
        ("\u202a\u202b\u202c\u202d\u202eevil", "evil", "evil"),
        ("\u2066\u2067\u2068\u2069ok", "ok", "ok"),
        ("\u200d\u00a0\u2065", "\u200d\u00a0\u2065", "\u200d\u00a0\u2065"),  # not ours to drop
    ],
)
def test_clean_text(raw: str, single: str, multi: str) -> None:
    assert clean_text(raw) == single
    assert clean_text(raw, multiline=True) == multi
