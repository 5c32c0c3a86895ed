"""Acknowledgement links in what is sent: each person's own link in the SMS, never clipped;
the console's link for group robots; a send that goes without a link when none can be had."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.alarms.book import Action, Alarm, AlarmState
from gateway.alarms.event import AlarmEvent, AlarmSnapshot
from gateway.config.errors import ConfigError
from gateway.config.inventory import Inventory
from gateway.config.loading import parse_config
from gateway.notify import render
from gateway.notify.base import Message, MessageLine, Recipient, SendResult
from gateway.notify.channels.wecom import MARKDOWN_MAX_BYTES
from gateway.notify.policy import Batch, Send, SendKey, Step
from gateway.notify.sending import BatchSender
from gateway.people.directory import People
from gateway.people.links import AckLinks, Refusal
from rules.model import AlarmType, Severity
from tests.conftest import site_config

T0 = 1_795_000_000.0
CODE = "abcdefghijklmn23"
GAS = MessageLine("一楼厨房", "gas-kitchen", "燃气泄漏", "24.5 %LEL", "2026-11-24 14:03", "未处理")


def linked(url: str, lines: tuple[MessageLine, ...] = (GAS,)) -> Message:
    ids = tuple(f"a{i}" for i in range(len(lines)))
    return Message("xingfu", "城区幸福养老服务中心", "critical", ids, lines, url, CODE)


# ----------------------------------------------------------------------------- render
def test_sms_has_no_link_variable_without_a_link() -> None:
    msg = Message("xingfu", "城区幸福养老服务中心", "critical", ("a0",), (GAS,))
    assert "link" not in render.sms_params(msg)


def test_a_short_link_goes_whole_into_the_sms() -> None:
    url = f"https://gw.cn/a/{CODE}"  # 32 characters
    assert render.sms_params(linked(url))["link"] == url


def test_a_long_link_is_never_clipped_its_code_goes_alone() -> None:
    url = f"https://safety-gateway.example.org/a/{CODE}"
    params = render.sms_params(linked(url))
    assert params["link"] == CODE, "the template holds the prefix"
    assert all(len(v) <= render.SMS_PARAM_MAX for k, v in params.items() if k != "link")
    tight = render.sms_params(linked(f"https://gw.cn/a/{CODE}"), 20, 20)
    assert tight["link"] == CODE


def test_text_carries_the_link_whole_even_when_clipped() -> None:
    url = f"https://gw.example.org/a/{CODE}"
    many = tuple(GAS for _ in range(200))
    msg = linked(url, many)
    out = render.text(msg, 2048)
    assert len(out.encode()) <= 2048
    assert out.endswith(f"确认第1处：{url}")
    assert render.ELLIPSIS in out


def test_robot_markdown_ends_with_the_console_link_unclipped() -> None:
    console = "https://gw.example.org/#alarm=a0"
    msg = Message("xingfu", "城区", "critical", ("a0",) * 300, (GAS,) * 300, console_url=console)
    out = render.markdown(msg, MARKDOWN_MAX_BYTES)
    assert len(out.encode()) <= MARKDOWN_MAX_BYTES
    assert out.endswith(f"[在值班台查看]({console})")


# ---------------------------------------------------------------------------- sending
class Recorder:
    def __init__(self, name: str, kind: str) -> None:
        self.name, self.kind = name, kind
        self.sent: list[tuple[Message, Recipient]] = []

    def can_reach(self, to: Recipient) -> bool:
        return True

    async def send(self, msg: Message, to: Recipient) -> SendResult:
        self.sent.append((msg, to))
        return SendResult(True, False, "ok")


def gas_alarm() -> Alarm:
    return Alarm(
        "a-gas", "xingfu", "gas-kitchen", AlarmType.GAS_LEAK, Severity.CRITICAL,
        AlarmState.ACTIVE, T0, value=30.0, peak=30.0,
    )  # fmt: skip


def batch_for(alarm: Alarm) -> Batch:
    send = Send(SendKey(alarm.id, "1:critical", 0, 0), alarm.site, "critical", T0)
    step = Step(0.0, ("legal_representative", "safety_manager"), ("sms", "robot"))
    return Batch(alarm.site, "critical", step, (send,))


@pytest.fixture
def links(tmp_path: Path) -> Iterator[AckLinks]:
    people = People(tmp_path / "people.sqlite3")
    people.open()
    people.close()
    links = AckLinks(tmp_path / "people.sqlite3")
    links.open()
    yield links
    links.close()


def sender(
    tmp_path: Path, links: AckLinks | None, **notify: Any
) -> tuple[BatchSender, Recorder, Recorder]:
    data = site_config(tmp_path / "data", 1883)
    data["notify"] = notify
    config = parse_config(data)
    alarm = gas_alarm()
    event = AlarmEvent(Action.UPDATED, AlarmSnapshot.of(alarm), "一楼厨房")
    sms, robot = Recorder("sms", "aliyun_sms"), Recorder("robot", "dingtalk")
    s = BatchSender(
        config, Inventory(config), {"sms": sms, "robot": robot}, lambda *_: None,
        lambda _id: event, links, lambda: T0,
    )  # fmt: skip
    return s, sms, robot


async def test_each_person_gets_their_own_link_and_the_group_the_console(
    tmp_path: Path, links: AckLinks
) -> None:
    s, sms, robot = sender(tmp_path, links, public_url="https://gw.example.org/")
    assert await s.send(batch_for(gas_alarm()))
    assert [to.login for _, to in sms.sent] == ["p8613800000001", "p8613800000002"]
    codes = [m.link_code for m, _ in sms.sent]
    assert len(set(codes)) == 2
    for (msg, to), code in zip(sms.sent, codes, strict=True):
        assert code is not None and msg.link == f"https://gw.example.org/a/{code}"
        link = links.lookup(code, T0 + 60)
        assert not isinstance(link, Refusal)
        assert (link.login, link.alarm_id, link.occurrence) == (to.login, "a-gas", "1:critical")
        assert link.expires_at == T0 + 24 * 3600
        assert orjson.dumps(render.sms_params(msg))  # a template parameter set
    [(group_msg, _)] = robot.sent
    assert group_msg.link is None and group_msg.link_code is None
    assert group_msg.console_url == "https://gw.example.org/#alarm=a-gas"


async def test_without_a_public_url_nothing_changes(tmp_path: Path, links: AckLinks) -> None:
    s, sms, robot = sender(tmp_path, links)
    assert await s.send(batch_for(gas_alarm()))
    assert all(m.link is None for m, _ in sms.sent + robot.sent)
    assert robot.sent[0][0].console_url is None


async def test_a_database_failure_sends_without_the_link(
    tmp_path: Path, links: AckLinks, caplog: pytest.LogCaptureFixture
) -> None:
    s, sms, _ = sender(tmp_path, links, public_url="https://gw.example.org")
    links.close()  # every issue now fails
    with caplog.at_level(logging.ERROR):
        assert await s.send(batch_for(gas_alarm()))
    assert len(sms.sent) == 2 and all(m.link is None for m, _ in sms.sent)
    assert "no acknowledgement link" in caplog.text


# ----------------------------------------------------------------------------- config
def test_public_url_and_link_hours_are_checked_at_load(tmp_path: Path) -> None:
    data = site_config(tmp_path, 1883)
    data["notify"] = {"public_url": "https://gw.example.org/safety/"}
    notify = parse_config(data).notify
    assert notify.public_url == "https://gw.example.org/safety" and notify.link_hours == 24
    for bad in (
        {"public_url": "gw.example.org"},
        {"public_url": "https://gw.example.org/?x=1"},
        {"public_url": "https://gw.example.org", "link_hours": 0},
        {"public_url": "https://gw.example.org", "link_hours": 169},
    ):
        data["notify"] = bad
        with pytest.raises(ConfigError):
            parse_config(data)
