"""The gateway's SQLite files as files: their schema versions and the steps between them
(`migrate`, `schemas`), online backups and their checks (`backup`), the archive of old
closed alarms (`archive`), and the lock that says a gateway runs on a data directory
(`lock`).

The bottom layer: plain `sqlite3` run in a thread, nothing of the gateway's stages. Each
table keeps its one owner for reads and writes (the store, the send log, ...); this package
owns their DDL, so that every change of shape is one numbered step applied the same way
everywhere, and it moves whole rows of old closed alarms out to the archive.
"""
