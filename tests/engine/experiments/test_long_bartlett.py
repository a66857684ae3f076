"""Lesson 06's SAM edge (Long & Bartlett 2023): the quadratic's factors, the network runs and
their summaries."""

import math
import pickle

import numpy as np
import pandas as pd
import pytest

from edutools.engine.experiments.long_bartlett import (
    SLIDER_GRID,
    SamEdgeRun,
    sam_edge_column,
    sam_edge_run,
    sam_edge_summary,
    sam_edge_table,
    sam_edge_tracking,
    sam_quadratic_run,
)
from edutools.ground.theory import sam_edge


def test_each_direction_is_multiplied_by_the_predicted_factor_every_step():
    run = sam_quadratic_run([1.0, 4.0, 8.0], lr=0.2, rho=0.05, start=[1.0, -0.5, 0.3],
                            num_steps=60)
    assert run.positions.shape == (61, 3) and run.grad_norms.shape == (60,)
    # ‖g‖ is recomputed from the path itself, independently of the optimizer's bookkeeping.
    lam = np.array([1.0, 4.0, 8.0])
    np.testing.assert_allclose(run.grad_norms, np.linalg.norm(lam * run.positions[:-1], axis=1),
                               rtol=1e-12)
    assert run.max_factor_error < 1e-10
    np.testing.assert_allclose(run.edges, [sam_edge(0.2, 0.05, g) for g in run.grad_norms])


def test_rho_zero_is_gradient_descent():
    run = sam_quadratic_run([1.0, 4.0], lr=0.1, rho=0.0, num_steps=5)
    np.testing.assert_allclose(run.measured_factors, np.tile([0.9, 0.6], (5, 1)), rtol=1e-12)


def test_sam_ends_in_a_two_cycle_where_the_sharp_direction_sits_on_its_edge():
    # ηλ = 1.6 < 2: GD would converge. SAM shrinks ‖g‖ until λ = 8 is on λ_SAM(‖g‖), i.e.
    # 1.6 + ηρλ²/‖g‖ = 2, so ‖g‖ → ηρλ²/(2 − ηλ) = 1.6, and then flips sign every step.
    run = sam_quadratic_run([1.0, 8.0], lr=0.2, rho=0.05, num_steps=300)
    assert run.grad_norms[-1] == pytest.approx(0.2 * 0.05 * 64 / (2 - 1.6), rel=1e-6)
    assert run.edges[-1] == pytest.approx(8.0, rel=1e-6)
    assert run.measured_factors[-1, 1] == pytest.approx(-1.0, rel=1e-6)
    assert abs(run.positions[-1, 0]) < 1e-20  # the flat direction converged


@pytest.mark.parametrize("bad", [dict(curvatures=[]), dict(curvatures=[1.0, -2.0]),
                                 dict(start=[1.0]), dict(lr=0.0), dict(num_steps=0),
                                 dict(rho=-0.1)])
def test_bad_quadratic_settings_raise_value_errors(bad):
    settings = dict(curvatures=[1.0, 2.0], lr=0.1, rho=0.05, num_steps=3) | bad
    curvatures = settings.pop("curvatures")
    with pytest.raises(ValueError):
        sam_quadratic_run(curvatures, **settings)


def synthetic_record(steps, lambdas, norms):
    return pd.DataFrame({"step": steps, "train_loss": np.linspace(1, 0.1, len(steps)),
                         "grad_norm": norms, "lambda_max": lambdas})


def test_edge_columns_and_the_summary_of_a_synthetic_record():
    lr, rho = 0.2, 0.1
    norms = np.array([1.0, 0.5, 0.4, 0.2, 0.1])
    edges = np.array([sam_edge(lr, rho, g) for g in norms])
    ratios = np.array([0.5, 0.9, 1.0, 1.1, 1.2])
    record = synthetic_record([0, 100, 200, 300, 400], ratios * edges, norms)
    table = sam_edge_column(record, lr=lr, rho=rho)
    np.testing.assert_allclose(table["sam_edge"], edges)
    np.testing.assert_allclose(table["lambda_over_sam_edge"], ratios)
    np.testing.assert_allclose(table["lambda_over_gd_edge"], ratios * edges * lr / 2)
    assert "sam_edge" not in record  # a copy
    run = SamEdgeRun(config={"rho": rho, "lr": lr, "num_steps": 400}, record=table,
                     seconds=1.0)
    summary = sam_edge_summary(run, late_fraction=0.6)  # steps ≥ 240: 300 and 400
    assert summary.late_over_sam_edge == pytest.approx(1.15)
    assert (summary.late_min, summary.late_max) == pytest.approx((1.1, 1.2))
    assert summary.start_over_sam_edge == pytest.approx(0.5)
    assert summary.late_grad_norm == pytest.approx(0.15)
    assert summary.start_edge == pytest.approx(edges[0])
    assert summary.late_edge == pytest.approx(edges[3:].mean())
    frame = sam_edge_table([run])
    assert frame.loc[rho, "late λ/λ_SAM"] == pytest.approx(1.15)
    with pytest.raises(ValueError, match="late_fraction"):
        sam_edge_summary(run, late_fraction=1.0)


def test_the_edge_is_nan_where_the_gradient_norm_is_not_finite():
    record = synthetic_record([0, 1], [1.0, 2.0], [0.5, float("nan")])
    table = sam_edge_column(record, lr=0.2, rho=0.05)
    assert math.isnan(table["sam_edge"].iloc[1]) and not math.isnan(table["sam_edge"].iloc[0])


def test_a_short_network_run_is_picklable_and_watched_with_partial_runs():
    seen = []
    run = sam_edge_run(rho=0.05, lr=0.2, seed=0, num_steps=20, measure_every=10,
                       watch=seen.append)
    assert isinstance(run, SamEdgeRun) and len(run.record) == 3
    assert {"lambda_max", "grad_norm", "sam_edge", "lambda_over_sam_edge"} <= set(run.record)
    assert len(run.step_losses) == 20 and run.seconds > 0
    assert [len(partial.record) for partial in seen] == [1, 2, 3]
    assert all(isinstance(partial, SamEdgeRun) for partial in seen)
    # SAM's edge is below GD's 2/η at every measurement (ρ > 0, finite ‖g‖).
    assert (run.record["sam_edge"] < 2 / 0.2).all()
    again = pickle.loads(pickle.dumps(run))
    pd.testing.assert_frame_equal(again.record, run.record)
    assert set(SLIDER_GRID) == {"rho", "lr"} and 0.0 in SLIDER_GRID["rho"]


def _tracking_run(lam, edge):
    steps = np.arange(len(lam)) * 50
    lam, edge = np.asarray(lam, dtype=float), np.asarray(edge, dtype=float)
    record = pd.DataFrame({"step": steps, "lambda_max": lam, "sam_edge": edge,
                           "lambda_over_sam_edge": lam / edge})
    return SamEdgeRun(config={"rho": 0.05, "lr": 0.2, "num_steps": int(steps[-1])},
                      record=record)


def test_sam_edge_tracking_follows_lambda_from_its_arrival_on_the_edge():
    edge = np.array([8.0, 5.0, 3.0, 3.5, 4.0, 4.6, 4.9, 4.7, 4.5])
    # λ_max starts below the edge, which falls onto it (step 100); then λ = 1.02·edge.
    lam = np.r_[[4.3, 4.0], 1.02 * edge[2:]]
    tracking = sam_edge_tracking(_tracking_run(lam, edge))
    assert tracking["arrival_step"] == 100 and tracking["window"] == 7
    assert tracking["ratio_min"] == pytest.approx(1.02)
    assert tracking["ratio_max"] == pytest.approx(1.02)
    assert tracking["edge_range"] == pytest.approx(4.9 / 3.0 - 1)
    assert tracking["level_corr"] == pytest.approx(1.0)
    assert tracking["rank_corr"] == pytest.approx(1.0)
    # A λ_max that arrives and then drifts down while the edge rises is caught.
    drift = sam_edge_tracking(_tracking_run(np.r_[[4.3, 4.0], 3.1 - 0.01 * np.arange(7)], edge))
    assert drift["ratio_max"] == pytest.approx(3.1 / 3.0) and drift["ratio_min"] < 0.7
    assert drift["level_corr"] < 0 and drift["rank_corr"] < 0
    # Never on the edge: no window.
    never = sam_edge_tracking(_tracking_run(0.5 * edge, edge))
    assert np.isnan(never["arrival_step"]) and never["window"] == 0
    with pytest.raises(ValueError, match="at least 3"):
        sam_edge_tracking(_tracking_run(np.r_[0.5 * edge[:-2], edge[-2:]], edge))
    with pytest.raises(ValueError, match="arrival"):
        sam_edge_tracking(_tracking_run(lam, edge), arrival=1.5)
