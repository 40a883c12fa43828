"""tinytorch.kernels (module 06): OpenCL SpMV/SpMM kernels checked against numpy.

Runs on whatever OpenCL device the machine has (PoCL's CPU device in CI). Results are
compared with a float64 product, allowing the float32 rounding error of any summation
order, which grows with the row length. No test asserts on absolute times.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinytorch.kernels as tk
from tinytorch.kernels import (
    NO_DEVICE_MESSAGE, SPMM_KERNELS, SPMV_KERNELS, KernelBuildError, NoOpenCLDeviceError,
    OpenCLSparseLinear, SparseKernels, achieved, bias_relu, csr_reference, csr_to_ell,
    default_queue, find_device, get_kernel, random_csr, sparse_linear_forward, spmm_traffic,
    spmv_traffic, time_events, vector_work_group_size,
)
from tinytorch.sparse import CSRMatrix, SparseLinear

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def kernels():
    # No skip: without an OpenCL device this fails with NoOpenCLDeviceError's fix sentence.
    return SparseKernels()


def assert_matches(got, A, X, label):
    """got == A @ X within the rounding bound (it grows with each row's length)."""
    ref, bound = csr_reference(A, X)
    got = np.asarray(got)
    assert got.dtype == np.float32, f"{label}: expected float32, got {got.dtype}"
    assert got.shape == ref.shape, f"{label}: expected shape {ref.shape}, got {got.shape}"
    err = np.abs(got - ref)
    bad = np.argwhere(~(err <= bound))
    assert bad.size == 0, (f"{label}: {len(bad)} wrong outputs, first at {tuple(bad[0])}: "
                           f"expected {ref[tuple(bad[0])]}, got {got[tuple(bad[0])]}, bound {bound[tuple(bad[0])]}")


def special_matrices():
    """Matrices with empty rows, one very long row, and degenerate shapes."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(0, 30, size=500)
    lengths[rng.random(500) < 0.4] = 0           # 40% empty rows
    lengths[123] = 20000                          # one full, very long row
    return {
        "empty rows + one 20000-long row": random_csr(500, 20000, row_lengths=lengths, seed=1),
        "only the long row": random_csr(3, 5000, row_lengths=[0, 5000, 0], seed=2),
        "all empty": random_csr(17, 9, density=0.0, seed=3),
        "1 x 1": CSRMatrix(np.array([2.5], np.float32), np.array([0], np.int32), np.array([0, 1], np.int32), (1, 1)),
        "one row": random_csr(1, 300, density=0.5, seed=4),
        "one column": random_csr(700, 1, density=0.5, seed=5),
        "equal rows (ELL best case)": random_csr(333, 64, row_lengths=16, seed=6),
    }


def test_csr_reference_agrees_with_dense_numpy():
    A = random_csr(60, 40, density=0.3, seed=7)
    X = np.random.default_rng(8).standard_normal((40, 5))
    ref, bound = csr_reference(A, X)
    np.testing.assert_allclose(ref, A.to_dense().astype(np.float64) @ X, rtol=1e-12, atol=1e-12)
    lengths = np.diff(A.indptr)
    assert (bound > 0).all()
    # the bound grows with the row length: (len + 2) * 2^-23 * sum |a x|
    mag = np.abs(A.to_dense().astype(np.float64)) @ np.abs(X)
    np.testing.assert_allclose(bound, (lengths[:, None] + 2) * 2.0 ** -23 * mag, rtol=1e-9,
                               atol=2 * np.finfo(np.float32).tiny)


@pytest.mark.parametrize("kernel", SPMV_KERNELS + ("auto",))
def test_spmv_matches_numpy_on_special_matrices(kernels, kernel):
    for label, A in special_matrices().items():
        x = np.random.default_rng(A.shape[0]).standard_normal(A.shape[1]).astype(np.float32)
        assert_matches(kernels.spmv(A, x, kernel=kernel), A, x, f"spmv {kernel} on {label}")


@pytest.mark.parametrize("kernel", SPMM_KERNELS + ("auto",))
@pytest.mark.parametrize("batch", [1, 3, 32, 33, 64])
def test_spmm_matches_numpy(kernels, kernel, batch):
    for label, A in special_matrices().items():
        if kernel == "naive" and A.nnz > 10000:
            continue  # the one-work-item-per-output kernel is slow on the long row
        X = np.random.default_rng(batch).standard_normal((A.shape[1], batch)).astype(np.float32)
        assert_matches(kernels.spmm(A, X, kernel=kernel), A, X, f"spmm {kernel} batch {batch} on {label}")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n_rows=st.integers(1, 300), n_cols=st.integers(1, 300), density=st.floats(0.0, 1.0),
       batch=st.integers(1, 40), seed=st.integers(0, 2**16))
def test_random_csr_property(kernels, n_rows, n_cols, density, batch, seed):
    A = random_csr(n_rows, n_cols, density=density, seed=seed)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n_cols).astype(np.float32)
    for kernel in SPMV_KERNELS:
        assert_matches(kernels.spmv(A, x, kernel=kernel), A, x, f"spmv {kernel}")
    X = rng.standard_normal((n_cols, batch)).astype(np.float32)
    assert_matches(kernels.spmm(A, X), A, X, "spmm auto")


@pytest.mark.parametrize("kernel", ["ilp", "simd"])
def test_unrolled_kernels_on_every_tail_length_and_ragged_row_counts(kernels, kernel):
    # rows of 0..40 entries cover every remainder of the 8-wide (ilp) and 16-wide (simd)
    # steps, empty rows included; row counts around the work-group size leave ragged groups
    for n_rows in (1, 41, 63, 64, 65, 130):
        lengths = np.arange(n_rows) % 41
        A = random_csr(n_rows, 300, row_lengths=lengths, seed=n_rows)
        x = np.random.default_rng(n_rows).standard_normal(300).astype(np.float32)
        assert_matches(kernels.spmv(A, x, kernel=kernel), A, x, f"spmv {kernel}, {n_rows} rows of 0..40")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n_rows=st.integers(1, 200), n_cols=st.integers(1, 2000), max_len=st.integers(0, 100),
       empty=st.floats(0.0, 1.0), seed=st.integers(0, 2**16))
def test_ilp_kernel_on_random_shapes_with_empty_rows(kernels, n_rows, n_cols, max_len, empty, seed):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, min(max_len, n_cols) + 1, n_rows)
    lengths[rng.random(n_rows) < empty] = 0
    A = random_csr(n_rows, n_cols, row_lengths=lengths, seed=seed)
    x = rng.standard_normal(n_cols).astype(np.float32)
    assert_matches(kernels.spmv(A, x, kernel="ilp"), A, x, f"spmv ilp on {n_rows}x{n_cols}")


def test_ilp_kernel_keeps_the_bounds_guard(kernels):
    # y gets 64 guard floats after n_rows: the kernel must write exactly the first n_rows
    import pyopencl as cl
    A = random_csr(37, 50, density=0.3, seed=11)
    dA = kernels.upload(A)
    x = np.ones(50, np.float32)
    y = np.full(37 + 64, -7777.0, np.float32)
    x_buf = tk.to_device(kernels.context, x)
    y_buf = cl.Buffer(kernels.context, cl.mem_flags.READ_WRITE | cl.mem_flags.COPY_HOST_PTR, hostbuf=y)
    kernels.launch_spmv(dA, x_buf, y_buf, "ilp").wait()
    cl.enqueue_copy(kernels.queue, y, y_buf)
    assert (y[37:] == -7777.0).all(), "spmv ilp wrote past the last row"
    assert_matches(y[:37], A, x, "spmv ilp")


def test_against_roof_alternates_and_takes_median_ratios(kernels):
    calls = []

    def fake(gbs):
        def measure():
            calls.append(gbs)
            return {"GB/s": gbs, "median": 1e-3, "bytes": 1}
        return measure
    out = kernels.against_roof({"a": fake(1.0), "b": fake(2.0)}, rounds=3, repeat=1)
    assert calls == [1.0, 2.0] * 3
    assert set(out) == {"a", "b"} and len(out["a"]["ratios"]) == 3
    for name in out:
        assert out[name]["of roof"] == pytest.approx(float(np.median(out[name]["ratios"])))
        assert out[name]["roof GB/s"] > 0
        assert all(r > 0 for r in out[name]["ratios"])


def test_upload_once_and_reuse(kernels):
    A = random_csr(200, 150, density=0.2, seed=9)
    dA = kernels.upload(A)
    assert kernels.upload(dA) is dA
    x = np.ones(150, np.float32)
    np.testing.assert_array_equal(kernels.spmv(dA, x, kernel="scalar"), kernels.spmv(A, x, kernel="scalar"))
    width, n_padded = dA.ell()[:2]
    assert width == np.diff(A.indptr).max() and n_padded == 208


def test_auto_choice_depends_on_device(kernels):
    dA = kernels.upload(random_csr(64, 64, density=0.5, seed=10))
    choice = kernels.choose_spmv(dA)
    assert choice in SPMV_KERNELS
    if kernels.is_cpu:
        assert choice == "ilp"


def test_scipy_like_input_is_accepted(kernels):
    import scipy.sparse  # a dev requirement (reference only)
    S = scipy.sparse.random(50, 40, density=0.3, format="csr", dtype=np.float32, random_state=0)
    S.sort_indices()
    x = np.arange(40, dtype=np.float32)
    np.testing.assert_allclose(kernels.spmv(S, x), S @ x, rtol=1e-5, atol=1e-4)


def test_inputs_are_validated(kernels):
    A = random_csr(10, 8, density=0.5, seed=11)
    with pytest.raises(ValueError, match="x must have shape"):
        kernels.spmv(A, np.ones(9))
    with pytest.raises(ValueError, match="NaN"):
        kernels.spmv(A, np.full(8, np.nan))
    with pytest.raises(TypeError, match="real numbers"):
        kernels.spmv(A, np.array(["a"] * 8))
    with pytest.raises(ValueError, match="X must have shape"):
        kernels.spmm(A, np.ones(8))
    with pytest.raises(ValueError, match="kernel must be one of"):
        kernels.spmv(A, np.ones(8), kernel="fast")
    with pytest.raises(ValueError, match="kernel must be one of"):
        kernels.spmm(A, np.ones((8, 2)), kernel="simd")
    with pytest.raises(TypeError, match="A must be a CSRMatrix"):
        kernels.spmv(np.eye(8), np.ones(8))
    with pytest.raises(ValueError, match="indices must lie"):
        kernels.spmv(type("Bad", (), {"data": np.ones(1), "indices": np.array([9]),
                                      "indptr": np.array([0, 1]), "shape": (1, 8)})(), np.ones(8))
    # float64 and integer inputs are converted to float32
    np.testing.assert_allclose(kernels.spmv(A, np.arange(8)), A.to_dense() @ np.arange(8, dtype=np.float32),
                               rtol=1e-5, atol=1e-5)


def test_csr_to_ell_represents_the_same_matrix():
    A = random_csr(37, 50, density=0.2, seed=12)
    data, indices = csr_to_ell(A)
    assert data.dtype == np.float32 and indices.dtype == np.int32
    assert data.shape == indices.shape == (np.diff(A.indptr).max(), 48)
    dense = np.zeros((48, 50), np.float32)
    np.add.at(dense, (np.broadcast_to(np.arange(48), data.shape), indices), data)
    np.testing.assert_array_equal(dense[:37], A.to_dense())
    assert not dense[37:].any()
    with pytest.raises(TypeError):
        csr_to_ell(np.eye(3))


@settings(max_examples=200, deadline=None)
@given(pref=st.integers(1, 128), max_wg=st.integers(1, 2048), mean=st.floats(0, 1e6))
def test_vector_work_group_size_properties(pref, max_wg, mean):
    size = vector_work_group_size(pref, max_wg, mean)
    assert size & (size - 1) == 0, "a power of two (the tree reduction needs it)"
    assert 1 <= size <= max_wg
    assert size >= min(pref, 1 << (max_wg.bit_length() - 1)), "at least the preferred multiple, if allowed"
    assert vector_work_group_size(pref, max_wg, mean * 2 + 100) >= size, "monotone in the row length"


def test_vector_work_group_size_examples():
    assert vector_work_group_size(32, 1024, 410.0) == 32      # a warp per row (Bell & Garland)
    assert vector_work_group_size(8, 4096, 410.0) == 16       # PoCL CPU device
    assert vector_work_group_size(64, 256, 1e6) == 256        # capped
    with pytest.raises(ValueError):
        vector_work_group_size(0, 64, 1.0)
    with pytest.raises(TypeError):
        vector_work_group_size(32.0, 64, 1.0)


class FakeEvent:
    def __init__(self, ns, log):
        self.profile = type("P", (), {"start": 10, "end": 10 + ns})()
        self.log = log

    def wait(self):
        self.log.append("wait")


def test_time_events_drops_warmup_and_takes_median():
    log, durations = [], iter([1000, 1000, 3, 1, 2, 500, 2])

    def launch():
        return FakeEvent(next(durations), log)
    r = time_events(launch, warmup=2, repeat=5)
    assert log.count("wait") == 7
    assert r["times"] == pytest.approx([3e-9, 1e-9, 2e-9, 500e-9, 2e-9])
    assert r["median"] == pytest.approx(2e-9) and r["min"] == pytest.approx(1e-9)
    with pytest.raises(ValueError):
        time_events(launch, repeat=0)


def test_traffic_model():
    assert spmv_traffic(4, 6, 5) == {"bytes": 100, "flops": 10}
    assert spmm_traffic(4, 6, 5, 32) == {"bytes": 1340, "flops": 320}
    assert spmm_traffic(7, 9, 11, 1) == spmv_traffic(7, 9, 11)
    assert achieved({"bytes": 3e9, "flops": 1e9}, 2.0) == {"GB/s": 1.5, "GFLOP/s": 0.5}
    with pytest.raises(ValueError):
        achieved({"bytes": 1, "flops": 1}, 0)


def test_timing_helpers_report_positive_rates(kernels):
    A = random_csr(512, 512, density=0.05, seed=13)
    for kernel in SPMV_KERNELS:
        r = kernels.time_spmv(A, kernel, warmup=1, repeat=3)
        assert r["bytes"] == spmv_traffic(512, 512, A.nnz)["bytes"]
        assert len(r["times"]) == 3 and r["median"] > 0 and np.isfinite(r["GB/s"]) and r["GB/s"] > 0
    r = kernels.time_spmm(A, 32, "rowvec", warmup=1, repeat=3)
    assert r["flops"] == 2 * A.nnz * 32 and r["GFLOP/s"] > 0
    assert 0 < kernels.copy_bandwidth(1 << 20, warmup=1, repeat=3) < 1e5
    assert 0 < kernels.peak_gflops(n_iter=64, warmup=1, repeat=2) < 1e6


def test_sparse_linear_forward_matches_the_layer(kernels):
    rng = np.random.default_rng(14)
    layer = SparseLinear(96, 40)
    layer.load_linear_weights(rng.standard_normal((40, 96)).astype(np.float32),
                              rng.standard_normal(40).astype(np.float32))
    layer.prune_weights(0.9)
    x = rng.standard_normal((33, 96)).astype(np.float32)
    want = layer.forward_sparse_optimized(x)
    np.testing.assert_allclose(sparse_linear_forward(layer, x, kernels), want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(sparse_linear_forward(layer, x[5], kernels), want[5], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(OpenCLSparseLinear(layer, kernels)(x), layer.forward_dense(x), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError):
        sparse_linear_forward(layer, np.zeros((2, 95)), kernels)
    with pytest.raises(ValueError):
        sparse_linear_forward(SparseLinear(4, 3), np.zeros((1, 4)), kernels)


def test_bias_relu_kernel():
    x = np.random.default_rng(15).standard_normal((37, 19)).astype(np.float32)
    b = np.random.default_rng(16).standard_normal(19).astype(np.float32)
    np.testing.assert_array_equal(bias_relu(x, b), np.maximum(x + b, 0))


def test_build_error_carries_the_log_and_stderr_stays_clean(capfd):
    context, _ = default_queue()
    with pytest.raises(KernelBuildError, match="undeclared identifier"):
        get_kernel(context, "__kernel void broken(__global float *y) { y[0] = not_declared; }", "broken")
    with pytest.raises(KernelBuildError, match="no kernel named"):
        get_kernel(context, "__kernel void k1(__global float *y) { y[0] = 1.0f; }", "k2")
    # a kernel that compiles with a warning: the compiler's "1 warning generated." stays off fd 2
    get_kernel(context, "__kernel void warns(__global int *y) { int q = 2.5; y[0] = q; }", "warns")
    captured = capfd.readouterr()
    assert captured.err == "", f"compiling wrote to stderr (a notebook cell would score 0): {captured.err!r}"


def test_no_device_gives_one_sentence_with_the_fix(monkeypatch):
    def no_platforms():
        raise tk.cl.LogicError("clGetPlatformIDs failed: PLATFORM_NOT_FOUND_KHR")
    monkeypatch.setattr(tk.cl, "get_platforms", no_platforms)
    monkeypatch.setattr(tk, "_DEFAULT", {})
    assert tk.list_devices() == []
    with pytest.raises(NoOpenCLDeviceError) as info:
        SparseKernels()
    assert str(info.value) == NO_DEVICE_MESSAGE
    assert "pocl-opencl-icd" in NO_DEVICE_MESSAGE and NO_DEVICE_MESSAGE.count(".") == 1
    assert info.value._render_traceback_() == [NO_DEVICE_MESSAGE]  # what Jupyter shows
    with pytest.raises(NoOpenCLDeviceError):
        find_device()


def test_no_device_in_a_fresh_process(tmp_path):
    """With no OpenCL driver registered (an empty vendors folder) the package still imports
    and says what to install."""
    code = textwrap.dedent("""
        import tinytorch.kernels as tk
        print("devices:", tk.list_devices())
        try:
            tk.SparseKernels()
        except tk.NoOpenCLDeviceError as exc:
            print("error:", exc)
    """)
    env = {**os.environ, "OCL_ICD_VENDORS": str(tmp_path), "PYTHONPATH": REPO}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "devices: []" in out.stdout
    assert f"error: {NO_DEVICE_MESSAGE}" in out.stdout
