"""The pure rule engine: (state, input, now) -> alarm changes + commands. Thresholds, CO, valve
supervision, automatic trip, availability; time is always an argument.

May import only `rules` itself: no package of ours, no asyncio, no I/O, no protocol library.
"""
