"""The reminders' loop against real stores and the SMS provider's local stand-in, on a fake
wall clock: the 14:30 reminder to the site's people on duty (else its duty officers), the
15:00 list to the bureau, an incident's missed reports to the bureau, a hazard's deadline to
its responsible person — each once, a restart included; and one that reached nobody tried
again ten minutes later, three times at most."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest

from gateway.config.inventory import Inventory
from gateway.config.loading import parse_config
from gateway.duty.model import CheckAnswer, CheckResult, DailyCheck, DutyRole
from gateway.duty.oncall import OnCall
from gateway.duty.store import DutyStore
from gateway.hazards.model import Hazard, HazardLevel, HazardSource
from gateway.hazards.store import HazardStore
from gateway.incidents.model import Incident, PhoneReport
from gateway.incidents.store import IncidentStore
from gateway.notify.factory import build_notifiers
from gateway.people.directory import People
from gateway.people.model import Person, Role
from gateway.reminders.sender import ReminderSender
from gateway.reminders.store import ReminderStore
from tests.conftest import FakeClock, Mosquitto, running_gateway, site_config, until
from tests.support.providers import BUREAU, SAFETY, Providers, notify_config, providers

pytestmark = pytest.mark.usefixtures("provider_secrets")

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 11, 24)
T15 = 1_795_503_600.0  # 2026-11-24 15:00 in Shanghai
XINGFU_DUTY, ANLE_DUTY, WANG = "+8613800000003", "+8613800000011", "+8613900000001"


@dataclass
class Rig:
    sender: ReminderSender
    store: ReminderStore
    duty: DutyStore
    incidents: IncidentStore
    hazards: HazardStore
    people: People
    p: Providers
    clock: FakeClock

    def sms(self, phone: str) -> list[dict[str, str]]:
        return [orjson.loads(r.form()["TemplateParam"]) for r in self.p.sms_to(phone)]


def _config(tmp_path: Path, p: Providers, **reminders: Any) -> Any:
    data = site_config(tmp_path / "data", 1883)
    data["sites"][0]["contacts"].append(
        {"name": "周值班", "role": "duty_officer", "phone": XINGFU_DUTY}
    )
    data["sites"].append({
        "id": "anle", "name": "安乐敬老院", "kind": "elderly_care", "devices": [],
        "contacts": [{"name": "钱值班", "role": "duty_officer", "phone": ANLE_DUTY}],
    })  # fmt: skip
    data["notify"] = notify_config(p)
    data["reminders"] = reminders
    return parse_config(data)


@contextlib.asynccontextmanager
async def rig(tmp_path: Path, **reminders: Any) -> AsyncIterator[Rig]:
    async with providers() as p, httpx.AsyncClient() as http:
        config = _config(tmp_path, p, **reminders)
        data = tmp_path / "data"
        data.mkdir(exist_ok=True)
        stores = (ReminderStore(data / "reminders.sqlite3"), DutyStore(data / "duty.sqlite3"),
                  IncidentStore(data / "incidents.sqlite3"), HazardStore(data / "hazards.sqlite3"),
                  People(data / "people.sqlite3"))  # fmt: skip
        for s in stores:
            s.open()
        store, duty, incidents, hazards, people = stores
        people.add(Person("wang", "王整改", Role.SAFETY_MANAGER, frozenset({"xingfu"}), WANG),
                   None, T15)  # fmt: skip
        clock = FakeClock(T15 - 3600)
        sender = ReminderSender(
            config, Inventory(config), store, hazards, incidents, duty, people,
            build_notifiers(config.notify, http),
            OnCall(duty, people, SHANGHAI, clock).recipients, clock,
        )  # fmt: skip
        try:
            yield Rig(sender, store, duty, incidents, hazards, people, p, clock)
        finally:
            for s in stores:
                s.close()


def restarted(r: Rig) -> ReminderSender:
    """A new process's loop over the same files (the store reopened)."""
    r.store.close()
    r.store.open()
    s = r.sender
    return ReminderSender(s._config, s._inventory, r.store, r.hazards, r.incidents, r.duty,
                          r.people, s.delivery.notifiers, s._on_duty, r.clock)  # fmt: skip


async def test_the_days_self_report_reminder_and_missing_list_go_once_each(
    tmp_path: Path,
) -> None:
    async with rig(tmp_path) as r:
        r.duty.submit(
            DailyCheck(
                "anle",
                r.clock().__class__ and __import__("datetime").date(2026, 11, 24),
                (CheckAnswer("gas", CheckResult.OK),),
                T15 - 3600,
                "qian",
            ),
            T15,
        )
        r.clock.now = T15 - 1801
        assert await r.sender.tick() == []
        r.clock.now = T15 - 1800  # 14:30
        [(reminder, ok)] = await r.sender.tick()
        assert ok and reminder.key == "check/2026-11-24/xingfu/remind"
        [sms] = r.sms(XINGFU_DUTY)  # nobody rostered: the duty officer configured
        assert sms["site"] == "城区幸福养老服务中心" and "自查尚未上报" in sms["alarm"]
        assert sms["time"] == "15:00前"
        assert r.sms(ANLE_DUTY) == [], "anle's report is in"
        r.clock.now = T15 - 1700
        assert await r.sender.tick() == []
        sender = restarted(r)
        r.clock.now = T15 - 600
        assert await sender.tick() == [], "sent before the restart: not again"
        r.clock.now = T15  # 15:00
        [(missing, ok)] = await sender.tick()
        assert ok and missing.sites == ("xingfu",)
        [listed] = r.sms(BUREAU)  # nobody on the bureau's roster: its duty officer
        assert listed["location"] == "城区幸福养老服务中心" and "未按时上报" in listed["alarm"]
        r.clock.now = T15 + 60
        assert await sender.tick() == []
        assert len(r.sms(XINGFU_DUTY)) == 1
        rows = r.store.recent(0)
        assert [(x.kind, x.state, x.recipients) for x in rows] == [
            ("check_remind", "sent", 1), ("check_missing", "sent", 1)]  # fmt: skip


async def test_an_incidents_missed_reports_reach_the_bureau_and_the_sites_duty(
    tmp_path: Path,
) -> None:
    async with rig(tmp_path) as r:
        t0 = T15 - 7200
        r.duty.set_shift("xingfu", DAY, "day", [("wang", DutyRole.ON_DUTY)], t0, "a")
        r.incidents.open_incident(Incident("inc-1", "xingfu", None, "一楼厨房燃气泄漏", t0, "wang"))
        r.clock.now = t0 + 1800
        assert [x.kind for x, _ in await r.sender.tick() if x.key.startswith("incident")] == []
        r.clock.now = t0 + 1801
        sent = [x for x, _ in await r.sender.tick() if x.key.startswith("incident")]
        assert [x.key for x in sent] == ["incident/inc-1/phone"]
        assert "电话报告已超时" in r.sms(BUREAU)[0]["alarm"]
        assert "电话报告已超时" in r.sms(WANG)[0]["alarm"], "the rostered duty, not the contact"
        assert r.sms(XINGFU_DUTY) == []
        r.incidents.add_phone_report("inc-1", PhoneReport("局值班", t0 + 2400, "wang"))
        r.clock.now = t0 + 3601
        sent = [x for x, _ in await r.sender.tick() if x.key.startswith("incident")]
        assert [x.key for x in sent] == ["incident/inc-1/written"]
        assert [s["alarm"] for s in r.sms(BUREAU)] == ["事件电话报告已超时", "事件书面报告已超时"]


H = T15 - 10 * 3600  # 05:00, away from the self-report's hours


def add_hazard(r: Rig, responsible: str, deadline: float) -> None:
    r.hazards.add(Hazard(0, "xingfu", "锅炉房", "烟道破损", HazardLevel.MAJOR,
                         HazardSource.INSPECTION, H - 86400 * 3, "wang", responsible,
                         "更换烟道", deadline))  # fmt: skip


async def test_a_hazards_deadline_reaches_its_responsible_person(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        deadline = H + 86400
        add_hazard(r, "wang", deadline)  # a login the gateway knows
        add_hazard(r, "老刘", deadline)  # a name it does not: the safety manager stands in
        r.clock.now = H - 1
        assert await r.sender.tick() == []
        r.clock.now = H
        sent = await r.sender.tick()
        assert sorted(x.key for x, _ in sent) == [
            f"hazard/1/{int(deadline)}/due", f"hazard/2/{int(deadline)}/due"]  # fmt: skip
        [to_wang] = r.sms(WANG)
        assert "即将到期" in to_wang["alarm"] and to_wang["location"].startswith("锅炉房")
        assert len(r.sms(SAFETY)) == 1, "老刘's reminder went to the safety manager"
        r.clock.now = deadline
        await r.sender.tick()
        assert [s["alarm"] for s in r.sms(WANG)] == ["隐患整改即将到期", "隐患整改已逾期"]
        assert len(r.sms(SAFETY)) == 3, "both overdue hazards reach the safety manager"


async def test_a_reminder_that_reached_nobody_is_tried_again_later_three_times(
    tmp_path: Path,
) -> None:
    async with rig(tmp_path) as r:
        r.p.aliyun.respond = lambda _req: (500, b"{}")
        r.p.tencent.respond = lambda _req: (500, b"{}")
        add_hazard(r, "wang", H - 60)
        r.clock.now = H
        assert [ok for _, ok in await r.sender.tick()] == [False]
        tried = len(r.p.aliyun.requests)
        assert tried == 2 * 2, "two people, two attempts each on the first channel"
        r.clock.now += 599
        assert await r.sender.tick() == [], "not again within ten minutes"
        for _ in range(2):
            r.clock.now += 601
            assert len(await r.sender.tick()) == 1
        r.clock.now += 601
        assert await r.sender.tick() == [], "three tries in all"
        assert len(r.p.aliyun.requests) == 3 * tried
        [row] = r.store.recent(0)
        assert row.state == "failed" and "HTTP 500" in row.detail


async def test_turned_off_nothing_is_sent(tmp_path: Path) -> None:
    async with rig(tmp_path, enabled=False) as r:
        r.clock.now = T15
        assert await r.sender.tick() == []
        assert r.p.aliyun.requests == [] and r.store.recent(0) == []


async def test_a_running_gateway_sends_the_missing_list(tmp_path: Path, broker: Mosquitto) -> None:
    """The loop is one of the gateway's tasks: started with it, first tick at once."""
    async with providers() as p:
        data = site_config(tmp_path / "data", broker.port)
        data["notify"] = notify_config(p)
        data["reminders"] = {"enabled": True}
        async with running_gateway(parse_config(data), clock=FakeClock(T15 + 60)):
            await until(lambda: p.sms_to(BUREAU), what="the 15:00 list at the bureau")
            assert (
                "未按时上报" in orjson.loads(p.sms_to(BUREAU)[0].form()["TemplateParam"])["alarm"]
            )
