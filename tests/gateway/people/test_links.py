"""Phone acknowledgement links: codes, hashing, expiry and repeated taps."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.people.directory import People
from gateway.people.links import (
    CODE_LENGTH,
    AckLinks,
    LinkStatus,
    Refusal,
    Responded,
    new_code,
    well_formed,
)

T0 = 1_795_000_000.0
DAY = 24 * 3600.0


@pytest.fixture
def links(tmp_path: Path) -> Iterator[AckLinks]:
    people = People(tmp_path / "people.sqlite3")
    people.open()  # migrates; the links share the file
    people.close()
    links = AckLinks(tmp_path / "people.sqlite3")
    links.open()
    yield links
    links.close()


def test_a_code_has_80_random_bits_in_lower_case_base32() -> None:
    codes = {new_code() for _ in range(1000)}
    assert len(codes) == 1000
    assert all(len(c) == CODE_LENGTH and well_formed(c) for c in codes)
    assert not well_formed("ABCDEFGHIJKLMNOP") and not well_formed("abc")


def test_only_the_codes_hash_is_stored(links: AckLinks, tmp_path: Path) -> None:
    code = links.issue("p8613800000002", "a1", "1:critical", T0, DAY)
    raw = (tmp_path / "people.sqlite3").read_bytes()
    wal = tmp_path / "people.sqlite3-wal"
    raw += wal.read_bytes() if wal.exists() else b""
    assert code.encode() not in raw
    rows = sqlite3.connect(tmp_path / "people.sqlite3").execute("SELECT * FROM ack_links")
    assert code not in repr(rows.fetchall())


def test_lookup_finds_the_link_until_it_expires(links: AckLinks) -> None:
    code = links.issue("p8613800000002", "a1", "1:critical", T0, DAY)
    link = links.lookup(code, T0 + 60)
    assert not isinstance(link, Refusal)
    assert (link.login, link.alarm_id, link.occurrence) == ("p8613800000002", "a1", "1:critical")
    assert link.expires_at == T0 + DAY and link.responses == ()
    assert links.lookup(code, T0 + DAY - 1) == link
    assert links.lookup(code, T0 + DAY) is Refusal.EXPIRED
    assert links.respond(code, LinkStatus.SEEN, None, "127.0.0.1", T0 + DAY) is Refusal.EXPIRED


def test_unknown_and_malformed_codes_are_unknown(links: AckLinks) -> None:
    links.issue("p8613800000002", "a1", "1:critical", T0, DAY)
    assert links.lookup(new_code(), T0) is Refusal.UNKNOWN
    assert links.lookup("'; drop table x", T0) is Refusal.UNKNOWN
    assert links.respond("x" * 16, LinkStatus.SEEN, None, "", T0) is Refusal.UNKNOWN


def test_each_status_is_recorded_once_and_a_repeat_says_when(links: AckLinks) -> None:
    code = links.issue("p8613800000002", "a1", "1:critical", T0, DAY)
    first = links.respond(code, LinkStatus.SEEN, "  看到了 ", "10.0.0.5", T0 + 10)
    assert isinstance(first, Responded) and first.first and first.repeated is None
    again = links.respond(code, LinkStatus.SEEN, "again", "10.0.0.6", T0 + 20)
    assert isinstance(again, Responded) and not again.first
    assert again.repeated is not None and again.repeated.at == T0 + 10
    on_way = links.respond(code, LinkStatus.ON_WAY, "", "10.0.0.5", T0 + 30)
    assert isinstance(on_way, Responded) and not on_way.first and on_way.repeated is None
    link = links.lookup(code, T0 + 40)
    assert not isinstance(link, Refusal)
    assert [(r.status, r.at, r.source, r.note) for r in link.responses] == [
        (LinkStatus.SEEN, T0 + 10, "10.0.0.5", "看到了"),
        (LinkStatus.ON_WAY, T0 + 30, "10.0.0.5", None),
    ]


def test_two_links_of_one_alarm_are_apart(links: AckLinks) -> None:
    a = links.issue("p8613800000001", "a1", "1:critical", T0, DAY)
    b = links.issue("p8613800000002", "a1", "1:critical", T0, DAY)
    assert a != b
    links.respond(a, LinkStatus.SEEN, None, "", T0)
    other = links.lookup(b, T0)
    assert not isinstance(other, Refusal) and other.responses == ()


def test_prune_drops_expired_links(links: AckLinks) -> None:
    old = links.issue("p1", "a1", "1:critical", T0, 3600)
    new = links.issue("p1", "a2", "1:critical", T0, DAY)
    assert links.prune(T0 + 7200) == 1
    assert links.lookup(old, T0) is Refusal.UNKNOWN
    assert not isinstance(links.lookup(new, T0), Refusal)
