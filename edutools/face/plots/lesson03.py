"""Lesson 03's figures (momentum): the quadratic's stable regions, the full-batch edge, the two
plateaus of SGD with momentum, and the Jelassi–Li runs.

Each function receives numbers (runs from :mod:`edutools.engine.experiments.momentum_eoss`,
:mod:`~edutools.engine.experiments.heavy_ball` and :mod:`~edutools.engine.experiments.jelassi_li`,
and the edges) and draws. The closed-form edges come from :mod:`edutools.ground.theory`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from edutools.engine.experiments.eoss import SGDRun
from edutools.engine.experiments.heavy_ball import QuadraticComparison
from edutools.engine.experiments.jelassi_li import PatchCurve
from edutools.engine.experiments.momentum_eoss import settled
from edutools.face.plots.curvature import plot_stability_region
from edutools.face.plots.style import EDGE_COLOR, PALETTE, _axes, plot_against_edge
from edutools.ground import theory
from edutools.ground.theory.quadratic import StabilityRegion

__all__ = ["plot_full_batch_momentum", "plot_momentum_plateau", "plot_patch_runs",
           "plot_plateaus", "show_full_batch_momentum", "show_momentum_batch",
           "show_patch_momentum", "show_quadratics", "show_sgdm"]


def _edges(lr: float, momentum: float) -> tuple[float, float]:
    """(small-batch edge 2(1−β)/η, full-batch edge 2(1+β)/η)."""
    return theory.small_batch_momentum_edge(lr, momentum), theory.momentum_edge(lr, momentum)


def show_quadratics(result: QuadraticComparison, *, regions: Mapping[bool, StabilityRegion],
                    **_: object) -> Figure:
    """Heavy ball's and Nesterov's stable regions with the learner's point (η·λ, β), and
    |θ_t| of the three rules on that direction. ``regions``: nesterov flag → region."""
    lr, momentum, curvature = result.lr, result.momentum, result.curvature
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for ax, nesterov in zip(axes[:2], (False, True), strict=True):
        mesh = plot_stability_region(ax, regions[nesterov], point=(lr * curvature, momentum))
    fig.colorbar(mesh, ax=axes[1], label="convergence factor per step")
    for name, run in result.runs.items():
        axes[2].plot(np.abs(run.positions[:, 0]) + 1e-30, label=f"{name}: {result.regimes[name]}")
    axes[2].set(yscale="log", ylim=(1e-8, 1e8), xlabel="step", ylabel="|θ_t| (log scale)",
                title=f"λ = {curvature:g}, η = {lr}, β = {momentum:.2f}")
    axes[2].legend()
    fig.tight_layout()
    return fig


def plot_full_batch_momentum(runs: Mapping[str, SGDRun], edges: Mapping[str, float], *,
                             lr: float, momentum: float) -> Figure:
    """λ_max of full-batch heavy ball and Nesterov against their edges (and GD's 2/η), and the
    training loss. ``runs`` and ``edges`` are keyed by rule name."""
    fig, (ax_sharp, ax_loss) = plt.subplots(1, 2, figsize=(13, 4.2))
    for (name, run), color in zip(runs.items(), PALETTE, strict=False):
        plot_against_edge(run.record, "lambda_max", edges[name], ax=ax_sharp, color=color,
                          label=f"λ_max, {name}", edge_label=f"{name} edge",
                          title=f"Full batch, η = {lr}, β = {momentum}")
        ax_loss.plot(run.step_losses, color=color, label=name)
    gd_edge = theory.gd_edge(lr)
    ax_sharp.axhline(gd_edge, color=EDGE_COLOR, linestyle=":", label=f"GD edge 2/η = {gd_edge:.3g}")
    ax_sharp.legend()
    ax_loss.set(yscale="log", xlabel="step", ylabel="training loss", title="Training loss")
    ax_loss.legend()
    fig.tight_layout()
    return fig


def show_full_batch_momentum(result: SGDRun, *, momentum: float, lr: float,
                             ax: Axes | None = None, **_: object) -> Axes:
    """λ_max of one full-batch heavy-ball run against 2(1+β)/η (and GD's 2/η, dotted)."""
    edge = theory.momentum_edge(lr, momentum)
    ax = plot_against_edge(result.record, "lambda_max", edge, ax=ax, edge_label="edge 2(1+β)/η",
                           title=f"Full-batch heavy ball, η = {lr}, β = {momentum:.2f}",
                           diverged_at=result.diverged_at)
    ax.axhline(theory.gd_edge(lr), color=EDGE_COLOR, linestyle=":", label="GD edge 2/η")
    ax.legend()
    return ax


def plot_plateaus(plateaus: pd.DataFrame, *, lr: float, momentum: float,
                  ax: Axes | None = None) -> Axes:
    """Settled batch sharpness and λ_max per batch size (``plateaus``: index batch size, columns
    ``batch_sharpness``, ``lambda_max``) against 2(1−β)/η, 2/η and 2(1+β)/η."""
    ax = _axes(ax, figsize=(10, 4.8))
    lower, upper = _edges(lr, momentum)
    batch_sizes = plateaus.index.to_numpy()
    ax.axhline(upper, color=PALETTE[1], linestyle="--",
               label=f"2(1+β)/η = {upper:.3g}  (full-batch edge)")
    ax.axhline(theory.gd_edge(lr), color=EDGE_COLOR, linestyle=":",
               label=f"2/η = {theory.gd_edge(lr):.3g}  (plain SGD's edge)")
    ax.axhline(lower, color=PALETTE[0], linestyle="--",
               label=f"2(1−β)/η = {lower:.3g}  (small-batch edge)")
    ax.plot(batch_sizes, plateaus["batch_sharpness"], "o", color=PALETTE[0], markersize=9,
            label="settled batch sharpness")
    ax.plot(batch_sizes, plateaus["lambda_max"], "s", color=PALETTE[1], markersize=8,
            label="settled λ_max")
    ax.set(xscale="log", xlabel="batch size B (largest = full batch)", ylabel="curvature",
           xlim=(0.6 * batch_sizes.min(), 1.6 * batch_sizes.max()), ylim=(0, 1.15 * upper),
           title=f"Momentum's two plateaus (η = {lr}, β = {momentum})")
    ax.set_xticks(batch_sizes, [str(B) for B in batch_sizes])
    ax.minorticks_off()
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.figure.tight_layout()
    return ax


def plot_momentum_plateau(record: pd.DataFrame, *, lr: float, momentum: float, batch_size: int,
                          log_scale: bool = True, ax: Axes | None = None) -> Axes:
    """Batch sharpness against 2(1−β)/η and λ_max against 2(1+β)/η for one run of SGD with
    momentum (a partial record is fine: for a live figure)."""
    ax = _axes(ax, figsize=(8, 4.2))
    lower, upper = _edges(lr, momentum)
    if "batch_sharpness" in record:
        plot_against_edge(record, "batch_sharpness", lower, ax=ax, edge_label="2(1−β)/η",
                          label="batch sharpness",
                          title=f"β = {momentum}, η = {lr}, B = {batch_size}")
    else:
        ax.axhline(lower, color=EDGE_COLOR, linestyle="--", label=f"2(1−β)/η = {lower:.3g}")
        ax.set(xlabel="training step", title=f"β = {momentum}, η = {lr}, B = {batch_size}")
    ax.plot(record["step"], record["lambda_max"], marker="s", markersize=3, color=PALETTE[2],
            label="λ_max")
    ax.axhline(upper, color=PALETTE[1], linestyle="--", label=f"2(1+β)/η = {upper:.3g}")
    ax.set_ylabel("curvature (log scale)" if log_scale else "curvature")
    if log_scale:
        ax.set_yscale("log")
    ax.legend()
    return ax


def show_momentum_batch(result: SGDRun, *, momentum: float, batch_size: int,
                        **_: object) -> Axes:
    """The momentum × batch-size panel's figure: one run's batch sharpness and λ_max against
    2(1−β)/η and 2(1+β)/η (log scale), with their settled values (last third) in the title."""
    lr, num_train = result.config["lr"], result.config.get("num_train")
    ax = plot_momentum_plateau(result.record, lr=lr, momentum=momentum, batch_size=batch_size)
    lower, upper = _edges(lr, momentum)
    values = settled(result)
    parts = [f"λ_max/upper {values['lambda_max'] / upper:.2f}"]
    if np.isfinite(values["batch_sharpness"]):
        parts.insert(0, f"BS/lower {values['batch_sharpness'] / lower:.2f}")
    full = " (full batch)" if num_train is not None and batch_size >= num_train else ""
    ax.set_title(f"β = {momentum}, η = {lr:g}, B = {batch_size}{full}\n"
                 f"settled: {', '.join(parts)}")
    return ax


def show_sgdm(result: SGDRun, *, batch_size: int, lr: float, momentum: float,
              **_: object) -> Axes:
    """The batch-size slider's figure: batch sharpness and λ_max against both edges."""
    _, ax = plt.subplots(figsize=(8, 4.2))
    record = result.record
    lower, upper = _edges(lr, momentum)
    if "batch_sharpness" in record:
        ax.plot(record["step"], record["batch_sharpness"], "o-", markersize=3,
                label="batch sharpness")
    ax.plot(record["step"], record["lambda_max"], "s-", markersize=3, label="λ_max")
    ax.axhline(upper, color=PALETTE[1], linestyle="--", label="2(1+β)/η")
    ax.axhline(lower, color=PALETTE[0], linestyle="--", label="2(1−β)/η")
    ax.set(xlabel="step", ylabel="curvature",
           title=f"SGD with momentum β = {momentum}, η = {lr}, B = {batch_size}")
    ax.legend()
    return ax


def plot_patch_runs(runs: Mapping[tuple[str, int], PatchCurve], rules: Sequence[str], *,
                    first_seed: int) -> Figure:
    """Feature alignment and small-margin test accuracy during training, one colour per rule
    (``runs``: (rule, seed) → curve; ``rules`` orders the colours; ``first_seed`` labels)."""
    fig, (ax_align, ax_acc) = plt.subplots(1, 2, figsize=(13, 4.2))
    seeds = sorted({seed for _, seed in runs})
    for (name, seed), run in runs.items():
        color = PALETTE[list(rules).index(name)]
        label = name if seed == first_seed else None
        ax_align.plot(run.record["step"], run.record["alignment"], color=color, label=label)
        ax_acc.plot(run.record["step"], run.record["small_margin_acc"], color=color, label=label)
    ax_align.set(xlabel="step", ylabel="feature alignment  max_r ⟨w_r, w*⟩",
                 title=f"How much of the feature is learned ({len(seeds)} seeds)")
    ax_acc.set(xlabel="step", ylabel="small-margin test accuracy", ylim=(0.4, 1.02),
               title=f"Fresh small-margin examples ({len(seeds)} seeds)")
    ax_align.legend()
    fig.tight_layout()
    return fig


def show_patch_momentum(result: PatchCurve, *, reference: PatchCurve, momentum: float,
                        **_: object) -> Figure:
    """The γ slider's figure: feature alignment and small-margin accuracy of the run at γ
    against the plain-GD ``reference``."""
    fig, (ax_align, ax_acc) = plt.subplots(1, 2, figsize=(12, 3.8))
    for curve, label in ((reference, "GD (γ = 0)"), (result, f"γ = {momentum:.2f}")):
        ax_align.plot(curve.record["step"], curve.record["alignment"], label=label)
        ax_acc.plot(curve.record["step"], curve.record["small_margin_acc"], label=label)
    ax_align.set(xlabel="step", ylabel="feature alignment", title="Feature learned")
    ax_acc.set(xlabel="step", ylabel="small-margin test accuracy", ylim=(0.4, 1.02),
               title=f"final: {result.small_margin_test_acc:.3f}")
    ax_align.legend()
    fig.tight_layout()
    return fig
