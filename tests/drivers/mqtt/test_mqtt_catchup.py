"""Backlog replay bookkeeping (drivers.mqtt.catchup): pure, with the time passed in."""

from __future__ import annotations

from drivers.mqtt.catchup import CatchUp, Delivery, Verdict


def key(n: int, device: str = "gas-1") -> tuple[bytes, bytes]:
    return (f"safety/s/{device}/telemetry".encode(), f'{{"ts": {n}, "values": {{}}}}'.encode())


def started(t: float = 0.0) -> CatchUp:
    c = CatchUp(lag_s=0.5, idle_s=1.0, recent_s=5.0, max_entries=100, tail_s=10.0)
    c.begin()
    c.bulk_connected(t)
    return c


def test_backlog_is_labelled_until_the_bulk_session_reaches_what_came_live() -> None:
    c = started()
    assert c.live(key(100), 0.1) is Verdict.LIVE
    c.handled_live(key(100), 0.1, token=7)
    # The persistent session first brings what was queued before the live connection.
    assert c.bulk(key(1), 0.2) == (Verdict.BACKLOG, None)
    assert c.bulk(key(2), 0.3) == (Verdict.BACKLOG, None)
    assert Verdict.BACKLOG.delivery is Delivery.BACKLOG
    # Then the twin of the live message: dropped, acknowledged when token 7 is durable.
    assert c.bulk(key(100), 5.0) == (Verdict.DUPLICATE, 7)
    assert not c.behind
    assert c.active, "5 s behind live: still catching up"
    assert c.bulk(key(101), 5.1) == (Verdict.CURRENT, None)
    assert (c.live_messages, c.backlog_messages, c.duplicates) == (1, 2, 1)


def test_catch_up_ends_when_the_bulk_session_is_within_the_lag_of_live() -> None:
    c = started()
    c.handled_live(key(100), 10.0, None)
    assert c.bulk(key(100), 10.2)[0] is Verdict.DUPLICATE
    assert not c.active
    assert c.end_reason is not None and "within 0.5 s" in c.end_reason


def test_a_message_the_bulk_session_brought_first_is_dropped_when_it_comes_live() -> None:
    c = started()
    assert c.bulk(key(5), 1.0) == (Verdict.BACKLOG, None)  # taken (not yet known as live)
    assert c.live(key(5), 1.01) is Verdict.DUPLICATE
    assert not c.active and not c.behind, "the bulk session is ahead: nothing to catch up"


def test_bulk_copies_are_forgotten_after_the_recent_window() -> None:
    c = started()
    c.bulk(key(5), 1.0)
    c.bulk(key(6), 7.0)  # 6 s later: the copy of 5 is forgotten
    assert c.live(key(5), 7.01) is Verdict.LIVE


def test_identical_payloads_are_counted_not_merged() -> None:
    c = started()
    same = (b"safety/s/btn/telemetry", b'{"values": {"lel": 0}}')  # no ts: repeats are equal
    c.handled_live(same, 1.0, None)
    c.handled_live(same, 2.0, None)
    assert c.bulk(same, 3.0)[0] is Verdict.DUPLICATE
    assert c.bulk(same, 3.1)[0] is Verdict.DUPLICATE
    assert c.bulk(same, 3.2)[0] is Verdict.CURRENT, "the third copy is a new message"


def test_an_idle_bulk_session_ends_catch_up() -> None:
    c = started(0.0)
    assert c.poll(0.5) is None
    reason = c.poll(1.1)
    assert reason is not None and "idle" in reason
    assert not c.behind


def test_silence_counts_only_once_the_bulk_session_is_connected() -> None:
    c = CatchUp(idle_s=1.0)
    c.begin()
    assert c.poll(5.0) is None  # still connecting
    c.bulk_connected(5.0)
    assert c.poll(5.5) is None
    assert c.poll(6.1) is not None


def test_a_full_window_ends_live_but_later_bulk_messages_stay_backlog() -> None:
    c = CatchUp(max_entries=3)
    c.begin()
    c.bulk_connected(0.0)
    for n in range(3):
        c.handled_live(key(100 + n), 0.1, None)
    assert c.full
    c.end(0.1, "too many live messages waiting", reached_present=False)
    assert not c.active and c.behind
    assert c.bulk(key(1), 0.2)[0] is Verdict.BACKLOG, "still the backlog"
    assert c.bulk(key(100), 0.3)[0] is Verdict.DUPLICATE
    assert c.bulk(key(200), 0.4)[0] is Verdict.CURRENT


def test_live_copies_whose_twins_never_come_are_forgotten_after_the_tail() -> None:
    c = started()
    c.handled_live(key(100), 0.1, None)  # QoS 0: the broker dropped its bulk twin
    c.end(0.2, "done")
    c.poll(5.0)
    assert c.pending == 1
    c.poll(10.3)
    assert c.pending == 0
