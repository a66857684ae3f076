"""Why 2/η is the edge for batch sharpness (lesson 02): the one-step condition, tested per batch.

For a step along the batch gradient, to second order in η,
L_B(θ − ηg_B) = L_B(θ) − η‖g_B‖² + ½η²·g_BᵀH_Bg_B + O(η³),
so the batch's own loss rises iff η·q_B > 2, with q_B = g_BᵀH_Bg_B/‖g_B‖² (the ratio whose mean
over batches is the batch sharpness). :func:`one_step_test` predicts from g_B and one HVP
whether the step raises L_B and then takes the step; :func:`memorise_one_step` does it on lesson
02's memorisation network at the end of an SGD run that trained it to the edge.

Engine layer: nothing here draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from edutools.engine.experiments.eoss import MEMORISE_TRAIN, SGDRun, memorise_model
from edutools.engine.sharpness import HessianOperator
from edutools.engine.sharpness.operators.params import (
    flatten_params,
    preserved_parameters,
    set_flat_params,
)
from edutools.ground.data import random_labels_task
from edutools.ground.models import half_mse
from edutools.ground.validation import check_lr, check_positive_int

__all__ = ["OneStepTest", "memorise_one_step", "one_step_test"]


@dataclass(frozen=True)
class OneStepTest:
    """Per-batch prediction of the one-step condition against the step actually taken.

    Attributes:
        table: one row per batch: ``η·q/2`` (q = gᵀHg/‖g‖²; the step raises L_B iff > 1 to
            second order), ``predicted change`` (−η‖g‖² + ½η²gᵀHg), ``actual change``
            (L_B after − before), ``predicted rise`` and ``rose`` (booleans).
        lr: η; batch_size: B.
    """

    table: pd.DataFrame
    lr: float
    batch_size: int

    @property
    def agreement(self) -> float:
        """Fraction of batches where the prediction (rise iff η·q > 2) matches the step."""
        return float((self.table["predicted rise"] == self.table["rose"]).mean())

    @property
    def rise_fraction(self) -> float:
        """Fraction of batches whose own loss rose."""
        return float(self.table["rose"].mean())


def one_step_test(model: nn.Module, X: torch.Tensor, y: torch.Tensor, *, lr: float,
                  batch_size: int, num_batches: int = 200, seed: int = 0) -> OneStepTest:
    """For ``num_batches`` random batches of ``batch_size`` (half-MSE loss): predict from g_B and
    H_Bg_B whether one plain SGD step raises that batch's loss, then take it (on a copy of the
    parameters: the model is left as it was)."""
    lr = check_lr(lr)
    batch_size = check_positive_int(batch_size, name="batch_size")
    num_batches = check_positive_int(num_batches, name="num_batches")
    if batch_size > len(X):
        raise ValueError(f"batch_size={batch_size} is larger than the data ({len(X)} samples)")
    generator = np.random.default_rng(seed)
    rows = []
    with preserved_parameters(model):
        start = flatten_params(model).detach().clone()
        for _ in range(num_batches):
            batch = torch.as_tensor(generator.choice(len(X), size=batch_size, replace=False))
            X_batch, y_batch = X[batch], y[batch]
            set_flat_params(model, start)
            operator = HessianOperator(model, half_mse, X_batch, y_batch)
            gradient = operator.gradient()
            squared = float(gradient @ gradient)
            curvature = float(gradient @ operator.matvec(gradient))
            with torch.no_grad():
                before = float(half_mse(model(X_batch), y_batch))
                set_flat_params(model, start - lr * gradient)
                after = float(half_mse(model(X_batch), y_batch))
            ratio = curvature / squared
            rows.append({"η·q/2": lr * ratio / 2,
                         "predicted change": -lr * squared + 0.5 * lr * lr * curvature,
                         "actual change": after - before, "predicted rise": lr * ratio > 2,
                         "rose": after > before})
    return OneStepTest(table=pd.DataFrame(rows), lr=lr, batch_size=batch_size)


def memorise_one_step(run: SGDRun, *, num_batches: int = 200) -> OneStepTest:
    """:func:`one_step_test` at the end of an :func:`~edutools.engine.experiments.eoss.run_memorise`
    run (its kept ``final_params``), on ``num_batches`` fresh batches of the run's size at its η:
    the memorisation network after SGD has trained it to the edge. About 1 s for 200 batches."""
    if run.final_params is None:
        raise ValueError("run has no final_params: pass a run from eoss.run_memorise")
    seed = int(run.config["seed"])
    num_train = int(run.config.get("num_train", MEMORISE_TRAIN))
    task = random_labels_task(num_train=num_train, seed=seed)
    model = memorise_model(seed=seed, device=task.device)
    set_flat_params(model, torch.as_tensor(run.final_params, device=task.device))
    return one_step_test(model, task.X_train, task.y_train, lr=float(run.config["lr"]),
                         batch_size=int(run.config["batch_size"]), num_batches=num_batches,
                         seed=seed + 1000)
