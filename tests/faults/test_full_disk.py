"""A full disk under a running gateway: its data directory on a small real filesystem (tmpfs,
mounted for the test; we run as root) filled to the last byte. Gas shut-off and alarm raising
go on, health says the store is failing; when space returns the store commits again and the
alarms taken meanwhile are on disk (a restarted gateway has them)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from tests.conftest import GatewayProcess, Mosquitto, Probe, answer_valve, until, write_config
from tests.faults.rig import ADMIN_TOKEN, health, process_config, wait

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs, unmounted after the test."""
    mount = tmp_path / "disk"
    mount.mkdir()
    run = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if run.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here (needs root): {run.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)
        if os.path.ismount(mount):
            subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Writes a file until the filesystem has no byte left; returns it."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as f:
        for size in (1 << 20, 1 << 12, 1):
            with contextlib.suppress(OSError):
                while True:
                    f.write(b"\0" * size)
    st = os.statvfs(disk)
    assert st.f_bavail == 0, "the disk still has room"
    return filler


def api_alarms(base: str) -> list[dict[str, object]]:
    r = httpx.get(f"{base}/api/alarms", headers=AUTH, timeout=10)
    r.raise_for_status()
    body: list[dict[str, object]] = r.json()
    return body


async def test_a_full_disk_stops_neither_shutoff_nor_alarms(
    tmp_path: Path,
    small_disk: Path,
    broker: Mosquitto,
    probe: Probe,
    gateway_process: GatewayProcess,
) -> None:
    data, port = process_config(tmp_path, broker.port, data_dir=small_disk / "data")
    cfg = write_config(tmp_path / "gateway.yaml", data)
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "gateway.log"
    with gateway_process(cfg, port, log):
        wait(lambda: health(base)["broker"]["connected"], 20, "connected")
        filler = fill(small_disk)

        # The disk is full: a gas leak still closes its valve, a press is still an alarm.
        sent = time.monotonic()
        await probe.telemetry("gas-kitchen", {"lel": 28.0})
        await probe.wait_for("valve-kitchen/cmd", lambda m: m["cmd"] == "close_valve")
        close_s = time.monotonic() - sent
        await answer_valve(probe)
        await probe.event("btn-lobby", "pressed")
        await until(
            lambda: {a["type"] for a in api_alarms(base)} >= {"gas_leak", "fire_button"},
            15,
            "both alarms in the API while the disk is full",
        )
        failing = wait(
            lambda: (h := health(base))["store"]["healthy"] is False and h, 20, "store failing"
        )
        assert failing["status"] == "degraded"
        assert "full" in str(failing["store"]["last_error"]).lower()
        # and the press of another button after the first failure
        await probe.event("btn-lobby", "pressed")
        await until(
            lambda: any(a["type"] == "fire_button" and a["count"] == 2 for a in api_alarms(base)),
            10,
            "the second press counted",
        )

        filler.unlink()  # space is back
        freed = time.monotonic()
        wait(lambda: health(base)["store"]["healthy"] is True, 30, "store committing again")
        print(
            f"disk full: close_valve {close_s * 1000:.0f} ms after the reading; store "
            f"committing {time.monotonic() - freed:.2f} s after space returned"
        )
        taken = {a["id"]: a for a in api_alarms(base)}
    assert "Traceback" not in log.read_text()

    # Everything taken while the disk was full is on disk: a new process reads it back.
    with gateway_process(cfg, port, log):
        wait(lambda: health(base)["broker"]["connected"], 20, "connected again")
        again = {a["id"]: a for a in api_alarms(base)}
        assert set(again) == set(taken)
        for alarm_id, alarm in taken.items():
            for key in ("type", "state", "count", "peak"):
                assert again[alarm_id][key] == alarm[key], (key, again[alarm_id], alarm)


async def test_the_live_feed_shows_an_alarm_raised_while_the_disk_is_full(
    tmp_path: Path,
    small_disk: Path,
    broker: Mosquitto,
    probe: Probe,
    gateway_process: GatewayProcess,
) -> None:
    data, port = process_config(tmp_path, broker.port, data_dir=small_disk / "data")
    cfg = write_config(tmp_path / "gateway.yaml", data)
    base = f"http://127.0.0.1:{port}"
    with gateway_process(cfg, port, tmp_path / "gateway.log"):
        wait(lambda: health(base)["broker"]["connected"], 20, "connected")
        url = f"ws://127.0.0.1:{port}/api/live?token={ADMIN_TOKEN}"
        async with websockets.connect(url, max_size=None) as ws:
            await asyncio.wait_for(ws.recv(), 10)  # the snapshot
            filler = fill(small_disk)
            try:
                await probe.event("btn-lobby", "pressed")
                await until(lambda: api_alarms(base), 10, "the alarm in the API")

                async def alarm_pushed() -> dict[str, object]:
                    while True:
                        msg = json.loads(await ws.recv())
                        if msg.get("kind") == "alarm":
                            return dict(msg["alarm"])

                pushed = await asyncio.wait_for(alarm_pushed(), 5)
                assert pushed["type"] == "fire_button"
                # ...and the alarms topic (the bureau, other consoles) hears of it too.
                published = await probe.wait_for("xingfu/alarms", timeout=5)
                assert published["id"] == pushed["id"] and published["type"] == "fire_button"
            finally:
                filler.unlink()  # so that the gateway's stop need not wait for the disk
