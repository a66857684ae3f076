"""Lesson 06's figures: SAM on a quadratic, SAM's moving edge on a network, SGD vs SAM vs ASAM on
noisy labels, the cost per step, and SAM with momentum against lesson 03's plateaus.

Every function receives numbers (result dataclasses, records, tables) and draws; none trains or
computes a curvature. Functions that take ``figure=`` draw into that empty figure (as
:class:`edutools.face.live.LiveFigure` asks) and otherwise make one; each returns its figure.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from edutools.engine.experiments.long_bartlett import SamEdgeRun, SamQuadraticRun
from edutools.engine.experiments.sam_momentum import MomentumRun
from edutools.face.panels import Panel
from edutools.face.plots.style import EDGE_COLOR, PALETTE

__all__ = ["plot_cost", "plot_equal_loss", "plot_generalization", "plot_momentum_runs",
           "plot_sam_edge_runs", "plot_sam_quadratic", "show_sam_edge_run"]


def _new(figure: Figure | None, figsize: tuple[float, float]) -> Figure:
    return plt.figure(figsize=figsize) if figure is None else figure


def plot_sam_quadratic(run: SamQuadraticRun) -> Figure:
    """Left: |θ_i| per SAM step, one line per eigen-direction (log scale). Middle: SAM's edge
    λ_SAM(‖g_t‖) per step against the λ_i and 2/η. Right: measured against predicted factors
    θ_{t+1,i}/θ_{t,i}, on the diagonal if 1 − ηλ − ηρλ²/‖g‖ is right."""
    figure, (ax_path, ax_edge, ax_factor) = plt.subplots(1, 3, figsize=(15, 4))
    for i, curvature in enumerate(run.curvatures):
        ax_path.plot(np.abs(run.positions[:, i]), color=PALETTE[i], label=f"λ = {curvature:g}")
        ax_edge.axhline(curvature, color=PALETTE[i], linewidth=1, label=f"λ = {curvature:g}")
    ax_path.set(yscale="log", xlabel="SAM step", ylabel="|θ_i|  (log scale)",
                title=f"SAM on a quadratic, η = {run.lr:g}, ρ = {run.rho:g}")
    ax_path.legend()
    ax_edge.plot(np.arange(1, len(run.grad_norms) + 1), run.edges, color="black",
                 label="λ_SAM(‖g_t‖)")
    ax_edge.axhline(2 / run.lr, color=EDGE_COLOR, linestyle="--", linewidth=1.3,
                    label=f"GD edge 2/η = {2 / run.lr:g}")
    ax_edge.set(xlabel="SAM step", ylabel="curvature", ylim=(0, 1.15 * 2 / run.lr),
                title="SAM's edge falls with ‖g‖")
    ax_edge.legend(fontsize=8)
    for i, curvature in enumerate(run.curvatures):
        ax_factor.plot(run.predicted_factors[:, i], run.measured_factors[:, i], "o",
                       markersize=3, color=PALETTE[i], label=f"λ = {curvature:g}")
    low = float(np.nanmin(run.predicted_factors))
    high = float(np.nanmax(run.predicted_factors))
    ax_factor.plot([low, high], [low, high], "--", color=EDGE_COLOR, linewidth=1,
                   label="measured = predicted")
    ax_factor.set(xlabel="predicted 1 − ηλ − ηρλ²/‖g‖", ylabel="measured θ_{t+1}/θ_t",
                  title="Factor per step, every step")
    ax_factor.legend(fontsize=8)
    figure.tight_layout()
    return figure


def _edge_panel(ax: Axes, run: SamEdgeRun, *, title: str) -> None:
    record = run.record
    ax.plot(record["step"], record["lambda_max"], marker="o", markersize=3, color=PALETTE[0],
            label="λ_max (measured)")
    ax.plot(record["step"], record["sam_edge"], color="black", linestyle="--", linewidth=1.3,
            label="SAM edge λ_SAM(η, ρ, ‖g‖)")
    ax.axhline(2 / run.lr, color=EDGE_COLOR, linestyle=":", linewidth=1.5,
               label=f"GD edge 2/η = {2 / run.lr:g}")
    if run.diverged_at is not None:
        ax.axvline(run.diverged_at, color=PALETTE[1], linestyle=":")
    ax.set(xlabel="step", ylabel="curvature", title=title, ylim=(0, 1.1 * 2 / run.lr))
    ax.legend(fontsize=8)


def plot_sam_edge_runs(runs: Mapping[float, SamEdgeRun], *,
                       figure: Figure | None = None) -> Figure:
    """One panel per ρ (``runs``: ρ → run): λ_max, the moving edge λ_SAM and 2/η; a last panel
    with λ_max/λ_SAM and λ_max·η/2 for every run (1 = on that edge)."""
    figure = _new(figure, (5.2 * (len(runs) + 1), 4))
    axes = figure.subplots(1, len(runs) + 1)
    for ax, (rho, run) in zip(axes[:-1], sorted(runs.items()), strict=True):
        _edge_panel(ax, run, title=f"Full-batch SAM, η = {run.lr:g}, ρ = {rho:g}")
    ax_ratio = axes[-1]
    for i, (rho, run) in enumerate(sorted(runs.items())):
        record = run.record
        ax_ratio.plot(record["step"], record["lambda_over_sam_edge"], color=PALETTE[i],
                      label=f"ρ = {rho:g}: λ_max / λ_SAM")
        ax_ratio.plot(record["step"], record["lambda_over_gd_edge"], color=PALETTE[i],
                      linestyle=":", label=f"ρ = {rho:g}: λ_max·η/2")
    ax_ratio.axhline(1, color=EDGE_COLOR, linestyle="--", linewidth=1.3, label="on the edge")
    ax_ratio.set(xlabel="step", ylabel="λ_max in units of an edge", ylim=(0, 1.4),
                 title="Which edge does λ_max sit on?")
    ax_ratio.legend(fontsize=8)
    figure.tight_layout()
    return figure


def show_sam_edge_run(run: SamEdgeRun, **_: object) -> Figure:
    """The ρ/η sliders' drawing: λ_max against λ_SAM and 2/η, and the loss at every step (ρ and
    η from the run, partial or final)."""
    rho, lr = run.rho, run.lr
    figure, (ax_edge, ax_loss) = plt.subplots(1, 2, figsize=(13, 4))
    _edge_panel(ax_edge, run, title=f"Full-batch SAM, η = {lr:g}, ρ = {rho:g}")
    if len(run.step_losses):
        ax_loss.plot(run.step_losses, linewidth=1)
    else:  # a partial run (while training): the measured losses only
        ax_loss.plot(run.record["step"], run.record["train_loss"], marker="o", markersize=3)
    ax_loss.set(yscale="log", xlabel="step", ylabel="training loss", title="Training loss")
    figure.tight_layout()
    return figure


def plot_generalization(table: pd.DataFrame, records: Mapping[tuple[str, int], pd.DataFrame]
                        ) -> Figure:
    """Left: validation accuracy per epoch (thin: each seed; thick: mean over seeds) per method.
    Then, per method, one dot per seed: final validation accuracy, fraction of flipped labels
    memorized, λ_max and ε-sharpness at the end."""
    methods = list(dict.fromkeys(table["method"]))
    figure, axes = plt.subplots(1, 5, figsize=(20, 4))
    ax_curve = axes[0]
    for i, name in enumerate(methods):
        curves = [rec.set_index("epoch")["val_acc"] for (m, _), rec in records.items()
                  if m == name]
        for curve in curves:
            ax_curve.plot(curve.index, curve.to_numpy(), color=PALETTE[i], alpha=0.3,
                          linewidth=0.8)
        mean = pd.concat(curves, axis=1).mean(axis=1)
        ax_curve.plot(mean.index, mean.to_numpy(), color=PALETTE[i], linewidth=2.2, label=name)
    ax_curve.set(xlabel="epoch", ylabel="validation accuracy (clean labels)", ylim=(0.6, 1.0),
                 title="Learning, then memorizing")
    ax_curve.legend(fontsize=8)
    panels = [("val_acc", "final validation accuracy", "Final validation accuracy"),
              ("memorized", "flipped labels memorized", "Flipped labels memorized"),
              ("lambda_max", "λ_max at the end", "Flatness: λ_max at the end"),
              ("eps_sharpness", "ε-sharpness at the end (%)", "Flatness: ε-sharpness (Keskar)")]
    for ax, (column, label, title) in zip(axes[1:], panels, strict=True):
        for i, name in enumerate(methods):
            values = table.loc[table["method"] == name, column].to_numpy(dtype=float)
            jitter = np.linspace(-0.12, 0.12, len(values)) if len(values) > 1 else [0.0]
            ax.plot(i + np.asarray(jitter), values, "o", color=PALETTE[i], alpha=0.8)
            ax.plot([i - 0.25, i + 0.25], [values.mean()] * 2, color=PALETTE[i], linewidth=2.5)
        ax.set_xticks(range(len(methods)), [m.split(",")[0] for m in methods], rotation=15)
        ax.set(ylabel=label, title=title)
    figure.suptitle(f"Noisy digits over {table['seed'].nunique()} seed(s): dots = seeds, "
                    "bars = means", fontweight="bold")
    figure.tight_layout()
    return figure


def plot_equal_loss(records: Mapping[tuple[str, int], pd.DataFrame]) -> Figure:
    """``records``: (method, seed) → record with ``train_loss``, ``memorized`` and ``val_acc``.
    Left: memorized fraction against training loss; right: validation accuracy against training
    loss — one thin line per seed, one colour per method, training loss falling to the right.
    Where the methods' lines lie on top of each other, they differ only in how fast they fit."""
    methods = list(dict.fromkeys(name for name, _ in records))
    figure, (ax_mem, ax_val) = plt.subplots(1, 2, figsize=(13, 4))
    for i, name in enumerate(methods):
        runs = [record for (m, _), record in records.items() if m == name]
        for j, record in enumerate(runs):
            for ax, column in ((ax_mem, "memorized"), (ax_val, "val_acc")):
                ax.plot(record["train_loss"], record[column], color=PALETTE[i], alpha=0.6,
                        linewidth=1, label=name if j == 0 else None)
    lowest = min(float(record["train_loss"].min()) for record in records.values())
    for ax in (ax_mem, ax_val):
        ax.set_xlim(1.3, 0.9 * lowest)  # training loss falls to the right, as training goes on
        ax.set_xlabel("training loss on the noisy labels (falls →)")
        ax.legend(fontsize=8)
    ax_mem.set(ylabel="flipped labels memorized", ylim=(0, 0.8),
               title="Memorization against training loss")
    ax_val.set(ylabel="validation accuracy (clean labels)", ylim=(0.6, 1.0),
               title="Validation accuracy against training loss")
    figure.tight_layout()
    return figure


def plot_cost(cost: pd.DataFrame) -> Figure:
    """``cost`` (index: method) with ``passes_per_step``, ``ms_per_step`` and ``val_acc``.
    Left: passes per step (counted). Middle: wall time per step (measured). Right: validation
    accuracy against wall time per step."""
    figure, (ax_passes, ax_time, ax_trade) = plt.subplots(1, 3, figsize=(16, 4))
    names = list(cost.index)
    colors = [PALETTE[i % len(PALETTE)] for i in range(len(names))]
    positions = np.arange(len(names))
    short = [n.replace(", ", ",\n") for n in names]
    ax_passes.bar(positions, cost["passes_per_step"], color=colors)
    ax_passes.set_xticks(positions, short, fontsize=8)
    ax_passes.set(ylabel="forward+backward passes per step", title="Counted: passes per step")
    ax_time.bar(positions, cost["ms_per_step"], color=colors)
    ax_time.set_xticks(positions, short, fontsize=8)
    ax_time.set(ylabel="wall time per step (ms)", title="Measured: time per step")
    for name, color in zip(names, colors, strict=True):
        ax_trade.plot(cost.loc[name, "ms_per_step"], cost.loc[name, "val_acc"], "o",
                      markersize=9, color=color, label=name)
    ax_trade.set(xlabel="wall time per step (ms)", ylabel="final validation accuracy",
                 title="What the extra cost buys")
    ax_trade.legend(fontsize=7)
    figure.tight_layout()
    return figure


def plot_momentum_runs(runs: Mapping[tuple[str, int], MomentumRun], *,
                       figure: Figure | None = None) -> Figure:
    """``runs``: (optimizer, batch size) → run. Left (full batch): λ_max of SGD and SAM against
    2(1+β)/η and SAM's momentum edge. Right (smallest batch): batch sharpness of SGD and SAM, and
    the curvature SAM's step feels, against 2(1−β)/η and 2(1+β)/η."""
    figure = _new(figure, (13, 4.2))
    ax_full, ax_small = figure.subplots(1, 2)
    sizes = sorted({size for _, size in runs})
    small, full = sizes[0], sizes[-1]
    any_run = next(iter(runs.values()))
    upper = 2 * (1 + any_run.momentum) / any_run.lr
    lower = 2 * (1 - any_run.momentum) / any_run.lr
    for i, name in enumerate(("SGD", "SAM")):
        run = runs.get((name, full))
        if run is not None:
            ax_full.plot(run.record["step"], run.record["lambda_max"], marker="o", markersize=3,
                         color=PALETTE[i], label=f"{name}: λ_max")
            if name == "SAM":
                ax_full.plot(run.record["step"], run.record["sam_momentum_edge"], "--",
                             color=PALETTE[i], label="SAM's momentum edge (moves with ‖g‖)")
        run = runs.get((name, small))
        if run is not None and "batch_sharpness" in run.record:
            ax_small.plot(run.record["step"], run.record["batch_sharpness"], marker="o",
                          markersize=3, color=PALETTE[i], label=f"{name}: batch sharpness")
            if name == "SAM":
                ax_small.plot(run.record["step"], run.record["sam_batch_sharpness"], marker="s",
                              markersize=3, color=PALETTE[i], linestyle=":",
                              label="SAM: curvature its step feels")
    for ax in (ax_full, ax_small):
        ax.axhline(upper, color=EDGE_COLOR, linestyle="--", linewidth=1.3,
                   label=f"2(1+β)/η = {upper:.3g}")
        ax.axhline(lower, color=EDGE_COLOR, linestyle=":", linewidth=1.5,
                   label=f"2(1−β)/η = {lower:.3g}")
        ax.set(xlabel="step", ylabel="curvature", ylim=(0, 1.15 * upper))
        ax.legend(fontsize=8)
    ax_full.set_title(f"Full batch (B = {full}), heavy ball β = {any_run.momentum:g}")
    ax_small.set_title(f"Mini-batches (B = {small}), heavy ball β = {any_run.momentum:g}")
    figure.tight_layout()
    return figure


#: This lesson's slider panels (edutools.face.panels: the precompute and the tests read them).
PANELS = (
    # Full-batch SAM for long_bartlett.SLIDER_STEPS steps.
    Panel(run="long_bartlett.sam_edge_run", show=show_sam_edge_run,
          name="SAM radius ρ × learning rate η", grid="SLIDER_GRID",
          quick={"num_steps": 200, "measure_every": 50}, sample={"rho": 0.05, "lr": 0.2}),
)
