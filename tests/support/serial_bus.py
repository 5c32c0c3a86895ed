"""A real serial path for Modbus RTU tests: `socat` pty pairs, a relay between them that
logs every frame and can corrupt an answer, and the simulator's devices served over RTU.

    gateway poller -- pty pair "line" -- Relay -- pty pair "field" -- RTU server (devices)

Every socat is started here and stopped by its PID. The relay runs on the test's event loop
(reader callbacks on the pty file descriptors), so a test can ask it, between two polls,
to flip a byte of the next answer of a unit.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import termios
import time
import tty
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer

from simulator.modbus_device import SimModbusDevice

# The simulator's unit-routing datastore, shared with its TCP server.
from simulator.modbus_server import _UnitsContext

START_TIMEOUT_S = 5.0


class PtyPair:
    """`socat pty,raw,echo=0,link=a pty,raw,echo=0,link=b`: two pty ends joined together."""

    def __init__(self, directory: Path, name: str) -> None:
        if shutil.which("socat") is None:
            raise RuntimeError("socat is not installed (make mosquitto installs it)")
        self.a = directory / f"{name}-a"
        self.b = directory / f"{name}-b"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._proc = subprocess.Popen(
            [
                "socat",
                f"pty,raw,echo=0,link={self.a}",
                f"pty,raw,echo=0,link={self.b}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (self.a.exists() and self.b.exists()):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"socat did not make the pty pair {self.a}, {self.b}")
            time.sleep(0.01)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, 15)
        try:
            proc.wait(timeout=START_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, 9)
            proc.wait()


def _frame_length(buf: bytes, from_master: bool) -> int | None:
    """The length of the RTU frame at the start of `buf`, or None until enough is there."""
    if len(buf) < 3:
        return None
    fc = buf[1]
    if fc & 0x80:
        return 5  # exception response
    if from_master:
        if fc in (15, 16):
            return None if len(buf) < 7 else 9 + buf[6]
        return 8  # 1-6: unit, fc, address, count or value, crc
    if fc in (1, 2, 3, 4):
        return 5 + buf[2]
    return 8  # 5, 6, 15, 16: echo of address and value or count


@dataclass(frozen=True, slots=True)
class Frame:
    at: float  # monotonic, when its last byte reached the relay
    from_master: bool
    unit: int
    data: bytes


@dataclass
class _Direction:
    src: int
    dst: int
    from_master: bool
    buf: bytes = b""
    # when the first byte of the frame being assembled arrived
    started: float = 0.0


@dataclass
class Relay:
    """Forwards bytes between the gateway's line and the devices' line, frame by frame."""

    line_end: Path  # the pty the relay reads the gateway's requests from
    field_end: Path  # the pty the relay reads the devices' answers from
    frames: list[Frame] = field(default_factory=list)
    corrupted: int = 0
    _corrupt: dict[int, int] = field(default_factory=dict)  # unit -> answers still to spoil
    _fds: list[int] = field(default_factory=list)

    def corrupt_next_answers(self, unit: int, count: int = 1) -> None:
        """Flip a data byte (so the CRC no longer matches) of the next `count` answers."""
        self._corrupt[unit] = self._corrupt.get(unit, 0) + count

    def requests(self, unit: int | None = None, since: float = 0.0) -> list[Frame]:
        return [
            f
            for f in self.frames
            if f.from_master and f.at >= since and (unit is None or f.unit == unit)
        ]

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        line = self._open(self.line_end)
        fld = self._open(self.field_end)
        self._fds = [line, fld]
        for d in (_Direction(line, fld, True), _Direction(fld, line, False)):
            loop.add_reader(d.src, self._readable, d)

    def stop(self) -> None:
        loop = asyncio.get_running_loop()
        for fd in self._fds:
            loop.remove_reader(fd)
            os.close(fd)
        self._fds = []

    @staticmethod
    def _open(path: Path) -> int:
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(fd, termios.TCSANOW)
        return fd

    def _readable(self, d: _Direction) -> None:
        try:
            chunk = os.read(d.src, 4096)
        except BlockingIOError:
            return
        if not d.buf:
            d.started = time.monotonic()
        d.buf += chunk
        while (n := _frame_length(d.buf, d.from_master)) is not None and len(d.buf) >= n:
            data, d.buf = d.buf[:n], d.buf[n:]
            unit = data[0]
            if not d.from_master and self._corrupt.get(unit, 0) > 0:
                self._corrupt[unit] -= 1
                self.corrupted += 1
                spoilt = bytearray(data)
                spoilt[-3] ^= 0x55  # the last data byte: the length stays right
                data = bytes(spoilt)
            self.frames.append(Frame(time.monotonic(), d.from_master, unit, data))
            os.write(d.dst, data)
        if d.buf and len(d.buf) > 256:  # noise that is no frame: pass it on as it is
            os.write(d.dst, d.buf)
            d.buf = b""


class SerialBus:
    """The whole path, as an async context manager: `bus.port` is the gateway's serial port."""

    def __init__(
        self, directory: Path, devices: list[SimModbusDevice], baudrate: int = 9600
    ) -> None:
        self.line = PtyPair(directory, "line")
        self.field = PtyPair(directory, "field")
        self.relay = Relay(self.line.b, self.field.a)
        self.baudrate = baudrate
        self.devices = {d.unit: d for d in devices}
        self._server: ModbusSerialServer | None = None

    @property
    def port(self) -> str:
        return str(self.line.a)

    async def __aenter__(self) -> Self:
        try:
            self.line.start()
            self.field.start()
            self.relay.start()
            server = ModbusSerialServer(
                _UnitsContext(self.devices),
                framer=FramerType.RTU,
                port=str(self.field.b),
                baudrate=self.baudrate,
                ignore_missing_devices=True,  # a silent unit sends nothing back
            )
            await server.serve_forever(background=True)
            self._server = server
        except BaseException:
            await self._stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stop()

    async def _stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.shutdown()  # type: ignore[no-untyped-call]
        for d in self.devices.values():
            d.cancel_motion()
        if self.relay._fds:
            self.relay.stop()
        self.field.stop()
        self.line.stop()
