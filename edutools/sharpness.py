"""Curvature of a model's training loss: Hessian-vector products and the measurements built on them.

Layout (operators apart from algorithms, as in hessian-eigenthings):

* **Parameter helpers** — the flat parameter vector is made of the parameters with
  ``requires_grad=True``, in ``model.named_parameters()`` order. Every vector this module takes or
  returns (``v``, ``v0``, eigenvectors, gradients) is such a flat vector of length ``num_params``.
* **Operator** — :class:`HessianOperator` applies H, the Hessian of the training loss L(θ) with
  respect to that vector, to vectors (one HVP per call, counted in ``num_hvps``); :func:`hvp` is
  the one-shot form; :meth:`HessianOperator.to_scipy` wraps it for ``scipy.sparse.linalg``.
* **Algorithms** — :func:`top_eigenvalues` (Lanczos), :func:`power_iteration`,
  :func:`hessian_trace` (Hutchinson), :func:`spectral_density` (stochastic Lanczos quadrature),
  :func:`batch_sharpness`, :func:`exact_hessian`, :func:`eps_sharpness` (Keskar et al. 2017),
  :func:`perturbation_sharpness` (a poor estimate, kept as a contrast).
* **Meters** — :class:`LambdaMaxMeter`, :class:`BatchSharpnessMeter`: training-loop callbacks.

Conventions shared by every measurement:

* ``loss_fn(outputs, targets)`` returns a scalar tensor that is a *mean over samples* (the course
  MSE is ``0.5 · mean_over_samples ||f(x) − y||²``). Curvatures are in units of loss per
  (parameter unit)²; λ_max is compared with edges such as 2/η.
* The model is evaluated in **eval mode** (dropout off, batch-norm running statistics) inside every
  measurement: curvature is a property of the deterministic loss. The previous train/eval mode of
  every submodule is restored afterwards.
* Measurements never populate ``.grad`` (they use ``torch.autograd.grad``) and leave the parameters
  bit-for-bit as they found them (perturbing measurements restore a saved copy).
* Vectors live on the model's device and dtype; nothing here assumes a CPU.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.linalg
import scipy.optimize
import scipy.sparse.linalg
import torch
from torch import nn

from edutools.validation import check_positive, check_positive_int

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
HvpMethod = Literal["double_backward", "forward_over_reverse"]
EigenSolver = Literal["lanczos", "arpack"]

HVP_METHODS: tuple[str, ...] = ("double_backward", "forward_over_reverse")
#: On CPU (tests/benchmarks/bench_sharpness.py, digits MLP, 3.5k parameters) one double-backward
#: HVP took 0.6x the time of a ``torch.func`` forward-over-reverse one, and 0.3x with the
#: first-order graph kept between products as :class:`HessianOperator` does; Lanczos solves took
#: 0.35-0.4x. Hence the default everywhere.
DEFAULT_HVP_METHOD: HvpMethod = "double_backward"

#: A dense float64 Hessian of 11 000 parameters takes 11 000² × 8 B ≈ 0.97 GB.
EXACT_HESSIAN_MAX_PARAMS = 11_000

__all__ = [
    "BatchSharpnessMeter",
    "BatchSharpnessResult",
    "DEFAULT_HVP_METHOD",
    "DensityResult",
    "EXACT_HESSIAN_MAX_PARAMS",
    "EigenResult",
    "EpsSharpnessResult",
    "HVP_METHODS",
    "HessianOperator",
    "LambdaMaxMeter",
    "PerturbationSharpnessResult",
    "TraceResult",
    "batch_sharpness",
    "eps_sharpness",
    "evaluation_mode",
    "exact_hessian",
    "flat_grad",
    "flatten_params",
    "hessian_trace",
    "hvp",
    "lambda_max",
    "num_params",
    "perturbation_sharpness",
    "power_iteration",
    "preserved_parameters",
    "set_flat_params",
    "spectral_density",
    "top_eigenvalues",
    "trainable_named_parameters",
    "unflatten_params",
]


# ---------------------------------------------------------------------------------------------
# Parameter helpers
# ---------------------------------------------------------------------------------------------


def trainable_named_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """Return ``(name, parameter)`` for every parameter with ``requires_grad=True``.

    The order (that of ``model.named_parameters()``, shared parameters listed once) defines the
    layout of every flat vector in this module.
    """
    return [(name, p) for name, p in model.named_parameters() if p.requires_grad]


def num_params(model: nn.Module) -> int:
    """Number of trainable scalars: the length ``n_params`` of the flat parameter vector."""
    return sum(p.numel() for _, p in trainable_named_parameters(model))


def flatten_params(model: nn.Module) -> torch.Tensor:
    """Return a detached copy of the trainable parameters as one flat vector, shape ``(n_params,)``.

    On the model's device, in its dtype.
    """
    params = _require_trainable(model)
    return torch.cat([p.detach().reshape(-1) for p in params]).clone()


def set_flat_params(model: nn.Module, flat: torch.Tensor) -> None:
    """Copy a flat vector of shape ``(n_params,)`` into the trainable parameters, in place."""
    params = _require_trainable(model)
    _check_flat_vector(flat, sum(p.numel() for p in params), "flat")
    with torch.no_grad():
        for p, part in zip(params, _split_flat(flat, params), strict=True):
            p.copy_(part)


def unflatten_params(model: nn.Module, flat: torch.Tensor) -> list[torch.Tensor]:
    """Split a flat vector of shape ``(n_params,)`` into views shaped like each parameter."""
    params = _require_trainable(model)
    _check_flat_vector(flat, sum(p.numel() for p in params), "flat")
    return _split_flat(flat, params)


@contextmanager
def evaluation_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode for the block, then restore every submodule's own mode.

    Restoring per submodule (not ``model.train(previous)``) keeps mixed states intact, e.g. a
    frozen batch-norm left in eval mode inside a model in train mode.
    """
    previous = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, was_training in previous:
            module.training = was_training


@contextmanager
def preserved_parameters(model: nn.Module) -> Iterator[nn.Module]:
    """Save the trainable parameters and copy them back bit-for-bit when the block ends."""
    saved = [p.detach().clone() for p in _require_trainable(model)]
    try:
        yield model
    finally:
        with torch.no_grad():
            for p, value in zip(_require_trainable(model), saved, strict=True):
                p.copy_(value)


def flat_grad(
    model: nn.Module, loss_fn: LossFn, X: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """Gradient of ``loss_fn(model(X), y)`` as a flat vector, shape ``(n_params,)``.

    Evaluated in eval mode; ``.grad`` fields are left untouched.
    """
    _check_data(X, y)
    with evaluation_mode(model):
        _, gradient = _loss_and_flat_grad(model, loss_fn, X, y)
    return gradient


# ---------------------------------------------------------------------------------------------
# Operator layer
# ---------------------------------------------------------------------------------------------


class HessianOperator:
    """The Hessian H of the training loss at the model's current parameters, as a linear operator.

    ``matvec(v)`` returns H·v for a flat vector ``v`` of shape ``(num_params,)``; each call is one
    Hessian-vector product (HVP) and increments ``num_hvps``. Methods:

    * ``"double_backward"`` (default, the faster one on CPU): differentiate the gradient a second
      time, ``H·v = ∂(∇L·v)/∂θ``. With ``reuse_graph=True`` the first-order graph is built once
      and kept, so each further HVP costs one extra backward pass. The graph is rebuilt
      automatically if a parameter is modified in place (tracked with tensor version counters).
    * ``"forward_over_reverse"``: ``torch.func.jvp`` of ``torch.func.grad`` of a functional loss
      (``torch.func.functional_call``); recomputes forward and backward for every product.

    ``chunk_size`` evaluates the loss on slices of ``X`` of at most that many samples and adds
    the chunk results weighted by chunk size, which is exact for a loss that is a mean over
    samples and bounds the memory by one chunk's graph (the graph is then not reused).

    The loss is evaluated in eval mode; H is symmetric, so ``to_scipy()`` uses matvec for rmatvec.
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        X: torch.Tensor,
        y: torch.Tensor,
        *,
        method: HvpMethod = DEFAULT_HVP_METHOD,
        chunk_size: int | None = None,
        reuse_graph: bool = True,
    ) -> None:
        _check_method(method)
        _check_data(X, y)
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size}")
        named = trainable_named_parameters(model)
        if not named:
            raise ValueError("model has no parameters with requires_grad=True")
        self.model = model
        self.loss_fn = loss_fn
        self.X = X
        self.y = y
        self.method: HvpMethod = method
        self.chunk_size = chunk_size
        self._names = [name for name, _ in named]
        self._params = [p for _, p in named]
        self.num_params: int = sum(p.numel() for p in self._params)
        self.num_hvps: int = 0
        self._reuse_graph = (
            reuse_graph
            and method == "double_backward"
            and (chunk_size is None or chunk_size >= len(X))
        )
        self._graph_gradient: torch.Tensor | None = None
        self._graph_versions: tuple[int, ...] | None = None

    @property
    def device(self) -> torch.device:
        """Device of the model's (first trainable) parameter; vectors are created there."""
        return self._params[0].device

    @property
    def dtype(self) -> torch.dtype:
        """Dtype of the model's (first trainable) parameter; vectors are created in it."""
        return self._params[0].dtype

    def gradient(self) -> torch.Tensor:
        """Flat gradient ∇L at the current parameters, shape ``(num_params,)`` (not an HVP)."""
        if self._reuse_graph:
            return self._kept_gradient_graph().detach().clone()
        with evaluation_mode(self.model):
            total = torch.zeros(self.num_params, device=self.device, dtype=self.dtype)
            for X_chunk, y_chunk, weight in self._chunks():
                _, gradient = _loss_and_flat_grad(self.model, self.loss_fn, X_chunk, y_chunk)
                total += weight * gradient
        return total

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        """Return H·v, shape ``(num_params,)``, for a flat vector ``v`` of the same shape."""
        _check_flat_vector(v, self.num_params, "v")
        v = v.detach().to(device=self.device, dtype=self.dtype)
        self.num_hvps += 1
        if self._reuse_graph:
            return self._vector_times_graph(self._kept_gradient_graph(), v, retain_graph=True)
        with evaluation_mode(self.model):
            result = torch.zeros(self.num_params, device=self.device, dtype=self.dtype)
            for X_chunk, y_chunk, weight in self._chunks():
                if self.method == "double_backward":
                    chunk_gradient = self._gradient_with_graph(X_chunk, y_chunk)
                    result += weight * self._vector_times_graph(
                        chunk_gradient, v, retain_graph=False
                    )
                else:
                    result += weight * self._forward_over_reverse(X_chunk, y_chunk, v)
        return result

    def to_scipy(self) -> scipy.sparse.linalg.LinearOperator:
        """Wrap as a ``scipy.sparse.linalg.LinearOperator`` taking and returning float64 numpy.

        Each product still counts in ``num_hvps``.
        """

        def apply(x: np.ndarray) -> np.ndarray:
            vector = torch.as_tensor(np.asarray(x, dtype=np.float64).reshape(-1))
            return self.matvec(vector).detach().to("cpu", torch.float64).numpy()

        shape = (self.num_params, self.num_params)
        return scipy.sparse.linalg.LinearOperator(
            shape, matvec=apply, rmatvec=apply, dtype=np.float64
        )

    # -- internals ------------------------------------------------------------------------------

    def _chunks(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, float]]:
        n = len(self.X)
        size = n if self.chunk_size is None else min(self.chunk_size, n)
        for start in range(0, n, size):
            stop = min(start + size, n)
            yield self.X[start:stop], self.y[start:stop], (stop - start) / n

    def _gradient_with_graph(self, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = _scalar_loss(self.loss_fn, self.model(X), y)
        grads = torch.autograd.grad(loss, self._params, create_graph=True, allow_unused=True)
        return torch.cat(
            [
                torch.zeros_like(p).reshape(-1) if g is None else g.reshape(-1)
                for g, p in zip(grads, self._params, strict=True)
            ]
        )

    def _kept_gradient_graph(self) -> torch.Tensor:
        versions = tuple(p._version for p in self._params)
        if self._graph_gradient is None or versions != self._graph_versions:
            with evaluation_mode(self.model):
                self._graph_gradient = self._gradient_with_graph(self.X, self.y)
            self._graph_versions = versions
        return self._graph_gradient

    def _vector_times_graph(
        self, gradient: torch.Tensor, v: torch.Tensor, *, retain_graph: bool
    ) -> torch.Tensor:
        # vᵀ(∂g/∂θ) = (Hv)ᵀ because H is symmetric: one backward pass through the gradient graph.
        if not gradient.requires_grad:
            return torch.zeros_like(v)
        products = torch.autograd.grad(
            gradient, self._params, grad_outputs=v, retain_graph=retain_graph, allow_unused=True
        )
        return torch.cat(
            [
                torch.zeros_like(p).reshape(-1) if h is None else h.reshape(-1)
                for h, p in zip(products, self._params, strict=True)
            ]
        )

    def _forward_over_reverse(
        self, X: torch.Tensor, y: torch.Tensor, v: torch.Tensor
    ) -> torch.Tensor:
        primals = {name: p.detach() for name, p in zip(self._names, self._params, strict=True)}
        tangents = dict(zip(self._names, _split_flat(v, self._params), strict=True))

        def loss_of(parameters: dict[str, torch.Tensor]) -> torch.Tensor:
            outputs = torch.func.functional_call(self.model, parameters, (X,))
            return _scalar_loss(self.loss_fn, outputs, y)

        _, product = torch.func.jvp(torch.func.grad(loss_of), (primals,), (tangents,))
        return torch.cat([product[name].reshape(-1) for name in self._names])


def hvp(
    model: nn.Module,
    loss_fn: LossFn,
    X: torch.Tensor,
    y: torch.Tensor,
    v: torch.Tensor,
    *,
    method: HvpMethod = DEFAULT_HVP_METHOD,
    chunk_size: int | None = None,
) -> torch.Tensor:
    """One Hessian-vector product H·v of the loss ``loss_fn(model(X), y)`` (eval mode).

    ``v``: flat vector, shape ``(n_params,)``. Returns H·v with the same shape, on the model's
    device and dtype. ``method`` is ``"double_backward"`` (default; faster on CPU) or
    ``"forward_over_reverse"``; see :class:`HessianOperator`. For many products with the same
    data build one :class:`HessianOperator`, which keeps the first-order graph between products.
    """
    operator = HessianOperator(
        model, loss_fn, X, y, method=method, chunk_size=chunk_size, reuse_graph=False
    )
    return operator.matvec(v)


# ---------------------------------------------------------------------------------------------
# Eigenvalues
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class EigenResult:
    """Top eigenpairs of the training-loss Hessian.

    Attributes:
        eigenvalues: shape ``(k,)``, float64, descending (loss per parameter²).
        eigenvectors: shape ``(k, n_params)`` torch tensor on the model's device and dtype; row i
            is the unit eigenvector estimate for ``eigenvalues[i]``.
        residual_norms: shape ``(k,)``, ``‖H v_i − λ_i v_i‖`` for each pair (same units as the
            eigenvalues). Lanczos reports its recurrence estimate ``β_j |s_ji|``, equal to the
            explicit residual up to rounding because the basis is fully reorthogonalized.
        num_hvps: Hessian-vector products spent.
        converged: whether the stopping rule was met (``False``: best estimates so far).
        history: shape ``(iterations, k)``, the estimates after each iteration (NaN where not yet
            available; no rows for ARPACK, which does not expose them).
        solver: ``"lanczos"``, ``"arpack"`` or ``"power_iteration"``.
    """

    eigenvalues: np.ndarray
    eigenvectors: torch.Tensor
    residual_norms: np.ndarray
    num_hvps: int
    converged: bool
    history: np.ndarray
    solver: str

    @property
    def lambda_max(self) -> float:
        """The top eigenvalue estimate, ``eigenvalues[0]``."""
        return float(self.eigenvalues[0])


def top_eigenvalues(
    model: nn.Module,
    loss_fn: LossFn,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    k: int = 1,
    tol: float = 1e-4,
    v0: torch.Tensor | None = None,
    max_hvps: int = 200,
    seed: int = 0,
    method: HvpMethod = DEFAULT_HVP_METHOD,
    solver: EigenSolver = "lanczos",
    ncv: int | None = None,
) -> EigenResult:
    """The k algebraically largest Hessian eigenvalues (λ_max first) and their eigenvectors.

    ``solver="lanczos"`` (default) runs Lanczos with full reorthogonalization and checks after
    every HVP that each wanted Ritz value θ_i has (a) estimated relative error
    ``min(r_i, r_i²/gap_i) / |θ_i| ≤ tol`` and (b) relative residual ``r_i/|θ_i| ≤ tol``, with
    ``r_i`` the Ritz residual and ``gap_i`` half the smallest ``|θ_i − θ_l| − r_l`` over the other
    Ritz values. ``r_i`` bounds the distance to *some* eigenvalue; ``r_i²/gap`` is the sharper
    (Kato–Temple) estimate, which needs the gap to the rest of the spectrum — only estimated here.
    (a) alone stopped on λ_2 for 2 of 50 random starts on the digits MLP (λ_2/λ_1 = 0.87): a
    start with little weight on the top eigenvector gives λ_2 a small residual and a large
    apparent gap. With (b) as well, 0 of 50 did, for median 9 / 11 HVPs at tol 1e-3 / 1e-4
    (max 13). Neither is a certificate — no Krylov method can prove it found the *largest*
    eigenvalue — but the true error then stayed far below ``tol``. A ``v0`` that is already an
    accurate eigenvector costs 1–2 HVPs. Single-vector Lanczos finds eigenvalues in the order
    the start vector excites them: with ``k > 1`` and two nearly equal eigenvalues it can
    return λ_{k+1} for λ_k (seen with warm starts). Memory: the basis holds up to
    ``max_hvps`` vectors of ``n_params`` entries.

    ``solver="arpack"`` calls ``scipy.sparse.linalg.eigsh(which="LA")`` on
    :meth:`HessianOperator.to_scipy`; there ``tol`` is ARPACK's own residual criterion, ``ncv``
    its Lanczos basis size (default ``max(2k + 1, 8)``); it spends at least ``ncv + 1`` HVPs plus
    k more to report explicit residuals. Non-convergence returns ``converged=False`` instead of
    raising, with the pairs ARPACK did converge and NaN for the others (ARPACK does not expose
    unconverged Ritz values; the Lanczos solver returns its best estimates instead).

    Args:
        k: number of eigenpairs, ``1 ≤ k < n_params``.
        tol: target relative accuracy of the eigenvalues, > 0.
        v0: flat start vector of shape ``(n_params,)`` (e.g. the previous top eigenvector during
            training: a warm start); random (seeded by ``seed``) when None. Warm starts carry a
            risk no stopping rule can see: if ``v0`` is nearly orthogonal to the true top
            eigenvector (e.g. the top two eigenvalues swapped order), Lanczos may converge to the
            eigenvalue ``v0`` points at.
        max_hvps: budget of Hessian-vector products, ≥ k.
        seed: seed of the random start vector.
        method: HVP method, see :class:`HessianOperator`.
        solver: ``"lanczos"`` or ``"arpack"``.
        ncv: ARPACK basis size (ignored by ``"lanczos"``).

    The model is evaluated in eval mode; parameters and ``.grad`` are left untouched.
    """
    check_positive_int(k, name="k")
    check_positive(tol, name="tol")
    if solver not in ("lanczos", "arpack"):
        raise ValueError(f"solver must be 'lanczos' or 'arpack', got {solver!r}")
    if max_hvps < k:
        raise ValueError(f"max_hvps must be at least k={k}, got {max_hvps}")
    operator = HessianOperator(model, loss_fn, X, y, method=method)
    if k >= operator.num_params:
        raise ValueError(f"k must be smaller than the number of parameters "
                         f"({operator.num_params}), got k={k}")
    start = _start_vector(operator, v0, seed)
    if solver == "arpack":
        return _arpack_top(operator, k=k, tol=tol, start=start, max_hvps=max_hvps, ncv=ncv)
    return _lanczos_top(operator, k=k, tol=tol, start=start, max_hvps=max_hvps, seed=seed)


def lambda_max(
    model: nn.Module,
    loss_fn: LossFn,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    tol: float = 1e-4,
    v0: torch.Tensor | None = None,
    max_hvps: int = 200,
    seed: int = 0,
    method: HvpMethod = DEFAULT_HVP_METHOD,
) -> float:
    """λ_max, the training-loss Hessian's top eigenvalue (Lanczos; see :func:`top_eigenvalues`)."""
    result = top_eigenvalues(
        model, loss_fn, X, y, k=1, tol=tol, v0=v0, max_hvps=max_hvps, seed=seed, method=method
    )
    return result.lambda_max


def power_iteration(
    model: nn.Module,
    loss_fn: LossFn,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    tol: float = 1e-4,
    max_iters: int = 1000,
    v0: torch.Tensor | None = None,
    seed: int = 0,
    method: HvpMethod = DEFAULT_HVP_METHOD,
) -> EigenResult:
    """Top Hessian eigenpair by power iteration — the reference algorithm of lesson 05.

    Repeat: ``w = H v``; Rayleigh quotient ``λ = vᵀw``; ``v ← w/‖w‖``; stop when λ changes by
    less than ``tol·|λ|`` between iterations (one HVP per iteration). The true error is then
    roughly ``tol/(1 − (λ_2/λ_1)²)``, larger than ``tol`` when λ_2 is close to λ_1.

    Power iteration finds the eigenvalue of largest *magnitude*: it returns a negative
    eigenvalue if that dominates (rare near minima). ``v0`` (shape ``(n_params,)``) warm-starts;
    otherwise the start is random, seeded by ``seed``. Returns an :class:`EigenResult` with
    k = 1 whose residual is the explicit ``‖Hv − λv‖`` of the returned pair.
    """
    check_positive(tol, name="tol")
    check_positive_int(max_iters, name="max_iters")
    operator = HessianOperator(model, loss_fn, X, y, method=method)
    v = _start_vector(operator, v0, seed)
    v = v / torch.linalg.vector_norm(v)
    history: list[float] = []
    converged = False
    for _ in range(max_iters):
        w = operator.matvec(v)
        rayleigh = float(torch.dot(v, w))
        residual = float(torch.linalg.vector_norm(w - rayleigh * v))
        eigenvector = v
        history.append(rayleigh)
        if len(history) > 1 and abs(rayleigh - history[-2]) < tol * abs(rayleigh):
            converged = True
            break
        w_norm = torch.linalg.vector_norm(w)
        if w_norm == 0:
            # v lies in the null space: 0 is an exact eigenvalue of v.
            converged = True
            break
        v = w / w_norm
    return EigenResult(
        eigenvalues=np.array([rayleigh]),
        eigenvectors=eigenvector.detach().reshape(1, -1).clone(),
        residual_norms=np.array([residual]),
        num_hvps=operator.num_hvps,
        converged=converged,
        history=np.array(history, dtype=np.float64).reshape(-1, 1),
        solver="power_iteration",
    )


# ---------------------------------------------------------------------------------------------
# Trace and spectral density
# ---------------------------------------------------------------------------------------------


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
# Batch sharpness and the exact Hessian
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class BatchSharpnessResult:
    """Batch sharpness E_B[g_Bᵀ H_B g_B / ‖g_B‖²] over random mini-batches.

    Attributes:
        mean: the average ratio (loss per parameter², comparable with 2/η).
        standard_error: sample standard deviation / √num_batches (NaN for one batch).
        values: shape ``(num_batches,)``, the ratio per batch (NaN where g_B = 0).
        batch_indices: shape ``(num_batches, batch_size)`` int64, the samples of each batch.
        batch_size: samples per batch.
        num_batches: number of batches.
    """

    mean: float
    standard_error: float
    values: np.ndarray
    batch_indices: np.ndarray
    batch_size: int
    num_batches: int


def batch_sharpness(
    model: nn.Module,
    loss_fn: LossFn,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    batch_size: int,
    num_batches: int = 100,
    seed: int = 0,
    method: HvpMethod = DEFAULT_HVP_METHOD,
) -> BatchSharpnessResult:
    """Batch sharpness, the curvature of the mini-batch loss along its own gradient.

    For each of ``num_batches`` batches B — ``batch_size`` distinct indices drawn afresh from the
    n samples by ``torch.randperm(n, generator)[:batch_size]`` with a CPU generator seeded by
    ``seed`` — compute ``g_B = ∇L_B`` and ``g_Bᵀ H_B g_B / ‖g_B‖²`` (one gradient and one HVP),
    and average the ratios (mean outside the ratio, Andreyev & Beneventano 2024). With
    ``batch_size = n`` it is the full-batch gradient's Rayleigh quotient, ≤ λ_max. Eval mode.
    """
    _check_data(X, y)
    n = len(X)
    if not 1 <= batch_size <= n:
        raise ValueError(f"batch_size must be between 1 and the number of samples ({n}), "
                         f"got {batch_size}")
    check_positive_int(num_batches, name="num_batches")
    generator = torch.Generator().manual_seed(seed)
    values = np.empty(num_batches)
    indices = np.empty((num_batches, batch_size), dtype=np.int64)
    for b in range(num_batches):
        batch = torch.randperm(n, generator=generator)[:batch_size]
        indices[b] = batch.numpy()
        batch = batch.to(X.device)
        operator = HessianOperator(model, loss_fn, X[batch], y[batch], method=method)
        gradient = operator.gradient()
        squared_norm = float(torch.dot(gradient, gradient))
        curvature = float(torch.dot(gradient, operator.matvec(gradient)))
        values[b] = curvature / squared_norm if squared_norm > 0 else float("nan")
    standard_error = (
        float(values.std(ddof=1) / math.sqrt(num_batches)) if num_batches > 1 else float("nan")
    )
    return BatchSharpnessResult(
        mean=float(values.mean()),
        standard_error=standard_error,
        values=values,
        batch_indices=indices,
        batch_size=batch_size,
        num_batches=num_batches,
    )


def exact_hessian(
    model: nn.Module,
    loss_fn: LossFn,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    max_params: int = EXACT_HESSIAN_MAX_PARAMS,
    method: HvpMethod = DEFAULT_HVP_METHOD,
) -> torch.Tensor:
    """The dense Hessian, shape ``(n_params, n_params)``, on the model's device and dtype.

    Built row by row from n_params HVPs with unit vectors (a few seconds at ~3.5k parameters on
    a CPU), then symmetrized as (H + Hᵀ)/2 to remove rounding asymmetry. Refuses models with more
    than ``max_params`` trainable parameters: the default 11 000 keeps a float64 matrix under
    1 GB (n² × 8 bytes). Eval mode.
    """
    check_positive_int(max_params, name="max_params")
    operator = HessianOperator(model, loss_fn, X, y, method=method)
    n = operator.num_params
    if n > max_params:
        raise ValueError(
            f"exact_hessian: the model has {n} trainable parameters, more than "
            f"max_params={max_params} (a dense float64 Hessian needs n² × 8 bytes = "
            f"{n * n * 8 / 1e9:.2f} GB); use top_eigenvalues or hessian_trace instead"
        )
    hessian = torch.empty(n, n, device=operator.device, dtype=operator.dtype)
    unit = torch.zeros(n, device=operator.device, dtype=operator.dtype)
    for i in range(n):
        unit[i] = 1.0
        hessian[i] = operator.matvec(unit)
        unit[i] = 0.0
    return 0.5 * (hessian + hessian.T)


# ---------------------------------------------------------------------------------------------
# Perturbation-based sharpness
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class EpsSharpnessResult:
    """Keskar et al. (2017) ε-sharpness.

    Attributes:
        sharpness: ``100·(max_loss − loss)/(1 + loss)``, in percent; ≥ 0.
        eps: the box half-width factor ε.
        loss: training loss at the current parameters.
        max_loss: the largest loss found inside the box (a lower bound on the true maximum).
        num_loss_evaluations: loss-and-gradient evaluations spent by L-BFGS-B.
        max_iters: L-BFGS-B iteration budget per start.
        num_starts: number of L-BFGS-B runs (the start at the centre plus random starts).
    """

    sharpness: float
    eps: float
    loss: float
    max_loss: float
    num_loss_evaluations: int
    max_iters: int
    num_starts: int


def eps_sharpness(
    model: nn.Module,
    loss_fn: LossFn,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float = 1e-3,
    max_iters: int = 10,
    num_random_starts: int = 0,
    seed: int = 0,
) -> EpsSharpnessResult:
    """Keskar et al. (2017) ε-sharpness: ``100·(max_{δ∈C_ε} L(θ+δ) − L(θ)) / (1 + L(θ))``.

    ``C_ε = {δ : |δ_i| ≤ ε(|θ_i| + 1)}``, a box over the full trainable parameter space (the
    paper's ``A = I`` version). The inner maximization runs ``scipy.optimize.minimize`` with
    ``method="L-BFGS-B"`` on −L (gradient supplied, float64 on the numpy side, at most
    ``max_iters`` iterations) from δ = 0, plus ``num_random_starts`` runs from uniform random
    points of the box (seeded by ``seed``); the best loss seen anywhere is kept, so the result is
    ≥ 0 and is a lower bound on the exact maximum. A larger ε gives a larger box and so (up to
    the approximate inner solve) a larger value. Eval mode; parameters restored afterwards.
    """
    check_positive(eps, name="eps")
    check_positive_int(max_iters, name="max_iters")
    if num_random_starts < 0:
        raise ValueError(f"num_random_starts must be >= 0, got {num_random_starts}")
    _check_data(X, y)
    centre = flatten_params(model)
    centre_np = centre.detach().to("cpu", torch.float64).numpy()
    half_width = eps * (np.abs(centre_np) + 1.0)
    bounds = scipy.optimize.Bounds(-half_width, half_width)
    rng = np.random.default_rng(seed)
    evaluations = 0
    best_loss = -math.inf

    def negative_loss_and_grad(delta: np.ndarray) -> tuple[float, np.ndarray]:
        nonlocal evaluations, best_loss
        shift = torch.as_tensor(delta, dtype=torch.float64).to(centre.device, centre.dtype)
        set_flat_params(model, centre + shift)
        loss, gradient = _loss_and_flat_grad(model, loss_fn, X, y)
        evaluations += 1
        best_loss = max(best_loss, loss)
        return -loss, -gradient.detach().to("cpu", torch.float64).numpy()

    with preserved_parameters(model), evaluation_mode(model):
        base_loss, _ = _loss_and_flat_grad(model, loss_fn, X, y)
        best_loss = base_loss
        starts = [np.zeros_like(centre_np)]
        starts += [rng.uniform(-half_width, half_width) for _ in range(num_random_starts)]
        for start in starts:
            scipy.optimize.minimize(
                negative_loss_and_grad,
                start,
                jac=True,
                method="L-BFGS-B",
                bounds=bounds,
                options={"maxiter": max_iters},
            )
    return EpsSharpnessResult(
        sharpness=100.0 * (best_loss - base_loss) / (1.0 + base_loss),
        eps=eps,
        loss=base_loss,
        max_loss=best_loss,
        num_loss_evaluations=evaluations,
        max_iters=max_iters,
        num_starts=len(starts),
    )


@dataclass(frozen=True, eq=False)
class PerturbationSharpnessResult:
    """The one-tensor-at-a-time random-perturbation estimate (a teaching contrast).

    Attributes:
        sharpness: ``max |ΔL|/eps`` over tensors and trials (loss per parameter unit).
        values: shape ``(num_trials, num_tensors)``, ``|ΔL|/eps`` for each trial and tensor.
        tensor_names: names of the trainable tensors, the columns of ``values``.
        eps: norm of each perturbation.
        loss: training loss at the unperturbed parameters.
        num_trials: number of random draws per tensor.
    """

    sharpness: float
    values: np.ndarray
    tensor_names: tuple[str, ...]
    eps: float
    loss: float
    num_trials: int


def perturbation_sharpness(
    model: nn.Module,
    loss_fn: LossFn,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float = 1e-3,
    num_trials: int = 10,
    seed: int = 0,
) -> PerturbationSharpnessResult:
    """The "sharpness" estimate that circulates online — and why it is a poor one.

    For each trial and each trainable tensor alone, add Gaussian noise rescaled to norm ``eps``,
    measure ``|L(θ + d) − L(θ)| / eps`` and report the maximum. By Taylor,
    ``ΔL/eps = g·u + (eps/2)·uᵀHu + O(eps²)`` with ``u = d/eps``: away from a critical point it
    measures the gradient (a first-order quantity, in loss per parameter unit, not loss per
    parameter²); at a minimum it is ``(eps/2)·uᵀHu``, a random-direction curvature (≈ tr(H)/n per
    tensor block) scaled by eps, far below λ_max. Compare it with :func:`lambda_max` in lesson 05.
    Eval mode; parameters restored afterwards; noise from a CPU generator seeded by ``seed``.
    """
    check_positive(eps, name="eps")
    check_positive_int(num_trials, name="num_trials")
    _check_data(X, y)
    named = trainable_named_parameters(model)
    if not named:
        raise ValueError("model has no parameters with requires_grad=True")
    generator = torch.Generator().manual_seed(seed)
    values = np.empty((num_trials, len(named)))
    with preserved_parameters(model), evaluation_mode(model), torch.no_grad():
        base_loss = float(_scalar_loss(loss_fn, model(X), y))
        for trial in range(num_trials):
            for column, (_, p) in enumerate(named):
                noise = torch.randn(p.shape, generator=generator, dtype=torch.float64)
                noise = (noise * (eps / torch.linalg.vector_norm(noise))).to(p.device, p.dtype)
                original = p.detach().clone()
                p.add_(noise)
                perturbed_loss = float(_scalar_loss(loss_fn, model(X), y))
                p.copy_(original)
                values[trial, column] = abs(perturbed_loss - base_loss) / eps
    return PerturbationSharpnessResult(
        sharpness=float(values.max()),
        values=values,
        tensor_names=tuple(name for name, _ in named),
        eps=eps,
        loss=base_loss,
        num_trials=num_trials,
    )


# ---------------------------------------------------------------------------------------------
# Training-loop meters
# ---------------------------------------------------------------------------------------------


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
# Internals
# ---------------------------------------------------------------------------------------------


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
    """Lanczos with full reorthogonalization; ``stop(alphas, betas_before, beta)`` may end it.

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
        theta, _ = _tridiagonal_eigh(np.array(alphas), np.array(betas))
        wanted = np.full(k, np.nan)
        wanted[: min(k, len(theta))] = theta[::-1][:k]
        history.append(wanted)
        if stop is not None and stop(np.array(alphas), np.array(betas), beta):
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


RESIDUAL_GUARD = 1.0


def _lanczos_top(
    operator: HessianOperator,
    *,
    k: int,
    tol: float,
    start: torch.Tensor,
    max_hvps: int,
    seed: int,
) -> EigenResult:
    def relative_errors(alphas: np.ndarray, betas: np.ndarray, beta: float) -> np.ndarray:
        theta, vectors = _tridiagonal_eigh(alphas, betas)
        order = np.argsort(theta)[::-1]
        theta, vectors = theta[order], vectors[:, order]
        residuals = beta * np.abs(vectors[-1, :])
        errors = np.empty(min(k, len(theta)))
        for i in range(len(errors)):
            bound = residuals[i]
            if len(theta) > 1:
                # Early on the Ritz gap over-estimates the true gap (θ_2 ≤ λ_2 sits far below
                # λ_2), which made r²/gap stop too soon in the benchmark; shrinking it by the
                # neighbours' residuals and halving it removed every such premature stop.
                others = np.delete(np.arange(len(theta)), i)
                gap = 0.5 * float(np.min(np.abs(theta[others] - theta[i]) - residuals[others]))
                if gap > 0:
                    bound = min(bound, residuals[i] ** 2 / gap)
            errors[i] = bound / max(abs(theta[i]), np.finfo(np.float64).tiny)
        return errors

    def stop(alphas: np.ndarray, betas: np.ndarray, beta: float) -> bool:
        if len(alphas) < k or not np.all(relative_errors(alphas, betas, beta) <= tol):
            return False
        # The r²/gap estimate is only as good as the estimated gap: a start vector with little
        # weight on the top eigenvector lets Lanczos settle on λ_2 with a small residual and a
        # large apparent gap. Also demanding a small relative residual keeps it iterating long
        # enough for the top direction to appear (lesson 05 found λ_2 returned as λ_max).
        theta, vectors = _tridiagonal_eigh(alphas, betas)
        order = np.argsort(theta)[::-1][:k]
        residuals = beta * np.abs(vectors[-1, order])
        return bool(np.all(residuals <= RESIDUAL_GUARD * tol * np.abs(theta[order])))

    generator = torch.Generator().manual_seed(seed + 1)
    max_steps = min(max_hvps, operator.num_params)
    run = _lanczos(operator, start, max_steps=max_steps, generator=generator, stop=stop, k=k)
    theta, vectors = _tridiagonal_eigh(run.alphas, run.betas[:-1])
    order = np.argsort(theta)[::-1][:k]
    eigenvalues = np.full(k, np.nan)
    eigenvalues[: len(order)] = theta[order]
    residuals = np.full(k, np.nan)
    residuals[: len(order)] = run.betas[-1] * np.abs(vectors[-1, order])
    ritz = torch.as_tensor(vectors[:, order].T.copy(), device=operator.device,
                           dtype=operator.dtype)
    eigenvectors = torch.zeros(k, operator.num_params, device=operator.device,
                               dtype=operator.dtype)
    eigenvectors[: len(order)] = ritz @ run.basis
    # A run that exhausted the whole space (n ≤ max_hvps) has exact Ritz values.
    exhausted = len(run.alphas) == operator.num_params
    return EigenResult(
        eigenvalues=eigenvalues,
        eigenvectors=eigenvectors,
        residual_norms=residuals,
        num_hvps=operator.num_hvps,
        converged=run.converged or exhausted,
        history=run.history,
        solver="lanczos",
    )


def _arpack_top(
    operator: HessianOperator,
    *,
    k: int,
    tol: float,
    start: torch.Tensor,
    max_hvps: int,
    ncv: int | None,
) -> EigenResult:
    n = operator.num_params
    basis_size = min(n, max(2 * k + 1, 8)) if ncv is None else ncv
    if not k < basis_size <= n:
        raise ValueError(f"ncv must satisfy k < ncv <= n_params ({k} < ncv <= {n}), got {ncv}")
    # ARPACK counts restarts, not products; each restart costs about ncv − k products.
    restarts = max(1, (max_hvps - basis_size) // max(basis_size - k, 1) + 1)
    converged = True
    try:
        values, vectors = scipy.sparse.linalg.eigsh(
            operator.to_scipy(),
            k=k,
            which="LA",
            v0=start.detach().to("cpu", torch.float64).numpy(),
            ncv=basis_size,
            tol=tol,
            maxiter=restarts,
        )
    except scipy.sparse.linalg.ArpackNoConvergence as failure:
        values, vectors = failure.eigenvalues, failure.eigenvectors
        converged = False
    order = np.argsort(values)[::-1]
    found = len(order)
    eigenvalues = np.full(k, np.nan)
    eigenvalues[:found] = values[order]
    eigenvectors = torch.zeros(k, n, device=operator.device, dtype=operator.dtype)
    residuals = np.full(k, np.nan)
    for row, column in enumerate(order):
        vector = torch.as_tensor(vectors[:, column]).to(operator.device, operator.dtype)
        eigenvectors[row] = vector
        residuals[row] = float(
            torch.linalg.vector_norm(operator.matvec(vector) - eigenvalues[row] * vector)
        )
    return EigenResult(
        eigenvalues=eigenvalues,
        eigenvectors=eigenvectors,
        residual_norms=residuals,
        num_hvps=operator.num_hvps,
        converged=converged and found == k,
        history=np.empty((0, k)),
        solver="arpack",
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


def _rademacher(operator: HessianOperator, generator: torch.Generator) -> torch.Tensor:
    bits = torch.randint(0, 2, (operator.num_params,), generator=generator)
    return (2.0 * bits - 1.0).to(device=operator.device, dtype=operator.dtype)


def _loss_and_flat_grad(
    model: nn.Module, loss_fn: LossFn, X: torch.Tensor, y: torch.Tensor
) -> tuple[float, torch.Tensor]:
    params = _require_trainable(model)
    loss = _scalar_loss(loss_fn, model(X), y)
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    flat = torch.cat(
        [torch.zeros_like(p).reshape(-1) if g is None else g.reshape(-1)
         for g, p in zip(grads, params, strict=True)]
    )
    return float(loss.detach()), flat.detach()


def _scalar_loss(loss_fn: LossFn, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    loss = loss_fn(outputs, targets)
    if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise ValueError(f"loss_fn must return a scalar tensor, got {shape}")
    return loss


def _split_flat(flat: torch.Tensor, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    parts = torch.split(flat, [p.numel() for p in params])
    return [part.view_as(p).to(p.dtype) for part, p in zip(parts, params, strict=True)]


def _require_trainable(model: nn.Module) -> list[nn.Parameter]:
    params = [p for _, p in trainable_named_parameters(model)]
    if not params:
        raise ValueError("model has no parameters with requires_grad=True")
    return params


def _check_flat_vector(v: torch.Tensor, length: int, name: str) -> None:
    if not isinstance(v, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape ({length},), got "
                         f"{type(v).__name__}")
    if tuple(v.shape) != (length,):
        raise ValueError(f"{name} must have shape ({length},), got {tuple(v.shape)}")


def _check_data(X: torch.Tensor, y: torch.Tensor) -> None:
    if len(X) == 0:
        raise ValueError("X must contain at least one sample, got 0")
    if len(X) != len(y):
        raise ValueError(f"X and y must have the same number of samples, got {len(X)} and "
                         f"{len(y)}")


def _check_method(method: str) -> None:
    if method not in HVP_METHODS:
        raise ValueError(f"method must be one of {HVP_METHODS}, got {method!r}")


