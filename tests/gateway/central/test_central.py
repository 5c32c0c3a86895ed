"""Central mode: two real Mosquitto brokers bridged on loopback, an edge gateway at the site
and a central gateway at the bureau observing it (DESIGN section 2)."""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from gateway.notify.policy import SendState
from gateway.people.model import Person, Role
from rules.model import DeviceRef
from tests.conftest import (
    FakeClock,
    Mosquitto,
    Probe,
    running_gateway,
    until,
)
from tests.support.bureau import EDGE_GATEWAY, bureau
from tests.support.providers import BUREAU, LEGAL, SAFETY, notify_config, providers


async def test_an_alarm_raised_at_the_edge_is_mirrored_at_the_bureau(
    tmp_path: Path, brokers: Callable[..., Mosquitto]
) -> None:
    async with bureau(tmp_path, brokers) as b:
        await b.at_site.telemetry("gas-kitchen", {"lel": 30.0})
        # The edge acts: it closes the valve and raises the alarm.
        cmd = await b.at_site.wait_for("valve-kitchen/cmd")
        assert cmd["cmd"] == "close_valve"
        edge_alarm = await until(lambda: list(b.edge.gw.book.open_alarms()), what="edge alarm")
        alarm_id = edge_alarm[0].id
        # The bureau sees the same alarm, by the edge's id, without acting on it.
        mirrored = await until(lambda: b.central.gw.book.get(alarm_id), timeout=15, what="mirror")
        assert mirrored.type.value == "gas_leak"
        assert mirrored.severity.value == "critical"
        listed = (await b.central.api.get("/api/alarms", params={"site": "xingfu"})).json()
        assert [a["id"] for a in listed] == [alarm_id]
        assert listed[0]["location"] == "一楼厨房"
        # The bureau's overview puts the edge site first, red, with its unacknowledged alarm.
        overview = (await b.central.api.get("/api/overview")).json()
        assert [s["id"] for s in overview["sites"]] == ["xingfu", "anning"]
        xingfu = overview["sites"][0]
        assert xingfu["served_by"] == "edge"
        assert xingfu["status"] == "alarm"
        assert xingfu["open_alarms"]["critical"] == 1
        assert xingfu["oldest_unacknowledged"]["id"] == alarm_id
        assert xingfu["last_contact"] is not None
        assert overview["sites"][1]["status"] == "ok"
        assert overview["totals"]["open_alarms"]["critical"] == 1
        detail = (await b.central.api.get("/api/overview/sites/xingfu")).json()
        assert [a["id"] for a in detail["open_alarms"]] == [alarm_id]
        # Acknowledged at the edge: the bureau shows who did it.
        r = await b.edge.api.post(f"/api/alarms/{alarm_id}/ack", json={"by": "王值班"})
        assert r.status_code == 200
        await until(lambda: mirrored.acked_by == "王值班", what="ack mirrored")
        overview = (await b.central.api.get("/api/overview")).json()
        assert overview["sites"][0]["unacknowledged"] == 0
        assert overview["sites"][0]["oldest_unacknowledged"] is None
        # The bureau may not act for the edge.
        r = await b.central.api.post(
            f"/api/alarms/{alarm_id}/close", json={"by": "局", "disposition": "real"}
        )
        assert r.status_code == 409
        assert "edge" in r.json()["error"]
        r = await b.central.api.post(
            "/api/devices/valve-kitchen/commands", json={"by": "局", "cmd": "open_valve"}
        )
        assert r.status_code == 409
        # Nothing but the edge commanded the valve; the bureau did not re-publish alarms.
        assert not [t for t, _ in b.at_bureau.received if t.endswith("/cmd")]
        at_edge = len([t for t, _ in b.at_site.received if t == "safety/xingfu/alarms"])
        at_bureau = len([t for t, _ in b.at_bureau.received if t == "safety/xingfu/alarms"])
        assert at_bureau <= at_edge, "the bureau's broker carries only the edge's alarm messages"
        # The bureau stored it: survives the bureau gateway's restart.
        stored = await b.central.gw.store.get(alarm_id)
        assert stored is not None and stored.acked_by == "王值班"


async def test_the_bureau_serves_its_own_sites_fully(
    tmp_path: Path, brokers: Callable[..., Mosquitto]
) -> None:
    async with bureau(tmp_path, brokers) as b:
        await b.at_bureau.event("btn-a", "pressed", site="anning")
        alarm = await until(
            lambda: [a for a in b.central.gw.book.open_alarms() if a.site == "anning"],
            what="the bureau's own alarm",
        )
        assert alarm[0].type.value == "fire_button"
        r = await b.central.api.post(f"/api/alarms/{alarm[0].id}/ack", json={"by": "局值班"})
        assert r.status_code == 200
        await b.at_bureau.wait_for("anning/alarms", lambda m: m["change"] == "acked")
        # Its own engine still tracks the edge site's devices (status only, no alarms).
        await b.at_site.telemetry("gas-kitchen", {"lel": 3.0})
        view = await until(
            lambda: (
                (v := b.central.gw.device_view(_ref("gas-kitchen")))
                and v["values"].get("lel") == 3.0
                and v
            ),
            what="device values at the bureau",
        )
        assert view["status"] == "online"


@pytest.mark.usefixtures("provider_secrets")
async def test_the_bureau_escalates_an_unacknowledged_edge_alarm_to_its_duty_officer(
    tmp_path: Path, brokers: Callable[..., Mosquitto]
) -> None:
    """DESIGN section 2: the bureau does bureau-level escalation for an edge site and does
    not repeat the edge's notifications. Default policy: the bureau's duty officer gets an
    SMS when a critical alarm is unacknowledged after 5 minutes."""
    clock = FakeClock()
    clock.now = time.time()  # the mirrored alarms carry the edge's (real) times
    async with (
        providers() as p,
        bureau(tmp_path, brokers, central_notify=notify_config(p), central_clock=clock) as b,
    ):
        await b.at_site.telemetry("gas-kitchen", {"lel": 30.0})
        cmd = await b.at_site.wait_for("valve-kitchen/cmd")
        await b.at_site.publish(
            "safety/xingfu/valve-kitchen/cmd/ack", {"id": cmd["id"], "ok": True}
        )
        gas = await until(
            lambda: [a for a in b.central.gw.book.open_alarms() if a.type.value == "gas_leak"],
            timeout=15,
            what="mirrored gas alarm",
        )
        alarm_id = gas[0].id
        scheduled = await until(
            lambda: [
                s for s in b.central.gw.escalations.sends.values() if s.key.alarm_id == alarm_id
            ],
            what="the bureau's escalation scheduled",
        )
        assert len(scheduled) == 1, "only the bureau's step; the edge told the site's people"
        await asyncio.sleep(1.0)  # nothing may be sent yet: a bounded look, the behaviour tested
        assert p.aliyun.requests == [] and p.voice.requests == [], "nothing before 5 minutes"

        clock.advance(301)  # nobody at the edge acknowledged
        await until(lambda: p.sms_to(BUREAU), what="SMS to the bureau's duty officer")
        assert p.sms_to(LEGAL) == [] and p.sms_to(SAFETY) == [], "the edge phones the site"
        assert p.voice.requests == [], "voice calls to the site's people are the edge's"
        # The stub records the request before it answers; the attempt reaches the timeline
        # only once the answer is back: wait for it rather than read it at once.
        attempts = await until(
            lambda: [
                e.detail for e in gas[0].timeline if e.action.value == "notify_attempt" and e.detail
            ],
            what="the bureau's attempt on the alarm's timeline",
        )
        assert {(d["to"], d["ok"]) for d in attempts} == {("局值班", True)}


@pytest.mark.usefixtures("provider_secrets")
async def test_an_edge_acknowledgement_cancels_the_bureau_escalation(
    tmp_path: Path, brokers: Callable[..., Mosquitto]
) -> None:
    clock = FakeClock()
    clock.now = time.time()
    async with (
        providers() as p,
        bureau(tmp_path, brokers, central_notify=notify_config(p), central_clock=clock) as b,
    ):
        await b.at_site.event("btn-lobby", "pressed")
        alarm = await until(
            lambda: [a for a in b.central.gw.book.open_alarms() if a.type.value == "fire_button"],
            timeout=15,
            what="mirrored button alarm",
        )
        alarm_id = alarm[0].id
        await until(
            lambda: [
                s for s in b.central.gw.escalations.sends.values() if s.key.alarm_id == alarm_id
            ],
            what="the bureau's escalation scheduled",
        )
        r = await b.edge.api.post(f"/api/alarms/{alarm_id}/ack", json={"by": "王值班"})
        assert r.status_code == 200
        await until(
            lambda: all(
                s.state is SendState.CANCELLED
                for s in b.central.gw.escalations.sends.values()
                if s.key.alarm_id == alarm_id
            ),
            what="the bureau's step cancelled by the edge's acknowledgement",
        )
        clock.advance(3600)
        await asyncio.sleep(1.5)  # the cancelled step must stay silent: a bounded look
        assert p.aliyun.requests == [] and p.tencent.requests == [] and p.voice.requests == []


async def test_the_bureau_sees_the_edge_gateway_stop_and_the_uplink_fail(
    tmp_path: Path, brokers: Callable[..., Mosquitto]
) -> None:
    """A site served by its edge has no protection at all while that edge gateway is down:
    the bureau's overview turns it red at once, and amber while its uplink is down."""

    async def edge_of_xingfu() -> dict[str, Any]:
        overview = (await b.central.api.get("/api/overview")).json()
        row: dict[str, Any] = next(s for s in overview["sites"] if s["id"] == "xingfu")
        return row

    async def wait_edge(state: str) -> dict[str, Any]:
        deadline = time.monotonic() + 15
        while (row := await edge_of_xingfu())["edge"]["state"] != state:
            assert time.monotonic() < deadline, f"edge never {state}: {row['edge']}"
            await asyncio.sleep(0.1)
        return row

    async with bureau(tmp_path, brokers) as b:
        row = await wait_edge("online")
        assert row["edge"]["gateway"] == "test-gw"
        assert row["status"] == "ok"
        health = (await b.central.api.get("/api/health")).json()
        assert health["edges"]["xingfu"]["state"] == "online"
        assert "anning" not in health["edges"], "a site the bureau serves has no edge"

        # The site's uplink is cut: its broker vanishes without a word (the bureau broker
        # publishes the bridge's will). A broker that stops cleanly would first send the
        # edge gateway's will: a gateway without its broker serves no MQTT device.
        b.edge_broker.kill()
        row = await wait_edge("uplink_down")
        assert (row["status"], row["status_reason"]) == ("warning", "edge_uplink_down")
        assert row["edge"]["since"] is not None
        b.edge_broker.start()  # back: the bridge and the edge gateway reconnect
        row = await wait_edge("online")
        assert row["status"] == "ok"

        await b.edge.wait_connected()
        await b.edge.gw.__aexit__(None, None, None)  # the edge gateway stops (cleanly)
        row = await wait_edge("gateway_offline")
        assert (row["status"], row["status_reason"]) == ("alarm", "edge_gateway_offline")
        overview = (await b.central.api.get("/api/overview")).json()
        assert overview["sites"][0]["id"] == "xingfu", "the unprotected site comes first"


async def test_a_dead_edge_gateway_raises_edge_offline_at_the_bureau(
    tmp_path: Path, brokers: Callable[..., Mosquitto]
) -> None:
    """The bureau's own alarm about an edge: raised after `edge_offline_after`, acknowledged
    and closed at the bureau (unlike the edge's alarms), cleared when the edge is back."""
    async with bureau(tmp_path, brokers, central_rules={"edge_offline_after": "0.5 s"}) as b:
        # A person of the bureau's duty room, with a token issued to them (issue 11: the
        # `bureau` role acts on the alarms the bureau owns, and nothing else).
        people = b.central.gw.people
        duty_room = Person("ju1", "局值班员", Role.BUREAU, frozenset())
        await asyncio.to_thread(people.add, duty_room, None, 0.0)
        _, secret = await asyncio.to_thread(people.issue_token, "ju1", "t", "test", 0.0)
        as_bureau = {"authorization": f"Bearer {secret}"}
        await until(
            lambda: (link := b.central.gw.central.edges.get("xingfu")) and link.gateway_online,
            timeout=15,
            what="edge online",
        )
        await b.edge.gw.__aexit__(None, None, None)  # the edge gateway stops
        alarm = await until(
            lambda: next(
                (a for a in b.central.gw.book.open_alarms() if a.type.value == "edge_offline"),
                None,
            ),
            what="edge_offline raised at the bureau",
        )
        assert (alarm.site, alarm.device, alarm.severity.value) == ("xingfu", "test-gw", "critical")
        assert alarm.state.value == "active"
        api = b.central.api
        listed = (
            await api.get("/api/alarms", params={"state": "active"}, headers=as_bureau)
        ).json()
        assert [a["type"] for a in listed] == ["edge_offline"]
        overview = (await api.get("/api/overview", headers=as_bureau)).json()
        assert overview["sites"][0]["open_alarms"]["critical"] == 1
        # The bureau acts on its own alarm about the edge, as the person behind the token.
        r = await api.post(f"/api/alarms/{alarm.id}/ack", json={}, headers=as_bureau)
        assert r.status_code == 200, r.text
        assert r.json()["acked_by"] == "局值班员 (ju1)"
        assert not [t for t, _ in b.at_bureau.received if t.endswith("/alarms")], (
            "the bureau's alarm about an edge site is not published on that site's topic"
        )

        async with running_gateway(b.edge.config):  # the edge is back
            await until(lambda: alarm.state.value == "cleared", what="edge_offline cleared")
            r = await api.post(
                f"/api/alarms/{alarm.id}/close",
                json={"disposition": "real", "note": "现场断电，已恢复"},
                headers=as_bureau,
            )
            assert r.status_code == 200, r.text
        stored = await b.central.gw.store.get(alarm.id)
        assert stored is not None and stored.closed_by == "局值班员 (ju1)"


@pytest.mark.usefixtures("provider_secrets")
async def test_edge_offline_phones_the_site_and_the_bureau(
    tmp_path: Path, brokers: Callable[..., Mosquitto]
) -> None:
    """The edge is down, so it phones nobody: the bureau's edge_offline alarm follows the
    whole policy (the site's two phones at once, the bureau's duty officer after 5 min)."""
    clock = FakeClock()
    clock.now = time.time()
    async with (
        providers() as p,
        bureau(
            tmp_path,
            brokers,
            central_notify=notify_config(p),
            central_clock=clock,
            central_rules={"edge_offline_after": "1 s"},
        ) as b,
    ):
        edges = b.central.gw.central.edges
        await until(lambda: edges.links["xingfu"].gateway_online, timeout=15, what="online")
        await b.edge.gw.__aexit__(None, None, None)
        await until(lambda: edges.links["xingfu"].gateway_online is False, what="offline")
        clock.advance(2)  # past edge_offline_after
        await until(lambda: p.sms_to(LEGAL) and p.sms_to(SAFETY), what="SMS to the site's phones")
        sms = orjson.loads(p.sms_to(LEGAL)[0].form()["TemplateParam"])
        assert sms["alarm"] == "边缘网关离线"
        assert p.sms_to(BUREAU) == []
        clock.advance(301)  # nobody acknowledged
        await until(lambda: p.sms_to(BUREAU), what="SMS to the bureau's duty officer")
        await until(lambda: p.calls_to(LEGAL), what="voice call to the legal representative")


def _report_day(now: float, zone: str = "Asia/Shanghai") -> str:
    """The daily report whose period (14:30 to 14:30) contains `now`."""
    local = datetime.fromtimestamp(now, ZoneInfo(zone))
    day = local.date() if (local.hour, local.minute) < (14, 30) else local.date() + timedelta(1)
    return day.isoformat()


async def test_the_edge_valve_action_is_in_the_bureau_daily_report(
    tmp_path: Path, brokers: Callable[..., Mosquitto]
) -> None:
    """The edge publishes its command records; the bureau keeps them for its report."""
    async with bureau(tmp_path, brokers) as b:
        await b.at_site.telemetry("gas-kitchen", {"lel": 30.0})
        cmd = await b.at_site.wait_for("valve-kitchen/cmd")
        await b.at_site.publish(
            "safety/xingfu/valve-kitchen/cmd/ack", {"id": cmd["id"], "ok": True}
        )
        done = await b.at_bureau.wait_for(
            "xingfu/commands", lambda m: m["id"] == cmd["id"] and m["result"] == "ok", timeout=15
        )
        assert done["cmd"] == "close_valve" and done["device"] == "valve-kitchen"

        async def action() -> dict[str, Any] | None:
            r = await b.central.api.get(
                "/api/reports/daily", params={"site": "xingfu", "date": _report_day(time.time())}
            )
            assert r.status_code == 200, r.text
            (site,) = r.json()["sites"]
            return next((a for a in site["actions"] if a["id"] == cmd["id"]), None)

        deadline = time.monotonic() + 10
        while (found := await action()) is None or found["result"] != "ok":
            assert time.monotonic() < deadline, f"not in the bureau's report: {found}"
            await asyncio.sleep(0.1)
        assert found["cmd"] == "close_valve"
        assert found["location"] == "一楼厨房"
        assert found["alarm_id"] is not None
        assert b.central.gw.book.get(found["alarm_id"]) is not None, "the mirrored alarm"

        # The bureau's copy is not re-published, and the bureau sent no command itself.
        def records(probe: Probe) -> list[Any]:
            return [m for t, m in probe.received if t == "safety/xingfu/commands"]

        at_site = await until(lambda: len(records(b.at_site)) >= 2 and records(b.at_site))
        assert records(b.at_bureau) == at_site, "each record crosses once, none echoed back"
        assert not [t for t, _ in b.at_bureau.received if t.endswith("/cmd")]


async def test_a_malformed_command_record_is_rejected_and_counted(
    tmp_path: Path, brokers: Callable[..., Mosquitto]
) -> None:
    async with bureau(tmp_path, brokers) as b:
        await b.at_bureau.publish("safety/xingfu/commands", {"id": "x", "site": "xingfu"})
        await until(
            lambda: b.central.gw.rejects.by_reason.get("wrong_type", 0) >= 1,
            what="rejected",
        )
        health = (await b.central.api.get("/api/health")).json()
        assert health["rejected"]["wrong_type"] == 1
        # A record for a device the bureau does not know is refused too, and nothing stored.
        bad = {"id": "c1", "site": "xingfu", "device": "nope", "cmd": "close_valve",
               "requested_by": "system", "sent_at": "2026-11-25T10:00:00+08:00"}  # fmt: skip
        await b.at_bureau.publish("safety/xingfu/commands", bad)
        await until(
            lambda: b.central.gw.rejects.by_reason.get("unknown_device", 0) >= 1,
            what="unknown device rejected",
        )
        # A record of the bureau's own site on the edge site's topic: not this topic's site.
        own = bad | {"site": "anning", "device": "btn-a"}
        await b.at_bureau.publish("safety/xingfu/commands", own)
        await until(
            lambda: b.central.gw.rejects.by_reason.get("wrong_type", 0) >= 2,
            what="another site's record rejected",
        )


async def test_forged_edge_alarms_are_rejected_and_touch_nothing(
    tmp_path: Path, brokers: Callable[..., Mosquitto]
) -> None:
    """Issue 10: anyone with a broker account can publish on an edge site's alarms topic. A
    forged message is parsed strictly and bound to that site's own alarms: counted as
    rejected, nothing else changed, and the store keeps committing."""
    async with bureau(tmp_path, brokers) as b:
        await b.at_bureau.event("btn-a", "pressed", site="anning")
        own = await until(
            lambda: [a for a in b.central.gw.book.open_alarms() if a.site == "anning"],
            what="the bureau's own alarm at anning",
        )
        victim = own[0]
        store = b.central.gw.store
        assert await store.flush(10), "the bureau's own alarm stored"
        before = copy.deepcopy(victim)
        rejects = b.central.gw.rejects.by_reason
        start = dict(rejects)
        at = datetime.now(ZoneInfo("Asia/Shanghai")).isoformat()
        base = {"id": "f" * 32, "site": "xingfu", "device": "gas-kitchen", "type": "gas_leak",
                "severity": "critical", "state": "active", "acked": False, "count": 1,
                "raised_at": at, "updated_at": at, "change": "raised"}  # fmt: skip
        # The bureau's own alarm at anning, closed by a message on the edge site's topic.
        closing_the_victim = base | {"id": victim.id, "device": "btn-lobby", "type": "fire_button"}
        closing_the_victim |= {"state": "closed", "closed_at": at, "change": "closed"}
        forgeries = [
            (base | {"acked_by": {"x": 1}}, "wrong_type"),
            (base | {"id": [1]}, "wrong_type"),
            (base | {"count": "abc"}, "wrong_type"),
            (base | {"site": "anning", "device": "btn-a"}, "wrong_type"),  # not this topic's
            (base | {"device": "nope"}, "unknown_device"),
            (closing_the_victim, "foreign_alarm"),
        ]
        expected: dict[str, int] = {}
        for msg, reason in forgeries:
            await b.at_bureau.publish("safety/xingfu/alarms", msg)
            expected[reason] = expected.get(reason, 0) + 1

        def counted() -> bool:
            return all(rejects.get(r, 0) - start.get(r, 0) >= n for r, n in expected.items())

        await until(counted, what="every forgery counted as rejected")
        assert {r: rejects.get(r, 0) - start.get(r, 0) for r in expected} == expected
        assert b.central.gw.book.get("f" * 32) is None, "no half-made alarm"
        assert b.central.gw.book.get(victim.id) is victim and victim == before
        assert await store.flush(10) and store.healthy and store.stats.failed_batches == 0
        stored = await store.get(victim.id)
        assert stored is not None and stored.state.value == "active" and stored.closed_by is None
        health = (await b.central.api.get("/api/health")).json()
        assert health["rejected"]["foreign_alarm"] >= 1
        # A genuine alarm from the edge after them: still mirrored, and stored.
        await b.at_site.event("btn-lobby", "pressed")
        edge = await until(
            lambda: [a for a in b.edge.gw.book.open_alarms() if a.device == "btn-lobby"],
            what="the edge's alarm",
        )
        mirrored = await until(
            lambda: b.central.gw.book.get(edge[0].id), timeout=15, what="genuine mirrored"
        )
        assert mirrored.key == edge[0].key
        assert await store.flush(10) and store.healthy and store.stats.failed_batches == 0
        assert await store.get(mirrored.id) is not None, "the genuine mirror stored"
        assert victim == before


def _ref(device: str) -> DeviceRef:
    return DeviceRef("xingfu", device)


async def test_presence_counts_only_from_the_configured_edge_gateway(
    tmp_path: Path, brokers: Callable[..., Mosquitto], caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 10: an `online` from any gateway id listing the site hid a dead edge, and a
    forged `offline` raised `edge_offline`. Only the id configured as the site's
    `edge_gateway` changes its link; other ids are rejected and counted."""
    async with bureau(tmp_path, brokers) as b:
        link = b.central.gw.central.edges.get("xingfu")
        assert link is not None
        await until(lambda: link.gateway_online is True, timeout=15, what="the edge online")
        rejects = b.central.gw.rejects.by_reason
        forged = {"gateway": "intruder", "status": "offline", "sites": ["xingfu"]}
        await b.at_bureau.publish("safety/gateways/intruder", forged)
        await until(lambda: rejects.get("unknown_gateway", 0) >= 1, what="unknown gateway")
        wrong = forged | {"gateway": "anning-gw"}
        await b.at_bureau.publish(f"safety/gateways/{EDGE_GATEWAY}", wrong)
        await until(lambda: rejects.get("wrong_type", 0) >= 1, what="another id's payload")
        assert link.gateway_online is True and link.gateway == EDGE_GATEWAY
        # The configured id listing other sites, again and again: only its own change, and
        # the log says so once a minute, not once a message.
        caplog.set_level(logging.WARNING, logger="gateway.central.observer")
        presences = b.central.gw.metrics.messages
        before = presences.get("presence")
        extra = {"gateway": EDGE_GATEWAY, "status": "online", "sites": ["xingfu", "anning"]}
        for _ in range(30):
            await b.at_bureau.publish(f"safety/gateways/{EDGE_GATEWAY}", extra)
        await until(lambda: presences.get("presence") >= before + 30, what="30 presences")
        lines = [r for r in caplog.records if "lists sites" in r.getMessage()]
        assert len(lines) == 1, [r.getMessage() for r in lines]
        # The edge gateway itself stops: its will counts.
        await b.edge.gw.__aexit__(None, None, None)
        await until(lambda: link.gateway_online is False, timeout=15, what="the edge offline")
