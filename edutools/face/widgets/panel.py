"""Sliders bound to an experiment: feedback at once, curves while it trains, results kept on disk.

An experiment is split in two: ``run(**params) -> result`` (expensive, engine side) and
``show(result, **params)`` (cheap, draws). :func:`slider_panel` wires sliders to both:

* **Feedback within a second.** Letting go of a slider immediately says what is being computed and
  ticks the elapsed time; the run itself goes to a background thread, so the notebook stays
  responsive.
* **Curves while it trains.** If ``run`` accepts a ``watch`` keyword, the panel passes a callable
  that ``run`` calls with partial results (same type as the final one — e.g. through
  ``train(..., watch=...)``); the panel redraws them at most once per ``redraw_interval`` s.
* **Stale runs cancelled.** Moving a slider again makes the old run's next ``watch`` call raise
  :class:`RunCancelled`, which ends it quietly.
* **A memory and a disk cache.** Results are keyed by the cleaned parameter values
  (:func:`~edutools.face.widgets.sliders.clean_value`) in memory and, for ``run`` functions defined
  in a module, in an :class:`~edutools.ground.cache.ResultCache` tagged with the module's code
  version: a revisited setting, a kernel restart or the next day's session redraws in well under a
  second, and ``python -m edutools.face.precompute`` fills it ahead of a workshop.

The first draw (when the panel is displayed) is synchronous, so a headless run under
papermill/nbclient draws the panel and moves on. Output is not captured with ``with output:``
(its message round trip can hang nbclient, jupyter/nbclient#312): figures and text that ``show``
makes are collected and written into the output widget's state directly.
"""

from __future__ import annotations

import contextlib
import html
import inspect
import io
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Mapping
from typing import Any

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import display

from edutools.face.widgets.sliders import clean_value
from edutools.ground.cache import MISS, ResultCache, code_version

#: Namespace prefix of the panels' disk caches (the grid runner uses its own).
CACHE_NAMESPACE = "panel"


class RunCancelled(Exception):
    """Raised inside a stale run (through its ``watch`` callable) to stop it."""


def disk_cache_for(run: Callable[..., Any]) -> ResultCache | None:
    """The disk cache of a module-level ``run`` function: namespace ``panel/<module>.<name>``,
    version = the code version of ``run``'s module. ``None`` for functions defined in a notebook
    (their code has no stable version) or lambdas."""
    module = inspect.getmodule(run)
    name = getattr(run, "__qualname__", "")
    if module is None or module.__name__ == "__main__" or "<" in name:
        return None
    try:
        version = code_version(module)
    except (OSError, TypeError):
        return None
    return ResultCache(f"{CACHE_NAMESPACE}/{module.__name__}.{name}", version=version)


class ExperimentPanel:
    """Sliders + status line + output area for one experiment; display it as a cell's last line.

    Attributes:
        sliders: the slider widgets by parameter name.
        cache: results of ``run`` by parameter key, in memory (shared with ``cache=`` if given).
        disk_cache: the on-disk cache, or ``None``.
        status: the ``HTML`` line saying what the panel is doing (CSS class
            ``edutools-panel-status``).
        widget: the ``VBox`` shown in the notebook (CSS class ``edutools-panel``).
        last_timing: seconds to first feedback, to the final figure, and whether it came from a
            cache, for the latest slider move.
    """

    #: How many settings' rendered figures a panel keeps in memory (a PNG is ~50–150 kB).
    MAX_DRAWN = 64

    def __init__(self, run: Callable[..., Any], show: Callable[..., Any],
                 sliders: Mapping[str, widgets.ValueWidget], *, fixed: Mapping[str, Any] | None,
                 cache: dict[Hashable, Any] | None, disk_cache: ResultCache | None,
                 redraw_interval: float, background: bool) -> None:
        self._run, self._show = run, show
        self._watchable = "watch" in inspect.signature(run).parameters
        self.sliders = dict(sliders)
        self.fixed = {name: clean_value(value) for name, value in (fixed or {}).items()}
        self.cache: dict[Hashable, Any] = {} if cache is None else cache
        self.disk_cache = disk_cache
        self.redraw_interval = redraw_interval
        self.background = background
        self.output = widgets.Output()
        self.status = widgets.HTML()
        self.status.add_class("edutools-panel-status")
        self.widget = widgets.VBox([widgets.HBox(list(self.sliders.values())), self.status,
                                    self.output])
        self.widget.add_class("edutools-panel")
        self.last_timing: dict[str, Any] = {}
        self._generation = 0
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._drawn: dict[Hashable, tuple[Any, tuple[dict[str, Any], ...]]] = {}
        for slider in self.sliders.values():
            slider.observe(self._on_change, names="value")

    # -- parameters and results ------------------------------------------------------------

    def params(self, **overrides: Any) -> dict[str, Any]:
        """The cleaned slider values plus the fixed parameters (``overrides`` win)."""
        values = {name: s.value for name, s in self.sliders.items()}
        return {name: clean_value(value)
                for name, value in {**self.fixed, **values, **overrides}.items()}

    def key(self, **params: Any) -> Hashable:
        """Cache key of ``params`` (completed with the current slider values and fixed ones)."""
        return _key(self.params(**params))

    def remember(self, result: Any, **params: Any) -> None:
        """Store a result computed elsewhere (e.g. earlier in the lesson) for ``params``."""
        self.cache[self.key(**params)] = result

    def cached(self, **params: Any) -> Any:
        """The result for ``params`` from memory or disk, or :data:`~edutools.ground.cache.MISS`."""
        return self._cached(self.params(**params))

    def result(self, **params: Any) -> Any:
        """Result of ``run`` for ``params`` (default: the sliders' values), cached; runs here,
        in the calling thread, if no cache has it."""
        return self._result(self.params(**params))

    # The private forms take parameters :meth:`params` has already cleaned: one slider move
    # rounds each value once (the disk cache's key applies the same rule, idempotently).
    def _cached(self, full: Mapping[str, Any]) -> Any:
        key = _key(full)
        if key in self.cache:
            return self.cache[key]
        if self.disk_cache is not None:
            value = self.disk_cache.get(dict(full))
            if value is not MISS:
                self.cache[key] = value
                return value
        return MISS

    def _result(self, full: Mapping[str, Any]) -> Any:
        found = self._cached(full)
        if found is not MISS:
            return found
        value = self._run(**full)
        self._store(full, value)
        return value

    def _store(self, params: Mapping[str, Any], value: Any) -> None:
        self.cache[_key(params)] = value
        if self.disk_cache is not None:
            self.disk_cache.put(dict(params), value)

    # -- drawing -------------------------------------------------------------------------------

    def draw(self, result: Any, params: Mapping[str, Any], *, final: bool = True) -> None:
        """Draw ``result`` into the output widget (figures as images, printed text as text).

        A final result's rendered outputs are kept in memory (:attr:`MAX_DRAWN` settings), so
        going back to a setting only swaps images in: rendering a figure to PNG alone can take
        most of a second on a busy laptop. ``final=False`` (partial curves) is never kept.
        ``params``: the full, cleaned parameters (:meth:`params`)."""
        key = _key(params)
        kept = self._drawn.get(key) if final else None
        if kept is not None and kept[0] is result:
            self.output.outputs = kept[1]
            return
        with self._lock, _collect_figures() as figures, \
                contextlib.redirect_stdout(io.StringIO()) as text:
            self._show(result, **params)
        outputs = widgets.Output()  # build the new outputs off-screen, then swap them in at once
        for figure in figures:
            outputs.append_display_data(figure)
            plt.close(figure)
        if text.getvalue():
            outputs.append_stdout(text.getvalue())
        self.output.outputs = outputs.outputs
        if final:
            self._drawn.pop(key, None)
            self._drawn[key] = (result, outputs.outputs)
            while len(self._drawn) > self.MAX_DRAWN:  # dicts keep insertion order: drop oldest
                self._drawn.pop(next(iter(self._drawn)))

    def refresh(self) -> None:
        """Compute (or fetch) and draw the current setting, in this thread."""
        params = self.params()
        start = time.perf_counter()
        found = self._cached(params)
        self._say("from cache" if found is not MISS else f"running {_describe(params)} …")
        result = found if found is not MISS else self._result(params)
        self.draw(result, params)
        self._say("")
        self.last_timing = {"params": params, "cached": found is not MISS,
                            "first_feedback_s": 0.0,
                            "final_s": time.perf_counter() - start}

    def wait(self, timeout: float | None = None) -> None:
        """Block until the background run (if any) has finished: for scripts and tests."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout)

    def _on_change(self, _change: Mapping[str, Any]) -> None:
        self._generation += 1
        if not self.background:
            self.refresh()
            return
        generation, start = self._generation, time.perf_counter()
        params = self.params()
        found = self._cached(params)
        if found is not MISS:  # instant: draw here, no thread needed
            self.draw(found, params)
            self._say("")
            elapsed = time.perf_counter() - start
            self.last_timing = {"params": params, "cached": True, "first_feedback_s": elapsed,
                                "final_s": elapsed}
            return
        self._say(f"running {_describe(params)} … 0 s")
        self.last_timing = {"params": params, "cached": False,
                            "first_feedback_s": time.perf_counter() - start}
        self._worker = threading.Thread(target=self._run_in_background,
                                        args=(generation, params, start), daemon=True)
        self._worker.start()

    def _run_in_background(self, generation: int, params: dict[str, Any], start: float) -> None:
        done = threading.Event()
        last_draw = [-float("inf")]

        def tick() -> None:  # the status line counts seconds, even between partial results
            while not done.wait(0.5):
                if generation == self._generation:
                    self._say(f"running {_describe(params)} … {time.perf_counter() - start:.0f} s")

        def watch(partial: Any) -> None:
            if generation != self._generation:
                raise RunCancelled(f"slider moved on from {_describe(params)}")
            now = time.perf_counter()
            if now - last_draw[0] >= self.redraw_interval:
                # Counted from the start of a draw, so drawing time does not stretch the gaps.
                last_draw[0] = now
                self.draw(partial, params, final=False)

        ticker = threading.Thread(target=tick, daemon=True)
        ticker.start()
        try:
            extra = {"watch": watch} if self._watchable else {}
            result = self._run(**params, **extra)
        except RunCancelled:
            return
        except Exception as error:  # shown in the panel: a slider must never leave a traceback
            if generation == self._generation:
                self._say(f"<span style='color:#c62828'>{html.escape(type(error).__name__)}: "
                          f"{html.escape(str(error))}</span>")
            return
        finally:
            done.set()
        self._store(params, result)
        if generation == self._generation:
            self.draw(result, params)
            self._say(f"done in {time.perf_counter() - start:.1f} s (kept for next time)")
            self.last_timing["final_s"] = time.perf_counter() - start

    def _say(self, message: str) -> None:
        self.status.value = f"<i>{message}</i>" if message else ""

    def _ipython_display_(self) -> None:
        display(self.widget)
        if not self.output.outputs:
            self.refresh()


def _key(full: Mapping[str, Any]) -> Hashable:
    """The in-memory cache key of cleaned parameters."""
    return tuple(sorted(full.items()))


def _describe(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"
                     for name, value in params.items())


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
                 cache: dict[Hashable, Any] | None = None,
                 disk_cache: ResultCache | bool | None = True,
                 redraw_interval: float = 0.75, background: bool = True) -> ExperimentPanel:
    """Bind ``sliders`` (parameter name → widget) to ``run`` and ``show``.

    Args:
        run: ``run(**params)`` computes a result (picklable, for the disk cache); if it accepts
            ``watch``, it should call ``watch(partial_result)`` while it works.
        show: ``show(result, **params)`` draws a (partial or final) result.
        sliders: parameter name → ipywidgets value widget.
        fixed: parameters without a slider.
        cache: an in-memory dict to share between panels (or with a precomputation loop).
        disk_cache: ``True`` (default) = the disk cache of ``run``'s module
            (:func:`disk_cache_for`), ``False``/``None`` = none, or a ``ResultCache``.
        redraw_interval: least seconds between the starts of two redraws of partial results
            (default 0.75: with the drawing itself, a new figure at least once a second).
        background: run slider moves in a background thread (default); ``False`` runs them in
            the thread that moved the slider.
    """
    for name, slider in sliders.items():
        if not isinstance(slider, widgets.ValueWidget):
            raise ValueError(f"slider {name!r} must be an ipywidgets value widget, got {slider!r}")
        if getattr(slider, "continuous_update", False):
            slider.continuous_update = False
    if not callable(run) or not callable(show):
        raise TypeError(f"run and show must be callables, got {run!r} and {show!r}")
    if not redraw_interval >= 0:
        raise ValueError(f"redraw_interval must be ≥ 0 seconds, got {redraw_interval!r}")
    if disk_cache is True:
        disk_cache = disk_cache_for(run)
    elif disk_cache is False:
        disk_cache = None
    return ExperimentPanel(run, show, sliders, fixed=fixed, cache=cache, disk_cache=disk_cache,
                           redraw_interval=redraw_interval, background=background)
