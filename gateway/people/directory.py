"""`People`: the persons, their API tokens and their sessions in `people.sqlite3`.

Synchronous (sqlite3, `PeopleDatabase`): the CLI uses it as it is, the gateway from a worker
thread (`asyncio.to_thread`), so that neither a slow disk nor a busy database stalls the event
loop.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from gateway.people.database import PeopleDatabase
from gateway.people.model import Origin, Person, Role
from gateway.people.secrets import digest, new_id, new_session_id, new_token

_PERSON_COLUMNS = "login, name, role, sites, phone, email, origin, disabled, password_hash"
TOUCH_EVERY_S = 60.0  # a session's or token's last use is written at most this often


class PersonExists(Exception):
    pass


class UnknownPerson(Exception):
    pass


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: str
    login: str
    label: str
    created_at: float
    created_by: str
    revoked_at: float | None
    last_used_at: float | None


@dataclass(frozen=True, slots=True)
class SessionOwner:
    person: Person
    session: str  # the session's hash: what logout ends
    created_at: float


def _sites(text: str) -> frozenset[str]:
    return frozenset(s for s in text.split(",") if s)


def _person(row: tuple[object, ...]) -> Person:
    login, name, role, sites, phone, email, origin, disabled, pw = row
    return Person(
        login=str(login),
        name=str(name),
        role=Role(str(role)),
        sites=_sites(str(sites)),
        phone=phone if isinstance(phone, str) else None,
        email=email if isinstance(email, str) else None,
        origin=Origin(str(origin)),
        disabled=bool(disabled),
        has_password=pw is not None,
    )


class People(PeopleDatabase):
    # ------------------------------------------------------------------ persons
    def sync_contacts(self, persons: Iterable[Person], now: float) -> None:
        """The configuration's contacts, as the file has them now: new ones added, changed
        ones updated, removed ones disabled. An admin's account of the same login is left
        alone (the admin's word wins over the file's)."""
        wanted = {p.login: p for p in persons}
        with self._tx() as db:
            rows = db.execute("SELECT login, origin FROM persons").fetchall()
            origin = {str(login): str(o) for login, o in rows}
            for p in wanted.values():
                if p.login not in origin:
                    db.execute(
                        "INSERT INTO persons (login, name, role, sites, phone, email, origin, "
                        "disabled, created_at, updated_at) VALUES (?,?,?,?,?,?,?,0,?,?)",
                        (p.login, p.name, p.role, ",".join(sorted(p.sites)), p.phone,
                         p.email, Origin.CONFIG, now, now),
                    )  # fmt: skip
                elif origin[p.login] == Origin.CONFIG:
                    db.execute(
                        # Back in the file: enabled again, unless a person disabled them.
                        "UPDATE persons SET name=?, role=?, sites=?, phone=?, email=?, "
                        "disabled = disabled AND disabled_by IS NOT 'config', "
                        "disabled_by = CASE WHEN disabled_by = 'config' THEN NULL "
                        "ELSE disabled_by END, updated_at=? WHERE login=?",
                        (p.name, p.role, ",".join(sorted(p.sites)), p.phone, p.email, now,
                         p.login),
                    )  # fmt: skip
            for login, o in origin.items():
                if o == Origin.CONFIG and login not in wanted:
                    db.execute(
                        "UPDATE persons SET disabled=1, disabled_by=COALESCE(disabled_by, "
                        "'config'), updated_at=? WHERE login=? AND disabled=0",
                        (now, login),
                    )
                    db.execute("DELETE FROM sessions WHERE login=?", (login,))

    def add(self, person: Person, password_hash: str | None, now: float) -> Person:
        with self._tx() as db:
            if db.execute("SELECT 1 FROM persons WHERE login=?", (person.login,)).fetchone():
                raise PersonExists(person.login)
            db.execute(
                "INSERT INTO persons (login, name, role, sites, phone, email, origin, disabled, "
                "password_hash, created_at, updated_at, password_changed_at) "
                "VALUES (?,?,?,?,?,?,?,0,?,?,?,?)",
                (person.login, person.name, person.role, ",".join(sorted(person.sites)),
                 person.phone, person.email, person.origin, password_hash, now, now,
                 now if password_hash else None),
            )  # fmt: skip
        found = self.get(person.login)
        assert found is not None
        return found

    def update(
        self,
        login: str,
        now: float,
        *,
        name: str | None = None,
        role: Role | None = None,
        sites: frozenset[str] | None = None,
        phone: str | None = None,
        email: str | None = None,
    ) -> Person:
        sets: list[str] = []
        args: list[object] = []
        for column, value in (("name", name), ("role", role), ("phone", phone), ("email", email)):
            if value is not None:
                sets.append(f"{column}=?")
                args.append(value)
        if sites is not None:
            sets.append("sites=?")
            args.append(",".join(sorted(sites)))
        with self._tx() as db:
            self._require(db, login)
            if sets:
                db.execute(
                    f"UPDATE persons SET {', '.join(sets)}, updated_at=? WHERE login=?",
                    (*args, now, login),
                )
            if role is not None or sites is not None:  # what a session may do has changed
                db.execute("DELETE FROM sessions WHERE login=?", (login,))
        found = self.get(login)
        assert found is not None
        return found

    def set_password(self, login: str, password_hash: str, now: float) -> None:
        """A new password ends the person's sessions (a stolen one among them)."""
        with self._tx() as db:
            self._require(db, login)
            db.execute(
                "UPDATE persons SET password_hash=?, password_changed_at=?, updated_at=? "
                "WHERE login=?",
                (password_hash, now, now, login),
            )
            db.execute("DELETE FROM sessions WHERE login=?", (login,))

    def set_disabled(self, login: str, disabled: bool, now: float, by: str = "admin") -> None:
        """A disabled person can neither log in nor use a session, token or phone link; one
        disabled by a person stays so whatever the configuration file says."""
        with self._tx() as db:
            self._require(db, login)
            db.execute(
                "UPDATE persons SET disabled=?, disabled_by=?, updated_at=? WHERE login=?",
                (int(disabled), by if disabled else None, now, login),
            )
            if disabled:
                db.execute("DELETE FROM sessions WHERE login=?", (login,))

    def get(self, login: str) -> Person | None:
        rows = self._read(f"SELECT {_PERSON_COLUMNS} FROM persons WHERE login=?", (login,))
        return _person(rows[0]) if rows else None

    def password_hash(self, login: str) -> str | None:
        rows = self._read(
            "SELECT password_hash FROM persons WHERE login=? AND disabled=0", (login,)
        )
        return str(rows[0][0]) if rows and rows[0][0] is not None else None

    def persons(self) -> list[Person]:
        return [
            _person(r) for r in self._read(f"SELECT {_PERSON_COLUMNS} FROM persons ORDER BY login")
        ]

    def with_phone(self, phone: str) -> Person | None:
        rows = self._read(
            f"SELECT {_PERSON_COLUMNS} FROM persons WHERE phone=? AND disabled=0 "
            "ORDER BY origin = 'config' DESC, login LIMIT 1",
            (phone,),
        )
        return _person(rows[0]) if rows else None

    def can_sign_in(self) -> bool:
        """Whether anyone can prove who they are: an enabled person with a password, or a
        live token. None: the API stays in local operator mode (loopback only)."""
        rows = self._read(
            "SELECT EXISTS (SELECT 1 FROM persons WHERE password_hash IS NOT NULL "
            "AND disabled=0) OR EXISTS (SELECT 1 FROM api_tokens WHERE revoked_at IS NULL)"
        )
        return bool(rows[0][0])

    @staticmethod
    def _require(db: sqlite3.Connection, login: str) -> None:
        if not db.execute("SELECT 1 FROM persons WHERE login=?", (login,)).fetchone():
            raise UnknownPerson(login)

    # ------------------------------------------------------------------- tokens
    def issue_token(self, login: str, label: str, by: str, now: float) -> tuple[TokenInfo, str]:
        """A new token for `login`: the secret is returned once and never stored."""
        secret = new_token()
        info = TokenInfo(new_id(), login, label, now, by, None, None)
        with self._tx() as db:
            self._require(db, login)
            db.execute(
                "INSERT INTO api_tokens (id, login, label, hash, created_at, created_by) "
                "VALUES (?,?,?,?,?,?)",
                (info.id, login, label, digest(secret), now, by),
            )
        return info, secret

    def revoke_token(self, token_id: str, by: str, now: float) -> TokenInfo | None:
        with self._tx() as db:
            db.execute(
                "UPDATE api_tokens SET revoked_at=?, revoked_by=? "
                "WHERE id=? AND revoked_at IS NULL",
                (now, by, token_id),
            )
        return next((t for t in self.tokens() if t.id == token_id), None)

    def tokens(self, login: str | None = None) -> list[TokenInfo]:
        sql = (
            "SELECT id, login, label, created_at, created_by, revoked_at, last_used_at "
            "FROM api_tokens"
        )
        rows = (
            self._read(sql + " WHERE login=? ORDER BY created_at", (login,))
            if login
            else (self._read(sql + " ORDER BY created_at"))
        )
        return [
            TokenInfo(str(i), str(lg), str(lb), float(ca), str(cb),  # type: ignore[arg-type]
                      None if ra is None else float(ra),  # type: ignore[arg-type]
                      None if lu is None else float(lu))  # type: ignore[arg-type]
            for i, lg, lb, ca, cb, ra, lu in rows
        ]  # fmt: skip

    def token_owner(self, secret: str, now: float) -> tuple[Person, str] | None:
        """The enabled person a live token was issued to, and the token's id."""
        rows = self._read(
            "SELECT id, login, last_used_at FROM api_tokens WHERE hash=? AND revoked_at IS NULL",
            (digest(secret),),
        )
        if not rows:
            return None
        token_id, login, last = rows[0]
        person = self.get(str(login))
        if person is None or person.disabled:
            return None
        if last is None or now - float(last) >= TOUCH_EVERY_S:  # type: ignore[arg-type]
            with self._tx() as db:
                db.execute("UPDATE api_tokens SET last_used_at=? WHERE id=?", (now, token_id))
        return person, str(token_id)

    # ----------------------------------------------------------------- sessions
    def start_session(self, login: str, source: str, now: float) -> str:
        secret = new_session_id()
        with self._tx() as db:
            db.execute(
                "INSERT INTO sessions (hash, login, created_at, seen_at, source) "
                "VALUES (?,?,?,?,?)",
                (digest(secret), login, now, now, source),
            )
        return secret

    def session_owner(
        self, secret: str, now: float, *, idle_s: float, absolute_s: float
    ) -> SessionOwner | None:
        """The enabled person of a live session; a session idle or old past its limit is
        ended here. Its last use is written at most once a minute."""
        h = digest(secret)
        rows = self._read("SELECT login, created_at, seen_at FROM sessions WHERE hash=?", (h,))
        if not rows:
            return None
        login, created_at, seen_at = rows[0]
        created, seen = float(created_at), float(seen_at)  # type: ignore[arg-type]
        if now - seen > idle_s or now - created > absolute_s:
            self.end_session(h)
            return None
        person = self.get(str(login))
        if person is None or person.disabled:
            return None
        if now - seen >= TOUCH_EVERY_S:
            with self._tx() as db:
                db.execute("UPDATE sessions SET seen_at=? WHERE hash=?", (now, h))
        return SessionOwner(person, h, created)

    def end_session(self, session_hash: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM sessions WHERE hash=?", (session_hash,))

    def prune_sessions(self, now: float, *, idle_s: float, absolute_s: float) -> int:
        with self._tx() as db:
            cur = db.execute(
                "DELETE FROM sessions WHERE seen_at < ? OR created_at < ?",
                (now - idle_s, now - absolute_s),
            )
            return cur.rowcount
