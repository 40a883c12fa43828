"""Package tests for tinytorch.prune (module 01): properties, PyTorch reference masks, validation."""
import math

import numpy as np
import pytest
import torch
import torch.nn.utils.prune as tprune
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tinytorch.data import load_digits_split
from tinytorch.nn import evaluate, make_mlp
from tinytorch.prune import (MagnitudePruner, analyze_weight_redundancy, apply_masks, finetune_masked,
                             global_magnitude_masks, iterative_magnitude_masks, magnitude_mask, prune_count,
                             prune_remaining, random_mask, sparsity_report, validate_sparsity, validate_weights)

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
shapes = st.one_of(st.tuples(st.integers(1, 40)), st.tuples(st.integers(1, 12), st.integers(1, 12)),
                   st.tuples(st.integers(1, 4), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)))
sparsities = st.floats(0.0, 1.0, allow_nan=False)


def distinct_weights(shape, seed):
    """Random float32 weights whose magnitudes are all different (no ties)."""
    w = np.random.default_rng(seed).normal(size=shape).astype(np.float32)
    assume(np.unique(np.abs(w)).size == w.size)
    return w


def torch_mask(weight, method, **kwargs):
    lin = torch.nn.Linear(1, 1, bias=False)
    lin.weight = torch.nn.Parameter(torch.from_numpy(np.ascontiguousarray(weight)))
    method(lin, "weight", **kwargs)
    return lin.weight_mask.detach().numpy()


# ---------------------------------------------------------------- exact counts and ties
@SETTINGS
@given(shape=shapes, sparsity=sparsities, seed=st.integers(0, 2**16))
def test_magnitude_mask_prunes_exact_count_even_with_ties(shape, sparsity, seed):
    rng = np.random.default_rng(seed)
    w = rng.integers(-3, 4, size=shape).astype(np.float32)  # many ties and zeros
    mask = magnitude_mask(w, sparsity)
    n = w.size
    assert mask.dtype == np.float32 and mask.shape == w.shape
    assert int((mask == 0).sum()) == round(sparsity * n) == prune_count(n, sparsity)
    kept, pruned = np.abs(w[mask == 1]), np.abs(w[mask == 0])
    if kept.size and pruned.size:
        assert kept.min() >= pruned.max()


@SETTINGS
@given(shape=shapes, sparsity=sparsities, seed=st.integers(0, 2**16))
def test_tie_rule_lower_flat_index_pruned_first(shape, sparsity, seed):
    w = np.random.default_rng(seed).integers(0, 3, size=shape).astype(np.float32)
    mask = magnitude_mask(w, sparsity).ravel()
    flat = np.abs(w).ravel()
    # reference: sort by (magnitude, flat index)
    order = sorted(range(flat.size), key=lambda i: (flat[i], i))
    want = np.ones(flat.size, dtype=np.float32)
    want[order[:round(sparsity * flat.size)]] = 0
    assert np.array_equal(mask, want)


def test_prune_count_rounds_half_to_even_like_torch():
    assert prune_count(5, 0.5) == 2 == tprune._compute_nparams_toprune(0.5, 5)
    assert prune_count(7, 0.5) == 4 == tprune._compute_nparams_toprune(0.5, 7)
    for n in range(1, 60):
        for s in (0.1, 0.25, 0.3, 0.5, 0.7, 0.9, 0.95):
            assert prune_count(n, s) == tprune._compute_nparams_toprune(s, n)


@SETTINGS
@given(shape=shapes, s1=sparsities, s2=sparsities, seed=st.integers(0, 2**16))
def test_masks_nested_as_sparsity_grows(shape, s1, s2, seed):
    lo, hi = sorted((s1, s2))
    w = np.random.default_rng(seed).integers(-2, 3, size=shape).astype(np.float32)
    assert np.all(magnitude_mask(w, hi) <= magnitude_mask(w, lo))
    assert np.all(random_mask(w, hi, seed=seed) <= random_mask(w, lo, seed=seed))
    sd = {"a": w.reshape(w.shape[0], -1), "b": np.random.default_rng(seed + 1).normal(size=(3, 5))}
    m_hi, m_lo = global_magnitude_masks(sd, hi), global_magnitude_masks(sd, lo)
    assert all(np.all(m_hi[k] <= m_lo[k]) for k in sd)


@SETTINGS
@given(shape=shapes, sparsity=sparsities, seed=st.integers(0, 2**16))
def test_pruning_twice_at_same_sparsity_changes_nothing(shape, sparsity, seed):
    w = np.random.default_rng(seed).integers(-3, 4, size=shape).astype(np.float32)
    mask = magnitude_mask(w, sparsity)
    assert np.array_equal(magnitude_mask(w * mask, sparsity), mask)
    pruner = MagnitudePruner()
    once, _, _ = pruner.prune(w, sparsity)
    twice, _, stats = pruner.prune(once, sparsity)
    assert np.array_equal(once, twice)
    sd = {"a": w.reshape(w.shape[0], -1)}
    g = global_magnitude_masks(sd, sparsity)["a"]
    assert np.array_equal(global_magnitude_masks({"a": sd["a"] * g}, sparsity)["a"], g)
    assert np.array_equal(prune_remaining(w, mask, 0.0), mask)


@SETTINGS
@given(shape=shapes, sparsity=sparsities, seed=st.integers(0, 2**16))
def test_random_mask_exact_count_and_seeded(shape, sparsity, seed):
    w = np.zeros(shape, dtype=np.float32)
    m = random_mask(w, sparsity, seed=seed)
    assert int((m == 0).sum()) == round(sparsity * w.size)
    assert np.array_equal(m, random_mask(w, sparsity, seed=seed))


def test_random_mask_is_uniform():
    hits = np.zeros(10)
    for seed in range(2000):
        hits += random_mask(np.ones(10), 0.3, seed=seed) == 0
    # each position pruned with probability 0.3: 600 +- 4 sigma (sigma ~ 20.5)
    assert np.all(np.abs(hits - 600) < 82), hits


@SETTINGS
@given(n=st.integers(1, 60), amount=st.floats(0.0, 1.0), rounds=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_iterative_rounds_apply_to_remaining(n, amount, rounds, seed):
    w = np.random.default_rng(seed).normal(size=n)
    masks = iterative_magnitude_masks(w, amount, rounds)
    alive = n
    for m in masks:
        alive -= round(amount * alive)
        assert int(m.sum()) == alive
    for earlier, later in zip(masks, masks[1:]):
        assert np.all(later <= earlier)


# ---------------------------------------------------------------- PyTorch reference
@SETTINGS
@given(rows=st.integers(1, 12), cols=st.integers(1, 12), amount=sparsities, seed=st.integers(0, 2**16))
def test_l1_unstructured_matches_torch(rows, cols, amount, seed):
    w = distinct_weights((rows, cols), seed)
    assert np.array_equal(magnitude_mask(w, amount), torch_mask(w, tprune.l1_unstructured, amount=amount))


@SETTINGS
@given(sizes=st.lists(st.tuples(st.integers(1, 8), st.integers(1, 8)), min_size=1, max_size=4),
       amount=sparsities, seed=st.integers(0, 2**16))
def test_global_unstructured_matches_torch(sizes, amount, seed):
    rng = np.random.default_rng(seed)
    sd = {f"{i}.weight": (rng.normal(size=s) * rng.uniform(0.1, 3)).astype(np.float32) for i, s in enumerate(sizes)}
    flat = np.concatenate([np.abs(v).ravel() for v in sd.values()])
    assume(np.unique(flat).size == flat.size)
    layers = []
    for name, w in sd.items():
        lin = torch.nn.Linear(w.shape[1], w.shape[0], bias=False)
        lin.weight = torch.nn.Parameter(torch.from_numpy(w.copy()))
        layers.append(lin)
    tprune.global_unstructured([(lin, "weight") for lin in layers], pruning_method=tprune.L1Unstructured, amount=amount)
    ours = global_magnitude_masks(sd, amount)
    for (name, mask), lin in zip(ours.items(), layers):
        assert np.array_equal(mask, lin.weight_mask.numpy()), name


@SETTINGS
@given(rows=st.integers(1, 12), cols=st.integers(1, 12), amount=sparsities, seed=st.integers(0, 2**16))
def test_random_unstructured_semantics_match_torch(rows, cols, amount, seed):
    w = np.ones((rows, cols), dtype=np.float32)
    torch.manual_seed(seed)
    theirs = torch_mask(w, tprune.random_unstructured, amount=amount)
    ours = random_mask(w, amount, seed=seed)
    assert int((ours == 0).sum()) == int((theirs == 0).sum())  # same exact count, different RNG


@SETTINGS
@given(rows=st.integers(1, 10), cols=st.integers(1, 10), a1=sparsities, a2=sparsities, seed=st.integers(0, 2**16))
def test_repeated_l1_unstructured_matches_prune_remaining(rows, cols, a1, a2, seed):
    """PyTorch's PruningContainer applies the second amount to the weights still alive."""
    w = distinct_weights((rows, cols), seed)
    lin = torch.nn.Linear(cols, rows, bias=False)
    lin.weight = torch.nn.Parameter(torch.from_numpy(w.copy()))
    tprune.l1_unstructured(lin, "weight", amount=a1)
    tprune.l1_unstructured(lin, "weight", amount=a2)
    ours = prune_remaining(w, magnitude_mask(w, a1), a2)
    assert np.array_equal(ours, lin.weight_mask.numpy())
    ours_iter = iterative_magnitude_masks(w, a1, 2)[-1]
    lin2 = torch.nn.Linear(cols, rows, bias=False)
    lin2.weight = torch.nn.Parameter(torch.from_numpy(w.copy()))
    tprune.l1_unstructured(lin2, "weight", amount=a1)
    tprune.l1_unstructured(lin2, "weight", amount=a1)
    assert np.array_equal(ours_iter, lin2.weight_mask.numpy())


# ---------------------------------------------------------------- pruner, analysis
@SETTINGS
@given(shape=shapes, sparsity=sparsities, seed=st.integers(0, 2**16))
def test_threshold_mask_equals_exact_mask_without_ties(shape, sparsity, seed):
    w = distinct_weights(shape, seed)
    p = MagnitudePruner()
    t = p.calculate_threshold(w, sparsity)
    assert np.array_equal(p.create_mask(w, t), magnitude_mask(w, sparsity))
    pruned, mask, stats = p.prune(w, sparsity, name="w")
    assert stats["pruned_params"] + stats["remaining_params"] == stats["original_params"] == w.size
    assert math.isclose(stats["actual_sparsity"], stats["pruned_params"] / w.size)
    if stats["remaining_params"]:
        assert math.isclose(stats["compression_ratio"], w.size / stats["remaining_params"])
    else:
        assert stats["compression_ratio"] == math.inf and t == math.inf
    impact = p.measure_accuracy_impact(w, pruned)
    assert 0.0 <= impact["weight_norm_preservation"] <= 1.0 + 1e-9
    assert impact["max_absolute_error"] <= (t if t != math.inf else np.abs(w).max()) + 1e-7


def test_analyze_weight_redundancy_values():
    w = np.linspace(-1, 1, 101)
    r = analyze_weight_redundancy(w, verbose=False)
    assert r["total_params"] == 101
    assert math.isclose(r["mean_abs"], np.abs(w).mean())
    assert math.isclose(r["natural_sparsity"], 100 * np.mean(np.abs(w) <= 0.1 * np.abs(w).mean()))
    assert math.isclose(r["percentiles"][90], np.percentile(np.abs(w), 90))


# ---------------------------------------------------------------- validation
BAD_WEIGHTS = [(np.array([]), ValueError), (np.array([1.0, np.nan]), ValueError), (np.array([np.inf]), ValueError),
               (np.array(["x"]), TypeError), (np.array([True, False]), TypeError), (np.array([1j]), TypeError),
               (np.float32(2.0), ValueError), ([[object()]], TypeError)]
BAD_SPARSITY = [(-0.01, ValueError), (1.01, ValueError), (float("nan"), ValueError), (float("inf"), ValueError),
                ("0.5", TypeError), (None, TypeError), (True, TypeError)]


@pytest.mark.parametrize("bad,exc", BAD_WEIGHTS)
def test_bad_weights_rejected_everywhere(bad, exc):
    calls = [lambda: magnitude_mask(bad, 0.5), lambda: random_mask(bad, 0.5), lambda: analyze_weight_redundancy(bad, verbose=False),
             lambda: MagnitudePruner().prune(bad, 0.5), lambda: MagnitudePruner().calculate_threshold(bad, 0.5),
             lambda: MagnitudePruner().create_mask(bad, 0.1), lambda: iterative_magnitude_masks(bad, 0.5, 2)]
    for call in calls:
        with pytest.raises(exc, match="weights"):
            call()
    with pytest.raises((ValueError, TypeError)):
        global_magnitude_masks({"w": bad}, 0.5, names=["w"])


@pytest.mark.parametrize("bad,exc", BAD_SPARSITY)
def test_bad_sparsity_rejected_everywhere(bad, exc):
    w = np.ones((3, 3), dtype=np.float32)
    for call in (lambda: magnitude_mask(w, bad), lambda: random_mask(w, bad), lambda: MagnitudePruner().prune(w, bad),
                 lambda: global_magnitude_masks({"w": w}, bad), lambda: validate_sparsity(bad)):
        with pytest.raises(exc, match="sparsity"):
            call()
    with pytest.raises(exc, match="amount"):
        prune_remaining(w, np.ones_like(w), bad)


def test_validation_helpers_name_the_argument():
    with pytest.raises(ValueError, match="conv_weights"):
        validate_weights(np.ones(3), "conv_weights", ndim=4)
    with pytest.raises(ValueError, match="mask"):
        prune_remaining(np.ones(3), np.array([1, 2, 0]), 0.5)
    with pytest.raises(ValueError, match="not in state_dict"):
        global_magnitude_masks({"w": np.ones((2, 2))}, 0.5, names=["v"])
    with pytest.raises(TypeError, match="seed"):
        random_mask(np.ones(3), 0.5, seed="x")


# ---------------------------------------------------------------- models
@pytest.fixture(scope="module")
def digits():
    return load_digits_split()


def test_apply_masks_in_place_and_validated():
    model = make_mlp(seed=0)
    params = model.parameters()
    masks = global_magnitude_masks(model.state_dict(), 0.8)
    assert set(masks) == {"0.weight", "2.weight", "4.weight"}
    weight_before = params["2.weight"]
    apply_masks(model, masks)
    assert model.parameters()["2.weight"] is weight_before
    assert math.isclose(sparsity_report(model)["overall"], round(0.8 * 17024) / 17024)
    with pytest.raises(ValueError, match="nope"):
        apply_masks(model, {"nope": np.ones(1)})
    with pytest.raises(ValueError, match="shape"):
        apply_masks(model, {"0.weight": np.ones((2, 2))})


def test_finetune_keeps_pruned_weights_zero(digits):
    model = make_mlp(seed=0)
    masks = {n: random_mask(p, 0.9, seed=1) for n, p in model.parameters().items() if p.ndim == 2}
    history = finetune_masked(model, masks, digits.X_train, digits.y_train, epochs=3, lr=1e-2)
    assert len(history["loss"]) == 3 and history["loss"][-1] < history["loss"][0]
    for name, mask in masks.items():
        w = model.parameters()[name]
        assert np.all(w[mask == 0] == 0)
        assert np.count_nonzero(w) <= mask.sum()
    assert evaluate(model, digits.X_test, digits.y_test) > 0.5
