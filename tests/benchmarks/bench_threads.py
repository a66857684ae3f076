"""Benchmark: torch with 1 vs 2 intra-op threads, alone and beside one busy process (a script).

(a) Each lesson's typical step, timed in a fresh subprocess per (step, threads) so that
    ``torch.set_num_threads`` is in force before any work: lesson 00 (MNIST MLP 784-128-10, ReLU,
    dropout 0.2, cross-entropy, SGD β = 0.9, B = 64), lesson 01 (full-batch GD on the tanh MLP
    20-64-64-4, 1000 teacher inputs, half-MSE), lessons 02/03 (SGD B = 8 on tanh 32-64-64-10,
    random labels, half-MSE) and one Hessian-vector product (double backward) on the lesson-01
    net with the full batch. Each runs alone and beside a neighbour process spinning
    ``while True: pass`` on one core (not pinned). Milliseconds per step, median over repeats.
(b) Lesson 01 end to end with papermill (``FAST=True``): alone and beside the busy neighbour with
    the default thread policy (``configure_threads``, applied at first use), and beside the
    neighbour with ``EDUTOOLS_THREADS=2`` (capped at ``--timeout`` seconds).

The machine may be shared: each row shows the 1-minute load average read just before it.

    python tests/benchmarks/bench_threads.py            # 7 repeats per step, all of (b)
    python tests/benchmarks/bench_threads.py --quick    # 3 repeats, (b) only alone/busy default
    python tests/benchmarks/bench_threads.py --skip-lesson   # (a) only
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LESSON_01 = ROOT / "lessons" / "01_gd_edge_of_stability.ipynb"
# Steps per timed repeat: each repeat lasts ~0.1-0.5 s on one idle thread.
STEPS = {"00 SGD B=64 MNIST": 100, "01 full-batch GD": 100, "02/03 SGD B=8": 200,
         "HVP full batch": 50}
WORKER_BUDGET_S = 20.0  # stop repeating after this many seconds (at least one repeat)


# ---------------------------------------------------------------- worker side (one subprocess)

def _build_step(kind: str) -> Callable[[], None]:
    """A closure doing one step of ``kind`` on the CPU."""
    import torch

    from edutools.ground.data import load_mnist_subset, random_labels_task, teacher_task
    from edutools.ground.models import cross_entropy, half_mse, mlp

    gen = torch.Generator().manual_seed(0)
    if kind == "00 SGD B=64 MNIST":
        data = load_mnist_subset(seed=0, device="cpu")
        model = mlp([data.input_dim, 128, 10], activation="relu", dropout=0.2, init="torch",
                    seed=0)
        loss_fn, batch, momentum, lr = cross_entropy, 64, 0.9, 0.05
    elif kind == "01 full-batch GD":
        data = teacher_task(seed=0, device="cpu")
        model = mlp([20, 64, 64, 4], activation="tanh", seed=0)
        loss_fn, batch, momentum, lr = half_mse, None, 0.0, 0.2
    elif kind == "02/03 SGD B=8":
        data = random_labels_task(seed=0, device="cpu")
        model = mlp([32, 64, 64, 10], activation="tanh", init_scale=0.3, seed=0)
        loss_fn, batch, momentum, lr = half_mse, 8, 0.0, 0.05
    elif kind == "HVP full batch":
        data = teacher_task(seed=0, device="cpu")
        model = mlp([20, 64, 64, 4], activation="tanh", seed=0)
        params = [p for p in model.parameters() if p.requires_grad]
        loss = half_mse(model(data.X_train), data.y_train)
        grads = torch.autograd.grad(loss, params, create_graph=True)
        vector = [torch.randn(p.shape, generator=gen) for p in params]

        def hvp_step() -> None:
            # One Lanczos iteration's work: a backward through the retained gradient graph.
            torch.autograd.grad(grads, params, grad_outputs=vector, retain_graph=True)

        return hvp_step
    else:
        raise ValueError(f"kind must be one of {sorted(STEPS)}, got {kind!r}")
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    model.train()
    n = data.num_train

    def sgd_step() -> None:
        if batch is None:
            inputs, targets = data.X_train, data.y_train
        else:
            idx = torch.randint(n, (batch,), generator=gen)
            inputs, targets = data.X_train[idx], data.y_train[idx]
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(inputs), targets).backward()
        optimizer.step()

    return sgd_step


def worker(kind: str, threads: int, repeats: int) -> None:
    """Time ``kind`` with ``threads`` threads; print {"ms": [per-repeat ms/step], ...} as JSON."""
    import torch

    import edutools

    edutools.configure_threads()  # the course's policy (EDUTOOLS_THREADS is set for us)

    torch.set_num_threads(threads)
    step = _build_step(kind)
    for _ in range(20):  # warm-up: allocator, thread pool start-up
        step()
    steps = STEPS[kind]
    ms: list[float] = []
    began = time.perf_counter()
    # On a crowded machine a 2-thread step can take 100× longer: cap each worker's timed work.
    while len(ms) < repeats and (not ms or time.perf_counter() - began < WORKER_BUDGET_S):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        ms.append(1000 * (time.perf_counter() - start) / steps)
    print(json.dumps({"ms": ms, "threads": torch.get_num_threads()}))


# ---------------------------------------------------------------- driver side

def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), EDUTOOLS_QUIET="1")
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # let EDUTOOLS_THREADS alone decide
        env.pop(name, None)
    env.update(extra)
    return env


@contextmanager
def busy_neighbour(active: bool) -> Iterator[None]:
    """A single-threaded Python process spinning on one core for the duration (always killed)."""
    if not active:
        yield
        return
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)  # let it reach full speed
        yield
    finally:
        proc.kill()
        proc.wait()


def load1() -> float:
    """The 1-minute load average (how busy the shared machine was)."""
    return os.getloadavg()[0]


@dataclass(frozen=True)
class StepTiming:
    kind: str
    threads: int
    neighbour: bool
    ms: float  # median ms per step over the repeats
    spread: float  # (max − min) / median of the repeats
    repeats: int  # repeats actually timed (fewer than asked when WORKER_BUDGET_S ran out)
    load: float


def time_step(kind: str, threads: int, *, repeats: int, neighbour: bool) -> StepTiming:
    """Run one fresh worker subprocess and return its median ms per step."""
    load = load1()
    with busy_neighbour(neighbour):
        out = subprocess.run(
            [sys.executable, __file__, "--worker", kind, "--threads", str(threads),
             "--repeats", str(repeats)],
            env=_env(EDUTOOLS_THREADS=str(threads)), capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["threads"] != threads:
        raise RuntimeError(f"worker ran with {result['threads']} threads, asked {threads}")
    median = statistics.median(result["ms"])
    return StepTiming(kind, threads, neighbour, median,
                      (max(result["ms"]) - min(result["ms"])) / median, len(result["ms"]), load)


def step_table(repeats: int) -> None:
    print(f"\n### (a) ms per step (median of {repeats} repeats, fewer if a worker passes "
          f"{WORKER_BUDGET_S:g} s; spread = (max−min)/median)\n")
    print("| step | threads | alone ms | busy neighbour ms | busy/alone | load1 before |")
    print("|---|---:|---:|---:|---:|---|")
    for kind in STEPS:
        for threads in (1, 2):
            alone = time_step(kind, threads, repeats=repeats, neighbour=False)
            busy = time_step(kind, threads, repeats=repeats, neighbour=True)
            print(f"| {kind} | {threads} | {alone.ms:.3f} (±{alone.spread:.0%}, "
                  f"n={alone.repeats}) | {busy.ms:.3f} (±{busy.spread:.0%}, n={busy.repeats}) "
                  f"| {busy.ms / alone.ms:.1f}× "
                  f"| {alone.load:.2f} / {busy.load:.2f} |", flush=True)


def _kill_tree(pid: int) -> None:
    """Kill a process and all its descendants (papermill's kernel runs in its own session)."""
    import psutil

    try:
        parent = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    for proc in [*parent.children(recursive=True), parent]:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass


def run_lesson(*, neighbour: bool, threads_env: str | None, timeout: float,
               notebook: Path = LESSON_01, fast: bool = True) -> tuple[float | None, float]:
    """Execute ``notebook`` with papermill; return (seconds or None on timeout, load before)."""
    extra = {} if threads_env is None else {"EDUTOOLS_THREADS": threads_env}
    env = _env(**extra)
    if threads_env is None:
        env.pop("EDUTOOLS_THREADS", None)
    load = load1()
    with tempfile.TemporaryDirectory() as tmp, busy_neighbour(neighbour):
        command = [sys.executable, "-m", "papermill", str(notebook), str(Path(tmp) / "out.ipynb"),
                   "-k", "python3", "--cwd", str(notebook.parent), "--no-progress-bar",
                   "--log-level", "ERROR"]
        if fast:
            command += ["-p", "FAST", "True"]
        start = time.perf_counter()
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        try:
            output, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_tree(proc.pid)
            proc.communicate()
            return None, load
        finally:
            if proc.poll() is None:
                _kill_tree(proc.pid)
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"papermill failed:\n{output[-3000:]}")
    return seconds, load


def kernel_check() -> str:
    """Show that the papermill kernel imports this worktree's edutools and its thread choice."""
    import nbformat

    with tempfile.TemporaryDirectory() as tmp:
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(
            "import edutools, torch\n"
            "print(edutools.__file__, '|', edutools.environment_report().rows()[-1])")]
        path = Path(tmp) / "check.ipynb"
        nbformat.write(nb, path)
        subprocess.run([sys.executable, "-m", "papermill", str(path), str(path), "-k", "python3",
                        "--no-progress-bar", "--log-level", "ERROR"], env=_env(), check=True,
                       capture_output=True)
        out = nbformat.read(path, as_version=4)
        return "".join(o.get("text", "") for o in out.cells[0].outputs).strip()


def lesson_table(*, timeout: float, quick: bool) -> None:
    print("\n### (b) lesson 01, FAST, papermill end to end\n")
    print("kernel:", kernel_check(), "\n")
    print("| run | threads | seconds | load1 before |")
    print("|---|---|---:|---|")
    alone, load = run_lesson(neighbour=False, threads_env=None, timeout=timeout)
    print(f"| alone | default | {alone:.1f} | {load:.2f} |", flush=True)
    busy, load = run_lesson(neighbour=True, threads_env=None, timeout=timeout)
    busy_text = f"{busy:.1f}" if busy is not None else f"> {timeout:.0f}"
    print(f"| busy neighbour | default | {busy_text} | {load:.2f} |", flush=True)
    if not quick:
        two, load = run_lesson(neighbour=True, threads_env="2", timeout=timeout)
        two_text = f"{two:.1f}" if two is not None else f"> {timeout:.0f}"
        print(f"| busy neighbour | EDUTOOLS_THREADS=2 | {two_text} | {load:.2f} |", flush=True)
    if busy is not None:
        verdict = "meets" if busy <= 1.5 * alone else "MISSES"
        print(f"\nbusy/alone with the default policy: {busy / alone:.2f}× "
              f"({verdict} the ≤ 1.5× goal)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats; skip the 2-thread lesson")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per step")
    parser.add_argument("--timeout", type=float, default=180.0,
                        help="seconds before a lesson run is stopped (reported as '> timeout')")
    parser.add_argument("--skip-steps", action="store_true", help="skip (a)")
    parser.add_argument("--skip-lesson", action="store_true", help="skip (b)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 7)
    if args.worker:
        worker(args.worker, args.threads, repeats)
        return 0
    print(f"{os.cpu_count()} logical cores; load average {os.getloadavg()}")
    if not args.skip_steps:
        step_table(repeats)
    if not args.skip_lesson:
        lesson_table(timeout=args.timeout, quick=args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
