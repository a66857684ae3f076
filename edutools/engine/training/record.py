"""The one record of a training run (:class:`RunRecord`), its live form, and the ``watch`` adapter.

Every experiment returns a :class:`RunRecord` or a thin subclass of it (which only names its
settings — ``lr``, ``rho``, … read from :attr:`RunRecord.config` — and derived numbers such as
``edge``). The same class describes a run while it trains: :meth:`RunRecord.partial_from` builds
the *partial* record a live figure draws, with the run's settings already in it, so that a figure
reads every setting from the record, partial or final, and never from elsewhere; the edges of
the run's ``lr``/``momentum`` come from :attr:`RunRecord.edges`, checked once per record.

What is not one run is not a record: a grid's table (one row per run, :func:`~edutools.engine.
grid.run_grid`; a row becomes a record with, e.g., ``CapstoneRun.from_row``), the per-seed table
of an ensemble trained as one batched network (``keskar_seeds.SeedRuns``: no per-step record
exists), and closed-form or quadratic results.

:func:`partial_watch` turns a ``watch(run_record)`` callback (a slider panel's, a live figure's)
into the ``watch(record_frame)`` that :func:`~edutools.engine.training.train` calls.

Engine layer: no drawing. Records hold numbers only (no model), so a
:class:`~edutools.ground.cache.ResultCache` can store them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from edutools.ground.theory.edges import RunEdges

__all__ = ["RecordedRun", "RunRecord", "SteppedRun", "partial_watch"]

R = TypeVar("R", bound="RunRecord")


class RecordedRun:
    """What every run with a ``record`` (one row per measurement) offers: its last row."""

    record: pd.DataFrame

    @property
    def final(self) -> dict[str, float]:
        """The last record row as a dict."""
        return self.record.iloc[-1].to_dict()


class SteppedRun(RecordedRun):
    """A :class:`RecordedRun` that also kept the mini-batch loss of every step."""

    step_losses: np.ndarray

    @property
    def num_steps(self) -> int:
        """Optimizer steps actually taken (fewer than asked if the run stopped early)."""
        return len(self.step_losses)


def _no_steps() -> np.ndarray:
    return np.empty(0)


@dataclass(frozen=True, eq=False, kw_only=True)
class RunRecord(SteppedRun):
    """One training run reduced to numbers: what every experiment returns.

    Attributes:
        record: one row per measurement (``step`` first; losses, accuracies, ``grad_norm`` and
            whatever the run measured, as :attr:`TrainResult.record`), possibly with columns the
            experiment derives from them (:meth:`shape_record`).
        config: the run's full settings (``lr``, ``momentum``, ``batch_size``, ``num_steps``,
            ``seed``, ``rho``, …), the same keys in the partial and the final record.
        step_losses: the mini-batch loss at every step, shape (steps completed,); empty in a
            partial record.
        diverged: True if the loss blew up and the run stopped early.
        diverged_at: the step at which it did, else ``None``.
        message: one sentence on how the run ended (a partial record: how far it is).
        seconds: wall-clock time of the run (s); NaN in a partial record.
        partial: True for a record of a run still training (:meth:`partial_from`).
    """

    record: pd.DataFrame
    config: dict[str, Any] = field(default_factory=dict)
    step_losses: np.ndarray = field(default_factory=_no_steps)
    diverged: bool = False
    diverged_at: int | None = None
    message: str = ""
    seconds: float = 0.0
    partial: bool = False

    # -- hooks a thin subclass may override -------------------------------------------------

    @classmethod
    def shape_record(cls, record: pd.DataFrame, config: Mapping[str, Any]) -> pd.DataFrame:
        """The record as this kind of run keeps it (the loop's record unchanged by default; a
        subclass adds derived columns, e.g. an edge per row). Used for partial and final
        records alike, so that both have the same columns."""
        return record

    @classmethod
    def partial_message(cls, record: pd.DataFrame, config: Mapping[str, Any]) -> str:
        """The ``message`` of a partial record."""
        return "running"

    # -- building ---------------------------------------------------------------------------

    @classmethod
    def partial_from(cls: type[R], record: pd.DataFrame, config: Mapping[str, Any]) -> R:
        """The record of a run still training: the measurements so far and the full settings
        (no step losses yet, ``seconds`` NaN, ``partial`` True)."""
        settings = dict(config)
        return cls(record=cls.shape_record(record, settings), config=settings, partial=True,
                   message=cls.partial_message(record, settings), seconds=math.nan)

    @classmethod
    def from_train(cls: type[R], result: Any, **extra: Any) -> R:
        """The numbers of a finished run (a :class:`~edutools.engine.training.TrainResult`, or
        any record), without its model; ``extra`` are further fields and settings: names of
        this class's fields set those fields, every other name is added to ``config``."""
        names = set(cls.__dataclass_fields__)
        fields = {k: v for k, v in extra.items() if k in names}
        config = {**result.config, **{k: v for k, v in extra.items() if k not in names}}
        return cls(record=cls.shape_record(result.record, config), config=config,
                   step_losses=result.step_losses, diverged=bool(result.diverged),
                   diverged_at=result.diverged_at, message=result.message,
                   seconds=result.seconds, **fields)

    # -- reading ----------------------------------------------------------------------------

    def setting(self, name: str) -> Any:
        """``config[name]``; a missing setting raises ``KeyError`` naming the ones there are."""
        try:
            return self.config[name]
        except KeyError:
            raise KeyError(f"{type(self).__name__} has no setting {name!r}; its settings are "
                           f"{sorted(self.config)}") from None

    @functools.cached_property
    def edges(self) -> RunEdges:
        """The GD and momentum edges of this run's ``lr``, ``momentum`` and ``nesterov``
        settings (:class:`~edutools.ground.theory.edges.RunEdges`), computed and checked once per
        record: what every figure of the run draws."""
        return RunEdges(lr=self.setting("lr"), momentum=self.config.get("momentum", 0.0),
                        nesterov=bool(self.config.get("nesterov", False)))

    def __repr__(self) -> str:
        state = "partial, " if self.partial else ""
        return (f"{type(self).__name__}({state}{self.message}; {len(self.record)} "
                f"measurements, {self.seconds:.1f} s)")


def partial_watch(watch: Callable[[R], None] | None, config: Mapping[str, Any], *,
                  kind: type[R] = RunRecord) -> Callable[[pd.DataFrame], None] | None:
    """Adapt ``watch(partial run record)`` to ``train``'s ``watch(record frame)``; ``None`` stays
    ``None`` (so ``train`` does no live bookkeeping).

    Args:
        watch: called with ``kind.partial_from(record, config)`` after every measurement.
        config: the run's settings, the same the final record will carry (``lr``, …).
        kind: the record class (``RunRecord`` or the experiment's thin subclass).
    """
    if watch is None:
        return None
    settings = dict(config)
    return lambda record: watch(kind.partial_from(record, settings))
