"""Device status and availability: one implementation for the API views, the bureau overview and
the daily report. `device` maps what the rule engine (or, without one, the stored alarms) says
of a device to the contract's status; `availability` turns `device_offline` alarm lifecycles
into offline intervals and online rates; `wire` holds a device's JSON shape. Pure: no
I/O and no clock here (the callers read the store and pass `now`).

May import `alarms`, `actuate`, `config`, `rules`.
"""
