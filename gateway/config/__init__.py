"""The configuration: its schema, loading and cross-checks, units, the device inventory and the
rule set built from it. Imports only `rules` and `drivers` (the Modbus profiles it checks)."""
