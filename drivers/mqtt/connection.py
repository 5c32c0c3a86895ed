"""One broker connection's session: a paho-mqtt client driven by the asyncio event loop.

paho does the session work: CONNECT with will and credentials, SUBSCRIBE, keepalive pings,
and outgoing QoS 1 publications with their retries (its client object lives as long as
this connection, so what was in flight when the link broke is sent again after
`reconnect()`, as MQTT's session retry intends). This module owns that lifecycle: the
handshake, subscribing, keepalive, a clean close, writing what paho queued, paho's callbacks,
and the end of a session (`ConnectionLost`). The socket is attached to the loop, read,
framed, handed over in batches and acknowledged by the base class, `reader.MqttReader`.

No call waits for an acknowledgement with a timeout: a PUBACK for our own publication may
sit behind any amount of incoming backlog on the same TCP stream, and is not a sign of a
dead link (DESIGN section 13). A dead link is what paho's keepalive says it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion

from drivers.mqtt.reader import MqttReader
from drivers.mqtt.wire import Publish

log = logging.getLogger(__name__)


class ConnectionLost(Exception):
    """The connection failed or broke; the owner reconnects with backoff."""


@dataclass(frozen=True, slots=True)
class Will:
    topic: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """TLS to the broker: the server's certificate is always verified (against `ca_file`,
    or the system's CAs), its name against the host unless `check_hostname` is off."""

    ca_file: str | None = None
    cert_file: str | None = None  # a client certificate, for a broker that asks for one
    key_file: str | None = None
    check_hostname: bool = True

    def context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca_file)
        ctx.check_hostname = self.check_hostname
        if self.cert_file is not None:
            ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx


def failure_reason(exc: BaseException) -> str:
    """One line for the log: a TLS failure says what the certificate check found."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS: certificate verify failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or exc}"
    return str(exc)


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    host: str
    port: int
    client_id: str
    clean_session: bool
    subscriptions: tuple[str, ...]
    # Topics this session may hold from an earlier release that split its traffic
    # differently: unsubscribed at every connect (a persistent session keeps them).
    unsubscriptions: tuple[str, ...] = ()
    username: str | None = None
    password: str | None = None
    keepalive_s: int = 30
    will: Will | None = None
    connect_timeout_s: float = 10.0
    subscription_qos: int = 1
    # After a small read, wait this long before the next (0: never). Paced traffic arrives a
    # message per TCP segment; waking for each cost as much as handling it.
    coalesce_s: float = 0.0
    tls: TlsSettings | None = None


BatchHandler = Callable[["MqttConnection", list[Publish]], None]


class MqttConnection(MqttReader):
    def __init__(
        self,
        settings: ConnectionSettings,
        on_messages: BatchHandler,
        on_published: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self._on_messages = on_messages
        self._on_published_hook = on_published
        s = settings
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=s.client_id,
            clean_session=s.clean_session,
            protocol=MQTTProtocolVersion.MQTTv311,
        )
        client.max_inflight_messages_set(0)  # no cap: the broker paces QoS 1 itself
        client.max_queued_messages_set(0)
        client.connect_timeout = s.connect_timeout_s
        if s.username is not None:
            client.username_pw_set(s.username, s.password)
        if s.will is not None:
            client.will_set(s.will.topic, s.will.payload, qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_publish = self._on_publish
        client.on_socket_close = self._on_socket_close
        client.connect_async(s.host, s.port, s.keepalive_s)  # sets the address; no I/O
        self._client = client
        self._tls_pending = s.tls is not None  # the context is made at the first attempt
        self._loop = None
        self._sock = None
        self._fd = None
        self._connack: asyncio.Future[None] | None = None
        self._suback: dict[int, asyncio.Future[None]] = {}
        self._lost: asyncio.Future[None] | None = None
        self._session_present = False
        self.connected = False
        self.generation = 0  # one per session: packet ids of an older one are meaningless
        self.sessions_up = 0  # sessions that got as far as `on_up`

    # ------------------------------------------------------------------ session
    async def session(self, on_up: Callable[[], None] = lambda: None) -> None:
        """Connect, subscribe, call `on_up`, then serve until the link breaks
        (`ConnectionLost`) or the task is cancelled."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._lost = loop.create_future()
        self._connack = loop.create_future()
        try:
            try:
                await asyncio.to_thread(self._open)
            except (OSError, ssl.SSLError, ValueError) as exc:
                raise ConnectionLost(f"cannot connect: {failure_reason(exc)}") from None
            self.generation += 1  # a persistent session's queue may come right after CONNACK
            self._oversize_logged = False
            self._attach()
            await self._until(self._connack, "CONNACK")
            await self._subscribe(loop)
            self.connected = True
            self.sessions_up += 1
            on_up()
            keepalive = asyncio.create_task(self._keepalive(), name=f"{self.settings.client_id}-ka")
            try:
                await self._lost
            finally:
                keepalive.cancel()
        finally:
            if self._pending_acks and self._sock is not None:
                self._flush_acks()  # a clean stop: what was handled is acknowledged
            self.connected = False
            if self._lost.done() and not self._lost.cancelled():
                self._lost.exception()  # retrieved: the caller has it, or is cancelled
            self._detach()
            if self._sock is not None:
                with contextlib.suppress(OSError):
                    self._client._sock_close()
            self._sock = None
            self._suback.clear()
            self._framer.clear()
            if self._ack_timer is not None:
                self._ack_timer.cancel()
                self._ack_timer = None
            self._pending_acks = []  # a new session: the broker sends those again

    async def _subscribe(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.settings.unsubscriptions:
            self._client.unsubscribe(list(self.settings.unsubscriptions))
        if not self.settings.subscriptions:
            return
        qos = self.settings.subscription_qos
        rc, mid = self._client.subscribe([(t, qos) for t in self.settings.subscriptions])
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
            raise ConnectionLost(f"subscribe failed: {paho.error_string(rc)}")
        suback = self._suback[mid] = loop.create_future()
        self._after()
        if self._session_present:
            # The broker kept our session, subscriptions included, and may be sending its
            # queue now: the SUBACK comes behind all of it. Serve meanwhile; a refusal
            # still drops the connection (`_suback_done`).
            suback.add_done_callback(self._suback_done)
        else:
            await self._until(suback, "SUBACK")

    async def close(self, grace_s: float) -> None:
        """Wait (bounded) for our publications to be acknowledged, then say DISCONNECT.
        A clean disconnect sends no will."""
        deadline = time.monotonic() + grace_s
        while (  # noqa: ASYNC110 - polling paho's in-flight count, bounded by the grace
            self.connected and self.in_flight and time.monotonic() < deadline
        ):
            await asyncio.sleep(0.02)
        if self.connected:
            self._client.disconnect()
            self._after()

    def _open(self) -> None:
        # In a worker thread: the TCP (and TLS) handshake blocks. Nothing else touches the
        # client meanwhile: the socket is not registered with the loop until `_attach`.
        if self._tls_pending and self.settings.tls is not None:
            # Here rather than at construction: an unreadable certificate file is then one
            # more failed attempt, logged and retried, not a crash of the gateway's start.
            self._client.tls_set_context(self.settings.tls.context())
            self._tls_pending = False
        rc = self._client.reconnect()
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise OSError(paho.error_string(rc))

    async def _until(self, fut: asyncio.Future[None], what: str) -> None:
        lost = self._lost
        assert lost is not None
        done, _ = await asyncio.wait(
            {fut, lost}, timeout=self.settings.connect_timeout_s, return_when="FIRST_COMPLETED"
        )
        if lost in done:
            lost.result()  # raises ConnectionLost
        if fut not in done:
            raise ConnectionLost(f"no {what} within {self.settings.connect_timeout_s:.0f} s")
        fut.result()

    async def _keepalive(self) -> None:
        period = min(1.0, self.settings.keepalive_s / 4)
        while True:
            await asyncio.sleep(period)
            self._client.loop_misc()
            self._after()

    # ----------------------------------------------------------------- publishing
    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> bool:
        """Hand a publication to paho (sent now, or as soon as the socket takes it);
        False when not connected."""
        if not self.connected:
            return False
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        self._after()
        return info.rc in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN)

    @property
    def in_flight(self) -> int:
        """Our QoS 1 publications the broker has not acknowledged yet."""
        return len(self._client._out_messages)

    # -------------------------------------------------------------------- writing
    def _after(self) -> None:
        """Write what paho has queued; watch for writability while some is left."""
        client = self._client
        if client._sock is not None and client.want_write():
            client.loop_write()
        if client._sock is None:
            if self._sock is not None:
                self._drop("connection lost while writing")
            return
        loop, fd = self._loop, self._fd
        if loop is None or fd is None:
            return
        wants = client.want_write()
        if wants and not self._writing:
            loop.add_writer(fd, self._after)
            self._writing = True
        elif not wants and self._writing:
            loop.remove_writer(fd)
            self._writing = False

    # ------------------------------------------------------------- paho callbacks
    def _on_connect(
        self, _c: object, _u: object, flags: object, reason: object, _p: object
    ) -> None:
        fut = self._connack
        if fut is None or fut.done():
            return
        self._session_present = bool(getattr(flags, "session_present", False))
        failure = getattr(reason, "is_failure", False)
        if failure:
            fut.set_exception(ConnectionLost(f"refused by the broker: {reason}"))
        else:
            fut.set_result(None)

    def _on_subscribe(self, _c: object, _u: object, mid: int, codes: object, _p: object) -> None:
        fut = self._suback.pop(mid, None)
        if fut is None or fut.done():
            return
        failed = [c for c in codes if getattr(c, "is_failure", False)]  # type: ignore[attr-defined]
        if failed:
            fut.set_exception(ConnectionLost(f"subscription refused: {failed[0]}"))
        else:
            fut.set_result(None)

    def _suback_done(self, fut: asyncio.Future[None]) -> None:
        if not fut.cancelled() and fut.exception() is not None:
            log.error("MQTT %s: %s", self.settings.client_id, fut.exception())
            self._drop(str(fut.exception()))

    def _on_publish(self, _c: object, _u: object, _mid: int, _r: object, _p: object) -> None:
        if self._on_published_hook is not None:
            self._on_published_hook()

    def _on_socket_close(self, _c: object, _u: object, _sock: object) -> None:
        # paho closes the socket itself on some errors (keepalive, writes): unregister it
        # from the loop before the descriptor is closed and its number reused.
        if self._fd is not None:
            self._detach()
            self._sock = None
            self._fail("connection closed")

    def _drop(self, reason: str) -> None:
        self._detach()
        self._sock = None
        with contextlib.suppress(OSError):
            self._client._sock_close()
        self._fail(reason)

    def _fail(self, reason: str) -> None:
        self.connected = False
        lost = self._lost
        if lost is not None and not lost.done():
            lost.set_exception(ConnectionLost(reason))
