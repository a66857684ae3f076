"""Cohen et al. 2021 and 2022 on a network of your own (lesson 08): a plain PyTorch loop, an
:class:`~edutools.engine.monitor.EdgeMonitor`, and where each optimizer sits against its edge.

The network is one the course has not used: a small convolutional net on scikit-learn's 8×8
digits (:func:`small_cnn`). The loop is the one a learner writes for any project
(:func:`run_monitored`), with one line added, ``monitor.step()`` after ``optimizer.step()``; the
monitor reads the edge from the optimizer itself: 2(1+β)/η for full-batch heavy ball,
(2+2β₁)/((1−β₁)η) on the *preconditioned* sharpness for Adam. :func:`run_seed_recipe` watches the
seed's Keras-style recipe (lesson 00's network, SGD η = 0.01, β = 0.9, B = 64) with a loader probe,
so batch sharpness is compared with the small-batch edge 2(1−β)/η.

Engine layer: nothing here draws.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from edutools.engine.experiments.seed_network import mnist_data, seed_network_model
from edutools.engine.monitor import EdgeMonitor, MonitorDivergedError
from edutools.engine.training import RunRecord
from edutools.ground.data import Dataset, load_digits
from edutools.ground.device import get_device
from edutools.ground.models import half_mse
from edutools.ground.validation import check_lr, check_momentum, check_positive_int

__all__ = ["ADAM_BETAS", "DIGITS_TRAIN", "MonitoredRun", "OPTIMIZERS", "SLIDER_GRID",
           "digits_images", "late_ratio", "make_optimizer", "run_monitored", "run_seed_recipe",
           "small_cnn"]

#: Training digits (of 1,437 after the 20% validation split) used by the full-batch runs.
DIGITS_TRAIN = 1000
#: Adam's (β₁, β₂): PyTorch's defaults.
ADAM_BETAS = (0.9, 0.999)
#: The optimizers :func:`run_monitored` builds, by name.
OPTIMIZERS = ("sgd", "adam")
#: The lesson's sliders for full-batch heavy ball on the CNN (η = 0.2 at β = 0.9 diverges).
SLIDER_GRID: dict[str, tuple[float, ...]] = {"lr": (0.05, 0.1, 0.15), "momentum": (0.0, 0.5, 0.9)}

Watch = Callable[["MonitoredRun"], None]


@dataclass(frozen=True, eq=False, kw_only=True, repr=False)
class MonitoredRun(RunRecord):
    """A run watched by an :class:`~edutools.engine.monitor.EdgeMonitor`: its record is the
    monitor's (one row per measurement: ``step``, ``curvature``, ``edge``, ``ratio``, ``lambda_max``
    or ``preconditioned_sharpness``, …) plus ``train_loss``, the full-batch loss of the step
    measured (before its update); ``config`` holds the settings; ``verdict`` the monitor's line."""

    verdict: str = ""


def digits_images(*, seed: int = 0, num_train: int = DIGITS_TRAIN,
                  device: torch.device | str | None = None) -> Dataset:
    """scikit-learn's 8×8 digits (pixels in [0, 1], inputs flattened to 64), the first
    ``num_train`` of a split shuffled by ``seed``; the network unflattens them."""
    return load_digits(seed=seed, device=device or get_device()).subset(num_train)


def small_cnn(*, seed: int, device: torch.device | str | None = None) -> nn.Sequential:
    """A small CNN for 8×8 digits: 1 → 8 → 16 channels (3×3 convolutions, tanh), 2×2 average
    pooling, a linear read-out to 10 logits; 3,818 parameters, PyTorch's default initialisation
    drawn from a generator seeded by ``seed``. Input: (n, 64) flattened images."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = nn.Sequential(
            nn.Unflatten(1, (1, 8, 8)),
            nn.Conv2d(1, 8, kernel_size=3, padding=1), nn.Tanh(),
            nn.Conv2d(8, 16, kernel_size=3, padding=1), nn.Tanh(),
            nn.AvgPool2d(2), nn.Flatten(), nn.Linear(16 * 4 * 4, 10))
    return model.to(device or get_device())


def make_optimizer(name: str, params: Any, *, lr: float,
                   momentum: float = 0.9) -> torch.optim.Optimizer:
    """``"sgd"``: ``torch.optim.SGD(lr, momentum)`` (heavy ball); ``"adam"``:
    ``torch.optim.Adam(lr, betas=ADAM_BETAS)`` (``momentum`` unused)."""
    lr = check_lr(lr)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=check_momentum(momentum))
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=ADAM_BETAS)
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")


def run_monitored(*, optimizer: str = "sgd", lr: float, momentum: float = 0.9,
                  num_steps: int, every: int = 10, num_train: int = DIGITS_TRAIN,
                  seed: int = 0, watch: Watch | None = None) -> MonitoredRun:
    """Full-batch training of :func:`small_cnn` on :func:`digits_images` (half-MSE on one-hot
    labels), in a plain loop with an :class:`EdgeMonitor` measuring every ``every`` steps.

    The loop is a learner's own: ``zero_grad → loss.backward() → optimizer.step() →
    monitor.step()``. It stops early, with the message naming ``lr``, if the loss stops being
    finite or the monitor finds the curvature blown up (a step too large for this network).
    ``watch`` receives the partial run after every measurement.
    """
    num_steps = check_positive_int(num_steps, name="num_steps")
    start = time.perf_counter()
    config = dict(optimizer=optimizer, lr=lr, momentum=momentum if optimizer == "sgd" else 0.0,
                  num_steps=num_steps, every=every, num_train=num_train, seed=seed)
    data = digits_images(seed=seed, num_train=num_train)
    model = small_cnn(seed=seed, device=data.device)
    opt = make_optimizer(optimizer, model.parameters(), lr=lr, momentum=momentum)
    X, y = data.X_train, data.y_train
    losses: list[float] = []
    monitor = EdgeMonitor(model=model, loss_fn=half_mse, optimizer=opt, probe=(X, y),
                          every=every, watch=_partial(watch, losses, config))
    failure = None
    for _ in range(num_steps):
        opt.zero_grad(set_to_none=True)
        loss = half_mse(model(X), y)
        loss.backward()
        losses.append(float(loss.detach()))
        if not math.isfinite(losses[-1]):
            break
        opt.step()
        try:
            monitor.step()
        except MonitorDivergedError as error:  # the step blew the weights up: the run ends here
            failure = str(error)
            break
    return _finish(monitor, losses, config, seconds=time.perf_counter() - start,
                   failure=failure)


def run_seed_recipe(*, epochs: int, every: int = 25, lr: float = 0.01, momentum: float = 0.9,
                    batch_size: int = 64, seed: int = 0) -> MonitoredRun:
    """The seed's Keras-style recipe (lesson 00's network: flatten → 128 ReLU → dropout 0.2 →
    10, softmax cross-entropy, SGD η = 0.01, β = 0.9, B = 64 on the MNIST subset) in a plain
    ``DataLoader`` loop, watched with a loader probe: batch sharpness over fresh batches of B
    against 2(1−β)/η, measured in eval mode (dropout off)."""
    start = time.perf_counter()
    data = mnist_data(seed)
    model = seed_network_model(data, seed=seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    generator = torch.Generator().manual_seed(seed)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(data.X_train, data.y_train), batch_size=batch_size,
        shuffle=True, generator=generator)
    loss_fn = nn.CrossEntropyLoss()
    losses: list[float] = []
    config = dict(optimizer="sgd", lr=lr, momentum=momentum, batch_size=batch_size,
                  epochs=epochs, every=every, seed=seed)
    monitor = EdgeMonitor(model=model, loss_fn=loss_fn, optimizer=opt, probe=loader,
                          every=every, seed=seed)
    for _ in range(check_positive_int(epochs, name="epochs")):
        model.train()
        for X, y in loader:
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(X), y)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            monitor.step()
    return _finish(monitor, losses, config, seconds=time.perf_counter() - start)


def late_ratio(run: MonitoredRun, *, fraction: float = 0.5) -> float:
    """Median of ``curvature / edge`` over the last ``fraction`` of the measurements: where the
    run settled against its edge (1 = on it)."""
    record = run.record
    late = record.iloc[int(len(record) * (1 - fraction)):]
    return float(np.median(late["ratio"]))


def _with_losses(record: pd.DataFrame, losses: list[float]) -> pd.DataFrame:
    """The monitor's record with the loss of each measured step (step s: ``losses[s − 1]``)."""
    record = record.copy()
    if len(record):
        steps = record["step"].to_numpy(dtype=int)
        record["train_loss"] = [losses[s - 1] if s <= len(losses) else math.nan for s in steps]
    return record


def _partial(watch: Watch | None, losses: list[float],
             config: Mapping[str, Any]) -> Callable[[pd.DataFrame], None] | None:
    if watch is None:
        return None
    return lambda record: watch(MonitoredRun.partial_from(_with_losses(record, losses), config))


def _finish(monitor: EdgeMonitor, losses: list[float], config: dict[str, Any], *,
            seconds: float, failure: str | None = None) -> MonitoredRun:
    """The run's record; ``failure``: the monitor's divergence message, if it stopped the run."""
    diverged = failure is not None or (bool(losses) and not math.isfinite(losses[-1]))
    message = failure or (f"loss not finite at step {len(losses)} with lr={config['lr']:g}: too "
                          f"large a step for this network" if diverged else monitor.verdict())
    return MonitoredRun(record=_with_losses(monitor.record, losses), config=config,
                        step_losses=np.asarray(losses), diverged=diverged,
                        diverged_at=len(losses) if diverged else None, message=message,
                        seconds=seconds, verdict=monitor.verdict())
