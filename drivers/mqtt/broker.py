"""An embedded MQTT broker (amqtt) for `run`/`demo` when no broker is configured.

For showing the product on one machine. Deployments use Mosquitto (deploy/mosquitto.conf):
amqtt keeps sessions in memory only and is not what an institution should depend on.
"""

from __future__ import annotations

import logging
import random
import socket
from pathlib import Path
from types import TracebackType

from amqtt.broker import Broker

log = logging.getLogger(__name__)


# Ports handed out by this process, so that two servers started one after the other never
# get the same one before the first has bound it.
_handed_out: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A port to listen on, below the kernel's ephemeral range.

    A port the kernel picks (bind to 0) comes from the ephemeral range, which outgoing
    connections also draw from: between choosing the port and the server binding it (a
    subprocess starting up, say), one of our own connections could take it, and the server
    failed to start. Outgoing connections never use ports below that range."""
    low = _ephemeral_low()
    for _ in range(200):
        port = random.randint(10_000, low - 1)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:  # a crowded machine
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _ephemeral_low(default: int = 32768) -> int:
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return default
    return low if low > 11_000 else default


class EmbeddedBroker:
    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._broker: Broker | None = None

    async def __aenter__(self) -> EmbeddedBroker:
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self._broker = Broker(
            {
                "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
                "plugins": {
                    "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
                },
            }
        )
        await self._broker.start()
        log.warning(
            "no mqtt section configured: started an embedded broker on %s:%d (for demos; "
            "use Mosquitto in production)",
            self.host,
            self.port,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._broker is not None:
            await self._broker.shutdown()
            self._broker = None
