"""The running part of :func:`~edutools.engine.training.train`: one optimizer, the segments of
the run one after the other, a step (:meth:`Loop.step`) and the measurements around it.

Each segment (the whole run, or one phase of a schedule) starts by seeding the batch order and
dropout with its seed and measuring the model; that first measurement is the record's row 0 for
the first segment, and for a later one repeats the previous segment's last row, so it is not
recorded, but it sets the segment's divergence baseline and starts its ``val_jitter`` history,
and the callbacks see it (a warm-started λ_max meter continues from it).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from edutools.engine.training.divergence import divergence_message, divergence_reason
from edutools.engine.training.measure import Recorder
from edutools.engine.training.protocols import ClosureOptimizer, TwoPassOptimizer
from edutools.engine.training.result import Callback, TrainState
from edutools.engine.training.schedules import (
    SchedulerFactory,
    SchedulerLr,
    Segment,
    StepValue,
    attach_scheduler,
    check_momentum_groups,
    write_groups,
)
from edutools.ground.batchnorm import frozen_running_stats
from edutools.ground.data import Dataset
from edutools.ground.device import progress_disabled
from edutools.ground.models import LossFn
from edutools.ground.progress import progress_bar
from edutools.ground.validation import check_finite, check_model_dtype


def check_model_and_data(model: nn.Module, data: Dataset, params: list[nn.Parameter]) -> None:
    """The model fits the data (device, dtype); warn if there is no validation set."""
    if not params:
        raise ValueError("the model has no trainable parameters")
    if params[0].device != data.device:
        raise ValueError(f"the model is on {params[0].device} but the data is on {data.device}; "
                         "move one of them (model.to(data.device))")
    check_model_dtype(model, data.X_train, name="data.X_train")
    if len(data.X_val) == 0:
        warnings.warn(f"{data.name}: the validation set is empty, so val_loss (and val_acc) "
                      "are NaN in the record", stacklevel=3)


def _check_initial_loss(model: nn.Module, X: torch.Tensor, initial_loss: float) -> None:
    """Raise ``ValueError`` if the loss before any step is not finite: the data were checked
    where they entered (Dataset), so the model's parameters or outputs are to blame."""
    if math.isfinite(initial_loss):
        return
    with torch.no_grad():
        check_finite(torch.cat([p.detach().reshape(-1) for p in model.parameters()]),
                     name="the model's parameters")
        check_finite(model(X), name="the model's outputs on data.X_train")
    raise ValueError(f"the training loss before any step is {initial_loss}: the model's outputs "
                     "are finite, so the loss function returns a non-finite value for them")


@dataclass
class Outcome:
    """How a run ended: rows per segment, losses per step, and why it stopped."""

    parts: list[list[dict]]
    step_losses: np.ndarray
    completed: int
    diverged_at: int | None = None
    stopped_at_loss: bool = False
    message: str = ""
    last_update: int = 0  # the step the progress bar last showed


@dataclass
class _Cursor:
    """Where the run is inside its current segment."""

    start: int = 0
    initial_loss: float = 1.0
    order_generator: torch.Generator = field(default_factory=torch.Generator)
    order: torch.Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.long))


class Loop:
    """One training run: the model, its one optimizer, the schedules and the segments.

    ``lr`` and ``momentum`` are the schedules (:mod:`edutools.engine.training.schedules`);
    scheduled values are written into the optimizer's param groups before each step,
    constant ones are left to the optimizer. ``lr_column``: record η in force per row.
    """

    def __init__(self, model: nn.Module, data: Dataset, opt: torch.optim.Optimizer,
                 loss: LossFn, segments: Sequence[Segment], *, lr: StepValue | SchedulerLr,
                 momentum: StepValue, lr_scheduler: SchedulerFactory | None, nesterov: bool,
                 callbacks: Iterable[Callback], window: int, jitter_window: int,
                 lr_column: bool) -> None:
        self.model, self.data, self.opt, self.loss = model, data, opt, loss
        self.segments = list(segments)
        self.lr = attach_scheduler(lr, lr_scheduler, opt)
        self.momentum = momentum
        if momentum.scheduled:
            check_momentum_groups(opt)
        self.nesterov = nesterov
        self.scheduler = self.lr.scheduler if isinstance(self.lr, SchedulerLr) else None
        self.lr_column = lr_column or self.scheduler is not None
        self.needs_closure = isinstance(opt, ClosureOptimizer) and bool(opt.requires_closure)
        self.two_pass = self.needs_closure and isinstance(opt, TwoPassOptimizer)
        total = sum(segment.num_steps for segment in self.segments)
        self.step_losses = torch.full((total,), float("nan"), dtype=torch.float64)
        self.state = TrainState(step=0, model=model, optimizer=opt, loss_fn=loss, data=data,
                                lr=self.lr.at(0), momentum=momentum.at(0), nesterov=nesterov,
                                batch_size=self.segments[0].batch_size)
        self.recorder = Recorder(self.state, self.step_losses, callbacks=callbacks,
                                 window=window, jitter_window=jitter_window)
        self.cursor = _Cursor()

    # -- measuring ----------------------------------------------------------------------

    def measure(self, step: int) -> dict[str, float]:
        """One record row after ``step`` steps, the scheduled values in force appended."""
        scheduled = {}
        if self.lr_column:
            scheduled["lr"] = self.state.lr
        if self.momentum.scheduled:
            scheduled["momentum"] = self.state.momentum
        return self.recorder.row(step, scheduled)

    def start_segment(self, index: int, start: int) -> dict[str, float]:
        """Seed segment ``index`` (first step ``start``) and measure the model there; the
        caller puts the model in train mode afterwards."""
        segment = self.segments[index]
        torch.manual_seed(segment.seed)  # dropout masks
        self.cursor = _Cursor(start=start,
                              order_generator=torch.Generator().manual_seed(segment.seed))
        self.state.batch_size = segment.batch_size
        self.state.lr, self.state.momentum = self.lr.at(start), self.momentum.at(start)
        self.recorder.start_segment(start)
        if index > 0:
            self.model.eval()  # as between two phases that ran one after the other
        row = self.measure(start)
        _check_initial_loss(self.model, self.data.X_train, row["train_loss"])
        self.cursor.initial_loss = max(row["train_loss"], 1e-12)
        return row

    # -- stepping -----------------------------------------------------------------------

    def _batch(self, local: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        X, y, num_train = self.data.X_train, self.data.y_train, self.data.num_train
        if batch_size == num_train:
            return X, y
        batches_per_epoch = num_train // batch_size
        position = local % batches_per_epoch
        if position == 0:
            self.cursor.order = torch.randperm(
                num_train, generator=self.cursor.order_generator).to(self.data.device)
        index = self.cursor.order[position * batch_size:(position + 1) * batch_size]
        return X[index], y[index]

    def _closure(self, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        self.opt.zero_grad(set_to_none=True)
        # At a perturbed point (SAM's θ + ε̂) BatchNorm must not update its running statistics:
        # the pass at θ already did (edutools.ground.batchnorm).
        # The backward pass stays inside: BatchNorm saves its buffers for it.
        with frozen_running_stats(self.model, enabled=self.two_pass and self.opt.perturbed):
            batch_loss = self.loss(self.model(xb), yb)
            batch_loss.backward()
        return batch_loss

    def _set_hyperparameters(self, step: int) -> None:
        if self.lr.scheduled:
            self.state.lr = self.lr.at(step)
            if self.scheduler is None:
                write_groups(self.opt, "lr", self.state.lr)
        if self.momentum.scheduled:
            beta = self.momentum.at(step)
            if self.nesterov and beta == 0:
                raise ValueError(f"nesterov=True needs momentum > 0, got momentum=0 at step "
                                 f"{step}")
            self.state.momentum = beta
            write_groups(self.opt, "momentum", beta)

    def step(self, step: int, local: int, batch_size: int) -> float:
        """Take step ``step`` (``local`` within its segment); return its mini-batch loss."""
        xb, yb = self._batch(local, batch_size)
        self._set_hyperparameters(step)
        closure = partial(self._closure, xb, yb)
        if self.two_pass and not self.opt.ascent_due:
            # SAM reusing a stale ε̂ (ascent_every > 1) needs no gradient at θ: one pass, at
            # θ + ε̂, whose loss is the step's recorded loss.
            batch_loss = self.opt.step(closure)
        else:
            batch_loss = closure()
            if self.needs_closure:
                self.opt.step(closure)
            else:
                self.opt.step()
        if self.scheduler is not None:
            self.scheduler.step()
        return float(batch_loss.detach())

    # -- the run ------------------------------------------------------------------------

    def _diverged(self, completed: int, factor: float) -> str | None:
        """The divergence message after ``completed`` steps, judged within the segment."""
        cursor = self.cursor
        reason = divergence_reason(self.step_losses[cursor.start:], completed - cursor.start,
                                   cursor.initial_loss, factor)
        return None if reason is None else divergence_message(reason, completed, self.opt)

    def _run_segment(self, index: int, start: int, outcome: Outcome, *,
                     divergence_factor: float, stop_at_loss: float | None,
                     show: Callable[[], None], bar: Any) -> bool:
        """Segment ``index`` from step ``start``; True if the run stops inside it."""
        segment = self.segments[index]
        row = self.start_segment(index, start)
        outcome.parts.append([row] if index == 0 else [])
        if index == 0:
            show()
        self.model.train()
        rows = outcome.parts[-1]
        for local in range(segment.num_steps):
            completed = start + local + 1
            self.step_losses[completed - 1] = self.step(completed - 1, local, segment.batch_size)
            outcome.completed = completed
            message = self._diverged(completed, divergence_factor)
            if message is not None:
                outcome.diverged_at, outcome.message = completed, message
                rows.append(self.measure(completed))
                show()
                return True
            if (local + 1) % segment.measure_every and local + 1 != segment.num_steps:
                continue
            rows.append(self.measure(completed))
            show()
            bar.update(completed - outcome.last_update)
            outcome.last_update = completed
            bar.set_postfix(loss=f"{rows[-1]['train_loss']:.4f}", refresh=False)
            if stop_at_loss is not None and rows[-1]["train_loss"] <= stop_at_loss:
                outcome.stopped_at_loss = True
                return True
        return False

    def run(self, join: Callable[[list[list[dict]]], pd.DataFrame], *,
            divergence_factor: float, stop_at_loss: float | None,
            watch: Callable[[pd.DataFrame], None] | None, progress: bool | None,
            description: str | None) -> Outcome:
        """Every segment in turn; stops early on divergence or at ``stop_at_loss``.
        ``watch`` gets ``join(rows so far)`` after every recorded measurement."""
        outcome = Outcome(parts=[], step_losses=np.empty(0), completed=0)
        show = (lambda: None) if watch is None else (lambda: watch(join(outcome.parts)))
        quiet = progress_disabled() if progress is None else not progress
        # Text in a display that closing empties, not stderr: no empty error box left behind.
        bar = progress_bar(total=len(self.step_losses), disable=quiet,
                           desc=description or "training")
        start = 0
        for index, segment in enumerate(self.segments):
            if description is None and segment.label:
                bar.set_description(segment.label, refresh=False)
            if self._run_segment(index, start, outcome, divergence_factor=divergence_factor,
                                 stop_at_loss=stop_at_loss, show=show, bar=bar):
                break
            start += segment.num_steps
        bar.close()
        self.model.eval()
        outcome.step_losses = self.step_losses[:outcome.completed].numpy()
        return outcome
