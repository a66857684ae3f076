"""Closed-form results, no training: stability edges (:mod:`.edges`), momentum conventions
(:mod:`.conventions`), the quadratic model (:mod:`.quadratic`) and SGD's noise scale
(:mod:`.noise_scale`).

The edges and the noise scale are importable from here: ``from edutools.ground.theory import
gd_edge``, or through the short name ``from edutools.theory import gd_edge``.
"""

from edutools.ground.theory.edges import (
    RunEdges,
    effective_lr,
    gd_edge,
    momentum_edge,
    sam_edge,
    small_batch_momentum_edge,
)
from edutools.ground.theory.noise_scale import (
    linear_scaling_lr,
    momentum_for_noise_scale,
    noise_scale,
)

__all__ = ["RunEdges", "effective_lr", "gd_edge", "linear_scaling_lr", "momentum_edge",
           "momentum_for_noise_scale", "noise_scale", "sam_edge", "small_batch_momentum_edge"]
