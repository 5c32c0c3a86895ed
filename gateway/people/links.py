"""`AckLinks`: the acknowledgement links sent to phones, the `ack_links` table of
`people.sqlite3` (README "Acknowledge from the phone").

A link names one person and one occurrence of one alarm (the escalation's occurrence,
`f"{count}:{severity}"`), so a link of an earlier raise cannot acknowledge a later one. Its
code is 10 random bytes in lower-case base32 (16 characters, 80 bits) and is the only
credential the mobile page asks for: only its SHA-256 is stored, so a copy of the database
acknowledges nothing. Every tap (status, time, address, note) is appended to the link's row.

Synchronous sqlite3, as `gateway.people.directory`: its own connection to the same file
(WAL, busy timeout), used from a worker thread by the gateway.
"""

from __future__ import annotations

import base64
import re
import secrets
import sqlite3
from dataclasses import dataclass
from enum import StrEnum

import orjson

from gateway.people.database import PeopleDatabase
from gateway.people.secrets import digest

CODE_BYTES = 10  # 80 bits: not guessable at any rate a gateway answers
CODE_LENGTH = 16  # base32 of 10 bytes, no padding
_CODE = re.compile(r"^[a-z2-7]{16}$")
NOTE_MAX = 200  # characters of a note kept with a response
# Expired links are deleted this long after (at start): their answers are on the alarm's
# timeline and in the audit trail; until then an old link still says "expired", not "unknown".
LINKS_KEPT_S = 30 * 24 * 3600.0


class LinkStatus(StrEnum):
    SEEN = "seen"  # 已知晓
    ON_WAY = "on_way"  # 正在赶往现场
    ON_SITE = "on_site"  # 已到场处置


class Refusal(StrEnum):
    """Why a code opens nothing."""

    UNKNOWN = "unknown"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class LinkResponse:
    status: LinkStatus
    at: float
    source: str
    note: str | None


@dataclass(frozen=True, slots=True)
class AckLink:
    login: str
    alarm_id: str
    occurrence: str
    created_at: float
    expires_at: float
    responses: tuple[LinkResponse, ...]

    def responded(self, status: LinkStatus) -> LinkResponse | None:
        return next((r for r in self.responses if r.status is status), None)


@dataclass(frozen=True, slots=True)
class Responded:
    link: AckLink  # with this response, when it is new
    first: bool  # the link's first response of any status
    repeated: LinkResponse | None  # this status was given before (then nothing is added)


def new_code() -> str:
    return base64.b32encode(secrets.token_bytes(CODE_BYTES)).decode("ascii").rstrip("=").lower()


def well_formed(code: str) -> bool:
    return bool(_CODE.match(code))


def _responses(raw: object) -> tuple[LinkResponse, ...]:
    items = orjson.loads(str(raw))
    return tuple(
        LinkResponse(LinkStatus(i["status"]), float(i["at"]), str(i["source"]), i.get("note"))
        for i in items
    )


def _link(row: tuple[object, ...]) -> AckLink:
    login, alarm_id, occurrence, created_at, expires_at, responses = row
    return AckLink(
        str(login),
        str(alarm_id),
        str(occurrence),
        float(created_at),  # type: ignore[arg-type]
        float(expires_at),  # type: ignore[arg-type]
        _responses(responses),
    )


_COLUMNS = "login, alarm_id, occurrence, created_at, expires_at, responses"


class AckLinks(PeopleDatabase):
    def issue(self, login: str, alarm_id: str, occurrence: str, now: float, ttl_s: float) -> str:
        """A new code for `login` about this occurrence of `alarm_id`; returned once."""
        code = new_code()
        with self._tx() as db:
            db.execute(
                "INSERT INTO ack_links (hash, login, alarm_id, occurrence, created_at, "
                "expires_at) VALUES (?,?,?,?,?,?)",
                (digest(code), login, alarm_id, occurrence, now, now + ttl_s),
            )
        return code

    def lookup(self, code: str, now: float) -> AckLink | Refusal:
        if not well_formed(code):
            return Refusal.UNKNOWN  # not even a code: no query
        with self._connection() as db:
            return self._find(db, code, now)

    def respond(
        self, code: str, status: LinkStatus, note: str | None, source: str, now: float
    ) -> Responded | Refusal:
        """Append a response, unless the link already has one of this status (a second tap,
        a reloaded page): then nothing is added and `repeated` says when it was given."""
        if not well_formed(code):
            return Refusal.UNKNOWN
        with self._tx() as db:
            found = self._find(db, code, now)
            if isinstance(found, Refusal):
                return found
            before = found.responded(status)
            if before is not None:
                return Responded(found, False, before)
            note = (note or "").strip()[:NOTE_MAX] or None
            response = LinkResponse(status, now, source, note)
            link = AckLink(
                found.login,
                found.alarm_id,
                found.occurrence,
                found.created_at,
                found.expires_at,
                (*found.responses, response),
            )
            raw = orjson.dumps(
                [
                    {"status": r.status.value, "at": r.at, "source": r.source, "note": r.note}
                    for r in link.responses
                ]
            )
            db.execute(
                "UPDATE ack_links SET responses=? WHERE hash=?", (raw.decode(), digest(code))
            )
            return Responded(link, not found.responses, None)

    def prune(self, before: float) -> int:
        """Links expired before `before` are deleted (their responses are on the timeline
        and in the audit trail)."""
        with self._tx() as db:
            return db.execute("DELETE FROM ack_links WHERE expires_at < ?", (before,)).rowcount

    @staticmethod
    def _find(db: sqlite3.Connection, code: str, now: float) -> AckLink | Refusal:
        row = db.execute(
            f"SELECT {_COLUMNS} FROM ack_links WHERE hash=?", (digest(code),)
        ).fetchone()
        if row is None:
            return Refusal.UNKNOWN
        link = _link(row)
        return Refusal.EXPIRED if now >= link.expires_at else link
