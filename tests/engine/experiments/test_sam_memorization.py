"""Lesson 06: SGD and SAM at equal training loss, and the epoch at which each memorizes."""

import math

import pandas as pd
import pytest

from edutools.engine.experiments.sam_memorization import (
    at_equal_loss,
    first_epoch_at,
    memorization_epochs,
)


def record(losses, val_accs, memorized):
    return pd.DataFrame({"epoch": [0.0, 10.0, 20.0, 30.0][:len(losses)], "train_loss": losses,
                         "val_acc": val_accs, "memorized": memorized})


RECORDS = {
    # SGD fits fast and memorizes; SAM's loss stays higher and it memorizes later.
    ("SGD", 0): record([2.0, 0.8, 0.4, 0.2], [0.1, 0.90, 0.85, 0.80], [0.1, 0.3, 0.6, 0.8]),
    ("SAM", 0): record([2.0, 1.0, 0.7, 0.5], [0.1, 0.88, 0.91, 0.90], [0.1, 0.2, 0.3, 0.4]),
    ("SGD", 1): record([2.0, 0.6, 0.3, 0.1], [0.1, 0.92, 0.84, 0.79], [0.1, 0.4, 0.7, 0.9]),
    ("SAM", 1): record([2.0, 0.9, 0.5, 0.3], [0.1, 0.90, 0.92, 0.91], [0.1, 0.2, 0.4, 0.5]),
}


def test_first_epoch_at_finds_the_first_crossing_either_way_or_nan():
    rec = RECORDS[("SGD", 0)]
    assert first_epoch_at(rec, "memorized", 0.5) == 20.0
    assert first_epoch_at(rec, "train_loss", 0.5, below=True) == 20.0
    assert math.isnan(first_epoch_at(rec, "memorized", 0.95))
    with pytest.raises(ValueError, match="nope"):
        first_epoch_at(rec, "nope", 0.5)


def test_at_equal_loss_reads_each_run_where_it_first_reaches_the_common_level():
    table = at_equal_loss(RECORDS, "SAM")
    # Seed 0: the level is SAM's lowest loss 0.5 (SGD's is 0.2); SGD first ≤ 0.5 at epoch 20.
    assert table.loc[0, "level"] == 0.5
    assert table.loc[0, "epoch_base"] == 20.0 and table.loc[0, "epoch_method"] == 30.0
    assert table.loc[0, "val_gap"] == pytest.approx(0.90 - 0.85)
    assert table.loc[0, "memorized_gap"] == pytest.approx(0.4 - 0.6)
    # Seed 1: level 0.3, SGD there at epoch 20 (0.84), SAM at 30 (0.91).
    assert table.loc[1, "level"] == 0.3 and table.loc[1, "epoch_base"] == 20.0
    assert table.loc[1, "val_gap"] == pytest.approx(0.91 - 0.84)
    with pytest.raises(ValueError, match="ASAM"):
        at_equal_loss(RECORDS, "ASAM")


def test_memorization_epochs_per_seed_and_method():
    epochs = memorization_epochs(RECORDS, ["SGD", "SAM"], level=0.4)
    assert epochs.loc[0, "SGD"] == 20.0 and epochs.loc[0, "SAM"] == 30.0
    assert epochs.loc[1, "SGD"] == 10.0 and epochs.loc[1, "SAM"] == 20.0
    assert math.isnan(memorization_epochs(RECORDS, ["SAM"], level=0.6).loc[0, "SAM"])
    with pytest.raises(ValueError, match="level"):
        memorization_epochs(RECORDS, ["SGD"], level=0.0)


def test_memorization_is_counted_from_the_least_memorized_measurement():
    # At initialization a tenth of the flipped labels are "memorized" by chance; that first
    # measurement must not count as memorizing.
    chance_first = {("SGD", 0): record([2.3, 1.0, 0.6, 0.3], [0.1, 0.9, 0.9, 0.8],
                                       [0.12, 0.01, 0.05, 0.2])}
    assert memorization_epochs(chance_first, ["SGD"], level=0.1).loc[0, "SGD"] == 30.0
    assert first_epoch_at(chance_first[("SGD", 0)], "memorized", 0.1) == 0.0
