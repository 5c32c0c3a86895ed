"""Every notification adapter against a real local server on 127.0.0.1.

HTTP providers are played by a small asyncio HTTP/1.1 server that records each request
and answers like the provider; the SMS stubs check the signature themselves with an
independent implementation and refuse a bad one, as the real services do. Mail goes to a
real aiosmtpd server. Nothing leaves loopback.
"""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import hashlib
import hmac
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import httpx
import orjson
import pytest

from gateway.notify import render
from gateway.notify.base import Message, MessageLine, Notifier, Recipient, SendResult
from gateway.notify.channels.aliyun import AliyunSms, AliyunVoice
from gateway.notify.channels.dingtalk import DingTalkRobot
from gateway.notify.channels.mail import SmtpMail
from gateway.notify.channels.tencent import TencentSms
from gateway.notify.channels.webhook import JsonWebhook
from gateway.notify.channels.wecom import WeComRobot
from gateway.notify.smtp import SmtpSender
from tests.conftest import MailHandler, free_port
from tests.support.providers import (
    AK_ID,
    AK_SECRET,
    TC_ID,
    TC_KEY,
    StubServer,
    aliyun_expected_signature,
    aliyun_provider,
    answer,
    tencent_check,
    tencent_provider,
)

SITE = "城区幸福养老服务中心"
GAS = MessageLine("一楼厨房", "gas-kitchen", "燃气泄漏", "24.5 %LEL", "2026-11-24 14:03", "未处理")
CO = MessageLine("二楼203室", "co-203", "一氧化碳超标", "180 ppm", "2026-11-24 14:04", "未处理")
ONE = Message("xingfu", SITE, "critical", ("alarm-1",), (GAS,))
TWO = Message("xingfu", SITE, "critical", ("alarm-1", "alarm-2"), (GAS, CO))
LEGAL_REP = Recipient("王院长", "legal_representative", "+8613800000001", "wang@example.cn")
HK_PHONE = Recipient("陈主任", "safety_manager", "+85291234567", None)
NO_CONTACT = Recipient("无联系方式", "other", None, None)
GROUP = Recipient("群", "group", None, None)

# 2026-11-24 17:30:05 UTC is already 11-25 in Beijing: signatures must use the UTC date
NOW = datetime(2026, 11, 24, 17, 30, 5, tzinfo=UTC).timestamp()
DT_SECRET = "SECtest0123456789"


# ------------------------------------ local HTTP server (tests.support.providers.StubServer)


@pytest.fixture
async def server() -> AsyncIterator[StubServer]:
    stub = StubServer()
    await stub.start()
    yield stub
    await stub.stop()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A client whose timeout a loaded machine never reaches: a provider's answer that came
    late would turn into a recoverable "timeout" and hide the errcode under test."""
    async with httpx.AsyncClient(timeout=10.0) as c:
        yield c


@pytest.fixture
async def hasty_client() -> AsyncIterator[httpx.AsyncClient]:
    """A client with a short timeout, for the provider that never answers."""
    async with httpx.AsyncClient(timeout=0.5) as c:
        yield c


# ----------------------------------------------------------------------- adapter makers


def make_aliyun_sms(client: httpx.AsyncClient, url: str, secret: str = AK_SECRET) -> AliyunSms:
    return AliyunSms(
        "sms-aliyun", client, AK_ID, secret, "城区民政局", "SMS_123456789",
        endpoint=url, clock=lambda: NOW, new_nonce=lambda: "nonce-1",
    )  # fmt: skip


def make_aliyun_voice(client: httpx.AsyncClient, url: str) -> AliyunVoice:
    return AliyunVoice(
        "voice", client, AK_ID, AK_SECRET, "057112345678", "TTS_987654",
        endpoint=url, clock=lambda: NOW, new_nonce=lambda: "nonce-2",
    )  # fmt: skip


def make_tencent(client: httpx.AsyncClient, url: str, key: str = TC_KEY) -> TencentSms:
    return TencentSms(
        "sms-tencent", client, TC_ID, key, "1400006666", "城区民政局", "1234567",
        endpoint=url, clock=lambda: NOW,
    )  # fmt: skip


def make_dingtalk(client: httpx.AsyncClient, url: str) -> DingTalkRobot:
    return DingTalkRobot(
        "dingtalk", client, f"{url}/robot/send?access_token=tok", DT_SECRET, clock=lambda: NOW
    )


def make_wecom(client: httpx.AsyncClient, url: str) -> WeComRobot:
    return WeComRobot("wecom", client, f"{url}/cgi-bin/webhook/send?key=k-1")


def make_webhook(client: httpx.AsyncClient, url: str) -> JsonWebhook:
    return JsonWebhook("bureau", client, f"{url}/alarms", token="t0ken")


MAKERS: dict[str, Callable[[httpx.AsyncClient, str], Notifier]] = {
    "aliyun_sms": make_aliyun_sms,
    "aliyun_voice": make_aliyun_voice,
    "tencent_sms": make_tencent,
    "dingtalk": make_dingtalk,
    "wecom": make_wecom,
    "webhook": make_webhook,
}


# ------------------------------------------------------------------------ Aliyun SMS


async def test_aliyun_sms_sends_a_correctly_signed_request(
    server: StubServer, client: httpx.AsyncClient
) -> None:
    server.respond = aliyun_provider(AK_SECRET, {"BizId": "900619746936498440^0"})
    result = await make_aliyun_sms(client, server.url).send(TWO, LEGAL_REP)
    assert result == SendResult(True, False, "OK", "900619746936498440^0")

    (req,) = server.requests
    assert (req.method, req.path) == ("POST", "/")
    assert req.headers["content-type"] == "application/x-www-form-urlencoded"
    params = req.form()
    assert params["Signature"] == aliyun_expected_signature("POST", params, AK_SECRET)
    assert params["Action"] == "SendSms"
    assert params["Version"] == "2017-05-25"
    assert params["AccessKeyId"] == AK_ID
    assert params["SignatureMethod"] == "HMAC-SHA1"
    assert params["SignatureVersion"] == "1.0"
    assert params["SignatureNonce"] == "nonce-1"
    assert params["Timestamp"] == "2026-11-24T17:30:05Z"
    assert params["Format"] == "JSON"
    assert params["PhoneNumbers"] == "13800000001"  # mainland numbers go without +86
    assert params["SignName"] == "城区民政局"
    assert params["TemplateCode"] == "SMS_123456789"
    assert params["OutId"] == "alarm-1"
    assert "燃气泄漏" in params["TemplateParam"]  # Chinese as UTF-8, not \u escapes
    assert orjson.loads(params["TemplateParam"]) == {
        "site": SITE,
        "location": "一楼厨房等2处",
        "alarm": "燃气泄漏、一氧化碳超标",
        "time": "2026-11-24 14:03",
    }
    # the body is encoded the Aliyun way: %20 for spaces, never "+"
    assert b"+" not in req.body
    assert b"2026-11-24%2014%3A03" in req.body


async def test_aliyun_sms_wrong_secret_is_refused_and_not_recoverable(
    server: StubServer, client: httpx.AsyncClient
) -> None:
    server.respond = aliyun_provider(AK_SECRET, {})
    result = await make_aliyun_sms(client, server.url, secret="not-the-secret").send(ONE, LEGAL_REP)
    assert not result.ok
    assert not result.recoverable
    assert result.detail.startswith("SignatureDoesNotMatch")


@pytest.mark.parametrize(
    ("status", "body", "recoverable"),
    [
        (200, {"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发分钟级流控"}, True),
        (400, {"Code": "Throttling.User", "Message": "Request was denied"}, True),
        (503, {"Code": "ServiceUnavailable", "Message": "busy"}, True),
        (400, {"Code": "SignatureDoesNotMatch", "Message": "bad"}, False),
        (200, {"Code": "isv.SMS_TEMPLATE_ILLEGAL", "Message": "模板不合法"}, False),
        (404, {"Code": "InvalidAccessKeyId.NotFound", "Message": "no key"}, False),
        (200, {"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "非法手机号"}, False),
        (500, b"<html>Internal Server Error</html>", True),
        (429, b"slow down", True),
        (403, b"<html>Forbidden</html>", False),
    ],
)
async def test_aliyun_error_codes_map_to_recoverable(
    server: StubServer,
    client: httpx.AsyncClient,
    status: int,
    body: Any,
    recoverable: bool,
) -> None:
    server.respond = answer(status, body)
    result = await make_aliyun_sms(client, server.url).send(ONE, LEGAL_REP)
    assert not result.ok
    assert result.recoverable is recoverable
    if isinstance(body, dict):
        assert result.detail.startswith(body["Code"])


async def test_aliyun_sms_reaches_phones_only(client: httpx.AsyncClient) -> None:
    sms = make_aliyun_sms(client, "http://127.0.0.1:9")
    assert sms.can_reach(LEGAL_REP)
    assert sms.can_reach(HK_PHONE)
    assert not sms.can_reach(NO_CONTACT)
    result = await sms.send(ONE, NO_CONTACT)
    assert (result.ok, result.recoverable) == (False, False)


async def test_aliyun_sms_international_number_keeps_its_country_code(
    server: StubServer, client: httpx.AsyncClient
) -> None:
    server.respond = aliyun_provider(AK_SECRET, {"BizId": "b"})
    assert (await make_aliyun_sms(client, server.url).send(ONE, HK_PHONE)).ok
    assert server.requests[0].form()["PhoneNumbers"] == "85291234567"


# ----------------------------------------------------------------------- Aliyun voice


async def test_aliyun_voice_calls_with_the_tts_template(
    server: StubServer, client: httpx.AsyncClient
) -> None:
    server.respond = aliyun_provider(AK_SECRET, {"CallId": "116012354148^10281378"})
    result = await make_aliyun_voice(client, server.url).send(TWO, LEGAL_REP)
    assert result == SendResult(True, False, "OK", "116012354148^10281378")
    params = server.requests[0].form()
    assert params["Signature"] == aliyun_expected_signature("POST", params, AK_SECRET)
    assert params["Action"] == "SingleCallByTts"
    assert params["Version"] == "2017-05-25"
    assert params["CalledNumber"] == "13800000001"
    assert params["CalledShowNumber"] == "057112345678"
    assert params["TtsCode"] == "TTS_987654"
    assert params["PlayTimes"] == "2"
    assert orjson.loads(params["TtsParam"]) == {
        "site": SITE,
        "location": "一楼厨房等2处",
        "alarm": "燃气泄漏、一氧化碳超标",
    }


def test_aliyun_voice_reaches_mainland_mobiles_only() -> None:
    voice = make_aliyun_voice(httpx.AsyncClient(), "http://127.0.0.1:9")
    assert voice.can_reach(LEGAL_REP)
    assert not voice.can_reach(HK_PHONE)
    assert not voice.can_reach(NO_CONTACT)


# ----------------------------------------------------------------------- Tencent SMS


async def test_tencent_sms_sends_a_correctly_signed_request(
    server: StubServer, client: httpx.AsyncClient
) -> None:
    server.respond = tencent_provider(TC_KEY)
    result = await make_tencent(client, server.url).send(TWO, LEGAL_REP)
    assert result == SendResult(True, False, "Ok", "5000:104571066915")

    (req,) = server.requests
    assert (req.method, req.path) == ("POST", "/")
    assert tencent_check(req, TC_ID, TC_KEY) is None
    assert req.headers["host"] == f"127.0.0.1:{server.port}"
    assert req.headers["content-type"] == "application/json; charset=utf-8"
    assert req.headers["x-tc-action"] == "SendSms"
    assert req.headers["x-tc-version"] == "2021-01-11"
    assert req.headers["x-tc-region"] == "ap-guangzhou"
    assert req.headers["x-tc-timestamp"] == str(int(NOW))
    # the credential date is the UTC date (Beijing is already on 11-25)
    assert "/2026-11-24/sms/tc3_request" in req.headers["authorization"]
    assert "SignedHeaders=content-type;host;x-tc-action," in req.headers["authorization"]
    assert req.json() == {
        "PhoneNumberSet": ["+8613800000001"],
        "SmsSdkAppId": "1400006666",
        "SignName": "城区民政局",
        "TemplateId": "1234567",
        "TemplateParamSet": [SITE, "一楼厨房等2处", "燃气泄漏、一氧化碳超标", "2026-11-24 14:03"],
        "SessionContext": "alarm-1",
    }


async def test_tencent_sms_wrong_key_is_refused_and_not_recoverable(
    server: StubServer, client: httpx.AsyncClient
) -> None:
    server.respond = tencent_provider(TC_KEY)
    result = await make_tencent(client, server.url, key="wrong").send(ONE, LEGAL_REP)
    assert (result.ok, result.recoverable) == (False, False)
    assert result.detail.startswith("AuthFailure.SignatureFailure")
    assert result.provider_ref == "r-err"


def _tc_error(code: str) -> dict[str, Any]:
    return {"Response": {"Error": {"Code": code, "Message": "m"}, "RequestId": "r"}}


def _tc_status(code: str) -> dict[str, Any]:
    status = {"SerialNo": "", "PhoneNumber": "+8613800000001", "Code": code, "Message": "m"}
    return {"Response": {"SendStatusSet": [status], "RequestId": "r"}}


@pytest.mark.parametrize(
    ("status", "body", "recoverable"),
    [
        (200, _tc_status("LimitExceeded.PhoneNumberThirtySecondLimit"), True),
        (200, _tc_error("LimitExceeded.AppDailyLimit"), True),
        (200, _tc_error("InternalError.Timeout"), True),
        (200, _tc_error("RequestLimitExceeded"), True),
        (200, _tc_error("AuthFailure.SecretIdNotFound"), False),
        (200, _tc_error("FailedOperation.TemplateIncorrectOrUnapproved"), False),
        (200, _tc_error("InvalidParameterValue.TemplateParameterFormatError"), False),
        (200, _tc_status("InvalidParameterValue.IncorrectPhoneNumber"), False),
        (502, b"<html>Bad Gateway</html>", True),
        (200, {"Response": {"RequestId": "r"}}, False),
    ],
)
async def test_tencent_error_codes_map_to_recoverable(
    server: StubServer,
    client: httpx.AsyncClient,
    status: int,
    body: Any,
    recoverable: bool,
) -> None:
    server.respond = answer(status, body)
    result = await make_tencent(client, server.url).send(ONE, LEGAL_REP)
    assert not result.ok
    assert result.recoverable is recoverable


# -------------------------------------------------------------------------- DingTalk


async def test_dingtalk_signed_markdown(server: StubServer, client: httpx.AsyncClient) -> None:
    server.respond = answer(200, {"errcode": 0, "errmsg": "ok"})
    result = await make_dingtalk(client, server.url).send(TWO, GROUP)
    assert (result.ok, result.detail) == (True, "ok")

    (req,) = server.requests
    assert req.path == "/robot/send"
    query = req.query
    assert query["access_token"] == "tok"
    timestamp = int(query["timestamp"])
    assert timestamp == int(NOW * 1000)
    digest = hmac.new(
        DT_SECRET.encode(), f"{timestamp}\n{DT_SECRET}".encode(), hashlib.sha256
    ).digest()
    assert query["sign"] == base64.b64encode(digest).decode()  # after URL-decoding
    body = req.json()
    assert body["msgtype"] == "markdown"
    assert body["markdown"]["title"] == render.subject(TWO)
    text = body["markdown"]["text"]
    assert "【安全报警】城区幸福养老服务中心" in text
    assert "- 一楼厨房 燃气泄漏 24.5 %LEL 2026-11-24 14:03 未处理" in text
    assert "- 二楼203室 一氧化碳超标 180 ppm 2026-11-24 14:04 未处理" in text


async def test_dingtalk_unsigned_text(server: StubServer, client: httpx.AsyncClient) -> None:
    server.respond = answer(200, {"errcode": 0, "errmsg": "ok"})
    robot = DingTalkRobot("dt", client, f"{server.url}/robot/send?access_token=t", msgtype="text")
    assert robot.can_reach(GROUP) and robot.can_reach(NO_CONTACT)
    assert (await robot.send(ONE, GROUP)).ok
    (req,) = server.requests
    assert req.query == {"access_token": "t"}
    assert req.json() == {"msgtype": "text", "text": {"content": render.text(ONE)}}


@pytest.mark.parametrize(
    ("errcode", "recoverable"), [(130101, True), (410100, True), (310000, False), (300001, False)]
)
async def test_dingtalk_errcodes(
    server: StubServer, client: httpx.AsyncClient, errcode: int, recoverable: bool
) -> None:
    server.respond = answer(200, {"errcode": errcode, "errmsg": "x"})
    result = await make_dingtalk(client, server.url).send(ONE, GROUP)
    assert (result.ok, result.recoverable) == (False, recoverable)
    assert result.detail.startswith(str(errcode))


# ----------------------------------------------------------------------------- WeCom


async def test_wecom_markdown(server: StubServer, client: httpx.AsyncClient) -> None:
    server.respond = answer(200, {"errcode": 0, "errmsg": "ok"})
    assert (await make_wecom(client, server.url).send(TWO, GROUP)).ok
    (req,) = server.requests
    assert (req.path, req.query) == ("/cgi-bin/webhook/send", {"key": "k-1"})
    assert req.json() == {"msgtype": "markdown", "markdown": {"content": render.markdown(TWO)}}


async def test_wecom_text_is_clipped_to_the_documented_byte_limit(
    server: StubServer, client: httpx.AsyncClient
) -> None:
    server.respond = answer(200, {"errcode": 0, "errmsg": "ok"})
    many = Message("xingfu", SITE, "major", ("a",) * 100, (GAS,) * 100)
    robot = WeComRobot("wecom", client, f"{server.url}/hook?key=k", msgtype="text")
    assert (await robot.send(many, GROUP)).ok
    content = server.requests[0].json()["text"]["content"]
    assert content.startswith("【安全报警】城区幸福养老服务中心 100处报警（重要）")
    assert len(content.encode()) <= 2048


@pytest.mark.parametrize(("errcode", "recoverable"), [(45009, True), (-1, True), (93000, False)])
async def test_wecom_errcodes(
    server: StubServer, client: httpx.AsyncClient, errcode: int, recoverable: bool
) -> None:
    server.respond = answer(200, {"errcode": errcode, "errmsg": "x"})
    result = await make_wecom(client, server.url).send(ONE, GROUP)
    assert (result.ok, result.recoverable) == (False, recoverable)


# --------------------------------------------------------------------------- webhook


async def test_webhook_posts_the_alarm_json_with_bearer_token(
    server: StubServer, client: httpx.AsyncClient
) -> None:
    server.respond = lambda _req: (204, b"")
    result = await make_webhook(client, server.url).send(TWO, GROUP)
    assert (result.ok, result.detail) == (True, "HTTP 204")
    (req,) = server.requests
    assert req.path == "/alarms"
    assert req.headers["authorization"] == "Bearer t0ken"
    assert req.json() == {
        "site": "xingfu",
        "site_name": SITE,
        "severity": "critical",
        "alarm_ids": ["alarm-1", "alarm-2"],
        "alarms": [
            {"location": "一楼厨房", "device": "gas-kitchen", "alarm": "燃气泄漏",
             "value": "24.5 %LEL", "time": "2026-11-24 14:03", "state": "未处理"},
            {"location": "二楼203室", "device": "co-203", "alarm": "一氧化碳超标",
             "value": "180 ppm", "time": "2026-11-24 14:04", "state": "未处理"},
        ],
        "text": render.text(TWO),
    }  # fmt: skip


async def test_webhook_without_token_sends_no_authorization(
    server: StubServer, client: httpx.AsyncClient
) -> None:
    server.respond = answer(200, {"id": 1})
    assert (await JsonWebhook("w", client, server.url).send(ONE, GROUP)).ok
    assert "authorization" not in server.requests[0].headers


@pytest.mark.parametrize(
    ("status", "recoverable"), [(500, True), (503, True), (429, True), (400, False), (401, False)]
)
async def test_webhook_status_codes(
    server: StubServer, client: httpx.AsyncClient, status: int, recoverable: bool
) -> None:
    server.respond = answer(status, {"error": "x"})
    result = await make_webhook(client, server.url).send(ONE, GROUP)
    assert (result.ok, result.recoverable) == (False, recoverable)
    assert result.detail.startswith(f"HTTP {status}")


# ---------------------------------------------- transport failures, every HTTP adapter


@pytest.mark.parametrize("kind", sorted(MAKERS))
async def test_a_server_that_hangs_is_a_recoverable_timeout(
    server: StubServer, hasty_client: httpx.AsyncClient, kind: str
) -> None:
    server.hang = True
    notifier = MAKERS[kind](hasty_client, server.url)
    assert notifier.kind == kind
    started = asyncio.get_running_loop().time()
    result = await notifier.send(ONE, LEGAL_REP)
    assert asyncio.get_running_loop().time() - started < 5
    assert (result.ok, result.recoverable) == (False, True)
    assert result.detail.startswith("timeout")
    assert len(server.requests) == 1  # one call, one attempt: retries are the engine's


@pytest.mark.parametrize("kind", sorted(MAKERS))
async def test_connection_refused_is_recoverable(client: httpx.AsyncClient, kind: str) -> None:
    notifier = MAKERS[kind](client, f"http://127.0.0.1:{free_port()}")
    result = await notifier.send(ONE, LEGAL_REP)
    assert (result.ok, result.recoverable) == (False, True)
    assert result.detail.startswith("network error")


async def test_a_url_without_scheme_is_a_configuration_error(client: httpx.AsyncClient) -> None:
    result = await WeComRobot("w", client, "qyapi.example/hook?key=secret-key").send(ONE, GROUP)
    assert (result.ok, result.recoverable) == (False, False)
    assert "secret-key" not in result.detail  # details are stored; webhook URLs are secrets


# ------------------------------------------------------------------------------ SMTP
# The server is tests.conftest's: it refuses nobody@ (550) and busy@ (451) recipients and
# takes the login alarm/pa55.


def _mail(port: int, **kw: Any) -> SmtpMail:
    return SmtpMail(
        "mail", SmtpSender("127.0.0.1", "alarm@gateway.example.cn", port=port, timeout=2, **kw)
    )


async def test_mail_arrives_with_chinese_subject_and_body(
    smtp: tuple[MailHandler, int],
) -> None:
    handler, port = smtp
    result = await _mail(port).send(TWO, LEGAL_REP)
    assert result.ok, result.detail
    assert result.provider_ref is not None and result.provider_ref.startswith("<")

    (envelope,) = handler.envelopes
    assert envelope.mail_from == "alarm@gateway.example.cn"
    assert envelope.rcpt_tos == ["wang@example.cn"]
    assert isinstance(envelope.content, bytes)
    parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert parsed["Subject"] == "【安全报警】城区幸福养老服务中心 燃气泄漏、一氧化碳超标 共2处"
    assert parsed["To"] == "wang@example.cn"
    body = parsed.get_body()
    assert body is not None
    content = body.get_content()
    assert content.replace("\r\n", "\n").strip() == render.text(TWO)  # CRLF on the wire


async def test_mail_with_login(smtp: tuple[MailHandler, int]) -> None:
    handler, port = smtp
    result = await _mail(port, username="alarm", password="pa55").send(ONE, LEGAL_REP)
    assert result.ok, result.detail
    assert len(handler.envelopes) == 1


async def test_mail_authentication_failure_is_not_recoverable(
    smtp: tuple[MailHandler, int],
) -> None:
    handler, port = smtp
    result = await _mail(port, username="alarm", password="wrong").send(ONE, LEGAL_REP)
    assert (result.ok, result.recoverable) == (False, False)
    assert "SMTPAuthenticationError" in result.detail
    assert handler.envelopes == []


@pytest.mark.parametrize(("local", "recoverable"), [("nobody", False), ("busy", True)])
async def test_mail_refused_recipient(
    smtp: tuple[MailHandler, int], local: str, recoverable: bool
) -> None:
    _handler, port = smtp
    to = Recipient("x", "other", None, f"{local}@example.cn")
    result = await _mail(port).send(ONE, to)
    assert (result.ok, result.recoverable) == (False, recoverable)


async def test_mail_connection_refused_is_recoverable() -> None:
    result = await _mail(free_port()).send(ONE, LEGAL_REP)
    assert (result.ok, result.recoverable) == (False, True)


async def test_mail_reaches_email_addresses_only() -> None:
    mail: Notifier = _mail(25)
    assert mail.kind == "smtp"
    assert mail.can_reach(LEGAL_REP)
    assert not mail.can_reach(HK_PHONE)
    assert (await mail.send(ONE, HK_PHONE)).recoverable is False


async def test_the_smtp_sender_takes_recipients_from_the_to_header(
    smtp: tuple[MailHandler, int],
) -> None:
    """The one sender under alarm and report mails: display names are fine, and a recipient
    refused among others fails the mail (temporarily, for a 4xx refusal)."""
    handler, port = smtp
    sender = SmtpSender("127.0.0.1", "gw@zhongyang.example.cn", port=port, timeout=2)
    assert sender.address == "gw@zhongyang.example.cn"

    def mail(to: str) -> EmailMessage:
        m = EmailMessage()
        m["From"] = sender.address
        m["To"] = to
        m["Subject"] = "安全日报"
        m["Message-ID"] = "<1@zhongyang.example.cn>"
        m.set_content("见附件。")
        return m

    result = await sender.send(mail("李四应 <li@xingfu.example.cn>"))
    assert result.ok, result.detail
    assert result.provider_ref == "<1@zhongyang.example.cn>"
    assert handler.envelopes[0].rcpt_tos == ["li@xingfu.example.cn"]

    result = await sender.send(mail("li@xingfu.example.cn, busy@xingfu.example.cn"))
    assert (result.ok, result.recoverable) == (False, True)
    assert result.detail.startswith("refused:")
