"""Long & Bartlett 2023 (lesson 06): SAM has an edge of stability of its own.

On a quadratic ½ Σ λ_i θ_i² one SAM step (ε̂ = ρ·g/‖g‖, then a GD step with the gradient at
θ + ε̂) multiplies eigen-direction i by

    1 − ηλ_i − ηρλ_i²/‖g‖,

so direction i is stable iff ηλ_i + ηρλ_i²/‖g‖ < 2, i.e. iff λ_i is below
λ_SAM = (‖g‖/(2ρ))·(√(1 + 8ρ/(η‖g‖)) − 1) (:func:`edutools.ground.theory.sam_edge`): below
2/η, and shrinking with the gradient norm ‖g‖.

* Quadratic: :func:`sam_quadratic_run` runs the real :class:`~edutools.engine.sam.SAM` optimizer
  on a quadratic and returns the measured and predicted factors per step.
* Network: :func:`train_sam_edge` (full-batch SAM on lesson 01's tanh MLP with a λ_max meter),
  :func:`sam_edge_run` (the same as the ρ/η sliders' run function: a picklable
  :class:`SamEdgeRun`), :func:`sam_edge_summary` / :func:`sam_edge_table` (λ_max in units of
  λ_SAM and of 2/η), :func:`sam_edge_tracking` (does λ_max follow the moving edge?).

Engine layer: nothing here draws.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from edutools.engine.sam import SAM
from edutools.engine.sharpness import LambdaMaxMeter
from edutools.engine.training import RunRecord, TrainResult, partial_watch, train
from edutools.ground.data import Dataset, teacher_task
from edutools.ground.models import mlp
from edutools.ground.theory import gd_edge, sam_edge
from edutools.ground.validation import check_lr, check_positive_int

__all__ = ["ARRIVAL_RATIO", "FAST_NUM_STEPS", "LR", "NUM_STEPS", "RHOS", "SLIDER_GRID",
           "SLIDER_STEPS", "SamEdgeRun", "SamEdgeSummary", "SamQuadraticRun", "sam_edge_column",
           "sam_edge_run", "sam_edge_runs", "sam_edge_summary", "sam_edge_table",
           "sam_edge_tracking", "sam_quadratic_run", "train_sam_edge"]

#: The main runs: η (edge 2/η = 10) and the two radii ρ.
LR = 0.2
RHOS: tuple[float, ...] = (0.05, 0.2)
#: Full-batch SAM steps (full mode, FAST mode) and the λ_max cadence.
NUM_STEPS = 4000
FAST_NUM_STEPS = 1000
MEASURE_EVERY = 50
#: The sliders' grid (ρ = 0 is plain GD) and the length of a slider run (FAST-sized: seconds).
SLIDER_GRID: dict[str, tuple[float, ...]] = {"rho": (0.0, 0.02, 0.05, 0.1, 0.2),
                                             "lr": (0.1, 0.2, 0.3)}
SLIDER_STEPS = 1000
#: Network widths: lesson 01's tanh MLP (20 inputs, two hidden layers of 64, 4 classes).
WIDTHS = (20, 64, 64, 4)
#: "Late" = measurements at steps ≥ this fraction of the run.
LATE_FRACTION = 0.6


# -- the quadratic --------------------------------------------------------------------------

@dataclass(frozen=True)
class SamQuadraticRun:
    """SAM on ½ Σ λ_i θ_i², step by step.

    Attributes:
        curvatures: λ_i, shape (d,).
        lr, rho: η and ρ.
        positions: θ after each step, shape (num_steps + 1, d) (row 0 = the start).
        grad_norms: ‖g‖ = ‖Λθ‖ at each step, shape (num_steps,).
        measured_factors: θ_{t+1,i}/θ_{t,i}, shape (num_steps, d) (NaN where θ_{t,i} = 0).
        predicted_factors: 1 − ηλ_i − ηρλ_i²/‖g_t‖, shape (num_steps, d).
    """

    curvatures: np.ndarray
    lr: float
    rho: float
    positions: np.ndarray
    grad_norms: np.ndarray
    measured_factors: np.ndarray
    predicted_factors: np.ndarray

    @property
    def edges(self) -> np.ndarray:
        """λ_SAM(η, ρ, ‖g_t‖) at each step, shape (num_steps,)."""
        return np.array([sam_edge(self.lr, self.rho, float(g)) for g in self.grad_norms])

    @property
    def max_factor_error(self) -> float:
        """Largest |measured − predicted| factor over steps and directions."""
        error = np.abs(self.measured_factors - self.predicted_factors)
        return float(np.nanmax(error))


def sam_quadratic_run(curvatures: Sequence[float], *, lr: float, rho: float,
                      start: Sequence[float] | None = None,
                      num_steps: int = 100) -> SamQuadraticRun:
    """Run :class:`~edutools.engine.sam.SAM` (plain GD base, float64) on ½ Σ λ_i θ_i².

    Args:
        curvatures: the eigenvalues λ_i > 0 (one per coordinate).
        lr: η. rho: ρ ≥ 0.
        start: θ_0 (default all ones).
        num_steps: SAM steps.
    """
    lr = check_lr(lr)
    num_steps = check_positive_int(num_steps, name="num_steps")
    lam = torch.as_tensor(curvatures, dtype=torch.float64)
    if lam.ndim != 1 or len(lam) == 0 or not bool(torch.all(lam > 0)):
        raise ValueError(f"curvatures must be a non-empty list of positive numbers, "
                         f"got {curvatures!r}")
    theta0 = torch.ones_like(lam) if start is None else torch.as_tensor(start, dtype=torch.float64)
    if theta0.shape != lam.shape:
        raise ValueError(f"start must have one entry per curvature ({len(lam)}), got {start!r}")
    theta = torch.nn.Parameter(theta0.clone())
    optimizer = SAM([theta], rho=rho, lr=lr)

    def closure() -> torch.Tensor:
        loss = 0.5 * (lam * theta**2).sum()
        loss.backward()
        return loss

    positions, grad_norms = [theta.detach().clone()], []
    for _ in range(num_steps):
        optimizer.zero_grad()
        optimizer.step(closure)
        grad_norms.append(optimizer.last_grad_norm)
        positions.append(theta.detach().clone())
    path = torch.stack(positions).numpy()
    norms = np.asarray(grad_norms)
    curv = lam.numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        measured = np.where(path[:-1] != 0, path[1:] / path[:-1], np.nan)
        predicted = 1 - lr * curv - lr * rho * curv**2 / norms[:, None]
    return SamQuadraticRun(curvatures=curv, lr=lr, rho=float(rho), positions=path,
                           grad_norms=norms, measured_factors=measured,
                           predicted_factors=predicted)


# -- the network ----------------------------------------------------------------------------

@functools.lru_cache(maxsize=4)
def _teacher(seed: int) -> Dataset:
    return teacher_task(seed=seed)


def train_sam_edge(*, rho: float, lr: float = LR, num_steps: int = NUM_STEPS, seed: int = 0,
                   measure_every: int = MEASURE_EVERY,
                   watch: Callable[[pd.DataFrame], None] | None = None) -> TrainResult:
    """Full-batch SAM (GD base) on lesson 01's network, measuring λ_max every ``measure_every``
    steps.

    Data: :func:`~edutools.ground.data.teacher_task` drawn with ``seed`` (1,000 inputs, 20% of
    the labels flipped); model: tanh 20-64-64-4, LeCun init; loss ½·mean‖f(x) − onehot(y)‖².
    ``rho = 0`` is plain GD. The record's ``grad_norm`` is the full-batch ‖g‖ at each
    measurement; ``watch(record)`` is called after each measurement.
    """
    data = _teacher(seed)
    model = mlp(list(WIDTHS), activation="tanh", init="lecun", seed=seed, device=data.device)
    return train(model, data, lr=lr, num_steps=num_steps, loss_fn="half_mse",
                 optimizer=lambda params: SAM(params, rho=rho, lr=lr),
                 measure_every=measure_every, callbacks=[LambdaMaxMeter()], seed=seed,
                 watch=watch, description=f"SAM ρ={rho}, η={lr}")


def sam_edge_column(record: pd.DataFrame, *, lr: float, rho: float) -> pd.DataFrame:
    """A copy of ``record`` with ``sam_edge`` = λ_SAM(η, ρ, grad_norm) per row, ``gd_edge`` = 2/η,
    and the ratios ``lambda_over_sam_edge`` and ``lambda_over_gd_edge`` (when ``lambda_max`` is
    there). NaN where the gradient norm is not finite."""
    table = record.copy()
    norms = table["grad_norm"].to_numpy(dtype=float)
    table["sam_edge"] = [sam_edge(lr, rho, float(g)) if np.isfinite(g) else np.nan
                         for g in norms]
    table["gd_edge"] = gd_edge(lr)
    if "lambda_max" in table:
        table["lambda_over_sam_edge"] = table["lambda_max"] / table["sam_edge"]
        table["lambda_over_gd_edge"] = table["lambda_max"] / table["gd_edge"]
    return table


@dataclass(frozen=True, eq=False, kw_only=True, repr=False)
class SamEdgeRun(RunRecord):
    """A full-batch SAM run seen against its edges, without the model (picklable, for caches): a
    :class:`~edutools.engine.training.record.RunRecord` whose ``record`` has one row per
    measurement (``step``, losses, ``grad_norm``, ``lambda_max``, ``sam_edge``, ``gd_edge``,
    ``lambda_over_sam_edge``, ``lambda_over_gd_edge``) and whose ``config`` holds ``rho``,
    ``lr``, ``num_steps``, ``seed``, …, in a partial run too.
    """

    @property
    def rho(self) -> float:
        """SAM's radius ρ."""
        return float(self.setting("rho"))

    @property
    def lr(self) -> float:
        """The step size η."""
        return float(self.setting("lr"))

    @property
    def num_steps(self) -> int:
        """Steps asked for."""
        return int(self.setting("num_steps"))

    @classmethod
    def shape_record(cls, record: pd.DataFrame, config: Mapping[str, Any]) -> pd.DataFrame:
        """The record with :func:`sam_edge_column`'s edges and ratios."""
        return sam_edge_column(record, lr=config["lr"], rho=config["rho"])


def sam_edge_run(*, rho: float, lr: float = LR, seed: int = 0, num_steps: int = SLIDER_STEPS,
                 measure_every: int = MEASURE_EVERY,
                 watch: Callable[[SamEdgeRun], None] | None = None) -> SamEdgeRun:
    """:func:`train_sam_edge` as the sliders' run function: a :class:`SamEdgeRun` (no model).

    ``watch`` receives a partial :class:`SamEdgeRun` after every measurement (for a live plot).
    The default length, :data:`SLIDER_STEPS`, keeps a slider move to seconds.
    """
    settings = dict(rho=rho, lr=lr, num_steps=num_steps, seed=seed, measure_every=measure_every)
    result = train_sam_edge(rho=rho, lr=lr, num_steps=num_steps, seed=seed,
                            measure_every=measure_every,
                            watch=partial_watch(watch, settings, kind=SamEdgeRun))
    return SamEdgeRun.from_train(result, **settings)


def sam_edge_runs(rhos: Sequence[float], *, lr: float = LR, seed: int = 0,
                  num_steps: int = NUM_STEPS, measure_every: int = MEASURE_EVERY,
                  watch: Callable[[dict[float, SamEdgeRun]], None] | None = None
                  ) -> dict[float, SamEdgeRun]:
    """:func:`sam_edge_run` for every ρ in ``rhos`` (same η, seed and length).

    ``watch`` receives ``{ρ: SamEdgeRun}`` for every run so far, the current (partial) one
    included, after each measurement — one live figure for the whole sweep.
    """
    runs: dict[float, SamEdgeRun] = {}
    for rho in rhos:
        finished = dict(runs)
        on_run = None if watch is None else (
            lambda partial, rho=rho, finished=finished: watch({**finished, rho: partial}))
        runs[rho] = sam_edge_run(rho=rho, lr=lr, seed=seed, num_steps=num_steps,
                                 measure_every=measure_every, watch=on_run)
    return runs


@dataclass(frozen=True)
class SamEdgeSummary:
    """λ_max against SAM's edge over one run.

    Attributes:
        rho, lr: ρ and η.
        start_over_sam_edge: λ_max/λ_SAM at step 0.
        late_over_sam_edge: mean of λ_max/λ_SAM over the late measurements (steps ≥
            ``late_fraction`` × the run's length); ``late_min`` / ``late_max`` its range.
        late_over_gd_edge: mean of λ_max·η/2 over the same measurements.
        late_grad_norm: mean full-batch ‖g‖ over them.
        start_edge, late_edge: λ_SAM at step 0, and its mean over the late measurements.
    """

    rho: float
    lr: float
    start_over_sam_edge: float
    late_over_sam_edge: float
    late_min: float
    late_max: float
    late_over_gd_edge: float
    late_grad_norm: float
    start_edge: float
    late_edge: float


def sam_edge_summary(run: SamEdgeRun, *, late_fraction: float = LATE_FRACTION) -> SamEdgeSummary:
    """Summarize ``run`` against λ_SAM and 2/η (late: steps ≥ ``late_fraction`` × length)."""
    if not 0 <= late_fraction < 1:
        raise ValueError(f"late_fraction must be in [0, 1), got {late_fraction!r}")
    record = run.record
    late = record[record["step"] >= late_fraction * run.num_steps]
    if late.empty:
        raise ValueError(f"the run has no measurement at steps ≥ {late_fraction:g} × "
                         f"{run.num_steps}")
    ratio = late["lambda_over_sam_edge"]
    return SamEdgeSummary(rho=run.rho, lr=run.lr,
                          start_over_sam_edge=float(record["lambda_over_sam_edge"].iloc[0]),
                          late_over_sam_edge=float(ratio.mean()), late_min=float(ratio.min()),
                          late_max=float(ratio.max()),
                          late_over_gd_edge=float(late["lambda_over_gd_edge"].mean()),
                          late_grad_norm=float(late["grad_norm"].mean()),
                          start_edge=float(record["sam_edge"].iloc[0]),
                          late_edge=float(late["sam_edge"].mean()))


def sam_edge_table(runs: Sequence[SamEdgeRun], *,
                   late_fraction: float = LATE_FRACTION) -> pd.DataFrame:
    """One row per run (index ``ρ``): the fields of :func:`sam_edge_summary`, rounded names."""
    rows = []
    for run in runs:
        s = sam_edge_summary(run, late_fraction=late_fraction)
        rows.append({"ρ": s.rho, "η": s.lr, "start λ/λ_SAM": s.start_over_sam_edge,
                     "late λ/λ_SAM": s.late_over_sam_edge, "late min": s.late_min,
                     "late max": s.late_max, "late λ·η/2": s.late_over_gd_edge,
                     "late ‖g‖": s.late_grad_norm, "λ_SAM start": s.start_edge,
                     "λ_SAM late": s.late_edge})
    return pd.DataFrame(rows).set_index("ρ")


#: λ_max has "arrived" on SAM's edge at the first measurement with λ_max/λ_SAM ≥ this.
ARRIVAL_RATIO = 0.95


def sam_edge_tracking(run: SamEdgeRun, *, arrival: float = ARRIVAL_RATIO) -> dict[str, float]:
    """Does λ_max follow λ_SAM once it has reached it, not only sit near it on average?

    The window: every measurement from the first one with λ_max/λ_SAM ≥ ``arrival`` to the end
    of the run. Returns ``arrival_step`` (NaN and NaN statistics if λ_max never arrives),
    ``ratio_min`` / ``ratio_max`` (the band of λ_max/λ_SAM over the window), ``edge_range``
    (max/min − 1 of λ_SAM over the window: how far the edge moved, so that the band means
    something), ``level_corr`` (Pearson correlation of λ_max with λ_SAM over the window) and
    ``rank_corr`` (their Spearman rank correlation), and ``window`` (measurements in it).
    """
    if not 0 < arrival <= 1:
        raise ValueError(f"arrival must be a ratio in (0, 1], got {arrival!r}")
    record = run.record
    ratio = record["lambda_over_sam_edge"].to_numpy(dtype=float)
    hits = np.flatnonzero(ratio >= arrival)
    nan = float("nan")
    if len(hits) == 0:
        return {"arrival_step": nan, "ratio_min": nan, "ratio_max": nan, "edge_range": nan,
                "level_corr": nan, "rank_corr": nan, "window": 0}
    window = record.iloc[hits[0]:]
    if len(window) < 3:
        raise ValueError(f"λ_max arrives on the edge at the run's last {len(window)} "
                         "measurement(s); a correlation needs at least 3")
    lam, edge = window["lambda_max"].astype(float), window["sam_edge"].astype(float)
    return {"arrival_step": float(window["step"].iloc[0]),
            "ratio_min": float(window["lambda_over_sam_edge"].min()),
            "ratio_max": float(window["lambda_over_sam_edge"].max()),
            "edge_range": float(edge.max() / edge.min() - 1),
            "level_corr": float(lam.corr(edge)),
            "rank_corr": float(lam.corr(edge, method="spearman")), "window": len(window)}
