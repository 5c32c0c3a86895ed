"""The `safety-gateway` command: run, check, simulate, report, demo."""
