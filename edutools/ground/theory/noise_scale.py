"""SGD's noise scale η/(B(1−β)) and the rules that keep it fixed when the batch size changes.

:func:`noise_scale` is the size of SGD's gradient noise per unit of "time" (Smith & Le 2018; Smith
et al. 2018); :func:`linear_scaling_lr` (Goyal et al. 2017) and :func:`momentum_for_noise_scale`
keep it fixed. It is the same quantity as lesson 03's small-batch edge 2(1−β)/η per sample.
Momentum is heavy ball (``v ← βv + g``, ``θ ← θ − ηv``).
"""

from __future__ import annotations

from edutools.ground.validation import check_lr, check_momentum, check_positive_int

__all__ = ["linear_scaling_lr", "momentum_for_noise_scale", "noise_scale"]


def noise_scale(lr: float, batch_size: int, momentum: float = 0.0) -> float:
    """SGD's noise scale η/(B(1−β)): the effective step η/(1−β) per sample of the batch.

    Runs with the same noise scale take the same "time" per epoch (effective step × steps per
    epoch = N·η/(B(1−β))) with the same gradient-noise temperature, so, at small enough η, they
    trace the same curves against epochs.
    """
    check_positive_int(batch_size, name="batch_size")
    return check_lr(lr) / (batch_size * (1.0 - check_momentum(momentum)))


def linear_scaling_lr(lr: float, batch_size: int, new_batch_size: int) -> float:
    """Goyal et al.'s linear scaling rule: multiply η by k when B is multiplied by k."""
    check_positive_int(batch_size, name="batch_size")
    check_positive_int(new_batch_size, name="new_batch_size")
    return check_lr(lr) * new_batch_size / batch_size


def momentum_for_noise_scale(lr: float, batch_size: int, target: float) -> float:
    """The β with η/(B(1−β)) = ``target``; raises ``ValueError`` if it is not in [0, 1)."""
    check_positive_int(batch_size, name="batch_size")
    check_lr(target, name="target")
    momentum = 1.0 - check_lr(lr) / (batch_size * target)
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"no momentum in [0, 1) gives noise scale {target:g} with lr={lr:g} and "
                         f"batch_size={batch_size} (it would need β = {momentum:.3g}); "
                         "change lr or batch_size")
    return momentum
