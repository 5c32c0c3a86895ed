"""Commands to field devices: sending, correlating acknowledgements and deadlines.

May import `config`, `drivers`, `rules`.
"""
