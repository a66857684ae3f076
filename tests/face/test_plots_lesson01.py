"""Lesson 01's figures, drawn from small synthetic numbers (no training)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from edutools.engine.experiments.cohen_eos import EdgeRun, loss_rises  # noqa: E402
from edutools.face.plots import lesson01 as figures  # noqa: E402
from edutools.ground.theory.quadratic import run_quadratic  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def record(lr=0.2, n=8):
    steps = np.arange(n) * 100
    return pd.DataFrame({"step": steps, "lambda_max": np.minimum(4 + steps / 100, 2 / lr),
                         "train_loss": np.exp(-steps / 300)})


def dashed(ax):
    return [line for line in ax.get_lines() if line.get_linestyle() == "--"]


def test_quadratic_figure_labels_every_direction_with_its_regime():
    run = run_quadratic((1.0, 10.0), lr=0.15, num_steps=5)
    figure = figures.show_quadratic_directions(run, lr=0.15)
    ax_path, ax_factor = figure.axes
    labels = [t.get_text() for t in ax_path.get_legend().get_texts()]
    assert labels == ["λ = 1: ηλ = 0.15, converges", "λ = 10: ηλ = 1.50, oscillates"]
    assert ax_path.get_yscale() == "log" and "η = 0.15" in ax_path.get_title()
    assert ax_factor.get_xlabel() == "ηλ" and len(dashed(ax_factor)) == 2  # limit 1, edge 2


def test_sharpening_draws_into_a_given_figure_with_the_edge():
    figure = plt.figure()
    assert figures.plot_sharpening(record(), lr=0.2, measure_every=100, figure=figure) is figure
    ax_sharp, ax_loss = figure.axes
    assert np.allclose(dashed(ax_sharp)[0].get_ydata(), 10.0)
    assert "η = 0.2" in ax_sharp.get_title() and "100 steps" in ax_loss.get_title()
    assert ax_loss.get_yscale() == "log"


def test_loss_at_edge_marks_the_crossing_and_the_rises():
    losses = np.array([5.0, 4.0, 3.0, 2.0, 2.5, 1.5, 1.8, 1.0])
    figure = figures.plot_loss_at_edge(losses, loss_rises(losses, crossing=3), window=5)
    ax_all, ax_zoom = figure.axes
    assert "step 3" in ax_all.get_legend().get_texts()[0].get_text()
    rises_marked = ax_zoom.get_lines()[1]
    assert list(rises_marked.get_xdata()) == [3, 5]  # the loss rose after steps 3 and 5
    assert ax_zoom.get_title() == "Zoom: 5 steps just after reaching the edge"


def test_slider_drawing_and_edge_units():
    run = EdgeRun(config={"lr": 0.4, "num_steps": 700}, record=record(0.4),
                  step_losses=np.linspace(1, 0.1, 700), seconds=1.0)
    figure = figures.show_gd_edge_run(run)  # η from the run's settings
    assert np.allclose(dashed(figure.axes[0])[0].get_ydata(), 5.0)
    assert figure.axes[1].get_ylabel() == "training loss"
    units = figures.plot_edge_units({0.4: record(0.4), 0.2: record(0.2)})
    ax = units.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()][:2] == ["η = 0.2", "η = 0.4"]
    assert ax.get_lines()[1].get_ydata().max() == pytest.approx(1.0)  # capped at 2/η
    assert ax.get_ylabel() == "λ_max · η/2" and ax.get_title()


def test_self_stabilization_figure_draws_the_cycle_against_the_edge_and_the_model():
    from edutools.engine.experiments import self_stabilization as ss

    ratio = np.concatenate([np.linspace(0.99, 1.06, 300), np.linspace(1.06, 0.93, 40)])
    size = 1e-8 * np.cumprod(np.concatenate([[1.0], np.abs(1 - 2 * ratio[:-1])]))
    cycle = ss.StabilizationCycle(
        record=pd.DataFrame({"step": np.arange(len(ratio)) + 500, "train_loss": 0.05,
                             "sharpness": ratio * 10, "displacement": size}),
        config={"lr": 0.2, "seed": 0, "start_step": 500})
    facts = ss.cycle_summary(cycle)
    figure = figures.plot_self_stabilization(cycle, facts, ss.predicted_size(cycle, facts))
    ax_sharp, ax_size = figure.axes
    assert "η = 0.2" in ax_sharp.get_title() and ax_size.get_yscale() == "log"
    assert all(ax.get_xlabel() == "GD step" and ax.get_ylabel() for ax in figure.axes)
    edge = [line for line in dashed(ax_sharp) if np.allclose(line.get_ydata(), 1)]
    assert len(edge) == 1  # the edge S = 2/η at 1
    model_line = dashed(ax_size)[0]
    assert np.allclose(model_line.get_ydata(), size[np.isin(np.arange(len(size)) + 500,
                                                            model_line.get_xdata())])
