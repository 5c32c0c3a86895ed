"""Protocols: the native JSON codec (`codec`), MQTT (`mqtt`) and Modbus (`modbus`). Speaks
the wire and hands typed values (`rules.model`) up.

May import `rules` (its model) and protocol libraries; never the gateway or the simulator.
"""
