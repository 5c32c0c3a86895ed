"""The trend ring: 30 s buckets of the last 24 h, bounded whatever arrives; the decision
whether a valve's `open` report is a person opening it by hand."""

from __future__ import annotations

from gateway.ingest.raw import MAX_RAW_BYTES, RawPayloads
from gateway.trend.feed import DeviceTrends, HandOpening
from gateway.trend.onsite import COMMANDED_WINDOW_S, opened_by_hand
from gateway.trend.ring import BUCKET_S, SLOTS, SPAN_S, QuantityRing
from rules.model import DeviceRef, Reading

T0 = 1_795_000_000.0 - 1_795_000_000.0 % BUCKET_S
GAS = DeviceRef("xingfu", "gas-kitchen")
VALVE = DeviceRef("xingfu", "valve-kitchen")


def test_a_bucket_keeps_low_high_and_last() -> None:
    ring = QuantityRing()
    for dt, v in ((1, 5.0), (2, 9.0), (3, 1.0), (4, 4.0)):
        ring.add(T0 + dt, v)
    ring.add(T0 + BUCKET_S, 7.0)
    (first, second) = ring.points(T0 + BUCKET_S + 1)
    assert (first.at, first.low, first.high, first.last) == (T0, 1.0, 9.0, 4.0)
    assert (second.at, second.last) == (T0 + BUCKET_S, 7.0)


def test_the_ring_forgets_what_is_older_than_24_hours_and_stays_its_size() -> None:
    ring = QuantityRing()
    for i in range(SLOTS + 100):  # more than a day, one reading a bucket
        ring.add(T0 + i * BUCKET_S, float(i))
    now = T0 + (SLOTS + 99) * BUCKET_S
    points = ring.points(now)
    assert len(points) == SLOTS
    assert points[0].last == 100.0 and points[-1].last == SLOTS + 99
    assert points[-1].at - points[0].at == SPAN_S - BUCKET_S
    # A reading older than the day kept does not overwrite the newer bucket in its slot.
    ring.add(T0 + 5 * BUCKET_S, -1.0)
    assert min(p.last for p in ring.points(now)) == 100.0
    assert len(ring.points(now, 3600)) == 120


def test_the_trends_are_bounded_and_clamp_a_device_clock_ahead() -> None:
    now = [T0]
    trends = DeviceTrends(lambda: now[0], lambda _: False, max_rings=2)
    trends.reading(Reading(GAS, {"lel": 3.0, "temp_c": 20.0, "co_ppm": 5.0}, T0 + 3600), "x")
    assert trends.rings_refused == 1
    series = trends.series(GAS, now[0])
    assert set(series) == {"lel", "temp_c"}
    assert series["lel"][0].at == T0  # ahead of the gateway: drawn now, not in an hour


def test_a_hand_opening_is_a_closed_valve_opening_with_no_gas_alarm_and_no_command() -> None:
    def by_hand(
        was_open: bool | None = False,
        is_open: bool = True,
        gas_alarm_open: bool = False,
        commanded_open_at: float | None = None,
    ) -> bool:
        return opened_by_hand(
            was_open=was_open,
            is_open=is_open,
            gas_alarm_open=gas_alarm_open,
            commanded_open_at=commanded_open_at,
            now=1000.0,
        )

    assert by_hand()
    assert not by_hand(was_open=None)  # just started: not a change
    assert not by_hand(was_open=True)
    assert not by_hand(is_open=False)
    assert not by_hand(gas_alarm_open=True)  # the rules close it again
    assert not by_hand(commanded_open_at=1000.0 - COMMANDED_WINDOW_S + 1)
    assert by_hand(commanded_open_at=1000.0 - COMMANDED_WINDOW_S - 1)


def test_the_trends_report_each_hand_opening_once() -> None:
    seen: list[HandOpening] = []
    trends = DeviceTrends(lambda: T0, lambda _: False, seen.append)
    for v in (1.0, 0.0, 1.0, 1.0, 0.0):
        trends.reading(Reading(VALVE, {"open": v}, T0), "gas_valve")
    assert [o.ref for o in seen] == [VALVE]
    assert trends.openings_of(VALVE) == seen and trends.openings_of(GAS) == []


def test_values_come_back_as_measured() -> None:
    ring = QuantityRing()
    ring.add(T0, 23.4)
    assert ring.points(T0)[0].last == 23.4


def test_a_raw_payload_is_kept_cut_at_4_kb() -> None:
    raws = RawPayloads()
    raws.keep(GAS, "telemetry", b'{"values": {"lel": 3}}', T0)
    assert raws.last(GAS) is not None and not raws.last(GAS).truncated  # type: ignore[union-attr]
    raws.keep(GAS, "telemetry", b"x" * (MAX_RAW_BYTES + 10) + b"\xff", T0 + 1)
    kept = raws.last(GAS)
    assert kept is not None and kept.truncated and kept.size == MAX_RAW_BYTES + 11
    assert kept.text == "x" * MAX_RAW_BYTES and kept.at == T0 + 1
    assert raws.last(VALVE) is None
