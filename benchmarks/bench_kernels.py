"""Module 06 benchmark: OpenCL sparse kernels against the device's measured limits, in one run.

1. Each kernel's achieved GB/s (bytes-per-non-zero model of tinytorch.kernels.spmv_traffic /
   spmm_traffic) against the copy bandwidth measured on the same device with the same number
   of bytes, and GFLOP/s; device times from profiling events, median after warm-up. Kernel
   and copy timings alternate (SparseKernels.against_copy) and the median ratio is reported,
   because a shared machine's speed drifts during a run.
2. The best SpMM against dense numpy and scipy.sparse (a reference only, not a course
   dependency) for a 4096 x 4096 float32 weight at 90% and 95% sparsity, batch 1 and 32:
   kernel time (events) and end-to-end wall time (copy the batch in, run, read back) against
   wall times of the numpy/scipy products; blocks of calls after a short rest, warm-up calls
   dropped (tinytorch.kernels.median_wall_times), 7 rounds; speedups are medians of the
   per-round ratios.
   On a CPU device numpy's BLAS uses as many threads as the device has compute units.

Targets (issue 6), checked at the end: the best SpMV reaches >= 50% of the copy bandwidth;
at 90% sparsity and batch 32 the best SpMM (end to end) is >= 3x faster than dense numpy and
faster than scipy.sparse. `--strict` exits with status 1 when a target is missed.

Usage: python benchmarks/bench_kernels.py [--strict] [--size 4096]
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import scipy.sparse
from threadpoolctl import threadpool_limits

from tinytorch.kernels import (SPMV_KERNELS, SparseKernels, median_wall_times, random_csr,
                               spmm_traffic, spmv_traffic)


def kernel_table(kernels, W, rounds=5):
    """{name: result} for every SpMV and SpMM kernel on W; each result carries "copy GB/s" and
    "of copy", from kernel and copy timings alternated `rounds` times (median ratio)."""
    dW = kernels.upload(W)
    rows = {}
    for k in SPMV_KERNELS:
        rows[f"spmv {k}"] = kernels.against_copy(lambda: kernels.time_spmv(dW, k, warmup=3, repeat=7), rounds)
    rows["spmm rowvec (batch 32)"] = kernels.against_copy(
        lambda: kernels.time_spmm(dW, 32, "rowvec", warmup=3, repeat=7), rounds)
    rows["spmm naive (batch 32)"] = kernels.against_copy(
        lambda: kernels.time_spmm(dW, 32, "naive", warmup=1, repeat=3), 1)
    return rows


def comparison(kernels, W, batch, best_spmv, threads, rounds=7):
    """Times (s) of the best kernel (events and end to end), dense numpy and scipy.sparse on W @ X.

    Each round times every candidate back to back (a block of calls each, after a short rest);
    the speedups are medians of the per-round ratios, so that a drift of the machine's speed
    between rounds does not leak into them."""
    dW = kernels.upload(W)
    X = np.random.default_rng(batch).standard_normal((W.shape[1], batch)).astype(np.float32)
    dense = W.to_dense()
    S = scipy.sparse.csr_matrix((W.data, W.indices, W.indptr), shape=W.shape)
    if batch == 1:
        x = X[:, 0].copy()
        kernel = best_spmv
        event = lambda: kernels.time_spmv(dW, best_spmv, warmup=2, repeat=7)["median"]
        fns = {"opencl": lambda: kernels.spmv(dW, x, kernel=best_spmv), "dense": lambda: dense @ x,
               "scipy": lambda: S @ x}
        got, ref = kernels.spmv(dW, x, kernel=best_spmv), dense.astype(np.float64) @ x
    else:
        kernel = "rowvec"
        event = lambda: kernels.time_spmm(dW, batch, "rowvec", warmup=2, repeat=7)["median"]
        fns = {"opencl": lambda: kernels.spmm(dW, X, kernel="rowvec"), "dense": lambda: dense @ X,
               "scipy": lambda: S @ X}
        got, ref = kernels.spmm(dW, X, kernel="rowvec"), dense.astype(np.float64) @ X
    per_round = []
    with threadpool_limits(limits=threads, user_api="blas"):
        for _ in range(rounds):
            time.sleep(0.2)  # let threads of the previous round settle, as median_wall_times does
            kernel_time = event()
            per_round.append({**median_wall_times(fns, blocks=1, per_block=7, warmup=2), "event": kernel_time})
    out = {key: float(np.median([r[key] for r in per_round])) for key in per_round[0]}
    for base in ("dense", "scipy"):
        out[f"x {base}"] = float(np.median([r[base] / r["opencl"] for r in per_round]))
        out[f"x {base} (kernel)"] = float(np.median([r[base] / r["event"] for r in per_round]))
    out["kernel"] = kernel
    out["rel_err"] = float(np.abs(got - ref).max() / np.abs(ref).max())
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--size", type=int, default=4096, help="weight is size x size (default 4096)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    kernels = SparseKernels()
    dev = kernels.device
    threads = int(dev.max_compute_units) if kernels.is_cpu else None
    print(f"device: {dev.platform.name.strip()}: {dev.name.strip()} "
          f"({'CPU' if kernels.is_cpu else 'GPU/accelerator'}), {dev.max_compute_units} compute units, "
          f"preferred work-group multiple {kernels.preferred_multiple}")
    big = 256 << 20
    print(f"copy bandwidth, {big >> 20} MiB moved: {kernels.copy_bandwidth(big, warmup=2, repeat=7):.1f} GB/s; "
          f"FMA peak: {kernels.peak_gflops():.0f} GFLOP/s; numpy BLAS threads: {threads or 'default'}")

    n = args.size
    failures = []
    for sparsity in (0.90, 0.95):
        W = random_csr(n, n, density=1.0 - sparsity, seed=int(sparsity * 100))
        print(f"\n== {n} x {n} float32 at {sparsity:.0%} sparsity: nnz = {W.nnz}, "
              f"SpMV model {spmv_traffic(n, n, W.nnz)['bytes'] / 1e6:.1f} MB, "
              f"SpMM batch 32 model {spmm_traffic(n, n, W.nnz, 32)['bytes'] / 1e6:.1f} MB")
        print(f"{'kernel':24s} {'ms':>9s} {'GB/s':>7s} {'copy GB/s':>10s} {'% copy':>7s} {'GFLOP/s':>8s}")
        table = kernel_table(kernels, W)
        for name, r in table.items():
            print(f"{name:24s} {r['median'] * 1e3:9.3f} {r['GB/s']:7.1f} {r['copy GB/s']:10.1f} "
                  f"{100 * r['of copy']:6.0f}% {r['GFLOP/s']:8.1f}")
        best_name = max((k for k in table if k.startswith("spmv")), key=lambda k: table[k]["of copy"])
        best, share = table[best_name], table[best_name]["of copy"]
        print(f"best SpMV: {best_name}, {best['GB/s']:.1f} GB/s = {share:.0%} of the copy bandwidth "
              f"(target >= 50%): {'PASS' if share >= 0.5 else 'FAIL'}")
        if share < 0.5:
            failures.append(f"best SpMV at {sparsity:.0%}: {share:.0%} of copy bandwidth")

        print(f"\n{'batch':>5s} {'kernel':>8s} {'kernel ms':>10s} {'OpenCL ms':>10s} {'dense ms':>9s} "
              f"{'scipy ms':>9s} {'x dense':>8s} {'x scipy':>8s} {'rel err':>8s}")
        for batch in (1, 32):
            c = comparison(kernels, W, batch, best_name.split()[1], threads)
            xd, xs = c["x dense"], c["x scipy"]
            print(f"{batch:5d} {c['kernel']:>8s} {c['event'] * 1e3:10.3f} {c['opencl'] * 1e3:10.3f} "
                  f"{c['dense'] * 1e3:9.3f} {c['scipy'] * 1e3:9.3f} {xd:8.1f} {xs:8.1f} {c['rel_err']:8.1e}")
            if sparsity == 0.90 and batch == 32:
                ok = xd >= 3.0 and xs > 1.0
                print(f"      target at 90% sparsity, batch 32: >= 3x dense numpy and faster than scipy.sparse "
                      f"(end to end): {'PASS' if ok else 'FAIL'} ({xd:.1f}x dense, {xs:.1f}x scipy; kernel alone "
                      f"{c['x dense (kernel)']:.1f}x and {c['x scipy (kernel)']:.1f}x)")
                if not ok:
                    failures.append(f"SpMM 90% batch 32: {xd:.1f}x dense, {xs:.1f}x scipy")
    print(f"\nbenchmark finished in {time.perf_counter() - started:.1f} s; "
          + ("all targets met" if not failures else "missed: " + "; ".join(failures)))
    return 1 if (failures and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
