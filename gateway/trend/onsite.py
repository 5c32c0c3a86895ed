"""Is a valve's `open` report a person opening it by hand on site? (GB 50028 §10.8.4 asks for
reopening gas by hand, on site: the gateway records it and does not fight it.)"""

from __future__ import annotations

# A valve that reports open this soon after the gateway sent `open_valve` was opened by
# that command, not by hand.
COMMANDED_WINDOW_S = 120.0


def opened_by_hand(
    *,
    was_open: bool | None,
    is_open: bool,
    gas_alarm_open: bool,
    commanded_open_at: float | None,
    now: float,
) -> bool:
    """True for a closed valve that now says open while no gas alarm on its detectors is
    open and nobody sent it `open_valve` just before. Unknown before (just started) is not
    a change; with a gas alarm open the rules close it again (`valve_reported_open`)."""
    if not is_open or was_open is not False or gas_alarm_open:
        return False
    return commanded_open_at is None or not (0.0 <= now - commanded_open_at <= COMMANDED_WINDOW_S)
