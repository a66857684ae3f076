"""Lesson 03's figures: drawn from small synthetic numbers, with labels, titles and edges."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from edutools.engine.experiments.eoss import SGDRun  # noqa: E402
from edutools.engine.experiments.heavy_ball import run_quadratics  # noqa: E402
from edutools.engine.experiments.jelassi_li import PatchCurve  # noqa: E402
from edutools.face.plots import lesson03 as figures  # noqa: E402
from edutools.ground.theory.quadratic import stability_region  # noqa: E402
from tests.face.fakes import dashed_at, fake_sgd_run  # noqa: E402


def run(scale=1.0, with_bs=True):
    return fake_sgd_run(scale, batch_sharpness_factor=0.5, with_bs=with_bs)


def test_quadratic_panel_shows_both_regions_and_the_three_rules():
    regions = {n: stability_region(nesterov=n, resolution=30)
               for n in (False, True)}
    fig = figures.show_quadratics(run_quadratics(lr=0.3, momentum=0.5), regions=regions)
    ax_heavy, ax_nesterov, ax_runs = fig.axes[:3]
    assert "Heavy ball" in ax_heavy.get_title() and "Nesterov" in ax_nesterov.get_title()
    labels = [t.get_text() for t in ax_runs.get_legend().get_texts()]
    assert labels[0].startswith("GD: diverges") and len(labels) == 3
    assert ax_runs.get_yscale() == "log" and "λ = 8" in ax_runs.get_title()


def test_full_batch_figure_draws_each_edge_and_gd_edge():
    settings = {"lr": 0.3, "momentum": 0.5}
    runs = {"heavy ball": fake_sgd_run(10, config={**settings, "nesterov": False}),
            "Nesterov": fake_sgd_run(5, config={**settings, "nesterov": True})}
    fig = figures.plot_full_batch_momentum(runs)
    ax_sharp, ax_loss = fig.axes
    # each run's edge from its own settings: 2(1+β)/η = 10 and (2+2β)/(η(1+2β)) = 5
    assert dashed_at(ax_sharp, 10.0) and dashed_at(ax_sharp, 5.0)
    assert "η = 0.3, β = 0.5" in ax_sharp.get_title()
    dotted = [line for line in ax_sharp.get_lines() if line.get_linestyle() == ":"]
    assert np.allclose(dotted[0].get_ydata(), 2 / 0.3)
    assert ax_loss.get_yscale() == "log" and ax_loss.get_ylabel() == "training loss"


def test_full_batch_slider_figure_uses_the_momentum_edge():
    ax = figures.show_full_batch_momentum(fake_sgd_run(12, batch_sharpness_factor=0.5,
                                                       config={"momentum": 0.8, "lr": 0.3}))
    assert dashed_at(ax, 2 * 1.8 / 0.3) and "β = 0.80" in ax.get_title()


def test_plateau_figure_has_three_lines_and_one_tick_per_batch_size():
    plateaus = pd.DataFrame({"batch_sharpness": [3.5, 4.2, np.nan],
                             "lambda_max": [5.8, 7.2, 10.0]}, index=[100, 300, 1000])
    ax = figures.plot_plateaus(plateaus, lr=0.3, momentum=0.5)
    assert dashed_at(ax, 10.0) and dashed_at(ax, 2 * 0.5 / 0.3)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["100", "300", "1000"]
    assert ax.get_ylabel() == "curvature" and "β = 0.5" in ax.get_title()


def test_momentum_plateau_figure_against_both_edges_log_or_linear():
    ax = figures.plot_momentum_plateau(run(4).record, lr=0.05, momentum=0.9, batch_size=8)
    assert dashed_at(ax, 4.0) and dashed_at(ax, 76.0) and ax.get_yscale() == "log"
    _, ax = plt.subplots()
    ax = figures.plot_momentum_plateau(run(4, with_bs=False).record.iloc[:2], lr=0.3,
                                       momentum=0.5, batch_size=1000, log_scale=False, ax=ax)
    assert dashed_at(ax, 2 * 0.5 / 0.3) and ax.get_yscale() == "linear" and ax.get_title()


def patch_curve(momentum, level):
    record = pd.DataFrame({"step": [0, 10, 20], "alignment": [0.0, level / 2, level],
                           "small_margin_acc": [0.5, 0.9, 0.8 + level / 100]})
    return PatchCurve(config={"lr": 1 - momentum, "momentum": momentum},
                      small_margin_test_acc=0.8, alignment=level, record=record)


def test_patch_figures():
    rules = ["GD", "GD+M"]
    runs = {(rule, seed): patch_curve(0.9 * i, 2 + 3 * i) for i, rule in enumerate(rules)
            for seed in (0, 1)}
    fig = figures.plot_patch_runs(runs, rules, first_seed=0)
    ax_align, ax_acc = fig.axes
    assert [t.get_text() for t in ax_align.get_legend().get_texts()] == rules
    assert "2 seeds" in ax_align.get_title() and ax_acc.get_ylim()[1] == pytest.approx(1.02)
    fig = figures.show_patch_momentum(patch_curve(0.5, 4), reference=patch_curve(0.0, 2))
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["GD (γ = 0)", "γ = 0.50"] and "0.800" in fig.axes[1].get_title()


def test_panel_figure_titles_the_settled_values():
    record = run(4).record
    config = {"lr": 0.05, "num_steps": 1000, "num_train": 250, "momentum": 0.9, "batch_size": 8}
    result = SGDRun(record=record, config=config)
    ax = figures.show_momentum_batch(result)  # every setting from the run
    assert "BS/lower" in ax.get_title() and "λ_max/upper" in ax.get_title()
    assert dashed_at(ax, 4.0) and dashed_at(ax, 76.0)
    full = SGDRun(record=record.drop(columns="batch_sharpness"),
                  config={**config, "batch_size": 250})
    ax = figures.show_momentum_batch(full)
    assert "full batch" in ax.get_title() and "BS/lower" not in ax.get_title()


def test_acceleration_figure_marks_polyak_gd_and_the_edge():
    from edutools.engine.experiments.acceleration import run_acceleration

    fig = figures.show_acceleration(run_acceleration(condition_number=30.0, resolution=21,
                                                     coarse=5))
    ax_map, ax_curve = fig.axes[0], fig.axes[1]
    labels = [t.get_text() for t in ax_map.get_legend().get_texts()]
    assert any("Polyak" in label for label in labels) and any("2(1+β)" in label for label in labels)
    assert "κ = 30" in ax_map.get_title() and "Speed-up" in ax_curve.get_title()
    assert ax_map.get_xlabel() and ax_curve.get_ylabel()
    plt.close(fig)


def test_mean_square_figure_draws_one_line_per_momentum():
    from edutools.engine.experiments.heavy_ball import verify_mean_square_edge

    table = verify_mean_square_edge(momenta=(0.0, 0.9), noise_ratios=(0.01, 1.0, 100.0))
    ax = figures.plot_mean_square_edge(table)
    assert len(ax.get_legend().get_texts()) == 2 and "Mean-square" in ax.get_title()
    plt.close(ax.figure)
