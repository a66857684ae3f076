"""Model builders and the losses the lessons use.

One builder, :func:`mlp`, makes every network of the course: a flatten layer, then linear layers of
the given widths with an activation between them (and optional dropout).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from edutools.ground.validation import check_fraction, check_positive_int

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "softplus": nn.Softplus,
    "identity": nn.Identity,
}
INITS = ("lecun", "glorot", "torch")

#: A loss: ``loss_fn(outputs, targets)`` → scalar tensor, a mean over samples.
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def mlp(widths: Sequence[int], *, activation: str = "tanh", init: str = "lecun",
        init_scale: float = 1.0, dropout: float = 0.0, bias: bool = True, seed: int | None = None,
        device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
        ) -> nn.Sequential:
    """Fully connected network ``Flatten → Linear(w0, w1) → act → … → Linear(w_{k-1}, w_k)``.

    Args:
        widths: layer widths including input and output, e.g. ``[20, 64, 64, 4]``.
        activation: one of ``tanh, relu, gelu, elu, softplus, identity``.
        init: ``"lecun"`` draws weights from N(0, 1/fan_in) with zero biases (the
            edge-of-stability papers' choice); ``"glorot"`` draws them from
            U(±√(6/(fan_in + fan_out))) with zero biases (Keras' ``Dense`` default, so the
            seed's Keras network is ported faithfully); ``"torch"`` keeps PyTorch's default,
            U(±1/√fan_in) for weights *and* biases.
        init_scale: multiplies every weight after initialisation (COURSE.md's "init ×0.3").
        dropout: probability of dropping a hidden unit (after each hidden activation); 0 = none.
        bias: whether linear layers have biases.
        seed: seeds the initialisation (``None``: use torch's global generator).
        device, dtype: where and in which precision the parameters live.
    """
    widths = [check_positive_int(w, name="width") for w in widths]
    if len(widths) < 2:
        raise ValueError(f"widths needs at least an input and an output width, got {widths}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    if not math.isfinite(init_scale) or init_scale <= 0:
        raise ValueError(f"init_scale must be a finite number > 0, got {init_scale!r}")
    dropout = check_fraction(dropout, name="dropout")
    generator = torch.Generator().manual_seed(seed) if seed is not None else None

    layers: list[nn.Module] = [nn.Flatten()]
    for index, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        linear = nn.Linear(fan_in, fan_out, bias=bias, dtype=dtype)
        _initialise(linear, init=init, scale=init_scale, generator=generator)
        layers.append(linear)
        if index < len(widths) - 2:
            layers.append(ACTIVATIONS[activation]())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    model = nn.Sequential(*layers)
    return model.to(device) if device is not None else model


def _initialise(linear: nn.Linear, *, init: str, scale: float,
                generator: torch.Generator | None) -> None:
    with torch.no_grad():
        if init == "lecun":
            std = 1.0 / math.sqrt(linear.in_features)
            weight = torch.randn(linear.weight.shape, generator=generator,
                                 dtype=linear.weight.dtype)
            linear.weight.copy_(weight * std)
            if linear.bias is not None:
                linear.bias.zero_()
        elif init == "glorot":
            bound = math.sqrt(6.0 / (linear.in_features + linear.out_features))
            fresh = torch.rand(linear.weight.shape, generator=generator,
                               dtype=linear.weight.dtype)
            linear.weight.copy_((2 * fresh - 1) * bound)
            if linear.bias is not None:
                linear.bias.zero_()
        else:
            bound = 1.0 / math.sqrt(linear.in_features)
            for tensor in (linear.weight, linear.bias):
                if tensor is not None:
                    fresh = torch.rand(tensor.shape, generator=generator, dtype=tensor.dtype)
                    tensor.copy_((2 * fresh - 1) * bound)
        linear.weight.mul_(scale)


def num_params(model: nn.Module) -> int:
    """Number of trainable scalars in ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def half_mse(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """0.5 · mean over samples of ‖f(x) − y‖² (summed over outputs): the course's MSE.

    ``outputs`` (n, k); ``targets`` either (n, k) / (n,) floats, or (n,) int64 class labels that
    are one-hot encoded. Unlike ``nn.MSELoss`` it does not divide by k, which would rescale every
    Hessian eigenvalue and so every stability edge.
    """
    if not targets.is_floating_point():
        targets = F.one_hot(targets, num_classes=outputs.shape[-1]).to(outputs.dtype)
    if targets.ndim == 1 and outputs.ndim == 2 and outputs.shape[1] == 1:
        targets = targets[:, None]
    return 0.5 * (outputs - targets).pow(2).reshape(outputs.shape[0], -1).sum(dim=1).mean()


def cross_entropy(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy averaged over samples; ``targets`` are int64 labels (n,)."""
    return F.cross_entropy(outputs, targets)


LOSSES = {"half_mse": half_mse, "cross_entropy": cross_entropy}


def resolve_loss(loss_fn: str | LossFn, *, name: str = "loss_fn") -> LossFn:
    """The loss function ``loss_fn`` stands for: a name in :data:`LOSSES` or a callable
    ``(outputs, targets) -> scalar``. The one place every entry point (``train``, the sharpness
    measurements) turns a loss argument into a function.

    Raises:
        ValueError: an unknown name.
        TypeError: a class (``nn.MSELoss`` instead of ``nn.MSELoss()``) or a non-callable.
    """
    if isinstance(loss_fn, str):
        if loss_fn not in LOSSES:
            raise ValueError(f"{name} must be one of {sorted(LOSSES)} or a callable, "
                             f"got {loss_fn!r}")
        return LOSSES[loss_fn]
    if isinstance(loss_fn, type):
        raise TypeError(f"{name}={loss_fn.__name__} is a class; pass an instance "
                        f"({loss_fn.__name__}()), a function, or one of {sorted(LOSSES)}")
    if not callable(loss_fn):
        raise TypeError(f"{name} must be a loss name or a callable, got {loss_fn!r}")
    return loss_fn


def accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Fraction of samples whose arg-max output equals the label (labels int64 (n,))."""
    if targets.is_floating_point():
        raise ValueError("accuracy needs integer class labels; this looks like a regression target")
    return float((outputs.argmax(dim=1) == targets).float().mean())
