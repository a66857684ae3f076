"""Slider factories with the course's names and settings.

Every slider has ``continuous_update=False``: a run starts when the learner lets go, not at every
pixel. Values are cleaned once where they enter the panel (:func:`clean_value`), so a float slider
that lands on 0.9000000000000001 is 0.9 in titles and cache keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets

from edutools.ground.canonical import canonical_value

_STYLE = {"description_width": "initial"}

#: The label each named slider factory gives its slider (what a learner and the browser test see).
SLIDER_LABELS: dict[str, str] = {"momentum_slider": "momentum β",
                                 "batch_size_slider": "batch size B",
                                 "lr_slider": "learning rate η"}


def clean_value(value: Any) -> Any:
    """A slider value as runs and caches should see it: the course's one rounding rule,
    :func:`edutools.ground.canonical.canonical_value` (floats to 12 significant digits, so
    0.9000000000000001 → 0.9; NumPy scalars as Python numbers; anything else unchanged)."""
    return canonical_value(value)


def momentum_slider(value: float = 0.9, *, low: float = 0.0, high: float = 0.99,
                    step: float = 0.01) -> widgets.FloatSlider:
    """Slider for heavy-ball momentum β in [low, high] (high < 1)."""
    if not 0 <= low < high < 1:
        raise ValueError(f"momentum slider needs 0 ≤ low < high < 1, got low={low!r}, "
                         f"high={high!r}")
    return widgets.FloatSlider(value=value, min=low, max=high, step=step,
                               description=SLIDER_LABELS["momentum_slider"],
                               continuous_update=False, readout_format=".2f", style=_STYLE)


def choice_slider(description: str, options: Sequence[Any], value: Any = None, *,
                  labels: Sequence[str] | None = None) -> widgets.SelectionSlider:
    """Slider over a fixed grid of ``options`` (e.g. momentum (0, 0.5, 0.9, 0.95, 0.99)): every
    position is a grid point, so a precomputed cache answers every move at once."""
    options = [clean_value(option) for option in options]
    if not options:
        raise ValueError(f"slider {description!r} needs at least one option")
    value = options[0] if value is None else clean_value(value)
    if value not in options:
        raise ValueError(f"slider {description!r}: value {value!r} is not one of {options}")
    shown = [f"{o:g}" if isinstance(o, float) else str(o) for o in options] if labels is None \
        else list(labels)
    return widgets.SelectionSlider(options=list(zip(shown, options, strict=True)), value=value,
                                   description=description, continuous_update=False,
                                   style=_STYLE)


def batch_size_slider(value: int = 64, *, options: Sequence[int] = (32, 64, 128, 256)
                      ) -> widgets.SelectionSlider:
    """Slider choosing the mini-batch size among ``options``."""
    return widgets.SelectionSlider(options=list(options), value=value,
                                   description=SLIDER_LABELS["batch_size_slider"],
                                   continuous_update=False, style=_STYLE)


def lr_slider(value: float, *, options: Sequence[float]) -> widgets.SelectionSlider:
    """Slider choosing the learning rate η among ``options`` (typically log-spaced)."""
    return choice_slider(SLIDER_LABELS["lr_slider"], options, value)
