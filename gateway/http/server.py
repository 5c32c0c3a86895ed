"""uvicorn, with shutdown on SIGINT/SIGTERM owned by us.

uvicorn re-raises the signal after its own graceful shutdown, which turns Ctrl-C into a
KeyboardInterrupt in the middle of the gateway's orderly stop (commits not made, the
store's thread left running). Here a signal only asks the server to stop; the caller's
`async with Gateway(...)` then shuts down in order and the process exits 0.

With `http.tls` (passed, or left on the app by `build_app`) it serves HTTPS only; without,
on an address other than loopback, it says at start that tokens and alarm actions cross the
network in clear (allowed: a site may terminate TLS in a proxy in front).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Callable, Generator, Sequence
from typing import Any, Literal

import uvicorn

from gateway.config.checks import is_loopback
from gateway.config.tls import HttpTls

log = logging.getLogger(__name__)


class HttpServer(uvicorn.Server):
    def __init__(
        self,
        app: Any,
        host: str,
        port: int,
        *,
        lifespan: Literal["auto", "on", "off"] = "auto",
        on_ready: Callable[[], object] = lambda: None,
        tls: HttpTls | None = None,
        trusted_proxies: Sequence[str] = ("127.0.0.1",),
    ) -> None:
        if tls is None and not is_loopback(host):
            log.warning(
                "HTTP on %s:%s without http.tls: tokens and alarm actions cross the network "
                "in clear (DESIGN section 10 asks for TLS in deployment)",
                host,
                port,
            )
        super().__init__(
            uvicorn.Config(
                app,
                host=host,
                port=port,
                log_level="warning",
                lifespan=lifespan,
                ssl_certfile=None if tls is None else str(tls.cert),
                ssl_keyfile=None if tls is None else str(tls.key),
                proxy_headers=True,
                forwarded_allow_ips=list(trusted_proxies),
            )
        )
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """The app started (its lifespan) and the port listens: tell `on_ready`."""
        await super().startup(sockets)
        if self.started:
            self._on_ready()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        loop = asyncio.get_running_loop()
        signals = (signal.SIGINT, signal.SIGTERM)
        for sig in signals:
            loop.add_signal_handler(sig, self._stop_requested)
        try:
            yield
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)

    def _stop_requested(self) -> None:
        if self.should_exit:
            self.force_exit = True  # second Ctrl-C: stop waiting for connections
        self.should_exit = True
