"""The exact edge-of-stochastic-stability experiment: SGD on linear regression.

On the half-MSE loss L(w) = ½·mean_i (x_iᵀw − y_i)² the Hessian H = XᵀX/n does not depend on w,
so "is SGD stable at step size η?" has a crisp answer: run it and see whether the loss blows up.
:func:`critical_lr` finds by bisection the step size η* above which SGD (with heavy-ball
momentum ``v ← βv + g``, ``θ ← θ − ηv``) diverges within ``num_steps`` steps from w = 0, and
measures the curvatures that η* should be compared with:

* λ_max(H) — the full-batch edge says η*·λ_max = 2(1+β);
* the batch sharpness E_B[g_Bᵀ H_B g_B / ‖g_B‖²] — the edge of stochastic stability
  (Andreyev & Beneventano 2024) says η*·BS ≈ 2 for plain SGD (≈ 2(1−β) with small-batch
  momentum, Andreyev et al. 2026);
* tr(H)/B — the noise-driven edge of Agarwala & Pennington 2024 (η*·tr(H)/B ≈ 2 at B = 1).

Everything is plain float64 NumPy. The bisection is vectorized: each round runs a whole grid of
``lrs_per_round`` step sizes side by side on the same sequence of mini-batches (common random
numbers, so divergence is close to monotone in η) and keeps the bracket between the largest
stable and the smallest diverging one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from edutools.ground.data import Dataset
from edutools.ground.validation import check_batch_size, check_momentum, check_positive_int

SHARPNESS_POINTS = ("trajectory", "divergence", "stable", "start")


@dataclass(frozen=True)
class CriticalLRResult:
    """Outcome of :func:`critical_lr`. Curvatures are Hessian eigenvalue units; η is the step size.

    Attributes:
        lr_star: the critical step size η*, geometric mean of the final bracket.
        lr_stable: largest step size found stable (within ``num_steps``), η* bracket low end.
        lr_diverged: smallest step size found to diverge, the bracket's high end.
        batch_size: mini-batch size B (``num_train`` = full-batch GD).
        momentum: heavy-ball β.
        num_steps: steps each trial run was allowed.
        lambda_max: top eigenvalue of the full-batch Hessian XᵀX/n.
        trace: tr(XᵀX/n) = mean squared input norm.
        batch_sharpness: E_B[g_Bᵀ H_B g_B/‖g_B‖²], mean over ``num_sharpness_batches`` random
            batches of size B, measured where ``sharpness_at`` says (see :func:`critical_lr`;
            default: averaged along the trajectory of the largest stable run).
        batch_sharpness_start: the same average measured at w = 0, for comparison.
        sharpness_at: ``"trajectory"``, ``"stable"``, ``"divergence"`` or ``"start"``.
        num_trials: number of (step size, run) trials simulated during the bisection.
        num_rounds: number of bisection rounds.
        seed: seed of the mini-batch order and of the sharpness batches.
    """

    lr_star: float
    lr_stable: float
    lr_diverged: float
    batch_size: int
    momentum: float
    num_steps: int
    lambda_max: float
    trace: float
    batch_sharpness: float
    batch_sharpness_start: float
    sharpness_at: str
    num_trials: int
    num_rounds: int
    seed: int

    @property
    def lr_lambda_max(self) -> float:
        """η*·λ_max: 2(1+β) if the full-batch edge decides stability."""
        return self.lr_star * self.lambda_max

    @property
    def lr_batch_sharpness(self) -> float:
        """η*·batch sharpness: ≈ 2 (β = 0) at the edge of stochastic stability."""
        return self.lr_star * self.batch_sharpness

    @property
    def lr_trace_over_batch(self) -> float:
        """η*·tr(H)/B: ≈ 2 at B = 1 when the gradient noise decides stability."""
        return self.lr_star * self.trace / self.batch_size

    def products(self) -> dict[str, float]:
        """The three dimensionless products, plus B, β and η*, as one table row."""
        return edge_products(self)


def edge_products(result: CriticalLRResult) -> dict[str, float]:
    """η*·λ_max, η*·BS and η*·tr(H)/B of one :func:`critical_lr` result, as a dict row.

    Keys: ``batch_size, momentum, lr_star, lr_lambda_max, lr_batch_sharpness,
    lr_trace_over_batch``.
    """
    if not isinstance(result, CriticalLRResult):
        raise ValueError(f"result must be a CriticalLRResult, got {type(result).__name__}")
    return {"batch_size": result.batch_size, "momentum": result.momentum,
            "lr_star": result.lr_star, "lr_lambda_max": result.lr_lambda_max,
            "lr_batch_sharpness": result.lr_batch_sharpness,
            "lr_trace_over_batch": result.lr_trace_over_batch}


def _as_arrays(task: Dataset) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(task, Dataset):
        raise ValueError(f"task must be an edutools Dataset, got {type(task).__name__}")
    if task.num_classes is not None:
        raise ValueError("task must be a regression Dataset (e.g. linear_regression_task()), "
                         f"got a classification task with {task.num_classes} classes")
    X = task.X_train.detach().cpu().to(torch.float64).reshape(task.num_train, -1).numpy()
    y = task.y_train.detach().cpu().to(torch.float64).reshape(task.num_train, -1).numpy()
    if y.shape[1] != 1:
        raise ValueError(f"task must have one regression target, got {y.shape[1]}")
    return X, y[:, 0]


def hessian(task: Dataset) -> np.ndarray:
    """The full-batch Hessian XᵀX/n of the half-MSE loss, shape (d, d), float64."""
    X, _ = _as_arrays(task)
    return X.T @ X / X.shape[0]


def batch_sharpness_linear(X: np.ndarray, y: np.ndarray, w: np.ndarray, *, batch_size: int,
                           num_batches: int = 200, seed: int = 0) -> float:
    """E_B[g_Bᵀ H_B g_B / ‖g_B‖²] of linear least squares at weights ``w`` (mean outside ratio).

    Args:
        X: inputs (n, d); y: targets (n,); w: weights (d,).
        batch_size: B; each batch is B distinct samples drawn at random.
        num_batches: number of batches averaged.
        seed: seeds the batches.

    Returns:
        The batch sharpness, in Hessian-eigenvalue units. H_B = X_BᵀX_B/B and
        g_B = X_Bᵀ(X_B w − y_B)/B, so g_Bᵀ H_B g_B = ‖X_B g_B‖²/B. Batches whose gradient is
        exactly zero are skipped.
    """
    n = X.shape[0]
    batch_size = check_batch_size(batch_size, n)
    num_batches = check_positive_int(num_batches, name="num_batches")
    rng = np.random.default_rng(seed)
    if batch_size == n:
        index = np.broadcast_to(np.arange(n), (1, n))
    else:
        index = np.argsort(rng.random((num_batches, n)), axis=1)[:, :batch_size]
    Xb = X[index]                                        # (m, B, d)
    residual = Xb @ w - y[index]                         # (m, B)
    grads = np.einsum("mbd,mb->md", Xb, residual) / batch_size
    norms = np.sum(grads**2, axis=1)
    curv = np.sum(np.einsum("mbd,md->mb", Xb, grads) ** 2, axis=1) / batch_size
    keep = norms > 0
    if not keep.any():
        raise ValueError("every batch gradient is zero at w: batch sharpness is undefined there")
    return float(np.mean(curv[keep] / norms[keep]))


@dataclass(frozen=True)
class SGDTrials:
    """What :func:`simulate_sgd` returns for K step sizes run side by side."""

    diverged: np.ndarray   # (K,) bool
    final_w: np.ndarray    # (d, K): final weights; zero for diverged runs
    blowup_w: np.ndarray   # (d, K): weights when divergence was detected; zero for stable runs
    snapshots: np.ndarray  # (S, d, K): weights at num_steps·s/S, s = 1..S (zero once diverged)


def simulate_sgd(X: np.ndarray, y: np.ndarray, lrs: np.ndarray, *, batch_size: int,
                 momentum: float = 0.0, num_steps: int = 3000, seed: int = 0,
                 divergence_factor: float = 1e3, check_every: int = 10,
                 num_snapshots: int = 10) -> SGDTrials:
    """Run SGD from w = 0 at every step size in ``lrs`` at once, on the same batch sequence.

    Mini-batches are drawn without replacement (fresh shuffle each epoch, last incomplete batch
    dropped), as in :func:`edutools.engine.training.train`. A run diverges when its full-batch loss
    exceeds ``divergence_factor`` × the initial loss (checked every ``check_every`` steps) or is
    not finite; a diverged run is frozen at zero. Returns a record of which runs diverged and the
    final weights (d, K), plus each diverged run's weights at the check that caught it.
    """
    n, d = X.shape
    batch_size = check_batch_size(batch_size, n)
    momentum = check_momentum(momentum)
    num_steps = check_positive_int(num_steps, name="num_steps")
    check_every = check_positive_int(check_every, name="check_every")
    num_snapshots = check_positive_int(num_snapshots, name="num_snapshots")
    lrs = np.asarray(lrs, dtype=np.float64).reshape(1, -1)
    if lrs.size == 0 or not np.all(np.isfinite(lrs) & (lrs > 0)):
        raise ValueError(f"lrs must be finite step sizes > 0, got {lrs.ravel()!r}")
    k = lrs.shape[1]
    H = X.T @ X / n
    b = X.T @ y / n
    c = 0.5 * float(y @ y) / n
    threshold = divergence_factor * max(c, 1e-300)
    full_batch = batch_size == n
    W = np.zeros((d, k))
    V = np.zeros((d, k))
    eta = lrs.copy()
    diverged = np.zeros(k, dtype=bool)
    blowup = np.zeros((d, k))
    snapshots = np.zeros((num_snapshots, d, k))
    snap_steps = {max(1, (num_steps * (s + 1)) // num_snapshots): s for s in range(num_snapshots)}
    rng = np.random.default_rng(seed)
    per_epoch = n // batch_size
    order = np.empty(0, dtype=np.int64)
    for step in range(num_steps):
        if full_batch:
            G = H @ W - b[:, None]
        else:
            position = step % per_epoch
            if position == 0:
                order = rng.permutation(n)
            index = order[position * batch_size:(position + 1) * batch_size]
            Xb = X[index]
            G = Xb.T @ (Xb @ W - y[index, None]) / batch_size
        if momentum:
            V *= momentum
            V += G
            W -= eta * V
        else:
            W -= eta * G
        if (step + 1) % check_every == 0 or step + 1 == num_steps:
            loss = 0.5 * np.einsum("dk,dk->k", W, H @ W) - b @ W + c
            bad = ~np.isfinite(loss) | (loss > threshold)
            new = bad & ~diverged
            if new.any():
                diverged |= new
                blowup[:, new] = W[:, new]
                W[:, new] = 0.0
                V[:, new] = 0.0
                eta[0, new] = 0.0
                if diverged.all():
                    break
        if step + 1 in snap_steps:
            snapshots[snap_steps[step + 1]] = W
    return SGDTrials(diverged=diverged, final_w=W, blowup_w=blowup, snapshots=snapshots)


def critical_lr(task: Dataset, *, batch_size: int, momentum: float = 0.0, num_steps: int = 3000,
                lr_low: float | None = None, lr_high: float | None = None, tol: float = 0.01,
                lrs_per_round: int = 8, max_rounds: int = 12, seed: int = 0,
                divergence_factor: float = 1e3, sharpness_at: str = "trajectory",
                num_sharpness_batches: int = 200) -> CriticalLRResult:
    """Bisect for the step size η* at which SGD on linear regression starts to diverge.

    SGD with heavy-ball momentum (``v ← βv + g``, ``θ ← θ − ηv``) runs from w = 0 on the half-MSE
    loss of ``task`` for ``num_steps`` steps; η is "stable" if the full-batch loss never exceeds
    ``divergence_factor`` × its initial value. Each round tries ``lrs_per_round`` step sizes spaced
    geometrically inside the bracket, on the same batch sequence, and shrinks the bracket to
    (largest stable below the smallest diverging, smallest diverging). Rounds stop when
    lr_diverged/lr_stable − 1 < ``tol``.

    Args:
        task: a regression :class:`~edutools.ground.data.Dataset` with one target, e.g.
            :func:`~edutools.ground.data.linear_regression_task`.
        batch_size: B, 1 ≤ B ≤ n (n = full-batch GD).
        momentum: heavy-ball β in [0, 1).
        num_steps: steps per trial; shorter trials let slowly growing runs pass as stable and so
            raise η* (by up to ~20% at 1000 steps).
        lr_low, lr_high: initial bracket. Defaults: ``lr_high`` = 4(1+β)/λ_max (twice the
            full-batch edge), ``lr_low`` = lr_high/1000. A bracket that does not hold (low
            diverges or high is stable) is widened by ×4 up to 10 times.
        tol: relative width of the final bracket (0 < tol < 1).
        lrs_per_round: step sizes tried side by side per round (≥ 1); the first round adds
            the two ends of the bracket.
        max_rounds: cap on the number of bisection rounds.
        seed: seeds the mini-batch order (the same for every trial) and the sharpness batches.
        divergence_factor: loss ratio (> 1) counted as divergence.
        sharpness_at: where ``batch_sharpness`` is measured. ``"trajectory"`` (default): mean
            over 10 snapshots (every ``num_steps``/10 steps) of the run at η = lr_stable, the
            largest stable step size — the curvature SGD actually sees at its edge.
            ``"stable"``: at that run's final weights only (noisier). ``"divergence"``: at the
            weights of the run at lr_diverged when its blow-up was detected, i.e. along the
            unstable mode (for full-batch GD this gives λ_max; for 4 ≤ B ≤ 16 it reads
            15–30% higher than the trajectory value). ``"start"``: at w = 0. For B = 1 all four
            equal mean‖x‖² = tr(H) up to batch sampling. For full-batch GD the trajectory
            value is meaningless (GD quickly removes the sharp directions, so only flat ones
            remain): compare η* with λ_max there.
        num_sharpness_batches: random batches averaged for the batch sharpness.

    Returns:
        A :class:`CriticalLRResult`.

    Raises:
        ValueError: on a bad argument, naming it and its value, or if no bracket is found.
    """
    X, y = _as_arrays(task)
    batch_size = check_batch_size(batch_size, X.shape[0])
    momentum = check_momentum(momentum)
    num_steps = check_positive_int(num_steps, name="num_steps")
    lrs_per_round = check_positive_int(lrs_per_round, name="lrs_per_round")
    max_rounds = check_positive_int(max_rounds, name="max_rounds")
    num_sharpness_batches = check_positive_int(num_sharpness_batches,
                                               name="num_sharpness_batches")
    _check_bisection(tol=tol, divergence_factor=divergence_factor, sharpness_at=sharpness_at,
                     lr_low=lr_low, lr_high=lr_high)
    H = X.T @ X / X.shape[0]
    lambda_max = float(np.linalg.eigvalsh(H)[-1])
    if lr_high is None:
        lr_high = 4.0 * (1.0 + momentum) / lambda_max
    if lr_low is None:
        lr_low = lr_high / 1000.0
    if not lr_low < lr_high:
        raise ValueError(f"lr_low must be below lr_high, got lr_low={lr_low!r}, "
                         f"lr_high={lr_high!r}")

    def run(lrs: np.ndarray) -> SGDTrials:
        return simulate_sgd(X, y, lrs, batch_size=batch_size, momentum=momentum,
                            num_steps=num_steps, seed=seed, divergence_factor=divergence_factor)

    search = _Bisection(run=run, lr_low=lr_low, lr_high=lr_high, dim=X.shape[1])
    search.bracket(lrs_per_round)
    search.narrow(lrs_per_round=lrs_per_round, tol=tol, max_rounds=max_rounds)

    def sharpness(w: np.ndarray) -> float:
        return batch_sharpness_linear(X, y, w, batch_size=batch_size,
                                      num_batches=num_sharpness_batches, seed=seed)

    measured = {"start": sharpness(np.zeros(X.shape[1]))}
    if sharpness_at == "divergence":
        measured["divergence"] = sharpness(search.blowup_w)
    elif sharpness_at == "stable":
        measured["stable"] = sharpness(search.stable_w)
    elif sharpness_at == "trajectory":
        measured["trajectory"] = float(np.mean([sharpness(w) for w in search.stable_snaps]))
    return CriticalLRResult(
        lr_star=math.sqrt(search.lr_low * search.lr_high), lr_stable=search.lr_low,
        lr_diverged=search.lr_high, batch_size=batch_size, momentum=momentum,
        num_steps=num_steps, lambda_max=lambda_max, trace=float(np.trace(H)),
        batch_sharpness=measured[sharpness_at], batch_sharpness_start=measured["start"],
        sharpness_at=sharpness_at, num_trials=search.num_trials, num_rounds=search.rounds,
        seed=seed)


def _check_bisection(*, tol: float, divergence_factor: float, sharpness_at: str,
                     lr_low: float | None, lr_high: float | None) -> None:
    """Raise ``ValueError`` naming the first bad setting of :func:`critical_lr`."""
    if not (isinstance(tol, int | float) and 0 < tol < 1):
        raise ValueError(f"tol must lie in (0, 1), got {tol!r}")
    if not (isinstance(divergence_factor, int | float) and divergence_factor > 1
            and math.isfinite(divergence_factor)):
        raise ValueError(
            f"divergence_factor must be a finite number > 1, got {divergence_factor!r}")
    if sharpness_at not in SHARPNESS_POINTS:
        raise ValueError(f"sharpness_at must be one of {SHARPNESS_POINTS}, got {sharpness_at!r}")
    for name, value in (("lr_low", lr_low), ("lr_high", lr_high)):
        if value is not None and not (isinstance(value, int | float) and math.isfinite(value)
                                      and value > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


class _Bisection:
    """The bracket [lr_low, lr_high] of :func:`critical_lr` and the runs that set it."""

    def __init__(self, *, run: Callable[[np.ndarray], SGDTrials], lr_low: float,
                 lr_high: float, dim: int) -> None:
        self.run, self.lr_low, self.lr_high = run, lr_low, lr_high
        self.num_trials = self.rounds = 0
        self.stable_w = self.blowup_w = np.zeros(dim)
        self.stable_snaps = np.zeros((1, dim))
        self.grid = np.empty(0)
        self.trials: SGDTrials | None = None

    def _try(self, grid: np.ndarray) -> SGDTrials:
        self.grid, self.trials = grid, self.run(grid)
        self.num_trials += len(grid)
        return self.trials

    def bracket(self, lrs_per_round: int) -> None:
        """First round: a grid including both ends; widen ×4 (≤ 10 times) until it holds."""
        for widenings in range(11):
            trials = self._try(np.geomspace(self.lr_low, self.lr_high, lrs_per_round + 2))
            if not (trials.diverged[0] or not trials.diverged[-1]):
                return
            if widenings == 10:
                raise ValueError(
                    f"could not bracket η*: after 10 widenings lr_low={self.lr_low:.3g} "
                    f"{'diverges' if trials.diverged[0] else 'is stable'} and lr_high="
                    f"{self.lr_high:.3g} {'diverges' if trials.diverged[-1] else 'is stable'}")
            if trials.diverged[0]:
                self.lr_high, self.lr_low = self.lr_low, self.lr_low / 4.0
            else:
                self.lr_low, self.lr_high = self.lr_high, self.lr_high * 4.0

    def narrow(self, *, lrs_per_round: int, tol: float, max_rounds: int) -> None:
        """Shrink the bracket round by round until its relative width is below ``tol``."""
        while True:
            self.rounds += 1
            grid, trials = self.grid, self.trials
            if trials.diverged.any():
                first = int(np.argmax(trials.diverged))
                self.lr_high, self.blowup_w = float(grid[first]), trials.blowup_w[:, first]
            else:
                first = len(grid)
            below = np.flatnonzero(~trials.diverged[:first])
            if len(below):
                self.lr_low, self.stable_w = float(grid[below[-1]]), trials.final_w[:, below[-1]]
                self.stable_snaps = trials.snapshots[:, :, below[-1]]
            if self.lr_high / self.lr_low - 1.0 < tol or self.rounds >= max_rounds:
                return
            self._try(np.geomspace(self.lr_low, self.lr_high, lrs_per_round + 2)[1:-1])


def critical_lr_sweep(task: Dataset, batch_sizes: Iterable[int], **kwargs) -> pd.DataFrame:
    """:func:`critical_lr` for each batch size; one row of :func:`edge_products` per B.

    Extra columns: ``lambda_max``, ``trace``, ``batch_sharpness``. ``kwargs`` go to
    :func:`critical_lr` (momentum, num_steps, seed, …).
    """
    rows = []
    for batch_size in batch_sizes:
        result = critical_lr(task, batch_size=batch_size, **kwargs)
        rows.append({**edge_products(result), "lambda_max": result.lambda_max,
                     "trace": result.trace, "batch_sharpness": result.batch_sharpness})
    if not rows:
        raise ValueError("batch_sizes is empty")
    return pd.DataFrame(rows)
