"""The one run record (issue 17): the partial form carries the run's settings, the generic
``watch`` adapter feeds partial records of the experiment's own class, and records survive the
result cache (JSON + npz, no pickle) with their class, fields and settings."""

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from torch import nn

from edutools.engine.experiments import (
    cohen_eos,
    eoss,
    large_batch,
    long_bartlett,
    sam_momentum,
    seed_network,
)
from edutools.engine.training import RunRecord, TrainResult, partial_watch, train
from edutools.ground.cache import MISS, ResultCache
from edutools.ground.models import mlp

WIDTHS = (20, 8, 4)


def _frame(steps):
    steps = np.asarray(steps)
    return pd.DataFrame({"step": steps, "train_loss": 1.0 / (1 + steps),
                         "lambda_max": 2.0 + steps / 100, "grad_norm": 0.5 + 0 * steps})


def test_the_partial_form_carries_the_full_settings_and_the_record_shape():
    settings = {"rho": 0.05, "lr": 0.2, "num_steps": 400, "seed": 3}
    partial = long_bartlett.SamEdgeRun.partial_from(_frame([0, 50]), settings)
    assert partial.partial and partial.config == settings and partial.config is not settings
    assert (partial.rho, partial.lr, partial.num_steps) == (0.05, 0.2, 400)
    assert len(partial.step_losses) == 0 and math.isnan(partial.seconds)
    assert partial.message == "running" and not partial.diverged
    # shape_record ran: the partial record has the final record's derived columns.
    assert {"sam_edge", "lambda_over_sam_edge", "gd_edge"} <= set(partial.record)
    assert "partial" in repr(partial)


def test_a_missing_setting_names_the_ones_there_are():
    run = cohen_eos.EdgeRun(record=_frame([0]), config={"num_steps": 10})
    with pytest.raises(KeyError, match=r"EdgeRun has no setting 'lr'.*\['num_steps'\]"):
        _ = run.lr


def test_partial_watch_is_none_without_a_watcher_and_feeds_partial_records(teacher):
    assert partial_watch(None, {"lr": 0.1}) is None
    seen = []
    watch = partial_watch(seen.append, {"lr": 0.1, "num_steps": 6}, kind=eoss.SGDRun)
    model = mlp([6, 8, 3], seed=0)
    result = train(model, teacher, lr=0.1, num_steps=6, measure_every=2, seed=0,
                   progress=False, watch=watch)
    assert [len(p.record) for p in seen] == [1, 2, 3, 4]
    assert all(type(p) is eoss.SGDRun and p.partial for p in seen)
    assert all(p.config == {"lr": 0.1, "num_steps": 6} for p in seen)
    pd.testing.assert_frame_equal(seen[-1].record, result.record)
    final = eoss.SGDRun.from_train(result, num_train=teacher.num_train)
    assert not final.partial and final.config["num_train"] == 200
    assert final.config["lr"] == 0.1 and not hasattr(final, "model")


def test_train_result_is_a_run_record_and_from_train_splits_fields_from_settings(teacher):
    result = train(mlp([6, 8, 3], seed=0), teacher, lr=0.1, num_steps=4, measure_every=2,
                   seed=0, progress=False)
    assert isinstance(result, TrainResult) and isinstance(result, RunRecord)
    assert isinstance(result.model, nn.Module)
    assert result.num_steps == 4 and result.final["step"] == 4 and not result.partial
    final = np.arange(3.0)
    run = eoss.SGDRun.from_train(result, final_params=final, tag="x")
    assert run.final_params is final and run.config["tag"] == "x" and "final_params" not in \
        run.config
    np.testing.assert_array_equal(run.step_losses, result.step_losses)
    assert (run.message, run.seconds, run.diverged) == (result.message, result.seconds, False)


@pytest.mark.parametrize("name", ["run_sgd", "sam_edge_run"])
def test_every_partial_setting_is_the_final_records_setting(name):
    seen = []
    if name == "run_sgd":
        final = large_batch.run_sgd(batch_size=500, momentum=0.5, lr=0.05, num_epochs=2,
                                    widths=WIDTHS, watch=seen.append)
    else:
        final = long_bartlett.sam_edge_run(rho=0.05, num_steps=20, measure_every=10,
                                           watch=seen.append)
    assert seen and all(type(p) is type(final) for p in seen)
    for partial in seen:
        assert {k: final.config[k] for k in partial.config} == partial.config
        assert list(partial.record.columns) == list(final.record.columns)
    pd.testing.assert_frame_equal(seen[-1].record, final.record)


def _synthetic_runs():
    record = _frame([0, 100, 200])
    yield eoss.SGDRun(record=record, step_losses=np.linspace(1, 0.1, 200),
                      config={"lr": 0.1, "batch_size": None, "widths": (20, 8)},
                      final_params=np.ones(5, dtype=np.float32), message="done", seconds=1.5)
    yield long_bartlett.SamEdgeRun.partial_from(record, {"rho": 0.05, "lr": 0.2,
                                                         "num_steps": 200})
    config = {"optimizer": "SAM", "batch_size": 50, "lr": 0.3, "momentum": 0.5, "rho": 0.05,
              "num_steps": 200}
    yield sam_momentum.MomentumRun(record=sam_momentum.MomentumRun.shape_record(record, config),
                                   config=config, diverged=True, diverged_at=150)
    epochs = pd.DataFrame({"epoch": [0, 1, 2], "step": [0, 10, 20], "val_acc": [0.1, 0.5, 0.7],
                           "train_loss": [2.0, 1.0, 0.5], "loss_var": [np.nan, 0.1, 0.2],
                           "grad_norm": [1.0, 0.8, 0.6], "val_jitter": [np.nan, 0.0, 0.1]})
    yield seed_network.summarise_seed_network(epochs, momentum=0.9, batch_size=256, lr=0.01,
                                              epochs=2, seed=0)


@pytest.mark.parametrize("run", list(_synthetic_runs()), ids=lambda run: type(run).__name__)
def test_a_record_round_trips_through_the_result_cache(tmp_path, run):
    cache = ResultCache("unit/records", version="v1", directory=tmp_path)
    assert cache.put({"key": 1}, run)
    back = cache.get({"key": 1})
    assert back is not MISS and type(back) is type(run)
    for f in dataclasses.fields(run):
        mine, theirs = getattr(run, f.name), getattr(back, f.name)
        if isinstance(mine, pd.DataFrame):
            pd.testing.assert_frame_equal(theirs, mine, check_exact=True)
        elif isinstance(mine, np.ndarray):
            np.testing.assert_array_equal(theirs, mine)
            assert theirs.dtype == mine.dtype
        elif isinstance(mine, float) and math.isnan(mine):
            assert math.isnan(theirs)
        else:
            assert theirs == mine, f.name
    assert back.config == run.config and back.partial == run.partial
    if isinstance(run, seed_network.SeedNetworkRun):  # derived numbers come back too
        assert back.summary() == run.summary()


def test_a_record_computes_its_edges_once_from_its_settings():
    run = RunRecord(record=_frame([0, 10]), config={"lr": 0.3, "momentum": 0.5,
                                                    "nesterov": True})
    assert run.edges is run.edges  # computed (and checked) once per record
    assert run.edges.full_batch == pytest.approx((2 + 2 * 0.5) / (0.3 * 2))
    assert RunRecord(record=_frame([0]), config={"lr": 0.5}).edges.small_batch == 4.0
    with pytest.raises(KeyError, match="no setting 'lr'"):
        _ = RunRecord(record=_frame([0]), config={"momentum": 0.5}).edges
