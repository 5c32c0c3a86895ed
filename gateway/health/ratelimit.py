"""Rate limits for log lines, on a monotonic `now` the caller passes (no clock of their own).

`OncePerInterval` lets one line per key through per interval and counts the repeats it holds
back, to be reported with the key's next line; its table of keys is bounded. `LineBudget`
bounds how many lines all keys together may write per window, and counts by label what it
held back, to be reported once in a summary when the window is over. Neither writes a line:
the caller decides what to say, and pays for formatting only the lines it writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Due:
    """A line may be written for a key: since its last line, `elapsed_s` ago, `held` more
    were held back (0 and 0.0 for a key's first line)."""

    held: int
    elapsed_s: float

    @property
    def suffix(self) -> str:
        """What to add to the key's line: the repeats held back since its last one."""
        return f" (and {self.held} more in the last {self.elapsed_s:.0f} s)" if self.held else ""


@dataclass(slots=True)
class _Seen:
    logged_at: float
    held: int = 0


class OncePerInterval:
    """One line per key per `interval_s`. A key's repeats within the interval are counted and
    told with its next line (`Due`). At most `max_keys` keys are kept: `has_room` says whether
    a new key fits, once keys that have nothing left to tell and whose interval is over are
    forgotten (at most once per interval); a caller gives a key that does not fit a coarser one.
    """

    def __init__(self, interval_s: float = 60.0, max_keys: int = 10_000) -> None:
        self.interval_s = interval_s
        self._max_keys = max_keys
        self._seen: dict[object, _Seen] = {}
        self._pruned_at: float | None = None

    def __len__(self) -> int:
        return len(self._seen)

    def has_room(self, now: float, key: object) -> bool:
        if key in self._seen or len(self._seen) < self._max_keys:
            return True
        if self._pruned_at is None or now - self._pruned_at >= self.interval_s:
            self._pruned_at = now
            cutoff = now - self.interval_s
            self._seen = {k: s for k, s in self._seen.items() if s.held or s.logged_at > cutoff}
        return len(self._seen) < self._max_keys

    def due(self, now: float, key: object) -> Due | None:
        """None: the key had its line within the interval (this repeat is counted). A `Due`
        is not yet a line: call `written` once it is (a line the caller does not write
        leaves the key due)."""
        seen = self._seen.get(key)
        if seen is None:
            return Due(0, 0.0)
        if now - seen.logged_at < self.interval_s:
            seen.held += 1
            return None
        return Due(seen.held, now - seen.logged_at)

    def written(self, now: float, key: object) -> None:
        self._seen[key] = _Seen(now)


@dataclass(frozen=True, slots=True)
class HeldBack:
    """What a `LineBudget` held back in a window that is over: `count` lines (by label) in
    the `elapsed_s` since the window began."""

    count: int
    by_label: dict[str, int]
    elapsed_s: float


@dataclass(slots=True)
class LineBudget:
    """At most `max_lines` lines per window of `window_s`; a window begins with the first line
    after the previous one is over. Lines beyond the budget are `hold`-en (counted by label)
    and reported once, by `report`, when their window is over."""

    max_lines: int = 100
    window_s: float = 60.0
    _began: float | None = field(default=None, init=False)
    _used: int = field(default=0, init=False)
    _held: dict[str, int] = field(default_factory=dict, init=False)

    def take(self, now: float) -> bool:
        """Room for one more line now (and it is counted as written)."""
        if self._began is None or now - self._began >= self.window_s:
            self._began = now
            self._used = 0
        if self._used >= self.max_lines:
            return False
        self._used += 1
        return True

    def hold(self, label: str) -> None:
        self._held[label] = self._held.get(label, 0) + 1

    def report(self, now: float) -> HeldBack | None:
        """What was held back, once its window is over (then forgotten); else None."""
        if not self._held or self._began is None or now - self._began < self.window_s:
            return None
        held, self._held = self._held, {}
        return HeldBack(sum(held.values()), held, now - self._began)
