"""Lesson 07's figures (the capstone): heatmaps of the momentum × batch-size grid, the proxies
against the measured distance to the edge, the robust and the fastest configuration, and the
slider panel's view of one run.

Face layer: every function receives numbers (the DataFrames of
:mod:`edutools.engine.experiments.capstone_analysis`, or one run's dict) and draws.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from edutools.engine.experiments.capstone import CapstoneRun
from edutools.face.panels import Panel as SliderPanel
from edutools.face.plots.style import EDGE_COLOR, PALETTE, label_for, plot_heatmap

__all__ = ["plot_accuracy_heatmaps", "plot_edge_heatmaps", "plot_grid_heatmaps",
           "plot_curvature_over_training", "plot_proxy_confounds", "plot_proxy_heatmaps",
           "plot_proxy_scatter", "plot_robust_vs_fastest", "show_capstone_run"]

#: Panel = (summary column, panel title, colour-bar label, number format).
Panel = tuple[str, str, str, str]
_AXES = {"xlabel": "batch size B", "ylabel": "momentum β"}
_PROXY_LABELS = {"loss_var": "loss variance", "relative_loss_var": "loss variance / loss²",
                 "grad_norm": "gradient norm", "val_jitter": "validation jitter"}


def _pivot(summary: pd.DataFrame, column: str) -> pd.DataFrame:
    return summary.pivot(index="momentum", columns="batch_size", values=column)


def plot_grid_heatmaps(summary: pd.DataFrame, panels: Sequence[Panel], *, title: str,
                       columns: int = 2) -> plt.Figure:
    """One annotated momentum × batch-size heatmap per panel (rows β, columns B)."""
    rows = int(np.ceil(len(panels) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(6.2 * columns, 3.9 * rows),
                                squeeze=False)
    for ax in axes.ravel()[len(panels):]:
        ax.axis("off")
    for ax, (column, panel_title, bar_label, fmt) in zip(axes.ravel(), panels, strict=False):
        plot_heatmap(_pivot(summary, column), title=panel_title, colorbar_label=bar_label,
                     fmt=fmt, ax=ax, **_AXES)
    figure.suptitle(title, fontweight="bold")
    figure.tight_layout()
    return figure


def plot_accuracy_heatmaps(summary: pd.DataFrame, *, epochs: int, target_acc: float
                           ) -> plt.Figure:
    """Mean final validation accuracy, its spread over seeds, and epochs to ``target_acc``
    (blank where some seed never reached it)."""
    seeds = int(summary["num_seeds"].min())
    return plot_grid_heatmaps(summary, [
        ("final_val_acc", f"Validation accuracy after {epochs} epochs (mean of {seeds} seeds)",
         "validation accuracy", ".3f"),
        ("acc_std", "Spread over seeds (standard deviation)", "std of validation accuracy",
         ".3f"),
        ("epochs_to_target", f"Speed: epochs to {target_acc:.0%} validation accuracy",
         "epochs (blank: not reached)", ".1f"),
    ], title="Accuracy and speed over the grid (equal epochs)")


def plot_proxy_heatmaps(summary: pd.DataFrame) -> plt.Figure:
    """The cheap stability proxies (medians over the second half of training, seed means)."""
    return plot_grid_heatmaps(summary, [
        (column, f"{_PROXY_LABELS[column].capitalize()}", label_for(column), ".2g")
        for column in ("loss_var", "relative_loss_var", "grad_norm", "val_jitter")
    ], title="Cheap stability proxies, second half of training")


def plot_edge_heatmaps(summary: pd.DataFrame) -> plt.Figure:
    """λ_max against the full-batch edge 2(1+β)/η and batch sharpness against the small-batch
    edge 2(1−β)/η, as ratios (1 = on the edge)."""
    return plot_grid_heatmaps(summary, [
        ("lambda_ratio", "λ_max / (2(1+β)/η)", "fraction of the full-batch edge", ".3f"),
        ("bs_ratio", "batch sharpness / (2(1−β)/η)", "fraction of the small-batch edge", ".2f"),
    ], title="Curvature at the end, relative to its edge")


def plot_proxy_scatter(runs: pd.DataFrame, correlations: pd.DataFrame, *,
                       against: str = "edge_ratio") -> plt.Figure:
    """Each proxy (x, log scale) against the measured edge ratio (y, log scale), one point per
    run, coloured by momentum; the panel title gives Spearman's ρ from ``correlations``."""
    proxies = list(correlations["proxy"])
    figure, axes = plt.subplots(1, len(proxies), figsize=(4.0 * len(proxies), 3.8),
                                squeeze=False, sharey=True)
    momenta = sorted(runs["momentum"].unique())
    for ax, row in zip(axes[0], correlations.itertuples(), strict=True):
        for color, momentum in zip(PALETTE, momenta, strict=False):
            points = runs[runs["momentum"] == momentum]
            ax.scatter(points[row.proxy], points[against], s=18 + points["batch_size"] / 8,
                       color=color, alpha=0.8, label=f"β = {momentum:g}")
        ax.axhline(1.0, color=EDGE_COLOR, linestyle="--", linewidth=1.2, label="on the edge")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(_PROXY_LABELS.get(row.proxy, label_for(row.proxy)))
        ax.set_title(f"ρ = {row.rho:+.2f} (p = {row.p_value:.1g}, n = {row.n})")
    axes[0, 0].set_ylabel("curvature / nearest edge")
    axes[0, -1].legend(fontsize=8, loc="lower right")
    figure.suptitle("Do the cheap proxies track the distance to the edge? (marker size ∝ B)",
                    fontweight="bold")
    figure.tight_layout()
    return figure


def plot_robust_vs_fastest(runs: pd.DataFrame, picks: Any, *, lr: float,
                           runner_up: Mapping[str, Any] | None = None,
                           column: str = "final_val_acc") -> plt.Figure:
    """Accuracy against η (η/2, η, 2η; mean ± std over seeds) for the robust pick and the
    fastest configuration, and for ``runner_up`` when given. ``picks`` has ``robust`` and
    ``fastest`` dicts with ``momentum`` and ``batch_size``; when they are the same configuration
    it is drawn once, labelled "robust pick = fastest"."""
    lines = [("robust pick = fastest" if picks.same else "robust pick", picks.robust)]
    if not picks.same:
        lines.append(("fastest", picks.fastest))
    if runner_up is not None:
        lines.append(("runner-up (score)", runner_up))
    figure, ax = plt.subplots(figsize=(6.5, 4.0))
    for color, (name, pick) in zip(PALETTE, lines, strict=False):
        rows = runs[(runs["momentum"] == pick["momentum"])
                    & (runs["batch_size"] == pick["batch_size"])]
        stats = rows.groupby("lr")[column].agg(["mean", "std"]).reset_index()
        ax.errorbar(stats["lr"], stats["mean"], yerr=stats["std"].fillna(0), marker="o",
                    capsize=4, color=color,
                    label=f"{name}: β = {pick['momentum']:g}, B = {int(pick['batch_size'])}")
    ax.axvline(lr, color=EDGE_COLOR, linestyle=":", linewidth=1.2, label=f"η = {lr:g}")
    ax.set_xscale("log")
    rates = sorted(runs["lr"].unique())
    ax.set_xticks(rates, [f"{rate:g}" for rate in rates])
    ax.minorticks_off()
    ax.set_xlabel("learning rate η")
    ax.set_ylabel(label_for("val_acc"))
    ax.set_title(("Robust pick (= fastest)" if picks.same else "Robust pick vs fastest")
                 + ": accuracy at η/2, η, 2η (mean ± std over seeds)")
    ax.legend(fontsize=8)
    figure.tight_layout()
    return figure


def plot_curvature_over_training(curves: pd.DataFrame) -> plt.Figure:
    """Batch sharpness (± its standard error) and λ_max per epoch against the small-batch edge
    2(1−β)/η, one panel per configuration; η solid, 2η dashed, each with its own edge line.
    ``curves`` is :func:`~edutools.engine.experiments.capstone.run_curvature_runs`'s frame."""
    configs = curves[["momentum", "batch_size"]].drop_duplicates().to_records(index=False)
    figure, axes = plt.subplots(1, len(configs), figsize=(4.6 * len(configs), 3.9),
                                squeeze=False, sharey=True)
    base = float(curves["lr"].min())
    for ax, (momentum, batch_size) in zip(axes[0], configs, strict=True):
        rows = curves[(curves["momentum"] == momentum) & (curves["batch_size"] == batch_size)]
        for row in rows.sort_values("lr").itertuples():
            style = "-" if np.isclose(row.lr, base) else "--"
            name = "η" if np.isclose(row.lr, base) else "2η"
            epochs = np.arange(len(row.batch_sharpness_curve))
            bs, se = np.asarray(row.batch_sharpness_curve), np.asarray(row.batch_sharpness_se_curve)
            ax.plot(epochs, bs, style, color=PALETTE[0], label=f"batch sharpness, {name}")
            ax.fill_between(epochs, bs - se, bs + se, color=PALETTE[0], alpha=0.2)
            ax.plot(epochs, row.lambda_max_curve, style, color=PALETTE[2], linewidth=1,
                    label=f"λ_max, {name}")
            ax.axhline(row.lower_edge, linestyle=style, color=EDGE_COLOR, linewidth=1.2,
                       label=f"2(1−β)/η at {name} = {row.lower_edge:.3g}")
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_title(f"β = {momentum:g}, B = {int(batch_size)}")
        ax.legend(fontsize=7)
    axes[0, 0].set_ylabel("curvature (eval mode)")
    figure.suptitle("The seed network's curvature over training, against its small-batch edge",
                    fontweight="bold")
    figure.tight_layout()
    return figure


_STATISTICS = {"rho_edge": "pooled ρ with edge ratio", "within_beta": "within β (over B)",
               "partial": "partial, given log η/(1−β)"}


def plot_proxy_confounds(table: pd.DataFrame) -> plt.Figure:
    """Per proxy (and per hyper-parameter reference): the pooled, within-β and partial rank
    correlations with the edge ratio over configurations, with 90% cluster-bootstrap intervals
    (:func:`~edutools.engine.experiments.capstone_proxies.proxy_confound_table`)."""
    names = list(table["proxy"])
    labels = {**_PROXY_LABELS, "effective_step": "η/(1−β) (reference)",
              "inverse_batch": "1/B (reference)"}
    figure, ax = plt.subplots(figsize=(9.5, 4.0))
    width = 0.8 / len(_STATISTICS)
    x = np.arange(len(names))
    for k, (color, (statistic, label)) in enumerate(zip(PALETTE, _STATISTICS.items(),
                                                        strict=False)):
        values = table[statistic].to_numpy(dtype=float)
        errors = np.abs(np.vstack([values - table[f"{statistic}_lo"],
                                   table[f"{statistic}_hi"] - values]))
        ax.bar(x + (k - 1) * width, np.nan_to_num(values), width, color=color, label=label,
               yerr=np.nan_to_num(errors), capsize=3)
    ax.axhline(0, color=EDGE_COLOR, linewidth=0.8)
    ax.set_xticks(x, [labels.get(n, n) for n in names], rotation=15)
    ax.set_ylim(-1.05, 1.05)
    ax.set_ylabel("Spearman ρ (configurations)")
    ax.set_title("Which proxy knows more than the hyper-parameters? (bars: 90% bootstrap)")
    ax.legend(fontsize=8, loc="lower left")
    figure.tight_layout()
    return figure


def show_capstone_run(result: CapstoneRun, **_: Any) -> plt.Figure:
    """The slider panel's view of one run (a :class:`~edutools.engine.experiments.capstone.
    CapstoneRun`; every setting and edge from the run): validation accuracy, losses and the
    loss-variance proxy per epoch, with the curvature against its edges in the title line."""
    momentum, batch_size, lr = (result.setting(name) for name in ("momentum", "batch_size", "lr"))
    summary, curves, epochs = result.summary, result.record, result.record["epoch"]
    figure, (ax_acc, ax_loss, ax_proxy) = plt.subplots(1, 3, figsize=(13, 3.6))
    ax_acc.plot(epochs, curves["val_acc"], marker="o", markersize=3, color=PALETTE[0])
    ax_acc.set(xlabel="epoch", ylabel=label_for("val_acc"), ylim=(0, 1),
               title=f"Final validation accuracy {summary['final_val_acc']:.3f}")
    for color, name in zip(PALETTE, ("train_loss", "val_loss"), strict=False):
        ax_loss.plot(epochs, curves[name], color=color, label=label_for(name))
    ax_loss.set(xlabel="epoch", ylabel="loss", yscale="log", title="Losses")
    ax_loss.legend()
    ax_proxy.plot(epochs, curves["loss_var"], color=PALETTE[2])
    ax_proxy.set(xlabel="epoch", ylabel=label_for("loss_var"), yscale="log",
                 title="Loss variance (a cheap proxy)")
    figure.suptitle(
        f"β = {momentum:g}, B = {int(batch_size)}, η = {lr:g}:  λ_max = "
        f"{summary['lambda_max']:.3g} (edge 2(1+β)/η = {result.edges.full_batch:.3g}),  batch "
        f"sharpness = {summary['batch_sharpness']:.3g} (edge 2(1−β)/η = "
        f"{result.edges.small_batch:.3g})", fontweight="bold", fontsize=11)
    figure.tight_layout()
    return figure


#: This lesson's slider panels (edutools.face.panels: the precompute and the tests read them).
PANELS = (
    # No grid: the panel reads the grid runner's own cache, which the lesson fills itself.
    SliderPanel(run="capstone.capstone_curves", show=show_capstone_run,
                name="momentum β × batch size B × learning rate η (capstone)"),
)
