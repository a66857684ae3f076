"""Run every test of the course: ``python -m tests``.

1. papermill injects each lesson's parameters (``FAST=True`` unless ``--full``) into a copy under
   ``build/lessons/`` without executing it (``--prepare-only``);
2. one pytest run executes the unit tests and then each prepared lesson with nbval
   (``--nbval-lax``: every cell must run without error, so every lesson's asserts must hold),
   one notebook at a time in a kernel of this same environment;
3. ``tests/nbreport.py`` records each lesson's wall time and the kernel's peak memory, prints a
   table and writes ``build/lesson_report.{json,md}``; ``tests/nbsave.py`` keeps each lesson as
   executed (``build/executed/``), and the website test (``tests/browser/test_site.py``), run
   last, builds the course website from them and opens every page in Chromium.

The device is whatever ``edutools.get_device()`` picks: set ``EDUTOOLS_DEVICE=cuda`` to insist on
a GPU. Extra arguments after ``--`` go to pytest (e.g. ``python -m tests -- -k 01_``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LESSONS = ROOT / "lessons"
BUILD = ROOT / "build"


def lesson_paths() -> list[Path]:
    """The lesson notebooks in course order."""
    return sorted(LESSONS.glob("[0-9][0-9]_*.ipynb"))


def prepare_lessons(*, fast: bool, only: list[str] | None = None,
                    seed: int | None = None) -> Path:
    """Copy the lessons to build/lessons with ``FAST`` (and ``SEED``) injected; return it."""
    import papermill

    target = BUILD / "lessons"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for notebook in lesson_paths():
        if only and not any(notebook.name.startswith(prefix) for prefix in only):
            continue
        papermill.execute_notebook(str(notebook), str(target / notebook.name),
                                   parameters={"FAST": fast,
                                               **({} if seed is None else {"SEED": seed})},
                                   prepare_only=True,
                                   kernel_name="python3", progress_bar=False, log_output=False)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests", description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true",
                        help="run the lessons in full mode (FAST=False) instead of FAST")
    parser.add_argument("--unit-only", action="store_true", help="skip the notebook suite")
    parser.add_argument("--lessons-only", action="store_true", help="skip the unit tests")
    parser.add_argument("--seed", type=int, default=None,
                        help="inject this SEED into every lesson (default: each lesson's own)")
    parser.add_argument("--lesson", action="append", metavar="NN",
                        help="run only lessons whose file name starts with NN (repeatable)")
    parser.add_argument("--seeds", metavar="A:B",
                        help="with one --lesson: run it in FAST mode (or --full) once per seed "
                             "in range(A, B) (or a list '1,5,9') and print each seed's outcome "
                             "and the pass rate (tests/seed_sweep.py)")
    parser.add_argument("--busy-neighbour", action="store_true",
                        help="keep one other single-threaded process busy during the run, as a "
                             "learner's machine often is (the lesson report records the mode)")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)

    if args.seeds is not None:
        from tests.seed_sweep import parse_seeds, sweep

        if not args.lesson or len(args.lesson) != 1:
            parser.error("--seeds needs exactly one --lesson NN")
        outcomes = sweep(args.lesson[0], parse_seeds(args.seeds), fast=not args.full)
        return 0 if all(o.passed for o in outcomes) else 1

    # Lessons start from an empty result cache, as on a learner's first run: no result of an
    # earlier run (or of precompute) is reused, so the times are cold times and every run computes.
    cache = BUILD / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    env = dict(os.environ, EDUTOOLS_QUIET="1", PYTHONUNBUFFERED="1", EDUTOOLS_CACHE_DIR=str(cache),
               EDUTOOLS_LESSON_MODE="full" if args.full else "fast",
               EDUTOOLS_BUSY_NEIGHBOUR="1" if args.busy_neighbour else "0")
    command = [sys.executable, "-m", "pytest", "-p", "tests.nbreport"]
    if args.seed is None:  # the lessons as committed: kept for the website (tests/nbsave.py)
        command += ["-p", "tests.nbsave"]
    if args.unit_only:  # the website test builds from the lessons this run executes
        env["EDUTOOLS_SKIP_SITE"] = "1"
    if not args.lessons_only:
        command.append(str(ROOT / "tests"))
    if not args.unit_only:
        prepared = prepare_lessons(fast=not args.full, only=args.lesson, seed=args.seed)
        command += [str(prepared), "--nbval-lax", "--nbval-current-env",
                    "--nbval-cell-timeout=1200"]
    command += args.pytest_args
    print("$", " ".join(command), flush=True)
    if not args.busy_neighbour:
        return subprocess.call(command, cwd=ROOT, env=env)
    # A pure-Python loop holds one core the whole time, like a second notebook or a browser tab.
    neighbour = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        return subprocess.call(command, cwd=ROOT, env=env)
    finally:
        neighbour.kill()
        neighbour.wait()


if __name__ == "__main__":
    sys.exit(main())
