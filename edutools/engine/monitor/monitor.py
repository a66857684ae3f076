""":class:`EdgeMonitor`: the curvature of any PyTorch training loop against its optimizer's edge."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pandas as pd
import torch
from torch import nn

from edutools.engine.monitor.edges import OptimizerEdge, optimizer_edge
from edutools.engine.monitor.measurement import measure, training_untouched, verdict_line
from edutools.engine.monitor.probes import resolve_probe
from edutools.engine.sam.optimizer import SAM
from edutools.engine.sharpness.operators.hessian import DEFAULT_HVP_METHOD, HvpMethod
from edutools.engine.sharpness.operators.params import trainable_named_parameters
from edutools.ground.models import LossFn, resolve_loss
from edutools.ground.validation import check_positive, check_positive_int

#: Cadence for a fixed ``every``-step rhythm when one is asked for (``every=DEFAULT_EVERY``).
DEFAULT_EVERY = 10
#: Default cost budget of the time-budgeted cadence (``every=None``): measuring takes at most
#: this fraction of the loop's own time (0.1: at most 10% longer than the loop without it).
DEFAULT_BUDGET = 0.1


class EdgeMonitor:
    """Measure the curvature a training loop drives up, against the edge of its optimizer.

    Call :meth:`step` after every optimizer step (or :meth:`attach` once, which does it from an
    optimizer step post-hook). By default (``every=None``) the cadence follows a time budget:
    it measures at the first step, then whenever the loop has run ``1/budget`` times as long as
    the last measurement took, so after the first measurement the monitor adds at most
    ``budget`` (10%) to the loop's time, and measures densely where that is cheap (a very short
    run still pays for the measurement at step 1). With ``every=k``
    it measures every k-th step instead (a reproducible rhythm, e.g. for tests and lessons).
    Each measurement takes:

    * λ_max of ``loss_fn(model(X), y)`` on the probe batch (Lanczos, warm-started from the
      previous measurement's eigenvector), or for Adam/AdamW the preconditioned sharpness
      λ_max(P⁻¹H) (:mod:`.preconditioned`);
    * with a loader probe (or ``batch_size`` given), batch sharpness and its standard error over
      ``num_batches`` fresh mini-batches of the training batch size (:mod:`.probes`);
    * the edge of the optimizer *at that step*, from ``optimizer.param_groups[0]`` (so LR
      schedules and warm-up are followed; call ``monitor.step()`` before ``scheduler.step()``
      to read the lr of the step just taken), via :func:`~.edges.optimizer_edge`.

    Measurements run in eval mode (dropout off, BatchNorm on its running statistics, which are not
    updated) with the random states saved and restored and ``.grad`` untouched, so the training
    is bit-identical to the same loop without the monitor (:mod:`.measurement`). The record's
    ``mode`` column says ``"eval"``.

    Args:
        model: the network being trained (its parameters with ``requires_grad=True`` are the
            curvature's coordinates; they must be exactly the optimizer's parameters).
        loss_fn: ``loss_fn(outputs, targets)`` → scalar mean over samples (or ``"half_mse"``,
            ``"cross_entropy"``); without weight decay, which the edge accounts for.
        optimizer: the optimizer stepping ``model`` (SGD, Adam, AdamW, the course's SAM have
            edges; any other is measured with ``edge`` NaN and a note).
        probe: a fixed batch ``(X, y)`` or a re-iterable loader of ``(X, y)`` batches.
        every: measure every ``every`` optimizer steps (whole number ≥ 1); ``None`` (default):
            the time-budgeted cadence.
        budget: with ``every=None``, the largest fraction of the loop's own time spent
            measuring (> 0; default :data:`DEFAULT_BUDGET`).
        batch_size: batch sharpness' mini-batch size (default: the loader's batch size; with a
            fixed batch, batch sharpness is measured only when this is given).
        probe_size: samples pooled from a loader probe (default 1024).
        num_batches: mini-batches per batch-sharpness measurement.
        tol: Lanczos' relative tolerance; max_hvps: its budget of HVPs per measurement.
        seed: seeds Lanczos' random start and (plus the step) batch sharpness' batches.
        method: HVP method (see :class:`~edutools.engine.sharpness.HessianOperator`).
        watch: called with :attr:`record` (a DataFrame) after every measurement, e.g. a live
            figure of :mod:`edutools.face.plots.monitor`.
    """

    def __init__(self, *, model: nn.Module, loss_fn: str | LossFn,
                 optimizer: torch.optim.Optimizer, probe: Any, every: int | None = None,
                 budget: float = DEFAULT_BUDGET, batch_size: int | None = None,
                 probe_size: int | None = None,
                 num_batches: int = 32, tol: float = 1e-3, max_hvps: int = 100, seed: int = 0,
                 method: HvpMethod = DEFAULT_HVP_METHOD,
                 watch: Callable[[pd.DataFrame], None] | None = None) -> None:
        self.every = None if every is None else check_positive_int(every, name="every")
        self.budget = check_positive(budget, name="budget")
        self.num_batches = check_positive_int(num_batches, name="num_batches")
        self.tol = check_positive(tol, name="tol")
        self.max_hvps = check_positive_int(max_hvps, name="max_hvps")
        if watch is not None and not callable(watch):
            raise ValueError(f"watch must be a function watch(record) or None, got {watch!r}")
        _check_model_and_optimizer(model, optimizer)
        self.model, self.optimizer = model, optimizer
        self.loss_fn = resolve_loss(loss_fn)
        self.seed, self.method, self.watch = int(seed), method, watch
        device = next(p for _, p in trainable_named_parameters(model)).device
        self.probe = resolve_probe(probe, device=device, batch_size=batch_size,
                                   probe_size=probe_size)
        self.device = device
        self.steps = 0  # optimizer steps seen
        self._rows: list[dict[str, Any]] = []
        self._vector: torch.Tensor | None = None
        self._hook: Any = None
        self._measured_until: float | None = None  # perf_counter() when the last one ended
        self._last_cost = 0.0  # seconds the last measurement took

    # -- the loop's calls ---------------------------------------------------------------------

    def step(self) -> dict[str, Any] | None:
        """Count one optimizer step; measure (and return the new record row) on the cadence."""
        self.steps += 1
        if self.every is not None:
            return None if self.steps % self.every else self.measure()
        if self._measured_until is not None:
            loop_seconds = time.perf_counter() - self._measured_until
            if loop_seconds * self.budget < self._last_cost:
                return None
        return self.measure()

    def measure(self) -> dict[str, Any]:
        """Measure now, whatever the cadence; returns the record row it appends."""
        start = time.perf_counter()
        with training_untouched(self.model, self.device):
            row, self._vector = measure(
                model=self.model, loss_fn=self.loss_fn, optimizer=self.optimizer,
                probe=self.probe, step=self.steps, v0=self._vector, tol=self.tol,
                max_hvps=self.max_hvps, num_batches=self.num_batches, seed=self.seed,
                method=self.method)
        self._rows.append(row)
        if self.watch is not None:
            self.watch(self.record)
        self._measured_until = time.perf_counter()
        # The watch (a live figure) counts as measuring: the budget covers all the monitor adds.
        self._last_cost = self._measured_until - start
        return row

    def attach(self) -> EdgeMonitor:
        """Call :meth:`step` from an optimizer step post-hook (then do not call it yourself).

        For the course's SAM the hook sits on its base optimizer, whose step both SAM protocols
        (``step(closure)`` and ``first_step``/``second_step``) run once per SAM step, after θ
        is restored. Returns the monitor; :meth:`detach` removes the hook.
        """
        if self._hook is None:
            target = self.optimizer.base_optimizer if isinstance(self.optimizer, SAM) \
                else self.optimizer
            self._hook = target.register_step_post_hook(lambda *_: self.step())
        return self

    def detach(self) -> None:
        """Remove the hook :meth:`attach` registered (nothing happens if none is)."""
        if self._hook is not None:
            self._hook.remove()
            self._hook = None

    # -- what it found --------------------------------------------------------------------------

    @property
    def record(self) -> pd.DataFrame:
        """One row per measurement (columns in the package docstring); empty before the first."""
        return pd.DataFrame(self._rows)

    @property
    def edge(self) -> OptimizerEdge:
        """The optimizer's edge now (SAM: without the gradient norm, so its edge is None)."""
        return optimizer_edge(self.optimizer)

    @property
    def seconds(self) -> float:
        """Total time spent measuring (s)."""
        return float(sum(row["seconds"] for row in self._rows))

    def verdict(self) -> str:
        """One line on the latest measurement, e.g. ``"λ_max at 0.97 of 2/η = 20 at step 400
        (SGD, lr=0.1)"`` or ``"batch sharpness at 0.97 ± 0.03 of 2(1−β)/η = 2 at step 300
        (SGD, lr=0.1, momentum=0.9)"``; ``"no edge formula for <ClassName>"`` when there is none."""
        if not self._rows:
            cadence = (f"every {self.every}" if self.every is not None
                       else f"within {self.budget:.0%} of the loop's time")
            return f"no measurement yet: {self.steps} optimizer steps seen, measuring {cadence}"
        return verdict_line(self._rows[-1])

    def __repr__(self) -> str:
        cadence = f"every={self.every}" if self.every is not None else f"budget={self.budget:g}"
        return (f"EdgeMonitor({type(self.optimizer).__name__}, {cadence}, "
                f"probe={self.probe.source} of {len(self.probe.X)}, "
                f"{len(self._rows)} measurements)")


def _check_model_and_optimizer(model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ValueError(f"optimizer must be a torch.optim.Optimizer, got "
                         f"{type(optimizer).__name__}")
    named = trainable_named_parameters(model)
    if not named:
        raise ValueError("model has no trainable parameters (none with requires_grad=True): "
                         "there is no curvature to monitor")
    mine = {id(p) for _, p in named}
    theirs = {id(p) for group in optimizer.param_groups for p in group["params"]}
    strangers = len(theirs - mine)
    if strangers:
        raise ValueError(f"the optimizer holds {strangers} parameter tensor(s) that are not the "
                         "model's trainable parameters: was it built for another model?")
    left_out = [name for name, p in named if id(p) not in theirs]
    if left_out:
        raise ValueError(f"the model's trainable parameters {left_out[:3]} are not in the "
                         "optimizer; set requires_grad=False on parameters it does not train")
