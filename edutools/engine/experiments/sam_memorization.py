"""Lesson 06: SGD and SAM compared at equal training loss, and *when* each memorizes.

:func:`~edutools.engine.experiments.sam_generalization.compare_methods` compares the methods at
equal epochs. SAM fits the noisy training set more slowly (its training loss stays higher), so an
equal-epoch comparison partly compares a less-trained network with a more-trained one (lesson 02
compared batch sizes at equal loss for the same reason). Two views that remove that:

* :func:`at_equal_loss` — each method at the first measurement where its training loss is at or
  below a level both runs of a seed reach (the higher of their two lowest losses);
* :func:`memorization_epochs` — the first epoch at which each run's memorized fraction (flipped
  training labels predicted as given) reaches a level, counted from the run's least-memorized
  measurement (at initialization about 1/10 of the flipped labels are "predicted as given" by
  chance; the fraction first falls while the network learns the signal, then rises).

Both read the records of :func:`~edutools.engine.experiments.sam_generalization.compare_methods`
(columns ``epoch``, ``train_loss``, ``val_acc``, ``memorized``). Engine layer: nothing here draws.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

__all__ = ["MEMORIZED_LEVEL", "at_equal_loss", "first_epoch_at", "memorization_epochs"]

#: The memorization level lesson 06 dates: a quarter of the flipped training labels predicted
#: as given (SGD gets there in 60-80 of its 100 epochs).
MEMORIZED_LEVEL = 0.25

Records = Mapping[tuple[str, int], pd.DataFrame]


def first_epoch_at(record: pd.DataFrame, column: str, level: float, *,
                   below: bool = False, start: int = 0) -> float:
    """The first ``epoch`` of ``record`` at which ``column`` is ≥ ``level`` (``below=True``:
    ≤ ``level``), looking from row position ``start`` on; NaN if it never is."""
    if column not in record:
        raise ValueError(f"column {column!r} is not in the record: {list(record.columns)}")
    values = record[column].to_numpy(dtype=float)[start:]
    hits = np.flatnonzero(values <= level if below else values >= level)
    return float(record["epoch"].iloc[start + hits[0]]) if len(hits) else float("nan")


def _seeds(records: Records, method: str) -> list[int]:
    seeds = sorted(seed for name, seed in records if name == method)
    if not seeds:
        raise ValueError(f"method {method!r} has no record: "
                         f"{sorted({name for name, _ in records})}")
    return seeds


def at_equal_loss(records: Records, method: str, *, baseline: str = "SGD") -> pd.DataFrame:
    """``method`` against ``baseline`` at equal training loss, seed by seed.

    For each seed both were run on, the level is the higher of the two runs' lowest measured
    training losses (so both reach it); each run is read at its first measurement with a training
    loss ≤ that level. Returns one row per seed (index ``seed``): ``level``, and per run
    (suffix ``_base`` for the baseline, ``_method`` for ``method``) the ``epoch``, ``val_acc``
    and ``memorized`` there, plus ``val_gap`` and ``memorized_gap`` (method − baseline).
    """
    rows = {}
    for seed in _seeds(records, method):
        if (baseline, seed) not in records:
            continue
        runs = {"base": records[(baseline, seed)], "method": records[(method, seed)]}
        level = max(float(r["train_loss"].min()) for r in runs.values())
        row: dict[str, float] = {"level": level}
        for suffix, record in runs.items():
            first = record.index[record["train_loss"].to_numpy(dtype=float) <= level][0]
            for column in ("epoch", "val_acc", "memorized"):
                row[f"{column}_{suffix}"] = float(record.loc[first, column])
        row["val_gap"] = row["val_acc_method"] - row["val_acc_base"]
        row["memorized_gap"] = row["memorized_method"] - row["memorized_base"]
        rows[seed] = row
    if not rows:
        raise ValueError(f"no seed has both {method!r} and {baseline!r}")
    return pd.DataFrame(rows).T.rename_axis("seed")


def memorization_epochs(records: Records, methods: list[str], *,
                        level: float = MEMORIZED_LEVEL) -> pd.DataFrame:
    """The first epoch at which each method's memorized fraction reaches ``level``, per seed,
    counted from the run's least-memorized measurement on (before it, the fraction is falling
    from its chance value at initialization).

    Returns a frame with index ``seed`` and one column per method (NaN: never reached within
    the run).
    """
    if not 0 < level <= 1:
        raise ValueError(f"level must be a fraction in (0, 1], got {level!r}")
    def epoch(record: pd.DataFrame) -> float:
        start = int(np.argmin(record["memorized"].to_numpy(dtype=float)))
        return first_epoch_at(record, "memorized", level, start=start)

    columns = {name: {seed: epoch(records[(name, seed)]) for seed in _seeds(records, name)}
               for name in methods}
    return pd.DataFrame(columns).rename_axis("seed")
