"""An embedded MQTT broker (amqtt) for `run`/`demo` when no broker is configured.

For showing the product on one machine. Deployments use Mosquitto (deploy/mosquitto.conf):
amqtt keeps sessions in memory only and is not what an institution should depend on.
"""

from __future__ import annotations

import logging
import socket
from types import TracebackType

from amqtt.broker import Broker

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


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
