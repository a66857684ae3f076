"""Lesson 02's figures (SGD, batch size and the edge of stochastic stability).

Each function receives numbers — :class:`~edutools.engine.experiments.eoss.SGDRun` records, the
critical-step table of :mod:`edutools.engine.experiments.critical_lr` — and draws them against
their edges. None trains or measures curvature.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from edutools.engine.experiments.eoss import SGDRun
from edutools.engine.experiments.one_step import OneStepTest
from edutools.face.panels import Panel
from edutools.face.plots.style import EDGE_COLOR, PALETTE, _axes, plot_against_edge

__all__ = ["plot_batch_sharpness", "plot_batch_size_runs", "plot_conservative_sharpening",
           "plot_one_step",
           "plot_critical_lr", "show_batch_size_run"]


def plot_batch_size_runs(runs: Mapping[int, SGDRun], *, ax: Axes | None = None) -> Axes:
    """λ_max of one run per batch size (``runs``: B → run, all at one η) against GD's edge 2/η.

    η, B and the training-set size (which labels the full-batch run as GD) come from each
    run's settings.
    """
    ax = _axes(ax, figsize=(8, 4.2))
    lrs = {run.setting("lr") for run in runs.values()}
    if len(lrs) != 1:
        raise ValueError(f"plot_batch_size_runs draws runs at one η against one edge; got η = "
                         f"{sorted(lrs)}")
    lr = lrs.pop()
    for run in runs.values():
        edge = run.edges.gd
        batch_size = run.setting("batch_size")
        full_batch = batch_size == run.setting("num_train")
        ax.plot(run.record["step"], run.record["lambda_max"],
                label="full batch (GD)" if full_batch else f"B = {batch_size}")
    ax.axhline(edge, color=EDGE_COLOR, linestyle="--", linewidth=1.3, label=f"edge 2/η = {edge:g}")
    ax.set(xlabel="step", ylabel="λ_max (full-batch Hessian)",
           title=f"Same network, same η = {lr}: smaller batches stop lower")
    ax.legend()
    return ax


def show_batch_size_run(result: SGDRun, **_: object) -> Figure:
    """The batch-size slider's figure: λ_max against 2/η, and the loss at every step (B and η
    from the run's settings, partial or final)."""
    batch_size, lr = result.setting("batch_size"), result.setting("lr")
    fig, (ax_sharp, ax_loss) = plt.subplots(1, 2, figsize=(13, 4))
    plot_against_edge(result.record, "lambda_max", result.edges.gd, ax=ax_sharp,
                      title=f"λ_max with B = {batch_size}, η = {lr}",
                      diverged_at=result.diverged_at)
    ax_loss.plot(result.step_losses, linewidth=0.6, alpha=0.6, label="mini-batch loss")
    ax_loss.plot(result.record["step"], result.record["train_loss"], linewidth=2,
                 label="full training loss")
    ax_loss.set(yscale="log", xlabel="step", ylabel="loss", title="Loss")
    ax_loss.legend()
    fig.tight_layout()
    return fig


def plot_critical_lr(table: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Measured critical step η* against batch size, with 2/BS, 2/λ_max and 2B/tr(H).

    ``table``: :func:`~edutools.engine.experiments.critical_lr.critical_lr_sweep`'s output (one
    row per batch size; columns ``batch_size``, ``lr_star``, ``batch_sharpness``, ``lambda_max``,
    ``trace``).
    """
    ax = _axes(ax, figsize=(8, 4.5))
    B = table["batch_size"].to_numpy()
    lam, trace = table["lambda_max"].iloc[0], table["trace"].iloc[0]
    ax.plot(B, table["lr_star"], "o-", color="black", label="measured η* (bisection)", zorder=3)
    ax.plot(B, 2 / table["batch_sharpness"], "s--", color=PALETTE[1], markersize=5,
            label="2 / batch sharpness")
    ax.axhline(2 / lam, color=EDGE_COLOR, linestyle="--", linewidth=1.3,
               label="2 / λ_max  (full-batch edge)")
    ax.plot(B, 2 * B / trace, ":", color=PALETTE[2], label="2B / tr(H)  (noise edge)")
    ax.set(xscale="log", yscale="log", xlabel="batch size B", ylabel="critical step size η*",
           ylim=(0.5 * table["lr_star"].min(), 3 / lam),
           title="Linear regression: where SGD starts to diverge")
    ax.legend()
    return ax


def plot_batch_sharpness(record: pd.DataFrame, *, edge: float, lr: float, batch_size: int,
                         ax: Axes | None = None) -> Axes:
    """Batch sharpness against 2/η, with λ_max of the full batch for comparison.

    Works on a partial record too (for a live figure): rows without a batch sharpness are
    skipped.
    """
    ax = _axes(ax, figsize=(8, 4.2))
    measured = record.dropna(subset=["batch_sharpness"]) if "batch_sharpness" in record else None
    if measured is not None and len(measured):
        plot_against_edge(record, "batch_sharpness", edge, ax=ax, label="batch sharpness",
                          title=f"SGD, B = {batch_size}, η = {lr}: batch sharpness meets 2/η")
    else:
        ax.axhline(edge, color=EDGE_COLOR, linestyle="--", linewidth=1.3,
                   label=f"edge 2/η = {edge:.3g}")
        ax.set(xlabel="training step", title=f"SGD, B = {batch_size}, η = {lr}")
    ax.plot(record["step"], record["lambda_max"], color=PALETTE[2], label="λ_max (full batch)")
    ax.set_ylabel("curvature")
    ax.legend()
    return ax


def plot_conservative_sharpening(runs: Mapping[str, SGDRun], points: Mapping[str, pd.Series], *,
                                 edge: float, level: float) -> Figure:
    """λ_max·η/2 of GD and SGD against the step, and against the training loss.

    ``runs``: name → run; ``points``: name → the record row where that run first reached
    training loss ≤ ``level`` (marked with a dot on the right panel).
    """
    fig, (ax_step, ax_loss) = plt.subplots(1, 2, figsize=(13, 4))
    for name, run in runs.items():
        rec = run.record
        ax_step.plot(rec["step"], rec["lambda_max"] / edge, label=name)
        ax_loss.plot(rec["train_loss"], rec["lambda_max"] / edge, ".-", label=name)
        point = points[name]
        ax_loss.plot(point["train_loss"], point["lambda_max"] / edge, "o", markersize=9,
                     color="black")
    for ax in (ax_step, ax_loss):
        ax.axhline(1, color=EDGE_COLOR, linestyle="--", linewidth=1.3, label="edge 2/η")
        ax.set_ylabel("λ_max · η/2")
        ax.legend()
    ax_step.set(xscale="log", xlabel="step (log scale)", title="Same start, same η")
    ax_loss.set(xscale="log", xlabel="training loss (log scale, decreasing to the right)",
                title=f"At equal loss (dots: first time ≤ {level})")
    ax_loss.invert_xaxis()
    fig.tight_layout()
    return fig


def plot_one_step(test: OneStepTest) -> Figure:
    """Left: each batch's loss change after its own SGD step against η·q/2, with the predicted
    threshold 1 dashed. Right: the actual change against the second-order prediction."""
    table = test.table
    fig, (ax_ratio, ax_pred) = plt.subplots(1, 2, figsize=(12, 4.2))
    colors = np.where(table["predicted rise"] == table["rose"], PALETTE[0], PALETTE[1])
    ax_ratio.scatter(table["η·q/2"], table["actual change"], s=12, c=colors)
    ax_ratio.axvline(1.0, ls="--", color=EDGE_COLOR, label="ηq = 2: predicted threshold")
    ax_ratio.axhline(0.0, color=EDGE_COLOR, lw=0.8)
    ax_ratio.set(xlabel="η·q_B / 2,  q_B = g_BᵀH_Bg_B / ‖g_B‖²",
                 ylabel="L_B after − before the step",
                 title=f"Prediction right on {test.agreement:.0%} of batches (red: wrong)")
    ax_ratio.legend()
    low = min(table["predicted change"].min(), table["actual change"].min())
    high = max(table["predicted change"].max(), table["actual change"].max())
    ax_pred.plot([low, high], [low, high], ls="--", color=EDGE_COLOR, label="equal")
    ax_pred.scatter(table["predicted change"], table["actual change"], s=12, color=PALETTE[0])
    ax_pred.set(xlabel="second-order prediction −η‖g‖² + ½η²gᵀHg",
                ylabel="actual change of L_B",
                title=f"One step per batch, η = {test.lr:g}, B = {test.batch_size}")
    ax_pred.legend()
    fig.tight_layout()
    return fig


#: This lesson's slider panels (edutools.face.panels: the precompute and the tests read them).
PANELS = (
    Panel(run="eoss.run_teacher", show=show_batch_size_run, name="batch size B (lesson-01 network)",
          grid="SLIDER_GRID", quick={"num_steps": 300}, sample={"batch_size": 50, "lr": 0.2}),
)
