"""The alarm lifecycle: the in-memory book, the alarm store (all alarm and command SQL), dispatch of
the engine's outcomes (valve first, then book, store and fan-out after commit) and the human
actions (ack, close, manual commands with the reopen interlock); in central mode, the mirror
of the edges' alarms.

May import `actuate`, `live`, `health`, `config`, `drivers`, `rules`.
"""
