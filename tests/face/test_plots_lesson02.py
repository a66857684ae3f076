"""Lesson 02's figures: drawn from small synthetic numbers, with labels, titles and edges."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from edutools.face.plots import lesson02 as figures  # noqa: E402
from tests.face.fakes import dashed_at, fake_sgd_run  # noqa: E402


def run(scale=1.0, with_bs=True):
    return fake_sgd_run(scale, batch_sharpness_factor=2.0, with_bs=with_bs)


def test_batch_size_runs_one_line_per_run_and_the_edge():
    def at(batch_size, scale, lr=0.2):
        return fake_sgd_run(scale, config={"lr": lr, "batch_size": batch_size, "num_train": 1000})

    ax = figures.plot_batch_size_runs({1000: at(1000, 10), 10: at(10, 3)})
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:2] == ["full batch (GD)", "B = 10"] and "edge 2/η = 10" in labels[2]
    assert dashed_at(ax, 10.0) and ax.get_xlabel() == "step" and "λ_max" in ax.get_ylabel()
    assert "η = 0.2" in ax.get_title()
    with pytest.raises(ValueError, match=r"one η.*0\.1, 0\.2"):
        figures.plot_batch_size_runs({1000: at(1000, 10), 10: at(10, 3, lr=0.1)})


def test_show_batch_size_run_has_curvature_and_loss_panels():
    fig = figures.show_batch_size_run(fake_sgd_run(5, batch_sharpness_factor=2.0,
                                                   config={"batch_size": 50, "lr": 0.2}))
    ax_sharp, ax_loss = fig.axes
    assert dashed_at(ax_sharp, 10.0)  # 2/η at η = 0.2
    assert "B = 50" in ax_sharp.get_title() and ax_loss.get_yscale() == "log"
    assert ax_loss.get_ylabel() == "loss" and len(ax_loss.get_lines()) == 2


def test_critical_lr_figure_draws_the_three_predictions():
    table = pd.DataFrame({"batch_size": [1, 4, 2048], "lr_star": [0.3, 1.0, 2.0],
                          "batch_sharpness": [6.0, 2.0, 0.02], "lambda_max": [1.0] * 3,
                          "trace": [6.0] * 3})
    ax = figures.plot_critical_lr(table)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert len(labels) == 4 and any("λ_max" in label for label in labels)
    assert dashed_at(ax, 2.0)  # 2/λ_max
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "batch size B" and ax.get_title()


def test_batch_sharpness_figure_works_on_partial_records():
    ax = figures.plot_batch_sharpness(run(2).record, edge=4.0, lr=0.5, batch_size=8)
    assert dashed_at(ax, 4.0) and ax.get_ylabel() == "curvature" and "B = 8" in ax.get_title()
    assert len(ax.get_lines()) == 3  # batch sharpness, edge, λ_max
    _, ax = plt.subplots()
    partial = run(2, with_bs=False).record.iloc[:1]
    ax = figures.plot_batch_sharpness(partial, edge=4.0, lr=0.5, batch_size=8, ax=ax)
    assert dashed_at(ax, 4.0) and ax.get_title()


def test_conservative_sharpening_marks_the_equal_loss_points():
    runs = {"GD": run(4), "SGD": run(1)}
    points = {name: r.record.iloc[5] for name, r in runs.items()}
    fig = figures.plot_conservative_sharpening(runs, points, edge=4.0, level=0.3)
    ax_step, ax_loss = fig.axes
    assert dashed_at(ax_step, 1.0) and dashed_at(ax_loss, 1.0)
    assert ax_loss.xaxis_inverted() and "0.3" in ax_loss.get_title()
    dots = [line for line in ax_loss.get_lines() if line.get_marker() == "o"]
    assert len(dots) == 2
    assert all(ax.get_ylabel() == "λ_max · η/2" for ax in (ax_step, ax_loss))


def test_one_step_figure_labels_the_threshold_and_the_agreement():
    from edutools.engine.experiments.one_step import OneStepTest

    table = pd.DataFrame({"η·q/2": [0.5, 1.5, 0.9], "predicted change": [-1.0, 0.5, -0.1],
                          "actual change": [-0.9, 0.6, 0.05],
                          "predicted rise": [False, True, False],
                          "rose": [False, True, True]})
    fig = figures.plot_one_step(OneStepTest(table=table, lr=0.5, batch_size=8))
    ax_ratio, ax_pred = fig.axes
    assert "67%" in ax_ratio.get_title() and "B = 8" in ax_pred.get_title()
    assert ax_ratio.get_xlabel() and ax_pred.get_ylabel()
    plt.close(fig)
