"""The course's slider grids: which run function each lesson's panel calls, over which values.

One entry per slider panel whose results are worth keeping (training runs); the lesson builds its
sliders from the same grid constants, so the panel and ``python -m edutools.face.precompute``
compute the same points and share one disk cache.
"""

from __future__ import annotations

from edutools.engine.experiments import long_bartlett
from edutools.face.precompute import SliderGrid

SLIDER_GRIDS: list[SliderGrid] = [
    # Lesson 06: full-batch SAM for SLIDER_STEPS steps; the lesson passes fixed={"seed": SEED}.
    SliderGrid(lesson="06", name="SAM radius ρ × learning rate η",
               run=long_bartlett.sam_edge_run, grid=long_bartlett.SLIDER_GRID,
               fixed={"seed": 0}),
]
