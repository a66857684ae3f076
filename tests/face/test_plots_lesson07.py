"""Lesson 07's figures drawn from small synthetic numbers: titles, labels, panels, marks."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from edutools.engine.experiments.capstone import CapstoneRun  # noqa: E402
from edutools.engine.experiments.capstone_analysis import CapstonePicks  # noqa: E402
from edutools.face.plots import lesson07 as figures  # noqa: E402

MOMENTA, BATCHES = (0.0, 0.9), (32, 256)


@pytest.fixture
def summary():
    rows = []
    for i, momentum in enumerate(MOMENTA):
        for j, batch_size in enumerate(BATCHES):
            rows.append({"momentum": momentum, "batch_size": batch_size,
                         "final_val_acc": 0.8 + 0.05 * i - 0.02 * j, "acc_std": 0.01 * (1 + j),
                         "epochs_to_target": np.nan if j else 3.0 - i, "num_seeds": 3,
                         "loss_var": 1e-3 * (1 + i), "relative_loss_var": 0.01 * (1 + i),
                         "grad_norm": 0.1 + i, "val_jitter": 0.02, "lambda_ratio": 0.01,
                         "bs_ratio": 0.1 + i})
    return pd.DataFrame(rows)


@pytest.fixture
def runs(summary):
    rows = []
    for seed in range(2):
        for lr in (0.005, 0.01, 0.02):
            frame = summary.assign(seed=seed, lr=lr, edge_ratio=summary["bs_ratio"] + seed,
                                   final_val_acc=summary["final_val_acc"] - (lr == 0.02) * 0.1)
            rows.append(frame)
    return pd.concat(rows, ignore_index=True)


def heatmap_texts(ax):
    return [t.get_text() for t in ax.texts]


def test_accuracy_heatmaps_have_three_titled_panels_with_blanks_for_unreached(summary):
    figure = figures.plot_accuracy_heatmaps(summary, epochs=10, target_acc=0.9)
    shown = [ax for ax in figure.axes if ax.get_title()]
    assert [ax.get_title() for ax in shown] == [
        "Validation accuracy after 10 epochs (mean of 3 seeds)",
        "Spread over seeds (standard deviation)", "Speed: epochs to 90% validation accuracy"]
    for ax in shown:
        assert ax.get_xlabel() == "batch size B" and ax.get_ylabel() == "momentum β"
    assert len(heatmap_texts(shown[0])) == 4
    assert len(heatmap_texts(shown[2])) == 2  # the two unreached cells stay blank
    assert figure._suptitle.get_text().startswith("Accuracy and speed")


def test_proxy_and_edge_heatmaps_show_every_proxy_and_both_edges(summary):
    proxies = figures.plot_proxy_heatmaps(summary)
    titles = [ax.get_title() for ax in proxies.axes if ax.get_title()]
    assert titles == ["Loss variance", "Loss variance / loss²", "Gradient norm",
                      "Validation jitter"]
    edges = figures.plot_edge_heatmaps(summary)
    titles = [ax.get_title() for ax in edges.axes if ax.get_title()]
    assert titles == ["λ_max / (2(1+β)/η)", "batch sharpness / (2(1−β)/η)"]


def test_scatter_puts_rho_in_titles_and_marks_the_edge(runs):
    correlations = pd.DataFrame([{"proxy": "loss_var", "rho": 0.81, "p_value": 0.001, "n": 8},
                                 {"proxy": "grad_norm", "rho": -0.1, "p_value": 0.7, "n": 8}])
    figure = figures.plot_proxy_scatter(runs[runs["lr"] == 0.01], correlations)
    axes = figure.axes
    assert [ax.get_title() for ax in axes] == ["ρ = +0.81 (p = 0.001, n = 8)",
                                               "ρ = -0.10 (p = 0.7, n = 8)"]
    assert axes[0].get_xlabel() == "loss variance" and axes[0].get_ylabel()
    assert axes[0].get_xscale() == "log" and axes[0].get_yscale() == "log"
    assert any(line.get_ydata()[0] == 1.0 for line in axes[0].get_lines())  # the edge
    assert len(axes[0].collections) == len(MOMENTA)


def test_robust_vs_fastest_draws_both_picks_over_three_learning_rates(runs):
    picks = CapstonePicks(robust={"momentum": 0.0, "batch_size": 32},
                          fastest={"momentum": 0.9, "batch_size": 32})
    figure = figures.plot_robust_vs_fastest(runs, picks, lr=0.01)
    ax = figure.axes[0]
    labels = ax.get_legend_handles_labels()[1]
    assert {"robust pick: β = 0, B = 32", "fastest: β = 0.9, B = 32", "η = 0.01"} == set(labels)
    assert ax.get_xlabel() == "learning rate η" and ax.get_ylabel() == "validation accuracy"
    assert "Robust pick vs fastest" in ax.get_title()
    assert len(ax.containers) == 2  # one error-bar series per pick
    assert list(ax.containers[0].lines[0].get_xdata()) == [0.005, 0.01, 0.02]


def test_panel_view_shows_curves_and_the_edges():
    row = {"val_acc_curve": [0.1, 0.5, 0.8], "train_loss_curve": [2.3, 1.0, 0.5],
           "val_loss_curve": [2.3, 1.1, 0.6], "loss_var_curve": [np.nan, 0.01, 0.02],
           "grad_norm_curve": [1.0, 1.0, 1.0], "val_jitter_curve": [np.nan, 0.1, 0.1],
           "final_val_acc": 0.8, "lambda_max": 3.0, "upper_edge": -1.0,
           "batch_sharpness": 5.0, "lower_edge": -1.0, "momentum": 0.9, "batch_size": 64,
           "lr": 0.01, "seed": 0}
    # the settings and the edges come from the run's settings, not from the row's edge columns
    figure = figures.show_capstone_run(CapstoneRun.from_row(row), seed=0)
    assert len(figure.axes) == 3
    assert figure.axes[0].get_title() == "Final validation accuracy 0.800"
    title = figure._suptitle.get_text()
    assert "edge 2(1+β)/η = 380" in title and "edge 2(1−β)/η = 20" in title
    assert list(figure.axes[0].get_lines()[0].get_ydata()) == [0.1, 0.5, 0.8]
    assert title.startswith("β = 0.9, B = 64, η = 0.01:")
    assert all(ax.get_xlabel() == "epoch" for ax in figure.axes)


def test_robust_vs_fastest_draws_one_line_when_they_coincide_and_adds_the_runner_up(runs):
    pick = {"momentum": 0.9, "batch_size": 32}
    same = CapstonePicks(robust=pick, fastest=dict(pick))
    figure = figures.plot_robust_vs_fastest(runs, same, lr=0.01,
                                            runner_up={"momentum": 0.0, "batch_size": 32})
    labels = figure.axes[0].get_legend_handles_labels()[1]
    assert "robust pick = fastest: β = 0.9, B = 32" in labels
    assert "runner-up (score): β = 0, B = 32" in labels
    assert "Robust pick (= fastest)" in figure.axes[0].get_title()
    assert len(figure.axes[0].containers) == 2  # two error-bar lines, not three


def curvature_frame():
    rows = []
    for momentum, batch_size in ((0.9, 64), (0.99, 32)):
        for lr in (0.01, 0.02):
            rows.append({"momentum": momentum, "batch_size": batch_size, "lr": lr,
                         "batch_sharpness_curve": np.linspace(1, 3, 4),
                         "batch_sharpness_se_curve": np.full(4, 0.1),
                         "lambda_max_curve": np.linspace(2, 5, 4),
                         "lower_edge": 2 * (1 - momentum) / lr})
    return pd.DataFrame(rows)


def test_curvature_over_training_has_a_panel_per_configuration_with_both_edges():
    figure = figures.plot_curvature_over_training(curvature_frame())
    axes = [ax for ax in figure.axes if ax.get_title()]
    assert [ax.get_title() for ax in axes] == ["β = 0.9, B = 64", "β = 0.99, B = 32"]
    labels = [t.get_text() for t in axes[1].get_legend().get_texts()]
    assert "2(1−β)/η at η = 2" in labels and "2(1−β)/η at 2η = 1" in labels
    assert axes[0].get_xlabel() == "epoch" and axes[0].get_ylabel().startswith("curvature")


def test_proxy_confounds_draws_three_bars_per_proxy_with_intervals():
    table = pd.DataFrame([{"proxy": name, **{s: v for s in ("rho_edge", "within_beta", "partial")},
                           **{f"{s}_lo": v - 0.1 for s in ("rho_edge", "within_beta", "partial")},
                           **{f"{s}_hi": v + 0.1 for s in ("rho_edge", "within_beta", "partial")}}
                          for name, v in (("relative_loss_var", 0.8), ("inverse_batch", 0.5))])
    figure = figures.plot_proxy_confounds(table)
    ax = figure.axes[0]
    assert len(ax.patches) == 6
    assert [t.get_text() for t in ax.get_xticklabels()] == ["loss variance / loss²",
                                                           "1/B (reference)"]
    assert "hyper-parameters" in ax.get_title() and ax.get_ylabel().startswith("Spearman")
