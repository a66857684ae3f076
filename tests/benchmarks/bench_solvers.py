"""Solvers that stop when the answer is good enough (issue 21, part 4): a script, not a test.

Everything on the digits MLP (tanh 64-32-32-10, 3466 parameters, cross-entropy on the 1438
training images of ``load_digits(seed=0)``), float32, one torch thread, all measured side by side
in one run:

1. **λ_max and the top 3 against hessian-eigenthings v1** (``hessian_eigenthings.lanczos``,
   version 1.0.0a5) at two states (initialisation; after 1000 SGD steps, lr 0.1, batch 64,
   where λ_2/λ_1 = 0.87). Truth: Lanczos in float64 to 1e-12 (``--dense``: the dense Hessian).
   The anchor gets its best settings: ``which="LA"``, full reorthogonalization (its default up
   to 50 steps) and the smallest ``max_iter`` whose true relative error is ≤ ``--target`` for
   every start (it has no stopping rule: ``max_iter`` HVPs, each a fresh forward and double
   backward). edutools' ``top_eigenvalues`` runs at ``tol = --target`` (what was asked) and at
   the loosest ``tol`` in {1e-3, 3e-4, 1e-4, 3e-5, 1e-5} that reaches the target on every
   start. Both run from ``--starts`` random starts, interleaved, ``--rounds`` times; a
   solver's time is the sum over starts of the median over rounds. Goal: ≤ 0.5x the anchor.
   curvlinops' ``HessianLinearOperator`` is timed per HVP as a second reference when installed.
2. **Warm-started tracking**: full-batch GD (lr 0.5) measured every 10 steps as
   ``LambdaMaxMeter`` does (start from the previous eigenvector(s); tol 1e-3, its default).
   Oracle: the first HVP at which the Ritz value(s) of the same Lanczos run were within tol of
   the truth. Goal: HVPs ≤ 1.5x the oracle's.
3. **Batch sharpness**, 50 batches of 64: the loop (``vectorize=False``) against
   ``torch.func.vmap`` (``vectorize=True``, the default), interleaved, median of rounds.
   Goal: ≥ 3x.
4. **SAM step / SGD step** on the digits network of tests/benchmarks/bench_sam.py (ReLU
   64-128-10, batch 128), with that script's estimator. Goal: ≤ 2.1x.

Every figure is printed with the anchor, the ratio and the load average at the time: on a shared
machine read the ratios (and the CPU clock), not the absolute times.

Environment (the anchors are not in requirements.txt)::

    python -m pip install --target .bench-lib --no-deps -r tests/benchmarks/requirements-bench.txt
    EDU_BENCH_LIB=.bench-lib python tests/benchmarks/bench_solvers.py           # ~2 min
    EDU_BENCH_LIB=.bench-lib python tests/benchmarks/bench_solvers.py --quick   # ~1 min

``--no-deps`` keeps the course's own torch: hessian-eigenthings needs only torch, numpy, scipy
and tqdm, which the course environment has; curvlinops' own dependencies are listed in the file.
"""

from __future__ import annotations

import argparse
import copy
import inspect
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.linalg
import torch

from edutools.engine import sharpness
from edutools.engine.training import train
from edutools.ground.data import load_digits
from edutools.ground.models import cross_entropy, mlp

TOLS = (1e-3, 3e-4, 1e-4, 3e-5, 1e-5)
WIDTHS = [64, 32, 32, 10]


def load_average() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def anchors(lib: str | None):
    """hessian_eigenthings (required) and curvlinops (optional, None if missing)."""
    if lib:
        sys.path.insert(0, str(Path(lib).resolve()))
    try:
        import hessian_eigenthings as he
    except ImportError:
        sys.exit("hessian-eigenthings is not installed: see this script's docstring")
    if he.__version__ != "1.0.0a5":
        print(f"warning: hessian-eigenthings {he.__version__}, the goals are against 1.0.0a5")
    try:
        import curvlinops
    except ImportError:
        curvlinops = None
    return he, curvlinops


def states(seed: int) -> list[tuple[str, torch.nn.Module]]:
    digits = load_digits(seed=seed, device="cpu")
    initial = mlp(WIDTHS, activation="tanh", seed=seed)
    trained = copy.deepcopy(initial)
    train(trained, digits, lr=0.1, batch_size=64, num_steps=1000, measure_every=1000, seed=seed,
          progress=False)
    return [("init", initial), ("SGD-trained", trained)]


def truth(model, X, y, *, k: int, dense: bool) -> np.ndarray:
    """The top k eigenvalues of the float32 model's Hessian, computed in float64."""
    if dense:
        hessian = sharpness.exact_hessian(model, cross_entropy, X, y).double().numpy()
        n = hessian.shape[0]
        return scipy.linalg.eigh(hessian, eigvals_only=True, subset_by_index=(n - k, n - 1))[::-1]
    double = copy.deepcopy(model).double()
    result = sharpness.top_eigenvalues(double, cross_entropy, X.double(), y, k=k + 1,
                                       tol=1e-12, max_hvps=400)
    assert result.converged
    return result.eigenvalues[:k]


def error_of(values, exact: np.ndarray) -> float:
    values = np.asarray(values, dtype=np.float64)
    return float(np.max(np.abs(values - exact) / np.abs(exact)))


def he_start(he_operator, seed: int) -> torch.Tensor:
    # What hessian_eigenthings.lanczos(seed=seed) draws as its start vector.
    generator = torch.Generator(device="cpu")
    generator.manual_seed(seed)
    return torch.randn(he_operator.size, dtype=he_operator.dtype, generator=generator)


def he_best_iterations(he, he_operator, exact: np.ndarray, *, k: int, starts: int,
                       target: float, longest: int = 40) -> int:
    """Smallest max_iter at which hessian_eigenthings.lanczos meets the target on every start.

    The first m steps of its Lanczos do not depend on max_iter, so one run of ``longest`` steps
    per start gives the Ritz values of every shorter run.
    """
    worst = np.zeros(longest + 1)
    for seed in range(starts):
        run = he.lanczos_tridiagonal(he_operator, he_start(he_operator, seed), longest,
                                     reorthogonalize=True)
        for m in range(k, run.iterations + 1):
            T = np.diag(run.alphas[:m].double().numpy())
            off = run.betas[: m - 1].double().numpy()
            T += np.diag(off, 1) + np.diag(off, -1)
            worst[m] = max(worst[m], error_of(np.linalg.eigvalsh(T)[::-1][:k], exact))
    good = [m for m in range(k, longest + 1) if worst[m] <= target]
    if not good:
        raise RuntimeError(f"hessian-eigenthings did not reach {target} in {longest} steps")
    return good[0]


def interleaved(solvers: dict[str, Callable[[int], object]], *, starts: int, rounds: int
                ) -> dict[str, dict[str, float]]:
    """{clock: {solver: seconds}}: per start the median over rounds, summed over starts."""
    names = list(solvers)
    times = {clock: {name: [[] for _ in range(starts)] for name in names}
             for clock in ("wall", "cpu")}
    for r in range(rounds):
        for seed in range(starts):
            order = names[(r + seed) % len(names):] + names[:(r + seed) % len(names)]
            for name in order:
                wall, cpu = time.perf_counter(), time.process_time()
                solvers[name](seed)
                times["cpu"][name][seed].append(time.process_time() - cpu)
                times["wall"][name][seed].append(time.perf_counter() - wall)
    return {clock: {name: sum(statistics.median(v) for v in per_start)
                    for name, per_start in per_name.items()}
            for clock, per_name in times.items()}


def compare_with_eigenthings(he, curvlinops, model, X, y, *, label: str, args) -> None:
    exact = truth(model, X, y, k=3, dense=args.dense)
    he_operator = he.HessianOperator(model, [(X, y)], he.supervised_loss(cross_entropy))
    print(f"\n[{label}] truth λ1..3 = {np.round(exact, 5).tolist()}  "
          f"(λ2/λ1 = {exact[1] / exact[0]:.2f})  {load_average()}")
    time_hvp(he_operator, curvlinops, model, X, y)
    for k in (1, 3):
        m = he_best_iterations(he, he_operator, exact[:k], k=k, starts=args.starts,
                               target=args.target)
        ours = {tol: [sharpness.top_eigenvalues(model, cross_entropy, X, y, k=k, tol=tol,
                                                seed=seed) for seed in range(args.starts)]
                for tol in TOLS}
        reaching = [tol for tol in TOLS
                    if max(error_of(r.eigenvalues, exact[:k]) for r in ours[tol]) <= args.target]
        loosest = reaching[0] if reaching else TOLS[-1]
        tols = dict.fromkeys([args.target, loosest])
        solvers: dict[str, Callable[[int], object]] = {
            "eigenthings": lambda seed, k=k, m=m: he.lanczos(he_operator, k=k, max_iter=m,
                                                            which="LA", seed=seed),
        }
        for tol in tols:
            solvers[f"ours tol={tol:g}"] = (
                lambda seed, k=k, tol=tol: sharpness.top_eigenvalues(
                    model, cross_entropy, X, y, k=k, tol=tol, seed=seed))
        he_errors = [error_of(he.lanczos(he_operator, k=k, max_iter=m, which="LA",
                                         seed=seed).eigenvalues, exact[:k])
                     for seed in range(args.starts)]
        seconds = interleaved(solvers, starts=args.starts, rounds=args.rounds)
        print(f"  top-{k}, target true error ≤ {args.target:g}, {args.starts} random starts, "
              f"{load_average()}")
        print(f"    {'solver':18s} {'HVPs':>5s} {'max err':>8s} {'wall s':>7s} {'cpu s':>7s} "
              f"{'ratio wall':>10s} {'ratio cpu':>9s}")
        print(f"    {'eigenthings v1':18s} {m:5d} {max(he_errors):8.1e} "
              f"{seconds['wall']['eigenthings']:7.3f} {seconds['cpu']['eigenthings']:7.3f} "
              f"{'1.00':>10s} {'1.00':>9s}   (anchor: which=LA, max_iter={m})")
        for tol in tols:
            name = f"ours tol={tol:g}"
            results = ours[tol]
            ratio = {c: seconds[c][name] / seconds[c]["eigenthings"] for c in ("wall", "cpu")}
            hvps = np.mean([r.num_hvps for r in results])
            error = max(error_of(r.eigenvalues, exact[:k]) for r in results)
            verdict = "met" if ratio["cpu"] <= 0.5 and error <= args.target else "MISSED"
            print(f"    {name:18s} {hvps:5.1f} {error:8.1e} {seconds['wall'][name]:7.3f} "
                  f"{seconds['cpu'][name]:7.3f} {ratio['wall']:10.2f} {ratio['cpu']:9.2f}   "
                  f"goal ≤ 0.5: {verdict}")


def time_hvp(he_operator, curvlinops, model, X, y, repeats: int = 30) -> None:
    v = torch.randn(sharpness.num_params(model), generator=torch.Generator().manual_seed(0))
    ours = sharpness.HessianOperator(model, cross_entropy, X, y)
    products = {"edutools (graph kept)": ours.matvec, "eigenthings v1": he_operator.matvec}
    if curvlinops is not None:
        params = [p for p in model.parameters() if p.requires_grad]
        linop = curvlinops.HessianLinearOperator(model, torch.nn.CrossEntropyLoss(), params,
                                                 [(X, y)], progressbar=False)
        products["curvlinops"] = lambda vector: linop @ vector
    for product in products.values():
        product(v)
    totals = dict.fromkeys(products, 0.0)
    for _ in range(repeats):
        for name, product in products.items():
            tic = time.process_time()
            product(v)
            totals[name] += time.process_time() - tic
    anchor = totals["eigenthings v1"]
    print("  CPU ms per HVP: " + ", ".join(f"{name} {1e3 * t / repeats:.2f} ({t / anchor:.2f}x)"
                                           for name, t in totals.items()))


def tracking(model, X, y, *, measurements: int, tol: float) -> None:
    print(f"\n[warm-started tracking] GD lr 0.5 from init, {measurements} measurements 10 steps "
          f"apart, tol {tol:g}, start = previous eigenvector(s) as LambdaMaxMeter; "
          f"{load_average()}")
    model = copy.deepcopy(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    rows = {1: [], 3: []}
    starts: dict[int, torch.Tensor | None] = {1: None, 3: None}
    for _ in range(measurements):
        exact = truth(model, X, y, k=3, dense=False)
        for k in (1, 3):
            v0 = starts[k]
            result = sharpness.top_eigenvalues(model, cross_entropy, X, y, k=k, tol=tol, v0=v0)
            if v0 is not None:
                long = sharpness.top_eigenvalues(model, cross_entropy, X, y, k=k, tol=1e-14,
                                                 v0=v0, max_hvps=40)
                errors = np.max(np.abs(long.history - exact[:k]) / exact[:k], axis=1)
                oracle = int(np.argmax(errors <= tol) + 1) if np.any(errors <= tol) else 40
                rows[k].append((result.num_hvps, oracle,
                                error_of(result.eigenvalues, exact[:k])))
            starts[k] = result.eigenvectors.sum(dim=0).detach().clone()
        for _ in range(10):
            optimizer.zero_grad()
            cross_entropy(model(X), y).backward()
            optimizer.step()
    for k, table in rows.items():
        hvps, oracle, errors = (np.array(column) for column in zip(*table, strict=True))
        ratio = hvps.sum() / oracle.sum()
        print(f"  k={k}: HVPs {hvps.sum()} vs oracle {oracle.sum()} over {len(table)} warm "
              f"solves: ratio {ratio:.2f} (goal ≤ 1.5: {'met' if ratio <= 1.5 else 'MISSED'}); "
              f"max true error {errors.max():.1e}; per solve {hvps.tolist()} / oracle "
              f"{oracle.tolist()}")


def batch_speed(model, X, y, *, rounds: int, num_batches: int = 50, batch_size: int = 64) -> None:
    print(f"\n[batch sharpness] {num_batches} batches of {batch_size}, {load_average()}")
    if "vectorize" not in inspect.signature(sharpness.batch_sharpness).parameters:
        print("  this edutools has no vectorized batch_sharpness")
        return

    def run(vectorize: bool):
        return sharpness.batch_sharpness(model, cross_entropy, X, y, batch_size=batch_size,
                                         num_batches=num_batches, vectorize=vectorize)

    loop, vmap = run(False), run(True)
    difference = float(np.max(np.abs(loop.values - vmap.values) / np.abs(loop.values)))
    times = {clock: {False: [], True: []} for clock in ("wall", "cpu")}
    for r in range(rounds):
        for vectorize in ((False, True) if r % 2 == 0 else (True, False)):
            wall, cpu = time.perf_counter(), time.process_time()
            run(vectorize)
            times["cpu"][vectorize].append(time.process_time() - cpu)
            times["wall"][vectorize].append(time.perf_counter() - wall)
    for clock, per in times.items():
        slow, fast = statistics.median(per[False]), statistics.median(per[True])
        print(f"  {clock:4s}: loop {1e3 * slow:7.1f} ms (anchor), vmap {1e3 * fast:7.1f} ms, "
              f"speed-up {slow / fast:.2f}x (goal ≥ 3: {'met' if slow / fast >= 3 else 'MISSED'})")
    print(f"  mean {loop.mean:.6f} / {vmap.mean:.6f}, SE {loop.standard_error:.6f} / "
          f"{vmap.standard_error:.6f}; max relative difference per batch {difference:.1e}")


def sam_speed(*, rounds: int, seed: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_sam

    problem = bench_sam.problems(seed)[1]
    print(f"\n[SAM] {problem.name}, {rounds} rounds of bench_sam's estimator, {load_average()}")
    for clock, med in bench_sam.bench(problem, rounds=rounds, warmup=5).items():
        ratio = med["sam"] / med["sgd"]
        print(f"  {clock:4s}: SGD {1e3 * med['sgd']:.3f} ms (anchor), SAM {1e3 * med['sam']:.3f} "
              f"ms, ratio {ratio:.2f} (goal ≤ 2.1: {'met' if ratio <= 2.1 else 'MISSED'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lib", default=os.environ.get("EDU_BENCH_LIB"),
                        help="folder holding hessian_eigenthings (default $EDU_BENCH_LIB)")
    parser.add_argument("--quick", action="store_true", help="fewer starts, rounds, steps")
    parser.add_argument("--starts", type=int, default=None, help="random starts (default 6)")
    parser.add_argument("--rounds", type=int, default=None, help="timing rounds (default 5)")
    parser.add_argument("--target", type=float, default=1e-4, help="true relative error")
    parser.add_argument("--dense", action="store_true", help="truth from the dense Hessian")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=("eigen", "tracking", "batch", "sam"), default=None)
    args = parser.parse_args()
    args.starts = args.starts or (4 if args.quick else 6)
    args.rounds = args.rounds or (3 if args.quick else 5)
    torch.set_num_threads(1)
    he, curvlinops = anchors(args.lib)
    digits = load_digits(seed=args.seed, device="cpu")
    X, y = digits.X_train, digits.y_train
    print(f"torch {torch.__version__}, 1 thread; hessian-eigenthings {he.__version__}; "
          f"curvlinops {'present' if curvlinops else 'absent'}; {len(X)} samples; "
          f"{load_average()}")
    models = states(args.seed)
    if args.only in (None, "eigen"):
        for label, model in models:
            compare_with_eigenthings(he, curvlinops, model, X, y, label=label, args=args)
    if args.only in (None, "tracking"):
        tracking(models[0][1], X, y, measurements=12 if args.quick else 20, tol=1e-3)
    if args.only in (None, "batch"):
        batch_speed(models[1][1], X, y, rounds=args.rounds)
    if args.only in (None, "sam"):
        sam_speed(rounds=40 if args.quick else 80, seed=args.seed)


if __name__ == "__main__":
    main()
