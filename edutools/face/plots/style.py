"""The course's figures, drawn in one style.

Face layer: these functions only draw what the engine measured (a record DataFrame, an edge).
Every figure gets labelled axes and a title a learner can read.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"]
EDGE_COLOR = "#444444"

LABELS = {
    "step": "training step",
    "epoch": "epoch",
    "train_loss": "training loss",
    "val_loss": "validation loss",
    "train_acc": "training accuracy",
    "val_acc": "validation accuracy",
    "grad_norm": "gradient norm ‖∇L‖",
    "loss_var": "loss variance (recent steps)",
    "val_jitter": "validation-loss jitter",
    "lambda_max": "λ_max (top Hessian eigenvalue)",
    "batch_sharpness": "batch sharpness",
}


def use_style() -> None:
    """Apply the course's matplotlib style (call once per notebook; idempotent)."""
    import seaborn as sns

    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE)
    plt.rcParams.update({
        "figure.figsize": (7.0, 4.0),
        "figure.dpi": 100,
        "axes.titlesize": 12,
        "axes.titleweight": "bold",
        "axes.labelsize": 11,
        "legend.fontsize": 9,
        "legend.frameon": False,
        "lines.linewidth": 1.8,
    })


def label_for(column: str) -> str:
    """Readable axis label for a record column."""
    return LABELS.get(column, column.replace("_", " "))


def _axes(ax: Axes | None, figsize: tuple[float, float] | None = None) -> Axes:
    if ax is not None:
        return ax
    _, new_ax = plt.subplots(figsize=figsize)
    return new_ax


def _mark_divergence(ax: Axes, record: pd.DataFrame, x: str, diverged_at: int | None) -> None:
    if diverged_at is None:
        return
    position = diverged_at if x == "step" else record[x].iloc[-1]
    ax.axvline(position, color="#d62728", linestyle=":", linewidth=1.5)
    ax.annotate("diverged", xy=(position, 0.95), xycoords=("data", "axes fraction"),
                ha="right", va="top", color="#d62728", fontsize=9)


def plot_loss_curves(record: pd.DataFrame, *, columns: Sequence[str] = ("train_loss", "val_loss"),
                     x: str = "step", ax: Axes | None = None, title: str = "Loss during training",
                     log_y: bool = True, diverged_at: int | None = None,
                     label_prefix: str = "") -> Axes:
    """Plot record columns (default training and validation loss) against ``x``.

    Non-finite values (a diverged run) are left out of the line; ``diverged_at`` marks the step.
    """
    ax = _axes(ax)
    for column in columns:
        values = record[column].to_numpy(dtype=float)
        shown = np.where(np.isfinite(values), values, np.nan)
        ax.plot(record[x], shown, label=f"{label_prefix}{label_for(column)}")
    finite = record[list(columns)].to_numpy(dtype=float)
    if log_y and np.all(finite[np.isfinite(finite)] > 0):
        ax.set_yscale("log")
    ax.set_xlabel(label_for(x))
    ax.set_ylabel("loss" if all("loss" in c for c in columns) else "value")
    ax.set_title(title)
    _mark_divergence(ax, record, x, diverged_at)
    ax.legend()
    return ax


def plot_against_edge(record: pd.DataFrame, column: str, edge: float | Sequence[float], *,
                      x: str = "step", ax: Axes | None = None, title: str | None = None,
                      label: str | None = None, edge_label: str = "edge 2/η",
                      color: str | None = None, diverged_at: int | None = None) -> Axes:
    """Plot a measured curvature (``column``) against its stability edge, drawn as a dashed line.

    ``edge`` is a number (horizontal line) or one value per record row (e.g. SAM's edge, which
    moves with the gradient norm).
    """
    ax = _axes(ax)
    values = record[column].to_numpy(dtype=float)
    line = ax.plot(record[x], values, marker="o", markersize=3, color=color,
                   label=label or label_for(column))[0]
    if np.ndim(edge) == 0:
        ax.axhline(float(edge), color=line.get_color() if color else EDGE_COLOR, linestyle="--",
                   linewidth=1.3, label=f"{edge_label} = {float(edge):.3g}")
    else:
        ax.plot(record[x], np.asarray(edge, dtype=float), color=EDGE_COLOR, linestyle="--",
                linewidth=1.3, label=edge_label)
    ax.set_xlabel(label_for(x))
    ax.set_ylabel(label_for(column))
    ax.set_title(title or f"{label_for(column)} against its edge")
    _mark_divergence(ax, record, x, diverged_at)
    ax.legend()
    return ax


def plot_stability_proxies(record: pd.DataFrame, *, x: str = "step", title: str | None = None,
                           label: str = "", axes: Sequence[Axes] | None = None) -> np.ndarray:
    """Three panels: loss variance over a window, gradient norm, validation jitter."""
    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for ax, column in zip(axes, ("loss_var", "grad_norm", "val_jitter"), strict=True):
        ax.plot(record[x], record[column], label=label or None)
        ax.set_xlabel(label_for(x))
        ax.set_ylabel(label_for(column))
        panel_title = label_for(column).split(" (")[0]
        ax.set_title(panel_title[:1].upper() + panel_title[1:])  # not capitalize(): keeps ‖∇L‖
        if label:
            ax.legend()
    if title:
        axes[0].figure.suptitle(title, fontweight="bold")
    axes[0].figure.tight_layout()
    return np.asarray(axes)


def plot_image_grid(images: np.ndarray, labels: Sequence[int], *, image_shape: tuple[int, int],
                    columns: int = 8, title: str = "Sample images") -> plt.Figure:
    """Show flattened images (n, h·w) in a grid, each titled with its label."""
    count = len(images)
    rows = int(np.ceil(count / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(1.2 * columns, 1.35 * rows + 0.4))
    for ax in np.ravel(axes):
        ax.axis("off")
    for ax, image, label in zip(np.ravel(axes), images, labels, strict=False):
        ax.imshow(np.asarray(image).reshape(image_shape), cmap="gray_r")
        ax.set_title(str(int(label)), fontsize=9)
    figure.suptitle(title, fontweight="bold")
    figure.tight_layout()
    return figure


def plot_heatmap(table: pd.DataFrame, *, title: str, xlabel: str, ylabel: str,
                 colorbar_label: str, fmt: str = ".3f", ax: Axes | None = None) -> Axes:
    """Annotated heatmap of a pivoted table (rows → y axis, columns → x axis)."""
    import seaborn as sns

    ax = _axes(ax, figsize=(6.5, 3.8))
    sns.heatmap(table, annot=True, fmt=fmt, cmap="viridis", ax=ax,
                cbar_kws={"label": colorbar_label})
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return ax
