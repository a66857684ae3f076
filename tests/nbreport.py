"""pytest plugin: wall time and kernel peak memory for each executed lesson notebook.

Loaded by ``python -m tests`` (``-p tests.nbreport``). nbval runs one kernel per notebook as a
child of the pytest process; after each cell we read the children's peak resident memory
(``VmHWM`` on Linux, current RSS elsewhere), so the largest value seen is the kernel's peak.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import psutil

BUDGETS = {"fast": {"seconds": 90.0, "peak_mb": 1536.0},
           "full": {"seconds": 300.0, "peak_mb": 1536.0}}
_stats: dict[str, dict[str, float]] = {}


def _children_peak_mb() -> float:
    peak = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            status = Path(f"/proc/{child.pid}/status")
            if status.exists():
                for line in status.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]) / 1024)
            else:
                peak = max(peak, child.memory_info().rss / 2**20)
        except (psutil.Error, OSError, ValueError):
            continue
    return peak


def pytest_runtest_logreport(report) -> None:
    notebook = report.nodeid.split("::")[0]
    if not notebook.endswith(".ipynb"):
        return
    stats = _stats.setdefault(Path(notebook).name,
                              {"seconds": 0.0, "peak_mb": 0.0, "cells": 0, "failed": 0})
    stats["seconds"] += report.duration
    stats["peak_mb"] = max(stats["peak_mb"], _children_peak_mb())
    if report.when == "call":
        stats["cells"] += 1
        stats["failed"] += int(report.failed)


def pytest_terminal_summary(terminalreporter) -> None:
    if not _stats:
        return
    mode = os.environ.get("EDUTOOLS_LESSON_MODE", "fast")
    budget = BUDGETS.get(mode, BUDGETS["fast"])
    device = os.environ.get("EDUTOOLS_DEVICE") or "auto"
    busy = os.environ.get("EDUTOOLS_BUSY_NEIGHBOUR", "0") == "1"
    load = "beside one busy process" if busy else "alone"
    rows = []
    for name, stats in sorted(_stats.items()):
        within = stats["seconds"] <= budget["seconds"] and stats["peak_mb"] <= budget["peak_mb"]
        rows.append({"lesson": name, **stats, "within_budget": within})
    total = sum(r["seconds"] for r in rows)
    lines = [f"| lesson | cells | failed | wall time (s) | kernel peak (MB) | within budget "
             f"({budget['seconds']:.0f} s, {budget['peak_mb']:.0f} MB) |",
             "|---|---:|---:|---:|---:|:---:|"]
    lines += [f"| {r['lesson']} | {r['cells']} | {r['failed']} | {r['seconds']:.1f} | "
              f"{r['peak_mb']:.0f} | {'yes' if r['within_budget'] else 'NO'} |" for r in rows]
    lines.append(f"| **all lessons** | | | **{total:.1f}** | | |")
    writer = terminalreporter
    writer.section(f"lesson report ({mode} mode, device {device}, {load})")
    for line in lines:
        writer.write_line(line)
    build = Path(__file__).resolve().parent.parent / "build"
    build.mkdir(exist_ok=True)
    suffix = "_busy" if busy else ""
    (build / f"lesson_report{suffix}.md").write_text(
        f"Lessons in {mode} mode, device {device}, {load}.\n\n" + "\n".join(lines) + "\n")
    (build / f"lesson_report{suffix}.json").write_text(json.dumps(
        {"mode": mode, "device": device, "busy_neighbour": busy, "total_seconds": total,
         "lessons": rows}, indent=2))
    writer.write_line(f"(written to {build / f'lesson_report{suffix}.md'})")
