"""Ingest: a wire message or a Modbus poll -> topic routing -> codec -> rule engine -> outcome
handed to `gateway.alarms`. Owns the routes cache, reject counting and the catch-up gate.

May import `central`, `alarms`, `live`, `health`, `config`, `drivers`, `rules`.
"""
