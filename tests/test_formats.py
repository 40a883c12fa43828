"""tinytorch.formats (module 09) and module 06's roofline helpers: BSR and N:M packed formats,
their OpenCL kernels checked against numpy on random shapes, empty rows and ragged edges.

Runs on whatever OpenCL device the machine has (PoCL's CPU device in CI). References are
dense numpy products in float64 (scipy only where noted); no test asserts on absolute time.
"""
import ast
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinytorch.kernels as tk
from tinytorch.formats import (BSRMatrix, FormatKernels, bsr_from_csr, bsr_from_dense, csr_bytes,
                               device_block_width, nm_bits, pack_nm, random_block_sparse)
from tinytorch.kernels import SparseKernels, random_csr
from tinytorch.sparse import csr_from_dense

PACKAGE = Path(tk.__file__).resolve().parent


@pytest.fixture(scope="module")
def fk():
    # No skip: without an OpenCL device this fails with NoOpenCLDeviceError's fix sentence.
    return FormatKernels(SparseKernels())


def close(got, D, X, label):
    """got == D @ X within float32 rounding of a sum of |terms| (per output)."""
    D64, X64 = D.astype(np.float64), np.asarray(X, dtype=np.float64)
    ref, mag = D64 @ X64, np.abs(D64) @ np.abs(X64)
    bound = (D.shape[1] + 2) * 2.0 ** -23 * mag + 1e-30
    got = np.asarray(got)
    assert got.dtype == np.float32, f"{label}: expected float32, got {got.dtype}"
    assert got.shape == ref.shape, f"{label}: expected shape {ref.shape}, got {got.shape}"
    bad = np.argwhere(~(np.abs(got - ref) <= bound))
    assert bad.size == 0, f"{label}: {len(bad)} wrong, first at {tuple(bad[0])}: {got[tuple(bad[0])]} vs {ref[tuple(bad[0])]}"


def tiles_nonzero(D, block):
    """Number of (b_r, b_c) tiles of D (zero-padded) holding a non-zero, counted independently."""
    br, bc = block
    R, C = D.shape
    count = 0
    for i in range(0, R, br):
        for j in range(0, C, bc):
            count += bool(np.any(D[i:i + br, j:j + bc]))
    return count


def special_dense(seed=0):
    """Dense test matrices: ragged shapes, empty rows and block rows, a single row/column."""
    rng = np.random.default_rng(seed)
    A = (rng.standard_normal((45, 70)) * (rng.random((45, 70)) < 0.1)).astype(np.float32)
    A[5:17] = 0.0  # empty rows spanning whole block rows
    B = random_block_sparse(37, 101, (4, 8), 0.3, seed=seed + 1)
    return {"scattered with empty rows": A, "blocky ragged": B, "all zero": np.zeros((9, 13), np.float32),
            "one row": rng.standard_normal((1, 40)).astype(np.float32),
            "one column": rng.standard_normal((30, 1)).astype(np.float32)}


# ---------------------------------------------------------------- BSR in numpy

@pytest.mark.parametrize("block", [(1, 1), (2, 3), (4, 8), (3, 16), (8, 8)])
def test_bsr_round_trip_counts_and_bytes(block):
    for label, D in special_dense().items():
        B = bsr_from_dense(D, block)
        np.testing.assert_array_equal(B.to_dense(), D, err_msg=f"{label} {block}")
        assert B.nnzb == tiles_nonzero(D, block), f"{label} {block}"
        assert B.nnz == np.count_nonzero(D)
        nbr = math.ceil(D.shape[0] / block[0])
        assert B.nbytes == 4 * (B.nnzb * block[0] * block[1] + B.nnzb + nbr + 1)
        C = bsr_from_csr(csr_from_dense(D), block)
        for name in ("data", "indices", "indptr"):
            np.testing.assert_array_equal(getattr(C, name), getattr(B, name), err_msg=f"{label} {block} {name}")


@settings(max_examples=30, deadline=None)
@given(n_rows=st.integers(1, 60), n_cols=st.integers(1, 60), br=st.integers(1, 9), bc=st.integers(1, 17),
       density=st.floats(0.0, 1.0), batch=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_bsr_numpy_products_property(n_rows, n_cols, br, bc, density, batch, seed):
    rng = np.random.default_rng(seed)
    D = (rng.standard_normal((n_rows, n_cols)) * (rng.random((n_rows, n_cols)) < density)).astype(np.float32)
    B = bsr_from_dense(D, (br, bc))
    x = rng.standard_normal(n_cols).astype(np.float32)
    X = rng.standard_normal((n_cols, batch)).astype(np.float32)
    np.testing.assert_allclose(B.matvec(x), D.astype(np.float64) @ x, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(B.matmat(X), D.astype(np.float64) @ X, rtol=1e-4, atol=1e-4)


def test_bsr_matches_scipy_on_divisible_shapes():
    import scipy.sparse  # a dev requirement (reference only)
    D = random_block_sparse(64, 96, (4, 8), 0.2, seed=3)
    S = scipy.sparse.bsr_matrix(D, blocksize=(4, 8))
    S.sort_indices()
    B = bsr_from_dense(D, (4, 8))
    np.testing.assert_array_equal(B.indptr, S.indptr)
    np.testing.assert_array_equal(B.indices, S.indices)
    np.testing.assert_array_equal(B.data, S.data)


def test_bsr_bad_input():
    with pytest.raises(ValueError, match="NaN"):
        bsr_from_dense(np.full((2, 2), np.nan), (1, 1))
    with pytest.raises(ValueError, match="block"):
        bsr_from_dense(np.ones((2, 2)), (0, 1))
    with pytest.raises(TypeError, match="block"):
        bsr_from_dense(np.ones((2, 2)), 2)
    with pytest.raises(ValueError, match="2-D"):
        bsr_from_dense(np.ones(4), (2, 2))
    with pytest.raises(ValueError, match="indices"):
        BSRMatrix(np.zeros((1, 2, 2)), np.array([5]), np.array([0, 1]), (2, 4), (2, 2))
    with pytest.raises(TypeError, match="CSRMatrix"):
        bsr_from_csr(np.ones((2, 2)), (1, 1))


def test_block_structure_saves_bytes_only_when_present():
    D = random_block_sparse(512, 512, (4, 8), 0.1, seed=4)
    rng = np.random.default_rng(5)
    scattered = (rng.standard_normal(D.shape) * (rng.random(D.shape) < np.count_nonzero(D) / D.size)).astype(np.float32)
    blocky, random = bsr_from_dense(D, (4, 8)), bsr_from_dense(scattered, (4, 8))
    assert blocky.nbytes < 0.6 * csr_bytes(512, np.count_nonzero(D))   # one index per 32 values
    assert random.nbytes > 2 * csr_bytes(512, np.count_nonzero(scattered))  # almost every tile stored


# ---------------------------------------------------------------- N:M packed

def nm_dense(shape, n, m, seed):
    """A random dense matrix with at most n non-zeros in every group of m (independent of the course's masks)."""
    rng = np.random.default_rng(seed)
    R, C = shape
    W = rng.standard_normal((R, C)).astype(np.float32)
    keep = np.zeros((R, C // m, m), dtype=bool)
    order = rng.random((R, C // m, m)).argsort(axis=-1)
    np.put_along_axis(keep, order[..., :n], True, axis=-1)
    keep &= rng.random(keep.shape) < 0.9  # some groups hold fewer than n non-zeros
    return W * keep.reshape(R, C)


def test_pack_nm_known_codes():
    w = np.array([[0, 5, 0, 6, 7, 0, 0, 0], [1, 0, 2, 0, 0, 0, 3, 4]], dtype=np.float32)
    P = pack_nm(w, 2, 4)
    assert P.values.tolist() == [[5, 6, 7, 0], [1, 2, 3, 4]]
    # positions (1, 3, 0, 1) and (0, 2, 2, 3), two bits each, first value in the lowest bits
    assert P.codes.dtype == np.uint32
    assert P.codes.tolist() == [[1 + 3 * 4 + 0 * 16 + 1 * 64], [0 + 2 * 4 + 2 * 16 + 3 * 64]]


@pytest.mark.parametrize("n,m", [(2, 4), (1, 4), (1, 8), (2, 8), (3, 3), (1, 2), (4, 16)])
def test_pack_unpack_round_trip_and_bytes(n, m):
    D = nm_dense((19, 16 * m), n, m, seed=n * 10 + m)
    P = pack_nm(D, n, m)
    np.testing.assert_array_equal(P.to_dense(), D)
    bits = math.ceil(math.log2(m)) if m > 1 else 1
    assert nm_bits(m) == bits
    kept = 16 * n
    words = math.ceil(kept / (32 // bits))
    assert P.codes.shape == (19, words)
    assert P.nbytes == 4 * 19 * kept + 4 * 19 * words
    x = np.random.default_rng(1).standard_normal(D.shape[1]).astype(np.float32)
    np.testing.assert_allclose(P.matvec(x), D.astype(np.float64) @ x, rtol=1e-4, atol=1e-4)


def test_2_4_bytes_against_csr_and_dense():
    P = pack_nm(nm_dense((256, 1024), 2, 4, seed=7), 2, 4)
    dense_bytes = 4 * 256 * 1024
    assert P.nbytes == dense_bytes // 2 + dense_bytes // 32  # half the values + 2 bits per kept value
    assert P.nbytes < 0.55 * dense_bytes
    assert csr_bytes(256, 256 * 512) > dense_bytes  # CSR at 50% is larger than dense


def test_pack_nm_bad_input():
    with pytest.raises(ValueError, match="not 2:4"):
        pack_nm(np.ones((2, 4)), 2, 4)
    with pytest.raises(ValueError, match="divisible"):
        pack_nm(np.zeros((2, 6)), 2, 4)
    with pytest.raises(TypeError, match="n"):
        pack_nm(np.zeros((2, 4)), 2.0, 4)
    with pytest.raises(ValueError, match="NaN"):
        pack_nm(np.full((2, 4), np.nan), 2, 4)


# ---------------------------------------------------------------- OpenCL kernels

def test_block_width_is_queried(fk):
    width = device_block_width(fk.csr)
    assert width >= fk.csr.preferred_multiple and width & (width - 1) == 0 and width < 2 * fk.csr.preferred_multiple
    assert fk.default_block(4) == (4, width)


@pytest.mark.parametrize("block", [(1, 8), (4, 8), (3, 16), (2, 32), (1, 1), (5, 4)])
def test_bsr_kernels_match_numpy(fk, block):
    for label, D in special_dense(seed=block[0] + block[1]).items():
        B = bsr_from_dense(D, block)
        rng = np.random.default_rng(len(label))
        x = rng.standard_normal(D.shape[1]).astype(np.float32)
        for simd in (True, False):  # both SpMV shapes (CPU and GPU) run on any device
            fk.bsr_simd = simd
            close(fk.spmv(B, x), D, x, f"bsr spmv {block} (simd {simd}) on {label}")
        fk.bsr_simd = bool(fk.csr.is_cpu)
        for batch in (1, 5, 32, 33):
            X = rng.standard_normal((D.shape[1], batch)).astype(np.float32)
            close(fk.spmm(B, X), D, X, f"bsr spmm {block} batch {batch} on {label}")


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n_rows=st.integers(1, 150), n_cols=st.integers(1, 150), br=st.sampled_from([1, 2, 3, 4, 8]),
       bc=st.sampled_from([4, 8, 16, 32]), density=st.floats(0.0, 1.0), batch=st.integers(1, 40),
       seed=st.integers(0, 2**16))
def test_bsr_kernels_property(fk, n_rows, n_cols, br, bc, density, batch, seed):
    D = random_block_sparse(n_rows, n_cols, (br, bc), density, seed=seed)
    B = bsr_from_dense(D, (br, bc))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n_cols).astype(np.float32)
    X = rng.standard_normal((n_cols, batch)).astype(np.float32)
    for simd in (True, False):
        fk.bsr_simd = simd
        close(fk.spmv(B, x), D, x, f"bsr spmv (simd {simd})")
    fk.bsr_simd = bool(fk.csr.is_cpu)
    close(fk.spmm(B, X), D, X, "bsr spmm")


@pytest.mark.parametrize("n,m", [(2, 4), (1, 4), (1, 8), (3, 3), (2, 8)])
@pytest.mark.parametrize("n_rows", [1, 7, 100])
def test_nm_kernels_match_numpy(fk, n, m, n_rows):
    D = nm_dense((n_rows, 24 * m + 4 * m), n, m, seed=n_rows + m)  # kept values: not a multiple of 16
    P = pack_nm(D, n, m)
    rng = np.random.default_rng(n_rows)
    x = rng.standard_normal(D.shape[1]).astype(np.float32)
    for rows_kernel in (True, False):  # both SpMV shapes (CPU and GPU) run on any device
        fk.nm_rows = rows_kernel
        close(fk.spmv(P, x), D, x, f"{n}:{m} spmv, {n_rows} rows, row kernel {rows_kernel}")
    fk.nm_rows = bool(fk.csr.is_cpu)
    for batch in (1, 31, 64):
        X = rng.standard_normal((D.shape[1], batch)).astype(np.float32)
        close(fk.spmm(P, X), D, X, f"{n}:{m} spmm batch {batch}, {n_rows} rows")


def test_timing_reports_format_bytes(fk):
    D = random_block_sparse(256, 256, fk.default_block(4), 0.2, seed=9)
    B = bsr_from_dense(D, fk.default_block(4))
    r = fk.time_spmm(B, 32, warmup=1, repeat=2)
    assert r["bytes"] == B.nbytes + 4 * 256 * 32 + 4 * 256 * 32
    assert r["flops"] == 2 * B.nnz * 32 and r["median"] > 0
    P = pack_nm(nm_dense((64, 128), 2, 4, seed=1), 2, 4)
    assert fk.time_spmv(P, warmup=1, repeat=2)["bytes"] == P.nbytes + 4 * 128 + 4 * 64


def test_format_kernels_reject_bad_input(fk):
    B = bsr_from_dense(np.eye(6, dtype=np.float32), (2, 3))
    with pytest.raises(ValueError, match="power of two"):
        fk.spmv(B, np.ones(6))
    B = bsr_from_dense(np.eye(8, dtype=np.float32), (2, 4))
    with pytest.raises(ValueError, match="x must"):
        fk.spmv(B, np.ones(7))
    with pytest.raises(ValueError, match="X must"):
        fk.spmm(B, np.full((8, 2), np.inf))
    with pytest.raises(TypeError, match="BSRMatrix or NMPacked"):
        fk.spmv(np.eye(8), np.ones(8))


# ---------------------------------------------------------------- module 06: the honest roofline

def test_cache_and_roof_sizes(monkeypatch):
    kernels = SparseKernels()
    cache = tk.largest_cache_bytes(kernels.device)
    assert cache >= int(kernels.device.global_mem_cache_size)
    if kernels.is_cpu:
        assert cache >= max(tk.os_cache_sizes() or [0])
    assert tk.roof_buffer_bytes(kernels.device) >= 4 * cache
    monkeypatch.setenv("TINYTORCH_CACHE_BYTES", "3M")
    assert tk.largest_cache_bytes(kernels.device) == 3 << 20
    monkeypatch.setenv("TINYTORCH_CACHE_BYTES", "lots")
    with pytest.raises(ValueError, match="TINYTORCH_CACHE_BYTES"):
        tk.largest_cache_bytes(kernels.device)


def test_parse_size():
    assert tk._parse_size("32768K") == 32 << 20
    assert tk._parse_size("1M\n") == 1 << 20
    assert tk._parse_size("512") == 512
    assert tk._parse_size("abc") is None


@pytest.mark.parametrize("density", [0.01, 0.1, 0.5, 1.0])
def test_rows_for_bytes_reaches_the_target(density):
    for target in (1 << 20, 100 << 20):
        rows = tk.rows_for_bytes(4096, density, target)
        expected_nnz = density * 4096 * rows
        assert tk.spmv_traffic(rows, 4096, int(expected_nnz))["bytes"] >= target
        assert rows % 64 == 0
        smaller = rows - 64
        if smaller > 0:
            assert tk.spmv_traffic(smaller, 4096, int(density * 4096 * smaller))["bytes"] < target * 1.01
    with pytest.raises(ValueError, match="density"):
        tk.rows_for_bytes(10, 0.0, 100)


def test_memory_roof_is_measured_once_per_device(monkeypatch):
    kernels = SparseKernels()
    first = kernels.memory_roof()
    calls = []
    monkeypatch.setattr(SparseKernels, "copy_bandwidth", lambda self, *a, **k: calls.append(a) or 1.0)
    again = SparseKernels().memory_roof()
    assert calls == [] and again == first
    assert first["buffer_bytes"] >= 4 * first["cache_bytes"] and first["GB/s"] > 0


def test_random_csr_memory_grows_with_nnz():
    A = random_csr(200_000, 50_000, density=1e-4, seed=1)  # a dense draw would need 80 GB
    assert abs(A.nnz - 1e6) < 5 * math.sqrt(1e6)
    assert (np.diff(A.indptr) >= 0).all()


def imported_modules(path):
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_kernels_does_not_import_prune():
    assert not any(n.startswith("tinytorch.prune") for n in imported_modules(PACKAGE / "kernels.py"))


def test_formats_imports_only_earlier_exports():
    tiny = {n for n in imported_modules(PACKAGE / "formats.py") if n.startswith("tinytorch")}
    assert tiny <= {"tinytorch.kernels", "tinytorch.sparse", "tinytorch.support"}, tiny
