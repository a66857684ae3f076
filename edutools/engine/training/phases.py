"""Schedules for :func:`edutools.engine.training.train`: a list of phases ``(lr, batch_size,
epochs)`` run with one optimizer, so the momentum buffer carries over when η or B changes — a
learning-rate decay, a warm-up, or Smith et al.'s "increase the batch size instead".

``train(model, data, phases=[...])`` is the entry point; this module holds the phase type and the
bookkeeping that joins the phases' records.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from edutools.engine.training.result import TrainResult
from edutools.ground.data import Dataset
from edutools.ground.models import LossFn
from edutools.ground.validation import (
    check_batch_size,
    check_lr,
    check_momentum,
    check_positive_int,
)


@dataclass(frozen=True)
class Phase:
    """One phase of a schedule: ``epochs`` passes over the data at step size ``lr``, batch
    ``batch_size``."""

    lr: float
    batch_size: int
    epochs: int


def run_phases(train_one: Callable[..., TrainResult], model: nn.Module, data: Dataset,
               phases: Sequence[Phase], *, momentum: float = 0.0,
               loss_fn: str | LossFn = "cross_entropy", seed: int = 0,
               progress: bool | None = None) -> TrainResult:
    """SGD (heavy ball β = ``momentum``) through ``phases``, measuring once per epoch.

    Called by ``train(model, data, phases=...)``; ``train_one`` is the single-phase loop. One
    ``torch.optim.SGD`` serves every phase, so the velocity carries over when η or B changes.
    Phase i's batch order and dropout are seeded by ``seed + i``.

    Returns:
        A :class:`TrainResult` whose record joins the phases' records, one row per epoch
        (``step`` and ``epoch`` counted from the start of the schedule; an epoch is one pass of
        ``N // B`` steps, the last incomplete batch dropped, so runs with different B share the
        same epoch values), with ``phase``, ``lr`` and ``batch_size`` columns added. If a phase
        diverged, later phases were not run.
    """
    phases = tuple(phases)
    if not phases:
        raise ValueError("phases must hold at least one Phase")
    for phase in phases:
        check_lr(phase.lr)
        check_batch_size(phase.batch_size, data.num_train)
        check_positive_int(phase.epochs, name="epochs")
    momentum = check_momentum(momentum)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=phases[0].lr, momentum=momentum)
    records, results, steps, epochs, diverged = [], [], 0, 0.0, False
    for index, phase in enumerate(phases):
        for group in optimizer.param_groups:
            group["lr"] = phase.lr
        steps_per_epoch = data.num_train // phase.batch_size
        result = train_one(model, data, lr=phase.lr, momentum=momentum, loss_fn=loss_fn,
                       batch_size=phase.batch_size, num_steps=phase.epochs * steps_per_epoch,
                       measure_every=steps_per_epoch, optimizer=lambda _: optimizer,
                       seed=seed + index, progress=progress,
                       description=f"phase {index + 1}: η={phase.lr:g}, B={phase.batch_size}")
        results.append(result)
        record = result.record.copy()
        # Epochs count passes (steps_per_epoch steps each), so runs with different B line up.
        record["epoch"] = epochs + record["step"] / steps_per_epoch
        record["step"] += steps
        record["phase"], record["lr"], record["batch_size"] = index, phase.lr, phase.batch_size
        records.append(record if index == 0 else record.iloc[1:])  # row 0 repeats the last one
        steps += len(result.step_losses)
        epochs += len(result.step_losses) / steps_per_epoch
        if result.diverged:
            diverged = True
            break
    last = results[-1]
    message = (last.message if last.diverged else
               f"Finished {len(phases)} phase(s), {steps} steps, training loss "
               f"{records[-1]['train_loss'].iloc[-1]:.4g}")
    return TrainResult(
        record=pd.concat(records, ignore_index=True),
        step_losses=np.concatenate([r.step_losses for r in results]),
        model=model, diverged=diverged,
        diverged_at=(steps if diverged else None), message=message,
        seconds=sum(r.seconds for r in results),
        config=dict(phases=phases, momentum=momentum, seed=seed, optimizer="SGD",
                    loss_fn=loss_fn if isinstance(loss_fn, str) else getattr(loss_fn, "__name__",
                                                                              "custom")))
