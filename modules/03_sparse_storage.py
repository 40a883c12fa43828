# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Module 03: Sparse storage and the `SparseLinear` layer
#
# Modules 01 and 02 set most weights of a network to zero. A zero that is still stored and
# still multiplied saves nothing: `W @ x` with a 95%-zero `W` costs exactly what it cost
# before pruning. To turn sparsity into smaller files and faster layers, the zeros must
# leave the memory layout. Han et al. (2015, *Deep Compression*) stored pruned AlexNet in a
# compressed sparse format; every sparse library since (scipy.sparse, cuSPARSE, MKL, PyTorch's
# `torch.sparse_csr_tensor`) offers the same workhorse: **compressed sparse row (CSR)**.
#
# In this module you build CSR from scratch in `tinytorch.sparse`:
#
# 1. convert a dense matrix to CSR and back;
# 2. count its bytes, and derive the **memory break-even sparsity**: below it CSR is
#    *larger* than the dense array;
# 3. write the matrix-vector and matrix-matrix products that touch only the stored entries,
#    vectorised (one gather, one multiply, one segmented sum; no Python loop per row);
# 4. measure when the sparse product beats the dense one, and explain why the measured
#    speedup is far below the "theoretical" $1/(1-s)$;
# 5. wrap it all in a `SparseLinear` layer with three forward passes that agree.
#
# **Learning goals.** After this module you can draw the CSR arrays of a matrix by hand,
# say how many bytes a pruned layer really needs, write a fast segmented sum that handles
# empty rows, and argue from memory traffic (Williams et al. 2009, *Roofline*; Bell & Garland
# 2009, *Implementing Sparse Matrix-Vector Multiplication on Throughput-Oriented
# Processors*) why sparse kernels need high sparsity, and small batches, to win.
#
# Module 06 reuses the CSR arrays you build here as the input of its OpenCL kernels.

# %% nbgrader={"grade": false, "grade_id": "imports", "locked": true, "schema_version": 3, "solution": false}
#| default_exp sparse
#| export
import numbers
import time

import numpy as np

from tinytorch.prune import MagnitudePruner, magnitude_mask
from tinytorch.support import inference_mode, is_inference, validate_int

# %% nbgrader={"grade": false, "grade_id": "notebook-imports", "locked": true, "schema_version": 3, "solution": false}
# Used by this notebook only (not exported).
import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle
from threadpoolctl import threadpool_limits  # ships with scikit-learn

from tinytorch.testing import expect_error

# %% [markdown]
# ## 1. The CSR layout
#
# CSR keeps three one-dimensional arrays for an $m \times n$ matrix with $\text{nnz}$ stored
# entries, walking the matrix row by row, left to right:
#
# | array | length | dtype | holds |
# | --- | --- | --- | --- |
# | `data` | nnz | float32 | the non-zero values, in row-major order |
# | `indices` | nnz | int32 | the column of each value |
# | `indptr` | m + 1 | int32 | row `i` owns `data[indptr[i]:indptr[i+1]]` |
#
# So `indptr[0] == 0`, `indptr[-1] == nnz`, `indptr` never decreases, and an **empty row**
# is simply `indptr[i] == indptr[i+1]`. Within a row the column indices increase (the
# *canonical* form that scipy and PyTorch also produce), so every matrix has exactly one CSR
# representation. The small matrix below (note the empty row 1) is the running example;
# after exercise 2 a picture draws its arrays.
#
# The class `CSRMatrix` is given: its constructor checks that three arrays really form a
# canonical CSR matrix, stores read-only copies (a CSR matrix is a value: nothing can change
# it behind the back of its caches), and reports `nnz`, `density`, `sparsity`, `nbytes` and
# `dense_nbytes`. Its methods call the functions you write in the exercises.

# %% nbgrader={"grade": false, "grade_id": "csr-class", "locked": true, "schema_version": 3, "solution": false}
#| export
_INT32_MAX = np.iinfo(np.int32).max
BLOCK_ELEMENTS = 1 << 16  # work-buffer entries per row block of the products (256 KiB of float32)


def _real_array(x, name):
    """`x` as an ndarray of real numbers (ints or floats); TypeError otherwise."""
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} must be an array of real numbers, got {type(x).__name__}") from exc
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(f"{name} must hold real numbers (int or float), got dtype {arr.dtype}")
    return arr


def _float32_array(x, name, ndims, allow_empty=False):
    """Validate `x` (real, finite, ndim in `ndims`) and return it as a float32 array. Inside
    tinytorch.support.inference_mode() a float32 array passes unchecked (the timed path)."""
    if is_inference() and isinstance(x, np.ndarray) and x.dtype == np.float32 and x.ndim in ndims:
        return x
    arr = _real_array(x, name)
    if arr.ndim not in ndims:
        want = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(f"{name} must be {want}, got an array of shape {arr.shape}")
    if arr.size == 0 and not allow_empty:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    with np.errstate(over="ignore", invalid="ignore"):
        arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} contains {bad} NaN or infinite value(s) (after conversion to float32)")
    return arr


def _index_array(x, name):
    """Validate a 1-D integer array (an empty array of any real dtype is accepted)."""
    arr = _real_array(x, name)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        return arr.astype(np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integers, got dtype {arr.dtype}")
    return arr


def _check_shape(shape):
    if not isinstance(shape, (tuple, list)) or len(shape) != 2:
        raise ValueError(f"shape must be a pair (n_rows, n_cols), got {shape!r}")
    return (validate_int(shape[0], "shape[0]", 1), validate_int(shape[1], "shape[1]", 1))


def _freeze(arr):
    arr.setflags(write=False)
    return arr


class CSRMatrix:
    """A float32 matrix in compressed sparse row form: `data`, `indices` (int32), `indptr` (int32).

    The arrays are read-only copies; build a new matrix to change one. Products use
    `csr_matvec` / `csr_matmat`, which touch only the stored entries."""

    def __init__(self, data, indices, indptr, shape):
        n_rows, n_cols = _check_shape(shape)
        data = _float32_array(data, "data", (1,), allow_empty=True)
        indices = _index_array(indices, "indices")
        indptr = _index_array(indptr, "indptr")
        nnz = data.shape[0]
        if indices.shape[0] != nnz:
            raise ValueError(f"indices must have one entry per value: len(data)={nnz}, len(indices)={indices.shape[0]}")
        if n_cols > _INT32_MAX or nnz > _INT32_MAX or n_rows >= _INT32_MAX:
            raise ValueError(f"shape {(n_rows, n_cols)} with nnz={nnz} does not fit int32 indices")
        if indptr.shape[0] != n_rows + 1:
            raise ValueError(f"indptr must have n_rows + 1 = {n_rows + 1} entries, got {indptr.shape[0]}")
        if indptr[0] != 0 or indptr[-1] != nnz:
            raise ValueError(f"indptr must start at 0 and end at nnz={nnz}, got {int(indptr[0])} ... {int(indptr[-1])}")
        steps = np.diff(indptr)
        if (steps < 0).any():
            row = int(np.argmax(steps < 0))
            raise ValueError(f"indptr must not decrease, but indptr[{row + 1}] < indptr[{row}]")
        if nnz:
            lo, hi = int(indices.min()), int(indices.max())
            if lo < 0 or hi >= n_cols:
                raise ValueError(f"indices must lie in [0, {n_cols}), got values in [{lo}, {hi}]")
            row_start = np.zeros(nnz, dtype=bool)
            row_start[indptr[:-1][steps > 0]] = True
            ordered = (np.diff(indices) > 0) | row_start[1:]
            if not ordered.all():
                k = int(np.argmax(~ordered)) + 1
                raise ValueError(f"column indices must strictly increase within a row (canonical CSR); "
                                 f"entry {k} has column {int(indices[k])} after {int(indices[k - 1])}")
        self.shape = (n_rows, n_cols)
        self.data = _freeze(np.array(data, dtype=np.float32))
        self.indices = _freeze(np.array(indices, dtype=np.int32))
        self.indptr = _freeze(np.array(indptr, dtype=np.int32))
        self._work = np.empty(0, dtype=np.float32)  # reusable scratch buffers
        self._index_work = np.empty(0, dtype=np.intp)
        self._blocks = {}

    @classmethod
    def from_dense(cls, A):
        """CSR form of a dense 2-D array (exact zeros are dropped)."""
        return csr_from_dense(A)

    def to_dense(self):
        """The dense float32 array this matrix represents."""
        return csr_to_dense(self)

    def matvec(self, x):
        """A @ x for a vector x of length n_cols."""
        return csr_matvec(self, x)

    def matmat(self, X):
        """A @ X for X of shape (n_cols, batch); returns (n_rows, batch)."""
        return csr_matmat(self, X)

    def __matmul__(self, other):
        return self.matvec(other) if np.ndim(other) == 1 else self.matmat(other)

    @property
    def nnz(self):
        """Number of stored entries."""
        return int(self.data.shape[0])

    @property
    def density(self):
        """nnz / (n_rows * n_cols)."""
        return self.nnz / (self.shape[0] * self.shape[1])

    @property
    def sparsity(self):
        """1 - density: the fraction of entries not stored."""
        return 1.0 - self.density

    @property
    def nbytes(self):
        """Bytes of the CSR arrays: data + indices + indptr."""
        return int(self.data.nbytes + self.indices.nbytes + self.indptr.nbytes)

    @property
    def dense_nbytes(self):
        """Bytes of the same matrix as a dense float32 array."""
        return 4 * self.shape[0] * self.shape[1]

    def workspace(self, size):
        """A float32 scratch array of `size` entries, reused between calls (not thread-safe)."""
        if self._work.shape[0] < size:
            self._work = np.empty(size, dtype=np.float32)
        return self._work[:size]

    def block_indices(self, a, e):
        """Column indices of the entries a:e as numpy's native index type (intp), in a reused buffer.

        np.take converts int32 indices itself, but into a fresh temporary on every call; the
        page faults of those allocations can cost more than the gather."""
        if not 0 <= a <= e <= self.nnz:
            raise ValueError(f"need 0 <= a <= e <= nnz={self.nnz}, got a={a}, e={e}")
        if self._index_work.shape[0] < e - a:
            self._index_work = np.empty(e - a, dtype=np.intp)
        out = self._index_work[:e - a]
        np.copyto(out, self.indices[a:e])
        return out

    def row_blocks(self, max_nnz):
        """Consecutive row ranges [(r0, r1), ...] holding about `max_nnz` stored entries each."""
        max_nnz = validate_int(max_nnz, "max_nnz", 1)
        if max_nnz not in self._blocks:
            ptr = self.indptr.astype(np.int64)
            cuts = np.searchsorted(ptr, np.arange(max_nnz, self.nnz, max_nnz), side="left")
            bounds = np.unique(np.concatenate(([0], cuts, [self.shape[0]])))
            self._blocks[max_nnz] = list(zip(bounds[:-1].tolist(), bounds[1:].tolist()))
        return self._blocks[max_nnz]

    def __repr__(self):
        return (f"CSRMatrix(shape={self.shape}, nnz={self.nnz}, sparsity={self.sparsity:.3f}, "
                f"nbytes={self.nbytes})")


def _check_segments(values, indptr):
    """values (..., nnz) of floats and indptr rising from 0 to nnz; O(n_rows) checks only."""
    if not (isinstance(values, np.ndarray) and values.dtype.kind == "f"):
        values = _real_array(values, "values")
        if not np.issubdtype(values.dtype, np.floating):
            values = values.astype(np.float32)
    if values.ndim == 0:
        raise ValueError("values must have at least one axis, got a scalar")
    if not (isinstance(indptr, np.ndarray) and indptr.dtype.kind in "iu" and indptr.ndim == 1):
        indptr = _index_array(indptr, "indptr")
    if indptr.shape[0] < 2:
        raise ValueError(f"indptr needs at least 2 entries (one row), got {indptr.shape[0]}")
    if indptr[0] != 0 or indptr[-1] != values.shape[-1] or (indptr[1:] < indptr[:-1]).any():
        raise ValueError(f"indptr must rise from 0 to values.shape[-1]={values.shape[-1]} without decreasing, "
                         f"got {indptr.tolist() if indptr.shape[0] <= 8 else indptr}")
    return values, indptr


def _check_vector(A, x):
    """x as a finite float32 vector of length A.shape[1]."""
    if not isinstance(A, CSRMatrix):
        raise TypeError(f"A must be a CSRMatrix, got {type(A).__name__}")
    x = _float32_array(x, "x", (1,))
    if x.shape[0] != A.shape[1]:
        raise ValueError(f"x must have length {A.shape[1]} to multiply a {A.shape} matrix, got shape {x.shape}")
    return x


def _check_batch(A, X):
    """X (n_cols, batch) as a finite float32 array, returned transposed and C-contiguous: (batch, n_cols)."""
    if not isinstance(A, CSRMatrix):
        raise TypeError(f"A must be a CSRMatrix, got {type(A).__name__}")
    X = _float32_array(X, "X", (2,))
    if X.shape[0] != A.shape[1]:
        raise ValueError(f"X must have shape ({A.shape[1]}, batch) to multiply a {A.shape} matrix, got {X.shape}")
    return np.ascontiguousarray(X.T)


# %% nbgrader={"grade": false, "grade_id": "example", "locked": true, "schema_version": 3, "solution": false}
# The running example: 4 x 6, row 1 is empty.
EXAMPLE = np.array([[0, 2, 0, 0, 1, 0],
                    [0, 0, 0, 0, 0, 0],
                    [3, 0, 0, 4, 0, 5],
                    [0, 0, 6, 0, 0, 0]], dtype=np.float32)
print(EXAMPLE)

# %% [markdown]
# ### Exercise 1: dense to CSR
#
# Write `csr_from_dense(A)`: return the `CSRMatrix` holding the non-zero entries of `A`
# (validated and converted to float32 for you). For the example it must produce
# `data = [2, 1, 3, 4, 5, 6]`, `indices = [1, 4, 0, 3, 5, 2]`, `indptr = [0, 2, 2, 5, 6]`.
#
# *Hints.* `np.nonzero(A)` returns the row and column of every non-zero in row-major order,
# exactly the CSR order. The number of entries of each row is `np.bincount(rows,
# minlength=m)` (an empty row counts 0, which is why `minlength` matters), and `indptr` is
# the running total of those counts with a 0 in front (`np.cumsum`). No Python loop is
# needed.

# %% nbgrader={"grade": false, "grade_id": "csr_from_dense", "locked": false, "schema_version": 3, "solution": true}
#| export
def csr_from_dense(A):
    """CSRMatrix of the non-zero entries of the 2-D array `A` (row-major, canonical)."""
    A = _float32_array(A, "A", (2,))
    ### BEGIN SOLUTION
    rows, cols = np.nonzero(A)
    counts = np.bincount(rows, minlength=A.shape[0])
    indptr = np.zeros(A.shape[0] + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return CSRMatrix(A[rows, cols], cols, indptr, A.shape)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-csr_from_dense", "locked": true, "points": 3, "schema_version": 3, "solution": false}
_A = csr_from_dense(EXAMPLE)
assert isinstance(_A, CSRMatrix), f"expected a CSRMatrix, got {type(_A).__name__}"
for _name, _want in (("data", [2, 1, 3, 4, 5, 6]), ("indices", [1, 4, 0, 3, 5, 2]), ("indptr", [0, 2, 2, 5, 6])):
    _got = getattr(_A, _name)
    assert np.array_equal(_got, _want), f"example {_name}: expected {_want}, got {_got.tolist()}"
assert _A.shape == (4, 6), f"shape: expected (4, 6), got {_A.shape}"
assert _A.nnz == 6, f"nnz: expected 6, got {_A.nnz}"
assert _A.data.dtype == np.float32 and _A.indices.dtype == np.int32 and _A.indptr.dtype == np.int32, \
    f"dtypes: expected float32/int32/int32, got {_A.data.dtype}/{_A.indices.dtype}/{_A.indptr.dtype}"
assert CSRMatrix.from_dense(EXAMPLE).nnz == 6, "CSRMatrix.from_dense must give the same matrix"
### BEGIN HIDDEN TESTS
_Z = csr_from_dense(np.zeros((3, 5)))
assert _Z.nnz == 0 and np.array_equal(_Z.indptr, [0, 0, 0, 0]), \
    f"all-zero 3x5: expected nnz 0 and indptr [0,0,0,0], got {_Z.nnz} and {_Z.indptr.tolist()}"
_D = np.arange(1, 13, dtype=np.float64).reshape(3, 4)
_C = csr_from_dense(_D)
assert np.array_equal(_C.indptr, [0, 4, 8, 12]) and np.array_equal(_C.indices, [0, 1, 2, 3] * 3), \
    f"fully dense 3x4: got indptr {_C.indptr.tolist()} indices {_C.indices.tolist()}"
assert np.array_equal(_C.data, np.arange(1, 13)), f"fully dense 3x4 data: got {_C.data.tolist()}"
_E = np.zeros((5, 3), dtype=np.float32)
_E[4, 2] = -7.5
_C = csr_from_dense(_E)
assert np.array_equal(_C.indptr, [0, 0, 0, 0, 0, 1]) and _C.data.tolist() == [-7.5] and _C.indices.tolist() == [2], \
    f"only the last entry set: got indptr {_C.indptr.tolist()}, data {_C.data.tolist()}, indices {_C.indices.tolist()}"
assert csr_from_dense(np.array([[3]])).data.tolist() == [3.0], "1x1 int matrix"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "test-csr_from_dense-bad-input", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# csr_from_dense: bad input gets a clear error (its own small cell, apart from the algorithm's points)
_A = csr_from_dense(np.array([[0.0, 2.0], [3.0, 0.0]], dtype=np.float32))
assert _A.indptr.tolist() == [0, 1, 2] and _A.indices.tolist() == [1, 0], \
    f"[[0, 2], [3, 0]]: expected indptr [0, 1, 2] and indices [1, 0], got {_A.indptr.tolist()} and {_A.indices.tolist()}"
### BEGIN HIDDEN TESTS
for _bad, _exc in ((np.zeros(4), ValueError), (np.zeros((2, 2, 2)), ValueError), (np.zeros((0, 3)), ValueError),
                   (np.array([[1.0, np.nan]]), ValueError), (np.array([[np.inf]]), ValueError),
                   (np.array([[1 + 1j]]), TypeError), (np.array([["a"]]), TypeError)):
    expect_error(_exc, csr_from_dense, _bad)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2: CSR back to dense
#
# Write `csr_to_dense(A)`: the dense float32 array of a `CSRMatrix`. Stored entries go back
# to their places; everything else is 0.
#
# *Hints.* Row `i` owns `np.diff(indptr)[i]` entries, so `np.repeat(np.arange(m),
# np.diff(indptr))` gives the row of every stored entry; then one fancy-index assignment
# `out[rows, indices] = data` writes them all.

# %% nbgrader={"grade": false, "grade_id": "csr_to_dense", "locked": false, "schema_version": 3, "solution": true}
#| export
def csr_to_dense(A):
    """Dense float32 array of the CSRMatrix `A`."""
    if not isinstance(A, CSRMatrix):
        raise TypeError(f"A must be a CSRMatrix, got {type(A).__name__}")
    ### BEGIN SOLUTION
    out = np.zeros(A.shape, dtype=np.float32)
    rows = np.repeat(np.arange(A.shape[0]), np.diff(A.indptr))
    out[rows, A.indices] = A.data
    return out
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-csr_to_dense", "locked": true, "points": 1, "schema_version": 3, "solution": false}
_B = csr_to_dense(CSRMatrix([2, 1, 3, 4, 5, 6], [1, 4, 0, 3, 5, 2], [0, 2, 2, 5, 6], (4, 6)))
assert isinstance(_B, np.ndarray) and _B.dtype == np.float32, f"expected a float32 array, got {type(_B).__name__} {getattr(_B, 'dtype', None)}"
assert np.array_equal(_B, EXAMPLE), f"example back to dense: expected\n{EXAMPLE}\ngot\n{_B}"
_rng = np.random.default_rng(3)
for _trial in range(5):
    _M = _rng.normal(size=(7, 9)).astype(np.float32) * (_rng.random((7, 9)) < 0.3)
    _back = CSRMatrix.from_dense(_M).to_dense()
    assert np.array_equal(_back, _M), f"round trip of a random 7x9 matrix changed it (trial {_trial})"
### BEGIN HIDDEN TESTS
assert np.array_equal(CSRMatrix([], [], [0, 0, 0], (2, 3)).to_dense(), np.zeros((2, 3))), "empty matrix to dense"
_F = np.arange(1, 7, dtype=np.float32).reshape(2, 3)
assert np.array_equal(CSRMatrix.from_dense(_F).to_dense(), _F), "fully dense round trip"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "test-csr_to_dense-bad-input", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# csr_to_dense: bad input gets a clear error (its own small cell, apart from the algorithm's points)
_B = csr_to_dense(CSRMatrix([2.0, 3.0], [1, 0], [0, 1, 2], (2, 2)))
assert np.array_equal(_B, [[0.0, 2.0], [3.0, 0.0]]), f"expected [[0, 2], [3, 0]], got {np.asarray(_B).tolist()}"
### BEGIN HIDDEN TESTS
expect_error(TypeError, csr_to_dense, EXAMPLE)  # it takes a CSRMatrix, not an ndarray
### END HIDDEN TESTS

# %% [markdown]
# ### A picture of the layout
#
# Each colour is one row; `indptr[i]` points at the first entry of row `i` in `data` and
# `indices`, and the empty row 1 shows up as two equal pointers.

# %%
def draw_csr(A, ax_matrix, ax_arrays):
    """Draw a small CSRMatrix: the dense grid, and its three arrays coloured by row."""
    dense = A.to_dense()
    m, n = A.shape
    colours = plt.cm.tab10(np.arange(m) % 10)
    for i in range(m):
        for j in range(n):
            v = dense[i, j]
            ax_matrix.add_patch(Rectangle((j, m - 1 - i), 1, 1, facecolor=colours[i] if v else "white",
                                          alpha=0.55 if v else 1.0, edgecolor="grey"))
            ax_matrix.text(j + 0.5, m - 0.5 - i, f"{v:g}", ha="center", va="center",
                           color="black" if v else "lightgrey")
        ax_matrix.text(-0.3, m - 0.5 - i, f"row {i}", ha="right", va="center")
    ax_matrix.set_xlim(-1.5, n)
    ax_matrix.set_ylim(0, m)
    ax_matrix.set_title(f"dense {m} x {n}: {A.nnz} non-zeros")
    rows = np.repeat(np.arange(m), np.diff(A.indptr))
    arrays = (("data", A.data, rows), ("indices", A.indices, rows), ("indptr", A.indptr, None))
    for level, (name, values, owner) in enumerate(arrays):
        y = 2 * (len(arrays) - 1 - level)
        ax_arrays.text(-0.3, y + 0.5, name, ha="right", va="center")
        for k, v in enumerate(values):
            face = colours[owner[k]] if owner is not None else "white"
            ax_arrays.add_patch(Rectangle((k, y), 1, 1, facecolor=face, alpha=0.55, edgecolor="grey"))
            ax_arrays.text(k + 0.5, y + 0.5, f"{v:g}", ha="center", va="center")
            ax_arrays.text(k + 0.5, y - 0.3, str(k), ha="center", va="center", fontsize=7, color="grey")
    for i in range(m):
        start = int(A.indptr[i])
        ax_arrays.annotate("", xy=(start + 0.05, 3.0), xytext=(i + 0.5, 1.0),
                           arrowprops=dict(arrowstyle="->", color=colours[i]))
    ax_arrays.set_xlim(-1.5, max(A.nnz, m + 1) + 0.5)
    ax_arrays.set_ylim(-0.7, 2 * len(arrays) - 0.8)
    ax_arrays.set_title("CSR arrays (arrows: indptr[i] -> first entry of row i)")
    for ax in (ax_matrix, ax_arrays):
        ax.set_aspect("equal")
        ax.axis("off")


_fig, (_ax1, _ax2) = plt.subplots(1, 2, figsize=(12, 3.2))
draw_csr(CSRMatrix.from_dense(EXAMPLE), _ax1, _ax2)
plt.tight_layout()
plt.show()
_A = CSRMatrix.from_dense(EXAMPLE)
print("data   ", _A.data.tolist())
print("indices", _A.indices.tolist())
print("indptr ", _A.indptr.tolist())

# %% [markdown]
# ## 2. How many bytes? The memory break-even sparsity
#
# With $b_v$ bytes per value and $b_i$ bytes per index, an $m \times n$ matrix at sparsity
# $s$ (so $\text{nnz} = (1-s)\,mn$) costs
#
# $$B_\text{dense} = b_v\, m n, \qquad B_\text{CSR} = (b_v + b_i)\,\text{nnz} + b_i\,(m + 1).$$
#
# Every kept weight drags its column index along, so one stored entry costs
# $b_v + b_i$ bytes instead of $b_v$. Setting $B_\text{CSR} = B_\text{dense}$ and solving for
# $s$ gives the **break-even sparsity**
#
# $$s^* = \frac{b_i}{b_v + b_i} + \frac{b_i\,(m+1)}{(b_v + b_i)\, m n}.$$
#
# For float32 values and int32 indices ($b_v = b_i = 4$) this is
# $s^* = \tfrac12 + \tfrac{m+1}{2mn}$: a hair above one half. **CSR only saves memory once
# more than half of the weights are gone**, and at 90% sparsity it keeps not 10% but about
# 20% of the dense bytes. (The second term is the row pointers; for a tiny matrix it can push
# $s^*$ above 1, meaning CSR never wins.) Deep Compression (Han et al. 2016) shrinks the
# index cost by storing the *difference* to the previous stored position instead of an
# absolute 32-bit index: 8 bits for convolutional layers and 5 bits for fully connected ones,
# with a filler zero inserted whenever a gap exceeds what the bits can express. Put
# $b_i = 5/8$ byte into the formula to see why that matters.
#
# ### Exercise 3: count the bytes
#
# Write `csr_storage_bytes(n_rows, nnz, value_bytes=4, index_bytes=4)` (the bytes of the
# three CSR arrays) and `break_even_sparsity(n_rows, n_cols, value_bytes=4, index_bytes=4)`
# (the formula above, as a float; it may exceed 1). The tests check the first against
# `CSRMatrix.nbytes` and the second against real matrices on both sides of it.

# %% nbgrader={"grade": false, "grade_id": "storage_bytes", "locked": false, "schema_version": 3, "solution": true}
#| export
def csr_storage_bytes(n_rows, nnz, value_bytes=4, index_bytes=4):
    """Bytes of data + indices + indptr for a CSR matrix with `n_rows` rows and `nnz` entries."""
    n_rows = validate_int(n_rows, "n_rows", 1)
    nnz = validate_int(nnz, "nnz", 0)
    value_bytes = validate_int(value_bytes, "value_bytes", 1)
    index_bytes = validate_int(index_bytes, "index_bytes", 1)
    ### BEGIN SOLUTION
    return nnz * (value_bytes + index_bytes) + (n_rows + 1) * index_bytes
    ### END SOLUTION


def break_even_sparsity(n_rows, n_cols, value_bytes=4, index_bytes=4):
    """Sparsity at which CSR and dense storage take the same bytes (CSR is smaller above it)."""
    n_rows = validate_int(n_rows, "n_rows", 1)
    n_cols = validate_int(n_cols, "n_cols", 1)
    value_bytes = validate_int(value_bytes, "value_bytes", 1)
    index_bytes = validate_int(index_bytes, "index_bytes", 1)
    ### BEGIN SOLUTION
    size = n_rows * n_cols
    return index_bytes / (value_bytes + index_bytes) + index_bytes * (n_rows + 1) / ((value_bytes + index_bytes) * size)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-storage_bytes", "locked": true, "points": 3, "schema_version": 3, "solution": false}
_A = CSRMatrix.from_dense(EXAMPLE)
assert csr_storage_bytes(4, 6) == _A.nbytes, f"example: CSRMatrix.nbytes is {_A.nbytes}, csr_storage_bytes(4, 6) gave {csr_storage_bytes(4, 6)}"
assert csr_storage_bytes(4, 6) == 6 * 8 + 5 * 4, f"csr_storage_bytes(4, 6): expected 68, got {csr_storage_bytes(4, 6)}"
assert csr_storage_bytes(10, 3, value_bytes=2, index_bytes=1) == 3 * 3 + 11, \
    f"csr_storage_bytes(10, 3, 2, 1): expected 20, got {csr_storage_bytes(10, 3, value_bytes=2, index_bytes=1)}"
_s = break_even_sparsity(100, 200)
assert abs(_s - (0.5 + 101 / 40000)) < 1e-12, f"break_even_sparsity(100, 200): expected {0.5 + 101 / 40000}, got {_s}"
# check the formula against real matrices just below and just above the break-even nnz
_m, _n = 20, 30
_nnz_star = (1 - break_even_sparsity(_m, _n)) * _m * _n
_rng = np.random.default_rng(0)
for _nnz in (int(np.floor(_nnz_star)) - 1, int(np.ceil(_nnz_star)) + 1):
    _M = np.zeros(_m * _n, dtype=np.float32)
    _M[_rng.choice(_m * _n, _nnz, replace=False)] = 1.0
    _C = CSRMatrix.from_dense(_M.reshape(_m, _n))
    _smaller = _C.nbytes < _C.dense_nbytes
    assert _smaller == (_C.sparsity > break_even_sparsity(_m, _n)), \
        f"nnz={_nnz}: CSR {_C.nbytes} B vs dense {_C.dense_nbytes} B, sparsity {_C.sparsity:.4f}, break-even {break_even_sparsity(_m, _n):.4f}"
### BEGIN HIDDEN TESTS
assert abs(break_even_sparsity(1, 1) - 1.5) < 1e-12, f"1x1: CSR never wins, expected 1.5, got {break_even_sparsity(1, 1)}"
assert abs(break_even_sparsity(50, 40, value_bytes=2, index_bytes=2) - (0.5 + 51 / 4000)) < 1e-12, "float16/int16 break-even"
assert abs(break_even_sparsity(1000, 1000, value_bytes=4, index_bytes=1) - (0.2 + 1001 / 5e6)) < 1e-12, "8-bit indices"
assert csr_storage_bytes(3, 0) == 16, f"empty 3-row matrix: only indptr, 16 bytes, got {csr_storage_bytes(3, 0)}"
assert isinstance(break_even_sparsity(10, 10), float), "break_even_sparsity returns a float"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "test-storage_bytes-bad-input", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# csr_storage_bytes / break_even_sparsity: bad input gets a clear error
assert csr_storage_bytes(3, 0) == 16, f"empty 3-row matrix: only indptr, 16 bytes, got {csr_storage_bytes(3, 0)}"
### BEGIN HIDDEN TESTS
for _args, _exc in (((0, 5), ValueError), ((3, -1), ValueError), ((2.0, 5), TypeError), ((3, 4, 0), ValueError)):
    expect_error(_exc, csr_storage_bytes, *_args)
expect_error(ValueError, break_even_sparsity, 5, 0)
### END HIDDEN TESTS

# %% [markdown]
# The break-even point checked on real matrices, and the bytes of a 4096 x 4096 float32 layer
# (the size the repository's benchmark uses) at a few sparsities. The CSR sizes come from
# actual `CSRMatrix` objects built from magnitude-pruned weights (`tinytorch.prune`), at
# 1024 x 1024 to keep this notebook fast, and from the formula at 4096 x 4096.

# %%
def bytes_table(n, sparsities, seed=0):
    """Measured CSR bytes of magnitude-pruned n x n float32 matrices."""
    W = np.random.default_rng(seed).standard_normal((n, n)).astype(np.float32)
    rows = []
    for s in sparsities:
        C = CSRMatrix.from_dense(W * magnitude_mask(W, s))
        assert C.nbytes == csr_storage_bytes(n, C.nnz)
        rows.append((s, C.nnz, C.nbytes, C.dense_nbytes))
    return rows


_levels = (0.5, 0.9, 0.95)
print(f"break-even sparsity, float32 + int32: 1024^2 {break_even_sparsity(1024, 1024):.6f}, "
      f"4096^2 {break_even_sparsity(4096, 4096):.8f}")
print(f"{'size':>10} {'sparsity':>8} {'nnz':>10} {'CSR bytes':>12} {'dense bytes':>12} {'CSR/dense':>9}")
for _s, _nnz, _b, _d in bytes_table(1024, _levels):
    print(f"{'1024^2':>10} {_s:8.2f} {_nnz:10d} {_b:12d} {_d:12d} {_b / _d:9.3f}  (measured CSRMatrix.nbytes)")
for _s in _levels:
    _nnz = 4096 * 4096 - round(_s * 4096 * 4096)
    _b, _d = csr_storage_bytes(4096, _nnz), 4 * 4096 * 4096
    print(f"{'4096^2':>10} {_s:8.2f} {_nnz:10d} {_b:12d} {_d:12d} {_b / _d:9.3f}  (formula)")

_grid = np.linspace(0, 1, 201)
_fig, _ax = plt.subplots(figsize=(6, 3.2))
_ax.plot(_grid, [csr_storage_bytes(1024, round((1 - s) * 1024 * 1024)) / (4 * 1024 * 1024) for s in _grid],
         label="CSR / dense bytes")
_ax.axhline(1.0, color="grey", lw=0.8)
_ax.axvline(break_even_sparsity(1024, 1024), color="C3", ls="--", label="break-even $s^*$")
_ax.set_xlabel("sparsity")
_ax.set_ylabel("CSR bytes / dense bytes")
_ax.set_title("float32 values + int32 indices, 1024 x 1024")
_ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 3. Products that touch only the stored entries
#
# Row $i$ of $y = A x$ is $y_i = \sum_{k=\text{indptr}[i]}^{\text{indptr}[i+1]-1}
# \text{data}[k]\; x[\text{indices}[k]]$. The obvious code is a double loop over rows and
# their entries. In Python that costs a microsecond or so per entry: hundreds of
# milliseconds for a pruned 4096 x 4096 layer, hopeless against one BLAS call. The numpy way
# splits the work into three whole-array passes:
#
# 1. **gather**: `x[indices]`, the input each stored weight meets (`np.take`);
# 2. **multiply** by `data`, element-wise, into the same buffer;
# 3. **segmented sum**: add up each row's slice of that buffer.
#
# Step 3 is `np.add.reduceat(values, starts)`, which sums `values[starts[j]:starts[j+1]]`
# (the last slice runs to the end). It has a trap: where `starts[j] == starts[j+1]` it does
# **not** return 0 but `values[starts[j]]`, and a start equal to `len(values)` is an error.
# Empty rows are exactly that case. The fix: call it with the starts of the *non-empty*
# rows only (those are strictly increasing and all inside the buffer) and scatter the sums
# into an output that is zero elsewhere.
#
# ### Exercise 4: the segmented sum
#
# Write `row_sums(values, indptr)`: for `values` of shape `(..., nnz)` return the sums over
# each row's slice along the **last** axis, shape `(..., n_rows)` with
# `n_rows = len(indptr) - 1`, 0 for empty rows, in the dtype of `values`. (The leading axes
# are the batch of exercise 6.) `values` and `indptr` are validated for you.
#
# *Hints.* `nonempty = indptr[:-1] < indptr[1:]`; `np.add.reduceat(values,
# indptr[:-1][nonempty], axis=-1)`; assign into `out[..., nonempty]` of a zero array. If
# no row is non-empty there is nothing to sum.

# %% nbgrader={"grade": false, "grade_id": "row_sums", "locked": false, "schema_version": 3, "solution": true}
#| export
def row_sums(values, indptr):
    """Segmented sum along the last axis: out[..., i] = values[..., indptr[i]:indptr[i+1]].sum(-1)."""
    values, indptr = _check_segments(values, indptr)
    ### BEGIN SOLUTION
    starts = indptr[:-1]
    nonempty = starts < indptr[1:]
    if nonempty.all():
        return np.add.reduceat(values, starts, axis=-1)
    out = np.zeros(values.shape[:-1] + (starts.shape[0],), dtype=values.dtype)
    if nonempty.any():
        out[..., nonempty] = np.add.reduceat(values, starts[nonempty], axis=-1)
    return out
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-row_sums", "locked": true, "points": 3, "schema_version": 3, "solution": false}
_v = np.array([1, 2, 3, 4, 5, 6], dtype=np.float32)
_got = row_sums(_v, [0, 2, 2, 5, 6])
assert np.array_equal(_got, [3, 0, 12, 6]), f"rows [1,2] [] [3,4,5] [6]: expected [3, 0, 12, 6], got {np.asarray(_got).tolist()}"
assert _got.dtype == np.float32, f"expected float32 sums, got {_got.dtype}"
_got = row_sums(_v, [0, 6])
assert np.array_equal(_got, [21]), f"one row: expected [21], got {np.asarray(_got).tolist()}"
_got = row_sums(np.stack([_v, 10 * _v]), [0, 1, 1, 6])
assert np.array_equal(_got, [[1, 0, 20], [10, 0, 200]]), f"batched (2, 6) values: expected [[1,0,20],[10,0,200]], got {np.asarray(_got).tolist()}"
### BEGIN HIDDEN TESTS
assert np.array_equal(row_sums(np.zeros(0, np.float32), [0, 0, 0]), [0, 0]), "no entries at all: all rows sum to 0"
assert np.array_equal(row_sums(_v, [0, 0, 0, 6]), [0, 0, 21]), "empty rows first"
assert np.array_equal(row_sums(_v, [0, 6, 6, 6]), [21, 0, 0]), "empty rows last (a start equal to nnz)"
_rng = np.random.default_rng(5)
for _trial in range(20):
    _counts = _rng.integers(0, 4, size=_rng.integers(1, 12))
    _ptr = np.concatenate(([0], np.cumsum(_counts)))
    _vals = _rng.normal(size=(3, int(_ptr[-1]))).astype(np.float32)
    _want = np.array([[_vals[b, _ptr[i]:_ptr[i + 1]].sum() for i in range(len(_counts))] for b in range(3)])
    _got = row_sums(_vals, _ptr)
    assert _got.shape == _want.shape and np.allclose(_got, _want, atol=1e-5), f"random segments {_ptr.tolist()}: expected {_want}, got {_got}"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "test-row_sums-bad-input", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# row_sums: bad input gets a clear error (its own small cell, apart from the algorithm's points)
_v = np.array([1, 2, 3, 4, 5, 6], dtype=np.float32)
_got = row_sums(_v, [0, 2, 2, 5, 6])
assert np.array_equal(_got, [3, 0, 12, 6]), f"rows [1,2] [] [3,4,5] [6]: expected [3, 0, 12, 6], got {np.asarray(_got).tolist()}"
### BEGIN HIDDEN TESTS
for _args in ((_v, [0, 2, 7]), (_v, [1, 6]), (_v, [0, 4, 2, 6]), (_v, [0])):
    expect_error(ValueError, row_sums, *_args)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 5a: the product as a plain loop first
#
# Before making it fast, make it right. Write `csr_matvec_loop(A, x)`: for every row `i`,
# walk its entries `k` from `A.indptr[i]` to `A.indptr[i + 1] - 1` and add
# `A.data[k] * x[A.indices[k]]` to `y[i]`. Two nested Python loops, float32 result, no
# dense matrix. It is slow (a microsecond or so per entry), and that is fine: it states the
# definition in code, and it becomes the reference that your fast version is checked
# against.

# %% nbgrader={"grade": false, "grade_id": "csr_matvec_loop", "locked": false, "schema_version": 3, "solution": true}
#| export
def csr_matvec_loop(A, x):
    """y = A @ x by the definition: a Python loop over rows and their stored entries (slow, obviously right)."""
    x = _check_vector(A, x)
    ### BEGIN SOLUTION
    y = np.zeros(A.shape[0], dtype=np.float32)
    for i in range(A.shape[0]):
        total = np.float32(0.0)
        for k in range(int(A.indptr[i]), int(A.indptr[i + 1])):
            total += A.data[k] * x[A.indices[k]]
        y[i] = total
    return y
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-csr_matvec_loop", "locked": true, "points": 4, "schema_version": 3, "solution": false}
_A = CSRMatrix.from_dense(EXAMPLE)
_x = np.array([1, 2, 3, 4, 5, 6], dtype=np.float32)
_y = csr_matvec_loop(_A, _x)
assert isinstance(_y, np.ndarray) and _y.shape == (4,) and _y.dtype == np.float32, \
    f"expected a float32 array of shape (4,), got {type(_y).__name__} {getattr(_y, 'shape', None)} {getattr(_y, 'dtype', None)}"
assert np.array_equal(_y, EXAMPLE @ _x), f"example @ [1..6]: expected {(EXAMPLE @ _x).tolist()}, got {_y.tolist()}"
_rng = np.random.default_rng(11)
_M = _rng.normal(size=(12, 9)).astype(np.float32) * (_rng.random((12, 9)) < 0.3)
_M[4] = 0.0  # an empty row
_x = _rng.normal(size=9).astype(np.float32)
_y = csr_matvec_loop(CSRMatrix.from_dense(_M), _x)
assert np.allclose(_y, _M.astype(np.float64) @ _x, atol=1e-5), f"random 12x9 with an empty row: max error {np.abs(_y - _M @ _x).max():.2e}"
print("the loop computes the definition")

# %% [markdown]
# ### Exercise 5: the same product, vectorised
#
# Write `csr_matvec(A, x)`, $y = A x$ for a `CSRMatrix` `A` and a vector `x` of length
# $n$ (validated and converted to float32 for you): the three passes of this section, no
# Python loop over rows or entries, no dense matrix. Compare it with your loop from
# exercise 5a on a few random matrices before you run the tests (which compare with numpy).
#
# Work block by block: `A.row_blocks(BLOCK_ELEMENTS)` gives blocks `(r0, r1)` of consecutive
# rows with about `BLOCK_ELEMENTS` entries each (a small matrix is one block). The entries of
# a block run from `a = A.indptr[r0]` to `e = A.indptr[r1]`. For each block you need:
#
# * a buffer for its `e - a` products: `A.workspace(e - a)` hands you one that the matrix
#   keeps and reuses;
# * the **gather** of `x` at the block's column indices into that buffer: `np.take` with
#   `out=` and `mode="clip"`, and the indices from `A.block_indices(a, e)`;
# * the **multiply** by the block's values, in place (`np.multiply(..., out=...)`);
# * the **segmented sum** into `y[r0:r1]` with your `row_sums`, whose row pointers must be
#   relative to the block (subtract `a`).
#
# Why these details:
#
# * **blocks** keep the work buffer (a few hundred KB) in the CPU cache while the three
#   passes run over it, instead of writing megabytes to memory and reading them back twice;
#   the loop runs over a handful of blocks, not over rows;
# * **`out=`** writes into a buffer the matrix keeps, so nothing is allocated (and
#   page-faulted) per call. `A.block_indices(a, e)` does the same for the column indices:
#   `np.take` wants numpy's 8-byte index type, and would otherwise convert the int32
#   `A.indices[a:e]` into a fresh temporary array on every call;
# * **`mode="clip"`** skips the per-element bounds check, safe because the constructor has
#   checked every index.

# %% nbgrader={"grade": false, "grade_id": "csr_matvec", "locked": false, "schema_version": 3, "solution": true}
#| export
def csr_matvec(A, x):
    """y = A @ x touching only the stored entries: per row block gather, multiply, segmented sum."""
    x = _check_vector(A, x)
    ### BEGIN SOLUTION
    y = np.empty(A.shape[0], dtype=np.float32)
    for r0, r1 in A.row_blocks(BLOCK_ELEMENTS):
        a, e = int(A.indptr[r0]), int(A.indptr[r1])
        work = A.workspace(e - a)
        np.take(x, A.block_indices(a, e), out=work, mode="clip")
        np.multiply(work, A.data[a:e], out=work)
        y[r0:r1] = row_sums(work, A.indptr[r0:r1 + 1] - a)
    return y
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-csr_matvec", "locked": true, "points": 4, "schema_version": 3, "solution": false}
_A = CSRMatrix.from_dense(EXAMPLE)
_x = np.array([1, 2, 3, 4, 5, 6], dtype=np.float32)
_y = csr_matvec(_A, _x)
assert isinstance(_y, np.ndarray) and _y.shape == (4,), f"expected shape (4,), got {getattr(_y, 'shape', None)}"
assert _y.dtype == np.float32, f"expected float32, got {_y.dtype}"
assert np.array_equal(_y, EXAMPLE @ _x), f"example @ [1..6]: expected {(EXAMPLE @ _x).tolist()}, got {_y.tolist()}"
_rng = np.random.default_rng(7)
for _trial in range(5):
    _M = _rng.normal(size=(30, 20)).astype(np.float32) * (_rng.random((30, 20)) < 0.2)
    _x = _rng.normal(size=20).astype(np.float32)
    _y = CSRMatrix.from_dense(_M).matvec(_x)
    _want = _M.astype(np.float64) @ _x
    assert np.allclose(_y, _want, atol=1e-5), f"random 30x20 at 80% sparsity: max error {np.abs(_y - _want).max():.2e}"
### BEGIN HIDDEN TESTS
_Z = CSRMatrix.from_dense(np.zeros((3, 4)))
assert np.array_equal(_Z.matvec(np.ones(4)), np.zeros(3)), "all-zero matrix gives a zero vector"
_F = _rng.normal(size=(6, 5)).astype(np.float32)
_x = _rng.normal(size=5).astype(np.float32)
assert np.allclose(CSRMatrix.from_dense(_F) @ _x, _F.astype(np.float64) @ _x, atol=1e-5), "fully dense matrix"
_M = _rng.normal(size=(500, 500)).astype(np.float32)
_M[::3] = 0.0
_M[-5:] = 0.0
_x = _rng.normal(size=500).astype(np.float32)
assert len(CSRMatrix.from_dense(_M).row_blocks(BLOCK_ELEMENTS)) > 1, "this test needs several row blocks"
_err = np.abs(CSRMatrix.from_dense(_M).matvec(_x) - _M.astype(np.float64) @ _x).max()
assert _err < 1e-3, f"500 x 500 with empty rows, several row blocks: max error {_err:.2e}"
_y1 = _A.matvec(np.arange(6))
_y2 = _A.matvec(np.ones(6))
assert np.array_equal(_y1, EXAMPLE @ np.arange(6)), "the result of a call must not change with the next call (shared buffer?)"
_A2 = CSRMatrix.from_dense(EXAMPLE)
def _no_dense(*args, **kwargs):
    raise AssertionError("csr_matvec must not build the dense matrix")
_A2.to_dense = _no_dense
assert np.array_equal(csr_matvec(_A2, np.ones(6)), EXAMPLE.sum(axis=1)), "product without densifying"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "test-csr_matvec-bad-input", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# csr_matvec: bad input gets a clear error
_A = CSRMatrix.from_dense(EXAMPLE)
assert np.array_equal(csr_matvec(_A, np.ones(6, np.float32)), EXAMPLE.sum(axis=1)), "A @ ones is the row sums"
### BEGIN HIDDEN TESTS
for _bad, _exc in ((np.ones(5), ValueError), (np.ones((6, 1)), ValueError), (np.array([1, 2, 3, 4, 5, np.nan]), ValueError),
                   (np.array([1j] * 6), TypeError), (["a"] * 6, TypeError)):
    expect_error(_exc, _A.matvec, _bad)
expect_error(TypeError, csr_matvec, EXAMPLE, np.ones(6))  # an ndarray, not a CSRMatrix
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 6: matrix-matrix product (a batch of inputs)
#
# A layer sees a batch: `csr_matmat(A, X)` computes $Y = A X$ for `X` of shape
# `(n_cols, batch)` and returns `(n_rows, batch)`. The validation hands you `XT`, the batch
# as **rows** `(batch, n_cols)`, C-contiguous, so the gather of every sample at once is one
# `np.take(XT, cols, axis=1)` into a `(batch, e - a)` buffer; `row_sums` sums along its last
# axis, and you return the transpose of the `(batch, n_rows)` result.
#
# The same blocks as in exercise 5, but the buffer now has `batch` rows, so ask for blocks
# of `max(1, BLOCK_ELEMENTS // batch)` entries: the buffer keeps its size whatever the
# batch. (Unblocked, a 4096 x 4096 layer at 90% sparsity and batch 32 would need a buffer of
# `32 * 1.7M` floats, over 200 MB.)
#
# *Hints.* Per block: `work = A.workspace(batch * (e - a)).reshape(batch, e - a)`, gather
# the columns `A.block_indices(a, e)` of `XT` into it, multiply by `A.data[a:e]` (it
# broadcasts over the batch), and store `row_sums(work, A.indptr[r0:r1 + 1] - a)` into the
# columns `r0:r1` of a `(batch, n_rows)` output.

# %% nbgrader={"grade": false, "grade_id": "csr_matmat", "locked": false, "schema_version": 3, "solution": true}
#| export
def csr_matmat(A, X):
    """Y = A @ X for X of shape (n_cols, batch); blocked gather, multiply, segmented sum."""
    XT = _check_batch(A, X)  # (batch, n_cols), C-contiguous float32
    ### BEGIN SOLUTION
    batch = XT.shape[0]
    out = np.empty((batch, A.shape[0]), dtype=np.float32)
    for r0, r1 in A.row_blocks(max(1, BLOCK_ELEMENTS // batch)):
        a, e = int(A.indptr[r0]), int(A.indptr[r1])
        work = A.workspace(batch * (e - a)).reshape(batch, e - a)
        np.take(XT, A.block_indices(a, e), axis=1, out=work, mode="clip")
        np.multiply(work, A.data[a:e], out=work)
        out[:, r0:r1] = row_sums(work, A.indptr[r0:r1 + 1] - a)
    return out.T
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-csr_matmat", "locked": true, "points": 4, "schema_version": 3, "solution": false}
_A = CSRMatrix.from_dense(EXAMPLE)
_X = np.arange(18, dtype=np.float32).reshape(6, 3)
_Y = csr_matmat(_A, _X)
assert isinstance(_Y, np.ndarray) and _Y.shape == (4, 3), f"expected shape (4, 3), got {getattr(_Y, 'shape', None)}"
assert _Y.dtype == np.float32, f"expected float32, got {_Y.dtype}"
assert np.array_equal(_Y, EXAMPLE @ _X), f"example @ X: expected {(EXAMPLE @ _X).tolist()}, got {_Y.tolist()}"
_rng = np.random.default_rng(11)
for _batch in (1, 4, 32):
    _M = _rng.normal(size=(50, 40)).astype(np.float32) * (_rng.random((50, 40)) < 0.1)
    _X = _rng.normal(size=(40, _batch)).astype(np.float32)
    _Y = CSRMatrix.from_dense(_M).matmat(_X)
    _want = _M.astype(np.float64) @ _X
    assert _Y.shape == _want.shape and np.allclose(_Y, _want, atol=1e-5), \
        f"random 50x40 at 90% sparsity, batch {_batch}: shape {_Y.shape}, max error {np.abs(_Y - _want).max():.2e}"
### BEGIN HIDDEN TESTS
# many blocks: a matrix with more entries than one block holds, and empty rows between them
_M = _rng.normal(size=(300, 200)).astype(np.float32) * (_rng.random((300, 200)) < 0.5)
_M[::7] = 0.0
_X = _rng.normal(size=(200, 64)).astype(np.float32)
_C = CSRMatrix.from_dense(_M)
assert len(_C.row_blocks(max(1, BLOCK_ELEMENTS // 64))) > 1, "this test needs several row blocks"
_Y = _C @ _X
assert np.allclose(_Y, _M.astype(np.float64) @ _X, atol=1e-4), f"several row blocks: max error {np.abs(_Y - _M.astype(np.float64) @ _X).max():.2e}"
assert np.array_equal(CSRMatrix.from_dense(np.zeros((3, 2))).matmat(np.ones((2, 5))), np.zeros((3, 5))), "all-zero matrix"
assert np.allclose(_A.matmat(np.ones((6, 1))).ravel(), _A.matvec(np.ones(6))), "batch of one equals matvec"
_A2 = CSRMatrix.from_dense(EXAMPLE)
def _no_dense(*args, **kwargs):
    raise AssertionError("csr_matmat must not build the dense matrix")
_A2.to_dense = _no_dense
assert np.array_equal(csr_matmat(_A2, np.ones((6, 2))), EXAMPLE @ np.ones((6, 2))), "product without densifying"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "test-csr_matmat-bad-input", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# csr_matmat: bad input gets a clear error (its own small cell, apart from the algorithm's points)
_A = CSRMatrix.from_dense(EXAMPLE)
_Y = csr_matmat(_A, np.ones((6, 2), dtype=np.float32))
assert np.array_equal(_Y, EXAMPLE @ np.ones((6, 2))), f"example @ ones: expected {(EXAMPLE @ np.ones((6, 2))).tolist()}, got {np.asarray(_Y).tolist()}"
### BEGIN HIDDEN TESTS
for _bad, _exc in ((np.ones((5, 2)), ValueError), (np.ones(6), ValueError), (np.full((6, 2), np.inf), ValueError),
                   (np.ones((6, 0)), ValueError), (np.ones((6, 2), dtype=complex), TypeError)):
    expect_error(_exc, _A.matmat, _bad)
### END HIDDEN TESTS

# %% [markdown]
# ## 4. When does sparse beat dense? Measure it
#
# Counting multiply-adds, a layer at sparsity $s$ does a fraction $1-s$ of the dense work,
# so the "theoretical" speedup is $1/(1-s)$: 10x at 90%, 20x at 95%. The cells below
# measure the real one: for an $n \times n$ magnitude-pruned matrix, the median time of the
# dense numpy product (`W @ x`, a BLAS call) over the median time of `csr_matvec` /
# `csr_matmat`, for a single input (batch 1) and a batch of 32. The timings interleave the
# two products and report medians (the machine may be shared and noisy), and they are kept
# small so the notebook stays fast. BLAS is limited to one thread here, like our numpy
# product: this compares algorithms, not core counts, and a multi-threaded BLAS call is
# badly disturbed when the cores are shared. `benchmarks/bench_sparse.py` in the repository
# runs the full 4096 x 4096 comparison, with BLAS's default threads as well as one, and with
# `scipy.sparse` as a reference.

# %% nbgrader={"grade": false, "grade_id": "timing-helper", "locked": true, "schema_version": 3, "solution": false}
#| export
# The course's one timing helper lives in tinytorch.support (module 00): medians of interleaved runs.
from tinytorch.support import median_times_ms

# %%
def speedup_sweep(n, sparsities, batches=(1, 32), repeats=7, seed=0):
    """Measured dense/CSR time ratios for n x n magnitude-pruned matrices."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((n, n)).astype(np.float32)
    inputs = {b: rng.standard_normal(n).astype(np.float32) if b == 1 else rng.standard_normal((n, b)).astype(np.float32)
              for b in batches}
    rows = []
    for s in sparsities:
        Ws = W * magnitude_mask(W, s)
        C = CSRMatrix.from_dense(Ws)
        for b, x in inputs.items():
            assert np.allclose(C @ x, Ws @ x, rtol=1e-3, atol=1e-3)
            with inference_mode():  # the CSR product's input checks are not part of the method
                t = median_times_ms({"dense": lambda: Ws @ x, "csr": lambda: C @ x}, repeats=repeats, warmup=2)
            rows.append({"sparsity": s, "batch": b, "dense_ms": t["dense"], "csr_ms": t["csr"],
                         "speedup": t["dense"] / t["csr"], "theory": 1 / (1 - s)})
    return rows


_t0 = time.perf_counter()
SWEEP_N = 1536
with threadpool_limits(1, user_api="blas"):  # one core for dense too, like the CSR product
    SWEEP = speedup_sweep(SWEEP_N, (0.5, 0.8, 0.9, 0.95, 0.98, 0.99))
print(f"{SWEEP_N} x {SWEEP_N} float32, single-threaded, medians of 7 interleaved runs ({time.perf_counter() - _t0:.1f} s)")
print(f"{'sparsity':>8} {'batch':>5} {'dense ms':>9} {'CSR ms':>9} {'speedup':>8} {'1/(1-s)':>8}")
for _r in SWEEP:
    print(f"{_r['sparsity']:8.2f} {_r['batch']:5d} {_r['dense_ms']:9.3f} {_r['csr_ms']:9.3f} {_r['speedup']:8.2f} {_r['theory']:8.1f}")

# %%
_fig, _ax = plt.subplots(figsize=(7, 4))
_s = np.array(sorted({r["sparsity"] for r in SWEEP}))
_ax.plot(_s, 1 / (1 - _s), "k--", label="theoretical 1/(1-s)")
_ax.fill_between(_s, 4 / 24 / (1 - _s), 4 / 8 / (1 - _s), color="grey", alpha=0.2,
                 label="traffic models, batch 1 (see below)")
for _b, _mark in ((1, "o-"), (32, "s-")):
    _pts = [(r["sparsity"], r["speedup"]) for r in SWEEP if r["batch"] == _b]
    _ax.plot(*zip(*_pts), _mark, label=f"measured, batch {_b}")
_ax.axhline(1.0, color="grey", lw=0.8)
_ax.set_yscale("log")
_ax.set_xlabel("sparsity s")
_ax.set_ylabel("speedup of CSR over dense numpy")
_ax.set_title(f"{SWEEP_N} x {SWEEP_N} float32, one thread: measured vs theoretical speedup")
_ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# ### Why the measured speedup falls short of $1/(1-s)$
#
# The theoretical line counts arithmetic, but a matrix-vector product does two flops per
# weight it loads: it is limited by **data movement**, not arithmetic (the roofline view of
# Williams et al.). Count the bytes per matrix entry:
#
# * **dense** `W @ x` streams each float32 weight once, 4 bytes, in order, and BLAS turns
#   them into SIMD fused multiply-adds;
# * **our CSR product** reads 8 bytes from memory per *stored* entry (a 4-byte value and a
#   4-byte column index), twice the dense cost per entry. On top of that come three
#   separate numpy loops over the work buffer (the gather writes 4 B, the multiply reads and
#   writes 8 B, the segmented sum reads 4 B): 16 more bytes per entry, which the row blocks
#   keep in the cache rather than in main memory, but which still cost loads, stores and
#   loop overhead. And `x` is read in irregular order.
#
# Two crude models follow: if only the 8 bytes from memory counted, the batch-1 speedup
# would be $\frac{4}{8}\cdot\frac{1}{1-s}$ (break-even at $s = 1/2$, like memory); if all
# 24 bytes touched cost alike, $\frac{4}{24}\cdot\frac{1}{1-s}$ (break-even at $s = 5/6$).
# The next cell puts them beside the measurement. Where the measurement falls below even
# the second model, bytes are not the whole cost: the CSR product executes several
# instructions per entry in each of its loops (index load and conversion, bounds clip,
# scattered load, store), against a fraction of an instruction per weight in a SIMD BLAS
# kernel, and it pays a fixed Python cost per call and per row block that weighs most on
# small matrices. A compiled kernel such as scipy's reads the same 8 bytes per entry but
# runs one fused loop with no buffer; the repository benchmark measures how much that buys.
#
# **Batch 32 is another story.** A dense matrix-matrix product (BLAS GEMM) loads each weight
# once and uses it for all 32 inputs from registers and cache, so its time grows far more
# slowly than the batch; it becomes arithmetic-bound and runs at a high fraction of the
# CPU's peak. The CSR product has no such reuse: its gather, multiply and sum work is
# proportional to $\text{nnz} \times \text{batch}$, and numpy runs each pass as a separate
# loop without the register blocking of a GEMM. So expect the CSR time to grow roughly in
# proportion to the batch while the dense time grows much less, and the speedup at batch 32
# to be far below the one at batch 1, below 1 unless the sparsity is extreme. The table below
# prints both growth factors from the sweep, so you can check this on your machine. It is the
# familiar verdict of Gale et al. (2019) and Hoefler et al. (2021): unstructured sparsity pays
# on CPUs mostly for memory size and small-batch inference; for batched throughput you need
# structured sparsity (module 02) or hardware support such as 2:4 (Mishra et al. 2021).

# %%
print(f"{'sparsity':>8} {'measured b=1':>12} {'model 4/8/(1-s)':>15} {'model 4/24/(1-s)':>16} "
      f"{'dense t32/t1':>12} {'CSR t32/t1':>10} {'measured b=32':>13}")
for _s in sorted({r["sparsity"] for r in SWEEP}):
    _r1 = next(r for r in SWEEP if r["sparsity"] == _s and r["batch"] == 1)
    _r32 = next(r for r in SWEEP if r["sparsity"] == _s and r["batch"] == 32)
    print(f"{_s:8.2f} {_r1['speedup']:12.2f} {4 / 8 / (1 - _s):15.2f} {4 / 24 / (1 - _s):16.2f} {_r32['dense_ms'] / _r1['dense_ms']:12.1f} "
          f"{_r32['csr_ms'] / _r1['csr_ms']:10.1f} {_r32['speedup']:13.2f}")
for _b in (1, 32):
    _wins = [r["sparsity"] for r in SWEEP if r["batch"] == _b and r["speedup"] > 1]
    print(f"batch {_b}: CSR faster than dense at sparsities {_wins if _wins else 'none of those measured'}; "
          f"best efficiency (measured / theoretical) "
          f"{max(r['speedup'] / r['theory'] for r in SWEEP if r['batch'] == _b):.2f}")

# %% [markdown]
# ## 5. The `SparseLinear` layer
#
# `SparseLinear(in_features, out_features)` is a linear layer $y = x W^\top + b$ (weights
# `(out_features, in_features)`, inputs `(batch, in_features)` or a single vector
# `(in_features,)`, like `tinytorch.nn.Linear`) that can be pruned and then computes with
# CSR. It keeps the names of the course this one grew from:
#
# | attribute | meaning |
# | --- | --- |
# | `linear_weights` | the layer's dense float32 weights; after pruning, the pruned weights (zeros included) |
# | `original_weights` | the weights as loaded, so `prune_weights` can be called again at another sparsity |
# | `bias` | float32 `(out_features,)`, zeros if none is given |
# | `mask` | float32 mask from `tinytorch.prune` (1 keep, 0 pruned), `None` before pruning |
# | `sparse_weights` | the pruned weights as a `CSRMatrix`, `None` before pruning |
# | `sparsity` | fraction of weights pruned (0.0 before pruning) |
# | `dense_ops`, `sparse_ops` | multiply-adds per input: `in * out`, and the number of stored entries |
#
# * `load_linear_weights(weights, bias=None)` stores float32 copies and resets any pruning;
# * `prune_weights(sparsity=0.7)` prunes `original_weights` with `MagnitudePruner().prune`
#   and fills `linear_weights`, `mask`, `sparse_weights`, `sparsity`, `sparse_ops`;
# * `forward_dense(x)`: the dense product with `linear_weights`;
# * `forward_sparse_naive(x)`: masked dense, `x @ (original_weights * mask).T + bias`, the
#   way `torch.nn.utils.prune` computes a pruned layer: the mask is applied, nothing is
#   saved;
# * `forward_sparse_optimized(x)`: the CSR product with `sparse_weights` only (a vector uses
#   `matvec`, a batch uses `matmat` on `x.T`);
# * `benchmark_speedup(batch_size=32, iterations=100)` times `forward_dense` against
#   `forward_sparse_optimized` on a seeded random batch with `median_times_ms(...,
#   repeats=iterations, warmup=warmup)` called inside `with inference_mode():` (both from
#   `tinytorch.support`, so that per-call input checks are not timed) and returns `dense_time_ms`, `sparse_time_ms`
#   (medians of one call), `dense_ops`, `sparse_ops`, `theoretical_speedup`
#   (`dense_ops / max(sparse_ops, 1)`), `actual_speedup` (dense time / sparse time),
#   `sparsity` and `efficiency` (actual / theoretical).
#
# All three forwards give the same output up to float32 rounding. The validation is given;
# a forward before loading (or a sparse forward before pruning) raises `ValueError`.
#
# ### Exercise 7: `SparseLinear`

# %% nbgrader={"grade": false, "grade_id": "SparseLinear", "locked": false, "schema_version": 3, "solution": true}
#| export
class SparseLinear:
    """Linear layer y = x W^T + b that, once pruned, multiplies with its CSR weights."""

    def __init__(self, in_features, out_features):
        self.in_features = validate_int(in_features, "in_features", 1)
        self.out_features = validate_int(out_features, "out_features", 1)
        ### BEGIN SOLUTION
        self.linear_weights = None
        self.original_weights = None
        self.bias = None
        self.sparse_weights = None
        self.mask = None
        self.sparsity = 0.0
        self.dense_ops = 0
        self.sparse_ops = 0
        ### END SOLUTION

    @classmethod
    def from_linear(cls, layer):
        """A SparseLinear holding the weight and bias of a `tinytorch.nn.Linear` (or alike)."""
        weight = np.asarray(layer.weight)
        if weight.ndim != 2:
            raise ValueError(f"layer.weight must be 2-D (out, in), got shape {weight.shape}")
        new = cls(weight.shape[1], weight.shape[0])
        new.load_linear_weights(weight, getattr(layer, "bias", None))
        return new

    def _input(self, x):
        x = _float32_array(x, "x", (1, 2))
        if x.shape[-1] != self.in_features:
            raise ValueError(f"x must have {self.in_features} features in its last axis, got shape {x.shape}")
        return x

    def _need_weights(self):
        if self.linear_weights is None:
            raise ValueError("no weights loaded: call load_linear_weights(weights, bias) first")

    def _need_pruned(self):
        self._need_weights()
        if self.sparse_weights is None:
            raise ValueError("the layer is not pruned yet: call prune_weights(sparsity) first")

    def load_linear_weights(self, weights, bias=None):
        """Store float32 copies of `weights` (out_features, in_features) and `bias`; reset pruning."""
        weights = _float32_array(weights, "weights", (2,))
        if weights.shape != (self.out_features, self.in_features):
            raise ValueError(f"weights must have shape {(self.out_features, self.in_features)}, got {weights.shape}")
        if bias is not None:
            bias = _float32_array(bias, "bias", (1,))
            if bias.shape != (self.out_features,):
                raise ValueError(f"bias must have shape {(self.out_features,)}, got {bias.shape}")
        ### BEGIN SOLUTION
        self.original_weights = weights.copy()
        self.linear_weights = weights.copy()
        self.bias = bias.copy() if bias is not None else np.zeros(self.out_features, dtype=np.float32)
        self.mask = None
        self.sparse_weights = None
        self.sparsity = 0.0
        self.dense_ops = self.in_features * self.out_features
        self.sparse_ops = 0
        ### END SOLUTION

    def prune_weights(self, sparsity=0.7):
        """Magnitude-prune the loaded weights to `sparsity` and build their CSR form."""
        self._need_weights()
        if isinstance(sparsity, (bool, np.bool_)) or not isinstance(sparsity, numbers.Real):
            raise TypeError(f"sparsity must be a real number in [0, 1], got {sparsity!r}")
        if not 0.0 <= sparsity <= 1.0:
            raise ValueError(f"sparsity must lie in [0, 1], got {sparsity!r}")
        ### BEGIN SOLUTION
        pruned, mask, _ = MagnitudePruner().prune(self.original_weights, sparsity)
        self.linear_weights = pruned.astype(np.float32)
        self.mask = mask.astype(np.float32)
        self.sparse_weights = CSRMatrix.from_dense(self.linear_weights)
        self.sparsity = float(1.0 - np.count_nonzero(self.mask) / self.mask.size)
        self.sparse_ops = self.sparse_weights.nnz
        ### END SOLUTION

    def forward_dense(self, x):
        """x @ linear_weights.T + bias with a dense (BLAS) product."""
        x = self._input(x)
        self._need_weights()
        ### BEGIN SOLUTION
        return x @ self.linear_weights.T + self.bias
        ### END SOLUTION

    def forward_sparse_naive(self, x):
        """Masked dense product: x @ (original_weights * mask).T + bias."""
        x = self._input(x)
        self._need_pruned()
        ### BEGIN SOLUTION
        return x @ (self.original_weights * self.mask).T + self.bias
        ### END SOLUTION

    def forward_sparse_optimized(self, x):
        """CSR product with sparse_weights: touches only the kept weights."""
        x = self._input(x)
        self._need_pruned()
        ### BEGIN SOLUTION
        if x.ndim == 1:
            return self.sparse_weights.matvec(x) + self.bias
        if x.shape[0] == 1:
            return (self.sparse_weights.matvec(x[0]) + self.bias)[None, :]
        return self.sparse_weights.matmat(x.T).T + self.bias
        ### END SOLUTION

    def __call__(self, x):
        return self.forward_sparse_optimized(x) if self.sparse_weights is not None else self.forward_dense(x)

    def benchmark_speedup(self, batch_size=32, iterations=100, warmup=3, seed=0):
        """Measured median times of forward_dense and forward_sparse_optimized on one random batch."""
        batch_size = validate_int(batch_size, "batch_size", 1)
        iterations = validate_int(iterations, "iterations", 1)
        warmup = validate_int(warmup, "warmup", 0)
        self._need_pruned()
        ### BEGIN SOLUTION
        x = np.random.default_rng(seed).standard_normal((batch_size, self.in_features)).astype(np.float32)
        with inference_mode():
            times = median_times_ms({"dense": lambda: self.forward_dense(x),
                                     "sparse": lambda: self.forward_sparse_optimized(x)},
                                    repeats=iterations, warmup=warmup)
        theoretical = self.dense_ops / max(self.sparse_ops, 1)
        actual = times["dense"] / times["sparse"]
        return {
            "dense_time_ms": times["dense"],
            "sparse_time_ms": times["sparse"],
            "dense_ops": self.dense_ops,
            "sparse_ops": self.sparse_ops,
            "theoretical_speedup": theoretical,
            "actual_speedup": actual,
            "sparsity": self.sparsity,
            "efficiency": actual / theoretical,
        }
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-SparseLinear-prune", "locked": true, "points": 3, "schema_version": 3, "solution": false}
_rng = np.random.default_rng(42)
_W = _rng.normal(0, 0.1, size=(12, 20)).astype(np.float32)
_b = _rng.normal(0, 0.01, size=12).astype(np.float32)
_layer = SparseLinear(20, 12)
assert (_layer.in_features, _layer.out_features) == (20, 12), "in_features / out_features"
assert _layer.linear_weights is None and _layer.mask is None and _layer.sparse_weights is None and _layer.sparsity == 0.0, \
    "a new layer has no weights, no mask, no CSR weights and sparsity 0.0"
_layer.load_linear_weights(_W, _b)
assert _layer.linear_weights.dtype == np.float32 and np.array_equal(_layer.linear_weights, _W), "linear_weights: a float32 copy of the loaded weights"
assert np.array_equal(_layer.bias, _b), "bias: a copy of the loaded bias"
assert _layer.dense_ops == 240, f"dense_ops: expected 20 * 12 = 240, got {_layer.dense_ops}"
_layer.prune_weights(0.75)
assert _layer.mask is not None and _layer.mask.shape == (12, 20), f"mask of shape (12, 20), got {getattr(_layer.mask, 'shape', None)}"
assert np.array_equal(_layer.mask, magnitude_mask(_W, 0.75)), "the mask must be tinytorch.prune's magnitude mask"
assert abs(_layer.sparsity - 0.75) < 1e-9, f"sparsity: expected 0.75, got {_layer.sparsity}"
assert isinstance(_layer.sparse_weights, CSRMatrix), f"sparse_weights must be a CSRMatrix, got {type(_layer.sparse_weights).__name__}"
assert _layer.sparse_ops == _layer.sparse_weights.nnz == 60, f"sparse_ops: expected 60 kept weights, got {_layer.sparse_ops}"
assert np.array_equal(_layer.sparse_weights.to_dense(), _W * _layer.mask), "sparse_weights must hold the pruned weights"
assert np.array_equal(_layer.linear_weights, _W * _layer.mask), "after pruning, linear_weights are the pruned weights"
### BEGIN HIDDEN TESTS
_layer.prune_weights(0.5)
assert _layer.sparse_ops == 120 and abs(_layer.sparsity - 0.5) < 1e-9, \
    f"pruning again at 50% starts from the original weights: expected 120 kept, got {_layer.sparse_ops}"
_layer.load_linear_weights(_W)
assert _layer.mask is None and _layer.sparse_weights is None and np.array_equal(_layer.bias, np.zeros(12)), \
    "loading new weights resets pruning and the bias defaults to zeros"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "test-SparseLinear-bad-input", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# SparseLinear: bad input gets a clear error (its own small cell, so it does not cost the algorithm's points)
_W = np.random.default_rng(42).normal(0, 0.1, size=(12, 20)).astype(np.float32)
_layer = SparseLinear(20, 12)
_layer.load_linear_weights(_W)
_layer.prune_weights(0.5)
assert _layer.sparse_ops == 120, f"a loaded and pruned layer is needed for these checks; sparse_ops {_layer.sparse_ops}"
### BEGIN HIDDEN TESTS
expect_error(ValueError, SparseLinear, 0, 3)
expect_error(TypeError, SparseLinear, 2.5, 3)
expect_error(ValueError, SparseLinear(20, 12).prune_weights, 0.5)  # no weights loaded yet
expect_error(ValueError, _layer.load_linear_weights, _W.T)
expect_error(ValueError, _layer.load_linear_weights, _W.ravel())
expect_error(ValueError, _layer.load_linear_weights, np.full((12, 20), np.nan))
expect_error(ValueError, _layer.load_linear_weights, _W, np.zeros(11))
expect_error(ValueError, _layer.prune_weights, 1.5)
expect_error(TypeError, _layer.prune_weights, "0.5")
_x = np.random.default_rng(1).normal(size=(5, 20)).astype(np.float32)
expect_error(ValueError, _layer.forward_sparse_optimized, np.ones((5, 19)))
expect_error(ValueError, _layer.forward_dense, np.ones((2, 3, 20)))
expect_error(ValueError, _layer.forward_sparse_naive, np.array([np.nan] * 20))
expect_error(ValueError, SparseLinear(20, 12).forward_dense, _x)  # no weights loaded yet
_fresh = SparseLinear(20, 12)
_fresh.load_linear_weights(_W)
expect_error(ValueError, _fresh.forward_sparse_optimized, _x)  # before prune_weights
expect_error(ValueError, _layer.benchmark_speedup, batch_size=0)
expect_error(TypeError, _layer.benchmark_speedup, iterations=1.5)
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "test-SparseLinear-forward", "locked": true, "points": 4, "schema_version": 3, "solution": false}
_rng = np.random.default_rng(42)  # each graded cell builds its own inputs
_W = _rng.normal(0, 0.1, size=(12, 20)).astype(np.float32)
_b = _rng.normal(0, 0.01, size=12).astype(np.float32)
_layer = SparseLinear(20, 12)
_layer.load_linear_weights(_W, _b)
_x = _rng.normal(size=(5, 20)).astype(np.float32)
_yd = _layer.forward_dense(_x)
assert _yd.shape == (5, 12), f"forward_dense of (5, 20): expected shape (5, 12), got {_yd.shape}"
assert np.allclose(_yd, _x @ _W.T + _b, atol=1e-5), "forward_dense before pruning is x @ W.T + b"
_layer.prune_weights(0.8)
_want = _x.astype(np.float64) @ (_W * _layer.mask).T.astype(np.float64) + _b
for _name in ("forward_dense", "forward_sparse_naive", "forward_sparse_optimized"):
    _y = getattr(_layer, _name)(_x)
    assert isinstance(_y, np.ndarray) and _y.shape == (5, 12), f"{_name}: expected shape (5, 12), got {getattr(_y, 'shape', None)}"
    assert np.allclose(_y, _want, atol=1e-5), f"{_name} at 80% sparsity: max error {np.abs(_y - _want).max():.2e}"
_y1 = _layer.forward_sparse_optimized(_x[0])
assert _y1.shape == (12,) and np.allclose(_y1, _want[0], atol=1e-5), "a single input vector (20,) gives (12,)"
### BEGIN HIDDEN TESTS
assert _layer.forward_sparse_optimized(_x[:1]).shape == (1, 12), "a batch of one keeps its batch axis"
assert _layer.forward_sparse_optimized(_x).dtype == np.float32, "float32 output"
# the optimized forward must use the CSR weights, not the dense ones
_saved = _layer.linear_weights
_layer.linear_weights = np.full_like(_saved, 123.0)
_layer.original_weights, _orig = np.full_like(_saved, 321.0), _layer.original_weights
assert np.allclose(_layer.forward_sparse_optimized(_x), _want, atol=1e-5), "forward_sparse_optimized must compute with sparse_weights only"
_layer.linear_weights, _layer.original_weights = _saved, _orig
_layer.sparse_weights = CSRMatrix.from_dense(np.zeros((12, 20)))
assert np.allclose(_layer.forward_sparse_optimized(_x), np.broadcast_to(_b, (5, 12)), atol=1e-6), \
    "forward_sparse_optimized must compute with sparse_weights (zero CSR weights give just the bias)"
_layer.prune_weights(0.8)
_big = SparseLinear(300, 200)
_Wb = _rng.normal(size=(200, 300)).astype(np.float32)
_big.load_linear_weights(_Wb, np.ones(200))
for _s in (0.0, 0.9, 1.0):
    _big.prune_weights(_s)
    _xb = _rng.normal(size=(64, 300)).astype(np.float32)
    _ref = _xb.astype(np.float64) @ (_Wb * _big.mask).T.astype(np.float64) + 1.0
    for _name in ("forward_dense", "forward_sparse_naive", "forward_sparse_optimized"):
        _err = np.abs(getattr(_big, _name)(_xb) - _ref).max()
        assert _err < 1e-3, f"{_name} on 300 -> 200 at sparsity {_s}: max error {_err:.2e}"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "test-SparseLinear-benchmark", "locked": true, "points": 3, "schema_version": 3, "solution": false}
_rng = np.random.default_rng(42)  # each graded cell builds its own inputs
_W = _rng.normal(0, 0.1, size=(12, 20)).astype(np.float32)
_b = _rng.normal(0, 0.01, size=12).astype(np.float32)
_layer = SparseLinear(64, 48)
_layer.load_linear_weights(_rng.normal(size=(48, 64)))
_layer.prune_weights(0.9)
_res = _layer.benchmark_speedup(batch_size=8, iterations=5)
_keys = {"dense_time_ms", "sparse_time_ms", "dense_ops", "sparse_ops", "theoretical_speedup", "actual_speedup", "sparsity", "efficiency"}
assert isinstance(_res, dict) and set(_res) == _keys, f"keys: expected {sorted(_keys)}, got {sorted(_res) if isinstance(_res, dict) else _res}"
assert _res["dense_time_ms"] > 0 and _res["sparse_time_ms"] > 0, f"times must be positive, got {_res['dense_time_ms']}, {_res['sparse_time_ms']}"
assert _res["dense_ops"] == 64 * 48 and _res["sparse_ops"] == _layer.sparse_weights.nnz, \
    f"ops: expected {64 * 48} and {_layer.sparse_weights.nnz}, got {_res['dense_ops']} and {_res['sparse_ops']}"
assert abs(_res["theoretical_speedup"] - _res["dense_ops"] / _res["sparse_ops"]) < 1e-9, "theoretical_speedup = dense_ops / sparse_ops"
assert abs(_res["actual_speedup"] - _res["dense_time_ms"] / _res["sparse_time_ms"]) < 1e-9, "actual_speedup = dense time / sparse time"
assert abs(_res["efficiency"] - _res["actual_speedup"] / _res["theoretical_speedup"]) < 1e-9, "efficiency = actual / theoretical"
_want = 1 - np.count_nonzero(_layer.mask) / _layer.mask.size
assert abs(_res["sparsity"] - _want) < 1e-12, f"sparsity: expected {_want}, got {_res['sparsity']}"
### BEGIN HIDDEN TESTS
# the times are measured: both forwards really run, at least `iterations` times each
_calls = {"dense": 0, "sparse": 0}
_fd, _fs = _layer.forward_dense, _layer.forward_sparse_optimized
def _count_dense(x):
    _calls["dense"] += 1
    return _fd(x)
def _count_sparse(x):
    _calls["sparse"] += 1
    return _fs(x)
_layer.forward_dense, _layer.forward_sparse_optimized = _count_dense, _count_sparse
_layer.benchmark_speedup(batch_size=3, iterations=7)
assert _calls["dense"] >= 7 and _calls["sparse"] >= 7, f"each forward must run at least `iterations` times, counted {_calls}"
del _layer.forward_dense, _layer.forward_sparse_optimized
_z = SparseLinear(5, 4)
_z.load_linear_weights(np.ones((4, 5)))
_z.prune_weights(1.0)
_r = _z.benchmark_speedup(batch_size=2, iterations=2)
assert _r["sparse_ops"] == 0 and _r["theoretical_speedup"] == 20.0, f"fully pruned: sparse_ops 0, theoretical 20 / max(0, 1) = 20, got {_r}"
### END HIDDEN TESTS

# %% [markdown]
# ### The layer at work
#
# A 1536 -> 1536 layer pruned to 90% and 95%, timed by its own `benchmark_speedup` for a
# single input and for a batch of 32 (few iterations, to keep the notebook quick), with the
# bytes of its CSR weights beside the dense ones. Compare the pattern with the sweep above.

# %%
_layer = SparseLinear(1536, 1536)
_layer.load_linear_weights(np.random.default_rng(1).standard_normal((1536, 1536)) * 0.02)
print(f"{'sparsity':>8} {'batch':>5} {'dense ms':>9} {'sparse ms':>9} {'theory':>7} {'actual':>7} {'efficiency':>10} {'KB CSR':>8} {'KB dense':>8}")
for _s in (0.9, 0.95):
    _layer.prune_weights(_s)
    for _bs in (1, 32):
        with threadpool_limits(1, user_api="blas"):
            _r = _layer.benchmark_speedup(batch_size=_bs, iterations=10)
        print(f"{_r['sparsity']:8.2f} {_bs:5d} {_r['dense_time_ms']:9.3f} {_r['sparse_time_ms']:9.3f} "
              f"{_r['theoretical_speedup']:7.1f} {_r['actual_speedup']:7.2f} {_r['efficiency']:10.3f} "
              f"{_layer.sparse_weights.nbytes / 1024:8.0f} {_layer.sparse_weights.dense_nbytes / 1024:8.0f}")

# %% [markdown]
# ## Summary
#
# * CSR stores a matrix as `data`, `indices` and `indptr`; an empty row is two equal row
#   pointers, and the canonical form (sorted columns) makes the representation unique.
# * With float32 values and int32 indices every stored entry costs 8 bytes, so CSR needs
#   more than half of the weights pruned (break-even $s^* = \tfrac12 + \tfrac{m+1}{2mn}$)
#   before it saves any memory, and keeps about twice the density in bytes above that.
# * A fast CSR product in numpy is three vectorised passes (gather, multiply, segmented
#   sum with `np.add.reduceat` on the non-empty rows) into a reused buffer, over row blocks
#   that keep the buffer in cache. No Python loop per row or per entry.
# * Speedup is measured, never computed from operation counts, and it falls short of
#   $1/(1-s)$: a matrix-vector product is bound by data movement, and a numpy CSR product
#   moves and handles several times more bytes per kept weight than BLAS does per dense
#   weight. With a batch, a BLAS GEMM reuses every weight across the batch and our CSR
#   product does not, which is why the batch-32 speedups are so much lower than the batch-1
#   ones. Module 06 writes CSR kernels for a GPU, where the same roofline argument decides.

# %% [markdown]
# ## 6. Questions on your results
#
# Answer from what **your** notebook printed; the tests compare with your own run.
#
# **Q1 (number).** In the sweep table, what is the measured speedup of CSR over dense at
# sparsity 0.95 and batch 1? Store it in `q1_speedup_95_b1` (tolerance ±0.02).
#
# **Q2 (choice).** On your machine, at batch 32, at which of the measured sparsities does CSR
# beat dense? Store the letter in `q2_choice`: `"A"` at none of them; `"B"` only at 0.98 and
# above; `"C"` at 0.95 or below too.

# %% nbgrader={"grade": false, "grade_id": "answers-results", "locked": false, "schema_version": 3, "solution": true}
q1_speedup_95_b1 = None  # a number
q2_choice = None         # "A", "B" or "C"
### BEGIN SOLUTION
q1_speedup_95_b1 = next(r["speedup"] for r in SWEEP if r["sparsity"] == 0.95 and r["batch"] == 1)
_wins = [r["sparsity"] for r in SWEEP if r["batch"] == 32 and r["speedup"] > 1]
q2_choice = "A" if not _wins else ("B" if min(_wins) >= 0.98 else "C")
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-q1-results", "locked": true, "points": 2, "schema_version": 3, "solution": false}
_want = next(r["speedup"] for r in SWEEP if r["sparsity"] == 0.95 and r["batch"] == 1)
assert isinstance(q1_speedup_95_b1, (int, float, np.number)) and not isinstance(q1_speedup_95_b1, bool), \
    f"q1_speedup_95_b1 must be a number, got {q1_speedup_95_b1!r}"
assert abs(float(q1_speedup_95_b1) - _want) <= 0.02, \
    f"q1: {q1_speedup_95_b1} is not the speedup of your sweep row (0.95, batch 1) (tolerance ±0.02)"
print("Q1 matches your table")

# %% nbgrader={"grade": true, "grade_id": "test-q2-results", "locked": true, "points": 2, "schema_version": 3, "solution": false}
_wins = [r["sparsity"] for r in SWEEP if r["batch"] == 32 and r["speedup"] > 1]
_want = "A" if not _wins else ("B" if min(_wins) >= 0.98 else "C")
assert q2_choice in ("A", "B", "C"), f"q2_choice must be 'A', 'B' or 'C', got {q2_choice!r}"
assert q2_choice == _want, f"q2: {q2_choice!r} does not fit the 'batch 32: CSR faster than dense at ...' line of your run"
print("Q2 fits your run")

# %% [markdown] nbgrader={"grade": true, "grade_id": "q3-roofline", "locked": false, "points": 4, "schema_version": 3, "solution": true}
# **Q3 (written, 4 points).** At batch 1 your measured speedups lie below $1/(1-s)$. Using the
# table that puts them beside the two traffic models, say which model your measurements
# follow more closely, and give two reasons from this module why a numpy CSR product cannot
# reach $1/(1-s)$. Then explain in two sentences why the batch-32 speedups are lower still,
# quoting the two growth factors (dense t32/t1 and CSR t32/t1) of one row.
#
# ### BEGIN SOLUTION
# *Reference answer (instructor only).* The measurements sit near or below the 4/24 model:
# CSR reads 8 bytes per stored entry against 4 per dense weight and then runs three separate
# passes over a buffer (16 more bytes handled per entry) with several instructions per entry
# and a scattered read of x, while BLAS streams the dense weights with SIMD. At batch 32 the
# dense GEMM reuses every weight for all 32 inputs, so its time grows by far less than 32x,
# while the CSR work grows in proportion to nnz x batch (CSR t32/t1 close to the batch size).
#
# *Rubric (4 points):* 1 point for naming the closer model from their own table; 1 point per
# valid reason (bytes per entry, separate passes / instructions per entry, irregular access,
# Python overhead), max 2; 1 point for the batch argument with their growth factors.
# ### END SOLUTION

# %% [markdown] nbgrader={"grade": true, "grade_id": "q4-relative-indices", "locked": false, "points": 3, "schema_version": 3, "solution": true}
# **Q4 (written, 3 points).** A fully connected layer of 1000 × 1000 weights is pruned to 90%.
# Compute its CSR bytes with int32 column indices, and with Deep Compression's 5-bit
# relative indices (ignore the filler zeros and assume the bits pack tightly), both with
# float32 values and int32 row pointers, as fractions of the dense float32 bytes. What
# changes in the break-even sparsity, and what do the filler zeros cost when gaps are long?
#
# ### BEGIN SOLUTION
# *Reference answer.* nnz = 100 000. int32: 100 000 x 8 + 1001 x 4 = 804 004 bytes, 20.1% of
# 4 000 000. 5-bit: 100 000 x (4 + 0.625) + 4 004 = 466 504 bytes, 11.7%. Break-even:
# (4 + 0.625) (1 - s) n^2 + 4(m + 1) = 4 n^2 gives s* = 1 - 4/4.625 + ... ~ 0.135 instead of
# ~ 0.5: relative indices make CSR pay at far lower sparsity. A gap longer than 31 positions
# needs a filler entry (a stored zero with its 5-bit offset), which adds values and indices;
# at 90% sparsity the mean gap is 10, so fillers are rare.
#
# *Rubric (3 points):* 1 point for both byte counts (within rounding); 1 point for the
# break-even shift; 1 point for the filler cost argument.
# ### END SOLUTION

