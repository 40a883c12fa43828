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
# # Module 02: Structured pruning
#
# Module 01 zeroed 90% of the MLP's weights, but the network did not get any faster: a dense
# matrix product multiplies zeros as quickly as any other number. **Structured pruning**
# removes whole units instead (a neuron of a `Linear`, a filter of a `Conv2d`, a head of an
# attention layer), so the weight matrices become physically *smaller* and every dense kernel
# speeds up without any sparse format (Li et al. 2017, *Pruning Filters for Efficient
# ConvNets*; Liu et al. 2017, *Network Slimming*; Michel et al. 2019, *Are Sixteen Heads
# Really Better than One?*). In between lie semi-structured patterns that hardware likes:
# **N:M** sparsity (2 of every 4 weights, Mishra et al. 2021) and **block** sparsity.
#
# **Learning goals.** After this module you can
# 1. prune convolution filters by norm and say what the statistics mean;
# 2. score units by L1, L2 and first-order Taylor importance (from a real backward pass);
# 3. physically shrink a network: remove neurons and fix the next layer's inputs, follow
#    channel dependencies from conv to conv to the classifier;
# 4. build 2:4 and block masks, and prune attention heads;
# 5. measure parameters, FLOPs and *latency* before and after, and explain why the measured
#    speedup is not the FLOP reduction.
#
# Everything builds on `tinytorch.nn` (module 00) and `tinytorch.prune` (module 01).

# %% nbgrader={"grade": false, "grade_id": "imports", "locked": true, "schema_version": 3, "solution": false}
#| default_exp prune_structured
#| export
import copy
import math
import numbers
import time

import numpy as np

from tinytorch.nn import Conv2d, CrossEntropyLoss, Flatten, Linear, ReLU, Sequential
from tinytorch.prune import MagnitudePruner, prune_count
from tinytorch.support import inference_mode, median_times_ms, validate_int, validate_sparsity, validate_weights

# %% nbgrader={"grade": false, "grade_id": "notebook-imports", "locked": true, "schema_version": 3, "solution": false}
# Used by this notebook only (not exported).
import matplotlib.pyplot as plt
from threadpoolctl import threadpool_limits

from tinytorch.data import as_images, load_digits_split, load_mnist1d
from tinytorch.support import mean_and_spread
from tinytorch.nn import count_flops, evaluate, make_cnn, make_mlp, train
from tinytorch.prune import apply_masks, finetune_masked, magnitude_mask
from tinytorch.testing import expect_error

# One BLAS thread: on a small, shared CPU, multi-threaded BLAS makes these tiny products
# much slower and the latency measurements below noisy.
threadpool_limits(1)

# %% [markdown]
# ## How many units survive
#
# One counting rule holds for the whole course, weights (module 01) and units (here) alike:
# at sparsity $s$ we **prune** $k = \operatorname{round}(s\,C)$ of $C$ things, with Python's
# `round` (halves to even), exactly `prune_count` of module 01 and the count PyTorch's
# `l1_unstructured` and `ln_structured` use. So $C - k$ units are kept, with one addition
# for units: at least one always survives (a layer with no output would cut the network in
# two). The tie rule is also module 01's: rank with a stable ascending sort and prune from
# the front, so among equal scores the lower index goes first.
#
# Why one rule matters: with "prune round(sC)" in one module and "keep floor(C(1-s))" in
# another, the same request (say 33% of 10 channels) removes 3 in one place and 4 in the
# other, and a comparison between the modules is off by a unit. Rounding the *pruned* count
# also avoids a floating-point trap of flooring: `int(100 * (1 - 0.9))` is `9`, because
# `1 - 0.9` is `0.09999999999999998`.

# %% nbgrader={"grade": false, "grade_id": "helpers", "locked": true, "schema_version": 3, "solution": false}
#| export
def n_kept_units(n, sparsity):
    """Units kept out of `n` at `sparsity`: n - prune_count(n, sparsity) (round(sparsity * n)
    pruned, halves to even, as for weights in module 01), but never fewer than one."""
    n = validate_int(n, "n", minimum=1)
    sparsity = validate_sparsity(sparsity)
    return max(1, n - prune_count(n, sparsity))


def validate_keep(keep, n, name="keep"):
    """Sorted unique int64 indices in [0, n), at least one, or raise naming `name`."""
    arr = np.asarray(keep)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of indices, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integers, got dtype {arr.dtype}")
    if arr.min() < 0 or arr.max() >= n:
        raise ValueError(f"{name} indices must lie in [0, {n}), got min {arr.min()} and max {arr.max()}")
    if len(np.unique(arr)) != arr.size:
        raise ValueError(f"{name} has duplicate indices")
    return np.sort(arr).astype(np.int64)


# %% [markdown]
# ## 1. Filter pruning by L2 norm
#
# A convolution weight has shape $(C_{out}, C_{in}, k_h, k_w)$: output channel $c$ is produced
# by **filter** $W_c$, a $(C_{in}, k_h, k_w)$ block. Li et al. rank filters by their norm and
# drop the weakest: a filter with a small norm produces a small feature map. Removing it
# deletes a whole slice of the weight tensor, so the result is a smaller *dense* tensor.
#
# **Exercise 1.** Write `prune_conv_filters(conv_weights, sparsity=0.5)`. Compute every filter's
# L2 norm $\lVert W_c\rVert_2$, keep the `n_kept_units(C, sparsity)` filters of **largest** norm,
# and return `(pruned_weights, kept_filter_indices, stats)`:
# * `kept_filter_indices`: the kept output channels, **sorted ascending** (an int array), so
#   the kept filters stay in their original order;
# * `pruned_weights = conv_weights[kept_filter_indices]` (a copy, shape
#   $(C_{kept}, C_{in}, k_h, k_w)$);
# * `stats` with `original_filters`, `remaining_filters`, `pruned_filters`, `target_sparsity`,
#   `actual_sparsity` (pruned / original filters), `compression_ratio` (original / remaining
#   filters), `filter_norms` (all $C$ norms, float64) and `kept_filter_indices`.
#
# Tie rule, the same as module 01: rank the norms with a stable ascending sort and prune from
# the front, so **among equal norms the lower channel index is pruned first**.

# %% nbgrader={"grade": false, "grade_id": "prune_conv_filters", "locked": false, "schema_version": 3, "solution": true}
#| export
def prune_conv_filters(conv_weights, sparsity=0.5):
    """Keep the filters of largest L2 norm; returns (pruned_weights, kept_filter_indices, stats)."""
    conv_weights = validate_weights(conv_weights, "conv_weights", ndim=4)
    sparsity = validate_sparsity(sparsity)
    ### BEGIN SOLUTION
    n_filters = conv_weights.shape[0]
    norms = np.sqrt(np.sum(conv_weights.astype(np.float64) ** 2, axis=(1, 2, 3)))
    n_keep = n_kept_units(n_filters, sparsity)
    order = np.argsort(norms, kind="stable")
    kept = np.sort(order[n_filters - n_keep:])
    pruned = conv_weights[kept].copy()
    stats = {
        "original_filters": n_filters,
        "remaining_filters": n_keep,
        "pruned_filters": n_filters - n_keep,
        "target_sparsity": sparsity,
        "actual_sparsity": (n_filters - n_keep) / n_filters,
        "compression_ratio": n_filters / n_keep,
        "filter_norms": norms,
        "kept_filter_indices": kept,
    }
    return pruned, kept, stats
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-prune_conv_filters", "locked": true, "points": 6, "schema_version": 3, "solution": false}
_rng = np.random.default_rng(0)
_w = _rng.normal(size=(6, 3, 3, 3)).astype(np.float32)
_w *= np.array([0.5, 3.0, 1.0, 0.1, 2.0, 0.7], dtype=np.float32)[:, None, None, None]
_norms = np.sqrt((_w.astype(np.float64) ** 2).sum(axis=(1, 2, 3)))
_pw, _kept, _s = prune_conv_filters(_w, 0.5)
_want = np.sort(np.argsort(_norms)[3:])
assert np.array_equal(_kept, _want), f"kept filters: expected the 3 largest norms {_want.tolist()}, got {np.asarray(_kept).tolist()}"
assert list(_kept) == sorted(_kept), f"kept_filter_indices must be sorted ascending, got {list(_kept)}"
assert _pw.shape == (3, 3, 3, 3) and np.array_equal(_pw, _w[_want]), f"pruned weights must be conv_weights[kept], got shape {_pw.shape}"
for _key, _val in (("original_filters", 6), ("remaining_filters", 3), ("pruned_filters", 3),
                   ("target_sparsity", 0.5), ("actual_sparsity", 0.5), ("compression_ratio", 2.0)):
    assert _key in _s, f"stats lacks {_key!r}; got {sorted(_s)}"
    assert abs(_s[_key] - _val) < 1e-9, f"stats[{_key!r}]: expected {_val}, got {_s[_key]}"
assert np.allclose(_s["filter_norms"], _norms), f"filter_norms: expected {np.round(_norms, 4)}, got {_s['filter_norms']}"
assert np.array_equal(_s["kept_filter_indices"], _kept), "stats['kept_filter_indices'] must equal the returned indices"
_pw, _kept, _s = prune_conv_filters(_w, 0.7)
_want = np.sort(np.argsort(_norms)[4:])
assert np.array_equal(_kept, _want), f"70% of 6 prunes round(4.2) = 4 and keeps the 2 largest {_want.tolist()}; got {list(_kept)}"
_pw, _kept, _s = prune_conv_filters(_w[:5], 0.5)
assert len(_kept) == 3, f"50% of 5 prunes round(2.5) = 2 (halves to even, as module 01) and keeps 3; got {len(_kept)}"
### BEGIN HIDDEN TESTS
_pw, _kept, _s = prune_conv_filters(_w, 1.0)
assert len(_kept) == 1, f"sparsity 1 still keeps one filter, got {len(_kept)}"
_pw, _kept, _s = prune_conv_filters(_w, 0.0)
assert list(_kept) == list(range(6)) and _s["pruned_filters"] == 0, f"sparsity 0 keeps all filters; got {list(_kept)}"
_pw, _kept, _s = prune_conv_filters(np.ones((100, 1, 1, 1), dtype=np.float32), 0.9)
assert len(_kept) == 10, f"100 filters at 0.9 keep 10 (mind 1 - 0.9 in floating point); got {len(_kept)}"
assert list(_kept) == list(range(90, 100)), f"ties: the lower indices are pruned first, kept {list(_kept)[:3]}..."
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "test-prune_conv_filters-bad-input", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# prune_conv_filters: bad input gets a clear error (its own small cell, apart from the algorithm's points)
_w = np.ones((4, 2, 3, 3), dtype=np.float32) * np.array([1.0, 4.0, 2.0, 3.0], dtype=np.float32)[:, None, None, None]
_pw, _kept, _s = prune_conv_filters(_w, 0.5)
assert list(_kept) == [1, 3], f"50% of 4 filters with norms in the order 1, 4, 2, 3: expected to keep [1, 3], got {list(_kept)}"
### BEGIN HIDDEN TESTS
for _args, _exc in (((_w[0], 0.5), ValueError), ((_w, 1.5), ValueError), ((_w, "half"), TypeError),
                    ((np.full((2, 1, 1, 1), np.nan), 0.5), ValueError), ((np.zeros((0, 1, 3, 3)), 0.5), ValueError)):
    expect_error(_exc, prune_conv_filters, *_args)
### END HIDDEN TESTS

# %% [markdown]
# ## 2. Structured versus unstructured at the same sparsity
#
# At the same nominal sparsity the two kinds of pruning keep very different things: magnitude
# pruning keeps the individually largest weights wherever they are; filter pruning has to keep
# or drop a filter as a whole, so it throws away some large weights and keeps some small ones.
# It therefore preserves less of the weight norm, but its result is a smaller dense tensor.
#
# **Exercise 2.** Write `compare_structured_vs_unstructured(conv_weights, sparsity)`, returning
# `{'unstructured': (pruned, stats), 'structured': (pruned, stats)}` where the unstructured pair
# comes from `MagnitudePruner().prune(conv_weights, sparsity)` (module 01) and the structured
# pair from `prune_conv_filters(conv_weights, sparsity)`.

# %% nbgrader={"grade": false, "grade_id": "compare_structured_vs_unstructured", "locked": false, "schema_version": 3, "solution": true}
#| export
def compare_structured_vs_unstructured(conv_weights, sparsity=0.5):
    """Magnitude (unstructured) and filter (structured) pruning of the same conv weights."""
    conv_weights = validate_weights(conv_weights, "conv_weights", ndim=4)
    sparsity = validate_sparsity(sparsity)
    ### BEGIN SOLUTION
    pruned_u, _, stats_u = MagnitudePruner().prune(conv_weights, sparsity)
    pruned_s, _, stats_s = prune_conv_filters(conv_weights, sparsity)
    return {"unstructured": (pruned_u, stats_u), "structured": (pruned_s, stats_s)}
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-compare_structured_vs_unstructured", "locked": true, "points": 2, "schema_version": 3, "solution": false}
_rng = np.random.default_rng(3)
_w = _rng.normal(size=(8, 4, 3, 3)).astype(np.float32)
_r = compare_structured_vs_unstructured(_w, 0.5)
assert isinstance(_r, dict) and set(_r) == {"unstructured", "structured"}, f"expected keys unstructured/structured, got {list(_r)}"
_pu, _su = _r["unstructured"]
_ps, _ss = _r["structured"]
assert _pu.shape == _w.shape and int((_pu == 0).sum()) == 144, f"unstructured keeps the shape with 144 of 288 zeros; got {_pu.shape}, {int((_pu == 0).sum())}"
assert _su["pruned_params"] == 144, f"unstructured stats: expected pruned_params 144, got {_su.get('pruned_params')}"
assert _ps.shape == (4, 4, 3, 3), f"structured result is the smaller tensor (4, 4, 3, 3), got {_ps.shape}"
assert _ss["remaining_filters"] == 4, f"structured stats: expected remaining_filters 4, got {_ss.get('remaining_filters')}"
assert np.linalg.norm(_pu) >= np.linalg.norm(_ps), "magnitude pruning keeps at least as much weight norm as filter pruning"

# %% nbgrader={"grade": true, "grade_id": "test-compare_structured_vs_unstructured-bad-input", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# compare_structured_vs_unstructured: bad input gets a clear error (its own small cell, apart from the algorithm's points)
_w = np.random.default_rng(3).normal(size=(8, 4, 3, 3)).astype(np.float32)
_r = compare_structured_vs_unstructured(_w, 0.5)
assert _r["structured"][0].shape == (4, 4, 3, 3), f"structured result at 50%: expected shape (4, 4, 3, 3), got {_r['structured'][0].shape}"
### BEGIN HIDDEN TESTS
expect_error(ValueError, compare_structured_vs_unstructured, _w.reshape(8, -1), 0.5)
### END HIDDEN TESTS

# %% [markdown]
# ## 3. Which units matter? L1, L2 and first-order Taylor importance
#
# For a layer with weight $W$ of shape $(C_{out}, \dots)$, unit $c$ owns the slice $W_c$ (a
# row of a `Linear`, a filter of a `Conv2d`). Three scores:
#
# * **L1**: $\sum |W_c|$; **L2**: $\sqrt{\sum W_c^2}$ (norm-based, Li et al. 2017).
# * **First-order Taylor** (Molchanov et al. 2017/2019): removing unit $c$ changes its weights
#   by $\Delta W_c = -W_c$; to first order the loss changes by
#   $\Delta L \approx \langle \nabla_{W_c} L, \Delta W_c\rangle = -\sum W_c \odot G_c$. The
#   importance is the size of that change, $\left|\sum W_c \odot G_c\right|$, with $G$ the
#   gradient from a real backward pass. Unlike the norms it looks at the data.
#
# Then `select_units(scores, sparsity)` keeps the `n_kept_units(n, sparsity)` highest-scoring
# units, returned as sorted indices, pruning the lower index first among ties (stable ascending
# sort, as before).
#
# **Exercise 3.** Write `unit_importance(weight, criterion="l2", grad=None)` (a float64 array
# of $C_{out}$ scores; `grad` is required for `"taylor"` and must have the weight's shape;
# an unknown criterion is a `ValueError`) and `select_units(scores, sparsity)`.

# %% nbgrader={"grade": false, "grade_id": "unit_importance", "locked": false, "schema_version": 3, "solution": true}
#| export
IMPORTANCE_CRITERIA = ("l1", "l2", "taylor")


def unit_importance(weight, criterion="l2", grad=None):
    """One score per output unit (axis 0) of `weight`: 'l1', 'l2' or first-order 'taylor' |sum(w * grad)|."""
    weight = validate_weights(weight, "weight", min_ndim=2)
    if not isinstance(criterion, str):
        raise TypeError(f"criterion must be a string, one of {IMPORTANCE_CRITERIA}, got {criterion!r}")
    if criterion not in IMPORTANCE_CRITERIA:
        raise ValueError(f"criterion must be one of {IMPORTANCE_CRITERIA}, got {criterion!r}")
    if criterion == "taylor":
        if grad is None:
            raise ValueError("criterion 'taylor' needs grad (the loss gradient of weight)")
        grad = validate_weights(grad, "grad")
        if grad.shape != weight.shape:
            raise ValueError(f"grad must have the weight's shape {weight.shape}, got {grad.shape}")
    ### BEGIN SOLUTION
    w = weight.astype(np.float64).reshape(weight.shape[0], -1)
    if criterion == "l1":
        return np.abs(w).sum(axis=1)
    if criterion == "l2":
        return np.sqrt((w ** 2).sum(axis=1))
    g = grad.astype(np.float64).reshape(weight.shape[0], -1)
    return np.abs((w * g).sum(axis=1))
    ### END SOLUTION


def select_units(scores, sparsity):
    """Sorted indices of the n_kept_units(len(scores), sparsity) highest scores (lower index pruned first on ties)."""
    scores = validate_weights(scores, "scores", ndim=1)
    sparsity = validate_sparsity(sparsity)
    ### BEGIN SOLUTION
    n_keep = n_kept_units(scores.size, sparsity)
    order = np.argsort(scores, kind="stable")
    return np.sort(order[scores.size - n_keep:])
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-unit_importance", "locked": true, "points": 4, "schema_version": 3, "solution": false}
_w = np.array([[1.0, -2.0, 2.0], [0.5, 0.5, -0.5], [-3.0, 0.0, 0.0]], dtype=np.float32)
_g = np.array([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0], [0.1, 5.0, 5.0]], dtype=np.float32)
for _crit, _want in (("l1", [5.0, 1.5, 3.0]), ("l2", [3.0, math.sqrt(0.75), 3.0]), ("taylor", [1.0, 1.0, 0.3])):
    _got = unit_importance(_w, _crit, grad=_g)
    assert _got.shape == (3,), f"{_crit}: expected one score per unit (3,), got shape {_got.shape}"
    assert np.allclose(_got, _want), f"{_crit}: expected {np.round(_want, 4).tolist()}, got {np.round(_got, 4).tolist()}"
assert unit_importance(_w).tolist() == unit_importance(_w, "l2").tolist(), "the default criterion is 'l2'"
_conv = np.arange(2 * 3 * 2 * 2, dtype=np.float32).reshape(2, 3, 2, 2)
assert np.allclose(unit_importance(_conv, "l1"), [66.0, 210.0]), f"conv filters: L1 over (in, kh, kw); got {unit_importance(_conv, 'l1')}"
_k = select_units(np.array([0.3, 0.9, 0.1, 0.5, 0.7, 0.2]), 0.5)
assert np.asarray(_k).tolist() == [1, 3, 4], f"select_units 50% of 6: expected [1, 3, 4], got {np.asarray(_k).tolist()}"
### BEGIN HIDDEN TESTS
assert np.asarray(select_units(np.ones(4), 0.5)).tolist() == [2, 3], "ties: the lower indices are pruned first"
assert len(select_units(np.arange(5.0), 1.0)) == 1, "at least one unit survives"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "test-unit_importance-bad-input", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# unit_importance / select_units: bad input gets a clear error
_w = np.array([[1.0, -2.0, 2.0], [0.5, 0.5, -0.5], [-3.0, 0.0, 0.0]], dtype=np.float32)
assert np.allclose(unit_importance(_w, "l1"), [5.0, 1.5, 3.0]), "L1 scores of the example"
### BEGIN HIDDEN TESTS
expect_error(ValueError, unit_importance, _w, "l3")
expect_error(TypeError, unit_importance, _w, 2)
expect_error(ValueError, unit_importance, _w, "taylor")
expect_error(ValueError, unit_importance, _w, "taylor", grad=np.ones((3, 2)))
expect_error(ValueError, unit_importance, np.ones(3))
expect_error(ValueError, select_units, np.ones((2, 2)), 0.5)
expect_error(ValueError, select_units, np.array([1.0, np.nan]), 0.5)
expect_error(ValueError, select_units, np.ones(3), -1)
### END HIDDEN TESTS

# %% [markdown]
# ## 4. Removing neurons from a `Linear` pair
#
# Hidden neuron $j$ of an MLP is row $j$ of the first layer's weight (and entry $j$ of its bias)
# **and** column $j$ of the next layer's weight, which reads that neuron's output. Removing the
# neuron means deleting both: the first layer gets fewer outputs, the next one fewer inputs.
# If you only deleted the row, the next layer's matrix product would no longer fit.
#
# Because ReLU(0) = 0, a network in which the neuron's row and bias are merely *zeroed* computes
# exactly the same function as the shrunk one. That is how we test: shrunk output == masked
# output.
#
# **Exercise 4.** Write `shrink_linear_pair(layer, next_layer, keep)` that returns two **new**
# `Linear` layers: `layer` restricted to the output units `keep` (weight rows and bias) and
# `next_layer` restricted to the inputs `keep` (weight columns; its bias is unchanged). Create
# them with `Linear(in_features, out_features)` and copy the sliced arrays into their `weight`
# and `bias` (`new.weight[...] = ...`). The originals must not change. `validate_keep` (given)
# turns `keep` into a sorted array of unique indices.

# %% nbgrader={"grade": false, "grade_id": "shrink_linear_pair", "locked": false, "schema_version": 3, "solution": true}
#| export
def shrink_linear_pair(layer, next_layer, keep):
    """New (layer, next_layer) with only the hidden units `keep` (rows of layer, columns of next_layer)."""
    if not isinstance(layer, Linear) or not isinstance(next_layer, Linear):
        raise TypeError(f"layer and next_layer must be Linear, got {type(layer).__name__} and {type(next_layer).__name__}")
    if next_layer.in_features != layer.out_features:
        raise ValueError(f"next_layer.in_features ({next_layer.in_features}) must equal layer.out_features ({layer.out_features})")
    keep = validate_keep(keep, layer.out_features)
    ### BEGIN SOLUTION
    first = Linear(layer.in_features, len(keep))
    first.weight[...] = layer.weight[keep]
    first.bias[...] = layer.bias[keep]
    second = Linear(len(keep), next_layer.out_features)
    second.weight[...] = next_layer.weight[:, keep]
    second.bias[...] = next_layer.bias
    return first, second
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-shrink_linear_pair", "locked": true, "points": 3, "schema_version": 3, "solution": false}
_l1, _l2 = Linear(6, 5, seed=1), Linear(5, 3, seed=2)
_l1.bias[...] = np.arange(5, dtype=np.float32) / 10
_l2.bias[...] = [0.5, -0.5, 1.0]
_w1, _w2 = _l1.weight.copy(), _l2.weight.copy()
_n1, _n2 = shrink_linear_pair(_l1, _l2, [0, 2, 3])
assert isinstance(_n1, Linear) and isinstance(_n2, Linear), "expected two Linear layers"
assert _n1.weight.shape == (3, 6) and _n1.bias.shape == (3,), f"first layer: expected (3, 6) and (3,), got {_n1.weight.shape}, {_n1.bias.shape}"
assert _n2.weight.shape == (3, 3), f"second layer: expected weight (3, 3) (3 outputs, 3 kept inputs), got {_n2.weight.shape}"
assert _n1.in_features == 6 and _n1.out_features == 3 and _n2.in_features == 3, "in_features/out_features must match the new shapes"
assert np.array_equal(_n1.weight, _w1[[0, 2, 3]]) and np.allclose(_n1.bias, [0.0, 0.2, 0.3]), "first layer keeps rows and bias entries 0, 2, 3"
assert np.array_equal(_n2.weight, _w2[:, [0, 2, 3]]) and np.allclose(_n2.bias, [0.5, -0.5, 1.0]), "second layer keeps columns 0, 2, 3 and all its bias"
assert np.array_equal(_l1.weight, _w1) and _l1.weight.shape == (5, 6), "the original layers must not change"
_x = np.random.default_rng(0).normal(size=(7, 6)).astype(np.float32)
_masked = Linear(6, 5)
_masked.weight[...] = _w1 * np.array([1, 0, 1, 1, 0], dtype=np.float32)[:, None]
_masked.bias[...] = _l1.bias * np.array([1, 0, 1, 1, 0], dtype=np.float32)
_want = Sequential(_masked, ReLU(), _l2).forward(_x)
_got = Sequential(_n1, ReLU(), _n2).forward(_x)
assert np.allclose(_got, _want, atol=1e-5), f"shrunk and masked networks must agree; max difference {np.abs(_got - _want).max():.2e}"
### BEGIN HIDDEN TESTS
_n1, _n2 = shrink_linear_pair(_l1, _l2, np.array([4, 1]))
assert np.array_equal(_n1.weight, _w1[[1, 4]]), "unsorted keep is sorted first"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "test-shrink_linear_pair-bad-input", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# shrink_linear_pair: bad input gets a clear error (its own small cell, apart from the algorithm's points)
_l1, _l2 = Linear(6, 5, seed=1), Linear(5, 3, seed=2)
_n1, _n2 = shrink_linear_pair(_l1, _l2, [0, 2, 3])
assert _n1.weight.shape == (3, 6) and _n2.weight.shape == (3, 3), \
    f"keeping 3 of 5 units: expected weights (3, 6) and (3, 3), got {_n1.weight.shape} and {_n2.weight.shape}"
### BEGIN HIDDEN TESTS
for _args, _exc in (((_l1, _l2, [5]), ValueError), ((_l1, _l2, []), ValueError), ((_l1, _l2, [1, 1]), ValueError),
                    ((_l1, _l2, [0.5]), TypeError), ((_l1, Linear(4, 3), [0]), ValueError), ((_l1, ReLU(), [0]), TypeError)):
    expect_error(_exc, shrink_linear_pair, *_args)
### END HIDDEN TESTS

# %% [markdown]
# ## 5. Channel dependencies through a whole network
#
# In a CNN, removing output channel $c$ of a convolution removes input channel $c$ of the next
# convolution (`weight[:, c]`); ReLU and max-pooling act per channel and pass the change
# through. At `Flatten` the channels become blocks of $H \cdot W$ consecutive features (NCHW
# order: feature $c \cdot HW + p$ is channel $c$, position $p$), so the classifier `Linear`
# loses the columns $c\,HW, \dots, c\,HW + HW - 1$ of every removed channel. This bookkeeping is
# what tools such as Torch-Pruning automate with a dependency graph.
#
# `sliced_linear` and `sliced_conv` (given) copy a layer restricted to some outputs and/or inputs.
#
# **Exercise 5.** Write `shrink_sequential(model, keep)`. `keep` maps the index of a `Linear` or
# `Conv2d` layer in `model.layers` to the output units it keeps. Walk the layers in order and
# build a new `Sequential`:
# * a `Linear`/`Conv2d` keeps its outputs `keep[i]` (all if `i` is not in `keep`) and the inputs
#   that the previous parameterised layer kept;
# * a `Linear` that follows a `Flatten` after a conv keeps the feature columns of the kept
#   channels: with $C$ original channels, `hw = in_features // C` and columns
#   `(kept[:, None] * hw + np.arange(hw)).ravel()`;
# * every other layer (ReLU, MaxPool2d, Flatten) is copied (`copy.deepcopy` is fine, or make a new one).
#
# The model itself must not change. A structured mask (given, `structured_masks`) zeroes the
# same units in place of removing them; the shrunk network must compute what the masked one does.

# %% nbgrader={"grade": false, "grade_id": "shrink_helpers", "locked": true, "schema_version": 3, "solution": false}
#| export
def _sliced_copy(layer, make, out_idx, in_idx):
    """make(n_in, n_out) filled with layer's weight rows (filters) `out_idx` and input columns
    (channels) `in_idx`, and the matching bias entries (None: all)."""
    w, b = layer.weight, layer.bias
    if out_idx is not None:
        w, b = w[out_idx], b[out_idx]
    if in_idx is not None:
        w = w[:, in_idx]
    new = make(w.shape[1], w.shape[0])
    new.weight[...] = w
    new.bias[...] = b
    return new


def sliced_linear(layer, out_idx=None, in_idx=None):
    """A new Linear holding layer's weight rows `out_idx` and columns `in_idx` (None: all)."""
    return _sliced_copy(layer, Linear, out_idx, in_idx)


def sliced_conv(layer, out_idx=None, in_idx=None):
    """A new Conv2d (same kernel, stride, padding) holding filters `out_idx` and input channels `in_idx`."""
    def make(n_in, n_out):
        return Conv2d(n_in, n_out, layer.kernel_size, stride=layer.stride, padding=layer.padding)

    return _sliced_copy(layer, make, out_idx, in_idx)


def _check_keep_map(model, keep):
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a Sequential, got {type(model).__name__}")
    if not isinstance(keep, dict):
        raise TypeError(f"keep must be a dict {{layer index: kept unit indices}}, got {type(keep).__name__}")
    checked = {}
    for index, units in keep.items():
        if isinstance(index, bool) or not isinstance(index, numbers.Integral) or not 0 <= index < len(model.layers):
            raise ValueError(f"keep has key {index!r}, not a layer index in [0, {len(model.layers)})")
        layer = model.layers[index]
        if isinstance(layer, Linear):
            checked[int(index)] = validate_keep(units, layer.out_features, f"keep[{index}]")
        elif isinstance(layer, Conv2d):
            checked[int(index)] = validate_keep(units, layer.out_channels, f"keep[{index}]")
        else:
            raise ValueError(f"keep[{index}] names a {type(layer).__name__}; only Linear and Conv2d layers have units")
    return checked


def structured_masks(model, keep):
    """{param name: float32 mask} that zeroes the weights and biases of the units NOT in keep."""
    keep = _check_keep_map(model, keep)
    masks = {}
    for index, units in keep.items():
        layer = model.layers[index]
        alive = np.zeros(layer.weight.shape[0], dtype=np.float32)
        alive[units] = 1.0
        masks[f"{index}.weight"] = np.broadcast_to(alive.reshape((-1,) + (1,) * (layer.weight.ndim - 1)),
                                                   layer.weight.shape).astype(np.float32)
        masks[f"{index}.bias"] = alive.copy()
    return masks


# %% nbgrader={"grade": false, "grade_id": "shrink_sequential", "locked": false, "schema_version": 3, "solution": true}
#| export
def shrink_sequential(model, keep):
    """A new, smaller Sequential keeping the units `keep[i]` of layer i and the matching inputs downstream."""
    keep = _check_keep_map(model, keep)
    ### BEGIN SOLUTION
    new_layers = []
    in_idx = None          # inputs (features or channels) the next parameterised layer keeps
    prev_units = None      # number of outputs of the previous parameterised layer, before shrinking
    flattened = False      # a Flatten sits between the previous conv and this layer
    for i, layer in enumerate(model.layers):
        out_idx = keep.get(i)
        if isinstance(layer, Linear):
            cols = in_idx
            if in_idx is not None and flattened:
                hw = layer.in_features // prev_units
                cols = (in_idx[:, None] * hw + np.arange(hw)).ravel()
            new_layers.append(sliced_linear(layer, out_idx, cols))
            in_idx, prev_units, flattened = out_idx, layer.out_features, False
        elif isinstance(layer, Conv2d):
            new_layers.append(sliced_conv(layer, out_idx, in_idx))
            in_idx, prev_units, flattened = out_idx, layer.out_channels, False
        else:
            if isinstance(layer, Flatten):
                flattened = True
            new_layers.append(copy.deepcopy(layer))
    return Sequential(*new_layers)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-shrink_sequential", "locked": true, "points": 5, "schema_version": 3, "solution": false}
_x = np.random.default_rng(1).random((5, 1, 8, 8)).astype(np.float32)
_cnn = make_cnn(seed=3)
for _i, _p in _cnn.parameters().items():
    if _i.endswith("bias"):
        _p[...] = np.random.default_rng(7).normal(size=_p.shape) * 0.1
_before = {n: p.copy() for n, p in _cnn.parameters().items()}
_keep = {0: [0, 2, 3, 6], 3: [1, 4, 5, 8, 9, 15]}
_small = shrink_sequential(_cnn, _keep)
assert isinstance(_small, Sequential) and len(_small.layers) == len(_cnn.layers), "expected a Sequential with as many layers"
_shapes = [p.shape for p in _small.parameters().values()]
assert _shapes == [(4, 1, 3, 3), (4,), (6, 4, 3, 3), (6,), (10, 24), (10,)], f"shrunk parameter shapes: got {_shapes}"
assert all(np.array_equal(_before[n], p) for n, p in _cnn.parameters().items()), "the original model must not change"
_masked = copy.deepcopy(_cnn)
apply_masks(_masked, structured_masks(_cnn, _keep))
_want, _got = _masked.forward(_x), _small.forward(_x)
assert np.allclose(_got, _want, atol=1e-5), f"shrunk CNN must compute what the masked CNN computes; max diff {np.abs(_got - _want).max():.2e}"
_mlp = make_mlp(seed=4)
_mlp.parameters()["0.bias"][...] = 0.3
_mk = {0: np.arange(0, 128, 2), 2: np.arange(32)}
_small = shrink_sequential(_mlp, _mk)
assert [p.shape for p in _small.parameters().values()] == [(64, 64), (64,), (32, 64), (32,), (10, 32), (10,)], \
    f"MLP 128->64, 64->32: got {[p.shape for p in _small.parameters().values()]}"
_masked = copy.deepcopy(_mlp)
apply_masks(_masked, structured_masks(_mlp, _mk))
_xm = _x.reshape(5, 64)
assert np.allclose(_small.forward(_xm), _masked.forward(_xm), atol=1e-5), "shrunk MLP must compute what the masked MLP computes"
### BEGIN HIDDEN TESTS
_small = shrink_sequential(_cnn, {})
assert np.allclose(_small.forward(_x), _cnn.forward(_x), atol=1e-6), "an empty keep map copies the model"
_small = shrink_sequential(_cnn, {3: [2]})
assert _small.parameters()["7.weight"].shape == (10, 4), f"one channel of 2x2 positions -> 4 classifier columns; got {_small.parameters()['7.weight'].shape}"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "test-shrink_sequential-bad-input", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# shrink_sequential: bad input gets a clear error (its own small cell, apart from the algorithm's points)
_cnn = make_cnn(seed=3)
_small = shrink_sequential(_cnn, {0: [0, 2, 3, 6]})
assert _small.parameters()["0.weight"].shape == (4, 1, 3, 3), \
    f"keeping 4 channels of layer 0: expected 0.weight (4, 1, 3, 3), got {_small.parameters()['0.weight'].shape}"
### BEGIN HIDDEN TESTS
for _bad, _exc in (({1: [0]}, ValueError), ({9: [0]}, ValueError), ({0: [8]}, ValueError), ([(0, [1])], TypeError), ({0: []}, ValueError)):
    expect_error(_exc, shrink_sequential, _cnn, _bad)
expect_error(TypeError, shrink_sequential, Linear(3, 2), {})
### END HIDDEN TESTS

# %% [markdown]
# ## 6. N:M sparsity (2:4)
#
# NVIDIA's sparse tensor cores (Ampere and later) can skip half of the multiplications when
# **every group of 4 consecutive weights along the input dimension holds at most 2 non-zeros**
# (Mishra et al. 2021): twice the dense *peak* math rate; whole networks speed up by less. That is exactly 50% sparsity with a fixed, cheap-to-index pattern: the hardware stores
# the 2 values plus two 2-bit positions per group.
#
# **Exercise 6.** Write `nm_mask(weights, n=2, m=4)` for a 2-D weight `(out, in)` with `in`
# divisible by `m`: in every group `weights[r, g*m:(g+1)*m]` keep the `n` entries of largest
# magnitude (tie rule as always: within a group, the lower index is pruned first). Return a
# `float32` mask. Hint: reshape the magnitudes to `(out, in // m, m)`, `np.argsort(...,
# axis=-1, kind="stable")`, and `np.put_along_axis`.

# %% nbgrader={"grade": false, "grade_id": "nm_mask", "locked": false, "schema_version": 3, "solution": true}
#| export
def nm_mask(weights, n=2, m=4):
    """float32 N:M mask of a 2-D (out, in) weight: n kept of every m consecutive inputs."""
    weights = validate_weights(weights, ndim=2)
    m = validate_int(m, "m", minimum=1)
    n = validate_int(n, "n", minimum=0)
    if n > m:
        raise ValueError(f"n must be at most m ({m}), got {n}")
    if weights.shape[1] % m:
        raise ValueError(f"weights' input dimension {weights.shape[1]} is not divisible by m={m}")
    ### BEGIN SOLUTION
    rows, cols = weights.shape
    groups = np.abs(weights).reshape(rows, cols // m, m)
    order = np.argsort(groups, axis=-1, kind="stable")
    mask = np.ones(groups.shape, dtype=np.float32)
    np.put_along_axis(mask, order[..., :m - n], 0.0, axis=-1)
    return mask.reshape(rows, cols)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-nm_mask", "locked": true, "points": 3, "schema_version": 3, "solution": false}
_w = np.array([[0.1, -0.9, 0.5, 0.2, 3.0, 1.0, -2.0, 0.0],
               [1.0, 2.0, 3.0, 4.0, -4.0, -3.0, -2.0, -1.0]], dtype=np.float32)
_m = nm_mask(_w)
_want = np.array([[0, 1, 1, 0, 1, 0, 1, 0], [0, 0, 1, 1, 1, 1, 0, 0]], dtype=np.float32)
assert _m.dtype == np.float32 and _m.shape == _w.shape, f"expected a float32 mask of shape {_w.shape}, got {_m.dtype} {_m.shape}"
assert np.array_equal(_m, _want), f"2:4 mask: expected {_want.tolist()}, got {_m.tolist()}"
_big = np.random.default_rng(0).normal(size=(16, 32))
_m = nm_mask(_big, 2, 4)
assert np.all(_m.reshape(16, 8, 4).sum(axis=-1) == 2), "every group of 4 must keep exactly 2"
_m = nm_mask(_big, 1, 8)
assert np.all(_m.reshape(16, 4, 8).sum(axis=-1) == 1), "1:8 keeps one per group of 8"
_g = np.abs(_big).reshape(16, 4, 8)
assert np.array_equal(np.argmax(_g, axis=-1), np.argmax(_m.reshape(16, 4, 8), axis=-1)), "1:8 keeps the largest of each group"
### BEGIN HIDDEN TESTS
assert nm_mask(np.ones((1, 4)), 2, 4).tolist() == [[0, 0, 1, 1]], "ties within a group: the lower index is pruned first"
assert np.all(nm_mask(_big, 4, 4) == 1) and np.all(nm_mask(_big, 0, 4) == 0), "n = m keeps all, n = 0 prunes all"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "test-nm_mask-bad-input", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# nm_mask: bad input gets a clear error (its own small cell, apart from the algorithm's points)
_m = nm_mask(np.array([[0.1, -0.9, 0.5, 0.2]], dtype=np.float32))
assert _m.tolist() == [[0, 1, 1, 0]], f"2:4 of [0.1, -0.9, 0.5, 0.2]: expected [[0, 1, 1, 0]], got {_m.tolist()}"
### BEGIN HIDDEN TESTS
for _args, _exc in (((np.ones((2, 6)), 2, 4), ValueError), ((np.ones((2, 8)), 5, 4), ValueError), ((np.ones(8), 2, 4), ValueError),
                    ((np.ones((2, 8)), 2.0, 4), TypeError), ((np.ones((2, 8)), 2, 0), ValueError), ((np.full((2, 4), np.inf), 2, 4), ValueError)):
    expect_error(_exc, nm_mask, *_args)
### END HIDDEN TESTS

# %% [markdown]
# ## 7. Block sparsity
#
# CPUs and GPUs without N:M support still like **blocks**: if a pruned weight matrix consists of
# whole zero tiles of, say, 4 × 4, a block-sparse kernel skips a tile with one test and
# multiplies the rest with small dense products (block CSR). We score every tile by its L2 norm
# and prune whole tiles, with the exact-count rule of module 01 applied to tiles:
# `prune_count(n_blocks, sparsity)` tiles, the lower tile index (row-major over tiles) first
# among ties.
#
# **Exercise 7.** Write `block_mask(weights, sparsity, block=(4, 4))` for a 2-D weight whose
# shape is divisible by the block shape. Hint: `reshape(R // br, br, C // bc, bc)` and sum the
# squares over axes 1 and 3; build the tile mask and expand it with `np.kron` or `np.repeat`.

# %% nbgrader={"grade": false, "grade_id": "block_mask", "locked": false, "schema_version": 3, "solution": true}
#| export
def block_mask(weights, sparsity, block=(4, 4)):
    """float32 mask pruning exactly prune_count(n_blocks, sparsity) whole blocks of smallest L2 norm."""
    weights = validate_weights(weights, ndim=2)
    sparsity = validate_sparsity(sparsity)
    if not isinstance(block, (tuple, list)) or len(block) != 2:
        raise TypeError(f"block must be a pair (rows, cols), got {block!r}")
    br, bc = (validate_int(b, "block", minimum=1) for b in block)
    rows, cols = weights.shape
    if rows % br or cols % bc:
        raise ValueError(f"weights shape {weights.shape} is not divisible by block {(br, bc)}")
    ### BEGIN SOLUTION
    tiles = (weights.astype(np.float64) ** 2).reshape(rows // br, br, cols // bc, bc).sum(axis=(1, 3))
    k = prune_count(tiles.size, sparsity)
    order = np.argsort(tiles, axis=None, kind="stable")
    tile_mask = np.ones(tiles.size, dtype=np.float32)
    tile_mask[order[:k]] = 0.0
    tile_mask = tile_mask.reshape(tiles.shape)
    return np.repeat(np.repeat(tile_mask, br, axis=0), bc, axis=1)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-block_mask", "locked": true, "points": 3, "schema_version": 3, "solution": false}
_w = np.zeros((4, 6), dtype=np.float32)
_w[:2, :2], _w[:2, 2:4], _w[:2, 4:], _w[2:, :2], _w[2:, 2:4], _w[2:, 4:] = 1.0, 5.0, 0.1, 2.0, -0.5, 3.0
_m = block_mask(_w, 0.5, block=(2, 2))
_want = np.array([[0, 0, 1, 1, 0, 0], [0, 0, 1, 1, 0, 0], [1, 1, 0, 0, 1, 1], [1, 1, 0, 0, 1, 1]], dtype=np.float32)
assert _m.dtype == np.float32 and _m.shape == _w.shape, f"expected a float32 mask of shape {_w.shape}, got {_m.dtype} {_m.shape}"
assert np.array_equal(_m, _want), f"2x2 blocks at 50%: expected {_want.tolist()}, got {_m.tolist()}"
_big = np.random.default_rng(5).normal(size=(16, 32))
_m = block_mask(_big, 0.75)
_tiles = _m.reshape(4, 4, 8, 4)
assert np.all((_tiles.min(axis=(1, 3)) == _tiles.max(axis=(1, 3)))), "each 4x4 block must be all kept or all pruned"
assert int((_m == 0).sum()) == 24 * 16, f"75% of 32 blocks = 24 blocks of 16 weights; got {int((_m == 0).sum())} zeros"
### BEGIN HIDDEN TESTS
assert block_mask(np.ones((2, 4)), 0.5, block=(2, 2)).tolist() == [[0, 0, 1, 1], [0, 0, 1, 1]], "ties: the lower block index goes first"
assert np.all(block_mask(_big, 0.0) == 1) and np.all(block_mask(_big, 1.0) == 0), "sparsity 0 / 1"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "test-block_mask-bad-input", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# block_mask: bad input gets a clear error (its own small cell, apart from the algorithm's points)
_m = block_mask(np.array([[1.0, 1.0, 5.0, 5.0], [1.0, 1.0, 5.0, 5.0]], dtype=np.float32), 0.5, block=(2, 2))
assert _m.tolist() == [[0, 0, 1, 1], [0, 0, 1, 1]], f"2x2 blocks at 50%: expected the left block pruned, got {_m.tolist()}"
### BEGIN HIDDEN TESTS
for _args, _exc in (((np.ones((4, 6)), 0.5, (4, 4)), ValueError), ((np.ones((4, 4)), 1.5), ValueError), ((np.ones(16), 0.5), ValueError),
                    ((np.ones((4, 4)), 0.5, 4), TypeError), ((np.ones((4, 4)), 0.5, (0, 2)), ValueError)):
    expect_error(_exc, block_mask, *_args)
### END HIDDEN TESTS

# %% [markdown]
# ## 8. Pruning attention heads
#
# Multi-head attention with $H$ heads of size $d_h$ projects the input with $W_Q, W_K, W_V$ of
# shape $(H d_h, d)$ (PyTorch's `(out, in)` convention); rows $h\,d_h \dots (h+1) d_h - 1$ belong
# to head $h$. The heads' outputs are concatenated and projected by $W_O$ of shape
# $(d, H d_h)$, whose **columns** of the same range read head $h$. Michel et al. (2019) found
# that, in trained transformers, many heads can go at test time with little loss of accuracy. Removing head $h$ deletes its rows of $W_Q, W_K, W_V$
# and its columns of $W_O$; the attention scale $1/\sqrt{d_h}$ does not change.
#
# `multihead_attention` (given) is a small numpy forward pass with an optional `head_mask`
# (one 0/1 per head, multiplied into each head's output as in Michel et al.).
#
# **Exercise 8.** Write `head_importance(wq, wk, wv, wo, n_heads)`: for each head the L2 norm of
# all its weights (its rows of the three projections and its columns of $W_O$), and
# `prune_attention_heads(wq, wk, wv, wo, n_heads, sparsity=0.5, scores=None)`: keep the
# `n_kept_units(n_heads, sparsity)` heads with the highest scores (default: `head_importance`;
# `select_units` from exercise 3 does the choosing) and return a dict with the shrunk `wq`,
# `wk`, `wv`, `wo`, the sorted `kept_heads` and the new `n_heads`.

# %% nbgrader={"grade": false, "grade_id": "attention_helpers", "locked": true, "schema_version": 3, "solution": false}
#| export
def _check_attention(wq, wk, wv, wo, n_heads):
    wq = validate_weights(wq, "wq", ndim=2)
    wk = validate_weights(wk, "wk", ndim=2)
    wv = validate_weights(wv, "wv", ndim=2)
    wo = validate_weights(wo, "wo", ndim=2)
    n_heads = validate_int(n_heads, "n_heads", minimum=1)
    if wk.shape != wq.shape or wv.shape != wq.shape:
        raise ValueError(f"wq, wk and wv must have one shape, got {wq.shape}, {wk.shape}, {wv.shape}")
    if wq.shape[0] % n_heads:
        raise ValueError(f"wq has {wq.shape[0]} rows, not divisible by n_heads={n_heads}")
    if wo.shape[1] != wq.shape[0]:
        raise ValueError(f"wo must have {wq.shape[0]} columns (n_heads * d_head), got shape {wo.shape}")
    return wq, wk, wv, wo, n_heads


def multihead_attention(x, wq, wk, wv, wo, n_heads, head_mask=None):
    """Self-attention of x (T, d) or (B, T, d) with projections (H*dh, d) and wo (d, H*dh); no biases."""
    wq, wk, wv, wo, n_heads = _check_attention(wq, wk, wv, wo, n_heads)
    x = validate_weights(x, "x", min_ndim=2)
    if x.shape[-1] != wq.shape[1]:
        raise ValueError(f"x must have {wq.shape[1]} features in its last axis, got shape {x.shape}")
    d_head = wq.shape[0] // n_heads

    def heads(w):  # (..., T, H*dh) -> (..., H, T, dh)
        y = x @ w.T
        return np.swapaxes(y.reshape(y.shape[:-1] + (n_heads, d_head)), -2, -3)

    q, k, v = heads(wq), heads(wk), heads(wv)
    scores = q @ np.swapaxes(k, -1, -2) / math.sqrt(d_head)
    scores = scores - scores.max(axis=-1, keepdims=True)
    att = np.exp(scores)
    att /= att.sum(axis=-1, keepdims=True)
    out = att @ v                                                     # (..., H, T, dh)
    if head_mask is not None:
        head_mask = validate_weights(head_mask, "head_mask", ndim=1)
        if head_mask.shape != (n_heads,):
            raise ValueError(f"head_mask must have shape ({n_heads},), got {head_mask.shape}")
        out = out * head_mask[:, None, None]
    out = np.swapaxes(out, -2, -3)                                    # (..., T, H, dh)
    return out.reshape(out.shape[:-2] + (n_heads * d_head,)) @ wo.T


# %% nbgrader={"grade": false, "grade_id": "prune_attention_heads", "locked": false, "schema_version": 3, "solution": true}
#| export
def head_importance(wq, wk, wv, wo, n_heads):
    """L2 norm of every head's weights: its rows of wq, wk, wv and its columns of wo."""
    wq, wk, wv, wo, n_heads = _check_attention(wq, wk, wv, wo, n_heads)
    ### BEGIN SOLUTION
    d_head = wq.shape[0] // n_heads
    sq = lambda a: (a.astype(np.float64) ** 2)
    per_row = sq(wq).sum(axis=1) + sq(wk).sum(axis=1) + sq(wv).sum(axis=1) + sq(wo).sum(axis=0)
    return np.sqrt(per_row.reshape(n_heads, d_head).sum(axis=1))
    ### END SOLUTION


def prune_attention_heads(wq, wk, wv, wo, n_heads, sparsity=0.5, scores=None):
    """Remove the least important heads; returns {'wq', 'wk', 'wv', 'wo', 'kept_heads', 'n_heads'}."""
    wq, wk, wv, wo, n_heads = _check_attention(wq, wk, wv, wo, n_heads)
    sparsity = validate_sparsity(sparsity)
    if scores is not None:
        scores = validate_weights(scores, "scores", ndim=1)
        if scores.shape != (n_heads,):
            raise ValueError(f"scores must have shape ({n_heads},), got {scores.shape}")
    ### BEGIN SOLUTION
    if scores is None:
        scores = head_importance(wq, wk, wv, wo, n_heads)
    kept = select_units(scores, sparsity)
    d_head = wq.shape[0] // n_heads
    rows = (kept[:, None] * d_head + np.arange(d_head)).ravel()
    return {"wq": wq[rows].copy(), "wk": wk[rows].copy(), "wv": wv[rows].copy(), "wo": wo[:, rows].copy(),
            "kept_heads": kept, "n_heads": int(kept.size)}
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-prune_attention_heads", "locked": true, "points": 4, "schema_version": 3, "solution": false}
_rng = np.random.default_rng(0)
_d, _H, _dh = 12, 4, 3
_scale = np.repeat([1.0, 0.2, 2.0, 0.5], _dh)[:, None]
_wq, _wk, _wv = (_rng.normal(size=(_H * _dh, _d)) * _scale for _ in range(3))
_wo = _rng.normal(size=(_d, _H * _dh)) * _scale.T
_imp = head_importance(_wq, _wk, _wv, _wo, _H)
_want = [math.sqrt(sum((a[h * 3:h * 3 + 3] ** 2).sum() for a in (_wq, _wk, _wv)) + (_wo[:, h * 3:h * 3 + 3] ** 2).sum()) for h in range(4)]
assert np.allclose(_imp, _want), f"head_importance: expected {np.round(_want, 3).tolist()}, got {np.round(_imp, 3).tolist()}"
_r = prune_attention_heads(_wq, _wk, _wv, _wo, _H, 0.5)
assert np.asarray(_r["kept_heads"]).tolist() == [0, 2] and _r["n_heads"] == 2, f"keeps heads 0 and 2; got {_r['kept_heads']}, n_heads {_r['n_heads']}"
assert _r["wq"].shape == (6, 12) and _r["wo"].shape == (12, 6), f"shrunk shapes: expected wq (6, 12), wo (12, 6); got {_r['wq'].shape}, {_r['wo'].shape}"
_x = _rng.normal(size=(2, 5, _d))
_want = multihead_attention(_x, _wq, _wk, _wv, _wo, _H, head_mask=np.array([1.0, 0.0, 1.0, 0.0]))
_got = multihead_attention(_x, _r["wq"], _r["wk"], _r["wv"], _r["wo"], _r["n_heads"])
assert np.allclose(_got, _want, atol=1e-10), f"pruned attention must equal masked attention; max diff {np.abs(_got - _want).max():.2e}"
_r = prune_attention_heads(_wq, _wk, _wv, _wo, _H, 0.25, scores=np.array([4.0, 3.0, 2.0, 1.0]))
assert np.asarray(_r["kept_heads"]).tolist() == [0, 1, 2], f"external scores: keep the 3 highest, got {_r['kept_heads']}"
### BEGIN HIDDEN TESTS
_r = prune_attention_heads(_wq, _wk, _wv, _wo, _H, 0.5, scores=np.ones(4))
assert np.asarray(_r["kept_heads"]).tolist() == [2, 3], f"ties: the lower heads are pruned first, got {_r['kept_heads']}"
assert prune_attention_heads(_wq, _wk, _wv, _wo, _H, 1.0)["n_heads"] == 1, "one head always survives"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "test-prune_attention_heads-bad-input", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# head_importance / prune_attention_heads: bad input gets a clear error
_rng = np.random.default_rng(0)
_d, _H, _dh = 12, 4, 3
_wq, _wk, _wv = (_rng.normal(size=(_H * _dh, _d)) for _ in range(3))
_wo = _rng.normal(size=(_d, _H * _dh))
assert len(head_importance(_wq, _wk, _wv, _wo, _H)) == _H, "one score per head"
### BEGIN HIDDEN TESTS
expect_error(ValueError, head_importance, _wq, _wk, _wv, _wo, 5)
expect_error(ValueError, head_importance, _wq, _wk[:6], _wv, _wo, 4)
expect_error(ValueError, prune_attention_heads, _wq, _wk, _wv, _wo[:, :6], 4)
expect_error(ValueError, prune_attention_heads, _wq, _wk, _wv, _wo, 4, scores=np.ones(3))
expect_error(TypeError, prune_attention_heads, _wq, _wk, _wv, _wo, 4.0)
expect_error(ValueError, prune_attention_heads, _wq, _wk, _wv, _wo, 4, 2.0)
### END HIDDEN TESTS

# %% [markdown]
# ## 9. Measuring: parameters, FLOPs and latency
#
# `count_flops` (module 00) counts 2 × multiply-adds of the `Linear` and `Conv2d` layers per
# sample; `num_parameters()` counts weights and biases. Latency we **measure**: run the forward
# pass a few times to warm up, then time many runs and take the **median** (robust to the odd
# slow run on a shared machine). Models that are compared are timed in turn, one run each per
# round, so that load from other programs affects them alike.

# %% nbgrader={"grade": false, "grade_id": "measure", "locked": true, "schema_version": 3, "solution": false}
#| export
def measure_latencies(models, x, repeats=30, warmup=3):
    """{name: median wall time in ms of model.forward(x)} for a dict of models, timed in turn
    (round-robin), so that a burst of load on a shared machine hits all of them alike."""
    if not isinstance(models, dict) or not models:
        raise TypeError(f"models must be a non-empty dict {{name: model}}, got {type(models).__name__}")
    repeats = validate_int(repeats, "repeats", minimum=1)
    warmup = validate_int(warmup, "warmup", minimum=0)
    x = validate_weights(x, "x")  # checked once here; the timed passes run without per-layer checks
    with inference_mode():
        return median_times_ms({name: (lambda m=model: m.forward(x)) for name, model in models.items()},
                               repeats=repeats, warmup=warmup)


def measure_latency(model, x, repeats=30, warmup=3):
    """Median wall time in milliseconds of model.forward(x) over `repeats` runs after `warmup` runs."""
    return measure_latencies({"model": model}, x, repeats, warmup)["model"]


def taylor_importance(model, X, y, batch_size=128, squared=True):
    """First-order Taylor scores {layer index: scores} of every Linear/Conv2d over mini-batches of
    (X, y) (one real forward and backward pass each) of the softmax cross-entropy loss.
    squared=True averages the per-batch (sum w*grad)^2, as Molchanov et al. (2019) accumulate it;
    squared=False averages |sum w*grad|. Pass held-out data: see the caveat in the text."""
    loss = CrossEntropyLoss()
    batch_size = validate_int(batch_size, "batch_size", minimum=1)
    if not isinstance(squared, (bool, np.bool_)):
        raise TypeError(f"squared must be True or False, got {squared!r}")
    layers = {i: layer for i, layer in enumerate(model.layers) if isinstance(layer, (Linear, Conv2d))}
    totals = {i: np.zeros(layer.weight.shape[0]) for i, layer in layers.items()}
    n_batches = 0
    for start in range(0, len(X), batch_size):
        xb, yb = X[start:start + batch_size], y[start:start + batch_size]
        model.zero_grad()
        loss.forward(model.forward(xb), yb)
        model.backward(loss.backward())
        for i, layer in layers.items():
            score = unit_importance(layer.weight, "taylor", grad=layer.grad_weight)
            totals[i] += score ** 2 if squared else score
        n_batches += 1
    model.zero_grad()
    return {i: t / n_batches for i, t in totals.items()}


# %% [markdown]
# ## 10. The real result: half of the neurons and filters, removed
#
# Two experiments, each on the data where it means something:
#
# * **Which units to remove** (criteria, and the semi-structured patterns) is a question of
#   accuracy, so we ask it on MNIST-1D (module 00), where an MLP is capacity-limited and
#   removing half of its neurons costs real accuracy, with three seeds and equal budgets.
# * **What removing them buys in time** is a question of shapes, so the digits MLP and CNN
#   (64 → 128 → 64 → 10, and two convolutions) serve, as in module 00.
#
# ### Which criterion? L1, L2, Taylor and random at 50% of the hidden neurons
#
# For each seed we train a dense MNIST-1D MLP (40 → 128 → 64 → 10), remove 50% of the neurons
# of both hidden layers by each criterion, and fine-tune each **smaller dense** network for the
# same `FT_EPOCHS` epochs.
#
# **Taylor, done properly.** The first-order Taylor score uses the loss gradient, and on the
# data a model was trained on that gradient is small and says more about which examples are
# not yet fitted than about which units matter. Molchanov et al. estimate it on batches the
# model is not fitted to, and accumulate the **squared** per-batch score $(\sum W_c \odot G_c)^2$
# (a signed per-batch score averages out towards zero). We hold out 500 of the training
# examples for it (the dense model never trains on them) and compare with the naive variant:
# $|\sum W_c \odot G_c|$ averaged over the training data.

# %%
mnist1d = load_mnist1d(seed=0)
N_HELD = 500
M_train, m_train = mnist1d.X_train[:-N_HELD], mnist1d.y_train[:-N_HELD]
M_held, m_held = mnist1d.X_train[-N_HELD:], mnist1d.y_train[-N_HELD:]
M_test, m_test = mnist1d.X_test, mnist1d.y_test
N_TEST = len(m_test)
SEEDS, M_DENSE_EPOCHS, FT_EPOCHS = (0, 1, 2), 25, 4
CRITERIA = ("l1", "l2", "taylor (held-out, squared)", "taylor (train, |.|)", "random")


def fmt(values, scale=100.0, digits=1):
    mean, spread = mean_and_spread(np.asarray(values) * scale)
    return f"{mean:.{digits}f} ± {spread:.{digits}f}"


def keep_for(model, criterion, seed, sparsity=0.5):
    units = [i for i, layer in enumerate(model.layers) if isinstance(layer, Linear)][:-1]  # hidden layers
    if criterion == "random":
        rng = np.random.default_rng(1000 + seed)
        return {i: np.sort(rng.permutation(model.layers[i].out_features)[:n_kept_units(model.layers[i].out_features, sparsity)])
                for i in units}
    if criterion.startswith("taylor"):
        held = criterion == "taylor (held-out, squared)"
        scores = taylor_importance(model, M_held if held else M_train, m_held if held else m_train, squared=held)
        return {i: select_units(scores[i], sparsity) for i in units}
    return {i: select_units(unit_importance(model.layers[i].weight, criterion), sparsity) for i in units}


_start = time.perf_counter()
m_dense, crit = {}, {}  # crit[criterion, seed] = (accuracy before, after fine-tuning)
for seed in SEEDS:
    m_dense[seed] = make_mlp(seed=seed, in_features=M_train.shape[1])
    train(m_dense[seed], M_train, m_train, epochs=M_DENSE_EPOCHS, lr=2e-3, seed=seed)
    for criterion in CRITERIA:
        small = shrink_sequential(m_dense[seed], keep_for(m_dense[seed], criterion, seed))
        before = evaluate(small, M_test, m_test)
        train(small, M_train, m_train, epochs=FT_EPOCHS, lr=2e-3, seed=seed + 1)
        crit[criterion, seed] = (before, evaluate(small, M_test, m_test))
dense_accs = [evaluate(m_dense[k], M_test, m_test) for k in SEEDS]
print(f"{len(SEEDS)} seeds x {len(CRITERIA)} criteria took {time.perf_counter() - _start:.1f} s; "
      f"dense {fmt(dense_accs)}%, train accuracy {fmt([evaluate(m_dense[k], M_train, m_train) for k in SEEDS])}%")
print(f"{'criterion':>27} | {'before fine-tuning':>18} | {'after ' + str(FT_EPOCHS) + ' epochs':>14} | vs random after (examples)")
for criterion in CRITERIA:
    before = [crit[criterion, k][0] for k in SEEDS]
    after = [crit[criterion, k][1] for k in SEEDS]
    vs_random = [N_TEST * (crit[criterion, k][1] - crit["random", k][1]) for k in SEEDS]
    print(f"{criterion:>27} | {fmt(before):>18} | {fmt(after):>14} | {fmt(vs_random, 1, 0):>26}")
print(f"(mean ± std over seeds {SEEDS}, in %; one test example = {100 / N_TEST:.2f} points)")

# %% [markdown]
# **What the table teaches** (read it with its spreads; the cell below prints the verdicts).
# The usual story is that importance scores "know" which units matter, and that the
# data-driven Taylor score knows best. At 50% of the neurons removed at once, this network
# does not support much of that: right after removal every criterion, random included, has
# destroyed most of the accuracy; the held-out Taylor score keeps the most on average, but its
# lead is about the size of its own seed spread, and the norms are no better than random.
# After the same fine-tuning, the scored criteria end up ahead of random by a margin the
# verdicts below put next to its spread, and L1, L2 and both Taylor variants cannot be told
# apart. Why Taylor does not shine here: it is a *first-order*
# estimate of the loss change for removing **one** unit with all others in place; removing
# half of a layer at once is far outside where that linear estimate holds, and 500 held-out
# examples give a noisy estimate of its square. The naive variant on training data has a
# further flaw: where the model fits its training data, the gradients it averages are small
# and mostly noise. Scores matter more when fewer units go at a time (iteratively, as
# Molchanov et al. do) and when there is no budget to recover.

# %%
def verdict(diffs, unit="test examples"):
    """A paired per-seed difference, judged against its own spread."""
    mean, spread = mean_and_spread(diffs)
    if abs(mean) <= spread:
        return f"{mean:+.0f} ± {spread:.0f} {unit}: within one standard deviation, not distinguishable with {len(diffs)} seeds"
    return f"{mean:+.0f} ± {spread:.0f} {unit}: {'ahead' if mean > 0 else 'behind'} by more than one standard deviation"


for a, b in (("l2", "random"), ("l1", "l2"), ("taylor (held-out, squared)", "l2"), ("taylor (held-out, squared)", "taylor (train, |.|)")):
    for phase, label in ((0, "before fine-tuning"), (1, "after fine-tuning")):
        print(f"{a} vs {b}, {label}: " + verdict([N_TEST * (crit[a, k][phase] - crit[b, k][phase]) for k in SEEDS]))

# %% [markdown]
# Then we prepare the digits MLP and CNN for the timing experiments below.

# %%
digits = load_digits_split()
X_train, y_train, X_test, y_test = digits.X_train, digits.y_train, digits.X_test, digits.y_test
I_train, I_test = as_images(X_train), as_images(X_test)
FINETUNE_EPOCHS = 10

_start = time.perf_counter()
mlp = make_mlp(seed=0)
train(mlp, X_train, y_train, epochs=30, lr=2e-3, seed=0)
cnn = make_cnn(seed=0)
train(cnn, I_train, y_train, epochs=15, lr=1e-2, seed=0)
acc = {"MLP dense": evaluate(mlp, X_test, y_test), "CNN dense": evaluate(cnn, I_test, y_test)}
mlp_units = [i for i, layer in enumerate(mlp.layers) if isinstance(layer, Linear)][:-1]   # hidden layers only


def mlp_keep(criterion, sparsity=0.5):
    return {i: select_units(unit_importance(mlp.layers[i].weight, criterion), sparsity) for i in mlp_units}


mlp_small = shrink_sequential(mlp, mlp_keep("l2"))
train(mlp_small, X_train, y_train, epochs=FINETUNE_EPOCHS, lr=2e-3, seed=1)
acc["MLP 50% neurons"] = evaluate(mlp_small, X_test, y_test)
print(f"trained in {time.perf_counter() - _start:.1f} s:", {k: round(v, 4) for k, v in acc.items()})

# %% [markdown]
# ### The CNN: 50% of the filters of both convolutions (L2), then the classifier's columns

# %%
conv_units = [i for i, layer in enumerate(cnn.layers) if isinstance(layer, Conv2d)]
cnn_keep = {i: prune_conv_filters(cnn.layers[i].weight, 0.5)[1] for i in conv_units}
cnn_small = shrink_sequential(cnn, cnn_keep)
acc["CNN 50% filters, before fine-tuning"] = evaluate(cnn_small, I_test, y_test)
train(cnn_small, I_train, y_train, epochs=FINETUNE_EPOCHS, lr=1e-2, seed=1)
acc["CNN 50% filters"] = evaluate(cnn_small, I_test, y_test)
print(cnn_small)
print({k: round(v, 4) for k, v in acc.items()})

# %% [markdown]
# ### Parameters, FLOPs and measured latency
#
# Latency is the median forward time over repeated runs on a batch of test samples (tiled to the
# batch size). We also time the MLP with 50% of its neurons *masked* (zeroed, not removed): same
# shapes, same work, no speedup.

# %%
mlp_masked = copy.deepcopy(mlp)
apply_masks(mlp_masked, structured_masks(mlp, mlp_keep("l2")))
BATCHES = (1, 16, 256, 1024)
Xb = {b: np.resize(X_test, (b, 64)).astype(np.float32) for b in BATCHES}
Ib = {b: as_images(Xb[b]) for b in BATCHES}
models = {"MLP dense": (mlp, Xb), "MLP 50% neurons masked": (mlp_masked, Xb), "MLP 50% neurons": (mlp_small, Xb),
          "CNN dense": (cnn, Ib), "CNN 50% filters": (cnn_small, Ib)}
latency = {}
for family in ("MLP", "CNN"):
    group = {name: model for name, (model, _) in models.items() if name.startswith(family)}
    inputs = Xb if family == "MLP" else Ib
    for b in BATCHES:
        for name, ms in measure_latencies(group, inputs[b], repeats=31 if b < 1024 else 11).items():
            latency[name, b] = ms

rows = []
for name, (model, inputs) in models.items():
    shape = inputs[1].shape[1:]
    dense_name = name.split()[0] + " dense"
    flops = count_flops(model, shape)
    rows.append((name, model.num_parameters(), flops, count_flops(models[dense_name][0], shape) / flops,
                 latency[name, 256], latency[dense_name, 256] / latency[name, 256],
                 latency[dense_name, 1024] / latency[name, 1024]))
print(f"{'model':>24} | {'params':>7} | {'FLOPs':>7} | {'FLOP red.':>9} | {'ms @256':>8} | {'speedup @256':>12} | {'speedup @1024':>13}")
for name, params, flops, red, ms, sp256, sp1024 in rows:
    print(f"{name:>24} | {params:>7} | {flops:>7} | {red:>8.2f}x | {ms:>8.3f} | {sp256:>11.2f}x | {sp1024:>12.2f}x")
print("test accuracy:", {k: round(v, 4) for k, v in acc.items()})

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for ax, family, small_name in ((axes[0], "MLP", "MLP 50% neurons"), (axes[1], "CNN", "CNN 50% filters")):
    speedups = [latency[f"{family} dense", b] / latency[small_name, b] for b in BATCHES]
    shape = models[small_name][1][1].shape[1:]
    flop_red = count_flops(models[f"{family} dense"][0], shape) / count_flops(models[small_name][0], shape)
    ax.bar([str(b) for b in BATCHES], speedups, color="tab:blue", label="measured speedup")
    ax.axhline(flop_red, color="tab:red", ls="--", label=f"FLOP reduction {flop_red:.2f}x")
    ax.axhline(1.0, color="gray", lw=0.8)
    ax.set_xlabel("batch size")
    ax.set_title(f"{family}: 50% of units removed")
axes[0].set_ylabel("dense time / pruned time")
axes[0].legend()
plt.tight_layout()
plt.show()
for family, small_name in (("MLP", "MLP 50% neurons"), ("CNN", "CNN 50% filters")):
    print(family, "latency ms (dense -> pruned):",
          {b: (round(latency[f"{family} dense", b], 3), round(latency[small_name, b], 3)) for b in BATCHES})

# %% [markdown]
# Where does the time go? Timing every layer on its own input (batch 1024) and putting its FLOPs
# beside it shows which layers shrink as much as their arithmetic and which do not.

# %%
def layer_inputs(model, x):
    inputs = []
    for layer in model.layers:
        inputs.append(x)
        x = layer.forward(x)
    return inputs


def paired_layer_times(model_a, model_b, x, repeats=21):
    """Median ms of each layer of two models on the inputs they see, layer pairs timed in turn."""
    pairs = list(zip(model_a.layers, layer_inputs(model_a, x), model_b.layers, layer_inputs(model_b, x)))
    fns = {}
    for i, (la, xa, lb, xb) in enumerate(pairs):
        fns[i, 0] = lambda layer=la, inp=xa: layer.forward(inp)
        fns[i, 1] = lambda layer=lb, inp=xb: layer.forward(inp)
    with inference_mode():  # the layers' own input checks are not part of the method
        med = median_times_ms(fns, repeats=repeats, warmup=2)
    return [med[i, 0] for i in range(len(pairs))], [med[i, 1] for i in range(len(pairs))]


def layer_flops(model, shape):
    out, x = [], np.zeros((1,) + shape, dtype=np.float32)
    for layer in model.layers:
        out.append(count_flops(Sequential(layer), x.shape[1:]))
        x = layer.forward(x)
    return out


for family, dense_model, small_model, inputs in (("MLP", mlp, mlp_small, Xb), ("CNN", cnn, cnn_small, Ib)):
    x = inputs[1024]
    t_dense, t_small = paired_layer_times(dense_model, small_model, x)
    f_dense, f_small = layer_flops(dense_model, x.shape[1:]), layer_flops(small_model, x.shape[1:])
    print(f"{family}, batch 1024: {'layer':>30} | {'ms dense':>8} | {'ms pruned':>9} | {'time ratio':>10} | {'FLOP ratio':>10}")
    for layer, td, ts, fd, fs in zip(dense_model.layers, t_dense, t_small, f_dense, f_small):
        flop_ratio = f"{fd / fs:>9.2f}x" if fs else f"{'-':>10}"
        print(f"{'':>16}{type(layer).__name__:>30} | {td:>8.3f} | {ts:>9.3f} | {td / ts:>9.2f}x | {flop_ratio}")
    print(f"{'':>16}{'sum of layers':>30} | {sum(t_dense):>8.3f} | {sum(t_small):>9.3f} | {sum(t_dense) / sum(t_small):>9.2f}x | "
          f"{sum(f_dense) / sum(f_small):>9.2f}x")

# %% [markdown]
# **Why the measured speedup is not the FLOP reduction.** Read the tables and the plot:
#
# * At **batch 1** every layer does a few thousand multiply-adds, far less than the fixed cost of
#   a call: Python, numpy dispatch, allocating the output. Those costs do not
#   shrink with the layer, so the speedup is small.
# * At **large batches** the matrix products dominate and the speedup moves toward the FLOP
#   reduction, but as a rule it stays below it (single numbers vary from run to run on a shared
#   machine, and cache effects can make one batch size an outlier). The per-layer table shows why: ReLU and max-pooling cost time
#   (in the CNN, pooling costs about as much as the convolutions) but no counted FLOPs, and they
#   shrink only with the activations (by the fraction of units removed, not by the FLOP ratio,
#   which multiplies the reductions of a layer's inputs and outputs); the first layer still reads every input
#   (im2col copies the unchanged input image for the first convolution); and a BLAS kernel runs
#   less efficiently on thinner matrices, so even a matrix product's time ratio can stay below its
#   FLOP ratio.
# * The **masked** MLP does exactly the dense work: zeros are multiplied like any other number.
#   Unstructured sparsity only pays off with sparse formats and kernels (modules 03 and 06).

# %% [markdown]
# ### Semi-structured masks: 2:4 and blocks against unstructured, all at 50%
#
# Back on MNIST-1D and its three seeds: each pattern removes half of every weight matrix of the
# dense MLP (input sizes 40, 128 and 64 are divisible by 4; blocks are 4 × 4, or 2 × 4 for the
# 10-row output layer), then gets the same `FT_EPOCHS` epochs of masked fine-tuning. The
# stricter the pattern, the fewer choices the mask has: unstructured picks any half, 2:4 any 2
# of each 4 neighbours, a block mask whole 4 × 4 tiles.

# %%
patterns = {
    "unstructured 50%": lambda w: magnitude_mask(w, 0.5),
    "2:4": lambda w: nm_mask(w, 2, 4),
    "blocks 50%": lambda w: block_mask(w, 0.5, block=(2, 4) if w.shape[0] % 4 else (4, 4)),
}
_start = time.perf_counter()
pattern_acc = {}
for seed in SEEDS:
    names = [n for n, p in m_dense[seed].parameters().items() if p.ndim == 2]
    for label, make in patterns.items():
        model = copy.deepcopy(m_dense[seed])
        masks = {n: make(model.parameters()[n]) for n in names}
        apply_masks(model, masks)
        before = evaluate(model, M_test, m_test)
        finetune_masked(model, masks, M_train, m_train, epochs=FT_EPOCHS, lr=2e-3, seed=seed + 1)
        pattern_acc[label, seed] = (before, evaluate(model, M_test, m_test))
print(f"patterns took {time.perf_counter() - _start:.1f} s; test accuracy (%), mean ± std over seeds {SEEDS}")
print(f"{'pattern':>18} | {'before fine-tuning':>18} | {'after':>11} | vs unstructured after (examples)")
for label in patterns:
    vs = [N_TEST * (pattern_acc[label, k][1] - pattern_acc["unstructured 50%", k][1]) for k in SEEDS]
    print(f"{label:>18} | {fmt([pattern_acc[label, k][0] for k in SEEDS]):>18} | "
          f"{fmt([pattern_acc[label, k][1] for k in SEEDS]):>11} | {fmt(vs, 1, 0):>32}")
for label in ("2:4", "blocks 50%"):
    print(f"{label} vs unstructured, after fine-tuning: "
          + verdict([N_TEST * (pattern_acc[label, k][1] - pattern_acc["unstructured 50%", k][1]) for k in SEEDS]))

# %% [markdown]
# The cost of a pattern is the accuracy it gives up against unstructured pruning at the same
# sparsity; its benefit is hardware support. For 2:4 that support is NVIDIA's sparse tensor
# cores, whose **peak** math rate on 2:4 matrices is twice the dense one; end-to-end speedups
# reported by Mishra et al. (2021) for whole networks are smaller, because not every layer is
# a large matrix product and memory traffic does not halve. This notebook measures neither:
# numpy has no 2:4 kernel, so the masked matrices here run at dense speed.

# %% [markdown]
# ### Attention heads, on a random layer
#
# No attention model trains in this notebook's time budget, so this is **bookkeeping only**, on a
# random layer: pruning half of the heads removes their share of the projection parameters and
# gives exactly the output of the masked layer. It says nothing about accuracy. Michel et al.
# (2019) measured that on trained translation and BERT models, where many heads could be
# removed at test time with little loss; a random layer has no accuracy to lose, so it can
# neither confirm nor refute that.

# %%
_rng = np.random.default_rng(0)
d_model, n_heads = 32, 8
wq, wk, wv = (_rng.normal(size=(d_model, d_model)).astype(np.float32) / np.sqrt(d_model) for _ in range(3))
wo = _rng.normal(size=(d_model, d_model)).astype(np.float32) / np.sqrt(d_model)
result = prune_attention_heads(wq, wk, wv, wo, n_heads, 0.5)
x = _rng.normal(size=(2, 10, d_model)).astype(np.float32)
mask = np.isin(np.arange(n_heads), result["kept_heads"]).astype(np.float32)
diff = np.abs(multihead_attention(x, result["wq"], result["wk"], result["wv"], result["wo"], result["n_heads"])
              - multihead_attention(x, wq, wk, wv, wo, n_heads, head_mask=mask)).max()
print(f"kept heads {result['kept_heads'].tolist()}, projection parameters {4 * wq.size} -> "
      f"{sum(result[k].size for k in ('wq', 'wk', 'wv', 'wo'))}, max |pruned - masked| = {diff:.1e}")

# %% [markdown]
# ## Summary
#
# * Structured pruning removes whole units (filters, neurons, heads) and leaves smaller **dense**
#   tensors; removing a unit also removes the inputs that read it in the next layer, through
#   ReLU, pooling and flattening.
# * Norm scores (L1, L2) need only the weights; the first-order Taylor score
#   $|\sum W \odot \nabla L|$ needs a backward pass over data.
# * N:M (2:4) and block masks are in between: fixed sparsity patterns that hardware can exploit.
# * FLOPs are not latency: the measured table above shows the speedup approaching the FLOP
#   reduction only when the matrix products dominate the fixed per-layer costs, and masking alone
#   gives no speedup at all.

# %% [markdown]
# ## 11. Questions on your results
#
# Answer from what **your** notebook printed (the tests compare with your own run). Questions 1
# and 2 are checked automatically; 3 and 4 are read by your instructor.
#
# **Q1 (number).** In the parameters/FLOPs/latency table: what is the measured speedup of
# "MLP 50% neurons" over "MLP dense" at batch 1024? Store it in `q1_mlp_speedup_1024`
# (tolerance ±0.02).
#
# **Q2 (choice).** After fine-tuning, how does L2 compare with random removal on your run?
# Store the letter in `q2_choice`: `"A"` L2 is ahead by more than one standard deviation of the
# paired per-seed difference; `"B"` the difference is within one standard deviation;
# `"C"` random is ahead by more than one standard deviation.

# %% nbgrader={"grade": false, "grade_id": "answers-results", "locked": false, "schema_version": 3, "solution": true}
q1_mlp_speedup_1024 = None  # a number such as 1.5
q2_choice = None            # "A", "B" or "C"
### BEGIN SOLUTION
q1_mlp_speedup_1024 = latency["MLP dense", 1024] / latency["MLP 50% neurons", 1024]
_m, _sd = mean_and_spread([N_TEST * (crit["l2", k][1] - crit["random", k][1]) for k in SEEDS])
q2_choice = "B" if abs(_m) <= _sd else ("A" if _m > 0 else "C")
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-q1-results", "locked": true, "points": 2, "schema_version": 3, "solution": false}
_want = latency["MLP dense", 1024] / latency["MLP 50% neurons", 1024]
assert isinstance(q1_mlp_speedup_1024, (int, float, np.number)) and not isinstance(q1_mlp_speedup_1024, bool), \
    f"q1_mlp_speedup_1024 must be a number, got {q1_mlp_speedup_1024!r}"
assert abs(float(q1_mlp_speedup_1024) - _want) <= 0.02, \
    f"q1: {q1_mlp_speedup_1024} is not the 'speedup @1024' of 'MLP 50% neurons' in your table (tolerance ±0.02)"
print("Q1 matches your table")

# %% nbgrader={"grade": true, "grade_id": "test-q2-results", "locked": true, "points": 2, "schema_version": 3, "solution": false}
_m, _sd = mean_and_spread([N_TEST * (crit["l2", k][1] - crit["random", k][1]) for k in SEEDS])
_ok = {"B"} if abs(_m) <= 0.9 * _sd else ({"A"} if _m > 1.1 * _sd else {"C"} if _m < -1.1 * _sd else {"A", "B", "C"} - {"C" if _m > 0 else "A"})
assert q2_choice in ("A", "B", "C"), f"q2_choice must be 'A', 'B' or 'C', got {q2_choice!r}"
assert q2_choice in _ok, f"q2: {q2_choice!r} does not fit your verdict line 'l2 vs random, after fine-tuning'"
print("Q2 fits your run")

# %% [markdown] nbgrader={"grade": true, "grade_id": "q3-flops-latency", "locked": false, "points": 4, "schema_version": 3, "solution": true}
# **Q3 (written, 4 points).** For the CNN, the "sum of layers" time ratio is well below the FLOP
# ratio. Using the per-layer table at batch 1024, name the layers that account for the gap and
# give two distinct reasons, each with numbers from your table.
#
# ### BEGIN SOLUTION
# *Reference answer (instructor only).* (1) Pooling and ReLU cost time but no counted FLOPs
# (MaxPool is a large share of the dense CNN's time, comparable to the convolutions), and they
# shrink only with the number of channels (about 2x), not by the FLOP ratio. (2) The first
# convolution keeps its whole input: removing half of its filters halves its FLOPs, yet im2col
# still copies the full input image, so its time ratio stays near 1. (3) Thinner matrix
# products run less efficiently, so even the second convolution's time ratio stays below its
# 4x FLOP ratio.
#
# *Rubric (4 points):* 2 points per correct, distinct reason (max 4), each needing a number
# from the student's own table (a layer's time share or its time ratio vs FLOP ratio). Half
# credit for a reason without numbers. No credit for "framework overhead" alone: input checks
# are not timed here (inference mode).
# ### END SOLUTION

# %% [markdown] nbgrader={"grade": true, "grade_id": "q4-criteria", "locked": false, "points": 4, "schema_version": 3, "solution": true}
# **Q4 (written, 4 points).** Does your criteria table support the claim "Taylor importance
# knows which neurons matter better than weight norms"? Answer with the numbers and spreads,
# explain the result, and describe one change to the experiment (keeping budgets equal) under
# which you would expect Taylor to do better, and why.
#
# ### BEGIN SOLUTION
# *Reference answer.* Hardly: before fine-tuning the held-out Taylor score leads L2 by about
# one standard deviation of the paired difference (a lead of the size of the seed noise), and
# after fine-tuning all criteria are within one standard deviation (quote the verdict lines). The first-order estimate
# describes removing one unit while the others stay; removing 50% at once breaks that
# assumption, the held-out estimate from 500 examples is noisy, and fine-tuning then repairs
# most differences. Expected to help: removing fewer units at a time (e.g. 5% per step,
# re-scoring in between, same total epochs), or comparing before fine-tuning at a low
# sparsity where the linear estimate is accurate; or more held-out data for the estimate.
#
# *Rubric (4 points):* 1 point for a correct reading with numbers and spreads (not just
# means); 1 point for the first-order / one-unit-at-a-time argument; 1 point for noise or
# fine-tuning washing out differences; 1 point for a concrete equal-budget change with a
# reason.
# ### END SOLUTION

