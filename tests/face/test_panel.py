"""Slider panels: feedback at once, partial draws while running, cancelling, caches."""

import threading
import time

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from edutools.face import widgets  # noqa: E402
from edutools.ground.cache import ResultCache  # noqa: E402


def test_values_are_cleaned_once_where_they_enter():
    seen = []
    panel = widgets.slider_panel(lambda momentum: seen.append(momentum) or momentum,
                                 lambda result, **k: None,
                                 {"momentum": widgets.momentum_slider(0.5)}, background=False)
    panel.sliders["momentum"].value = 0.9000000000000001
    assert seen[-1] == 0.9 and repr(seen[-1]) == "0.9"
    assert panel.key() == (("momentum", 0.9),)
    assert widgets.clean_value(0.30000000000000004) == 0.3


def test_partial_results_are_drawn_while_the_run_goes_on_and_status_says_so():
    drawn, release = [], threading.Event()

    def run(momentum, watch=None):
        for i in range(3):
            watch((momentum, i))
        release.wait(5)
        return (momentum, "final")

    panel = widgets.slider_panel(run, lambda result, **k: drawn.append(result),
                                 {"momentum": widgets.momentum_slider(0.5)}, redraw_interval=0.0)
    panel.sliders["momentum"].value = 0.7
    assert "running momentum=0.7" in panel.status.value  # feedback before the run ends
    time.sleep(0.2)
    assert drawn[:3] == [(0.7, 0), (0.7, 1), (0.7, 2)]
    release.set()
    panel.wait()
    assert drawn[-1] == (0.7, "final") and "done in" in panel.status.value
    assert panel.last_timing["first_feedback_s"] < 1.0 and not panel.last_timing["cached"]


def test_moving_on_cancels_the_stale_run():
    started, finished = [], []
    gate = threading.Event()

    def run(momentum, watch=None):
        started.append(momentum)
        if momentum == 0.6:
            gate.wait(5)
        for _ in range(3):
            watch(momentum)
        finished.append(momentum)
        return momentum

    panel = widgets.slider_panel(run, lambda result, **k: None,
                                 {"momentum": widgets.momentum_slider(0.5)})
    panel.sliders["momentum"].value = 0.6
    first = panel._worker
    panel.sliders["momentum"].value = 0.8
    gate.set()
    first.join(5)
    panel.wait()
    assert sorted(started) == [0.6, 0.8] and finished == [0.8]  # 0.6 stopped at its first watch
    assert panel.cached(momentum=0.8) == 0.8


def test_a_failing_run_is_reported_in_the_status_line():
    def run(momentum):
        raise ValueError(f"momentum={momentum} diverged")

    panel = widgets.slider_panel(run, lambda result, **k: None,
                                 {"momentum": widgets.momentum_slider(0.5)})
    panel.sliders["momentum"].value = 0.7
    panel.wait()
    assert "ValueError" in panel.status.value and "momentum=0.7 diverged" in panel.status.value


def test_disk_cache_serves_a_new_panel_without_running(tmp_path):
    calls = []

    def run(momentum):
        calls.append(momentum)
        return {"acc": momentum}

    cache = ResultCache("panel-test", version="1", directory=tmp_path)
    sliders = {"momentum": widgets.momentum_slider(0.5)}
    widgets.slider_panel(run, lambda r, **k: None, sliders, disk_cache=cache).refresh()
    again = widgets.slider_panel(run, lambda r, **k: None,
                                 {"momentum": widgets.momentum_slider(0.5)}, disk_cache=cache)
    start = time.perf_counter()
    again.refresh()
    assert calls == [0.5] and again.last_timing["cached"]
    assert time.perf_counter() - start < 0.5


def test_a_revisited_setting_swaps_its_kept_figure_in_without_drawing_again():
    shown = []

    def show(result, **params):
        shown.append(result)
        print(f"result {result}")  # text output is kept with the figures

    def run(momentum, watch=None):
        if watch is not None:  # in the background: a partial result, drawn but never kept
            watch(-momentum)
        return momentum

    panel = widgets.slider_panel(run, show, {"momentum": widgets.momentum_slider(0.5)},
                                 redraw_interval=0.0)
    panel.refresh()
    first = panel.output.outputs
    panel.sliders["momentum"].value = 0.7
    panel.wait()
    assert shown == [0.5, -0.7, 0.7]
    panel.sliders["momentum"].value = 0.5  # back: the kept outputs, show() not called
    assert shown == [0.5, -0.7, 0.7] and panel.output.outputs == first
    assert panel.last_timing["cached"]
    panel.remember(0.55, momentum=0.5)  # a new result for the setting is drawn afresh
    panel.sliders["momentum"].value = 0.7
    panel.sliders["momentum"].value = 0.5
    assert shown[-1] == 0.55 and "result 0.55" in str(panel.output.outputs)


def test_module_level_runs_get_a_versioned_disk_cache_and_lambdas_none():
    from edutools.ground.theory import gd_edge

    cache = widgets.panel.disk_cache_for(gd_edge)
    assert cache is not None and "gd_edge" in repr(cache)
    assert widgets.panel.disk_cache_for(lambda lr: lr) is None


def test_choice_slider_rejects_a_value_off_the_grid():
    slider = widgets.choice_slider("momentum β", (0.0, 0.5, 0.9), 0.9)
    assert slider.value == 0.9 and not slider.continuous_update
    with pytest.raises(ValueError, match="0.7"):
        widgets.choice_slider("momentum β", (0.0, 0.5, 0.9), 0.7)
