"""Issue 10: a write that can never succeed is dropped (logged once, counted), not retried for
ever; the rest of its batch commits. A write the disk may recover from is retried and kept.

Real SQLite files; writes are submitted in one synchronous run so that the writer takes them
as one batch (`committed_batches` says so)."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gateway.actuate.wire import CommandRecord
from gateway.alarms.book import Action, Alarm, AlarmState, AlarmWrite, TimelineEntry
from gateway.alarms.event import AlarmEvent, AlarmSnapshot
from gateway.alarms.store import AlarmStore, PoisonWrite
from rules.model import AlarmType, Severity
from tests.conftest import until

T0 = 1_700_000_000.0


@dataclass
class Rig:
    store: AlarmStore
    path: Path
    committed: list[AlarmEvent] = field(default_factory=list)
    durable: list[int] = field(default_factory=list)
    poison_kinds: list[str] = field(default_factory=list)

    def alarm(
        self,
        alarm_id: str,
        device: str,
        *,
        site: str = "yl-01",
        state: AlarmState = AlarmState.ACTIVE,
        acked_by: Any = None,
        detail: Any = None,
        wait: bool = False,
    ) -> asyncio.Future[None] | None:
        a = Alarm(
            id=alarm_id,
            site=site,
            device=device,
            type=AlarmType.GAS_LEAK,
            severity=Severity.CRITICAL,
            state=state,
            raised_at=T0,
            updated_at=T0,
            acked_by=acked_by,
        )
        entry = TimelineEntry(at=T0, action=Action.RAISED, actor="rule", detail=detail)
        a.timeline.append(entry)
        write = AlarmWrite(alarm=a, entries=(entry,), first_seq=0, action=Action.RAISED)
        event = AlarmEvent(change=Action.RAISED, alarm=AlarmSnapshot.of(a))
        return self.store.submit_alarm(write, event, wait=wait)

    def command(self, command_id: str, detail: Any = None) -> None:
        self.store.submit_command(
            CommandRecord(
                id=command_id, site="yl-01", device="valve-1", cmd="close", requested_by="rule",
                alarm_id=None, reason="gas", sent_at=T0, detail=detail,
            )
        )  # fmt: skip

    def committed_ids(self) -> list[str]:
        return [e.alarm.id for e in self.committed]


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    path = tmp_path / "alarms.sqlite3"
    committed: list[AlarmEvent] = []
    durable: list[int] = []
    kinds: list[str] = []

    def on_committed(events: Sequence[AlarmEvent]) -> None:
        committed.extend(events)

    st = AlarmStore(path, on_committed, durable.append, on_poison=kinds.append)
    await st.open()
    writer = asyncio.create_task(st.run_writer())
    try:
        yield Rig(st, path, committed, durable, kinds)
    finally:
        st.stop()
        # Shutdown must not hang behind a write that can never succeed.
        await asyncio.wait_for(writer, 10)
        await st.close()


def dropped_logs(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "gateway.alarms.store" and r.levelno == logging.ERROR
        if "dropped" in r.getMessage()
    ]


async def test_a_poison_alarm_and_command_are_dropped_and_the_rest_commits(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.alarms.store")
    st = rig.store
    rig.alarm("a-good-1", "gas-1")
    good_wait = rig.alarm("a-good-2", "gas-2", wait=True)
    # What a mirrored alarm once carried: SQLite cannot bind a dict.
    poison_wait = rig.alarm("a-poison", "gas-3", acked_by={"x": 1}, wait=True)
    rig.command("c-poison", detail={"x": 1})
    rig.command("c-good")
    rig.alarm("a-good-3", "gas-4")
    assert good_wait is not None and poison_wait is not None

    assert await st.flush(10), st.stats
    await asyncio.wait_for(good_wait, 5)
    with pytest.raises(PoisonWrite, match="a-poison"):
        await asyncio.wait_for(poison_wait, 5)

    assert st.stats.committed_batches == 1  # all six were one batch
    assert st.stats.committed_ops == 4
    assert st.stats.poison_dropped == 2
    assert sorted(rig.poison_kinds) == ["alarm", "command"]
    assert st.healthy
    assert st.stats.failed_batches == 0  # never taken for a disk failure
    assert st.committed == st.submitted == 6
    assert rig.durable[-1] == 6

    for alarm_id in ("a-good-1", "a-good-2", "a-good-3"):
        stored = await st.get(alarm_id)
        assert stored is not None, alarm_id
        assert [e.action for e in stored.timeline] == [Action.RAISED]
    assert await st.get("a-poison") is None
    assert [c.id for c in await st.commands()] == ["c-good"]
    assert rig.committed_ids() == ["a-good-1", "a-good-2", "a-good-3"]

    logs = dropped_logs(caplog)
    assert len(logs) == 2, logs
    alarm_log = next(m for m in logs if "a-poison" in m)
    for part in ("'yl-01'", "'gas-3'", "'raised'", "type 'dict' is not supported"):
        assert part in alarm_log, alarm_log
    assert any("c-poison" in m and "'valve-1'" in m and "'close'" in m for m in logs), logs

    # The store goes on: the next batch takes the fast path and commits.
    caplog.clear()
    rig.alarm("a-good-4", "gas-5")
    assert await st.flush(10)
    assert await st.get("a-good-4") is not None
    assert st.stats.poison_dropped == 2
    assert not any("write by write" in r.getMessage() for r in caplog.records)


async def test_a_timeline_detail_json_cannot_encode_is_dropped_not_raised(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    st = rig.store
    rig.alarm("a-good-1", "gas-1")
    # Building the row fails (orjson has no encoding for an object): submit must not raise.
    poison_wait = rig.alarm("a-poison", "gas-2", detail={"valve": object()}, wait=True)
    rig.alarm("a-good-2", "gas-3")
    assert poison_wait is not None

    assert await st.flush(10)
    with pytest.raises(PoisonWrite, match="cannot build row"):
        await asyncio.wait_for(poison_wait, 5)
    assert st.stats.poison_dropped == 1
    assert st.healthy
    assert await st.get("a-poison") is None
    for alarm_id in ("a-good-1", "a-good-2"):
        assert await st.get(alarm_id) is not None
    assert rig.committed_ids() == ["a-good-1", "a-good-2"]
    assert rig.durable[-1] == st.submitted == 3
    logs = dropped_logs(caplog)
    assert len(logs) == 1 and "a-poison" in logs[0] and "'gas-2'" in logs[0], logs


async def test_a_locked_database_is_retried_nothing_dropped_and_people_told_meanwhile(
    rig: Rig,
) -> None:
    st = rig.store
    # Fail fast on the lock instead of sqlite3's default 5 s busy wait.
    await st.db.execute("PRAGMA busy_timeout = 50")
    locker = sqlite3.connect(rig.path, isolation_level=None)
    try:
        locker.execute("BEGIN EXCLUSIVE")
        rig.alarm("a-1", "gas-1")
        rig.command("c-1")
        rig.alarm("a-2", "gas-2")
        await until(
            lambda: st.stats.failed_batches >= 2 and not st.healthy,
            what="the store to fail on the lock and retry",
        )
        assert st.committed == 0
        assert "locked" in (st.stats.last_error or "")
        # The disk is failing: people still hear of every change, ahead of its commit,
        # the ones queued before the failure and one submitted during it.
        assert rig.committed_ids() == ["a-1", "a-2"]
        rig.alarm("a-3", "gas-3")
        assert rig.committed_ids() == ["a-1", "a-2", "a-3"]
    finally:
        locker.execute("ROLLBACK")
        locker.close()

    # `flush` returns at once while the store is failing: wait for the retry to land.
    await until(lambda: st.healthy and st.committed == st.submitted, what="the retried commit")
    assert st.stats.poison_dropped == 0
    assert rig.poison_kinds == []
    assert await st.get("a-1") is not None and await st.get("a-2") is not None
    assert [c.id for c in await st.commands()] == ["c-1"]
    assert await st.get("a-3") is not None
    assert rig.committed_ids() == ["a-1", "a-2", "a-3"], "nothing handed on twice"
    rig.alarm("a-4", "gas-4")  # healthy again: handed on after its commit, as ever
    assert rig.committed_ids() == ["a-1", "a-2", "a-3"]
    await until(lambda: rig.committed_ids()[-1:] == ["a-4"], what="a-4 after its commit")
    assert rig.durable[-1] == st.committed == 5


async def test_a_constraint_failure_is_dropped_alone(rig: Rig) -> None:
    """A second open alarm for the same (site, device, type) breaks `alarms_one_open`: the
    database refuses it every time, so it goes, and the writes around it stay."""
    st = rig.store
    rig.alarm("a-open", "gas-1")
    dup_wait = rig.alarm("a-dup", "gas-1", wait=True)
    rig.alarm("a-other", "gas-2")
    assert dup_wait is not None

    assert await st.flush(10)
    with pytest.raises(PoisonWrite, match="IntegrityError"):
        await asyncio.wait_for(dup_wait, 5)
    assert st.stats.poison_dropped == 1 and st.stats.failed_batches == 0
    assert await st.get("a-dup") is None
    assert await st.get("a-open") is not None and await st.get("a-other") is not None
    assert rig.committed_ids() == ["a-open", "a-other"]


async def test_an_alarm_id_of_another_site_cannot_overwrite_it(rig: Rig) -> None:
    """A closed alarm is no longer in the book; a forged write with its id for another site
    (central mode: a mirrored alarm) is refused by the database and dropped, and neither the
    alarm row nor its timeline changes."""
    st = rig.store
    rig.alarm("victim", "gas-1", state=AlarmState.CLOSED)
    assert await st.flush(10)
    before = await st.get("victim")
    assert before is not None

    forged = rig.alarm("victim", "gas-9", site="other-site", wait=True)
    rig.alarm("after", "gas-2")
    assert forged is not None and await st.flush(10)
    with pytest.raises(PoisonWrite, match="another site"):
        await asyncio.wait_for(forged, 5)
    after = await st.get("victim")
    assert after is not None
    assert (after.site, after.device, after.state) == ("yl-01", "gas-1", AlarmState.CLOSED)
    assert len(after.timeline) == len(before.timeline)
    assert await st.get("after") is not None
    assert st.stats.poison_dropped == 1
