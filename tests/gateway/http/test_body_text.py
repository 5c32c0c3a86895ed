"""Text in request bodies is cleaned of control and bidi characters before anything stores
or shows it (issue 11: `by` took U+0000 and U+202E); notes keep their line breaks and
passwords are taken exactly as typed."""

from __future__ import annotations

from gateway.http.alarms import AckBody, CloseBody
from gateway.http.login import LoginBody
from gateway.http.people import NewPerson


def test_names_lose_controls_and_bidi_marks_and_notes_keep_their_lines() -> None:
    body = AckBody(by="县局\u202e局长\x00", note="第一行\n第二行\u2066\x07")
    assert (body.by, body.note) == ("县局局长", "第一行\n第二行")
    close = CloseBody(by="王\u200f值班", disposition="real", note="a\r\nb\tc")
    assert (close.by, close.note) == ("王值班", "a\nb\tc")


def test_passwords_are_taken_as_typed() -> None:
    assert LoginBody(login="wang\u202e", password="pa\u202ess\x00word").password == (
        "pa\u202ess\x00word"
    )
    person = NewPerson(login="wang", name="王\u202e值班", role="duty", password="x\u202ey")
    assert (person.name, person.password) == ("王值班", "x\u202ey")
