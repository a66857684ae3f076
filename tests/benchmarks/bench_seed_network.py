"""Benchmark of lesson 00's slider (a script, not a test): seconds per new slider setting.

For each (momentum, batch size) it times :func:`edutools.engine.experiments.seed_network.
train_seed_network` (the slider's run function; the MNIST subset is read once and cached) next to
the lesson's former path, which re-read the data file and built the network in the notebook. The
goal: a new setting costs no more than before (3.5–7.4 s on a quiet 2-core laptop, FAST 10 epochs
to full 20). The machine is shared, so read the ratio column, not the absolute times.

    python tests/benchmarks/bench_seed_network.py            # FAST and full epochs, 4 settings
    python tests/benchmarks/bench_seed_network.py --quick    # FAST epochs, 2 settings
"""

from __future__ import annotations

import argparse
import time

import torch

from edutools.engine.experiments import seed_network
from edutools.engine.training import train
from edutools.ground.data import load_mnist_subset
from edutools.ground.models import mlp


def former_path(momentum: float, batch_size: int, epochs: int, seed: int) -> float:
    """The lesson's former run: load the file, build the network, train; final val acc."""
    data = load_mnist_subset(seed=seed)
    model = mlp([data.input_dim, 128, 10], activation="relu", dropout=0.2, init="torch",
                seed=seed, device=data.device)
    steps = data.num_train // batch_size
    result = train(model, data, lr=0.01, momentum=momentum, batch_size=batch_size,
                   num_steps=epochs * steps, measure_every=steps, loss_fn="cross_entropy",
                   seed=seed, progress=False)
    return float(result.final["val_acc"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="FAST epochs, two settings")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = [(0.9, 64), (0.0, 256)] if args.quick else [(0.9, 64), (0.0, 256), (0.99, 32),
                                                           (0.5, 128)]
    budgets = [seed_network.FAST_EPOCHS] if args.quick else [seed_network.FAST_EPOCHS,
                                                             seed_network.EPOCHS]
    seed_network.mnist_data(0)  # what the lesson has loaded before the slider is shown
    # One untimed epoch first: torch's first training steps in a process pay one-off costs.
    seed_network.train_seed_network(momentum=0.0, batch_size=256, epochs=1, seed=0)
    print(f"{'β':>5} {'B':>4} {'epochs':>6} {'run fn (s)':>10} {'former (s)':>10} {'ratio':>6}"
          f" {'same acc':>8}")
    for epochs in budgets:
        for momentum, batch_size in settings:
            start = time.perf_counter()
            run = seed_network.train_seed_network(momentum=momentum, batch_size=batch_size,
                                                  epochs=epochs, seed=0)
            new = time.perf_counter() - start
            start = time.perf_counter()
            acc = former_path(momentum, batch_size, epochs, seed=0)
            old = time.perf_counter() - start
            print(f"{momentum:>5} {batch_size:>4} {epochs:>6} {new:>10.2f} {old:>10.2f} "
                  f"{new / old:>6.2f} {str(acc == run.final_val_acc):>8}", flush=True)


if __name__ == "__main__":
    main()
