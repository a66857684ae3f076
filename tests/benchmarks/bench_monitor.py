"""What an EdgeMonitor costs a training loop, and what its cadence buys (a script, not a test).

Two loops, one torch thread, each trained the same way with and without a monitor:

* ``seed``: lesson 00's network (flatten → 128 ReLU → dropout 0.2 → 10) on the MNIST subset,
  SGD η = 0.01, β = 0.9, B = 64, a ``DataLoader`` probe (batch sharpness over 32 batches and
  λ_max on a 1,024-sample pool); ``--seed-epochs`` epochs (63 steps each);
* ``cnn``: lesson 08's CNN on 500 digits, full batch, heavy ball η = 0.1, β = 0.9, the full
  batch as the probe; ``--cnn-steps`` steps.

For each loop: the plain loop's wall time (median of ``--repeats``), then for each cadence — the
default time budget (``every=None``, 10%) and fixed ``every`` = 5, 20, 100 — the overhead
(monitored ÷ plain − 1), the number of measurements, and the accuracy: the median late ratio
(curvature ÷ edge over the second half) against the densest cadence's, and the longest gap
between measurements in steps. The goal is overhead ≤ 10% at the defaults.

    python tests/benchmarks/bench_monitor.py              # both loops, 3 repeats
    python tests/benchmarks/bench_monitor.py --quick      # shorter runs, 1 repeat

Time on a quiet machine (``uptime`` load < 1): every figure is a wall-clock ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from edutools.engine.experiments import own_network, seed_network
from edutools.engine.monitor import EdgeMonitor
from edutools.ground.models import half_mse

CADENCES: tuple[int | None, ...] = (None, 5, 20, 100)  # 5, the densest, is the reference


def seed_loop(epochs: int) -> Callable[[bool, dict[str, Any]], EdgeMonitor | None]:
    """Lesson 00's recipe in a DataLoader loop; with ``monitored`` a loader-probe monitor."""
    data = seed_network.mnist_data(0)

    def run(monitored: bool, settings: dict[str, Any]) -> EdgeMonitor | None:
        model = seed_network.seed_network_model(data, seed=0)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        loader = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(data.X_train, data.y_train), batch_size=64,
            shuffle=True, generator=torch.Generator().manual_seed(0))
        loss_fn = torch.nn.CrossEntropyLoss()
        monitor = (EdgeMonitor(model=model, loss_fn=loss_fn, optimizer=opt, probe=loader,
                               **settings) if monitored else None)
        for _ in range(epochs):
            model.train()
            for X, y in loader:
                opt.zero_grad(set_to_none=True)
                loss_fn(model(X), y).backward()
                opt.step()
                if monitor is not None:
                    monitor.step()
        return monitor

    return run


def cnn_loop(num_steps: int) -> Callable[[bool, dict[str, Any]], EdgeMonitor | None]:
    """Lesson 08's full-batch heavy ball on the CNN; with ``monitored`` a fixed-batch monitor."""
    data = own_network.digits_images(seed=0, num_train=500, device="cpu")
    X, y = data.X_train, data.y_train

    def run(monitored: bool, settings: dict[str, Any]) -> EdgeMonitor | None:
        model = own_network.small_cnn(seed=0, device="cpu")
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        monitor = (EdgeMonitor(model=model, loss_fn=half_mse, optimizer=opt, probe=(X, y),
                               **settings) if monitored else None)
        for _ in range(num_steps):
            opt.zero_grad(set_to_none=True)
            half_mse(model(X), y).backward()
            opt.step()
            if monitor is not None:
                monitor.step()
        return monitor

    return run


def timed(run: Callable[[bool, dict[str, Any]], EdgeMonitor | None], monitored: bool,
          settings: dict[str, Any], repeats: int) -> tuple[float, EdgeMonitor | None]:
    """Median wall time of ``repeats`` runs, and the last run's monitor."""
    seconds, monitor = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        monitor = run(monitored, settings)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), monitor


def late_ratio(monitor: EdgeMonitor) -> float:
    record = monitor.record
    return float(np.median(record["ratio"].iloc[len(record) // 2:]))


def report(name: str, run: Callable[[bool, dict[str, Any]], EdgeMonitor | None],
           repeats: int) -> None:
    run(False, {})  # warm-up, untimed: torch's first calls, allocator, data on the device
    plain, _ = timed(run, False, {}, repeats)
    print(f"\n## {name}: plain loop {plain:.2f} s (median of {repeats})")
    print(f"{'cadence':>14} {'overhead':>9} {'measurements':>13} {'late ratio':>11} "
          f"{'Δ vs every=5':>13} {'longest gap':>12}")
    results = {}
    for every in CADENCES:
        seconds, monitor = timed(run, True, {"every": every}, repeats)
        results[every] = (seconds, monitor)
    reference = late_ratio(results[5][1])
    for every, (seconds, monitor) in results.items():
        steps = monitor.record["step"].to_numpy()
        gap = int(np.diff(np.concatenate([[0], steps])).max())
        label = "budget 10%" if every is None else f"every={every}"
        ratio = late_ratio(monitor)
        print(f"{label:>14} {seconds / plain - 1:>8.1%} {len(steps):>13d} {ratio:>11.3f} "
              f"{ratio - reference:>+13.3f} {gap:>12d}")
    default_overhead = results[None][0] / plain - 1
    print(f"default cadence overhead: {default_overhead:.1%} (goal ≤ 10%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs, one repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed-epochs", type=int, default=10)
    parser.add_argument("--cnn-steps", type=int, default=1200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    repeats = 1 if args.quick else args.repeats
    load = os.getloadavg()[0]
    print(f"# EdgeMonitor overhead (load average {load:.2f}; time on a quiet machine)")
    report("lesson 00's seed recipe (DataLoader probe)",
           seed_loop(3 if args.quick else args.seed_epochs), repeats)
    report("lesson 08's CNN (full-batch probe)", cnn_loop(300 if args.quick else args.cnn_steps),
           repeats)


if __name__ == "__main__":
    main()
