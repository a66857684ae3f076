"""Lanczos with full reorthogonalization and the ARPACK alternative: the Krylov machinery behind
:func:`~edutools.engine.sharpness.algorithms.eigen.top_eigenvalues` and stochastic Lanczos
quadrature.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.optimize
import scipy.sparse.linalg
import torch

from edutools.engine.sharpness.operators.hessian import HessianOperator
from edutools.engine.sharpness.operators.params import _check_flat_vector


@dataclass(frozen=True, eq=False)
class _LanczosRun:
    basis: torch.Tensor  # (steps, n), orthonormal rows
    alphas: np.ndarray  # (steps,), diagonal of T
    betas: np.ndarray  # (steps,), betas[j] couples q_j and q_{j+1}; the last is the residual
    history: np.ndarray  # (steps, k) wanted Ritz values after each step
    converged: bool


def _lanczos(
    operator: HessianOperator,
    start: torch.Tensor,
    *,
    max_steps: int,
    generator: torch.Generator | None,
    stop: Callable[[np.ndarray, np.ndarray, float], bool] | None = None,
    k: int = 1,
) -> _LanczosRun:
    """Lanczos with full reorthogonalization; ``stop(theta, vectors, beta)`` may end it.

    ``theta, vectors``: the eigen-decomposition of the current tridiagonal matrix (as
    :func:`_tridiagonal_eigh` returns it, computed once per step for the history and the rule);
    ``beta``: the norm of the next Lanczos vector, so that ``beta·|vectors[-1, i]|`` is the
    residual of Ritz pair i.

    On breakdown (β ≈ 0: the Krylov space is invariant) the run either ends (no generator: SLQ,
    where the quadrature is then exact) or continues from a fresh random vector orthogonal to the
    basis, so that more than one eigenvalue can still be found.
    """
    n = operator.num_params
    capacity = min(max_steps, 32)
    basis = torch.empty(capacity, n, device=operator.device, dtype=operator.dtype)
    alphas: list[float] = []
    betas: list[float] = []
    history: list[np.ndarray] = []
    breakdown_level = 100.0 * torch.finfo(operator.dtype).eps
    q = start / torch.linalg.vector_norm(start)
    converged = False
    for j in range(max_steps):
        if j == capacity:
            capacity = min(2 * capacity, max_steps)
            grown = torch.empty(capacity, n, device=operator.device, dtype=operator.dtype)
            grown[:j] = basis[:j]
            basis = grown
        basis[j] = q
        w = operator.matvec(q)
        alphas.append(float(torch.dot(q, w)))
        # Two passes of classical Gram–Schmidt against the whole basis keep it orthogonal to
        # working precision; without them Lanczos produces spurious copies of λ_max.
        Q = basis[: j + 1]
        w = w - Q.T @ (Q @ w)
        w = w - Q.T @ (Q @ w)
        beta = float(torch.linalg.vector_norm(w))
        theta, vectors = _tridiagonal_eigh(np.array(alphas), np.array(betas))
        wanted = np.full(k, np.nan)
        wanted[: min(k, len(theta))] = theta[::-1][:k]
        history.append(wanted)
        if stop is not None and stop(theta, vectors, beta):
            converged = True
            betas.append(beta)
            break
        scale = max(float(np.max(np.abs(theta))), torch.finfo(operator.dtype).tiny)
        if beta <= breakdown_level * scale:
            if generator is None or j + 1 == min(max_steps, n):
                betas.append(beta)
                break
            q = _random_orthogonal(operator, basis[: j + 1], generator)
            betas.append(0.0)
        else:
            q = w / beta
            betas.append(beta)
    steps = len(alphas)
    return _LanczosRun(
        basis=basis[:steps],
        alphas=np.array(alphas),
        betas=np.array(betas),
        history=np.array(history),
        converged=converged,
    )


def _tridiagonal_eigh(alphas: np.ndarray, betas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigen-decomposition of the symmetric tridiagonal T (diagonal alphas, off-diagonal betas)."""
    if len(alphas) == 1:
        return np.array([alphas[0]]), np.ones((1, 1))
    return scipy.linalg.eigh_tridiagonal(alphas, betas[: len(alphas) - 1])


def _start_vector(operator: HessianOperator, v0: torch.Tensor | None, seed: int) -> torch.Tensor:
    if v0 is not None:
        _check_flat_vector(v0, operator.num_params, "v0")
        start = v0.detach().to(device=operator.device, dtype=operator.dtype).clone()
        if not torch.isfinite(start).all() or torch.linalg.vector_norm(start) == 0:
            raise ValueError("v0 must be a finite, non-zero vector")
        return start
    generator = torch.Generator().manual_seed(seed)
    start = torch.randn(operator.num_params, generator=generator, dtype=torch.float64)
    return start.to(device=operator.device, dtype=operator.dtype)


def _random_orthogonal(
    operator: HessianOperator, basis: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    q = torch.randn(operator.num_params, generator=generator, dtype=torch.float64)
    q = q.to(device=operator.device, dtype=operator.dtype)
    q = q - basis.T @ (basis @ q)
    q = q - basis.T @ (basis @ q)
    return q / torch.linalg.vector_norm(q)
