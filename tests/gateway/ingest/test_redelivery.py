"""Issue 10, exactly once on redelivery: a message the broker delivers again after a crash or a
reconnect changes nothing twice.

`Redeliveries` alone (the MQTT session's own window: tests/drivers/mqtt/test_inbox.py); the
store writing a message's key in the transaction of its last write;
and with a real Mosquitto, the gateway taking a button press, committing it, and never getting
its PUBACK to the broker (`AckTrap` swallows it): killed with SIGKILL and restarted (a real
process), or cut off and reconnecting (in process). Either way the broker delivers the press
again, marked DUP, and the alarm's count stays 1."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.alarms.book import AlarmBook
from gateway.alarms.event import AlarmEvent, AlarmSnapshot
from gateway.alarms.store import AlarmStore
from gateway.config.loading import parse_config
from gateway.ingest.redelivery import CONTROL_LANE, TELEMETRY_LANE, Redeliveries, digest
from rules.model import AlarmChange, AlarmKey, AlarmType, ChangeKind, Reason, Severity
from tests.conftest import (
    GatewayProcess,
    Mosquitto,
    Probe,
    free_port,
    running_gateway,
    site_config,
    until,
    write_config,
)
from tests.support.ack_trap import AckTrap

PRESS = "safety/xingfu/btn-lobby/event"
READING = "safety/xingfu/gas-kitchen/telemetry"
BODY = b'{"event": "pressed"}'


@dataclass
class Log:
    submitted: int = 0
    seen: list[tuple[int, int, int, float]] = field(default_factory=list)

    def note_seen(self, lane: int, mid: int, d: int, at: float) -> None:
        self.seen.append((lane, mid, d, at))


def test_a_key_stored_before_a_restart_recognises_only_that_message() -> None:
    log = Log()
    Redeliveries(log).caused_writes(PRESS, BODY, 42, 123.0)
    assert log.seen == [(CONTROL_LANE, 42, digest(PRESS, BODY), 123.0)]
    after = Redeliveries(Log())
    assert not after.stored(PRESS, BODY, 42)  # nothing loaded
    after.load([(lane, mid, d) for lane, mid, d, _ in log.seen])
    assert after.stored(PRESS, BODY, 42)
    assert not after.stored(PRESS, b'{"event": "smoke"}', 42)
    assert not after.stored(PRESS, BODY, 43)  # another packet: a second press
    assert not after.stored("safety/xingfu/btn-2/event", BODY, 42)
    # Telemetry has its own session, so its own packet ids.
    assert not after.stored(READING, BODY, 42)
    assert TELEMETRY_LANE != CONTROL_LANE


async def test_the_key_is_committed_with_the_last_write_of_its_message(tmp_path: Path) -> None:
    path = tmp_path / "alarms.sqlite3"
    store = AlarmStore(path)
    await store.open()
    writer = asyncio.create_task(store.run_writer())
    try:
        book = AlarmBook()
        key = AlarmKey("xingfu", "btn-lobby", AlarmType.FIRE_BUTTON)
        change = AlarmChange(
            key, ChangeKind.RAISE, Severity.CRITICAL, Reason.BUTTON_PRESSED, latched=True
        )
        with pytest.raises(RuntimeError):
            store.note_seen(CONTROL_LANE, 5, 1, 0.0)  # nothing written for it
        w = book.apply(change, 100.0)
        assert w is not None
        store.submit_alarm(w, AlarmEvent(w.action, AlarmSnapshot.of(w.alarm)))
        store.note_seen(CONTROL_LANE, 5, 1234, 100.0)
        assert await store.flush(5.0)
        rows = sqlite3.connect(path).execute("SELECT lane, mid, digest, at FROM seen_messages")
        assert list(rows) == [(CONTROL_LANE, 5, 1234, 100.0)]
        assert await store.load_seen(50.0) == [(CONTROL_LANE, 5, 1234)]
        assert await store.load_seen(101.0) == []
    finally:
        store.stop()
        await writer
        await store.close()


# ------------------------------------------------------------------ with a real broker


@pytest.fixture
async def ack_trap(broker: Mosquitto) -> AsyncIterator[AckTrap]:
    trap = AckTrap(broker.port)
    await trap.start()
    try:
        yield trap
    finally:
        await trap.stop()


async def _health(base: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base) as c:
        health: dict[str, Any] = (await c.get("/api/health")).json()
        return health


async def _buttons(base: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=base) as c:
        found: list[dict[str, Any]] = (
            await c.get("/api/alarms", params={"type": "fire_button"})
        ).json()
        return found


async def _poll(what: str, check: Any, timeout: float = 15.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


async def test_a_press_delivered_again_after_kill_9_is_not_counted_twice(
    tmp_path: Path,
    broker: Mosquitto,
    ack_trap: AckTrap,
    probe: Probe,
    gateway_process: GatewayProcess,
) -> None:
    port = free_port()
    data = site_config(tmp_path / "data", ack_trap.port, http={"host": "127.0.0.1", "port": port})
    cfg = write_config(tmp_path / "gateway.yaml", data)
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "gateway.log"

    with gateway_process(cfg, port, log) as proc:
        await _poll("connected", lambda: _connected(base))
        ack_trap.arm()
        await probe.event("btn-lobby", "pressed")
        # Its PUBACK is sent only after the commit: swallowed, the press is on disk and the
        # broker still waits for the acknowledgement.
        await until(lambda: ack_trap.swallowed == 1, 10, "the press's PUBACK")
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)

    with gateway_process(cfg, port, log):
        await _poll("connected again", lambda: _connected(base))

        async def settled() -> bool:
            duplicates = (await _health(base))["rejected"].get("duplicate", 0)
            buttons = await _buttons(base)
            return duplicates >= 1 or (bool(buttons) and buttons[0]["count"] >= 2)

        await _poll("the broker's second delivery of the press", settled)
        buttons = await _buttons(base)
        assert [b["count"] for b in buttons] == [1]
        assert (await _health(base))["rejected"]["duplicate"] == 1
        # Not a one-off: a new press is a repeat as always.
        await probe.event("btn-lobby", "pressed")
        await _poll("a second press", lambda: _count_is(base, 2))
    assert "Traceback" not in log.read_text()


async def test_a_press_delivered_again_after_a_reconnect_is_not_counted_twice(
    tmp_path: Path, broker: Mosquitto, ack_trap: AckTrap, probe: Probe
) -> None:
    data = site_config(tmp_path / "data", ack_trap.port)
    async with running_gateway(parse_config(data)) as running:
        gw = running.gw
        ack_trap.arm()
        await probe.event("btn-lobby", "pressed")
        await until(lambda: ack_trap.swallowed == 1, 10, "the press's PUBACK")
        reconnects = gw.link.health.reconnects
        ack_trap.cut()
        await until(lambda: gw.link.health.reconnects > reconnects, 15, "a reconnect")
        await running.wait_connected()
        key = AlarmKey("xingfu", "btn-lobby", AlarmType.FIRE_BUTTON)

        def settled() -> bool:
            alarm = gw.book.find(key)
            return gw.rejects.by_reason.get("duplicate", 0) >= 1 or (
                alarm is not None and alarm.count >= 2
            )

        await until(settled, 15, "the broker's second delivery of the press")
        alarm = gw.book.find(key)
        assert alarm is not None and alarm.count == 1
        assert gw.rejects.by_reason["duplicate"] == 1


async def _connected(base: str) -> bool:
    try:
        return bool((await _health(base))["broker"]["connected"])
    except httpx.HTTPError:
        return False


async def _count_is(base: str, n: int) -> bool:
    buttons = await _buttons(base)
    return bool(buttons) and buttons[0]["count"] == n
