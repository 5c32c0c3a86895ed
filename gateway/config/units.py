"""Measures written with their unit in the configuration: `"300 mA"`, `"0.3 A"`, `"5 min"`.

A bare number is taken in the canonical unit (DESIGN section 5). A unit that does not
measure the quantity (`"300 kg"` for a current) is a configuration error, never guessed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping

# canonical quantity -> accepted unit spellings -> factor to the canonical unit
UNITS: Mapping[str, Mapping[str, float]] = {
    "lel": {"%lel": 1.0, "lel": 1.0},
    "co_ppm": {"ppm": 1.0},
    "residual_ma": {"ma": 1.0, "a": 1000.0},
    "temp_c": {"°c": 1.0, "c": 1.0, "℃": 1.0, "degc": 1.0},
    "current_a": {"a": 1.0, "ma": 0.001},
    "duration": {"ms": 0.001, "s": 1.0, "sec": 1.0, "min": 60.0, "h": 3600.0},
}
CANONICAL_UNIT = {
    "lel": "%LEL",
    "co_ppm": "ppm",
    "residual_ma": "mA",
    "temp_c": "°C",
    "current_a": "A",
    "duration": "s",
}

_MEASURE = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(\S.*?)?\s*$")


def parse_measure(quantity: str, raw: object) -> float:
    """Parse `raw` into the canonical unit of `quantity`; ValueError says what was wrong."""
    if isinstance(raw, bool):
        raise ValueError(f"expected a number or a string like '10 {CANONICAL_UNIT[quantity]}'")
    if isinstance(raw, int | float):
        try:
            value = float(raw)
        except OverflowError:  # an integer too large for a float
            raise ValueError("must be a finite number") from None
    elif isinstance(raw, str):
        m = _MEASURE.match(raw)
        if m is None:
            raise ValueError(
                f"cannot read {raw!r} as a measure like '10 {CANONICAL_UNIT[quantity]}'"
            )
        value = float(m.group(1))
        unit = m.group(2)
        if unit is not None:
            factor = UNITS[quantity].get(unit.lower())
            if factor is None:
                accepted = ", ".join(sorted({u for u in UNITS[quantity]}))
                raise ValueError(
                    f"unit {unit!r} does not measure {quantity} "
                    f"(use {CANONICAL_UNIT[quantity]}; accepted: {accepted})"
                )
            value *= factor
    else:
        raise ValueError(f"expected a number or a string like '10 {CANONICAL_UNIT[quantity]}'")
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


def measure_parser(quantity: str) -> Callable[[object], float]:
    def parse(raw: object) -> float:
        return parse_measure(quantity, raw)

    return parse
