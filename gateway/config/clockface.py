"""Times as people and the contract read them: ISO 8601 with the gateway's offset (DESIGN
section 8). Epoch seconds everywhere inside; this is the one place they become text."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo


class Clockface:
    """Formats epoch seconds in the gateway's configured time zone."""

    def __init__(self, timezone: str) -> None:
        self.zone = ZoneInfo(timezone)

    def parse(self, iso: str | None) -> float | None:
        """ISO 8601 (with offset; naive is taken in this zone) -> epoch seconds."""
        if not iso:
            return None
        try:
            dt = datetime.fromisoformat(iso)
        except ValueError:
            return None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=self.zone)
        return dt.timestamp()

    def iso(self, ts: float | None) -> str | None:
        if ts is None:
            return None
        return datetime.fromtimestamp(ts, self.zone).isoformat(timespec="milliseconds")
