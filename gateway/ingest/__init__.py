"""Ingest: a wire message or a Modbus poll -> topic routing -> codec -> rule engine -> outcome
handed to `gateway.alarms`. Owns the routes cache, reject counting, the catch-up gate and the
recognition of messages the broker delivers again (`redelivery`) and of messages a device
sent again (`resends`).

May import `central`, `alarms`, `live`, `health`, `config`, `drivers`, `rules`.
"""
