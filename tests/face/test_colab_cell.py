"""The lessons' Colab setup cell, run here with a stand-in ``google.colab`` and no network.

The stand-in installer "clones" this checkout (a copy of it) where the cell asks, and records the
pip command instead of running it; a fresh Python then imports edutools and reads the MNIST
subset from the clone, as the lesson's next cells will on Colab.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

from tests.badges import ROOT, course_repository
from tests.colab_cell import cell_source, pinned

# What a clone of the repository holds that the course needs; the rest is left out of the copy.
_NOT_IN_CLONE = shutil.ignore_patterns(".git", ".venv", "build", "__pycache__", "*.egg-info",
                                       ".ipynb_checkpoints", ".pytest_cache", ".ruff_cache")
_SUBPROCESS_RUN = subprocess.run  # the real one, kept before the tests stub it


class StandIn:
    """Records the commands the cell runs; performs ``git clone`` as a copy of this checkout."""

    def __init__(self) -> None:
        self.commands: list[list[str]] = []
        self.widget_manager_enabled = 0

    def run(self, command, *args, **kwargs):  # the signature of subprocess.run
        self.commands.append(list(command))
        if command[:2] == ["git", "clone"]:
            shutil.copytree(ROOT, command[-1], ignore=_NOT_IN_CLONE)
        return subprocess.CompletedProcess(command, 0)

    def enable_custom_widget_manager(self) -> None:
        self.widget_manager_enabled += 1


@pytest.fixture
def cell_env(monkeypatch, tmp_path):
    """Run the cell in ``tmp_path`` with sys.path restored and subprocess.run stubbed."""
    stand_in = StandIn()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(subprocess, "run", stand_in.run)
    return stand_in


def install_fake_colab(monkeypatch, stand_in: StandIn) -> None:
    google = types.ModuleType("google")
    colab = types.ModuleType("google.colab")
    output = types.ModuleType("google.colab.output")
    output.enable_custom_widget_manager = stand_in.enable_custom_widget_manager
    colab.output = output
    google.colab = colab
    for name, module in (("google", google), ("google.colab", colab),
                         ("google.colab.output", output)):
        monkeypatch.setitem(sys.modules, name, module)


def run_cell() -> None:
    exec(compile(cell_source(), "<colab setup cell>", "exec"), {"__name__": "__main__"})


def test_outside_colab_the_cell_does_nothing(cell_env, monkeypatch, tmp_path):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    path_before = list(sys.path)
    run_cell()
    assert cell_env.commands == []
    assert sys.path == path_before
    assert list(tmp_path.iterdir()) == []


def test_on_colab_the_cell_fetches_the_course_and_enables_widgets(cell_env, monkeypatch,
                                                                  tmp_path):
    install_fake_colab(monkeypatch, cell_env)
    repo = course_repository()
    course_dir = str(tmp_path / repo.name)
    run_cell()

    clone, pip = cell_env.commands
    assert clone == ["git", "clone", "--depth", "1", "--branch", repo.branch, repo.clone_url,
                     course_dir]
    assert pip == [sys.executable, "-m", "pip", "install", "-q", "-e", course_dir,
                   pinned("ipywidgets")]
    assert cell_env.widget_manager_enabled == 1
    assert sys.path[0] == course_dir

    # A fresh kernel on Colab imports edutools from the clone and finds the shipped data there.
    check = ("import sys; sys.path.insert(0, sys.argv[1]); import edutools; "
             "from edutools.data import read_mnist_subset; "
             "assert edutools.__file__.startswith(sys.argv[1]), edutools.__file__; "
             "images = read_mnist_subset()[0]; print(len(images))")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "EDUTOOLS_DATA_DIR")}
    completed = _real_run([sys.executable, "-c", check, course_dir], env=env, cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert int(completed.stdout.split()[-1]) == 5000


def test_running_the_cell_again_does_not_clone_twice(cell_env, monkeypatch, tmp_path):
    install_fake_colab(monkeypatch, cell_env)
    run_cell()
    run_cell()
    clones = [c for c in cell_env.commands if c[:2] == ["git", "clone"]]
    assert len(clones) == 1
    course_dir = str(tmp_path / course_repository().name)
    assert sys.path.count(course_dir) == 1
    assert cell_env.widget_manager_enabled == 2  # harmless: Colab accepts it again


def _real_run(command: list[str], *, env: dict[str, str], cwd: Path):
    return _SUBPROCESS_RUN(command, env=env, cwd=cwd, capture_output=True, text=True,
                           timeout=120)
