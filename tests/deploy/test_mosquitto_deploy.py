"""deploy/'s broker files, rendered for the test's ports and paths, on a real Mosquitto with
password authentication (issue 10): what an edge's or a device's credential cannot do; and
how soon the broker's persistence keeps a new session and its queue across a kill -9."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiomqtt
import pytest

from drivers.mqtt.broker import free_port
from tests.conftest import Mosquitto, until

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PASSWORD = "pw-test"


def render(
    conf: str,
    acl: str,
    workdir: Path,
    users: dict[str, list[str]],
    persistence: Path | None = None,
    tls: bool = False,
) -> Callable[[int], str]:
    """The shipped configuration for the test: its public listener on `port` (loopback),
    the gateway's listener on another free port (`workdir/gateway.port`), its TLS listener,
    if any, on a third (`workdir/gateway-tls.port`), files in `workdir` (certificates in
    `workdir/certs/`, as shipped under /etc/mosquitto/certs/); TLS as shipped if `tls`, else
    none; persistence (as shipped) in `persistence`, else none. `users`: password file
    name -> accounts (mosquitto_passwd)."""
    for name, accounts in users.items():
        path = workdir / name
        for i, user in enumerate(accounts):
            create = ["-c"] if i == 0 else []
            subprocess.run(
                ["mosquitto_passwd", *create, "-b", str(path), user, PASSWORD], check=True
            )
    (acl_name,) = set(re.findall(r"acl_file /etc/mosquitto/(\S+)", (DEPLOY / conf).read_text()))
    (workdir / acl_name).write_text((DEPLOY / acl).read_text())

    def config(port: int) -> str:
        text = (DEPLOY / conf).read_text()
        gateway_port = free_port()
        (workdir / "gateway.port").write_text(str(gateway_port))
        text = text.replace("listener 1884 127.0.0.1", f"listener {gateway_port} 127.0.0.1")
        gateway_tls_port = free_port()
        (workdir / "gateway-tls.port").write_text(str(gateway_tls_port))
        text = text.replace("listener 8884 0.0.0.0", f"listener {gateway_tls_port} 127.0.0.1")
        text = re.sub(r"listener (1883|8883) 0\.0\.0\.0", f"listener {port} 127.0.0.1", text)
        text = text.replace("/etc/mosquitto/", f"{workdir}/")
        if not tls:
            text = re.sub(r"(?m)^(cafile|certfile|keyfile|require_certificate) .*$", "", text)
        if persistence is None:
            text = re.sub(r"(?m)^persistence_location .*$", "", text)
            text = text.replace("persistence true", "persistence false")
        else:
            text = text.replace("/var/lib/mosquitto/", f"{persistence}/")
        text = text.replace("log_dest syslog", "log_dest stderr")
        if os.geteuid() == 0:  # or it drops to user mosquitto, who cannot read tmp_path
            text += "user root\n"
        return text

    return config


@contextlib.asynccontextmanager
async def client(
    port: int,
    user: str,
    identifier: str,
    subscribe: str | None = None,
    tls: ssl.SSLContext | None = None,
) -> AsyncIterator[tuple[aiomqtt.Client, list[tuple[str, bytes]], asyncio.Task[None]]]:
    """A password-authenticated client (over TLS with `tls`), recording what it receives;
    the task ends when the broker drops the connection."""
    c = aiomqtt.Client(
        "localhost" if tls else "127.0.0.1",
        port,
        username=user,
        password=PASSWORD,
        identifier=identifier,
        clean_session=True,
        tls_context=tls,
    )
    await c.__aenter__()
    got: list[tuple[str, bytes]] = []
    if subscribe:
        await c.subscribe(subscribe, qos=1)

    async def record() -> None:
        with contextlib.suppress(aiomqtt.MqttError):
            async for m in c.messages:
                got.append((m.topic.value, m.payload if isinstance(m.payload, bytes) else b""))

    task = asyncio.create_task(record())
    try:
        yield c, got, task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with contextlib.suppress(aiomqtt.MqttError):
            await c.__aexit__(None, None, None)


async def test_a_device_cannot_take_the_edge_gateways_client_id(
    tmp_path: Path, brokers: Callable[..., Mosquitto]
) -> None:
    config = render(
        "mosquitto.conf",
        "mosquitto.acl",
        tmp_path,
        {
            "safety-gateway.passwd": ["safety-gateway"],
            "safety-devices.passwd": ["xingfu/gas-kitchen"],
        },
    )
    m = brokers(tmp_path, name="edge", config=config)
    gw_port = int((tmp_path / "gateway.port").read_text())
    async with client(gw_port, "safety-gateway", "safety-gw-zy", "safety/#") as (gw, got, alive):
        # A device's credential does not work on the gateway's listener at all.
        with pytest.raises(aiomqtt.MqttError):
            async with client(gw_port, "xingfu/gas-kitchen", "safety-gw-zy"):
                pass
        # On its own listener it connects, but as itself: the gateway stays connected.
        async with client(m.port, "xingfu/gas-kitchen", "safety-gw-zy") as (dev, _, _):
            await dev.publish("safety/xingfu/gas-kitchen/telemetry", b'{"lel": 1}', qos=1)
            await until(lambda: got, what="the device's reading at the gateway")
            assert not alive.done(), "the gateway was not knocked off the broker"
            await gw.publish("safety/xingfu/valve-kitchen/cmd", b"{}", qos=1)


async def test_an_edge_bridge_writes_only_its_own_sites_and_presence_at_the_bureau(
    tmp_path: Path, brokers: Callable[..., Mosquitto]
) -> None:
    config = render(
        "mosquitto-bureau.conf",
        "mosquitto-bureau.acl",
        tmp_path,
        {
            "bureau-gateway.passwd": ["safety-gateway"],
            "bureau-remote.passwd": ["xingfu-gw1", "anning/btn-a"],
        },
    )
    m = brokers(tmp_path, name="bureau", config=config)
    gw_port = int((tmp_path / "gateway.port").read_text())
    async with client(gw_port, "safety-gateway", "safety-gw-bureau", "safety/#") as (_, got, alive):
        forged = [
            ("safety/gateways/anning-gw", b'{"gateway": "anning-gw", "status": "offline"}'),
            ("safety/anning/alarms", b'{"site": "anning"}'),
            ("safety/anning/commands", b'{"site": "anning"}'),
            ("safety/anning/btn-a/event", b'{"event": "pressed"}'),
            ("safety/anning/bridge/state", b"0"),
        ]
        genuine = [
            ("safety/xingfu/alarms", b'{"site": "xingfu"}'),
            ("safety/xingfu/bridge/state", b"1"),
            ("safety/gateways/xingfu-gw1", b'{"gateway": "xingfu-gw1"}'),
        ]
        for topic, payload in forged:
            # The broker drops it (and paho drops the connection on the refused PUBACK):
            # when the publish returns or fails, the broker has judged it.
            with contextlib.suppress(aiomqtt.MqttError):
                async with client(m.port, "xingfu-gw1", "edge-xingfu") as (edge, _, _):
                    await edge.publish(topic, payload, qos=1)
        async with client(m.port, "xingfu-gw1", "edge-xingfu") as (edge, _, _):
            for topic, payload in genuine:
                await edge.publish(topic, payload, qos=1)
            await until(lambda: len(got) >= len(genuine), what="the edge's own messages")
        assert sorted(got) == sorted(genuine), "nothing forged reached the bureau gateway"
        # A 4G device's credential with the bureau gateway's client id: the gateway stays.
        async with client(m.port, "anning/btn-a", "safety-gw-bureau") as (dev, _, _):
            await dev.publish("safety/anning/btn-a/event", b'{"event": "pressed"}', qos=1)
            await until(lambda: len(got) > len(genuine), what="the device's event at the bureau")
            assert got[-1][0] == "safety/anning/btn-a/event"
            assert not alive.done(), "the bureau gateway was not knocked off the broker"


@pytest.mark.parametrize(
    ("conf", "acl", "users"),
    [
        ("mosquitto.conf", "mosquitto.acl", ("safety-gateway.passwd", "safety-devices.passwd")),
        (
            "mosquitto-bureau.conf",
            "mosquitto-bureau.acl",
            ("bureau-gateway.passwd", "bureau-remote.passwd"),
        ),
    ],
)
async def test_a_new_gateway_session_and_its_queue_survive_a_kill_9_within_seconds(
    tmp_path: Path,
    brokers: Callable[..., Mosquitto],
    conf: str,
    acl: str,
    users: tuple[str, str],
) -> None:
    """A gateway subscribes for the first time and goes; a reading is queued for it. The
    shipped files save the broker's database within seconds (`autosave_interval`, whole
    seconds), so a broker killed after that comes back with the session and the reading."""
    store = tmp_path / "store"
    store.mkdir()
    gw_users, remote_users = users
    config = render(
        conf,
        acl,
        tmp_path,
        {gw_users: ["safety-gateway"], remote_users: ["xingfu/gas-kitchen"]},
        persistence=store,
    )
    m = brokers(tmp_path, name="persistent", config=config)
    gw_port = int((tmp_path / "gateway.port").read_text())
    topic = "safety/xingfu/gas-kitchen/telemetry"

    def gateway() -> aiomqtt.Client:
        return aiomqtt.Client(
            "127.0.0.1",
            gw_port,
            username="safety-gateway",
            password=PASSWORD,
            identifier="safety-gw-zy-bulk",
            clean_session=False,
        )

    async with gateway() as gw:
        await gw.subscribe("safety/+/+/telemetry", qos=1)
    async with client(m.port, "xingfu/gas-kitchen", "xingfu/gas-kitchen") as (dev, _, _):
        await dev.publish(topic, b'{"values": {"lel": 12.5}}', qos=1)
    queued_at = time.time()
    db = store / "mosquitto.db"
    # 5 s as shipped, counted in whole seconds: saved at most 6 s after the queueing
    await until(
        lambda: db.exists() and db.stat().st_mtime >= queued_at - 0.01,
        timeout=7.5,
        what="the broker's database saved with the new session and its queued reading",
    )
    m.kill()
    m.start()
    async with gateway() as gw:
        message = await asyncio.wait_for(anext(gw.messages), 5)
    assert (message.topic.value, message.payload) == (topic, b'{"values": {"lel": 12.5}}')
