"""Lesson 07: do the cheap proxies tell the distance to the edge, or only the hyper-parameters?

On the capstone grid the small-batch edge is 2(1−β)/η = 2/(η/(1−β)): the edge ratio is batch
sharpness × effective step / 2, so anything that grows with the effective step η/(1−β) (that is,
with β at a fixed η) correlates with the edge ratio whether or not it senses curvature. This
module separates the two:

* the unit is a **configuration** (its seeds averaged): repeated seeds of one configuration are
  not independent points;
* ``within_beta``: the rank correlation over the batch sizes at one β (the effective step fixed),
  averaged over β;
* ``partial``: the rank correlation once log η/(1−β) is regressed out of both ranks;
* ``rho_batch_sharpness`` / ``rho_lambda_max``: the proxy against the curvature itself;
* a **cluster bootstrap** (configurations resampled, then seeds within each) gives every number
  an interval.

Reference rows ``effective_step`` (η/(1−β)) and ``inverse_batch`` (1/B) are "proxies" that know
nothing but the hyper-parameters: a proxy is informative beyond them only where it beats them.
Engine layer: nothing here draws.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from edutools.ground.validation import check_positive_int

__all__ = ["PROXY_COLUMNS", "REFERENCES", "config_means", "partial_rank_correlation",
           "proxy_confound_table", "within_group_rank_correlation"]

#: The proxies lesson 07 tests (columns of the capstone runs).
PROXY_COLUMNS: tuple[str, ...] = ("loss_var", "relative_loss_var", "grad_norm", "val_jitter")
#: Hyper-parameter-only references, computed from the configuration.
REFERENCES: tuple[str, ...] = ("effective_step", "inverse_batch")
_CURVATURE = ("edge_ratio", "batch_sharpness", "lambda_max")


def config_means(runs: pd.DataFrame, *, lr: float,
                 proxies: Sequence[str] = PROXY_COLUMNS) -> pd.DataFrame:
    """Seed means per (momentum, batch_size) at ``lr`` of the proxies and curvatures, plus the
    references ``effective_step`` = η/(1−β) and ``inverse_batch`` = 1/B; diverged runs left out."""
    rows = runs[np.isclose(runs["lr"], lr) & ~runs["diverged"].astype(bool)]
    if rows.empty:
        raise ValueError(f"no finished run at lr={lr!r}")
    columns = [c for c in (*proxies, *_CURVATURE) if c in rows.columns]
    means = rows.groupby(["momentum", "batch_size"], sort=True)[columns].mean().reset_index()
    means["effective_step"] = lr / (1 - means["momentum"])
    means["inverse_batch"] = 1.0 / means["batch_size"]
    return means


def partial_rank_correlation(x: np.ndarray, y: np.ndarray, control: np.ndarray) -> float:
    """Spearman correlation of ``x`` and ``y`` with ``control`` partialled out: the Pearson
    correlation of the residuals of rank(x) and rank(y) after a linear fit on rank(control)."""
    ranks = [stats.rankdata(np.asarray(v, dtype=float)) for v in (x, y, control)]
    design = np.column_stack([np.ones(len(ranks[2])), ranks[2]])
    residuals = [r - design @ np.linalg.lstsq(design, r, rcond=None)[0] for r in ranks[:2]]
    norms = [float(np.linalg.norm(r)) for r in residuals]
    if min(norms) == 0:
        return float("nan")
    return float(residuals[0] @ residuals[1] / (norms[0] * norms[1]))


def within_group_rank_correlation(frame: pd.DataFrame, x: str, y: str, *,
                                  group: str = "momentum") -> float:
    """Mean over the groups (one β each) of Spearman's ρ between ``x`` and ``y`` within the group;
    groups with fewer than 2 distinct values of either are skipped (NaN if none is left)."""
    values = []
    for _, part in frame.groupby(group):
        if part[x].nunique() > 1 and part[y].nunique() > 1:
            values.append(stats.spearmanr(part[x], part[y])[0])
    return float(np.mean(values)) if values else float("nan")


def _statistics(means: pd.DataFrame, column: str) -> dict[str, float]:
    x = means[column].to_numpy(dtype=float)
    edge = means["edge_ratio"].to_numpy(dtype=float)
    log_step = np.log(means["effective_step"].to_numpy(dtype=float))
    return {"rho_edge": float(stats.spearmanr(x, edge)[0]),
            "within_beta": within_group_rank_correlation(means, column, "edge_ratio"),
            "partial": partial_rank_correlation(x, edge, log_step),
            "rho_batch_sharpness": float(stats.spearmanr(x, means["batch_sharpness"])[0]),
            "rho_lambda_max": float(stats.spearmanr(x, means["lambda_max"])[0])}


def _cluster_resample(runs: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Configurations drawn with replacement, then seeds with replacement within each; a drawn
    configuration keeps its identity (ties in the ranks, not new points)."""
    groups = [g for _, g in runs.groupby(["momentum", "batch_size"], sort=True)]
    drawn = []
    for index in rng.integers(len(groups), size=len(groups)):
        group = groups[index]
        drawn.append(group.iloc[rng.integers(len(group), size=len(group))])
    return pd.concat(drawn, ignore_index=True)


def proxy_confound_table(runs: pd.DataFrame, *, lr: float,
                         proxies: Sequence[str] = PROXY_COLUMNS, num_bootstrap: int = 400,
                         seed: int = 0) -> pd.DataFrame:
    """One row per proxy and per reference (:data:`REFERENCES`): the statistics of the module
    docstring on configuration means at ``lr`` — ``rho_edge``, ``within_beta``, ``partial``,
    ``rho_batch_sharpness``, ``rho_lambda_max`` — each with a 90% cluster-bootstrap interval
    (``<name>_lo``, ``<name>_hi``: 5th and 95th percentiles over ``num_bootstrap`` resamples).
    """
    num_bootstrap = check_positive_int(num_bootstrap, name="num_bootstrap")
    at_lr = runs[np.isclose(runs["lr"], lr) & ~runs["diverged"].astype(bool)]
    point = config_means(at_lr, lr=lr, proxies=proxies)
    names = [*proxies, *REFERENCES]
    rng = np.random.default_rng(seed)
    draws: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    for _ in range(num_bootstrap):
        # Rank statistics on a resample are undefined when a column is constant: skip those.
        means = config_means(_cluster_resample(at_lr, rng), lr=lr, proxies=proxies)
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", stats.ConstantInputWarning)
            for name in names:
                draws[name].append(_statistics(means, name))
    rows = []
    for name in names:
        row: dict[str, float | str] = {"proxy": name, **_statistics(point, name)}
        sampled = pd.DataFrame(draws[name])
        for statistic in sampled.columns:
            # within_beta of effective_step is undefined (constant within β): NaN, no warning.
            finite = sampled[statistic].to_numpy(dtype=float)
            finite = finite[np.isfinite(finite)]
            low, high = np.percentile(finite, [5, 95]) if len(finite) else (np.nan, np.nan)
            row[f"{statistic}_lo"], row[f"{statistic}_hi"] = float(low), float(high)
        rows.append(row)
    return pd.DataFrame(rows)
