"""Training-loop meters: callbacks for ``edutools.engine.training.train`` that record λ_max and
batch sharpness while a network trains.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from edutools.engine.sharpness.algorithms.batch import BatchSharpnessResult, batch_sharpness
from edutools.engine.sharpness.algorithms.eigen import EigenResult, top_eigenvalues
from edutools.engine.sharpness.operators.hessian import DEFAULT_HVP_METHOD, HvpMethod
from edutools.ground.models import num_params
from edutools.ground.validation import check_positive, check_positive_int


class LambdaMaxMeter:
    """Training callback recording λ_max (and λ_2..λ_k when ``k > 1``), warm-started.

    Called as ``meter(state)`` with ``state.model``, ``state.loss_fn``, ``state.X_train``,
    ``state.y_train`` and ``state.step``; returns ``{"lambda_max": λ_1, "lambda_max_hvps": HVPs}``
    plus ``"lambda_2"``…``"lambda_k"``. Each solve (:func:`top_eigenvalues`, Lanczos) starts from
    the previous call's top eigenvector (for ``k > 1``, the sum of the previous k eigenvectors),
    which cuts the HVPs when the eigenvectors move little between calls; a vector of the wrong
    length (another model) falls back to a random start.
    ``every``: measure only when ``state.step % every == 0`` (returns ``{}`` otherwise), for a
    slower cadence than the loop's. The default ``tol=1e-3`` is ample for comparing λ_max with an
    edge. ``last_result`` keeps the latest :class:`EigenResult`; :meth:`reset` forgets the warm
    start.
    """

    def __init__(
        self,
        *,
        k: int = 1,
        tol: float = 1e-3,
        every: int | None = None,
        max_hvps: int = 200,
        method: HvpMethod = DEFAULT_HVP_METHOD,
    ) -> None:
        check_positive_int(k, name="k")
        check_positive(tol, name="tol")
        if every is not None:
            check_positive_int(every, name="every")
        self.k = k
        self.tol = tol
        self.every = every
        self.max_hvps = max_hvps
        self.method: HvpMethod = method
        self.last_result: EigenResult | None = None
        self._previous_vector: torch.Tensor | None = None

    def reset(self) -> None:
        """Forget the warm-start vector (e.g. before measuring a different run)."""
        self._previous_vector = None
        self.last_result = None

    def __call__(self, state: Any) -> dict[str, float]:
        """Measure at ``state`` (see the class docstring); returns the values to record."""
        if self.every is not None and state.step % self.every != 0:
            return {}
        model = state.model
        warm_start = self._previous_vector
        if warm_start is not None and warm_start.numel() != num_params(model):
            warm_start = None
        result = top_eigenvalues(
            model,
            state.loss_fn,
            state.X_train,
            state.y_train,
            k=self.k,
            tol=self.tol,
            v0=warm_start,
            max_hvps=self.max_hvps,
            method=self.method,
        )
        # With k > 1 the sum of the previous eigenvectors starts all k Ritz pairs at once; the top
        # vector alone would leave Lanczos to find λ_2..λ_k from scratch.
        found = torch.from_numpy(np.isfinite(result.eigenvalues)).to(result.eigenvectors.device)
        finite_rows = result.eigenvectors[found]
        self._previous_vector = finite_rows.sum(dim=0).detach().clone()
        self.last_result = result
        record = {"lambda_max": float(result.eigenvalues[0]),
                  "lambda_max_hvps": int(result.num_hvps)}
        for i in range(1, self.k):
            record[f"lambda_{i + 1}"] = float(result.eigenvalues[i])
        return record


class BatchSharpnessMeter:
    """Training callback recording batch sharpness (:func:`batch_sharpness`).

    Returns ``{"batch_sharpness": mean, "batch_sharpness_se": standard error}``. ``batch_size``
    None uses ``state.batch_size`` (the training batch size). Each call seeds its batches with
    ``seed + state.step`` so successive measurements use fresh batches yet are reproducible.
    ``every`` as in :class:`LambdaMaxMeter`.
    """

    def __init__(
        self,
        *,
        batch_size: int | None = None,
        num_batches: int = 100,
        seed: int = 0,
        every: int | None = None,
        method: HvpMethod = DEFAULT_HVP_METHOD,
    ) -> None:
        if batch_size is not None:
            check_positive_int(batch_size, name="batch_size")
        check_positive_int(num_batches, name="num_batches")
        if every is not None:
            check_positive_int(every, name="every")
        self.batch_size = batch_size
        self.num_batches = num_batches
        self.seed = seed
        self.every = every
        self.method: HvpMethod = method
        self.last_result: BatchSharpnessResult | None = None

    def __call__(self, state: Any) -> dict[str, float]:
        """Measure at ``state`` (see the class docstring); returns the values to record."""
        if self.every is not None and state.step % self.every != 0:
            return {}
        batch_size = state.batch_size if self.batch_size is None else self.batch_size
        result = batch_sharpness(
            state.model,
            state.loss_fn,
            state.X_train,
            state.y_train,
            batch_size=min(batch_size, len(state.X_train)),
            num_batches=self.num_batches,
            seed=self.seed + int(state.step),
            method=self.method,
        )
        self.last_result = result
        return {"batch_sharpness": result.mean, "batch_sharpness_se": result.standard_error}


# ---------------------------------------------------------------------------------------------
