"""Sliders bound to experiments, with a cache so that returning to a setting is instant.

An experiment is split in two: ``run(**params) -> result`` (expensive, engine side, cached) and
``show(result, **params)`` (cheap, draws). :func:`slider_panel` wires sliders to both with
``continuous_update=False``, so training starts only when the learner lets go of a slider.

The panel does not capture output with ``with output_widget:``: that routes every message through
the front end's output-capture protocol, which headless runners (papermill/nbclient) mimic with
a message round trip that can hang a cell (jupyter/nbclient#312). Instead the figures and text
that ``show`` makes are collected and written into the output widget's state directly.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from typing import Any

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import display

SliderSpec = widgets.ValueWidget | Sequence[Any]


def momentum_slider(value: float = 0.9, *, low: float = 0.0, high: float = 0.99,
                    step: float = 0.01) -> widgets.FloatSlider:
    """Slider for heavy-ball momentum β in [low, high] (high < 1)."""
    return widgets.FloatSlider(value=value, min=low, max=high, step=step, description="momentum β",
                               continuous_update=False, readout_format=".2f",
                               style={"description_width": "initial"})


def batch_size_slider(value: int = 64, *, options: Sequence[int] = (32, 64, 128, 256)
                      ) -> widgets.SelectionSlider:
    """Slider choosing the mini-batch size among ``options``."""
    return widgets.SelectionSlider(options=list(options), value=value, description="batch size B",
                                   continuous_update=False, style={"description_width": "initial"})


def lr_slider(value: float, *, options: Sequence[float]) -> widgets.SelectionSlider:
    """Slider choosing the learning rate η among ``options`` (typically log-spaced)."""
    return widgets.SelectionSlider(options=[(f"{o:g}", o) for o in options], value=value,
                                   description="learning rate η", continuous_update=False,
                                   style={"description_width": "initial"})


class ExperimentPanel:
    """Sliders + output area for one experiment; display it as the last line of a cell.

    Attributes:
        sliders: the slider widgets by parameter name.
        cache: results of ``run`` by parameter tuple (shared across redraws).
        widget: the ``VBox`` shown in the notebook.
    """

    def __init__(self, run: Callable[..., Any], show: Callable[..., Any],
                 sliders: Mapping[str, widgets.ValueWidget], *, fixed: Mapping[str, Any] | None,
                 cache: dict[Hashable, Any] | None) -> None:
        self._run, self._show = run, show
        self.sliders = dict(sliders)
        self.fixed = dict(fixed or {})
        self.cache: dict[Hashable, Any] = {} if cache is None else cache
        self.output = widgets.Output()
        for slider in self.sliders.values():
            slider.observe(self._on_change, names="value")
        self.status = widgets.HTML()
        self.widget = widgets.VBox([widgets.HBox(list(self.sliders.values())), self.status,
                                    self.output])

    def params(self) -> dict[str, Any]:
        """The current slider values plus the fixed parameters."""
        return {**self.fixed, **{name: s.value for name, s in self.sliders.items()}}

    def key(self, **params: Any) -> Hashable:
        """Cache key of ``params`` (completed with the current slider values and fixed ones)."""
        return tuple(sorted({**self.params(), **params}.items()))

    def remember(self, result: Any, **params: Any) -> None:
        """Store a result computed elsewhere (e.g. earlier in the lesson) for ``params``."""
        self.cache[self.key(**params)] = result

    def result(self, **params: Any) -> Any:
        """Result of ``run`` for ``params`` (default: the sliders' values), cached."""
        key = self.key(**params)
        if key not in self.cache:
            self.cache[key] = self._run(**{**self.params(), **params})
        return self.cache[key]

    def refresh(self) -> None:
        """Re-run (or fetch from the cache) and redraw for the current slider values."""
        params = self.params()
        cached = self.key() in self.cache
        self.status.value = "<i>from cache</i>" if cached else "<i>running…</i>"
        result = self.result(**params)
        with _collect_figures() as figures, contextlib.redirect_stdout(io.StringIO()) as text:
            self._show(result, **params)
        self.output.outputs = ()
        for figure in figures:
            self.output.append_display_data(figure)
            plt.close(figure)
        if text.getvalue():
            self.output.append_stdout(text.getvalue())
        self.status.value = ""

    def _on_change(self, _change: Mapping[str, Any]) -> None:
        self.refresh()

    def _ipython_display_(self) -> None:
        display(self.widget)
        if not self.output.outputs:
            self.refresh()


@contextlib.contextmanager
def _collect_figures() -> Iterator[list[plt.Figure]]:
    """Collect the figures a drawing function opens, with ``plt.show`` silenced meanwhile."""
    before = set(plt.get_fignums())
    collected: list[plt.Figure] = []
    original_show = plt.show
    plt.show = lambda *args, **kwargs: None
    try:
        yield collected
    finally:
        plt.show = original_show
        collected.extend(plt.figure(n) for n in plt.get_fignums() if n not in before)


def slider_panel(run: Callable[..., Any], show: Callable[..., Any],
                 sliders: Mapping[str, widgets.ValueWidget], *,
                 fixed: Mapping[str, Any] | None = None,
                 cache: dict[Hashable, Any] | None = None) -> ExperimentPanel:
    """Bind ``sliders`` (parameter name → widget) to ``run`` and ``show``.

    ``run(**params)`` computes a result; ``show(result, **params)`` draws it. Results are cached
    by parameter values, so a setting already visited redraws at once. ``fixed`` adds parameters
    without a slider; ``cache`` lets several panels (or a precomputation loop) share results.
    """
    for name, slider in sliders.items():
        if not isinstance(slider, widgets.ValueWidget):
            raise ValueError(f"slider {name!r} must be an ipywidgets value widget, got {slider!r}")
        if getattr(slider, "continuous_update", False):
            slider.continuous_update = False
    return ExperimentPanel(run, show, sliders, fixed=fixed, cache=cache)
