"""Lesson 00's figures: the seed network (MNIST MLP) under different momenta and batch sizes.

Every function receives finished runs (:class:`~edutools.engine.experiments.seed_network.
SeedNetworkRun`, whose ``record`` has one row per epoch) or a table of numbers, and draws; none
trains. Each returns its figure; the lesson shows it with ``plt.show()``.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from edutools.engine.experiments.seed_network import SeedNetworkRun
from edutools.face.panels import Panel
from edutools.face.plots.style import plot_heatmap, plot_loss_curves, plot_stability_proxies

__all__ = ["plot_momentum_comparison", "plot_proxy_comparison", "plot_seed_network_sweep",
           "show_seed_network"]


def _plot_val_acc(ax: plt.Axes, run: SeedNetworkRun, *, label: str | None = None) -> None:
    ax.plot(run.record["epoch"], run.record["val_acc"], marker="o", markersize=3, label=label)


def plot_momentum_comparison(runs: Sequence[SeedNetworkRun]) -> Figure:
    """Two panels, one curve per run: the losses (log scale) and the validation accuracy against
    the epoch — runs at the same batch size and number of epochs, labelled by their momentum β
    (B and β from each run's settings)."""
    figure, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(12, 4))
    batch_sizes = sorted({run.batch_size for run in runs})
    for run in runs:
        plot_loss_curves(run.record, x="epoch", ax=ax_loss, label_prefix=f"β={run.momentum}: ",
                         title=f"Loss, B = {', '.join(map(str, batch_sizes))}")
        _plot_val_acc(ax_acc, run, label=f"β = {run.momentum}")
    ax_acc.set(xlabel="epoch", ylabel="validation accuracy", ylim=(0.5, 1.0),
               title="Validation accuracy, same number of epochs")
    ax_acc.legend()
    return figure


def plot_proxy_comparison(runs: Sequence[SeedNetworkRun], *, title: str) -> Figure:
    """The three stability proxies (loss variance, gradient norm, validation jitter) against the
    epoch, one curve per run labelled by its momentum β (and learning rate when they differ)."""
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.5))
    several_lrs = len({run.lr for run in runs}) > 1
    for run in runs:
        label = f"β = {run.momentum}" + (f", η = {run.lr:g}" if several_lrs else "")
        plot_stability_proxies(run.record, x="epoch", axes=axes, label=label)
    figure.suptitle(title, fontweight="bold")
    figure.tight_layout()
    return figure


def show_seed_network(run: SeedNetworkRun, **_: object) -> Figure:
    """The slider panel's drawing: the losses and the validation accuracy of one run (partial
    or final; its settings from the run itself); prints how the run ended."""
    figure, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(12, 3.8))
    plot_loss_curves(run.record, x="epoch", ax=ax_loss, diverged_at=run.diverged_at,
                     title=f"Loss with β = {run.momentum}, B = {run.batch_size}")
    _plot_val_acc(ax_acc, run)
    ax_acc.set(xlabel="epoch", ylabel="validation accuracy", ylim=(0, 1),
               title=f"Final validation accuracy {run.final_val_acc:.3f}")
    print(run.message)
    return figure


def plot_seed_network_sweep(table: pd.DataFrame, *, epochs: int, lr: float) -> Figure:
    """Heatmap of final validation accuracy, momentum β (rows) × batch size B (columns)."""
    ax = plot_heatmap(table, title=f"Validation accuracy after {epochs} epochs (η = {lr})",
                      xlabel="batch size B", ylabel="momentum β",
                      colorbar_label="validation accuracy")
    return ax.figure


#: This lesson's slider panels (edutools.face.panels: the precompute and the tests read them).
PANELS = (
    Panel(run="seed_network.train_seed_network", show=show_seed_network,
          name="momentum β × batch size B (MNIST MLP)", grid="SLIDER_GRID", quick={"epochs": 2},
          sample={"momentum": 0.9, "batch_size": 256, "lr": 0.01}),
)
