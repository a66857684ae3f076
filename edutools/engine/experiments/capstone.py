"""Lesson 07's capstone: the seed network over momentum × batch size × learning rate, measured
for accuracy, speed, the cheap stability proxies and the curvature against its edges.

One run (:func:`capstone_run`) trains the lesson-00 network (flatten → 128 ReLU → dropout 0.2 →
10, softmax cross-entropy, SGD with heavy-ball momentum) on the shipped MNIST subset for a fixed
number of epochs, then measures λ_max and batch sharpness once at the end. It returns a flat dict
of numbers and short per-epoch curves, so :func:`edutools.engine.grid.run_grid` can run it in
parallel processes and keep it in its disk cache; :func:`run_capstone_grid` runs the lesson's
whole grid that way, and :func:`capstone_curves` (the slider panel's run function) looks one
configuration up in that same cache.

Momentum follows ``torch.optim.SGD``: ``v ← βv + g``, ``θ ← θ − ηv``. Engine layer: nothing here
draws.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from edutools.engine.experiments.seed_network import seed_network_model
from edutools.engine.grid import run_grid
from edutools.engine.sharpness import batch_sharpness, lambda_max
from edutools.engine.sharpness.meters import BatchSharpnessMeter, LambdaMaxMeter
from edutools.engine.training import RunRecord, train
from edutools.ground.data import Dataset, load_mnist_subset
from edutools.ground.models import cross_entropy
from edutools.ground.theory import momentum_edge, small_batch_momentum_edge
from edutools.ground.validation import check_fraction, check_positive_int

__all__ = ["CAPSTONE_LR", "CURVATURE_CONFIGS", "CURVES", "LR_FACTORS", "PROXIES", "SETTINGS",
           "SLIDER_GRID", "CapstoneRun", "CapstoneSettings", "capstone_configurations",
           "capstone_curvature_run",
           "capstone_curves", "capstone_run", "capstone_settings", "epochs_to_reach",
           "run_capstone_grid", "run_curvature_runs"]

#: The course's grid (lesson 00's sliders): momentum β × batch size B, and the seed recipe's η.
SLIDER_GRID: dict[str, tuple[Any, ...]] = {"momentum": (0.0, 0.5, 0.9, 0.95, 0.99),
                                           "batch_size": (32, 64, 128, 256)}
CAPSTONE_LR = 0.01
#: Learning-rate variants for the sensitivity test: η/2, η, 2η.
LR_FACTORS: tuple[float, ...] = (0.5, 1.0, 2.0)
#: The three cheap stability proxies recorded by ``train`` (medians over the second half).
PROXIES: tuple[str, ...] = ("loss_var", "grad_norm", "val_jitter")
#: Per-epoch curves a run returns (for the slider panel).
CURVES: tuple[str, ...] = ("train_loss", "val_loss", "val_acc", "loss_var", "grad_norm",
                           "val_jitter")


@dataclass(frozen=True)
class CapstoneSettings:
    """The budget of one lesson run (full or FAST mode).

    Attributes:
        fast: which mode these settings are for (slider panels pass it on).
        epochs: passes over the training set per run (equal for every configuration).
        num_train: training digits used (of 4,000); validation always uses 1,000.
        seeds: seeds of every configuration at η.
        sensitivity_seeds: seeds (a prefix of ``seeds``) of the η/2 and 2η runs.
        momenta, batch_sizes: the grid (a subset of :data:`SLIDER_GRID` in FAST mode).
        lr: the base learning rate η.
        target_acc: validation accuracy that defines "reached" for the speed measure.
        curvature_batches: mini-batches averaged for batch sharpness at the end.
    """

    fast: bool
    epochs: int
    num_train: int
    seeds: tuple[int, ...]
    sensitivity_seeds: tuple[int, ...]
    momenta: tuple[float, ...]
    batch_sizes: tuple[int, ...]
    lr: float = CAPSTONE_LR
    target_acc: float = 0.9
    curvature_batches: int = 50

    @property
    def fixed(self) -> dict[str, Any]:
        """Keyword arguments every run of the grid shares (part of the cache key)."""
        return {"epochs": self.epochs, "num_train": self.num_train,
                "target_acc": self.target_acc, "curvature_batches": self.curvature_batches}


def capstone_settings(*, fast: bool, seed: int = 0) -> CapstoneSettings:
    """The lesson's settings: full mode = the whole 5 × 4 grid, 3 seeds, η/2 and 2η on every
    seed; FAST = the same code on 3 momenta × 2 batch sizes, 2 seeds, 2,000 digits, fewer
    epochs. ``seed`` shifts every seed (the lesson's ``SEED``)."""
    if fast:
        return CapstoneSettings(fast=True, epochs=5, num_train=2000,
                                seeds=(seed, seed + 1), sensitivity_seeds=(seed, seed + 1),
                                momenta=(0.0, 0.9, 0.99), batch_sizes=(32, 256),
                                target_acc=0.85, curvature_batches=30)
    seeds = (seed, seed + 1, seed + 2)
    return CapstoneSettings(fast=False, epochs=10, num_train=4000, seeds=seeds,
                            sensitivity_seeds=seeds, momenta=SLIDER_GRID["momentum"],
                            batch_sizes=SLIDER_GRID["batch_size"])


@functools.lru_cache(maxsize=4)
def _digits(seed: int, num_train: int) -> Dataset:
    # Cached per process: a worker running many configurations reads the file once per seed.
    return load_mnist_subset(seed=seed).subset(num_train)


def _second_half(values: np.ndarray) -> float:
    """Median of the finite values over the second half of the epochs (the first is epoch 0)."""
    late = values[len(values) // 2:]
    late = late[np.isfinite(late)]
    return float(np.median(late)) if len(late) else math.nan


def epochs_to_reach(curve: np.ndarray, target: float) -> float:
    """Fractional epoch at which ``curve`` (one value per epoch, epoch 0 first) first reaches
    ``target``, interpolated linearly between the two epochs around the crossing; NaN if never."""
    curve = np.asarray(curve, dtype=float)
    above = np.flatnonzero(curve >= target)
    if not len(above):
        return math.nan
    k = int(above[0])
    if k == 0:
        return 0.0
    return (k - 1) + float((target - curve[k - 1]) / (curve[k] - curve[k - 1]))


def capstone_run(*, momentum: float, batch_size: int, lr: float, epochs: int, num_train: int,
                 target_acc: float, curvature_batches: int, seed: int) -> dict[str, Any]:
    """Train the seed network once and measure it; a :func:`run_grid` run function.

    Args:
        momentum: heavy-ball β in [0, 1).
        batch_size: mini-batch size B (≤ ``num_train``).
        lr: learning rate η.
        epochs: passes over the training set (``num_train // B`` steps each).
        num_train: training digits used (the first of the seeded 4,000/1,000 split).
        target_acc: validation accuracy in [0, 1) that counts as reached.
        curvature_batches: mini-batches of size B averaged for batch sharpness.
        seed: seeds the split, the initial weights (equal for every β, B, η), batches and dropout.

    Returns:
        ``final_val_acc``, ``best_val_acc``; ``epochs_to_target`` (:func:`epochs_to_reach`:
        the interpolated epoch where validation accuracy first reaches ``target_acc``, NaN if
        never); the proxies of :data:`PROXIES` and
        ``relative_loss_var`` (loss variance / training loss²) as medians over the second half;
        ``lambda_max`` and ``batch_sharpness`` at the end, with ``batch_sharpness_se`` (the
        standard error over the ``curvature_batches`` batches), both measured in eval mode
        (dropout off: the curvature of the network that is evaluated, while SGD descends the
        dropout loss), NaN after a divergence;
        the edges ``upper_edge`` = 2(1+β)/η and ``lower_edge`` = 2(1−β)/η, the ratios
        ``lambda_ratio`` = λ_max/upper and ``bs_ratio`` = batch sharpness/lower, and
        ``edge_ratio`` = the larger ratio (1 = on the nearest edge); ``diverged``; and one list
        per name in :data:`CURVES` (epochs 0…``epochs``).
    """
    epochs = check_positive_int(epochs, name="epochs")
    target_acc = check_fraction(target_acc, name="target_acc")
    data = _digits(int(seed), int(num_train))
    steps_per_epoch = data.num_train // batch_size
    model = seed_network_model(data, seed=seed)
    result = train(model, data, lr=lr, momentum=momentum, batch_size=batch_size,
                   num_steps=epochs * steps_per_epoch, measure_every=steps_per_epoch,
                   loss_fn="cross_entropy", seed=seed, progress=False)
    record = result.record
    val_acc = record["val_acc"].to_numpy(dtype=float)
    upper, lower = momentum_edge(lr, momentum), small_batch_momentum_edge(lr, momentum)
    if result.diverged:
        sharpness = bs = bs_se = math.nan
    else:
        sharpness = lambda_max(model, cross_entropy, data.X_train, data.y_train, tol=1e-3,
                               seed=seed)
        measured = batch_sharpness(model, cross_entropy, data.X_train, data.y_train,
                                   batch_size=batch_size, num_batches=curvature_batches,
                                   seed=seed)
        bs, bs_se = measured.mean, measured.standard_error
    out: dict[str, Any] = {
        "final_val_acc": float(val_acc[-1]),
        "best_val_acc": float(np.nanmax(val_acc)),
        "epochs_to_target": epochs_to_reach(val_acc, target_acc),
        **{name: _second_half(record[name].to_numpy(dtype=float)) for name in PROXIES},
        "relative_loss_var": _second_half(
            (record["loss_var"] / record["train_loss"] ** 2).to_numpy(dtype=float)),
        "lambda_max": sharpness, "batch_sharpness": bs, "batch_sharpness_se": bs_se,
        "upper_edge": upper, "lower_edge": lower,
        "lambda_ratio": sharpness / upper, "bs_ratio": bs / lower,
        "edge_ratio": max(sharpness / upper, bs / lower),
        "diverged": bool(result.diverged),
    }
    out.update({f"{name}_curve": record[name].to_numpy(dtype=float) for name in CURVES})
    return out


#: Configurations whose curvature lesson 07 follows over training, each at η and 2η: the seed
#: recipe (far below its edge), and β = 0.99 with the smallest and the largest batch (the same
#: effective step η/(1−β) and the same edge 2(1−β)/η, noise scales η/(B(1−β)) 8× apart).
CURVATURE_CONFIGS: tuple[dict[str, Any], ...] = (
    {"momentum": 0.9, "batch_size": 64}, {"momentum": 0.99, "batch_size": 32},
    {"momentum": 0.99, "batch_size": 256})


def capstone_curvature_run(*, momentum: float, batch_size: int, lr: float, epochs: int,
                           num_train: int, curvature_batches: int, seed: int) -> dict[str, Any]:
    """The seed network trained as in :func:`capstone_run`, with λ_max and batch sharpness
    measured after every epoch; a :func:`run_grid` run function (same data, init and batches).

    Returns per-epoch lists (epochs 0…``epochs``): ``lambda_max_curve``,
    ``batch_sharpness_curve`` and ``batch_sharpness_se_curve`` (eval mode, dropout off; fresh
    batches of size B each epoch), ``train_loss_curve``, ``val_acc_curve``; and the edges
    ``upper_edge`` = 2(1+β)/η and ``lower_edge`` = 2(1−β)/η, ``final_val_acc``, ``diverged``.
    """
    epochs = check_positive_int(epochs, name="epochs")
    data = _digits(int(seed), int(num_train))
    steps_per_epoch = data.num_train // batch_size
    model = seed_network_model(data, seed=seed)
    # 1% is ample here (λ_max sits far below 2(1+β)/η) and keeps the per-epoch solves cheap.
    meters = [LambdaMaxMeter(tol=1e-2),
              BatchSharpnessMeter(num_batches=curvature_batches, seed=seed)]
    result = train(model, data, lr=lr, momentum=momentum, batch_size=batch_size,
                   num_steps=epochs * steps_per_epoch, measure_every=steps_per_epoch,
                   loss_fn="cross_entropy", seed=seed, progress=False, callbacks=meters)
    record = result.record
    out: dict[str, Any] = {
        f"{name}_curve": record[name].to_numpy(dtype=float) if name in record else
        np.full(len(record), math.nan)
        for name in ("lambda_max", "batch_sharpness", "batch_sharpness_se", "train_loss",
                     "val_acc")}
    out.update(upper_edge=momentum_edge(lr, momentum),
               lower_edge=small_batch_momentum_edge(lr, momentum),
               final_val_acc=float(record["val_acc"].iloc[-1]), diverged=bool(result.diverged))
    return out


def run_curvature_runs(settings: CapstoneSettings, *, n_jobs: int | None = 2,
                       backend: str | None = None, cache: Any = True) -> pd.DataFrame:
    """:func:`capstone_curvature_run` for every :data:`CURVATURE_CONFIGS` entry at η and 2η,
    first seed of ``settings`` (through :func:`run_grid`: parallel and cached)."""
    configurations = [{**c, "lr": settings.lr * f} for f in (1.0, 2.0) for c in CURVATURE_CONFIGS]
    fixed = {k: v for k, v in settings.fixed.items() if k != "target_acc"}
    return run_grid(capstone_curvature_run, configurations, seeds=settings.seeds[:1],
                    fixed=fixed, n_jobs=n_jobs, backend=backend, cache=cache,
                    num_samples=settings.num_train)


def capstone_configurations(settings: CapstoneSettings) -> list[dict[str, Any]]:
    """Every (momentum, batch_size, lr) of the lesson's grid, in a fixed order: all at η first,
    then the η/2 and 2η variants (one list, so the sensitivity runs share the cache)."""
    return [{"momentum": m, "batch_size": b, "lr": settings.lr * factor}
            for factor in sorted(LR_FACTORS, key=lambda f: f != 1.0)
            for m in settings.momenta for b in settings.batch_sizes]


def run_capstone_grid(settings: CapstoneSettings, *, n_jobs: int | None = 2,
                      backend: str | None = None, cache: Any = True) -> pd.DataFrame:
    """Run (or fetch from the disk cache) every run of the lesson's grid; one row per run.

    The η runs use ``settings.seeds``, the η/2 and 2η runs ``settings.sensitivity_seeds``.
    ``n_jobs``/``backend`` go to :func:`run_grid` (e.g. ``backend="dask"`` with a
    ``dask.distributed.Client`` open). Columns: ``momentum``, ``batch_size``, ``lr``, ``seed``
    and the results of :func:`capstone_run`; ``attrs`` says how many runs came from the cache.
    """
    configurations = capstone_configurations(settings)
    at_lr = [c for c in configurations if c["lr"] == settings.lr]
    others = [c for c in configurations if c["lr"] != settings.lr]
    frames = []
    for group, seeds in ((at_lr, settings.seeds), (others, settings.sensitivity_seeds)):
        if group:
            frames.append(run_grid(capstone_run, group, seeds=seeds, fixed=settings.fixed,
                                   n_jobs=n_jobs, backend=backend, cache=cache,
                                   num_samples=settings.num_train))
    runs = pd.concat(frames, ignore_index=True)
    runs.attrs.update(computed=sum(f.attrs["computed"] for f in frames),
                      cached=sum(f.attrs["cached"] for f in frames))
    return runs


#: The settings columns of a grid row (the rest are :func:`capstone_run`'s results; the fixed
#: settings, ``epochs``…, are the grid's ``fixed``).
SETTINGS: tuple[str, ...] = ("momentum", "batch_size", "lr", "seed")


@dataclass(frozen=True, eq=False, kw_only=True, repr=False)
class CapstoneRun(RunRecord):
    """One grid run as a :class:`~edutools.engine.training.record.RunRecord`: what the slider
    panel draws.

    Attributes:
        record: one row per epoch (``epoch`` 0…``epochs``) with the :data:`CURVES` columns.
        config: the run's settings: :data:`SETTINGS` (β, B, η, seed) and the grid's fixed ones
            (``epochs``, ``num_train``, ``target_acc``, ``curvature_batches``).
        summary: :func:`capstone_run`'s scalar results (``final_val_acc``, ``lambda_max``,
            ``batch_sharpness``, ``edge_ratio``, ``diverged``, …).
    """

    summary: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: Mapping[str, Any], *,
                 fixed: Mapping[str, Any] | None = None) -> CapstoneRun:
        """The run of one row of :func:`run_capstone_grid`'s table (settings and results);
        ``fixed``: the grid's fixed settings (:attr:`CapstoneSettings.fixed`)."""
        curves = {name: np.asarray(row[f"{name}_curve"], dtype=float) for name in CURVES}
        record = pd.DataFrame({"epoch": np.arange(len(curves["val_acc"])), **curves})
        config = {**{name: row[name] for name in SETTINGS if name in row}, **(fixed or {})}
        summary = {name: value for name, value in row.items()
                   if name not in config and not name.endswith("_curve")}
        return cls(record=record, config=config, summary=summary,
                   diverged=bool(summary.get("diverged", False)),
                   message=f"final validation accuracy {summary['final_val_acc']:.3f}")


def capstone_curves(*, momentum: float, batch_size: int, lr: float = CAPSTONE_LR,
                    seed: int = 0, fast: bool = False) -> CapstoneRun:
    """One configuration's run, looked up in the grid's disk cache (trained if missing): the
    slider panel's run function. Returns the grid row as a :class:`CapstoneRun`."""
    settings = capstone_settings(fast=fast)
    row = run_grid(capstone_run, [{"momentum": momentum, "batch_size": int(batch_size),
                                   "lr": lr}], seeds=(seed,), fixed=settings.fixed, n_jobs=1,
                   progress=False).iloc[0]
    return CapstoneRun.from_row(row.to_dict(), fixed=settings.fixed)

