"""Everything central mode adds (DESIGN section 2): edge presence and uplink watch, the
`edge_offline` alarm, and mirroring of the alarms and commands edge gateways publish.

May import `alarms`, `actuate`, `live`, `health`, `config`, `drivers`, `rules`.
"""
