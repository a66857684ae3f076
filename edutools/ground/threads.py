"""How many CPU threads torch may use: fit the machine, not the host's core count.

PyTorch starts one intra-op thread per logical core it sees. In a container (Binder, CI, a
cluster job) it sees the host's cores while the CPU quota allows one or two, and on a laptop the
browser, the Jupyter server or a second notebook keep cores busy. A thread pool larger than the
CPUs actually free makes every small operation wait for its slowest thread: lesson 01 in FAST
mode went from 23 s alone to 1,095 s (47×) beside one busy single-threaded process.

:func:`available_cpus` reads what this process may really use (cores, affinity, cgroup quota);
:func:`choose_threads` turns that into a thread count (one, see its docstring for the measured
reasons); :func:`configure_threads` applies it. Importing edutools changes nothing: the course's
entry points apply it at first use (:func:`ensure_threads`, called by
:func:`~edutools.ground.device.get_device` — every data set and run asks for the device — and
:func:`~edutools.ground.device.seed_everything`), unless ``configure_threads`` was called
already. Set ``EDUTOOLS_THREADS=<n>`` to choose yourself. Parallel worker processes (the grid
runner) call :func:`init_worker` so that each uses one thread.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

THREADS_ENV_VAR = "EDUTOOLS_THREADS"
CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_SELF_CGROUP = Path("/proc/self/cgroup")
# Variables read by OpenMP, MKL and OpenBLAS when a (child) process loads them.
WORKER_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
# cgroup v1 mounts the cpu controller under one of these names.
_V1_CPU_DIRS = ("cpu", "cpu,cpuacct", "cpuacct,cpu")


@dataclass(frozen=True)
class CpuBudget:
    """The CPUs this process may use.

    Attributes:
        logical_cores: logical cores of the machine (``os.cpu_count()``; the host's in a container).
        affinity: cores the scheduler lets this process run on (``os.sched_getaffinity``);
            ``None`` where the OS does not say (macOS, Windows).
        quota: cgroup CPU quota in CPUs (quota / period, e.g. 1.5); ``None`` when unlimited or
            no cgroup files are found.
        effective: min(logical_cores, affinity, ⌈quota⌉), at least 1: whole CPUs available.
        source: one line saying where each number came from.
    """

    logical_cores: int
    affinity: int | None
    quota: float | None
    effective: int
    source: str


@dataclass(frozen=True)
class ThreadChoice:
    """A torch intra-op thread count and why it was chosen (one line, for the environment report).

    Attributes:
        threads: the intra-op thread count (≥ 1).
        reason: where the count came from, e.g. ``"EDUTOOLS_THREADS=2"``.
    """

    threads: int
    reason: str


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _cgroup_dirs(base: Path, relative: str | None) -> list[Path]:
    """``base/relative`` and each of its parents up to ``base``: a parent's quota limits us too.

    Inside a container the cgroup path in /proc/self/cgroup may name a host directory that is
    not mounted; the walk up then ends at ``base``, which is the container's own cgroup.
    """
    dirs = []
    if relative:
        parts = [p for p in relative.strip("/").split("/") if p and p != ".."]
        for depth in range(len(parts), 0, -1):
            dirs.append(base.joinpath(*parts[:depth]))
    dirs.append(base)
    return dirs


def _own_cgroup_paths(proc_cgroup: Path) -> dict[str, str]:
    """Controller list → cgroup path, from /proc/self/cgroup (``""`` keys the v2 hierarchy)."""
    paths: dict[str, str] = {}
    for line in (_read_text(proc_cgroup) or "").splitlines():
        fields = line.split(":", 2)
        if len(fields) == 3:
            paths[fields[1]] = fields[2]
    return paths


def _v2_quota(text: str) -> float | None:
    """``"max 100000"`` → None; ``"150000 100000"`` → 1.5 CPUs."""
    fields = text.split()
    if not fields or fields[0] == "max":
        return None
    period = float(fields[1]) if len(fields) > 1 else 100_000.0
    quota = float(fields[0])
    return quota / period if quota > 0 and period > 0 else None


def _v1_quota(quota_text: str, period_text: str | None) -> float | None:
    """cfs_quota_us = -1 means unlimited; otherwise quota / period CPUs."""
    quota = float(quota_text)
    period = float(period_text) if period_text else 100_000.0
    return quota / period if quota > 0 and period > 0 else None


def cgroup_quota(*, cgroup_root: Path = CGROUP_ROOT,
                 proc_cgroup: Path = PROC_SELF_CGROUP) -> tuple[float | None, str]:
    """The tightest cgroup CPU quota over this process's cgroup and its parents, in CPUs.

    Reads cgroup v2 ``cpu.max`` and cgroup v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``.
    Returns ``(quota, where)``: ``quota`` is ``None`` when no limit is found (no files, or
    ``max`` / ``-1``), ``where`` names the file the quota came from (or says none was found).
    """
    own = _own_cgroup_paths(proc_cgroup)
    found: list[tuple[float, str]] = []
    saw_file = False
    for directory in _cgroup_dirs(cgroup_root, own.get("")):
        text = _read_text(directory / "cpu.max")
        if text is not None:
            saw_file = True
            quota = _v2_quota(text)
            if quota is not None:
                found.append((quota, f"cgroup v2 {directory / 'cpu.max'}"))
    v1_relative = next((path for ctrls, path in own.items() if "cpu" in ctrls.split(",")), None)
    for name in _V1_CPU_DIRS:
        for directory in _cgroup_dirs(cgroup_root / name, v1_relative):
            quota_text = _read_text(directory / "cpu.cfs_quota_us")
            if quota_text is None:
                continue
            saw_file = True
            try:
                quota = _v1_quota(quota_text, _read_text(directory / "cpu.cfs_period_us"))
            except ValueError:
                continue
            if quota is not None:
                found.append((quota, f"cgroup v1 {directory / 'cpu.cfs_quota_us'}"))
    if found:
        return min(found)
    return None, ("cgroup quota unlimited" if saw_file else "no cgroup quota files")


def _affinity_count() -> int | None:
    getaffinity = getattr(os, "sched_getaffinity", None)
    if getaffinity is None:
        return None
    try:
        return len(getaffinity(0))
    except OSError:
        return None


def available_cpus(*, cgroup_root: Path = CGROUP_ROOT,
                   proc_cgroup: Path = PROC_SELF_CGROUP) -> CpuBudget:
    """Count the CPUs this process may use: cores, scheduler affinity and cgroup quota.

    Args:
        cgroup_root: where the cgroup file system is mounted (tests pass a folder of fake files).
        proc_cgroup: the file listing this process's cgroups (``/proc/self/cgroup``).

    Returns:
        A :class:`CpuBudget`; ``effective`` rounds a fractional quota up (1.5 CPUs → 2) and is
        at least 1.
    """
    logical = os.cpu_count() or 1
    affinity = _affinity_count()
    quota, where = cgroup_quota(cgroup_root=cgroup_root, proc_cgroup=proc_cgroup)
    limits = [logical]
    if affinity is not None:
        limits.append(affinity)
    if quota is not None:
        limits.append(math.ceil(quota - 1e-9))
    effective = max(1, min(limits))
    quota_text = f"quota {quota:g} CPUs ({where})" if quota is not None else where
    affinity_text = f"affinity {affinity}" if affinity is not None else "affinity unknown"
    source = f"{logical} logical cores, {affinity_text}, {quota_text} → {effective}"
    return CpuBudget(logical_cores=logical, affinity=affinity, quota=quota, effective=effective,
                     source=source)


def choose_threads(budget: CpuBudget) -> ThreadChoice:
    """The default torch thread count for this course: one thread, whatever the budget.

    The course's models are small (at most 784-128-10 on 64-sample batches, or 20-64-64-4 on
    1000 inputs): each operation lasts microseconds, too short for a second thread to pay off,
    and a thread pool waits for its slowest thread, so one thread descheduled by any other
    process stalls every operation. Measured on 2 cores (``tests/benchmarks/bench_threads.py``,
    ms per step, 1 thread vs 2):

    * quiet machine (a colleague's measurement): the course's SGD steps 0.49 vs 0.67 ms;
      full-batch steps and large HVPs about 10 % faster on 2 threads;
    * shared machine (load average 10-16 from other users; two runs), beside one busy
      single-threaded process: lesson-00 SGD step 8-9 vs 303-309 ms, lesson-01 GD step
      11-13 vs 296-314 ms, lessons 02/03 SGD step 3-5 vs 84-133 ms, full-batch HVP 11-18 vs
      225-448 ms; without the extra process 2 threads were still 20-50× slower there;
    * lesson 01 (FAST) end to end beside the busy process: 54-120 s with one thread
      (1.3-1.5× the same machine without it), more than 180 s with two; before this policy
      it took 23 s alone and 1,095 s beside the busy process.

    So one thread costs at most ~10 % when the machine is idle and saves 20-36× when it is
    not. Machines with more cores were not measured; the gain available there is the same
    ~10 % at these model sizes while one busy core still stalls the pool, so the policy ignores
    the budget (it only goes into the reason). Set ``EDUTOOLS_THREADS`` to use more threads on a
    quiet machine with larger models. Parallel speed-ups come from independent runs in worker
    processes with one thread each (:func:`init_worker`).
    """
    if not isinstance(budget, CpuBudget):
        raise TypeError(f"budget must be a CpuBudget, got {type(budget).__name__}")
    return ThreadChoice(
        threads=1,
        reason=(f"{THREADS_ENV_VAR} unset; {budget.logical_cores} cores, "
                + (f"cgroup quota {budget.quota:g}" if budget.quota is not None else "no quota")
                + (f", affinity {budget.affinity}" if budget.affinity is not None else "")
                + " → 1: small models run fastest on one thread and do not collapse when "
                "another process shares the CPU"),
    )


def parse_threads_env(value: str) -> int:
    """Parse an ``EDUTOOLS_THREADS`` value: a positive integer, else ``ValueError`` naming it."""
    try:
        threads = int(value.strip())
    except ValueError:
        raise ValueError(
            f"{THREADS_ENV_VAR}={value!r} is not a positive integer (try {THREADS_ENV_VAR}=1)"
        ) from None
    if threads < 1:
        raise ValueError(f"{THREADS_ENV_VAR}={value!r} must be a positive integer (≥ 1)")
    return threads


_last_choice: ThreadChoice | None = None


def configure_threads(*, budget: CpuBudget | None = None) -> ThreadChoice:
    """Set torch's intra-op thread count: ``EDUTOOLS_THREADS`` if set, else :func:`choose_threads`.

    Safe to call any number of times (``torch.set_num_threads`` may be called again; the
    inter-op pool, which torch lets be sized only once, is left alone).

    Args:
        budget: the CPUs to plan for; default :func:`available_cpus`.

    Raises:
        ValueError: if ``EDUTOOLS_THREADS`` is set but is not a positive integer.
    """
    global _last_choice
    requested = os.environ.get(THREADS_ENV_VAR, "").strip()
    if requested:
        threads = parse_threads_env(requested)
        choice = ThreadChoice(threads=threads, reason=f"{THREADS_ENV_VAR}={requested}")
    else:
        choice = choose_threads(budget if budget is not None else available_cpus())
    torch.set_num_threads(choice.threads)
    _last_choice = choice
    return choice


def ensure_threads() -> ThreadChoice:
    """Apply :func:`configure_threads` once: the first call sets the thread count, later calls
    (and calls after an explicit ``configure_threads``) return the choice in force. Cheap: the
    course's entry points call it every time."""
    return _last_choice if _last_choice is not None else configure_threads()


def thread_reason() -> str:
    """Why torch uses its current number of threads (one line, for the environment report).

    The reason :func:`configure_threads` gave, or a note that torch's count was changed since
    (or never set by edutools).
    """
    threads = torch.get_num_threads()
    if _last_choice is None:
        return "torch's default; edutools did not set it"
    if _last_choice.threads != threads:
        return f"set outside edutools; edutools chose {_last_choice.threads}"
    return _last_choice.reason


def init_worker() -> None:
    """Make a parallel worker process use one CPU thread (pass as a pool's initializer).

    With N workers on N cores, more than one thread each would oversubscribe the CPU just as a
    busy neighbour does. Sets torch's thread count to 1 and ``OMP_NUM_THREADS``,
    ``MKL_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` to ``"1"`` so that processes the worker starts
    inherit the limit (libraries already loaded read those variables only at load time).
    """
    for name in WORKER_ENV_VARS:
        os.environ[name] = "1"
    torch.set_num_threads(1)


@contextmanager
def single_thread() -> Iterator[None]:
    """Run a block with one torch thread and restore the previous count afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
