"""Figures: one style (:mod:`.style`), shared curvature figures (:mod:`.curvature`) and one module
per lesson for that lesson's figures. Plot functions receive numbers and draw; none computes.
"""

from edutools.face.plots.curvature import plot_stability_region
from edutools.face.plots.style import (
    EDGE_COLOR,
    LABELS,
    PALETTE,
    label_for,
    plot_against_edge,
    plot_heatmap,
    plot_image_grid,
    plot_loss_curves,
    plot_stability_proxies,
    use_style,
)

__all__ = ["EDGE_COLOR", "LABELS", "PALETTE", "label_for", "plot_against_edge", "plot_heatmap",
           "plot_image_grid", "plot_loss_curves", "plot_stability_proxies",
           "plot_stability_region", "use_style"]
