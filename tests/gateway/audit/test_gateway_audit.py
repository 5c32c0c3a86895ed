"""The gateway's log: configuration reloads are audited (`config.reload`, actor system,
source signal) and a log that cannot take the row leaves the reload standing, counted and
logged; `record_by`, what routes call; the log open while the gateway runs. Most build
the gateway without starting it: reloading an unchanged or invalid file touches no task."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.app.reload import reload_config
from gateway.app.supervisor import Gateway
from gateway.audit import AuditClosed, verify
from gateway.config.loading import parse_config
from gateway.http.auth import Principal
from gateway.http.trail import record_by
from gateway.people.model import Role
from tests.conftest import Mosquitto, free_port, running_gateway, site_config, write_config

PORT = free_port()  # never listened on: the gateway is not started


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Gateway]:
    gateway = Gateway(parse_config(site_config(tmp_path / "data", PORT)))
    await gateway.audit.open()
    try:
        yield gateway
    finally:
        await gateway.audit.close()


async def test_reloads_are_recorded(gw: Gateway, tmp_path: Path) -> None:
    data = site_config(tmp_path / "data", PORT)
    good = write_config(tmp_path / "gateway.yaml", data)
    assert (await reload_config(gw, good)).ok
    data["sites"][0]["devices"][0]["shutoff_valve"] = "no-such-valve"
    bad = write_config(tmp_path / "bad.yaml", data)
    assert not (await reload_config(gw, bad)).ok

    refused, applied = await gw.audit.query()
    assert (applied.action, applied.actor, applied.role, applied.source) == (
        "config.reload", "system", "system", "signal",
    )  # fmt: skip
    assert (applied.result, applied.target, applied.site) == ("ok", str(good), None)
    assert applied.detail == {"changes": "nothing changed", "needs_restart": None}
    assert (refused.result, refused.target) == ("failed", str(bad))
    assert refused.detail is not None
    assert "no-such-valve" in str(refused.detail["reason"])
    assert verify(gw.audit.path).ok
    assert gw.audit.path == tmp_path / "data" / "audit.sqlite3"


async def test_a_reload_stands_when_the_log_fails(
    gw: Gateway, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await gw.audit.close()
    path = write_config(tmp_path / "gateway.yaml", site_config(tmp_path / "data", PORT))
    assert (await reload_config(gw, path)).ok
    assert gw.metrics.audit_failures.labels("config.reload")._value.get() == 1
    assert "not recorded in the audit log" in caplog.text


@pytest.mark.broker
async def test_the_running_gateway_holds_the_log_open(tmp_path: Path, broker: Mosquitto) -> None:
    config = parse_config(site_config(tmp_path / "data", broker.port))
    async with running_gateway(config) as rg:
        path = write_config(tmp_path / "gateway.yaml", site_config(tmp_path / "data", broker.port))
        assert (await reload_config(rg.gw, path)).ok
        assert [r.action for r in await rg.gw.audit.query()] == ["config.reload"]
    with pytest.raises(AuditClosed):
        await rg.gw.audit.query()
    assert verify(tmp_path / "data" / "audit.sqlite3").ok


async def test_record_by_names_the_caller_and_their_address(gw: Gateway) -> None:
    who = Principal("wang", "王值班", Role.DUTY, frozenset({"xingfu"}), "session", "10.1.2.3")
    rec = await record_by(gw, who, "alarm.ack", site="xingfu", target="a-1")
    assert rec is not None
    assert (rec.actor, rec.actor_name, rec.role, rec.source, rec.site, rec.result) == (
        "wang", "王值班", "duty", "10.1.2.3", "xingfu", "ok",
    )  # fmt: skip
    await gw.audit.close()
    assert await record_by(gw, who, "alarm.close", target="a-1") is None
    assert gw.metrics.audit_failures.labels("alarm.close")._value.get() == 1
