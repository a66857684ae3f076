"""Engine layer: what runs and measures.

Training, sharpness measurement, loss landscapes, SAM, the grid runner, and one module per paper's
experiment. Imports from the ground only; never draws or displays.
"""
