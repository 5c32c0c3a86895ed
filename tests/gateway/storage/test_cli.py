"""`safety-gateway backup | restore`, and `run` / `check` on a data directory they must not
touch: a database newer than the code, or one a running gateway holds."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.storage import lock
from gateway.storage.schemas import ALARMS
from tests.conftest import GatewayProcess, Mosquitto, free_port, site_config, write_config
from tests.fixtures import RELEASE, rows, version
from tests.gateway.app.test_process import connected

Cli = Callable[..., subprocess.CompletedProcess[str]]


def release_site(tmp_path: Path, broker_port: int, **kw: Any) -> tuple[Path, Path]:
    """A configuration whose data directory holds the release's databases."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    for f in RELEASE.glob("*.sqlite3"):
        shutil.copy(f, data_dir / f.name)
    cfg = write_config(tmp_path / "gateway.yaml", site_config(data_dir, broker_port, **kw))
    return cfg, data_dir


def test_backup_writes_a_checked_copy_of_each_database(tmp_path: Path, run_cli: Cli) -> None:
    cfg, data_dir = release_site(tmp_path, 1)
    done = run_cli("backup", "-c", str(cfg))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2 and all("quick_check ok" in line for line in lines)
    [alarms] = (data_dir / "backups").glob("alarms-*.sqlite3")
    assert rows(alarms) == rows(RELEASE / "alarms.sqlite3")
    assert version(alarms) == 0  # a copy as it is: backing up migrates nothing


def test_run_and_check_refuse_a_database_newer_than_the_code(tmp_path: Path, run_cli: Cli) -> None:
    cfg, data_dir = release_site(tmp_path, 1)
    with sqlite3.connect(data_dir / "alarms.sqlite3") as db:
        db.execute("PRAGMA user_version = 9")
    before = (data_dir / "alarms.sqlite3").read_bytes()
    for command in ("run", "check"):
        done = run_cli(command, "-c", str(cfg))
        assert done.returncode == 1, (command, done.stderr)
        assert "has schema version 9, newer than this gateway's" in done.stderr
        assert f"this gateway's {ALARMS.version}" in done.stderr
    assert (data_dir / "alarms.sqlite3").read_bytes() == before
    assert not list(data_dir.glob("*.pre-upgrade"))


def test_run_and_restore_refuse_a_data_dir_a_gateway_holds(tmp_path: Path, run_cli: Cli) -> None:
    cfg, data_dir = release_site(tmp_path, 1)
    assert run_cli("backup", "-c", str(cfg)).returncode == 0
    [backup] = (data_dir / "backups").glob("alarms-*.sqlite3")
    before = (data_dir / "alarms.sqlite3").read_bytes()
    with lock.hold(data_dir):
        done = run_cli("run", "-c", str(cfg))
        assert done.returncode == 1
        assert f"a gateway is running on {data_dir}" in done.stderr
        done = run_cli("restore", "-c", str(cfg), str(backup))
        assert done.returncode == 1
        assert "stop it first" in done.stderr
    assert (data_dir / "alarms.sqlite3").read_bytes() == before


def test_restore_refuses_what_is_not_a_sound_backup(tmp_path: Path, run_cli: Cli) -> None:
    cfg, data_dir = release_site(tmp_path, 1)
    bad = tmp_path / "alarms-20261202T033000Z.sqlite3"
    bad.write_bytes(b"\0" * 4096)
    done = run_cli("restore", "-c", str(cfg), str(bad))
    assert done.returncode == 1
    assert "not restored" in done.stderr
    done = run_cli("restore", "-c", str(cfg), str(tmp_path / "missing.sqlite3"))
    assert done.returncode == 2
    assert "no such file" in done.stderr
    assert rows(data_dir / "alarms.sqlite3") == rows(RELEASE / "alarms.sqlite3")
    assert not list(data_dir.glob("*.before-restore-*"))


@pytest.mark.broker
async def test_a_release_data_dir_upgrades_in_the_gateway_and_a_backup_restores(
    tmp_path: Path, broker: Mosquitto, run_cli: Cli, gateway_process: GatewayProcess
) -> None:
    port = free_port()
    cfg, data_dir = release_site(tmp_path, broker.port, http={"host": "127.0.0.1", "port": port})
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "gateway.log"
    with gateway_process(cfg, port, log):
        await connected(base)
        async with httpx.AsyncClient(base_url=base) as c:
            listed = (await c.get("/api/alarms", params={"state": "active"})).json()
            assert {a["id"] for a in listed} >= {"a-acked", "a-active"}
            closed = (await c.get("/api/alarms/a-old-closed")).json()
            assert [e["action"] for e in closed["timeline"]] == [
                "raised", "cleared", "acked", "closed"
            ]  # fmt: skip
            health = (await c.get("/api/health")).json()
            assert health["storage"]["healthy"] is True
            assert health["storage"]["next_run_at"] is not None
        assert version(data_dir / "alarms.sqlite3") == ALARMS.version
        assert len(list(data_dir.glob("alarms.sqlite3.v0-*.pre-upgrade"))) == 1

        assert run_cli("backup", "-c", str(cfg)).returncode == 0  # online, while it runs
        [backup] = (data_dir / "backups").glob("alarms-*.sqlite3")
        refused = run_cli("restore", "-c", str(cfg), str(backup))
        assert refused.returncode == 1
        assert "a gateway is running on" in refused.stderr

    with sqlite3.connect(data_dir / "alarms.sqlite3") as db:  # something goes wrong...
        db.execute("DELETE FROM alarm_timeline")
    done = run_cli("restore", "-c", str(cfg), str(backup))
    assert done.returncode == 0, done.stderr
    assert "the file it replaced is kept as" in done.stdout
    with gateway_process(cfg, port, log):
        await connected(base)
        async with httpx.AsyncClient(base_url=base) as c:
            closed = (await c.get("/api/alarms/a-old-closed")).json()
            assert len(closed["timeline"]) == 4
