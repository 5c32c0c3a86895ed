"""A bad disk never means a silent gateway: a corrupt alarms.sqlite3 is kept aside and the
gateway starts on a fresh one, loudly (log, degraded health, a `store_failure` alarm)."""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from gateway.alarms.store import AlarmStore
from gateway.config.loading import parse_config
from tests.conftest import Probe, running_gateway


async def _starts_on_a_fresh_store(
    config_data: dict[str, Any], probe: Probe, caplog: pytest.LogCaptureFixture, what: str
) -> None:
    data_dir = Path(config_data["gateway"]["data_dir"])
    db = data_dir / "alarms.sqlite3"
    damaged = db.read_bytes()
    with caplog.at_level(logging.ERROR, logger="gateway.alarms.store"):
        async with running_gateway(parse_config(config_data)) as running:
            gw, api = running.gw, running.api
            kept = sorted(data_dir.glob("alarms.sqlite3.corrupt-*"))
            assert [p.name for p in kept if not p.name.endswith(("-wal", "-shm"))] == [kept[0].name]
            assert kept[0].read_bytes() == damaged  # kept as found, for inspection
            assert any(
                r.levelno == logging.ERROR and kept[0].name in r.getMessage()
                for r in caplog.records
            )

            health = (await api.get("/api/health")).json()
            assert health["status"] == "degraded"
            assert health["store"]["healthy"] is True  # the fresh one commits
            assert health["store"]["recovered_from"] == str(kept[0])
            assert what in health["store"]["recovery_reason"]

            listed = (await api.get("/api/alarms", params={"type": "store_failure"})).json()
            assert [(a["site"], a["device"], a["severity"], a["state"]) for a in listed] == [
                ("xingfu", "test-gw", "major", "active")
            ]
            assert listed[0]["latched"] is True
            assert listed[0]["reason"] == "store_corrupt"

            # Shut-off and alarms keep working, and what happens now is stored.
            await probe.telemetry("gas-kitchen", {"lel": 45.0})
            cmd = await probe.wait_for("valve-kitchen/cmd", timeout=5)
            assert cmd["cmd"] == "close_valve"
            await probe.wait_for("xingfu/alarms", lambda m: m["type"] == "gas_leak")
            await probe.wait_for("xingfu/alarms", lambda m: m["type"] == "store_failure")
            assert await gw.store.flush(timeout_s=5)
            stored = await gw.store.query(states=["active"])
            assert {a.type.value for a in stored} == {"gas_leak", "store_failure"}

            # A person who has looked at the disk closes the alarm: health is ok again, the
            # recovery still on record.
            close = {"by": "王值班", "disposition": "real", "note": "磁盘已检查"}
            r = await api.post(f"/api/alarms/{listed[0]['id']}/close", json=close)
            assert r.status_code == 200, r.text
            health = (await api.get("/api/health")).json()
            assert health["status"] == "ok", health
            assert health["store"]["recovered_from"] == str(kept[0])

    # The next start finds a sound database: no new recovery, the closed alarm kept.
    async with running_gateway(parse_config(config_data)) as running:
        health = (await running.api.get("/api/health")).json()
        assert health["store"]["recovered_from"] is None
        listed = (await running.api.get("/api/alarms", params={"type": "store_failure"})).json()
        assert [a["state"] for a in listed] == ["closed"]
    assert len(list(data_dir.glob("alarms.sqlite3.corrupt-*"))) == len(kept)


async def test_a_file_of_garbage_is_kept_aside(
    config_data: dict[str, Any], probe: Probe, caplog: pytest.LogCaptureFixture
) -> None:
    data_dir = Path(config_data["gateway"]["data_dir"])
    data_dir.mkdir(parents=True)
    (data_dir / "alarms.sqlite3").write_bytes(os.urandom(16384))
    await _starts_on_a_fresh_store(config_data, probe, caplog, "file is not a database")


async def test_a_truncated_database_is_kept_aside(
    config_data: dict[str, Any], probe: Probe, caplog: pytest.LogCaptureFixture
) -> None:
    data_dir = Path(config_data["gateway"]["data_dir"])
    db = data_dir / "alarms.sqlite3"
    # A real alarm database with some history, cut in half as a failing card would.
    store = AlarmStore(db)
    await store.open()
    await store.close()
    with sqlite3.connect(db) as conn:
        conn.executemany(
            "INSERT INTO commands (id, site, device, cmd, requested_by, sent_at, detail) "
            "VALUES (?, 'xingfu', 'valve-kitchen', 'close_valve', 'system', 0, ?)",
            [(f"c{i}", "x" * 200) for i in range(2000)],
        )
    sqlite3.connect(db).execute("PRAGMA wal_checkpoint(TRUNCATE)").close()
    size = db.stat().st_size
    assert size > 100_000
    with open(db, "r+b") as f:
        f.truncate(size // 2)
    await _starts_on_a_fresh_store(config_data, probe, caplog, "quick_check found")
