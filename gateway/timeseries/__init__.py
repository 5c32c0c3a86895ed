"""The time-series feed (DESIGN section 9): line protocol, the disk outbox and the writer."""
