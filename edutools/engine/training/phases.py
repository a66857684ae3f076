"""Per-epoch schedules for :func:`edutools.engine.training.train`: a list of phases
``(lr, batch_size, epochs)`` run by the one training loop with one optimizer, so the momentum
buffer carries over when η or B changes — a learning-rate decay, a warm-up, or Smith et al.'s
"increase the batch size instead".

``train(model, data, phases=[...])`` is the entry point. Each phase is one
:class:`~edutools.engine.training.schedules.Segment` of the run: phase i's batch order and dropout
are seeded by ``seed + i``, it starts with a measurement (which repeats the previous phase's last
one and is not recorded), and the divergence test and the ``loss_var``/``val_jitter`` windows look
back only within it. This module turns phases into segments and an lr schedule, and joins the
segments' rows into the record.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from edutools.engine.training.schedules import Segment
from edutools.ground.validation import check_batch_size, check_lr, check_positive_int


@dataclass(frozen=True)
class Phase:
    """One phase of a schedule: ``epochs`` passes over the data at step size ``lr``, batch
    ``batch_size``."""

    lr: float
    batch_size: int
    epochs: int


class PhaseLr:
    """The learning rate of a phase list as a function of the step (η of the phase holding it)."""

    def __init__(self, phases: Sequence[Phase], segments: Sequence[Segment]) -> None:
        self.lrs = [float(phase.lr) for phase in phases]
        self.ends, end = [], 0
        for segment in segments:
            end += segment.num_steps
            self.ends.append(end)

    def __call__(self, step: int) -> float:
        return self.lrs[min(bisect_right(self.ends, step), len(self.lrs) - 1)]

    def __repr__(self) -> str:
        return f"PhaseLr({self.lrs})"


def phase_segments(phases: Sequence[Phase], num_train: int, *, seed: int,
                   measure_every: int | None) -> tuple[tuple[Phase, ...], list[Segment]]:
    """The checked phases and their segments: phase i has ``epochs · (N // B)`` steps, seed
    ``seed + i`` and a measurement every ``measure_every`` steps (``None``: once per epoch)."""
    phases = tuple(phases)
    if not phases:
        raise ValueError("phases must hold at least one Phase")
    segments = []
    for index, phase in enumerate(phases):
        if not isinstance(phase, Phase):
            raise TypeError(f"phases[{index}] must be a Phase(lr, batch_size, epochs), got "
                            f"{phase!r}")
        check_lr(phase.lr)
        check_batch_size(phase.batch_size, num_train)
        check_positive_int(phase.epochs, name="epochs")
        steps_per_epoch = num_train // phase.batch_size
        every = (steps_per_epoch if measure_every is None
                 else check_positive_int(measure_every, name="measure_every"))
        segments.append(Segment(num_steps=phase.epochs * steps_per_epoch,
                                batch_size=phase.batch_size, seed=seed + index,
                                measure_every=every,
                                label=f"phase {index + 1}: η={phase.lr:g}, B={phase.batch_size}"))
    return phases, segments


def join_phase_records(parts: Sequence[Sequence[dict]], phases: Sequence[Phase],
                       segments: Sequence[Segment], num_train: int) -> pd.DataFrame:
    """One record from the rows of each phase run so far (``parts[i]``: phase i's rows, global
    ``step``), with ``phase``, ``lr`` and ``batch_size`` columns added and ``epoch`` counted in
    passes of ``N // B`` steps from the start of the schedule, so runs with different B share the
    same epoch values."""
    records, start, epochs = [], 0, 0.0
    for index, rows in enumerate(parts):
        phase, segment = phases[index], segments[index]
        steps_per_epoch = num_train // phase.batch_size
        record = pd.DataFrame(list(rows))
        record["epoch"] = epochs + (record["step"] - start) / steps_per_epoch
        record["phase"], record["lr"], record["batch_size"] = index, phase.lr, phase.batch_size
        records.append(record)
        start += segment.num_steps
        epochs += segment.num_steps / steps_per_epoch
    return pd.concat(records, ignore_index=True)
