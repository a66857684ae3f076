"""The Binder environment, built as Binder builds it, runs lesson 00 (FAST).

Like repo2docker with a ``binder/`` folder: a fresh Python of ``binder/runtime.txt``'s version,
``pip install -r binder/requirements.txt`` from the repository root, then ``binder/postBuild``;
then papermill runs lesson 00 with ``FAST=True`` in that environment's own kernel. Slow (a few
minutes): runs only with ``EDUTOOLS_BINDER_TEST=1``. Build and run times go to
``build/binder_report.json``.

Offline, pip cannot reach the PyTorch CPU index that ``binder/requirements.txt`` adds; it is an
*extra* index, so pip notes the failure and takes torch from the other indexes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.browser import report
from tests.browser.lab import ROOT, lesson_path

pytestmark = [
    pytest.mark.binder,
    pytest.mark.skipif(os.environ.get("EDUTOOLS_BINDER_TEST", "") in ("", "0"),
                       reason="slow: set EDUTOOLS_BINDER_TEST=1 to build the Binder environment"),
]
BINDER = ROOT / "binder"
INSTALL_TIMEOUT_S = 1200
RUN_TIMEOUT_S = 1200


def binder_python() -> tuple[str, str]:
    """The ``pythonX.Y`` that ``binder/runtime.txt`` names and an executable of it."""
    match = re.fullmatch(r"python-(\d+\.\d+)", (BINDER / "runtime.txt").read_text().strip())
    assert match, "binder/runtime.txt must read python-X.Y"
    version = match.group(1)
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        return version, sys.executable
    found = shutil.which(f"python{version}")
    assert found, f"binder/runtime.txt asks for Python {version}, which is not installed here"
    return version, found


def run(command: list[str], *, env: dict[str, str], timeout_s: float, cwd: Path = ROOT
        ) -> tuple[float, str]:
    """Run ``command``; (seconds, combined output); fail with the output's end on error."""
    start = time.perf_counter()
    completed = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                               timeout=timeout_s)
    seconds = time.perf_counter() - start
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, f"{' '.join(command)} failed:\n{output[-6000:]}"
    return seconds, output


def test_binder_environment_builds_and_runs_lesson_00(tmp_path):
    version, python = binder_python()
    env_dir = tmp_path / "binder-env"
    # Nothing of this checkout's environment leaks in: no PYTHONPATH, the new env first on PATH.
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "EDUTOOLS_DATA_DIR")}
    env["PATH"] = f"{env_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["EDUTOOLS_QUIET"] = "1"
    # postBuild precomputes every lesson's sliders (about 2 minutes on two idle cores); one
    # small grid proves it works.
    env["EDUTOOLS_PRECOMPUTE_ARGS"] = "--lesson 01"  # 4 points
    env["EDUTOOLS_CACHE_DIR"] = str(tmp_path / "cache")
    bin_python = str(env_dir / "bin" / "python")

    venv_s, _ = run([python, "-m", "venv", str(env_dir)], env=env, timeout_s=300)
    # As repo2docker does, from the repository root (requirements' `-e .` is this checkout).
    install_s, install_log = run(
        [bin_python, "-m", "pip", "install", "--retries", "0", "--timeout", "20",
         "--disable-pip-version-check", "-r", str(BINDER / "requirements.txt")],
        env=env, timeout_s=INSTALL_TIMEOUT_S)
    unreachable = sorted(set(re.findall(r"https://download\.pytorch\.org\S*", install_log)))
    postbuild_s, postbuild_log = run(["bash", str(BINDER / "postBuild")], env=env,
                                     timeout_s=300)
    assert "MNIST subset OK" in postbuild_log, postbuild_log
    assert re.search(r"done in \d+ s: \d+ computed", postbuild_log), postbuild_log
    assert any((tmp_path / "cache").rglob("*.entry")), "postBuild cached no slider result"
    # The JupyterLab Binder starts reads the course's defaults (no news prompt).
    overrides = env_dir / "share/jupyter/lab/settings/overrides.d/edutools.json"
    assert overrides.exists(), f"postBuild did not install the JupyterLab defaults: {overrides}"
    from edutools.face.lab_settings import LAB_OVERRIDES

    assert json.loads(overrides.read_text()) == LAB_OVERRIDES

    executed = tmp_path / "00_binder.ipynb"
    run_s, _ = run([bin_python, "-m", "papermill", str(lesson_path("00")), str(executed),
                    "-p", "FAST", "True", "-k", "python3", "--no-progress-bar"],
                   env=env, timeout_s=RUN_TIMEOUT_S, cwd=tmp_path)
    notebook = json.loads(executed.read_text())
    errors = [output for cell in notebook["cells"] for output in cell.get("outputs", [])
              if output.get("output_type") == "error"]
    assert not errors, errors
    kernel_python = notebook["metadata"].get("language_info", {}).get("version", "")

    result = {"python": version, "kernel_python": kernel_python,
              "venv_s": round(venv_s, 1), "pip_install_s": round(install_s, 1),
              "postBuild_s": round(postbuild_s, 1),
              "build_s": round(venv_s + install_s + postbuild_s, 1),
              "lesson_00_fast_run_s": round(run_s, 1),
              "unreachable_extra_index_urls": unreachable}
    report.record_binder(result)
    assert kernel_python.startswith(version), f"the lesson ran on Python {kernel_python}"
