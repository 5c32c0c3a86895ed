"""Simulated Modbus TCP field devices, served by a real pymodbus server on loopback.

`SimModbusServer` serves any number of `modbus_device.SimModbusDevice`s, one per unit id, on
one port; several servers on several ports can run at once. Requests for a unit id that no
device uses go unanswered, like a unit that is not on the bus; so do a `SILENT` device's.

How it hooks into pymodbus 3.16: the old data blocks (`ModbusSequentialDataBlock`, ...) no
longer have `getValues`/`validate` to override; they are converted into a `SimCore` datastore
at server start, and a request for an unknown unit then fails inside `SimCore` with a
KeyError that the server answers with exception 4 (device failure), whatever
`ignore_missing_devices` says. So the server is given a `ModbusServerContext` subclass that
answers from the devices directly (pymodbus hands such a context every request, as it does
for its own legacy simulator context): returning an `ExcCodes` member produces an exception
response, and raising `NoSuchIdException` with `ignore_missing_devices=True` produces no
response at all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Self

from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.exceptions import NoSuchIdException
from pymodbus.server import ModbusTcpServer

from drivers.modbus.profile import Table
from simulator.modbus_device import DeviceMode, SimModbusDevice, WriteRecord, encode_point

# The device's names, imported from here by the tests and scenarios.
__all__ = [
    "DeviceMode",
    "SimModbusDevice",
    "SimModbusServer",
    "WriteRecord",
    "encode_point",
]

log = logging.getLogger(__name__)

# Modbus function code -> the table it addresses (reads, single and multiple writes,
# mask write 22, read/write multiple 23).
FUNCTION_TABLE: dict[int, Table] = {
    1: Table.COIL,
    5: Table.COIL,
    15: Table.COIL,
    2: Table.DISCRETE_INPUT,
    3: Table.HOLDING,
    6: Table.HOLDING,
    16: Table.HOLDING,
    22: Table.HOLDING,
    23: Table.HOLDING,
    4: Table.INPUT,
}


class _UnitsContext(ModbusServerContext):
    """The server's datastore: routes each request to the device with its unit id.

    `ModbusServerContext.__init__` is not called: it only builds the pymodbus simulator
    devices this class replaces. With `simdevices` empty and `old_simulator` set, the
    server calls `async_getValues`/`async_setValues` below for every request.
    """

    def __init__(self, devices: dict[int, SimModbusDevice]) -> None:
        self.simdevices = []
        self.old_simulator = True
        self.units = devices

    def _device(self, device_id: int, func_code: int) -> tuple[SimModbusDevice, Table | None]:
        device = self.units.get(device_id)
        if device is None or device.mode is DeviceMode.SILENT:
            # With ignore_missing_devices=True the request handler sends nothing back.
            raise NoSuchIdException(f"unit {device_id} does not answer")
        return device, FUNCTION_TABLE.get(func_code)

    async def async_getValues(
        self, device_id: int, func_code: int, address: int, count: int = 1
    ) -> list[int] | list[bool] | ExcCodes:
        device, table = self._device(device_id, func_code)
        if table is None:
            return ExcCodes.ILLEGAL_FUNCTION
        result = device.handle_read(table, address, count)
        if isinstance(result, ExcCodes) or not table.is_bit_table:
            return result
        return [bool(b) for b in result]

    async def async_setValues(
        self,
        device_id: int,
        func_code: int,
        address: int,
        values: Sequence[int] | Sequence[bool],
    ) -> ExcCodes | None:
        device, table = self._device(device_id, func_code)
        if table is None:
            return ExcCodes.ILLEGAL_FUNCTION
        return device.handle_write(table, address, [int(v) for v in values])

    def device_ids(self) -> list[int]:
        return list(self.units)


async def _shutdown(server: ModbusTcpServer) -> None:
    """`ModbusBaseServer.shutdown` is unannotated in pymodbus 3.16; it returns None."""
    await server.shutdown()  # type: ignore[no-untyped-call]


class SimModbusServer:
    """A Modbus TCP server for `devices` (one per unit id), as an async context manager.

    `port=0` binds a free port, read back from the listening socket, so `.port` is the real
    one and there is no window in which another process can take it.
    """

    def __init__(
        self, devices: Iterable[SimModbusDevice] = (), host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self._devices: dict[int, SimModbusDevice] = {}
        self._server: ModbusTcpServer | None = None
        for d in devices:
            self.add(d)

    def add(self, device: SimModbusDevice) -> None:
        """Serve `device` too (also while running); its unit id must be free."""
        if device.unit in self._devices:
            raise ValueError(f"unit {device.unit} is already served on this server")
        self._devices[device.unit] = device

    @property
    def devices(self) -> dict[int, SimModbusDevice]:
        return dict(self._devices)

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the server is not running")
        return self._port

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the server is already running")
        server = ModbusTcpServer(
            _UnitsContext(self._devices),
            address=(self.host, self._requested_port),
            ignore_missing_devices=True,  # unknown and silent units: no response at all
        )
        await server.serve_forever(background=True)  # returns once listening
        listener = server.transport
        if not isinstance(listener, asyncio.Server) or not listener.sockets:
            await _shutdown(server)
            raise RuntimeError("pymodbus did not expose its listening socket")
        self._port = int(listener.sockets[0].getsockname()[1])
        self._server = server
        log.info("modbus simulator on %s:%d, units %s", self.host, self._port, self.device_ids)

    async def stop(self) -> None:
        """Close the listener and every client connection; forget pending actuations."""
        server, self._server = self._server, None
        if server is None:
            return
        await _shutdown(server)
        await asyncio.sleep(0)  # let the closed connections run their callbacks
        for d in self._devices.values():
            d.cancel_motion()
        self._port = None

    @property
    def device_ids(self) -> list[int]:
        return sorted(self._devices)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
