"""The course's one training loop (:func:`train`), its record and callbacks, and schedules.

``train(model, data, lr=..., num_steps=..., batch_size=..., momentum=...)`` runs full-batch GD or
mini-batch SGD and records measurements; ``lr`` and ``momentum`` may be functions of the step (or
``lr`` a torch ``LRScheduler``), and ``train(model, data, phases=[Phase(...), ...])`` runs a
per-epoch schedule; either way one optimizer serves the whole run. Momentum follows
``torch.optim.SGD``: ``v ← βv + g``, ``θ ← θ − ηv``. Optimizers needing a closure or a second pass
(SAM) declare it through :mod:`~edutools.engine.training.protocols`.

Modules: ``loop`` (:func:`train`: arguments → plan), ``loop_run`` (the steps), ``measure`` (the
record rows), ``schedules``, ``phases``, ``protocols``, ``divergence``, ``result``.
"""

from edutools.engine.training.loop import evaluate, full_batch_grad_norm, train
from edutools.engine.training.phases import Phase
from edutools.engine.training.protocols import ClosureOptimizer, TwoPassOptimizer
from edutools.engine.training.record import RunRecord, partial_watch
from edutools.engine.training.result import (
    Callback,
    TrainingDivergedWarning,
    TrainResult,
    TrainState,
)

__all__ = ["Callback", "ClosureOptimizer", "Phase", "RunRecord", "TrainResult", "TrainState",
           "TrainingDivergedWarning", "TwoPassOptimizer", "evaluate", "full_batch_grad_norm",
           "partial_watch", "train"]
