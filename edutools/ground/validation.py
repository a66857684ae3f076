"""Argument checks shared by the whole package.

Every check raises a ``ValueError`` that names the parameter and its bad value, so a learner who
moves a slider too far reads what went wrong instead of a traceback from deep inside torch.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
import torch


def check_lr(lr: float, *, name: str = "lr") -> float:
    """Return ``lr`` as a float if it is a finite number > 0; raise ``ValueError`` otherwise."""
    if isinstance(lr, bool) or not isinstance(lr, Real) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"{name} (learning rate) must be a finite number > 0, got {lr!r}")
    return float(lr)


def check_momentum(momentum: float, *, name: str = "momentum") -> float:
    """Return ``momentum`` as a float if it lies in [0, 1); raise ``ValueError`` otherwise.

    At momentum 1 the heavy-ball velocity never forgets a gradient and the effective step
    η/(1−β) is infinite, so 1 is excluded.
    """
    if isinstance(momentum, bool) or not isinstance(momentum, Real) or not 0 <= momentum < 1:
        raise ValueError(f"{name} must lie in [0, 1), got {momentum!r}")
    return float(momentum)


def check_batch_size(batch_size: int, num_samples: int, *, name: str = "batch_size") -> int:
    """Return ``batch_size`` if it is an integer in [1, num_samples]; else raise ``ValueError``."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, Integral):
        raise ValueError(f"{name} must be a whole number, got {batch_size!r}")
    if batch_size <= 0:
        raise ValueError(f"{name} must be at least 1, got {batch_size}")
    if batch_size > num_samples:
        raise ValueError(
            f"{name}={batch_size} is larger than the training set ({num_samples} samples)"
        )
    return int(batch_size)


def check_positive_int(value: int, *, name: str) -> int:
    """Return ``value`` if it is an integer ≥ 1; raise ``ValueError`` naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be a whole number ≥ 1, got {value!r}")
    return int(value)


def check_positive(value: float, *, name: str) -> float:
    """Return ``value`` as a float if it is a finite number > 0; raise ``ValueError`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) \
            or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def check_fraction(value: float, *, name: str, low: float = 0.0, high: float = 1.0) -> float:
    """Return ``value`` if ``low <= value < high``; else raise ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, Real) or not low <= value < high:
        raise ValueError(f"{name} must lie in [{low}, {high}), got {value!r}")
    return float(value)


def check_finite(values: torch.Tensor | np.ndarray, *, name: str) -> None:
    """Raise ``ValueError`` if ``values`` holds NaN or ±inf, saying how many entries are bad."""
    array = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else values
    if not np.issubdtype(np.asarray(array).dtype, np.number):
        return
    bad = ~np.isfinite(array)
    if bad.any():
        raise ValueError(
            f"{name} contains {int(bad.sum())} non-finite value(s) (NaN or inf) out of {bad.size}"
        )
