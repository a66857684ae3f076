"""Device choice, seeding and a one-cell environment report.

The course runs on a laptop CPU and on a GPU with the same code: every lesson asks
:func:`get_device` and never names a device itself. Set ``EDUTOOLS_DEVICE`` (``cpu``, ``cuda``,
``cuda:1``, ``mps``) to override the automatic choice.
"""

from __future__ import annotations

import os
import platform
import random
from dataclasses import dataclass

import numpy as np
import torch

from edutools.ground.threads import ensure_threads, thread_reason
from edutools.ground.version import __version__

DEVICE_ENV_VAR = "EDUTOOLS_DEVICE"
QUIET_ENV_VARS = ("EDUTOOLS_QUIET", "CI")


def get_device() -> torch.device:
    """Return the device lessons compute on.

    CUDA when a GPU is visible, CPU otherwise; ``EDUTOOLS_DEVICE`` overrides the choice.

    Raises:
        ValueError: if ``EDUTOOLS_DEVICE`` names a device that torch does not know, or a CUDA
            device on a machine without one.
    """
    ensure_threads()  # the one-thread default, at first use (edutools.ground.threads)
    requested = os.environ.get(DEVICE_ENV_VAR, "").strip()
    if not requested:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except RuntimeError as error:
        raise ValueError(
            f"{DEVICE_ENV_VAR}={requested!r} is not a device name torch understands "
            "(try 'cpu' or 'cuda')."
        ) from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"{DEVICE_ENV_VAR}={requested!r} asks for a GPU, but torch sees no CUDA device here "
            f"(torch {torch.__version__}). Unset {DEVICE_ENV_VAR} to run on the CPU."
        )
    if device.type == "cuda" and device.index is not None:
        if device.index >= torch.cuda.device_count():
            raise ValueError(
                f"{DEVICE_ENV_VAR}={requested!r}: only {torch.cuda.device_count()} CUDA "
                "device(s) are visible."
            )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{DEVICE_ENV_VAR}={requested!r}: MPS is not available on this machine.")
    return device


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA) and return a CPU generator seeded with ``seed``.

    Same seed, same device, same code → identical results on CPU. GPU kernels may still differ in
    the last bits between runs.
    """
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    ensure_threads()  # the one-thread default, at first use (edutools.ground.threads)
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)  # noqa: NPY002 — learners' code may use the legacy API
    torch.manual_seed(int(seed))
    return torch.Generator().manual_seed(int(seed))


def progress_disabled() -> bool:
    """True when progress bars should stay quiet: ``EDUTOOLS_QUIET`` or ``CI`` is set."""
    return any(os.environ.get(name, "").strip() not in ("", "0") for name in QUIET_ENV_VARS)


@dataclass(frozen=True)
class EnvironmentReport:
    """Versions and hardware a lesson runs on; displays as a small table in a notebook."""

    python: str
    platform: str
    torch: str
    numpy: str
    device: str
    device_name: str
    cpu_threads: int
    edutools: str
    cpu_threads_reason: str = ""

    def rows(self) -> list[tuple[str, str]]:
        """(label, value) pairs in display order."""
        return [
            ("Python", self.python),
            ("Platform", self.platform),
            ("torch", self.torch),
            ("NumPy", self.numpy),
            ("edutools", self.edutools),
            ("Device", f"{self.device} ({self.device_name})"),
            ("CPU threads used by torch",
             f"{self.cpu_threads} ({self.cpu_threads_reason})" if self.cpu_threads_reason
             else str(self.cpu_threads)),
        ]

    def __str__(self) -> str:
        width = max(len(label) for label, _ in self.rows())
        return "\n".join(f"{label:<{width}}  {value}" for label, value in self.rows())

    def _repr_html_(self) -> str:
        body = "".join(f"<tr><td>{label}</td><td><code>{value}</code></td></tr>"
                       for label, value in self.rows())
        return f"<table>{body}</table>"


def environment_report() -> EnvironmentReport:
    """Collect the versions, the chosen device and the thread count for a lesson's first cell."""
    device = get_device()
    if device.type == "cuda":
        device_name = torch.cuda.get_device_name(device)
    elif device.type == "mps":
        device_name = "Apple GPU"
    else:
        device_name = platform.processor() or platform.machine()
    return EnvironmentReport(
        python=platform.python_version(),
        platform=platform.platform(terse=True),
        torch=torch.__version__,
        numpy=np.__version__,
        device=str(device),
        device_name=device_name,
        cpu_threads=torch.get_num_threads(),
        edutools=__version__,
        cpu_threads_reason=thread_reason(),
    )
