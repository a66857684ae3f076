"""Precomputing slider grids fills exactly the cache the panels read."""

import pytest

from edutools.face import widgets
from edutools.face.precompute import SliderGrid, main, precompute
from edutools.face.widgets.panel import disk_cache_for
from tests.face.precompute_runs import fails_at_two, square_plus


def test_grid_points_are_cleaned_and_include_fixed_parameters():
    grid = SliderGrid("99", "x", square_plus, {"x": (0.1 + 0.2, 1.0)}, fixed={"offset": 1})
    assert grid.points() == [{"offset": 1, "x": 0.3}, {"offset": 1, "x": 1.0}]


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_precompute_fills_the_panel_cache_and_skips_cached_points(n_jobs):
    grid = SliderGrid("99", "x", square_plus, {"x": (1.0, 2.0, 3.0)}, fixed={"offset": n_jobs})
    disk_cache_for(square_plus).clear()
    first = precompute([grid], n_jobs=n_jobs, progress=False)
    assert (first.computed, first.cached, first.failed) == (3, 0, ())
    again = precompute([grid], n_jobs=n_jobs, progress=False)
    assert (again.computed, again.cached) == (0, 3)
    runs = []
    panel = widgets.slider_panel(lambda **k: runs.append(k), lambda r, **k: None,
                                 {"x": widgets.choice_slider("x", (1.0, 2.0, 3.0), 2.0)},
                                 fixed={"offset": n_jobs}, disk_cache=disk_cache_for(square_plus))
    panel.refresh()
    assert runs == [] and panel.cached() == {"value": 4.0 + n_jobs}


def test_a_failing_point_is_reported_and_the_others_kept(capsys):
    grid = SliderGrid("99", "fails", fails_at_two, {"x": (1.0, 2.0, 3.0)})
    disk_cache_for(fails_at_two).clear()
    report = precompute([grid], n_jobs=1)
    assert report.computed == 2 and len(report.failed) == 1 and "diverged at x=2" in \
        report.failed[0]
    assert "FAIL" in capsys.readouterr().out


def test_bad_input_names_the_problem():
    with pytest.raises(ValueError, match="n_jobs"):
        precompute([], n_jobs=0)
    with pytest.raises(ValueError, match="module-level"):
        precompute([SliderGrid("99", "lambda", lambda x: x, {"x": (1,)})], progress=False)
    with pytest.raises(SystemExit):
        main(["--lesson", "42"])


def test_every_registered_grid_matches_its_run_function_and_lesson():
    import inspect

    from edutools.face.precompute import slider_grids
    from tests.__main__ import lesson_paths

    lessons = {path.name[:2]: path.read_text() for path in lesson_paths()}
    for grid in slider_grids():
        accepted = inspect.signature(grid.run).parameters
        assert set(grid.grid) | set(grid.fixed) <= set(accepted), grid.name
        source = lessons[grid.lesson]
        assert grid.run.__name__ in source, f"lesson {grid.lesson} does not use {grid.run}"
        assert "slider_panel(" in source
