"""Lesson 07's analysis of the capstone grid (:mod:`.capstone`): summaries over seeds, a robust
score and the configuration it picks, and rank correlations of the cheap proxies with the
measured distance to the edge.

Every function takes the tidy DataFrame of :func:`~.capstone.run_capstone_grid` (one row per run:
``momentum``, ``batch_size``, ``lr``, ``seed`` and the run's numbers) and returns a DataFrame or a
small frozen dataclass. Engine layer: nothing here draws.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["CONFIG", "CapstonePicks", "PickUncertainty", "RobustScore", "find_run",
           "grid_summary", "pick_configurations", "pick_uncertainty", "proxy_edge_correlations",
           "robust_score", "robustness_table", "worst_run_score"]

#: The columns that name a configuration (besides ``lr`` and ``seed``).
CONFIG: list[str] = ["momentum", "batch_size"]
#: A robust score: ``score(acc_at_lr, acc_at_half_lr, acc_at_double_lr) -> float``.
RobustScore = Callable[[np.ndarray, np.ndarray, np.ndarray], float]

_MEANS = ("final_val_acc", "best_val_acc", "loss_var", "relative_loss_var", "grad_norm",
          "val_jitter", "lambda_max", "batch_sharpness", "batch_sharpness_se", "upper_edge",
          "lower_edge",
          "lambda_ratio", "bs_ratio", "edge_ratio")


def _at_lr(runs: pd.DataFrame, lr: float) -> pd.DataFrame:
    if not {*CONFIG, "lr", "seed"} <= set(runs.columns):
        raise ValueError(f"runs must have the columns {CONFIG + ['lr', 'seed']} (the output of "
                         f"run_capstone_grid), got {list(runs.columns)}")
    rows = runs[np.isclose(runs["lr"], lr)]
    if rows.empty:
        raise ValueError(f"no run has lr={lr!r}; the runs have lr in "
                         f"{sorted(runs['lr'].unique())}")
    return rows


def find_run(runs: pd.DataFrame, *, momentum: float, batch_size: int, lr: float,
             seed: int) -> pd.Series:
    """The one row of ``runs`` with these settings (ValueError naming them if there is none)."""
    rows = runs[np.isclose(runs["momentum"], momentum) & (runs["batch_size"] == batch_size)
                & np.isclose(runs["lr"], lr) & (runs["seed"] == seed)]
    if len(rows) != 1:
        raise ValueError(f"expected one run with momentum={momentum}, batch_size={batch_size}, "
                         f"lr={lr}, seed={seed}; found {len(rows)}")
    return rows.iloc[0]


def grid_summary(runs: pd.DataFrame, *, lr: float) -> pd.DataFrame:
    """One row per (momentum, batch_size) at learning rate ``lr``: seed means of accuracy, proxies,
    curvature and edge ratios; ``acc_std`` (sample standard deviation of the final validation
    accuracy over seeds, ddof=1); ``epochs_to_target`` (seed mean, NaN unless every seed reached
    the target); ``num_seeds``; and ``diverged`` (how many seeds diverged)."""
    rows = _at_lr(runs, lr)
    grouped = rows.groupby(CONFIG, sort=True)
    summary = grouped[[c for c in _MEANS if c in rows.columns]].mean()
    summary["acc_std"] = grouped["final_val_acc"].std(ddof=1)
    summary["epochs_to_target"] = grouped["epochs_to_target"].agg(
        lambda values: float(values.mean()) if values.notna().all() else math.nan)
    summary["num_seeds"] = grouped["seed"].nunique()
    summary["diverged"] = grouped["diverged"].sum().astype(int)
    return summary.reset_index()


def robust_score(acc_at_lr: Sequence[float], acc_at_half_lr: Sequence[float],
                 acc_at_double_lr: Sequence[float]) -> float:
    """The course's robust score of one configuration: a pessimistic accuracy.

    ``min(mean(acc at η/2), mean(acc at η), mean(acc at 2η)) − std(acc at η)``, with the sample
    standard deviation (ddof=1) over seeds: the accuracy you can count on if η is off by a factor
    of two in either direction *and* your seed is one standard deviation unlucky. Each argument
    holds final validation accuracies (fractions) over seeds; ``acc_at_lr`` needs ≥ 2 of them.
    A diverged run counts with its accuracy (near chance), as it should.
    """
    at_lr = np.asarray(acc_at_lr, dtype=float)
    if at_lr.ndim != 1 or len(at_lr) < 2:
        raise ValueError(f"acc_at_lr must hold accuracies over at least 2 seeds, got {acc_at_lr!r}")
    means = [float(np.mean(np.asarray(a, dtype=float)))
             for a in (acc_at_half_lr, at_lr, acc_at_double_lr)]
    return min(means) - float(np.std(at_lr, ddof=1))


def robustness_table(runs: pd.DataFrame, *, lr: float, score: RobustScore = robust_score,
                     column: str = "final_val_acc") -> pd.DataFrame:
    """Per (momentum, batch_size): ``acc_mean`` and ``acc_std`` over seeds at η, ``acc_half`` and
    ``acc_double`` (seed means at η/2 and 2η), ``lr_drop`` (``acc_mean`` − the worse of those two;
    > 0 means a factor-two error in η costs accuracy), ``epochs_to_target`` and ``edge_ratio``
    (seed means at η, see :func:`grid_summary`), and ``score``:
    ``score(acc at η, acc at η/2, acc at 2η)`` (per-seed arrays), sorted by score, best first."""
    at_lr = _at_lr(runs, lr)
    half, double = _at_lr(runs, lr / 2), _at_lr(runs, 2 * lr)
    summary = grid_summary(runs, lr=lr).set_index(CONFIG)
    rows = []
    for key, group in at_lr.groupby(CONFIG, sort=True):
        values = group[column].to_numpy(dtype=float)
        other = [frame[(frame["momentum"] == key[0]) & (frame["batch_size"] == key[1])][column]
                 .to_numpy(dtype=float) for frame in (half, double)]
        if not all(len(o) for o in other):
            raise ValueError(f"configuration momentum={key[0]}, batch_size={key[1]} lacks runs "
                             f"at lr/2 or 2·lr")
        rows.append({"momentum": key[0], "batch_size": key[1], "acc_mean": values.mean(),
                     "acc_std": values.std(ddof=1) if len(values) > 1 else math.nan,
                     "acc_half": other[0].mean(), "acc_double": other[1].mean(),
                     "lr_drop": values.mean() - min(other[0].mean(), other[1].mean()),
                     "epochs_to_target": summary.loc[key, "epochs_to_target"],
                     "edge_ratio": summary.loc[key, "edge_ratio"]
                     if "edge_ratio" in summary else math.nan,
                     "score": float(score(values, other[0], other[1]))})
    table = pd.DataFrame(rows)
    return table.sort_values(["score", "acc_mean"], ascending=False, ignore_index=True)


@dataclass(frozen=True)
class CapstonePicks:
    """The robust pick and the fastest configuration, side by side.

    Attributes:
        robust: the row of the robustness table with the best score (a dict).
        fastest: the row with the fewest epochs to the target at η (ties: higher mean accuracy).
        same: whether the two picks are the same configuration.
    """

    robust: dict[str, float]
    fastest: dict[str, float]

    @property
    def same(self) -> bool:
        """True if the robust and the fastest configurations coincide."""
        return all(self.robust[c] == self.fastest[c] for c in CONFIG)


def pick_configurations(table: pd.DataFrame) -> CapstonePicks:
    """The robust and the fastest configuration of a :func:`robustness_table`."""
    if table.empty or not {"score", "epochs_to_target", "acc_mean", *CONFIG} <= set(table):
        raise ValueError("table must be a non-empty robustness_table")
    robust = table.loc[table["score"].idxmax()].to_dict()
    reached = table[table["epochs_to_target"].notna()]
    if reached.empty:
        raise ValueError("no configuration reached the target accuracy on every seed; lower the "
                         "target or train for more epochs")
    fastest = reached.sort_values(["epochs_to_target", "acc_mean"],
                                  ascending=[True, False]).iloc[0].to_dict()
    return CapstonePicks(robust=robust, fastest=fastest)


def proxy_edge_correlations(runs: pd.DataFrame, *, lr: float,
                            proxies: Sequence[str] = ("loss_var", "relative_loss_var",
                                                      "grad_norm", "val_jitter"),
                            against: str = "edge_ratio") -> pd.DataFrame:
    """Spearman rank correlation of each proxy with the measured curvature over the runs at ``lr``.

    One point per run (configuration × seed): can one run's cheap proxy tell how close that run
    sits to its edge? Diverged runs and non-finite values are left out. Columns: ``proxy``,
    ``rho`` (−1…1), ``p_value`` (two-sided, scipy), ``n`` (runs used).
    """
    rows = _at_lr(runs, lr)
    missing = [c for c in (*proxies, against) if c not in rows.columns]
    if missing:
        raise ValueError(f"runs lack the columns {missing}")
    results = []
    for proxy in proxies:
        x = rows[proxy].to_numpy(dtype=float)
        y = rows[against].to_numpy(dtype=float)
        keep = np.isfinite(x) & np.isfinite(y) & ~rows["diverged"].to_numpy(dtype=bool)
        if keep.sum() < 3:
            raise ValueError(f"fewer than 3 finite runs to correlate {proxy!r} with {against!r}")
        rho, p_value = stats.spearmanr(x[keep], y[keep])
        results.append({"proxy": proxy, "rho": float(rho), "p_value": float(p_value),
                        "n": int(keep.sum())})
    return pd.DataFrame(results)


def worst_run_score(acc_at_lr: Sequence[float], acc_at_half_lr: Sequence[float],
                    acc_at_double_lr: Sequence[float]) -> float:
    """An alternative robust score: the worst single run over every seed at η/2, η and 2η
    (no averaging at all; the most pessimistic reading of the same runs)."""
    return float(min(np.min(np.asarray(a, dtype=float))
                     for a in (acc_at_lr, acc_at_half_lr, acc_at_double_lr)))


@dataclass(frozen=True)
class PickUncertainty:
    """How sure the robust pick is, from a bootstrap over seeds.

    Attributes:
        frequency: per (momentum, batch_size), the fraction of resamples in which it scored best
            (a DataFrame sorted by frequency, most often picked first).
        runner_up: the configuration with the second-best score on the actual runs (a dict of
            the robustness-table row).
        gap: best score − runner-up score on the actual runs (accuracy units).
        gap_lo, gap_hi: 5th and 95th percentiles of that gap (best − runner-up of the actual
            ranking) over the resamples.
        num_bootstrap: resamples drawn.
    """

    frequency: pd.DataFrame
    runner_up: dict[str, float]
    gap: float
    gap_lo: float
    gap_hi: float
    num_bootstrap: int


def _resample_seeds(runs: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Each (configuration, lr) keeps its number of runs, drawn with replacement from its seeds."""
    parts = [group.iloc[rng.integers(len(group), size=len(group))]
             for _, group in runs.groupby([*CONFIG, "lr"], sort=True)]
    return pd.concat(parts, ignore_index=True)


def pick_uncertainty(runs: pd.DataFrame, *, lr: float, score: RobustScore = robust_score,
                     num_bootstrap: int = 300, seed: int = 0) -> PickUncertainty:
    """Bootstrap the robust pick of :func:`robustness_table`: resample the seeds of every
    configuration and learning rate (with replacement), rescore, and count which configuration
    wins; the runner-up and the gap to it come from the actual runs."""
    table = robustness_table(runs, lr=lr, score=score)
    best, second = table.iloc[0], table.iloc[1]
    rng = np.random.default_rng(seed)
    winners, gaps = [], []
    for _ in range(num_bootstrap):
        # A resample whose seeds all coincide has std 0 (ddof=1 on equal values): still valid.
        resampled = robustness_table(_resample_seeds(runs, rng), lr=lr, score=score)
        winners.append((resampled.iloc[0]["momentum"], resampled.iloc[0]["batch_size"]))
        indexed = resampled.set_index(CONFIG)["score"]
        gaps.append(indexed.loc[(best["momentum"], best["batch_size"])]
                    - indexed.loc[(second["momentum"], second["batch_size"])])
    counts = pd.Series(winners).value_counts(normalize=True)
    frequency = pd.DataFrame({"momentum": [k[0] for k in counts.index],
                              "batch_size": [int(k[1]) for k in counts.index],
                              "frequency": counts.to_numpy()})
    return PickUncertainty(frequency=frequency.reset_index(drop=True),
                           runner_up=second.to_dict(),
                           gap=float(best["score"] - second["score"]),
                           gap_lo=float(np.percentile(gaps, 5)),
                           gap_hi=float(np.percentile(gaps, 95)), num_bootstrap=num_bootstrap)
