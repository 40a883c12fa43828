"""Package tests for tinytorch.prune_structured (module 02): shrinking == masking, PyTorch's
ln_structured as reference, N:M / block / head properties, validation."""
import copy

import numpy as np
import pytest
import torch
import torch.nn.utils.prune as tprune
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tinytorch.nn import Linear, ReLU, Sequential, make_cnn, make_mlp
from tinytorch.prune import apply_masks, magnitude_mask
from tinytorch.prune_structured import (block_mask, compare_structured_vs_unstructured, head_importance,
                                        measure_latencies, measure_latency, multihead_attention, n_kept_units,
                                        nm_mask, prune_attention_heads, prune_conv_filters, select_units,
                                        shrink_linear_pair, shrink_sequential, structured_masks, taylor_importance,
                                        unit_importance)

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
sparsities = st.floats(0.0, 1.0, allow_nan=False)


def distinct_norm_filters(shape, seed):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=shape).astype(np.float32)
    w *= rng.permutation(shape[0]).astype(np.float32)[:, None, None, None] + 1.0  # well separated norms
    return w


def random_keep(rng, n, sparsity):
    return np.sort(rng.permutation(n)[:n_kept_units(n, sparsity)])


def shrunk_and_masked(model, rng, units, sparsities):
    """Random biases, then random keep sets ({layer index: n units} at the given sparsities);
    returns keep, the shrunk model and a copy of the model masked to the same units."""
    for name, p in model.parameters().items():
        if name.endswith("bias"):
            p[...] = rng.normal(size=p.shape) * 0.2
    keep = {index: random_keep(rng, n, s) for (index, n), s in zip(units.items(), sparsities)}
    small = shrink_sequential(model, keep)
    masked = copy.deepcopy(model)
    apply_masks(masked, structured_masks(model, keep))
    return keep, small, masked


# ---------------------------------------------------------------- counts and PyTorch
def test_n_kept_units_contract():
    for n in range(1, 130):
        for s in (0.0, 0.1, 0.25, 0.3, 0.5, 0.7, 0.75, 0.9, 1.0):
            want = max(1, n - round(s * n))  # the course-wide rule: prune round(s*n), halves to even
            assert n_kept_units(n, s) == want, (n, s)
    assert n_kept_units(100, 0.9) == 10


@SETTINGS
@given(out=st.integers(1, 12), cin=st.integers(1, 3), k=st.integers(1, 3), sparsity=sparsities, seed=st.integers(0, 2**16))
def test_prune_conv_filters_matches_torch_ln_structured(out, cin, k, sparsity, seed):
    w = distinct_norm_filters((out, cin, k, k), seed)
    pruned, kept, stats = prune_conv_filters(w, sparsity)
    conv = torch.nn.Conv2d(cin, out, k, bias=False)
    conv.weight = torch.nn.Parameter(torch.from_numpy(w.copy()))
    tprune.ln_structured(conv, "weight", amount=out - len(kept), n=2, dim=0)
    theirs = np.flatnonzero(conv.weight_mask.numpy().reshape(out, -1).any(axis=1))
    assert np.array_equal(kept, theirs)
    assert np.array_equal(pruned, w[kept])
    assert stats["remaining_filters"] == len(kept) == n_kept_units(out, sparsity)
    assert stats["pruned_filters"] + stats["remaining_filters"] == out
    if round(sparsity * out) < out:  # same count as PyTorch's own rounding of a fractional amount
        conv2 = torch.nn.Conv2d(cin, out, k, bias=False)
        conv2.weight = torch.nn.Parameter(torch.from_numpy(w.copy()))
        tprune.ln_structured(conv2, "weight", amount=float(sparsity), n=2, dim=0)
        assert np.array_equal(kept, np.flatnonzero(conv2.weight_mask.numpy().reshape(out, -1).any(axis=1)))


@SETTINGS
@given(rows=st.integers(1, 16), cols=st.integers(1, 8), amount=sparsities, p=st.sampled_from([1, 2]), seed=st.integers(0, 2**16))
def test_select_units_matches_torch_ln_structured_on_linear(rows, cols, amount, p, seed):
    rng = np.random.default_rng(seed)
    w = (rng.normal(size=(rows, cols)) * (rng.permutation(rows)[:, None] + 1.0)).astype(np.float32)
    scores = unit_importance(w, "l1" if p == 1 else "l2")
    assume(np.unique(scores).size == rows and np.min(np.diff(np.sort(scores))) > 1e-3 if rows > 1 else True)
    kept = select_units(scores, amount)
    lin = torch.nn.Linear(cols, rows, bias=False)
    lin.weight = torch.nn.Parameter(torch.from_numpy(w.copy()))
    tprune.ln_structured(lin, "weight", amount=rows - len(kept), n=p, dim=0)
    assert np.array_equal(kept, np.flatnonzero(lin.weight_mask.numpy().any(axis=1)))


@SETTINGS
@given(n=st.integers(1, 30), s1=sparsities, s2=sparsities, seed=st.integers(0, 2**16))
def test_select_units_nested_and_idempotent(n, s1, s2, seed):
    scores = np.random.default_rng(seed).integers(0, 4, size=n).astype(np.float64)  # ties included
    lo, hi = sorted((s1, s2))
    assert set(select_units(scores, hi)) <= set(select_units(scores, lo))
    kept = select_units(scores, lo)
    assert np.array_equal(select_units(scores, lo), kept)


# ---------------------------------------------------------------- shrunk == masked
@SETTINGS
@given(s1=sparsities, s2=sparsities, seed=st.integers(0, 2**16))
def test_shrunk_mlp_equals_masked_mlp(s1, s2, seed):
    rng = np.random.default_rng(seed)
    keep, small, masked = shrunk_and_masked(make_mlp(seed=seed % 100), rng, {0: 128, 2: 64}, (s1, s2))
    x = rng.random((9, 64)).astype(np.float32)
    assert np.allclose(small.forward(x), masked.forward(x), atol=1e-5)
    assert small.num_parameters() == (64 + 1) * len(keep[0]) + (len(keep[0]) + 1) * len(keep[2]) + (len(keep[2]) + 1) * 10


@SETTINGS
@given(s1=sparsities, s2=sparsities, seed=st.integers(0, 2**16))
def test_shrunk_cnn_equals_masked_cnn(s1, s2, seed):
    rng = np.random.default_rng(seed)
    keep, small, masked = shrunk_and_masked(make_cnn(seed=seed % 100), rng, {0: 8, 3: 16}, (s1, s2))
    x = rng.random((4, 1, 8, 8)).astype(np.float32)
    assert np.allclose(small.forward(x), masked.forward(x), atol=1e-5)
    assert small.layers[7].weight.shape == (10, 4 * len(keep[3]))


@SETTINGS
@given(hidden=st.integers(1, 12), s=sparsities, seed=st.integers(0, 2**16))
def test_shrink_linear_pair_equals_masked(hidden, s, seed):
    rng = np.random.default_rng(seed)
    l1, l2 = Linear(5, hidden, seed=seed), Linear(hidden, 3, seed=seed + 1)
    l1.bias[...] = rng.normal(size=hidden)
    keep = random_keep(rng, hidden, s)
    a, b = shrink_linear_pair(l1, l2, keep)
    model = Sequential(copy.deepcopy(l1), ReLU(), copy.deepcopy(l2))
    apply_masks(model, structured_masks(model, {0: keep}))
    x = rng.normal(size=(6, 5)).astype(np.float32)
    assert np.allclose(Sequential(a, ReLU(), b).forward(x), model.forward(x), atol=1e-5)


def test_shrink_does_not_touch_the_original():
    model = make_cnn(seed=1)
    before = model.state_dict()
    shrink_sequential(model, {0: [1, 2], 3: [0]})
    assert all(np.array_equal(before[k], v) for k, v in model.parameters().items())


# ---------------------------------------------------------------- importance
def test_taylor_importance_matches_torch_gradients():
    rng = np.random.default_rng(0)
    model = make_mlp(seed=3)
    X = rng.random((40, 64)).astype(np.float32)
    y = rng.integers(0, 10, size=40)
    ours = taylor_importance(model, X, y, batch_size=64, squared=False)
    squared = taylor_importance(model, X, y, batch_size=64)  # one batch: the square of the same score
    assert all(np.allclose(squared[i], ours[i] ** 2, rtol=1e-5) for i in ours)
    tm = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 64), torch.nn.ReLU(),
                             torch.nn.Linear(64, 10))
    with torch.no_grad():
        for i in (0, 2, 4):
            tm[i].weight.copy_(torch.from_numpy(model.layers[i].weight))
            tm[i].bias.copy_(torch.from_numpy(model.layers[i].bias))
    torch.nn.functional.cross_entropy(tm(torch.from_numpy(X)), torch.from_numpy(y)).backward()
    for i in (0, 2, 4):
        w, g = tm[i].weight.detach().numpy(), tm[i].weight.grad.numpy()
        assert np.allclose(ours[i], np.abs((w * g).sum(axis=1)), rtol=1e-3, atol=1e-7)
    assert all(np.all(g == 0) for g in model.gradients().values())


def test_taylor_importance_accumulates_squared_per_batch_scores():
    rng = np.random.default_rng(2)
    model = make_mlp(seed=1)
    X = rng.random((50, 64)).astype(np.float32)
    y = rng.integers(0, 10, size=50)
    halves = [taylor_importance(model, X[a:b], y[a:b], batch_size=25, squared=False) for a, b in ((0, 25), (25, 50))]
    both = taylor_importance(model, X, y, batch_size=25)
    for i in both:
        assert np.allclose(both[i], (halves[0][i] ** 2 + halves[1][i] ** 2) / 2, rtol=1e-5)
    with pytest.raises(TypeError, match="squared"):
        taylor_importance(model, X, y, squared="yes")


def test_unit_importance_criteria():
    w = np.random.default_rng(1).normal(size=(6, 3, 2, 2))
    assert np.allclose(unit_importance(w, "l1"), np.abs(w).reshape(6, -1).sum(1))
    assert np.allclose(unit_importance(w, "l2"), np.linalg.norm(w.reshape(6, -1), axis=1))
    g = np.ones_like(w)
    assert np.allclose(unit_importance(w, "taylor", grad=g), np.abs(w.reshape(6, -1).sum(1)))


# ---------------------------------------------------------------- N:M, blocks
@SETTINGS
@given(rows=st.integers(1, 8), groups=st.integers(1, 6), m=st.sampled_from([2, 4, 8]), data=st.data(), seed=st.integers(0, 2**16))
def test_nm_mask_properties(rows, groups, m, data, seed):
    n = data.draw(st.integers(0, m))
    w = np.random.default_rng(seed).normal(size=(rows, groups * m)).astype(np.float32)
    mask = nm_mask(w, n, m)
    g = mask.reshape(rows, groups, m)
    assert np.all(g.sum(axis=-1) == n)
    mags = np.abs(w).reshape(rows, groups, m)
    if 0 < n < m:
        assert np.all(np.where(g == 1, mags, np.inf).min(-1) >= np.where(g == 0, mags, -np.inf).max(-1))
    assert np.array_equal(nm_mask(w * mask, n, m), mask) or n == 0
    if n == m // 2 and m == 4:  # 2:4 is one 50% magnitude mask per group of 4
        for r in range(rows):
            for j in range(groups):
                block = w[r, j * 4:(j + 1) * 4]
                assert np.array_equal(mask[r, j * 4:(j + 1) * 4], magnitude_mask(block, 0.5))


@SETTINGS
@given(br=st.integers(1, 4), bc=st.integers(1, 4), nr=st.integers(1, 5), nc=st.integers(1, 5), s1=sparsities, s2=sparsities,
       seed=st.integers(0, 2**16))
def test_block_mask_properties(br, bc, nr, nc, s1, s2, seed):
    w = np.random.default_rng(seed).normal(size=(br * nr, bc * nc))
    lo, hi = sorted((s1, s2))
    m_lo, m_hi = block_mask(w, lo, (br, bc)), block_mask(w, hi, (br, bc))
    tiles = m_hi.reshape(nr, br, nc, bc)
    assert np.all(tiles.min(axis=(1, 3)) == tiles.max(axis=(1, 3)))
    assert int((tiles[:, 0, :, 0] == 0).sum()) == round(hi * nr * nc)
    assert np.all(m_hi <= m_lo)
    assert np.array_equal(block_mask(w * m_hi, hi, (br, bc)), m_hi)


# ---------------------------------------------------------------- attention heads
@SETTINGS
@given(heads=st.integers(1, 6), dh=st.integers(1, 4), d=st.integers(2, 10), s=sparsities, seed=st.integers(0, 2**16))
def test_pruned_heads_equal_masked_heads(heads, dh, d, s, seed):
    rng = np.random.default_rng(seed)
    wq, wk, wv = (rng.normal(size=(heads * dh, d)) for _ in range(3))
    wo = rng.normal(size=(d, heads * dh))
    r = prune_attention_heads(wq, wk, wv, wo, heads, s)
    assert r["n_heads"] == len(r["kept_heads"]) == n_kept_units(heads, s)
    assert np.array_equal(r["kept_heads"], select_units(head_importance(wq, wk, wv, wo, heads), s))
    mask = np.isin(np.arange(heads), r["kept_heads"]).astype(float)
    x = rng.normal(size=(2, 3, d))
    full = multihead_attention(x, wq, wk, wv, wo, heads, head_mask=mask)
    small = multihead_attention(x, r["wq"], r["wk"], r["wv"], r["wo"], r["n_heads"])
    assert np.allclose(full, small, atol=1e-9)


# ---------------------------------------------------------------- contract, validation, timing
def test_compare_structured_vs_unstructured_contract():
    w = np.random.default_rng(2).normal(size=(8, 2, 3, 3)).astype(np.float32)
    r = compare_structured_vs_unstructured(w, 0.75)
    (pu, su), (ps, ss) = r["unstructured"], r["structured"]
    assert pu.shape == w.shape and su["pruned_params"] == round(0.75 * w.size)
    assert ps.shape == (2, 2, 3, 3) and ss["kept_filter_indices"].tolist() == prune_conv_filters(w, 0.75)[1].tolist()
    for key in ("original_filters", "remaining_filters", "pruned_filters", "target_sparsity", "actual_sparsity",
                "compression_ratio", "filter_norms", "kept_filter_indices"):
        assert key in ss


@pytest.mark.parametrize("call,exc,word", [
    (lambda: prune_conv_filters(np.ones((2, 2)), 0.5), ValueError, "conv_weights"),
    (lambda: prune_conv_filters(np.ones((2, 1, 1, 1)), 2.0), ValueError, "sparsity"),
    (lambda: prune_conv_filters(np.full((2, 1, 1, 1), np.inf), 0.5), ValueError, "conv_weights"),
    (lambda: prune_conv_filters(np.array([[[["a"]]]]), 0.5), TypeError, "conv_weights"),
    (lambda: unit_importance(np.ones((2, 2)), "taylor"), ValueError, "grad"),
    (lambda: unit_importance(np.ones((2, 2)), "l0"), ValueError, "criterion"),
    (lambda: select_units(np.array([]), 0.5), ValueError, "scores"),
    (lambda: nm_mask(np.ones((2, 6)), 2, 4), ValueError, "divisible"),
    (lambda: nm_mask(np.ones((2, 8)), 3, 2), ValueError, "n must be"),
    (lambda: block_mask(np.ones((3, 4)), 0.5, (2, 2)), ValueError, "divisible"),
    (lambda: block_mask(np.ones((4, 4)), float("nan")), ValueError, "sparsity"),
    (lambda: shrink_sequential(make_mlp(), {1: [0]}), ValueError, "ReLU"),
    (lambda: shrink_sequential(make_mlp(), {0: [200]}), ValueError, "keep"),
    (lambda: shrink_linear_pair(Linear(2, 3), Linear(3, 1), [0, 0]), ValueError, "duplicate"),
    (lambda: prune_attention_heads(np.ones((6, 4)), np.ones((6, 4)), np.ones((6, 4)), np.ones((4, 6)), 4), ValueError, "n_heads"),
    (lambda: measure_latency(make_mlp(), np.ones((1, 64), np.float32), repeats=0), ValueError, "repeats"),
])
def test_bad_input_is_named(call, exc, word):
    with pytest.raises(exc, match=word):
        call()


def test_measure_latencies_positive_and_keyed():
    x = np.ones((8, 64), dtype=np.float32)
    lat = measure_latencies({"a": make_mlp(), "b": make_mlp(hidden=(8,))}, x, repeats=3, warmup=1)
    assert set(lat) == {"a", "b"} and all(v > 0 for v in lat.values())
    assert measure_latency(make_mlp(), x, repeats=2) > 0
