"""Lesson 01's figures: the quadratic's eigen-directions, and full-batch GD sharpening up to its
edge 2/η.

Every function receives numbers — a :class:`~edutools.ground.theory.quadratic.QuadraticRun`, a
training record, an :class:`~edutools.engine.experiments.cohen_eos.EdgeRun`, step losses — and
draws; none trains or computes a curvature. Functions that take ``figure=`` draw into that empty
figure (as :class:`edutools.face.live.LiveFigure` asks) and otherwise make one; each returns it.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from edutools.engine.experiments.cohen_eos import EdgeRun, LossRises
from edutools.engine.experiments.self_stabilization import CycleSummary, StabilizationCycle
from edutools.face.panels import Panel
from edutools.face.plots.style import EDGE_COLOR, PALETTE, plot_against_edge, plot_loss_curves
from edutools.ground.theory import gd_edge
from edutools.ground.theory.quadratic import QuadraticRun, regime, spectral_radius

__all__ = ["plot_edge_units", "plot_loss_at_edge", "plot_self_stabilization", "plot_sharpening",
           "show_gd_edge_run", "show_quadratic_directions"]


def _new(figure: Figure | None, figsize: tuple[float, float]) -> Figure:
    return plt.figure(figsize=figsize) if figure is None else figure


def show_quadratic_directions(run: QuadraticRun, lr: float, **_: object) -> Figure:
    """Left: |θ_i| per GD step for each eigen-direction (log scale), labelled with ηλ and its
    regime. Right: the contraction factor |1 − ηλ| against ηλ, the limit 1 and the edge ηλ = 2,
    with each direction's point."""
    figure, (ax_path, ax_factor) = plt.subplots(1, 2, figsize=(12, 3.8))
    for i, curvature in enumerate(run.curvatures):
        ax_path.plot(np.abs(run.positions[:, i]), marker="o", markersize=3,
                     label=f"λ = {curvature:g}: ηλ = {lr * curvature:.2f}, "
                           f"{regime(curvature, lr=lr)}")
    ax_path.set(yscale="log", xlabel="GD step", ylabel="|θ_i|  (log scale)",
                title=f"Each eigen-direction on its own, η = {lr:g}")
    ax_path.legend()
    h = np.linspace(0, 3, 301)
    ax_factor.plot(h, spectral_radius(h), color="0.3", label="|1 − ηλ|")
    ax_factor.axhline(1, color=EDGE_COLOR, linestyle="--", linewidth=1.3,
                      label="stability limit 1")
    ax_factor.axvline(2, color=PALETTE[1], linestyle="--", linewidth=1.3, label="edge ηλ = 2")
    for curvature in run.curvatures:
        ax_factor.plot(lr * curvature, abs(1 - lr * curvature), "o", markersize=8)
    ax_factor.set(xlabel="ηλ", ylabel="factor per step", ylim=(0, 2),
                  title="Contraction factor of each direction")
    ax_factor.legend(loc="upper left")
    figure.tight_layout()
    return figure


def plot_sharpening(record: pd.DataFrame, *, lr: float, measure_every: int,
                    figure: Figure | None = None) -> Figure:
    """Left: λ_max against the edge 2/η. Right: the training loss at the measurements."""
    figure = _new(figure, (13, 4))
    ax_sharp, ax_loss = figure.subplots(1, 2)
    plot_against_edge(record, "lambda_max", gd_edge(lr), ax=ax_sharp,
                      title=f"Full-batch GD, η = {lr}: λ_max rises to 2/η and stays")
    plot_loss_curves(record, columns=("train_loss",), ax=ax_loss,
                     title=f"Training loss (measured every {measure_every} steps)")
    return figure


def plot_loss_at_edge(step_losses: np.ndarray, rises: LossRises, *, window: int = 300) -> Figure:
    """Left: the loss at every step (log scale) with the step λ_max reached the edge. Right: the
    ``window`` steps after it, the steps followed by a rise marked."""
    figure, (ax_all, ax_zoom) = plt.subplots(1, 2, figsize=(13, 4))
    crossing = rises.crossing
    ax_all.plot(step_losses, linewidth=1)
    ax_all.axvline(crossing, color=EDGE_COLOR, linestyle="--", linewidth=1.3,
                   label=f"λ_max reaches 0.95·2/η (step {crossing})")
    ax_all.set(yscale="log", xlabel="GD step", ylabel="training loss", title="Loss at every step")
    ax_all.legend()
    shown = slice(crossing, min(crossing + window, len(step_losses)))
    steps, losses, up = np.arange(len(step_losses))[shown], step_losses[shown], rises.rises[shown]
    ax_zoom.plot(steps, losses, linewidth=1, marker=".", markersize=3)
    # The last step has no "next step": rises is one shorter than the losses.
    ax_zoom.plot(steps[:len(up)][up], losses[:len(up)][up], "o", color=PALETTE[1], markersize=4,
                 label="the loss rose at the next step")
    ax_zoom.set(xlabel="GD step", ylabel="training loss",
                title=f"Zoom: {window} steps just after reaching the edge")
    ax_zoom.legend()
    figure.tight_layout()
    return figure


def show_gd_edge_run(run: EdgeRun, **_: object) -> Figure:
    """The η slider's drawing: λ_max against 2/η, and the loss at every step (η from the run,
    partial or final)."""
    lr = run.lr
    figure, (ax_sharp, ax_loss) = plt.subplots(1, 2, figsize=(13, 4))
    plot_against_edge(run.record, "lambda_max", gd_edge(lr), ax=ax_sharp,
                      title=f"Full-batch GD, η = {lr}", diverged_at=run.diverged_at)
    ax_loss.plot(run.step_losses, linewidth=1)
    ax_loss.set(yscale="log", xlabel="GD step", ylabel="training loss",
                title="Loss at every step")
    figure.tight_layout()
    return figure


def plot_edge_units(records: Mapping[float, pd.DataFrame], *,
                    figure: Figure | None = None) -> Figure:
    """λ_max·η/2 against the step for each η (``records``: η → training record), with the edge
    at 1 — every run in units of its own edge."""
    figure = _new(figure, (8, 4))
    ax = figure.subplots()
    for lr, record in sorted(records.items()):
        ax.plot(record["step"], record["lambda_max"] * lr / 2, label=f"η = {lr}")
    ax.axhline(1, color=EDGE_COLOR, linestyle="--", linewidth=1.3, label="edge (λ_max = 2/η)")
    ax.set(xlabel="GD step", ylabel="λ_max · η/2", title="Every run meets its own edge 2/η")
    ax.legend()
    return figure


def plot_self_stabilization(cycle: StabilizationCycle, summary: CycleSummary,
                            predicted: pd.Series) -> Figure:
    """Left: ηS/2 at every step of the first cycle, the edge at 1, and the steps of the largest S
    and the largest |x|. Right: |x| (log scale) with the quadratic model's prediction
    ``predicted`` (a Series indexed by step) over its growth phase."""
    figure, (ax_sharp, ax_size) = plt.subplots(1, 2, figsize=(13, 4))
    steps = cycle.record["step"]
    for ax in (ax_sharp, ax_size):
        ax.axvline(summary.sharpness_peak_step, color=PALETTE[2], linestyle=":", linewidth=1.3,
                   label=f"largest S (step {summary.sharpness_peak_step})")
        ax.axvline(summary.displacement_peak_step, color=PALETTE[1], linestyle=":",
                   linewidth=1.3, label=f"largest |x| (step {summary.displacement_peak_step})")
    ax_sharp.plot(steps, cycle.ratio, color=PALETTE[0], label="S·η/2")
    ax_sharp.axhline(1, color=EDGE_COLOR, linestyle="--", linewidth=1.3, label="edge (S = 2/η)")
    ax_sharp.set(xlabel="GD step", ylabel="S · η/2  (S = λ_max)",
                 title=f"η = {cycle.lr:g}: S overshoots the edge, then is pulled back")
    ax_sharp.legend(loc="lower left")
    ax_size.plot(steps, np.abs(cycle.record["displacement"]), color=PALETTE[0],
                 label="measured |x| = |u·∇L| / S")
    ax_size.plot(predicted.index, predicted.to_numpy(), color="0.1", linestyle="--",
                 linewidth=2, zorder=3, label="quadratic model: × |1 − ηS| per step")
    ax_size.set(yscale="log", xlabel="GD step", ylabel="|x|, displacement along u (log scale)",
                title="The oscillation along the top eigenvector")
    ax_size.legend(loc="upper left")
    figure.tight_layout()
    return figure


#: This lesson's slider panels (edutools.face.panels: the precompute and the tests read them).
PANELS = (
    Panel(run="cohen_eos.run_quadratic_directions", show=show_quadratic_directions,
          name="learning rate η (GD on a quadratic)"),
    Panel(run="cohen_eos.gd_edge_run", show=show_gd_edge_run,
          name="learning rate η (GD at the edge of stability)", grid="SLIDER_GRID",
          quick={"num_steps": 200, "measure_every": 50}, sample={"lr": 0.2}),
)
