"""`ReminderStore`: the one reader and writer of `<data_dir>/reminders.sqlite3`: which
reminders and alerts went out, to how many, and how each attempt went.

A reminder is claimed (written 'pending') before it is sent and finished after: a key
already sent or failed is never sent again; one found pending was in flight when the
process died, and is sent again (a second SMS is better than none); one that reached nobody
is tried again later, a few times. Synchronous (sqlite3),
called from a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.storage.owned import DatabaseUnavailable, OwnedDatabase
from gateway.storage.schemas import REMINDERS

KEPT_S = 400 * 86400.0  # as long as the daily reports read back
TRIES = 3  # a reminder that reached nobody is tried again, this many times in all
RETRY_S = 600.0  # that long apart: a provider's outage is not over in seconds


class RemindersUnavailable(DatabaseUnavailable):
    pass


@dataclass(frozen=True, slots=True)
class SentReminder:
    key: str
    kind: str
    site: str | None
    created_at: float
    state: str
    finished_at: float | None
    recipients: int
    detail: str


class ReminderStore(OwnedDatabase):
    SCHEMA = REMINDERS
    Unavailable = RemindersUnavailable

    def unsent(self, keys: list[str], now: float) -> set[str]:
        """Those of `keys` to send now: new; pending from a run that died; failed (every
        channel, every recipient) fewer than `TRIES` times and not in the last `RETRY_S`."""
        if not keys:
            return set()
        done: set[str] = set()
        with self._connection() as db:
            for i in range(0, len(keys), 500):  # SQLite's variable limit
                chunk = keys[i : i + 500]
                done |= {
                    str(r[0])
                    for r in db.execute(
                        f"SELECT key FROM reminders WHERE key IN ({', '.join('?' * len(chunk))}) "
                        "AND (state = 'sent' OR (state = 'failed' AND "
                        "(tries >= ? OR finished_at > ?)))",
                        [*chunk, TRIES, now - RETRY_S],
                    )
                }
        return set(keys) - done

    def claim(self, key: str, kind: str, site: str | None, now: float) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO reminders (key, kind, site, created_at, state) "
                "VALUES (?,?,?,?,'pending') ON CONFLICT (key) DO UPDATE SET state='pending'",
                (key, kind, site, now),
            )

    def finish(self, key: str, ok: bool, recipients: int, detail: str, now: float) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE reminders SET state=?, finished_at=?, recipients=?, detail=?, "
                "tries=tries + 1 WHERE key=?",
                ("sent" if ok else "failed", now, recipients, detail, key),
            )

    def recent(self, since: float) -> list[SentReminder]:
        with self._connection() as db:
            rows = db.execute(
                "SELECT key, kind, site, created_at, state, finished_at, recipients, detail "
                "FROM reminders WHERE created_at >= ? ORDER BY created_at",
                (since,),
            ).fetchall()
        return [
            SentReminder(str(k), str(kd), None if s is None else str(s), float(c), str(st),
                         None if f is None else float(f), int(n), str(d))
            for k, kd, s, c, st, f, n, d in rows
        ]  # fmt: skip

    def prune(self, before: float) -> int:
        with self._tx() as db:
            return db.execute("DELETE FROM reminders WHERE created_at < ?", (before,)).rowcount
