"""The configuration: its schema (`schema`), loading (`loading`), the checks that need the
whole file (`checks`), problems with their paths (`errors`), units, the device inventory and
the rule set built from it, what a reloaded file changes (`reload`), the clock face
(times as the contract writes them), and text made safe to store and show (`text`).

May import `rules` and `drivers` (the Modbus profiles it checks) only."""
