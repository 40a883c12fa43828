"""Dense numpy vs tinytorch.sparse CSR vs scipy.sparse, measured side by side in one run.

    python benchmarks/bench_sparse.py            # 4096 x 4096 float32, 90% and 95%, batch 1 and 32
    python benchmarks/bench_sparse.py --size 2048 --repeats 20

For each sparsity the weight is magnitude-pruned with tinytorch.prune; the same CSR arrays
feed tinytorch's CSRMatrix and scipy.sparse.csr_matrix (scipy is a reference only, never a
dependency of tinytorch). All products of one configuration are timed interleaved (one call
of each per round, after warm-up rounds) and the median is reported, so a noisy spell of a
shared machine hits them alike. Dense numpy runs with the BLAS thread count it has by
default (shown in the header) and, in a separate run, limited to one thread like the two
sparse products. Ratios: speedup = dense time / CSR time (> 1: CSR is faster),
vs scipy = CSR time / scipy time (how many times slower than the compiled reference).
"""
from __future__ import annotations

import argparse
import os
import platform
import sys

import numpy as np
import scipy
import scipy.sparse
from threadpoolctl import threadpool_info, threadpool_limits

from tinytorch.prune import magnitude_mask
from tinytorch.sparse import CSRMatrix, median_times_ms


def blas_description() -> str:
    infos = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    if not infos:
        return "BLAS: unknown"
    i = infos[0]
    return f"BLAS: {i.get('internal_api')} {i.get('version')} ({i.get('architecture')}), {i.get('num_threads')} thread(s)"


def run(size: int, sparsities: list[float], batches: list[int], repeats: int, warmup: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((size, size)).astype(np.float32)
    rows = []
    for s in sparsities:
        Ws = W * magnitude_mask(W, s)
        A = CSRMatrix.from_dense(Ws)
        S = scipy.sparse.csr_matrix((A.data, A.indices, A.indptr), shape=A.shape)
        for b in batches:
            x = rng.standard_normal(size).astype(np.float32) if b == 1 else rng.standard_normal((size, b)).astype(np.float32)
            ref = Ws.astype(np.float64) @ x
            tol = 1e-4 * np.abs(Ws).astype(np.float64) @ np.abs(x) + 1e-6
            for name, y in (("csr", A @ x), ("scipy", S @ x), ("dense", Ws @ x)):
                if not np.all(np.abs(y - ref) <= tol):
                    raise SystemExit(f"{name} product is wrong at sparsity {s}, batch {b}")

            reps = repeats if b == 1 else max(5, repeats // 3)
            t = median_times_ms({"dense": lambda: Ws @ x, "csr": lambda: A @ x, "scipy": lambda: S @ x},
                                repeats=reps, warmup=warmup)
            with threadpool_limits(1, user_api="blas"):
                t["dense_1t"] = median_times_ms({"d": lambda: Ws @ x}, repeats=reps, warmup=warmup)["d"]
            rows.append({"sparsity": s, "batch": b, "nnz": A.nnz, **t,
                         "speedup": t["dense"] / t["csr"], "speedup_1t": t["dense_1t"] / t["csr"],
                         "vs_scipy": t["csr"] / t["scipy"], "theory": 1 / (1 - s)})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=4096)
    p.add_argument("--sparsity", type=float, nargs="+", default=[0.90, 0.95])
    p.add_argument("--batch", type=int, nargs="+", default=[1, 32])
    p.add_argument("--repeats", type=int, default=100, help="timed rounds for batch 1 (a third for larger batches)")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    print(f"# {args.size} x {args.size} float32, median of interleaved runs after {args.warmup} warm-up rounds")
    print(f"# python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, "
          f"{os.cpu_count()} CPU(s), {blas_description()}, OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")
    print("# load average before: " + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
    rows = run(args.size, args.sparsity, args.batch, args.repeats, args.warmup, args.seed)
    head = (f"{'sparsity':>8} {'batch':>5} {'nnz':>9} {'dense ms':>9} {'dense1t ms':>10} {'CSR ms':>8} {'scipy ms':>8} "
            f"{'speedup':>8} {'speedup1t':>9} {'vs scipy':>8} {'1/(1-s)':>7}")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['sparsity']:8.2f} {r['batch']:5d} {r['nnz']:9d} {r['dense']:9.3f} {r['dense_1t']:10.3f} {r['csr']:8.3f} "
              f"{r['scipy']:8.3f} {r['speedup']:8.2f} {r['speedup_1t']:9.2f} {r['vs_scipy']:7.2f}x {r['theory']:7.1f}")
    print("# load average after: " + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
    print("speedup = dense / CSR (> 1: CSR faster); speedup1t = single-thread dense / CSR; vs scipy = CSR / scipy")
    target = [r for r in rows if abs(r["sparsity"] - 0.95) < 1e-9 and r["batch"] == 1]
    if target:
        r = target[0]
        ok = r["speedup"] > 1 and r["vs_scipy"] <= 3
        print(f"target (95%, batch 1: CSR faster than dense and within 3x of scipy): "
              f"{'met' if ok else 'NOT met'} (speedup {r['speedup']:.2f}, {r['vs_scipy']:.2f}x scipy)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
