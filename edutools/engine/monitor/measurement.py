"""One measurement of an :class:`~edutools.engine.monitor.EdgeMonitor`: the record row, taken
without disturbing the training, and the one-line verdict read from a row.

Every measurement runs in **eval mode** (:func:`~edutools.engine.sharpness.evaluation_mode`:
dropout off, BatchNorm on its running statistics, which eval mode neither reads from the batch
nor updates), with gradients enabled (a step post-hook may run under ``no_grad``) and torch's
CPU random state, and the CUDA one of the model's device, saved and restored
(``torch.random.fork_rng``). Curvatures come from ``torch.autograd.grad``, so ``.grad`` is never
written, and nothing here changes a parameter, a buffer or the optimizer's state: the training
goes on bit for bit as without the monitor.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from edutools.engine.monitor.edges import PRECONDITIONED, OptimizerEdge, optimizer_edge
from edutools.engine.monitor.preconditioned import (
    PreconditionedHessianOperator,
    adam_preconditioner,
)
from edutools.engine.monitor.probes import MonitorProbe
from edutools.engine.sharpness.algorithms.batch import batch_sharpness
from edutools.engine.sharpness.algorithms.eigen import operator_top_eigenvalues
from edutools.engine.sharpness.operators.hessian import HessianOperator, HvpMethod
from edutools.engine.sharpness.operators.params import (
    evaluation_mode,
    trainable_named_parameters,
)
from edutools.ground.models import LossFn

#: The mode every measurement runs in (a record column, so a saved record says so).
MEASUREMENT_MODE = "eval"

READABLE = {"lambda_max": "λ_max", "preconditioned_sharpness": "preconditioned sharpness "
            "λ_max(P⁻¹H)", "batch_sharpness": "batch sharpness"}


class MonitorDivergedError(ValueError):
    """The training diverged: parameters, loss or curvature are NaN or ±inf at a measurement."""


@contextmanager
def training_untouched(model: nn.Module, device: torch.device) -> Iterator[None]:
    """Eval mode, gradients on, and the random states kept, for the block (module docstring)."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        fork = torch.random.fork_rng(devices=[index], device_type="cuda")
    else:
        fork = torch.random.fork_rng(devices=[])
    with fork, evaluation_mode(model), torch.enable_grad():
        yield


def measure(*, model: nn.Module, loss_fn: LossFn, optimizer: torch.optim.Optimizer,
            probe: MonitorProbe, step: int, v0: torch.Tensor | None, tol: float, max_hvps: int,
            num_batches: int, seed: int, method: HvpMethod
            ) -> tuple[dict[str, Any], torch.Tensor]:
    """One measurement at ``step``: returns the record row and the top eigenvector (warm start).

    Raises :class:`MonitorDivergedError` naming the step and lr when the training diverged.
    """
    started = time.perf_counter()
    lr = float(optimizer.param_groups[0]["lr"])
    for name, param in trainable_named_parameters(model):
        if not bool(torch.isfinite(param).all()):
            _diverged(step, lr, f"the model's parameter {name} holds NaN or inf")
    hessian = HessianOperator(model, loss_fn, probe.X, probe.y, method=method)
    grad_norm = float(torch.linalg.vector_norm(hessian.gradient()))
    if not math.isfinite(grad_norm):
        _diverged(step, lr, f"the gradient on the probe is not finite (‖g‖ = {grad_norm})")
    edge = optimizer_edge(optimizer, grad_norm=grad_norm)
    operator: Any = hessian
    if edge.curvature == PRECONDITIONED:
        operator = PreconditionedHessianOperator(
            hessian, preconditioner=adam_preconditioner(optimizer, model),
            shift=_coupled_weight_decay(optimizer))
    v0 = v0 if v0 is not None and v0.numel() == operator.num_params else None
    result = operator_top_eigenvalues(operator, tol=tol, v0=v0, max_hvps=max_hvps, seed=seed)
    if not math.isfinite(result.lambda_max):
        _diverged(step, lr, f"the top curvature is {result.lambda_max}")
    hvps = operator.num_hvps
    sharpness = _batch_sharpness(model, loss_fn, probe, num_batches, seed + step, method)
    row = _row(step, edge, curvature=result.lambda_max, sharpness=sharpness, grad_norm=grad_norm)
    # Batch sharpness spends one HVP (and one gradient) per mini-batch.
    hvps += 0 if sharpness is None else num_batches
    row.update(converged=bool(result.converged), hvps=hvps,
               seconds=time.perf_counter() - started)
    return row, result.eigenvectors[0].detach().clone()


def verdict_line(row: dict[str, Any]) -> str:
    """The one-line verdict of a record row (see :meth:`EdgeMonitor.verdict`)."""
    curvature = row["curvature"]
    name, value = READABLE.get(curvature, curvature), float(row[curvature])
    where = f"at step {int(row['step'])} ({row['description']})"
    if not math.isfinite(float(row["edge"])):
        return f"{name} = {value:.4g} {where}; {row['notes'].split('; ')[0]}"
    spread = ""
    if curvature == "batch_sharpness" and math.isfinite(float(row["ratio_se"])):
        spread = f" ± {float(row['ratio_se']):.2f}"
    return (f"{name} at {float(row['ratio']):.2f}{spread} of {row['edge_name']} = "
            f"{float(row['edge']):.4g} {where}")


# ---------------------------------------------------------------------------------------------


def _row(step: int, edge: OptimizerEdge, *, curvature: float, sharpness: Any,
         grad_norm: float) -> dict[str, Any]:
    nan = float("nan")
    is_adam = edge.curvature == PRECONDITIONED
    small = sharpness is not None and edge.small_batch is not None
    headline = "batch_sharpness" if small else edge.curvature
    value = sharpness.mean if small else curvature
    edge_value = edge.small_batch if small else edge.full_batch
    edge_name = edge.small_batch_name if small else edge.full_batch_name
    edge_value = nan if edge_value is None else float(edge_value)
    se = sharpness.standard_error if small else nan
    return {
        "step": step, "optimizer": edge.optimizer, "lr": edge.lr, "momentum": edge.momentum,
        "dampening": edge.dampening, "nesterov": edge.nesterov,
        "weight_decay": edge.weight_decay, "rho": nan if edge.rho is None else edge.rho,
        "mode": MEASUREMENT_MODE, "grad_norm": grad_norm,
        "lambda_max": nan if is_adam else curvature,
        "preconditioned_sharpness": curvature if is_adam else nan,
        "batch_sharpness": nan if sharpness is None else sharpness.mean,
        "batch_sharpness_se": nan if sharpness is None else sharpness.standard_error,
        "full_batch_edge": nan if edge.full_batch is None else edge.full_batch,
        "full_batch_edge_name": edge.full_batch_name,
        "small_batch_edge": nan if edge.small_batch is None else edge.small_batch,
        "small_batch_edge_name": edge.small_batch_name,
        "curvature": headline, "edge": edge_value, "edge_name": edge_name,
        "ratio": value / edge_value if edge_value else nan,
        "ratio_se": se / edge_value if edge_value else nan,
        "description": edge.description, "notes": "; ".join(edge.notes),
    }


def _batch_sharpness(model: nn.Module, loss_fn: LossFn, probe: MonitorProbe, num_batches: int,
                     seed: int, method: HvpMethod) -> Any:
    if probe.batch_size is None:
        return None
    return batch_sharpness(model, loss_fn, probe.X, probe.y, batch_size=probe.batch_size,
                           num_batches=num_batches, seed=seed, method=method)


def _coupled_weight_decay(optimizer: torch.optim.Optimizer) -> float:
    # torch.optim.Adam's weight_decay adds wd·θ to the gradient before preconditioning, so the
    # step sees H + wd·I; AdamW's (decoupled) does not enter the preconditioned operator.
    group = optimizer.param_groups[0]
    decoupled = group.get("decoupled_weight_decay", isinstance(optimizer, torch.optim.AdamW))
    return 0.0 if decoupled else float(group.get("weight_decay", 0.0))


def _diverged(step: int, lr: float, what: str) -> None:
    raise MonitorDivergedError(f"training diverged by step {step} (lr={lr:.4g}): {what}; lower "
                               "the learning rate or check the data")
