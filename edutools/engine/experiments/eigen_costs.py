"""What λ_max costs (lesson 05): Hessian-vector products timed two ways, power iteration against
Lanczos counted in HVPs, Lanczos' residuals checked, and warm against cold starts along a
training run.

* :func:`time_hvp_methods` — milliseconds per HVP of each method of
  :data:`~edutools.engine.sharpness.HVP_METHODS`.
* :class:`RayleighRecorder`, :func:`relative_errors`, :func:`hvps_to_reach` — the estimate after
  every HVP, and how many HVPs a method needs to reach a relative error.
* :func:`power_vs_lanczos` — HVPs each needs to reach a relative error, from several starts.
* :func:`residual_table` — reported against explicit residuals ‖Hu − θu‖ of a Lanczos result.
* :func:`warm_and_cold_starts` — λ_max at every checkpoint from a random and a warm start.

Engine layer: nothing here draws.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse.linalg
import torch
from torch import nn

from edutools.engine.sharpness import (
    HVP_METHODS,
    EigenResult,
    HessianOperator,
    set_flat_params,
    top_eigenvalues,
)
from edutools.ground.models import LossFn
from edutools.ground.validation import check_positive_int

__all__ = ["HvpTiming", "RayleighRecorder", "hvps_to_reach", "power_vs_lanczos", "relative_errors",
           "residual_table", "time_hvp_methods", "warm_and_cold_starts"]

#: ``power_iteration(hvp_fn, v0, num_iters) -> (eigenvalue, eigenvector)``, as in the exercise.
PowerIteration = Callable[[Callable[[torch.Tensor], torch.Tensor], torch.Tensor, int], object]

#: A training checkpoint: (step, flat parameter vector).
Checkpoint = tuple[int, torch.Tensor]


def _relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.linalg.norm(a - b) / torch.linalg.norm(b))


@dataclass(frozen=True)
class HvpTiming:
    """Speed of each HVP method on one model.

    Attributes:
        ms_per_hvp: method name → milliseconds per HVP (mean of ``repeats`` products after one
            warm-up product).
        relative_difference: ‖Hv_forward_over_reverse − Hv_double_backward‖ / ‖Hv_double_backward‖.
        repeats: products timed per method.
    """

    ms_per_hvp: dict[str, float]
    relative_difference: float
    repeats: int


def time_hvp_methods(model: nn.Module, loss_fn: LossFn, X: torch.Tensor, y: torch.Tensor,
                     v: torch.Tensor, *, repeats: int = 10) -> HvpTiming:
    """Time ``repeats`` products H·v with each HVP method (after one warm-up product, which for
    double backward also builds the kept gradient graph) and compare their results."""
    repeats = check_positive_int(repeats, name="repeats")
    timings, products = {}, {}
    for method in HVP_METHODS:
        operator = HessianOperator(model, loss_fn, X, y, method=method)
        operator.matvec(v)
        start = time.perf_counter()
        for _ in range(repeats):
            products[method] = operator.matvec(v)
        if v.device.type == "cuda":
            # GPU kernels run asynchronously: wait for them before reading the clock.
            torch.cuda.synchronize()
        timings[method] = (time.perf_counter() - start) / repeats * 1e3
    return HvpTiming(ms_per_hvp=timings, repeats=repeats,
                     relative_difference=_relative_error(products["forward_over_reverse"],
                                                         products["double_backward"]))


class RayleighRecorder:
    """An ``hvp_fn`` for power iteration that records the Rayleigh quotient vᵀHv/vᵀv of every
    vector it multiplies: the eigenvalue estimate after each HVP.

    Attributes:
        operator: the :class:`~edutools.engine.sharpness.HessianOperator` doing the products.
        rayleigh_quotients: one float per call, in call order.
    """

    def __init__(self, operator: HessianOperator) -> None:
        self.operator = operator
        self.rayleigh_quotients: list[float] = []

    def __call__(self, vector: torch.Tensor) -> torch.Tensor:
        """H·vector (one HVP), recording its Rayleigh quotient."""
        product = self.operator.matvec(vector)
        self.rayleigh_quotients.append(
            float(torch.dot(vector, product) / torch.dot(vector, vector)))
        return product


def relative_errors(estimates: Sequence[float] | np.ndarray, reference: float) -> np.ndarray:
    """|estimate − reference| / reference, one per estimate (shape of ``estimates``)."""
    return np.abs(np.asarray(estimates, dtype=float) - reference) / reference


def hvps_to_reach(errors: np.ndarray, target: float) -> float:
    """The number of HVPs after which ``errors`` (one per HVP) first is ≤ ``target``; ``inf`` if
    it never is."""
    below = np.flatnonzero(np.asarray(errors) <= target)
    return int(below[0]) + 1 if below.size else np.inf


def power_vs_lanczos(model: nn.Module, loss_fn: LossFn, X: torch.Tensor, y: torch.Tensor, *,
                     power_iteration: PowerIteration, starts: Sequence[torch.Tensor],
                     reference: float, target: float = 1e-4, num_iters: int = 150,
                     lanczos_max_hvps: int = 60) -> pd.DataFrame:
    """From each start vector, the HVPs power iteration (``num_iters`` iterations, its estimate
    after every HVP read off by a :class:`RayleighRecorder`) and Lanczos (k = 1, tol 1e-10, at
    most ``lanczos_max_hvps``) need to reach a relative error ``target`` of ``reference``
    (λ_max); ``inf`` if they never do. One row per start (index ``start``)."""
    operator = HessianOperator(model, loss_fn, X, y)
    rows = []
    for index, start in enumerate(starts):
        recorder = RayleighRecorder(operator)
        power_iteration(recorder, start, num_iters)
        lanczos = top_eigenvalues(model, loss_fn, X, y, k=1, tol=1e-10, v0=start,
                                  max_hvps=lanczos_max_hvps)
        rows.append({"start": index,
                     "power iteration": hvps_to_reach(
                         relative_errors(recorder.rayleigh_quotients, reference), target),
                     "Lanczos": hvps_to_reach(relative_errors(lanczos.history[:, 0], reference),
                                              target)})
    return pd.DataFrame(rows).set_index("start")


def residual_table(operator: HessianOperator, result: EigenResult,
                   reference: np.ndarray) -> pd.DataFrame:
    """One row per eigenpair (index i = 1…k): the Lanczos eigenvalue, the ``reference`` one
    (e.g. eigsh's), their relative error, the residual Lanczos reported and the explicit
    residual ‖Hu − θu‖ (one HVP each)."""
    explicit = [float(torch.linalg.vector_norm(operator.matvec(u) - lam * u))
                for lam, u in zip(result.eigenvalues, result.eigenvectors, strict=True)]
    k = len(result.eigenvalues)
    reference = np.asarray(reference)[:k]
    return pd.DataFrame({
        "Lanczos": result.eigenvalues, "eigsh": reference,
        "relative error": np.abs(result.eigenvalues - reference) / reference,
        "reported residual": result.residual_norms, "explicit residual": explicit,
    }, index=pd.RangeIndex(1, k + 1, name="i"))


def warm_and_cold_starts(model: nn.Module, loss_fn: LossFn, X: torch.Tensor, y: torch.Tensor,
                         checkpoints: Sequence[Checkpoint], *, tol: float,
                         seed: int = 0) -> pd.DataFrame:
    """λ_max at every checkpoint three ways: eigsh to 1e-8 (``lambda_max``, the reference),
    Lanczos from a random start seeded ``seed + i`` (``cold``) and Lanczos started from the
    previous checkpoint's eigenvector (``warm``; the first checkpoint has none: its cold run),
    with the HVPs each spent and their relative errors. ``model`` is not changed (a copy is
    loaded with each checkpoint)."""
    probe = copy.deepcopy(model)
    rows, previous = [], None
    for i, (step, parameters) in enumerate(checkpoints):
        set_flat_params(probe, parameters)
        operator = HessianOperator(probe, loss_fn, X, y)
        truth = scipy.sparse.linalg.eigsh(operator.to_scipy(), k=1, which="LA", tol=1e-8,
                                          return_eigenvectors=False)[0]
        cold = top_eigenvalues(probe, loss_fn, X, y, tol=tol, seed=seed + i)
        warm = (cold if previous is None else
                top_eigenvalues(probe, loss_fn, X, y, tol=tol, v0=previous))
        previous = warm.eigenvectors[0]
        rows.append({"step": step, "lambda_max": truth,
                     "cold": cold.lambda_max, "cold HVPs": cold.num_hvps,
                     "warm": warm.lambda_max, "warm HVPs": warm.num_hvps})
    along = pd.DataFrame(rows)
    along["cold error"] = (along["cold"] - along["lambda_max"]).abs() / along["lambda_max"]
    along["warm error"] = (along["warm"] - along["lambda_max"]).abs() / along["lambda_max"]
    return along
