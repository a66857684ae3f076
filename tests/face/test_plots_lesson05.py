"""Lesson 05's figures, drawn from small synthetic numbers: labels, titles, edges present."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from edutools.face.plots import lesson05 as figures  # noqa: E402


def dashed(ax):
    return [line for line in ax.get_lines() if line.get_linestyle() == "--"]


def test_finite_difference_error_axes():
    h = np.logspace(-1, -6, 6)
    ax = figures.plot_finite_difference_error(h, h**2 + 1e-12 / h)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert ax.get_xlabel() == "step h" and ax.xaxis_inverted()


def test_eigen_costs_target_and_ritz_references():
    errors = np.geomspace(1, 1e-8, 30)
    history = np.tile([3.0, 2.0], (10, 1))
    fig = figures.plot_eigen_costs(errors, errors[:10], target=1e-4,
                                   cost={"power iteration": 5, "Lanczos": 3},
                                   ritz_history=history, reference=[3.0, 2.0])
    ax_err, ax_ritz = fig.axes
    assert np.allclose(dashed(ax_err)[0].get_ydata(), 1e-4)
    assert len(dashed(ax_ritz)) == 2 and "k = 2" in ax_ritz.get_title()
    assert ax_err.get_xlim()[1] == 20


def test_warm_starts_edge_and_bars():
    along = pd.DataFrame({"step": [0, 100, 200], "lambda_max": [1.0, 2.0, 3.0],
                          "cold": [1.0, 2.0, 3.0], "warm": [1.0, 2.0, 3.0],
                          "cold HVPs": [10, 10, 10], "warm HVPs": [10, 6, 5]})
    fig = figures.plot_warm_starts(along, lr=0.1, checkpoint_every=100, tol=1e-4)
    ax_lam, ax_cost = fig.axes
    assert np.allclose(dashed(ax_lam)[0].get_ydata(), 20.0)
    assert len(ax_cost.patches) == 4 and ax_cost.get_ylabel() == "HVPs to tol"


def test_hutchinson_band_and_exact_line():
    ax = figures.plot_hutchinson(np.array([1.0, 3.0, 2.0, 2.5]), 2.0)
    assert np.allclose(dashed(ax)[0].get_ydata(), 2.0) and ax.get_xscale() == "log"
    assert len(ax.collections) == 1  # the ± 2 SE band


def test_spectral_densities_and_batch_sharpness():
    grid = np.linspace(0, 1, 5)
    fig = figures.plot_spectral_densities(grid, np.ones(5), np.ones(5), grid, np.ones(5),
                                          slq_label="SLQ", lambda_max=0.9, digits_hvps=80)
    assert "80 HVPs" in fig.axes[1].get_title()
    assert np.allclose(dashed(fig.axes[1])[0].get_xdata(), 0.9)
    table = pd.DataFrame({"batch sharpness": [5.0, 3.0], "standard error": [0.1, 0.0]},
                         index=pd.Index([8, 64], name="batch size"))
    ax = figures.plot_batch_sharpness_by_batch_size(table, 4.0)
    assert ax.get_xlabel() == "batch size B" and np.allclose(dashed(ax)[0].get_ydata(), 4.0)


def test_perturbation_alpha_sweep_and_slices():
    along = pd.DataFrame({"step": [0, 1], "lambda_max": [1.0, 2.0], "grad_norm": [2.0, 1.0],
                          "perturbation estimate": [4.0, 2.0]})
    ax = figures.plot_perturbation_along(along)
    assert len(ax.get_lines()) == 3 and np.allclose(ax.get_lines()[1].get_ydata(), [1.0, 0.5])
    sweep = pd.DataFrame({"λ_max": [10.0, 1.0, 10.0], "ε-sharpness": [1.0, 0.5, 2.0]},
                         index=pd.Index([0.1, 1.0, 10.0], name="α"))
    fig = figures.plot_alpha_sweep(sweep)
    assert [ax.get_xlabel() for ax in fig.axes] == ["rescaling factor α"] * 2
    offsets = np.linspace(-1, 1, 5)
    slices = {(kind, name): 1 + offsets**2 for kind in ("raw", "filter-normalized")
              for name in ("original", "rescaled")}
    fig = figures.plot_slices_1d(offsets, slices, ["original", "rescaled"])
    assert [ax.get_title() for ax in fig.axes] == ["1-D slice, raw direction",
                                                   "1-D slice, filter-normalized direction"]
    grid = np.linspace(-1, 1, 3)
    fig = figures.plot_slices_2d(grid, {key: np.ones((3, 3)) + np.eye(3) for key in slices})
    assert len(fig.axes) == 5  # four panels and the shared colour bar
