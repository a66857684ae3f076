"""Run one lesson in FAST mode over a range of seeds: ``python -m tests --lesson NN --seeds A:B``.

Every seed is a separate papermill execution of the lesson with ``FAST=True`` and ``SEED`` injected
(two at a time, each kernel on one torch thread). For each seed it prints ``pass`` or the cell
that failed with its error message, then the pass rate; the table also goes to
``build/seed_sweep_NN.{md,json}``. Use it before freezing any assert: a claim must hold for seeds
the lesson was not tuned on.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"


@dataclass(frozen=True)
class SeedOutcome:
    """One seed's run: ``passed``, the failing cell (index among code cells) and its message."""

    seed: int
    passed: bool
    seconds: float
    cell: int | None = None
    error: str = ""


def parse_seeds(text: str) -> list[int]:
    """``"A:B"`` → seeds A, A+1, …, B−1 (like ``range``); ``"3,5,8"`` → those seeds."""
    try:
        if ":" in text:
            start, stop = (int(part) for part in text.split(":"))
            seeds = list(range(start, stop))
        else:
            seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"--seeds must look like 'A:B' or '1,2,3', got {text!r}") from None
    if not seeds:
        raise ValueError(f"--seeds {text!r} selects no seed")
    return seeds


def _run_one(notebook: Path, seed: int, target: Path, fast: bool) -> SeedOutcome:
    import papermill
    from papermill.exceptions import PapermillExecutionError

    start = time.perf_counter()
    try:
        papermill.execute_notebook(str(notebook), str(target),
                                   parameters={"FAST": fast, "SEED": seed},
                                   kernel_name="python3", progress_bar=False, log_output=False,
                                   cwd=str(notebook.parent))
    except PapermillExecutionError as error:
        message = f"{error.ename}: {error.evalue}".strip()
        return SeedOutcome(seed, False, time.perf_counter() - start,
                           cell=_failing_code_cell(target), error=message[:500])
    except Exception as error:  # a kernel that died is a failure of this seed, not of the tool
        return SeedOutcome(seed, False, time.perf_counter() - start, error=repr(error)[:500])
    return SeedOutcome(seed, True, time.perf_counter() - start)


def _failing_code_cell(executed: Path) -> int | None:
    import nbformat

    if not executed.exists():
        return None
    code = [c for c in nbformat.read(executed, as_version=4).cells if c.cell_type == "code"]
    for index, cell in enumerate(code):
        if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            return index
    return None


def sweep(lesson: str, seeds: list[int], *, workers: int = 2, fast: bool = True
          ) -> list[SeedOutcome]:
    """Run lesson ``lesson`` (a number prefix such as ``"04"``) once per seed; print and save."""
    matches = sorted((ROOT / "lessons").glob(f"{lesson}*.ipynb"))
    if len(matches) != 1:
        raise ValueError(f"--lesson {lesson!r} matches {len(matches)} lessons; give one number")
    notebook = matches[0]
    folder = BUILD / "seed_sweep" / notebook.stem
    folder.mkdir(parents=True, exist_ok=True)
    # One torch thread per kernel: two kernels share the two cores without oversubscribing.
    # A fresh result cache: every seed computes its runs (no result of an earlier sweep is reused).
    cache = folder / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    os.environ.update(EDUTOOLS_THREADS="1", OMP_NUM_THREADS="1", EDUTOOLS_QUIET="1",
                      EDUTOOLS_CACHE_DIR=str(cache))
    print(f"{notebook.name}: {len(seeds)} seeds, {workers} at a time", flush=True)

    def run(seed: int) -> SeedOutcome:
        outcome = _run_one(notebook, seed, folder / f"seed{seed}.ipynb", fast)
        where = "" if outcome.passed else f" (code cell {outcome.cell}): {outcome.error}"
        print(f"  seed {seed:>4}: {'pass' if outcome.passed else 'FAIL'} "
              f"{outcome.seconds:6.1f} s{where}", flush=True)
        return outcome

    with ThreadPoolExecutor(max_workers=workers) as pool:
        outcomes = sorted(pool.map(run, seeds), key=lambda o: o.seed)
    passed = sum(o.passed for o in outcomes)
    print(f"{notebook.name}: {passed}/{len(outcomes)} seeds pass "
          f"({100 * passed / len(outcomes):.0f}%)", flush=True)
    lines = [f"# {notebook.name}, {'FAST' if fast else 'full'} mode: {passed}/{len(outcomes)} "
             "seeds pass", "", "| seed | result | seconds | failing code cell | error |",
             "|---:|---|---:|---:|---|"]
    lines += [f"| {o.seed} | {'pass' if o.passed else 'FAIL'} | {o.seconds:.1f} | "
              f"{'' if o.cell is None else o.cell} | {o.error.replace('|', '/')} |"
              for o in outcomes]
    (BUILD / f"seed_sweep_{lesson}.md").write_text("\n".join(lines) + "\n")
    (BUILD / f"seed_sweep_{lesson}.json").write_text(json.dumps(
        {"lesson": notebook.name, "fast": fast, "passed": passed, "total": len(outcomes),
         "seeds": [asdict(o) for o in outcomes]}, indent=2))
    return outcomes
