"""The course's slider grids, built from the lessons' panel declarations (no list to keep).

One :class:`~edutools.face.precompute.SliderGrid` per declared panel with a ``grid``
(:func:`edutools.face.panels.declared_panels`): its run function and slider grid from the
declaration, its ``fixed`` parameters read from the lesson's own ``slider_panel(..., fixed=...)``
call in full mode with the lesson's default ``SEED`` (:func:`edutools.face.panels.panel_calls`).
The lesson builds its sliders from the same grid constants, so the panel and
``python -m edutools.face.precompute`` compute the same points and share one disk cache.
"""

from __future__ import annotations

from edutools.face.panels import Panel, declared_panels, panel_calls
from edutools.face.precompute import SliderGrid

__all__ = ["SLIDER_GRIDS", "slider_grid_of"]


def slider_grid_of(panel: Panel) -> SliderGrid:
    """The precompute grid of ``panel`` (it must declare a ``grid``), ``fixed`` from its lesson."""
    calls = [call for call in panel_calls(panel.lesson) if call.matches(panel)]
    if len(calls) != 1:
        raise ValueError(f"lesson {panel.lesson}: expected one slider_panel({panel.run}, ...) "
                         f"call, found {len(calls)}")
    if calls[0].unresolved:
        raise ValueError(f"lesson {panel.lesson} panel {panel.name!r}: cannot read fixed "
                         f"parameter(s) {calls[0].unresolved} from the lesson")
    return SliderGrid(lesson=panel.lesson, name=panel.name, run=panel.run_function(),
                      grid=panel.slider_grid(), fixed=dict(calls[0].fixed))


SLIDER_GRIDS: list[SliderGrid] = [slider_grid_of(panel) for panel in declared_panels()
                                  if panel.grid is not None]
