"""`AckTrap`: a TCP proxy between the gateway and the broker that can swallow a PUBACK.

To test what happens when the gateway has taken (and committed) a message but the broker never
got its acknowledgement, deterministically: `arm()`, publish, wait for `swallowed`; the
connection that tried to acknowledge forwards nothing more to the broker, as if the gateway had
died right there. Then kill the gateway (the crash) or `cut()` every connection (a reconnect).
Packets are cut by their MQTT fixed header; nothing else is interpreted.
"""

from __future__ import annotations

import asyncio
import contextlib

from simulator.testbed import free_port

PUBACK = 0x40


class AckTrap:
    def __init__(self, broker_port: int) -> None:
        self.broker_port = broker_port
        self.port = free_port()
        self.armed = False
        self.swallowed = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self.cut()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def arm(self) -> None:
        """The next PUBACK any connection sends to the broker is dropped, and that connection
        sends nothing more."""
        self.armed = True

    def cut(self) -> None:
        """Close every connection, both ends (the broker and the gateway see it drop)."""
        for w in list(self._writers):
            w.close()
        self._writers.clear()

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        broker_r, broker_w = await asyncio.open_connection("127.0.0.1", self.broker_port)
        self._writers |= {client_w, broker_w}
        up = asyncio.create_task(self._upstream(client_r, broker_w))
        down = asyncio.create_task(self._pipe(broker_r, client_w))
        self._tasks |= {up, down}
        await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        for w in (client_w, broker_w):
            w.close()
            self._writers.discard(w)

    async def _pipe(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await r.read(65536):
                w.write(data)
                await w.drain()

    async def _upstream(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        """Gateway to broker, packet by packet, so that one PUBACK can be held back."""
        frozen = False
        buf = bytearray()
        with contextlib.suppress(OSError):
            while data := await r.read(65536):
                buf += data
                out = bytearray()
                while (packet := _cut(buf)) is not None:
                    if frozen:
                        continue
                    if self.armed and packet[0] & 0xF0 == PUBACK:
                        self.armed = False
                        self.swallowed += 1
                        frozen = True
                        continue
                    out += packet
                if out:
                    w.write(out)
                    await w.drain()


def _cut(buf: bytearray) -> bytes | None:
    """The first whole packet of `buf`, removed from it; None while it has not all come."""
    length = 0
    shift = 0
    i = 1
    while True:
        if i >= len(buf):
            return None
        byte = buf[i]
        length |= (byte & 0x7F) << shift
        i += 1
        if not byte & 0x80:
            break
        shift += 7
    end = i + length
    if end > len(buf):
        return None
    packet = bytes(buf[:end])
    del buf[:end]
    return packet
