"""Keskar et al. 2017 (lesson 04): small- vs large-batch solutions, compared along the line
between them and by their training curves.

* :func:`curve_gap` — how far apart two training curves are (max |log ratio| at equal epochs).
* :func:`line_asymmetry` — on Keskar et al.'s line θ(α) = α·θ_b + (1−α)·θ_a, how much the loss
  rises just beyond each end.

Engine layer: nothing here draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from edutools.engine.landscape import SliceResult

__all__ = ["LineAsymmetry", "curve_gap", "line_asymmetry"]


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
