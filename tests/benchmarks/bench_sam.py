"""Cost of a SAM step against a plain SGD step (a script, not a test).

Two problems from the course, both float32, one torch thread:

* lesson 01/06's network: tanh MLP 20-64-64-4, half-MSE, full batch of
  ``teacher_task(num_train=1000)``;
* a digits MLP 64-128-10 (ReLU, cross-entropy) on a mini-batch of 128 images of
  ``load_digits()`` (16 batches drawn in advance, so that indexing is not timed, and cycled).

Methods, each from the same start with heavy-ball SGD (lr 0.05, momentum 0.9):
``sgd`` (zero_grad, forward, backward, step), ``sam`` (``SAM.step(closure)``: two passes),
``sam_k5`` (``SAM(..., ascent_every=5)``: (k+1)/k passes per step on average).

Estimator: a round runs 5 consecutive steps of each method in turn (order rotated per round),
timing every step alone. For each method and each position in the round, take the median over
the rounds (first ``--warmup`` rounds dropped); the time per step is the mean of those 5
medians, so the fresh-ascent step of ``sam_k5`` (always the first of its round) counts once in
five. Two clocks: ``wall`` (perf_counter, what the goals are about) and ``cpu`` (this process's
CPU time). On an idle machine they agree. On a loaded one the wall clock is biased against the
longer steps, which the scheduler pre-empts more often (a step of 2 time slices waits a whole
round of the other processes), so read ``cpu`` there. Goals: SAM ≤ 2.1×, sam_k5 ≤ 1.3×.

    python tests/benchmarks/bench_sam.py              # 200 rounds
    python tests/benchmarks/bench_sam.py --quick      # 50 rounds
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
CYCLE = 5  # steps per method per round: one full cycle of the k = 5 variant
CLOCKS = ("wall", "cpu")


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


def bench(problem: Problem, *, rounds: int, warmup: int) -> dict[str, dict[str, float]]:
    """Seconds per step, {clock: {method: seconds}} for the clocks "wall" and "cpu"."""
    methods = ("sgd", "sam", "sam_k5")
    # Every method trains its own copy of the same initial network.
    steppers = {method: make_stepper(method, replace(problem, model=copy.deepcopy(problem.model)))
                for method in methods}
    times = {clock: {method: [[] for _ in range(CYCLE)] for method in methods}
             for clock in CLOCKS}
    counter = 0
    for r in range(rounds):
        for method in methods[r % 3:] + methods[:r % 3]:
            for phase in range(CYCLE):
                wall, cpu = time.perf_counter(), time.process_time()
                steppers[method](counter)
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                counter += 1
                if r >= warmup:
                    times["wall"][method][phase].append(wall)
                    times["cpu"][method][phase].append(cpu)
    return {clock: {method: statistics.fmean(statistics.median(values) for values in phases)
                    for method, phases in per_method.items()}
            for clock, per_method in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="50 rounds")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.warmup = 50, 5
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread; {args.rounds - args.warmup} rounds of "
          f"{CYCLE} steps per method ({args.warmup} warm-up rounds dropped)\n")
    print(f"{'problem':36s} {'clock':5s} {'SGD ms':>7s} {'SAM ms':>7s} {'k=5 ms':>7s} "
          f"{'SAM/SGD':>7s} {'k5/SGD':>7s}  goals ≤{GOALS['sam']} / ≤{GOALS['sam_k5']}")
    for problem in problems(args.seed):
        for clock, med in bench(problem, rounds=args.rounds, warmup=args.warmup).items():
            ratio_sam = med["sam"] / med["sgd"]
            ratio_k5 = med["sam_k5"] / med["sgd"]
            verdict = ("met" if ratio_sam <= GOALS["sam"] and ratio_k5 <= GOALS["sam_k5"]
                       else "MISSED")
            print(f"{problem.name:36s} {clock:5s} {1e3 * med['sgd']:7.3f} "
                  f"{1e3 * med['sam']:7.3f} {1e3 * med['sam_k5']:7.3f} {ratio_sam:7.2f} "
                  f"{ratio_k5:7.2f}  {verdict}")


if __name__ == "__main__":
    main()
