"""What a training run hands out: the state a measurement callback sees (:class:`TrainState`),
the callback protocol, and the outcome (:class:`TrainResult`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch
from torch import nn

from edutools.engine.training.record import RecordedRun, RunRecord, SteppedRun
from edutools.ground.data import Dataset
from edutools.ground.models import LossFn

#: RecordedRun and SteppedRun live in record.py now; they stay importable from here.
__all__ = ["Callback", "RecordedRun", "RunRecord", "SteppedRun", "TrainResult", "TrainState",
           "TrainingDivergedWarning"]


class TrainingDivergedWarning(UserWarning):
    """Emitted when :func:`train` stops because the loss blew up."""


@dataclass
class TrainState:
    """What a measurement callback sees, every ``measure_every`` steps.

    Attributes:
        step: optimizer steps taken so far (0 = before training).
        model: the network (callbacks must leave its parameters and train/eval mode unchanged).
        optimizer: the optimizer (its state holds the momentum buffers).
        loss_fn: ``loss_fn(outputs, targets) -> scalar``.
        data: the :class:`~edutools.ground.data.Dataset` being trained on.
        lr, momentum, nesterov: the step-size rule.
        batch_size: mini-batch size; equals ``data.num_train`` for full-batch GD.
        recent_losses: mini-batch losses of the last ``window`` steps (oldest first).
    """

    step: int
    model: nn.Module
    optimizer: torch.optim.Optimizer
    loss_fn: LossFn
    data: Dataset
    lr: float
    momentum: float
    nesterov: bool
    batch_size: int
    recent_losses: np.ndarray = field(default_factory=lambda: np.empty(0))

    @property
    def X_train(self) -> torch.Tensor:
        """Training inputs (n, d) on the training device."""
        return self.data.X_train

    @property
    def y_train(self) -> torch.Tensor:
        """Training targets on the training device."""
        return self.data.y_train

    @property
    def full_batch(self) -> bool:
        """True for full-batch gradient descent."""
        return self.batch_size == self.data.num_train


class Callback(Protocol):
    """A measurement: returns named floats to add to the record row of ``state.step``."""

    def __call__(self, state: TrainState) -> Mapping[str, float] | None: ...


# kw_only: RunRecord's fields have defaults, and ``train`` names every field anyway.
@dataclass(frozen=True, kw_only=True)
class TrainResult(RunRecord):
    """Outcome of :func:`train`: a :class:`~edutools.engine.training.record.RunRecord` that also
    holds the trained model.

    Attributes:
        record: one row per measurement (``step`` first, then ``epoch``, the losses, accuracies,
            ``grad_norm``, the stability proxies ``loss_var`` and ``val_jitter``, and whatever the
            callbacks returned).
        step_losses: the mini-batch loss at every step, shape (steps completed,), measured before
            that step's update (full-batch GD: the training loss itself); for SAM's steps that
            reuse a stale ε̂, the loss at θ + ε̂, the only point those steps evaluate.
        model: the trained network (the same object that was passed in).
        diverged: True if the loss blew up and training stopped early.
        diverged_at: the step at which divergence was detected, else ``None``.
        message: one sentence on how the run ended.
        seconds: wall-clock time of the run (s).
        config: the arguments of the run, for labels and caching.
        partial: always False (a finished run).
    """

    record: pd.DataFrame
    step_losses: np.ndarray
    model: nn.Module
    diverged: bool
    diverged_at: int | None
    message: str
    seconds: float
    config: dict[str, Any]

    def __repr__(self) -> str:
        return f"TrainResult({self.message}; {len(self.record)} measurements, {self.seconds:.1f} s)"
