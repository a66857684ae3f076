"""What :func:`~edutools.engine.training.train` measures every few steps: one record row.

A row holds ``step``, ``epoch``, the training and validation loss (and accuracy for classes), the
full-batch gradient norm, the stability proxies ``loss_var`` (variance of the recent mini-batch
losses) and ``val_jitter`` (RMS of successive validation-loss changes), then whatever the
callbacks return, then the scheduled hyper-parameters in force (``lr``, ``momentum``). Both proxies
look back only within the current segment of the run (one phase of a schedule).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from edutools.engine.training.result import Callback, TrainState
from edutools.ground.models import LossFn, accuracy


def evaluate(model: nn.Module, loss_fn: LossFn, X: torch.Tensor, y: torch.Tensor,
             *, classification: bool) -> dict[str, float]:
    """Loss (and accuracy when ``classification``) of ``model`` on (X, y) in eval mode."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        outputs = model(X)
        values = {"loss": float(loss_fn(outputs, y))}
        if classification:
            values["acc"] = accuracy(outputs, y)
    model.train(was_training)
    return values


def full_batch_grad_norm(model: nn.Module, loss_fn: LossFn, X: torch.Tensor,
                         y: torch.Tensor) -> float:
    """‖∇L(θ)‖₂ of the full-batch loss, in eval mode; leaves ``.grad`` untouched."""
    was_training = model.training
    model.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss_fn(model(X), y), params)
    model.train(was_training)
    return float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads)))


class Recorder:
    """Builds record rows for one run.

    Args:
        state: the :class:`TrainState` the callbacks see (its ``step`` and ``recent_losses`` are
            set here; ``lr``, ``momentum``, ``batch_size`` by the loop).
        step_losses: the mini-batch loss of every step of the run (float64, filled as it goes).
        callbacks: extra measurements, run only when the training loss is finite.
        window: recent steps for ``loss_var``; jitter_window: recent measurements for
            ``val_jitter``.
    """

    def __init__(self, state: TrainState, step_losses: torch.Tensor, *,
                 callbacks: Sequence[Callback], window: int, jitter_window: int) -> None:
        self.state = state
        self.step_losses = step_losses
        self.callbacks = list(callbacks)
        self.window = window
        self.jitter_window = jitter_window
        self.classification = state.data.num_classes is not None
        self.segment_start = 0
        self.val_history: list[float] = []

    def start_segment(self, start: int) -> None:
        """Forget the proxies' history: a new segment begins at step ``start``."""
        self.segment_start = start
        self.val_history = []

    def row(self, step: int, scheduled: dict[str, float]) -> dict[str, float]:
        """Measure after ``step`` steps; ``scheduled`` (e.g. ``{"lr": η}``) ends the row."""
        state, data = self.state, self.state.data
        state.step = step
        state.recent_losses = self.step_losses[max(self.segment_start,
                                                   step - self.window):step].numpy()
        row: dict[str, float] = {"step": step, "epoch": step * state.batch_size / data.num_train}
        train_metrics = evaluate(state.model, state.loss_fn, data.X_train, data.y_train,
                                 classification=self.classification)
        val_metrics = evaluate(state.model, state.loss_fn, data.X_val, data.y_val,
                               classification=self.classification)
        row["train_loss"] = train_metrics["loss"]
        row["val_loss"] = val_metrics["loss"]
        if self.classification:
            row["train_acc"] = train_metrics["acc"]
            row["val_acc"] = val_metrics["acc"]
        finite = math.isfinite(row["train_loss"])
        row["grad_norm"] = (full_batch_grad_norm(state.model, state.loss_fn, data.X_train,
                                                 data.y_train) if finite else float("nan"))
        row["loss_var"] = (float(np.var(state.recent_losses)) if len(state.recent_losses) > 1
                           else float("nan"))
        self.val_history.append(row["val_loss"])
        recent_val = np.asarray(self.val_history[-self.jitter_window:])
        # RMS of successive changes: a trend moves it little, step-to-step noise a lot.
        row["val_jitter"] = (float(np.sqrt(np.mean(np.diff(recent_val) ** 2)))
                             if len(recent_val) > 1 else float("nan"))
        if finite:
            for callback in self.callbacks:
                row.update(callback(state) or {})
        row.update(scheduled)
        return row
