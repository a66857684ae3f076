"""run_grid: parallel = serial, disk cache (hits, misses, stale, corrupt), bad input (clusters:
test_grid_clusters.py)."""

import math
import os
from pathlib import Path

import joblib
import pandas as pd
import pytest
import torch

from edutools.engine.grid import GridRunError, grid_cache, run_grid
from edutools.ground.cache import ResultCache
from tests.engine import grid_runs

GRID = {"lr": [0.1, 0.5], "momentum": [0.0, 0.9]}


@pytest.fixture(autouse=True)
def private_cache(monkeypatch, tmp_path):
    """Each test gets its own cache directory, through the variable users set."""
    monkeypatch.setenv("EDUTOOLS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def calls_in(directory: Path) -> int:
    return len(list(directory.glob("*.call")))


@pytest.fixture
def log_dir(tmp_path):
    directory = tmp_path / "calls"
    directory.mkdir()
    return directory


def test_parallel_equals_serial_and_the_frame_is_tidy():
    serial = run_grid(grid_runs.heavy_ball, GRID, seeds=(0, 1), n_jobs=1, cache=False)
    parallel = run_grid(grid_runs.heavy_ball, GRID, seeds=(0, 1), n_jobs=2, cache=False)
    pd.testing.assert_frame_equal(serial, parallel, check_exact=True)
    assert list(serial.columns) == ["lr", "momentum", "seed", "loss", "sharpness",
                                    "global_draw", "last_theta"]
    expected = [(lr, m, s) for lr in GRID["lr"] for m in GRID["momentum"] for s in (0, 1)]
    assert list(serial[["lr", "momentum", "seed"]].itertuples(index=False, name=None)) == expected
    assert serial["loss"].dtype == float and len(serial["last_theta"].iloc[0]) == 2
    # The runner seeds the global RNG per call: same seed, same draw, in any process.
    assert serial.groupby("seed")["global_draw"].nunique().eq(1).all()
    assert serial.attrs == {"computed": 8, "cached": 0}


def test_workers_are_processes_with_one_torch_thread():
    frame = run_grid(grid_runs.thread_report, {"x": [0, 1, 2, 3]}, n_jobs=2, cache=False)
    assert (frame["pid"] != os.getpid()).all()
    assert (frame["torch_threads"] == 1).all() and (frame["omp_threads"] == "1").all()
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        inline = run_grid(grid_runs.thread_report, {"x": [0]}, n_jobs=1, cache=False)
        assert inline["torch_threads"].iloc[0] == 1 and inline["pid"].iloc[0] == os.getpid()
        assert torch.get_num_threads() == 2, "the caller's thread count was not restored"
    finally:
        torch.set_num_threads(before)


def test_second_call_is_served_from_the_cache(log_dir, private_cache):
    first = run_grid(grid_runs.heavy_ball, GRID, seeds=(0, 1), fixed={"log_dir": str(log_dir)},
                     n_jobs=2)
    assert calls_in(log_dir) == 8 and first.attrs == {"computed": 8, "cached": 0}
    assert len(list(private_cache.rglob("*.entry"))) == 8
    again = run_grid(grid_runs.heavy_ball, GRID, seeds=(0, 1), fixed={"log_dir": str(log_dir)},
                     n_jobs=2)
    assert calls_in(log_dir) == 8 and again.attrs == {"computed": 0, "cached": 8}
    pd.testing.assert_frame_equal(first, again, check_exact=True)
    # A slider value with float noise lands on the same entry.
    noisy = run_grid(grid_runs.heavy_ball, {"lr": [0.1], "momentum": [0.9000000000000001]},
                     fixed={"log_dir": str(log_dir)})
    assert calls_in(log_dir) == 8 and noisy["loss"].iloc[0] == first["loss"].iloc[2]


def test_only_new_configurations_run(log_dir):
    fixed = {"log_dir": str(log_dir)}
    run_grid(grid_runs.heavy_ball, GRID, fixed=fixed, n_jobs=1)
    assert calls_in(log_dir) == 4
    wider = run_grid(grid_runs.heavy_ball, {**GRID, "lr": [0.1, 0.5, 0.7]}, fixed=fixed,
                     seeds=(0, 5), n_jobs=1)
    # 3 lr × 2 momenta × 2 seeds = 12 rows, of which lr ∈ {0.1, 0.5} with seed 0 were cached.
    assert wider.attrs == {"computed": 8, "cached": 4} and calls_in(log_dir) == 12
    run_grid(grid_runs.heavy_ball, GRID, fixed={**fixed, "steps": 41}, n_jobs=1)
    assert calls_in(log_dir) == 16, "a changed fixed parameter must miss"


def test_code_version_change_recomputes(log_dir, tmp_path):
    fixed = {"log_dir": str(log_dir)}
    old = ResultCache("grid-test", version="v1", directory=tmp_path / "own")
    first = run_grid(grid_runs.heavy_ball, GRID, fixed=fixed, cache=old, n_jobs=1)
    new = ResultCache("grid-test", version="v2", directory=tmp_path / "own")
    second = run_grid(grid_runs.heavy_ball, GRID, fixed=fixed, cache=new, n_jobs=1)
    assert calls_in(log_dir) == 8 and second.attrs["computed"] == 4
    assert new.stats.removed == 4  # the stale entries were replaced
    pd.testing.assert_frame_equal(first, second, check_exact=True)
    assert grid_cache(grid_runs.heavy_ball).version != grid_cache(
        grid_runs.heavy_ball, depends_on=[joblib]).version


def test_corrupt_entries_are_recomputed(log_dir, private_cache):
    fixed = {"log_dir": str(log_dir)}
    first = run_grid(grid_runs.heavy_ball, GRID, fixed=fixed, n_jobs=1)
    files = sorted(private_cache.rglob("*.entry"))
    files[0].write_bytes(b"garbage")
    files[1].write_bytes(files[1].read_bytes()[:40])  # truncated, as by a killed process
    with pytest.warns(UserWarning, match="refused cache entry"):
        second = run_grid(grid_runs.heavy_ball, GRID, fixed=fixed, n_jobs=1)
    assert second.attrs == {"computed": 2, "cached": 2} and calls_in(log_dir) == 6
    pd.testing.assert_frame_equal(first, second, check_exact=True)


def test_diverged_run_is_kept_as_a_row():
    frame = run_grid(grid_runs.heavy_ball, {"lr": [0.1, 5.0], "momentum": [0.0]},
                     fixed={"steps": 400}, cache=False, n_jobs=1)
    assert len(frame) == 2 and math.isfinite(frame["loss"].iloc[0])
    assert not math.isfinite(frame["loss"].iloc[1])


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_failing_run_names_its_configuration(n_jobs, log_dir):
    with pytest.raises(GridRunError, match=r"configuration \{'x': 2\} with seed=7") as info:
        run_grid(grid_runs.failing, {"x": [2]}, seeds=(7,), n_jobs=n_jobs, cache=False)
    assert "ZeroDivisionError: cannot handle x=2" in str(info.value)
    assert info.value.configuration == {"x": 2} and info.value.seed == 7
    assert "raise ZeroDivisionError" in info.value.worker_traceback
    # Results finished before the failure stay cached.
    fixed = {"log_dir": str(log_dir)}
    with pytest.raises(GridRunError):
        run_grid(grid_runs.failing, {"x": [0, 1, 2]}, fixed=fixed, n_jobs=1)
    frame = run_grid(grid_runs.failing, {"x": [0, 1]}, fixed=fixed, n_jobs=1)
    assert frame.attrs["cached"] == 2 and list(frame["square"]) == [0, 1]


def test_bad_results_are_reported():
    with pytest.raises(ValueError, match=r"returned \['x'\]"):
        run_grid(grid_runs.clashing, {"x": [1]}, cache=False, n_jobs=1)
    with pytest.raises(GridRunError, match="'model' is a Linear"):
        run_grid(grid_runs.unpicklable_result, {"x": [1]}, cache=False, n_jobs=1)


def test_list_of_configurations_and_kwargs_runs():
    frame = run_grid(grid_runs.flexible, [{"a": 1, "b": 2}, {"a": 3}], seeds=(0,),
                     allowed={"a", "b"}, cache=False, n_jobs=1)
    assert list(frame["total"]) == [3.0, 3.0] and math.isnan(frame["b"].iloc[1])
    with pytest.raises(ValueError, match="unknown parameter 'c'"):
        run_grid(grid_runs.flexible, {"c": [1]}, allowed={"a", "b"}, cache=False)


BAD_INPUTS = [
    ({}, {}, ValueError, "grid is empty"),
    ([], {}, ValueError, "grid is empty"),
    ({"lr": []}, {}, ValueError, r"grid\['lr'\] is empty"),
    ({"lr": 0.1}, {}, TypeError, r"grid\['lr'\] must be a list"),
    ({"lr": [0.1], "momentum": [0.9], "lrr": [1]}, {}, ValueError, "unknown parameter 'lrr'"),
    ({"lr": [0.1], "momentum": [0.9, 1.0]}, {}, ValueError,
     r"momentum must lie in \[0, 1\), got 1.0"),
    ({"lr": [0.1], "momentum": [-0.1]}, {}, ValueError, "got -0.1"),
    ({"lr": [0.1, 0.0], "momentum": [0.9]}, {}, ValueError, "learning rate.*got 0.0"),
    ({"lr": [0.1], "momentum": [0.9]}, {"seeds": []}, ValueError, "seeds is empty"),
    ({"lr": [0.1], "momentum": [0.9]}, {"seeds": [1, 1]}, ValueError, r"seeds repeat \[1\]"),
    ({"lr": [0.1, 0.1], "momentum": [0.9]}, {}, ValueError, "repeats the configuration"),
    ({"lr": [0.1]}, {}, ValueError, r"needs \['momentum'\]"),
    ({"lr": [0.1], "momentum": [0.9]}, {"fixed": {"lr": 0.2}}, ValueError, "both in the grid"),
    ({"lr": [0.1], "seed": [1]}, {}, ValueError, "'seed' cannot be"),
    ({"lr": [0.1]}, {"fixed": {"momentum": 1.5}}, ValueError, "momentum must lie"),
    ({"lr": [0.1], "momentum": [0.9]}, {"fixed": {"dim": object()}}, TypeError,
     "cannot be part of a cache key"),
    ({"lr": [0.1], "momentum": [0.9]}, {"n_jobs": 0}, ValueError, "n_jobs"),
]


@pytest.mark.parametrize(("grid", "options", "error", "message"), BAD_INPUTS)
def test_bad_input_fails_before_any_run(grid, options, error, message, log_dir):
    options = {**options, "fixed": {"log_dir": str(log_dir), **options.get("fixed", {})}}
    with pytest.raises(error, match=message):
        run_grid(grid_runs.heavy_ball, grid, **options)
    assert calls_in(log_dir) == 0


def test_batch_size_and_custom_validation_fail_before_any_run(log_dir):
    def run_with_batches(lr, momentum, batch_size, *, seed):  # signature only: never called
        raise AssertionError("must not run")

    grid = {"lr": [0.1], "momentum": [0.9], "batch_size": [32, 512]}
    with pytest.raises(ValueError, match=r"batch_size=512 is larger than the training set"):
        run_grid(run_with_batches, grid, num_samples=500, cache=False)
    with pytest.raises(ValueError, match="batch_size must be a whole number"):
        run_grid(run_with_batches, {**grid, "batch_size": [32.5]}, cache=False)

    def no_big_steps(params):
        if params["lr"] / (1 - params["momentum"]) > 0.5:
            raise ValueError(f"effective step {params['lr'] / (1 - params['momentum']):.2f} > 0.5")

    with pytest.raises(ValueError, match=r"\{'lr': 0.1, 'momentum': 0.9\}: effective step 1.00"):
        run_grid(grid_runs.heavy_ball, GRID, validate=no_big_steps,
                 fixed={"log_dir": str(log_dir)})
    assert calls_in(log_dir) == 0


def test_local_processes_get_one_thread_each_and_a_caller_backend_is_respected():
    from edutools.engine.grid import _parallel_setup

    # On a 2-core machine joblib's own default is also 1 thread per worker, so check the request.
    assert _parallel_setup(None, None, 10) == (
        {"backend": "loky", "inner_max_num_threads": 1}, min(10, joblib.cpu_count()))
    assert _parallel_setup("loky", 3, 10)[1] == 3
    with joblib.parallel_config(backend="threading", n_jobs=3):
        assert _parallel_setup(None, None, 10) == ({}, 3)
    with joblib.parallel_config(backend="loky", inner_max_num_threads=2):
        assert _parallel_setup(None, None, 10) == ({}, -1)
    assert _parallel_setup("dask", None, 10) == ({"backend": "dask"}, -1)
