"""Modbus: device profiles (register maps as data), the register codec, and the bus poller."""
