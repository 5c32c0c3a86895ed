"""Request signing of the notification providers, against their published worked examples.

A signing bug shows up only as SignatureDoesNotMatch / AuthFailure at the provider, i.e.
on the day of a real alarm, so each algorithm is pinned to an example its vendor
published (or, for DingTalk, to a value computed by an independent implementation).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import unquote_plus

import pytest

from gateway.notify.channels import aliyun, dingtalk, tencent

# ------------------------------------------------------------------------------ Aliyun

# Aliyun's RPC signature (V2) worked example: ECS DescribeRegions with AccessKeyId
# "testid" and AccessKeySecret "testsecret". Source: Alibaba Cloud ECS API reference,
# "Request signatures", Example 1 (https://www.alibabacloud.com/help/doc-detail/25492.htm),
# as kept in the docs repository AlibabaCloudDocs/ecs, file
# "intl.en-US/API Reference/Getting started/Request signatures.md"
# (commit 4c4be6ffc29fae6ac14cd761d69cbcc199040ad0): StringToSign and
# Signature OLeaidS1JvxuMvnyHOwuJ+uX5qY= (URL-encoded OLeaidS1JvxuMvnyHOwuJ%2BuX5qY%3D).
ALIYUN_DOC_PARAMS = {
    "Timestamp": "2016-02-23T12:46:24Z",
    "Format": "XML",
    "AccessKeyId": "testid",
    "Action": "DescribeRegions",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
    "Version": "2014-05-26",
    "SignatureVersion": "1.0",
}
ALIYUN_DOC_STRING_TO_SIGN = (
    "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML"
    "%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"
    "%26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z"
    "%26Version%3D2014-05-26"
)
ALIYUN_DOC_SIGNATURE = "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


def test_aliyun_documented_string_to_sign() -> None:
    assert aliyun.string_to_sign("GET", ALIYUN_DOC_PARAMS) == ALIYUN_DOC_STRING_TO_SIGN


def test_aliyun_documented_signature() -> None:
    assert aliyun.rpc_signature("GET", ALIYUN_DOC_PARAMS, "testsecret") == ALIYUN_DOC_SIGNATURE
    query = aliyun.signed_query("GET", ALIYUN_DOC_PARAMS, "testsecret")
    assert query.endswith("&Signature=OLeaidS1JvxuMvnyHOwuJ%2BuX5qY%3D")


def test_aliyun_older_documented_example_with_timestamp_spelled_timestamp() -> None:
    # The 2016 edition of the same page spelled the parameter "TimeStamp" and published
    # CT9X0VtwR86fNWSnsc6v8YGOjuE= (quoted at https://developer.aliyun.com/ask/210168 and
    # still shown as the sample Signature in e.g. alibabacloud.com/help/doc-detail/131955).
    # Reproducing it too shows the sort is by exact (case-sensitive) parameter name.
    params = dict(ALIYUN_DOC_PARAMS)
    params["TimeStamp"] = params.pop("Timestamp")
    assert aliyun.rpc_signature("GET", params, "testsecret") == "CT9X0VtwR86fNWSnsc6v8YGOjuE="


def test_aliyun_sms_example_with_chinese_sign_name() -> None:
    # Aliyun SMS "HTTP协议及签名" example (parameters as quoted at
    # https://developer.aliyun.com/ask/278546): SendSms with AccessKeyId "testId",
    # secret "testSecret", SignName 阿里云短信测试专用; documented signature
    # zJDF+Lrzhj/ThnlvIToysFRq6t4= (zJDF%2BLrzhj%2FThnlvIToysFRq6t4%3D in the URL), the
    # value many public SDK test suites check against.
    params = {
        "AccessKeyId": "testId",
        "Action": "SendSms",
        "Format": "XML",
        "OutId": "123",
        "PhoneNumbers": "15300000001",
        "RegionId": "cn-hangzhou",
        "SignName": "阿里云短信测试专用",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
        "SignatureVersion": "1.0",
        "TemplateCode": "SMS_71390007",
        "TemplateParam": '{"customer":"test"}',
        "Timestamp": "2017-07-12T02:42:19Z",
        "Version": "2017-05-25",
    }
    assert aliyun.rpc_signature("GET", params, "testSecret") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    assert (
        "SignName=%E9%98%BF%E9%87%8C%E4%BA%91%E7%9F%AD%E4%BF%A1%E6%B5%8B%E8%AF%95%E4%B8%93%E7%94%A8"
        in aliyun.canonical_query(params)
    )


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        ("a b", "a%20b"),  # space is %20, never "+"
        ("*", "%2A"),  # form encoders leave "*" alone; Aliyun does not
        ("~", "~"),  # unreserved: stays literal (some encoders give %7E)
        ("-_.", "-_."),
        ("AZaz09", "AZaz09"),
        ("/", "%2F"),
        ("+", "%2B"),
        ("=&", "%3D%26"),
        ("2016-02-23T12:46:24Z", "2016-02-23T12%3A46%3A24Z"),
        ('{"a":"b"}', "%7B%22a%22%3A%22b%22%7D"),
        ("燃气", "%E7%87%83%E6%B0%94"),  # UTF-8 bytes, upper-case hex
        ("一楼厨房…", "%E4%B8%80%E6%A5%BC%E5%8E%A8%E6%88%BF%E2%80%A6"),
        ("", ""),
    ],
)
def test_aliyun_percent_encoding(raw: str, encoded: str) -> None:
    assert aliyun.percent_encode(raw) == encoded


def test_aliyun_percent_encoding_matches_the_documented_rule_for_every_byte() -> None:
    unreserved = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
    sample = "".join(chr(c) for c in range(1, 128)) + "中文 ①€😀"
    expected = "".join(chr(b) if b in unreserved else f"%{b:02X}" for b in sample.encode("utf-8"))
    assert aliyun.percent_encode(sample) == expected


def test_aliyun_canonical_query_sorts_and_ignores_signature() -> None:
    params = {"b": "2", "a": "x y", "Signature": "ignored", "C": "*"}
    assert aliyun.canonical_query(params) == "C=%2A&a=x%20y&b=2"


def test_aliyun_timestamp_is_utc_iso8601() -> None:
    assert aliyun.iso_timestamp(1456231584.9) == "2016-02-23T12:46:24Z"


# ----------------------------------------------------------------------------- Tencent

# Tencent Cloud API 3.0 "签名方法 v3" / "Signature v3" worked example: CVM
# DescribeInstances, POST https://cvm.tencentcloudapi.com, X-TC-Timestamp 1551113065,
# SecretId AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE, SecretKey
# Gu5t9xGARNpq86cd98joQYCN3EXAMPLE. The current page
# (https://cloud.tencent.com/document/api/213/30654) masks the keys; the editions that
# published them in full (e.g. https://cloud.tencent.com/document/api/400/37390,
# "接口鉴权 v3", 2020-03-16, and the English "Signature v3" page) give the payload hash
# 35e9c5b0..., the hashed canonical request 5ffe6a04... and the signature
# 72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168.
TC_SECRET_ID = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE"
TC_SECRET_KEY = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"
TC_TIMESTAMP = 1551113065
TC_PAYLOAD = (
    b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
)
TC_HEADERS = {"Content-Type": "application/json; charset=utf-8", "Host": "cvm.tencentcloudapi.com"}
TC_CANONICAL_REQUEST = (
    "POST\n/\n\n"
    "content-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\n"
    "content-type;host\n"
    "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
)
TC_STRING_TO_SIGN = (
    "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n"
    "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
)
TC_SIGNATURE = "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"


def test_tencent_documented_canonical_request() -> None:
    canonical, signed = tencent.canonical_request("POST", TC_HEADERS, TC_PAYLOAD)
    assert canonical == TC_CANONICAL_REQUEST
    assert signed == "content-type;host"


def test_tencent_documented_string_to_sign_uses_the_utc_date() -> None:
    # 1551113065 is 2019-02-26 00:44:25 in Beijing but 2019-02-25 in UTC: the doc's trap
    assert tencent.string_to_sign(TC_TIMESTAMP, "cvm", TC_CANONICAL_REQUEST) == TC_STRING_TO_SIGN


def test_tencent_documented_signature_and_authorization() -> None:
    assert tencent.tc3_signature(TC_SECRET_KEY, TC_TIMESTAMP, "cvm", TC_STRING_TO_SIGN) == (
        TC_SIGNATURE
    )
    assert tencent.tc3_authorization(
        TC_SECRET_ID, TC_SECRET_KEY, "cvm", TC_TIMESTAMP, TC_HEADERS, TC_PAYLOAD
    ) == (
        "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/"
        f"tc3_request, SignedHeaders=content-type;host, Signature={TC_SIGNATURE}"
    )


def test_tencent_signed_headers_are_sorted_and_lower_cased() -> None:
    headers = {"X-TC-Action": "SendSms", "Host": "sms.tencentcloudapi.com ", **TC_HEADERS}
    headers["Host"] = " SMS.tencentcloudapi.com "
    canonical, signed = tencent.canonical_request("post", headers, b"{}")
    assert signed == "content-type;host;x-tc-action"
    assert "host:sms.tencentcloudapi.com\nx-tc-action:sendsms\n" in canonical
    assert canonical.startswith("POST\n/\n\n")


# ----------------------------------------------------------------------------- DingTalk

DT_SECRET = "SEC0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd"
DT_TIMESTAMP = 1764000000000
# Computed independently with OpenSSL, following DingTalk's documented algorithm:
#   printf '%s\n%s' 1764000000000 "$SECRET" | openssl dgst -sha256 -hmac "$SECRET" -binary
#   | base64
# It contains "+" and "=", so the URL-encoding step is exercised too.
DT_SIGN_BASE64 = "HWRxw1Ga13qWACx8ZBljO6ZZON+11IFmrALvsIU+vMo="


def test_dingtalk_sign_matches_an_independent_openssl_computation() -> None:
    sign = dingtalk.dingtalk_sign(DT_SECRET, DT_TIMESTAMP)
    assert sign == "HWRxw1Ga13qWACx8ZBljO6ZZON%2B11IFmrALvsIU%2BvMo%3D"
    assert unquote_plus(sign) == DT_SIGN_BASE64


def test_dingtalk_sign_follows_the_documented_recipe() -> None:
    # the doc's Python sample: hmac(secret, f"{timestamp}\n{secret}", sha256), b64, quote_plus
    secret, ts = "this is secret", 1577262236757
    digest = hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()
    assert unquote_plus(dingtalk.dingtalk_sign(secret, ts)) == base64.b64encode(digest).decode()


def test_dingtalk_signed_url_appends_to_the_access_token() -> None:
    url = dingtalk.signed_url("https://x/robot/send?access_token=abc", DT_SECRET, DT_TIMESTAMP)
    assert url == (
        "https://x/robot/send?access_token=abc&timestamp=1764000000000"
        "&sign=HWRxw1Ga13qWACx8ZBljO6ZZON%2B11IFmrALvsIU%2BvMo%3D"
    )
    assert dingtalk.signed_url("https://x/hook", "s", 1).startswith("https://x/hook?timestamp=1&")
