"""Plots (one style, labelled axes) and slider panels (cache, continuous_update=False)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from edutools.face import plots, widgets  # noqa: E402
from edutools.ground.theory.quadratic import stability_region  # noqa: E402


@pytest.fixture
def record():
    steps = np.arange(0, 500, 50)
    return pd.DataFrame({"step": steps, "train_loss": np.exp(-steps / 200),
                         "val_loss": np.exp(-steps / 300),
                         "lambda_max": 10 * (1 - np.exp(-steps / 100)),
                         "loss_var": np.linspace(1, 0, 10), "grad_norm": np.linspace(2, 1, 10),
                         "val_jitter": np.linspace(0.1, 0.2, 10)})


def test_style_and_loss_curves_are_labelled(record):
    plots.use_style()
    ax = plots.plot_loss_curves(record)
    assert ax.get_xlabel() == "training step" and ax.get_ylabel() == "loss"
    assert ax.get_title() and ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["training loss",
                                                                   "validation loss"]
    plt.close("all")


def test_against_edge_draws_the_edge_line(record):
    ax = plots.plot_against_edge(record, "lambda_max", 10.0, edge_label="2/η")
    edge_lines = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert len(edge_lines) == 1 and np.allclose(edge_lines[0].get_ydata(), 10.0)
    assert "λ_max" in ax.get_ylabel() and ax.get_title()
    moving = plots.plot_against_edge(record, "lambda_max", np.linspace(5, 9, 10))
    assert np.allclose(moving.get_lines()[1].get_ydata(), np.linspace(5, 9, 10))
    plt.close("all")


def test_divergence_is_marked_and_nonfinite_values_skipped(record):
    record = record.copy()
    record.loc[9, "train_loss"] = np.inf
    ax = plots.plot_loss_curves(record, diverged_at=450)
    assert any(text.get_text() == "diverged" for text in ax.texts)
    plt.close("all")


def test_stability_proxies_three_labelled_panels(record):
    axes = plots.plot_stability_proxies(record, title="proxies")
    assert len(axes) == 3 and all(ax.get_xlabel() and ax.get_ylabel() for ax in axes)
    plt.close("all")


def test_slider_panel_caches_runs_and_redraws():
    runs, shows = [], []

    def run(momentum, batch_size, scale):
        runs.append((momentum, batch_size))
        return momentum * batch_size * scale

    def show(result, **params):
        shows.append(result)

    panel = widgets.slider_panel(run, show, {"momentum": widgets.momentum_slider(0.5),
                                             "batch_size": widgets.batch_size_slider(64)},
                                 fixed={"scale": 2})
    assert all(not s.continuous_update for s in panel.sliders.values())
    panel.refresh()
    first = panel.output.outputs
    panel.sliders["momentum"].value = 0.9   # triggers a run (in a background thread)
    panel.wait()
    panel.sliders["momentum"].value = 0.5   # back: from the cache, its figure kept, at once
    assert runs == [(0.5, 64), (0.9, 64)]
    assert shows == [64.0, 0.9 * 64 * 2] and panel.output.outputs == first
    assert panel.result(momentum=0.9) == pytest.approx(0.9 * 64 * 2) and len(runs) == 2


def test_slider_panel_rejects_non_widgets_and_lr_slider_options():
    with pytest.raises(ValueError, match="slider 'lr'"):
        widgets.slider_panel(lambda **k: 0, lambda r, **k: None, {"lr": [0.1, 0.2]})
    slider = widgets.lr_slider(0.1, options=[0.05, 0.1, 0.2])
    assert slider.value == 0.1 and not slider.continuous_update


def test_effective_lr_exercise_feedback():
    from edutools.face.exercises import check_effective_lr

    assert check_effective_lr(lambda lr, m: lr / (1 - m)).passed

    def todo(lr, m):
        raise NotImplementedError

    assert "not written yet" in check_effective_lr(todo).message
    wrong = check_effective_lr(lambda lr, m: lr * (1 + m))
    assert not wrong and "η(1+β)" in wrong.message
    assert "raised ZeroDivisionError" in check_effective_lr(lambda lr, m: 1 / 0).message
    assert "<div" in wrong._repr_html_()


def test_image_grid_and_heatmap_are_titled():
    images = np.random.default_rng(0).random((5, 64))
    figure = plots.plot_image_grid(images, [1, 2, 3, 4, 5], image_shape=(8, 8))
    assert figure._suptitle.get_text()
    table = pd.DataFrame([[0.9, 0.8], [0.85, 0.7]], index=[0.0, 0.9], columns=[32, 256])
    ax = plots.plot_heatmap(table, title="t", xlabel="batch size", ylabel="momentum",
                            colorbar_label="val acc")
    assert ax.get_xlabel() == "batch size" and ax.get_title() == "t"
    plt.close("all")


def test_remember_puts_a_result_in_the_cache():
    runs = []
    panel = widgets.slider_panel(lambda momentum: runs.append(momentum) or momentum,
                                 lambda result, **k: None,
                                 {"momentum": widgets.momentum_slider(0.5)})
    panel.remember("precomputed", momentum=0.9)
    assert panel.result(momentum=0.9) == "precomputed" and runs == []


def test_panel_writes_figures_and_text_into_the_output_widget_state():
    def show(result, momentum):
        fig, ax = plt.subplots()
        ax.plot([0, 1], [0, result])
        ax.set(title="t", xlabel="x", ylabel="y")
        plt.show()  # silenced by the panel: the figure goes into the output widget instead
        print(f"momentum {momentum}")

    panel = widgets.slider_panel(lambda momentum: momentum, show,
                                 {"momentum": widgets.momentum_slider(0.5)})
    open_before = len(plt.get_fignums())
    panel.refresh()
    kinds = [output["output_type"] for output in panel.output.outputs]
    assert kinds == ["display_data", "stream"]
    assert "image/png" in panel.output.outputs[0]["data"] or "text/plain" in \
        panel.output.outputs[0]["data"]
    assert panel.output.outputs[1]["text"] == "momentum 0.5\n"
    assert len(plt.get_fignums()) == open_before  # figures closed after capture
    panel.sliders["momentum"].value = 0.7
    panel.wait()
    assert panel.output.outputs[1]["text"] == "momentum 0.7\n" and len(panel.output.outputs) == 2


def test_stability_region_is_blank_beyond_the_edge_and_marks_the_point():
    fig, ax = plt.subplots()
    region = stability_region(nesterov=False, resolution=50)
    mesh = plots.plot_stability_region(ax, region, point=(1.0, 0.5))
    values = np.ma.filled(mesh.get_array().astype(float), np.nan).reshape(50, 50)
    momenta = np.linspace(0, 0.99, 50)
    steps = np.linspace(0, 4.2, 50)
    row = 25  # β ≈ 0.505: edge 2(1+β) ≈ 3.01
    # η·λ = 0 is marginal (radius 1: nothing moves), so the stable band starts just above it.
    inside = (steps > 0.05) & (steps < 2 * (1 + momenta[row]) - 0.1)
    assert np.all(np.isfinite(values[row, inside]))
    assert np.all(np.isnan(values[row, steps > 2 * (1 + momenta[row]) + 0.1]))
    assert any("you: ηλ = 1.00" in t.get_text() for t in ax.get_legend().get_texts())
    assert ax.get_xlabel() == "η·λ" and ax.get_title()
    plt.close("all")
