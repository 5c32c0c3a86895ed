"""Failed logins slow down, then lock the account (5) or the address (20) for 15 minutes."""

from __future__ import annotations

from gateway.people.throttle import LOCK_S, MAX_DELAY_S, LoginThrottle


def test_each_failure_slows_the_next_answer_then_the_account_locks() -> None:
    t = LoginThrottle()
    delays = []
    for i in range(4):
        v = t.verdict("wang", "10.0.0.1", 100.0 + i)
        assert not v.locked
        delays.append(v.delay_s)
        t.failed("wang", "10.0.0.1", 100.0 + i)
    assert delays == sorted(delays) and delays[0] == 0 and delays[-1] <= MAX_DELAY_S
    t.failed("wang", "10.0.0.1", 105.0)  # the fifth
    v = t.verdict("wang", "10.0.0.2", 106.0)  # from any address
    assert v.locked and LOCK_S - 2 < v.locked_for_s <= LOCK_S
    assert not t.verdict("li", "10.0.0.3", 106.0).locked  # others are not locked out
    assert not t.verdict("wang", "10.0.0.2", 105.0 + LOCK_S + 1).locked


def test_an_address_guessing_many_logins_is_locked() -> None:
    t = LoginThrottle()
    for i in range(20):
        t.failed(f"user{i}", "10.0.0.9", 100.0 + i)
    assert t.verdict("someone-else", "10.0.0.9", 121.0).locked
    assert not t.verdict("someone-else", "10.0.0.8", 121.0).locked


def test_a_success_clears_the_account_not_the_address() -> None:
    t = LoginThrottle()
    for i in range(4):
        t.failed("wang", "10.0.0.1", 100.0 + i)
    t.succeeded("wang", "10.0.0.1")
    assert t.verdict("wang", "10.0.0.5", 110.0).delay_s == 0
    for i in range(15):  # 4 + 15 failures from the address: not yet locked
        t.failed(f"user{i}", "10.0.0.1", 111.0 + i)
    assert not t.verdict("other", "10.0.0.1", 130.0).locked
    t.failed("user99", "10.0.0.1", 131.0)  # the twentieth
    assert t.verdict("other", "10.0.0.1", 132.0).locked


def test_failures_older_than_the_window_are_forgotten() -> None:
    t = LoginThrottle()
    for i in range(4):
        t.failed("wang", "10.0.0.1", float(i))
    t.failed("wang", "10.0.0.1", 16 * 60.0)  # the first four are out of the window
    assert not t.verdict("wang", "10.0.0.1", 16 * 60.0 + 1).locked
