"""The mobile page of an acknowledgement link, through the app (no broker: the alarm is
raised in the book directly). What a phone sees and what each tap does."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from gateway.alarms.book import Disposition
from gateway.app.supervisor import Gateway
from gateway.config.loading import parse_config
from gateway.http.app import create_api
from gateway.people.links import new_code
from rules.model import AlarmChange, AlarmKey, AlarmType, ChangeKind, Reason, Severity
from tests.conftest import FakeClock, site_config

SAFETY = "p8613800000002"  # the safety manager's login (from the phone: contact_login)
DAY = 24 * 3600.0


@dataclass
class Phone:
    gw: Gateway
    api: httpx.AsyncClient
    clock: FakeClock

    def raise_gas(self, value: float = 30.0) -> str:
        key = AlarmKey("xingfu", "gas-kitchen", AlarmType.GAS_LEAK)
        change = AlarmChange(
            key, ChangeKind.RAISE, Severity.CRITICAL, Reason.THRESHOLD_EXCEEDED, value
        )
        write = self.gw.book.apply(change, self.clock())
        assert write is not None
        self.gw.dispatcher.persist(write)
        return write.alarm.id

    def link(self, alarm_id: str, login: str = SAFETY, occurrence: str = "1:critical") -> str:
        return self.gw.links.issue(login, alarm_id, occurrence, self.clock(), DAY)

    async def tap(self, code: str, status: str = "seen", note: str = "") -> httpx.Response:
        return await self.api.post(f"/a/{code}", data={"status": status, "note": note})


@pytest.fixture
async def phone(tmp_path: Path) -> AsyncIterator[Phone]:
    data = site_config(tmp_path / "data", 1)
    del data["mqtt"]  # no broker: the book is driven directly
    data["notify"] = {"public_url": "https://gw.example.org"}
    clock = FakeClock()
    async with Gateway(parse_config(data), clock=clock, monotonic=clock.monotonic) as gw:
        transport = httpx.ASGITransport(app=create_api(gw), client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as api:
            yield Phone(gw, api, clock)


def texts(r: httpx.Response) -> str:
    return re.sub(r"<[^>]+>", " ", r.text)


async def test_the_page_shows_the_alarm_and_three_buttons(phone: Phone) -> None:
    code = phone.link(phone.raise_gas())
    r = await phone.api.get(f"/a/{code}")
    assert r.status_code == 200
    page = texts(r)
    for shown in ("燃气泄漏", "紧急", "城区幸福养老服务中心", "一楼厨房", "30 %LEL", "未确认"):
        assert shown in page
    assert "切断阀" in page and "2026-11-18 19:06" in page, "raised time in the site's zone"
    assert [b for b in re.findall(r'value="(\w+)">([^<]+)</button>', r.text)] == [
        ("seen", "已知晓"),
        ("on_way", "正在赶往现场"),
        ("on_site", "已到场处置"),
    ]
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["referrer-policy"] == "no-referrer"
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "form-action 'self'" in csp
    assert "unsafe-inline" not in csp and "<script" not in r.text
    assert not re.search(r'(src|href)="(https?:)?//', r.text), "nothing from elsewhere"


async def test_the_first_tap_acknowledges_as_that_person(phone: Phone) -> None:
    alarm_id = phone.raise_gas()
    code = phone.link(alarm_id)
    r = await phone.tap(code, "seen", "马上到")
    assert r.status_code == 200 and "已确认报警" in texts(r)
    alarm = phone.gw.book.get(alarm_id)
    assert alarm is not None and alarm.acked
    assert alarm.acked_by == f"李四应 ({SAFETY})"
    tail = [(e.action.value, e.actor, e.note, e.detail) for e in alarm.timeline[-2:]]
    assert tail == [
        ("acked", f"李四应 ({SAFETY})", "马上到", None),
        (
            "responded",
            f"李四应 ({SAFETY})",
            "马上到",
            {"status": "seen", "via": "phone_link", "source": "127.0.0.1"},
        ),
    ]
    audit = {r.action: r for r in await phone.gw.audit.query()}
    ack, respond = audit["alarm.ack"], audit["link.respond"]
    assert (ack.actor, ack.actor_name, ack.source, ack.site, ack.target) == (
        SAFETY, "李四应", "127.0.0.1", "xingfu", alarm_id,
    )  # fmt: skip
    assert respond.actor == SAFETY and respond.detail is not None
    assert respond.detail["status"] == "seen"
    stored = await phone.gw.store.get(alarm_id)  # on disk before the answer
    assert stored is not None and stored.acked_by == f"李四应 ({SAFETY})"


async def test_the_same_status_twice_is_recorded_once(phone: Phone) -> None:
    alarm_id = phone.raise_gas()
    code = phone.link(alarm_id)
    assert (await phone.tap(code)).status_code == 200
    again = await phone.tap(code)
    assert again.status_code == 200 and "回复过「已知晓」" in texts(again)
    on_way = await phone.tap(code, "on_way")
    assert on_way.status_code == 200 and "「正在赶往现场」已记录" in texts(on_way)
    alarm = phone.gw.book.get(alarm_id)
    assert alarm is not None
    responded = [e.detail for e in alarm.timeline if e.action.value == "responded"]
    assert responded == [
        {"status": "seen", "via": "phone_link", "source": "127.0.0.1"},
        {"status": "on_way", "via": "phone_link", "source": "127.0.0.1"},
    ]


async def test_an_alarm_acknowledged_by_someone_else_keeps_its_acknowledger(phone: Phone) -> None:
    alarm_id = phone.raise_gas()
    await phone.gw.actions.ack(alarm_id, "王值班 (wang)", None)
    r = await phone.tap(phone.link(alarm_id), "on_site")
    assert r.status_code == 200 and "已记录" in texts(r) and "王值班" in texts(r)
    alarm = phone.gw.book.get(alarm_id)
    assert alarm is not None and alarm.acked_by == "王值班 (wang)"
    assert alarm.timeline[-1].action.value == "responded"


async def test_an_expired_link_says_so(phone: Phone) -> None:
    code = phone.link(phone.raise_gas())
    phone.clock.advance(DAY + 1)
    for r in (await phone.api.get(f"/a/{code}"), await phone.tap(code)):
        assert r.status_code == 410 and "链接已过期" in texts(r)


async def test_unknown_codes_are_refused_then_the_address_is_locked(
    phone: Phone, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The growing wait between wrong answers is the login's, tested in tests/gateway/people.
    monkeypatch.setattr("gateway.people.throttle.MAX_DELAY_S", 0.0)
    good = phone.link(phone.raise_gas())
    r = await phone.api.get(f"/a/{new_code()}")
    assert r.status_code == 404 and "链接无效" in texts(r)
    assert (await phone.api.get("/a/ABCDEFGHIJKLMNOP%27")).status_code == 404
    for _ in range(3):  # five wrong codes from one address within 15 minutes
        await phone.api.get(f"/a/{new_code()}")
    locked = await phone.api.get(f"/a/{good}")
    assert locked.status_code == 429 and "尝试次数过多" in texts(locked)
    phone.clock.advance(16 * 60)
    assert (await phone.api.get(f"/a/{good}")).status_code == 200


async def test_a_disabled_persons_link_opens_nothing(phone: Phone) -> None:
    alarm_id = phone.raise_gas()
    code = phone.link(alarm_id)
    phone.gw.people.set_disabled(SAFETY, True, phone.clock())
    r = await phone.tap(code)
    assert r.status_code == 410 and "链接已停用" in texts(r)
    alarm = phone.gw.book.get(alarm_id)
    assert alarm is not None and not alarm.acked


async def test_a_closed_alarm_says_who_closed_it_and_when(phone: Phone) -> None:
    alarm_id = phone.raise_gas()
    code = phone.link(alarm_id)
    key = AlarmKey("xingfu", "gas-kitchen", AlarmType.GAS_LEAK)
    clear = AlarmChange(key, ChangeKind.CLEAR, Severity.CRITICAL, Reason.RETURNED_TO_NORMAL, 1.0)
    phone.gw.dispatcher.persist(phone.gw.book.apply(clear, phone.clock()))
    phone.clock.advance(600)
    await phone.gw.actions.close(alarm_id, "王值班 (wang)", Disposition.REAL, "已处理")
    await phone.gw.store.flush(timeout_s=5.0)
    for r in (await phone.api.get(f"/a/{code}"), await phone.tap(code)):
        assert r.status_code == 200
        assert "已关闭（王值班 (wang)，2026-11-18 19:16）" in texts(r)
        assert "<form" not in r.text


async def test_a_link_of_an_earlier_occurrence_acknowledges_nothing(phone: Phone) -> None:
    alarm_id = phone.raise_gas()
    code = phone.link(alarm_id, occurrence="1:warning")
    r = await phone.tap(code)
    assert r.status_code == 410 and "再次发生" in texts(r)
    alarm = phone.gw.book.get(alarm_id)
    assert alarm is not None and not alarm.acked


async def test_a_tap_without_a_known_status_is_refused(phone: Phone) -> None:
    code = phone.link(phone.raise_gas())
    r = await phone.tap(code, "nonsense")
    assert r.status_code == 400 and "请点击页面上的按钮" in texts(r)
    assert "<html" in r.text and "Traceback" not in r.text
