"""The course's one training loop (:func:`train`), its record and callbacks, and schedules.

``train(model, data, lr=..., num_steps=..., batch_size=..., momentum=...)`` runs full-batch GD or
mini-batch SGD and records measurements; ``train(model, data, phases=[Phase(...), ...])`` runs a
schedule with one optimizer. Momentum follows ``torch.optim.SGD``: ``v ← βv + g``, ``θ ← θ − ηv``.
"""

from edutools.engine.training.loop import evaluate, full_batch_grad_norm, train
from edutools.engine.training.phases import Phase
from edutools.engine.training.record import RunRecord, partial_watch
from edutools.engine.training.result import (
    Callback,
    TrainingDivergedWarning,
    TrainResult,
    TrainState,
)

__all__ = ["Callback", "Phase", "RunRecord", "TrainResult", "TrainState",
           "TrainingDivergedWarning", "evaluate", "full_batch_grad_norm", "partial_watch", "train"]
