"""run_grid on real clusters: a local Ray instance and a two-worker Dask ``LocalCluster``.

The cluster code these tests run is the README's, read from its "Scaling the capstone's grid
out" section (the blocks after ``<!-- cluster-code: ray -->`` and ``<!-- cluster-code: dask -->``)
and executed as it stands, so the README shows exactly what is tested. Each test checks that the
cluster's numbers equal the local run exactly and that the calls ran in the cluster's worker
processes (their process ids), not in this one, and that the cluster is shut down.

Ray is a cluster extra (``requirements-cluster.txt``, installed by the README's test command
and by ``.ci/run``): without it the Ray test skips and says so, unless
``EDUTOOLS_REQUIRE_CLUSTER=1`` (CI sets it), which turns a missing Ray into a failure.
"""

import os
import re
from pathlib import Path

import joblib
import pandas as pd
import pytest

from edutools.engine.grid import GridRunError, run_grid
from tests.engine import grid_runs

README = Path(__file__).resolve().parents[2] / "README.md"
GRID = {"lr": [0.1, 0.5], "momentum": [0.0, 0.9]}
WHERE = ["pid", "process"]  # the columns of grid_runs.located_heavy_ball that say where it ran


@pytest.fixture(autouse=True)
def private_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("EDUTOOLS_CACHE_DIR", str(tmp_path / "cache"))


def readme_block(name: str) -> str:
    """The README's python block that follows ``<!-- cluster-code: NAME -->``."""
    match = re.search(rf"<!-- cluster-code: {name} -->\s*```python\n(.*?)```", README.read_text(),
                      re.DOTALL)
    assert match, f"README.md has no python block after <!-- cluster-code: {name} -->"
    return match.group(1)


def require(name: str) -> None:
    try:
        __import__(name)
    except ImportError as error:
        reason = (f"{name} is not installed ({error}); `pip install -r requirements-cluster.txt` "
                  "installs the cluster extras")
        if os.environ.get("EDUTOOLS_REQUIRE_CLUSTER", "") not in ("", "0"):
            pytest.fail(f"EDUTOOLS_REQUIRE_CLUSTER is set but {reason}", pytrace=False)
        pytest.skip(reason)


def local_run() -> pd.DataFrame:
    return run_grid(grid_runs.heavy_ball, GRID, seeds=(0, 1), n_jobs=1, cache=False)


def test_readme_ray_code_gives_the_local_numbers_in_ray_workers(monkeypatch):
    require("ray")
    import ray

    # On a loaded 2-core machine Ray's node and its agents can start slower than Ray waits for by
    # default (30 s and 15 s); give them time (Ray reads these settings from the environment).
    monkeypatch.setenv("RAY_raylet_start_wait_time_s", "180")
    monkeypatch.setenv("RAY_agent_register_timeout_ms", "180000")

    namespace = {"run": grid_runs.located_heavy_ball, "grid": GRID}
    try:
        exec(readme_block("ray"), namespace)
    finally:
        if ray.is_initialized():  # the README's code failed before its shutdown
            ray.shutdown()
            pytest.fail("the README's Ray code did not shut Ray down")
    frame = namespace["frame"]
    assert frame.attrs["computed"] == 8
    pd.testing.assert_frame_equal(local_run(), frame.drop(columns=WHERE), check_exact=True)
    assert os.getpid() not in set(frame["pid"])
    assert frame["process"].str.startswith("ray::").all(), list(frame["process"])


def test_readme_dask_code_gives_the_local_numbers_on_the_two_workers():
    require("distributed")
    namespace = {"run": grid_runs.located_heavy_ball, "grid": GRID}
    exec(readme_block("dask"), namespace)
    frame, worker_pids = namespace["frame"], namespace["worker_pids"]
    assert namespace["client"].status == "closed"
    pd.testing.assert_frame_equal(local_run(), frame.drop(columns=WHERE), check_exact=True)
    # Two workers, not one: on a one-worker, one-thread cluster joblib runs every call in the
    # client process (it counts the cluster's cores and ignores n_jobs).
    assert len(worker_pids) == 2 and os.getpid() not in worker_pids
    assert set(frame["pid"]) <= worker_pids


def test_the_backend_can_come_from_the_callers_joblib_configuration():
    require("distributed")
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, \
            Client(cluster) as client, joblib.parallel_config(backend="dask"):
        report = run_grid(grid_runs.thread_report, {"x": [0, 1, 2, 3]}, cache=False)
        worker_pids = set(client.run(os.getpid).values())
    assert set(report["pid"]) <= worker_pids and (report["torch_threads"] == 1).all()


def test_a_backend_without_generators_runs_in_waves_that_fill_the_cache(tmp_path):
    """joblib's multiprocessing backend, like Ray's, cannot stream results: run_grid sends the
    calls in waves of one per worker, and every finished wave is cached before a later one
    fails (a grid that ended with the first failure would have kept nothing)."""
    log_dir = tmp_path / "calls"
    log_dir.mkdir()
    fixed = {"log_dir": str(log_dir)}
    with joblib.parallel_config(backend="multiprocessing"):
        assert not joblib.parallel.get_active_backend()[0].supports_return_generator
    pooled = run_grid(grid_runs.heavy_ball, GRID, seeds=(0, 1), backend="multiprocessing",
                      n_jobs=2, cache=False)
    pd.testing.assert_frame_equal(local_run(), pooled, check_exact=True)

    with pytest.raises(GridRunError, match=r"configuration \{'x': 2\}"):
        run_grid(grid_runs.failing, {"x": [0, 1, 2, 3]}, fixed=fixed,
                 backend="multiprocessing", n_jobs=2)
    assert len(list(log_dir.glob("*.call"))) == 4  # two waves of two calls
    again = run_grid(grid_runs.failing, {"x": [0, 1]}, fixed=fixed, n_jobs=1)
    assert again.attrs["cached"] == 2 and list(again["square"]) == [0, 1]


@pytest.mark.parametrize("name", ["ray", "dask"])
def test_lesson_07_shows_the_cluster_code_these_tests_run(name):
    """Lesson 07's section on clusters shows the README's blocks word for word."""
    import nbformat

    lesson = Path(__file__).resolve().parents[2] / "lessons" / "07_capstone.ipynb"
    text = "\n".join(cell.source for cell in nbformat.read(lesson, as_version=4).cells
                     if cell.cell_type == "markdown")
    assert readme_block(name) in text, f"lesson 07 does not show the README's {name} code"
