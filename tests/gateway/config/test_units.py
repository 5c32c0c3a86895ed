"""Measures with their unit: `"300 mA"`, `"0.3 A"`, `"5 min"`; a unit that does not measure the
quantity is refused, never guessed."""

from __future__ import annotations

import math

import pytest

from gateway.config.units import parse_measure


@pytest.mark.parametrize(
    ("quantity", "raw", "expected"),
    [
        ("residual_ma", "300 mA", 300.0),
        ("residual_ma", "0.3 A", 300.0),
        ("residual_ma", "0.3A", 300.0),
        ("residual_ma", 300, 300.0),
        ("residual_ma", "300", 300.0),
        ("current_a", "63 A", 63.0),
        ("current_a", "500 mA", 0.5),
        ("duration", "5 min", 300.0),
        ("duration", "2 min", 120.0),
        ("duration", "1500 ms", 1.5),
        ("duration", "1 h", 3600.0),
        ("duration", " 10 s ", 10.0),
        ("duration", "1e1 s", 10.0),
        ("duration", ".5 s", 0.5),
        ("lel", "10 %LEL", 10.0),
        ("lel", "10 %lel", 10.0),
        ("co_ppm", "50 ppm", 50.0),
        ("temp_c", "70 °C", 70.0),
        ("temp_c", "-10 C", -10.0),
        ("temp_c", "70 ℃", 70.0),
    ],
)
def test_parse_measure_good(quantity: str, raw: object, expected: float) -> None:
    assert parse_measure(quantity, raw) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("quantity", "raw"),
    [
        ("residual_ma", "300 kg"),
        ("lel", "20 ppm"),
        ("co_ppm", "50 %LEL"),
        ("duration", "5 mA"),
        ("current_a", "10 s"),
        ("residual_ma", "lots"),
        ("residual_ma", "nan"),
        ("residual_ma", "inf mA"),
        ("residual_ma", "1e999 mA"),
        ("residual_ma", math.nan),
        ("residual_ma", math.inf),
        ("residual_ma", True),
        ("residual_ma", None),
        ("residual_ma", [300]),
        ("residual_ma", ""),
        pytest.param("residual_ma", 10**400, id="integer-too-large-for-a-float"),
    ],
)
def test_parse_measure_bad(quantity: str, raw: object) -> None:
    with pytest.raises(ValueError):
        parse_measure(quantity, raw)
