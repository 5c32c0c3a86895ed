"""The reject log stays bounded whatever a publisher sends; the counters stay exact; a
configured device's rejections are still logged once a minute. Time is a fake monotonic
clock (`Rejects.reject` takes `now`)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from drivers.codec import RejectReason
from gateway.health.metrics import Metrics
from gateway.ingest.rejects import Rejects
from tests.conftest import FakeClock

DEVICE = "safety/xingfu/gas-kitchen/telemetry"


def counted(metrics: Metrics, reason: str) -> float | None:
    return metrics.registry.get_sample_value("gateway_rejected_total", {"reason": reason})


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> Callable[[], list[str]]:
    """The reject log's lines written so far."""
    caplog.set_level(logging.WARNING, logger="gateway.rejected")
    return lambda: [r.getMessage() for r in caplog.records if r.name == "gateway.rejected"]


@pytest.mark.parametrize(
    ("step_s", "expected_lines"),
    [
        (0.0, 1),  # all at once: one line
        (1 / 16, 11),  # 960 a minute for 625 s: the first, then one summary a minute
    ],
)
def test_ten_thousand_unknown_devices_take_a_line_a_minute(
    log: Callable[[], list[str]], step_s: float, expected_lines: int
) -> None:
    metrics = Metrics()
    rejects = Rejects(metrics)
    clock = FakeClock()
    for i in range(10_000):
        rejects.reject(
            clock.monotonic(),
            f"safety/xingfu/ghost-{i}/telemetry",
            RejectReason.UNKNOWN_DEVICE,
            f"xingfu/ghost-{i} is not in the configuration",
        )
        clock.advance(step_s)
    assert counted(metrics, "unknown_device") == 10_000
    assert rejects.by_reason == {"unknown_device": 10_000}
    assert len(log()) == expected_lines
    assert log()[0] == (
        "rejected safety/xingfu/ghost-0/telemetry: unknown_device: "
        "xingfu/ghost-0 is not in the configuration"
    )
    for n, line in enumerate(log()[1:], start=1):
        i = 960 * n
        assert line == (
            f"960 messages rejected as unknown_device in the last 60 s, e.g. "
            f"safety/xingfu/ghost-{i}/telemetry: xingfu/ghost-{i} is not in the configuration"
        )


def test_a_configured_devices_bad_payload_is_logged_once_a_minute_through_a_flood(
    log: Callable[[], list[str]],
) -> None:
    metrics = Metrics()
    rejects = Rejects(metrics)
    clock = FakeClock()
    for second in range(181):  # a bad reading a second for 3 minutes, amid made-up devices
        rejects.reject(clock.monotonic(), DEVICE, RejectReason.WRONG_TYPE, "lel: not a number")
        for i in range(50):
            topic = f"safety/nowhere-{second}/ghost-{i}/event"
            rejects.reject(clock.monotonic(), topic, RejectReason.UNKNOWN_DEVICE, "ghost")
            rejects.reject(clock.monotonic(), f"x/{i}", RejectReason.UNKNOWN_TOPIC, "x")
        clock.advance(1.0)
    assert counted(metrics, "wrong_type") == 181
    assert counted(metrics, "unknown_device") == counted(metrics, "unknown_topic") == 9050
    device_lines = [line for line in log() if "gas-kitchen" in line]
    first = f"rejected {DEVICE}: wrong_type: lel: not a number"
    assert device_lines == [first] + [f"{first} (and 59 more like it in the last 60 s)"] * 3
    assert len(log()) == 4 + 4 + 4  # and a line a minute for each of the two other reasons


def test_device_lines_beyond_the_budget_are_summed_up_after_the_minute(
    log: Callable[[], list[str]],
) -> None:
    metrics = Metrics()
    rejects = Rejects(metrics, max_device_lines=100)
    clock = FakeClock()
    # 10,000 distinct topics with a reason that does not say "no such device" (the size
    # check comes before the topic is looked up)
    for i in range(10_000):
        topic = f"safety/xingfu/ghost-{i}/telemetry"
        rejects.reject(clock.monotonic(), topic, RejectReason.OVERSIZE, "1048616 bytes")
    for _ in range(30):
        rejects.reject(clock.monotonic(), DEVICE, RejectReason.NOT_FINITE, "lel: NaN")
    assert len(log()) == 100
    clock.advance(61.0)
    rejects.reject(clock.monotonic(), DEVICE, RejectReason.NOT_FINITE, "lel: NaN")
    assert counted(metrics, "oversize") == 10_000
    assert counted(metrics, "not_finite") == 31
    assert len(log()) == 102
    assert log()[100] == (
        "9930 rejections not logged in the last 61 s (at most 100 device lines a minute): "
        "not_finite 30, oversize 9900; all are counted in gateway_rejected_total"
    )
    # the device's line, held back by the budget, is not lost: it comes now
    assert log()[101] == f"rejected {DEVICE}: not_finite: lel: NaN"


def test_forged_presences_of_made_up_gateways_share_one_line(
    log: Callable[[], list[str]],
) -> None:
    rejects = Rejects(Metrics())
    for i in range(10_000):
        topic = f"safety/gateways/evil-{i}"
        rejects.reject(0.0, topic, RejectReason.WRONG_TYPE, "status: 'online' or 'offline'")
    rejects.reject(0.0, DEVICE, RejectReason.WRONG_TYPE, "lel: not a number")
    assert log() == [
        "rejected safety/gateways/evil-0: wrong_type: status: 'online' or 'offline'",
        f"rejected {DEVICE}: wrong_type: lel: not a number",  # the device lines' budget is intact
    ]


def test_a_full_table_of_devices_shares_a_line_per_reason_then_makes_room(
    log: Callable[[], list[str]],
) -> None:
    rejects = Rejects(Metrics(), max_device_keys=3)
    clock = FakeClock()
    for i in range(6):
        rejects.reject(clock.monotonic(), f"s/site/d{i}/event", RejectReason.UNKNOWN_EVENT, "x")
    assert log()[:4] == [f"rejected s/site/d{i}/event: unknown_event: x" for i in range(4)]
    assert len(log()) == 4  # d3 got the shared line; d4 and d5 wait for its minute
    clock.advance(60.0)
    # the three devices' keys have nothing more to tell and their minute is over: forgotten
    rejects.reject(clock.monotonic(), "s/site/d9/event", RejectReason.UNKNOWN_EVENT, "x")
    assert log()[4] == "rejected s/site/d9/event: unknown_event: x"


def test_an_untrusted_topic_is_shortened_and_cannot_write_a_line_of_its_own(
    log: Callable[[], list[str]],
) -> None:
    rejects = Rejects(Metrics())
    topic = "safety/a\nWARNING forged line/" + "x" * 70_000
    rejects.reject(0.0, topic, RejectReason.UNKNOWN_DEVICE, "\x1b[2J")
    (line,) = log()
    assert "\n" not in line and "\x1b" not in line
    assert line.startswith("rejected safety/a\\nWARNING forged line/xxx")
    assert line.endswith(f"x... ({len(topic)} chars): unknown_device: \\x1b[2J"), line
    assert len(line) < 300
