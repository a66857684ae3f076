"""Andreyev et al. 2026, *Momentum Further Constrains Sharpness at the Edge of Stochastic
Stability* (lesson 03): heavy ball's two edges on a network.

* Full batch: λ_max rises to 2(1+β)/η (Nesterov: (2+2β)/(η(1+2β))) — :func:`run_full_batch`, on
  lesson 01's network.
* Small batches: the batch sharpness settles near 2(1−β)/η, far below; with larger batches the
  curvature climbs back toward 2(1+β)/η — :func:`run_sgdm`, a tanh 32-64-64-10 (init ×0.3)
  memorising random labels.

The run functions are slider run functions (module-level, keyword parameters named like the
sliders, picklable :class:`~edutools.engine.experiments.eoss.SGDRun` results). :func:`settled`
and :func:`plateau_table` reduce runs to the plateaus the lesson asserts.

Engine layer: nothing here draws.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from edutools.engine.experiments.eoss import SGDRun, Watch, watch_record
from edutools.engine.sharpness import BatchSharpnessMeter, LambdaMaxMeter
from edutools.engine.training import train
from edutools.ground import theory
from edutools.ground.canonical import canonical_float
from edutools.ground.data import random_labels_task, teacher_task
from edutools.ground.models import mlp
from edutools.ground.validation import check_momentum

__all__ = ["FULL_BATCH_GRID", "FULL_BATCH_SLIDER_STEPS", "PANEL", "PANEL_GRID", "panel_lr",
           "plateau_table", "run_full_batch", "run_momentum_batch", "run_sgdm", "settled"]

#: Momentum values of the full-batch slider.
FULL_BATCH_GRID: dict[str, tuple[float, ...]] = {"momentum": (0.0, 0.3, 0.5, 0.7, 0.9)}
#: Steps of a full-batch slider run (FAST-sized: a few seconds on one core).
FULL_BATCH_SLIDER_STEPS = 1000

#: The momentum × batch-size panel's grid (and the FAST headline run, β = 0.9 and B = 8).
PANEL_GRID: dict[str, tuple[float, ...]] = {"momentum": (0.0, 0.5, 0.9),
                                            "batch_size": (4, 8, 25, 50, 250)}
#: The panel's fixed setting, FAST-sized: the 250 inputs of lesson 02's memorisation task, 6,000
#: steps, and η = effective_lr·(1−β), so that every β has the same effective step η/(1−β) = 0.5
#: and the same small-batch edge 2(1−β)/η = 4 (lesson 02's plain-SGD edge 2/0.5).
PANEL: dict[str, float] = {"effective_lr": 0.5, "num_train": 250, "num_steps": 6000}


def run_full_batch(*, momentum: float, nesterov: bool = False, lr: float = 0.3,
                   num_steps: int = 2000, seed: int = 0, watch: Watch | None = None) -> SGDRun:
    """Full-batch heavy ball (or Nesterov) on lesson 01's network; λ_max every 100 steps.

    Data: :func:`~edutools.ground.data.teacher_task` drawn with ``seed`` (1,000 inputs, 20%
    flipped labels); model: tanh 20-64-64-4, LeCun init; half-MSE; PyTorch momentum convention.
    """
    teacher = teacher_task(seed=seed)
    model = mlp([20, 64, 64, 4], activation="tanh", init="lecun", seed=seed,
                device=teacher.device)
    result = train(model, teacher, lr=lr, momentum=momentum, nesterov=nesterov,
                   num_steps=num_steps, loss_fn="half_mse", measure_every=100,
                   callbacks=[LambdaMaxMeter()], seed=seed,
                   description=f"{'Nesterov' if nesterov else 'heavy ball'} β={momentum}",
                   watch=watch_record(watch, lr=lr, momentum=momentum, nesterov=nesterov,
                                      num_steps=num_steps, batch_size=None, seed=seed))
    return SGDRun.from_train(result)


def run_sgdm(*, batch_size: int, momentum: float = 0.5, lr: float = 0.3, num_steps: int = 10000,
             seed: int = 0, num_train: int = 1000, watch: Watch | None = None) -> SGDRun:
    """SGD with heavy-ball momentum on a tanh 32-64-64-10 (init ×0.3) memorising random labels.

    ``num_train`` inputs ~ N(0, I) with random one-hot labels (half-MSE), drawn with ``seed``.
    Every ``num_steps // 20`` steps it records λ_max and, for B < ``num_train``, the batch
    sharpness over fresh batches of size B (100 batches for B ≤ 100, else 30: larger batches
    differ less from each other and cost more). ``batch_size = num_train`` is full batch.
    """
    task = random_labels_task(num_train=num_train, seed=seed)
    model = mlp([32, 64, 64, 10], activation="tanh", init="lecun", init_scale=0.3, seed=seed,
                device=task.device)
    meters: list[Any] = [LambdaMaxMeter()]
    if batch_size < task.num_train:
        meters.append(BatchSharpnessMeter(num_batches=100 if batch_size <= 100 else 30,
                                          seed=seed))
    result = train(model, task, lr=lr, momentum=momentum, batch_size=batch_size,
                   num_steps=num_steps, loss_fn="half_mse", measure_every=num_steps // 20,
                   callbacks=meters, seed=seed, description=f"B={batch_size}, β={momentum}",
                   watch=watch_record(watch, lr=lr, momentum=momentum, batch_size=batch_size,
                                      num_steps=num_steps, seed=seed, num_train=task.num_train))
    return SGDRun.from_train(result, num_train=task.num_train)


def settled(run: SGDRun, *, fraction: float = 1 / 3) -> dict[str, float]:
    """Mean batch sharpness and λ_max over the last ``fraction`` of the run's steps.

    Returns ``{"batch_sharpness": …, "lambda_max": …}``; NaN for a column that was not measured.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    num_steps = run.config["num_steps"]
    # The tolerance keeps the boundary step in despite rounding ((1 − 1/3)·6000 ≠ 4000 exactly).
    late = run.record[run.record["step"] >= (1 - fraction) * num_steps - 1e-9 * num_steps]
    return {column: float(late[column].mean()) if column in late else float("nan")
            for column in ("batch_sharpness", "lambda_max")}


def plateau_table(runs: Mapping[int, SGDRun], *, lr: float, momentum: float) -> pd.DataFrame:
    """Settled values per batch size (index), and their ratios to the two edges.

    Columns: ``batch_sharpness``, ``lambda_max`` (from :func:`settled`), ``BS / lower edge``
    (÷ 2(1−β)/η) and ``λ_max / upper edge`` (÷ 2(1+β)/η).
    """
    lower = theory.small_batch_momentum_edge(lr, momentum)
    upper = theory.momentum_edge(lr, momentum)
    table = pd.DataFrame({B: settled(run) for B, run in runs.items()}).T.rename_axis("batch size")
    table["BS / lower edge"] = table["batch_sharpness"] / lower
    table["λ_max / upper edge"] = table["lambda_max"] / upper
    return table


def panel_lr(momentum: float, effective_lr: float = PANEL["effective_lr"]) -> float:
    """The panel's PyTorch step size η = effective_lr·(1−β), rounded by the course's one rule
    (:func:`~edutools.ground.canonical.canonical_float`), so that β = 0.9 gives exactly 0.05."""
    return canonical_float(effective_lr * (1.0 - check_momentum(momentum)))


def run_momentum_batch(*, momentum: float, batch_size: int, seed: int = 0,
                       num_steps: int = int(PANEL["num_steps"]),
                       watch: Watch | None = None) -> SGDRun:
    """The momentum × batch-size panel's run function: :func:`run_sgdm` on :data:`PANEL`'s
    setting (250 random-label inputs, η = 0.5·(1−β)) at momentum β and batch size B (B = 250
    is full batch). β = 0.9, B = 8 is lesson 03's headline run (η = 0.05: edges 4 and 76)."""
    return run_sgdm(batch_size=batch_size, momentum=momentum, lr=panel_lr(momentum),
                    num_steps=num_steps, seed=seed, num_train=int(PANEL["num_train"]),
                    watch=watch)
