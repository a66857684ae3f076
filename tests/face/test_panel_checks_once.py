"""Issue 17: one slider move rounds each value once (the course's one rule) and checks it at
most once per boundary: a cached move checks nothing, a figure checks a record's settings once."""

import collections
import sys

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from edutools.face import widgets  # noqa: E402
from edutools.face.plots import lesson03  # noqa: E402
from edutools.ground import canonical, validation  # noqa: E402
from tests.face.fakes import fake_sgd_run  # noqa: E402

WATCHED = {validation.check_momentum.__code__: "check_momentum",
           validation.check_lr.__code__: "check_lr",
           canonical.canonical_value.__code__: "canonical_value",
           canonical.canonical_float.__code__: "canonical_float"}


def count_calls(action) -> collections.Counter:
    """How often each watched function ran during ``action()`` (by code object, so every
    ``from … import check_momentum`` binding counts)."""
    counts: collections.Counter = collections.Counter()

    def profile(frame, event, _arg):
        if event == "call" and frame.f_code in WATCHED:
            counts[WATCHED[frame.f_code]] += 1

    sys.setprofile(profile)
    try:
        action()
    finally:
        sys.setprofile(None)
    return counts


@pytest.fixture
def panel():
    def run(*, momentum, batch_size):  # a stand-in run: the record of β, B at η = 0.05
        return fake_sgd_run(5, config={"momentum": momentum, "batch_size": batch_size,
                                       "lr": 0.05, "num_train": 250, "num_steps": 1000})

    return widgets.slider_panel(
        run, lesson03.show_momentum_batch,
        {"momentum": widgets.choice_slider("momentum β", (0.0, 0.5, 0.9), 0.5),
         "batch_size": widgets.choice_slider("batch size B", (8, 250), 8)},
        disk_cache=False, background=False)


def test_a_move_rounds_each_value_once_and_the_figure_checks_the_record_once(panel):
    counts = count_calls(lambda: setattr(panel.sliders["momentum"], "value", 0.9))
    # two sliders: each value cleaned once; only β is a float
    assert counts["canonical_value"] == 2 and counts["canonical_float"] == 1
    # the stand-in run checks nothing; the figure builds the record's edges once
    assert counts["check_momentum"] == 1 and counts["check_lr"] == 1


def test_a_cached_move_checks_nothing(panel):
    panel.sliders["momentum"].value = 0.9
    panel.sliders["momentum"].value = 0.0
    counts = count_calls(lambda: setattr(panel.sliders["momentum"], "value", 0.9))
    assert counts["check_momentum"] == counts["check_lr"] == 0  # the drawn images are reused
    assert counts["canonical_value"] == 2
