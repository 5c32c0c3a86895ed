"""Commands to field devices: sending, correlating acknowledgements and deadlines."""
