"""The people directory (issue 11): accounts with argon2id hashes, tokens and sessions kept
only as hashes, sessions that end when idle or old, contacts of the configuration as persons."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.config.loading import parse_config
from gateway.people.directory import People, PersonExists
from gateway.people.model import Origin, Person, Role, contact_persons
from gateway.people.passwords import (
    WeakPassword,
    check_strength,
    hash_password,
    verify_password,
)

IDLE, ABSOLUTE = 600.0, 3600.0


@pytest.fixture
def people(tmp_path: Path) -> People:
    p = People(tmp_path / "people.sqlite3")
    p.open()
    yield p  # type: ignore[misc]
    p.close()


def _duty(login: str = "wang") -> Person:
    return Person(login, "王值班", Role.DUTY, frozenset({"xingfu"}), "+8613800000011")


def _dump(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.parent.glob("people.sqlite3*"))


def test_passwords_are_argon2id_and_never_stored(people: People) -> None:
    people.add(_duty(), hash_password("correct horse battery"), 1000.0)
    stored = people.password_hash("wang")
    assert stored is not None and stored.startswith("$argon2id$")
    assert verify_password(stored, "correct horse battery")
    assert not verify_password(stored, "correct horse batterY")
    assert b"correct horse battery" not in _dump(people.path)
    with pytest.raises(PersonExists):
        people.add(_duty(), None, 1001.0)


def test_weak_passwords_are_refused() -> None:
    with pytest.raises(WeakPassword):
        check_strength("short", "wang")
    with pytest.raises(WeakPassword):
        check_strength("wang-1234567890", "wang")
    check_strength("a long enough phrase", "wang")


def test_sessions_end_when_idle_or_too_old_and_are_stored_hashed(people: People) -> None:
    people.add(_duty(), hash_password("correct horse battery"), 0.0)
    secret = people.start_session("wang", "127.0.0.1", 1000.0)
    assert secret.encode() not in _dump(people.path)
    owner = people.session_owner(secret, 1000.0 + IDLE - 1, idle_s=IDLE, absolute_s=ABSOLUTE)
    assert owner is not None and owner.person.login == "wang"
    # each use (written at most once a minute) keeps it from going idle...
    for t in (1000.0 + 2 * (IDLE - 1), 1000.0 + 3 * (IDLE - 1)):
        assert people.session_owner(secret, t, idle_s=IDLE, absolute_s=ABSOLUTE) is not None
    # past the absolute limit however busy
    assert (
        people.session_owner(secret, 1000.0 + ABSOLUTE + 1, idle_s=IDLE, absolute_s=ABSOLUTE)
        is None
    )
    # and it is gone for good (ended, not only refused)
    assert people.session_owner(secret, 1000.0 + 1, idle_s=IDLE, absolute_s=ABSOLUTE) is None

    idle = people.start_session("wang", "127.0.0.1", 5000.0)
    assert people.session_owner(idle, 5000.0 + IDLE + 1, idle_s=IDLE, absolute_s=ABSOLUTE) is None


def test_a_new_password_or_disabling_ends_sessions_and_stops_tokens(people: People) -> None:
    people.add(_duty(), hash_password("correct horse battery"), 0.0)
    s1 = people.start_session("wang", "127.0.0.1", 10.0)
    people.set_password("wang", hash_password("another long phrase"), 20.0)
    assert people.session_owner(s1, 30.0, idle_s=IDLE, absolute_s=ABSOLUTE) is None

    info, token = people.issue_token("wang", "scada", "admin", 40.0)
    assert token.encode() not in _dump(people.path)
    found = people.token_owner(token, 50.0)
    assert found is not None and found[0].login == "wang" and found[1] == info.id
    s2 = people.start_session("wang", "127.0.0.1", 60.0)
    people.set_disabled("wang", True, 70.0)
    assert people.token_owner(token, 80.0) is None
    assert people.session_owner(s2, 80.0, idle_s=IDLE, absolute_s=ABSOLUTE) is None
    assert people.password_hash("wang") is None  # a disabled person cannot log in
    people.set_disabled("wang", False, 90.0)
    assert people.token_owner(token, 100.0) is not None
    people.revoke_token(info.id, "admin", 110.0)
    assert people.token_owner(token, 120.0) is None
    assert people.tokens("wang")[0].revoked_at == 110.0


def test_can_sign_in_only_with_a_password_or_a_live_token(people: People) -> None:
    assert not people.can_sign_in()
    people.add(_duty(), None, 0.0)  # a contact: phone links only
    assert not people.can_sign_in()
    info, _ = people.issue_token("wang", "scada", "admin", 1.0)
    assert people.can_sign_in()
    people.revoke_token(info.id, "admin", 2.0)
    assert not people.can_sign_in()
    people.set_password("wang", hash_password("correct horse battery"), 3.0)
    assert people.can_sign_in()


def _config(contacts_a: list[dict[str, str]], bureau: list[dict[str, str]]) -> object:
    return parse_config(
        {
            "gateway": {"id": "gw"},
            "sites": [
                {"id": "a", "name": "甲", "kind": "elderly_care", "contacts": contacts_a},
                {
                    "id": "b",
                    "name": "乙",
                    "kind": "elderly_care",
                    "contacts": [
                        {"name": "李四应", "role": "safety_manager", "phone": "+8613800000002"}
                    ],
                },
            ],
            "notify": {"bureau_contacts": bureau},
        }
    )


def test_contacts_are_persons_one_per_phone_and_follow_the_file(people: People) -> None:
    contacts = [
        {"name": "张杰荣", "role": "legal_representative", "phone": "+8613800000001"},
        {"name": "李四应", "role": "safety_manager", "phone": "+8613800000002"},
        {"name": "只有邮箱", "role": "other", "email": "x@example.org"},
    ]
    bureau = [
        {"name": "局值班", "role": "bureau_duty", "phone": "+8613900000009", "login": "juzhiban"}
    ]
    persons = {p.login: p for p in contact_persons(_config(contacts, bureau))}  # type: ignore[arg-type]
    assert set(persons) == {"p8613800000001", "p8613800000002", "juzhiban"}
    assert persons["p8613800000002"].sites == {"a", "b"}  # one person, both sites
    assert persons["juzhiban"].role is Role.BUREAU and persons["juzhiban"].every_site
    assert persons["p8613800000001"].role is Role.LEGAL_REPRESENTATIVE

    people.sync_contacts(persons.values(), 0.0)
    # an admin's account of its own is never touched by the file
    people.add(Person("admin1", "管理员", Role.ADMIN, frozenset()), hash_password("x" * 12), 0.0)
    got = people.get("p8613800000001")
    assert got is not None and got.origin is Origin.CONFIG and not got.has_password
    assert people.with_phone("+8613800000002") == people.get("p8613800000002")

    # the legal representative leaves the file: disabled, not deleted (the audit names them)
    people.sync_contacts([p for k, p in persons.items() if k != "p8613800000001"], 1.0)
    gone = people.get("p8613800000001")
    assert gone is not None and gone.disabled
    assert people.get("admin1") is not None and not people.get("admin1").disabled  # type: ignore[union-attr]


def test_the_schema_is_the_declared_one(people: People) -> None:
    db = sqlite3.connect(people.path)
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"persons", "api_tokens", "sessions", "ack_links"} <= tables
    assert db.execute("PRAGMA user_version").fetchone()[0] == 1


def test_sessions_past_their_limits_are_pruned(people: People) -> None:
    people.add(_duty(), None, 0.0)
    old = people.start_session("wang", "127.0.0.1", 0.0)
    fresh = people.start_session("wang", "127.0.0.1", 5000.0)
    assert people.prune_sessions(5000.0 + 10, idle_s=IDLE, absolute_s=ABSOLUTE) == 1
    rows = sqlite3.connect(people.path).execute("SELECT count(*) FROM sessions").fetchone()
    assert rows == (1,)
    assert people.session_owner(fresh, 5020.0, idle_s=IDLE, absolute_s=ABSOLUTE) is not None
    assert people.session_owner(old, 5020.0, idle_s=IDLE, absolute_s=1e9) is None


def test_a_contact_disabled_by_a_person_stays_disabled_whatever_the_file_says(
    people: People,
) -> None:
    contacts = [{"name": "张杰荣", "role": "legal_representative", "phone": "+8613800000001"}]
    persons = contact_persons(_config(contacts, []))  # type: ignore[arg-type]
    people.sync_contacts(persons, 0.0)
    people.set_disabled("p8613800000001", True, 1.0, "root1")  # e.g. has left the home
    people.sync_contacts(persons, 2.0)  # a restart or reload with the same file
    assert people.get("p8613800000001").disabled  # type: ignore[union-attr]

    # one that left the file and came back is enabled again
    people.sync_contacts([p for p in persons if p.login != "p8613800000002"], 3.0)
    assert people.get("p8613800000002").disabled  # type: ignore[union-attr]
    people.sync_contacts(persons, 4.0)
    assert not people.get("p8613800000002").disabled  # type: ignore[union-attr]
    assert people.get("p8613800000001").disabled  # type: ignore[union-attr]
