"""Self-stabilization (lesson 01; Damian, Nichani & Lee 2023): why λ_max comes back *down* after
full-batch GD pushes it past 2/η.

Write the weights as θ = θ̄ + x·u, with u the top Hessian eigenvector (eigenvalue S = λ_max) and x
the displacement along it. To second order in x the gradient is

    ∇L(θ̄ + x u) ≈ ∇L(θ̄) + x·S·u + ½·x²·∇S(θ̄),

because the third derivative contracted twice with u is the gradient of the sharpness,
∇³L[u, u] = ∇S. A GD step therefore has three parts: the ordinary descent −η∇L(θ̄); the
oscillation x ← (1 − ηS)·x, which grows exactly when ηS > 2; and −½ηx²∇S, a step down the
sharpness gradient whose size grows with x². So: S rises past 2/η (progressive sharpening) while
x is tiny; x then grows geometrically by |1 − ηS| per step; once x² is large the third term pulls
S back below 2/η, where x shrinks again — a negative feedback loop around the edge.

:func:`first_cycle` measures S and x at *every* step around the first crossing, with one
Hessian-vector product per step (:class:`EdgeOscillationMeter`); :func:`cycle_summary` reads the
predictions off it. Engine layer: nothing here draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from edutools.engine.experiments.cohen_eos import WIDTHS, teacher_data
from edutools.engine.sharpness import top_eigenvalues
from edutools.engine.sharpness.operators.hessian import HessianOperator
from edutools.engine.training import train
from edutools.engine.training.record import RunRecord
from edutools.ground.models import mlp
from edutools.ground.theory import gd_edge
from edutools.ground.validation import check_lr, check_positive_int

__all__ = ["CycleSummary", "CHUNK", "EdgeOscillationMeter", "MAX_WINDOW", "StabilizationCycle",
           "cycle_start", "cycle_summary", "first_cycle", "predicted_size"]

#: At most this many steps are measured one by one from just before the first crossing (x grows
#: from round-off, ~1e-8, to its peak in a few hundred steps), in legs of CHUNK steps.
MAX_WINDOW = 800
CHUNK = 100


class EdgeOscillationMeter:
    """Training callback: the sharpness S and the displacement x along the top eigenvector.

    The top eigenvector u is found once by a tight Lanczos solve and then tracked with one power
    step per call, u ← Hu/‖Hu‖, which follows a slowly moving u when the call comes every step.
    Returns ``{"sharpness": uᵀHu, "displacement": (u·∇L)/S}``: on the quadratic model of the
    module docstring u·∇L = S·x, so the second value is x (signed; it flips sign every step
    while ηS > 1). Costs one Hessian-vector product per call (the gradient reuses its graph).
    """

    def __init__(self, *, seed: int = 0) -> None:
        self.seed = seed
        self._vector: torch.Tensor | None = None

    def __call__(self, state: Any) -> dict[str, float]:
        """Measure at ``state`` (a :class:`~edutools.engine.training.TrainState`)."""
        if self._vector is None:
            solve = top_eigenvalues(state.model, state.loss_fn, state.X_train, state.y_train,
                                    tol=1e-6, max_hvps=300, seed=self.seed)
            self._vector = solve.eigenvectors[0].detach().clone()
        operator = HessianOperator(state.model, state.loss_fn, state.X_train, state.y_train)
        product = operator.matvec(self._vector)
        sharpness = float(self._vector @ product)
        vector = product / product.norm()
        # Keep the sign of u from call to call, so that x's sign is comparable between steps.
        self._vector = vector if float(vector @ self._vector) >= 0 else -vector
        displacement = float(self._vector @ operator.gradient()) / sharpness
        return {"sharpness": sharpness, "displacement": displacement}


class StabilizationCycle(RunRecord):
    """S and x at every step of full-batch GD around the first crossing of 2/η: a
    :class:`~edutools.engine.training.record.RunRecord` whose ``record`` has one row per step
    from ``start_step``: ``step``, ``train_loss``, ``sharpness`` (S, in loss units per squared
    weight) and ``displacement`` (x, weight units), and whose ``config`` holds ``lr`` (η),
    ``seed`` (data and initial weights, as :func:`~cohen_eos.train_gd`) and ``start_step``.
    """

    @property
    def lr(self) -> float:
        """The step size η."""
        return float(self.setting("lr"))

    @property
    def edge(self) -> float:
        """The GD edge 2/η."""
        return gd_edge(self.lr)

    @property
    def ratio(self) -> np.ndarray:
        """S in units of the edge, ηS/2, one value per step."""
        return self.record["sharpness"].to_numpy() / self.edge


def cycle_start(record: pd.DataFrame, *, lr: float) -> int:
    """The last measured step of a :func:`~cohen_eos.train_gd` record at which λ_max is still
    below 2/η (0 if it never is): where :func:`first_cycle` starts measuring every step."""
    below = record[record["lambda_max"] < gd_edge(lr)]
    above = record[record["lambda_max"] >= gd_edge(lr)]
    if above.empty:
        raise ValueError(f"λ_max never reached 2/η = {gd_edge(lr):g} in this record (max "
                         f"{record['lambda_max'].max():.3g}): no cycle to measure")
    first_above = int(above["step"].iloc[0])
    earlier = below[below["step"] < first_above]
    return int(earlier["step"].iloc[-1]) if not earlier.empty else 0


def first_cycle(*, lr: float, seed: int = 0, start_step: int, max_steps: int = MAX_WINDOW,
                chunk: int = CHUNK) -> StabilizationCycle:
    """Retrain :func:`~cohen_eos.train_gd`'s network (same data, weights and η) to
    ``start_step`` without measuring, then measure S and x at every step, ``chunk`` steps at a
    time, until the cycle is complete (|x| has peaked and fallen 100-fold) or ``max_steps``.
    Plain GD keeps no optimizer state, so the legs are exactly one run."""
    lr = check_lr(lr)
    max_steps = check_positive_int(max_steps, name="max_steps")
    chunk = check_positive_int(chunk, name="chunk")
    data = teacher_data(seed)
    model = mlp(list(WIDTHS), activation="tanh", init="lecun", seed=seed, device=data.device)
    if start_step > 0:
        train(model, data, lr=lr, num_steps=int(start_step), loss_fn="half_mse",
              measure_every=int(start_step), seed=seed, progress=False)
    meter = EdgeOscillationMeter(seed=seed)  # one meter: it keeps tracking u across the legs
    legs: list[pd.DataFrame] = []
    losses: list[np.ndarray] = []
    done, seconds = 0, 0.0
    while done < max_steps and not _cycle_complete(legs):
        leg = train(model, data, lr=lr, num_steps=min(chunk, max_steps - done),
                    loss_fn="half_mse", measure_every=1, callbacks=[meter], seed=seed,
                    progress=False)
        record = leg.record
        record["step"] += int(start_step) + done
        legs.append(record if not legs else record.iloc[1:])  # row 0 repeats the last one
        losses.append(leg.step_losses)
        done, seconds = done + len(leg.step_losses), seconds + leg.seconds
        if leg.diverged:
            raise RuntimeError(f"the cycle run diverged: {leg.message}")
    record = pd.concat(legs, ignore_index=True)
    return StabilizationCycle(
        record=record[["step", "train_loss", "sharpness", "displacement"]],
        config={"lr": float(lr), "seed": int(seed), "start_step": int(start_step)},
        step_losses=np.concatenate(losses), seconds=seconds,
        message=f"{done} steps measured one by one from step {start_step}")


def _cycle_complete(legs: list[pd.DataFrame]) -> bool:
    """True once |x| has peaked and since fallen to a hundredth of its peak."""
    if not legs:
        return False
    size = np.abs(pd.concat(legs)["displacement"].to_numpy())
    peak = int(np.argmax(size))
    return bool(size[peak] > 100 * size[0] and (size[peak:] < 1e-2 * size[peak]).any())


@dataclass(frozen=True)
class CycleSummary:
    """What :func:`cycle_summary` reads off a :class:`StabilizationCycle`.

    Attributes:
        sharpness_peak_step, displacement_peak_step: steps of the largest ηS/2 and of the
            largest |x|.
        peak_ratio: the largest ηS/2 (how far S overshoots the edge while x is small).
        ratio_at_displacement_peak: ηS/2 when |x| peaks (the model predicts 1: x stops growing
            when |1 − ηS| = 1).
        trough_ratio: the smallest ηS/2 after the |x| peak (S pushed back below the edge).
        growth_measured, growth_predicted: log|x| gained over the clean growth phase (from the
            last step with |x| ≤ 1e-4·peak to the first with |x| ≥ 1e-2·peak), measured and as
            the quadratic model predicts it, Σ log|1 − ηS_t| over the same steps.
        onset_step, rising_step: the first and last step of that phase.
        drop_when_large, rise_when_small: the mean change of S per step while x² is above /
            below 1e-3·peak² (from the first crossing of 2/η to the trough).
    """

    sharpness_peak_step: int
    displacement_peak_step: int
    peak_ratio: float
    ratio_at_displacement_peak: float
    trough_ratio: float
    growth_measured: float
    growth_predicted: float
    onset_step: int
    rising_step: int
    drop_when_large: float
    rise_when_small: float

    @property
    def growth_steps(self) -> int:
        """The length of the clean growth phase, in steps."""
        return self.rising_step - self.onset_step

    @property
    def growth_error(self) -> float:
        """|measured − predicted| / predicted log-growth."""
        return abs(self.growth_measured - self.growth_predicted) / abs(self.growth_predicted)


def cycle_summary(cycle: StabilizationCycle) -> CycleSummary:
    """Read the self-stabilization predictions off ``cycle`` (see :class:`CycleSummary`)."""
    ratio = cycle.ratio
    size = np.abs(cycle.record["displacement"].to_numpy())
    steps = cycle.record["step"].to_numpy()
    peak = int(np.argmax(size))
    if peak == len(size) - 1 or not math.isfinite(size[peak]):
        raise ValueError("the displacement had not peaked by the end of the window: measure "
                         "more steps (num_steps)")
    trough = peak + int(np.argmin(ratio[peak:]))
    rising = int(np.flatnonzero(size[:peak] >= 1e-2 * size[peak])[0])
    quiet = np.flatnonzero(size[:rising] <= 1e-4 * size[peak])
    if quiet.size == 0:
        raise ValueError("the window starts with x already large: start it earlier")
    onset = int(quiet[-1])
    predicted = float(np.sum(np.log(np.abs(1 - 2 * ratio[onset:rising]))))
    measured = float(np.log(size[rising] / size[onset]))
    change = np.diff(cycle.record["sharpness"].to_numpy())[:trough]
    crossed = int(np.flatnonzero(ratio >= 1)[0])
    large = size[:trough] ** 2 > 1e-3 * size[peak] ** 2
    span = np.arange(trough) >= crossed
    return CycleSummary(
        sharpness_peak_step=int(steps[np.argmax(ratio[:trough + 1])]),
        displacement_peak_step=int(steps[peak]), peak_ratio=float(ratio[:trough + 1].max()),
        ratio_at_displacement_peak=float(ratio[peak]), trough_ratio=float(ratio[trough]),
        growth_measured=measured, growth_predicted=predicted,
        onset_step=int(steps[onset]), rising_step=int(steps[rising]),
        drop_when_large=float(change[large & span].mean()),
        rise_when_small=float(change[~large & span].mean()))


def predicted_size(cycle: StabilizationCycle, summary: CycleSummary) -> pd.Series:
    """The quadratic model's |x|: |x| at the onset step times Π |1 − ηS_t| over the steps since,
    indexed by step, up to the |x| peak (where the model stops applying: x² is no longer small)."""
    record = cycle.record.set_index("step")
    shown = record.loc[summary.onset_step:summary.displacement_peak_step]
    factors = np.abs(1 - cycle.lr * shown["sharpness"].to_numpy())
    start = abs(float(shown["displacement"].iloc[0]))
    size = start * np.concatenate([[1.0], np.cumprod(factors[:-1])])
    return pd.Series(size, index=shown.index, name="predicted |x|")
