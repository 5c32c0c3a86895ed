"""The `daily_checks` and `duty` sections: the seeds' checklist by default, and a section
that cannot work refused at load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.config.loading import ConfigError, parse_config
from tests.support.overview import two_sites


def _with(tmp_path: Path, **sections: Any) -> dict[str, Any]:
    data = two_sites(tmp_path, 1883)
    data.update(sections)
    return data


def test_the_defaults_are_the_seeds(tmp_path: Path) -> None:
    config = parse_config(_with(tmp_path))
    checks = config.daily_checks
    assert (checks.due, checks.remind_at, config.duty.per_shift) == ("15:00", "14:30", 2)
    assert [i.label for i in checks.items] == [
        "燃气设施", "电气线路与设备", "消防通道与灭火器材",
        "取暖与燃煤设施", "厨房", "重点人员走访",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("section", "error"),
    [
        ({"due": "14:00", "remind_at": "14:30"}, "remind_at must be before due"),
        ({"items": [{"id": "gas", "label": "燃气"}, {"id": "gas", "label": "燃气2"}]}, "duplicate"),
        ({"items": []}, "at least 1"),
        ({"due": "25:00"}, "daily_checks.due"),
        ({"when": "15:00"}, "daily_checks.when"),
    ],
)
def test_a_section_that_cannot_work_is_refused(
    tmp_path: Path, section: dict[str, Any], error: str
) -> None:
    with pytest.raises(ConfigError, match=error):
        parse_config(_with(tmp_path, daily_checks=section))
    with pytest.raises(ConfigError):
        parse_config(_with(tmp_path, duty={"per_shift": 0}))
