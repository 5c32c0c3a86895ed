"""Central mode on loopback: two real Mosquitto brokers bridged as deploy/ bridges them, an
edge gateway at the site and a central gateway at the bureau observing it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.config.loading import parse_config
from tests.conftest import (
    Mosquitto,
    Probe,
    RunningGateway,
    probe_client,
    running_gateway,
    site_config,
)

# the edge gateway's id (site_config's), configured at the bureau as serving xingfu
EDGE_GATEWAY = "test-gw"
BRIDGED = ("+/telemetry", "+/event", "+/status", "+/cmd/ack", "alarms", "commands")


@dataclass
class Bureau:
    bureau_broker: Mosquitto
    edge_broker: Mosquitto
    edge: RunningGateway
    central: RunningGateway
    at_site: Probe  # publishes as the site's devices do, on the edge broker
    at_bureau: Probe  # watches the bureau broker


def bridge_conf(remote_port: int, site: str = "xingfu") -> str:
    """deploy/mosquitto-bridge.conf, pointed at the test's bureau broker, without TLS."""
    lines = [
        "connection bureau-test",
        f"address 127.0.0.1:{remote_port}",
        "bridge_protocol_version mqttv311",
        f"remote_clientid edge-{site}",
        "cleansession false",
        "try_private true",
        "restart_timeout 1 5",
        "notifications true",
        f"notification_topic safety/{site}/bridge/state",
    ]
    lines += [f"topic safety/{site}/{t} out 1" for t in BRIDGED]
    lines += ["topic safety/gateways/+ out 1"]
    return "\n".join(lines) + "\n"


def central_config(data_dir: Path, port: int) -> dict[str, Any]:
    data = site_config(data_dir, port)
    data["gateway"]["id"] = "bureau-gw"
    data["sites"][0]["served_by"] = "edge"
    data["sites"][0]["edge_gateway"] = EDGE_GATEWAY
    data["sites"].append(
        {
            "id": "anning",
            "name": "安宁儿童福利院",
            "kind": "child_welfare",
            "devices": [{"id": "btn-a", "type": "alarm_button", "location": "门厅"}],
        }
    )
    return data


@contextlib.asynccontextmanager
async def bureau(
    tmp_path: Path,
    brokers: Callable[..., Mosquitto],
    influx: dict[str, Any] | None = None,
    central_notify: dict[str, Any] | None = None,
    central_clock: Callable[[], float] | None = None,
    central_rules: dict[str, Any] | None = None,
) -> AsyncIterator[Bureau]:
    (tmp_path / "bureau").mkdir()
    (tmp_path / "edge").mkdir()
    central_broker = brokers(tmp_path / "bureau", name="bureau")
    edge_broker = brokers(tmp_path / "edge", extra=bridge_conf(central_broker.port), name="edge")
    try:
        edge_data = site_config(tmp_path / "edge-data", edge_broker.port)
        central_data = central_config(tmp_path / "bureau-data", central_broker.port)
        if influx is not None:  # both feed the same bureau time-series server
            edge_data["influx"] = central_data["influx"] = influx
        if central_notify is not None:
            central_data["notify"] = central_notify
        if central_rules is not None:
            central_data["rules"] |= central_rules
        edge_cfg = parse_config(edge_data)
        central_cfg = parse_config(central_data)
        central_kwargs = {"clock": central_clock} if central_clock is not None else {}
        async with (
            running_gateway(edge_cfg) as edge,
            running_gateway(central_cfg, **central_kwargs) as central,
            probe_client(edge_broker.port) as at_site,
            probe_client(central_broker.port) as at_bureau,
        ):
            # The bridge connects asynchronously: wait until a message crosses it.
            await at_site.event("btn-lobby", "self_test")
            await at_bureau.wait_for("btn-lobby/event", timeout=15)
            yield Bureau(central_broker, edge_broker, edge, central, at_site, at_bureau)
    finally:
        edge_broker.stop()
        central_broker.stop()
