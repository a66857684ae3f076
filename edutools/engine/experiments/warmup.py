"""Learning-rate warm-up (lesson 04; Goyal et al. 2017, Gilmer et al. 2022, Kalra & Barkeshli
2024): a target η far above 2/λ_max of the initial network, reached at once or by a linear ramp.

At once, the first steps are unstable (ηλ_max > 2): the loss spikes and, far enough above the
edge, blows up. Ramped, η stays near the edge while training *reduces* λ_max, so by the time η
reaches its target the network sits where 2/η is an edge it can live with.

:func:`run_warmup` runs full-batch gradient descent (no momentum) on the half-MSE of the teacher
task, measuring λ_max along the way. Engine layer: nothing here draws.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from edutools.engine.experiments.large_batch import TEACHER_WIDTHS
from edutools.engine.sharpness import LambdaMaxMeter, lambda_max
from edutools.engine.training import Phase, RunRecord, TrainingDivergedWarning, train
from edutools.ground.data import teacher_task
from edutools.ground.models import half_mse, mlp
from edutools.ground.validation import check_lr, check_positive_int

__all__ = ["WarmupRun", "run_warmup", "warmup_schedule", "warmup_table"]

@dataclass(frozen=True, eq=False, kw_only=True, repr=False)
class WarmupRun(RunRecord):
    """A full-batch GD run with an optional linear warm-up: a
    :class:`~edutools.engine.training.record.RunRecord` whose ``config`` holds ``lr`` (the
    target η), ``warmup_steps`` (steps of the ramp; 0: the target η from the first step),
    ``num_steps``, ``seed``, …

    Attributes:
        record: one row per measurement: ``step``, ``epoch`` (= ``step`` at full batch),
            ``lr`` (the η in force), ``edge`` (2/η),
            ``train_loss``, ``val_loss``, ``lambda_max`` (every ``lambda_every`` steps, else NaN)…
        step_losses: the training loss at every step, shape (steps completed,).
        lambda_init: λ_max of the initial network.
        lambda_final: λ_max of the final network (NaN if the run blew up).
        diverged: True if the loss blew up and training stopped.
    """

    lambda_init: float = float("nan")
    lambda_final: float = float("nan")

    @property
    def lr(self) -> float:
        """The target η."""
        return float(self.setting("lr"))

    @property
    def warmup_steps(self) -> int:
        """Steps of the ramp (0: the target η from the first step)."""
        return self.setting("warmup_steps")

    @property
    def edge(self) -> float:
        """2/η of the target η: the largest λ_max that step size keeps stable on a quadratic."""
        return 2.0 / self.lr

    @property
    def max_loss_ratio(self) -> float:
        """The largest training loss over the run divided by the initial one (inf if it blew up
        to a non-finite value)."""
        losses = np.where(np.isfinite(self.step_losses), self.step_losses, np.inf)
        return float(losses.max() / self.step_losses[0])


def warmup_schedule(lr: float, warmup_steps: int, num_steps: int, *,
                    num_ramps: int = 10) -> list[tuple[float, int]]:
    """The (η, steps) plateaus: ``num_ramps`` equal plateaus at η·k/num_ramps (k = 1…num_ramps)
    over ``warmup_steps`` steps, then η for the rest of ``num_steps``. No warm-up: one plateau."""
    lr = check_lr(lr)
    num_steps = check_positive_int(num_steps, name="num_steps")
    if warmup_steps == 0:
        return [(lr, num_steps)]
    warmup_steps = check_positive_int(warmup_steps, name="warmup_steps")
    num_ramps = check_positive_int(num_ramps, name="num_ramps")
    if warmup_steps % num_ramps or warmup_steps >= num_steps:
        raise ValueError(f"warmup_steps must be a multiple of num_ramps={num_ramps} and fewer than "
                         f"num_steps={num_steps}, got {warmup_steps}")
    per_ramp = warmup_steps // num_ramps
    return ([(lr * (k + 1) / num_ramps, per_ramp) for k in range(num_ramps)]
            + [(lr, num_steps - warmup_steps)])


def run_warmup(*, lr: float, warmup_steps: int, num_steps: int = 200, seed: int = 0,
               num_ramps: int = 10, measure_every: int = 5, lambda_every: int | None = 10,
               widths: Sequence[int] = TEACHER_WIDTHS) -> WarmupRun:
    """Full-batch GD on ``teacher_task(seed=seed)`` (half-MSE) from ``mlp(widths, seed=seed)``,
    η ramped linearly to ``lr`` by :func:`warmup_schedule`, λ_max measured every
    ``lambda_every`` steps (a multiple of ``measure_every``; ``None``: only at the start and the
    end, which is cheaper).

    The plateaus are the phases of one ``train(phases=...)`` run (one optimizer; at full batch
    one epoch is one step), each seeded by ``seed`` + its index; a plateau where the loss blows up
    ends the run.
    """
    start = time.perf_counter()
    config = dict(lr=lr, warmup_steps=warmup_steps, num_steps=num_steps, seed=seed,
                  num_ramps=num_ramps, measure_every=measure_every, lambda_every=lambda_every,
                  widths=tuple(widths), momentum=0.0)
    measure_every = check_positive_int(measure_every, name="measure_every")
    if lambda_every is None:
        lambda_every = 0  # never on the measurement clock
    elif check_positive_int(lambda_every, name="lambda_every") % measure_every:
        raise ValueError(f"lambda_every={lambda_every} must be a multiple of "
                         f"measure_every={measure_every}")
    plateaus = warmup_schedule(lr, warmup_steps, num_steps, num_ramps=num_ramps)
    data = teacher_task(seed=seed)
    model = mlp(list(widths), seed=seed, device=data.device)
    lambda_init = lambda_max(model, half_mse, data.X_train, data.y_train)
    meter = LambdaMaxMeter(tol=1e-3)

    def measure(state):  # noqa: ANN001 — a training callback
        return meter(state) if lambda_every and state.step % lambda_every == 0 else {}

    phases = [Phase(plateau_lr, data.num_train, steps) for plateau_lr, steps in plateaus]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrainingDivergedWarning)  # reported in the result
        result = train(model, data, phases=phases, loss_fn="half_mse",
                       measure_every=measure_every, callbacks=[measure], seed=seed,
                       progress=False)
    diverged = result.diverged
    record = result.record.drop(columns=["phase", "batch_size"])
    record["edge"] = 2.0 / record["lr"]
    lambda_final = (float("nan") if diverged else
                    lambda_max(model, half_mse, data.X_train, data.y_train))
    if "lambda_max" not in record:  # never measured on the clock (lambda_every=None)
        record["lambda_max"] = np.nan
    return WarmupRun(record=record, config=config,
                     step_losses=result.step_losses, lambda_init=float(lambda_init),
                     lambda_final=float(lambda_final), diverged=diverged,
                     diverged_at=result.diverged_at, seconds=time.perf_counter() - start,
                     message=result.message if diverged else
                     f"Finished {result.num_steps} steps, training loss "
                     f"{record['train_loss'].iloc[-1]:.4g}")


def warmup_table(at_once: Mapping[int, WarmupRun], ramped: Mapping[int, WarmupRun]
                  ) -> pd.DataFrame:
    """One row per seed (index) comparing the target η at once with a warm-up: λ_max·η/2 of
    the initial network, each run's largest loss over its initial loss, the step at which the
    first blew up (NaN if it did not), and the ramped run's final loss over its initial loss and
    λ_max at the end (·η/2, and over its start)."""
    rows = []
    for seed, direct in at_once.items():
        warm = ramped[seed]
        rows.append({
            "seed": seed, "λ_max·η/2 at the start": direct.lambda_init / direct.edge,
            "at once: max loss ÷ initial": direct.max_loss_ratio,
            "at once: blew up at step": len(direct.step_losses) if direct.diverged else np.nan,
            "warm-up: max loss ÷ initial": warm.max_loss_ratio,
            "warm-up: final loss ÷ initial": float(warm.step_losses[-1] / warm.step_losses[0]),
            "warm-up: λ_max·η/2 at the end": warm.lambda_final / warm.edge,
            "warm-up: λ_max end ÷ start": warm.lambda_final / warm.lambda_init,
        })
    return pd.DataFrame(rows).set_index("seed")
