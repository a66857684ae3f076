"""Fill the slider panels' disk caches ahead of time: ``python -m edutools.face.precompute``.

Every slider panel of the course is bound to a module-level run function and a grid of slider
values (:data:`SLIDER_GRIDS`). This command computes every grid point that is not cached yet, in
parallel worker processes with one torch thread each, and stores the results where the lessons'
panels look for them (:func:`edutools.face.widgets.panel.disk_cache_for`, keyed by the cleaned
parameters and the run module's code version). Afterwards every slider move in those lessons is
answered from the cache in well under a second.

Instructors: run it once before a workshop (``--lesson 00 --lesson 03`` for some lessons only).
Binder runs it in ``binder/postBuild``, so Binder learners get instant sliders.
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from edutools.face.widgets.panel import disk_cache_for
from edutools.face.widgets.sliders import clean_value
from edutools.ground.cache import MISS
from edutools.ground.workers import exit_with_parent


@dataclass(frozen=True)
class SliderGrid:
    """The grid one lesson's slider panel can reach.

    Attributes:
        lesson: the lesson's number, e.g. ``"00"``.
        name: a short name of the panel, e.g. ``"momentum × batch size"``.
        run: the panel's module-level run function.
        grid: parameter name → the values its slider offers.
        fixed: the parameters the lesson passes as ``fixed=`` in full mode (e.g. ``seed``).
    """

    lesson: str
    name: str
    run: Callable[..., Any]
    grid: Mapping[str, Sequence[Any]]
    fixed: Mapping[str, Any] = field(default_factory=dict)

    def points(self) -> list[dict[str, Any]]:
        """Every parameter set of the grid, cleaned as the panel cleans slider values."""
        names = list(self.grid)
        return [{name: clean_value(value) for name, value in
                 {**self.fixed, **dict(zip(names, combo, strict=True))}.items()}
                for combo in itertools.product(*(self.grid[name] for name in names))]


def slider_grids() -> list[SliderGrid]:
    """The course's slider grids, in lesson order (imported lazily: they pull in the engine)."""
    from edutools.face.precompute_registry import SLIDER_GRIDS

    return list(SLIDER_GRIDS)


def _compute(run: Callable[..., Any], params: dict[str, Any]) -> Any:
    # Worker processes share the machine: one torch thread each (see edutools.ground.threads),
    # and no progress bars: the one line per point below says what happened.
    import torch

    quiet = os.environ.get("EDUTOOLS_QUIET")
    os.environ["EDUTOOLS_QUIET"] = "1"
    torch.set_num_threads(1)
    try:
        return run(**params)
    finally:  # with n_jobs=1 this is the caller's process: leave its settings as they were
        if quiet is None:
            del os.environ["EDUTOOLS_QUIET"]
        else:
            os.environ["EDUTOOLS_QUIET"] = quiet


@dataclass(frozen=True)
class PrecomputeReport:
    """What :func:`precompute` did: points already cached, computed, failed, and the wall time."""

    cached: int
    computed: int
    failed: tuple[str, ...]
    seconds: float


def precompute(grids: Sequence[SliderGrid], *, n_jobs: int = 2,
               progress: bool = True) -> PrecomputeReport:
    """Compute and cache every point of ``grids`` that no cache holds yet.

    Args:
        grids: the slider grids to fill.
        n_jobs: worker processes (each with one torch thread); 1 runs here, in this process.
        progress: print one line per grid point.
    """
    from joblib import Parallel, delayed

    if n_jobs < 1:
        raise ValueError(f"n_jobs must be ≥ 1, got {n_jobs!r}")
    start = time.perf_counter()
    todo, cached = [], 0
    for grid in grids:
        cache = disk_cache_for(grid.run)
        if cache is None:
            raise ValueError(f"lesson {grid.lesson} panel {grid.name!r}: its run function "
                             f"{grid.run!r} is not a module-level function, so it has no cache")
        for params in grid.points():
            if cache.get(params) is MISS:
                todo.append((grid, cache, params))
            else:
                cached += 1
    if progress:
        print(f"{cached} grid points already cached, {len(todo)} to compute with "
              f"{n_jobs} worker(s)", flush=True)
    failed: list[str] = []
    results = Parallel(n_jobs=n_jobs, return_as="generator")(
        delayed(_safe_compute)(grid.run, params, os.getpid()) for grid, _, params in todo)
    for (grid, cache, params), (value, error, seconds) in zip(todo, results, strict=True):
        label = f"{grid.lesson} {grid.name}: " + ", ".join(f"{k}={v}" for k, v in params.items())
        if error is None:
            cache.put(params, value)
        else:
            failed.append(f"{label}: {error}")
        if progress:
            print(f"  {'ok  ' if error is None else 'FAIL'} {seconds:6.1f} s  {label}"
                  f"{'' if error is None else ' — ' + error}", flush=True)
    return PrecomputeReport(cached=cached, computed=len(todo) - len(failed),
                            failed=tuple(failed), seconds=time.perf_counter() - start)


def _safe_compute(run: Callable[..., Any], params: dict[str, Any], parent_pid: int | None = None
                  ) -> tuple[Any, str | None, float]:
    """(result, None, seconds), or (None, the error, seconds): one bad point must not lose the
    others. A worker ends itself if ``parent_pid`` (the precompute process) disappears."""
    if parent_pid is not None:
        exit_with_parent(parent_pid)
    start = time.perf_counter()
    try:
        value, error = _compute(run, params), None
    except Exception as failure:
        value, error = None, f"{type(failure).__name__}: {failure}"
    return value, error, time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m edutools.face.precompute [--lesson NN ...] [--jobs N]``."""
    parser = argparse.ArgumentParser(prog="python -m edutools.face.precompute",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--lesson", action="append", metavar="NN",
                        help="only this lesson's panels (repeatable); default: all")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="worker processes, one torch thread each (default: 2)")
    parser.add_argument("--list", action="store_true", help="list the grids and exit")
    args = parser.parse_args(argv)
    # A plain `kill` ends the run like Ctrl-C: joblib stops its workers on the way out (and
    # after kill -9 the workers end themselves: edutools.ground.workers).
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        return _run(parser, args)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    grids = [g for g in slider_grids() if not args.lesson or g.lesson in args.lesson]
    if args.lesson and not grids:
        parser.error(f"no slider grid for lesson(s) {args.lesson}")
    for grid in grids:
        print(f"lesson {grid.lesson}, {grid.name}: {len(grid.points())} points "
              f"({grid.run.__module__}.{grid.run.__qualname__})")
    if args.list:
        return 0
    report = precompute(grids, n_jobs=args.jobs)
    print(f"done in {report.seconds:.0f} s: {report.computed} computed, {report.cached} were "
          f"cached, {len(report.failed)} failed", flush=True)
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
