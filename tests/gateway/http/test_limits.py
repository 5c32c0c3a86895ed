"""What an attacker's requests get (issue 10): a body over 64 KiB is refused (413) before it
is read, a time out of range is a 422 (not a 500), and a resource of a site the caller may
not read is unknown (404) whether read or acted on, with nothing naming that site."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import httpx
import pytest

from gateway.config.loading import parse_config
from gateway.http.app import create_api
from gateway.http.limits import MAX_BODY_BYTES
from tests.conftest import Mosquitto, Probe, free_port, running_gateway, served
from tests.support.overview import two_sites

ADMIN = {"authorization": "Bearer admin-secret"}
DUTY = {"authorization": "Bearer duty-secret"}  # xingfu only
DUTY_TWO = {"authorization": "Bearer two-secret"}  # xingfu and heping
MiB = 1 << 20


def _config(tmp_path: Path, broker: Mosquitto, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("TOK_ADMIN", "admin-secret")
    monkeypatch.setenv("TOK_DUTY", "duty-secret")
    monkeypatch.setenv("TOK_TWO", "two-secret")
    button = {"id": "btn-1", "type": "alarm_button", "location": "值班室"}
    # btn-1 is in all three sites; anning's is the only one a duty token cannot read.
    data = two_sites(tmp_path / "data", broker.port, extra_devices=[button])
    data["sites"].append(
        {"id": "heping", "name": "和平敬老院", "kind": "elderly_care", "devices": [button]}
    )
    data["http"] = {
        "host": "127.0.0.1",
        "port": 8080,
        "tokens": [
            {"name": "admin", "token_env": "TOK_ADMIN", "role": "admin"},
            {"name": "duty-xingfu", "token_env": "TOK_DUTY", "role": "duty", "sites": ["xingfu"]},
            {
                "name": "duty-two",
                "token_env": "TOK_TWO",
                "role": "duty",
                "sites": ["xingfu", "heping"],
            },
        ],
    }
    return parse_config(data)


# ============================================================== another site is unknown
@pytest.mark.broker
async def test_another_sites_resources_are_unknown_read_or_acted_on(
    tmp_path: Path, broker: Mosquitto, probe: Probe, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_gateway(_config(tmp_path, broker, monkeypatch)) as rg:
        api = rg.api
        await probe.event("btn-1", "pressed", site="anning")
        alarm = await probe.wait_for("anning/alarms", lambda m: m["type"] == "fire_button")
        theirs = alarm["id"]
        assert (await api.get(f"/api/alarms/{theirs}", headers=ADMIN)).status_code == 200

        # The alarm: read, acknowledged, closed; each answers as for an alarm that does not
        # exist (it was a 403 naming anning on ack).
        calls = [
            ("GET", "/api/alarms/{}", None),
            ("POST", "/api/alarms/{}/ack", {"by": "王值班"}),
            ("POST", "/api/alarms/{}/close", {"by": "王值班", "disposition": "real"}),
        ]
        for method, path, body in calls:
            for alarm_id in (theirs, "no-such-alarm"):
                r = await api.request(method, path.format(alarm_id), json=body, headers=DUTY)
                assert (r.status_code, r.json()) == (
                    404,
                    {"error": "unknown alarm", "detail": alarm_id},
                ), (method, path, alarm_id)
                assert "anning" not in r.text

        # A device of anning only (gas-1): commanded, put in and out of maintenance, read.
        device_calls = [
            ("GET", "/api/devices/{}", None),
            ("POST", "/api/devices/{}/commands", {"by": "王值班", "cmd": "close_valve"}),
            ("PUT", "/api/devices/{}/maintenance", {"by": "王值班", "minutes": 30}),
            ("DELETE", "/api/devices/{}/maintenance", None),
        ]
        for method, path, body in device_calls:
            for device in ("gas-1", "no-such-device"):
                r = await api.request(method, path.format(device), json=body, headers=DUTY)
                assert (r.status_code, r.json()) == (
                    404,
                    {"error": "unknown device", "detail": device},
                ), (method, path, device)
            r = await api.request(
                method, path.format("gas-1") + "?site=anning", json=body, headers=DUTY
            )
            assert r.status_code == 404 and "anning" not in r.text, (method, path)
        for site in ("anning", "nowhere"):
            r = await api.get(f"/api/devices?site={site}", headers=DUTY)
            assert (r.status_code, r.json()) == (404, {"error": "unknown site", "detail": site})

        # An id used in several sites is ambiguous only among the sites the caller reads.
        r = await api.get("/api/devices/btn-1", headers=DUTY)
        assert r.status_code == 200 and r.json()["site"] == "xingfu"
        r = await api.get("/api/devices/btn-1", headers=DUTY_TWO)
        assert r.status_code == 400
        assert r.json()["detail"]["sites"] == ["xingfu", "heping"]
        assert "anning" not in r.text
        r = await api.get("/api/devices/btn-1", headers=ADMIN)
        assert r.json()["detail"]["sites"] == ["xingfu", "anning", "heping"]
        r = await api.put(
            "/api/devices/btn-1/maintenance", json={"by": "王值班", "minutes": 30}, headers=DUTY
        )
        assert r.status_code == 200 and r.json()["site"] == "xingfu"

        # The owner of the site still acts on it.
        r = await api.post(f"/api/alarms/{theirs}/ack", json={"by": "赵院长"}, headers=ADMIN)
        assert r.status_code == 200


# ===================================================================== times out of range
@pytest.mark.broker
async def test_times_out_of_range_are_422(
    tmp_path: Path, broker: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_gateway(_config(tmp_path, broker, monkeypatch)) as rg:
        api = rg.api
        far = ("0001-01-01T00:00+14:00", "9999-12-31T23:59-14:00", "1969-12-31T23:59+00:00")
        for name in ("since", "until"):
            for t in far:
                r = await api.get("/api/alarms", params={name: t}, headers=ADMIN)
                assert (r.status_code, r.json()) == (
                    422,
                    {
                        "error": "invalid request",
                        "detail": f"{name}: out of range (years 1970 to 9998): {t!r}",
                    },
                ), (name, t)
        for t in far:
            r = await api.put(
                "/api/devices/gas-kitchen/maintenance",
                json={"by": "王值班", "until": t},
                headers=ADMIN,
            )
            assert r.status_code == 422 and "until: out of range" in r.json()["detail"], t
        r = await api.get("/api/alarms", params={"since": "2026-11-24T08:00+08:00"}, headers=ADMIN)
        assert r.status_code == 200


# ============================================================================ body limit
def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


class BigBody:
    """`size` bytes in 1 MiB chunks, made as they are sent; records the test process's
    largest resident size meanwhile (the server runs in this process)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.sent = 0
        self.peak_mib = 0.0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunk = b"{" + b" " * (MiB - 1)
        while self.sent < self.size:
            self.peak_mib = max(self.peak_mib, _rss_mib())
            self.sent += len(chunk)
            yield chunk


@pytest.mark.broker
async def test_bodies_over_64_kib_are_refused_unread(
    tmp_path: Path, broker: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    size = 150 * MiB
    async with (
        running_gateway(_config(tmp_path, broker, monkeypatch)) as rg,
        served(create_api(rg.gw), free_port()) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client,
    ):
        before = _rss_mib()
        path = "/api/devices/gas-kitchen/commands"
        too_large = {"error": "request body too large", "detail": "at most 65536 bytes"}
        cases = [
            (ADMIN, 413, too_large),
            ({}, 401, {"error": "authentication required", "detail": ANY}),
            ({"authorization": "Bearer x"}, 401, {"error": "invalid token", "detail": None}),
        ]
        for headers, status, answer in cases:
            declared = BigBody(size)
            r = await client.post(
                path, content=declared, headers=headers | {"content-length": str(size)}
            )
            assert (r.status_code, r.json()) == (status, answer), headers
            chunked = BigBody(size)
            r2 = await client.post(path, content=chunked, headers=headers)
            assert "content-length" not in r2.request.headers
            assert (r2.status_code, r2.json()) == (status, answer), headers
            # Had the server held the body, this process would have grown by 150 MiB.
            for body in (declared, chunked):
                assert body.sent == size
                assert body.peak_mib - before < 32, (body.peak_mib, before)

        # Up to the limit, a body is read as before (and the connection still serves).
        note = "x" * 2000
        r = await client.put(
            "/api/devices/gas-kitchen/maintenance",
            json={"by": "王值班", "minutes": 30, "note": note},
            headers=ADMIN,
        )
        assert r.status_code == 200
        r = await client.put(
            "/api/devices/gas-kitchen/maintenance",
            content=b" " * (MAX_BODY_BYTES - 50) + b'{"by": "a", "minutes": 5}',
            headers=ADMIN | {"content-type": "application/json"},
        )
        assert r.status_code == 200, r.text
