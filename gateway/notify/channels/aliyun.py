"""Aliyun SMS (dysmsapi `SendSms`) and voice notification (dyvmsapi `SingleCallByTts`).

Both are RPC-style APIs, version 2017-05-25, signed with Aliyun's signature V2:
HMAC-SHA1 over `METHOD&%2F&percentEncode(canonicalized query)`, keyed with
`AccessKeySecret + "&"`, base64. The signing functions are pure and tested against the
worked example in Aliyun's documentation. Requests are POSTed as a form body encoded
exactly like the canonicalized query, so what is signed is what is sent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from collections.abc import Callable, Mapping
from urllib.parse import quote

import httpx
import orjson

from gateway.notify import render
from gateway.notify.base import (
    Message,
    Recipient,
    SendResult,
    e164_to_national,
    http_failure,
    is_mainland_mobile,
    json_object,
    post,
    status_is_recoverable,
)

API_VERSION = "2017-05-25"
SMS_ENDPOINT = "https://dysmsapi.aliyuncs.com"
VOICE_ENDPOINT = "https://dyvmsapi.aliyuncs.com"

# Codes after which the same request may succeed later. isv.BUSINESS_LIMIT_CONTROL is
# the per-number flow control (e.g. one SMS a minute to the same phone).
_RECOVERABLE_CODES = (
    "Throttling",
    "isv.BUSINESS_LIMIT_CONTROL",
    "ServiceUnavailable",
    "InternalError",
    "isp.SYSTEM_ERROR",
    "isp.GATEWAY_ERROR",
    "SignatureNonceUsed",  # a fresh nonce on the next attempt fixes it
)


# ------------------------------------------------------------------------------ signing


def percent_encode(value: str) -> str:
    """RFC 3986 as Aliyun wants it: only A-Z a-z 0-9 - _ . ~ stay; UTF-8 bytes as %XY.

    Unlike form encoding, a space is %20 (not +), "*" is %2A and "~" stays literal.
    """
    return quote(value, safe="")  # quote keeps letters, digits and "-_.~" unescaped


def canonical_query(params: Mapping[str, str]) -> str:
    """Parameters sorted by name, each name and value percent-encoded, joined by "&".

    `Signature` itself is left out, so a receiver can check a request's own parameters.
    """
    return "&".join(
        f"{percent_encode(k)}={percent_encode(v)}"
        for k, v in sorted(params.items())
        if k != "Signature"
    )


def string_to_sign(method: str, params: Mapping[str, str]) -> str:
    return f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonical_query(params))}"


def rpc_signature(method: str, params: Mapping[str, str], access_key_secret: str) -> str:
    key = f"{access_key_secret}&".encode()
    digest = hmac.new(key, string_to_sign(method, params).encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def signed_query(method: str, params: Mapping[str, str], access_key_secret: str) -> str:
    """The parameters plus `Signature`: a GET query string or a POST form body."""
    signature = rpc_signature(method, params, access_key_secret)
    return f"{canonical_query(params)}&Signature={percent_encode(signature)}"


def iso_timestamp(now: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))


def code_is_recoverable(code: str) -> bool:
    return code.startswith(_RECOVERABLE_CODES)


# ----------------------------------------------------------------------------- adapters


class _AliyunRpc:
    kind: str

    def __init__(
        self,
        name: str,
        client: httpx.AsyncClient,
        access_key_id: str,
        access_key_secret: str,
        endpoint: str,
        region_id: str = "cn-hangzhou",
        clock: Callable[[], float] = time.time,
        new_nonce: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self.name = name
        self._client = client
        self._key_id = access_key_id
        self._secret = access_key_secret
        self._url = endpoint.rstrip("/") + "/"
        self._region = region_id
        self._clock = clock
        self._new_nonce = new_nonce

    async def _call(self, action: str, params: Mapping[str, str], ref_field: str) -> SendResult:
        signed = {
            "AccessKeyId": self._key_id,
            "Action": action,
            "Format": "JSON",
            "RegionId": self._region,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": self._new_nonce(),
            "SignatureVersion": "1.0",
            "Timestamp": iso_timestamp(self._clock()),
            "Version": API_VERSION,
            **params,
        }
        body = signed_query("POST", signed, self._secret).encode("ascii")
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        response = await post(self._client, self._url, body, headers)
        if isinstance(response, SendResult):
            return response
        return _outcome(response, ref_field)


def _outcome(response: httpx.Response, ref_field: str) -> SendResult:
    body = json_object(response)
    code = body.get("Code") if body is not None else None
    if body is None or not isinstance(code, str):
        return http_failure(response)
    ref = body.get(ref_field) or body.get("RequestId")
    ref = str(ref) if ref else None
    if code == "OK" and response.is_success:
        return SendResult(True, False, "OK", ref)
    recoverable = code_is_recoverable(code) or status_is_recoverable(response.status_code)
    return SendResult(False, recoverable, f"{code}: {body.get('Message', '')}", ref)


class AliyunSms(_AliyunRpc):
    """SMS with an approved template using the variables site, location, alarm, time."""

    kind = "aliyun_sms"

    def __init__(
        self,
        name: str,
        client: httpx.AsyncClient,
        access_key_id: str,
        access_key_secret: str,
        sign_name: str,
        template_code: str,
        endpoint: str = SMS_ENDPOINT,
        region_id: str = "cn-hangzhou",
        clock: Callable[[], float] = time.time,
        new_nonce: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        super().__init__(
            name, client, access_key_id, access_key_secret, endpoint, region_id, clock, new_nonce
        )
        self._sign_name = sign_name
        self._template_code = template_code

    def can_reach(self, to: Recipient) -> bool:
        return bool(to.phone)

    async def send(self, msg: Message, to: Recipient) -> SendResult:
        if not to.phone:
            return SendResult(False, False, "recipient has no phone number")
        params = {
            "PhoneNumbers": e164_to_national(to.phone),
            "SignName": self._sign_name,
            "TemplateCode": self._template_code,
            # raw UTF-8 JSON rather than \u escapes, as Aliyun's own examples send it
            "TemplateParam": orjson.dumps(render.sms_params(msg)).decode(),
        }
        if msg.alarm_ids:
            params["OutId"] = msg.alarm_ids[0]  # comes back in delivery receipts
        return await self._call("SendSms", params, "BizId")


class AliyunVoice(_AliyunRpc):
    """A text-to-speech call with an approved TTS template using site, location, alarm.

    Aliyun voice notification calls mainland numbers only.
    """

    kind = "aliyun_voice"

    def __init__(
        self,
        name: str,
        client: httpx.AsyncClient,
        access_key_id: str,
        access_key_secret: str,
        called_show_number: str,
        tts_code: str,
        endpoint: str = VOICE_ENDPOINT,
        play_times: int = 2,
        region_id: str = "cn-hangzhou",
        clock: Callable[[], float] = time.time,
        new_nonce: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        super().__init__(
            name, client, access_key_id, access_key_secret, endpoint, region_id, clock, new_nonce
        )
        self._show_number = called_show_number
        self._tts_code = tts_code
        self._play_times = play_times  # heard twice: the first words are often missed

    def can_reach(self, to: Recipient) -> bool:
        return is_mainland_mobile(to.phone)

    async def send(self, msg: Message, to: Recipient) -> SendResult:
        if to.phone is None or not is_mainland_mobile(to.phone):
            return SendResult(False, False, "recipient has no mainland mobile number")
        params = {
            "CalledNumber": e164_to_national(to.phone),
            "TtsCode": self._tts_code,
            "TtsParam": orjson.dumps(render.tts_params(msg)).decode(),
            "PlayTimes": str(self._play_times),
        }
        if self._show_number:
            params["CalledShowNumber"] = self._show_number
        if msg.alarm_ids:
            params["OutId"] = msg.alarm_ids[0]
        return await self._call("SingleCallByTts", params, "CallId")
