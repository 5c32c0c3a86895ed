"""Line protocol for the time series (DESIGN section 9): readings, alarms, device status.

Pure text. Escaping follows InfluxDB 2's rules, checked against VictoriaMetrics; every
line carries a millisecond timestamp. Three measurements:

- `reading`: tags site, device, type; one float field per quantity; time = the reading's.
- `alarm`: tags site, device, alarm_type, severity; fields state (string), state_code
  (integer: closed 0, cleared 1, active 2), acked (integer 0/1), value (float, when the alarm
  has one), alarm_id (string); time = the snapshot's `updated_at`. VictoriaMetrics (which
  some bureaus run) keeps numbers only: version 1.79 stores a string field as the value 0,
  so `state` and `alarm_id` are unreadable there, and the integer fields carry what matters.
- `device_status`: tags site, device; fields online and fault, integers 0/1 rather than
  booleans, so that a dashboard can sum them (devices online per site) on either server.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Final

from gateway.alarms.event import AlarmSnapshot
from rules.model import Reading

# Numeric alarm state for servers that keep numbers only; higher is worse, so `max`
# over a window gives the worst state in it.
STATE_CODE: Final[Mapping[str, int]] = {"closed": 0, "cleared": 1, "active": 2}

# Line protocol escaping (InfluxDB 2 rules, checked against VictoriaMetrics). Tag keys and
# values and field keys: comma, equals and space are escaped, and backslash as `\\` (both
# servers read `\\` as one backslash; otherwise a value ending in a backslash would escape
# the comma after it). String field values: double quote and backslash. A raw newline would
# end the line, so control characters become the two characters `\n`, `\r`, `\t`.
_KEY_ESCAPE: Final = str.maketrans(
    {"\\": "\\\\", ",": "\\,", "=": "\\=", " ": "\\ ", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
)
_STRING_ESCAPE: Final = str.maketrans(
    {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
)


def escape_key(value: str) -> str:
    """A tag key, tag value or field key."""
    return value.translate(_KEY_ESCAPE)


def escape_string(value: str) -> str:
    """The inside of a string field value (without the surrounding quotes)."""
    return value.translate(_STRING_ESCAPE)


def _tags(measurement: str, tags: Sequence[tuple[str, object]]) -> str:
    # Empty values are left out: InfluxDB rejects a tag with no value. Keys are given in
    # sorted order, which InfluxDB recommends.
    parts = [measurement]
    for key, value in tags:
        if value is None:
            continue
        text = str(value)
        if text:
            parts.append(f"{key}={escape_key(text)}")
    return ",".join(parts)


def _float(value: float) -> str:
    # Always a float (never `1i`): a field whose type changes between points is a schema
    # conflict that InfluxDB rejects. repr() is the shortest exact form, e.g. `12.5`, `1e-05`.
    return repr(float(value))


def epoch_ms(ts: float) -> int:
    if not math.isfinite(ts):
        raise ValueError(f"timestamp {ts!r} is not finite")
    return round(ts * 1000)


def reading_line(r: Reading, device_type: str) -> str | None:
    """None when the reading has no finite value (a point needs at least one field)."""
    return reading_line_under(reading_head(r, device_type), r, escape_key)


def reading_head(r: Reading, device_type: str) -> str:
    return _tags("reading", (("device", r.ref.device), ("site", r.ref.site), ("type", device_type)))


def reading_line_under(head: str, r: Reading, field: Callable[[str], str]) -> str | None:
    """The line for `r` under series key `head`, field names escaped by `field`."""
    values = r.values
    if len(values) == 1:  # the usual case: no sort, no join
        ((name, value),) = values.items()
        if not math.isfinite(value):
            return None
        fields = f"{field(name)}={float(value)!r}"  # `_float`, inline: once per point
    else:
        fields = ",".join(
            f"{field(name)}={float(value)!r}"
            for name, value in sorted(values.items())
            if math.isfinite(value)
        )
        if not fields:
            return None
    return f"{head} {fields} {epoch_ms(r.ts)}"


def alarm_line(a: AlarmSnapshot, at_ms: int) -> str:
    head = _tags(
        "alarm",
        (
            ("alarm_type", a.type.value),
            ("device", a.device),
            ("severity", a.severity.value),
            ("site", a.site),
        ),
    )
    fields = [
        f"acked={int(a.acked)}i",
        f'alarm_id="{escape_string(a.id)}"',
        f'state="{escape_string(a.state.value)}"',
        f"state_code={STATE_CODE[a.state.value]}i",
    ]
    if a.value is not None and math.isfinite(a.value):
        fields.append(f"value={_float(a.value)}")
    return f"{head} {','.join(fields)} {at_ms}"


def status_line(site: str, device: str, online: bool, fault: bool, at: float) -> str:
    return status_line_under(status_head(site, device), online, fault, at)


def status_head(site: str, device: str) -> str:
    return _tags("device_status", (("device", device), ("site", site)))


def status_line_under(head: str, online: bool, fault: bool, at: float) -> str:
    return f"{head} fault={int(fault)}i,online={int(online)}i {epoch_ms(at)}"
