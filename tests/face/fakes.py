"""Small synthetic runs for the figure tests of lessons 02 and 03, and a helper to find lines."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from edutools.engine.experiments.eoss import SGDRun


def fake_sgd_run(scale: float = 1.0, *, batch_sharpness_factor: float = 2.0,
                 with_bs: bool = True, config: dict | None = None) -> SGDRun:
    """A 1,000-step run: falling loss, λ_max rising to ``scale`` and (``with_bs``) batch
    sharpness rising to ``batch_sharpness_factor × scale``, measured every 100 steps;
    ``config``: its settings."""
    steps = np.arange(0, 1001, 100)
    record = pd.DataFrame({"step": steps, "train_loss": np.exp(-steps / 300),
                           "lambda_max": scale * (1 - np.exp(-steps / 200))})
    if with_bs:
        record["batch_sharpness"] = batch_sharpness_factor * scale * (1 - np.exp(-steps / 300))
    return SGDRun(record=record, step_losses=np.exp(-np.arange(1000) / 300),
                  config=dict(config or {}))


def dashed_at(ax: Axes, value: float) -> list[Line2D]:
    """The dashed lines of ``ax`` that lie at the constant ``value``."""
    return [line for line in ax.get_lines() if line.get_linestyle() == "--"
            and np.allclose(line.get_ydata(), value)]
