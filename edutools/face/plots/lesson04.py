"""Lesson 04's figures (batch size and generalization). Each receives measured numbers — a
:class:`~edutools.engine.experiments.keskar.BatchComparison`, tables, records — and draws; none
trains or measures curvature.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from edutools.engine.experiments.keskar import BatchComparison
from edutools.engine.experiments.large_batch import SgdRun
from edutools.engine.experiments.warmup import WarmupRun
from edutools.engine.landscape import SliceResult
from edutools.face.panels import Panel
from edutools.face.plots.style import EDGE_COLOR, PALETTE, plot_against_edge
from edutools.ground.theory import noise_scale

__all__ = ["plot_line_between", "plot_noise_scale_curves", "plot_sb_lb_bars",
           "plot_schedules", "plot_training_to_target", "plot_warmup", "show_sgd"]


def plot_training_to_target(comparison: BatchComparison) -> Figure:
    """Two panels against epochs (log axes): SB's and LB's training loss down to the dashed
    target, and their validation accuracy. The target (``stop_at_loss``), the batch sizes and
    the seed come from the runs' settings."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(12, 4))
    target_loss = comparison.small.config["stop_at_loss"]
    seed = comparison.small.config["seed"]
    for name, result in comparison.runs.items():
        record = result.record[result.record["epoch"] > 0]  # log axis: leave out epoch 0
        ax_loss.plot(record["epoch"], record["train_loss"],
                     label=f"{name} (B={result.config['batch_size']})")
        ax_acc.plot(record["epoch"], record["val_acc"], label=name)
    ax_loss.axhline(target_loss, color=EDGE_COLOR, linestyle="--", label=f"target {target_loss}")
    ax_loss.set(xscale="log", yscale="log", xlabel="epoch", ylabel="training loss (cross-entropy)",
                title=f"Training to loss ≤ {target_loss}, seed {seed}")
    ax_acc.set(xscale="log", xlabel="epoch", ylabel="validation accuracy (clean labels)",
               title="Validation accuracy")
    for ax in (ax_loss, ax_acc):
        ax.legend()
    return fig


def plot_sb_lb_bars(tables: Mapping[str, pd.DataFrame], *, small_batch_size: int,
                    target_loss: float) -> Axes:
    """Bars of final validation accuracy, SB beside LB, for every task and seed.

    ``tables`` maps task name → a :func:`~edutools.engine.experiments.keskar.summary_table`.
    """
    _, ax = plt.subplots(figsize=(8, 3.8))
    width = 0.38
    both = pd.concat([table.assign(task=task) for task, table in tables.items()])
    labels = [f"{task}\nseed {seed}" for task, table in tables.items()
              for seed in table["seed"].unique()]
    for shift, name in ((-width / 2, "SB"), (width / 2, "LB")):
        values = both[both["run"] == name]["val_acc"].to_numpy()
        bars = ax.bar(np.arange(len(values)) + shift, values, width,
                      label=f"SB (B={small_batch_size})" if name == "SB" else "LB (full batch)")
        ax.bar_label(bars, fmt="%.3f", fontsize=8)
    ax.set_xticks(np.arange(len(labels)), labels)
    ax.set(ylim=(0.5, 1.0), ylabel="validation accuracy",
           title=f"SB vs LB at training loss ≤ {target_loss}")
    ax.legend(loc="upper left")
    return ax


def plot_line_between(line_train: SliceResult, line_val: SliceResult, *, seed: int) -> Figure:
    """Keskar's 1-D plot: loss (log) and accuracy along θ(α) = α·θ_LB + (1−α)·θ_SB, training
    and validation, with the two solutions marked at α = 0 (SB) and α = 1 (LB)."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(12, 4))
    ax_loss.plot(line_train.alphas, line_train.losses, label="training loss")
    ax_loss.plot(line_val.alphas, line_val.losses, label="validation loss")
    ax_acc.plot(line_train.alphas, line_train.metrics, label="training accuracy")
    ax_acc.plot(line_val.alphas, line_val.metrics, label="validation accuracy")
    for ax in (ax_loss, ax_acc):
        for alpha, name in ((0, "SB"), (1, "LB")):
            ax.axvline(alpha, color=EDGE_COLOR, linestyle="--", linewidth=1)
            ax.text(alpha + 0.03, 0.03, name, transform=ax.get_xaxis_transform())
        ax.set_xlabel("α   (θ = α·θ_LB + (1−α)·θ_SB)")
        ax.legend()
    ax_loss.set(yscale="log", ylabel="cross-entropy", title=f"Loss along the line, seed {seed}")
    ax_acc.set(ylabel="accuracy", title="Accuracy along the line")
    return fig


def plot_noise_scale_curves(runs: Mapping[str, SgdRun]) -> Figure:
    """Training loss (log) and validation accuracy against epochs for each named run; names
    starting with "control" are dashed (a different noise scale). The title's shared noise scale
    η/(B(1−β)) is the first non-control run's, from its settings."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(12, 4))
    shared = next(run for name, run in runs.items() if not name.startswith("control"))
    lr = shared.setting("lr")
    reference_batch_size = shared.setting("batch_size") * (1 - shared.momentum)
    for name, run in runs.items():
        style = "--" if name.startswith("control") else "-"
        ax_loss.plot(run.record["epoch"], run.record["train_loss"], style, label=name)
        ax_acc.plot(run.record["epoch"], run.record["val_acc"], style, label=name)
    ax_loss.set(yscale="log", xlabel="epoch", ylabel="training loss",
                title=f"Same noise scale η/(B(1−β)) = {lr}/{reference_batch_size:g}: same curve")
    ax_acc.set(xlabel="epoch", ylabel="validation accuracy", title="Validation accuracy")
    ax_loss.legend(fontsize=8)
    return fig


def plot_schedules(runs: Mapping[str, SgdRun], *, switch_epoch: float, dashed: str) -> Axes:
    """Training loss (log) against epochs for each schedule, the switch marked; the schedule
    named ``dashed`` is drawn dashed so that the curve under it stays visible."""
    _, ax = plt.subplots(figsize=(7, 4))
    for name, run in runs.items():
        ax.plot(run.record["epoch"], run.record["train_loss"], "--" if name == dashed else "-",
                label=f"{name} ({run.num_steps} steps)")
    ax.axvline(switch_epoch, color=EDGE_COLOR, linestyle=":", linewidth=1)
    ax.set(yscale="log", xlabel="epoch", ylabel="training loss",
           title="Decaying η ≈ growing B (same noise scale)")
    ax.legend()
    return ax


def show_sgd(result: SgdRun, *, reference: SgdRun,
             reference_label: str = "reference B=16, β=0", **_: object) -> Figure:
    """The slider panel's figure: the run's training loss and validation accuracy against
    epochs beside a dashed grey reference run; the title gives both noise scales (η, B, β from
    the run's settings, partial or final)."""
    lr, batch_size = result.setting("lr"), result.setting("batch_size")
    momentum = result.setting("momentum")
    g = noise_scale(lr, batch_size, momentum)
    g_reference = noise_scale(float(reference.record["lr"].iloc[0]),
                              int(reference.record["batch_size"].iloc[0]), reference.momentum)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(12, 3.8))
    ax_loss.plot(reference.record["epoch"], reference.record["train_loss"], color="0.6",
                 linestyle="--", label=reference_label)
    ax_loss.plot(result.record["epoch"], result.record["train_loss"],
                 label=f"B={batch_size}, β={momentum}")
    ax_loss.set(yscale="log", xlabel="epoch", ylabel="training loss",
                title=f"noise scale η/(B(1−β)) = {g:.2e} (reference {g_reference:.2e})")
    ax_loss.legend()
    ax_acc.plot(reference.record["epoch"], reference.record["val_acc"], color="0.6",
                linestyle="--")
    ax_acc.plot(result.record["epoch"], result.record["val_acc"])
    ax_acc.set(xlabel="epoch", ylabel="validation accuracy",
               title=f"final validation accuracy {result.final['val_acc']:.3f}")
    return fig


def plot_warmup(no_warmup: WarmupRun, warmup: WarmupRun) -> Figure:
    """Left: the training loss at every step (log) with the target η at once and with a linear
    warm-up; a run that blew up is marked. Right: the warm-up run's λ_max against the edge 2/η of
    the η in force (dashed, falling as η ramps up), and the initial λ_max against the target's
    edge."""
    fig, (ax_loss, ax_lam) = plt.subplots(1, 2, figsize=(12, 4))
    for run, name, color in ((no_warmup, "target η at once", PALETTE[1]),
                             (warmup, f"linear warm-up over {warmup.warmup_steps} steps",
                              PALETTE[0])):
        losses = np.where(np.isfinite(run.step_losses), run.step_losses, np.nan)
        ax_loss.plot(np.arange(len(losses)), losses, color=color, label=name)
        if run.diverged:
            ax_loss.annotate("blew up", xy=(len(losses) - 1, np.nanmax(losses)), color=color,
                             ha="left", va="top", fontsize=9)
    ax_loss.set(yscale="log", xlabel="training step", ylabel="training loss (half-MSE)",
                title=f"Full-batch GD to η = {warmup.lr:g}")
    ax_loss.legend()
    measured = warmup.record.dropna(subset=["lambda_max"])
    plot_against_edge(measured, "lambda_max", measured["edge"].to_numpy(), x="step", ax=ax_lam,
                      label="λ_max, warm-up run", edge_label="edge 2/η of the η in force",
                      title="Warm-up lets λ_max fall while η grows")
    ax_lam.plot([0], [no_warmup.lambda_init], "o", color=PALETTE[1],
                label=f"λ_max at the start vs 2/η = {no_warmup.edge:.2g} at once")
    ax_lam.axhline(no_warmup.edge, color=PALETTE[1], linestyle=":", linewidth=1.2)
    ax_lam.set_yscale("log")
    ax_lam.legend(fontsize=8)
    return fig


#: This lesson's slider panels (edutools.face.panels: the precompute and the tests read them).
PANELS = (
    Panel(run="large_batch.run_sgd", show=show_sgd, name="batch size B × momentum β (noise scale)",
          grid="SLIDER_GRID", quick={"num_epochs": 3},
          sample={"batch_size": 64, "momentum": 0.5, "lr": 0.05}, reference=True),
)
