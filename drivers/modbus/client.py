"""One bus's pymodbus client: connected on demand, every request's failure typed.

Reads are retried here (`retries` per block, with a short backoff), never by pymodbus, whose
own retries would hide failures. A refusal (`ExceptionResponse`) is not retried: the device
answered. Losing and regaining the connection is logged once each, not on every request.

On a serial bus consecutive requests keep the Modbus inter-frame gap (`frame_gap_s`: 3.5
character times, measured from the end of the previous exchange), and an answer whose CRC
does not match is counted (`BusStats.crc_errors`) and raised as `CorruptAnswer`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException
from pymodbus.framer import FramerRTU

from drivers.modbus.codec import ReadBlock
from drivers.modbus.errors import (
    EXCEPTION_NAMES,
    ConnectionLost,
    CorruptAnswer,
    DeviceTimeout,
    ExceptionResponse,
    ModbusFailure,
)
from drivers.modbus.profile import Actuation, Table

log = logging.getLogger(__name__)

RETRY_BACKOFF_S = 0.05
BITS_PER_CHARACTER = 11  # the Modbus spec times RTU with start + 8 data + parity/stop + stop


def frame_gap_s(baudrate: int) -> float:
    """The Modbus RTU silent interval between frames: 3.5 character times, and a fixed
    1.75 ms above 19200 baud (Modbus over serial line, section 2.5.1.1)."""
    if baudrate > 19200:
        return 0.00175
    return 3.5 * BITS_PER_CHARACTER / baudrate


def gap_wait(now: float, last_exchange_end: float | None, gap_s: float) -> float:
    """How long to stay silent before the next request so that the gap is kept."""
    if last_exchange_end is None or gap_s <= 0:
        return 0.0
    return max(0.0, last_exchange_end + gap_s - now)


ClientFactory = Callable[[], AsyncModbusTcpClient | AsyncModbusSerialClient]


@dataclass(slots=True)
class BusStats:
    reads: int = 0
    failed_reads: int = 0
    writes: int = 0
    crc_errors: int = 0  # answers dropped for a wrong CRC (serial buses)


class _CrcCountingRtu(FramerRTU):
    """pymodbus drops a frame with a wrong CRC silently (its request then times out); this
    framer says so, so that line noise is told apart from a device that is not there."""

    def __init__(self, decoder: Any, on_bad_crc: Callable[[], None]) -> None:
        super().__init__(decoder)
        self._on_bad_crc = on_bad_crc

    def decode(self, data: bytes) -> tuple[int, int, int, bytes]:
        used, dev_id, tid, frame = super().decode(data)
        if used and not frame:  # bytes consumed without a frame: only a CRC mismatch does
            self._on_bad_crc()
        return used, dev_id, tid, frame


class BusClient:
    def __init__(
        self,
        name: str,
        client_factory: ClientFactory,
        gap_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._factory = client_factory
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None
        self.stats = BusStats()
        self._connected_logged: bool | None = None
        self.gap_s = gap_s  # 0 on TCP
        self._clock = clock
        self._last_exchange_end: float | None = None

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
        await self._keep_gap()
        try:
            if a.table is Table.COIL:
                return await client.write_coil(a.address, bool(a.value), device_id=unit)
            return await client.write_register(a.address, a.value, device_id=unit)
        finally:
            self._last_exchange_end = self._clock()

    async def _keep_gap(self) -> None:
        wait = gap_wait(self._clock(), self._last_exchange_end, self.gap_s)
        if wait > 0:
            await asyncio.sleep(wait)

    def _bad_crc(self) -> None:
        self.stats.crc_errors += 1

    async def _ready(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        if self._client is None:
            self._client = self._factory()
            ctx = getattr(self._client, "ctx", None)
            if isinstance(getattr(ctx, "framer", None), FramerRTU):
                ctx.framer = _CrcCountingRtu(ctx.framer.decoder, self._bad_crc)  # type: ignore[union-attr]
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
        crc_errors = self.stats.crc_errors
        await self._keep_gap()
        try:
            rr: Any = await read(block.start, count=block.count, device_id=unit)
        except ConnectionException as exc:
            raise ConnectionLost(str(exc)) from None
        except ModbusException as exc:  # ModbusIOException included: no (valid) answer
            if self.stats.crc_errors > crc_errors:
                raise CorruptAnswer(f"answer with a wrong CRC: {exc}") from None
            raise DeviceTimeout(str(exc)) from None
        finally:
            self._last_exchange_end = self._clock()
        if rr.isError():
            code = int(getattr(rr, "exception_code", 0))
            raise ExceptionResponse(code, EXCEPTION_NAMES.get(code, "unknown"))
        if block.table.is_bit_table:
            return [int(b) for b in rr.bits[: block.count]]
        return list(rr.registers)
