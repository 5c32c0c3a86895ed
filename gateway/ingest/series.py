"""Where readings go besides the rules: the time series, written by the site's authority."""

from __future__ import annotations

from typing import Protocol

from rules.model import Reading


class ReadingSeries(Protocol):
    def reading(self, r: Reading, device_type: str) -> None: ...
