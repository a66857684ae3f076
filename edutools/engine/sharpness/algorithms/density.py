"""Trace (Hutchinson, with its standard error) and eigenvalue density (stochastic Lanczos
quadrature) of the Hessian.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from edutools.engine.sharpness.algorithms.lanczos import _lanczos, _tridiagonal_eigh
from edutools.engine.sharpness.operators.hessian import (
    DEFAULT_HVP_METHOD,
    HessianOperator,
    HvpMethod,
)
from edutools.ground.models import LossFn
from edutools.ground.validation import check_positive, check_positive_int


@dataclass(frozen=True, eq=False)
class TraceResult:
    """Hutchinson estimate of tr(H).

    Attributes:
        trace: mean of the samples ``zᵀHz`` (loss per parameter²).
        standard_error: sample standard deviation / √num_samples.
        num_samples: number of Rademacher probes (= HVPs).
        samples: shape ``(num_samples,)``, the individual ``zᵀHz``.
    """

    trace: float
    standard_error: float
    num_samples: int
    samples: np.ndarray


def hessian_trace(
    model: nn.Module,
    loss_fn: LossFn,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    num_samples: int = 100,
    seed: int = 0,
    method: HvpMethod = DEFAULT_HVP_METHOD,
) -> TraceResult:
    """Trace of the training-loss Hessian by Hutchinson's estimator, E[zᵀHz] = tr(H).

    ``z`` has independent ±1 (Rademacher) entries, drawn from a generator seeded by ``seed``;
    one HVP per sample; ``num_samples ≥ 2`` so that a standard error exists. Eval mode.
    """
    if num_samples < 2:
        raise ValueError(f"num_samples must be at least 2, got {num_samples}")
    operator = HessianOperator(model, loss_fn, X, y, method=method)
    generator = torch.Generator().manual_seed(seed)
    samples = np.empty(num_samples)
    for i in range(num_samples):
        z = _rademacher(operator, generator)
        samples[i] = float(torch.dot(z, operator.matvec(z)))
    return TraceResult(
        trace=float(samples.mean()),
        standard_error=float(samples.std(ddof=1) / math.sqrt(num_samples)),
        num_samples=num_samples,
        samples=samples,
    )


@dataclass(frozen=True, eq=False)
class DensityResult:
    """Stochastic Lanczos quadrature (SLQ) of the Hessian eigenvalue density.

    Each probe's Lanczos run gives a Gauss quadrature rule: Ritz values (nodes) and weights (the
    squared first components of the tridiagonal's eigenvectors, summing to 1 per probe).

    Attributes:
        nodes: shape ``(num_probes, lanczos_steps)``, Ritz values; NaN where a probe's Krylov
            space was exhausted early (those entries have weight 0).
        weights: shape ``(num_probes, lanczos_steps)``, quadrature weights.
        num_params: dimension of the Hessian.
        num_hvps: HVPs spent (``num_probes × lanczos_steps`` at most).
    """

    nodes: np.ndarray
    weights: np.ndarray
    num_params: int
    num_hvps: int

    def density(self, grid: np.ndarray, *, sigma: float) -> np.ndarray:
        """Gaussian-smoothed eigenvalue density on ``grid`` (shape ``(G,)``) → shape ``(G,)``.

        ``(1/num_probes) Σ_probes Σ_i w_i N(t; θ_i, σ²)``: integrates to 1 (the fraction of
        eigenvalues per unit of eigenvalue); multiply by ``num_params`` for counts. ``sigma`` in
        the eigenvalues' units, > 0.
        """
        check_positive(sigma, name="sigma")
        grid = np.asarray(grid, dtype=np.float64)
        valid = self.weights > 0
        nodes = self.nodes[valid]
        weights = self.weights[valid]
        z = (grid[:, None] - nodes[None, :]) / sigma
        kernel = np.exp(-0.5 * z * z) / (sigma * math.sqrt(2.0 * math.pi))
        return kernel @ weights / self.nodes.shape[0]


def spectral_density(
    model: nn.Module,
    loss_fn: LossFn,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    num_probes: int = 10,
    lanczos_steps: int = 80,
    seed: int = 0,
    method: HvpMethod = DEFAULT_HVP_METHOD,
) -> DensityResult:
    """Hessian eigenvalue density by stochastic Lanczos quadrature (Ghorbani et al. 2019).

    For each of ``num_probes`` normalized Rademacher probes (seeded by ``seed``) run
    ``lanczos_steps`` Lanczos steps (``≤ n_params``) with full reorthogonalization and keep the
    Ritz values and weights. Evaluate the smoothed density with :meth:`DensityResult.density`.
    Eval mode.
    """
    check_positive_int(num_probes, name="num_probes")
    check_positive_int(lanczos_steps, name="lanczos_steps")
    operator = HessianOperator(model, loss_fn, X, y, method=method)
    if lanczos_steps > operator.num_params:
        raise ValueError(f"lanczos_steps must be at most the number of parameters "
                         f"({operator.num_params}), got {lanczos_steps}")
    generator = torch.Generator().manual_seed(seed)
    nodes = np.full((num_probes, lanczos_steps), np.nan)
    weights = np.zeros((num_probes, lanczos_steps))
    for probe in range(num_probes):
        start = _rademacher(operator, generator)
        run = _lanczos(operator, start, max_steps=lanczos_steps, generator=None)
        theta, vectors = _tridiagonal_eigh(run.alphas, run.betas[:-1])
        nodes[probe, : len(theta)] = theta
        weights[probe, : len(theta)] = vectors[0, :] ** 2
    return DensityResult(
        nodes=nodes, weights=weights, num_params=operator.num_params, num_hvps=operator.num_hvps
    )


# ---------------------------------------------------------------------------------------------

def _rademacher(operator: HessianOperator, generator: torch.Generator) -> torch.Tensor:
    bits = torch.randint(0, 2, (operator.num_params,), generator=generator)
    return (2.0 * bits - 1.0).to(device=operator.device, dtype=operator.dtype)
