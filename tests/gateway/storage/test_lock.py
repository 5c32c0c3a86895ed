"""gateway/storage/lock.py: the data directory's lock names its live holder, which is how
`safety-gateway reload` finds the gateway to signal, and never a dead gateway's pid."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.storage import lock


def test_the_holder_is_named_while_it_holds_and_nobody_after(tmp_path: Path) -> None:
    assert lock.holder(tmp_path) is None  # no file yet
    with lock.hold(tmp_path):
        assert lock.holder(tmp_path) == os.getpid()
        with pytest.raises(lock.DataDirBusy, match=str(os.getpid())), lock.hold(tmp_path):
            pass
    assert lock.holder(tmp_path) is None  # the file stays, the lock is gone


def test_a_dead_holder_s_pid_left_in_the_file_is_not_a_gateway(tmp_path: Path) -> None:
    # A gateway that ended, even by kill -9, leaves its pid in the file; its lock is gone.
    code = (
        "import sys; from pathlib import Path; from gateway.storage import lock\n"
        "with lock.hold(Path(sys.argv[1])): print('held', flush=True)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)],
                          check=True, capture_output=True, text=True)  # fmt: skip
    assert done.stdout.strip() == "held"
    assert (tmp_path / lock.LOCK_NAME).read_text().strip().isdigit()
    assert lock.holder(tmp_path) is None
