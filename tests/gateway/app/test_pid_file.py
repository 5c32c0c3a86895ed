"""gateway/app/reload.py's pid file: `safety-gateway reload` finds the running gateway, and
never a process that merely reuses a dead gateway's pid."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from gateway.app.reload import PID_FILE, remove_pid_file, running_gateway, write_pid_file


def test_written_then_found_then_removed(tmp_path: Path) -> None:
    assert running_gateway(tmp_path) is None  # no file
    path = write_pid_file(tmp_path)
    assert running_gateway(tmp_path) == os.getpid()
    remove_pid_file(path)
    assert not path.exists() and running_gateway(tmp_path) is None


def test_a_dead_or_reused_pid_is_not_a_gateway(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True)  # fmt: skip
    (tmp_path / PID_FILE).write_text(f"{done.stdout.strip()} 12345\n")
    assert running_gateway(tmp_path) is None  # gone
    # Our own pid, but another start time: the pid was reused by another process.
    (tmp_path / PID_FILE).write_text(f"{os.getpid()} 1\n")
    assert running_gateway(tmp_path) is None
    (tmp_path / PID_FILE).write_text("not a pid\n")
    assert running_gateway(tmp_path) is None


def test_another_process_s_file_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / PID_FILE
    path.write_text("1 1\n")
    remove_pid_file(path)
    assert path.exists()
