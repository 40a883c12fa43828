"""Package tests for tinytorch.compress (module 05): ModelCompressor's statistics, the quality
proxy, sensitivity scan, budgeted allocation, the compact file format and the size report."""
import itertools
import math
import os
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinytorch.compress import (ModelCompressor, allocate_sparsities, deployment_table, layer_type, load_compressed,
                                profile_memory, run_layers, save_compressed, sensitivity_scan, size_report,
                                sparse_layers, validate_accuracy)
from tinytorch.data import load_digits_split
from tinytorch.nn import evaluate, make_cnn, make_mlp, predict, train
from tinytorch.prune import magnitude_mask
from tinytorch.sparse import CSRMatrix

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
fractions = st.floats(0.0, 1.0, allow_nan=False)
shapes = st.one_of(st.tuples(st.integers(1, 30)), st.tuples(st.integers(1, 20), st.integers(1, 300)),
                   st.tuples(st.integers(1, 5), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)))


def toy_weights(seed=0):
    rng = np.random.default_rng(seed)
    return {"conv.weight": rng.normal(0, 0.1, (6, 3, 3, 3)).astype(np.float32),
            "conv.bias": rng.normal(0, 0.1, 6).astype(np.float32),
            "fc.weight": rng.normal(0, 0.1, (10, 54)).astype(np.float32),
            "fc.bias": np.zeros(10, dtype=np.float32)}


@pytest.fixture(scope="module")
def digits():
    return load_digits_split()


@pytest.fixture(scope="module")
def trained_mlp(digits):
    model = make_mlp(seed=0)
    train(model, digits.X_train, digits.y_train, epochs=8, lr=1e-2, seed=0)
    return model


# ---------------------------------------------------------------- ModelCompressor
def test_analysis_types_counts_and_recommendations():
    w = toy_weights()
    mc = ModelCompressor()
    assert (mc.original_model, mc.compressed_model, mc.compression_stats, mc.layer_sensitivities) == ({}, {}, {}, {})
    analysis = mc.analyze_model_for_compression(w)
    assert {n: analysis["layers"][n]["type"] for n in w} == {
        "conv.weight": "Conv2D", "conv.bias": "Other", "fc.weight": "Linear", "fc.bias": "Other"}
    assert analysis["total_params"] == 162 + 6 + 540 + 10
    assert analysis["compressible_params"] == 702
    assert analysis["compression_potential"] == pytest.approx(702 / 718)
    assert analysis["recommendations"] == {n: ModelCompressor.RECOMMENDED[layer_type(v)] for n, v in w.items()}
    for name, info in analysis["layers"].items():
        mean = np.abs(w[name]).mean()
        assert info["natural_sparsity"] == pytest.approx(100 * np.mean(np.abs(w[name]) <= 0.1 * mean))
        assert info["shape"] == w[name].shape and info["parameters"] == w[name].size
    w["fc.weight"][0, 0] = 99.0
    assert mc.original_model["fc.weight"][0, 0] != 99.0  # copies, not views


@SETTINGS
@given(seed=st.integers(0, 2**16), s_conv=fractions, s_fc=fractions)
def test_compress_model_counts_are_exact(seed, s_conv, s_fc):
    w = toy_weights(seed)
    mc = ModelCompressor()
    out = mc.compress_model(w, {"conv.weight": s_conv, "fc.weight": s_fc})
    assert int(np.sum(out["conv.weight"]["mask"] == 0)) == round(s_conv * 162)
    assert int(np.sum(out["fc.weight"]["mask"] == 0)) == round(s_fc * 540)
    np.testing.assert_array_equal(out["conv.bias"]["weights"], w["conv.bias"])
    remaining = 718 - round(s_conv * 162) - round(s_fc * 540)
    st_ = mc.compression_stats
    assert st_["total_original_params"] == 718 and st_["total_remaining_params"] == remaining
    assert st_["overall_sparsity"] == pytest.approx(1 - remaining / 718)
    assert st_["overall_compression"] == (pytest.approx(718 / remaining) if remaining else math.inf)
    assert st_["layer_sparsities"] == {"conv.weight": s_conv, "conv.bias": 0.0, "fc.weight": s_fc, "fc.bias": 0.0}
    for name, entry in out.items():
        np.testing.assert_array_equal(entry["weights"], w[name] * entry["mask"])
        assert entry["original_shape"] == w[name].shape


def test_compress_model_defaults_to_the_recommendations_on_a_real_cnn():
    state = make_cnn(seed=1).state_dict()
    mc = ModelCompressor()
    out = mc.compress_model(state)
    for name, w in state.items():
        expected = ModelCompressor.RECOMMENDED[layer_type(w)]
        assert int(np.sum(out[name]["mask"] == 0)) == round(expected * w.size)


@SETTINGS
@given(seed=st.integers(0, 2**16), s1=fractions, s2=fractions)
def test_quality_score_is_in_unit_interval_and_falls_with_sparsity(seed, s1, s2):
    lo, hi = min(s1, s2), max(s1, s2)
    w = toy_weights(seed)
    mc = ModelCompressor()
    q_lo = mc.validate_compression_quality(w, mc.compress_model(w, {"fc.weight": lo, "conv.weight": lo}))
    q_hi = mc.validate_compression_quality(w, mc.compress_model(w, {"fc.weight": hi, "conv.weight": hi}))
    for q in (q_lo, q_hi):
        assert 0.0 <= q["quality_score"] <= 1.0
        assert all(0.0 <= v["quality_score"] <= 1.0 for v in q["layer_quality"].values())
    assert q_hi["quality_score"] <= q_lo["quality_score"] + 1e-12
    # for masking, quality = 1 - sqrt(pruned energy / total energy) exactly
    fc = w["fc.weight"].astype(np.float64)
    kept = mc.compress_model(w, {"fc.weight": hi})["fc.weight"]["mask"]
    expected = 1 - math.sqrt(np.sum((fc * (1 - kept)) ** 2) / np.sum(fc ** 2))
    got = mc.validate_compression_quality({"fc.weight": w["fc.weight"]},
                                          {"fc.weight": w["fc.weight"] * kept})["layer_quality"]["fc.weight"]
    assert got["quality_score"] == pytest.approx(expected, abs=1e-9)
    assert got["norm_preservation"] == pytest.approx(math.sqrt(np.sum((fc * kept) ** 2) / np.sum(fc ** 2)), abs=1e-9)


def test_quality_overall_is_the_energy_weighted_error():
    w = {"a": np.array([[3.0, 4.0]], dtype=np.float32), "b": np.array([[0.0, 2.0]], dtype=np.float32)}
    q = ModelCompressor().validate_compression_quality(w, {"a": np.array([[0.0, 4.0]], dtype=np.float32),
                                                           "b": np.array([[0.0, 0.0]], dtype=np.float32)})
    assert q["overall_quality"]["relative_error"] == pytest.approx(math.sqrt((9 + 4) / (25 + 4)))
    assert q["quality_score"] == pytest.approx(1 - math.sqrt(13 / 29))
    assert q["overall_quality"]["worst_layer"] == "b" and q["layer_quality"]["b"]["quality_score"] == 0.0


# ---------------------------------------------------------------- accuracy, scan, allocation
def test_validate_accuracy_measures_and_restores(trained_mlp, digits):
    before = trained_mlp.state_dict()
    pruned = ModelCompressor().compress_model(before, {"0.weight": 0.9, "2.weight": 0.9, "4.weight": 0.9})
    res = validate_accuracy(trained_mlp, pruned, digits.X_test, digits.y_test)
    probe = make_mlp(seed=0)
    probe.load_state_dict({n: e["weights"] for n, e in pruned.items()})
    assert res["compressed_accuracy"] == pytest.approx(evaluate(probe, digits.X_test, digits.y_test))
    assert res["original_accuracy"] == pytest.approx(evaluate(trained_mlp, digits.X_test, digits.y_test))
    assert res["accuracy_drop"] == pytest.approx(res["original_accuracy"] - res["compressed_accuracy"])
    for k, v in trained_mlp.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_sensitivity_scan_matches_one_layer_pruning(trained_mlp, digits):
    X, y = digits.X_test[:200], digits.y_test[:200]
    before = trained_mlp.state_dict()
    scan = sensitivity_scan(trained_mlp, X, y, sparsities=(0.0, 0.8, 1.0))
    assert list(scan) == ["0.weight", "2.weight", "4.weight"]
    for name in scan:
        for s, acc in scan[name].items():
            probe = make_mlp(seed=0)
            probe.load_state_dict(before)
            probe.parameters()[name][...] *= magnitude_mask(before[name], s)
            assert acc == pytest.approx(evaluate(probe, X, y))
    assert scan["4.weight"][1.0] <= 0.2  # no output weights: the bias decides
    for k, v in trained_mlp.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


@st.composite
def scans(draw):
    n_layers = draw(st.integers(1, 4))
    grid = sorted(set(draw(st.lists(fractions, min_size=1, max_size=6))))
    sens, counts = {}, {}
    for i in range(n_layers):
        accs = draw(st.lists(st.floats(0.0, 1.0), min_size=len(grid), max_size=len(grid)))
        sens[f"l{i}"] = dict(zip(grid, accs))
        counts[f"l{i}"] = draw(st.integers(1, 500))
    return sens, counts


def kept_of(alloc, counts):
    return sum(counts[n] - round(alloc[n] * counts[n]) for n in counts)


@settings(max_examples=150, deadline=None)
@given(data=scans(), budget=st.integers(0, 2000))
def test_allocation_meets_the_budget_or_says_it_cannot(data, budget):
    sens, counts = data
    floor = sum(counts[n] - round(max(sens[n]) * counts[n]) for n in counts)
    if budget < floor:
        with pytest.raises(ValueError):
            allocate_sparsities(sens, counts, budget)
        return
    alloc = allocate_sparsities(sens, counts, budget)
    assert set(alloc) == set(sens)
    assert all(alloc[n] in sens[n] for n in alloc)  # one of the scanned sparsities
    assert kept_of(alloc, counts) <= budget


@settings(max_examples=100, deadline=None)
@given(data=scans(), b1=st.integers(0, 2000), b2=st.integers(0, 2000))
def test_a_looser_budget_never_prunes_more(data, b1, b2):
    sens, counts = data
    loose, tight = max(b1, b2), min(b1, b2)
    try:
        a_tight = allocate_sparsities(sens, counts, tight)
    except ValueError:
        return
    a_loose = allocate_sparsities(sens, counts, loose)
    assert all(a_loose[n] <= a_tight[n] for n in sens)


def test_greedy_allocation_matches_brute_force_on_a_convex_example():
    # diminishing returns on both layers: greedy is optimal; check against brute force
    grid = (0.0, 0.25, 0.5, 0.75, 1.0)
    sens = {"a": {s: 1.0 - 0.1 * s ** 2 for s in grid}, "b": {s: 1.0 - 0.6 * s ** 2 for s in grid}}
    counts = {"a": 400, "b": 100}
    for budget in (500, 400, 300, 200, 100, 50, 0):
        alloc = allocate_sparsities(sens, counts, budget)
        loss = sum(sens[n][0.0] - sens[n][alloc[n]] for n in sens)
        best = min(sum(sens[n][0.0] - sens[n][c[i]] for i, n in enumerate(sens))
                   for c in itertools.product(grid, repeat=2)
                   if kept_of(dict(zip(sens, c)), counts) <= budget)
        assert kept_of(alloc, counts) <= budget
        assert loss == pytest.approx(best)


# ---------------------------------------------------------------- the file format
@SETTINGS
@given(shape=shapes, sparsity=fractions, seed=st.integers(0, 2**16), dense_too=st.booleans())
def test_save_load_round_trip_is_exact(tmp_path, shape, sparsity, seed, dense_too):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=shape).astype(np.float32)
    mask = magnitude_mask(w, sparsity)
    weights = {"layer.weight": w * mask}
    if dense_too:
        weights["layer.bias"] = rng.normal(size=3).astype(np.float32)
    path = tmp_path / "model.npz"
    size = save_compressed(path, weights, {"layer.weight": mask})
    assert size == os.path.getsize(path)
    back_w, back_m = load_compressed(path)
    assert list(back_w) == list(weights)
    for k in weights:
        assert back_w[k].dtype == weights[k].dtype and back_w[k].shape == weights[k].shape
        np.testing.assert_array_equal(back_w[k], weights[k])
    np.testing.assert_array_equal(back_m["layer.weight"], mask)
    assert list(back_m) == ["layer.weight"]


def test_file_holds_no_pickle_and_is_written_at_the_exact_path(tmp_path):
    w = toy_weights()
    masks = {"fc.weight": magnitude_mask(w["fc.weight"], 0.9), "conv.weight": magnitude_mask(w["conv.weight"], 0.5)}
    path = tmp_path / "no_suffix"
    save_compressed(str(path), w, masks)
    assert path.is_file() and not (tmp_path / "no_suffix.npz").exists()
    with np.load(path, allow_pickle=False) as z:  # would raise on object arrays
        assert all(z[k].dtype != object for k in z.files)
        assert z["fc.weight:indices"].dtype == np.uint8 and z["fc.weight:indptr"].dtype == np.uint8
        assert z["fc.weight:mask"].dtype == np.uint8 and z["fc.weight:mask"].size == math.ceil(540 / 8)
        np.testing.assert_array_equal(z["conv.weight:shape"], [6, 3, 3, 3])
    with zipfile.ZipFile(path) as zf:
        assert all(info.compress_type == zipfile.ZIP_DEFLATED for info in zf.infolist())


def test_network_round_trip_gives_identical_predictions(tmp_path, trained_mlp, digits):
    state = trained_mlp.state_dict()
    pruned = ModelCompressor().compress_model(state, {"0.weight": 0.9, "2.weight": 0.95, "4.weight": 0.5})
    weights = {n: e["weights"] for n, e in pruned.items()}
    masks = {n: pruned[n]["mask"] for n in ("0.weight", "2.weight", "4.weight")}
    save_compressed(tmp_path / "m.npz", weights, masks)
    back_w, back_m = load_compressed(tmp_path / "m.npz")
    original, reloaded = make_mlp(seed=0), make_mlp(seed=42)
    original.load_state_dict(weights)
    reloaded.load_state_dict(back_w)
    np.testing.assert_array_equal(predict(reloaded, digits.X_test), predict(original, digits.X_test))
    for n in masks:
        np.testing.assert_array_equal(back_m[n], masks[n])


def test_load_rejects_foreign_files(tmp_path):
    np.savez_compressed(tmp_path / "other.npz", x=np.ones(2))
    with pytest.raises(ValueError):
        load_compressed(tmp_path / "other.npz")
    with pytest.raises(ValueError):
        load_compressed(tmp_path / "missing.npz")
    with pytest.raises(TypeError):
        load_compressed(7)


# ---------------------------------------------------------------- sizes
@SETTINGS
@given(shape=st.tuples(st.integers(1, 30), st.integers(1, 40)), sparsity=fractions, seed=st.integers(0, 2**16))
def test_size_report_counts_every_byte(tmp_path, shape, sparsity, seed):
    w = np.random.default_rng(seed).normal(size=shape).astype(np.float32)
    mask = magnitude_mask(w, sparsity)
    bias = np.ones(shape[0], dtype=np.float32)
    weights, masks = {"w": w * mask, "b": bias}, {"w": mask}
    nnz = int(np.count_nonzero(w * mask))
    rep = size_report(weights, masks)
    assert rep["dense_bytes"] == 4 * (w.size + bias.size)
    assert rep["csr_bytes"] == 8 * nnz + 4 * (shape[0] + 1) + 4 * bias.size
    assert rep["csr_bytes"] == CSRMatrix.from_dense(w * mask).nbytes + bias.nbytes
    assert rep["csr_ratio"] == pytest.approx(rep["csr_bytes"] / rep["dense_bytes"])
    path = tmp_path / "s.npz"
    save_compressed(path, weights, masks)
    rep = size_report(weights, masks, path)
    assert rep["file_bytes"] == os.path.getsize(path)
    assert rep["file_ratio"] == pytest.approx(rep["file_bytes"] / rep["dense_bytes"])


def test_a_sparse_file_is_much_smaller_than_a_dense_one(tmp_path):
    w = np.random.default_rng(0).normal(size=(256, 256)).astype(np.float32)
    mask = magnitude_mask(w, 0.9)
    rep = size_report({"w": w * mask}, {"w": mask}, None)
    save_compressed(tmp_path / "s.npz", {"w": w * mask}, {"w": mask})
    np.savez_compressed(tmp_path / "d.npz", w=w * mask)
    assert rep["csr_ratio"] < 0.25
    assert os.path.getsize(tmp_path / "s.npz") < 0.2 * rep["dense_bytes"]
    assert os.path.getsize(tmp_path / "s.npz") < os.path.getsize(tmp_path / "d.npz")


# ---------------------------------------------------------------- systems helpers
def test_profile_memory_sees_an_allocation():
    result, mem = profile_memory(lambda n: np.ones(n, dtype=np.float64).sum(), 1_000_000)
    assert result == 1_000_000
    assert mem["peak_bytes"] >= 8_000_000 and mem["seconds"] >= 0
    with pytest.raises(TypeError):
        profile_memory(3)


def test_sparse_layers_agree_with_the_dense_forward(trained_mlp, digits):
    model = make_mlp(seed=0)
    state = trained_mlp.state_dict()
    pruned = ModelCompressor().compress_model(state, {"0.weight": 0.8, "2.weight": 0.9, "4.weight": 0.5})
    model.load_state_dict({n: e["weights"] for n, e in pruned.items()})
    layers = sparse_layers(model)
    assert sum(1 for layer in layers if type(layer).__name__ == "SparseLinear") == 3
    np.testing.assert_allclose(run_layers(layers, digits.X_test), model.forward(digits.X_test), atol=1e-4)


def test_deployment_table_picks_the_most_accurate_variant_that_fits():
    variants = {"big": {"bytes": 1000, "latency_ms": 1.0, "accuracy": 0.99},
                "small": {"bytes": 100, "latency_ms": 2.0, "accuracy": 0.95},
                "fast": {"bytes": 500, "latency_ms": 0.1, "accuracy": 0.90}}
    table = deployment_table(variants, {"roomy": {"memory_bytes": 10_000, "latency_ms": 5.0},
                                        "tiny": {"memory_bytes": 200, "latency_ms": 5.0},
                                        "quick": {"memory_bytes": 10_000, "latency_ms": 0.5},
                                        "none": {"memory_bytes": 50, "latency_ms": 0.01}})
    assert table["roomy"] == {"fits": ["big", "small", "fast"], "best": "big"}
    assert table["tiny"] == {"fits": ["small"], "best": "small"}
    assert table["quick"] == {"fits": ["fast"], "best": "fast"}
    assert table["none"] == {"fits": [], "best": None}
    with pytest.raises(ValueError):
        deployment_table({"v": {"bytes": 1}}, {"s": {"memory_bytes": 1, "latency_ms": 1}})


# ---------------------------------------------------------------- validation errors
@pytest.mark.parametrize("bad, error", [
    ({}, ValueError), ([np.ones((2, 2))], TypeError), ({"w": np.ones((2, 2), dtype=np.int32)}, TypeError),
    ({"w": np.array([[np.nan, 1.0]])}, ValueError), ({"w": np.zeros((3, 0))}, ValueError), ({2: np.ones(2)}, TypeError),
])
def test_compressor_rejects_bad_weights(bad, error):
    with pytest.raises(error):
        ModelCompressor().analyze_model_for_compression(bad)
    with pytest.raises(error):
        ModelCompressor().compress_model(bad)


@pytest.mark.parametrize("sparsities, error", [
    ({"ghost": 0.5}, ValueError), ({"fc.weight": -0.1}, ValueError), ({"fc.weight": float("nan")}, ValueError),
    ({"fc.weight": "high"}, TypeError), ([0.5], TypeError),
])
def test_compress_model_rejects_bad_sparsities(sparsities, error):
    with pytest.raises(error):
        ModelCompressor().compress_model(toy_weights(), sparsities)


def test_quality_rejects_mismatched_models():
    w = toy_weights()
    with pytest.raises(ValueError, match="fc.bias"):
        ModelCompressor().validate_compression_quality(w, {k: v for k, v in w.items() if k != "fc.bias"})
    with pytest.raises(ValueError):
        ModelCompressor().validate_compression_quality(w, {**w, "fc.weight": np.ones((54, 10), dtype=np.float32)})
    with pytest.raises(TypeError):
        ModelCompressor().validate_compression_quality(w, "compressed")


def test_scan_accuracy_and_allocation_reject_bad_input(trained_mlp, digits):
    X, y = digits.X_test[:20], digits.y_test[:20]
    for kwargs, error in [({"sparsities": ()}, ValueError), ({"sparsities": (0.5, 0.2)}, ValueError),
                          ({"sparsities": (0.1, 1.1)}, ValueError), ({"sparsities": "0.5"}, TypeError),
                          ({"names": ["9.weight"]}, ValueError), ({"names": "0.weight"}, TypeError)]:
        with pytest.raises(error):
            sensitivity_scan(trained_mlp, X, y, **kwargs)
    with pytest.raises(ValueError):
        validate_accuracy(trained_mlp, {"9.weight": np.zeros((2, 2), dtype=np.float32)}, X, y)
    with pytest.raises(TypeError):
        validate_accuracy("model", {"0.weight": np.zeros((2, 2))}, X, y)
    sens, counts = {"a": {0.0: 1.0, 0.5: 0.9}}, {"a": 10}
    for args, error in [((sens, counts, -1), ValueError), ((sens, counts, 2.5), TypeError),
                        ((sens, {"b": 10}, 5), ValueError), ((sens, {"a": 0}, 5), ValueError),
                        (({"a": {}}, counts, 5), ValueError), (({"a": {0.5: math.inf}}, counts, 5), ValueError),
                        (([], counts, 5), TypeError)]:
        with pytest.raises(error):
            allocate_sparsities(*args)


def test_save_and_size_report_reject_bad_input(tmp_path):
    w = {"w": np.ones((2, 3), dtype=np.float32)}
    for masks, error in [({"v": np.ones((2, 3))}, ValueError), ({"w": np.ones((3, 2))}, ValueError),
                         ({"w": np.full((2, 3), 0.5)}, ValueError), ([np.ones((2, 3))], TypeError)]:
        with pytest.raises(error):
            save_compressed(tmp_path / "x.npz", w, masks)
        with pytest.raises(error):
            size_report(w, masks)
    with pytest.raises(TypeError):
        save_compressed(None, w, {})
    with pytest.raises(ValueError):
        size_report(w, {}, tmp_path / "missing.npz")
    with pytest.raises(TypeError):
        size_report(w, {}, 12)
