"""Tencent Cloud SMS `SendSms` (API 3.0, version 2021-01-11) with TC3-HMAC-SHA256.

The signature ("签名方法 v3"): a canonical request (method, URI, query, lower-cased signed
headers, SHA-256 of the body), a string to sign with the credential scope
`date/service/tc3_request`, and a signing key derived from the SecretKey by HMAC-SHA256
over the UTC date, the service and "tc3_request". The functions are pure and tested
against the worked example in Tencent Cloud's documentation.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping, Sequence

import httpx
import orjson

from gateway.notify import render
from gateway.notify.base import (
    Message,
    Recipient,
    SendResult,
    http_failure,
    json_object,
    post,
    status_is_recoverable,
)

API_VERSION = "2021-01-11"
ENDPOINT = "https://sms.tencentcloudapi.com"
SERVICE = "sms"
ALGORITHM = "TC3-HMAC-SHA256"
CONTENT_TYPE = "application/json; charset=utf-8"
# the order of the template's variables {1} {2} {3} {4}
DEFAULT_PARAM_ORDER = ("site", "location", "alarm", "time")

_RECOVERABLE_CODES = ("LimitExceeded", "InternalError", "RequestLimitExceeded")


# ------------------------------------------------------------------------------ signing


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def utc_date(timestamp: int) -> str:
    # The scope's date is the UTC date of the timestamp: a local (UTC+8) date breaks
    # every request sent between 00:00 and 08:00 Beijing time.
    return time.strftime("%Y-%m-%d", time.gmtime(timestamp))


def canonical_request(
    method: str,
    headers: Mapping[str, str],
    payload: bytes,
    uri: str = "/",
    query: str = "",
) -> tuple[str, str]:
    """(canonical request, signed header names). Every header given is signed."""
    items = sorted((k.strip().lower(), v.strip().lower()) for k, v in headers.items())
    canonical_headers = "".join(f"{k}:{v}\n" for k, v in items)
    signed_headers = ";".join(k for k, _ in items)
    request = "\n".join(
        [method.upper(), uri, query, canonical_headers, signed_headers, sha256_hex(payload)]
    )
    return request, signed_headers


def credential_scope(timestamp: int, service: str) -> str:
    return f"{utc_date(timestamp)}/{service}/tc3_request"


def string_to_sign(timestamp: int, service: str, canonical: str) -> str:
    scope = credential_scope(timestamp, service)
    return f"{ALGORITHM}\n{timestamp}\n{scope}\n{sha256_hex(canonical.encode())}"


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def tc3_signature(secret_key: str, timestamp: int, service: str, to_sign: str) -> str:
    secret_date = _hmac(f"TC3{secret_key}".encode(), utc_date(timestamp))
    secret_service = _hmac(secret_date, service)
    secret_signing = _hmac(secret_service, "tc3_request")
    return hmac.new(secret_signing, to_sign.encode(), hashlib.sha256).hexdigest()


def tc3_authorization(
    secret_id: str,
    secret_key: str,
    service: str,
    timestamp: int,
    headers: Mapping[str, str],
    payload: bytes,
    method: str = "POST",
) -> str:
    """The `Authorization` header for a request with these signed headers and body."""
    canonical, signed_headers = canonical_request(method, headers, payload)
    signature = tc3_signature(
        secret_key, timestamp, service, string_to_sign(timestamp, service, canonical)
    )
    return (
        f"{ALGORITHM} Credential={secret_id}/{credential_scope(timestamp, service)}, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )


def code_is_recoverable(code: str) -> bool:
    return code.startswith(_RECOVERABLE_CODES)


# ------------------------------------------------------------------------------ adapter


class TencentSms:
    """SMS with an approved template whose variables {1}..{4} follow `param_order`."""

    kind = "tencent_sms"

    def __init__(
        self,
        name: str,
        client: httpx.AsyncClient,
        secret_id: str,
        secret_key: str,
        sdk_app_id: str,
        sign_name: str,
        template_id: str,
        region: str = "ap-guangzhou",
        endpoint: str = ENDPOINT,
        param_order: Sequence[str] = DEFAULT_PARAM_ORDER,
        # Tencent's per-variable limits depend on the variable type chosen when the
        # template was approved; lower this if the template uses a stricter type.
        param_max_len: int = render.SMS_PARAM_MAX,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self._client = client
        self._secret_id = secret_id
        self._secret_key = secret_key
        self._app_id = sdk_app_id
        self._sign_name = sign_name
        self._template_id = template_id
        self._region = region
        self._url = endpoint.rstrip("/") + "/"
        # signed as sent: httpx sends the URL's host[:port] as Host
        self._host = httpx.URL(self._url).netloc.decode("ascii")
        self._order = tuple(param_order)
        self._max_len = param_max_len
        self._clock = clock

    def can_reach(self, to: Recipient) -> bool:
        return bool(to.phone)

    async def send(self, msg: Message, to: Recipient) -> SendResult:
        if not to.phone:
            return SendResult(False, False, "recipient has no phone number")
        params = render.sms_params(msg, self._max_len, self._max_len)
        body: dict[str, object] = {
            "PhoneNumberSet": [to.phone],  # E.164 is what Tencent wants
            "SmsSdkAppId": self._app_id,
            "SignName": self._sign_name,
            "TemplateId": self._template_id,
            # {5} is the link, when links are configured (a template with five variables)
            "TemplateParamSet": [params.get(k, "") for k in self._order]
            + ([params["link"]] if "link" in params and "link" not in self._order else []),
        }
        if msg.alarm_ids:
            body["SessionContext"] = msg.alarm_ids[0]  # echoed in delivery receipts
        payload = orjson.dumps(body)  # hashed and sent as these exact bytes
        timestamp = int(self._clock())
        signed = {"Content-Type": CONTENT_TYPE, "Host": self._host, "X-TC-Action": "SendSms"}
        headers = {
            **signed,
            "X-TC-Version": API_VERSION,
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Region": self._region,
            "Authorization": tc3_authorization(
                self._secret_id, self._secret_key, SERVICE, timestamp, signed, payload
            ),
        }
        response = await post(self._client, self._url, payload, headers)
        if isinstance(response, SendResult):
            return response
        return _outcome(response)


def _outcome(response: httpx.Response) -> SendResult:
    body = json_object(response)
    inner = body.get("Response") if body is not None else None
    if not isinstance(inner, dict):
        return http_failure(response)
    request_id = str(inner["RequestId"]) if inner.get("RequestId") else None
    error = inner.get("Error")
    if isinstance(error, dict):
        return _failure(str(error.get("Code", "")), error.get("Message"), response, request_id)
    statuses = inner.get("SendStatusSet")
    if not isinstance(statuses, list) or not statuses or not isinstance(statuses[0], dict):
        return SendResult(False, False, "no SendStatusSet in the answer", request_id)
    status = statuses[0]  # one phone number per request
    code = str(status.get("Code", ""))
    ref = str(status.get("SerialNo") or "") or request_id
    if code == "Ok" and response.is_success:
        return SendResult(True, False, "Ok", ref)
    return _failure(code, status.get("Message"), response, ref)


def _failure(code: str, message: object, response: httpx.Response, ref: str | None) -> SendResult:
    recoverable = code_is_recoverable(code) or status_is_recoverable(response.status_code)
    return SendResult(False, recoverable, f"{code}: {message or ''}", ref)
