"""`Gateway`, the supervisor: builds every stage through its constructor, owns every long-running
task and shuts them down in order; takes a reloaded configuration (`reload`) and polls the
Modbus buses one link each (`modbus_buses`).

May import every stage below it (not `http`, not `cli`).
"""
