"""BatchNorm running statistics under SAM: one update per step, from the pass at θ.

SAM runs two forward passes per step on the same batch: one at θ, one at θ + ε̂. A BatchNorm
layer in training mode updates its running statistics on every forward pass, so without care they
move twice per step, the second time with activations of a network (θ + ε̂) that is never
evaluated (davda54/sam issue #17; Google's reference implementation keeps the statistics of the
first pass only).

Policy of this package: **the running statistics follow the unperturbed network**. Passes at θ
update them; passes at θ + ε̂ leave them exactly as they were. The helpers live in
:mod:`edutools.ground.batchnorm` (the training loop uses them too, through the
:class:`~edutools.engine.training.protocols.TwoPassOptimizer` protocol) and are re-exported here.

With ``SAM(..., ascent_every=k)`` the reuse steps have no pass at θ. Freezing there too
(``frozen_running_stats(model, enabled=sam.perturbed)``) updates the statistics every k-th step
only; to update them on every step, freeze only the perturbed passes of fresh steps:
``enabled=sam.perturbed and sam.ascent_due``.
"""

from edutools.ground.batchnorm import (
    disable_running_stats,
    enable_running_stats,
    frozen_running_stats,
)

__all__ = ["disable_running_stats", "enable_running_stats", "frozen_running_stats"]
