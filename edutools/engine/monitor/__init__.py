"""An edge monitor for any PyTorch training loop: is the curvature at its optimizer's edge?

Training with step size η drives the loss's sharpness up to the optimizer's stability edge and
holds it there (2/η for GD, Cohen et al. 2021; 2(1−β)/η for batch sharpness under small-batch
momentum; (2+2β₁)/((1−β₁)η) for Adam's preconditioned sharpness, Cohen et al. 2022).
:class:`EdgeMonitor` measures that in a loop a learner writes themselves::

    from edutools.engine.monitor import EdgeMonitor

    monitor = EdgeMonitor(model=model, loss_fn=loss_fn, optimizer=opt, probe=(X, y))
    for step in range(num_steps):
        opt.zero_grad()
        loss_fn(model(X), y).backward()
        opt.step()
        monitor.step()                 # or monitor.attach() once, before the loop
    monitor.record                     # one row per measurement (a pandas DataFrame)
    monitor.verdict()                  # 'λ_max at 1.03 of 2/η = 6.667 at step 600 (SGD, lr=0.3)'

``probe=loader`` (a ``DataLoader`` of ``(X, y)`` batches) measures batch sharpness over fresh
mini-batches of the loader's batch size, and λ_max on a pool drawn from the loader once
(:mod:`.probes`). To watch it draw, :func:`edutools.face.plots.monitor.live_monitor` (face
layer) gives the monitor a figure redrawn in place at most once a second.

Modules, one concern each: :mod:`.edges` (the edge of an optimizer, read from its param groups:
:func:`optimizer_edge` → :class:`OptimizerEdge`, with the derivations for dampening and weight
decay), :mod:`.preconditioned` (Adam's P^{-1/2} H P^{-1/2} operator), :mod:`.probes` (fixed
batch or loader), :mod:`.measurement` (one record row, taken without disturbing the training)
and :mod:`.monitor` (:class:`EdgeMonitor`).

Record columns, one row per measurement: ``step`` (optimizer steps seen), ``optimizer``, ``lr``,
``momentum`` (β, or Adam's β₁), ``dampening``, ``nesterov``, ``weight_decay``, ``rho`` (SAM),
``mode`` (``"eval"``), ``grad_norm`` (‖∇L‖ on the probe), ``lambda_max``,
``preconditioned_sharpness`` (Adam/AdamW, instead of ``lambda_max``), ``batch_sharpness``,
``batch_sharpness_se``, ``full_batch_edge`` and ``small_batch_edge`` with their formulas
(``*_name``), then the headline: ``curvature`` (the column compared: batch sharpness when it is
measured and has an edge, else λ_max or the preconditioned sharpness), ``edge``, ``edge_name``,
``ratio`` (curvature / edge), ``ratio_se``; ``description``, ``notes`` (what the edge assumes),
``converged`` (Lanczos), ``hvps`` and ``seconds`` spent measuring. Curvatures and edges are in
loss per parameter² (Hessian eigenvalue units); NaN where not measured or without a formula.

Cost: each measurement is one gradient and one Lanczos solve on the probe (warm-started: about
5 HVPs once the top eigenvector moves slowly), plus ``num_batches`` HVPs on mini-batches for
batch sharpness — 8-16 ms on the tanh MLP 20-32-32-4 with a 200-sample probe, several training
steps' worth on any model. So the default cadence is a *time budget* (``every=None``,
``budget=0.1``): the monitor measures when the loop has run ten times as long as the last
measurement took, which keeps every measurement after the first within 10% of the loop's time
(``tests/benchmarks/bench_monitor.py``: +8.6% on lesson 08's CNN; +23% on a 0.67-s run of lesson
00's network, where the one measurement at step 1 is most of the cost); ``every=k`` measures
every k-th step instead, for a reproducible rhythm.
"""

from edutools.engine.monitor.edges import OptimizerEdge, optimizer_edge
from edutools.engine.monitor.measurement import MEASUREMENT_MODE, MonitorDivergedError
from edutools.engine.monitor.monitor import DEFAULT_BUDGET, DEFAULT_EVERY, EdgeMonitor
from edutools.engine.monitor.preconditioned import (
    PreconditionedHessianOperator,
    adam_preconditioner,
)
from edutools.engine.monitor.probes import DEFAULT_PROBE_SIZE, MonitorProbe

__all__ = ["DEFAULT_BUDGET", "DEFAULT_EVERY", "DEFAULT_PROBE_SIZE", "EdgeMonitor",
           "MEASUREMENT_MODE", "MonitorDivergedError", "MonitorProbe", "OptimizerEdge",
           "PreconditionedHessianOperator", "adam_preconditioner", "optimizer_edge"]
