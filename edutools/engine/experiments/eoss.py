"""Andreyev & Beneventano 2024 (lesson 02): the edge of *stochastic* stability.

Under SGD, λ_max of the full-batch Hessian stops below GD's edge 2/η (the smaller the batch, the
lower), and what rises to 2/η is the batch sharpness E_B[g_Bᵀ H_B g_B / ‖g_B‖²]. Two networks:

* :func:`run_teacher` — lesson 01's network (tanh 20-64-64-4 on a noisy teacher task) under SGD
  at batch size B, λ_max every 100 steps;
* :func:`run_memorise` — a tanh 32-64-64-10 (init ×0.3) memorising random labels of 250 inputs,
  λ_max and batch sharpness recorded.

Both are slider run functions: module-level, keyword parameters named like the sliders, and they
return a picklable :class:`SGDRun` (a :class:`~edutools.engine.training.RunRecord`: numbers
only, no model). :data:`SLIDER_GRID` holds the
slider values. The summaries (:func:`late_mean`, :func:`batch_sharpness_summary`,
:func:`first_at_loss`) turn records into the numbers the lesson asserts.

Engine layer: nothing here draws.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from edutools.engine.sharpness import BatchSharpnessMeter, LambdaMaxMeter
from edutools.engine.training import RunRecord, partial_watch, train
from edutools.ground.data import random_labels_task, teacher_task
from edutools.ground.models import mlp

__all__ = ["MEMORISE_TRAIN", "SLIDER_GRID", "SGDRun", "TEACHER_TRAIN",
           "batch_sharpness_summary", "equal_loss_table", "first_at_loss", "late_mean",
           "memorise_model", "run_memorise", "run_teacher", "watch_record"]

#: Batch sizes of the lesson-01 network's slider (1000 = the whole training set, i.e. GD).
SLIDER_GRID: dict[str, tuple[int, ...]] = {"batch_size": (10, 50, 250, 1000)}
#: Training inputs of the memorisation task (random labels).
MEMORISE_TRAIN = 250
#: Training inputs of lesson 01's teacher task.
TEACHER_TRAIN = 1000

Watch = Callable[["SGDRun"], None]


@dataclass(frozen=True, eq=False, kw_only=True, repr=False)
class SGDRun(RunRecord):
    """A :class:`~edutools.engine.training.record.RunRecord` of an SGD run (numbers only, no
    model), for figures and slider caches.

    Attributes:
        record: one row per measurement (``step``, ``train_loss``, ``lambda_max``, and
            ``batch_sharpness`` where measured; as :attr:`TrainResult.record`).
        config: the run's settings (lr, momentum, batch_size, num_steps, seed, …), in the
            partial records too.
        final_params: the trained parameters as one flat float32 vector, where the run kept
            them (:func:`run_memorise` does: lesson 02 tests one-step predictions there).

    The other fields (``step_losses``, ``diverged_at``, ``seconds``, …) are
    :class:`~edutools.engine.training.record.RunRecord`'s.
    """

    final_params: np.ndarray | None = None


def watch_record(watch: Watch | None, **config: Any) -> Callable[[pd.DataFrame], None] | None:
    """:func:`~edutools.engine.training.partial_watch` for :class:`SGDRun`: adapt a
    ``watch(SGDRun)`` callback to ``train``'s ``watch(record)``; ``None`` stays.

    ``config``: the run's settings (``lr``, ``batch_size``, …), given to every partial run, so
    that code drawing a partial run finds them where it finds them in the final one."""
    return partial_watch(watch, config, kind=SGDRun)


def run_teacher(*, batch_size: int, lr: float = 0.2, num_steps: int = 4000, seed: int = 0,
                watch: Watch | None = None) -> SGDRun:
    """Lesson 01's network under SGD with batch size B; λ_max every 100 steps.

    Data: :func:`~edutools.ground.data.teacher_task` (1,000 inputs, 20% flipped labels) drawn
    with ``seed``; model: tanh 20-64-64-4, LeCun init, seeded by ``seed``; half-MSE loss.
    ``batch_size`` 1000 is full-batch GD. ``watch`` receives partial runs while it trains.
    """
    teacher = teacher_task(num_train=TEACHER_TRAIN, seed=seed)
    model = mlp([20, 64, 64, 4], activation="tanh", init="lecun", seed=seed,
                device=teacher.device)
    result = train(model, teacher, lr=lr, num_steps=num_steps, batch_size=batch_size,
                   loss_fn="half_mse", measure_every=100, callbacks=[LambdaMaxMeter()], seed=seed,
                   description=f"B={batch_size}",
                   watch=watch_record(watch, lr=lr, batch_size=batch_size, num_steps=num_steps,
                                      momentum=0.0, seed=seed, num_train=teacher.num_train))
    return SGDRun.from_train(result, num_train=teacher.num_train)


def memorise_model(*, seed: int, device: torch.device | str | None = None) -> nn.Sequential:
    """The memorisation network before training: tanh 32-64-64-10, LeCun init ×0.3, seeded."""
    return mlp([32, 64, 64, 10], activation="tanh", init="lecun", init_scale=0.3, seed=seed,
               device=device)


def run_memorise(*, seed: int, batch_size: int = 8, lr: float = 0.5, num_steps: int = 20000,
                 num_train: int = MEMORISE_TRAIN, watch: Watch | None = None) -> SGDRun:
    """SGD on a tanh 32-64-64-10 (init ×0.3) memorising random labels, half-MSE loss.

    Records λ_max at every measurement and, for mini-batches, the batch sharpness over 100 fresh
    batches of size B every 500 steps. Measured every 100 steps for runs of ≤ 5,000 steps, every
    500 otherwise. ``seed`` draws the data, the initial weights and the batch order.
    """
    task = random_labels_task(num_train=num_train, seed=seed)
    model = memorise_model(seed=seed, device=task.device)
    meters: list[Any] = [LambdaMaxMeter()]
    if batch_size < task.num_train:
        meters.append(BatchSharpnessMeter(num_batches=100, seed=seed, every=500))
    result = train(model, task, lr=lr, num_steps=num_steps, batch_size=batch_size,
                   loss_fn="half_mse", measure_every=100 if num_steps <= 5000 else 500,
                   callbacks=meters, seed=seed, description=f"B={batch_size}, seed {seed}",
                   watch=watch_record(watch, lr=lr, batch_size=batch_size, num_steps=num_steps,
                                      momentum=0.0, seed=seed))
    final = torch.cat([p.detach().reshape(-1) for p in model.parameters()]).cpu().numpy()
    return SGDRun.from_train(result, num_train=num_train, final_params=final)


def late_mean(record: pd.DataFrame, column: str, *, start: float) -> float:
    """Mean of ``column`` over the measurements at ``step ≥ start`` (NaNs skipped)."""
    return float(record.loc[record["step"] >= start, column].mean())


def batch_sharpness_summary(runs: Mapping[int, SGDRun], edge: float, *,
                            start: float) -> pd.DataFrame:
    """One row per seed: batch sharpness and λ_max in units of ``edge`` (2/η) after ``start``.

    Columns: ``BS·η/2 median``, ``BS·η/2 max``, ``λ_max·η/2 median`` (over the measurements at
    step ≥ ``start`` that have a batch sharpness), ``λ_max < BS everywhere`` (at those points)
    and ``start BS·η/2`` (the first measurement). Index: seed.
    """
    rows = []
    for seed, run in runs.items():
        record = run.record
        late = record[record["step"] >= start].dropna(subset=["batch_sharpness"])
        rows.append({"seed": seed, "BS·η/2 median": late["batch_sharpness"].median() / edge,
                     "BS·η/2 max": late["batch_sharpness"].max() / edge,
                     "λ_max·η/2 median": late["lambda_max"].median() / edge,
                     "λ_max < BS everywhere": bool((late["lambda_max"]
                                                    < late["batch_sharpness"]).all()),
                     "start BS·η/2": record["batch_sharpness"].iloc[0] / edge})
    return pd.DataFrame(rows).set_index("seed")


def first_at_loss(record: pd.DataFrame, level: float) -> pd.Series:
    """The first measurement whose training loss is ≤ ``level`` (a record row)."""
    reached = record[record["train_loss"] <= level]
    if not len(reached):
        raise ValueError(f"the run never reached training loss {level} (lowest "
                         f"{record['train_loss'].min():.3g}); lower level or train longer")
    return reached.iloc[0]


def equal_loss_table(reference: SGDRun, other: SGDRun, levels: Sequence[float], *,
                     edge: float) -> pd.DataFrame:
    """λ_max of two runs compared at equal training loss, one row per loss level.

    For each level: the first measurement of each run with training loss ≤ level (its step and
    λ_max·η/2 = λ_max/``edge``) and ``ratio`` = λ_max(other)/λ_max(reference) there. Raises
    ``ValueError`` if a run never reaches a level.
    """
    rows = []
    for level in levels:
        a, b = first_at_loss(reference.record, level), first_at_loss(other.record, level)
        rows.append({"loss level": level, "reference step": int(a["step"]),
                     "reference λ_max·η/2": a["lambda_max"] / edge,
                     "other step": int(b["step"]), "other λ_max·η/2": b["lambda_max"] / edge,
                     "ratio": b["lambda_max"] / a["lambda_max"]})
    return pd.DataFrame(rows).set_index("loss level")
