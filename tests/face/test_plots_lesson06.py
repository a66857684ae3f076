"""Lesson 06's figures, drawn from small synthetic numbers: titles, labels, lines and edges."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from edutools.engine.experiments.long_bartlett import (  # noqa: E402
    SamEdgeRun,
    sam_edge_column,
    sam_quadratic_run,
)
from edutools.engine.experiments.sam_momentum import MomentumRun  # noqa: E402
from edutools.face.plots import lesson06 as figures  # noqa: E402


def titles(figure):
    return [ax.get_title() for ax in figure.axes]


def edge_run(rho, *, partial=False):
    steps = np.arange(0, 501, 100)
    record = pd.DataFrame({"step": steps, "train_loss": np.linspace(1, 0.1, 6),
                           "grad_norm": np.linspace(1, 0.1, 6),
                           "lambda_max": np.linspace(4, 5, 6)})
    return SamEdgeRun(config={"rho": rho, "lr": 0.2, "num_steps": 500},
                      record=sam_edge_column(record, lr=0.2, rho=rho), partial=partial,
                      step_losses=np.empty(0) if partial else np.linspace(1, 0.1, 500),
                      seconds=1.0)


def test_the_quadratic_figure_has_paths_edge_and_factors():
    figure = figures.plot_sam_quadratic(sam_quadratic_run([1.0, 8.0], lr=0.2, rho=0.05,
                                                          num_steps=20))
    assert len(figure.axes) == 3
    assert "SAM on a quadratic" in titles(figure)[0]
    assert figure.axes[0].get_yscale() == "log"
    assert "‖g‖" in figure.axes[2].get_xlabel()
    # the edge panel holds λ_SAM(‖g_t‖) and the GD edge 2/η = 10
    edge_lines = figure.axes[1].get_lines()
    assert any(np.allclose(line.get_ydata(), 10.0) for line in edge_lines)


def test_the_edge_runs_figure_has_one_panel_per_rho_and_a_ratio_panel():
    figure = figures.plot_sam_edge_runs({0.05: edge_run(0.05), 0.2: edge_run(0.2)})
    assert len(figure.axes) == 3
    assert "ρ = 0.05" in titles(figure)[0] and "ρ = 0.2" in titles(figure)[1]
    labels = [line.get_label() for line in figure.axes[0].get_lines()]
    assert any("λ_SAM" in label for label in labels) and any("2/η" in label for label in labels)
    assert len(figure.axes[2].get_lines()) == 5  # 2 ratios per ρ + the line at 1
    assert figure.axes[2].get_ylabel() == "λ_max in units of an edge"


def test_the_slider_drawing_handles_partial_and_finished_runs():
    for partial in (True, False):
        figure = figures.show_sam_edge_run(edge_run(0.1, partial=partial))
        assert "ρ = 0.1" in titles(figure)[0] and titles(figure)[1] == "Training loss"


def test_the_generalization_figure_has_curves_and_one_dot_per_seed():
    rows, records = [], {}
    for seed in (0, 1):
        for i, name in enumerate(("SGD", "SAM ρ=0.1")):
            rows.append({"method": name, "seed": seed, "val_acc": 0.8 + 0.05 * i,
                         "memorized": 0.5 - 0.1 * i, "lambda_max": 4 - i,
                         "eps_sharpness": 3 - i})
            records[(name, seed)] = pd.DataFrame({"epoch": [0, 10, 20],
                                                  "val_acc": [0.1, 0.9, 0.8 + 0.05 * i]})
    figure = figures.plot_generalization(pd.DataFrame(rows), records)
    assert len(figure.axes) == 5
    assert figure.axes[0].get_xlabel() == "epoch"
    assert len(figure.axes[0].get_lines()) == 2 * 2 + 2  # seeds + means
    assert figure.axes[3].get_ylabel() == "λ_max at the end"
    assert "2 seed(s)" in figure._suptitle.get_text()


def test_the_equal_loss_figure_draws_each_run_against_its_training_loss():
    records = {(name, seed): pd.DataFrame({"epoch": [0, 10, 20], "train_loss": [2.3, 1.0, 0.5],
                                           "memorized": [0.1, 0.05, 0.3 - 0.1 * i],
                                           "val_acc": [0.1, 0.9, 0.85 + 0.03 * i]})
               for seed in (0, 1, 2) for i, name in enumerate(("SGD", "SAM ρ=0.1"))}
    figure = figures.plot_equal_loss(records)
    assert len(figure.axes) == 2
    assert all(len(ax.get_lines()) == 6 for ax in figure.axes)  # one line per run
    assert all("training loss" in ax.get_xlabel() for ax in figure.axes)
    left, right = figure.axes[0].get_xlim()
    assert left > right  # training loss falls to the right
    assert [t.get_text() for t in figure.axes[0].get_legend().get_texts()] == ["SGD",
                                                                                "SAM ρ=0.1"]
    assert figure.axes[1].get_ylabel().startswith("validation accuracy")


def test_the_cost_figure_has_counts_times_and_the_trade_off():
    cost = pd.DataFrame({"passes_per_step": [1, 2, 1.2], "ms_per_step": [1.0, 2.1, 1.3],
                         "val_acc": [0.85, 0.9, 0.89]},
                        index=pd.Index(["SGD", "SAM", "SAM, every 5"], name="method"))
    figure = figures.plot_cost(cost)
    assert titles(figure) == ["Counted: passes per step", "Measured: time per step",
                              "What the extra cost buys"]
    assert [p.get_height() for p in figure.axes[0].patches] == [1, 2, 1.2]
    assert len(figure.axes[2].get_lines()) == 3


def momentum_run(name, batch_size):
    steps = np.arange(0, 101, 50)
    record = pd.DataFrame({"step": steps, "lambda_max": [4.0, 5.0, 6.0],
                           "sam_momentum_edge": [6.0, 5.5, 6.0]})
    if batch_size < 1000:
        record["batch_sharpness"] = [2.0, 3.0, 3.3]
        record["sam_batch_sharpness"] = [2.5, 3.5, 3.4]
    config = {"optimizer": name, "batch_size": batch_size, "lr": 0.3, "momentum": 0.5,
              "rho": 0.05 if name == "SAM" else 0.0, "num_steps": 100}
    return MomentumRun(config=config, record=record, seconds=1.0)


def test_the_momentum_figure_draws_both_plateaus_on_both_panels():
    runs = {(name, size): momentum_run(name, size) for name in ("SGD", "SAM")
            for size in (50, 1000)}
    figure = figures.plot_momentum_runs(runs)
    assert "B = 1000" in titles(figure)[0] and "B = 50" in titles(figure)[1]
    for ax in figure.axes:
        heights = {round(float(line.get_ydata()[0]), 3) for line in ax.get_lines()
                   if np.ptp(line.get_ydata()) == 0}
        assert {3.333, 10.0} <= heights  # 2(1−β)/η and 2(1+β)/η
    labels = [line.get_label() for line in figure.axes[1].get_lines()]
    assert "SAM: curvature its step feels" in labels
