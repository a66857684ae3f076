"""Lesson 00's figures, drawn from small synthetic runs (no training)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from edutools.engine.experiments.seed_network import (  # noqa: E402
    seed_network_table,
    summarise_seed_network,
)
from edutools.face.plots import lesson00 as figures  # noqa: E402


def fake_run(momentum, batch_size=64, *, lr=0.01, diverged_at=None, final_acc=0.9):
    epochs = np.arange(5.0)
    record = pd.DataFrame({"step": epochs * 10, "epoch": epochs,
                           "train_loss": np.exp(-epochs), "val_loss": np.exp(-epochs) + 0.1,
                           "train_acc": np.linspace(0.1, 0.95, 5),
                           "val_acc": np.linspace(0.1, final_acc, 5),
                           "grad_norm": np.linspace(2, 1, 5), "loss_var": np.linspace(1, 0.1, 5),
                           "val_jitter": np.linspace(0.3, 0.1, 5)})
    return summarise_seed_network(record, momentum=momentum, batch_size=batch_size, lr=lr,
                                  epochs=4, seed=0, diverged_at=diverged_at)


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_momentum_comparison_has_one_curve_per_run_and_labels():
    figure = figures.plot_momentum_comparison([fake_run(0.0), fake_run(0.9)])
    ax_loss, ax_acc = figure.axes
    assert ax_loss.get_title() == "Loss, B = 64" and ax_loss.get_xlabel() == "epoch"
    assert len(ax_loss.get_lines()) == 4  # training and validation loss per run
    assert [t.get_text() for t in ax_acc.get_legend().get_texts()] == ["β = 0.0", "β = 0.9"]
    assert ax_acc.get_ylabel() == "validation accuracy" and ax_acc.get_title()
    figure = figures.plot_momentum_comparison([fake_run(0.0, batch_size=32)])
    assert figure.axes[0].get_title() == "Loss, B = 32"  # B from the run, not an argument


def test_proxy_comparison_draws_three_panels_and_names_lrs_when_they_differ():
    figure = figures.plot_proxy_comparison([fake_run(0.9), fake_run(0.0, lr=0.1)],
                                           title="Stability proxies")
    assert len(figure.axes) == 3
    assert figure._suptitle.get_text() == "Stability proxies"
    labels = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert labels == ["β = 0.9, η = 0.01", "β = 0.0, η = 0.1"]
    assert all(len(ax.get_lines()) == 2 and ax.get_xlabel() == "epoch" for ax in figure.axes)


def test_slider_drawing_shows_final_accuracy_and_marks_divergence(capsys):
    figure = figures.show_seed_network(fake_run(0.99, 32, diverged_at=40, final_acc=0.5))
    ax_loss, ax_acc = figure.axes
    assert ax_acc.get_title() == "Final validation accuracy 0.500"
    assert "β = 0.99, B = 32" in ax_loss.get_title()
    assert any(t.get_text() == "diverged" for t in ax_loss.texts)
    assert capsys.readouterr().out.strip()  # how the run ended


def test_sweep_heatmap_is_annotated_and_labelled():
    table = seed_network_table([fake_run(m, b) for m in (0.0, 0.9) for b in (64, 256)])
    figure = figures.plot_seed_network_sweep(table, epochs=10, lr=0.01)
    ax = figure.axes[0]
    assert ax.get_xlabel() == "batch size B" and ax.get_ylabel() == "momentum β"
    assert "10 epochs" in ax.get_title()
    assert len(ax.texts) == 4  # one number per cell
