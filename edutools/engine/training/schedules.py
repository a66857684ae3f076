"""Hyper-parameters over a run of :func:`~edutools.engine.training.train`, and its segments.

A **schedule** gives a value for every optimizer step ``t`` (0-based: steps taken so far):

* a number — the same value at every step (the optimizer's own value; the loop never writes it);
* a function ``t -> value``, called before step t; the loop writes the value into every param
  group of the one optimizer of the run, so state such as the momentum buffer carries over;
* for the learning rate, a ``torch.optim.lr_scheduler.LRScheduler`` (an instance bound to the
  run's optimizer, or ``train(lr_scheduler=factory)``): the loop reads η from the param groups
  before each step and calls ``scheduler.step()`` after it, as torch intends.

Every value is checked when it is used (:mod:`edutools.ground.validation`); a bad one raises a
``ValueError`` naming the step and the value.

A **segment** is a stretch of steps with its own batch size, seed (batch order and dropout),
measurement clock, divergence baseline and windows for ``loss_var`` and ``val_jitter``: a plain run
is one segment, each :class:`~edutools.engine.training.Phase` of ``train(phases=...)`` is one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from numbers import Real
from typing import Any

import torch
from torch.optim.lr_scheduler import LRScheduler

from edutools.ground.validation import check_lr, check_momentum

Schedule = float | Callable[[int], float]
SchedulerFactory = Callable[[torch.optim.Optimizer], LRScheduler]


@dataclass(frozen=True)
class Segment:
    """A stretch of a run: ``num_steps`` steps at batch size ``batch_size``, the batch order and
    dropout seeded by ``seed`` at its start, measured every ``measure_every`` steps counted from
    its start (and at its end); ``label`` names it on the progress bar."""

    num_steps: int
    batch_size: int
    seed: int
    measure_every: int
    label: str = ""


class StepValue:
    """One hyper-parameter (``lr`` or ``momentum``) as a number or a function of the step.

    ``check(value, name=...)`` validates a value (:func:`check_lr`, :func:`check_momentum`).
    """

    def __init__(self, value: Schedule, *, name: str,
                 check: Callable[..., float]) -> None:
        self.name = name
        self._check = check
        self.function: Callable[[int], float] | None = value if callable(value) else None
        self.constant = None if callable(value) else check(value, name=name)

    @property
    def scheduled(self) -> bool:
        """True when the value changes with the step (the loop then writes it every step)."""
        return self.function is not None

    def at(self, step: int) -> float:
        """The value for step ``step``; ``ValueError`` naming the step if it is not valid."""
        if self.function is None:
            return self.constant
        return self._check(self.function(step), name=f"{self.name} schedule at step {step}")

    def describe(self) -> Any:
        """What the run's config records: the number, or the function itself."""
        return self.constant if self.function is None else self.function


class SchedulerLr:
    """The learning rate as a ``torch.optim.lr_scheduler.LRScheduler`` sets it."""

    scheduled = True
    name = "lr"

    def __init__(self, scheduler: LRScheduler) -> None:
        self.scheduler = scheduler

    def at(self, step: int) -> float:
        """η in force for step ``step`` (param group 0), every group's η checked first."""
        for group in self.scheduler.optimizer.param_groups:
            check_lr(group["lr"], name=f"lr from {type(self.scheduler).__name__} at step {step}")
        return float(self.scheduler.optimizer.param_groups[0]["lr"])

    def describe(self) -> LRScheduler:
        """What the run's config records: the scheduler."""
        return self.scheduler


def lr_rule(lr: Any) -> StepValue | SchedulerLr:
    """``lr`` as :func:`train` accepts it: a number, a function of the step or an
    ``LRScheduler``; ``ValueError``/``TypeError`` naming a bad value."""
    if isinstance(lr, LRScheduler):
        return SchedulerLr(lr)
    if isinstance(lr, type) and issubclass(lr, LRScheduler):
        raise TypeError(f"lr={lr.__name__} is a scheduler class: pass lr=<base η> and "
                        f"lr_scheduler=lambda opt: {lr.__name__}(opt, ...)")
    if callable(lr) or isinstance(lr, Real):
        return StepValue(lr, name="lr", check=check_lr)
    raise ValueError(f"lr (learning rate) must be a finite number > 0, a function of the step "
                     f"or a torch LRScheduler, got {lr!r}")


def momentum_rule(momentum: Any) -> StepValue:
    """``momentum`` as :func:`train` accepts it: a number in [0, 1) or a function of the step."""
    return StepValue(momentum, name="momentum", check=check_momentum)


def check_batch_size_value(batch_size: Any) -> None:
    """A batch size is a number: one that changes goes through ``phases`` (whole epochs)."""
    if callable(batch_size):
        raise TypeError(f"batch_size must be a whole number, got the function {batch_size!r}: to "
                        "change the batch size during a run, use phases=[Phase(lr, batch_size, "
                        "epochs), ...], which change it at epoch boundaries")


def attach_scheduler(rule: StepValue | SchedulerLr, factory: SchedulerFactory | None,
                     optimizer: torch.optim.Optimizer) -> StepValue | SchedulerLr:
    """The lr rule of the run once its optimizer exists: ``factory(optimizer)`` if given; an
    ``LRScheduler`` passed as ``lr`` must drive that very optimizer."""
    if factory is not None:
        if not callable(factory):
            raise TypeError(f"lr_scheduler must be a function optimizer -> LRScheduler, got "
                            f"{factory!r}")
        if rule.scheduled:
            raise ValueError("lr_scheduler needs a constant lr (its base learning rate), got "
                             f"lr={rule.describe()!r}")
        scheduler = factory(optimizer)
        if not isinstance(scheduler, LRScheduler):
            raise TypeError(f"lr_scheduler(optimizer) must return a torch LRScheduler, got "
                            f"{type(scheduler).__name__}")
        rule = SchedulerLr(scheduler)
    if isinstance(rule, SchedulerLr) and rule.scheduler.optimizer is not optimizer:
        raise ValueError(f"the {type(rule.scheduler).__name__} given as lr drives another "
                         "optimizer than the run's: build it on the optimizer that "
                         "optimizer=... returns")
    return rule


def write_groups(optimizer: torch.optim.Optimizer, key: str, value: float) -> None:
    """Set ``key`` (``"lr"``, ``"momentum"``) to ``value`` in every param group."""
    for group in optimizer.param_groups:
        group[key] = value


def check_momentum_groups(optimizer: torch.optim.Optimizer) -> None:
    """A momentum schedule needs an optimizer whose param groups have a ``momentum``."""
    if any("momentum" not in group for group in optimizer.param_groups):
        raise ValueError(f"momentum is scheduled but {type(optimizer).__name__} has no "
                         "'momentum' in its param groups")
