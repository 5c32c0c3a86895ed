"""`on_duty` as an escalation address: whoever the roster has on duty now (a handover's
taker included, the leader, the disabled and the unreachable left out) gets the alarm; an
empty or unreadable roster falls back to the configured duty officers, never to nobody."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.alarms.book import Alarm, AlarmState
from gateway.alarms.event import Action, AlarmEvent, AlarmSnapshot
from gateway.config.inventory import Inventory
from gateway.config.loading import parse_config
from gateway.duty.model import DutyRole, Handover
from gateway.duty.oncall import OnCall
from gateway.duty.store import DutyStore
from gateway.notify.base import Message, Recipient, SendResult
from gateway.notify.policy import Batch, Send, SendKey, Step, policies_from_config
from gateway.notify.sending import BatchSender
from gateway.people.directory import People
from gateway.people.model import Person, Role
from rules.model import AlarmType, Severity
from tests.conftest import site_config

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = 1_795_503_600.0  # 2026-11-24 15:00 in Shanghai
DAY = date(2026, 11, 24)


class Recorder:
    name, kind = "sms", "aliyun_sms"

    def __init__(self) -> None:
        self.sent: list[Recipient] = []

    def can_reach(self, to: Recipient) -> bool:
        return to.phone is not None

    async def send(self, msg: Message, to: Recipient) -> SendResult:
        self.sent.append(to)
        return SendResult(True, False, "ok")


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[DutyStore, People]]:
    duty, people = DutyStore(tmp_path / "duty.sqlite3"), People(tmp_path / "people.sqlite3")
    duty.open()
    people.open()
    for login, name, phone in (
        ("wang", "王值班", "+8613900000001"),
        ("li", "李值班", "+8613900000002"),
        ("zhao", "赵无手机", None),
        ("sun", "孙停用", "+8613900000004"),
        ("ju", "局值班", "+8613900000005"),
        ("lead", "局领导", "+8613900000006"),
    ):
        site_roles = {"ju": Role.BUREAU, "lead": Role.BUREAU_LEADER}
        role = site_roles.get(login, Role.DUTY)
        sites = frozenset() if role in (Role.BUREAU, Role.BUREAU_LEADER) else frozenset({"xingfu"})
        people.add(Person(login, name, role, sites, phone=phone), None, T0)
    people.set_disabled("sun", True, T0)
    try:
        yield duty, people
    finally:
        duty.close()
        people.close()


def test_on_duty_now_is_the_days_roster_and_the_last_handovers_taker(
    stores: tuple[DutyStore, People],
) -> None:
    duty, people = stores
    oncall = OnCall(duty, people, SHANGHAI, lambda: T0)
    assert oncall.recipients("xingfu") == []
    duty.set_shift("xingfu", DAY, "day", [("wang", DutyRole.ON_DUTY), ("zhao", DutyRole.ON_DUTY)],
                   T0, "admin")  # fmt: skip
    duty.set_shift("xingfu", DAY, "night", [("sun", DutyRole.ON_DUTY)], T0, "admin")
    duty.set_shift("bureau", DAY, "day", [("ju", DutyRole.ON_DUTY), ("lead", DutyRole.LEADER)],
                   T0, "admin")  # fmt: skip
    # zhao has no phone and sun is disabled: nobody could be reached through them.
    assert [r.login for r in oncall.recipients("xingfu")] == ["wang"]
    assert [r.login for r in oncall.recipients(None)] == ["ju"], "the leader is no duty officer"
    duty.hand_over(Handover("xingfu", T0 - 60, "wang", "li", "夜班交接"))
    assert [r.login for r in oncall.recipients("xingfu")] == ["wang", "li"]
    # Another day's roster is not today's; a handover older than a day has lapsed.
    later = OnCall(duty, people, SHANGHAI, lambda: T0 + 2 * 86400)
    assert later.recipients("xingfu") == []


def _sender(tmp_path: Path, on_duty: Any, roles: tuple[str, ...]) -> tuple[BatchSender, Recorder]:
    data = site_config(tmp_path / "data", 1883)
    data["sites"][0]["contacts"].append(
        {"name": "周值班", "role": "duty_officer", "phone": "+8613800000003"}
    )
    sms_channel = {
        "name": "sms",
        "kind": "aliyun_sms",
        "access_key_id_env": "AK",
        "access_key_secret_env": "SK",
        "sign_name": "安全",
        "template_code": "T1",
    }
    data["notify"] = {
        "channels": [sms_channel],
        "policies": {"critical": [{"to": list(roles), "channels": ["sms"]}]},
    }  # fmt: skip
    config = parse_config(data)
    assert policies_from_config(config.notify)["critical"][0].roles == roles
    alarm = Alarm("a-gas", "xingfu", "gas-kitchen", AlarmType.GAS_LEAK, Severity.CRITICAL,
                  AlarmState.ACTIVE, T0, value=30.0, peak=30.0)  # fmt: skip
    event = AlarmEvent(Action.UPDATED, AlarmSnapshot.of(alarm), "一楼厨房")
    sms = Recorder()
    s = BatchSender(config, Inventory(config), {"sms": sms}, lambda *_: None, lambda _id: event,
                    None, lambda: T0, on_duty)  # fmt: skip
    return s, sms


def _batch(roles: tuple[str, ...]) -> Batch:
    send = Send(SendKey("a-gas", "1:critical", 0, 0), "xingfu", "critical", T0)
    return Batch("xingfu", "critical", Step(0.0, roles, ("sms",)), (send,))


async def test_an_escalation_step_to_on_duty_reaches_the_roster(
    tmp_path: Path, stores: tuple[DutyStore, People]
) -> None:
    duty, people = stores
    duty.set_shift("xingfu", DAY, "day", [("wang", DutyRole.ON_DUTY), ("li", DutyRole.ON_DUTY)],
                   T0, "admin")  # fmt: skip
    duty.set_shift("bureau", DAY, "day", [("ju", DutyRole.ON_DUTY)], T0, "admin")
    oncall = OnCall(duty, people, SHANGHAI, lambda: T0)
    roles = ("on_duty", "bureau_on_duty", "safety_manager")
    s, sms = _sender(tmp_path, oncall.recipients, roles)
    assert await s.send(_batch(roles))
    assert [r.name for r in sms.sent] == ["李值班", "王值班", "局值班", "李四应"]


@pytest.mark.parametrize("roster", ["empty", "unreadable"])
async def test_no_roster_falls_back_to_the_configured_duty_officers(
    tmp_path: Path, stores: tuple[DutyStore, People], roster: str
) -> None:
    duty, people = stores
    oncall = OnCall(duty, people, SHANGHAI, lambda: T0)
    if roster == "unreadable":
        duty.close()  # DutyUnavailable from every read
    s, sms = _sender(tmp_path, oncall.recipients, ("on_duty",))
    assert await s.send(_batch(("on_duty",)))
    assert [r.name for r in sms.sent] == ["周值班"]


async def test_a_person_named_twice_is_called_once(tmp_path: Path) -> None:
    roles = ("legal_representative", "safety_manager", "on_duty")
    same = [Recipient("张杰荣", "on_duty", "+8613800000001", None, "zhang")]
    s, sms = _sender(tmp_path, lambda _scope: same, roles)
    assert await s.send(_batch(roles))
    assert [r.phone for r in sms.sent] == ["+8613800000001", "+8613800000002"]
