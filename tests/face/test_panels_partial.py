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

from edutools.face.panels import declared_panels  # noqa: E402

#: Every declared panel whose run draws while it trains (it declares ``quick`` settings).
PANELS = [panel for panel in declared_panels() if panel.quick is not None]


@pytest.mark.parametrize("panel", PANELS, ids=[f"{p.lesson}-{p.function}" for p in PANELS])
def test_partial_results_draw_like_the_final_one(panel):
    partials = []
    final = panel.run_function()(**panel.quick, **panel.sample, watch=partials.append)
    # A show that compares with a reference run gets the final one.
    show = functools.partial(panel.show, reference=final) if panel.reference else panel.show
    assert partials, "the run never called watch"
    for result in (partials[0], partials[-1], final):
        before = set(plt.get_fignums())
        drawn = show(result, **panel.sample)
        new = set(plt.get_fignums()) - before
        assert drawn is not None or new, f"lesson {panel.lesson}: show drew nothing"
        plt.close("all")


def test_the_panels_that_draw_partial_results_are_all_here():
    # The partial-results panels of lessons 00-06 (issue 9); a lesson that adds one declares it.
    assert {(p.lesson, p.function) for p in PANELS} >= {
        ("00", "train_seed_network"), ("01", "gd_edge_run"), ("02", "run_teacher"),
        ("03", "run_full_batch"), ("03", "run_momentum_batch"), ("03", "run_patch_momentum"),
        ("04", "run_sgd"), ("06", "sam_edge_run")}
