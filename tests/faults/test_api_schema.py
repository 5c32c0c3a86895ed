"""schemathesis against the gateway's own OpenAPI schema, with an admin token, on a gateway
process that has open alarms: no request, however odd, may get a 500. Bounded: a few
examples per operation here (`FAULTS_SCHEMATHESIS_EXAMPLES`, 300 in `make fuzz`)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import httpx
import pytest

from gateway.app.supervisor import Gateway
from gateway.config.loading import parse_config
from gateway.http.app import create_api
from tests.conftest import GatewayProcess, Mosquitto, Probe, write_config
from tests.faults.rig import ADMIN_TOKEN, health, process_config, wait

ALL_PHASES = ("examples", "coverage", "fuzzing", "stateful")
DUTY_TOKEN = "faults-duty-token-0123456789"
SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")


async def test_no_request_gets_a_server_error(
    tmp_path: Path,
    broker: Mosquitto,
    probe: Probe,
    gateway_process: GatewayProcess,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    examples = int(os.environ.get("FAULTS_SCHEMATHESIS_EXAMPLES", "5"))
    data, port = process_config(tmp_path, broker.port)
    # An institution's duty officer too: the admin may not submit a self-report or sign for
    # a notice, so only an institution's token reaches those routes' logic.
    monkeypatch.setenv("FAULTS_DUTY", DUTY_TOKEN)
    data["http"]["tokens"].append(
        {"name": "duty", "token_env": "FAULTS_DUTY", "role": "duty", "sites": ["xingfu"]}
    )
    cfg = write_config(tmp_path / "gateway.yaml", data)
    base = f"http://127.0.0.1:{port}"
    with gateway_process(cfg, port, tmp_path / "gateway.log") as proc:
        wait(lambda: health(base)["broker"]["connected"], 20, "link")
        await probe.event("btn-lobby", "pressed")
        await probe.telemetry("gas-kitchen", {"lel": 28.0})
        gas = await probe.wait_for("xingfu/alarms", lambda m: m["type"] == "gas_leak")
        # Path parameters that exist, so that requests reach more than the 404 of a lookup:
        # the closed loop's too (an incident and a hazard of the site, today's self-report).
        auth = {"authorization": f"Bearer {ADMIN_TOKEN}"}
        incident = httpx.post(
            f"{base}/api/incidents", json={"site": "xingfu", "title": "fuzz"}, headers=auth
        ).json()
        hazard = httpx.post(
            f"{base}/api/hazards",
            json={"site": "xingfu", "location": "厨房", "description": "软管老化",
                  "level": "general", "responsible": "李", "measure": "更换"},
            headers=auth,
        ).json()  # fmt: skip
        config = tmp_path / "schemathesis.toml"
        config.write_text(
            "[parameters]\n"
            f'"path.alarm_id" = "{gas["id"]}"\n'
            '"path.device_id" = "valve-kitchen"\n'
            '"path.site_id" = "xingfu"\n'
            f'"path.incident_id" = "{incident["id"]}"\n'
            f'"path.hazard_id" = {hazard["id"]}\n'
            f'"path.day" = "{date.today().isoformat()}"\n'
        )
        runs = [_schemathesis(base, config, ADMIN_TOKEN, examples, max(10, examples), tmp_path)]
        assert proc.poll() is None, "the gateway died under schemathesis"
        if examples >= 50:  # `make fuzz` only: the suite's budget has no room for a second run
            runs.append(
                _schemathesis(base, config, DUTY_TOKEN, examples, max(10, examples // 2), tmp_path)
            )
            assert proc.poll() is None, "the gateway died under schemathesis (duty)"
    for run in runs:
        assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "Traceback" not in (tmp_path / "gateway.log").read_text()


def _schemathesis(
    base: str, config: Path, token: str, examples: int, max_time: int, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    run = subprocess.run(
        [
            SCHEMATHESIS, "--config-file", str(config), "run", f"{base}/openapi.json",
            "--checks", "not_a_server_error",
            "--header", f"Authorization: Bearer {token}",
            "--max-examples", str(examples),
            "--max-time", str(max_time),
            "--phases", "coverage,fuzzing" if examples < 50 else ",".join(ALL_PHASES),
            "--seed", "1",
            "--workers", "1",
            "--request-timeout", "10",
            "--report", "junit",
            "--report-dir", str(tmp_path / "schemathesis"),
        ],
        capture_output=True, text=True, timeout=max_time + 120, cwd=tmp_path,
    )  # fmt: skip
    print(run.stdout[-3000:])
    return run


# The closed loop's routes (README "The closed loop"): schemathesis fuzzes only what the
# schema lists, so a route left out of it would go unfuzzed without anyone noticing.
CLOSED_LOOP = {
    ("get", "/api/incidents"), ("post", "/api/incidents"),
    ("get", "/api/incidents/{incident_id}"),
    ("post", "/api/incidents/{incident_id}/phone-report"),
    ("post", "/api/incidents/{incident_id}/written-report"),
    ("post", "/api/incidents/{incident_id}/follow-ups"),
    ("post", "/api/incidents/{incident_id}/close"), ("patch", "/api/hazards/{hazard_id}"),
    ("get", "/api/hazards"), ("post", "/api/hazards"), ("get", "/api/hazards/suggestions"),
    ("get", "/api/hazards/{hazard_id}"), ("post", "/api/hazards/{hazard_id}/transition"),
    ("get", "/api/notices"), ("post", "/api/notices"), ("get", "/api/notices/{notice_id}"),
    ("post", "/api/notices/{notice_id}/receipt"),
    ("put", "/api/sites/{site_id}/daily-checks/{day}"), ("get", "/api/daily-checks"),
    ("get", "/api/duty"), ("put", "/api/duty"), ("post", "/api/duty/handover"),
    ("get", "/api/overview"), ("get", "/api/overview/sites/{site_id}"),
}  # fmt: skip


def test_the_closed_loop_is_in_the_schema_the_fuzzer_reads(tmp_path: Path) -> None:
    data, _ = process_config(tmp_path, 1)
    schema = create_api(Gateway(parse_config(data))).openapi()
    listed = {(m, p) for p, ops in schema["paths"].items() for m in ops}
    assert CLOSED_LOOP - listed == set()
