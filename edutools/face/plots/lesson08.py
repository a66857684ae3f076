"""Figures of lesson 08 (your own network): monitored runs against their optimizers' edges.

Every setting and edge is read from the run (:class:`~edutools.engine.experiments.own_network.
MonitoredRun`: the monitor's record holds the edge of each measurement). Face layer: draws only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from edutools.engine.experiments.own_network import MonitoredRun
from edutools.engine.monitor import EdgeMonitor
from edutools.face.panels import Panel
from edutools.face.plots.monitor import plot_monitor
from edutools.face.plots.style import PALETTE

__all__ = ["plot_monitored_runs", "show_monitored_run"]


def plot_monitored_runs(runs: Mapping[str, MonitoredRun | EdgeMonitor]) -> Figure:
    """One panel per named run (a :class:`MonitoredRun`, or the :class:`EdgeMonitor` of a loop
    of your own): its monitored curvature against its own optimizer's edge, titled with the
    run's name and the monitor's verdict."""
    figure, axes = plt.subplots(1, len(runs), figsize=(6.5 * len(runs), 4.2), squeeze=False)
    for ax, (name, run) in zip(axes[0], runs.items(), strict=True):
        plot_monitor(run.record, ax=ax, title=name)
        ax.set_xlabel("optimizer step")
        verdict = run.verdict() if isinstance(run, EdgeMonitor) else run.verdict
        ax.set_title(f"{name}\n{_short(verdict)}", fontsize=10)
    figure.tight_layout()
    return figure


def show_monitored_run(result: MonitoredRun, **_: Any) -> Figure:
    """The slider panel's figure: the curvature against the edge the monitor read from the
    optimizer (η, β from the run), and the full-batch loss; partial runs draw what is there."""
    figure, (ax_edge, ax_loss) = plt.subplots(1, 2, figsize=(13, 4))
    lr, momentum = result.setting("lr"), result.setting("momentum")
    plot_monitor(result.record, ax=ax_edge,
                 title=f"{result.setting('optimizer')}: η = {lr:g}, β = {momentum:g}")
    ax_edge.set_xlabel("optimizer step")
    if "train_loss" in result.record:
        ax_loss.plot(result.record["step"], result.record["train_loss"], color=PALETTE[0])
    ax_loss.set(yscale="log", xlabel="optimizer step", ylabel="full-batch training loss",
                title=_short(result.message if not result.partial else "running …"))
    figure.tight_layout()
    return figure


def _short(text: str, width: int = 70) -> str:
    """A verdict on at most two lines of about ``width`` characters (split at a parenthesis)."""
    if len(text) <= width or " (" not in text:
        return text
    head, _, tail = text.partition(" (")
    return f"{head}\n({tail}"


#: This lesson's slider panels (edutools.face.panels: the precompute and the tests read them).
PANELS = (
    Panel(run="own_network.run_monitored", show=show_monitored_run,
          name="learning rate η × momentum β (your own network, monitored)", grid="SLIDER_GRID",
          quick={"num_steps": 60}, sample={"lr": 0.1, "momentum": 0.9}),
)
