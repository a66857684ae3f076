"""The course's slider grids: which run function each lesson's panel calls, over which values.

One entry per slider panel whose results are worth keeping (training runs); the lesson builds its
sliders from the same grid constants, so the panel and ``python -m edutools.face.precompute``
compute the same points and share one disk cache.
"""

from __future__ import annotations

from edutools.face.precompute import SliderGrid

SLIDER_GRIDS: list[SliderGrid] = []
