"""Figures of curvature against its edges that several lessons share."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes

from edutools.face.plots.style import EDGE_COLOR
from edutools.ground.theory.quadratic import StabilityRegion


def plot_stability_region(ax: Axes, region: StabilityRegion, *,
                          point: tuple[float, float] | None = None) -> object:
    """Draw a :class:`~edutools.ground.theory.quadratic.StabilityRegion` in the (η·λ, β) plane,
    coloured by the convergence factor per step (blank where it diverges), with the theory edge
    dashed and an optional learner's point (η·λ, β). Returns the ``QuadMesh`` (for a colour
    bar)."""
    step_curvature, momenta, radius = region.step_curvature, region.momenta, region.radius
    nesterov, max_step_curvature = region.nesterov, float(step_curvature[-1])
    mesh = ax.pcolormesh(step_curvature, momenta, np.where(radius < 1, radius, np.nan),
                         cmap="viridis", vmin=0, vmax=1)
    ax.plot(region.edge, momenta, "--", color="black", label="edge (theory)")
    ax.axvline(2.0, color=EDGE_COLOR, linestyle=":", label="GD edge ηλ = 2")
    if point is not None:
        ax.plot(*point, "o", color="#d62728", markersize=10,
                label=f"you: ηλ = {point[0]:.2f}, β = {point[1]:.2f}")
    ax.set(xlabel="η·λ", ylabel="momentum β", xlim=(0, max_step_curvature),
           ylim=(0, float(momenta[-1])),
           title=("Nesterov" if nesterov else "Heavy ball") + ": stable region (coloured)")
    ax.legend(loc="upper right", fontsize=8, frameon=True)
    return mesh
