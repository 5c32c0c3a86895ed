"""Escalation policy with a fake clock: pure, no I/O, no sleeps."""

from __future__ import annotations

import pytest

from gateway.notify.policy import (
    AlarmInfo,
    Escalations,
    SendState,
    Step,
    Why,
    default_policies,
)
from rules.model import Instant

SMS = ("sms-aliyun", "sms-tencent")
VOICE = ("voice",)
T0 = 1_800_000_000.0
MONO0 = 9_000.0
HOUR = 3600.0


def at(t: float, step: float = 0.0, mono0: float = MONO0) -> Instant:
    """Wall time `t` (plus a step of the wall clock), monotonic time running alongside."""
    return Instant(mono0 + (t - T0), t + step)


NOW = at(T0)


def alarm(
    id_: str = "a1", site: str = "xingfu", severity: str = "critical", count: int = 1,
    raised: float = T0, acked: bool = False, closed: bool = False, device: str = "gas-kitchen",
) -> AlarmInfo:  # fmt: skip
    return AlarmInfo(id_, site, device, severity, count, raised, acked, closed)


def engine(window: float = 30.0) -> Escalations:
    return Escalations(default_policies(VOICE, SMS), group_window_s=window)


def test_default_policy_follows_design_section_7() -> None:
    p = default_policies(VOICE, SMS)
    first, voice, bureau = p["critical"]
    assert first == Step(0.0, ("legal_representative", "safety_manager"), SMS)
    assert voice.after_s == 300.0 and voice.channels == VOICE and voice.repeat_every_s == 600.0
    assert bureau.after_s == 300.0 and bureau.roles == ("bureau_duty",)
    assert default_policies((), ()) == {}


def test_critical_sms_at_once_voice_after_five_minutes_unacked() -> None:
    e = engine()
    added, why = e.on_alarm(alarm(), in_maintenance=False, now=NOW)
    assert why is Why.SCHEDULED
    assert [s.due_at - T0 for s in added] == [0.0, 300.0, 300.0]
    batches = e.due(at(T0))
    assert [b.step.channels for b in batches] == [SMS]
    e.done(batches[0], at(T0), ok=True)
    assert e.due(at(T0 + 299)) == []
    later = e.due(at(T0 + 300))
    assert sorted(b.step.channels for b in later) == [SMS, VOICE]


def test_ack_cancels_pending_steps_and_reminders() -> None:
    e = engine()
    e.on_alarm(alarm(), in_maintenance=False, now=NOW)
    e.done(e.due(at(T0))[0], at(T0), ok=True)
    cancelled, why = e.on_handled(alarm(acked=True))
    assert why is Why.CANCELLED_ACKED
    assert len(cancelled) == 2
    assert e.due(at(T0 + 3600)) == []
    assert e.next_due() is None


def test_voice_reminders_repeat_until_acknowledged() -> None:
    e = engine()
    e.on_alarm(alarm(), in_maintenance=False, now=NOW)
    e.done(e.due(at(T0))[0], at(T0), ok=True)
    for k in range(3):
        now = T0 + 300 + 600 * k
        voice = [b for b in e.due(at(now)) if b.step.channels == VOICE]
        assert len(voice) == 1, f"reminder {k}"
        for b in e.due(at(now)):
            e.done(b, at(now), ok=True)
    e.on_handled(alarm(acked=True))
    assert e.due(at(T0 + 10_000)) == []


def test_restart_neither_repeats_a_sent_step_nor_skips_a_due_one() -> None:
    e = engine()
    e.on_alarm(alarm(), in_maintenance=False, now=NOW)
    e.done(e.due(at(T0))[0], at(T0), ok=True)  # the SMS went out, then the gateway stopped
    saved = list(e.sends.values())
    restarted = engine()

    def rebooted(t: float) -> Instant:  # a new monotonic origin: only wall time carries over
        return at(t, mono0=12.0)

    restarted.load(saved, rebooted(T0 + 10))
    again = restarted.on_alarm(alarm(), in_maintenance=False, now=rebooted(T0 + 10))
    assert again[0] == [], "already scheduled"
    assert restarted.due(rebooted(T0 + 10)) == [], "the SMS is not sent again"
    # Down for 20 minutes: the 5-minute steps fell due meanwhile and go out at once.
    due = restarted.due(rebooted(T0 + 1200))
    assert sorted(b.step.channels for b in due) == [SMS, VOICE]
    assert all(s.state is SendState.PENDING for b in due for s in b.sends)


def test_grouping_holds_later_alarms_but_never_the_first_critical() -> None:
    e = engine(window=30.0)
    e.on_alarm(alarm("a1", raised=T0), in_maintenance=False, now=NOW)
    first = e.due(at(T0))
    assert len(first) == 1 and first[0].alarm_ids == ("a1",), "the first goes at once"
    e.done(first[0], at(T0), ok=True)
    e.on_alarm(alarm("a2", raised=T0 + 5, device="btn"), in_maintenance=False, now=NOW)
    e.on_alarm(alarm("a3", raised=T0 + 10, device="co"), in_maintenance=False, now=NOW)
    assert e.due(at(T0 + 10)) == [], "held inside the window"
    assert e.next_due() == at(T0 + 30).mono
    grouped = e.due(at(T0 + 30))
    assert len(grouped) == 1
    assert grouped[0].alarm_ids == ("a2", "a3"), "one message for both"
    # Another site is not held by this site's window.
    e.on_alarm(alarm("b1", site="anning", raised=T0 + 11), in_maintenance=False, now=NOW)
    assert [b.site for b in e.due(at(T0 + 11))] == ["anning"]


def test_the_window_starts_when_a_batch_goes_out_not_when_it_is_answered() -> None:
    e = engine(window=30.0)
    e.on_alarm(alarm("a1", raised=T0), in_maintenance=False, now=NOW)
    (first,) = e.due(at(T0))
    e.started(first, at(T0))  # in flight: the provider has not answered yet
    e.on_alarm(alarm("a2", raised=T0 + 0.05, device="btn"), in_maintenance=False, now=at(T0 + 0.05))
    assert e.due(at(T0 + 0.05)) == [], "held while the first is still in flight"
    e.done(first, at(T0 + 2), ok=True)  # the window runs from the answer on
    assert e.due(at(T0 + 31)) == []
    assert [b.alarm_ids for b in e.due(at(T0 + 32))] == [("a2",)]


def test_maintenance_records_but_does_not_push() -> None:
    e = engine()
    added, why = e.on_alarm(alarm(), in_maintenance=True, now=NOW)
    assert added == [] and why is Why.SUPPRESSED_MAINTENANCE
    assert e.due(at(T0 + 3600)) == []


def test_return_to_alarm_and_escalation_are_new_occurrences() -> None:
    e = engine()
    e.on_alarm(alarm(count=1), in_maintenance=False, now=NOW)
    e.done(e.due(at(T0))[0], at(T0), ok=True)
    assert e.on_alarm(alarm(count=1), in_maintenance=False, now=NOW)[0] == [], (
        "a repeat is not news"
    )
    again, _ = e.on_alarm(alarm(count=2, raised=T0 + 100), in_maintenance=False, now=NOW)
    assert len(again) == 3, "returned after clearing: told again"
    assert e.on_alarm(alarm(severity="warning"), in_maintenance=False, now=NOW) == (
        [],
        Why.NO_POLICY,
    )


def test_failed_send_is_recorded_and_reminders_still_follow() -> None:
    e = engine()
    e.on_alarm(alarm(), in_maintenance=False, now=NOW)
    e.done(e.due(at(T0))[0], at(T0), ok=True)
    voice = next(b for b in e.due(at(T0 + 300)) if b.step.channels == VOICE)
    changed = e.done(voice, at(T0 + 300), ok=False)
    assert changed[0].state is SendState.FAILED
    assert changed[1].key.repeat == 1 and changed[1].due_at == T0 + 900


@pytest.mark.parametrize("severity", ["critical", "major"])
def test_critical_is_sent_before_lower_severities(severity: str) -> None:
    e = engine()
    e.on_alarm(alarm("m", severity="major", device="efm"), in_maintenance=False, now=NOW)
    e.on_alarm(alarm("c", severity="critical"), in_maintenance=False, now=NOW)
    batches = e.due(at(T0))
    assert batches[0].severity == "critical"
    assert {b.severity for b in batches} == {"critical", "major"}
    assert severity in {b.severity for b in batches}


def test_observed_site_keeps_only_the_bureau_steps() -> None:
    """Central mode: the edge has told the site's people; the bureau tells its duty officer
    when the alarm is still unacknowledged after 5 minutes, and nobody else."""
    e = Escalations(default_policies(VOICE, SMS), observed=frozenset({"xingfu"}))
    added, why = e.on_alarm(alarm(), in_maintenance=False, now=NOW)
    assert why is Why.SCHEDULED
    assert [(s.key.step, s.due_at - T0) for s in added] == [(2, 300.0)]
    assert e.due(at(T0 + 299)) == []
    (batch,) = e.due(at(T0 + 300))
    assert batch.step.roles == ("bureau_duty",) and batch.step.channels == SMS
    # A site the bureau serves itself keeps the whole policy.
    added, _ = e.on_alarm(alarm("a2", site="anning"), in_maintenance=False, now=NOW)
    assert len(added) == 3
    # The edge's acknowledgement (mirrored) cancels the bureau's step.
    cancelled, why = e.on_handled(alarm(acked=True))
    assert why is Why.CANCELLED_ACKED and [s.key.step for s in cancelled] == [2]


def test_observed_site_with_no_bureau_step_schedules_nothing() -> None:
    major_only = {"major": (Step(0.0, ("safety_manager",), SMS),)}
    e = Escalations(major_only, observed=frozenset({"xingfu"}))
    assert e.on_alarm(alarm(severity="major"), in_maintenance=False, now=NOW) == ([], None)
    # a step for both: only the bureau's part applies to the observed site
    mixed = {"critical": (Step(0.0, ("safety_manager", "bureau_duty"), SMS),)}
    e = Escalations(mixed, observed=frozenset({"xingfu"}))
    e.on_alarm(alarm(), in_maintenance=False, now=NOW)
    (batch,) = e.due(at(T0))
    assert batch.step.roles == ("bureau_duty",)


def test_an_alarm_raised_here_about_an_observed_site_follows_the_whole_policy() -> None:
    """edge_offline: the edge, being down, tells nobody; the bureau tells everyone."""
    e = Escalations(default_policies(VOICE, SMS), observed=frozenset({"xingfu"}))
    own = AlarmInfo("e1", "xingfu", "gw-x", "critical", 1, T0, False, False, own=True)
    added, _ = e.on_alarm(own, in_maintenance=False, now=NOW)
    assert [s.key.step for s in added] == [0, 1, 2]
    assert all(s.key.whole for s in added)
    (first,) = e.due(at(T0))
    assert first.step.roles == ("legal_representative", "safety_manager")
    e.done(first, at(T0), ok=True)
    # a mirrored alarm of the same site at the same time is still the bureau's part only
    e.on_alarm(alarm("m1"), in_maintenance=False, now=NOW)
    later = e.due(at(T0 + 300))
    roles = sorted((b.step.roles, b.alarm_ids) for b in later)
    assert roles == [
        (("bureau_duty",), ("e1",)),
        (("bureau_duty",), ("m1",)),
        (("legal_representative", "safety_manager"), ("e1",)),
    ]
    # the scope survives a restart: it is in the persisted key
    reloaded = Escalations(default_policies(VOICE, SMS), observed=frozenset({"xingfu"}))
    reloaded.load(e.sends.values(), NOW)
    assert sorted((b.step.roles, b.alarm_ids) for b in reloaded.due(at(T0 + 300))) == roles


@pytest.mark.parametrize("step", [HOUR, -HOUR], ids=["forward", "backward"])
def test_a_wall_clock_step_neither_hastens_nor_delays_the_voice_call(step: float) -> None:
    e = engine()
    e.on_alarm(alarm(), in_maintenance=False, now=NOW)
    e.done(e.due(NOW)[0], NOW, ok=True)
    # The clock is stepped an hour a second later; the voice call is still 5 min after the SMS.
    assert e.due(at(T0 + 299, step)) == []
    voice = [b for b in e.due(at(T0 + 300, step)) if b.step.channels == VOICE]
    assert len(voice) == 1
    assert e.next_due() == at(T0 + 300).mono
    # Reminders every 10 min run on the same clock; what is stored stays wall time.
    (changed, reminder) = e.done(voice[0], at(T0 + 300, step), ok=True)
    assert changed.sent_at == T0 + 300 + step
    assert reminder.due_at == T0 + 900
    assert [b for b in e.due(at(T0 + 899, step)) if b.step.channels == VOICE] == []
    assert [b for b in e.due(at(T0 + 900, step)) if b.step.channels == VOICE] != []


@pytest.mark.parametrize("step", [HOUR, -HOUR], ids=["forward", "backward"])
def test_an_alarm_raised_after_a_step_is_scheduled_from_its_own_raise(step: float) -> None:
    e = engine()
    # The clock was stepped before the alarm: raised_at is in the stepped wall time.
    raised = at(T0 + 100, step)
    e.on_alarm(alarm(raised=raised.wall), in_maintenance=False, now=raised)
    assert len(e.due(raised)) == 1, "the SMS at once"
    assert [b.step.channels for b in e.due(at(T0 + 399, step))] == [SMS]
    assert sorted(b.step.channels for b in e.due(at(T0 + 400, step))) == [SMS, SMS, VOICE]
