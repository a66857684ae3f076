"""Batch size and generalization (lesson 04): the SGD noise scale, its rules, and the line between
two solutions.

* :func:`noise_scale` — η/(B(1−β)), the size of SGD's gradient noise per unit of "time"
  (Smith & Le 2018; Smith et al. 2018). :func:`linear_scaling_lr` (Goyal et al. 2017) and
  :func:`momentum_for_noise_scale` keep it fixed when the batch size changes.
* :func:`train_phases` — SGD through a list of phases ``(lr, batch_size, epochs)`` with one
  optimizer (momentum buffers carry over): a learning-rate decay, or Smith et al.'s "increase the
  batch size instead".
* :func:`curve_gap` — how far apart two training curves are (max |log ratio| at equal epochs).
* :func:`line_asymmetry` — on Keskar et al.'s (2017) line θ(α) = α·θ_b + (1−α)·θ_a, how much the
  loss rises just beyond each end.

Engine layer: nothing here draws. Momentum is heavy ball (``v ← βv + g``, ``θ ← θ − ηv``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from edutools.data import Dataset
from edutools.landscape import SliceResult
from edutools.training import LossFn, train
from edutools.validation import check_batch_size, check_lr, check_momentum, check_positive_int

__all__ = [
    "LineAsymmetry",
    "Phase",
    "PhasedResult",
    "curve_gap",
    "line_asymmetry",
    "linear_scaling_lr",
    "momentum_for_noise_scale",
    "noise_scale",
    "train_phases",
]


def noise_scale(lr: float, batch_size: int, momentum: float = 0.0) -> float:
    """SGD's noise scale η/(B(1−β)): the effective step η/(1−β) per sample of the batch.

    Runs with the same noise scale take the same "time" per epoch (effective step × steps per
    epoch = N·η/(B(1−β))) with the same gradient-noise temperature, so, at small enough η, they
    trace the same curves against epochs.
    """
    check_positive_int(batch_size, name="batch_size")
    return check_lr(lr) / (batch_size * (1.0 - check_momentum(momentum)))


def linear_scaling_lr(lr: float, batch_size: int, new_batch_size: int) -> float:
    """Goyal et al.'s linear scaling rule: multiply η by k when B is multiplied by k."""
    check_positive_int(batch_size, name="batch_size")
    check_positive_int(new_batch_size, name="new_batch_size")
    return check_lr(lr) * new_batch_size / batch_size


def momentum_for_noise_scale(lr: float, batch_size: int, target: float) -> float:
    """The β with η/(B(1−β)) = ``target``; raises ``ValueError`` if it is not in [0, 1)."""
    check_positive_int(batch_size, name="batch_size")
    check_lr(target, name="target")
    momentum = 1.0 - check_lr(lr) / (batch_size * target)
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"no momentum in [0, 1) gives noise scale {target:g} with lr={lr:g} and "
                         f"batch_size={batch_size} (it would need β = {momentum:.3g}); "
                         "change lr or batch_size")
    return momentum


@dataclass(frozen=True)
class Phase:
    """One phase of a schedule: ``epochs`` passes over the data at step size ``lr``, batch
    ``batch_size``."""

    lr: float
    batch_size: int
    epochs: int


@dataclass(frozen=True)
class PhasedResult:
    """Outcome of :func:`train_phases`.

    Attributes:
        record: the phases' records joined, one row per epoch (``step`` and ``epoch`` counted
            from the start of the schedule; an epoch is one pass of ``N // B`` steps, the last
            incomplete batch dropped, so runs with different B share the same epoch values;
            ``phase``, ``lr`` and ``batch_size`` added).
        num_steps: optimizer steps taken in all.
        diverged: True if a phase diverged (later phases were not run).
        phases: the schedule.
    """

    record: pd.DataFrame
    num_steps: int
    diverged: bool
    phases: tuple[Phase, ...]

    @property
    def final(self) -> dict[str, float]:
        """The last record row as a dict."""
        return self.record.iloc[-1].to_dict()


def train_phases(model: nn.Module, data: Dataset, phases: Sequence[Phase], *,
                 momentum: float = 0.0, loss_fn: str | LossFn = "cross_entropy", seed: int = 0,
                 progress: bool | None = None) -> PhasedResult:
    """SGD (heavy ball β = ``momentum``) through ``phases``, measuring once per epoch.

    One ``torch.optim.SGD`` serves every phase, so the velocity carries over when η or B
    changes. Each phase is one call to :func:`edutools.training.train` (batch order seeded by
    ``seed`` + phase index).
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
    records, steps, epochs, diverged = [], 0, 0.0, False
    for index, phase in enumerate(phases):
        for group in optimizer.param_groups:
            group["lr"] = phase.lr
        steps_per_epoch = data.num_train // phase.batch_size
        result = train(model, data, lr=phase.lr, momentum=momentum, loss_fn=loss_fn,
                       batch_size=phase.batch_size, num_steps=phase.epochs * steps_per_epoch,
                       measure_every=steps_per_epoch, optimizer=lambda _: optimizer,
                       seed=seed + index, progress=progress,
                       description=f"phase {index + 1}: η={phase.lr:g}, B={phase.batch_size}")
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
    return PhasedResult(record=pd.concat(records, ignore_index=True), num_steps=steps,
                        diverged=diverged, phases=phases)


def curve_gap(record_a: pd.DataFrame, record_b: pd.DataFrame, column: str = "train_loss", *,
              x: str = "epoch") -> float:
    """max |log(a/b)| of ``column`` over the ``x`` values the two records share, except the first.

    0 means identical curves; 0.1 means they never differ by more than ~10%. The first shared
    point (the common start, e.g. epoch 0) is left out. Both columns must be positive.
    """
    a = record_a.set_index(x)[column]
    b = record_b.set_index(x)[column]
    shared = np.intersect1d(a.index.to_numpy(), b.index.to_numpy())
    if len(shared) < 2:
        raise ValueError(f"the records share fewer than two {x!r} values; compare runs "
                         f"measured at the same {x}s")
    values_a = a.loc[shared[1:]].to_numpy(dtype=float)
    values_b = b.loc[shared[1:]].to_numpy(dtype=float)
    if np.any(values_a <= 0) or np.any(values_b <= 0) or not (
            np.all(np.isfinite(values_a)) and np.all(np.isfinite(values_b))):
        raise ValueError(f"{column!r} must be finite and positive in both records")
    return float(np.max(np.abs(np.log(values_a / values_b))))


@dataclass(frozen=True)
class LineAsymmetry:
    """How much a curve f(α) along θ(α) = α·θ_b + (1−α)·θ_a rises just beyond each end.

    Attributes:
        offset: the distance d beyond each end (in units of ‖θ_b − θ_a‖).
        rise_a: f(−d) − f(0), the rise beyond end a.
        rise_b: f(1 + d) − f(1), the rise beyond end b.
    """

    offset: float
    rise_a: float
    rise_b: float

    @property
    def b_steeper(self) -> bool:
        """True if the curve rises more beyond b than beyond a."""
        return self.rise_b > self.rise_a


def line_asymmetry(slice_result: SliceResult, offset: float, *,
                   values: np.ndarray | None = None) -> LineAsymmetry:
    """Rise of the loss (or of ``values``, same length as the alphas) beyond each end of the line.

    ``slice_result`` comes from :func:`edutools.landscape.interpolate` with α = 0 at θ_a and
    α = 1 at θ_b; values between grid points are interpolated linearly. The alphas must cover
    [−offset, 1 + offset].
    """
    if not offset > 0:
        raise ValueError(f"offset must be > 0, got {offset!r}")
    alphas = np.asarray(slice_result.alphas, dtype=float)
    curve = np.asarray(slice_result.losses if values is None else values, dtype=float)
    if curve.shape != alphas.shape:
        raise ValueError(f"values must have the alphas' shape {alphas.shape}, got {curve.shape}")
    order = np.argsort(alphas)
    alphas, curve = alphas[order], curve[order]
    if alphas[0] > -offset or alphas[-1] < 1 + offset:
        raise ValueError(f"the alphas span [{alphas[0]:g}, {alphas[-1]:g}], which does not cover "
                         f"[{-offset:g}, {1 + offset:g}]")

    def f(alpha: float) -> float:
        return float(np.interp(alpha, alphas, curve))

    return LineAsymmetry(offset=float(offset), rise_a=f(-offset) - f(0.0),
                         rise_b=f(1.0 + offset) - f(1.0))
