"""One bus's pymodbus client: connected on demand, every request's failure typed.

Reads are retried here (`retries` per block, with a short backoff), never by pymodbus, whose
own retries would hide failures. A refusal (`ExceptionResponse`) is not retried: the device
answered. Losing and regaining the connection is logged once each, not on every request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from drivers.modbus.codec import ReadBlock
from drivers.modbus.errors import (
    EXCEPTION_NAMES,
    ConnectionLost,
    DeviceTimeout,
    ExceptionResponse,
    ModbusFailure,
)
from drivers.modbus.profile import Actuation, Table

log = logging.getLogger(__name__)

RETRY_BACKOFF_S = 0.05

ClientFactory = Callable[[], AsyncModbusTcpClient | AsyncModbusSerialClient]


@dataclass(slots=True)
class BusStats:
    reads: int = 0
    failed_reads: int = 0
    writes: int = 0


class BusClient:
    def __init__(self, name: str, client_factory: ClientFactory) -> None:
        self.name = name
        self._factory = client_factory
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None
        self.stats = BusStats()
        self._connected_logged: bool | None = None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def read(self, unit: int, block: ReadBlock, retries: int) -> list[int]:
        attempt = 0
        while True:
            try:
                return await self._read_once(unit, block)
            except ExceptionResponse:
                raise
            except ModbusFailure:
                self.stats.failed_reads += 1
                if attempt >= retries:
                    raise
                attempt += 1
                await asyncio.sleep(RETRY_BACKOFF_S * attempt)

    async def write(self, unit: int, a: Actuation) -> Any:
        """Write one coil or register; the response, which may be an exception response.
        Raises `ModbusFailure` (no connection) or pymodbus's `ModbusException`."""
        client = await self._ready()
        self.stats.writes += 1
        if a.table is Table.COIL:
            return await client.write_coil(a.address, bool(a.value), device_id=unit)
        return await client.write_register(a.address, a.value, device_id=unit)

    async def _ready(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        if self._client is None:
            self._client = self._factory()
        client = self._client
        if not client.connected:
            ok = await client.connect()
            if self._connected_logged is not ok:
                self._connected_logged = ok
                if ok:
                    log.info("modbus %s connected", self.name)
                else:
                    log.warning("modbus %s: cannot connect; retrying on each poll", self.name)
            if not ok:
                raise ConnectionLost(f"{self.name}: cannot connect")
        return client

    async def _read_once(self, unit: int, block: ReadBlock) -> list[int]:
        client = await self._ready()
        read = {
            Table.HOLDING: client.read_holding_registers,
            Table.INPUT: client.read_input_registers,
            Table.COIL: client.read_coils,
            Table.DISCRETE_INPUT: client.read_discrete_inputs,
        }[block.table]
        self.stats.reads += 1
        try:
            rr: Any = await read(block.start, count=block.count, device_id=unit)
        except ConnectionException as exc:
            raise ConnectionLost(str(exc)) from None
        except ModbusIOException as exc:
            raise DeviceTimeout(str(exc)) from None
        except ModbusException as exc:
            raise DeviceTimeout(str(exc)) from None
        if rr.isError():
            code = int(getattr(rr, "exception_code", 0))
            raise ExceptionResponse(code, EXCEPTION_NAMES.get(code, "unknown"))
        if block.table.is_bit_table:
            return [int(b) for b in rr.bits[: block.count]]
        return list(rr.registers)
