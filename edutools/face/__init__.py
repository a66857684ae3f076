"""Face layer: what a learner touches.

Plots (one style; they receive numbers and draw), widgets (sliders bound to experiments) and
exercise checks. May import from the engine and the ground.

Importing it makes the engine's progress bars notebook bars that leave nothing behind
(:mod:`edutools.face.progress`).
"""

from edutools.face.progress import notebook_progress_bar as _notebook_progress_bar
from edutools.ground.progress import use_progress_bars as _use_progress_bars

_use_progress_bars(_notebook_progress_bar)
