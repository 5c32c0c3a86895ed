"""The bureau's county overview: figures per site from the alarm store and the device status,
and each site's closed loop (open incidents, overdue hazards, today's self-report).

May import `central`, `status`, `alarms`, `config`, `rules`, and the closed loop's owners
`incidents`, `hazards`, `duty` (read only); no HTTP (`gateway.http` serves it).
"""
