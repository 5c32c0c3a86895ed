"""Local stand-ins for the notification providers: an HTTP/1.1 server that records each
request and answers like Aliyun, Tencent, DingTalk, WeCom or a webhook would, with signature
checks written from the providers' documentation (not from the adapters); and the three
providers an end-to-end gateway is configured with."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson

AK_ID, AK_SECRET = "LTAI-test-id", "test-secret/with+odd=chars"


TC_ID, TC_KEY = "AKID-test", "tc-test-key"


@dataclass
class Received:
    method: str
    target: str
    headers: dict[str, str]  # names lower-cased
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.target).query, keep_blank_values=True))

    def form(self) -> dict[str, str]:
        return dict(
            parse_qsl(self.body.decode("ascii"), keep_blank_values=True, strict_parsing=True)
        )

    def json(self) -> Any:
        return orjson.loads(self.body)


Responder = Callable[[Received], tuple[int, bytes]]


def answer(status: int, body: Any) -> Responder:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return lambda _req: (status, raw)


@dataclass
class StubServer:
    """An HTTP/1.1 server that records requests; `hang` makes it never answer."""

    respond: Responder = field(default_factory=lambda: answer(200, {}))
    hang: bool = False
    requests: list[Received] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            request_line, *header_lines = head.split("\r\n")
            method, target, _ = request_line.split(" ", 2)
            headers = {}
            for line in header_lines:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            request = Received(method, target, headers, body)
            self.requests.append(request)
            if self.hang:
                await asyncio.Event().wait()  # until the test ends and cancels us
            status, payload = self.respond(request)
            writer.write(
                f"HTTP/1.1 {status} Stub\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            self._tasks.discard(task)


_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")


def _aliyun_encode(text: str) -> str:
    return "".join(chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in text.encode("utf-8"))


def aliyun_expected_signature(method: str, params: dict[str, str], secret: str) -> str:
    """Aliyun RPC signature V2, written from the documentation, not from the adapter."""
    pairs = sorted((k, v) for k, v in params.items() if k != "Signature")
    canonical = "&".join(f"{_aliyun_encode(k)}={_aliyun_encode(v)}" for k, v in pairs)
    to_sign = f"{method}&%2F&{_aliyun_encode(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def aliyun_provider(secret: str, success: dict[str, str]) -> Responder:
    """Answers like Aliyun: refuses a request whose signature does not check out."""

    def respond(req: Received) -> tuple[int, bytes]:
        params = req.form()
        if params.get("Signature") != aliyun_expected_signature("POST", params, secret):
            return 400, orjson.dumps(
                {"Code": "SignatureDoesNotMatch", "Message": "Specified signature is not matched"}
            )
        return 200, orjson.dumps({"Code": "OK", "Message": "OK", "RequestId": "req-1", **success})

    return respond


_TC3_AUTH = re.compile(
    r"TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<date>\d{4}-\d\d-\d\d)/(?P<service>\w+)/"
    r"tc3_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<sig>[0-9a-f]{64})"
)


def tencent_check(req: Received, secret_id: str, secret_key: str) -> str | None:
    """Re-compute TC3-HMAC-SHA256 from what arrived; None if it matches, else why not."""
    m = _TC3_AUTH.fullmatch(req.headers.get("authorization", ""))
    if m is None or m["id"] != secret_id:
        return "malformed Authorization"
    signed = m["signed"].split(";")
    if not {"content-type", "host"} <= set(signed):
        return "content-type and host must be signed"
    timestamp = int(req.headers["x-tc-timestamp"])
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    if m["date"] != date:
        return "credential date is not the UTC date of the timestamp"
    headers = "".join(f"{h}:{req.headers[h].strip().lower()}\n" for h in signed)
    canonical = "\n".join(
        ["POST", "/", "", headers, m["signed"], hashlib.sha256(req.body).hexdigest()]
    )
    scope = f"{date}/{m['service']}/tc3_request"
    to_sign = "\n".join(
        ["TC3-HMAC-SHA256", str(timestamp), scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = f"TC3{secret_key}".encode()
    for part in (date, m["service"], "tc3_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return None if hmac.compare_digest(expected, m["sig"]) else "signature mismatch"


def tencent_provider(secret_key: str, status_set: list[dict[str, Any]] | None = None) -> Responder:
    def respond(req: Received) -> tuple[int, bytes]:
        problem = tencent_check(req, TC_ID, secret_key)
        if problem is not None:
            error = {"Code": "AuthFailure.SignatureFailure", "Message": problem}
            return 200, orjson.dumps({"Response": {"Error": error, "RequestId": "r-err"}})
        statuses = status_set or [
            {"SerialNo": "5000:104571066915", "PhoneNumber": "+8613800000001", "Fee": 1,
             "SessionContext": "alarm-1", "Code": "Ok", "Message": "send success",
             "IsoCode": "CN"}
        ]  # fmt: skip
        return 200, orjson.dumps({"Response": {"SendStatusSet": statuses, "RequestId": "r-1"}})

    return respond


LEGAL, SAFETY, BUREAU = "+8613800000001", "+8613800000002", "+8613900000009"


@dataclass
class Providers:
    aliyun: StubServer
    voice: StubServer
    tencent: StubServer

    def sms_to(self, phone: str) -> list[Received]:
        national = phone.removeprefix("+86")
        return [r for r in self.aliyun.requests if r.form().get("PhoneNumbers") == national]

    def calls_to(self, phone: str) -> list[Received]:
        national = phone.removeprefix("+86")
        return [r for r in self.voice.requests if r.form().get("CalledNumber") == national]


@contextlib.asynccontextmanager
async def providers() -> AsyncIterator[Providers]:
    stubs = Providers(
        StubServer(aliyun_provider(AK_SECRET, {"BizId": "biz-1"})),
        StubServer(aliyun_provider(AK_SECRET, {"CallId": "call-1"})),
        StubServer(tencent_provider(TC_KEY)),
    )
    for s in (stubs.aliyun, stubs.voice, stubs.tencent):
        await s.start()
    try:
        yield stubs
    finally:
        for s in (stubs.aliyun, stubs.voice, stubs.tencent):
            await s.stop()


def notify_config(p: Providers, **extra: Any) -> dict[str, Any]:
    return {
        "channels": [
            {
                "name": "sms-aliyun",
                "kind": "aliyun_sms",
                "access_key_id_env": "T_AK_ID",
                "access_key_secret_env": "T_AK_SECRET",
                "sign_name": "民政安全",
                "template_code": "SMS_900001",
                "endpoint": p.aliyun.url,
            },
            {
                "name": "sms-tencent",
                "kind": "tencent_sms",
                "secret_id_env": "T_TC_ID",
                "secret_key_env": "T_TC_KEY",
                "sdk_app_id": "1400000001",
                "sign_name": "民政安全",
                "template_id": "100001",
                "endpoint": p.tencent.url,
            },
            {
                "name": "voice",
                "kind": "aliyun_voice",
                "access_key_id_env": "T_AK_ID",
                "access_key_secret_env": "T_AK_SECRET",
                "called_show_number": "057100000000",
                "tts_code": "TTS_900002",
                "endpoint": p.voice.url,
            },
        ],
        "sms_channels": ["sms-aliyun", "sms-tencent"],
        "voice_channels": ["voice"],
        "bureau_contacts": [{"name": "局值班", "role": "bureau_duty", "phone": BUREAU}],
        "attempts": 2,
        "retry_backoff": "10 ms",
        "group_window": "30 s",
        **extra,
    }
