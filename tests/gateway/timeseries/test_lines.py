"""Line protocol text: escaping of tags, field keys and string values, and what makes no point."""

from __future__ import annotations

from gateway.timeseries.lines import alarm_line, reading_line, status_line
from rules.model import DeviceRef, Reading
from tests.support.timeseries import (
    snapshot,
)


def test_line_protocol_text_and_escaping() -> None:
    r = Reading(DeviceRef("幸福 院,东=区", 'gas "1"\\'), {"temp_c_1": 30.0, "lel": 12.5}, 1.7e9)
    assert reading_line(r, "gas detector") == (
        r'reading,device=gas\ "1"\\,site=幸福\ 院\,东\=区,type=gas\ detector '
        "lel=12.5,temp_c_1=30.0 1700000000000"
    )
    snap = snapshot(1, 0, state="cleared", value=None, id='a"b\\c\nd', site="s", device="d")
    assert alarm_line(snap.alarm, 1_700_000_000_123) == (
        "alarm,alarm_type=gas_leak,device=d,severity=critical,site=s "
        r'acked=1i,alarm_id="a\"b\\c\nd",state="cleared",state_code=1i 1700000000123'
    )
    assert status_line("s", "d", True, False, 1_700_000_000.0004) == (
        "device_status,device=d,site=s fault=0i,online=1i 1700000000000"
    )
    # a reading with nothing finite to say is no point at all
    assert reading_line(Reading(DeviceRef("s", "d"), {}, 1.0), "t") is None
