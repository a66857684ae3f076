"""Curves that draw while a network trains: pass a :class:`LiveFigure` as ``watch=`` to
:func:`edutools.engine.training.train`.

The figure is shown once and then updated in place (an IPython display handle), at most once per
``min_interval`` seconds, so a 30-second run shows its λ_max climbing to the edge instead of a blank
cell. When it ends, :meth:`LiveFigure.close` draws the final record, and that figure is what stays
in the saved notebook: no widget is involved, so nothing turns into "Error displaying widget" after
a reload. Under papermill/CI (``EDUTOOLS_QUIET``/``CI`` set) only the final figure is drawn, to
save the renders.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display
from matplotlib.figure import Figure

from edutools.ground.device import progress_disabled

DrawFn = Callable[[pd.DataFrame, Figure], None]


class LiveFigure:
    """A figure redrawn from a training record while the run goes on.

    Args:
        draw: ``draw(record, figure)`` draws ``record`` (the DataFrame ``train`` passes to
            ``watch``) into the empty ``figure`` — e.g. a function of
            :mod:`edutools.face.plots` that takes ``ax=figure.add_subplot()``.
        figsize: figure size in inches.
        min_interval: least time between two redraws (s); 1 s keeps the redraw cost small.
        live: redraw during the run; ``None`` = on unless ``EDUTOOLS_QUIET``/``CI`` is set.

    Use it as ``live = LiveFigure(draw)``, ``result = train(..., watch=live)``,
    ``live.close(result.record)``; or as a context manager (``with LiveFigure(draw) as live:``),
    which closes with the last record it saw.
    """

    def __init__(self, draw: DrawFn, *, figsize: tuple[float, float] = (7.5, 4.0),
                 min_interval: float = 1.0, live: bool | None = None) -> None:
        if not callable(draw):
            raise TypeError(f"draw must be a function draw(record, figure), got {draw!r}")
        if not min_interval >= 0:
            raise ValueError(f"min_interval must be ≥ 0 seconds, got {min_interval!r}")
        self._draw = draw
        self._figsize = figsize
        self.min_interval = float(min_interval)
        self.live = (not progress_disabled()) if live is None else bool(live)
        self._handle = None
        self._last_draw = -float("inf")
        self.last_record: pd.DataFrame | None = None
        self.redraws = 0

    def __call__(self, record: pd.DataFrame) -> None:
        """Receive the record so far; redraw if live and ``min_interval`` has passed."""
        self.last_record = record
        now = time.perf_counter()
        if self.live and now - self._last_draw >= self.min_interval:
            self._show(record)
            self._last_draw = time.perf_counter()

    def close(self, record: pd.DataFrame | None = None) -> Figure | None:
        """Draw the final ``record`` (default: the last one seen) and return its figure."""
        record = self.last_record if record is None else record
        if record is None:
            return None
        return self._show(record)

    def __enter__(self) -> LiveFigure:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _show(self, record: pd.DataFrame) -> Figure:
        figure = plt.figure(figsize=self._figsize)
        self._draw(record, figure)
        if self._handle is None:
            self._handle = display(figure, display_id=True)
        else:
            self._handle.update(figure)
        plt.close(figure)
        self.redraws += 1
        return figure
