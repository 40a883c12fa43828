"""Package tests for tinytorch.sparse (module 03): CSR storage, products, SparseLinear.

Properties are checked with hypothesis on random shapes and sparsities, including empty
rows, all-zero and fully dense matrices; scipy.sparse and torch serve as references only.
"""
import math
import warnings

import numpy as np
import pytest
import scipy.sparse
from hypothesis import given, settings
from hypothesis import strategies as st

import tinytorch.sparse as tsp
from tinytorch.prune import magnitude_mask
from tinytorch.sparse import (CSRMatrix, SparseLinear, break_even_sparsity, csr_matmat, csr_matvec,
                              csr_matvec_loop, csr_storage_bytes, median_times_ms, row_sums)

FAST = settings(max_examples=60, deadline=None)


@st.composite
def sparse_matrices(draw, max_side=24):
    """A float32 matrix with a random zero pattern; some rows (or all, or none) forced empty."""
    m = draw(st.integers(1, max_side))
    n = draw(st.integers(1, max_side))
    density = draw(st.sampled_from([0.0, 0.05, 0.3, 0.7, 1.0]))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(m, n)).astype(np.float32)
    A[rng.random((m, n)) >= density] = 0.0
    if draw(st.booleans()):
        A[rng.random(m) < 0.4] = 0.0  # empty rows
    return A


def reference_tolerance(A, X):
    """Error bound for a float32 product against the float64 one."""
    return 1e-5 * (np.abs(A).astype(np.float64) @ np.abs(X).astype(np.float64)) + 1e-6


# ---------------------------------------------------------------- storage


@FAST
@given(sparse_matrices())
def test_round_trip_and_canonical_arrays_match_scipy(A):
    C = CSRMatrix.from_dense(A)
    assert np.array_equal(C.to_dense(), A)
    ref = scipy.sparse.csr_matrix(A)
    ref.sort_indices()
    assert np.array_equal(C.data, ref.data)
    assert np.array_equal(C.indices, ref.indices)
    assert np.array_equal(C.indptr, ref.indptr)
    assert C.nnz == np.count_nonzero(A)
    assert C.shape == A.shape
    assert math.isclose(C.density, np.count_nonzero(A) / A.size)
    assert math.isclose(C.sparsity, 1 - C.density)


@FAST
@given(sparse_matrices())
def test_dtypes_bytes_and_read_only(A):
    C = CSRMatrix.from_dense(A)
    assert C.data.dtype == np.float32 and C.indices.dtype == np.int32 and C.indptr.dtype == np.int32
    assert C.indptr.shape == (A.shape[0] + 1,)
    assert C.nbytes == C.data.nbytes + C.indices.nbytes + C.indptr.nbytes == csr_storage_bytes(A.shape[0], C.nnz)
    assert C.dense_nbytes == 4 * A.size
    for arr in (C.data, C.indices, C.indptr):
        with pytest.raises(ValueError):
            arr[...] = 0


def test_constructor_copies_its_input():
    data = np.array([1.0, 2.0], dtype=np.float32)
    C = CSRMatrix(data, [0, 1], [0, 1, 2], (2, 2))
    data[0] = 99.0
    assert C.data[0] == 1.0


def test_all_zero_and_fully_dense():
    Z = CSRMatrix.from_dense(np.zeros((5, 7)))
    assert Z.nnz == 0 and Z.indptr.tolist() == [0] * 6 and Z.sparsity == 1.0
    assert np.array_equal(Z.matvec(np.ones(7)), np.zeros(5))
    assert np.array_equal(Z.matmat(np.ones((7, 3))), np.zeros((5, 3)))
    D = np.arange(1, 13, dtype=np.float32).reshape(3, 4)
    C = CSRMatrix.from_dense(D)
    assert C.nnz == 12 and C.sparsity == 0.0
    assert np.array_equal(C @ np.ones(4), D.sum(axis=1))


# ---------------------------------------------------------------- products


@FAST
@given(sparse_matrices(), st.integers(0, 2**31 - 1))
def test_matvec_matches_dense(A, seed):
    x = np.random.default_rng(seed).normal(size=A.shape[1]).astype(np.float32)
    y = CSRMatrix.from_dense(A).matvec(x)
    assert y.shape == (A.shape[0],) and y.dtype == np.float32
    assert np.all(np.abs(y - A.astype(np.float64) @ x) <= reference_tolerance(A, x))


@FAST
@given(sparse_matrices(), st.integers(1, 40), st.integers(0, 2**31 - 1))
def test_matmat_matches_dense(A, batch, seed):
    X = np.random.default_rng(seed).normal(size=(A.shape[1], batch)).astype(np.float32)
    Y = CSRMatrix.from_dense(A).matmat(X)
    assert Y.shape == (A.shape[0], batch) and Y.dtype == np.float32
    assert np.all(np.abs(Y - A.astype(np.float64) @ X) <= reference_tolerance(A, X))


@pytest.mark.parametrize("block", [1, 3, 64, 1 << 17])
def test_products_do_not_depend_on_the_block_size(monkeypatch, block):
    rng = np.random.default_rng(0)
    A = rng.normal(size=(90, 70)).astype(np.float32) * (rng.random((90, 70)) < 0.3)
    A[::4] = 0.0
    A[-3:] = 0.0
    x = rng.normal(size=70).astype(np.float32)
    X = rng.normal(size=(70, 9)).astype(np.float32)
    C = CSRMatrix.from_dense(A)
    monkeypatch.setattr(tsp, "BLOCK_ELEMENTS", block)
    assert np.all(np.abs(C.matvec(x) - A.astype(np.float64) @ x) <= reference_tolerance(A, x))
    assert np.all(np.abs(C.matmat(X) - A.astype(np.float64) @ X) <= reference_tolerance(A, X))


def test_row_blocks_cover_all_rows_in_order():
    rng = np.random.default_rng(1)
    A = rng.normal(size=(200, 50)) * (rng.random((200, 50)) < 0.2)
    C = CSRMatrix.from_dense(A)
    for size in (1, 7, 100, 10**6):
        blocks = C.row_blocks(size)
        assert blocks[0][0] == 0 and blocks[-1][1] == 200
        assert all(r1 > r0 for r0, r1 in blocks)
        assert all(b[1] == c[0] for b, c in zip(blocks, blocks[1:]))
        if size >= C.nnz:
            assert len(blocks) == 1


def test_block_indices_and_workspace_are_reused():
    A = np.zeros((3, 5), dtype=np.float32)
    A[0, [1, 4]] = 1.0
    A[2, [0, 2, 3]] = 2.0
    C = CSRMatrix.from_dense(A)
    first = C.block_indices(0, 5)
    assert first.dtype == np.intp and first.tolist() == [1, 4, 0, 2, 3]
    second = C.block_indices(2, 4)
    assert second.tolist() == [0, 2] and np.shares_memory(first, second)
    assert C.block_indices(5, 5).shape == (0,)
    for a, e in ((-1, 2), (3, 2), (0, 6)):
        with pytest.raises(ValueError):
            C.block_indices(a, e)
    w1, w2 = C.workspace(4), C.workspace(2)
    assert w1.dtype == np.float32 and w1.shape == (4,) and np.shares_memory(w1, w2)


def test_products_never_densify(monkeypatch):
    A = np.array([[0, 2, 0], [0, 0, 0], [1, 0, 3]], dtype=np.float32)
    C = CSRMatrix.from_dense(A)

    def boom(*args, **kwargs):
        raise AssertionError("densified")
    monkeypatch.setattr(CSRMatrix, "to_dense", boom)
    monkeypatch.setattr(tsp, "csr_to_dense", boom)
    assert np.array_equal(C.matvec(np.ones(3)), [2, 0, 4])
    assert np.array_equal(C.matmat(np.ones((3, 2))), [[2, 2], [0, 0], [4, 4]])


def test_results_are_fresh_arrays():
    C = CSRMatrix.from_dense(np.eye(3, dtype=np.float32))
    y1 = C.matvec(np.array([1.0, 2.0, 3.0]))
    C.matvec(np.array([7.0, 8.0, 9.0]))
    assert y1.tolist() == [1.0, 2.0, 3.0]
    Y1 = C.matmat(np.ones((3, 2)))
    C.matmat(np.zeros((3, 2)))
    assert np.array_equal(Y1, np.ones((3, 2)))


def test_matches_torch_sparse_csr():
    import torch  # a reference only, installed in the dev environment
    rng = np.random.default_rng(2)
    A = rng.normal(size=(40, 30)).astype(np.float32) * (rng.random((40, 30)) < 0.15)
    A[5:9] = 0.0
    C = CSRMatrix.from_dense(A)
    with warnings.catch_warnings():  # "sparse CSR support is in beta" and the like
        warnings.simplefilter("ignore")
        T = torch.sparse_csr_tensor(torch.from_numpy(C.indptr.astype(np.int64)),
                                    torch.from_numpy(C.indices.astype(np.int64)),
                                    torch.from_numpy(C.data.copy()), size=A.shape)
    X = rng.normal(size=(30, 6)).astype(np.float32)
    assert np.allclose((T @ torch.from_numpy(X)).numpy(), C.matmat(X), atol=1e-5)
    assert np.array_equal(T.to_dense().numpy(), C.to_dense())


# ---------------------------------------------------------------- row_sums


@FAST
@given(st.lists(st.integers(0, 5), min_size=1, max_size=30), st.integers(1, 4), st.integers(0, 2**31 - 1))
def test_row_sums_matches_a_loop(counts, batch, seed):
    indptr = np.concatenate(([0], np.cumsum(counts))).astype(np.int32)
    values = np.random.default_rng(seed).normal(size=(batch, int(indptr[-1]))).astype(np.float32)
    got = row_sums(values, indptr)
    want = np.array([[values[b, indptr[i]:indptr[i + 1]].sum() for i in range(len(counts))] for b in range(batch)])
    assert got.shape == (batch, len(counts)) and got.dtype == np.float32
    assert np.allclose(got, want, atol=1e-5)
    assert np.allclose(row_sums(values[0], indptr), want[0], atol=1e-5)


# ---------------------------------------------------------------- memory


def test_break_even_formula_against_real_matrices():
    for m, n in ((1, 1), (3, 5), (20, 30), (64, 16)):
        s_star = break_even_sparsity(m, n)
        assert math.isclose(s_star, 0.5 + (m + 1) / (2 * m * n))
        for nnz in range(0, m * n + 1):
            csr = csr_storage_bytes(m, nnz)
            sparsity = 1 - nnz / (m * n)
            if not math.isclose(sparsity, s_star):
                assert (csr < 4 * m * n) == (sparsity > s_star), (m, n, nnz)


def test_bytes_at_common_sparsities():
    W = np.random.default_rng(0).normal(size=(256, 256)).astype(np.float32)
    for s in (0.5, 0.9, 0.95):
        C = CSRMatrix.from_dense(W * magnitude_mask(W, s))
        assert C.nnz == 256 * 256 - round(s * 256 * 256)
        assert C.nbytes == 8 * C.nnz + 4 * 257
        assert (C.nbytes < C.dense_nbytes) == (s > break_even_sparsity(256, 256))


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("bad, exc", [
    (np.zeros(4), ValueError), (np.zeros((2, 2, 2)), ValueError), (np.zeros((0, 3)), ValueError),
    (np.array([[1.0, np.nan]]), ValueError), (np.array([[np.inf, 0.0]]), ValueError),
    (np.array([[1e39]]), ValueError),  # overflows float32
    (np.array([[1 + 1j]]), TypeError), (np.array([["a"]]), TypeError), (np.array([[True]]), TypeError),
    ([[1, 2], [3]], TypeError),
])
def test_from_dense_rejects(bad, exc):
    with pytest.raises(exc):
        CSRMatrix.from_dense(bad)


@pytest.mark.parametrize("args, exc", [
    (([1.0], [0], [0, 1], (1,)), ValueError),                  # shape not a pair
    (([1.0], [0], [0, 1], (0, 2)), ValueError),                # empty shape
    (([1.0], [0], [0, 1], (1.0, 2)), TypeError),               # non-int shape
    (([1.0], [2], [0, 1], (1, 2)), ValueError),                # column out of range
    (([1.0], [-1], [0, 1], (1, 2)), ValueError),               # negative column
    (([1.0, 2.0], [0], [0, 2], (1, 2)), ValueError),           # len(indices) != len(data)
    (([1.0], [0], [0, 1, 1], (1, 2)), ValueError),             # indptr too long
    (([1.0], [0], [1, 1], (1, 2)), ValueError),                # indptr not starting at 0
    (([1.0, 2.0], [0, 1], [0, 2, 1, 2], (3, 2)), ValueError),  # indptr decreasing
    (([1.0, 2.0], [1, 0], [0, 2], (1, 2)), ValueError),        # unsorted columns
    (([1.0, 2.0], [1, 1], [0, 2], (1, 2)), ValueError),        # duplicate column
    (([np.nan], [0], [0, 1], (1, 2)), ValueError),             # NaN value
    (([1.0], [0.0], [0, 1], (1, 2)), TypeError),               # float indices
    (([1.0], [0], [0.0, 1.0], (1, 2)), TypeError),             # float indptr
    ((["x"], [0], [0, 1], (1, 2)), TypeError),                 # string data
])
def test_constructor_rejects(args, exc):
    with pytest.raises(exc):
        CSRMatrix(*args)


def test_constructor_accepts_unsorted_rows_boundary():
    # column 1 then column 0 is fine when they are in different rows
    C = CSRMatrix([1.0, 2.0], [1, 0], [0, 1, 2], (2, 2))
    assert np.array_equal(C.to_dense(), [[0, 1], [2, 0]])


@pytest.mark.parametrize("x, exc", [
    (np.ones(5), ValueError), (np.ones((4, 1)), ValueError), (np.array([1.0, 2.0, np.nan, 4.0]), ValueError),
    (np.ones(4, dtype=complex), TypeError), (["a"] * 4, TypeError), (np.ones(0), ValueError),
])
def test_matvec_rejects(x, exc):
    C = CSRMatrix.from_dense(np.eye(4))
    with pytest.raises(exc):
        C.matvec(x)


@pytest.mark.parametrize("X, exc", [
    (np.ones((5, 2)), ValueError), (np.ones(4), ValueError), (np.ones((4, 0)), ValueError),
    (np.full((4, 2), np.inf), ValueError), (np.ones((4, 2), dtype=complex), TypeError),
])
def test_matmat_rejects(X, exc):
    C = CSRMatrix.from_dense(np.eye(4))
    with pytest.raises(exc):
        C.matmat(X)


def test_functions_reject_non_csr():
    with pytest.raises(TypeError):
        csr_matvec(np.eye(2), np.ones(2))
    with pytest.raises(TypeError):
        csr_matmat(np.eye(2), np.ones((2, 1)))


@pytest.mark.parametrize("indptr", [[0, 2, 7], [1, 6], [0, 4, 2, 6], [0], [[0, 6]], [0.0, 6.0]])
def test_row_sums_rejects(indptr):
    with pytest.raises((ValueError, TypeError)):
        row_sums(np.ones(6, dtype=np.float32), indptr)


@pytest.mark.parametrize("args, exc", [((0, 5), ValueError), ((3, -1), ValueError), ((2.0, 5), TypeError),
                                       ((True, 5), TypeError), ((3, 4, 0), ValueError)])
def test_storage_bytes_rejects(args, exc):
    with pytest.raises(exc):
        csr_storage_bytes(*args)


# ---------------------------------------------------------------- SparseLinear


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.sampled_from([0.0, 0.3, 0.8, 0.95, 1.0]),
       st.integers(1, 20), st.integers(0, 2**31 - 1))
def test_sparse_linear_forwards_agree(n_in, n_out, sparsity, batch, seed):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(n_out, n_in)).astype(np.float32)
    b = rng.normal(size=n_out).astype(np.float32)
    layer = SparseLinear(n_in, n_out)
    layer.load_linear_weights(W, b)
    layer.prune_weights(sparsity)
    mask = magnitude_mask(W, sparsity)
    assert np.array_equal(layer.mask, mask)
    assert isinstance(layer.sparsity, float) and math.isclose(layer.sparsity, 1 - np.count_nonzero(mask) / mask.size)
    assert layer.sparse_ops == layer.sparse_weights.nnz == np.count_nonzero(W * mask)
    assert layer.dense_ops == n_in * n_out
    x = rng.normal(size=(batch, n_in)).astype(np.float32)
    ref = x.astype(np.float64) @ (W * mask).T.astype(np.float64) + b
    tol = reference_tolerance(np.abs(x), np.abs(W * mask).T) + 1e-6
    outs = [layer.forward_dense(x), layer.forward_sparse_naive(x), layer.forward_sparse_optimized(x), layer(x)]
    for y in outs:
        assert y.shape == (batch, n_out) and y.dtype == np.float32
        assert np.all(np.abs(y - ref) <= tol)
    assert np.allclose(layer.forward_sparse_optimized(x[0]), outs[0][0], atol=1e-5)


def test_sparse_linear_optimized_uses_only_csr():
    rng = np.random.default_rng(0)
    layer = SparseLinear(30, 20)
    W = rng.normal(size=(20, 30)).astype(np.float32)
    layer.load_linear_weights(W)
    layer.prune_weights(0.9)
    x = rng.normal(size=(4, 30)).astype(np.float32)
    want = layer.forward_dense(x)
    layer.linear_weights = np.full_like(W, 5.0)
    layer.original_weights = np.full_like(W, -5.0)
    assert np.allclose(layer.forward_sparse_optimized(x), want, atol=1e-5)


def test_sparse_linear_from_linear_and_repruning():
    from tinytorch.nn import Linear
    lin = Linear(16, 8, seed=3)
    layer = SparseLinear.from_linear(lin)
    x = np.random.default_rng(1).normal(size=(5, 16)).astype(np.float32)
    assert np.allclose(layer(x), lin.forward(x), atol=1e-5)
    layer.prune_weights(0.75)
    assert layer.sparse_ops == 32
    layer.prune_weights(0.25)  # from the original weights again
    assert layer.sparse_ops == 96
    assert np.allclose(layer.forward_dense(x), layer.forward_sparse_optimized(x), atol=1e-5)


def test_benchmark_speedup_is_measured():
    layer = SparseLinear(64, 32)
    layer.load_linear_weights(np.random.default_rng(0).normal(size=(32, 64)))
    layer.prune_weights(0.9)
    calls = {"dense": 0, "sparse": 0}
    dense, sparse = layer.forward_dense, layer.forward_sparse_optimized

    def count(name, f):
        def wrapped(x):
            calls[name] += 1
            return f(x)
        return wrapped
    layer.forward_dense, layer.forward_sparse_optimized = count("dense", dense), count("sparse", sparse)
    r = layer.benchmark_speedup(batch_size=4, iterations=6, warmup=1)
    assert calls == {"dense": 7, "sparse": 7}
    assert set(r) == {"dense_time_ms", "sparse_time_ms", "dense_ops", "sparse_ops", "theoretical_speedup",
                      "actual_speedup", "sparsity", "efficiency"}
    assert r["dense_time_ms"] > 0 and r["sparse_time_ms"] > 0
    assert r["dense_ops"] == 64 * 32 and r["sparse_ops"] == layer.sparse_weights.nnz
    assert math.isclose(r["theoretical_speedup"], r["dense_ops"] / r["sparse_ops"])
    assert math.isclose(r["actual_speedup"], r["dense_time_ms"] / r["sparse_time_ms"])
    assert math.isclose(r["efficiency"], r["actual_speedup"] / r["theoretical_speedup"])


def test_median_times_ms():
    calls = []
    t = median_times_ms({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeats=3, warmup=1)
    assert calls == ["a", "b"] * 4 and set(t) == {"a", "b"} and all(v >= 0 for v in t.values())
    with pytest.raises(TypeError):
        median_times_ms({"a": 1})
    with pytest.raises(ValueError):
        median_times_ms({"a": lambda: None}, repeats=0)


@pytest.mark.parametrize("call, exc", [
    (lambda l: SparseLinear(0, 3), ValueError),
    (lambda l: SparseLinear(3, "4"), TypeError),
    (lambda l: SparseLinear(6, 4).forward_dense(np.ones(6)), ValueError),         # no weights yet
    (lambda l: SparseLinear(6, 4).prune_weights(0.5), ValueError),               # no weights yet
    (lambda l: l.load_linear_weights(np.ones((6, 4))), ValueError),              # transposed
    (lambda l: l.load_linear_weights(np.ones(24)), ValueError),                  # not 2-D
    (lambda l: l.load_linear_weights(np.ones((4, 6, 1))), ValueError),           # not 2-D
    (lambda l: l.load_linear_weights(np.full((4, 6), np.nan)), ValueError),      # NaN
    (lambda l: l.load_linear_weights(np.ones((4, 6)), np.ones(5)), ValueError),  # bias shape
    (lambda l: l.load_linear_weights(np.ones((4, 6), dtype=complex)), TypeError),
    (lambda l: l.prune_weights(1.5), ValueError),
    (lambda l: l.prune_weights(-0.1), ValueError),
    (lambda l: l.prune_weights(float("nan")), ValueError),
    (lambda l: l.prune_weights("0.5"), TypeError),
    (lambda l: l.forward_dense(np.ones((2, 5))), ValueError),                    # wrong features
    (lambda l: l.forward_dense(np.ones((2, 3, 6))), ValueError),                 # 3-D
    (lambda l: l.forward_dense(np.array([np.inf] * 6)), ValueError),
    (lambda l: l.forward_sparse_naive(np.ones(6)), ValueError),                  # not pruned yet
    (lambda l: l.forward_sparse_optimized(np.ones(6)), ValueError),              # not pruned yet
    (lambda l: l.benchmark_speedup(), ValueError),                               # not pruned yet
])
def test_sparse_linear_rejects(call, exc):
    layer = SparseLinear(6, 4)
    layer.load_linear_weights(np.arange(24, dtype=np.float32).reshape(4, 6))
    with pytest.raises(exc):
        call(layer)


def test_sparse_linear_rejects_after_pruning():
    layer = SparseLinear(6, 4)
    layer.load_linear_weights(np.arange(24, dtype=np.float32).reshape(4, 6))
    layer.prune_weights(0.5)
    for bad in (np.ones((2, 7)), np.array([np.nan] * 6), np.ones((1, 2, 6))):
        with pytest.raises(ValueError):
            layer.forward_sparse_optimized(bad)
    with pytest.raises(ValueError):
        layer.benchmark_speedup(batch_size=0)
    with pytest.raises(TypeError):
        layer.benchmark_speedup(iterations=2.5)


def test_csr_matvec_loop_is_the_definition_and_agrees_with_scipy():
    rng = np.random.default_rng(4)
    for shape, density in (((15, 7), 0.3), ((1, 5), 1.0), ((6, 6), 0.0), ((40, 33), 0.1)):
        M = (rng.normal(size=shape) * (rng.random(shape) < density)).astype(np.float32)
        x = rng.normal(size=shape[1]).astype(np.float32)
        A = CSRMatrix.from_dense(M)
        y = csr_matvec_loop(A, x)
        assert y.dtype == np.float32 and y.shape == (shape[0],)
        assert np.allclose(y, scipy.sparse.csr_matrix(M) @ x, atol=1e-5)
        assert np.allclose(y, csr_matvec(A, x), atol=1e-5)
    with pytest.raises(ValueError):
        csr_matvec_loop(CSRMatrix.from_dense(np.eye(3, dtype=np.float32)), np.ones(4, np.float32))
