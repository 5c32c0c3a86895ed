"""The notification worker's tables, each through its one owner: the escalation send log and
the maintenance windows survive a reopen (a restart) of the same database file."""

from __future__ import annotations

from pathlib import Path

from gateway.notify.maintenance import Maintenance, MaintenanceWindows
from gateway.notify.policy import Send, SendKey, SendState
from gateway.notify.sendlog import SendLog

T0 = 1_800_000_000.0


async def test_send_log_keeps_pending_and_recent_sends(tmp_path: Path) -> None:
    db = tmp_path / "alarms.sqlite3"
    pending = Send(SendKey("a1", "1:critical", 0, 0), "xingfu", "critical", T0)
    old = Send(SendKey("a0", "1:major", 0, 0), "xingfu", "major", T0 - 90_000)
    log = SendLog(db)
    await log.save([pending])  # not open yet: nothing written, nothing raised
    await log.open()
    try:
        await log.save([pending, old])
        sent = Send(pending.key, "xingfu", "critical", T0, SendState.SENT, T0 + 1)
        await log.save(
            [sent, Send(old.key, "xingfu", "major", old.due_at, SendState.SENT, T0 - 90_000)]
        )
    finally:
        await log.close()

    again = SendLog(db)
    await again.open()
    try:
        assert await again.load(sent_since=T0 - 86_400) == [sent]  # the old one is forgotten
        assert await again.load(sent_since=T0 + 1) == []
    finally:
        await again.close()


async def test_maintenance_windows_survive_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "alarms.sqlite3"
    windows = MaintenanceWindows(db)
    assert windows.active("xingfu", "gas-kitchen", T0) is None  # empty before open
    await windows.open()
    try:
        m = Maintenance("xingfu", "gas-kitchen", T0 + 3600, "张三", "更换探头")
        await windows.set(m)
        await windows.set(Maintenance("xingfu", "co-1", T0 + 60, "张三", None))
        assert await windows.clear("xingfu", "co-1")
        assert not await windows.clear("xingfu", "co-1")
    finally:
        await windows.close()

    again = MaintenanceWindows(db)
    await again.open()
    try:
        assert dict(again.windows) == {("xingfu", "gas-kitchen"): m}
        assert again.active("xingfu", "gas-kitchen", T0) == m
        assert again.active("xingfu", "gas-kitchen", T0 + 3600) is None  # over at `until`
    finally:
        await again.close()
