"""The head file beside the log (`audit.head`: last seq and hash, replaced atomically after
each append), which shows rows deleted at the end of the chain, and the lock file
(`audit.lock`, flock) under which every process appends."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from gateway.storage import migrate

LOCK_TIMEOUT_S: Final = migrate.BUSY_TIMEOUT_S


class AuditLocked(TimeoutError):
    """Another process held the append lock for longer than `LOCK_TIMEOUT_S`."""


def head_path(db_path: Path) -> Path:
    return db_path.with_suffix(".head")


def lock_path(db_path: Path) -> Path:
    return db_path.with_suffix(".lock")


# --------------------------------------------------------------------------- head file
@dataclass(frozen=True, slots=True)
class Head:
    seq: int
    hash: str


class HeadUnreadable(ValueError):
    pass


def read_head(db_path: Path) -> Head | None:
    """The head file's content; None if there is none. Raises HeadUnreadable."""
    try:
        raw = head_path(db_path).read_text(encoding="ascii")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise HeadUnreadable(str(exc)) from exc
    try:
        data = json.loads(raw)
        seq, digest = data["seq"], data["hash"]
    except (ValueError, TypeError, KeyError) as exc:
        raise HeadUnreadable(f"not a head: {raw[:80]!r}") from exc
    if not isinstance(seq, int) or not isinstance(digest, str):
        raise HeadUnreadable(f"not a head: {raw[:80]!r}")
    return Head(seq, digest)


def write_head(db_path: Path, seq: int, digest: str) -> None:
    """Atomically: a reader sees the old head or the new one, never a part."""
    path = head_path(db_path)
    tmp = path.with_name(f"{path.name}.tmp")
    with open(tmp, "w", encoding="ascii") as f:
        f.write(json.dumps({"seq": seq, "hash": digest}) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@contextlib.contextmanager
def exclusive(db_path: Path, timeout_s: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """The appenders' lock, across processes: the transaction and the head write as one."""
    with open(lock_path(db_path), "a+b") as f:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise AuditLocked(f"{lock_path(db_path)} held for over {timeout_s}s") from None
                time.sleep(0.005)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
