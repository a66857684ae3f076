"""Benchmark of edutools.engine.sharpness eigenvalue solvers on the digits MLP (a script, not a
test).

Ground truth: the dense Hessian (``exact_hessian``) and LAPACK's top eigenpairs at checkpoints
along a short full-batch GD run. For each solver (own Lanczos, power iteration, ARPACK ``eigsh``)
and each HVP method it reports, for λ_max (and the top 3 with Lanczos):

* the HVPs and wall time of a solve with the solver's own stopping rule at ``--tol``, and the
  true relative error it reached;
* "oracle" HVPs: when the true error first fell below ``--tol``, read from the per-iteration
  history of a longer run from the same start (not available for ARPACK).

Cold starts are random; warm starts chain along the run like a training meter's: each uses the
eigenvector(s) of the same configuration's previous warm solve (for k = 3, the sum of the three).
Timings are the minimum over ``--repeats`` solves, all taken side by side in one run: the machine
is shared, so read the ratios, not the absolute times.

    python tests/benchmarks/bench_sharpness.py            # 10 checkpoints, 20 GD steps apart
    python tests/benchmarks/bench_sharpness.py --quick    # 4 checkpoints, 1 repeat
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import torch
from sklearn.datasets import load_digits
from torch import nn

from edutools.engine import sharpness

METHODS = ("double_backward", "forward_over_reverse")
SHORT = {"double_backward": "DB", "forward_over_reverse": "FR"}
# (solver, k) pairs measured at every checkpoint, each with both HVP methods.
CONFIGS = (("lanczos", 1), ("power", 1), ("arpack", 1), ("lanczos", 3))


@dataclass(frozen=True)
class Measurement:
    solver: str
    method: str
    start: str  # "cold" or "warm"
    k: int
    checkpoint: int
    hvps: int
    oracle_hvps: float  # NaN when unavailable (ARPACK) or never reached
    error: float  # largest true relative error over the k eigenvalues
    seconds: float
    converged: bool


def build_problem(dtype: torch.dtype, seed: int) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """Digits (1797 samples, pixels / 16) and a tanh MLP 64-32-32-10 (3466 parameters)."""
    digits = load_digits()
    X = torch.tensor(digits.data / 16.0, dtype=dtype)
    y = torch.tensor(digits.target, dtype=torch.long)
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 10)
    ).to(dtype)
    return model, X, y


def first_accurate_iteration(history: np.ndarray, truth: np.ndarray, tol: float) -> float:
    """HVPs after which every estimate is within ``tol`` of the truth; NaN if never."""
    if history.size == 0:
        return float("nan")
    errors = np.abs(history - truth[None, :]) / np.abs(truth[None, :])
    accurate = np.all(errors <= tol, axis=1)
    return float(np.argmax(accurate) + 1) if accurate.any() else float("nan")


def time_hvps(model: nn.Module, loss_fn, X, y, repeats: int) -> dict[str, float]:
    """Mean milliseconds per HVP for each operator variant, interleaved to share the noise."""
    n = sharpness.num_params(model)
    v = torch.randn(n, generator=torch.Generator().manual_seed(0)).to(X.dtype)
    variants = {
        "double_backward, graph kept": dict(method="double_backward", reuse_graph=True),
        "double_backward, graph rebuilt": dict(method="double_backward", reuse_graph=False),
        "forward_over_reverse": dict(method="forward_over_reverse", reuse_graph=False),
    }
    operators = {name: sharpness.HessianOperator(model, loss_fn, X, y, **options)
                 for name, options in variants.items()}
    for operator in operators.values():
        operator.matvec(v)  # warm-up; builds the kept graph
    totals = dict.fromkeys(variants, 0.0)
    for _ in range(repeats):
        for name, operator in operators.items():
            tic = time.perf_counter()
            operator.matvec(v)
            totals[name] += time.perf_counter() - tic
    return {name: 1e3 * total / repeats for name, total in totals.items()}


def solve(solver: str, model, loss_fn, X, y, *, k: int, tol: float, v0, method: str,
          long_run: bool = False) -> sharpness.EigenResult:
    if solver == "power":
        return sharpness.power_iteration(model, loss_fn, X, y, tol=tol, v0=v0, method=method,
                                         max_iters=400 if long_run else 1000)
    return sharpness.top_eigenvalues(model, loss_fn, X, y, k=k, tol=tol, v0=v0, method=method,
                                     solver=solver, max_hvps=80 if long_run else 200)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 checkpoints and 1 repeat")
    parser.add_argument("--checkpoints", type=int, default=None, help="default 10 (quick: 4)")
    parser.add_argument("--steps", type=int, default=20, help="GD steps between checkpoints")
    parser.add_argument("--lr", type=float, default=0.5, help="GD step size (edge 2/lr = 4)")
    parser.add_argument("--tol", type=float, default=1e-4, help="target relative error")
    parser.add_argument("--repeats", type=int, default=None, help="timed solves, default 3")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1 keeps timings steadier on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    checkpoints = args.checkpoints or (4 if args.quick else 10)
    repeats = args.repeats or (1 if args.quick else 3)
    dtype = torch.float32 if args.dtype == "float32" else torch.float64
    model, X, y = build_problem(dtype, args.seed)
    loss_fn = nn.CrossEntropyLoss()
    n = sharpness.num_params(model)
    tol = args.tol
    print(f"digits MLP 64-32-32-10 tanh, cross-entropy, {n} parameters, {len(X)} samples, "
          f"{args.dtype}, torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    print(f"full-batch GD lr={args.lr} (edge 2/lr = {2 / args.lr:g}): {checkpoints} checkpoints "
          f"{args.steps} steps apart; target true relative error <= {tol:g}; "
          f"times = min of {repeats}")

    per_hvp = time_hvps(model, loss_fn, X, y, repeats=10 if args.quick else 40)
    print("\nper-HVP wall time at initialization (variants interleaved, mean):")
    for name, ms in per_hvp.items():
        print(f"  {name:32s} {ms:7.2f} ms")
    fr = per_hvp["forward_over_reverse"]
    print(f"  ratio double_backward/forward_over_reverse: graph kept "
          f"{per_hvp['double_backward, graph kept'] / fr:.2f}, graph rebuilt "
          f"{per_hvp['double_backward, graph rebuilt'] / fr:.2f}")

    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    measurements: list[Measurement] = []
    previous: dict[tuple[str, str, int], torch.Tensor] = {}
    truth_rows = []
    previous_top_vector = None
    dense_seconds = 0.0
    for checkpoint in range(checkpoints):
        tic = time.perf_counter()
        hessian = sharpness.exact_hessian(model, loss_fn, X, y).to(torch.float64).cpu().numpy()
        values, vectors = scipy.linalg.eigh(hessian, subset_by_index=(n - 3, n - 1))
        top, top_vector = values[::-1].copy(), vectors[:, -1]
        dense_seconds += time.perf_counter() - tic
        overlap = (float("nan") if previous_top_vector is None
                   else abs(float(previous_top_vector @ top_vector)))
        previous_top_vector = top_vector
        with torch.no_grad():
            loss = float(loss_fn(model(X), y))
        truth_rows.append((checkpoint, checkpoint * args.steps, loss, *top, overlap))

        for solver, k in CONFIGS:
            for method in METHODS:
                key = (solver, method, k)
                starts = [("cold", None)] + ([("warm", previous[key])] if key in previous else [])
                for start_kind, v0 in starts:
                    seconds = float("inf")
                    for _ in range(repeats):
                        tic = time.perf_counter()
                        result = solve(solver, model, loss_fn, X, y, k=k, tol=tol, v0=v0,
                                       method=method)
                        seconds = min(seconds, time.perf_counter() - tic)
                    truth = top[:k]
                    oracle = float("nan")
                    if solver != "arpack":
                        long = solve(solver, model, loss_fn, X, y, k=k, tol=1e-9, v0=v0,
                                     method=method, long_run=True)
                        oracle = first_accurate_iteration(long.history, truth, tol)
                    error = float(np.max(np.abs(result.eigenvalues - truth) / np.abs(truth)))
                    measurements.append(Measurement(solver, method, start_kind, k, checkpoint,
                                                    result.num_hvps, oracle, error, seconds,
                                                    result.converged))
                    # A meter warm-starts from the sum of the previous k eigenvectors.
                    previous[key] = result.eigenvectors.sum(dim=0).detach().clone()
        for _ in range(args.steps):
            optimizer.zero_grad()
            loss_fn(model(X), y).backward()
            optimizer.step()

    print(f"\nground truth (dense Hessian + LAPACK, {dense_seconds:.0f} s in all); |cos| = overlap "
          "of the top eigenvector with the previous checkpoint's:")
    print("  ckpt  step   loss      λ1       λ2       λ3   (λ1-λ2)/λ1  |cos|")
    for checkpoint, step, loss, l1, l2, l3, overlap in truth_rows:
        print(f"  {checkpoint:4d} {step:5d} {loss:7.4f} {l1:8.4f} {l2:8.4f} {l3:8.4f} "
              f"{(l1 - l2) / l1:9.3f} {overlap:7.3f}")

    print("\nper checkpoint, Lanczos with double backward: HVPs (oracle) / true relative error")
    print("  ckpt  λ1 cold              λ1 warm              top-3 cold           top-3 warm")
    table = {(m.start, m.k, m.checkpoint): m for m in measurements
             if m.solver == "lanczos" and m.method == "double_backward"}
    for checkpoint in range(checkpoints):
        cells = []
        for start_kind, k in (("cold", 1), ("warm", 1), ("cold", 3), ("warm", 3)):
            m = table.get((start_kind, k, checkpoint))
            cells.append(f"{'-':20s}" if m is None
                         else f"{m.hvps:3d} ({m.oracle_hvps:2.0f}) / {m.error:7.1e}  ")
        print(f"  {checkpoint:4d}  " + " ".join(cells))

    print(f"\nsummary (warm: checkpoints 1..{checkpoints - 1}); own stopping rule at tol={tol:g}; "
          "oracle = HVPs at which the true error first fell below tol; ms at oracle = oracle "
          "HVPs x the solve's ms per HVP")
    print(f"  {'solver':8s} {'HVP':3s} {'k':>2s} {'start':5s} | {'HVPs med':>8s} {'max':>4s} | "
          f"{'oracle med':>10s} {'max':>4s} | {'max err':>8s} {'conv':>5s} | {'ms/solve':>8s} "
          f"{'ms at oracle':>12s}")
    groups: dict[tuple[str, str, int, str], list[Measurement]] = defaultdict(list)
    for m in measurements:
        groups[(m.solver, m.method, m.k, m.start)].append(m)
    for (solver, method, k, start_kind), group in sorted(
            groups.items(), key=lambda item: (item[0][3], item[0][2], item[0][0], item[0][1])):
        hvps = np.array([m.hvps for m in group])
        oracle = np.array([m.oracle_hvps for m in group])
        ms = np.array([1e3 * m.seconds for m in group])
        if np.all(np.isnan(oracle)):
            oracle_text, oracle_ms = f"{'-':>10s} {'-':>4s}", f"{'-':>12s}"
        else:
            oracle_text = f"{np.nanmedian(oracle):10.1f} {np.nanmax(oracle):4.0f}"
            oracle_ms = f"{np.nanmean(oracle * ms / hvps):12.1f}"
        print(f"  {solver:8s} {SHORT[method]:3s} {k:2d} {start_kind:5s} | "
              f"{np.median(hvps):8.1f} {hvps.max():4d} | {oracle_text} | "
              f"{max(m.error for m in group):8.1e} {sum(m.converged for m in group):2d}/"
              f"{len(group):<2d} | {ms.mean():8.1f} {oracle_ms}")

    def total(select: Callable[[Measurement], bool], field: str) -> float:
        return float(np.nansum([getattr(m, field) for m in measurements if select(m)]))

    print("\nratios over the same solves:")
    for solver, k in CONFIGS:
        t_db = total(lambda m, s=solver, kk=k: (m.solver, m.k, m.method)
                     == (s, kk, "double_backward"), "seconds")
        t_fr = total(lambda m, s=solver, kk=k: (m.solver, m.k, m.method)
                     == (s, kk, "forward_over_reverse"), "seconds")
        print(f"  {solver:8s} k={k}: wall time double_backward / forward_over_reverse = "
              f"{t_db / t_fr:.2f}")
    for start_kind in ("cold", "warm"):
        def of(solver: str, field: str, s: str = start_kind) -> float:
            return total(lambda m: (m.solver, m.k, m.start) == (solver, 1, s), field)

        lanczos, lanczos_oracle = of("lanczos", "hvps"), of("lanczos", "oracle_hvps")
        print(f"  {start_kind}: HVPs power / Lanczos = {of('power', 'hvps') / lanczos:.2f} "
              f"(own rules; oracle {of('power', 'oracle_hvps') / lanczos_oracle:.2f}), "
              f"ARPACK / Lanczos = {of('arpack', 'hvps') / lanczos:.2f}")
    h_cold = total(lambda m: (m.solver, m.k, m.start) == ("lanczos", 1, "cold")
                   and m.checkpoint > 0, "hvps")
    h_warm = total(lambda m: (m.solver, m.k, m.start) == ("lanczos", 1, "warm"), "hvps")
    print(f"  Lanczos λ1 HVPs warm / cold (checkpoints 1..) = {h_warm / h_cold:.2f}")


if __name__ == "__main__":
    main()
