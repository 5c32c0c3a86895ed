"""`safety-gateway audit verify | list`: exit codes and what they print, in process (the
console script itself is run once, marked `process`)."""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.audit import AuditEntry, append_sync
from gateway.cli.main import main
from tests.conftest import site_config, write_config

T0 = 1_795_000_000.0  # 2026-11-18 19:06:40 in Shanghai


@pytest.fixture
def config(tmp_path: Path) -> Path:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    for i in range(1, 13):
        site = "xingfu" if i % 2 else None
        append_sync(
            data_dir / "audit.sqlite3",
            AuditEntry(T0 + i * 60, "wang", "王值班", "duty", "10.0.0.7", "alarm.ack", site,
                       f"a-{i}", detail={"note": "已处理"}),
        )  # fmt: skip
    return write_config(tmp_path / "gateway.yaml", site_config(data_dir, 1883))


def test_verify_ok_and_broken(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "verify", "-c", str(config)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("audit log OK: 12 entries, head ")
    db = config.parent / "data" / "audit.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE audit SET target = 'a-0' WHERE seq = 7")
    conn.close()
    assert main(["audit", "verify", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("audit log BROKEN at row 7: hash mismatch:"), out


def test_verify_finds_rows_deleted_at_the_end(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with sqlite3.connect(config.parent / "data" / "audit.sqlite3") as conn:
        conn.execute("DELETE FROM audit WHERE seq > 10")
    conn.close()
    assert main(["audit", "verify", "-c", str(config)]) == 1
    assert "BROKEN at row 11: missing rows at end" in capsys.readouterr().out


def test_an_invalid_config_is_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("gateway: {}\n")
    assert main(["audit", "verify", "-c", str(bad)]) == 2


def test_list(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "list", "-c", str(config), "--limit", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["12", "11", "10"]
    assert lines[1].split("\t") == [
        "11", "2026-11-18T19:17:40.000+08:00", "wang(王值班)", "duty", "10.0.0.7",
        "alarm.ack", "xingfu", "a-11", "ok", "note=已处理",
    ]  # fmt: skip
    assert lines[0].split("\t")[6] == "-"  # no site
    # --since a day is midnight in the gateway's zone; a time without offset is in it too.
    assert main(["audit", "list", "-c", str(config), "--since", "2026-11-18"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 12
    assert main(["audit", "list", "-c", str(config), "--since", "2026-11-18T19:10"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].split("\t")[0] == "4"
    assert main(["audit", "list", "-c", str(config), "--since", "2026-11-19"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["audit", "list", "-c", str(config), "--since", "soon"]) == 2
    assert main(["audit", "list", "-c", str(config), "--limit", "0"]) == 2


def test_the_console_script(
    config: Path, run_cli: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    done = run_cli("audit", "verify", "-c", str(config))
    assert (done.returncode, done.stdout[:30]) == (0, "audit log OK: 12 entries, head")
