"""What a device did lately, kept by the gateway itself for the commissioning page: the last
24 h of each quantity in a bounded ring (`ring`; the last raw payload is the ingest's,
`gateway.ingest.raw`), and valves
opened by hand on site (`onsite`, `feed`). It needs no time-series server and never blocks
the alarm path: a reading costs O(1) per quantity, and nothing here raises into ingest."""
