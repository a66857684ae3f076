"""Keskar et al. 2017 (lesson 04): small- vs large-batch solutions, compared by their
validation accuracy, along the line between them, and by their training curves.

* :func:`small_vs_large_batch` — Adam from the same initial weights with a small and a large
  batch, each until the training loss reaches a target; :func:`summary_table` and
  :func:`val_acc_gap` tabulate the outcome.
* :func:`line_between`, :func:`asymmetry_table` — Keskar's 1-D plot θ(α) = α·θ_LB + (1−α)·θ_SB
  and how much the loss rises just beyond each end (:func:`line_asymmetry`).
* :func:`sharpness_table` — λ_max, ε-sharpness and the gradient norm of every solution.
* :func:`curve_gap` — how far apart two training curves are (max |log ratio| at equal epochs).

Engine layer: nothing here draws.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from edutools.engine.landscape import SliceResult, classification_accuracy, interpolate
from edutools.engine.sharpness import eps_sharpness, lambda_max
from edutools.engine.training import TrainResult, train
from edutools.ground.data import Dataset
from edutools.ground.models import cross_entropy, mlp

__all__ = ["BatchComparison", "LineAsymmetry", "asymmetry_table", "curve_gap", "line_asymmetry",
           "line_between", "line_between_models", "sharpness_table", "small_vs_large_batch",
           "summary_table", "train_to_loss", "val_acc_gap"]


def train_to_loss(data: Dataset, widths: Sequence[int], *, batch_size: int, lr: float,
                  target_loss: float, max_steps: int, seed: int) -> TrainResult:
    """Adam (``foreach``) on cross-entropy from ``mlp(widths, seed=seed)`` until the training
    loss is ≤ ``target_loss`` (or ``max_steps`` steps).

    The loss is checked every 125 steps (every 25 for a full batch, whose runs are short), so a
    run stops at most that many steps after reaching the target.
    """
    model = mlp(widths, seed=seed, device=data.device)
    full_batch = batch_size == data.num_train
    return train(model, data, lr=lr, batch_size=batch_size, num_steps=max_steps,
                 loss_fn="cross_entropy", seed=seed,
                 optimizer=lambda params: torch.optim.Adam(params, lr=lr, foreach=True),
                 stop_at_loss=target_loss, measure_every=25 if full_batch else 125,
                 description=f"B={batch_size}, seed {seed}")


@dataclass(frozen=True, eq=False)
class BatchComparison:
    """A small-batch (SB) and a large-batch (LB) run from the same initial weights.

    Attributes:
        data: the dataset both were trained on.
        small: the SB run (its ``model`` is the SB solution).
        large: the LB run.
    """

    data: Dataset
    small: TrainResult
    large: TrainResult

    @property
    def runs(self) -> dict[str, TrainResult]:
        """``{"SB": small, "LB": large}``."""
        return {"SB": self.small, "LB": self.large}


def small_vs_large_batch(data: Dataset, widths: Sequence[int], *, small_batch_size: int,
                         large_batch_size: int | None, lr: float, target_loss: float,
                         max_steps: int, seed: int) -> BatchComparison:
    """Keskar et al.'s comparison: :func:`train_to_loss` with the two batch sizes (``None`` for
    the large one means the whole training set), the same seed, so the same initial weights."""
    large_batch_size = large_batch_size or data.num_train
    small, large = (train_to_loss(data, widths, batch_size=batch_size, lr=lr,
                                  target_loss=target_loss, max_steps=max_steps, seed=seed)
                    for batch_size in (small_batch_size, large_batch_size))
    return BatchComparison(data=data, small=small, large=large)


def summary_table(comparisons: Mapping[int, BatchComparison]) -> pd.DataFrame:
    """One row per seed and run (SB, LB): steps, epochs, final training loss and accuracy,
    final and peak validation accuracy."""
    rows = []
    for seed, comparison in comparisons.items():
        for name, result in comparison.runs.items():
            final = result.final
            rows.append({"seed": seed, "run": name, "steps": int(final["step"]),
                         "epochs": round(final["epoch"], 1), "train_loss": final["train_loss"],
                         "train_acc": final["train_acc"], "val_acc": final["val_acc"],
                         "peak_val_acc": result.record["val_acc"].max()})
    return pd.DataFrame(rows)


def val_acc_gap(table: pd.DataFrame) -> pd.Series:
    """SB − LB final validation accuracy per seed, from a :func:`summary_table`."""
    wide = table.pivot(index="seed", columns="run", values="val_acc")
    return (wide["SB"] - wide["LB"]).rename("SB − LB val acc")


def line_between(comparison: BatchComparison, X: torch.Tensor, y: torch.Tensor,
                 alphas: np.ndarray) -> SliceResult:
    """Cross-entropy and accuracy on (X, y) along θ(α) = α·θ_LB + (1−α)·θ_SB at ``alphas``."""
    return line_between_models(comparison.small.model, comparison.large.model, X, y, alphas)


def line_between_models(small: nn.Module, large: nn.Module, X: torch.Tensor, y: torch.Tensor,
                        alphas: np.ndarray) -> SliceResult:
    """:func:`line_between` for two networks (``small`` at α = 0, ``large`` at α = 1)."""
    return interpolate(small, large, cross_entropy, X, y, alphas=alphas,
                       metric_fn=classification_accuracy)


def asymmetry_table(lines: Mapping[int, SliceResult],
                    offsets: Sequence[float] = (0.5, 1.0)) -> pd.DataFrame:
    """Per seed (index): how deep both ends sit (the smaller of the losses at α = −1 and 2 over
    the larger of the losses at the ends) and the rise beyond SB and beyond LB at each offset d.

    ``lines`` maps seed → the training-loss :func:`line_between` result over alphas ⊇ [−1, 2].
    """
    rows = []
    for seed, line in lines.items():
        ends = np.interp([0.0, 1.0, -1.0, 2.0], line.alphas, line.losses)
        row = {"seed": seed,
               "loss at α=−1, 2 ÷ loss at ends (min)": min(ends[2:]) / max(ends[:2])}
        for d in offsets:
            asym = line_asymmetry(line, d)
            row[f"rise beyond SB, d={d}"], row[f"rise beyond LB, d={d}"] = asym.rise_a, asym.rise_b
        rows.append(row)
    return pd.DataFrame(rows).set_index("seed")


def sharpness_table(comparisons: Mapping[str, Mapping[int, BatchComparison]],
                    eps: Sequence[float] = (1e-3, 5e-4)) -> pd.DataFrame:
    """λ_max, ε-sharpness at each ``eps`` (columns ``"ε-sharpness 1e-3"`` …), the final
    full-batch gradient norm and validation accuracy of every run, on its training set.

    ``comparisons`` maps task name → seed → :class:`BatchComparison`.
    """
    rows = []
    for task, by_seed in comparisons.items():
        for seed, comparison in by_seed.items():
            X, y = comparison.data.X_train, comparison.data.y_train
            for name, result in comparison.runs.items():
                row = {"task": task, "seed": seed, "run": name,
                       "λ_max": lambda_max(result.model, cross_entropy, X, y)}
                for value in eps:
                    row[f"ε-sharpness {_short(value)}"] = eps_sharpness(
                        result.model, cross_entropy, X, y, eps=value).sharpness
                row["‖∇L‖"] = result.final["grad_norm"]
                row["val_acc"] = result.final["val_acc"]
                rows.append(row)
    return pd.DataFrame(rows)


def _short(value: float) -> str:
    mantissa, exponent = f"{value:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


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

    ``slice_result`` comes from :func:`edutools.engine.landscape.interpolate` with α = 0 at θ_a and
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
