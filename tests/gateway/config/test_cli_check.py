"""`safety-gateway check -c FILE`, run as the real console script in a subprocess."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

DEMO_SITE = Path(__file__).resolve().parents[3] / "gateway" / "cli" / "demo_site.yaml"

VALID = """\
gateway: {id: gw-1}
sites:
  - id: site-a
    name: 城区幸福养老服务中心
    kind: elderly_care
    devices:
      - {id: gas-1, type: gas_detector, location: 一楼厨房, shutoff_valve: valve-1}
      - {id: valve-1, type: gas_valve, location: 一楼厨房}
      - {id: efm-1, type: electrical_fire_monitor, location: 配电室,
         thresholds: {residual_current: {alarm: 0.3 A}}}
"""


Check = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def check(run_cli: Callable[..., subprocess.CompletedProcess[str]]) -> Check:
    """`safety-gateway check -c PATH` (marked `process` by the `run_cli` fixture)."""

    def run(path: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return run_cli("check", "-c", str(path), timeout=60, env=env)

    return run


def write(tmp_path: Path, text: str, name: str = "gateway.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def assert_no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr, result.stderr


def test_valid_file_exits_0(tmp_path: Path, check: Check) -> None:
    path = write(tmp_path, VALID)
    result = check(path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{path}: valid (1 sites, 3 devices)"
    assert result.stderr == ""


def test_demo_site_is_valid(check: Check) -> None:
    result = check(DEMO_SITE)
    assert result.returncode == 0, result.stderr
    assert "valid (1 sites, 5 devices)" in result.stdout


def test_dangling_shutoff_valve_exits_2_with_its_path(tmp_path: Path, check: Check) -> None:
    text = (
        VALID + "      - {id: gas-2, type: gas_detector, location: 二楼, shutoff_valve: valve-x}\n"
    )
    text = text.replace(
        "      - {id: efm-1, type: electrical_fire_monitor, location: 配电室,\n"
        "         thresholds: {residual_current: {alarm: 0.3 A}}}\n",
        "",
    )
    path = write(tmp_path, text)
    result = check(path)
    assert result.returncode == 2
    assert_no_traceback(result)
    lines = result.stderr.splitlines()
    assert "sites[0].devices[2].shutoff_valve: unknown device 'valve-x'" in lines
    assert lines[-1] == f"{path}: 1 problem(s)"
    assert "valid" not in result.stdout


def test_every_problem_printed_with_its_path(tmp_path: Path, check: Check) -> None:
    text = """\
gateway: {id: gw-1, timezone: Mars/Base}
http: {host: 0.0.0.0}
sites:
  - id: site-a
    name: A
    kind: elderly_care
    devices:
      - {id: gas-1, type: gas_detector, location: kitchen, shutoff_valve: valve-x}
      - {id: efm-1, type: electrical_fire_monitor, location: room,
         thresholds: {residual_current: {alarm: 300 kg}}}
      - {id: efm-1, type: teapot, location: room}
"""
    path = write(tmp_path, text)
    result = check(path)
    assert result.returncode == 2
    assert_no_traceback(result)
    lines = result.stderr.splitlines()
    expected = [
        "gateway.timezone: unknown time zone 'Mars/Base'",
        "sites[0].devices[1].thresholds.residual_current.alarm: unit 'kg'",
        "sites[0].devices[2].type: ",
        "sites[0].devices[2].id: duplicate device id 'efm-1' in site 'site-a' "
        "(first at sites[0].devices[1])",
        "sites[0].devices[0].shutoff_valve: unknown device 'valve-x'",
    ]
    for prefix in expected:
        assert any(line.startswith(prefix) for line in lines), (prefix, lines)
    assert lines[-1] == f"{path}: {len(expected)} problem(s)"


def test_cross_checks_after_a_valid_shape(tmp_path: Path, check: Check) -> None:
    text = VALID.replace("gateway: {id: gw-1}", "gateway: {id: gw-1}\nhttp: {host: 0.0.0.0}")
    text = text.replace("alarm: 0.3 A", "deadband: 0.3 A")
    result = check(write(tmp_path, text))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert any(line.startswith("http.host: binding to 0.0.0.0") for line in lines), lines
    assert any(
        line.startswith("sites[0].devices[2].thresholds.residual_current: ") for line in lines
    ), lines


def test_nonexistent_file_exits_2_with_a_clear_message(tmp_path: Path, check: Check) -> None:
    path = tmp_path / "no-such.yaml"
    result = check(path)
    assert result.returncode == 2
    assert_no_traceback(result)
    assert f"cannot read {path}: No such file or directory" in result.stderr


def test_directory_instead_of_file_exits_2(tmp_path: Path, check: Check) -> None:
    result = check(tmp_path)
    assert result.returncode == 2
    assert_no_traceback(result)
    assert f"cannot read {tmp_path}" in result.stderr


def test_invalid_yaml_exits_2(tmp_path: Path, check: Check) -> None:
    path = write(tmp_path, "gateway: {id: gw-1\nsites: [\n")
    result = check(path)
    assert result.returncode == 2
    assert_no_traceback(result)
    assert f"{path}: not valid YAML" in result.stderr


def test_duplicate_key_exits_2_with_line_number(tmp_path: Path, check: Check) -> None:
    text = VALID.replace("    kind: elderly_care\n", "    kind: elderly_care\n    kind: other\n")
    result = check(write(tmp_path, text))
    assert result.returncode == 2
    assert_no_traceback(result)
    assert "duplicate key 'kind' (line 6)" in result.stderr


def test_file_not_utf8_exits_2(tmp_path: Path, check: Check) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_bytes(VALID.encode("gb18030"))
    result = check(path)
    assert result.returncode == 2
    assert_no_traceback(result)
    assert str(path) in result.stderr


def test_empty_file_exits_2(tmp_path: Path, check: Check) -> None:
    result = check(write(tmp_path, ""))
    assert result.returncode == 2
    assert_no_traceback(result)
    assert "problem(s)" in result.stderr


def test_missing_secret_is_a_warning_not_an_error(tmp_path: Path, check: Check) -> None:
    text = VALID.replace(
        "gateway: {id: gw-1}",
        "gateway: {id: gw-1}\n"
        "http:\n  tokens: [{name: a, token_env: SG_CLI_TEST_TOKEN, role: admin}]",
    )
    env = {k: v for k, v in os.environ.items() if k != "SG_CLI_TEST_TOKEN"}
    result = check(write(tmp_path, text), env=env)
    assert result.returncode == 0, result.stderr
    assert (
        "warning: http.tokens[0].token_env: environment variable SG_CLI_TEST_TOKEN is not set"
        in result.stderr.splitlines()
    )
    assert "valid" in result.stdout

    result = check(write(tmp_path, text), env={**env, "SG_CLI_TEST_TOKEN": "x"})
    assert result.returncode == 0
    assert result.stderr == ""


@pytest.mark.parametrize("args", [["check"], []])
def test_usage_errors_exit_2(args: list[str], run_cli: Check) -> None:
    result = run_cli(*args, timeout=60)
    assert result.returncode == 2
    assert "usage: safety-gateway" in result.stderr
