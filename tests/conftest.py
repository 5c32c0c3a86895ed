"""Fixtures that start real servers: Mosquitto on a free port, the gateway, its API.

Every server is started here and stopped by PID; traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import aiomqtt
import httpx
import orjson
import pytest
import uvicorn
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from gateway.app.supervisor import Gateway
from gateway.config.loading import parse_config
from gateway.config.schema import GatewayConfig
from gateway.http.app import create_api
from simulator.devices import nodelay
from simulator.modbus_server import SimModbusServer
from simulator.testbed import (
    MOSQUITTO,
    VICTORIA_METRICS,
    Mosquitto,
    NotInstalled,
    Sample,
    VictoriaMetrics,
    free_port,
    wait_port,
)
from tests.support.browser import chromium_page
from tests.support.providers import AK_ID, AK_SECRET, TC_ID, TC_KEY

if TYPE_CHECKING:
    from tests.support.browser import Chromium

__all__ = ["MOSQUITTO", "VICTORIA_METRICS", "Sample", "free_port", "wait_port"]

T = TypeVar("T")

VENV_BIN = Path(sys.executable).parent
REPO_ROOT = Path(__file__).resolve().parent.parent


# Fixtures that start a server, and the marker a test that uses one gets: `make test-fast`
# deselects them all (pyproject.toml lists the markers).
# A test that starts a server starts it through one of these fixtures (or one that uses
# them), never inline, so that its marker cannot be forgotten.
SERVER_FIXTURES: dict[str, tuple[str, ...]] = {
    "broker": ("broker",),
    "brokers": ("broker",),
    "probe": ("broker",),
    "gateway": ("broker",),
    "config_data": ("broker",),
    "vm": ("tsdb",),
    "smtp_server": ("smtp",),
    "modbus_server": ("modbus",),
    "serial_bus": ("modbus",),  # tests/support/serial_bus: socat ptys and an RTU server
    "chromium": ("browser",),
    "run_cli": ("process",),
    "cli_process": ("process",),
    "gateway_process": ("process",),
    # a benchmark starts its own Mosquitto, VictoriaMetrics and Modbus servers
    "run_bench": ("process", "broker", "tsdb", "modbus"),
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for name in getattr(item, "fixturenames", ()):
            for marker in SERVER_FIXTURES.get(name, ()):
                item.add_marker(marker)


def _installed(make: Callable[[], T]) -> T:
    try:
        return make()
    except NotInstalled as exc:
        pytest.fail(str(exc))


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    m = _installed(lambda: Mosquitto(tmp_path))
    m.start()
    try:
        yield m
    finally:
        m.stop()


@pytest.fixture
def brokers() -> Iterator[Callable[..., Mosquitto]]:
    """Starts more Mosquitto brokers (`Mosquitto(workdir, ...)`, started); all stopped after."""
    started: list[Mosquitto] = []

    def start(workdir: Path, **kwargs: Any) -> Mosquitto:
        m = _installed(lambda: Mosquitto(workdir, **kwargs))
        started.append(m)
        m.start()
        return m

    try:
        yield start
    finally:
        for m in started:
            m.stop()


def site_config(
    data_dir: Path,
    broker_port: int,
    *,
    rules: dict[str, Any] | None = None,
    extra_devices: list[dict[str, Any]] | None = None,
    http: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A one-site configuration, as parsed YAML, for the integration tests."""
    devices: list[dict[str, Any]] = [
        {
            "id": "gas-kitchen",
            "type": "gas_detector",
            "location": "一楼厨房",
            "shutoff_valve": "valve-kitchen",
        },
        {"id": "valve-kitchen", "type": "gas_valve", "location": "一楼厨房"},
        {"id": "btn-lobby", "type": "alarm_button", "location": "大厅"},
        {"id": "efm-1", "type": "electrical_fire_monitor", "location": "配电室"},
        {"id": "co-boiler", "type": "co_detector", "location": "锅炉房"},
    ]
    devices += extra_devices or []
    return {
        "gateway": {"id": "test-gw", "data_dir": str(data_dir), "timezone": "Asia/Shanghai"},
        "http": http or {"host": "127.0.0.1", "port": 8080},
        "mqtt": {"url": f"mqtt://127.0.0.1:{broker_port}", "topic_prefix": "safety"},
        "rules": rules or {"valve_confirm_timeout": "2 s"},
        # Off: a gateway on the fake clock would send the day's self-report reminders beside
        # the alarms these tests count (tests/gateway/reminders turns them on).
        "reminders": {"enabled": False},
        "sites": [
            {
                "id": "xingfu",
                "name": "城区幸福养老服务中心",
                "kind": "elderly_care",
                "contacts": [
                    {"name": "张杰荣", "role": "legal_representative", "phone": "+8613800000001"},
                    {"name": "李四应", "role": "safety_manager", "phone": "+8613800000002"},
                ],
                "devices": devices,
            }
        ],
    }


class FakeClock:
    """Wall time that moves only when the test moves it (`now`, or `advance`), with a
    monotonic clock (`monotonic`) that `advance` moves alike and a wall step (`step`) does
    not. `running_gateway` hands both to the gateway."""

    T0 = 1_795_000_000.0  # 2026-11-18 19:06:40 in Shanghai
    MONO0 = 50_000.0

    def __init__(self, now: float = T0) -> None:
        self.now = now
        self.mono = self.MONO0

    def __call__(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.mono += seconds

    def step(self, seconds: float) -> None:
        """The wall clock is set (NTP, a person), either way; time itself did not pass."""
        self.now += seconds


@dataclass
class RunningGateway:
    gw: Gateway
    api: httpx.AsyncClient
    config: GatewayConfig

    async def wait_connected(self, timeout: float = 10.0) -> None:
        await until(lambda: self.gw.link.health.connected, timeout, "gateway connected to broker")


async def until(
    predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition"
) -> Any:
    """Poll `predicate` until truthy; the assertion message says what never happened."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running_gateway(config: GatewayConfig, **kwargs: Any) -> AsyncIterator[RunningGateway]:
    kwargs.setdefault("tick_interval_s", 0.1)
    clock = kwargs.get("clock")
    if isinstance(clock, FakeClock):
        kwargs.setdefault("monotonic", clock.monotonic)
    async with Gateway(config, **kwargs) as gw:
        transport = httpx.ASGITransport(app=create_api(gw))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as api:
            running = RunningGateway(gw, api, config)
            await running.wait_connected()
            yield running


@pytest.fixture
def config_data(tmp_path: Path, broker: Mosquitto) -> dict[str, Any]:
    return site_config(tmp_path / "data", broker.port)


@pytest.fixture
async def gateway(config_data: dict[str, Any]) -> AsyncIterator[RunningGateway]:
    async with running_gateway(parse_config(config_data)) as running:
        yield running


@dataclass
class Probe:
    """A test-side MQTT client: publishes as devices do and records what the gateway sends."""

    client: aiomqtt.Client
    received: list[tuple[str, bytes]] = field(default_factory=list)

    async def publish(
        self, topic: str, payload: bytes | str | dict[str, Any], retain: bool = False
    ) -> None:
        if isinstance(payload, dict):
            payload = orjson.dumps(payload)
        await self.client.publish(topic, payload, qos=1, retain=retain)

    async def telemetry(self, device: str, values: dict[str, Any], site: str = "xingfu") -> None:
        await self.publish(f"safety/{site}/{device}/telemetry", {"values": values})

    async def event(self, device: str, event: str, site: str = "xingfu") -> None:
        await self.publish(f"safety/{site}/{device}/event", {"event": event})

    def messages(self, suffix: str) -> list[dict[str, Any]]:
        return [orjson.loads(p) for t, p in self.received if t.endswith(suffix)]

    async def wait_for(
        self,
        suffix: str,
        match: Callable[[dict[str, Any]], bool] = lambda _: True,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            return next((m for m in self.messages(suffix) if match(m)), None)

        found: dict[str, Any] = await until(find, timeout, f"a message on *{suffix}")
        return found


@contextlib.asynccontextmanager
async def probe_client(
    port: int, subscribe: tuple[str, ...] = ("safety/#",)
) -> AsyncIterator[Probe]:
    client = aiomqtt.Client("127.0.0.1", port, identifier=f"probe-{time.monotonic_ns()}")
    await client.__aenter__()
    nodelay(client._client)  # see simulator.devices.nodelay
    probe = Probe(client)
    for topic in subscribe:
        await client.subscribe(topic, qos=1)

    async def record() -> None:
        with contextlib.suppress(aiomqtt.MqttError):  # the test may stop the broker
            async for m in client.messages:
                payload = m.payload if isinstance(m.payload, bytes) else str(m.payload).encode()
                probe.received.append((m.topic.value, payload))

    task = asyncio.create_task(record())
    try:
        yield probe
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with contextlib.suppress(aiomqtt.MqttError):
            await client.__aexit__(None, None, None)


@pytest.fixture
async def probe(broker: Mosquitto) -> AsyncIterator[Probe]:
    async with probe_client(broker.port) as p:
        yield p


async def answer_valve(probe: Probe) -> None:
    """Play the shut-off valve: confirm the gateway's close_valve and report it closed."""
    cmd = await probe.wait_for("valve-kitchen/cmd", lambda m: m["cmd"] == "close_valve")
    await probe.publish("safety/xingfu/valve-kitchen/cmd/ack", {"id": cmd["id"], "ok": True})
    await probe.telemetry("valve-kitchen", {"open": 0})


def write_config(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


# ------------------------------------------------------------ VictoriaMetrics
@pytest.fixture
def vm(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    server = _installed(lambda: VictoriaMetrics(tmp_path))
    server.start()
    try:
        yield server
    finally:
        server.stop()


# ------------------------------------------------------ notification providers
@pytest.fixture
def provider_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The credentials `tests.support.providers.notify_config` names, as the stubs expect."""
    monkeypatch.setenv("T_AK_ID", AK_ID)
    monkeypatch.setenv("T_AK_SECRET", AK_SECRET)
    monkeypatch.setenv("T_TC_ID", TC_ID)
    monkeypatch.setenv("T_TC_KEY", TC_KEY)


# ------------------------------------------------------------------------ SMTP
class MailHandler:
    """aiosmtpd handler: keeps what arrives. Refuses `nobody@` recipients (550) and `busy@`
    ones (451), and the first `fail` DATA commands with `code`."""

    def __init__(self, fail: int = 0, code: str = "451 4.3.0 Try again later") -> None:
        self.envelopes: list[Envelope] = []
        self.fail = fail
        self.code = code
        self.refused = 0

    async def handle_RCPT(  # aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 No such user"
        if address.startswith("busy@"):
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        if self.refused < self.fail:
            self.refused += 1
            return self.code
        self.envelopes.append(envelope)
        return "250 2.0.0 Message accepted"

    def messages(self) -> list[EmailMessage]:
        out = []
        for e in self.envelopes:
            assert isinstance(e.content, bytes)
            msg = email.message_from_bytes(e.content, policy=email.policy.default)
            assert isinstance(msg, EmailMessage)
            out.append(msg)
        return out


SMTP_LOGIN = ("alarm", "pa55")


def _smtp_authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and (
            auth_data.login.decode(),
            auth_data.password.decode(),
        )
        == SMTP_LOGIN
    )
    # handled=False: aiosmtpd then answers the failure with 535 itself
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_server() -> Iterator[Callable[[MailHandler], int]]:
    """Starts an aiosmtpd server on loopback for a handler and returns its port. Login is
    offered (SMTP_LOGIN) but not required."""
    controllers: list[Controller] = []

    def start(handler: MailHandler) -> int:
        controller = Controller(
            handler,
            hostname="127.0.0.1",
            port=free_port(),
            authenticator=_smtp_authenticator,
            auth_require_tls=False,  # loopback test server without a certificate
        )
        controller.start()
        controllers.append(controller)
        return int(controller.port)

    try:
        yield start
    finally:
        for controller in controllers:
            controller.stop()


@pytest.fixture
def smtp(smtp_server: Callable[[MailHandler], int]) -> tuple[MailHandler, int]:
    """An SMTP server that accepts every mail, and its port."""
    handler = MailHandler()
    return handler, smtp_server(handler)


# ---------------------------------------------------------------------- Modbus
@pytest.fixture
async def modbus_server() -> AsyncIterator[Callable[..., SimModbusServer]]:
    """`SimModbusServer(...)` for the test to enter; any it left running is stopped."""
    servers: list[SimModbusServer] = []

    def make(*args: Any, **kwargs: Any) -> SimModbusServer:
        server = SimModbusServer(*args, **kwargs)
        servers.append(server)
        return server

    try:
        yield make
    finally:
        for server in servers:
            await server.stop()


# --------------------------------------------------------------------- browser
@pytest.fixture
def chromium() -> Chromium:
    """Opens a headless chromium page (and the list of its uncaught errors) when entered."""
    return chromium_page


# ------------------------------------------------------------------- processes
SAFETY_GATEWAY = str(VENV_BIN / "safety-gateway")


@pytest.fixture
def run_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Runs `safety-gateway ARGS` to its end, with its output captured as text."""

    def run(
        *args: str, timeout: float = 30, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [SAFETY_GATEWAY, *args], capture_output=True, text=True, timeout=timeout, env=env
        )

    return run


@pytest.fixture
def cli_process() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Starts `safety-gateway ARGS` in the background (Popen keywords as given); one still
    running at the end of the test is killed."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(*args: str, **kwargs: Any) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([SAFETY_GATEWAY, *args], **kwargs)
        procs.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


GatewayProcess = Callable[
    [Path, int, Path], contextlib.AbstractContextManager[subprocess.Popen[bytes]]
]


@pytest.fixture
def gateway_process() -> GatewayProcess:
    """`safety-gateway run -c CONFIG` until its HTTP port answers; stopped with SIGTERM."""

    @contextlib.contextmanager
    def run(config_path: Path, http_port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
        out = open(log, "ab")
        proc = subprocess.Popen(
            [SAFETY_GATEWAY, "run", "-c", str(config_path)], stdout=out, stderr=out
        )
        try:
            wait_port(http_port, timeout=20)
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            out.close()

    return run


@pytest.fixture
def run_bench() -> Callable[..., str]:
    """Runs bench/SCRIPT ARGS as `make bench` does; returns its output, failing on a failure."""

    def run(script: str, *args: str, timeout: float = 300) -> str:
        proc = subprocess.run(
            [sys.executable, str(REPO_ROOT / "bench" / script), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
        return proc.stdout

    return run


# -------------------------------------------------------------- the API over HTTP
@contextlib.asynccontextmanager
async def served(app: Any, port: int) -> AsyncIterator[int]:
    """The API on a real uvicorn server on loopback, on a port the test chooses (so that a
    restarted gateway comes back at the same address)."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    await until(lambda: server.started or task.done(), what="http server started")
    if task.done():
        task.result()  # raises what stopped it (e.g. the port still taken)
        raise AssertionError("http server stopped at once")
    try:
        yield port
    finally:
        server.should_exit = True
        await task
