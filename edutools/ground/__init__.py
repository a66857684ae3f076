"""Ground layer: pure and small pieces with no training in them.

Device, threads and seeding; argument checks; datasets; model builders; ``theory`` (closed-form
edges and formulas). Imports nothing from the engine or the face.
"""
