"""`GET /api/audit` by role: admins read everything, bureau staff the rows of the sites they
may read (no site-less rows), duty officers nothing; filters, limits, bad input, and the
XLSX read back with openpyxl. The gateway is built but not started (no broker): the route
needs only its audit log, inventory and clock face."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest

from gateway.app.supervisor import Gateway
from gateway.audit import AuditEntry
from gateway.config.loading import parse_config
from gateway.http.app import create_api
from gateway.people.model import Person, Role
from gateway.report.model import XLSX_MIME
from tests.conftest import free_port
from tests.support.overview import two_sites

ADMIN = {"authorization": "Bearer admin-secret"}
BUREAU = {"authorization": "Bearer bureau-secret"}
BUREAU_XINGFU = {"authorization": ""}  # a bureau person of xingfu only: issued per test
DUTY = {"authorization": "Bearer duty-secret"}
T0 = 1_795_000_000.0  # 2026-11-18 19:06:40 in Shanghai


@pytest.fixture
async def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    for env, value in (("TOK_A", "admin"), ("TOK_B", "bureau"), ("TOK_D", "duty")):
        monkeypatch.setenv(env, f"{value}-secret")
    data = two_sites(tmp_path / "data", free_port())
    data["http"] = {
        "host": "127.0.0.1",
        "port": 8080,
        "tokens": [
            {"name": "admin", "token_env": "TOK_A", "role": "admin"},
            {"name": "bureau", "token_env": "TOK_B", "role": "bureau"},
            {"name": "duty", "token_env": "TOK_D", "role": "duty", "sites": ["xingfu"]},
        ],
    }
    gw = Gateway(parse_config(data))
    await gw.audit.open()
    gw.people.open()
    bureau_xingfu = Person("juxingfu", "局值班员", Role.BUREAU, frozenset({"xingfu"}))
    gw.people.add(bureau_xingfu, None, T0)
    _, secret = gw.people.issue_token("juxingfu", "test", "test", T0)
    BUREAU_XINGFU["authorization"] = f"Bearer {secret}"
    rows = [
        AuditEntry(T0 + 1, "wang", "王值班", "duty", "10.0.0.7", "alarm.ack", "xingfu", "a-1"),
        AuditEntry(T0 + 2, "zhao", "赵院长", "duty", "10.0.0.8", "alarm.close", "anning", "=1+1",
                   detail={"disposition": "false_alarm", "note": "=HYPERLINK(\"x\")"}),
        AuditEntry(T0 + 3, "li", "李管理", "admin", "10.0.0.9", "session.login"),
        AuditEntry(T0 + 4, "wang", "王值班", "duty", "10.0.0.7", "command.close_valve",
                   "xingfu", "valve-kitchen", "refused"),
        AuditEntry(T0 + 5, "system", "系统", "system", "signal", "config.reload"),
    ]  # fmt: skip
    for row in rows:
        await gw.audit.append(row)
    app = create_api(gw)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client
    finally:
        gw.people.close()
        await gw.audit.close()


async def _seqs(api: Any, headers: dict[str, str], query: str = "") -> list[int]:
    r = await api.get(f"/api/audit{query}", headers=headers)
    assert r.status_code == 200, r.text
    return [e["seq"] for e in r.json()["entries"]]


async def test_who_reads_what(api: Any) -> None:
    assert await _seqs(api, ADMIN) == [5, 4, 3, 2, 1]
    assert await _seqs(api, BUREAU) == [4, 2, 1]  # every site; no site-less rows
    assert await _seqs(api, BUREAU_XINGFU) == [4, 1]
    r = await api.get("/api/audit", headers=DUTY)
    assert (r.status_code, r.json()["error"]) == (403, "not allowed")
    assert (await api.get("/api/audit")).status_code == 401
    # A site the caller may not read is unknown, as one that does not exist.
    for site in ("anning", "nowhere"):
        r = await api.get(f"/api/audit?site={site}", headers=BUREAU_XINGFU)
        assert (r.status_code, r.json()) == (404, {"error": "unknown site", "detail": site})
    assert await _seqs(api, ADMIN, "?site=anning") == [2]


async def test_filters_and_the_row(api: Any) -> None:
    assert await _seqs(api, ADMIN, "?action=alarm.") == [2, 1]
    assert await _seqs(api, ADMIN, "?actor=wang") == [4, 1]
    since, until = "2026-11-18T19:06:42%2B08:00", "2026-11-18T11:06:44Z"
    assert await _seqs(api, ADMIN, f"?since={since}&until={until}") == [3, 2]
    r = await api.get("/api/audit?limit=2", headers=ADMIN)
    assert [e["seq"] for e in r.json()["entries"]] == [5, 4] and r.json()["truncated"]
    first = (await api.get("/api/audit?actor=wang&limit=1&action=command", headers=ADMIN)).json()
    entry = first["entries"][0]
    assert entry == {
        "seq": 4,
        "at": "2026-11-18T19:06:44.000+08:00",
        "actor": "wang",
        "actor_name": "王值班",
        "role": "duty",
        "source": "10.0.0.7",
        "action": "command.close_valve",
        "site": "xingfu",
        "target": "valve-kitchen",
        "result": "refused",
        "detail": None,
        "prev_hash": entry["prev_hash"],
        "hash": entry["hash"],
    }
    assert len(entry["hash"]) == 64


@pytest.mark.parametrize(
    "query",
    ["?limit=0", "?limit=10001", "?since=yesterday", "?until=2026-11-18T08:00", "?format=csv"],
)
async def test_bad_queries_are_422(api: Any, query: str) -> None:
    r = await api.get(f"/api/audit{query}", headers=ADMIN)
    assert (r.status_code, r.json()["error"]) == (422, "invalid request"), query


async def test_xlsx_reads_back(api: Any) -> None:
    r = await api.get("/api/audit?format=xlsx", headers=BUREAU)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == XLSX_MIME
    wb = openpyxl.load_workbook(io.BytesIO(r.content))
    assert wb.sheetnames == ["审计日志"]
    rows = list(wb["审计日志"].iter_rows(values_only=True))
    assert rows[0] == (
        "序号", "时间", "人员", "姓名", "角色", "来源地址", "操作", "单位", "对象", "结果", "详情",
    )  # fmt: skip
    assert [r[0] for r in rows[1:]] == [4, 2, 1]  # the bureau's rows only
    assert rows[1][:10] == (
        4, datetime(2026, 11, 18, 19, 6, 44), "wang", "王值班", "值班人员", "10.0.0.7",
        "关闭燃气阀", "xingfu", "valve-kitchen", "拒绝",
    )  # fmt: skip
    # Text that looks like a formula stays text.
    target = wb["审计日志"].cell(3, 9)
    assert (target.data_type, target.value) == ("s", "=1+1")
    assert wb["审计日志"].cell(3, 11).value == 'disposition: false_alarm；note: =HYPERLINK("x")'
