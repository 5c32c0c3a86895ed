"""systemd's notify protocol (sd_notify), without a dependency: `READY=1` once the gateway
serves, `WATCHDOG=1` from the event loop every third of `WatchdogSec`, `STOPPING=1` on
shutdown. Each is one datagram to the unix socket named by `$NOTIFY_SOCKET` (a name
starting with `@` is in the abstract namespace). Without that variable (not under systemd,
or `Type=simple`) nothing is sent.

The watchdog pings come from a task on the gateway's event loop, so a loop that hangs (a
blocking call, a busy loop) stops them and systemd restarts the process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


class SystemdNotifier:
    def __init__(self, address: str | None, watchdog_usec: int | None = None) -> None:
        self._address = ("\0" + address[1:]) if address and address.startswith("@") else address
        self._watchdog_usec = watchdog_usec
        self._failing = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SystemdNotifier:
        """`$NOTIFY_SOCKET`, and `$WATCHDOG_USEC` unless `$WATCHDOG_PID` names another
        process (systemd's rule: the watchdog is the main process's)."""
        env = os.environ if env is None else env
        usec: int | None = None
        pid = env.get("WATCHDOG_PID")
        if pid is None or pid == str(os.getpid()):
            try:
                usec = int(env.get("WATCHDOG_USEC", "")) or None
            except ValueError:
                usec = None
        return cls(env.get("NOTIFY_SOCKET") or None, usec)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    @property
    def watchdog_interval_s(self) -> float | None:
        """How often to ping: a third of the watchdog timeout; None without a watchdog."""
        if self._address is None or self._watchdog_usec is None:
            return None
        return self._watchdog_usec / 1e6 / 3

    def notify(self, state: str) -> bool:
        """Send one state line; never raises (the gateway runs on without systemd's ear).
        A failure is logged once, and its recovery once."""
        if self._address is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
                s.connect(self._address)
                s.sendall(state.encode())
        except OSError as exc:
            if not self._failing:
                log.error("sd_notify to %r failed: %s", self._address, exc)
            self._failing = True
            return False
        if self._failing:
            log.warning("sd_notify to %r works again", self._address)
        self._failing = False
        return True

    async def run_watchdog(self) -> None:
        """`WATCHDOG=1` every `watchdog_interval_s`, for as long as the event loop runs."""
        interval = self.watchdog_interval_s
        if interval is None:
            return
        while True:
            self.notify("WATCHDOG=1")
            await asyncio.sleep(interval)
