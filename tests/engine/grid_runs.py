"""Small deterministic run functions for tests/engine/test_grid.py.

They live in an importable module (not in the test file) because worker processes receive a run
function by reference and import it: ``tests`` is a package at the repository root.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import torch


def _log_call(log_dir: str | None) -> None:
    # One file per call, so a test can count calls made in any process.
    if log_dir is not None:
        Path(log_dir, f"{os.getpid()}-{uuid.uuid4().hex}.call").touch()


def heavy_ball(lr: float, momentum: float, *, seed: int, steps: int = 40, dim: int = 6,
               log_dir: str | None = None) -> dict:
    """Heavy-ball GD (v ← βv + g, θ ← θ − ηv) on a random quadratic drawn from ``seed``."""
    _log_call(log_dir)
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(dim, dim, generator=generator, dtype=torch.float64)
    hessian = a @ a.T / dim + 0.1 * torch.eye(dim, dtype=torch.float64)
    theta = torch.randn(dim, generator=generator, dtype=torch.float64)
    velocity = torch.zeros_like(theta)
    for _ in range(steps):
        velocity = momentum * velocity + hessian @ theta
        theta = theta - lr * velocity
    loss = 0.5 * theta @ hessian @ theta
    return {
        "loss": loss,  # a 0-d tensor: the runner turns it into a float
        "sharpness": float(torch.linalg.eigvalsh(hessian)[-1]),
        "global_draw": torch.rand(()).item(),  # global RNG: reproducible only if the runner seeds
        "last_theta": theta[:2],  # a short 1-D tensor: kept as a list
    }


def located_heavy_ball(lr: float, momentum: float, *, seed: int) -> dict:
    """:func:`heavy_ball`'s results, plus where the call ran: the process id and its command
    line (a Ray worker's starts with ``ray::``)."""
    import psutil

    return {**heavy_ball(lr, momentum, seed=seed), "pid": os.getpid(),
            "process": " ".join(psutil.Process().cmdline())[:80]}


def thread_report(x: int, *, seed: int) -> dict:
    """The torch thread count and OMP_NUM_THREADS seen by the process that runs the call."""
    return {"torch_threads": torch.get_num_threads(),
            "omp_threads": os.environ.get("OMP_NUM_THREADS", ""), "pid": os.getpid()}


def failing(x: int, *, seed: int, log_dir: str | None = None) -> dict:
    """Raise for x == 2, else return x²."""
    _log_call(log_dir)
    if x == 2:
        raise ZeroDivisionError(f"cannot handle x={x}")
    return {"square": x * x}


def clashing(x: int, *, seed: int) -> dict:
    """Return a result named like a parameter."""
    return {"x": 1.0}


def unpicklable_result(x: int, *, seed: int) -> dict:
    """Return a value that is not a scalar or a list."""
    return {"model": torch.nn.Linear(2, 2)}


def flexible(**kwargs) -> dict:
    """Accept any keyword: the sum of the numeric ones."""
    return {"total": float(sum(v for k, v in kwargs.items() if k != "seed"))}
