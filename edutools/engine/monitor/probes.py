"""The data an :class:`~edutools.engine.monitor.EdgeMonitor` measures on: its probe.

Two kinds of probe, decided once at construction:

* **A fixed batch** ``(X, y)`` of tensors: λ_max (or Adam's preconditioned sharpness) of the
  loss on exactly that batch, at every measurement. Pass the training set itself for full-batch
  GD. Batch sharpness is measured too if ``batch_size`` is given (mini-batches drawn from X).
* **A data loader** (any re-iterable of ``(X, y)`` batches, e.g. ``torch.utils.data.DataLoader``):
  batches are drawn from it *once*, at construction, until ``probe_size`` samples are pooled.
  That pool is the fixed probe batch of λ_max, and batch sharpness averages over fresh
  mini-batches of the training batch size (the loader's ``batch_size``, else its first batch's
  length) drawn from the pool at every measurement with their own seeded generator. Drawing once
  keeps the loader out of the training: iterating it again at each measurement would advance a
  ``generator=`` it was given, and the user's shuffling with it. The draw itself runs with the
  global torch, Python and NumPy random states saved and restored, and the loader's (and its
  sampler's) own generators too, so constructing the monitor does not change the training's
  random stream either.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from edutools.ground.validation import check_positive_int, check_samples

#: Samples pooled from a loader when ``probe_size`` is not given.
DEFAULT_PROBE_SIZE = 1024


@dataclass(frozen=True, eq=False)
class MonitorProbe:
    """What the monitor measures on.

    Attributes:
        X, y: the probe batch (on the model's device): λ_max's loss is ``loss_fn(model(X), y)``.
        batch_size: size of batch sharpness' mini-batches drawn from X; None: not measured.
        source: ``"batch"`` (a fixed ``(X, y)``) or ``"loader"`` (pooled from a loader).
    """

    X: torch.Tensor
    y: torch.Tensor
    batch_size: int | None
    source: str


def resolve_probe(probe: Any, *, device: torch.device, batch_size: int | None = None,
                  probe_size: int | None = None) -> MonitorProbe:
    """Turn the ``probe`` argument into a :class:`MonitorProbe` on ``device`` (see module doc).

    Raises ``ValueError`` naming the problem: no probe, a type that is neither a pair of tensors
    nor a re-iterable of batches, a one-shot iterator, batches that are not ``(X, y)`` pairs.
    """
    if batch_size is not None:
        check_positive_int(batch_size, name="batch_size")
    if probe is None:
        raise ValueError("probe is required: a fixed batch (X, y) of tensors, or a data loader "
                         "of (X, y) batches")
    if isinstance(probe, tuple | list) and len(probe) == 2 \
            and all(isinstance(part, torch.Tensor) for part in probe):
        X, y = probe
        check_samples(X, y, names=("probe X", "probe y"))
        if batch_size is not None and batch_size > len(X):
            raise ValueError(f"batch_size={batch_size} is larger than the probe batch "
                             f"({len(X)} samples)")
        return MonitorProbe(X=X.to(device), y=y.to(device), batch_size=batch_size, source="batch")
    not_batches = isinstance(probe, tuple | list) and not all(
        isinstance(batch, tuple | list) for batch in probe)
    if not_batches or isinstance(probe, torch.Tensor | dict | str) \
            or not isinstance(probe, Iterable):
        raise ValueError(f"probe must be a pair (X, y) of tensors or a data loader of (X, y) "
                         f"batches, got {_describe(probe)}")
    # Not iter(probe) is probe: iterating a DataLoader draws from its generator.
    if isinstance(probe, Iterator):
        raise ValueError(f"probe is a one-shot iterator ({type(probe).__name__}); pass the loader "
                         "itself (re-iterable), not iter(loader) or a generator")
    size = DEFAULT_PROBE_SIZE if probe_size is None else check_positive_int(
        probe_size, name="probe_size")
    X, y, first_length = _pool(probe, size)
    batch_size = batch_size or getattr(probe, "batch_size", None) or first_length
    return MonitorProbe(X=X.to(device), y=y.to(device), batch_size=min(batch_size, len(X)),
                        source="loader")


def _pool(loader: Iterable[Any], size: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    inputs: list[torch.Tensor] = []
    targets: list[torch.Tensor] = []
    count = 0
    with _random_states_kept(loader):
        for index, batch in enumerate(loader):
            if not (isinstance(batch, tuple | list) and len(batch) == 2
                    and all(isinstance(part, torch.Tensor) for part in batch)):
                raise ValueError(f"the probe loader's batch {index} is {_describe(batch)}; "
                                 "it must be a pair (X, y) of tensors")
            inputs.append(batch[0].detach())
            targets.append(batch[1].detach())
            count += len(batch[0])
            if count >= size:
                break
    if not inputs:
        raise ValueError("the probe loader yielded no batch")
    X, y = torch.cat(inputs)[:size], torch.cat(targets)[:size]
    check_samples(X, y, names=("probe X", "probe y"))
    return X, y, len(inputs[0])


@contextmanager
def _random_states_kept(loader: Any) -> Iterator[None]:
    generators = _loader_generators(loader)
    saved = [generator.get_state() for generator in generators]
    # The legacy global NumPy state on purpose: a dataset's transforms may draw from it.
    python_state, numpy_state = random.getstate(), np.random.get_state()  # noqa: NPY002
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        for generator, state in zip(generators, saved, strict=True):
            generator.set_state(state)
        random.setstate(python_state)
        np.random.set_state(numpy_state)  # noqa: NPY002


def _loader_generators(loader: Any) -> list[torch.Generator]:
    # A DataLoader may hold a generator itself, in its sampler, or in its batch sampler's sampler.
    holders = [loader, getattr(loader, "sampler", None),
               getattr(getattr(loader, "batch_sampler", None), "sampler", None)]
    found: list[torch.Generator] = []
    for holder in holders:
        generator = getattr(holder, "generator", None)
        if isinstance(generator, torch.Generator) and all(generator is not g for g in found):
            found.append(generator)
    return found


def _describe(value: Any) -> str:
    if isinstance(value, tuple | list):
        kinds = ", ".join(type(part).__name__ for part in value[:3])
        more = ", …" if len(value) > 3 else ""
        return f"a {type(value).__name__} of {len(value)} ({kinds}{more})"
    return type(value).__name__
