"""Lesson 03's engine: full-batch and mini-batch momentum runs, settled values and plateaus;
heavy ball on the quadratic."""

import pickle

import numpy as np
import pandas as pd
import pytest

from edutools.engine.experiments.eoss import SGDRun
from edutools.engine.experiments.heavy_ball import run_quadratics, verify_quadratic_edges
from edutools.engine.experiments.momentum_eoss import (
    plateau_table,
    run_full_batch,
    run_sgdm,
    settled,
)
from edutools.ground import theory


def test_run_full_batch_records_lambda_max_with_momentum_and_nesterov():
    heavy = run_full_batch(momentum=0.5, lr=0.3, num_steps=100, seed=0)
    nesterov = run_full_batch(momentum=0.5, nesterov=True, lr=0.3, num_steps=100, seed=0)
    assert heavy.config["momentum"] == 0.5 and nesterov.config["nesterov"]
    assert heavy.record["step"].tolist() == [0, 100]
    assert heavy.record["lambda_max"].gt(0).all()
    # Same start, different rules: same λ_max at step 0, different trajectories.
    start = nesterov.record["lambda_max"].iloc[0]
    assert heavy.record["lambda_max"].iloc[0] == pytest.approx(start)
    assert not np.array_equal(heavy.step_losses, nesterov.step_losses)


def test_run_sgdm_measures_twenty_times_and_is_picklable():
    seen = []
    run = run_sgdm(batch_size=101, momentum=0.9, lr=0.05, num_steps=20, num_train=150, seed=1,
                   watch=seen.append)
    assert len(run.record) == 21 and run.record["step"].iloc[-1] == 20
    assert run.record["batch_sharpness"].notna().all()
    assert len(seen) == 21 and isinstance(seen[-1], SGDRun)
    assert pickle.loads(pickle.dumps(run)).config["momentum"] == 0.9
    full = run_sgdm(batch_size=150, num_steps=20, num_train=150, seed=1)
    assert "batch_sharpness" not in full.record


def make_run(num_steps, bs, lam):
    steps = np.linspace(0, num_steps, len(bs))
    return SGDRun(record=pd.DataFrame({"step": steps, "batch_sharpness": bs, "lambda_max": lam}),
                  config={"num_steps": num_steps})


def test_settled_averages_the_last_third_including_its_first_step():
    # Steps 0, 2000, 4000, 6000: the last third starts at 4000, despite (1 − 1/3)·6000 rounding.
    run = make_run(6000, [1.0, 2.0, 3.0, 5.0], [10.0, 20.0, 30.0, 50.0])
    assert settled(run) == pytest.approx({"batch_sharpness": 4.0, "lambda_max": 40.0})
    assert settled(run, fraction=1.0)["batch_sharpness"] == pytest.approx(11 / 4)
    no_bs = SGDRun(record=run.record.drop(columns="batch_sharpness"), config=run.config)
    assert np.isnan(settled(no_bs)["batch_sharpness"])
    with pytest.raises(ValueError, match="fraction"):
        settled(run, fraction=0.0)


def test_plateau_table_divides_by_the_two_edges():
    lr, momentum = 0.3, 0.5
    lower = theory.small_batch_momentum_edge(lr, momentum)
    upper = theory.momentum_edge(lr, momentum)
    runs = {100: make_run(300, [0, 0, lower, lower], [0, 0, 5.0, 5.0]),
            1000: make_run(300, [np.nan] * 4, [0, 0, upper, upper])}
    table = plateau_table(runs, lr=lr, momentum=momentum)
    assert list(table.index) == [100, 1000] and table.index.name == "batch size"
    assert table.loc[100, "BS / lower edge"] == pytest.approx(1.0)
    assert table.loc[100, "λ_max / upper edge"] == pytest.approx(5.0 / upper)
    assert table.loc[1000, "λ_max / upper edge"] == pytest.approx(1.0)
    assert np.isnan(table.loc[1000, "BS / lower edge"])


def test_run_quadratics_classifies_each_rule():
    # ηλ = 2.4: beyond GD's edge 2, inside heavy ball's 3, beyond Nesterov's 1.5.
    result = run_quadratics(lr=0.3, momentum=0.5, curvature=8.0, num_steps=200)
    assert result.regimes["GD"] == "diverges" and result.regimes["Nesterov"] == "diverges"
    assert result.regimes["heavy ball"] != "diverges"
    assert result.runs["heavy ball"].losses[-1] < 1e-6 * result.runs["heavy ball"].losses[0]
    assert result.runs["GD"].diverged and result.runs["Nesterov"].diverged
    assert pickle.loads(pickle.dumps(result)).regimes == result.regimes


def test_verify_quadratic_edges_finds_the_closed_form_boundary():
    h = np.linspace(0.0, 4.2, 169)
    table = verify_quadratic_edges(step_curvatures=h, momenta=np.linspace(0.0, 0.9, 10),
                                   checked_momenta=(0.0, 0.6), num_steps=400)
    assert list(table["nesterov"]) == [False, True]
    assert (table["max boundary error"] <= h[1] + 1e-9).all(), table
    assert table["inside converges"].all() and table["outside diverges"].all()
    # A margin of 0 puts the "outside" run on the edge itself, where it does not blow up.
    on_edge = verify_quadratic_edges(step_curvatures=h, momenta=np.array([0.5]), margin=0.0,
                                     checked_momenta=(0.5,), num_steps=200)
    assert not on_edge["outside diverges"].any()


def test_panel_keeps_the_effective_step_and_the_lower_edge_fixed():
    from edutools.engine.experiments.momentum_eoss import PANEL, PANEL_GRID, panel_lr

    assert panel_lr(0.9) == 0.05 and panel_lr(0.0) == PANEL["effective_lr"]
    for momentum in PANEL_GRID["momentum"]:
        lr = panel_lr(momentum)
        assert theory.effective_lr(lr, momentum) == pytest.approx(PANEL["effective_lr"])
        assert theory.small_batch_momentum_edge(lr, momentum) == pytest.approx(4.0)
    assert PANEL["num_train"] in PANEL_GRID["batch_size"]  # the full batch is on the grid
    with pytest.raises(ValueError, match="momentum"):
        panel_lr(1.0)


def test_run_momentum_batch_is_run_sgdm_on_the_panel_setting():
    from edutools.engine.experiments.momentum_eoss import run_momentum_batch

    run = run_momentum_batch(momentum=0.5, batch_size=250, seed=3, num_steps=20)
    assert run.config["lr"] == 0.25 and run.config["momentum"] == 0.5
    assert run.config["num_train"] == 250 and "batch_sharpness" not in run.record
    same = run_sgdm(batch_size=250, momentum=0.5, lr=0.25, num_steps=20, num_train=250, seed=3)
    np.testing.assert_array_equal(run.step_losses, same.step_losses)
