"""`safety-gateway report daily`: the report files from the command line."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import date
from pathlib import Path

import aiosqlite

from gateway.alarms.history import ReadOnlyHistory
from gateway.config.inventory import Inventory
from gateway.config.loading import load_config
from gateway.report.model import DailyReport
from gateway.report.reader import build_daily_report
from gateway.report.render_html import render_html
from gateway.report.render_json import report_json
from gateway.report.render_xlsx import render_xlsx


async def write_report_files(
    config_path: Path, day: date, out_dir: Path, site: str | None
) -> list[Path]:
    """`safety-gateway report daily`: the report for `day` as <stem>.json, .html, .xlsx.

    Reads the store of the config's data_dir read-only (the gateway may be running or not;
    "offline now" then comes from the store's alarms). Raises ConfigError,
    FileNotFoundError (no store yet), UnknownSite or PeriodNotStarted.
    """
    config = load_config(config_path)
    db_path = Path(config.gateway.data_dir) / "alarms.sqlite3"
    if not db_path.exists():
        raise FileNotFoundError(f"no alarm store at {db_path}")
    conn = await aiosqlite.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        report = await build_daily_report(
            ReadOnlyHistory(conn), config, Inventory(config), None, day, site, time.time()
        )
    finally:
        await conn.close()
    return await asyncio.to_thread(_write_files, report, out_dir)


def _write_files(report: DailyReport, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{report.stem}.{ext}" for ext in ("json", "html", "xlsx")]
    paths[0].write_text(
        json.dumps(report_json(report), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    paths[1].write_text(render_html(report), encoding="utf-8")
    paths[2].write_bytes(render_xlsx(report))
    return paths
