"""The HTTP API (DESIGN section 8): app assembly, authentication, one module per resource, the live
feed and the static pages. On top of the gateway: nothing imports it but the CLI.

May import `app` and every stage below it; nothing imports it but `cli`.
"""
