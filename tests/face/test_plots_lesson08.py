"""Lesson 08's figures: monitored runs (a run record, or a learner's own monitor) against their
edges, and the slider panel's view, drawn from small real runs."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from edutools.engine.experiments import own_network  # noqa: E402
from edutools.engine.monitor import EdgeMonitor  # noqa: E402
from edutools.face.plots import lesson08 as figures  # noqa: E402
from edutools.ground.models import half_mse  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def run():
    return own_network.run_monitored(optimizer="sgd", lr=0.1, momentum=0.5, num_steps=20,
                                     every=5, num_train=32, seed=0)


def _own_monitor():
    data = own_network.digits_images(seed=0, num_train=32)
    model = own_network.small_cnn(seed=0, device=data.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    monitor = EdgeMonitor(model=model, loss_fn=half_mse, optimizer=optimizer,
                          probe=(data.X_train, data.y_train), every=5)
    for _ in range(10):
        optimizer.zero_grad()
        half_mse(model(data.X_train), data.y_train).backward()
        optimizer.step()
        monitor.step()
    return monitor


def test_monitored_runs_one_panel_each_titled_with_the_verdict(run):
    figure = figures.plot_monitored_runs({"heavy ball": run, "mine": _own_monitor()})
    left, right = figure.axes[:2]
    assert left.get_title().startswith("heavy ball\nλ_max at")
    assert right.get_title().startswith("mine\npreconditioned sharpness")
    assert all(ax.get_xlabel() == "optimizer step" for ax in (left, right))


def test_the_panel_view_reads_the_settings_from_the_run(run):
    figure = figures.show_monitored_run(run)
    ax_edge, ax_loss = figure.axes[:2]
    assert "sgd: η = 0.1, β = 0.5" in ax_edge.get_title()
    assert ax_loss.get_yscale() == "log" and "loss" in ax_loss.get_ylabel()
    assert len(ax_loss.get_lines()) == 1
