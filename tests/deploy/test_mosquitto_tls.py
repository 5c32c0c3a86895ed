"""deploy/mosquitto.conf's TLS listeners on a real Mosquitto (DESIGN section 10: MQTT runs over
TLS in deployment): the shipped files, with only paths and ports changed, a throwaway CA and a
broker certificate for localhost. The gateway connects over TLS and shuts the gas off; a
device's credential publishes only its own topics; a broker the gateway cannot verify (another
CA, another name) is refused with one clear line and never connected to."""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
import pytest

from gateway.app.supervisor import Gateway
from gateway.config.loading import parse_config
from tests.conftest import Mosquitto, running_gateway, site_config, until
from tests.deploy.test_mosquitto_deploy import client, render
from tests.support.certs import LOOPBACK_NAMES, Ca, make_ca, server_cert

GW_PASSWORD_ENV = "T_TLS_MQTT_PASSWORD"


@dataclass(frozen=True)
class TlsBroker:
    broker: Mosquitto
    ca: Ca
    ca_file: Path
    gateway_port: int  # the gateway's TLS listener (8884 as shipped)

    @property
    def device_port(self) -> int:  # the devices' TLS listener (8883 as shipped)
        return self.broker.port

    def context(self) -> ssl.SSLContext:
        """A client's: trusts the test CA, checks the name."""
        return ssl.create_default_context(cafile=str(self.ca_file))


def start_tls_broker(
    tmp_path: Path,
    brokers: Callable[..., Mosquitto],
    names: tuple[str, ...] = LOOPBACK_NAMES,
) -> TlsBroker:
    """deploy/mosquitto.conf and mosquitto.acl with TLS as shipped; the broker's certificate
    (for `names`) where the file expects it, under certs/."""
    certs = tmp_path / "certs"
    ca = make_ca()
    ca_file = ca.write(certs / "ca.crt")
    server_cert(ca, certs / "broker.crt", certs / "broker.key", names)
    config = render(
        "mosquitto.conf",
        "mosquitto.acl",
        tmp_path,
        {
            "safety-gateway.passwd": ["safety-gateway"],
            "safety-devices.passwd": ["xingfu/gas-kitchen", "xingfu/valve-kitchen"],
        },
        tls=True,
    )
    m = brokers(tmp_path, name="edge-tls", config=config)
    return TlsBroker(m, ca, ca_file, int((tmp_path / "gateway-tls.port").read_text()))


def gateway_config(tmp_path: Path, port: int, tls: dict[str, Any]) -> dict[str, Any]:
    data = site_config(tmp_path / "data", port)
    data["mqtt"] = {
        "url": f"mqtts://localhost:{port}",
        "topic_prefix": "safety",
        "username": "safety-gateway",
        "password_env": GW_PASSWORD_ENV,
        "tls": tls,
    }
    return data


@pytest.fixture(autouse=True)
def _gateway_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(GW_PASSWORD_ENV, "pw-test")  # tests.deploy.test_mosquitto_deploy's


async def test_the_gateway_over_tls_shuts_the_gas_off_for_a_device_over_tls(
    tmp_path: Path, brokers: Callable[..., Mosquitto]
) -> None:
    tb = start_tls_broker(tmp_path, brokers)
    config = parse_config(gateway_config(tmp_path, tb.gateway_port, {"ca_file": str(tb.ca_file)}))
    ctx = tb.context()
    async with (
        running_gateway(config),
        # the valve reads its own commands with its own credential, over TLS
        client(
            tb.device_port,
            "xingfu/valve-kitchen",
            "valve",
            "safety/xingfu/valve-kitchen/cmd",
            tls=ctx,
        ) as (_, commands, _),
        client(tb.device_port, "xingfu/gas-kitchen", "gas", tls=ctx) as (gas, _, _),
    ):
        await gas.publish(
            "safety/xingfu/gas-kitchen/telemetry", orjson.dumps({"values": {"lel": 26.0}}), qos=1
        )
        await until(lambda: commands, what="close_valve on the valve's cmd topic")
    topic, payload = commands[0]
    assert topic == "safety/xingfu/valve-kitchen/cmd"
    assert orjson.loads(payload)["cmd"] == "close_valve"


async def test_a_device_credential_publishes_only_its_own_topics(
    tmp_path: Path, brokers: Callable[..., Mosquitto]
) -> None:
    tb = start_tls_broker(tmp_path, brokers)
    ctx = tb.context()
    async with client(tb.gateway_port, "safety-gateway", "gw", "safety/#", tls=ctx) as (_, got, _):
        forged = [
            ("safety/xingfu/valve-kitchen/cmd", b'{"id": "x", "cmd": "open_valve"}'),
            ("safety/xingfu/valve-kitchen/telemetry", b'{"values": {"open": 1}}'),
            ("safety/xingfu/alarms", b"{}"),
            ("safety/gateways/test-gw", b'{"status": "offline"}'),
        ]
        for topic, payload in forged:
            # The broker drops it; when the publish returns or fails, it has judged it.
            with suppress(aiomqtt.MqttError):
                async with client(tb.device_port, "xingfu/gas-kitchen", "gas", tls=ctx) as (
                    dev,
                    _,
                    _,
                ):
                    await dev.publish(topic, payload, qos=1)
        own = [
            ("safety/xingfu/gas-kitchen/telemetry", b'{"values": {"lel": 1}}'),
            ("safety/xingfu/gas-kitchen/event", b'{"event": "self_test"}'),
            ("safety/xingfu/gas-kitchen/status", b"online"),
            ("safety/xingfu/gas-kitchen/cmd/ack", b'{"id": "x", "ok": true}'),
        ]
        async with client(tb.device_port, "xingfu/gas-kitchen", "gas", tls=ctx) as (dev, _, _):
            for topic, payload in own:
                await dev.publish(topic, payload, qos=1)
            await until(lambda: len(got) >= len(own), what="the device's own messages")
    assert sorted(got) == sorted(own), "nothing forged reached the gateway's subscription"


@asynccontextmanager
async def gateway_refused(
    config: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> AsyncIterator[Gateway]:
    """A gateway whose every lane has failed at least twice, for the test to look at."""
    caplog.set_level(logging.INFO, logger="drivers.mqtt")
    async with Gateway(parse_config(config), tick_interval_s=0.1) as gw:
        await until(
            lambda: gw.link.health.failed_attempts >= 2,
            what="two more failed attempts after the first",
        )
        yield gw


def refusals(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "lost or refused" in r.getMessage()]


async def test_a_gateway_with_the_wrong_ca_is_refused_with_one_clear_line_per_lane(
    tmp_path: Path, brokers: Callable[..., Mosquitto], caplog: pytest.LogCaptureFixture
) -> None:
    tb = start_tls_broker(tmp_path, brokers)
    other_ca = make_ca("another CA").write(tmp_path / "other-ca.crt")
    config = gateway_config(tmp_path, tb.gateway_port, {"ca_file": str(other_ca)})
    async with gateway_refused(config, caplog) as gw:
        assert gw.link.health.connects == 0 and not gw.link.health.connected
    lines = refusals(caplog)
    assert sorted(r.getMessage().split()[1] for r in lines) == ["bulk", "control"], (
        "one line per lane for the whole outage, not one per attempt"
    )
    for r in lines:
        message = r.getMessage()
        assert f"localhost:{tb.gateway_port}" in message
        # OpenSSL's words for a chain from an unknown CA
        assert "TLS: certificate verify failed: self-signed certificate in certificate chain" in (
            message
        )
        assert r.exc_info is None, "a line, not a traceback"
    live = [r for r in caplog.records if "live connection for catch-up" in r.getMessage()]
    assert len(live) == 1, "the live lane's failure is said once too"
    assert "MQTT connected" not in caplog.text


async def test_a_broker_certificate_for_another_name_is_refused(
    tmp_path: Path, brokers: Callable[..., Mosquitto], caplog: pytest.LogCaptureFixture
) -> None:
    tb = start_tls_broker(tmp_path, brokers, names=("broker.other.example",))
    config = gateway_config(tmp_path, tb.gateway_port, {"ca_file": str(tb.ca_file)})
    async with gateway_refused(config, caplog) as gw:
        assert gw.link.health.connects == 0
    (line, *_) = refusals(caplog)
    assert "TLS: certificate verify failed: Hostname mismatch" in line.getMessage()
    assert "localhost" in line.getMessage()

    # The same broker with the name check off (the chain still checked): connects.
    config["mqtt"]["tls"]["check_hostname"] = False
    config["gateway"]["data_dir"] = str(tmp_path / "data-2")
    async with running_gateway(parse_config(config)) as rg:
        assert rg.gw.link.health.connected
