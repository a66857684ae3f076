"""Killing a precompute or a grid, even with kill -9, leaves no worker process behind."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]
GRACE_SECONDS = 5.0

_PRECOMPUTE = textwrap.dedent("""
    from edutools.face.precompute import SliderGrid, precompute
    from tests.face.precompute_runs import sleepy
    precompute([SliderGrid("99", "sleepy", sleepy, {"x": (1.0, 2.0, 3.0, 4.0)})], n_jobs=2,
               progress=False)
""")
_GRID = textwrap.dedent("""
    from edutools.engine.grid import run_grid
    from tests.face.precompute_runs import sleepy
    run_grid(sleepy, {"x": [1.0, 2.0, 3.0, 4.0]}, n_jobs=2, cache=False, progress=False,
             seeds=(0,), allowed=["x"])
""")


def _start(script: str, tmp_path: Path) -> tuple[subprocess.Popen, list[psutil.Process]]:
    started = tmp_path / "started"
    started.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO), "EDUTOOLS_CACHE_DIR": str(tmp_path),
           "EDUTOOLS_TEST_STARTED": str(started)}
    process = subprocess.Popen([sys.executable, "-c", script], env=env, cwd=REPO)
    parent = psutil.Process(process.pid)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:  # until both workers run a task (they import torch)
        if len(list(started.iterdir())) >= 2:
            return process, parent.children(recursive=True)
        assert process.poll() is None, "the run ended before it was killed"
        time.sleep(0.5)
    process.kill()
    pytest.fail("the workers never started a task")


@pytest.mark.parametrize(("script", "how"), [(_PRECOMPUTE, signal.SIGKILL),
                                             (_GRID, signal.SIGKILL),
                                             (_PRECOMPUTE, signal.SIGTERM)],
                         ids=["precompute-kill-9", "grid-kill-9", "precompute-kill"])
def test_killing_the_parent_leaves_no_child(tmp_path, script, how):
    process, children = _start(script, tmp_path)
    assert children, "no worker processes to watch"
    os.kill(process.pid, how)
    process.wait(timeout=30)
    _, alive = psutil.wait_procs(children, timeout=GRACE_SECONDS)
    for child in alive:
        child.kill()
    assert not alive, f"{len(alive)} child process(es) outlived the parent: " + ", ".join(
        " ".join(c.cmdline()[:3]) for c in alive if c.is_running())
