"""Cohen et al. 2021 (lesson 01): full-batch gradient descent sharpens until λ_max reaches 2/η,
then stays at that edge of stability — and the quadratic model that explains the edge.

* Quadratic: :func:`run_quadratic_directions` (the learning-rate slider's run function) and
  :func:`quadratic_regimes` (how each eigen-direction behaves over a grid of step sizes).
* Network: :func:`train_gd` trains the tanh MLP 20-64-64-4 on the teacher task with full-batch
  GD and a λ_max meter; :func:`gd_edge_run` is the same as a slider's run function (a picklable
  :class:`EdgeRun`, no model); :func:`gd_lr_sweep` runs several step sizes.
* Reading a run: :func:`gd_edge_summary` (start, first crossing, late level in units of 2/η),
  :func:`gd_edge_table` (one row per η) and :func:`loss_rises` (steps on which the loss rose).

Engine layer: nothing here draws.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from edutools.engine.sharpness import LambdaMaxMeter
from edutools.engine.training import RunRecord, TrainResult, partial_watch, train
from edutools.ground.data import Dataset, teacher_task
from edutools.ground.models import mlp
from edutools.ground.theory import gd_edge
from edutools.ground.theory.quadratic import QuadraticRun, regime, run_quadratic

__all__ = ["EdgeRun", "EdgeSummary", "LR_GRID", "LossRises", "QUADRATIC_CURVATURES",
           "QUADRATIC_LR_GRID", "SLIDER_GRID", "edge_run_from", "gd_edge_run",
           "gd_edge_summary", "gd_edge_table", "gd_lr_sweep", "loss_rises", "quadratic_regimes",
           "run_quadratic_directions", "teacher_data", "train_gd"]

#: The quadratic's three eigen-directions λ_i, its number of GD steps, and its slider's η values.
QUADRATIC_CURVATURES: tuple[float, ...] = (1.0, 4.0, 10.0)
QUADRATIC_STEPS = 30
QUADRATIC_LR_GRID: tuple[float, ...] = (0.05, 0.15, 0.19, 0.21, 0.3, 0.45, 0.55)
#: The network's learning rates: the main run's η, and the η slider's values (full, FAST).
LR = 0.2
LR_GRID: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4)
FAST_LR_GRID: tuple[float, ...] = (0.2, 0.4)
SLIDER_GRID: dict[str, tuple[float, ...]] = {"lr": LR_GRID}
#: GD steps (full; FAST keeps ≥ 3500, which the sharpening phase needs) and λ_max cadence.
NUM_STEPS = 4000
FAST_NUM_STEPS = 3500
MEASURE_EVERY = 100
#: Network widths (input 20, two tanh layers of 64, 4 classes).
WIDTHS = (20, 64, 64, 4)


def run_quadratic_directions(*, lr: float, curvatures: Sequence[float] = QUADRATIC_CURVATURES,
                             num_steps: int = QUADRATIC_STEPS) -> QuadraticRun:
    """GD (``torch.optim.SGD``) on ½ Σ λ_i θ_i² from θ = (1, …, 1): the quadratic slider's run."""
    return run_quadratic(curvatures, lr=lr, num_steps=num_steps)


def quadratic_regimes(lrs: Iterable[float], *, curvatures: Sequence[float] = QUADRATIC_CURVATURES,
                      num_steps: int = QUADRATIC_STEPS) -> pd.DataFrame:
    """Run GD on the quadratic for every η in ``lrs`` and describe each eigen-direction.

    Returns:
        One row per (η, λ): ``lr``, ``curvature``, ``h`` = ηλ, ``factor`` (the measured
        |θ_1| / |θ_0| of the first step), ``grew`` (|θ| after ``num_steps`` steps exceeds
        |θ_0|), ``flips_sign`` (θ changed sign on some step) and the theory's
        ``regime`` (converges / oscillates / diverges, from :func:`~edutools.ground.theory.
        quadratic.regime`).
    """
    rows = []
    for lr in lrs:
        run = run_quadratic_directions(lr=lr, curvatures=curvatures, num_steps=num_steps)
        for i, curvature in enumerate(run.curvatures):
            path = run.positions[:, i]
            rows.append({"lr": lr, "curvature": float(curvature), "h": lr * curvature,
                         "factor": float(abs(path[1] / path[0])),
                         "grew": abs(path[-1]) > abs(path[0]),
                         "flips_sign": bool(np.any(path[1:] * path[:-1] < 0)),
                         "regime": regime(curvature, lr=lr)})
    return pd.DataFrame(rows)


@functools.lru_cache(maxsize=4)
def teacher_data(seed: int = 0) -> Dataset:
    """The teacher task of Cohen et al.'s setting at laptop scale: 1,000 inputs x ~ N(0, I₂₀),
    4 classes from a random tanh teacher, 20% of the training labels flipped (cached by seed)."""
    return teacher_task(seed=seed)


def train_gd(*, lr: float, num_steps: int, seed: int = 0, measure_every: int = MEASURE_EVERY,
             watch: Callable[[pd.DataFrame], None] | None = None) -> TrainResult:
    """Full-batch GD on the teacher task with the tanh MLP 20-64-64-4 (LeCun init), loss
    ½·mean‖f(x) − onehot(y)‖², measuring λ_max (warm-started Lanczos) every ``measure_every``
    steps.

    ``seed`` seeds the data and the initial weights. ``watch(record)`` is called after every
    measurement (e.g. a :class:`edutools.face.live.LiveFigure`). Returns the
    :class:`~edutools.engine.training.TrainResult`, trained model included.
    """
    data = teacher_data(seed)
    model = mlp(list(WIDTHS), activation="tanh", init="lecun", seed=seed, device=data.device)
    return train(model, data, lr=lr, num_steps=num_steps, loss_fn="half_mse",
                 measure_every=measure_every, callbacks=[LambdaMaxMeter()], seed=seed,
                 watch=watch, description=f"GD η={lr}")


@dataclass(frozen=True, eq=False, kw_only=True, repr=False)
class EdgeRun(RunRecord):
    """A full-batch GD run seen against its edge, without the model (picklable, for caches): a
    :class:`~edutools.engine.training.record.RunRecord` whose ``record`` has one row per
    measurement (``step``, losses, accuracies, ``lambda_max``, …) and whose ``config`` holds the
    run's settings (``lr``, ``num_steps``, ``seed``, …), in a partial run too.
    """

    @property
    def lr(self) -> float:
        """The step size η."""
        return float(self.setting("lr"))

    @property
    def num_steps(self) -> int:
        """Steps asked for."""
        return int(self.setting("num_steps"))

    @property
    def edge(self) -> float:
        """The GD edge 2/η."""
        return gd_edge(self.lr)

    @property
    def ratio(self) -> pd.Series:
        """λ_max in units of the edge, λ_max·η/2, one value per record row."""
        return self.record["lambda_max"] / self.edge


def edge_run_from(result: TrainResult) -> EdgeRun:
    """The :class:`EdgeRun` of a finished :func:`train_gd` run (drops the model)."""
    return EdgeRun.from_train(result)


def gd_edge_run(*, lr: float, seed: int = 0, num_steps: int = NUM_STEPS,
                measure_every: int = MEASURE_EVERY, fast: bool = False,
                watch: Callable[[EdgeRun], None] | None = None) -> EdgeRun:
    """:func:`train_gd` as a slider's run function: returns an :class:`EdgeRun` (no model).
    ``fast`` caps ``num_steps`` at :data:`FAST_NUM_STEPS`. ``watch`` receives a partial
    :class:`EdgeRun` (the record so far and the settings, no step losses yet) after every
    measurement, so a slider panel draws it like the final one."""
    if fast:
        num_steps = min(num_steps, FAST_NUM_STEPS)
    settings = dict(lr=lr, num_steps=num_steps, seed=seed, measure_every=measure_every)
    return EdgeRun.from_train(train_gd(lr=lr, num_steps=num_steps, seed=seed,
                                       measure_every=measure_every,
                                       watch=partial_watch(watch, settings, kind=EdgeRun)),
                              measure_every=measure_every)


def gd_lr_sweep(lrs: Iterable[float], *, seed: int = 0, num_steps: int = NUM_STEPS,
                measure_every: int = MEASURE_EVERY, done: Mapping[float, EdgeRun] | None = None,
                watch: Callable[[dict[float, pd.DataFrame]], None] | None = None
                ) -> dict[float, EdgeRun]:
    """:func:`gd_edge_run` for every η in ``lrs`` not already in ``done`` (reused as is).

    ``watch`` receives ``{η: record}`` for every run so far, the current one included, after each
    measurement. Returns ``{η: EdgeRun}`` for ``done`` and ``lrs``, sorted by η.
    """
    runs = dict(done or {})
    for lr in lrs:
        if lr in runs:
            continue
        finished = {key: run.record for key, run in runs.items()}
        on_record = (None if watch is None else
                     lambda partial, lr=lr, finished=finished:
                     watch({**finished, lr: partial.record}))
        runs[lr] = gd_edge_run(lr=lr, seed=seed, num_steps=num_steps,
                               measure_every=measure_every, watch=on_record)
    return dict(sorted(runs.items()))


@dataclass(frozen=True)
class EdgeSummary:
    """λ_max against the GD edge over one run, in units of the edge (λ_max·η/2).

    Attributes:
        lr: the step size η.
        start: λ_max·η/2 at step 0.
        crossing: first measured step with λ_max·η/2 ≥ ``threshold``, else ``None``.
        threshold: the fraction of the edge that counts as reaching it.
        late_mean, late_min, late_max: over the measurements at steps ≥ ``late_fraction`` ×
            the run's length.
    """

    lr: float
    start: float
    crossing: int | None
    threshold: float
    late_mean: float
    late_min: float
    late_max: float

    @property
    def reached(self) -> bool:
        """True if λ_max reached ``threshold`` × 2/η at some measurement."""
        return self.crossing is not None


def gd_edge_summary(record: pd.DataFrame, *, lr: float, num_steps: int, threshold: float = 0.95,
                    late_fraction: float = 0.6) -> EdgeSummary:
    """Summarise a record's ``lambda_max`` column against the edge 2/``lr``."""
    if not (threshold > 0 and 0 <= late_fraction < 1):
        raise ValueError(f"threshold must be > 0 and late_fraction in [0, 1), got "
                         f"threshold={threshold!r}, late_fraction={late_fraction!r}")
    ratio = record["lambda_max"] / gd_edge(lr)
    above = ratio >= threshold
    crossing = int(record.loc[above, "step"].iloc[0]) if above.any() else None
    late = ratio[record["step"] >= late_fraction * num_steps]
    return EdgeSummary(lr=float(lr), start=float(ratio.iloc[0]), crossing=crossing,
                       threshold=float(threshold), late_mean=float(late.mean()),
                       late_min=float(late.min()), late_max=float(late.max()))


def gd_edge_table(runs: Mapping[float, EdgeRun], *, num_steps: int) -> pd.DataFrame:
    """One row per η (index ``η``): ``edge 2/η``; ``start``, ``late mean`` and ``late max`` of
    λ_max·η/2 (late: steps ≥ 60% of ``num_steps``); ``reached edge`` (λ_max·η/2 ≥ 0.95 at some
    measurement) and ``crossing step`` (the first such step; ``<NA>`` if none)."""
    rows = []
    for lr, run in sorted(runs.items()):
        summary = gd_edge_summary(run.record, lr=lr, num_steps=num_steps)
        rows.append({"η": lr, "edge 2/η": gd_edge(lr), "start": summary.start,
                     "reached edge": summary.reached, "crossing step": summary.crossing,
                     "late mean": summary.late_mean, "late max": summary.late_max})
    table = pd.DataFrame(rows).set_index("η")
    table["crossing step"] = table["crossing step"].astype("Int64")  # <NA> where never reached
    return table


@dataclass(frozen=True)
class LossRises:
    """On which GD steps the training loss went up, before and after λ_max reached the edge.

    Attributes:
        rises: shape (steps − 1,); ``rises[t]`` is True if the loss rose from step t to t + 1.
        crossing: the step at which λ_max reached the edge (splits before / after).
        final_over_initial: last loss / first loss.
    """

    rises: np.ndarray
    crossing: int
    final_over_initial: float

    @property
    def before(self) -> np.ndarray:
        """``rises`` during sharpening (steps before ``crossing``)."""
        return self.rises[:self.crossing]

    @property
    def after(self) -> np.ndarray:
        """``rises`` at the edge (from ``crossing`` on)."""
        return self.rises[self.crossing:]


def loss_rises(step_losses: np.ndarray, *, crossing: int) -> LossRises:
    """Mark the steps on which ``step_losses`` (shape (steps,)) rose, split at ``crossing``."""
    losses = np.asarray(step_losses, dtype=float)
    if losses.ndim != 1 or len(losses) < 2:
        raise ValueError(f"step_losses must be a 1-D array of ≥ 2 losses, got shape {losses.shape}")
    if not 0 <= crossing <= len(losses):
        raise ValueError(f"crossing must be a step in [0, {len(losses)}], got {crossing!r}")
    return LossRises(rises=np.diff(losses) > 0, crossing=int(crossing),
                     final_over_initial=float(losses[-1] / losses[0]))
