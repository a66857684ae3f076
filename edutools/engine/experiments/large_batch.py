"""Making large batches work (lesson 04): runs that keep SGD's noise scale η/(B(1−β)) fixed —
Goyal et al. 2017's linear scaling, more momentum, and Smith et al. 2018's "increase the batch
size instead of decaying the learning rate" — on the teacher task.

* :func:`run_sgd` — the slider experiment: plain SGD (heavy ball β) for a few epochs at one
  (η, B, β); :data:`SLIDER_GRID` holds the sliders' values.
* :func:`run_schedule` — SGD through a list of :class:`~edutools.engine.training.Phase`.
* :func:`noise_scale_table`, :func:`schedule_table` — how far each curve is from its reference.

Every run starts from ``mlp(widths, seed=seed)`` on ``teacher_task(seed=seed)`` and is measured
once per epoch. Results are :class:`SgdRun` (numbers only, picklable). Engine layer: no drawing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from edutools.engine.experiments.keskar import curve_gap
from edutools.engine.training import Phase, RunRecord, partial_watch, train
from edutools.ground.data import teacher_task
from edutools.ground.models import mlp
from edutools.ground.theory import noise_scale
from edutools.ground.validation import check_batch_size, check_positive_int

__all__ = ["SLIDER_GRID", "TEACHER_WIDTHS", "SgdRun", "noise_scale_table", "run_schedule",
           "run_sgd", "schedule_table"]

#: The student of the teacher task: a tanh MLP 20-64-64-4.
TEACHER_WIDTHS = (20, 64, 64, 4)

#: Values of the lesson's sliders. The diagonal (16, 0), (32, 0.5), (64, 0.75) shares one noise
#: scale η/(B(1−β)).
SLIDER_GRID = {"batch_size": (16, 32, 64), "momentum": (0.0, 0.25, 0.5, 0.75)}


@dataclass(frozen=True, eq=False, kw_only=True, repr=False)
class SgdRun(RunRecord):
    """One SGD run on the teacher task, measured once per epoch: a
    :class:`~edutools.engine.training.record.RunRecord` whose ``record`` has one row per epoch:
    ``step``, ``epoch`` (passes of ``N // B`` steps), losses, accuracies, ``grad_norm``…, and
    the ``phase``, ``lr``, ``batch_size`` in force; ``config`` holds the run's settings.
    """

    @property
    def momentum(self) -> float:
        """Heavy-ball β."""
        return self.setting("momentum")

    @property
    def seed(self) -> int:
        """Seed of the data, the initial weights and the batch order."""
        return self.setting("seed")

    @classmethod
    def shape_record(cls, record: pd.DataFrame, config: Mapping[str, Any]) -> pd.DataFrame:
        """A one-phase run's record gets the bookkeeping of a one-phase schedule
        (``train(phases=...)``): epochs count passes of N // B steps, so that runs with
        different B share the same epoch values. A schedule's record has it already."""
        if "phases" in config:
            return record
        record = record.copy()
        record["epoch"] = record["step"] / config["steps_per_epoch"]
        record["phase"], record["lr"], record["batch_size"] = 0, config["lr"], config["batch_size"]
        return record


def run_sgd(*, batch_size: int, momentum: float, lr: float, seed: int = 0,
            num_epochs: int = 30, widths: Sequence[int] = TEACHER_WIDTHS,
            watch: Callable[[SgdRun], None] | None = None) -> SgdRun:
    """SGD (η = ``lr``, batch ``batch_size``, heavy-ball ``momentum``) for ``num_epochs`` epochs.

    The same run as ``train(model, data, phases=[Phase(lr, batch_size, num_epochs)], ...)``, so
    its numbers equal :func:`run_schedule`'s for that one phase; ``watch`` (e.g. a slider panel)
    is called with the partial :class:`SgdRun` after every epoch.
    """
    num_epochs = check_positive_int(num_epochs, name="num_epochs")
    data = teacher_task(seed=seed)
    model = mlp(list(widths), seed=seed, device=data.device)
    steps_per_epoch = data.num_train // check_batch_size(batch_size, data.num_train)
    settings = dict(lr=lr, batch_size=batch_size, momentum=momentum, seed=seed,
                    num_epochs=num_epochs, num_steps=num_epochs * steps_per_epoch,
                    steps_per_epoch=steps_per_epoch, widths=tuple(widths))
    result = train(model, data, lr=lr, batch_size=batch_size, momentum=momentum,
                   num_steps=num_epochs * steps_per_epoch, measure_every=steps_per_epoch,
                   seed=seed, description=f"η={lr:g}, B={batch_size}, β={momentum:g}",
                   watch=partial_watch(watch, settings, kind=SgdRun))
    return SgdRun.from_train(result, **settings)


def run_schedule(phases: Sequence[Phase], *, seed: int = 0, momentum: float = 0.0,
                 widths: Sequence[int] = TEACHER_WIDTHS) -> SgdRun:
    """SGD through ``phases`` (one optimizer, so the velocity carries over; see
    ``train(phases=...)``), measured once per epoch."""
    data = teacher_task(seed=seed)
    model = mlp(list(widths), seed=seed, device=data.device)
    result = train(model, data, phases=phases, momentum=momentum, seed=seed)
    return SgdRun.from_train(result, widths=tuple(widths))


def noise_scale_table(runs: Mapping[tuple[str, int], SgdRun],
                      settings: Mapping[str, tuple[float, int, float]], *, reference: str,
                      reference_lr: float, reference_batch_size: int = 16) -> pd.DataFrame:
    """One row per (setting, seed): the noise scale relative to the reference's, the steps
    taken, the :func:`curve_gap` of the training loss to the reference run of the same seed,
    and the final training loss and validation accuracy.

    ``runs`` maps (setting name, seed) → run; ``settings`` maps name → (η, B, β).
    """
    unit = noise_scale(reference_lr, reference_batch_size)
    rows = []
    for (name, seed), run in runs.items():
        lr, batch_size, momentum = settings[name]
        rows.append({"setting": name, "seed": seed,
                     f"g·{reference_batch_size}/η": noise_scale(lr, batch_size, momentum) / unit,
                     "steps": run.num_steps,
                     f"gap to B={reference_batch_size} (train loss)": curve_gap(
                         run.record, runs[(reference, seed)].record),
                     "final train loss": run.final["train_loss"],
                     "final val acc": run.final["val_acc"]})
    return pd.DataFrame(rows)


def schedule_table(runs: Mapping[tuple[str, int], SgdRun], *, decay: str, grow: str,
                   constant: str) -> pd.DataFrame:
    """Per seed (index): the :func:`curve_gap` between the decayed-η and grown-B runs and between
    the decayed-η and constant runs, their final validation accuracies and their steps."""
    rows = []
    for seed in sorted({seed for _, seed in runs}):
        decayed, grown = runs[(decay, seed)], runs[(grow, seed)]
        rows.append({"seed": seed, "gap decay vs grow": curve_gap(decayed.record, grown.record),
                     "gap decay vs constant": curve_gap(decayed.record,
                                                        runs[(constant, seed)].record),
                     "val acc decay": decayed.final["val_acc"],
                     "val acc grow": grown.final["val_acc"],
                     "steps decay": decayed.num_steps, "steps grow": grown.num_steps})
    return pd.DataFrame(rows).set_index("seed")
