"""Lesson 04's figures, drawn from small synthetic numbers: labels, titles, lines present."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from torch import nn  # noqa: E402

from edutools.engine.experiments.keskar import BatchComparison  # noqa: E402
from edutools.engine.experiments.large_batch import SgdRun  # noqa: E402
from edutools.engine.landscape import SliceResult  # noqa: E402
from edutools.engine.training import TrainResult  # noqa: E402
from edutools.face.plots import lesson04 as figures  # noqa: E402


def fake_result(batch_size, epochs):
    record = pd.DataFrame({"step": np.arange(len(epochs)), "epoch": epochs,
                           "train_loss": np.geomspace(1.0, 0.01, len(epochs)),
                           "val_acc": np.linspace(0.3, 0.6, len(epochs))})
    return TrainResult(record=record, step_losses=np.ones(len(epochs)), model=nn.Linear(1, 1),
                       diverged=False, diverged_at=None, message="", seconds=0.0,
                       config={"batch_size": batch_size, "stop_at_loss": 0.02, "seed": 3})


def fake_run(lr=0.05, batch_size=16, momentum=0.0):
    epochs = np.arange(0, 6.0)
    record = pd.DataFrame({"step": epochs * 10, "epoch": epochs,
                           "train_loss": np.geomspace(1.0, 0.1, 6),
                           "val_acc": np.linspace(0.4, 0.7, 6), "lr": lr,
                           "batch_size": batch_size})
    return SgdRun(record=record, step_losses=np.ones(60),
                  config={"lr": lr, "batch_size": batch_size, "momentum": momentum, "seed": 0})


def test_training_to_target_has_two_labelled_panels_and_the_target():
    comparison = BatchComparison(data=None, small=fake_result(16, np.arange(0, 5.0)),
                                 large=fake_result(1000, np.arange(0, 50.0, 10)))
    fig = figures.plot_training_to_target(comparison)
    ax_loss, ax_acc = fig.axes
    assert ax_loss.get_title() == "Training to loss ≤ 0.02, seed 3"
    assert ax_loss.get_xlabel() == "epoch" and "validation" in ax_acc.get_ylabel()
    labels = [t.get_text() for t in ax_loss.get_legend().get_texts()]
    assert labels == ["SB (B=16)", "LB (B=1000)", "target 0.02"]
    assert np.allclose(ax_loss.get_lines()[-1].get_ydata(), 0.02)


def test_bars_one_pair_per_task_and_seed():
    table = pd.DataFrame({"seed": [0, 0], "run": ["SB", "LB"], "val_acc": [0.7, 0.65]})
    ax = figures.plot_sb_lb_bars({"teacher": table, "digits": table}, small_batch_size=16,
                                 target_loss=0.02)
    assert len(ax.patches) == 4 and ax.get_ylabel() == "validation accuracy"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["teacher\nseed 0", "digits\nseed 0"]
    assert "0.02" in ax.get_title()


def test_line_between_marks_both_solutions():
    alphas = np.linspace(-1, 2, 7)
    line = SliceResult(alphas=alphas, losses=1 + alphas**2, metrics=np.full(7, 0.5))
    fig = figures.plot_line_between(line, line, seed=0)
    for ax in fig.axes:
        assert ax.get_xlabel().startswith("α")
        assert [t.get_text() for t in ax.texts] == ["SB", "LB"]
    assert fig.axes[0].get_yscale() == "log"


def test_noise_scale_curves_dash_the_controls_and_show_sgd_titles_the_noise_scale():
    fig = figures.plot_noise_scale_curves({"control: x": fake_run(batch_size=64),
                                           "B=32, β=0.5": fake_run(batch_size=32, momentum=0.5)})
    styles = [line.get_linestyle() for line in fig.axes[0].get_lines()]
    # the shared scale is the first non-control run's: η/(B(1−β)) = 0.05/(32·0.5)
    assert styles == ["--", "-"] and "= 0.05/16:" in fig.axes[0].get_title()
    fig = figures.show_sgd(fake_run(batch_size=32, momentum=0.5), reference=fake_run())
    title = fig.axes[0].get_title()
    assert "= 3.13e-03" in title and "(reference 3.13e-03)" in title
    assert "final validation accuracy 0.700" == fig.axes[1].get_title()


def test_schedules_mark_the_switch():
    ax = figures.plot_schedules({"constant": fake_run(), "grow": fake_run()}, switch_epoch=3,
                                dashed="grow")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["constant (60 steps)",
                                                                   "grow (60 steps)"]
    assert ax.get_lines()[1].get_linestyle() == "--" and ax.get_yscale() == "log"


def test_warmup_figure_marks_the_blow_up_and_draws_the_moving_edge():
    from edutools.engine.experiments.warmup import WarmupRun

    steps = np.arange(0, 30, 10)
    record = pd.DataFrame({"step": steps, "lr": [0.5, 1.0, 1.0], "edge": [4.0, 2.0, 2.0],
                           "lambda_max": [5.0, 2.5, 2.1]})
    at_once = WarmupRun(record=record.iloc[:1], step_losses=np.array([1.0, 5.0, np.inf]),
                        config={"lr": 1.0, "warmup_steps": 0}, lambda_init=5.0,
                        lambda_final=np.nan, diverged=True)
    ramped = WarmupRun(record=record, step_losses=np.linspace(1.0, 0.3, 30),
                       config={"lr": 1.0, "warmup_steps": 10}, lambda_init=5.0,
                       lambda_final=2.1, diverged=False)
    fig = figures.plot_warmup(at_once, ramped)
    ax_loss, ax_lam = fig.axes
    assert [t.get_text() for t in ax_loss.texts] == ["blew up"]
    assert ax_loss.get_yscale() == "log" and ax_loss.get_xlabel() == "training step"
    edge = [line for line in ax_lam.get_lines() if line.get_linestyle() == "--"][0]
    assert list(edge.get_ydata()) == [4.0, 2.0, 2.0]
    assert "λ_max" in ax_lam.get_ylabel() and ax_lam.get_title()
