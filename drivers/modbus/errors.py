"""How a Modbus request fails, typed, each saying whether a retry can help.

`DeviceTimeout`, `CorruptAnswer` and `ConnectionLost` count towards `device_offline`; an
`ExceptionResponse` means the device answered but refused, which is a `device_fault`.
"""

from __future__ import annotations


class ModbusFailure(Exception):
    retryable = True


class DeviceTimeout(ModbusFailure):
    """No answer within the timeout: the device (or the line to it) is not there."""


class ConnectionLost(ModbusFailure):
    """The TCP connection (or serial port) is down: nothing on the bus can answer."""


class CorruptAnswer(ModbusFailure):
    """An answer came back but its CRC did not match (noise or a bad termination on an RS-485
    line): counted apart, and retried like a timeout."""


class ExceptionResponse(ModbusFailure):
    """The device answered with a Modbus exception: it is alive but refuses the request."""

    retryable = False

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"exception code {code}: {detail}")
        self.code = code


EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "device failure",
    5: "acknowledge",
    6: "device busy",
    10: "gateway path unavailable",
    11: "gateway target failed to respond",
}
