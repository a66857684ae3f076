"""Figures of an :class:`~edutools.engine.monitor.EdgeMonitor`'s record: the measured curvature
against its optimizer's edge over the steps, drawn once (:func:`plot_monitor`) or live while the
loop runs (:func:`live_monitor`).

Face layer: these functions draw the record the engine measured; the monitor itself never draws,
it only calls its ``watch`` with the record after each measurement::

    live = live_monitor(monitor)       # before the loop
    ...                                # the loop calls monitor.step()
    live.close()                       # the final figure, which stays in the notebook
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from edutools.engine.monitor import EdgeMonitor
from edutools.face.live import LiveFigure
from edutools.face.plots.style import PALETTE, plot_against_edge

#: Axis labels of the curvatures a monitor records.
CURVATURE_LABELS = {
    "lambda_max": "λ_max (top Hessian eigenvalue)",
    "preconditioned_sharpness": "preconditioned sharpness λ_max(P⁻¹H)",
    "batch_sharpness": "batch sharpness",
}


def plot_monitor(record: pd.DataFrame, *, ax: Axes | None = None,
                 title: str | None = None) -> Axes:
    """The record's headline curvature (``record["curvature"]``) against its edge, over steps.

    The edge is a dashed line (a horizontal one when constant, else one value per measurement,
    e.g. under an LR schedule); batch sharpness gets a ±1 standard-error band and, when it was
    measured, λ_max on the probe in a lighter line. An empty record draws an empty, titled axes.
    """
    if record.empty:
        ax = plot_against_edge(pd.DataFrame({"step": [], "lambda_max": []}), "lambda_max",
                               np.array([]), ax=ax, title=title or "Edge monitor: no "
                               "measurement yet", edge_label="edge")
        return ax
    column = str(record["curvature"].iloc[-1])
    label = CURVATURE_LABELS.get(column, column.replace("_", " "))
    edges = record["edge"].to_numpy(dtype=float)
    edge_name = str(record["edge_name"].iloc[-1]) or "edge"
    has_edge = bool(np.isfinite(edges).any())
    constant = has_edge and np.allclose(edges, edges[0], equal_nan=False)
    edge = float(edges[0]) if constant else edges
    heading = title or (f"{label} against {edge_name}" if has_edge
                        else f"{label} (no edge formula)")
    ax = plot_against_edge(record, column, edge, ax=ax, label=label,
                           edge_label=f"edge {edge_name}", color=PALETTE[0],
                           title=f"{heading}\n{record['description'].iloc[-1]}")
    if column == "batch_sharpness":
        _band(ax, record)
        if record["lambda_max"].notna().any():
            ax.plot(record["step"], record["lambda_max"], color=PALETTE[1], alpha=0.6,
                    linewidth=1.2, label=CURVATURE_LABELS["lambda_max"] + " on the probe")
            ax.legend()
    ax.set_ylabel(f"{label} (1/parameter²)")
    return ax


def draw_monitor(record: pd.DataFrame, figure: Figure) -> None:
    """Draw :func:`plot_monitor` into an empty ``figure`` (the :class:`LiveFigure` hook)."""
    plot_monitor(record, ax=figure.add_subplot())
    figure.tight_layout()


def live_monitor(monitor: EdgeMonitor, *, figsize: tuple[float, float] = (7.5, 4.0),
                 min_interval: float = 1.0, live: bool | None = None) -> LiveFigure:
    """Make ``monitor`` redraw :func:`plot_monitor` in place after its measurements.

    Returns the :class:`~edutools.face.live.LiveFigure` it set as the monitor's ``watch`` (a
    ``watch`` already there is still called first). The figure is redrawn at most once per
    ``min_interval`` seconds (1 s: the redraw costs less than the measurements); ``live`` as in
    :class:`LiveFigure`. Call ``.close()`` on it after the loop to draw the final record.
    """
    if not isinstance(monitor, EdgeMonitor):
        raise ValueError(f"monitor must be an EdgeMonitor, got {type(monitor).__name__}")
    figure = LiveFigure(draw_monitor, figsize=figsize, min_interval=min_interval, live=live)
    previous = monitor.watch
    if previous is None:
        monitor.watch = figure
    else:
        def both(record: pd.DataFrame) -> None:
            previous(record)
            figure(record)

        monitor.watch = both
    return figure


def _band(ax: Axes, record: pd.DataFrame) -> None:
    mean = record["batch_sharpness"].to_numpy(dtype=float)
    se = record["batch_sharpness_se"].to_numpy(dtype=float)
    if np.isfinite(se).any():
        ax.fill_between(record["step"], mean - se, mean + se, color=PALETTE[0], alpha=0.2,
                        linewidth=0, label="± 1 standard error")
        ax.legend()
