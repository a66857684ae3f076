"""One training loop for the whole course: full-batch GD and mini-batch SGD, with or without
(Nesterov) momentum, with constant or scheduled hyper-parameters, measured every few steps
through callbacks.

A lesson cell reads: pick data and model → ``train(...)`` with a measurement → plot against the
edge → assert. Measurements are callables ``callback(state) -> dict`` (see :class:`TrainState`);
:mod:`edutools.engine.sharpness` provides the λ_max and batch-sharpness meters.

Momentum follows ``torch.optim.SGD`` (heavy ball): ``v ← βv + g``, ``θ ← θ − ηv``. One optimizer
serves the whole run, whatever the schedule (:mod:`edutools.engine.training.schedules`), so its
state (the velocity) carries over when η, β or B change. Optimizers that need a closure or a
second pass declare it through :mod:`edutools.engine.training.protocols`.

The pieces: :func:`train` checks its arguments and builds a :class:`_Plan` (segments, lr rule,
how to join the rows); :class:`_Loop` holds the run and takes the steps
(:meth:`_Loop.step`), and :class:`~edutools.engine.training.measure.Recorder` measures.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from torch import nn

from edutools.engine.training.loop_run import Loop, Outcome, check_model_and_data
from edutools.engine.training.measure import evaluate, full_batch_grad_norm
from edutools.engine.training.phases import Phase, PhaseLr, join_phase_records, phase_segments
from edutools.engine.training.result import Callback, TrainingDivergedWarning, TrainResult
from edutools.engine.training.schedules import (
    SchedulerFactory,
    SchedulerLr,
    Segment,
    StepValue,
    check_batch_size_value,
    lr_rule,
    momentum_rule,
)
from edutools.ground.data import Dataset
from edutools.ground.models import LossFn, resolve_loss
from edutools.ground.validation import (
    check_batch_size,
    check_bool,
    check_lr,
    check_positive_int,
)

__all__ = ["evaluate", "full_batch_grad_norm", "train"]

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


@dataclass
class _Plan:
    """What the run does: its segments, its lr rule, and how its rows become the record."""

    segments: list[Segment]
    lr: StepValue | SchedulerLr
    lr_column: bool
    join: Callable[[list[list[dict]]], pd.DataFrame]
    phases: tuple[Phase, ...] | None = None


def _plain_plan(lr: Any, num_steps: Any, batch_size: Any, num_train: int, seed: int,
                measure_every: int | None) -> _Plan:
    if lr is None or num_steps is None:
        raise ValueError(f"train needs lr and num_steps (or phases), got lr={lr!r}, "
                         f"num_steps={num_steps!r}")
    rule = lr_rule(lr)
    num_steps = check_positive_int(num_steps, name="num_steps")
    measure_every = check_positive_int(100 if measure_every is None else measure_every,
                                       name="measure_every")
    check_batch_size_value(batch_size)
    batch_size = num_train if batch_size is None else check_batch_size(batch_size, num_train)
    return _Plan(segments=[Segment(num_steps, batch_size, seed, measure_every)], lr=rule,
                 lr_column=rule.scheduled,
                 join=lambda parts: pd.DataFrame([row for part in parts for row in part]))


def _phase_plan(phases: Sequence[Phase], num_train: int, seed: int,
                measure_every: int | None) -> _Plan:
    phases, segments = phase_segments(phases, num_train, seed=seed, measure_every=measure_every)
    # The phase lr as a function of the step: the loop writes it before every step, the same
    # value the old phase-by-phase loop set once per phase.
    rule = StepValue(PhaseLr(phases, segments), name="lr", check=check_lr)
    return _Plan(segments=segments, lr=rule, lr_column=False, phases=phases,
                 join=lambda parts: join_phase_records(parts, phases, segments, num_train))


def _check_settings(*, momentum: StepValue, nesterov: bool, weight_decay: float,
                    divergence_factor: float) -> None:
    if check_bool(nesterov, name="nesterov") and not momentum.scheduled \
            and momentum.constant == 0:
        raise ValueError("nesterov=True needs momentum > 0, got momentum=0")
    if not math.isfinite(weight_decay) or weight_decay < 0:
        raise ValueError(f"weight_decay must be a finite number ≥ 0, got {weight_decay!r}")
    if not divergence_factor > 1:
        raise ValueError(f"divergence_factor must be > 1, got {divergence_factor!r}")


def _make_optimizer(params: list[nn.Parameter], plan: _Plan, momentum: StepValue, *,
                    nesterov: bool, weight_decay: float,
                    optimizer: OptimizerFactory | None) -> torch.optim.Optimizer:
    """The run's one optimizer: ``optimizer(params)``, the optimizer an ``LRScheduler`` given as
    ``lr`` drives, or ``torch.optim.SGD`` at the schedules' step-0 values."""
    if optimizer is not None:
        return optimizer(params)
    if isinstance(plan.lr, SchedulerLr):
        opt = plan.lr.scheduler.optimizer
        owned = {id(p) for group in opt.param_groups for p in group["params"]}
        if any(id(p) not in owned for p in params):
            raise ValueError("the optimizer of the LRScheduler given as lr does not hold all "
                             "of the model's trainable parameters")
        if momentum.scheduled or momentum.constant != 0 or nesterov or weight_decay != 0:
            raise ValueError("with an LRScheduler as lr, set momentum, nesterov and "
                             "weight_decay on the optimizer it drives, not in train(...)")
        return opt
    first_momentum = momentum.at(0)
    if nesterov and first_momentum == 0:
        raise ValueError("nesterov=True needs momentum > 0, got momentum=0 at step 0")
    return torch.optim.SGD(params, lr=plan.lr.at(0), momentum=first_momentum,
                           nesterov=nesterov, weight_decay=weight_decay)


def _loss_name(loss_fn: str | LossFn) -> str:
    return loss_fn if isinstance(loss_fn, str) else getattr(loss_fn, "__name__", "custom")


def train(model: nn.Module, data: Dataset, *, lr: Any = None,
          num_steps: int | None = None, phases: Sequence[Phase] | None = None,
          loss_fn: str | LossFn = "cross_entropy", batch_size: int | None = None,
          momentum: float | Callable[[int], float] = 0.0, nesterov: bool = False,
          weight_decay: float = 0.0, optimizer: OptimizerFactory | None = None,
          lr_scheduler: SchedulerFactory | None = None,
          measure_every: int | None = None, callbacks: Iterable[Callback] = (), seed: int = 0,
          window: int = 50, jitter_window: int = 5, divergence_factor: float = 1e3,
          stop_at_loss: float | None = None,
          watch: Callable[[pd.DataFrame], None] | None = None,
          progress: bool | None = None, description: str | None = None) -> TrainResult:
    """Train ``model`` on ``data`` for ``num_steps`` optimizer steps and record measurements.

    Args:
        model: the network; trained in place (train mode during steps, eval mode to measure).
        data: the dataset; the model must already be on ``data.device``.
        lr: learning rate η (> 0): a number; a function ``step -> η`` (step = optimizer steps
            taken so far, 0-based), written into the optimizer before every step; or a
            ``torch.optim.lr_scheduler.LRScheduler`` instance, whose optimizer the run then uses
            (or the one ``optimizer`` returns, which must be the same object). A scheduled η is
            recorded in an ``lr`` column (the η of the last step taken; at step 0, of step 0).
        num_steps: budget in optimizer steps.
        phases: a per-epoch schedule instead of ``lr``/``num_steps``/``batch_size``: a sequence
            of :class:`Phase` ``(lr, batch_size, epochs)``, run by the same loop with one
            optimizer, so the velocity carries over; measured once per epoch unless
            ``measure_every`` is given (steps, counted from each phase's start); phase i seeded
            by ``seed + i``; the record gains ``phase``, ``lr`` and ``batch_size`` columns and
            counts ``epoch`` in passes of N // B steps (:mod:`edutools.engine.training.phases`).
        loss_fn: ``"cross_entropy"``, ``"half_mse"`` or a callable ``(outputs, targets)``.
        batch_size: mini-batch size B; ``None`` or ``data.num_train`` means full-batch GD.
            Mini-batches are drawn without replacement: a fresh shuffle every epoch, the last
            incomplete batch of an epoch dropped so every step uses exactly B samples. To change
            B during a run, use ``phases``.
        momentum: heavy-ball β in [0, 1) (``torch.optim.SGD`` convention), or a function
            ``step -> β`` written into the optimizer before every step (recorded as a
            ``momentum`` column).
        nesterov: use Nesterov momentum (requires ``momentum > 0``).
        weight_decay: L2 penalty coefficient passed to SGD.
        optimizer: optional factory ``params -> Optimizer`` replacing SGD (e.g. Adam, SAM); one
            that declares :class:`~edutools.engine.training.protocols.ClosureOptimizer` gets
            ``step(closure)``, and :class:`~edutools.engine.training.protocols.TwoPassOptimizer`
            (SAM) its BatchNorm statistics frozen on the perturbed pass. A constant ``lr`` and
            ``momentum`` are then only recorded (for edges and labels); scheduled ones are
            written into its param groups.
        lr_scheduler: optional factory ``optimizer -> LRScheduler`` (e.g.
            ``lambda opt: torch.optim.lr_scheduler.StepLR(opt, 100)``), built on the run's
            optimizer; ``lr`` is then its base η. ``scheduler.step()`` follows every step.
        measure_every: measure every k steps (and at step 0 and at the end); default 100.
        callbacks: extra measurements, each ``callback(state) -> dict`` merged into the row.
        seed: seeds the batch order and dropout; the same seed gives the same record on CPU.
        window: number of recent steps for the loss-variance proxy.
        jitter_window: number of recent measurements for the validation jitter.
        divergence_factor: stop when the mini-batch loss exceeds this multiple of the initial
            loss or is not finite; a loss held far above the initial one and not falling stops
            it too (:mod:`edutools.engine.training.divergence`).
        stop_at_loss: stop at the first measurement whose full training loss is ≤ this value.
        watch: called with the record so far (a DataFrame, as ``TrainResult.record``) after every
            measurement — e.g. a live plot (:class:`edutools.face.live.LiveFigure`) or a slider
            panel redrawing while it trains. It must not change the model; an exception it
            raises (such as a panel cancelling a stale run) stops training and propagates.
        progress: show a progress bar; ``None`` = on unless ``EDUTOOLS_QUIET``/``CI`` is set.
        description: label of the progress bar.

    Returns:
        A :class:`TrainResult` whose ``config`` holds the settings, schedules included; on
        divergence it holds the record so far and a warning of category
        :class:`TrainingDivergedWarning` is issued.
    """
    if not isinstance(data, Dataset):
        raise ValueError(f"data must be an edutools Dataset, got {type(data).__name__}")
    if phases is not None:
        if lr is not None or num_steps is not None or batch_size is not None \
                or lr_scheduler is not None:
            raise ValueError("give either phases or lr/num_steps/batch_size/lr_scheduler, not "
                             f"both (got lr={lr!r}, num_steps={num_steps!r}, "
                             f"batch_size={batch_size!r}, lr_scheduler={lr_scheduler!r})")
        plan = _phase_plan(phases, data.num_train, seed, measure_every)
    else:
        plan = _plain_plan(lr, num_steps, batch_size, data.num_train, seed, measure_every)
    beta = momentum_rule(momentum)
    window = check_positive_int(window, name="window")
    jitter_window = check_positive_int(jitter_window, name="jitter_window")
    _check_settings(momentum=beta, nesterov=nesterov, weight_decay=weight_decay,
                    divergence_factor=divergence_factor)
    loss = resolve_loss(loss_fn)
    params = [p for p in model.parameters() if p.requires_grad]
    check_model_and_data(model, data, params)
    opt = _make_optimizer(params, plan, beta, nesterov=nesterov, weight_decay=weight_decay,
                          optimizer=optimizer)
    loop = Loop(model, data, opt, loss, plan.segments, lr=plan.lr, momentum=beta,
                lr_scheduler=lr_scheduler, nesterov=nesterov, callbacks=callbacks,
                window=window, jitter_window=jitter_window, lr_column=plan.lr_column)
    start = time.perf_counter()
    outcome = loop.run(plan.join, divergence_factor=divergence_factor,
                       stop_at_loss=stop_at_loss, watch=watch, progress=progress,
                       description=description)
    seconds = time.perf_counter() - start
    if outcome.diverged_at is not None:
        warnings.warn(outcome.message, TrainingDivergedWarning, stacklevel=2)
    settings = dict(momentum=beta.describe(), nesterov=nesterov, weight_decay=weight_decay,
                    seed=seed, loss_fn=_loss_name(loss_fn),
                    optimizer="SGD" if optimizer is None and loop.scheduler is None
                    else type(opt).__name__)
    return _result(plan, loop, outcome, settings, stop_at_loss=stop_at_loss, seconds=seconds)


def _result(plan: _Plan, loop: Loop, outcome: Outcome, settings: dict[str, Any], *,
            stop_at_loss: float | None, seconds: float) -> TrainResult:
    """The :class:`TrainResult` of a finished run: its record, message and config."""
    record = plan.join(outcome.parts)
    if outcome.diverged_at is not None:
        message = outcome.message
    elif outcome.stopped_at_loss:
        message = f"Reached training loss ≤ {stop_at_loss:g} at step {outcome.completed}"
    elif plan.phases is not None:
        message = (f"Finished {len(plan.phases)} phase(s), {outcome.completed} steps, "
                   f"training loss {record['train_loss'].iloc[-1]:.4g}")
    else:
        message = (f"Finished {outcome.completed} steps, training loss "
                   f"{record['train_loss'].iloc[-1]:.4g}")
    if plan.phases is not None:
        config = dict(phases=plan.phases, momentum=settings["momentum"], seed=settings["seed"],
                      optimizer=settings["optimizer"], loss_fn=settings["loss_fn"])
        if settings["nesterov"] or settings["weight_decay"]:
            config.update(nesterov=settings["nesterov"], weight_decay=settings["weight_decay"])
    else:
        segment = plan.segments[0]
        config = dict(lr=plan.lr.describe(), num_steps=segment.num_steps,
                      batch_size=segment.batch_size, **settings)
        if loop.scheduler is not None and not isinstance(plan.lr, SchedulerLr):
            config["lr_scheduler"] = loop.scheduler  # built by train(lr_scheduler=...)
    if stop_at_loss is not None:
        config["stop_at_loss"] = stop_at_loss  # a figure of the run reads its target from here
    return TrainResult(record=record, step_losses=outcome.step_losses, model=loop.model,
                       diverged=outcome.diverged_at is not None,
                       diverged_at=outcome.diverged_at, message=message, seconds=seconds,
                       config=config)
