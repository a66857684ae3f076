"""Lesson 00's seed network: the slider's run function, its summary and its table."""

import pickle

import numpy as np
import pandas as pd
import pytest

from edutools.engine.experiments import seed_network
from edutools.engine.experiments.seed_network import (
    SeedNetworkRun,
    seed_network_frame,
    seed_network_table,
    summarise_seed_network,
    train_seed_network,
)


def test_the_grid_is_the_course_grid():
    assert seed_network.SLIDER_GRID == {"momentum": (0.0, 0.5, 0.9, 0.95, 0.99),
                                        "batch_size": (32, 64, 128, 256)}
    assert seed_network.LR == 0.01 and seed_network.FAST_EPOCHS < seed_network.EPOCHS


def test_one_epoch_run_is_summarised_and_picklable():
    seen = []
    run = train_seed_network(momentum=0.9, batch_size=256, epochs=1, seed=3, watch=seen.append)
    assert isinstance(run, SeedNetworkRun)
    # One epoch = 4000 // 256 = 15 full batches (the incomplete last one is dropped): 0.96 passes.
    assert run.record["step"].tolist() == [0, 15]
    assert run.record["epoch"].tolist() == pytest.approx([0.0, 15 * 256 / 4000])
    assert run.final_val_acc == pytest.approx(run.record["val_acc"].iloc[-1])
    assert run.best_val_acc == pytest.approx(run.record["val_acc"].max())
    late = run.record[run.record["epoch"] >= 0.5]
    assert run.relative_loss_spread == pytest.approx(
        float((late["loss_var"] / late["train_loss"] ** 2).median()))
    assert not run.diverged and run.diverged_at is None
    # The watch saw a partial run after every measurement, the last one complete.
    assert [len(partial.record) for partial in seen] == [1, 2]
    assert all(isinstance(partial, SeedNetworkRun) for partial in seen)
    # No model inside: a disk cache or a worker process can pickle it.
    copy = pickle.loads(pickle.dumps(run))
    assert copy.summary() == run.summary()
    assert copy.record.equals(run.record)


def test_every_setting_starts_from_the_same_weights_and_seeds_differ():
    a = train_seed_network(momentum=0.0, batch_size=256, epochs=1, seed=1)
    b = train_seed_network(momentum=0.5, batch_size=128, epochs=1, seed=1)
    c = train_seed_network(momentum=0.0, batch_size=256, epochs=1, seed=2)
    assert a.record["train_loss"].iloc[0] == b.record["train_loss"].iloc[0]
    assert a.record["train_loss"].iloc[0] != c.record["train_loss"].iloc[0]
    assert a.record["train_loss"].iloc[1] != b.record["train_loss"].iloc[1]


def test_fast_mode_sets_the_default_epochs(monkeypatch):
    calls = {}

    def fake_train(model, data, **kwargs):
        calls.update(kwargs)
        raise RuntimeError("stop here")

    monkeypatch.setattr(seed_network, "train", fake_train)
    for fast, epochs in ((True, seed_network.FAST_EPOCHS), (False, seed_network.EPOCHS)):
        with pytest.raises(RuntimeError, match="stop here"):
            train_seed_network(momentum=0.0, batch_size=100, fast=fast)
        assert calls["num_steps"] == epochs * 40 and calls["measure_every"] == 40


@pytest.mark.parametrize(("kwargs", "name"), [
    (dict(momentum=0.9, batch_size=0), "batch_size"),
    (dict(momentum=0.9, batch_size=64.0), "batch_size"),
    (dict(momentum=0.9, batch_size=5000), "batch_size"),
    (dict(momentum=1.0, batch_size=64, epochs=1), "momentum"),
    (dict(momentum=0.9, batch_size=64, epochs=0), "epochs"),
    (dict(momentum=0.9, batch_size=64, epochs=1, lr=-1.0), "lr"),
])
def test_bad_settings_name_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name):
        train_seed_network(**kwargs)


def _fake_run(momentum, batch_size, val_acc, seed=0):
    record = pd.DataFrame({"step": [0, 10, 20], "epoch": [0.0, 1.0, 2.0],
                           "train_loss": [2.0, 1.0, 0.5], "val_loss": [2.0, 1.1, 0.6],
                           "train_acc": [0.1, 0.6, 0.8], "val_acc": [0.1, val_acc + 0.01, val_acc],
                           "grad_norm": [3.0, 2.0, 1.0], "loss_var": [np.nan, 0.1, 0.05],
                           "val_jitter": [np.nan, 0.9, 0.7]})
    return summarise_seed_network(record, momentum=momentum, batch_size=batch_size, lr=0.01,
                                  epochs=2, seed=seed)


def test_summary_medians_use_the_second_half_and_skip_missing_values():
    run = _fake_run(0.9, 64, 0.8)
    assert run.final_val_acc == pytest.approx(0.8) and run.best_val_acc == pytest.approx(0.81)
    assert run.loss_var == pytest.approx(0.075)  # epochs 1 and 2 (≥ 2/2)
    assert run.relative_loss_spread == pytest.approx((0.1 / 1.0 + 0.05 / 0.25) / 2)
    assert run.grad_norm == pytest.approx(1.5) and run.val_jitter == pytest.approx(0.8)
    assert "2 of 2 epochs" in run.message


def test_table_pivots_momentum_by_batch_size_and_averages_seeds():
    runs = [_fake_run(0.0, 64, 0.7), _fake_run(0.0, 256, 0.6), _fake_run(0.9, 64, 0.9),
            _fake_run(0.9, 256, 0.8, seed=0), _fake_run(0.9, 256, 0.7, seed=1)]
    table = seed_network_table(runs)
    assert list(table.index) == [0.0, 0.9] and list(table.columns) == [64, 256]
    assert table.loc[0.9, 256] == pytest.approx(0.75)
    assert table.loc[0.0, 64] == pytest.approx(0.7)
    with pytest.raises(ValueError, match="value"):
        seed_network_table(runs, value="accuracy")
    with pytest.raises(ValueError, match="runs"):
        seed_network_table([])
    frame = seed_network_frame(runs[:2])
    assert frame["batch_size"].tolist() == [64, 256]
    assert frame["final_val_acc"].tolist() == pytest.approx([0.7, 0.6])
