"""`<data_dir>/gateway.lock`: held by a running gateway, so that `restore` (or a second
gateway) can tell it would pull the files from under it, and `reload` whom to signal (the
holder writes its pid in it).

An advisory `flock`: the kernel lets it go when the process ends, however it ends, so a
crash leaves no stale lock to clear by hand.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

LOCK_NAME = "gateway.lock"


class DataDirBusy(Exception):
    def __init__(self, data_dir: Path, holder: str) -> None:
        pid = f" (pid {holder})" if holder else ""
        super().__init__(f"a gateway is running on {data_dir}{pid}")
        self.holder = holder


@contextlib.contextmanager
def hold(data_dir: Path) -> Iterator[None]:
    """Hold the data directory's lock for the `with` block; `DataDirBusy` if another
    process does."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DataDirBusy(
                data_dir, os.pread(fd, 32, 0).decode(errors="replace").strip()
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the file releases the lock


def holder(data_dir: Path) -> int | None:
    """The pid of the process holding the data directory's lock, or None when none does.
    Only a live holder counts: a pid left in the file by a dead gateway, or reused since by
    another process, is never returned, because the kernel dropped that lock."""
    try:
        fd = os.open(data_dir / LOCK_NAME, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode(errors="replace").strip()
            return int(text) if text.isdigit() else None
        return None  # we got it: nobody holds it (closing the file lets it go)
    finally:
        os.close(fd)
