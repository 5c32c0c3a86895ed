"""Incidents (DESIGN section 11, seed 003): an emergency a person confirmed, and the two
reports to the bureau it owes, by phone within 30 minutes and in writing within an hour.

Owns `incidents.sqlite3` (`store`, its only writer; `readonly` reads it for the daily
report without opening the store, which would migrate the file) and the pure
rules over incidents (`model`: which alarm opens one, where each report's clock stands).
Imports config, storage and the alarm vocabulary (`rules.model`), nothing above; the API
(`gateway.http.incidents`) is its caller.
"""
