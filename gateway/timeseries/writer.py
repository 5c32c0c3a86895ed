"""The writer: batches of lines to the bureau's server, and what its answers mean.

influxdb-client's v2 write API (`/api/v2/write`, precision ms), the synchronous client in a
worker thread (its asyncio client needs aiohttp, which this project does not ship); one
request at a time.

- Unreachable (connection errors, timeouts, 5xx, 429, and also 401/403/404, which a person
  has to fix while the data is worth keeping): logged once per episode, and retried with
  exponential backoff up to `Backoff.max_s`, honouring Retry-After. The caller keeps the
  points (in the outbox) meanwhile.
- Rejected (400 malformed, 422 unprocessable e.g. a field type conflict, 413 too large):
  retrying the same batch would fail forever, and one bad point must not take the good ones
  with it. The batch is split in halves until the rejected points stand alone; each is then
  dropped, counted (`rejected`) and logged once per episode. Resending the halves that an
  InfluxDB partial write had already accepted is harmless: the same point (series and time)
  overwrites itself.

Delivery is at least once: a write whose answer was lost (a timeout after the server had
stored it) is sent again. InfluxDB overwrites an identical point; VictoriaMetrics keeps both
samples unless started with `-dedup.minScrapeInterval`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException

from gateway.config.schema import InfluxSection
from gateway.timeseries.outbox import Outbox

log = logging.getLogger(__name__)

# Every line carries a millisecond timestamp: device clocks and `updated_at` are no finer,
# VictoriaMetrics stores milliseconds, and one precision serves every request (a batch
# mixes measurements, and the outbox keeps lines written by an earlier run).
PRECISION: Final = WritePrecision.MS

# Statuses after which the same batch would fail again: split it to isolate the bad points.
_REJECTED_STATUSES: Final = frozenset({400, 413, 422})


@dataclass(frozen=True, slots=True)
class Backoff:
    initial_s: float
    max_s: float
    retry_after_max_s: float

    def delay(self, failures: int, retry_after: float | None, jitter: float) -> float:
        """Seconds before the next attempt after `failures` in a row (jitter in [0.5, 1])."""
        delay: float = min(self.max_s, self.initial_s * 2 ** min(failures - 1, 16)) * jitter
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.retry_after_max_s))
        return delay


DEFAULT_BACKOFF: Final = Backoff(initial_s=1.0, max_s=60.0, retry_after_max_s=300.0)


@dataclass(frozen=True, slots=True)
class _Unreachable:
    error: str
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class _Rejected:
    status: int
    detail: str


class ServerWriter:
    def __init__(
        self,
        settings: InfluxSection,
        token: str | None,
        outbox: Outbox,
        clock: Callable[[], float],
    ) -> None:
        self.settings = settings
        self._token = token
        self._outbox = outbox  # where the points wait meanwhile, for the log lines
        self._clock = clock  # wall clock: the times in stats()
        self._backoff = DEFAULT_BACKOFF
        self._client: Any = None
        self._write_api: Any = None
        self.connected: bool | None = None  # None: not tried yet
        self.last_error: str | None = None
        self.down_since: float | None = None
        self.last_write_at: float | None = None
        self._retry_at: float | None = None  # monotonic; None: the server is believed up
        self._failures = 0
        # counters (since this process started)
        self.written = 0
        self.batches = 0
        self.rejected = 0
        self._reject_episode = 0

    @property
    def is_open(self) -> bool:
        return self._write_api is not None

    def open(self, backoff: Backoff) -> None:
        self._backoff = backoff
        s = self.settings
        self._client = InfluxDBClient(
            # "" sends no Authorization header (VictoriaMetrics needs none)
            url=s.url,
            token=self._token or "",
            org=s.org,
            timeout=int(s.timeout * 1000),
        )
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)

    async def close(self) -> None:
        if self._client is not None:
            await asyncio.to_thread(self._client.close)
            self._client = None
            self._write_api = None

    def due(self, now: float) -> bool:
        """Whether the server may be tried at monotonic time `now`."""
        return self._retry_at is None or now >= self._retry_at

    @property
    def retry_at(self) -> float | None:
        return self._retry_at

    def hold_until(self, at: float) -> None:
        """Try the server no sooner than `at` (monotonic), as if it had been away."""
        self._retry_at = at

    async def deliver(self, lines: list[str], top: bool = True) -> tuple[int, int]:
        """Write `lines`; returns (done, written): the leading `done` lines are settled,
        written or rejected for good; the rest were not sent because the server is away.

        A rejected batch is split in halves, left first, so that what is settled is always
        a prefix: the callers remove exactly that prefix."""
        outcome = await self._post(lines)
        if outcome is None:
            self.written += len(lines)
            self.batches += 1
            if top:
                self._end_reject_episode()
            return len(lines), len(lines)
        if isinstance(outcome, _Unreachable):
            return 0, 0
        if len(lines) == 1:
            self._rejected_point(outcome, lines[0])
            return 1, 0
        mid = len(lines) // 2
        left, left_written = await self.deliver(lines[:mid], top=False)
        if left < mid:
            return left, left_written
        right, right_written = await self.deliver(lines[mid:], top=False)
        return mid + right, left_written + right_written

    async def _post(self, lines: list[str]) -> _Unreachable | _Rejected | None:
        body = "\n".join(lines)
        try:
            await asyncio.to_thread(self._write_sync, body)
        except ApiException as exc:
            status = int(exc.status or 0)
            detail = _body_text(exc.body) or str(exc.reason or "")
            if status in _REJECTED_STATUSES:
                self._mark_up()  # it answered
                return _Rejected(status, detail)
            outcome = _Unreachable(f"HTTP {status} {detail}".strip(), _retry_after(exc.headers))
            self._mark_down(outcome)
            return outcome
        except Exception as exc:  # noqa: BLE001 - refused, timeouts, resets: all "away"
            outcome = _Unreachable(f"{type(exc).__name__}: {exc}")
            self._mark_down(outcome)
            return outcome
        self._mark_up()
        self.last_write_at = self._clock()
        return None

    def _write_sync(self, body: str) -> None:
        api = self._write_api
        if api is None:
            raise RuntimeError("the feed is closed")
        api.write(
            bucket=self.settings.bucket,
            org=self.settings.org,
            record=body,
            write_precision=PRECISION,
        )

    def _mark_up(self) -> None:
        if self.connected is not True:
            if self.down_since is not None:
                log.info(
                    "time-series feed: %s reachable again after %.0f s; %d points in the outbox",
                    self.settings.url,
                    self._clock() - self.down_since,
                    self._outbox.points,
                )
            else:
                log.info("time-series feed: writing to %s", self.settings.url)
        self.connected = True
        self.down_since = None
        self._retry_at = None
        self._failures = 0

    def _mark_down(self, outcome: _Unreachable) -> None:
        if self.connected is not False:
            log.warning(
                "time-series feed: %s unreachable (%s); points go to the outbox %s until it "
                "is back (logged once)",
                self.settings.url,
                outcome.error,
                self._outbox.path,
            )
            self.down_since = self._clock()
        self.connected = False
        self.last_error = outcome.error
        self._failures += 1
        # jitter: several gateways must not return in step
        delay = self._backoff.delay(self._failures, outcome.retry_after, random.uniform(0.5, 1.0))
        self._retry_at = time.monotonic() + delay

    def _rejected_point(self, outcome: _Rejected, line: str) -> None:
        self.rejected += 1
        self.last_error = f"HTTP {outcome.status} {outcome.detail}"
        if self._reject_episode == 0:
            log.warning(
                "time-series feed: the server rejected a point (HTTP %d: %s); dropped, and "
                "so are further rejected points until a batch passes (logged once): %.300s",
                outcome.status,
                outcome.detail,
                line,
            )
        self._reject_episode += 1

    def _end_reject_episode(self) -> None:
        if self._reject_episode > 1:
            log.warning(
                "time-series feed: %d points were rejected by the server and dropped",
                self._reject_episode,
            )
        self._reject_episode = 0


def _body_text(body: object) -> str:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    return str(body).strip()[:500] if body else ""


def _retry_after(headers: object) -> float | None:
    get = getattr(headers, "get", None)
    if get is None:
        return None
    value = get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None  # an HTTP date: rare enough to ignore, the backoff applies
