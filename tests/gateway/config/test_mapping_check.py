"""`safety-gateway check` on payload mappings (issue 13): every error with its path. Run in
the test's process (the console script itself: tests/gateway/config/test_cli_check.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.cli.main import main

SITE = """\
sites:
  - id: site-a
    name: 城区幸福养老服务中心
    kind: elderly_care
    devices:
      - {id: gas-4g, type: gas_detector, location: 二楼厨房, codec: generic_4g_gas}
      - {id: gas-own, type: gas_detector, location: 三楼厨房, codec: own_gas}
"""


@dataclass
class Result:
    returncode: int
    stderr: str


@pytest.fixture
def check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Callable[[str], Result]:
    def run(text: str) -> Result:
        path = tmp_path / "gateway.yaml"
        path.write_text(text, encoding="utf-8")
        code = main(["check", "-c", str(path)])
        return Result(code, capsys.readouterr().err)

    return run


def test_mapping_errors_are_reported_with_their_paths(
    tmp_path: Path, check: Callable[[str], Result]
) -> None:
    # A mapping written in the configuration: pydantic's paths into `mappings`.
    inline = """\
gateway: {id: gw-1}
mappings:
  - name: own_gas
    vendor: 自有
    model: X1
    source: the vendor's protocol sheet v2
    device_type: gas_detector
    time: {path: ts, format: DD.MM.YYYY}
    quantities:
      - {path: d.gas, quantity: methane}
      - {path: "d..co", quantity: co_ppm}
"""
    result = check(inline + SITE)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert any(line.startswith("mappings[0].time.format: ") for line in lines), lines
    assert "mappings[0].quantities[0]: unknown quantity 'methane'" in lines
    assert any(line.startswith("mappings[0].quantities[1]: bad path 'd..co'") for line in lines)

    # Fixed, but a file of `gateway.mapping_dirs` is broken and a device names the wrong kind.
    own = tmp_path / "mappings"
    own.mkdir()
    (own / "broken.yaml").write_text(
        "name: broken\nvendor: v\nmodel: m\nsource: unverified, a test\n"
        "device_type: gas_detector\nevents:\n  - {path: e, values: {'1': boom}}\n",
        encoding="utf-8",
    )
    fixed = inline.replace("DD.MM.YYYY", "epoch_s").replace("methane", "lel")
    fixed = fixed.replace("d..co", "d.co").replace("co_ppm", "temp_c")
    fixed = fixed.replace("gateway: {id: gw-1}", f"gateway: {{id: gw-1, mapping_dirs: [{own}]}}")
    result = check(fixed + SITE)
    assert result.returncode == 2
    assert "gateway.mapping_dirs: " in result.stderr
    assert f"{own / 'broken.yaml'}:" in result.stderr
    assert "  events.0.values.1: " in result.stderr

    (own / "broken.yaml").unlink()
    wrong = (fixed + SITE).replace(
        "codec: generic_4g_gas}",
        "codec: generic_4g_gas, transport: modbus,"
        " modbus: {host: 10.0.0.9, profile: igd_toc_635_plus}}",
    )
    wrong = wrong.replace("codec: own_gas", "codec: nobodys_gas")
    result = check(wrong)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert "sites[0].devices[0].codec: only mqtt devices have a codec, not modbus" in lines
    assert any(
        line.startswith("sites[0].devices[1].codec: unknown codec 'nobodys_gas' (known: native,")
        for line in lines
    ), lines

    # All well: valid.
    result = check(fixed + SITE)
    assert result.returncode == 0, result.stderr
