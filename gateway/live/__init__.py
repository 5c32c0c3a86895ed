"""The live feed hub: per-subscriber lanes for alarm changes (never dropped) and device updates
(coalesced per device). Transport-free: `gateway.http` serves it over WebSocket.

May import `rules` only.
"""
