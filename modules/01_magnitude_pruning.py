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
# # Module 01: Magnitude pruning
#
# A trained network has far more weights than it needs. Han et al. (2015, *Learning both
# Weights and Connections for Efficient Neural Networks*) removed 92% of the weights of
# LeNet-300-100 with no loss of accuracy by a rule so simple that it is still the baseline
# every pruning paper compares against: **drop the weights with the smallest magnitude,
# then fine-tune the rest**.
#
# In this module you build that rule, carefully, into `tinytorch.prune`:
#
# 1. look at a weight distribution and measure how much of it is (almost) zero already;
# 2. compute a pruning **mask** that removes *exactly* the requested number of weights,
#    even when magnitudes tie;
# 3. wrap it in a `MagnitudePruner` with statistics and error measures;
# 4. prune **globally** (one threshold across all layers) and **randomly** (the baseline that
#    tells you whether magnitude carries information at all);
# 5. prune **iteratively**, each round taking a fraction of what is still alive;
# 6. apply masks to a model and **fine-tune** it so that pruned weights stay exactly zero.
#
# Then you use it for real: the digits MLP from module 00 is pruned layer-wise, globally and
# at random from 0% to 95% sparsity, before and after fine-tuning.
#
# **Learning goals.** After this module you can explain why magnitude is a sensible
# importance score, implement exact-count masks with a documented tie rule, tell local from
# global pruning and say when each wins, and show with measured numbers how much of a
# network can go.
#
# PyTorch users: everything here has a counterpart in `torch.nn.utils.prune`
# (`l1_unstructured`, `global_unstructured`, `random_unstructured`, and its pruning container
# for repeated pruning). The package tests check that our masks equal the ones PyTorch
# computes for the same weights and amount.

# %% nbgrader={"grade": false, "grade_id": "imports", "locked": true, "schema_version": 3, "solution": false}
#| default_exp prune
#| export
import math
import numbers
from collections.abc import Mapping

import numpy as np

from tinytorch.nn import train

# %% nbgrader={"grade": false, "grade_id": "notebook-imports", "locked": true, "schema_version": 3, "solution": false}
# Used by this notebook only (not exported).
import time

import matplotlib.pyplot as plt
from threadpoolctl import threadpool_limits

# One BLAS thread: on a small, shared CPU multi-threaded BLAS makes these tiny matrix
# products up to 100x slower (threads spin waiting for each other), and timings noisy.
threadpool_limits(1)

from tinytorch.data import load_digits_split, load_mnist1d
from tinytorch.nn import evaluate, make_mlp
from tinytorch.support import mean_and_spread
from tinytorch.testing import expect_error

# %% [markdown]
# ## Validating at the boundary
#
# Every public function of the package checks its arguments first and says exactly what is
# wrong: a sparsity of `1.3`, a weight array with a `NaN`, an empty array or an array of
# strings should not travel deep into numpy and come back as an obscure traceback. The
# helpers come from `tinytorch.support` (module 00), the one home of the package's checks:
# `validate_weights(w, name)`, `validate_sparsity(s)`, `validate_int(n, name, minimum)` and
# `validate_mask(mask, shape)`. Use them at the top of every function you write.

# %% nbgrader={"grade": false, "grade_id": "validation", "locked": true, "schema_version": 3, "solution": false}
#| export
from tinytorch.support import validate_int, validate_mask, validate_sparsity, validate_weights

# %% [markdown]
# ## 1. How redundant are trained weights?
#
# Before removing anything, look at the numbers. For a weight array $W$ with $n$ entries let
# $\mu = \frac1n\sum |w_i|$ be the mean magnitude. We call a weight *naturally sparse* when
# $|w_i| \le 0.1\,\mu$: it is an order of magnitude smaller than a typical weight and
# contributes almost nothing to any dot product. The percentiles of $|w|$ tell you which
# threshold a given sparsity would need: to prune 90% of the weights you cut at the 90th
# percentile of the magnitudes.
#
# **Exercise 1.** Write `analyze_weight_redundancy(weights, title=...)`. Return a dict with
# - `total_params`: the number of entries (an `int`),
# - `mean_abs`: $\mu$, `std`: the standard deviation of the weights (not of their magnitudes),
# - `natural_sparsity`: the **percentage** (0 to 100) of weights with $|w| \le 0.1\mu$,
# - `percentiles`: `{50: ..., 70: ..., 80: ..., 90: ..., 95: ..., 99: ...}`, the percentiles
#   of $|w|$ (`np.percentile`, default linear interpolation).
#
# All values are Python `int`/`float`. When `verbose` is true also print a one-line summary
# that starts with the title.

# %% nbgrader={"grade": false, "grade_id": "analyze_weight_redundancy", "locked": false, "schema_version": 3, "solution": true}
#| export
def analyze_weight_redundancy(weights, title="Weight analysis", verbose=True):
    """Statistics of a weight array that show how much of it is close to zero."""
    weights = validate_weights(weights)
    ### BEGIN SOLUTION
    mags = np.abs(weights.astype(np.float64)).ravel()
    mean_abs = float(mags.mean())
    natural = float(np.mean(mags <= 0.1 * mean_abs) * 100.0)
    percentiles = {p: float(np.percentile(mags, p)) for p in (50, 70, 80, 90, 95, 99)}
    result = {
        "total_params": int(mags.size),
        "mean_abs": mean_abs,
        "std": float(np.std(weights.astype(np.float64))),
        "natural_sparsity": natural,
        "percentiles": percentiles,
    }
    if verbose:
        print(f"{title}: {result['total_params']} weights, mean |w| = {mean_abs:.4f}, "
              f"std = {result['std']:.4f}, {natural:.1f}% below 0.1*mean |w|, "
              f"90th percentile of |w| = {percentiles[90]:.4f}")
    return result
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-analyze_weight_redundancy", "locked": true, "points": 3, "schema_version": 3, "solution": false}
_w = np.array([[0.0, 0.01, -1.0, 2.0], [-3.0, 0.5, 4.0, -0.02]], dtype=np.float32)
_r = analyze_weight_redundancy(_w, title="toy", verbose=False)
assert isinstance(_r, dict), f"expected a dict, got {type(_r).__name__}"
for _key in ("total_params", "mean_abs", "std", "natural_sparsity", "percentiles"):
    assert _key in _r, f"missing key {_key!r}; got keys {sorted(_r)}"
assert _r["total_params"] == 8, f"total_params: expected 8, got {_r['total_params']}"
_mu = np.abs(_w).astype(np.float64).mean()
assert abs(_r["mean_abs"] - _mu) < 1e-6, f"mean_abs: expected {_mu:.6f}, got {_r['mean_abs']}"
assert abs(_r["std"] - np.std(_w.astype(np.float64))) < 1e-6, \
    f"std: expected the std of the weights {np.std(_w):.6f}, got {_r['std']}"
# 0.0, 0.01 and -0.02 are at most 0.1 * mean |w| = 0.13 -> 3 of 8 = 37.5 percent
assert abs(_r["natural_sparsity"] - 37.5) < 1e-9, f"natural_sparsity: expected 37.5 (percent), got {_r['natural_sparsity']}"
assert sorted(_r["percentiles"]) == [50, 70, 80, 90, 95, 99], f"percentile keys: expected 50..99, got {sorted(_r['percentiles'])}"
for _p in (50, 90, 99):
    _want = np.percentile(np.abs(_w), _p)
    assert abs(_r["percentiles"][_p] - _want) < 1e-6, f"percentile {_p}: expected {_want}, got {_r['percentiles'][_p]}"
assert isinstance(_r["total_params"], int) and isinstance(_r["mean_abs"], float), \
    "total_params must be a Python int and mean_abs a Python float"
### BEGIN HIDDEN TESTS
_r = analyze_weight_redundancy(np.zeros((3, 3, 2, 2)), verbose=False)
assert _r["natural_sparsity"] == 100.0, f"all-zero weights: expected 100% natural sparsity, got {_r['natural_sparsity']}"
assert _r["total_params"] == 36, f"4-D weights: expected 36 params, got {_r['total_params']}"
_r = analyze_weight_redundancy(np.array([1, -1, 2, -2]), verbose=False)
assert abs(_r["mean_abs"] - 1.5) < 1e-12, f"integer weights: expected mean_abs 1.5, got {_r['mean_abs']}"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "test-analyze_weight_redundancy-bad-input", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# analyze_weight_redundancy: bad input gets a clear error (its own small cell, apart from the algorithm's points)
_r = analyze_weight_redundancy(np.array([1.0, -3.0], dtype=np.float32), verbose=False)
assert _r["total_params"] == 2 and abs(_r["mean_abs"] - 2.0) < 1e-12, \
    f"weights [1, -3]: expected total_params 2 and mean_abs 2.0, got {_r}"
### BEGIN HIDDEN TESTS
for _bad, _exc in ((np.array([1.0, np.nan]), ValueError), (np.array([]), ValueError),
                   (np.array([np.inf, 1.0]), ValueError), (np.array(["a", "b"]), TypeError), (3.0, ValueError)):
    expect_error(_exc, analyze_weight_redundancy, _bad, verbose=False)
### END HIDDEN TESTS

# %% [markdown]
# ## 2. An exact-count magnitude mask
#
# A **mask** $M$ has the shape of the weights, holds 1 (keep) or 0 (prune), and the pruned
# weights are $W \odot M$. Magnitude pruning at sparsity $s$ prunes the $k$ weights of
# smallest $|w|$, with
#
# $$k = \operatorname{round}(s \cdot n).$$
#
# Two details decide whether your masks agree with everyone else's:
#
# * **Rounding.** We use Python's `round`, which rounds halves to even (`round(2.5) == 2`),
#   exactly like PyTorch's `torch.nn.utils.prune`. So 50% of 5 weights prunes 2.
# * **Ties.** A threshold rule such as "prune $|w| < t$" prunes *every* weight equal in
#   magnitude to the cut, so with ties (think of quantised weights, or weights that are
#   exactly zero) it prunes more or fewer than $k$. We want exactly $k$, so we rank the
#   weights instead: sort $|w|$ of the flattened (C-order) array with a **stable** sort
#   (`np.argsort(..., kind="stable")`) and prune the first $k$. The tie rule is therefore:
#   **among equal magnitudes, the weight with the lower flat index is pruned first.**
#
# **Exercise 2.** Write `prune_count(n, sparsity)` (the $k$ above) and
# `magnitude_mask(weights, sparsity)`, which returns a `float32` mask of the weights' shape
# with exactly `prune_count(weights.size, sparsity)` zeros, following the tie rule.

# %% nbgrader={"grade": false, "grade_id": "magnitude_mask", "locked": false, "schema_version": 3, "solution": true}
#| export
def prune_count(n, sparsity):
    """Number of entries to prune out of `n` at `sparsity`: round(sparsity * n), halves to even."""
    n = validate_int(n, "n", minimum=0)
    sparsity = validate_sparsity(sparsity)
    ### BEGIN SOLUTION
    return int(round(sparsity * int(n)))
    ### END SOLUTION


def magnitude_mask(weights, sparsity):
    """float32 mask (1 keep, 0 prune) that prunes exactly `prune_count(weights.size, sparsity)`
    weights of smallest |w|; among equal magnitudes the lower flat index is pruned first."""
    weights = validate_weights(weights)
    sparsity = validate_sparsity(sparsity)
    ### BEGIN SOLUTION
    k = prune_count(weights.size, sparsity)
    order = np.argsort(np.abs(weights), axis=None, kind="stable")
    mask = np.ones(weights.size, dtype=np.float32)
    mask[order[:k]] = 0.0
    return mask.reshape(weights.shape)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-magnitude_mask", "locked": true, "points": 4, "schema_version": 3, "solution": false}
assert prune_count(10, 0.7) == 7, f"prune_count(10, 0.7): expected 7, got {prune_count(10, 0.7)}"
assert prune_count(5, 0.5) == 2, f"prune_count(5, 0.5): round half to even gives 2, got {prune_count(5, 0.5)}"
assert prune_count(7, 0.5) == 4, f"prune_count(7, 0.5): round(3.5) == 4, got {prune_count(7, 0.5)}"
_w = np.array([[0.5, -0.1, 0.3], [-0.9, 0.05, 0.7]], dtype=np.float32)
_m = magnitude_mask(_w, 0.5)
assert isinstance(_m, np.ndarray) and _m.dtype == np.float32, f"expected a float32 array, got {type(_m).__name__} {getattr(_m, 'dtype', None)}"
assert _m.shape == _w.shape, f"mask shape: expected {_w.shape}, got {_m.shape}"
_want = np.array([[1, 0, 0], [1, 0, 1]], dtype=np.float32)
assert np.array_equal(_m, _want), f"50% of {_w.tolist()}: expected mask {_want.tolist()}, got {_m.tolist()}"
assert np.all(magnitude_mask(_w, 0.0) == 1), "sparsity 0 must keep every weight"
assert np.all(magnitude_mask(_w, 1.0) == 0), "sparsity 1 must prune every weight"
_rng = np.random.default_rng(1)
_big = _rng.normal(size=(40, 30)).astype(np.float32)
for _s in (0.1, 0.33, 0.9):
    _zeros = int((magnitude_mask(_big, _s) == 0).sum())
    assert _zeros == round(_s * 1200), f"sparsity {_s} of 1200 weights: expected {round(_s * 1200)} zeros, got {_zeros}"
### BEGIN HIDDEN TESTS
# ties: all magnitudes equal -> the lowest flat indices go first
_t = np.array([[1.0, -1.0], [1.0, -1.0]], dtype=np.float32)
_m = magnitude_mask(_t, 0.5)
assert np.array_equal(_m, np.array([[0, 0], [1, 1]], dtype=np.float32)), f"ties: expected [[0,0],[1,1]], got {_m.tolist()}"
_t = np.array([3.0, 0.0, 2.0, 0.0, 0.0, 2.0])
_m = magnitude_mask(_t, 0.5)
assert np.array_equal(_m, np.array([1, 0, 1, 0, 0, 1], dtype=np.float32)), f"zeros first: got {_m.tolist()}"
_m = magnitude_mask(_t, 4 / 6)
assert np.array_equal(_m, np.array([1, 0, 0, 0, 0, 1], dtype=np.float32)), \
    f"tie between the two 2.0 at flat indices 2 and 5: index 2 goes first; got {_m.tolist()}"
assert magnitude_mask(np.arange(24).reshape(2, 3, 4), 0.25).shape == (2, 3, 4), "4-D/3-D weights keep their shape"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "test-magnitude_mask-bad-input", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# prune_count / magnitude_mask: bad input gets a clear error (its own small cell, apart from the algorithm's points)
_w = np.array([[0.5, -0.1, 0.3], [-0.9, 0.05, 0.7]], dtype=np.float32)
assert prune_count(4, 0.5) == 2, f"prune_count(4, 0.5): expected 2, got {prune_count(4, 0.5)}"
assert magnitude_mask(_w, 0.5).tolist() == [[1, 0, 0], [1, 0, 1]], "50% of the example: expected [[1, 0, 0], [1, 0, 1]]"
### BEGIN HIDDEN TESTS
for _args, _exc in (((_w, 1.5), ValueError), ((_w, -0.1), ValueError), ((_w, float("nan")), ValueError),
                    ((_w, "0.5"), TypeError), ((_w, True), TypeError), ((np.array([]), 0.5), ValueError),
                    ((np.array([1.0, np.nan]), 0.5), ValueError), ((np.array([1 + 2j]), 0.5), TypeError)):
    expect_error(_exc, magnitude_mask, *_args)
for _args, _exc in (((-1, 0.5), ValueError), ((2.5, 0.5), TypeError), ((4, 2.0), ValueError)):
    expect_error(_exc, prune_count, *_args)
### END HIDDEN TESTS

# %% [markdown]
# ## 3. The `MagnitudePruner`
#
# The course's pruner object keeps what it did: `pruning_masks`, `original_weights` and
# `pruning_stats` are dicts keyed by a layer name (the `name` argument of `prune`, or
# `"layer_0"`, `"layer_1"`, ... when none is given).
#
# * `calculate_threshold(weights, sparsity)` returns the magnitude of the **smallest weight
#   that survives** exact-count pruning: sort $|w|$ ascending, take the entry at position
#   $k$ = `prune_count(n, sparsity)`. When everything is pruned ($k = n$) there is no survivor
#   and the threshold is `math.inf`.
# * `create_mask(weights, threshold)` is the classic threshold rule: 1 where
#   $|w| \ge t$, else 0 (`float32`). Without ties,
#   `create_mask(w, calculate_threshold(w, s))` equals `magnitude_mask(w, s)`; with ties at
#   the threshold it keeps all of them, which is why `prune` uses `magnitude_mask`.
# * `prune(weights, sparsity=0.7, name=None)` returns `(pruned_weights, mask, stats)`:
#   `pruned_weights = weights * mask` (floating inputs keep their dtype, integer inputs become
#   `float32`), and `stats` has `target_sparsity`, `actual_sparsity` (pruned / total),
#   `threshold`, `original_params`, `remaining_params`, `pruned_params` and
#   `compression_ratio` (original / remaining; `math.inf` when nothing remains). It records
#   the original weights (a copy), the mask and the stats under the layer name.
# * `measure_accuracy_impact(original, pruned)` compares two arrays of one shape:
#   `mean_absolute_error`, `max_absolute_error`, `mean_relative_error` (the mean of
#   $|o - p| / |o|$ over the entries with $o \ne 0$, 0 if there are none) and
#   `weight_norm_preservation` $= \lVert p\rVert_2 / \lVert o\rVert_2$ (1 when both are zero).
#
# **Exercise 3.** Fill in the four methods.

# %% nbgrader={"grade": false, "grade_id": "MagnitudePruner", "locked": false, "schema_version": 3, "solution": true}
#| export
class MagnitudePruner:
    """Magnitude pruning of single weight arrays, remembering masks, originals and statistics."""

    def __init__(self):
        self.pruning_masks = {}
        self.original_weights = {}
        self.pruning_stats = {}

    def calculate_threshold(self, weights, sparsity):
        """Magnitude of the smallest weight kept at `sparsity` (math.inf when all are pruned)."""
        weights = validate_weights(weights)
        sparsity = validate_sparsity(sparsity)
        ### BEGIN SOLUTION
        k = prune_count(weights.size, sparsity)
        if k >= weights.size:
            return math.inf
        mags = np.sort(np.abs(weights), axis=None)
        return float(mags[k])
        ### END SOLUTION

    def create_mask(self, weights, threshold):
        """float32 mask: 1 where |w| >= threshold, else 0."""
        weights = validate_weights(weights)
        if isinstance(threshold, (bool, np.bool_)) or not isinstance(threshold, numbers.Real):
            raise TypeError(f"threshold must be a real number, got {threshold!r}")
        if math.isnan(threshold) or threshold < 0:
            raise ValueError(f"threshold must be a non-negative magnitude, got {threshold!r}")
        ### BEGIN SOLUTION
        return (np.abs(weights) >= threshold).astype(np.float32)
        ### END SOLUTION

    def prune(self, weights, sparsity=0.7, name=None):
        """Exact-count magnitude pruning; returns (pruned_weights, mask, stats) and records them."""
        weights = validate_weights(weights)
        sparsity = validate_sparsity(sparsity)
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a string or None, got {name!r}")
        ### BEGIN SOLUTION
        threshold = self.calculate_threshold(weights, sparsity)
        mask = magnitude_mask(weights, sparsity)
        dtype = weights.dtype if np.issubdtype(weights.dtype, np.floating) else np.float32
        pruned = (weights * mask).astype(dtype)
        total = int(weights.size)
        remaining = int(np.count_nonzero(mask))
        stats = {
            "target_sparsity": sparsity,
            "actual_sparsity": (total - remaining) / total,
            "threshold": threshold,
            "original_params": total,
            "remaining_params": remaining,
            "pruned_params": total - remaining,
            "compression_ratio": total / remaining if remaining else math.inf,
        }
        key = name if name is not None else f"layer_{len(self.pruning_masks)}"
        self.original_weights[key] = weights.copy()
        self.pruning_masks[key] = mask
        self.pruning_stats[key] = stats
        return pruned, mask, stats
        ### END SOLUTION

    def measure_accuracy_impact(self, original_weights, pruned_weights):
        """How far the pruned weights are from the originals (absolute, relative, norm)."""
        original = validate_weights(original_weights, "original_weights")
        pruned = validate_weights(pruned_weights, "pruned_weights")
        if original.shape != pruned.shape:
            raise ValueError(f"pruned_weights must have the shape of original_weights {original.shape}, got {pruned.shape}")
        ### BEGIN SOLUTION
        o = original.astype(np.float64)
        p = pruned.astype(np.float64)
        diff = np.abs(o - p)
        nonzero = o != 0
        rel = float(np.mean(diff[nonzero] / np.abs(o[nonzero]))) if nonzero.any() else 0.0
        norm_o, norm_p = float(np.linalg.norm(o)), float(np.linalg.norm(p))
        if norm_o == 0.0:
            preservation = 1.0 if norm_p == 0.0 else math.inf
        else:
            preservation = norm_p / norm_o
        return {
            "mean_absolute_error": float(diff.mean()),
            "max_absolute_error": float(diff.max()),
            "mean_relative_error": rel,
            "weight_norm_preservation": preservation,
        }
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-calculate_threshold", "locked": true, "points": 3, "schema_version": 3, "solution": false}
_p = MagnitudePruner()
assert _p.pruning_masks == {} and _p.original_weights == {} and _p.pruning_stats == {}, "a new pruner starts with empty dicts"
_w = np.array([0.4, -0.1, 0.3, -0.2, 0.5], dtype=np.float32)
_t = _p.calculate_threshold(_w, 0.4)
assert abs(_t - 0.3) < 1e-7, f"40% of 5 weights prunes 2 (0.1, 0.2); smallest survivor 0.3 expected, got {_t}"
_t0 = _p.calculate_threshold(_w, 0.0)
assert abs(_t0 - 0.1) < 1e-7, f"sparsity 0: threshold is the smallest magnitude 0.1, got {_t0}"
assert _p.calculate_threshold(_w, 1.0) == math.inf, f"sparsity 1: expected math.inf, got {_p.calculate_threshold(_w, 1.0)}"

# %% nbgrader={"grade": true, "grade_id": "test-create_mask", "locked": true, "points": 2, "schema_version": 3, "solution": false}
_p = MagnitudePruner()
_w = np.array([[0.4, -0.1], [0.3, -0.3]], dtype=np.float32)
_m = _p.create_mask(_w, 0.3)
assert _m.dtype == np.float32, f"mask dtype: expected float32, got {_m.dtype}"
assert np.array_equal(_m, np.array([[1, 0], [1, 1]], dtype=np.float32)), f"|w| >= 0.3 keeps 0.4, 0.3, -0.3; got {_m.tolist()}"
assert np.all(_p.create_mask(_w, math.inf) == 0), "an infinite threshold prunes everything"

# %% nbgrader={"grade": true, "grade_id": "test-prune", "locked": true, "points": 4, "schema_version": 3, "solution": false}
_p = MagnitudePruner()
_rng = np.random.default_rng(0)
_w = _rng.normal(size=(20, 10)).astype(np.float32)
_pw, _m, _s = _p.prune(_w, 0.7, name="fc1")
assert _pw.shape == _w.shape and _pw.dtype == np.float32, f"pruned weights: expected float32 {_w.shape}, got {_pw.dtype} {_pw.shape}"
assert np.array_equal(_m, magnitude_mask(_w, 0.7)), "prune must return magnitude_mask(weights, sparsity) as its mask"
assert np.array_equal(_pw, _w * _m), "pruned weights must equal weights * mask"
for _key, _want in (("target_sparsity", 0.7), ("actual_sparsity", 0.7), ("original_params", 200),
                    ("remaining_params", 60), ("pruned_params", 140)):
    assert _key in _s, f"stats lacks {_key!r}; got {sorted(_s)}"
    assert abs(_s[_key] - _want) < 1e-9, f"stats[{_key!r}]: expected {_want}, got {_s[_key]}"
assert abs(_s["compression_ratio"] - 200 / 60) < 1e-9, f"compression_ratio: expected {200 / 60:.4f}, got {_s['compression_ratio']}"
assert abs(_s["threshold"] - _p.calculate_threshold(_w, 0.7)) < 1e-12, "stats['threshold'] must be calculate_threshold(weights, sparsity)"
assert np.all(np.abs(_w[_m == 1]) >= _s["threshold"]), "every kept weight must be at least the threshold in magnitude"
assert "fc1" in _p.pruning_masks and "fc1" in _p.original_weights and "fc1" in _p.pruning_stats, "prune must record under name 'fc1'"
assert np.array_equal(_p.original_weights["fc1"], _w), "original_weights['fc1'] must hold the unpruned weights"
_w[0, 0] += 1.0
assert not np.array_equal(_p.original_weights["fc1"], _w), "original_weights must store a copy, not the caller's array"
_p.prune(np.ones((2, 2)), 0.5)
assert "layer_1" in _p.pruning_masks, f"an unnamed prune is recorded as 'layer_<count>'; got keys {sorted(_p.pruning_masks)}"
### BEGIN HIDDEN TESTS
_pw, _m, _s = _p.prune(np.array([2.0, 2.0, 2.0, 2.0]), 0.5)
assert _s["pruned_params"] == 2 and np.array_equal(_m, np.array([0, 0, 1, 1], dtype=np.float32)), \
    f"ties: exactly 2 of 4 equal weights pruned, lowest indices first; got mask {_m.tolist()}"
_pw, _m, _s = _p.prune(np.array([1, -2, 3, -4]), 0.5)
assert _pw.dtype == np.float32 and _pw.tolist() == [0.0, 0.0, 3.0, -4.0], f"integer weights -> float32 pruned; got {_pw.dtype} {_pw.tolist()}"
_pw, _m, _s = _p.prune(np.ones(3), 1.0)
assert _s["compression_ratio"] == math.inf and _s["remaining_params"] == 0, f"all pruned: expected ratio inf, got {_s['compression_ratio']}"
assert _p.prune(np.ones(3, dtype=np.float64), 0.0)[0].dtype == np.float64, "float64 weights keep their dtype"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "test-measure_accuracy_impact", "locked": true, "points": 3, "schema_version": 3, "solution": false}
_p = MagnitudePruner()
_o = np.array([1.0, -2.0, 0.0, 4.0], dtype=np.float32)
_q = np.array([0.0, -2.0, 0.0, 4.0], dtype=np.float32)
_r = _p.measure_accuracy_impact(_o, _q)
for _key, _want in (("mean_absolute_error", 0.25), ("max_absolute_error", 1.0),
                    ("mean_relative_error", 1 / 3), ("weight_norm_preservation", math.sqrt(20 / 21))):
    assert _key in _r, f"missing key {_key!r}; got {sorted(_r)}"
    assert abs(_r[_key] - _want) < 1e-6, f"{_key}: expected {_want:.6f}, got {_r[_key]}"
### BEGIN HIDDEN TESTS
_r = _p.measure_accuracy_impact(np.zeros(3), np.zeros(3))
assert _r["mean_relative_error"] == 0.0 and _r["weight_norm_preservation"] == 1.0, f"all-zero arrays: got {_r}"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "test-MagnitudePruner-bad-input", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# MagnitudePruner: bad input gets a clear error (its own small cell, apart from the algorithm's points)
_p = MagnitudePruner()
_w = np.array([0.4, -0.1, 0.3, -0.2, 0.5], dtype=np.float32)
_pw, _m, _s = _p.prune(_w, 0.4)
assert _m.tolist() == [1, 0, 1, 0, 1] and _s["pruned_params"] == 2, \
    f"40% of {_w.tolist()}: expected mask [1, 0, 1, 0, 1] with 2 pruned, got {_m.tolist()}"
### BEGIN HIDDEN TESTS
for _args, _exc in (((_w, 1.01), ValueError), ((np.array([[np.inf]]), 0.5), ValueError), ((_w, None), TypeError)):
    expect_error(_exc, _p.calculate_threshold, *_args)
_w2 = np.array([[0.4, -0.1], [0.3, -0.3]], dtype=np.float32)
for _args, _exc in (((_w2, -1.0), ValueError), ((_w2, float("nan")), ValueError), ((_w2, "0.3"), TypeError), ((np.array([]), 0.1), ValueError)):
    expect_error(_exc, _p.create_mask, *_args)
for _args, _exc in (((np.ones(3), 2.0), ValueError), ((np.array([np.nan]), 0.1), ValueError), ((np.ones(3), 0.5, 7), TypeError)):
    expect_error(_exc, _p.prune, *_args)
expect_error(ValueError, _p.measure_accuracy_impact, np.ones(3), np.ones(4))
expect_error(ValueError, _p.measure_accuracy_impact, np.ones(3), np.array([1.0, np.nan, 1.0]))
### END HIDDEN TESTS

# %% [markdown]
# ### A first look at real weights
#
# Module 00 trains the digits MLP (64 → 128 → 64 → 10) in a few seconds. We train it once
# here and reuse it for the whole notebook.

# %%
digits = load_digits_split()
X_train, y_train, X_test, y_test = digits.X_train, digits.y_train, digits.X_test, digits.y_test
DENSE_EPOCHS, FINETUNE_EPOCHS = 30, 10

_start = time.perf_counter()
dense_model = make_mlp(seed=0)
train(dense_model, X_train, y_train, epochs=DENSE_EPOCHS, lr=2e-3, seed=0)
dense_state = dense_model.state_dict()
dense_acc = evaluate(dense_model, X_test, y_test)
weight_names = [name for name, value in dense_state.items() if value.ndim >= 2]
print(f"dense MLP: test accuracy {dense_acc:.4f}, trained in {time.perf_counter() - _start:.1f} s")
print("weight arrays:", {name: dense_state[name].shape for name in weight_names})

# %%
for name in weight_names:
    analyze_weight_redundancy(dense_state[name], title=name)
pruner = MagnitudePruner()
_pruned, _mask, _stats = pruner.prune(dense_state["0.weight"], 0.9, name="0.weight")
print({key: round(value, 4) for key, value in _stats.items()})
print({key: round(value, 4) for key, value in pruner.measure_accuracy_impact(dense_state["0.weight"], _pruned).items()})

# %% [markdown]
# ## 4. Global pruning
#
# Pruning every layer to the same sparsity (**local**, or layer-wise, pruning) treats a
# 640-weight output layer like an 8192-weight hidden layer. **Global** pruning ranks all
# weights of all chosen layers together against *one* threshold, so layers with many small
# weights give up more and small, important layers keep more (Han et al. prune per layer with
# a sensitivity-tuned threshold; Blalock et al. 2020 find global magnitude pruning a strong
# default).
#
# **Exercise 4.** Write `global_magnitude_masks(state_dict, sparsity, names=None)`. `names` lists
# the arrays to prune (default: every entry with at least 2 dimensions, i.e. weight matrices
# and kernels, not biases), in the dict's order. Concatenate their flattened magnitudes in
# the order of `names`, prune exactly `prune_count(total, sparsity)` of them with the same
# stable tie rule (so among equal magnitudes the earlier array, then the lower flat index,
# goes first) and return `{name: float32 mask}` in the order of `names`.

# %% nbgrader={"grade": false, "grade_id": "global_magnitude_masks", "locked": false, "schema_version": 3, "solution": true}
#| export
def global_magnitude_masks(state_dict, sparsity, names=None):
    """One magnitude ranking over several arrays: {name: float32 mask} pruning exactly
    prune_count(total, sparsity) weights in all."""
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"state_dict must be a dict of arrays, got {type(state_dict).__name__}")
    if len(state_dict) == 0:
        raise ValueError("state_dict is empty")
    sparsity = validate_sparsity(sparsity)
    if names is None:
        names = [key for key, value in state_dict.items() if np.ndim(value) >= 2]
        if not names:
            raise ValueError("state_dict has no array with 2 or more dimensions to prune; pass names=")
    else:
        if isinstance(names, str) or not all(isinstance(n, str) for n in names):
            raise TypeError(f"names must be a list of strings, got {names!r}")
        names = list(names)
        if not names:
            raise ValueError("names is empty")
        if len(set(names)) != len(names):
            raise ValueError(f"names has duplicates: {names}")
        missing = [n for n in names if n not in state_dict]
        if missing:
            raise ValueError(f"names {missing} are not in state_dict (keys: {list(state_dict)})")
    arrays = [validate_weights(state_dict[n], f"state_dict[{n!r}]") for n in names]
    ### BEGIN SOLUTION
    flat = np.concatenate([np.abs(a).astype(np.float64).ravel() for a in arrays])
    k = prune_count(flat.size, sparsity)
    order = np.argsort(flat, kind="stable")
    keep = np.ones(flat.size, dtype=np.float32)
    keep[order[:k]] = 0.0
    masks, start = {}, 0
    for name, array in zip(names, arrays):
        masks[name] = keep[start:start + array.size].reshape(array.shape).copy()
        start += array.size
    return masks
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-global_magnitude_masks", "locked": true, "points": 3, "schema_version": 3, "solution": false}
_sd = {"a.weight": np.array([[0.1, 0.9], [0.2, 0.8]], dtype=np.float32),
       "a.bias": np.array([0.0, 0.0], dtype=np.float32),
       "b.weight": np.array([[0.5, 0.05, 0.7]], dtype=np.float32)}
_ms = global_magnitude_masks(_sd, 3 / 7)
assert isinstance(_ms, dict) and list(_ms) == ["a.weight", "b.weight"], f"default names: the 2-D arrays in order; got {list(_ms)}"
assert all(_m.dtype == np.float32 for _m in _ms.values()), "masks must be float32"
assert np.array_equal(_ms["a.weight"], np.array([[0, 1], [0, 1]], dtype=np.float32)), f"a.weight mask: got {_ms['a.weight'].tolist()}"
assert np.array_equal(_ms["b.weight"], np.array([[1, 0, 1]], dtype=np.float32)), f"b.weight mask: got {_ms['b.weight'].tolist()}"
_rng = np.random.default_rng(2)
_sd = {"x": _rng.normal(size=(30, 20)), "y": 0.3 * _rng.normal(size=(10, 20))}
_ms = global_magnitude_masks(_sd, 0.5)
_zeros = sum(int((_m == 0).sum()) for _m in _ms.values())
assert _zeros == 400, f"50% of 800 weights: expected 400 zeros in all, got {_zeros}"
assert (_ms["y"] == 0).mean() > (_ms["x"] == 0).mean(), "the layer with smaller weights must lose more under one global threshold"
_all_w = np.concatenate([np.abs(_sd[n]).ravel() for n in _ms])
_all_m = np.concatenate([_ms[n].ravel() for n in _ms])
_kept_min, _pruned_max = _all_w[_all_m == 1].min(), _all_w[_all_m == 0].max()
assert _kept_min >= _pruned_max, f"one threshold: every kept |w| ({_kept_min:.4f}) >= every pruned |w| ({_pruned_max:.4f})"
### BEGIN HIDDEN TESTS
_ms = global_magnitude_masks({"p": np.ones((2, 2)), "q": np.ones((1, 2)), "r": np.ones(3)}, 0.5, names=["q", "p", "r"])
assert list(_ms) == ["q", "p", "r"], f"masks follow the order of names; got {list(_ms)}"
assert _ms["q"].tolist() == [[0, 0]] and _ms["p"].tolist() == [[0, 0], [1, 1]] and _ms["r"].tolist() == [1, 1, 1], \
    f"ties across arrays: the earlier name's entries go first; got {[m.tolist() for m in _ms.values()]}"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "test-global_magnitude_masks-bad-input", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# global_magnitude_masks: bad input gets a clear error (its own small cell, apart from the algorithm's points)
_ms = global_magnitude_masks({"w": np.array([[0.1, 0.9], [0.2, 0.8]], dtype=np.float32)}, 0.5)
assert list(_ms) == ["w"] and _ms["w"].tolist() == [[0, 1], [0, 1]], \
    f"50% of one layer [[0.1, 0.9], [0.2, 0.8]]: expected the mask [[0, 1], [0, 1]] under 'w', got {list(_ms)}"
### BEGIN HIDDEN TESTS
for _args, _exc in ((([1.0], 0.5), TypeError), (({}, 0.5), ValueError), (({"w": np.ones(3)}, 0.5), ValueError),
                    (({"w": np.ones((2, 2))}, 1.2), ValueError), (({"w": np.ones((2, 2))}, 0.5, ["v"]), ValueError),
                    (({"w": np.full((2, 2), np.nan)}, 0.5), ValueError), (({"w": np.ones((2, 2))}, 0.5, "w"), TypeError)):
    expect_error(_exc, global_magnitude_masks, *_args)
### END HIDDEN TESTS

# %% [markdown]
# ## 5. Random pruning: the baseline
#
# If magnitude carried no information, pruning the smallest weights would do no better than
# pruning weights at random. The random baseline answers that question on every plot below.
# To compare like with like it prunes the *same exact count*.
#
# **Exercise 5.** Write `random_mask(weights, sparsity, seed=0)`: make a generator with
# `np.random.default_rng(seed)` (so `seed` may be an int or a `Generator`), draw one
# permutation of the flat indices with `rng.permutation(n)` and prune the first
# `prune_count(n, sparsity)` of them. Because the permutation depends only on the seed and
# `n`, masks for one seed are **nested**: everything pruned at 50% is also pruned at 70%.

# %% nbgrader={"grade": false, "grade_id": "random_mask", "locked": false, "schema_version": 3, "solution": true}
#| export
def random_mask(weights, sparsity, seed=0):
    """float32 mask pruning exactly prune_count(weights.size, sparsity) entries chosen uniformly at random."""
    weights = validate_weights(weights)
    sparsity = validate_sparsity(sparsity)
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (numbers.Integral, np.random.Generator)):
        raise TypeError(f"seed must be an int or a numpy Generator, got {seed!r}")
    if isinstance(seed, numbers.Integral) and seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    ### BEGIN SOLUTION
    rng = np.random.default_rng(seed)
    order = rng.permutation(weights.size)
    mask = np.ones(weights.size, dtype=np.float32)
    mask[order[:prune_count(weights.size, sparsity)]] = 0.0
    return mask.reshape(weights.shape)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-random_mask", "locked": true, "points": 2, "schema_version": 3, "solution": false}
_w = np.ones((50, 20), dtype=np.float32)
_m = random_mask(_w, 0.3, seed=1)
assert _m.dtype == np.float32 and _m.shape == (50, 20), f"expected a float32 (50, 20) mask, got {_m.dtype} {_m.shape}"
assert int((_m == 0).sum()) == 300, f"30% of 1000: expected exactly 300 zeros, got {int((_m == 0).sum())}"
assert np.array_equal(_m, random_mask(_w, 0.3, seed=1)), "the same seed must give the same mask"
assert not np.array_equal(_m, random_mask(_w, 0.3, seed=2)), "different seeds should give different masks"
_m7 = random_mask(_w, 0.7, seed=1)
assert np.all(_m7 <= _m), "masks of one seed must be nested: all pruned at 30% also pruned at 70%"
_want = np.ones(1000, dtype=np.float32)
_want[np.random.default_rng(1).permutation(1000)[:300]] = 0
assert np.array_equal(_m.ravel(), _want), "use rng = np.random.default_rng(seed) and prune rng.permutation(n)[:k]"
### BEGIN HIDDEN TESTS
_m = random_mask(np.arange(10.0), 0.5, seed=np.random.default_rng(3))
assert int((_m == 0).sum()) == 5, f"a Generator seed works too; expected 5 zeros, got {int((_m == 0).sum())}"
# the pruned positions are spread out, not the first k
_hits = sum(random_mask(np.ones(20), 0.5, seed=s)[0] == 0 for s in range(200))
assert 60 < _hits < 140, f"entry 0 should be pruned about half the time over 200 seeds, got {_hits}"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "test-random_mask-bad-input", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# random_mask: bad input gets a clear error (its own small cell, apart from the algorithm's points)
_m = random_mask(np.ones(10, dtype=np.float32), 0.3, seed=0)
assert _m.shape == (10,) and int((_m == 0).sum()) == 3, f"30% of 10 weights: expected exactly 3 zeros, got {_m.tolist()}"
### BEGIN HIDDEN TESTS
for _args, _exc in (((np.ones(4), 0.5, -1), ValueError), ((np.ones(4), 0.5, 1.5), TypeError),
                    ((np.ones(4), 1.5), ValueError), ((np.array([]), 0.5), ValueError)):
    expect_error(_exc, random_mask, *_args)
### END HIDDEN TESTS

# %% [markdown]
# ## 6. Iterative pruning: each round takes a share of what is left
#
# Han et al. prune in rounds: prune, retrain, prune again. When a round prunes an *amount*
# $a$, that fraction applies to the weights **still alive**, not to the whole array (this is
# what PyTorch's pruning container does when you call `l1_unstructured` twice). After $r$
# rounds the sparsity is about $1 - (1 - a)^r$; 0.5 twice gives 0.75, not 1.0.
#
# **Exercise 6.** Write `prune_remaining(weights, mask, amount)`: among the entries where `mask`
# is 1, prune `prune_count(alive, amount)` of smallest $|w|$ (stable tie rule over the flat
# indices of the alive entries), and return the new `float32` mask; pruned entries stay
# pruned. Then `iterative_magnitude_masks(weights, amount, rounds)` returns the list of masks
# after round 1, 2, ..., `rounds`, starting from all ones.

# %% nbgrader={"grade": false, "grade_id": "prune_remaining", "locked": false, "schema_version": 3, "solution": true}
#| export
def prune_remaining(weights, mask, amount):
    """New float32 mask: prune prune_count(alive, amount) of the smallest |w| still alive in `mask`."""
    weights = validate_weights(weights)
    mask = validate_mask(mask, weights.shape)
    amount = validate_sparsity(amount, "amount")
    ### BEGIN SOLUTION
    new = mask.astype(np.float32).ravel().copy()
    alive = np.flatnonzero(new)
    k = prune_count(alive.size, amount)
    order = alive[np.argsort(np.abs(weights.ravel()[alive]), kind="stable")]
    new[order[:k]] = 0.0
    return new.reshape(weights.shape)
    ### END SOLUTION


def iterative_magnitude_masks(weights, amount, rounds):
    """Masks after each of `rounds` rounds of prune_remaining(weights, mask, amount), from all ones."""
    weights = validate_weights(weights)
    amount = validate_sparsity(amount, "amount")
    if isinstance(rounds, (bool, np.bool_)) or not isinstance(rounds, numbers.Integral):
        raise TypeError(f"rounds must be an int, got {rounds!r}")
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    ### BEGIN SOLUTION
    mask = np.ones(weights.shape, dtype=np.float32)
    masks = []
    for _ in range(int(rounds)):
        mask = prune_remaining(weights, mask, amount)
        masks.append(mask)
    return masks
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-prune_remaining", "locked": true, "points": 3, "schema_version": 3, "solution": false}
_w = np.array([0.1, 0.9, 0.2, 0.8, 0.3, 0.7, 0.4, 0.6], dtype=np.float32)
_m1 = prune_remaining(_w, np.ones(8), 0.5)
assert _m1.dtype == np.float32 and _m1.tolist() == [0, 1, 0, 1, 0, 1, 0, 1], f"round 1 prunes 0.1-0.4; got {_m1.tolist()}"
_m2 = prune_remaining(_w, _m1, 0.5)
assert _m2.tolist() == [0, 1, 0, 1, 0, 0, 0, 0], f"round 2 prunes half of the 4 alive (0.6, 0.7); got {_m2.tolist()}"
_start = np.array([1, 1, 1, 1, 1, 1, 1, 0], dtype=np.float32)
_m = prune_remaining(_w, _start, 0.5)
assert _m[7] == 0 and int((_m == 0).sum()) == 1 + round(0.5 * 7), f"pruned entries stay pruned, 4 of 7 alive pruned; got {_m.tolist()}"
_ms = iterative_magnitude_masks(_w, 0.5, 3)
assert isinstance(_ms, list) and len(_ms) == 3, f"expected a list of 3 masks, got {type(_ms).__name__} of {len(_ms)}"
assert [int((_x == 0).sum()) for _x in _ms] == [4, 6, 7], f"zeros after each round: expected [4, 6, 7], got {[int((_x == 0).sum()) for _x in _ms]}"
### BEGIN HIDDEN TESTS
_m = prune_remaining(np.ones(6), np.array([1, 0, 1, 1, 0, 1]), 0.5)
assert _m.tolist() == [0, 0, 0, 1, 0, 1], f"ties among alive entries: lowest flat index first; got {_m.tolist()}"
assert np.array_equal(prune_remaining(_w, np.zeros(8), 0.9), np.zeros(8)), "nothing alive: mask unchanged"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "test-prune_remaining-bad-input", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# prune_remaining / iterative_magnitude_masks: bad input gets a clear error (its own small cell, apart from the algorithm's points)
_w = np.array([0.1, 0.9, 0.2, 0.8, 0.3, 0.7, 0.4, 0.6], dtype=np.float32)
_m = prune_remaining(_w, np.ones(8), 0.5)
assert _m.tolist() == [0, 1, 0, 1, 0, 1, 0, 1], f"half of {_w.tolist()}: expected [0, 1, 0, 1, 0, 1, 0, 1], got {_m.tolist()}"
### BEGIN HIDDEN TESTS
for _args, _exc in (((_w, np.ones(7), 0.5), ValueError), ((_w, np.full(8, 0.5), 0.5), ValueError), ((_w, np.ones(8), -0.5), ValueError)):
    expect_error(_exc, prune_remaining, *_args)
for _args, _exc in (((_w, 0.5, 0), ValueError), ((_w, 0.5, 2.0), TypeError)):
    expect_error(_exc, iterative_magnitude_masks, *_args)
### END HIDDEN TESTS

# %% [markdown]
# ## 7. Masks on a model
#
# A mask is only useful when it is applied to the live parameters of a model. `model.parameters()`
# (module 00) returns `{name: array}` with the arrays the optimizer updates in place, so
# `params[name] *= mask` prunes the model itself.
#
# **Exercise 7.** Write `apply_masks(model, masks)`: check that every key of `masks` names a
# parameter (`ValueError` naming the unknown key otherwise) and that each mask has the
# parameter's shape and only 0/1 values (use `validate_mask`, given at the top), then multiply
# **in place** and return the model. `sparsity_report` (given, next cell) tells you how sparse the
# result is.

# %% nbgrader={"grade": false, "grade_id": "sparsity_report", "locked": true, "schema_version": 3, "solution": false}
#| export
def sparsity_report(state, names=None):
    """Fraction of zeros per array and overall, for a model or a state_dict (default: arrays with ndim >= 2)."""
    if hasattr(state, "parameters"):
        state = state.parameters()
    if not isinstance(state, Mapping):
        raise TypeError(f"state must be a model or a dict of arrays, got {type(state).__name__}")
    names = [n for n, v in state.items() if np.ndim(v) >= 2] if names is None else list(names)
    per = {n: float(np.mean(np.asarray(state[n]) == 0)) for n in names}
    total = sum(np.size(state[n]) for n in names)
    zeros = sum(int(np.sum(np.asarray(state[n]) == 0)) for n in names)
    return {"per_layer": per, "overall": zeros / total if total else 0.0}


# %% nbgrader={"grade": false, "grade_id": "apply_masks", "locked": false, "schema_version": 3, "solution": true}
#| export
def apply_masks(model, masks):
    """Zero the pruned entries of the model's parameters in place; returns the model."""
    if not isinstance(masks, Mapping):
        raise TypeError(f"masks must be a dict {{parameter name: mask}}, got {type(masks).__name__}")
    if not hasattr(model, "parameters"):
        raise TypeError(f"model must have parameters() (a tinytorch.nn Module), got {type(model).__name__}")
    ### BEGIN SOLUTION
    params = model.parameters()
    checked = []
    for name, mask in masks.items():
        if name not in params:
            raise ValueError(f"masks has key {name!r}, which is not a parameter of the model (parameters: {list(params)})")
        checked.append((params[name], validate_mask(mask, params[name].shape, f"masks[{name!r}]")))
    for param, mask in checked:
        param *= mask
    return model
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-apply_masks", "locked": true, "points": 2, "schema_version": 3, "solution": false}
_model = make_mlp(seed=0)
_params = _model.parameters()
_before = {_n: _v.copy() for _n, _v in _params.items()}
_masks = {"0.weight": magnitude_mask(_params["0.weight"], 0.8)}
_out = apply_masks(_model, _masks)
assert _out is _model, "apply_masks must return the same model object"
assert np.array_equal(_model.parameters()["0.weight"], _before["0.weight"] * _masks["0.weight"]), "0.weight must become weight * mask"
assert _model.parameters()["0.weight"] is _params["0.weight"], "apply_masks must work in place (the same array object)"
assert np.array_equal(_model.parameters()["2.weight"], _before["2.weight"]), "parameters without a mask must not change"
_rep = sparsity_report(_model)
assert abs(_rep["per_layer"]["0.weight"] - round(0.8 * 8192) / 8192) < 1e-9, \
    f"0.weight sparsity: expected {round(0.8 * 8192) / 8192}, got {_rep['per_layer']['0.weight']}"

# %% nbgrader={"grade": true, "grade_id": "test-apply_masks-bad-input", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# apply_masks: bad input gets a clear error (its own small cell, apart from the algorithm's points)
_model = make_mlp(seed=0)
_params = _model.parameters()
_want = _params["0.weight"] * magnitude_mask(_params["0.weight"], 0.5)
apply_masks(_model, {"0.weight": magnitude_mask(_params["0.weight"], 0.5)})
assert np.array_equal(_model.parameters()["0.weight"], _want), "apply_masks must zero the masked entries of 0.weight"
### BEGIN HIDDEN TESTS
for _bad, _exc in (({"nope.weight": np.ones((2, 2))}, ValueError), ({"0.weight": np.ones((3, 3))}, ValueError),
                   ({"0.weight": np.full(_params["0.weight"].shape, 0.5)}, ValueError), ([("0.weight", 1)], TypeError)):
    _snapshot = _model.parameters()["0.weight"].copy()
    expect_error(_exc, apply_masks, _model, _bad)
    assert np.array_equal(_model.parameters()["0.weight"], _snapshot), "a rejected call must not change the model"
### END HIDDEN TESTS

# %% [markdown]
# ## 8. Fine-tuning with fixed masks
#
# Right after pruning, accuracy drops; a few epochs of training let the surviving weights
# compensate. The optimizer does not know about the mask: a pruned weight still receives a
# gradient (and Adam's momentum), so one step would revive it. The fix is to re-apply the mask
# after **every** optimizer step. `tinytorch.nn.train` calls `after_step(model)` after each step
# for exactly this purpose.
#
# **Exercise 8.** Write `finetune_masked(model, masks, X, y, epochs=..., lr=..., ...)`: apply the
# masks once, then call `train(...)` with an `after_step` that re-applies them (and then calls
# the caller's own `after_step`, if one was given). Return the training history.

# %% nbgrader={"grade": false, "grade_id": "finetune_masked", "locked": false, "schema_version": 3, "solution": true}
#| export
def finetune_masked(model, masks, X, y, epochs=5, lr=1e-3, batch_size=64, seed=0, optimizer="adam",
                    after_step=None, X_val=None, y_val=None):
    """Train `model` on (X, y) while keeping every masked weight exactly zero; returns the history."""
    if after_step is not None and not callable(after_step):
        raise TypeError(f"after_step must be callable or None, got {after_step!r}")
    ### BEGIN SOLUTION
    apply_masks(model, masks)  # validates once and zeroes the pruned weights
    pairs = [(name, np.asarray(mask, dtype=np.float32)) for name, mask in masks.items()]

    def keep_pruned(m):
        params = m.parameters()
        for name, mask in pairs:
            params[name] *= mask
        if after_step is not None:
            after_step(m)

    return train(model, X, y, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                 optimizer=optimizer, after_step=keep_pruned, X_val=X_val, y_val=y_val)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-finetune_masked", "locked": true, "points": 3, "schema_version": 3, "solution": false}
_model = make_mlp(seed=1)
_masks = {_n: magnitude_mask(_v, 0.9) for _n, _v in _model.parameters().items() if _v.ndim == 2}
_calls = []
_hist = finetune_masked(_model, _masks, X_train[:512], y_train[:512], epochs=5, lr=1e-2, after_step=lambda m: _calls.append(1))
assert isinstance(_hist, dict) and "loss" in _hist, f"expected train()'s history dict, got {type(_hist).__name__}"
for _n, _m in _masks.items():
    _w = _model.parameters()[_n]
    assert np.all(_w[_m == 0] == 0), f"{_n}: pruned weights must stay exactly zero after fine-tuning"
    assert np.any(_w[_m == 1] != 0), f"{_n}: kept weights should still be non-zero"
assert len(_calls) == 40, f"the caller's after_step must run after every step (5 epochs x 8 batches = 40), got {len(_calls)}"
_acc = evaluate(_model, X_train[:512], y_train[:512])
assert _acc > 0.4, f"fine-tuning a 90%-sparse MLP for 5 epochs should learn something; train accuracy {_acc:.3f}"

# %% nbgrader={"grade": true, "grade_id": "test-finetune_masked-bad-input", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# finetune_masked: bad input gets a clear error (its own small cell, apart from the algorithm's points)
_model = make_mlp(seed=1)
_masks = {"0.weight": magnitude_mask(_model.parameters()["0.weight"], 0.5)}
_hist = finetune_masked(_model, _masks, X_train[:64], y_train[:64], epochs=1)
assert isinstance(_hist, dict) and "loss" in _hist, f"expected train()'s history dict, got {type(_hist).__name__}"
assert np.all(_model.parameters()["0.weight"][_masks["0.weight"] == 0] == 0), "pruned weights must stay exactly zero"
### BEGIN HIDDEN TESTS
expect_error(ValueError, finetune_masked, make_mlp(seed=1), {"x": np.ones(2)}, X_train[:64], y_train[:64], epochs=1)  # unknown name
expect_error(TypeError, finetune_masked, make_mlp(seed=1), {}, X_train[:64], y_train[:64], epochs=1, after_step=3)  # not callable
### END HIDDEN TESTS

# %% [markdown]
# ## 9. The real result: 90% of the digits MLP, and a fair comparison on harder data
#
# ### 90% of the digits MLP, the way Han et al. do it
#
# Han et al. prune, retrain, prune more: we go 50% → 75% → 90% with one global threshold each
# time and fine-tune after every step, longer after the last one (the schedule below: (sparsity,
# epochs, learning rate); 80 epochs in all). Each round's mask is computed on the current
# weights, whose pruned entries are exactly zero and therefore rank first, so the masks are
# nested (checked). This is the module's headline: how close to dense a generous schedule gets
# on the digits. It is **not** a comparison of methods: nothing else here gets 80 epochs.

# %%
SCHEDULE = [(0.5, 10, 3e-3), (0.75, 10, 3e-3), (0.9, 40, 2e-3), (0.9, 20, 5e-4)]
_start = time.perf_counter()
finetuned_global90 = make_mlp(seed=0)
finetuned_global90.load_state_dict(dense_state)
previous = None
for round_index, (sparsity, epochs, lr) in enumerate(SCHEDULE):
    masks = global_magnitude_masks(finetuned_global90.state_dict(), sparsity, names=weight_names)
    if previous is not None:
        assert all(np.all(masks[n] <= previous[n]) for n in weight_names), "masks must be nested"
    finetune_masked(finetuned_global90, masks, X_train, y_train, epochs=epochs, lr=lr, seed=1 + round_index)
    previous = masks
global90 = evaluate(finetuned_global90, X_test, y_test)
report = sparsity_report(finetuned_global90)
print(f"schedule of {sum(e for _, e, _ in SCHEDULE)} epochs took {time.perf_counter() - _start:.1f} s")
print(f"digits: dense {100 * dense_acc:.2f}%, 90% global (iterative, 80 epochs) {100 * global90:.2f}% "
      f"({100 * (global90 - dense_acc):+.2f} points, {round((global90 - dense_acc) * len(y_test)):+d} of "
      f"{len(y_test)} test images)")
print("per-layer sparsity:", {k: round(v, 3) for k, v in report["per_layer"].items()}, f"overall {report['overall']:.3f}")
_g = previous  # the final (90%) masks

# %% [markdown]
# ### Why a second data set
#
# On the digits almost everything works: the dense MLP gets nearly every one of the 450 test
# images right, one image is worth 0.22 points, and two pruning methods rarely differ by more
# than a few images, less than what a different random seed changes. To **compare** methods we
# use MNIST-1D from module 00 (`load_mnist1d`): 4000 training and 2000 test signals on
# which the same MLP stays far from perfect (the next cell prints its accuracy), so
# capacity matters and removing it shows.
#
# The rules of every comparison in this course: the **same training budget** for every method
# (here: the same dense model, then exactly `FT_EPOCHS` epochs of masked fine-tuning), **three
# seeds** (each seed trains its own dense model and draws its own batches), and the result as
# mean ± sample standard deviation over the seeds, in percent and in test examples.

# %%
mnist1d = load_mnist1d(seed=0)
M_train, m_train, M_test, m_test = mnist1d.X_train, mnist1d.y_train, mnist1d.X_test, mnist1d.y_test
N_TEST = len(m_test)
SEEDS = (0, 1, 2)
M_DENSE_EPOCHS, FT_EPOCHS = 25, 4
M_SPARSITIES = (0.6, 0.8, 0.9)
METHODS = ("local", "global", "random")


def dense_mnist1d(seed):
    model = make_mlp(seed=seed, in_features=M_train.shape[1])
    train(model, M_train, m_train, epochs=M_DENSE_EPOCHS, lr=2e-3, seed=seed)
    return model.state_dict()


def masks_for(method, state, sparsity, seed):
    names = [n for n, v in state.items() if v.ndim >= 2]
    if method == "local":
        return {n: magnitude_mask(state[n], sparsity) for n in names}
    if method == "global":
        return global_magnitude_masks(state, sparsity, names=names)
    return {n: random_mask(state[n], sparsity, seed=1000 * seed + i) for i, n in enumerate(names)}


def masked_copy(state, masks, seed):
    model = make_mlp(seed=seed, in_features=M_train.shape[1])
    model.load_state_dict(state)
    return apply_masks(model, masks)


def fmt(values, scale=100.0, digits=1):
    mean, spread = mean_and_spread(np.asarray(values) * scale)
    return f"{mean:.{digits}f} ± {spread:.{digits}f}"


_start = time.perf_counter()
dense_states = {seed: dense_mnist1d(seed) for seed in SEEDS}
m_dense_acc = {seed: evaluate(masked_copy(dense_states[seed], {}, seed), M_test, m_test) for seed in SEEDS}
results = {}  # (method, sparsity, seed) -> (accuracy right after pruning, after FT_EPOCHS of fine-tuning)
for seed in SEEDS:
    for method in METHODS:
        for sparsity in M_SPARSITIES:
            masks = masks_for(method, dense_states[seed], sparsity, seed)
            model = masked_copy(dense_states[seed], masks, seed)
            before = evaluate(model, M_test, m_test)
            finetune_masked(model, masks, M_train, m_train, epochs=FT_EPOCHS, lr=2e-3, seed=seed + 1)
            results[method, sparsity, seed] = (before, evaluate(model, M_test, m_test))
print(f"{len(SEEDS)} dense models and {len(results)} prune + fine-tune runs took {time.perf_counter() - _start:.1f} s")
print(f"dense MLP on MNIST-1D: {fmt(list(m_dense_acc.values()))}% test accuracy (mean ± std over {len(SEEDS)} seeds)")
print(f"test accuracy (%) after {FT_EPOCHS} epochs of masked fine-tuning, mean ± std over seeds {SEEDS}:")
print(f"{'sparsity':>8} | " + " | ".join(f"{m:>11}" for m in METHODS) + " | global - local (examples) | global - random (examples)")
for sparsity in M_SPARSITIES:
    after = {m: [results[m, sparsity, k][1] for k in SEEDS] for m in METHODS}
    gl = [N_TEST * (g - l) for g, l in zip(after["global"], after["local"])]
    gr = [N_TEST * (g - r) for g, r in zip(after["global"], after["random"])]
    print(f"{sparsity:>8.2f} | " + " | ".join(f"{fmt(after[m]):>11}" for m in METHODS)
          + f" | {fmt(gl, 1, 0):>25} | {fmt(gr, 1, 0):>26}")
print(f"(one test example = {100 / N_TEST:.2f} points; differences are paired per seed)")

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for ax, phase, label in ((axes[0], 0, "right after pruning"), (axes[1], 1, f"after {FT_EPOCHS} epochs of masked fine-tuning")):
    for method, style in zip(METHODS, ("o-", "s-", "^--")):
        stats = [mean_and_spread([100 * results[method, s, k][phase] for k in SEEDS]) for s in M_SPARSITIES]
        ax.errorbar([100 * s for s in M_SPARSITIES], [m for m, _ in stats], yerr=[sd for _, sd in stats],
                    fmt=style, capsize=3, label=method)
    ax.axhline(100 * np.mean(list(m_dense_acc.values())), color="gray", lw=0.8, ls=":", label="dense")
    ax.set_title(label)
    ax.set_xlabel("sparsity (% of weights removed)")
axes[0].set_ylabel("test accuracy (%), mean ± std over 3 seeds")
axes[0].legend()
fig.suptitle("MNIST-1D MLP: accuracy vs sparsity")
plt.tight_layout()
plt.show()

# %% [markdown]
# Read the table before the text. Magnitude beats random by far more than the seed spread:
# the size of a trained weight does carry information, even after fine-tuning. Global and
# local are within noise at moderate sparsity and separate at high sparsity, because one
# threshold lets the big first layers give up more than the small output layer
# (`sparsity_report` on a global mask shows per-layer sparsities far from uniform), while local
# pruning forces the 64 × 10 output layer to lose as large a share as the rest. Note also the
# spreads: a single seed could have shown a different order for the closer pairs.
#
# ### One shot or iterative, at the same budget
#
# Han et al. prune iteratively, and a common reading is that iterative pruning beats one shot.
# But a schedule with more rounds usually also gets more epochs. Here both get **the same
# `3 × FT_EPOCHS` epochs** of masked fine-tuning to reach 90%: one shot prunes to 90% at once and
# fine-tunes for all of them; iterative prunes in three global rounds of equal ratio (each
# round removes the same fraction of what is left; the cell prints the three sparsities) with
# `FT_EPOCHS` epochs after each.

# %%
ITER_TARGET, ITER_ROUNDS = 0.9, 3
budget = ITER_ROUNDS * FT_EPOCHS
_start = time.perf_counter()
schedule_acc = {"one shot": [], "iterative": []}
for seed in SEEDS:
    state = dense_states[seed]
    masks = masks_for("global", state, ITER_TARGET, seed)
    model = masked_copy(state, masks, seed)
    finetune_masked(model, masks, M_train, m_train, epochs=budget, lr=2e-3, seed=seed + 1)
    schedule_acc["one shot"].append(evaluate(model, M_test, m_test))
    model = masked_copy(state, {}, seed)
    for r in range(1, ITER_ROUNDS + 1):
        sparsity_r = 1 - (1 - ITER_TARGET) ** (r / ITER_ROUNDS)
        masks = global_magnitude_masks(model.state_dict(), sparsity_r, names=list(masks))
        finetune_masked(model, masks, M_train, m_train, epochs=FT_EPOCHS, lr=2e-3, seed=seed + r)
    schedule_acc["iterative"].append(evaluate(model, M_test, m_test))
iter_gain = [N_TEST * (i - o) for i, o in zip(schedule_acc["iterative"], schedule_acc["one shot"])]
print(f"both reach {ITER_TARGET:.0%} global sparsity with {budget} epochs of fine-tuning ({time.perf_counter() - _start:.1f} s); "
      f"iterative rounds: {[round(1 - (1 - ITER_TARGET) ** (r / ITER_ROUNDS), 3) for r in range(1, ITER_ROUNDS + 1)]}")
for name, accs in schedule_acc.items():
    print(f"{name:>10}: {fmt(accs)}%   per seed {[round(100 * a, 2) for a in accs]}")
print(f"iterative - one shot: {fmt(iter_gain, 1, 1)} test examples of {N_TEST} "
      f"({fmt(np.array(iter_gain) / N_TEST)} points)")

# %% [markdown]
# At the same budget the two are much closer than "iterative is clearly better" suggests: the
# printout shows the difference and the spread across seeds side by side. Iterative pruning
# helps most when each round gets real retraining (Han et al. retrain to convergence between
# rounds, many times our budget); split over three rounds, each round's fine-tuning is short,
# and the last, hardest cut gets only a third of it. Module 04 compares schedules at equal
# budget again, gradual pruning included.

# %% [markdown]
# ### What pruning does to the weight distribution, and what a mask looks like
#
# Trained weights are roughly bell-shaped around zero. Magnitude pruning cuts out the centre of
# the distribution; fine-tuning then moves the survivors a little. The mask of the first layer
# is a 128 × 64 image: each column is one input pixel of the 8 × 8 digit.

# %%
fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
_w_dense = dense_state["0.weight"].ravel()
_w_ft = finetuned_global90.parameters()["0.weight"].ravel()
_bins = np.linspace(_w_dense.min(), _w_dense.max(), 81)
axes[0].hist(_w_dense, bins=_bins, color="tab:blue")
axes[0].set_title("layer 0 weights, dense")
axes[1].hist(_w_ft[_w_ft != 0], bins=_bins, color="tab:orange")
axes[1].set_title(f"layer 0 non-zero weights, 90% global + fine-tune\n({np.count_nonzero(_w_ft)} of {_w_ft.size} left)")
for ax in axes[:2]:
    ax.set_xlabel("weight value")
axes[2].imshow(_g["0.weight"], cmap="gray_r", aspect="auto", interpolation="nearest")
axes[2].set_title("layer 0 mask, 90% global iterative (black = kept)")
axes[2].set_xlabel("input pixel")
axes[2].set_ylabel("hidden unit")
plt.tight_layout()
plt.show()

# %% [markdown]
# Which pixels survive? Summing the first layer's mask over hidden units gives the number of kept
# connections per input pixel, an 8 × 8 image. A pixel that is blank in every training digit gives
# its weights no gradient: they keep their random initial values while useful weights grow during
# training. Magnitude does not know which weights are useless, only which are small; the printout
# counts how many connections of such pixels survive, and compares the border of the image with
# its interior.

# %%
_per_pixel = _g["0.weight"].sum(axis=0).reshape(8, 8)
plt.figure(figsize=(3.6, 3.2))
plt.imshow(_per_pixel, cmap="viridis")
plt.colorbar(label="kept connections")
plt.title("kept weights per input pixel")
plt.axis("off")
plt.show()
_border = np.ones((8, 8), dtype=bool)
_border[1:-1, 1:-1] = False
print(f"kept connections per pixel: border mean {_per_pixel[_border].mean():.1f}, interior mean {_per_pixel[~_border].mean():.1f}; "
      f"pixels that are zero in every training image: {int(np.sum(X_train.max(axis=0) == 0))}, "
      f"their kept connections: {int(_per_pixel.ravel()[X_train.max(axis=0) == 0].sum())}")

# %% [markdown]
# ## Summary
#
# * Magnitude pruning ranks weights by $|w|$ and removes exactly $k = \operatorname{round}(s\,n)$
#   of them (halves to even, as PyTorch); ranking (stable sort, lower flat index first among
#   ties) rather than thresholding is what makes the count exact. Module 02 counts units the
#   same way.
# * **Global** pruning uses one threshold for all layers and lets the big, redundant first
#   layers give up more than the small output layer; **local** pruning forces every layer to
#   the same sparsity; **random** pruning at the same count shows how much information
#   magnitude carries. On MNIST-1D, with three seeds and equal fine-tuning, the tables above say
#   how far apart they are at each sparsity, in points and in test examples.
# * Iterative pruning applies each round's amount to the surviving weights:
#   $1 - (1-a)^r$ after $r$ rounds. Whether it beats one shot depends on the budget: compare
#   at equal epochs, as above, before believing it.
# * Masks must be re-applied after every optimizer step. A long prune-and-retrain schedule
#   brings the digits MLP at 90% sparsity close to the dense one (the headline cell).
#
# Module 02 removes whole neurons and filters instead of single weights, which makes the
# network physically smaller and, unlike a mask, faster. Module 03 stores the sparse matrices
# you made here compactly.

# %% [markdown]
# ## 10. Questions on your results
#
# Answer from the tables and plots **your** notebook printed above (the tests check your
# answers against your own run, so a different machine's numbers do not matter). Questions
# 1 and 2 are checked automatically; questions 3 and 4 are read and graded by your instructor.
#
# **Q1 (number).** In the MNIST-1D table, at sparsity 0.90: by how many **test examples**
# does global magnitude pruning beat random pruning, on average over the seeds? Store the
# number in `q1_global_minus_random_examples` (a tolerance of ±1.5 examples is allowed).
#
# **Q2 (choice).** In the equal-budget comparison at 90%, which statement holds for your run?
# Store the letter in `q2_choice`.
#
# * `"A"`: iterative is ahead of one shot by more than 1 point on average;
# * `"B"`: the two are within 1 point of each other on average;
# * `"C"`: one shot is ahead of iterative by more than 1 point on average.

# %% nbgrader={"grade": false, "grade_id": "answers-results", "locked": false, "schema_version": 3, "solution": true}
q1_global_minus_random_examples = None  # a number, e.g. 57
q2_choice = None                        # "A", "B" or "C"
### BEGIN SOLUTION
q1_global_minus_random_examples = float(np.mean([N_TEST * (results["global", 0.9, k][1] - results["random", 0.9, k][1])
                                                 for k in SEEDS]))
_gain_points = 100 * float(np.mean(schedule_acc["iterative"]) - np.mean(schedule_acc["one shot"]))
q2_choice = "A" if _gain_points > 1 else ("C" if _gain_points < -1 else "B")
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-q1-results", "locked": true, "points": 2, "schema_version": 3, "solution": false}
_want = float(np.mean([N_TEST * (results["global", 0.9, k][1] - results["random", 0.9, k][1]) for k in SEEDS]))
assert isinstance(q1_global_minus_random_examples, (int, float, np.number)) and not isinstance(q1_global_minus_random_examples, bool), \
    f"q1_global_minus_random_examples must be a number, got {q1_global_minus_random_examples!r}"
assert abs(float(q1_global_minus_random_examples) - _want) <= 1.5, \
    (f"q1: {q1_global_minus_random_examples} does not match your table (row 0.90, column 'global - random (examples)', "
     "mean over seeds; tolerance ±1.5 examples)")
print("Q1 matches your table")

# %% nbgrader={"grade": true, "grade_id": "test-q2-results", "locked": true, "points": 2, "schema_version": 3, "solution": false}
_gain = 100 * float(np.mean(schedule_acc["iterative"]) - np.mean(schedule_acc["one shot"]))
_ok = {"A"} if _gain > 1.1 else {"C"} if _gain < -1.1 else {"B"} if abs(_gain) < 0.9 else ({"A", "B"} if _gain > 0 else {"B", "C"})
assert q2_choice in ("A", "B", "C"), f"q2_choice must be 'A', 'B' or 'C', got {q2_choice!r}"
assert q2_choice in _ok, f"q2: {q2_choice!r} does not fit your printout 'iterative - one shot' (in points)"
print("Q2 fits your run")

# %% [markdown] nbgrader={"grade": true, "grade_id": "q3-global-vs-local", "locked": false, "points": 3, "schema_version": 3, "solution": true}
# **Q3 (written, 3 points).** Run `sparsity_report` on a 90% global mask of one MNIST-1D model
# (in a scratch cell: apply `masks_for("global", dense_states[0], 0.9, 0)` to a copy with
# `masked_copy`). Where does global pruning put the sparsity, layer by layer, and why does that
# explain the gap to local pruning in your table? Three to five sentences, quoting your numbers.
#
# ### BEGIN SOLUTION
# *Reference answer (instructor only; students see an empty answer cell).* Global pruning
# leaves the output layer (64 × 10, the fewest weights) far less sparse than 90% and prunes
# the first two layers harder; local forces 90% on every layer, so the output layer keeps only
# about 64 of its 640 weights and several classes lose most of their evidence. The big layers
# are redundant (many small weights), the last one is not. The gap in the table (global -
# local, in examples) grows with sparsity for that reason.
#
# *Rubric (3 points):* 1 point for per-layer sparsities read from their own run (the output
# layer clearly below the target, earlier layers above it); 1 point for linking this to the
# output layer being small and each of its weights mattering more; 1 point for connecting it
# to the measured gap (quoting the number in examples or points, with its seed spread).
# ### END SOLUTION

# %% [markdown] nbgrader={"grade": true, "grade_id": "q4-two-datasets", "locked": false, "points": 3, "schema_version": 3, "solution": true}
# **Q4 (written, 3 points).** On the digits, 90% sparsity costs almost nothing; on MNIST-1D it
# costs many points even after fine-tuning. Give two reasons from this notebook (budget, data,
# capacity) and say which comparison you would trust more to choose between pruning methods,
# and why (mention the seed spread).
#
# ### BEGIN SOLUTION
# *Reference answer.* (1) The digits headline got 80 epochs of fine-tuning, MNIST-1D only
# 4-12. (2) The digits are easy: the dense MLP is near 100% and has far more capacity than it
# needs, while on MNIST-1D the dense MLP is already capacity-limited (about two thirds right),
# so every removed weight costs accuracy. To choose between methods, trust MNIST-1D: the
# methods differ there by tens of test examples, much more than the spread across seeds,
# while on the digits the differences are a few images, within seed noise.
#
# *Rubric (3 points):* 1 point for the budget difference; 1 point for the difficulty or
# capacity argument; 1 point for choosing MNIST-1D because differences exceed the seed spread
# (an answer choosing the digits with a sound argument about noise can get the point only if
# it cites spreads).
# ### END SOLUTION
