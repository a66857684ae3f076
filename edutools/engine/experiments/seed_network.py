"""The course's seed experiment (lessons 00 and 07): the MNIST-style MLP trained by SGD with
heavy-ball momentum, on the 5,000 real digits that ship with the course.

The network is flatten → 128 ReLU → dropout 0.2 → 10, trained with softmax cross-entropy; one
measurement per epoch (losses, accuracies, the gradient norm and the stability proxies of
:func:`edutools.engine.training.train`). :func:`train_seed_network` is a slider's ``run``
function: keyword parameters named like the sliders, a small picklable
:class:`SeedNetworkRun` as result (no model object), so a disk cache or a grid runner can call it.

Momentum follows ``torch.optim.SGD``: ``v ← βv + g``, ``θ ← θ − ηv``. Engine layer: nothing
here draws.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from torch import nn

from edutools.engine.training import RunRecord, partial_watch, train
from edutools.ground.data import Dataset, load_mnist_subset
from edutools.ground.models import mlp
from edutools.ground.validation import check_positive_int

__all__ = ["BATCH_SIZES", "DROPOUT", "EPOCHS", "FAST_EPOCHS", "HIDDEN_WIDTH", "LR", "MOMENTA",
           "SLIDER_GRID", "SeedNetworkRun", "mnist_data", "seed_network_frame",
           "seed_network_model", "seed_network_table", "summarise_seed_network",
           "train_seed_network"]

#: The course's grid: momentum β × batch size B (lesson 00's sliders, lesson 07's capstone).
MOMENTA: tuple[float, ...] = (0.0, 0.5, 0.9, 0.95, 0.99)
BATCH_SIZES: tuple[int, ...] = (32, 64, 128, 256)
SLIDER_GRID: dict[str, tuple[Any, ...]] = {"momentum": MOMENTA, "batch_size": BATCH_SIZES}
#: The seed recipe's learning rate η, hidden width and dropout probability.
LR = 0.01
HIDDEN_WIDTH = 128
DROPOUT = 0.2
#: Passes over the training set per run (full mode, and FAST mode).
EPOCHS = 20
FAST_EPOCHS = 10

Watch = Callable[["SeedNetworkRun"], None]


@functools.lru_cache(maxsize=4)
def mnist_data(seed: int = 0) -> Dataset:
    """The 5,000-digit MNIST subset split 4,000 / 1,000 by ``seed`` (cached: a slider that
    retrains does not re-read and re-verify the file)."""
    return load_mnist_subset(seed=seed)


@dataclass(frozen=True, eq=False, kw_only=True, repr=False)
class SeedNetworkRun(RunRecord):
    """One training run of the seed network: a
    :class:`~edutools.engine.training.record.RunRecord` and its summary.

    ``config`` holds the settings (``momentum`` β, ``batch_size`` B, ``lr`` η, ``epochs``,
    ``seed``, …; properties of the same names read them). ``record`` has one row per epoch
    (``epoch`` 0…``epochs``): ``train_loss``, ``val_loss``, ``train_acc``, ``val_acc``,
    ``grad_norm``, ``loss_var`` (variance of the last 50 mini-batch losses), ``val_jitter`` (RMS
    change of the validation loss over the last 5 measurements), and ``step``.

    The summary, computed from ``record``: :attr:`final_val_acc`, :attr:`best_val_acc`,
    :attr:`final_train_loss`, and the stability proxies :attr:`loss_var`,
    :attr:`relative_loss_spread`, :attr:`grad_norm`, :attr:`val_jitter`, each the median over
    the second half of the run (epochs ≥ ``epochs``/2); ``relative_loss_spread`` is the median
    of ``loss_var / train_loss²`` (dimensionless).
    """

    @classmethod
    def partial_message(cls, record: pd.DataFrame, config: Mapping[str, Any]) -> str:
        """How far a run still training is: "k of N epochs"."""
        return f"{len(record) - 1} of {config['epochs']} epochs"

    @property
    def momentum(self) -> float:
        """Heavy-ball β."""
        return float(self.setting("momentum"))

    @property
    def batch_size(self) -> int:
        """Mini-batch size B."""
        return int(self.setting("batch_size"))

    @property
    def lr(self) -> float:
        """Learning rate η."""
        return float(self.setting("lr"))

    @property
    def epochs(self) -> int:
        """Passes over the training set asked for."""
        return int(self.setting("epochs"))

    @property
    def seed(self) -> int:
        """Seed of the split, the initial weights, the batch order and dropout."""
        return int(self.setting("seed"))

    @property
    def final_val_acc(self) -> float:
        """Validation accuracy at the last measurement."""
        return float(self.record["val_acc"].iloc[-1])

    @property
    def best_val_acc(self) -> float:
        """Best validation accuracy over the measurements."""
        return float(self.record["val_acc"].max())

    @property
    def final_train_loss(self) -> float:
        """Full training loss at the last measurement."""
        return float(self.record["train_loss"].iloc[-1])

    @property
    def loss_var(self) -> float:
        """Median mini-batch loss variance over the second half."""
        return _second_half_median(self.record, self.record["loss_var"], self.epochs)

    @property
    def relative_loss_spread(self) -> float:
        """Median of loss_var / train_loss² over the second half (dimensionless)."""
        record = self.record
        return _second_half_median(record, record["loss_var"] / record["train_loss"] ** 2,
                                   self.epochs)

    @property
    def grad_norm(self) -> float:
        """Median full-batch gradient norm over the second half."""
        return _second_half_median(self.record, self.record["grad_norm"], self.epochs)

    @property
    def val_jitter(self) -> float:
        """Median validation jitter over the second half."""
        return _second_half_median(self.record, self.record["val_jitter"], self.epochs)

    def summary(self) -> dict[str, float]:
        """The settings and final numbers as one flat row (for a results table)."""
        return {"momentum": self.momentum, "batch_size": self.batch_size, "lr": self.lr,
                "epochs": self.epochs, "seed": self.seed, "final_val_acc": self.final_val_acc,
                "best_val_acc": self.best_val_acc, "final_train_loss": self.final_train_loss,
                "loss_var": self.loss_var, "relative_loss_spread": self.relative_loss_spread,
                "grad_norm": self.grad_norm, "val_jitter": self.val_jitter,
                "diverged": self.diverged}

    def __repr__(self) -> str:
        return (f"SeedNetworkRun(β={self.momentum:g}, B={self.batch_size}, η={self.lr:g}: "
                f"{self.message}; {len(self.record)} measurements, {self.seconds:.1f} s)")


def _second_half_median(record: pd.DataFrame, values: pd.Series, epochs: int) -> float:
    late = values[record["epoch"] >= epochs / 2].to_numpy(dtype=float)
    late = late[np.isfinite(late)]
    return float(np.median(late)) if len(late) else math.nan


def summarise_seed_network(record: pd.DataFrame, *, momentum: float, batch_size: int,
                           lr: float, epochs: int, seed: int, diverged_at: int | None = None,
                           message: str = "", seconds: float = 0.0) -> SeedNetworkRun:
    """A :class:`SeedNetworkRun` from a (possibly partial) training record and its settings."""
    config = dict(momentum=momentum, batch_size=batch_size, lr=lr, epochs=epochs, seed=seed)
    return SeedNetworkRun(record=record, config=config, diverged=diverged_at is not None,
                          diverged_at=diverged_at,
                          message=message or SeedNetworkRun.partial_message(record, config),
                          seconds=float(seconds))


def seed_network_model(data: Dataset, *, seed: int) -> nn.Sequential:
    """The seed's Keras network in PyTorch, initialised as Keras does.

    ``Flatten(28×28) → Dense(128, ReLU) → Dropout(0.2) → Dense(10)``, softmax folded into the
    cross-entropy loss; kernels glorot-uniform U(±√(6/(fan_in + fan_out))) and biases zero, as
    Keras' ``Dense`` defaults (PyTorch's own default, U(±1/√fan_in) for weights and biases, trains
    measurably slower in the first epoch). ``seed`` fixes the initial weights: equal for every
    momentum, batch size and learning rate of a seed.
    """
    return mlp([data.input_dim, HIDDEN_WIDTH, data.num_classes], activation="relu",
               dropout=DROPOUT, init="glorot", seed=seed, device=data.device)


def train_seed_network(*, momentum: float, batch_size: int, lr: float = LR,
                       epochs: int | None = None, seed: int = 0, fast: bool = False,
                       watch: Watch | None = None) -> SeedNetworkRun:
    """Train the seed network once on the MNIST subset and summarise the run.

    Args:
        momentum: heavy-ball β in [0, 1).
        batch_size: mini-batch size B in [1, 4000]; each epoch takes 4000 // B steps.
        lr: learning rate η (> 0).
        epochs: passes over the 4,000 training digits; ``None`` = :data:`FAST_EPOCHS` if
            ``fast`` else :data:`EPOCHS`.
        seed: seeds the train/validation split, the initial weights (the same for every β, B),
            the batch order and dropout.
        fast: the FAST-mode budget when ``epochs`` is not given.
        watch: called after every epoch with the partial :class:`SeedNetworkRun` so far (for a
            figure that draws while the network trains).

    Returns:
        A :class:`SeedNetworkRun`; about 2–5 s for 10 epochs on one CPU core.
    """
    epochs = check_positive_int((FAST_EPOCHS if fast else EPOCHS) if epochs is None else epochs,
                                name="epochs")
    data = mnist_data(int(seed))
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) \
            or not 1 <= batch_size <= data.num_train:
        raise ValueError(f"batch_size must be a whole number in [1, {data.num_train}], "
                         f"got {batch_size!r}")
    settings = dict(momentum=momentum, batch_size=int(batch_size), lr=lr, epochs=epochs,
                    seed=seed)
    model = seed_network_model(data, seed=seed)
    steps_per_epoch = data.num_train // batch_size
    result = train(model, data, lr=lr, momentum=momentum, batch_size=int(batch_size),
                   num_steps=epochs * steps_per_epoch, measure_every=steps_per_epoch,
                   loss_fn="cross_entropy", seed=seed,
                   watch=partial_watch(watch, settings, kind=SeedNetworkRun),
                   description=f"β={momentum}, B={batch_size}")
    return SeedNetworkRun.from_train(result, **settings)


def seed_network_frame(runs: Iterable[SeedNetworkRun]) -> pd.DataFrame:
    """One row per run: its :meth:`SeedNetworkRun.summary` (settings and final numbers)."""
    rows = pd.DataFrame([run.summary() for run in runs])
    if rows.empty:
        raise ValueError("runs is empty: give at least one SeedNetworkRun")
    return rows


def seed_network_table(runs: Iterable[SeedNetworkRun], *, value: str = "final_val_acc"
                       ) -> pd.DataFrame:
    """Pivot ``runs`` into a momentum × batch-size table of ``value`` (a
    :meth:`SeedNetworkRun.summary` key); several seeds of a setting are averaged."""
    rows = seed_network_frame(runs)
    if value not in rows.columns:
        raise ValueError(f"value must be one of {sorted(rows.columns)}, got {value!r}")
    return rows.pivot_table(index="momentum", columns="batch_size", values=value, aggfunc="mean")
