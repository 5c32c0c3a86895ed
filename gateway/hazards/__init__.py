"""The hazard ledger (隐患台账) and the bureau's rectification notices (整改通知书), DESIGN
section 11.

Owns `<data_dir>/hazards.sqlite3`: the hazards with their own timelines, and the notices that
group them. `model` is pure (the statuses and who may move a hazard between them); `store` is
the tables' one owner, synchronous sqlite3 called from worker threads; `suggest` is pure too
(the hazards the gateway's own alarms suggest); `readonly` reads the ledger with its
timelines for the daily report without opening the store. Imports only `gateway.config`,
`gateway.storage` and the alarm vocabulary (`rules.model`); it links an alarm by id and reads
one through a protocol, never by importing the alarm path.
"""
