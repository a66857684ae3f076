"""edutools.face.plots.monitor: an EdgeMonitor's record against its edge, once and live."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from edutools.engine.monitor import EdgeMonitor  # noqa: E402
from edutools.face.plots.monitor import draw_monitor, live_monitor, plot_monitor  # noqa: E402
from edutools.ground.models import half_mse, mlp  # noqa: E402


def monitored(num_steps=6, *, loader=False, lr=0.1, momentum=0.0, every=2):
    torch.manual_seed(0)
    X, y = torch.randn(64, 3), torch.randn(64, 2)
    model = mlp([3, 8, 2], seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    probe = [(X[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)] if loader else (X, y)
    monitor = EdgeMonitor(model=model, loss_fn=half_mse, optimizer=optimizer, probe=probe,
                          every=every, num_batches=6)
    return monitor, model, optimizer, X, y


def train(monitor, model, optimizer, X, y, num_steps):
    for _ in range(num_steps):
        optimizer.zero_grad()
        half_mse(model(X), y).backward()
        optimizer.step()
        monitor.step()


def dashed(ax):
    return [line for line in ax.get_lines() if line.get_linestyle() == "--"]


def test_lambda_max_is_drawn_against_a_constant_edge():
    monitor, *loop = monitored()
    train(monitor, *loop, 6)
    ax = plot_monitor(monitor.record)
    assert np.allclose(dashed(ax)[0].get_ydata(), 2 / 0.1)
    curve = ax.get_lines()[0]
    assert list(curve.get_xdata()) == [2, 4, 6]
    assert np.allclose(curve.get_ydata(), monitor.record["lambda_max"])
    assert ax.get_title().startswith("λ_max (top Hessian eigenvalue) against 2/η\nSGD, lr=0.1")
    assert ax.get_xlabel() == "training step" and "1/parameter²" in ax.get_ylabel()
    assert "edge 2/η = 20" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_batch_sharpness_gets_its_band_lambda_max_and_a_moving_edge():
    monitor, model, optimizer, X, y = monitored(loader=True, momentum=0.5)
    for step in range(6):
        optimizer.param_groups[0]["lr"] = 0.05 * (step + 1)  # a warm-up: the edge moves
        train(monitor, model, optimizer, X, y, 1)
    record = monitor.record
    figure = plt.figure()
    draw_monitor(record, figure)
    ax = figure.axes[0]
    edge_line = dashed(ax)[0]
    assert np.allclose(edge_line.get_ydata(), 2 * (1 - 0.5) / record["lr"])
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0] == "batch sharpness" and "± 1 standard error" in labels
    assert any(label.startswith("λ_max") for label in labels)
    assert "batch sharpness against 2(1−β)/η" in ax.get_title()


def test_empty_record_and_no_edge_still_draw_titled_axes():
    monitor, *_ = monitored()
    assert "no measurement yet" in plot_monitor(monitor.record).get_title()
    model = mlp([3, 4, 2], seed=0)
    X, y = torch.randn(8, 3), torch.randn(8, 2)
    optimizer = torch.optim.Adagrad(model.parameters(), lr=0.1)
    other = EdgeMonitor(model=model, loss_fn=half_mse, optimizer=optimizer, probe=(X, y),
                        every=1)
    train(other, model, optimizer, X, y, 2)
    ax = plot_monitor(other.record)
    assert "(no edge formula)" in ax.get_title() and "Adagrad" in ax.get_title()


def test_live_monitor_redraws_at_most_once_per_interval(monkeypatch):
    monitor, *loop = monitored(every=1)
    seen = []
    monitor.watch = seen.append
    shown = []
    monkeypatch.setattr("edutools.face.live.display",
                        lambda figure, display_id: shown.append(figure) or _Handle(shown))
    live = live_monitor(monitor, live=True, min_interval=3600.0)
    train(monitor, *loop, 4)
    assert len(seen) == 4 and live.redraws == 1  # the first measurement, then throttled
    final = live.close()
    assert live.redraws == 2 and len(live.last_record) == 4
    assert final.axes[0].get_lines()[0].get_xdata().tolist() == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="EdgeMonitor"):
        live_monitor("monitor")


class _Handle:
    def __init__(self, shown):
        self.shown = shown

    def update(self, figure):
        self.shown.append(figure)
