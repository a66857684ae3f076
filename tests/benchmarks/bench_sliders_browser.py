"""Benchmark: every slider of the course in JupyterLab in headless Chromium (a script).

Runs the browser tests with ``EDUTOOLS_BROWSER_ALL_PANELS=1``: lesson 00 (Run All, both sliders,
save and reload) and lesson 03's curvature panel as in CI, then every other lesson's FAST copy with
Run All and every slider of every panel moved one step and back
(``tests/browser/test_all_panels.py``). The panels start from an empty result cache, so a first
move trains for real. Prints ``build/browser_report.md``: per slider, the first visible feedback,
the figure updates while it trained and the longest wait for one, the final figure and the
revisit. Issue 9's goals: feedback ≤ 1 s, a redraw at least once a second, revisit ≤ 0.5 s.

    python tests/benchmarks/bench_sliders_browser.py                  # alone
    python tests/benchmarks/bench_sliders_browser.py --busy-neighbour # beside one busy process

Needs Debian's chromium (``apt-get install chromium``) and the ``playwright`` package; takes
about 10 minutes on two idle cores.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--busy-neighbour", action="store_true",
                        help="keep one other single-threaded process busy meanwhile")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args()
    env = dict(os.environ, EDUTOOLS_BROWSER_ALL_PANELS="1", EDUTOOLS_REQUIRE_BROWSER="1",
               PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               str(ROOT / "tests" / "browser" / "test_jupyterlab.py"),
               str(ROOT / "tests" / "browser" / "test_all_panels.py"), *args.pytest_args]
    neighbour = (subprocess.Popen([sys.executable, "-c", "while True: pass"])
                 if args.busy_neighbour else None)
    try:
        code = subprocess.call(command, cwd=ROOT, env=env)
    finally:
        if neighbour is not None:
            neighbour.kill()
            neighbour.wait()
    report = ROOT / "build" / "browser_report.md"
    if report.exists():
        print(f"\n{'beside one busy process' if args.busy_neighbour else 'alone'}:\n")
        print(report.read_text())
    return code


if __name__ == "__main__":
    sys.exit(main())
