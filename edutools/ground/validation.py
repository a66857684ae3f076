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


def check_rho(rho: float, *, name: str = "rho") -> float:
    """Return ``rho`` (SAM radius, in parameter units) as a float if finite and ≥ 0, else raise.

    ρ = 0 is allowed: SAM then reduces to its base optimizer.
    """
    if isinstance(rho, bool) or not isinstance(rho, Real) or not math.isfinite(rho) or rho < 0:
        raise ValueError(f"{name} (SAM radius) must be a finite number ≥ 0, got {rho!r}")
    return float(rho)


def check_asam_eta(asam_eta: float) -> float:
    """Return ``asam_eta`` (ASAM offset η in T_w = |w| + η) as a float if finite and ≥ 0."""
    if isinstance(asam_eta, bool) or not isinstance(asam_eta, Real) \
            or not math.isfinite(asam_eta) or asam_eta < 0:
        raise ValueError(f"asam_eta (ASAM offset η in T_w = |w| + η) must be a finite number ≥ 0, "
                         f"got {asam_eta!r}")
    return float(asam_eta)


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


def check_bool(value: bool, *, name: str) -> bool:
    """Return ``value`` if it is ``True`` or ``False``; raise ``TypeError`` otherwise (a string
    such as ``'no'`` is truthy, so accepting it would silently mean yes)."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_samples(X: torch.Tensor, y: torch.Tensor, *, names: tuple[str, str] = ("X", "y"),
                  allow_empty: bool = False) -> None:
    """Check inputs and targets: tensors, as many targets as inputs, at least one sample (unless
    ``allow_empty``), no NaN or ±inf. Raises ``TypeError``/``ValueError`` naming them."""
    for values, name in zip((X, y), names, strict=True):
        if not isinstance(values, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(values).__name__}")
    if len(X) != len(y):
        raise ValueError(f"{names[0]} and {names[1]} must have the same number of samples, got "
                         f"{len(X)} and {len(y)}")
    if len(X) == 0 and not allow_empty:
        raise ValueError(f"{names[0]} must contain at least one sample, got 0")
    check_finite(X, name=names[0])
    check_finite(y, name=names[1])


def check_model_dtype(model: torch.nn.Module, X: torch.Tensor, *, name: str = "X") -> None:
    """Raise ``TypeError`` if the model's floating-point parameters and the float inputs ``X``
    differ in dtype (torch would fail deep inside the first layer)."""
    dtypes = {p.dtype for p in model.parameters() if p.is_floating_point()}
    if X.is_floating_point() and dtypes and dtypes != {X.dtype}:
        found = ", ".join(sorted(str(d) for d in dtypes))
        raise TypeError(f"the model's parameters are {found} but {name} is {X.dtype}: convert "
                        f"one of them (model.to({X.dtype}) or data.to(device, dtype=...))")


def check_param_groups(groups: list[dict], *, owner: str) -> None:
    """Check each optimizer param group's ``lr`` (finite, > 0) and, where the optimizer has one,
    ``momentum`` (in [0, 1)), as :func:`check_lr` and :func:`check_momentum` do for ``train``;
    the message names the optimizer (``owner``)."""
    for index, group in enumerate(groups):
        where = f"{owner} lr" if len(groups) == 1 else f"{owner} param group {index} lr"
        if "lr" in group:
            check_lr(group["lr"], name=where)
        if "momentum" in group:
            check_momentum(group["momentum"], name=where[:-2] + "momentum")
