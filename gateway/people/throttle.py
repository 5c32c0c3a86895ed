"""Failed logins slow down and then lock, per account and per source address (issue 11).

In memory: a restart forgets the counts, which costs an attacker a restart of the gateway he
cannot cause. Bounded: the oldest addresses are forgotten first.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

WINDOW_S = 15 * 60
ACCOUNT_LOCK_AFTER = 5  # failures of one login within the window
ADDRESS_LOCK_AFTER = 20  # failures from one address within the window
LOCK_S = 15 * 60
MAX_DELAY_S = 4.0
MAX_TRACKED = 10_000


@dataclass(slots=True)
class _Count:
    failures: list[float] = field(default_factory=list)
    locked_until: float = 0.0


@dataclass(frozen=True, slots=True)
class Verdict:
    delay_s: float  # answer no sooner than this (0 after no recent failure)
    locked_for_s: float  # > 0: refuse without looking at the password

    @property
    def locked(self) -> bool:
        return self.locked_for_s > 0


class LoginThrottle:
    def __init__(self) -> None:
        self._accounts: OrderedDict[str, _Count] = OrderedDict()
        self._addresses: OrderedDict[str, _Count] = OrderedDict()

    def verdict(self, login: str, address: str, now: float) -> Verdict:
        acc = self._get(self._accounts, login, now)
        addr = self._get(self._addresses, address, now)
        locked = max(acc.locked_until, addr.locked_until) - now
        # Slower per account (guessing one password); an address spraying one password over
        # many accounts is stopped by its lock, not slowed for everyone behind it (a NAT).
        n = len(acc.failures)
        delay = 0.0 if n == 0 else min(MAX_DELAY_S, 0.25 * 2 ** (n - 1))
        return Verdict(delay, max(0.0, locked))

    def failed(self, login: str, address: str, now: float) -> None:
        for table, key, limit in (
            (self._accounts, login, ACCOUNT_LOCK_AFTER),
            (self._addresses, address, ADDRESS_LOCK_AFTER),
        ):
            c = self._get(table, key, now)
            c.failures.append(now)
            if len(c.failures) >= limit:
                c.locked_until = now + LOCK_S
                c.failures.clear()

    def succeeded(self, login: str, address: str) -> None:
        self._accounts.pop(login, None)
        # The address keeps its count: one good password does not unlock guessing others.

    def unlock(self, login: str) -> None:
        self._accounts.pop(login, None)

    @staticmethod
    def _get(table: OrderedDict[str, _Count], key: str, now: float) -> _Count:
        c = table.get(key)
        if c is None:
            c = table[key] = _Count()
            while len(table) > MAX_TRACKED:
                table.popitem(last=False)
        else:
            table.move_to_end(key)
        c.failures = [t for t in c.failures if now - t < WINDOW_S]
        return c
