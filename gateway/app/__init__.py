"""`Gateway`, the supervisor: builds every stage through its constructor, owns every long-running
task and shuts them down in order.

May import every stage below it (not `http`, not `cli`).
"""
