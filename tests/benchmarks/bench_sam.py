"""Cost of a SAM step against a plain SGD step (a script, not a test).

Two problems from the course, both float32, one torch thread:

* lesson 01/06's network: tanh MLP 20-64-64-4, half-MSE, full batch of
  ``teacher_task(num_train=1000)``;
* a digits MLP 64-128-10 (ReLU, cross-entropy) on a mini-batch of 128 images of
  ``load_digits()`` (a fresh batch each step, drawn in advance so that indexing is not timed).

Methods, each from the same start with heavy-ball SGD (lr 0.05, momentum 0.9):
``sgd`` (zero_grad, forward, backward, step), ``sam`` (``SAM.step(closure)``: two passes),
``sam_k5`` (``SAM(..., ascent_every=5)``: (k+1)/k passes per step on average).

A round times ``--steps`` consecutive steps of each method in turn (order rotated per round;
short rounds, so that drifts and load of the shared machine hit all methods alike); the first
``--warmup`` rounds are thrown away; the table shows the median over the other rounds of the
time per step, and the ratio of medians to SGD. Goals: SAM ≤ 2.1×, sam_k5 ≤ 1.3×.

    python tests/benchmarks/bench_sam.py              # 40 rounds of 10 steps
    python tests/benchmarks/bench_sam.py --quick      # 10 rounds of 10 steps
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from edutools.engine.sam import SAM
from edutools.ground.data import load_digits, teacher_task
from edutools.ground.models import cross_entropy, half_mse, mlp

GOALS = {"sam": 2.1, "sam_k5": 1.3}


@dataclass(frozen=True)
class Problem:
    name: str
    model: torch.nn.Module
    loss_fn: Callable
    batches: list[tuple[torch.Tensor, torch.Tensor]]  # cycled through, one per step


def problems(seed: int) -> list[Problem]:
    teacher = teacher_task(num_train=1000, seed=seed)
    digits = load_digits(seed=seed)
    generator = torch.Generator().manual_seed(seed)
    digit_batches = [
        (digits.X_train[idx], digits.y_train[idx])
        for idx in (torch.randperm(digits.num_train, generator=generator)[:128]
                    for _ in range(16))
    ]
    return [
        Problem("tanh 20-64-64-4, full batch 1000", mlp([20, 64, 64, 4], seed=seed), half_mse,
                [(teacher.X_train, teacher.y_train)]),
        Problem("relu 64-128-10, batch 128 digits",
                mlp([64, 128, 10], activation="relu", seed=seed), cross_entropy, digit_batches),
    ]


def make_stepper(method: str, problem: Problem) -> Callable[[int], None]:
    """A function doing one optimisation step of ``method`` on batch number ``i``."""
    model, loss_fn, batches = problem.model, problem.loss_fn, problem.batches
    if method == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

        def step(i: int) -> None:
            X, y = batches[i % len(batches)]
            opt.zero_grad()
            loss_fn(model(X), y).backward()
            opt.step()

        return step
    every = {"sam": 1, "sam_k5": 5}[method]
    opt = SAM(model.parameters(), torch.optim.SGD, rho=0.05, ascent_every=every, lr=0.05,
              momentum=0.9)

    def sam_step(i: int) -> None:
        X, y = batches[i % len(batches)]

        def closure():
            loss = loss_fn(model(X), y)
            loss.backward()
            return loss

        opt.zero_grad()
        opt.step(closure)

    return sam_step


def bench(problem: Problem, *, rounds: int, warmup: int, steps: int
          ) -> dict[str, dict[str, float]]:
    """Median seconds per step of each method: {"wall": {...}, "cpu": {...}}."""
    methods = ("sgd", "sam", "sam_k5")
    # Every method trains its own copy of the same initial network.
    steppers = {method: make_stepper(method, replace(problem, model=copy.deepcopy(problem.model)))
                for method in methods}
    times = {clock: {method: [] for method in methods} for clock in ("wall", "cpu")}
    counter = 0
    for r in range(rounds):
        order = methods[r % 3:] + methods[:r % 3]
        for method in order:
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(steps):
                steppers[method](counter)
                counter += 1
            if r >= warmup:
                times["wall"][method].append((time.perf_counter() - wall) / steps)
                times["cpu"][method].append((time.process_time() - cpu) / steps)
    return {clock: {method: statistics.median(values) for method, values in per.items()}
            for clock, per in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="10 rounds of 10 steps")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.steps, args.warmup = 10, 10, 2
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread; median over {args.rounds - args.warmup} rounds "
          f"of {args.steps} steps ({args.warmup} warm-up rounds dropped)")
    print("wall: perf_counter; cpu: this process's CPU time, less sensitive to other load\n")
    print(f"{'problem':36s} {'clock':5s} {'SGD ms':>8s} {'SAM ms':>8s} {'k=5 ms':>8s} "
          f"{'SAM/SGD':>8s} {'k5/SGD':>8s}  goals ≤{GOALS['sam']} / ≤{GOALS['sam_k5']}")
    for problem in problems(args.seed):
        result = bench(problem, rounds=args.rounds, warmup=args.warmup, steps=args.steps)
        for clock, med in result.items():
            ratio_sam = med["sam"] / med["sgd"]
            ratio_k5 = med["sam_k5"] / med["sgd"]
            verdict = ("met" if ratio_sam <= GOALS["sam"] and ratio_k5 <= GOALS["sam_k5"]
                       else "MISSED")
            print(f"{problem.name:36s} {clock:5s} {1e3 * med['sgd']:8.3f} "
                  f"{1e3 * med['sam']:8.3f} {1e3 * med['sam_k5']:8.3f} {ratio_sam:8.2f} "
                  f"{ratio_k5:8.2f}  {verdict}")


if __name__ == "__main__":
    main()
