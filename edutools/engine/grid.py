"""Run an experiment over a grid of parameters × seeds, in parallel processes, with a disk cache.

:func:`run_grid` calls ``run(**fixed, **configuration, seed=seed)`` for every configuration of the
grid and every seed and returns one tidy DataFrame row per call. It

* checks every configuration *before* anything runs (names the run function does not accept,
  ``momentum`` outside [0, 1), a ``batch_size`` larger than the data, ``lr`` ≤ 0, plus your own
  ``validate``), so a typo fails in a second instead of after an hour;
* looks each call up in a :class:`~edutools.ground.cache.ResultCache` first and computes only the
  missing ones, so re-running a lesson, or a slider landing on a grid point, is instant;
* runs the missing calls through joblib: local processes (``loky``) by default, each with one
  torch thread (two workers on two cores beat two workers fighting over four threads), or any
  joblib backend — a Dask or Ray cluster runs the same grid with no change to the run function;
* seeds Python, NumPy and torch with ``seed`` before each call, so a run gives the same numbers
  whichever worker, process or machine executes it.

The run function must be defined at module level in an importable module (processes receive it
by reference), take ``seed`` as a keyword, and return a mapping of names to numbers (or short
1-D lists). A run that diverges should return NaN/inf, not raise: its row is kept, which is
often the point of the lesson. A run that raises stops the grid with a :class:`GridRunError`
naming the configuration; results finished before it stay cached.
"""

from __future__ import annotations

import itertools
import os
import traceback
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import joblib
import pandas as pd
import torch

from edutools.engine.grid_checks import (
    check_configurations,
    check_parameter_names,
    check_seeds,
    expand_grid,
    tidy_result,
)
from edutools.ground.cache import MISS, ResultCache, code_version
from edutools.ground.device import progress_disabled, seed_everything
from edutools.ground.progress import progress_bar  # text that leaves nothing behind
from edutools.ground.workers import exit_with_parent

__all__ = ["GridRunError", "grid_cache", "run_grid"]


class GridRunError(RuntimeError):
    """A run of the grid raised; the message names its configuration and seed.

    Attributes:
        configuration: the grid parameters of the failing call (without ``fixed``).
        seed: its seed.
        worker_traceback: the traceback text from the process that ran it.
    """

    def __init__(self, message: str, *, configuration: dict[str, Any], seed: int,
                 worker_traceback: str):
        super().__init__(message)
        self.configuration = configuration
        self.seed = seed
        self.worker_traceback = worker_traceback


@dataclass(frozen=True)
class _Outcome:
    """What a worker sends back: the tidy result, or the error text (never an exception object,
    which may not survive pickling between processes)."""

    index: int
    result: dict[str, Any] | None
    error: str | None = None
    traceback: str | None = None


def _execute(run: Callable[..., Mapping[str, Any]], kwargs: dict[str, Any], seed: int,
             index: int, parent_pid: int | None = None) -> _Outcome:
    """Run one call in a worker with one torch thread and seeded RNGs; never raises. A local
    worker ends itself if ``parent_pid`` (the process running the grid) disappears."""
    if parent_pid is not None:
        exit_with_parent(parent_pid)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        seed_everything(seed)
        return _Outcome(index, tidy_result(run(**kwargs, seed=seed)))
    except Exception as error:  # reported to the parent with its configuration
        return _Outcome(index, None, f"{type(error).__name__}: {error}", traceback.format_exc())
    finally:
        if previous != 1:  # in-process (n_jobs=1): give the caller its thread count back
            torch.set_num_threads(previous)


def _run_name(run: Callable[..., Any]) -> str:
    return f"{getattr(run, '__module__', '?')}.{getattr(run, '__qualname__', repr(run))}"


def grid_cache(run: Callable[..., Any], *, depends_on: Sequence[Any] = ()) -> ResultCache:
    """The default cache of :func:`run_grid` for ``run``: under ``$EDUTOOLS_CACHE_DIR`` (or the
    user's cache directory), versioned by :func:`code_version` of ``run`` (and its module) and
    of ``depends_on``. Call ``grid_cache(run).clear()`` to forget every result of ``run``."""
    return ResultCache(f"grid-{_run_name(run)}", version=code_version(run, *depends_on))


def _resolve_cache(cache: ResultCache | bool | None, run: Callable[..., Any],
                   depends_on: Sequence[Any]) -> ResultCache | None:
    if cache is True:
        return grid_cache(run, depends_on=depends_on)
    if cache is None or cache is False:
        return None
    if isinstance(cache, ResultCache):
        return cache
    raise TypeError(f"cache must be True, False, None or a ResultCache, got {cache!r}")


def _check_parallel_arguments(backend: str | None, n_jobs: int | None) -> None:
    if n_jobs is not None and (isinstance(n_jobs, bool) or not isinstance(n_jobs, int)
                               or n_jobs == 0):
        raise ValueError(f"n_jobs must be a non-zero whole number or None, got {n_jobs!r}")
    if backend is not None and not isinstance(backend, str):
        raise TypeError(f"backend must be a joblib backend name or None, got {backend!r}")


def _parallel_setup(backend: str | None, n_jobs: int | None,
                    n_tasks: int) -> tuple[dict[str, Any], int]:
    """Keyword arguments for ``joblib.parallel_config`` and the number of jobs to ask for.

    Without a backend named here or set by an enclosing ``joblib.parallel_config``, local loky
    processes with one thread per worker (``inner_max_num_threads=1`` sets ``OMP_NUM_THREADS``
    and friends in the workers before torch starts). A backend set by the caller is respected.
    """
    _check_parallel_arguments(backend, n_jobs)
    loky = joblib.parallel.BACKENDS["loky"]
    if backend is None:
        active, active_n_jobs = joblib.parallel.get_active_backend()
        if isinstance(active, loky) and active.inner_max_num_threads is None:
            backend = "loky"
        else:
            return {}, n_jobs if n_jobs is not None else (active_n_jobs or -1)
    if backend == "loky":
        jobs = n_jobs if n_jobs is not None else min(n_tasks, joblib.cpu_count())
        return {"backend": "loky", "inner_max_num_threads": 1}, jobs
    return {"backend": backend}, n_jobs if n_jobs is not None else -1


def _outcomes_as_they_finish(calls: Iterable[Any], jobs: int) -> Iterator[_Outcome]:
    """The calls' outcomes, each handed back as soon as the active joblib backend allows.

    Backends that stream results (``loky``, ``threading``, ``dask``) yield every outcome the
    moment it is done, in any order. joblib's ``multiprocessing``-derived backends, Ray's
    included, cannot return a generator: there the calls go in waves of one call per worker
    through one pool kept open between waves, so the progress bar and the cache still advance
    after every wave instead of once at the very end.
    """
    backend, _ = joblib.parallel.get_active_backend()
    if backend.supports_return_generator:
        yield from joblib.Parallel(n_jobs=jobs, return_as="generator_unordered")(calls)
        return
    calls = iter(calls)
    wave_size = max(1, joblib.effective_n_jobs(jobs))
    with joblib.Parallel(n_jobs=jobs, return_as="list") as parallel:
        while wave := list(itertools.islice(calls, wave_size)):
            yield from parallel(wave)


def run_grid(
    run: Callable[..., Mapping[str, Any]],
    grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]],
    *,
    seeds: Sequence[int] = (0,),
    fixed: Mapping[str, Any] | None = None,
    n_jobs: int | None = None,
    backend: str | None = None,
    cache: ResultCache | bool | None = True,
    depends_on: Sequence[Any] = (),
    num_samples: int | None = None,
    validate: Callable[[dict[str, Any]], None] | None = None,
    allowed: Collection[str] | None = None,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Call ``run`` for every configuration × seed; one DataFrame row per call.

    Args:
        run: module-level function ``run(**params, seed=...) -> {name: number or 1-D list}``.
        grid: ``{"momentum": [0, 0.9], "batch_size": [32, 64]}`` (all combinations, the last
            name varying fastest) or a list of configurations ``[{"momentum": 0.9, ...}, ...]``.
        seeds: seeds per configuration (whole numbers, no repeats); passed as ``seed=``.
        fixed: keyword arguments shared by every call (part of the cache key, not columns).
        n_jobs: parallel workers; ``1`` runs in this process. Default: one per CPU (at most
            one per call) for local processes, every worker of a cluster backend.
        backend: a joblib backend name (``"loky"``, ``"dask"`` with a
            ``dask.distributed.Client`` open, ``"ray"`` after ``ray.util.joblib.register_ray()``);
            default: the one set by an enclosing ``joblib.parallel_config``, else local ``loky``
            processes with one torch thread each.
        cache: ``True`` for :func:`grid_cache` (``$EDUTOOLS_CACHE_DIR``), a
            :class:`ResultCache` of your own, or ``False``/``None`` for none. The key holds the
            run function's name, ``fixed``, the configuration and the seed.
        depends_on: further modules/functions whose source is part of the default cache's
            version (the run's own module and every module it imports always are).
        num_samples: training-set size, to check ``batch_size`` ≤ ``num_samples``.
        validate: your own check, called with each full parameter dict before anything runs;
            it should raise ``ValueError`` for a bad configuration.
        allowed: parameter names ``run`` accepts, when its signature has ``**kwargs``.
        progress: show a progress bar; default: yes unless ``EDUTOOLS_QUIET`` or ``CI`` is set.

    Returns:
        DataFrame with the grid's parameter columns, ``seed``, then the run's result names;
        configurations in grid order, seeds within each. ``df.attrs`` holds ``computed`` and
        ``cached`` (how many calls ran now and how many came from the cache).

    Raises:
        ValueError / TypeError: for bad input, before any run starts.
        GridRunError: when a run raises; the message names its configuration and seed.
    """
    if not callable(run):
        raise TypeError(f"run must be a function, got {run!r}")
    _check_parallel_arguments(backend, n_jobs)
    configurations = expand_grid(grid)
    seed_list = check_seeds(seeds)
    fixed = dict(fixed or {})
    names = check_parameter_names(run, configurations, fixed, allowed=allowed)
    check_configurations(configurations, fixed, num_samples=num_samples, validate=validate)
    store = _resolve_cache(cache, run, depends_on)

    tasks = [(configuration, seed) for configuration in configurations for seed in seed_list]
    results: list[dict[str, Any] | None] = [None] * len(tasks)
    keys = [{"run": _run_name(run), "params": {**fixed, **configuration}, "seed": seed}
            for configuration, seed in tasks]
    if store is not None:
        for index, key in enumerate(keys):
            try:
                value = store.get(key)
            except TypeError as error:  # a parameter with no stable text, e.g. a model object
                raise TypeError(f"{error} (or run with cache=False)") from error
            if value is not MISS:
                results[index] = value
    todo = [index for index, value in enumerate(results) if value is None]

    if todo:
        config_kwargs, jobs = _parallel_setup(backend, n_jobs, len(todo))
        quiet = progress_disabled() if progress is None else not progress
        bar = progress_bar(total=len(todo), disable=quiet,
                           desc=f"grid ({len(tasks) - len(todo)} cached)")
        calls = (joblib.delayed(_execute)(run, {**fixed, **tasks[i][0]}, tasks[i][1], i,
                                          os.getpid()) for i in todo)
        try:
            with joblib.parallel_config(**config_kwargs):
                outcomes = _outcomes_as_they_finish(calls, jobs)
                for outcome in outcomes:
                    configuration, seed = tasks[outcome.index]
                    if outcome.error is not None:
                        raise GridRunError(
                            f"run_grid: {_run_name(run)} failed for configuration "
                            f"{configuration} with seed={seed}: {outcome.error}\n"
                            f"Traceback in the worker:\n{outcome.traceback}",
                            configuration=configuration, seed=seed,
                            worker_traceback=outcome.traceback or "")
                    _check_result_names(outcome.result, names, configuration, seed)
                    results[outcome.index] = outcome.result
                    if store is not None:
                        store.put(keys[outcome.index], outcome.result)
                    bar.update()
        finally:
            bar.close()

    rows = [{**configuration, "seed": seed, **result}
            for (configuration, seed), result in zip(tasks, results, strict=True)]
    frame = pd.DataFrame(rows)
    frame.attrs.update(computed=len(todo), cached=len(tasks) - len(todo))
    return frame


def _check_result_names(result: dict[str, Any], parameter_names: list[str],
                        configuration: dict[str, Any], seed: int) -> None:
    clash = sorted(set(result) & {*parameter_names, "seed"})
    if clash:
        raise ValueError(
            f"the run for configuration {configuration} with seed={seed} returned "
            f"{clash}, which are also parameter columns; rename those results"
        )
