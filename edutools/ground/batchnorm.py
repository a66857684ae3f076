"""BatchNorm running statistics left untouched by a forward pass: for optimizers that evaluate
the network at a second, perturbed point each step (SAM's θ + ε̂).

A norm layer in training mode updates ``running_mean``, ``running_var`` and
``num_batches_tracked`` on every forward pass. An optimizer with a second pass per step would move
them twice, the second time with activations of a network that is never evaluated (davda54/sam
issue #17; Google's SAM keeps the statistics of the first pass only). The helpers below save the
buffers before such a pass and copy them back after it, which is exact (bit for bit, including
``num_batches_tracked`` and the ``momentum=None`` cumulative mode) and works for every
``BatchNorm*d``, ``SyncBatchNorm`` and ``InstanceNorm*d(track_running_stats=True)``. (Setting
``momentum = 0`` instead still counts the batch in ``num_batches_tracked`` and breaks the
cumulative mode.) The normalisation itself still uses the batch statistics of that pass.

Ground layer: the training loop (:mod:`edutools.engine.training`) and SAM
(:mod:`edutools.engine.sam`, which states the policy) both use it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn.modules.batchnorm import _NormBase

# _NormBase is the common base of BatchNorm*, SyncBatchNorm and InstanceNorm*: the one class
# that owns running_mean / running_var / num_batches_tracked.

_SAVED = "_sam_saved_running_stats"
_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def _tracking_modules(model: nn.Module) -> Iterator[nn.Module]:
    for module in model.modules():
        if isinstance(module, _NormBase) and module.track_running_stats:
            yield module


def disable_running_stats(model: nn.Module) -> None:
    """Snapshot the running statistics of every norm layer in ``model``.

    Call before the perturbed forward pass; :func:`enable_running_stats` copies the snapshot back.
    Calling it twice without :func:`enable_running_stats` in between raises ``RuntimeError``
    (the second snapshot would already contain the perturbed pass).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    modules = list(_tracking_modules(model))
    if any(hasattr(m, _SAVED) for m in modules):
        raise RuntimeError("disable_running_stats was already called on this model; call "
                           "enable_running_stats first")
    with torch.no_grad():
        for module in modules:
            saved = {name: getattr(module, name).clone() for name in _BUFFERS
                     if getattr(module, name, None) is not None}
            setattr(module, _SAVED, saved)


def enable_running_stats(model: nn.Module) -> None:
    """Copy back the statistics saved by :func:`disable_running_stats` (no-op if none saved)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    with torch.no_grad():
        for module in model.modules():
            saved = module.__dict__.pop(_SAVED, None)
            if saved is None:
                continue
            for name, value in saved.items():
                getattr(module, name).copy_(value)


@contextmanager
def frozen_running_stats(model: nn.Module, *, enabled: bool = True) -> Iterator[None]:
    """Context manager: forward passes inside leave the running statistics unchanged.

    ``enabled=False`` makes it a no-op, which lets one closure serve both passes of a SAM step::

        def closure():
            with frozen_running_stats(model, enabled=sam.perturbed):
                loss = loss_fn(model(X), y)
                loss.backward()
            return loss
    """
    if not enabled:
        yield
        return
    disable_running_stats(model)
    try:
        yield
    finally:
        enable_running_stats(model)
