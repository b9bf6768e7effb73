"""Op descriptions, one module per op kind; each op class is its registry entry.

The table of every op kind is :data:`edgernn.registry.OPS`.
"""
