"""Warm-up runs: the schedule's plateaus, the chained full-batch GD run, the summary table."""

import numpy as np
import pytest

from edutools.engine.experiments import warmup

WIDTHS = (20, 8, 4)


def test_schedule_ramps_linearly_then_holds():
    assert warmup.warmup_schedule(1.0, 0, 50) == [(1.0, 50)]
    plateaus = warmup.warmup_schedule(1.0, 20, 50, num_ramps=4)
    assert plateaus == [(0.25, 5), (0.5, 5), (0.75, 5), (1.0, 5), (1.0, 30)]
    with pytest.raises(ValueError, match="warmup_steps"):
        warmup.warmup_schedule(1.0, 21, 50, num_ramps=4)
    with pytest.raises(ValueError, match="warmup_steps"):
        warmup.warmup_schedule(1.0, 60, 50, num_ramps=4)
    with pytest.raises(ValueError, match="lr"):
        warmup.warmup_schedule(-1.0, 20, 50)


def test_warmup_run_records_the_eta_in_force_and_lambda_on_its_clock():
    run = warmup.run_warmup(lr=0.4, warmup_steps=20, num_steps=40, num_ramps=4, seed=0,
                            measure_every=5, lambda_every=10, widths=WIDTHS)
    record = run.record
    assert len(run.step_losses) == 40 and not run.diverged
    assert list(record["step"]) == list(range(0, 45, 5))  # no duplicated plateau boundaries
    assert record.loc[record["step"] == 5, "lr"].item() == pytest.approx(0.1)
    assert np.allclose(record["edge"], 2 / record["lr"])
    measured = record.dropna(subset=["lambda_max"])["step"].tolist()
    assert measured == [0, 10, 20, 30, 40]
    assert run.lambda_init == pytest.approx(record["lambda_max"].iloc[0], rel=1e-2)
    assert run.lambda_final > 0 and run.edge == pytest.approx(5.0)
    assert run.max_loss_ratio >= 1.0


def test_a_huge_eta_blows_up_and_the_table_says_so():
    at_once = warmup.run_warmup(lr=50.0, warmup_steps=0, num_steps=40, seed=0,
                                lambda_every=None, widths=WIDTHS)
    assert at_once.diverged and np.isnan(at_once.lambda_final)
    assert at_once.max_loss_ratio > 100
    ramped = warmup.run_warmup(lr=0.4, warmup_steps=20, num_steps=40, seed=0, num_ramps=4,
                               lambda_every=None, widths=WIDTHS)
    assert ramped.record["lambda_max"].isna().all()  # None: only the start and the end
    table = warmup.warmup_table({0: at_once}, {0: ramped})
    assert table.loc[0, "at once: blew up at step"] == len(at_once.step_losses)
    assert table.loc[0, "λ_max·η/2 at the start"] == pytest.approx(at_once.lambda_init * 25)
    assert table.loc[0, "warm-up: λ_max end ÷ start"] == pytest.approx(
        ramped.lambda_final / ramped.lambda_init)
    with pytest.raises(ValueError, match="lambda_every"):
        warmup.run_warmup(lr=0.4, warmup_steps=0, num_steps=10, measure_every=5,
                          lambda_every=7, widths=WIDTHS)
