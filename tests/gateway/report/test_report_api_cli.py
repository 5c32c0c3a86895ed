"""The daily report over the API (JSON, HTML, XLSX; auth) and from the CLI's files."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import openpyxl
import pytest
import yaml

from gateway.alarms.store import AlarmStore
from gateway.app.supervisor import Gateway
from gateway.config.loading import parse_config
from gateway.http.app import create_api
from gateway.http.reports import register_report_routes
from gateway.report import (
    XLSX_MIME,
    UnknownSite,
    write_report_files,
)
from tests.support.report import DAY, NOW, XINGFU, Scenario, config_data, populate

# ------------------------------------------------------------------------------ API


@pytest.fixture
async def api(
    store: AlarmStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    """The real API of a gateway whose store holds the scenario (no broker needed: the
    gateway's tasks are not started, only its store is opened)."""
    monkeypatch.setenv("T_DUTY", "duty-secret")
    monkeypatch.setenv("T_BUREAU", "bureau-secret")
    data = config_data(tmp_path / "data")
    data["http"] = {
        "tokens": [
            {"name": "duty-room", "token_env": "T_DUTY", "role": "duty", "sites": ["xingfu"]},
            {"name": "bureau", "token_env": "T_BUREAU", "role": "bureau"},
        ]
    }
    gw = Gateway(parse_config(data), clock=lambda: NOW)
    await gw.store.open()  # a second connection to the scenario's database
    try:
        app = create_api(gw)
        register_report_routes(app)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client
    finally:
        await gw.store.close()


BUREAU = {"authorization": "Bearer bureau-secret"}
DUTY = {"authorization": "Bearer duty-secret"}


async def test_api_serves_the_three_formats(api: httpx.AsyncClient) -> None:
    r = await api.get("/api/reports/daily", headers=BUREAU)  # default: the latest complete day
    assert r.status_code == 200, r.text
    data = r.json()
    assert (data["scope"], data["date"]) == ("county", "2026-11-24")
    assert data["device_status_source"] == "engine"
    assert data["totals"]["raised"] == 7

    r = await api.get("/api/reports/daily?date=2026-11-24&site=xingfu&format=html", headers=DUTY)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert f"{XINGFU} 安全日报 2026-11-24" in r.text

    r = await api.get("/api/reports/daily?date=2026-11-24&format=xlsx", headers=BUREAU)
    assert r.status_code == 200 and r.headers["content-type"] == XLSX_MIME
    assert 'filename="daily-report-2026-11-24-county.xlsx"' in r.headers["content-disposition"]
    wb = openpyxl.load_workbook(io.BytesIO(r.content))
    assert wb.sheetnames[0] == "汇总"

    r = await api.get("/api/reports/daily?date=2026-11-23&site=xingfu", headers=DUTY)
    assert r.status_code == 200 and r.json()["period"]["end"] == "2026-11-23T14:30:00.000+08:00"


async def test_api_errors(api: httpx.AsyncClient) -> None:
    r = await api.get("/api/reports/daily")
    assert r.status_code == 401
    r = await api.get("/api/reports/daily?site=nowhere", headers=BUREAU)
    assert (r.status_code, r.json()) == (404, {"error": "unknown site", "detail": "nowhere"})
    r = await api.get("/api/reports/daily?site=nuanquan", headers=DUTY)  # not the duty's site
    assert r.status_code == 404
    r = await api.get("/api/reports/daily", headers=DUTY)  # the county needs every site
    assert r.status_code == 403 and r.json()["error"] == "not allowed"
    for bad in ("2026-13-01", "24.11.2026", "20261124", "yesterday"):
        r = await api.get(f"/api/reports/daily?date={bad}", headers=BUREAU)
        assert r.status_code == 422 and r.json()["error"] == "invalid request", bad
    r = await api.get("/api/reports/daily?date=2026-12-24", headers=BUREAU)  # not begun
    assert r.status_code == 422
    r = await api.get("/api/reports/daily?format=pdf", headers=BUREAU)
    assert r.status_code == 422
    # Days whose period cannot be computed (was a 500 for 0001-01-01): a 422 saying the range.
    for far in ("0001-01-01", "1969-12-31", "9999-12-31"):
        r = await api.get(f"/api/reports/daily?date={far}&site=xingfu", headers=DUTY)
        assert r.status_code == 422, far
        assert r.json() == {
            "error": "invalid request",
            "detail": f"date: out of range (1970-01-02 to 9998-12-31): {far}",
        }


# ------------------------------------------------------------------------------ CLI


async def test_cli_writes_json_html_xlsx(store: AlarmStore, tmp_path: Path) -> None:
    config_path = tmp_path / "gateway.yaml"
    config_path.write_text(
        yaml.safe_dump(config_data(tmp_path / "data"), allow_unicode=True), encoding="utf-8"
    )
    out = tmp_path / "out"
    # While the gateway (here: the fixture's store) has the database open.
    paths = await write_report_files(config_path, DAY, out, "xingfu")
    assert [p.name for p in paths] == [
        "daily-report-2026-11-24-xingfu.json",
        "daily-report-2026-11-24-xingfu.html",
        "daily-report-2026-11-24-xingfu.xlsx",
    ]
    data = json.loads(paths[0].read_text(encoding="utf-8"))
    assert data["title"] == f"{XINGFU} 安全日报 2026-11-24"
    assert data["sites"][0]["alarms"]["raised"] == 6
    assert data["sites"][0]["availability"]["online_rate"] == 0.875
    assert f"<h1>{XINGFU} 安全日报 2026-11-24</h1>" in paths[1].read_text(encoding="utf-8")
    assert openpyxl.load_workbook(paths[2]).sheetnames[-1] == "隐患"

    county = await write_report_files(config_path, DAY, out, None)
    assert county[0].name == "daily-report-2026-11-24-county.json"
    assert json.loads(county[0].read_text(encoding="utf-8"))["totals"]["sites"] == 2
    with pytest.raises(UnknownSite):
        await write_report_files(config_path, DAY, out, "nowhere")


async def test_cli_reads_a_store_no_gateway_has_open(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    st = AlarmStore(data_dir / "alarms.sqlite3")
    await st.open()
    writer = asyncio.create_task(st.run_writer())
    populate(Scenario(st))
    assert await st.flush(5)
    st.stop()
    await writer
    await st.close()
    config_path = tmp_path / "gateway.yaml"
    config_path.write_text(yaml.safe_dump(config_data(data_dir), allow_unicode=True), "utf-8")
    paths = await write_report_files(config_path, DAY, tmp_path / "out", None)
    data = json.loads(paths[0].read_text(encoding="utf-8"))
    assert data["totals"]["raised"] == 7
    assert not (data_dir / "alarms.sqlite3-journal").exists()


async def test_cli_without_a_store(tmp_path: Path) -> None:
    config_path = tmp_path / "gateway.yaml"
    config_path.write_text(
        yaml.safe_dump(config_data(tmp_path / "nothing"), allow_unicode=True), "utf-8"
    )
    with pytest.raises(FileNotFoundError):
        await write_report_files(config_path, DAY, tmp_path / "out", None)


@pytest.mark.parametrize("day", ["0001-01-01", "1970-01-01", "9999-12-31"])
def test_cli_refuses_a_day_out_of_range(
    day: str, run_cli: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    result = run_cli("report", "daily", "-c", str(tmp_path / "gateway.yaml"), "--date", day)
    assert result.returncode == 2, result.stderr
    assert f"--date: out of range (1970-01-02 to 9998-12-31): {day}" in result.stderr
    assert "Traceback" not in result.stderr
