"""SAM with heavy-ball momentum at two batch sizes (lesson 06), against lesson 03's plateaus.

Lesson 03 (Andreyev et al. 2026): with heavy ball (β, η) full-batch training holds λ_max at
2(1+β)/η, and small batches hold *batch sharpness* near 2(1−β)/η. SAM changes the step: to
first order in ρ it moves along d = g + (ρ/‖g‖)·H g instead of g, so along an eigen-direction the
curvature the step feels is λ + ρλ²/‖g‖ (Long & Bartlett 2023). Heavy ball is stable while
that stays below 2(1+β)/η, which gives SAM's momentum edge (:func:`sam_momentum_edge`); on a
mini-batch, the curvature the SAM step feels along its own direction is
d_Bᵀ H_B d_B / (g_Bᵀ d_B) (:class:`SamBatchSharpnessMeter`), which is plain batch sharpness when
ρ = 0.

* :func:`sam_momentum_run` — SGD or SAM, both with heavy ball, on lesson 01's network, full batch
  or mini-batches, measuring λ_max and (mini-batches) both batch sharpnesses.
* :func:`sam_plateau_table` — the settled values in units of the edges.

Engine layer: nothing here draws.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from edutools.engine.sam import SAM
from edutools.engine.sharpness import HessianOperator, LambdaMaxMeter
from edutools.engine.training import RunRecord, partial_watch, train
from edutools.ground.data import Dataset, teacher_task
from edutools.ground.models import mlp
from edutools.ground.theory import momentum_edge, small_batch_momentum_edge
from edutools.ground.validation import check_positive_int, check_rho

__all__ = ["BATCH_SIZES", "FAST_NUM_STEPS", "LR", "MOMENTUM", "NUM_STEPS", "OPTIMIZERS", "RHO",
           "MomentumRun", "SamBatchSharpnessMeter", "sam_momentum_edge", "sam_plateau_table",
           "sam_momentum_run", "sam_momentum_runs", "late_means"]

#: η and β (lesson 03's plateaus 2(1−β)/η = 3.33 and 2(1+β)/η = 10) and SAM's ρ.
LR = 0.3
MOMENTUM = 0.5
RHO = 0.05
#: The two batch sizes: small, and the full 1,000-sample training set.
BATCH_SIZES: tuple[int, ...] = (50, 1000)
OPTIMIZERS: tuple[str, ...] = ("SGD", "SAM")
#: Steps (full mode, FAST mode); measurements every tenth of the run.
NUM_STEPS = 2000
FAST_NUM_STEPS = 1000
WIDTHS = (20, 64, 64, 4)


def sam_momentum_edge(lr: float, momentum: float, rho: float, grad_norm: float) -> float:
    """The λ at which heavy ball with SAM's gradient becomes unstable at gradient norm ‖g‖.

    Solves λ + ρλ²/‖g‖ = 2(1+β)/η (:func:`~edutools.ground.theory.momentum_edge`):
    λ = 2E/(1 + √(1 + 4ρE/‖g‖)) with E = 2(1+β)/η. β = 0 gives
    :func:`~edutools.ground.theory.sam_edge`; ρ = 0 gives E; ‖g‖ = 0 gives 0.
    """
    base = momentum_edge(lr, momentum)  # checks lr and momentum
    rho = check_rho(rho)
    if not math.isfinite(grad_norm) or grad_norm < 0:
        raise ValueError(f"grad_norm must be a finite number ≥ 0, got {grad_norm!r}")
    if rho == 0:
        return base
    if grad_norm == 0:
        return 0.0
    return 2.0 * base / (1.0 + math.sqrt(1.0 + 4.0 * rho * base / grad_norm))


class SamBatchSharpnessMeter:
    """Training callback: batch sharpness, and the curvature SAM's own step feels.

    For each of ``num_batches`` fresh batches B of the training batch size (indices by
    ``torch.randperm`` with a generator seeded by ``seed + step``): g_B = ∇L_B, H_B g_B and, with
    d_B = g_B + (ρ/‖g_B‖)·H_B g_B (SAM's step direction to first order in ρ), H_B d_B — two
    HVPs. Returns the means over batches of ``batch_sharpness`` = g_BᵀH_Bg_B/‖g_B‖² (with its
    standard error ``batch_sharpness_se``), ``sam_batch_sharpness`` = d_BᵀH_Bd_B/(g_Bᵀd_B) and
    ``batch_grad_norm`` = ‖g_B‖. With ρ = 0 the two sharpnesses coincide. Eval mode.
    """

    def __init__(self, *, rho: float, num_batches: int = 100, seed: int = 0) -> None:
        self.rho = check_rho(rho)
        self.num_batches = check_positive_int(num_batches, name="num_batches")
        self.seed = seed

    def __call__(self, state: object) -> dict[str, float]:
        """Measure at ``state`` (a :class:`~edutools.engine.training.TrainState`)."""
        X, y, size = state.X_train, state.y_train, state.batch_size
        generator = torch.Generator().manual_seed(self.seed + int(state.step))
        values = np.empty((self.num_batches, 3))
        for b in range(self.num_batches):
            batch = torch.randperm(len(X), generator=generator)[:size].to(X.device)
            operator = HessianOperator(state.model, state.loss_fn, X[batch], y[batch])
            g = operator.gradient()
            Hg = operator.matvec(g)
            norm = float(torch.linalg.vector_norm(g))
            d = g + (self.rho / norm) * Hg
            Hd = operator.matvec(d) if self.rho > 0 else Hg
            values[b] = (float(g @ Hg) / norm**2, float(d @ Hd) / float(g @ d), norm)
        means = values.mean(axis=0)
        return {"batch_sharpness": float(means[0]),
                "batch_sharpness_se": float(values[:, 0].std(ddof=1)
                                            / math.sqrt(self.num_batches))
                if self.num_batches > 1 else float("nan"),
                "sam_batch_sharpness": float(means[1]), "batch_grad_norm": float(means[2])}


@functools.lru_cache(maxsize=4)
def _teacher(seed: int) -> Dataset:
    return teacher_task(seed=seed)


@dataclass(frozen=True, eq=False, kw_only=True, repr=False)
class MomentumRun(RunRecord):
    """One heavy-ball run (SGD or SAM base step), without the model (picklable): a
    :class:`~edutools.engine.training.record.RunRecord` whose ``config`` holds ``optimizer``
    (``"SGD"`` or ``"SAM"``), ``batch_size``, ``lr``, ``momentum``, ``rho`` (0 for SGD),
    ``num_steps`` (asked for), ``seed``, …, and whose ``record`` has one row per measurement:
    ``step``, losses, ``grad_norm``, ``lambda_max``, ``momentum_edge`` = 2(1+β)/η,
    ``sam_momentum_edge`` (:func:`sam_momentum_edge` at the row's ‖g‖) and, for mini-batches,
    the columns of :class:`SamBatchSharpnessMeter`. ``seconds`` includes the measurements.
    """

    @property
    def optimizer(self) -> str:
        """``"SGD"`` or ``"SAM"``."""
        return self.setting("optimizer")

    @property
    def batch_size(self) -> int:
        """Mini-batch size B."""
        return int(self.setting("batch_size"))

    @property
    def lr(self) -> float:
        """The step size η."""
        return float(self.setting("lr"))

    @property
    def momentum(self) -> float:
        """Heavy-ball β."""
        return float(self.setting("momentum"))

    @property
    def rho(self) -> float:
        """SAM's radius ρ (0 for SGD)."""
        return float(self.setting("rho"))

    @property
    def num_steps(self) -> int:
        """Steps asked for."""
        return int(self.setting("num_steps"))

    @classmethod
    def shape_record(cls, record: pd.DataFrame, config: Mapping[str, Any]) -> pd.DataFrame:
        """The record with the two edges of every row (``momentum_edge``,
        ``sam_momentum_edge``)."""
        lr, momentum, rho = config["lr"], config["momentum"], config["rho"]
        record = record.copy()
        record["momentum_edge"] = momentum_edge(lr, momentum)
        record["sam_momentum_edge"] = [
            sam_momentum_edge(lr, momentum, rho, float(g)) if np.isfinite(g) else np.nan
            for g in record["grad_norm"]]
        return record


def sam_momentum_run(*, optimizer: str, batch_size: int, seed: int = 0,
                     num_steps: int = NUM_STEPS, lr: float = LR, momentum: float = MOMENTUM,
                     rho: float = RHO, num_batches: int = 100, measure_every: int | None = None,
                     watch: Callable[[MomentumRun], None] | None = None) -> MomentumRun:
    """Heavy ball (β = ``momentum``) with a plain (``"SGD"``) or SAM (``"SAM"``, radius ``rho``)
    gradient on lesson 01's network and teacher task (drawn with ``seed``), half-MSE loss.

    Measures every ``measure_every`` steps (default ``num_steps // 10``): λ_max, and for
    ``batch_size`` < 1000 the :class:`SamBatchSharpnessMeter` over ``num_batches`` batches.
    ``watch`` receives a partial :class:`MomentumRun` after every measurement.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    num_steps = check_positive_int(num_steps, name="num_steps")
    data = _teacher(seed)
    rho = rho if optimizer == "SAM" else 0.0
    model = mlp(list(WIDTHS), activation="tanh", init="lecun", seed=seed, device=data.device)
    meters: list[Callable] = [LambdaMaxMeter()]
    if batch_size < data.num_train:
        meters.append(SamBatchSharpnessMeter(rho=rho, num_batches=num_batches, seed=seed))
    factory = None if optimizer == "SGD" else (
        lambda params: SAM(params, rho=rho, lr=lr, momentum=momentum))
    measure_every = measure_every or max(1, num_steps // 10)
    settings = dict(optimizer=optimizer, batch_size=batch_size, lr=lr, momentum=momentum,
                    rho=rho, num_steps=num_steps, seed=seed, num_batches=num_batches,
                    measure_every=measure_every)
    result = train(model, data, lr=lr, momentum=momentum, batch_size=batch_size,
                   num_steps=num_steps, loss_fn="half_mse", optimizer=factory,
                   measure_every=measure_every, callbacks=meters, seed=seed,
                   watch=partial_watch(watch, settings, kind=MomentumRun),
                   description=f"{optimizer}+momentum, B={batch_size}")
    return MomentumRun.from_train(result, **settings)


def sam_momentum_runs(*, seed: int = 0, num_steps: int = NUM_STEPS,
                      batch_sizes: tuple[int, ...] = BATCH_SIZES,
                      optimizers: tuple[str, ...] = OPTIMIZERS,
                      watch: Callable[[dict[tuple[str, int], MomentumRun]], None] | None = None
                      ) -> dict[tuple[str, int], MomentumRun]:
    """:func:`sam_momentum_run` for every (optimizer, batch size); ``watch`` receives the dict of
    runs so far, the current partial one included, after each measurement."""
    runs: dict[tuple[str, int], MomentumRun] = {}
    for batch_size in batch_sizes:
        for name in optimizers:
            finished = dict(runs)
            on_run = None if watch is None else (
                lambda partial, key=(name, batch_size), finished=finished:
                watch({**finished, key: partial}))
            runs[(name, batch_size)] = sam_momentum_run(optimizer=name, batch_size=batch_size,
                                                        seed=seed, num_steps=num_steps,
                                                        watch=on_run)
    return runs


def late_means(run: MomentumRun, *, fraction: float = 0.3) -> dict[str, float]:
    """Means over the measurements in the last ``fraction`` of the run's steps: ``lambda_max``,
    ``grad_norm``, ``sam_momentum_edge`` and, if measured, ``batch_sharpness`` and
    ``sam_batch_sharpness`` (NaN when not measured)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    record = run.record
    late = record[record["step"] >= (1 - fraction) * run.num_steps - 1e-9 * run.num_steps]
    columns = ("lambda_max", "grad_norm", "sam_momentum_edge", "batch_sharpness",
               "sam_batch_sharpness")
    return {c: float(late[c].mean()) if c in late else float("nan") for c in columns}


def sam_plateau_table(runs: Mapping[tuple[str, int], MomentumRun], *,
                  fraction: float = 0.3) -> pd.DataFrame:
    """The settled values of ``runs`` ((optimizer, batch size) → run) in units of the edges.

    One row per run (index ``optimizer``, ``batch size``): ``λ_max / 2(1+β)/η``,
    ``λ_max / SAM edge`` (:func:`sam_momentum_edge`), ``BS / 2(1−β)/η`` and
    ``SAM-step BS / 2(1−β)/η`` (NaN for full batch).
    """
    rows = []
    for (name, batch_size), run in runs.items():
        values = late_means(run, fraction=fraction)
        lower = small_batch_momentum_edge(run.lr, run.momentum)
        rows.append({"optimizer": name, "batch size": batch_size,
                     "λ_max / 2(1+β)/η": values["lambda_max"] / momentum_edge(run.lr,
                                                                             run.momentum),
                     "λ_max / SAM edge": values["lambda_max"] / values["sam_momentum_edge"],
                     "BS / 2(1−β)/η": values["batch_sharpness"] / lower,
                     "SAM-step BS / 2(1−β)/η": values["sam_batch_sharpness"] / lower})
    return pd.DataFrame(rows).set_index(["optimizer", "batch size"])
