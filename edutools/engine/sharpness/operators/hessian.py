"""The Hessian of the training loss as an operator: :class:`HessianOperator` applies H to flat
vectors (one HVP per call, counted), :func:`hvp` is the one-shot form, :func:`exact_hessian` the
dense matrix of a small model (for checks).

The model is evaluated in eval mode; ``loss_fn(outputs, targets)`` returns a scalar *mean over
samples*, so curvatures are in loss per (parameter unit)².
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import numpy as np
import scipy.linalg
import scipy.optimize
import scipy.sparse.linalg
import torch
from torch import nn

from edutools.engine.sharpness.operators.params import (
    _check_data,
    _check_flat_vector,
    _loss_and_flat_grad,
    _scalar_loss,
    _split_flat,
    evaluation_mode,
    trainable_named_parameters,
)
from edutools.ground.models import LossFn, resolve_loss
from edutools.ground.validation import check_finite, check_model_dtype, check_positive_int

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
        check_model_dtype(model, X)
        for name, param in named:
            check_finite(param, name=f"the model's parameter {name}")
        loss_fn = resolve_loss(loss_fn)
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

def _check_method(method: str) -> None:
    if method not in HVP_METHODS:
        raise ValueError(f"method must be one of {HVP_METHODS}, got {method!r}")
