"""The pure rules of incidents: each report's clock at every boundary of its deadline (fake
`now`, no sleeps), which closed alarm opens an incident, and the configured deadlines."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from gateway.config.errors import ConfigError
from gateway.config.loading import parse_config
from gateway.incidents.model import (
    ClockState,
    CloseRefusal,
    Deadlines,
    Incident,
    Opening,
    PhoneReport,
    ReportKind,
    WrittenReport,
    clocks,
    close_refusal,
    should_open,
    takes_report,
)
from rules.model import AlarmType, Severity
from tests.conftest import site_config

T0 = 1_795_000_000.0
MIN = 60.0
SEED_003 = Deadlines.from_minutes(30, 60)


def _incident(phone_at: float | None = None, written_at: float | None = None) -> Incident:
    phone = PhoneReport("县民政局值班室", phone_at, "wang") if phone_at is not None else None
    written = (
        WrittenReport(
            "厨房燃气泄漏", "一楼厨房", "无", "关阀通风", "已恢复", "检修", written_at, "wang"
        )
        if written_at is not None
        else None
    )
    return Incident("inc-1", "xingfu", "a-1", "燃气泄漏", T0, "wang", phone, written)


@pytest.mark.parametrize(
    ("phone_at", "now", "state", "left"),
    [
        (None, T0, ClockState.RUNNING, 30 * MIN),
        (None, T0 + 29 * MIN + 59, ClockState.RUNNING, 1.0),
        (None, T0 + 30 * MIN, ClockState.RUNNING, 0.0),  # the deadline itself is in time
        (None, T0 + 30 * MIN + 1, ClockState.MISSED, -1.0),  # how late, never clamped
        (None, T0 + 31 * MIN, ClockState.MISSED, -60.0),
        (T0 + 10 * MIN, T0 + 40 * MIN, ClockState.DONE, None),
        (T0 + 30 * MIN, T0 + 40 * MIN, ClockState.DONE, None),
        (T0 + 30 * MIN + 1, T0 + 40 * MIN, ClockState.DONE_LATE, None),
        (T0 + 31 * MIN, T0 + 31 * MIN, ClockState.DONE_LATE, None),
    ],
)
def test_the_phone_clock(
    phone_at: float | None, now: float, state: ClockState, left: float | None
) -> None:
    c = clocks(_incident(phone_at=phone_at), now, SEED_003).phone
    assert (c.due_at, c.state, c.seconds_left) == (T0 + 30 * MIN, state, left)
    assert c.done_at == phone_at


@pytest.mark.parametrize(
    ("written_at", "now", "state"),
    [
        (None, T0 + 59 * MIN + 59, ClockState.RUNNING),
        (None, T0 + 60 * MIN + 1, ClockState.MISSED),
        (T0 + 60 * MIN, T0 + 2 * 60 * MIN, ClockState.DONE),
        (T0 + 61 * MIN, T0 + 2 * 60 * MIN, ClockState.DONE_LATE),
    ],
)
def test_the_written_clock(written_at: float | None, now: float, state: ClockState) -> None:
    c = clocks(_incident(written_at=written_at), now, SEED_003).written
    assert (c.due_at, c.state) == (T0 + 60 * MIN, state)


def test_the_clocks_run_apart() -> None:
    # The call made on time stops one clock; the written report's still runs, then is missed.
    c = clocks(_incident(phone_at=T0 + 5 * MIN), T0 + 45 * MIN, SEED_003)
    assert (c.phone.state, c.written.state, c.written.seconds_left) == (
        ClockState.DONE, ClockState.RUNNING, 15 * MIN,
    )  # fmt: skip
    c = clocks(_incident(phone_at=T0 + 5 * MIN), T0 + 61 * MIN, SEED_003)
    assert c.written.state is ClockState.MISSED


@pytest.mark.parametrize(
    ("alarm_type", "severity", "disposition", "opening"),
    [
        (AlarmType.GAS_LEAK, Severity.CRITICAL, "real", Opening.CONFIRMED_EMERGENCY),
        (AlarmType.FIRE_BUTTON, Severity.CRITICAL, "real", Opening.CONFIRMED_EMERGENCY),
        (AlarmType.SMOKE, Severity.CRITICAL, "real", Opening.CONFIRMED_EMERGENCY),
        (AlarmType.GAS_LEAK, Severity.MAJOR, "real", Opening.NOT_CRITICAL),
        (AlarmType.GAS_LEAK, Severity.CRITICAL, "false_alarm", Opening.NOT_REAL),
        (AlarmType.GAS_LEAK, Severity.CRITICAL, "test", Opening.NOT_REAL),
        (AlarmType.GAS_LEAK, Severity.CRITICAL, "maintenance", Opening.NOT_REAL),
        (AlarmType.VALVE_FAILURE, Severity.CRITICAL, "real", Opening.NOT_AN_EMERGENCY),
        (AlarmType.STORE_FAILURE, Severity.CRITICAL, "real", Opening.NOT_AN_EMERGENCY),
    ],
)
def test_what_opens_an_incident(
    alarm_type: AlarmType, severity: Severity, disposition: str, opening: Opening
) -> None:
    found = should_open(alarm_type, severity, disposition)
    assert found is opening
    assert found.opens is (opening is Opening.CONFIRMED_EMERGENCY)


def test_the_deadlines_default_to_seed_003(tmp_path: Path) -> None:
    section = parse_config(site_config(tmp_path, 1883)).incidents
    assert (section.phone_report_minutes, section.written_report_minutes) == (30, 60)


@pytest.mark.parametrize(
    "incidents",
    [
        {"phone_report_minutes": 0},
        {"phone_report_minutes": 24 * 60 + 1},
        {"written_report_minutes": 0},
        {"phone_report_minutes": 30, "written_report_minutes": 20},  # written before the call
        {"phone_report_minutes": 30.5},
        {"phone_minutes": 30},  # a typo is an error
    ],
)
def test_the_deadlines_are_bounded(tmp_path: Path, incidents: dict[str, object]) -> None:
    data = site_config(tmp_path, 1883)
    data["incidents"] = incidents
    with pytest.raises(ConfigError):
        parse_config(data)


def test_configured_deadlines(tmp_path: Path) -> None:
    data = site_config(tmp_path, 1883)
    data["incidents"] = {"phone_report_minutes": 15, "written_report_minutes": 120}
    assert parse_config(data).incidents.written_report_minutes == 120


def test_closing_asks_for_the_written_report_and_happens_once() -> None:
    assert close_refusal(_incident()) is CloseRefusal.NO_WRITTEN_REPORT
    assert close_refusal(_incident(phone_at=T0 + MIN)) is CloseRefusal.NO_WRITTEN_REPORT
    written = _incident(written_at=T0 + 20 * MIN)  # without the phone report: it may close
    assert close_refusal(written) is None
    closed = replace(written, closed_at=T0 + 2 * 60 * MIN, closed_by="wang", close_note="结案")
    assert close_refusal(closed) is CloseRefusal.ALREADY_CLOSED
    assert [k for k in ReportKind if takes_report(closed, k)] == [ReportKind.FOLLOW_UP]
    assert [k for k in ReportKind if takes_report(written, k)] == list(ReportKind)
