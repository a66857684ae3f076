"""Every lesson panel whose run draws while it trains can draw its partial results.

A slider's run passes partial results to the panel's ``show`` through ``watch`` (issue 9). The
browser benchmark found lesson 03's momentum × batch panel failing on them (``KeyError: 'lr'``: a
partial run without the run's settings); here each such (run, show) pair of the lessons runs a few
steps and draws its first and last partial result and the final one.
"""

from __future__ import annotations

import functools

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from edutools.engine.experiments import (  # noqa: E402
    cohen_eos,
    eoss,
    jelassi_li,
    large_batch,
    long_bartlett,
    momentum_eoss,
    seed_network,
)
from edutools.face.plots import lesson00, lesson01, lesson02, lesson03, lesson04, lesson06  # noqa: E402,E501

# (lesson, run with small settings, show, slider parameters as the panel passes them)
PANELS = [
    ("00", functools.partial(seed_network.train_seed_network, epochs=2),
     lesson00.show_seed_network, {"momentum": 0.9, "batch_size": 256, "lr": 0.01}),
    ("01", functools.partial(cohen_eos.gd_edge_run, num_steps=200, measure_every=50),
     lesson01.show_gd_edge_run, {"lr": 0.2}),
    ("02", functools.partial(eoss.run_teacher, num_steps=300),
     lesson02.show_batch_size_run, {"batch_size": 50, "lr": 0.2}),
    ("03", functools.partial(momentum_eoss.run_full_batch, num_steps=300),
     lesson03.show_full_batch_momentum, {"momentum": 0.5, "lr": 0.3}),
    ("03", functools.partial(momentum_eoss.run_momentum_batch, num_steps=200),
     lesson03.show_momentum_batch, {"momentum": 0.5, "batch_size": 8}),
    ("04", functools.partial(large_batch.run_sgd, num_epochs=3),
     None, {"batch_size": 64, "momentum": 0.5, "lr": 0.05}),
    ("06", functools.partial(long_bartlett.sam_edge_run, num_steps=200, measure_every=50),
     lesson06.show_sam_edge_run, {"rho": 0.05, "lr": 0.2}),
]


@pytest.mark.parametrize(("lesson", "run", "show", "params"), PANELS,
                         ids=[f"{lesson}-{run.func.__name__}" for lesson, run, _, _ in PANELS])
def test_partial_results_draw_like_the_final_one(lesson, run, show, params):
    partials = []
    final = run(**{k: v for k, v in params.items() if k != "lr" or lesson != "03"},
                watch=partials.append)
    if show is None:  # lesson 04's show compares with a reference run: the final one
        show = functools.partial(lesson04.show_sgd, reference=final)
    assert partials, "the run never called watch"
    for result in (partials[0], partials[-1], final):
        before = set(plt.get_fignums())
        drawn = show(result, **params)
        new = set(plt.get_fignums()) - before
        assert drawn is not None or new, f"lesson {lesson}: show drew nothing"
        plt.close("all")


def test_patch_momentum_partials_draw_against_the_reference():
    partials = []
    final = jelassi_li.run_patch_momentum(momentum=0.9, num_steps=60, measure_every=20,
                                          watch=partials.append)
    assert partials
    for result in (partials[0], final):
        lesson03.show_patch_momentum(result, reference=final, momentum=0.9)
        plt.close("all")
