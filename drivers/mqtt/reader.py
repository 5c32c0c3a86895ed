"""The read side of one broker connection: the incoming stream, batched, and its PUBACKs.

The socket is read here in large chunks and cut into packets by `wire.Framer`: PUBLISH
packets go to the owner in batches of at most `BATCH`, for at most `SLICE_S` at a time (then
the loop runs other work before the next slice: the bulk lane never starves the control lane
or the API), every other packet goes back to paho. Reading pauses while `READ_AHEAD` bytes
wait unframed, and, on a lane that asks for it, for `coalesce_s` after a small read.
The owner's PUBACKs are coalesced into one write per `ACK_DELAY_S`. The socket the
handshake opened is attached to the loop here (and detached when the session ends).

`MqttReader` is the base class of `connection.MqttConnection`, which owns the session (the
paho client, the session generation, writing, dropping the link). A base class
rather than a separate object: this is the ingest hot path, and every attribute it touches
stays one lookup away, as before the split.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Self

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode

from drivers.mqtt.wire import (
    MAX_PACKET_BYTES,
    PUBACK,
    Framer,
    Other,
    Oversize,
    ProtocolError,
    Publish,
    pubacks,
)

if TYPE_CHECKING:
    from drivers.mqtt.connection import ConnectionSettings

log = logging.getLogger(__name__)


class MqttReader:
    BATCH = 64  # PUBLISH packets handed over at a time (acknowledged together)
    SLICE_S = 0.002  # then the loop gets a turn: the API, the control lane, the writers
    ACK_DELAY_S = 0.001
    SMALL_READ = 16 * 1024
    READ_CHUNK = 256 * 1024
    READ_AHEAD = 4 * 1024 * 1024  # stop reading the socket while this much waits unframed

    # The session's (the subclass sets them): settings, client, loop; the socket is ours
    # from `_attach` until the session drops it.
    settings: ConnectionSettings
    generation: int
    _client: paho.Client
    _loop: asyncio.AbstractEventLoop | None
    _sock: socket.socket | None
    _fd: int | None
    _on_messages: Callable[[Self, list[Publish]], None]

    def __init__(self) -> None:
        self._framer = Framer()
        self._reading = False
        self._writing = False  # `_after` watches for writability
        self._drain_scheduled = False
        self._pending_acks: list[int] = []
        self._ack_timer: asyncio.TimerHandle | None = None
        self._coalescing: asyncio.TimerHandle | None = None
        self.oversize_dropped = 0
        self._oversize_logged = False

    def _after(self) -> None:
        """Write what paho has queued (the session's)."""
        raise NotImplementedError

    def _drop(self, reason: str) -> None:
        """Close the socket and end the session with `ConnectionLost` (the session's)."""
        raise NotImplementedError

    # -------------------------------------------------------------- the socket
    def _attach(self) -> None:
        loop = self._loop
        sock = self._client.socket()
        assert loop is not None and isinstance(sock, socket.socket)
        # Small packets must not wait for Nagle's algorithm against delayed ACKs: that put
        # 40 ms between a gas reading and its close_valve (DESIGN section 13).
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        self._fd = sock.fileno()
        loop.add_reader(self._fd, self._on_readable)
        self._reading = True
        self._after()  # CONNECT, if the handshake thread could not write it all

    def _detach(self) -> None:
        if self._coalescing is not None:
            self._coalescing.cancel()
            self._coalescing = None
        loop, fd = self._loop, self._fd
        if loop is not None and fd is not None:
            if self._reading:
                loop.remove_reader(fd)
            if self._writing:
                loop.remove_writer(fd)
        self._reading = self._writing = False
        self._fd = None

    # ----------------------------------------------------------------- acknowledging
    @property
    def buffered(self) -> int:
        """Bytes received and not yet handled."""
        return self._framer.buffered

    def ack(self, mids: list[int], generation: int) -> None:
        """PUBACK these packet ids of session `generation`, in order, soon, in one write.

        Acknowledgements wait up to `ACK_DELAY_S` to be written together: at a steady
        10,000 readings/s a write per small batch was a sixth of the gateway's time, and the
        broker's in-flight window (100 messages) is far from filled meanwhile."""
        if not mids or self._sock is None or generation != self.generation:
            return  # a new session: the broker sends those messages again
        self._pending_acks.extend(mids)
        if self._ack_timer is None and self._loop is not None:
            self._ack_timer = self._loop.call_later(self.ACK_DELAY_S, self._flush_acks)

    def _flush_acks(self) -> None:
        self._ack_timer = None
        mids, self._pending_acks = self._pending_acks, []
        if not mids or self._sock is None:
            return
        client = self._client
        data = pubacks(mids)
        if not client._out_packet:  # nothing of paho's half-written: straight to the socket
            try:
                sent = self._sock.send(data)
            except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError):
                sent = 0
            except OSError as exc:
                self._drop(f"send failed: {exc}")
                return
            data = data[sent:]
            client._last_msg_out = time.monotonic()
        if data:
            client._packet_queue(PUBACK, data, 0, 0)
        self._after()

    # -------------------------------------------------------------------- reading
    def _on_readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        try:
            data = sock.recv(self.READ_CHUNK)
            while isinstance(sock, ssl.SSLSocket) and sock.pending():
                data += sock.recv(sock.pending())  # decrypted bytes select() cannot see
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError):
            return
        except OSError as exc:
            self._drop(f"receive failed: {exc}")
            return
        if not data:
            self._drop("connection closed by the broker")
            return
        # for paho's keepalive: the link is alive
        self._client._last_bytes_received = time.monotonic()
        self._framer.feed(data)
        loop, fd = self._loop, self._fd
        assert loop is not None and fd is not None
        if self._framer.buffered > self.READ_AHEAD and self._reading:
            loop.remove_reader(fd)
            self._reading = False
        elif self._reading and self.settings.coalesce_s and len(data) < self.SMALL_READ:
            loop.remove_reader(fd)
            self._reading = False
            self._coalescing = loop.call_later(self.settings.coalesce_s, self._resume_reading)
        if not self._drain_scheduled:
            self._drain()

    def _resume_reading(self) -> None:
        self._coalescing = None
        if self._loop is None or self._fd is None or self._reading:
            return
        if self._framer.buffered <= self.READ_AHEAD:
            self._loop.add_reader(self._fd, self._on_readable)
            self._reading = True

    def _drain(self) -> None:
        """Handle buffered packets for at most `SLICE_S`, then give the loop a turn."""
        self._drain_scheduled = False
        started = time.monotonic()
        more = True
        while more and self._sock is not None:
            more = self._drain_batch()
            if time.monotonic() - started >= self.SLICE_S:
                break
        self._after()
        if self._sock is None or self._loop is None:
            return
        if more:
            self._drain_scheduled = True
            self._loop.call_soon(self._drain)  # the rest after the others' turn
        elif (
            not self._reading
            and self._coalescing is None
            and self._framer.buffered <= self.READ_AHEAD
        ):
            assert self._fd is not None
            self._loop.add_reader(self._fd, self._on_readable)
            self._reading = True

    def _drain_batch(self) -> bool:
        """Up to `BATCH` packets; True if more may be buffered."""
        try:
            packets = self._framer.packets(self.BATCH)
        except ProtocolError as exc:
            self._drop(f"protocol error: {exc}")
            return False
        batch: list[Publish] = []
        for packet in packets:
            if type(packet) is Publish:
                batch.append(packet)
                continue
            if batch:  # keep the order of PUBLISH and other packets
                self._deliver(batch)
                batch = []
            if type(packet) is Oversize:
                self._oversize(packet)
                continue
            assert isinstance(packet, Other)
            self._paho_packet(packet)
            if self._sock is None:
                return False
        if batch:
            self._deliver(batch)
        return len(packets) == self.BATCH

    def _deliver(self: Self, batch: list[Publish]) -> None:
        try:
            self._on_messages(self, batch)
        except Exception:
            # The owner handles its own errors; one that escapes must not kill the
            # connection's reader (and with it every later message).
            log.exception("MQTT %s: unhandled error delivering messages", self.settings.client_id)

    def _oversize(self, packet: Oversize) -> None:
        """Dropped at the socket: counted, logged (the first of each session), acknowledged."""
        self.oversize_dropped += 1
        if not self._oversize_logged:
            self._oversize_logged = True
            log.warning(
                "MQTT %s: dropped a %d-byte message on %r (over %d bytes; logged once a session)",
                self.settings.client_id,
                packet.length,
                packet.topic.decode("utf-8", "replace"),
                MAX_PACKET_BYTES,
            )
        if packet.qos:
            self.ack([packet.mid], self.generation)

    def _paho_packet(self, packet: Other) -> None:
        client = self._client
        inp = client._in_packet
        inp["command"] = packet.header
        inp["packet"] = bytearray(packet.body)
        inp["pos"] = 0
        inp["remaining_length"] = len(packet.body)
        try:
            rc = client._packet_handle()
        except Exception as exc:  # noqa: BLE001 - a malformed packet from the broker
            rc = MQTTErrorCode.MQTT_ERR_PROTOCOL
            log.warning("MQTT %s: bad packet: %s", self.settings.client_id, exc)
        inp["command"] = 0
        inp["packet"] = bytearray()
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._drop(f"packet handling failed: {paho.error_string(rc)}")
