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

from edutools.engine.experiments.acceleration import AccelerationMap
from edutools.engine.experiments.eoss import SGDRun
from edutools.engine.experiments.heavy_ball import QuadraticComparison
from edutools.engine.experiments.jelassi_li import PatchCurve
from edutools.engine.experiments.momentum_eoss import settled
from edutools.face.panels import Panel
from edutools.face.plots.curvature import plot_stability_region
from edutools.face.plots.style import EDGE_COLOR, PALETTE, _axes, plot_against_edge
from edutools.ground import theory
from edutools.ground.theory.quadratic import StabilityRegion

__all__ = ["plot_full_batch_momentum", "plot_mean_square_edge", "plot_momentum_plateau",
           "plot_patch_runs", "plot_plateaus", "show_acceleration", "show_full_batch_momentum",
           "show_momentum_batch", "show_patch_momentum", "show_quadratics"]


def _edges(lr: float, momentum: float) -> tuple[float, float]:
    """(small-batch edge 2(1−β)/η, full-batch edge 2(1+β)/η) of settings given as numbers."""
    edges = theory.RunEdges(lr=lr, momentum=momentum)
    return edges.small_batch, edges.full_batch


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


def plot_full_batch_momentum(runs: Mapping[str, SGDRun]) -> Figure:
    """λ_max of full-batch heavy ball and Nesterov against their edges (and GD's 2/η), and the
    training loss. ``runs`` is keyed by rule name; η, β and the rule (``nesterov``) of each run,
    hence its edge, come from the run's settings."""
    fig, (ax_sharp, ax_loss) = plt.subplots(1, 2, figsize=(13, 4.2))
    for (name, run), color in zip(runs.items(), PALETTE, strict=False):
        lr, momentum = run.setting("lr"), run.setting("momentum")
        plot_against_edge(run.record, "lambda_max", run.edges.full_batch, ax=ax_sharp, color=color,
                          label=f"λ_max, {name}", edge_label=f"{name} edge",
                          title=f"Full batch, η = {lr}, β = {momentum}")
        ax_loss.plot(run.step_losses, color=color, label=name)
    gd_edge = run.edges.gd  # the runs share η: the last one's GD edge is every run's
    ax_sharp.axhline(gd_edge, color=EDGE_COLOR, linestyle=":", label=f"GD edge 2/η = {gd_edge:.3g}")
    ax_sharp.legend()
    ax_loss.set(yscale="log", xlabel="step", ylabel="training loss", title="Training loss")
    ax_loss.legend()
    fig.tight_layout()
    return fig


def show_full_batch_momentum(result: SGDRun, *, ax: Axes | None = None, **_: object) -> Axes:
    """λ_max of one full-batch heavy-ball run against 2(1+β)/η (and GD's 2/η, dotted); β and η
    from the run's settings (partial or final)."""
    momentum, lr = result.setting("momentum"), result.setting("lr")
    ax = plot_against_edge(result.record, "lambda_max", result.edges.full_batch, ax=ax,
                           edge_label="edge 2(1+β)/η",
                           title=f"Full-batch heavy ball, η = {lr}, β = {momentum:.2f}",
                           diverged_at=result.diverged_at)
    ax.axhline(result.edges.gd, color=EDGE_COLOR, linestyle=":", label="GD edge 2/η")
    ax.legend()
    return ax


def plot_plateaus(plateaus: pd.DataFrame, *, lr: float, momentum: float,
                  ax: Axes | None = None) -> Axes:
    """Settled batch sharpness and λ_max per batch size (``plateaus``: index batch size, columns
    ``batch_sharpness``, ``lambda_max``) against 2(1−β)/η, 2/η and 2(1+β)/η."""
    ax = _axes(ax, figsize=(10, 4.8))
    edges = theory.RunEdges(lr=lr, momentum=momentum)
    lower, upper, gd_edge = edges.small_batch, edges.full_batch, edges.gd
    batch_sizes = plateaus.index.to_numpy()
    ax.axhline(upper, color=PALETTE[1], linestyle="--",
               label=f"2(1+β)/η = {upper:.3g}  (full-batch edge)")
    ax.axhline(gd_edge, color=EDGE_COLOR, linestyle=":",
               label=f"2/η = {gd_edge:.3g}  (plain SGD's edge)")
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
    return _draw_plateau(record, theory.RunEdges(lr=lr, momentum=momentum),
                         batch_size=batch_size, log_scale=log_scale, ax=ax)


def _draw_plateau(record: pd.DataFrame, edges: theory.RunEdges, *, batch_size: int,
                  log_scale: bool, ax: Axes | None) -> Axes:
    ax = _axes(ax, figsize=(8, 4.2))
    lr, momentum = edges.lr, edges.momentum
    lower, upper = edges.small_batch, edges.full_batch
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


def show_momentum_batch(result: SGDRun, **_: object) -> Axes:
    """The momentum × batch-size panel's figure: one run's batch sharpness and λ_max against
    2(1−β)/η and 2(1+β)/η (log scale), with their settled values (last third) in the title.
    Every setting (η, β, B, the training-set size) comes from the run, partial or final."""
    lr, num_train = result.setting("lr"), result.config.get("num_train")
    momentum, batch_size = result.setting("momentum"), result.setting("batch_size")
    ax = _draw_plateau(result.record, result.edges, batch_size=batch_size, log_scale=True, ax=None)
    lower, upper = result.edges.small_batch, result.edges.full_batch
    values = settled(result)
    parts = [f"λ_max/upper {values['lambda_max'] / upper:.2f}"]
    if np.isfinite(values["batch_sharpness"]):
        parts.insert(0, f"BS/lower {values['batch_sharpness'] / lower:.2f}")
    full = " (full batch)" if num_train is not None and batch_size >= num_train else ""
    ax.set_title(f"β = {momentum}, η = {lr:g}, B = {batch_size}{full}\n"
                 f"settled: {', '.join(parts)}")
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


def show_patch_momentum(result: PatchCurve, *, reference: PatchCurve, **_: object) -> Figure:
    """The γ slider's figure: feature alignment and small-margin accuracy of the run at γ (from
    the run's settings) against the plain-GD ``reference``."""
    momentum = result.momentum
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


def show_acceleration(result: AccelerationMap, **_: object) -> Figure:
    """Left: closed-form iterations to the tolerance over (ηL, β), with the edge ηL = 2(1+β),
    the critical damping β* and Polyak's and GD's best settings. Right: the error of both per
    step against their closed-form rates."""
    fig, (ax_map, ax_curve) = plt.subplots(1, 2, figsize=(13, 4.4))
    kappa, tol = result.condition_number, result.tolerance
    shown = np.log10(np.where(np.isfinite(result.predicted), result.predicted, np.nan))
    mesh = ax_map.pcolormesh(result.step_curvature, result.momenta, shown, cmap="viridis",
                             shading="auto")
    fig.colorbar(mesh, ax=ax_map, label=f"log₁₀ iterations to error {tol:g}")
    momenta = result.momenta
    ax_map.plot(2 * (1 + momenta), momenta, "--", color=EDGE_COLOR,
                label="edge ηL = 2(1+β) (beyond: diverges)")
    ax_map.axhline(result.heavy_ball.momentum, color=PALETTE[1], lw=1, ls=":",
                   label=f"critical damping β* = {result.heavy_ball.momentum:.3f}")
    ax_map.plot(result.heavy_ball.lr, result.heavy_ball.momentum, "*", ms=16, color=PALETTE[1],
                label="Polyak's heavy ball")
    ax_map.plot(result.gd.lr, 0.0, "o", ms=9, color=PALETTE[0], clip_on=False,
                label="GD at η = 2/(L+μ)")
    ax_map.set(xlim=(0, 4), ylim=(0, 0.99), xlabel="step size × largest curvature, ηL",
               ylabel="momentum β", title=f"Iterations to converge, κ = {kappa:g} (dark: fast)")
    ax_map.legend(loc="upper left", fontsize=8)
    for label, errors, rule, color in (("GD", result.gd_errors, result.gd, PALETTE[0]),
                                       ("heavy ball", result.heavy_ball_errors,
                                        result.heavy_ball, PALETTE[1])):
        steps = np.arange(len(errors))
        ax_curve.plot(steps, errors, color=color, label=f"{label}: {len(errors) - 1} steps")
        ax_curve.plot(steps, rule.rate ** steps, ":", color=color,
                      label=f"closed-form rate {rule.rate:.4f}ᵗ")
    ax_curve.axhline(tol, color=EDGE_COLOR, lw=1)
    ax_curve.set(yscale="log", ylim=(tol / 10, 10), xscale="log", xlabel="step (log scale)",
                 ylabel="max_i |θ_i| (log scale)",
                 title=f"Speed-up {result.speedup:.1f}× (√κ = {np.sqrt(kappa):.1f})")
    ax_curve.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_mean_square_edge(table: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """η·E[h²]/E[h] at the mean-square edge against the noise ratio σ²/m², one line per β, with
    the two plateaus 2(1+β) and 2(1−β) dashed (``verify_mean_square_edge``'s table)."""
    ax = _axes(ax, figsize=(7.5, 4.2))
    for color, (beta, rows) in zip(PALETTE, table.groupby("momentum"), strict=False):
        ax.plot(rows["noise ratio σ²/m²"], rows["η·E[h²]/E[h] at edge"], "o-", color=color,
                label=f"β = {beta:g}")
        for plateau in (2 * (1 + beta), 2 * (1 - beta)):
            ax.axhline(plateau, color=color, ls="--", lw=1)
    ax.set(xscale="log", yscale="log", xlabel="curvature noise σ²/m² (log scale)",
           ylabel="η·E[h²]/E[h] at the edge (log scale)",
           title="Mean-square edge: from 2(1+β) (no noise) to 2(1−β) (noise-dominated)")
    ax.legend()
    return ax


#: This lesson's slider panels (edutools.face.panels: the precompute and the tests read them).
PANELS = (
    Panel(run="heavy_ball.run_quadratics", show=show_quadratics,
          name="learning rate η × momentum β (quadratic)"),
    Panel(run="acceleration.run_acceleration", show=show_acceleration,
          name="condition number κ (acceleration)"),
    Panel(run="momentum_eoss.run_full_batch", show=show_full_batch_momentum,
          name="momentum β (full batch)", grid="FULL_BATCH_GRID", quick={"num_steps": 300},
          sample={"momentum": 0.5, "lr": 0.3}),
    # FAST-sized runs (momentum_eoss.PANEL) in both modes.
    Panel(run="momentum_eoss.run_momentum_batch", show=show_momentum_batch,
          name="momentum β × batch size B (plateau 2(1−β)/η)", grid="PANEL_GRID",
          quick={"num_steps": 200}, sample={"momentum": 0.5, "batch_size": 8}),
    Panel(run="jelassi_li.run_patch_momentum", show=show_patch_momentum,
          name="momentum γ (Jelassi–Li patches)", grid="SLIDER_GRID",
          quick={"num_steps": 60, "measure_every": 20}, sample={"momentum": 0.9},
          reference=True),
)
