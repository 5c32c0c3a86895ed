"""The time-series feed (DESIGN section 9): line protocol (`lines`), the memory buffer
(`buffer`), the disk outbox (`outbox`), the writer to the server (`writer`), the pump that
moves points between them (`pump`), and `TimeSeriesFeed` (`feed`), the one object the rest
of the gateway uses; `device_series` decides which alarm and status points go out.

May import `alarms`, `config`, `rules`.
"""
