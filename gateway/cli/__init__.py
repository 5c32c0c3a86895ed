"""The `safety-gateway` command: run, check, simulate, report, demo.

May import every package: it is the entry point.
"""
