"""Lesson 05's figures (measuring sharpness). Each receives measured numbers — errors per HVP,
tables, densities on a grid, loss slices — and draws; none computes a curvature.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from edutools.face.plots.style import EDGE_COLOR, PALETTE

__all__ = ["plot_alpha_sweep", "plot_batch_sharpness_by_batch_size", "plot_eigen_costs",
           "plot_finite_difference_error", "plot_hutchinson", "plot_perturbation_along",
           "plot_slices_1d", "plot_slices_2d", "plot_spectral_densities", "plot_warm_starts"]


def _edge_line(ax: Axes, value: float, label: str, *, vertical: bool = False) -> None:
    line = ax.axvline if vertical else ax.axhline
    line(value, color=EDGE_COLOR, linestyle="--", linewidth=1.3, label=label)


def plot_finite_difference_error(steps_h: np.ndarray, errors: np.ndarray) -> Axes:
    """Relative error of a central-difference HVP against the step h (log-log, h decreasing to
    the right), with a slope-2 guide for the Taylor remainder."""
    _, ax = plt.subplots(figsize=(6.5, 3.8))
    ax.loglog(steps_h, errors, marker="o", markersize=4, label="central difference")
    ax.loglog(steps_h, errors[0] * (steps_h / steps_h[0]) ** 2, linestyle="--", color="gray",
              label="slope 2 (Taylor remainder)")
    ax.set(xlabel="step h", ylabel="relative error of H·v", ylim=(1e-13, 1),
           title="Finite-difference HVP against the exact one (float64)")
    ax.invert_xaxis()
    ax.legend()
    return ax


def plot_eigen_costs(power_error: np.ndarray, lanczos_error: np.ndarray, *, target: float,
                     cost: Mapping[str, float], ritz_history: np.ndarray,
                     reference: Sequence[float]) -> Figure:
    """Left: relative error of λ_max after each HVP, power iteration vs Lanczos, against the
    target. Right: Lanczos' Ritz values (columns of ``ritz_history``, one row per HVP) converging
    to the ``reference`` eigenvalues (dashed)."""
    fig, (ax_err, ax_ritz) = plt.subplots(1, 2, figsize=(13, 4))
    for errors, label in ((power_error, "power iteration"), (lanczos_error, "Lanczos")):
        ax_err.semilogy(np.arange(1, len(errors) + 1), np.maximum(errors, 1e-9), label=label)
    _edge_line(ax_err, target, f"target {target:g}")
    finite = [c for c in cost.values() if c < np.inf]
    ax_err.set(xlabel="Hessian-vector products", ylabel="relative error of λ_max",
               xlim=(0, min(len(power_error), 4 * max(finite))) if finite else None,
               title="Cost of λ_max: power iteration vs Lanczos")
    ax_err.legend()
    for i in range(ritz_history.shape[1]):
        line = ax_ritz.plot(np.arange(1, len(ritz_history) + 1), ritz_history[:, i],
                            marker="o", markersize=3, label=f"Ritz value {i + 1}")[0]
        ax_ritz.axhline(reference[i], color=line.get_color(), linestyle="--", linewidth=1)
    ax_ritz.set(xlabel="Hessian-vector products", ylabel="eigenvalue estimate",
                title=f"Lanczos, k = {ritz_history.shape[1]}: estimates converge to eigsh (dashed)")
    ax_ritz.legend(ncol=2)
    return fig


def plot_warm_starts(along: pd.DataFrame, *, lr: float, checkpoint_every: int,
                     tol: float) -> Figure:
    """Left: λ_max at each checkpoint (eigsh, Lanczos from a random and from a warm start)
    against the edge 2/η. Right: HVPs each start spent, per checkpoint after the first."""
    fig, (ax_lam, ax_cost) = plt.subplots(1, 2, figsize=(13, 4))
    ax_lam.plot(along["step"], along["lambda_max"], color="gray", label="eigsh (reference)")
    ax_lam.plot(along["step"], along["cold"], "o", markersize=6, fillstyle="none",
                label="Lanczos, random start")
    ax_lam.plot(along["step"], along["warm"], "x", markersize=6, label="Lanczos, warm start")
    _edge_line(ax_lam, 2 / lr, f"edge 2/η = {2 / lr:g}")
    ax_lam.set(xlabel="training step", ylabel="λ_max", yscale="log",
               title="λ_max along the SGD run (far below 2/η)")
    ax_lam.legend()
    later = along.iloc[1:]  # the first checkpoint has nothing to warm-start from
    width = 0.4 * checkpoint_every
    ax_cost.bar(later["step"] - width / 2, later["cold HVPs"], width=width, label="random start")
    ax_cost.bar(later["step"] + width / 2, later["warm HVPs"], width=width, label="warm start")
    ax_cost.set(xlabel="training step", ylabel="HVPs to tol",
                title=f"Cost per checkpoint (tol {tol:g})")
    ax_cost.legend()
    return fig


def plot_hutchinson(samples: np.ndarray, exact_trace: float) -> Axes:
    """Running mean of Hutchinson's samples zᵀHz with a ±2 standard-error band, against the
    exact trace (log x axis: the band shrinks like 1/√m)."""
    m = np.arange(1, len(samples) + 1)
    running_mean = np.cumsum(samples) / m
    running_se = np.array([samples[:k].std(ddof=1) / np.sqrt(k) if k > 1 else np.nan
                           for k in m])
    _, ax = plt.subplots(figsize=(7, 3.8))
    ax.plot(m, running_mean, label="running mean of zᵀHz")
    ax.fill_between(m, running_mean - 2 * running_se, running_mean + 2 * running_se, alpha=0.25,
                    label="± 2 standard errors")
    _edge_line(ax, exact_trace, f"exact tr(H) = {exact_trace:.2f}")
    ax.set(xlabel="number of probes (HVPs)", ylabel="trace estimate", xscale="log",
           title="Hutchinson's trace estimate on the tiny model")
    ax.legend()
    return ax


def plot_spectral_densities(grid_tiny: np.ndarray, exact_tiny: np.ndarray, slq_tiny: np.ndarray,
                            grid_digits: np.ndarray, slq_digits: np.ndarray, *,
                            slq_label: str, lambda_max: float, digits_hvps: int) -> Figure:
    """Left: the tiny model's smoothed exact spectrum against its SLQ estimate. Right: the
    digits network's SLQ density with λ_max marked. Log densities, floored at 1e-6."""
    fig, (ax_tiny, ax_digits) = plt.subplots(1, 2, figsize=(13, 4))
    ax_tiny.semilogy(grid_tiny, np.maximum(exact_tiny, 1e-6), label="exact eigenvalues, smoothed")
    ax_tiny.semilogy(grid_tiny, np.maximum(slq_tiny, 1e-6), linestyle="--", label=slq_label)
    ax_tiny.set(xlabel="eigenvalue", ylabel="density", ylim=(1e-4, None),
                title="Tiny model: SLQ against the exact spectrum")
    ax_tiny.legend()
    ax_digits.semilogy(grid_digits, np.maximum(slq_digits, 1e-6))
    _edge_line(ax_digits, lambda_max, f"λ_max = {lambda_max:.2f}", vertical=True)
    ax_digits.set(xlabel="eigenvalue", ylabel="density", ylim=(1e-4, None),
                  title=f"Digits network: SLQ density ({digits_hvps} HVPs)")
    ax_digits.legend()
    return fig


def plot_batch_sharpness_by_batch_size(table: pd.DataFrame, lambda_max: float) -> Axes:
    """Batch sharpness ± 2 standard errors against the batch size (log x), with λ_max dashed.
    ``table``: indexed by batch size, columns ``batch sharpness`` and ``standard error``."""
    _, ax = plt.subplots(figsize=(7, 3.8))
    ax.errorbar(table.index, table["batch sharpness"], yerr=2 * table["standard error"],
                marker="o", capsize=3, label="batch sharpness ± 2 SE")
    _edge_line(ax, lambda_max, f"λ_max = {lambda_max:.2f}")
    ax.set(xscale="log", xlabel="batch size B", ylabel="curvature",
           title="Batch sharpness against λ_max (final checkpoint)")
    ax.legend()
    return ax


def plot_perturbation_along(along: pd.DataFrame) -> Axes:
    """λ_max, the gradient norm and the perturbation estimate along a run, each divided by its
    value at the first checkpoint (log y), so their shapes can be compared."""
    _, ax = plt.subplots(figsize=(7.5, 4))
    for column, label in (("lambda_max", "λ_max"), ("grad_norm", "gradient norm ‖∇L‖"),
                          ("perturbation estimate", "perturbation estimate max|ΔL|/ε")):
        ax.plot(along["step"], along[column] / along[column].iloc[0], marker="o", markersize=3,
                label=label)
    ax.set(xlabel="training step", ylabel="value / value at step 0", yscale="log",
           title="The perturbation estimate follows the gradient, not λ_max")
    ax.legend()
    return ax


def plot_alpha_sweep(sweep: pd.DataFrame) -> Figure:
    """λ_max and ε-sharpness of one function against Dinh et al.'s rescaling factor α (log-log),
    α = 1 (the trained parameters) marked. ``sweep`` is indexed by α."""
    fig, (ax_lam, ax_eps) = plt.subplots(1, 2, figsize=(12, 3.8))
    ax_lam.loglog(sweep.index, sweep["λ_max"], marker="o")
    ax_eps.loglog(sweep.index, sweep["ε-sharpness"], marker="o", color=PALETTE[1])
    for ax, name in ((ax_lam, "λ_max"), (ax_eps, "ε-sharpness (%), ε = 1e-3")):
        _edge_line(ax, 1.0, "α = 1 (trained)", vertical=True)
        ax.set(xlabel="rescaling factor α", ylabel=name,
               title=f"{name.split(' (')[0]} of one and the same function")
        ax.legend()
    return fig


def plot_slices_1d(offsets: np.ndarray, slices: Mapping[tuple[str, str], np.ndarray],
                   names: Sequence[str]) -> Figure:
    """One panel per kind of direction (raw, filter-normalized): the loss along the slice of
    each network in ``names`` (the first solid, the others dashed), log y, shared."""
    kinds = list(dict.fromkeys(kind for kind, _ in slices))
    fig, axes = plt.subplots(1, len(kinds), figsize=(12, 3.8), sharey=True)
    for ax, kind in zip(np.atleast_1d(axes), kinds, strict=True):
        for name, style in zip(names, ["-"] + ["--"] * (len(names) - 1), strict=True):
            ax.plot(offsets, slices[kind, name], linestyle=style, label=name)
        ax.set(xlabel="step a along the direction", ylabel="training loss", yscale="log",
               title=f"1-D slice, {kind} direction")
        ax.legend()
    return fig


def plot_slices_2d(grid: np.ndarray, slices: Mapping[tuple[str, str], np.ndarray]) -> Figure:
    """A 2 × 2 grid of log₁₀-loss contour maps, one per (kind of direction, network), on one
    colour scale."""
    logs = {key: np.log10(losses) for key, losses in slices.items()}
    levels = np.linspace(min(v.min() for v in logs.values()), max(v.max() for v in logs.values()),
                         25)
    fig, axes = plt.subplots(2, 2, figsize=(11, 9), sharex=True, sharey=True)
    for ax, ((kind, name), values) in zip(axes.flat, logs.items(), strict=True):
        contour = ax.contourf(grid, grid, values.T, levels=levels, cmap="viridis")
        ax.set(xlabel="a (first direction)", ylabel="b (second direction)", title=f"{kind}, {name}")
    fig.colorbar(contour, ax=axes, format="%.1f",
                 label="log₁₀ training loss (same scale in all panels)")
    fig.suptitle("2-D loss slices of one function in two parametrizations", fontweight="bold")
    return fig
