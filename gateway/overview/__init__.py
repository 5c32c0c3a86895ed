"""The bureau's county overview: figures per site from the alarm store and the device status.

May import `central`, `status`, `alarms`, `config`, `rules`; no HTTP (`gateway.http` serves it).
"""
