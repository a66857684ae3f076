"""Face layer: what a learner touches.

Plots (one style; they receive numbers and draw), widgets (sliders bound to experiments) and
exercise checks. May import from the engine and the ground.
"""
