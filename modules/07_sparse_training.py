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
# # Module 07: sparse training from scratch, and movement pruning
#
# Every method so far starts dense: train the full network, then remove weights
# (modules 01 and 04). The training itself pays for every weight. This module asks
# two other questions:
#
# 1. **Can a network be sparse for the whole of its training?** *Dynamic sparse
#    training* keeps a fixed number of connections from the first step to the last
#    and moves them around: now and then it drops the weakest connections of each
#    layer and grows the same number elsewhere. SET (Mocanu et al. 2018, *Scalable
#    training of artificial neural networks with adaptive sparse connectivity*)
#    grows at random; RigL (Evci et al. 2020, *Rigging the Lottery: Making All
#    Tickets Winners*) grows where the dense gradient is largest. Both pay for
#    (about) the sparse network only, so for the price of one dense training they
#    can train several times longer.
# 2. **What should decide which weights go when a *pretrained* model is fine-tuned
#    for a new task?** Magnitude reflects what the weights learned in pretraining.
#    *Movement pruning* (Sanh et al. 2020, *Movement Pruning: Adaptive Sparsity by
#    Fine-Tuning*) keeps the weights that the fine-tuning pushes away from zero.
#
# ## Learning goals
#
# - Write the update schedule of dynamic sparse training: a drop fraction that decays
#   with a cosine, updates every $\Delta T$ steps, none after $T_{end}$.
# - Split a global sparsity budget over layers: uniformly, or with the Erdős–Rényi
#   rule that gives small layers more density, capped at dense.
# - Implement drop by magnitude, regrowth at random (SET) and by gradient (RigL), and
#   one full topology update that keeps the number of connections exactly constant.
# - Count training FLOPs honestly (a sparse step costs its density, RigL's dense
#   gradient costs extra) and compare, **at the same training FLOPs and over seeds**,
#   dense training, prune-after-training, SET and RigL.
# - Accumulate movement scores $-w\,\partial L/\partial w$ during fine-tuning and
#   compare movement with magnitude pruning at the same sparsity and budget.

# %% nbgrader={"grade": false, "grade_id": "imports", "locked": true, "schema_version": 3, "solution": false}
#| default_exp sparse_train
#| export
import math
import numbers
from collections.abc import Mapping

import numpy as np

from tinytorch.prune import prune_count, validate_int, validate_sparsity, validate_weights
from tinytorch.schedule import polynomial_sparsity

# %% nbgrader={"grade": false, "grade_id": "notebook-imports", "locked": true, "schema_version": 3, "solution": false}
# Notebook-only imports: the package above needs nothing but numpy and earlier modules.
import time

import matplotlib.pyplot as plt
from threadpoolctl import threadpool_limits

from tinytorch.data import load_mnist1d
from tinytorch.nn import Linear, ReLU, Sequential, evaluate, train
from tinytorch.prune import finetune_masked, global_magnitude_masks, magnitude_mask
from tinytorch.schedule import GradualPruner
from tinytorch.testing import expect_error

threadpool_limits(1)  # one BLAS thread: the matrices are tiny and the machine may be shared

# %% [markdown]
# ## Checking arguments
#
# Every public function checks its arguments first and names the bad one. Module 01's
# checks do most of the work (`validate_weights`, `validate_sparsity`, `validate_int`);
# the helpers below add a 0/1 mask of a given shape, a dict of layer shapes, a random
# generator from a seed, and the list of parameters to sparsify. They are given; call
# them at the top of your solutions (hidden tests feed in bad input).

# %% nbgrader={"grade": false, "grade_id": "validation-helpers", "locked": true, "schema_version": 3, "solution": false}
#| export
def _check_mask(mask, shape=None, name="mask"):
    """A 0/1 array (float32 copy returned), of `shape` when given."""
    mask = validate_weights(mask, name)
    if shape is not None and mask.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {mask.shape}")
    if not np.all((mask == 0) | (mask == 1)):
        raise ValueError(f"{name} must hold only 0 and 1")
    return mask.astype(np.float32)


def _check_shapes(shapes, name="shapes"):
    """{layer name: shape} with every shape a tuple of >= 2 positive ints."""
    if not isinstance(shapes, Mapping):
        raise TypeError(f"{name} must be a dict {{layer name: shape tuple}}, got {type(shapes).__name__}")
    if len(shapes) == 0:
        raise ValueError(f"{name} is empty")
    out = {}
    for key, shape in shapes.items():
        if not isinstance(key, str):
            raise TypeError(f"{name} keys must be layer names (str), got {key!r}")
        if not isinstance(shape, (tuple, list)) or not all(
                isinstance(d, numbers.Integral) and not isinstance(d, (bool, np.bool_)) for d in shape):
            raise TypeError(f"{name}[{key!r}] must be a tuple of ints, got {shape!r}")
        if len(shape) < 2 or min(shape) < 1:
            raise ValueError(f"{name}[{key!r}] must have at least 2 positive dimensions, got {tuple(shape)}")
        out[key] = tuple(int(d) for d in shape)
    return out


def _make_rng(seed, name="seed"):
    """np.random.Generator from an int seed >= 0 (or the Generator itself)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(validate_int(seed, name, minimum=0))


def _sparse_names(params, names=None):
    """Parameters to sparsify: `names` if given, else every parameter with ndim >= 2."""
    if names is None:
        names = [n for n, p in params.items() if np.ndim(p) >= 2]
        if not names:
            raise ValueError("the model has no parameter with 2 or more dimensions to sparsify")
        return names
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise TypeError(f"names must be a list of parameter names, got {names!r}")
    names = list(names)
    missing = [n for n in names if n not in params]
    if not names or missing:
        raise ValueError(f"names must be parameters of the model; unknown {missing} (have {list(params)})")
    return names

# %% [markdown]
# ## 1. When to change the topology, and how much
#
# Dynamic sparse training changes the connections of every sparse layer every
# $\Delta T$ optimizer steps. At an update at step $t$, each layer replaces a fraction
# $f(t)$ of its active connections. Early in training the topology is far from good
# and big moves help; late in training the network needs a stable topology to settle.
# RigL therefore decays the fraction with a cosine and stops changing the topology at
# $T_{end}$ (75% of training in the paper), leaving the rest for plain sparse training:
#
# $$ f(t) = \frac{\alpha}{2}\left(1 + \cos\frac{\pi t}{T_{end}}\right) \quad (t < T_{end}),
#    \qquad f(t) = 0 \quad (t \ge T_{end}). $$
#
# $\alpha$ is the initial fraction (0.3 in both papers). The topology changes at the
# steps $t$ with $0 < t < T_{end}$ and $t$ a multiple of $\Delta T$ (step 0 is
# the initialisation: nothing has been learned yet to judge connections by).
#
# ### Exercise 1: `cosine_drop_fraction` and `is_update_step`
#
# Hints: validate first (`validate_int(step, "step", minimum=0)`, `end_step` and
# `delta_t` at least 1, `alpha` with `validate_sparsity(alpha, "alpha")`); return a
# Python `float` / `bool`; return exactly `alpha` at step 0 and exactly `0.0` from
# `end_step` on.

# %% nbgrader={"grade": false, "grade_id": "drop-schedule", "locked": false, "schema_version": 3, "solution": true}
#| export
def cosine_drop_fraction(step, alpha=0.3, end_step=1000):
    """Fraction of each layer's active connections replaced at an update at `step`:
    alpha/2 * (1 + cos(pi * step / end_step)) before end_step, 0.0 from end_step on."""
    ### BEGIN SOLUTION
    step = validate_int(step, "step", minimum=0)
    alpha = validate_sparsity(alpha, "alpha")
    end_step = validate_int(end_step, "end_step", minimum=1)
    if step >= end_step:
        return 0.0
    if step == 0:
        return alpha
    return float(alpha / 2.0 * (1.0 + math.cos(math.pi * step / end_step)))
    ### END SOLUTION


def is_update_step(step, delta_t=100, end_step=1000):
    """True when the topology changes at `step`: 0 < step < end_step and step % delta_t == 0."""
    ### BEGIN SOLUTION
    step = validate_int(step, "step", minimum=0)
    delta_t = validate_int(delta_t, "delta_t", minimum=1)
    end_step = validate_int(end_step, "end_step", minimum=1)
    return bool(0 < step < end_step and step % delta_t == 0)
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-drop-schedule", "locked": true, "points": 4, "schema_version": 3, "solution": false}
# the cosine against the formula at chosen steps
for _step, _want in [(0, 0.3), (250, 0.15 * (1 + math.cos(math.pi / 4))), (500, 0.15),
                     (900, 0.15 * (1 + math.cos(0.9 * math.pi))), (1000, 0.0), (4000, 0.0)]:
    _got = cosine_drop_fraction(_step, alpha=0.3, end_step=1000)
    assert isinstance(_got, float), f"cosine_drop_fraction({_step}): expected a Python float, got {type(_got).__name__}"
    assert abs(_got - _want) < 1e-12, f"cosine_drop_fraction({_step}, 0.3, 1000): expected {_want:.6f}, got {_got:.6f}"
_values = [cosine_drop_fraction(_t, 0.5, 40) for _t in range(50)]
assert all(_b <= _a for _a, _b in zip(_values, _values[1:])), f"the fraction must never grow, got {_values}"
# the update steps
_got = [_t for _t in range(60) if is_update_step(_t, delta_t=10, end_step=45)]
assert _got == [10, 20, 30, 40], f"delta_t=10, end_step=45: expected updates at [10, 20, 30, 40], got {_got}"
_got = [_t for _t in range(8) if is_update_step(_t, delta_t=1, end_step=5)]
assert _got == [1, 2, 3, 4], f"delta_t=1, end_step=5: expected [1, 2, 3, 4] (not step 0, not end_step), got {_got}"

# %% nbgrader={"grade": true, "grade_id": "test-drop-schedule-errors", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# bad input gets a clear error (more cases are checked when grading)
expect_error(ValueError, cosine_drop_fraction, -1, 0.3, 100, match="step")
### BEGIN HIDDEN TESTS
assert cosine_drop_fraction(0, 1.0, 1) == 1.0 and cosine_drop_fraction(1, 1.0, 1) == 0.0, "end_step=1: alpha then 0"
assert is_update_step(40, 10, 40) is False, "no update at end_step itself"
for _args, _exc in [((-1,), ValueError), ((1.5,), TypeError), ((True,), TypeError), ((0, 1.5), ValueError),
                    ((0, float("nan")), ValueError), ((0, "0.3"), TypeError), ((0, 0.3, 0), ValueError),
                    ((0, 0.3, 10.0), TypeError)]:
    expect_error(_exc, cosine_drop_fraction, *_args)
for _args, _exc, _name in [((-1, 10, 100), ValueError, "step"), ((5, 0, 100), ValueError, "delta_t"),
                           ((5, 10, 0), ValueError, "end_step"), ((5, 2.0, 100), TypeError, "delta_t")]:
    expect_error(_exc, is_update_step, *_args, match=_name)
### END HIDDEN TESTS

# %% [markdown]
# The drop fraction for $\alpha = 0.3$ and $T_{end} = 750$ of a 1000-step run; the dots
# are the update steps for $\Delta T = 50$.

# %%
_steps = np.arange(0, 1001)
fig, ax = plt.subplots(figsize=(6, 3.2))
ax.plot(_steps, [cosine_drop_fraction(int(t), 0.3, 750) for t in _steps], label="f(t)")
_updates = [t for t in range(1001) if is_update_step(t, 50, 750)]
ax.plot(_updates, [cosine_drop_fraction(t, 0.3, 750) for t in _updates], "ko", ms=4, label="update steps (ΔT = 50)")
ax.set_xlabel("training step")
ax.set_ylabel("fraction of connections replaced")
ax.set_title(f"cosine decay, α = 0.3, T_end = 750: {len(_updates)} updates")
ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 2. Splitting the budget over layers: uniform and Erdős–Rényi
#
# A global sparsity $s$ over layers of sizes $n_l$ leaves a budget of
# $(1-s)\sum_l n_l$ connections. **Uniform** gives every layer density $1-s$.
# **Erdős–Rényi** (ER, Mocanu et al. 2018) makes the density of a layer with $n_{in}$
# inputs and $n_{out}$ outputs proportional to
#
# $$ \frac{n_{in} + n_{out}}{n_{in}\, n_{out}}, $$
#
# the density of a random bipartite graph whose number of edges grows with the number
# of its nodes, not with their product. Big layers become sparser, small ones
# denser: a 10-output classifier keeps many more of its few weights than a wide hidden
# layer. (For a convolution kernel RigL's "ER-kernel" adds the kernel dimensions to
# both sums; the rule below, the sum of all dimensions over their product, covers
# both.) One factor $\epsilon$ scales all layers so that the densities spend the
# budget exactly: $\sum_l \epsilon\, r_l\, n_l = (1-s)\sum_l n_l$ with
# $r_l = \sum \text{dims} / \prod \text{dims}$.
#
# A density cannot exceed 1. When $\epsilon r_l > 1$ for some layers, make the layer
# with the largest $r_l$ dense, take its $n_l$ out of the budget, solve for
# $\epsilon$ again over the remaining layers, and repeat until no layer is over (this
# is what the RigL reference code does).
#
# ### Exercise 2: `erdos_renyi_densities`
#
# Hints: validate with `_check_shapes(shapes)` and `validate_sparsity(sparsity)`;
# `math.prod(shape)` is $n_l$; return `{name: float}` in the order of `shapes`, dense
# layers exactly `1.0`.

# %% nbgrader={"grade": false, "grade_id": "uniform-densities", "locked": true, "schema_version": 3, "solution": false}
#| export
def uniform_densities(shapes, sparsity):
    """Every layer at density 1 - sparsity: {name: density}."""
    shapes = _check_shapes(shapes)
    sparsity = validate_sparsity(sparsity)
    return {name: 1.0 - sparsity for name in shapes}


def sparse_masks(shapes, densities, seed=0):
    """Random float32 masks, layer `name` with exactly round(densities[name] * size) ones."""
    shapes = _check_shapes(shapes)
    if not isinstance(densities, Mapping) or set(densities) != set(shapes):
        raise ValueError(f"densities must be a dict with the same names as shapes {list(shapes)}, got {densities!r}")
    rng = _make_rng(seed)
    masks = {}
    for name, shape in shapes.items():
        density = validate_sparsity(densities[name], f"densities[{name!r}]")
        size = math.prod(shape)
        mask = np.zeros(size, dtype=np.float32)
        mask[rng.permutation(size)[:int(round(density * size))]] = 1.0
        masks[name] = mask.reshape(shape)
    return masks

# %% nbgrader={"grade": false, "grade_id": "erdos-renyi", "locked": false, "schema_version": 3, "solution": true}
#| export
def erdos_renyi_densities(shapes, sparsity):
    """Per-layer densities proportional to sum(shape) / prod(shape), scaled so that they keep
    exactly (1 - sparsity) of all weights, capped at 1 (the overflow goes to the other layers)."""
    ### BEGIN SOLUTION
    shapes = _check_shapes(shapes)
    sparsity = validate_sparsity(sparsity)
    sizes = {name: math.prod(shape) for name, shape in shapes.items()}
    raw = {name: sum(shape) / sizes[name] for name, shape in shapes.items()}
    budget = (1.0 - sparsity) * sum(sizes.values())
    dense, eps = set(), 0.0
    while len(dense) < len(shapes):
        rest = [name for name in shapes if name not in dense]
        eps = (budget - sum(sizes[name] for name in dense)) / sum(raw[name] * sizes[name] for name in rest)
        over = [name for name in rest if eps * raw[name] > 1.0]
        if not over:
            break
        dense.add(max(over, key=lambda name: raw[name]))
    return {name: 1.0 if name in dense else float(eps * raw[name]) for name in shapes}
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-erdos-renyi", "locked": true, "points": 5, "schema_version": 3, "solution": false}
_shapes = {"a": (10, 20), "b": (20, 30), "c": (30, 5)}
_d = erdos_renyi_densities(_shapes, 0.9)
assert isinstance(_d, dict) and list(_d) == ["a", "b", "c"], f"expected a dict with keys ['a', 'b', 'c'], got {_d!r}"
_raw = {"a": 30 / 200, "b": 50 / 600, "c": 35 / 150}
_eps = 0.1 * 950 / (30 + 50 + 35)  # no layer is capped at this sparsity
for _n in _shapes:
    assert abs(_d[_n] - _eps * _raw[_n]) < 1e-12, f"density of {_n}: expected {_eps * _raw[_n]:.6f}, got {_d[_n]:.6f}"
_kept = sum(_d[_n] * math.prod(_shapes[_n]) for _n in _shapes)
assert abs(_kept - 95.0) < 1e-9, f"the densities must keep 10% of 950 weights = 95, they keep {_kept:.6f}"
# capping: the tiny layer would need density > 1, so it becomes dense and the big one takes the rest
_d = erdos_renyi_densities({"big": (100, 100), "small": (10, 2)}, 0.5)
assert _d["small"] == 1.0, f"the small layer should be capped at exactly 1.0, got {_d['small']}"
_want = (0.5 * 10020 - 20) / 10000
assert abs(_d["big"] - _want) < 1e-12, f"after capping, big gets the rest of the budget: expected {_want}, got {_d['big']}"
_u = uniform_densities(_shapes, 0.9)
assert all(abs(_v - 0.1) < 1e-12 for _v in _u.values()), "uniform_densities is given: every layer at 0.1"

# %% nbgrader={"grade": true, "grade_id": "test-erdos-renyi-errors", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# bad input gets a clear error (more cases are checked when grading)
expect_error(ValueError, erdos_renyi_densities, {"a": (3, 4)}, 1.5, match="sparsity")
### BEGIN HIDDEN TESTS
_d = erdos_renyi_densities({"a": (3, 4), "b": (5, 6)}, 0.0)
assert all(abs(_v - 1.0) < 1e-12 for _v in _d.values()), f"sparsity 0 keeps every layer dense, got {_d}"
_d = erdos_renyi_densities({"a": (3, 4), "b": (5, 6)}, 1.0)
assert all(_v == 0.0 for _v in _d.values()), f"sparsity 1 keeps nothing, got {_d}"
_shapes = {"conv": (16, 8, 3, 3), "fc": (10, 64), "tiny": (2, 2), "wide": (256, 128)}
_d = erdos_renyi_densities(_shapes, 0.8)
_kept = sum(_d[_n] * math.prod(_s) for _n, _s in _shapes.items())
_total = sum(math.prod(_s) for _s in _shapes.values())
assert abs(_kept - 0.2 * _total) < 1e-6 * _total, f"budget not met: kept {_kept}, want {0.2 * _total}"
assert all(0.0 <= _v <= 1.0 for _v in _d.values()) and _d["tiny"] == 1.0, f"densities must lie in [0, 1], got {_d}"
for _args, _exc in [(({"a": (3, 4)}, 1.5), ValueError), (({"a": (3, 4)}, "0.5"), TypeError), (({}, 0.5), ValueError),
                    (([(3, 4)], 0.5), TypeError), (({"a": (3,)}, 0.5), ValueError), (({"a": (3, 0)}, 0.5), ValueError),
                    (({"a": (3.0, 4)}, 0.5), TypeError)]:
    expect_error(_exc, erdos_renyi_densities, *_args)
### END HIDDEN TESTS

# %% [markdown]
# The two distributions for the MLP of section 6 (40 inputs, hidden layers of 128 and
# 64, 10 classes) at 90% sparsity: the table shows which layers ER makes denser and
# which sparser than uniform, and the last line checks that both keep the same total.

# %%
_shapes = {"0.weight": (128, 40), "2.weight": (64, 128), "4.weight": (10, 64)}
_uniform, _er = uniform_densities(_shapes, 0.9), erdos_renyi_densities(_shapes, 0.9)
print(f"{'layer':<9} {'shape':>10} {'weights':>8} {'uniform':>8} {'ER':>8} {'ER kept':>8}")
for _n, _s in _shapes.items():
    print(f"{_n:<9} {str(_s):>10} {math.prod(_s):>8} {_uniform[_n]:>8.3f} {_er[_n]:>8.3f} {_er[_n] * math.prod(_s):>8.1f}")
print(f"kept in all: uniform {sum(_uniform[_n] * math.prod(_s) for _n, _s in _shapes.items()):.1f}, "
      f"ER {sum(_er[_n] * math.prod(_s) for _n, _s in _shapes.items()):.1f} of {sum(math.prod(_s) for _s in _shapes.values())}")

# %% [markdown]
# ## 3. Drop and grow
#
# One topology update of one layer has two halves. With $k$ the number of connections
# to replace:
#
# - **drop**: among the *active* connections (mask 1), switch off the $k$ of smallest
#   $|w|$. Weights outside the mask do not compete, whatever value they hold.
# - **grow**: among the *inactive* positions of the mask after the drop, switch on $k$:
#   SET picks them uniformly at random; RigL picks the $k$ of largest
#   $|\partial L/\partial w|$, the dense gradient of the current mini-batch, which the
#   backward pass of a `Linear` layer computes for every entry anyway
#   ($G^\top X$ is dense even when $W$ is not).
#
# Growing among the positions inactive *after* the drop means that a connection just
# dropped may come straight back; the number of active connections is the same before
# and after. Ties go to the lower flat index (`np.argsort(..., kind="stable")`), as in
# module 01, so every count is exact.
#
# ### Exercise 3: `drop_by_magnitude`
#
# Hints: validate `weights` with `validate_weights`, the mask with
# `_check_mask(mask, weights.shape)`, `n_drop` with `validate_int(..., minimum=0)`, and
# raise a `ValueError` naming `n_drop` when it exceeds the number of active
# connections. Return a new float32 mask; never change the one passed in.

# %% nbgrader={"grade": false, "grade_id": "drop", "locked": false, "schema_version": 3, "solution": true}
#| export
def drop_by_magnitude(weights, mask, n_drop):
    """New float32 mask: the n_drop active connections (mask 1) of smallest |w| switched off;
    among equal magnitudes the lower flat index goes first."""
    ### BEGIN SOLUTION
    weights = validate_weights(weights)
    mask = _check_mask(mask, weights.shape)
    n_drop = validate_int(n_drop, "n_drop", minimum=0)
    active = np.flatnonzero(mask.ravel() == 1)
    if n_drop > active.size:
        raise ValueError(f"n_drop={n_drop} exceeds the {active.size} active connections")
    order = np.argsort(np.abs(weights.ravel()[active]), kind="stable")
    new = mask.ravel().copy()
    new[active[order[:n_drop]]] = 0.0
    return new.reshape(mask.shape)
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-drop", "locked": true, "points": 4, "schema_version": 3, "solution": false}
_w = np.array([[0.5, -0.1, 0.3], [-0.9, 0.05, 0.7]], dtype=np.float32)
_m = np.array([[1, 1, 0], [1, 1, 1]], dtype=np.float32)
_before = _m.copy()
_new = drop_by_magnitude(_w, _m, 2)
assert isinstance(_new, np.ndarray) and _new.dtype == np.float32 and _new.shape == _m.shape, \
    f"expected a float32 mask of shape {_m.shape}, got {type(_new).__name__} {getattr(_new, 'dtype', None)} {getattr(_new, 'shape', None)}"
_want = np.array([[1, 0, 0], [1, 0, 1]], dtype=np.float32)
assert np.array_equal(_new, _want), f"drop 2: the active 0.05 and -0.1 go (0.3 is already inactive); expected {_want.tolist()}, got {_new.tolist()}"
assert np.array_equal(_m, _before), "drop_by_magnitude must not change the mask passed in"
assert np.array_equal(drop_by_magnitude(_w, _m, 0), _m), "n_drop=0 returns the same mask"
_rng = np.random.default_rng(3)
_W = _rng.normal(size=(40, 30)).astype(np.float32)
_M = (_rng.random((40, 30)) < 0.3).astype(np.float32)
_new = drop_by_magnitude(_W, _M, 50)
assert int(_new.sum()) == int(_M.sum()) - 50, f"dropping 50 of {int(_M.sum())}: expected {int(_M.sum()) - 50} left, got {int(_new.sum())}"
assert np.all(_new <= _M), "drop may only switch connections off"
_gone = np.abs(_W[(_M == 1) & (_new == 0)])
assert _gone.max() <= np.abs(_W[_new == 1]).min(), "every dropped |w| must be <= every kept |w|"

# %% nbgrader={"grade": true, "grade_id": "test-drop-errors", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# bad input gets a clear error (more cases are checked when grading)
expect_error(ValueError, drop_by_magnitude, np.ones((2, 2)), np.eye(2), 3, match="n_drop")
### BEGIN HIDDEN TESTS
_new = drop_by_magnitude(np.ones((2, 3)), np.ones((2, 3)), 4)
assert _new.tolist() == [[0, 0, 0], [0, 1, 1]], f"ties: the lower flat indices go first, got {_new.tolist()}"
assert drop_by_magnitude(np.ones(4), np.array([1, 0, 1, 1]), 3).tolist() == [0, 0, 0, 0], "dropping all active"
_w, _m = np.ones((2, 2)), np.array([[1, 0], [0, 1]])
for _args, _exc, _name in [((_w, _m, 3), ValueError, "n_drop"), ((_w, _m, -1), ValueError, "n_drop"),
                           ((_w, _m, 1.0), TypeError, "n_drop"), ((_w, np.full((2, 2), 0.5), 1), ValueError, "mask"),
                           ((_w, np.ones((2, 3)), 1), ValueError, "mask"),
                           ((np.array([[1.0, np.nan], [1, 1]]), _m, 1), ValueError, "weights")]:
    expect_error(_exc, drop_by_magnitude, *_args, match=_name)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 4: `grow_random` (SET) and `grow_by_gradient` (RigL)
#
# Hints: validate the mask with `_check_mask`, `n_grow` with `validate_int(...,
# minimum=0)`, and raise a `ValueError` naming `n_grow` when there are fewer inactive
# positions than that. For SET make a generator with `_make_rng(seed)` (an int or a
# `Generator`) and draw without replacement among the inactive flat indices
# (`rng.choice(..., replace=False)`). For RigL the gradient must be finite and of the
# mask's shape (`validate_weights(gradient, "gradient")`); sort the inactive positions
# by $-|g|$ with a stable sort.

# %% nbgrader={"grade": false, "grade_id": "grow", "locked": false, "schema_version": 3, "solution": true}
#| export
def grow_random(mask, n_grow, seed=0):
    """SET's regrowth: a new float32 mask with n_grow inactive positions, chosen uniformly
    at random, switched on."""
    ### BEGIN SOLUTION
    mask = _check_mask(mask)
    n_grow = validate_int(n_grow, "n_grow", minimum=0)
    rng = _make_rng(seed)
    inactive = np.flatnonzero(mask.ravel() == 0)
    if n_grow > inactive.size:
        raise ValueError(f"n_grow={n_grow} exceeds the {inactive.size} inactive positions")
    new = mask.ravel().copy()
    new[rng.choice(inactive, size=n_grow, replace=False)] = 1.0
    return new.reshape(mask.shape)
    ### END SOLUTION


def grow_by_gradient(mask, gradient, n_grow):
    """RigL's regrowth: a new float32 mask with the n_grow inactive positions of largest
    |gradient| switched on; among equal magnitudes the lower flat index goes first."""
    ### BEGIN SOLUTION
    mask = _check_mask(mask)
    gradient = validate_weights(gradient, "gradient")
    if gradient.shape != mask.shape:
        raise ValueError(f"gradient must have the mask's shape {mask.shape}, got {gradient.shape}")
    n_grow = validate_int(n_grow, "n_grow", minimum=0)
    inactive = np.flatnonzero(mask.ravel() == 0)
    if n_grow > inactive.size:
        raise ValueError(f"n_grow={n_grow} exceeds the {inactive.size} inactive positions")
    order = np.argsort(-np.abs(gradient.ravel()[inactive]), kind="stable")
    new = mask.ravel().copy()
    new[inactive[order[:n_grow]]] = 1.0
    return new.reshape(mask.shape)
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-grow", "locked": true, "points": 5, "schema_version": 3, "solution": false}
_m = np.array([[1, 0, 0], [0, 1, 0]], dtype=np.float32)
_g = np.array([[9.0, 0.1, -3.0], [2.0, 8.0, -0.5]], dtype=np.float32)
_new = grow_by_gradient(_m, _g, 2)
_want = np.array([[1, 0, 1], [1, 1, 0]], dtype=np.float32)
assert isinstance(_new, np.ndarray) and _new.dtype == np.float32, f"expected a float32 mask, got {type(_new).__name__} {getattr(_new, 'dtype', None)}"
assert np.array_equal(_new, _want), f"grow 2 by |gradient| among the inactive (|g| 0.1, 3, 2, 0.5): expected {_want.tolist()}, got {_new.tolist()}"
assert np.array_equal(_m, [[1, 0, 0], [0, 1, 0]]), "grow_by_gradient must not change the mask passed in"
_rng = np.random.default_rng(4)
_M = (_rng.random((20, 30)) < 0.2).astype(np.float32)
_r = grow_random(_M, 50, seed=7)
assert isinstance(_r, np.ndarray) and _r.dtype == np.float32 and _r.shape == _M.shape, "grow_random: a float32 mask of the same shape"
assert int(_r.sum()) == int(_M.sum()) + 50, f"grow 50: expected {int(_M.sum()) + 50} active, got {int(_r.sum())}"
assert np.all(_r >= _M), "growing must keep every active connection"
assert np.array_equal(_r, grow_random(_M, 50, seed=7)), "the same seed must give the same growth"
assert not np.array_equal(_r, grow_random(_M, 50, seed=8)), "another seed should grow elsewhere"
# uniform: with 10 free positions and one growth, each is picked about 1/10 of the time
_free = np.ones(12, dtype=np.float32)
_free[[3, 7]] = 0.0
_free = 1.0 - _free  # 10 inactive positions except 3 and 7, which are active
_counts = np.zeros(12)
for _s in range(2000):
    _counts += grow_random(_free, 1, seed=_s) - _free
assert _counts[3] == 0 and _counts[7] == 0, "active positions must never be grown"
assert _counts.min(initial=2000, where=_free == 0) > 140 and _counts.max() < 260, \
    f"random growth should be uniform over the 10 inactive positions (about 200 each of 2000), got {_counts.tolist()}"

# %% nbgrader={"grade": true, "grade_id": "test-grow-errors", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# bad input gets a clear error (more cases are checked when grading)
expect_error(ValueError, grow_by_gradient, np.eye(2), np.ones((2, 2)), 3, match="n_grow")
### BEGIN HIDDEN TESTS
_new = grow_by_gradient(np.zeros((2, 2)), np.ones((2, 2)), 3)
assert _new.tolist() == [[1, 1], [1, 0]], f"ties: the lower flat indices grow first, got {_new.tolist()}"
_r = grow_random(np.zeros(6), 2, seed=np.random.default_rng(0))
assert int(_r.sum()) == 2, "a Generator is accepted as the seed"
_m = np.array([[1, 0], [1, 1]])
for _fn, _args, _exc, _name in [
        (grow_random, (_m, 2), ValueError, "n_grow"), (grow_random, (_m, -1), ValueError, "n_grow"),
        (grow_random, (_m, 1, "seed"), TypeError, "seed"), (grow_random, (np.full((2, 2), 2.0), 1), ValueError, "mask"),
        (grow_by_gradient, (_m, np.ones((2, 2)), 2), ValueError, "n_grow"),
        (grow_by_gradient, (_m, np.ones((3, 2)), 1), ValueError, "gradient"),
        (grow_by_gradient, (_m, np.array([[np.inf, 1], [1, 1]]), 1), ValueError, "gradient"),
        (grow_by_gradient, (_m, np.ones((2, 2)), 1.0), TypeError, "n_grow")]:
    expect_error(_exc, _fn, *_args, match=_name)
### END HIDDEN TESTS

# %% [markdown]
# ## 4. One topology update, and the training hook
#
# `DynamicSparsity(model, sparsity, method, distribution, ...)` owns the masks of a
# model's weight matrices (biases stay dense). The constructor (given) splits the
# budget with `uniform_densities` or `erdos_renyi_densities`, draws random masks with
# exactly `round(density * size)` connections per layer, and zeroes the weights outside
# them. `after_step` (given) is the hook for `tinytorch.nn.train`: after every optimizer
# step it counts the step, re-applies the masks (the optimizer just moved the inactive
# weights) and, when `is_update_step` says so, calls `update`.
#
# `update(model, step)` is yours. With $f$ = `cosine_drop_fraction(step, alpha,
# end_step)`, for each layer in `self.names`:
#
# 1. $k$ = `round(f * active)`, with `active` the number of ones in its mask;
# 2. drop $k$ by magnitude from the current weights, then grow $k$: at random with
#    `self.rng` for `method="set"`, by the layer's gradient (`model.gradients()`) for
#    `method="rigl"`;
# 3. a connection that was inactive before the update and is active after it starts
#    at **zero**; then multiply the weights by the new mask (a connection dropped and
#    grown back in the same update keeps its value, as in the RigL reference code);
# 4. store the new mask in `self.masks`.
#
# Append `(step, f, total replaced)` to `self.history` and return the total number of
# connections replaced over all layers.

# %% nbgrader={"grade": false, "grade_id": "dynamic-sparsity", "locked": false, "schema_version": 3, "solution": true}
#| export
class DynamicSparsity:
    """Sparse training from scratch with a fixed number of connections: SET or RigL.

    Pass `ds.after_step` as `after_step` to `tinytorch.nn.train`."""

    def __init__(self, model, sparsity=0.9, method="rigl", distribution="uniform", alpha=0.3, delta_t=100,
                 end_step=1000, seed=0, names=None):
        if not hasattr(model, "parameters") or not hasattr(model, "gradients"):
            raise TypeError(f"model must be a tinytorch Module, got {type(model).__name__}")
        if method not in ("set", "rigl"):
            raise ValueError(f"method must be 'set' or 'rigl', got {method!r}")
        if distribution not in ("uniform", "erdos-renyi"):
            raise ValueError(f"distribution must be 'uniform' or 'erdos-renyi', got {distribution!r}")
        self.sparsity = validate_sparsity(sparsity)
        if self.sparsity == 1.0:
            raise ValueError("sparsity must be below 1: a layer needs at least some connections")
        self.alpha = validate_sparsity(alpha, "alpha")
        self.end_step = validate_int(end_step, "end_step", minimum=1)
        self.delta_t = validate_int(delta_t, "delta_t", minimum=1)
        self.method, self.distribution = method, distribution
        params = model.parameters()
        self.names = _sparse_names(params, names)
        shapes = {name: params[name].shape for name in self.names}
        split = uniform_densities if distribution == "uniform" else erdos_renyi_densities
        self.densities = split(shapes, self.sparsity)
        self.rng = _make_rng(seed)
        self.masks = sparse_masks(shapes, self.densities, seed=self.rng)
        for name, mask in self.masks.items():
            params[name] *= mask
        self.step = 0        # optimizer steps seen by after_step
        self.history = []    # (step, drop fraction, connections replaced) for each update

    def update(self, model, step):
        """Replace round(f * active) connections of every layer (f the cosine drop fraction at
        `step`): drop by magnitude, grow at random (SET) or by |gradient| (RigL), new ones at 0.
        Returns the number of connections replaced."""
        ### BEGIN SOLUTION
        step = validate_int(step, "step", minimum=0)
        params, grads = model.parameters(), model.gradients()
        fraction = cosine_drop_fraction(step, self.alpha, self.end_step)
        replaced = 0
        for name in self.names:
            weight, mask = params[name], self.masks[name]
            k = int(round(fraction * int(mask.sum())))
            kept = drop_by_magnitude(weight, mask, k)
            if self.method == "set":
                new = grow_random(kept, k, self.rng)
            else:
                new = grow_by_gradient(kept, grads[name], k)
            weight[(new == 1) & (mask == 0)] = 0.0
            weight *= new
            self.masks[name] = new
            replaced += k
        self.history.append((step, fraction, replaced))
        return replaced
        ### END SOLUTION

    def after_step(self, model):
        """Hook for `train(after_step=...)`: count the step, keep the masks, update on schedule."""
        self.step += 1
        params = model.parameters()
        for name, mask in self.masks.items():
            params[name] *= mask
        if is_update_step(self.step, self.delta_t, self.end_step):
            self.update(model, self.step)

# %% nbgrader={"grade": false, "grade_id": "toy-dynamic", "locked": true, "schema_version": 3, "solution": false}
# A toy model for the tests below: a 2-layer network at 75% sparsity whose weights look trained
# (zero off the mask) and whose gradients are dense.
def toy_dynamic(method, seed=0):
    net = Sequential(Linear(12, 16, seed=seed), ReLU(), Linear(16, 6, seed=seed + 1))
    ds = DynamicSparsity(net, sparsity=0.75, method=method, alpha=0.5, delta_t=5, end_step=100, seed=seed)
    rng = np.random.default_rng(seed + 10)
    for name in ds.names:
        net.parameters()[name][...] = rng.normal(size=ds.masks[name].shape) * ds.masks[name]
        net.gradients()[name][...] = rng.normal(size=ds.masks[name].shape)
    return net, ds

# %% nbgrader={"grade": true, "grade_id": "test-dynamic-sparsity", "locked": true, "points": 6, "schema_version": 3, "solution": false}
_net, _ds = toy_dynamic("rigl")
_old = {_n: _ds.masks[_n].copy() for _n in _ds.names}
_w_old = {_n: _net.parameters()[_n].copy() for _n in _ds.names}
_got = _ds.update(_net, 0)  # f(0) = alpha = 0.5
_k = {_n: int(round(0.5 * _old[_n].sum())) for _n in _ds.names}
assert _got == sum(_k.values()), f"update should return the connections replaced, {sum(_k.values())}; got {_got}"
for _n in _ds.names:
    _new, _w = _ds.masks[_n], _net.parameters()[_n]
    assert _new.dtype == np.float32 and int(_new.sum()) == int(_old[_n].sum()), \
        f"{_n}: the number of connections must stay {int(_old[_n].sum())}, got {int(_new.sum())}"
    _active = np.flatnonzero(_old[_n].ravel() == 1)
    _smallest = _active[np.argsort(np.abs(_w_old[_n].ravel()[_active]), kind="stable")[:_k[_n]]]
    _after_drop = _old[_n].ravel().copy()
    _after_drop[_smallest] = 0
    _cands = np.flatnonzero(_after_drop == 0)
    _largest = _cands[np.argsort(-np.abs(_net.gradients()[_n].ravel()[_cands]), kind="stable")[:_k[_n]]]
    _want = _after_drop.copy()
    _want[_largest] = 1
    assert np.array_equal(_new.ravel(), _want), f"{_n}: RigL should drop the {_k[_n]} smallest |w| and grow the {_k[_n]} largest |grad|"
    _grown = (_new == 1) & (_old[_n] == 0)
    assert _grown.sum() > 0 and np.all(_w[_grown] == 0), f"{_n}: newly grown connections must start at exactly 0"
    _stay = (_new == 1) & (_old[_n] == 1)
    assert np.array_equal(_w[_stay], _w_old[_n][_stay]), f"{_n}: connections kept (or dropped and regrown) keep their weights"
    assert np.all(_w[_new == 0] == 0), f"{_n}: weights outside the new mask must be zero"
assert _ds.history == [(0, 0.5, _got)], f"history should be [(0, 0.5, {_got})], got {_ds.history}"
# SET: the same invariants with random growth
_net, _ds = toy_dynamic("set", seed=1)
_old = {_n: _ds.masks[_n].copy() for _n in _ds.names}
_ds.update(_net, 50)  # f(50) = 0.25
for _n in _ds.names:
    _new = _ds.masks[_n]
    assert int(_new.sum()) == int(_old[_n].sum()), f"SET {_n}: the number of connections must stay the same"
    assert not np.array_equal(_new, _old[_n]), f"SET {_n}: the topology should change at f = 0.25"
    assert np.all(_net.parameters()[_n][(_new == 1) & (_old[_n] == 0)] == 0), f"SET {_n}: grown weights start at 0"

# %% nbgrader={"grade": true, "grade_id": "test-dynamic-sparsity-errors", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# bad input gets a clear error (more cases are checked when grading)
_net, _ds = toy_dynamic("rigl", seed=4)
expect_error(ValueError, _ds.update, _net, -1, match="step")
### BEGIN HIDDEN TESTS
_net, _ds = toy_dynamic("rigl", seed=2)
_old = {_n: _ds.masks[_n].copy() for _n in _ds.names}
assert _ds.update(_net, 100) == 0, "at end_step the fraction is 0: nothing is replaced"
assert all(np.array_equal(_ds.masks[_n], _old[_n]) for _n in _ds.names), "no change at end_step"
expect_error(ValueError, _ds.update, _net, -1, match="step")
# the hook updates on schedule: delta_t=5 -> steps 5, 10, 15
_net, _ds = toy_dynamic("set", seed=3)
for _ in range(17):
    _ds.after_step(_net)
assert [_h[0] for _h in _ds.history] == [5, 10, 15], f"after 17 steps, updates at [5, 10, 15], got {_ds.history}"
# Erdos-Renyi distribution through the constructor keeps the budget
_net = Sequential(Linear(40, 30, seed=0), ReLU(), Linear(30, 4, seed=1))
_ds = DynamicSparsity(_net, sparsity=0.8, method="rigl", distribution="erdos-renyi", delta_t=2, end_step=10)
_nnz = sum(int(_m.sum()) for _m in _ds.masks.values())
assert abs(_nnz - 0.2 * 1320) <= 1, f"ER masks keep 20% of 1320 weights, got {_nnz}"
_ds.update(_net, 2)
assert sum(int(_m.sum()) for _m in _ds.masks.values()) == _nnz, "updates keep the ER budget"
for _kw, _exc in [({"method": "grow"}, ValueError), ({"distribution": "er"}, ValueError), ({"sparsity": 1.0}, ValueError),
                  ({"delta_t": 0}, ValueError), ({"alpha": 2.0}, ValueError), ({"names": ["nope"]}, ValueError)]:
    expect_error(_exc, DynamicSparsity, _net, **_kw)
### END HIDDEN TESTS

# %% [markdown]
# ## 5. Counting training FLOPs
#
# Our numpy layers multiply the masked weights as dense matrices, so wall-clock time
# says nothing about what sparse training *could* cost. We count what a sparse-aware
# implementation would pay, the way the RigL paper does. For a `Linear` layer with a
# dense cost of $F_l = 2\,n_{in}n_{out}$ FLOPs per sample, one training sample costs a
# forward pass, the gradient with respect to the layer's input, and the gradient
# with respect to its weights: $3F_l$ dense, $3d_lF_l$ at density $d_l$. RigL's update
# steps need the **dense** weight gradient: those samples cost $2d_lF_l + F_l$, i.e.
# $(1-d_l)F_l$ more. Biases and activations are not counted (as in `count_flops`).
# `training_flops` (given) adds it up.

# %% nbgrader={"grade": false, "grade_id": "training-flops", "locked": true, "schema_version": 3, "solution": false}
#| export
def training_flops(layer_flops, densities, samples, dense_grad_samples=0):
    """FLOPs of training on `samples` samples: 3 * density * F per sample and layer (forward,
    input gradient, weight gradient), plus (1 - density) * F for each of `dense_grad_samples`
    samples whose weight gradient is dense (RigL's updates). `layer_flops`: {name: F per sample}."""
    if not isinstance(layer_flops, Mapping) or not isinstance(densities, Mapping) or not layer_flops:
        raise TypeError("layer_flops and densities must be non-empty dicts {layer name: number}")
    if set(layer_flops) != set(densities):
        raise ValueError(f"densities must have the names of layer_flops {sorted(layer_flops)}, got {sorted(densities)}")
    samples = validate_int(samples, "samples", minimum=0)
    dense_grad_samples = validate_int(dense_grad_samples, "dense_grad_samples", minimum=0)
    if dense_grad_samples > samples:
        raise ValueError(f"dense_grad_samples ({dense_grad_samples}) cannot exceed samples ({samples})")
    total = 0.0
    for name, flops in layer_flops.items():
        flops = validate_int(flops, f"layer_flops[{name!r}]", minimum=0)
        density = validate_sparsity(densities[name], f"densities[{name!r}]")
        total += 3.0 * density * flops * samples + (1.0 - density) * flops * dense_grad_samples
    return total

# %% [markdown]
# ## 6. Dense, prune-after-training, SET and RigL at the same training FLOPs
#
# The question of the RigL paper, at our scale: given the FLOPs of one dense training,
# which way of spending them gives the most accurate sparse network? The data is
# MNIST-1D from module 00 (`load_mnist1d`: 1-D signals of 40 points, ten classes,
# generated offline), which is hard enough for the methods to come apart; the 8x8
# digits are learned almost perfectly by all of them. The budget $B$ is
# `DENSE_EPOCHS` epochs of dense training of an MLP; every method gets $B$ (or as many
# whole epochs as fit under it), with Adam, the same learning rate and batch size:
#
# - **dense**: `DENSE_EPOCHS` epochs, no sparsity (the reference accuracy, not sparse);
# - **prune after training**: dense for half the budget, global magnitude pruning to
#   the target sparsity (module 01), then masked fine-tuning for as many sparse epochs
#   as the other half of $B$ pays for; a second row spends three quarters of $B$ dense
#   and the last quarter sparse;
# - **SET** and **RigL** (uniform and Erdős–Rényi): sparse from the first step, for
#   as many epochs as $B$ pays for at their density (RigL's dense gradients at update
#   steps included); topology updates every `DELTA_T` steps with $\alpha = 0.3$ until
#   75% of the run.
#
# Every run is repeated for the seeds printed below (the seed sets the initialisation,
# the masks and the data order); the table gives the mean, the spread (min to max) and
# the training FLOPs each method really used.

# %%
notebook_start = time.perf_counter()
DATA_NAME, data = "MNIST-1D", load_mnist1d(seed=0)  # module 00's harder data set: the methods separate on it
X_train, y_train, X_test, y_test = data.X_train, data.y_train, data.X_test, data.y_test
N_IN, N_CLASSES = X_train.shape[1], int(max(y_train.max(), y_test.max())) + 1
HIDDEN = (128, 64)
WEIGHTS = ["0.weight", "2.weight", "4.weight"]
BATCH, LR = 256, 1e-2
SPARSITY = 0.9
DENSE_EPOCHS = 4
DELTA_T, ALPHA = 12, 0.3
SEEDS = (0, 1, 2)
N = len(X_train)
steps_per_epoch = math.ceil(N / BATCH)
print(f"data: {DATA_NAME}, {N} training and {len(X_test)} test examples, {N_IN} inputs, {N_CLASSES} classes")


def make_net(seed, n_out=N_CLASSES):
    """MLP N_IN -> HIDDEN -> n_out with ReLUs, every layer seeded from `seed`."""
    widths = (N_IN,) + HIDDEN + (n_out,)
    seeds = np.random.SeedSequence(seed).generate_state(len(widths) - 1)
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
        layers += [Linear(fan_in, fan_out, seed=int(seeds[i]))] + ([ReLU()] if i < len(widths) - 2 else [])
    return Sequential(*layers)


LAYER_FLOPS = {n: 2 * make_net(0).parameters()[n].size for n in WEIGHTS}
DENSE = {n: 1.0 for n in WEIGHTS}
BUDGET = training_flops(LAYER_FLOPS, DENSE, DENSE_EPOCHS * N)
print(f"layers {[make_net(0).parameters()[n].shape for n in WEIGHTS]}, {sum(LAYER_FLOPS.values())} FLOPs per "
      f"sample forward; budget B = {DENSE_EPOCHS} dense epochs = {BUDGET:.3e} training FLOPs")


def batch_sizes(epochs):
    """Size of the batch at each optimizer step 1, 2, ... of `epochs` epochs (the last batch may be short)."""
    one = [min(BATCH, N - start) for start in range(0, N, BATCH)]
    return one * epochs


def mask_densities(masks):
    return {n: float(masks[n].mean()) for n in WEIGHTS}


def dynamic_cost(densities, epochs, method):
    """Training FLOPs of `epochs` sparse epochs; RigL adds a dense weight gradient at its update steps."""
    sizes = batch_sizes(epochs)
    end_step = int(0.75 * len(sizes))
    dense_grad = 0 if method == "set" else sum(sizes[t - 1] for t in range(1, len(sizes) + 1)
                                               if is_update_step(t, DELTA_T, end_step))
    return training_flops(LAYER_FLOPS, densities, epochs * N, dense_grad)


def run_dense(seed):
    net = make_net(seed)
    train(net, X_train, y_train, epochs=DENSE_EPOCHS, lr=LR, batch_size=BATCH, seed=seed)
    return net, BUDGET, 0.0, f"{DENSE_EPOCHS} dense"


def run_prune_after(pretrain):
    return lambda seed: prune_after_training(seed, pretrain)


def prune_after_training(seed, pretrain):
    net = make_net(seed)
    train(net, X_train, y_train, epochs=pretrain, lr=LR, batch_size=BATCH, seed=seed)
    masks = global_magnitude_masks({n: net.parameters()[n] for n in WEIGHTS}, SPARSITY)
    spent = training_flops(LAYER_FLOPS, DENSE, pretrain * N)
    epochs = int((BUDGET - spent) // training_flops(LAYER_FLOPS, mask_densities(masks), N))
    finetune_masked(net, masks, X_train, y_train, epochs=epochs, lr=LR, batch_size=BATCH, seed=seed + 1000)
    used = spent + training_flops(LAYER_FLOPS, mask_densities(masks), epochs * N)
    return net, used, SPARSITY, f"{pretrain} dense + {epochs} sparse"


def run_dynamic(method, distribution):
    def run(seed):
        net = make_net(seed)
        shapes = {n: net.parameters()[n].shape for n in WEIGHTS}
        split = uniform_densities if distribution == "uniform" else erdos_renyi_densities
        densities = mask_densities(sparse_masks(shapes, split(shapes, SPARSITY)))
        epochs = int(BUDGET // training_flops(LAYER_FLOPS, densities, N))
        while dynamic_cost(densities, epochs, method) > BUDGET:
            epochs -= 1
        ds = DynamicSparsity(net, SPARSITY, method=method, distribution=distribution, alpha=ALPHA, delta_t=DELTA_T,
                             end_step=int(0.75 * epochs * steps_per_epoch), seed=seed, names=WEIGHTS)
        train(net, X_train, y_train, epochs=epochs, lr=LR, batch_size=BATCH, seed=seed, after_step=ds.after_step)
        sparsity = 1.0 - sum(float(ds.masks[n].sum()) for n in WEIGHTS) / sum(ds.masks[n].size for n in WEIGHTS)
        return net, dynamic_cost(densities, epochs, method), sparsity, f"{epochs} sparse"
    return run


METHODS = {"dense": run_dense, "prune after training": run_prune_after(DENSE_EPOCHS // 2),
           "prune after, 3/4 dense": run_prune_after(3 * DENSE_EPOCHS // 4),
           "SET (uniform)": run_dynamic("set", "uniform"), "SET (Erdos-Renyi)": run_dynamic("set", "erdos-renyi"),
           "RigL (uniform)": run_dynamic("rigl", "uniform"), "RigL (Erdos-Renyi)": run_dynamic("rigl", "erdos-renyi")}
runs = []  # method, seed, accuracy, flops, sparsity, epochs, seconds


def run_methods(*names):
    """Train every method in `names` with every seed; one cell per family keeps each cell short."""
    started = time.perf_counter()
    for name in names:
        for seed in SEEDS:
            t0 = time.perf_counter()
            net, flops, sparsity, epochs = METHODS[name](seed)
            runs.append({"method": name, "seed": seed, "accuracy": evaluate(net, X_test, y_test), "flops": flops,
                         "sparsity": sparsity, "epochs": epochs, "seconds": time.perf_counter() - t0})
    print(f"{', '.join(names)}: {len(names) * len(SEEDS)} runs in {time.perf_counter() - started:.1f} s")


run_methods("dense", "prune after training", "prune after, 3/4 dense")

# %%
run_methods("SET (uniform)", "SET (Erdos-Renyi)")

# %%
run_methods("RigL (uniform)", "RigL (Erdos-Renyi)")

# %%
def summary_of(method, key="accuracy"):
    values = np.array([r[key] for r in runs if r["method"] == method])
    return values.mean(), values.min(), values.max()


n_test = len(X_test)
print(f"{DATA_NAME}, target sparsity {SPARSITY:.0%}, seeds {SEEDS}, budget B = {BUDGET:.3e} FLOPs; "
      f"accuracy on {n_test} test examples")
print(f"{'method':<20} {'sparsity':>8} {'mean acc':>9} {'correct':>8} {'spread (min-max)':>24} {'FLOPs / B':>9} "
      f"{'epochs':>18}")
for name in METHODS:
    mean, lo, hi = summary_of(name)
    epochs = next(r["epochs"] for r in runs if r["method"] == name)
    print(f"{name:<20} {summary_of(name, 'sparsity')[0]:>8.1%} {mean:>9.2%} {mean * n_test:>8.1f} "
          f"{f'{lo:.2%}-{hi:.2%} ({(hi - lo) * n_test:.0f} ex)':>24} {summary_of(name, 'flops')[0] / BUDGET:>9.3f} "
          f"{epochs:>18}")

# %%
fig, ax = plt.subplots(figsize=(7, 3.6))
for i, name in enumerate(METHODS):
    accs = 100 * np.array([r["accuracy"] for r in runs if r["method"] == name])
    ax.plot([i] * len(accs), accs, "o", alpha=0.5, color=f"C{i}")
    ax.errorbar(i, accs.mean(), yerr=[[accs.mean() - accs.min()], [accs.max() - accs.mean()]], fmt="s", color=f"C{i}",
                capsize=5)
ax.set_xticks(range(len(METHODS)), [m.replace(" (", "\n(") for m in METHODS], fontsize=8)
ax.set_ylabel("test accuracy (%)")
ax.set_title(f"{DATA_NAME}: same training FLOPs, {SPARSITY:.0%} sparse (dots: seeds, bars: min-max)")
plt.tight_layout()
plt.show()

# %% [markdown]
# What the numbers above say, computed rather than typed: how far each sparse method
# ends from the dense network and from prune-after-training (the better of its two
# splits) at the same FLOPs, as differences of the means in percentage points and in
# test examples; whether the seeds of two methods overlap at all; and the best sparse
# method. Read a difference against the spreads in the table: with three seeds, a gap
# smaller than the spread is not a result.
#
# Where the FLOPs go explains most of it. Prune-after-training spends half (or three
# quarters) of $B$ on dense epochs and has the rest for a sparse fine-tuning; SET and
# RigL spend all of $B$ at density $1 - s$, which buys them about $1/(1-s)$ times as
# many epochs as the dense run (the `epochs` column). The dense run, for its part, is the dense network *this
# budget* buys, not the best dense network: the last line, outside the comparison,
# shows what three times the budget buys it.

# %%
dense_mean, dense_lo, dense_hi = summary_of("dense")
pat_best = max([m for m in METHODS if m.startswith("prune after")], key=lambda m: summary_of(m)[0])
pat_mean, pat_lo, pat_hi = summary_of(pat_best)
print(f"the better prune-after-training split by mean accuracy: {pat_best!r} (compared with below)")
sparse_methods = [m for m in METHODS if m != "dense"]
for name in sparse_methods:
    mean, lo, hi = summary_of(name)
    line = f"{name:<20} vs dense {100 * (mean - dense_mean):+6.2f} pt ({(mean - dense_mean) * n_test:+6.1f} ex)"
    if not name.startswith("prune after"):
        line += (f", vs prune-after-training {100 * (mean - pat_mean):+6.2f} pt ({(mean - pat_mean) * n_test:+6.1f} ex)"
                 f"; every seed above every prune-after-training seed: {lo > pat_hi}")
    print(line)
best = max(sparse_methods, key=lambda m: summary_of(m)[0])
print(f"best sparse method by mean accuracy: {best}; its worst seed is above dense's best seed: "
      f"{summary_of(best)[1] > dense_hi}")
longer = []
for seed in SEEDS:  # a reference outside the comparison: dense training with three times the budget
    net = make_net(seed)
    train(net, X_train, y_train, epochs=3 * DENSE_EPOCHS, lr=LR, batch_size=BATCH, seed=seed)
    longer.append(evaluate(net, X_test, y_test))
print(f"for reference, dense with 3 B ({3 * DENSE_EPOCHS} epochs): mean {np.mean(longer):.2%}, "
      f"spread {min(longer):.2%}-{max(longer):.2%}")

# %% [markdown]
# ## 7. Movement pruning for fine-tuning a pretrained model
#
# Now the network is not trained from scratch: it was pretrained on one task and is
# fine-tuned, and pruned, for another. Magnitude pruning keeps the weights that are
# large *now*, which after pretraining mostly means large for the old task. Sanh et
# al. (2020) instead keep the weights that the fine-tuning moves **away from zero**.
# With $g^{(t)} = \partial L/\partial w$ at step $t$, the movement score of a weight is
#
# $$ S = -\sum_{t} w^{(t)}\, g^{(t)}, $$
#
# positive when the gradient keeps pushing the weight further from zero (a step of
# gradient descent moves $w$ by $-\eta g$, so $-w g > 0$ means $|w|$ grows) and
# negative when it pulls the weight towards zero. The masks are the top scores of each
# layer, with the sparsity raised on the cubic schedule of module 04.
#
# Sanh et al. update the scores through a straight-through estimator and can revive
# pruned weights. We keep the course's simpler rule from module 04: a pruned weight is
# zero and stays pruned (its score stops changing, since $w = 0$), and each pruning
# event removes the lowest scores among the survivors. That makes the comparison
# with module 04's `GradualPruner` exact: same schedule, same monotone masks, only the
# ranking differs.
#
# `MovementPruner` is the training hook. Its constructor and `after_step` are given:
# after each optimizer step it re-applies the masks, calls `accumulate(model)`, and at
# the schedule's pruning steps calls `compute_masks(sparsity)` and applies the result.
#
# ### Exercise 6: `MovementPruner.accumulate` and `MovementPruner.compute_masks`
#
# - `accumulate(model)`: for each name in `self.layer_names(model)`, add
#   $-w \cdot g$ (elementwise, from `model.parameters()` and `model.gradients()`) to
#   `self.scores[name]`, a float64 array that starts at zeros on the first call.
# - `compute_masks(sparsity)`: validate the sparsity; raise a `ValueError` if no scores
#   exist yet; for each layer return a float32 mask that prunes exactly
#   `prune_count(size, sparsity)` entries: those already pruned (`self.masks[name] ==
#   0`, when a mask exists) first, then the lowest scores, ties to the lower flat index
#   (a stable sort of the scores with the pruned entries set to $-\infty$).

# %% nbgrader={"grade": false, "grade_id": "movement", "locked": false, "schema_version": 3, "solution": true}
#| export
class MovementPruner:
    """Movement pruning (Sanh et al. 2020) on the Zhu & Gupta schedule, per layer, with masks
    that only lose ones. Pass `pruner.after_step` as `after_step` to `tinytorch.nn.train`."""

    def __init__(self, final_sparsity=0.9, begin_step=0, end_step=1000, frequency=100, power=3, names=None):
        polynomial_sparsity(begin_step, 0.0, final_sparsity, begin_step, end_step, power)  # validates them
        self.final_sparsity, self.power = float(final_sparsity), power
        self.begin_step, self.end_step = int(begin_step), int(end_step)
        self.frequency = validate_int(frequency, "frequency", minimum=1)
        if names is not None and (isinstance(names, str) or not all(isinstance(n, str) for n in names)):
            raise TypeError(f"names must be a list of parameter names, got {names!r}")
        self.names = None if names is None else list(names)
        self.scores = {}    # name -> float64 accumulated -w * grad
        self.masks = {}     # name -> float32 mask (absent: nothing pruned yet)
        self.history = []   # (step, sparsity) of each pruning event
        self.step = 0       # the step number the next after_step call uses

    def layer_names(self, model):
        """The parameters this pruner scores and prunes."""
        return _sparse_names(model.parameters(), self.names)

    def accumulate(self, model):
        """scores[name] += -weight * gradient for every layer (zeros before the first call)."""
        ### BEGIN SOLUTION
        params, grads = model.parameters(), model.gradients()
        for name in self.layer_names(model):
            if name not in self.scores:
                self.scores[name] = np.zeros(params[name].shape, dtype=np.float64)
            self.scores[name] -= params[name].astype(np.float64) * grads[name]
        ### END SOLUTION

    def compute_masks(self, sparsity):
        """{name: float32 mask} pruning exactly prune_count(size, sparsity) entries per layer: the
        already pruned first, then the lowest scores (ties: lower flat index first)."""
        ### BEGIN SOLUTION
        sparsity = validate_sparsity(sparsity)
        if not self.scores:
            raise ValueError("no movement scores yet: call accumulate(model) before compute_masks")
        masks = {}
        for name, score in self.scores.items():
            key = score.ravel().copy()
            if name in self.masks:
                key[self.masks[name].ravel() == 0] = -np.inf
            order = np.argsort(key, kind="stable")
            mask = np.ones(key.size, dtype=np.float32)
            mask[order[:prune_count(key.size, sparsity)]] = 0.0
            masks[name] = mask.reshape(score.shape)
        return masks
        ### END SOLUTION

    def after_step(self, model):
        """Hook for `train(after_step=...)`: keep the masks, score, prune on schedule, count."""
        params = model.parameters()
        for name, mask in self.masks.items():
            params[name] *= mask
        self.accumulate(model)
        step = self.step
        if self.begin_step <= step <= self.end_step and (
                (step - self.begin_step) % self.frequency == 0 or step == self.end_step):
            sparsity = polynomial_sparsity(step, 0.0, self.final_sparsity, self.begin_step, self.end_step, self.power)
            self.masks = self.compute_masks(sparsity)
            for name, mask in self.masks.items():
                params[name] *= mask
            self.history.append((step, sparsity))
        self.step += 1

# %% nbgrader={"grade": true, "grade_id": "test-movement", "locked": true, "points": 6, "schema_version": 3, "solution": false}
_net = Sequential(Linear(6, 5, seed=0), ReLU(), Linear(5, 3, seed=1))
_rng = np.random.default_rng(5)
for _g in _net.gradients().values():
    _g[...] = _rng.normal(size=_g.shape)
_mp = MovementPruner(final_sparsity=0.6, begin_step=0, end_step=0)
_mp.accumulate(_net)
_mp.accumulate(_net)
assert sorted(_mp.scores) == ["0.weight", "2.weight"], f"scores for the two weight matrices, got {sorted(_mp.scores)}"
for _n in ["0.weight", "2.weight"]:
    _want = -2.0 * _net.parameters()[_n].astype(np.float64) * _net.gradients()[_n]
    assert _mp.scores[_n].dtype == np.float64, f"scores must be float64, got {_mp.scores[_n].dtype}"
    assert np.allclose(_mp.scores[_n], _want), f"{_n}: two calls with the same w and g should give -2 w g"
_masks = _mp.compute_masks(0.6)
for _n, _size in [("0.weight", 30), ("2.weight", 15)]:
    _m = _masks[_n]
    assert _m.dtype == np.float32 and _m.shape == _mp.scores[_n].shape, f"{_n}: a float32 mask of the layer's shape"
    assert int((_m == 0).sum()) == round(0.6 * _size), f"{_n}: expected {round(0.6 * _size)} pruned, got {int((_m == 0).sum())}"
    assert _mp.scores[_n][_m == 1].min() >= _mp.scores[_n][_m == 0].max(), f"{_n}: the lowest scores must go"
# already-pruned entries go first, whatever their score
_mp2 = MovementPruner(final_sparsity=0.5, begin_step=0, end_step=0, names=["2.weight"])
_mp2.scores = {"2.weight": np.array([[5.0, 1.0, 2.0], [3.0, 4.0, 0.5]])}
_mp2.masks = {"2.weight": np.array([[0, 1, 1], [1, 1, 1]], dtype=np.float32)}
_m = _mp2.compute_masks(0.5)["2.weight"]
assert _m.tolist() == [[0, 0, 1], [1, 1, 0]], f"prune the pruned 5.0 first, then 0.5 and 1.0; got {_m.tolist()}"
# the hook: prunes on schedule and keeps the pruned weights at zero
_net = Sequential(Linear(6, 8, seed=2), ReLU(), Linear(8, 3, seed=3))
_mp3 = MovementPruner(final_sparsity=0.5, begin_step=1, end_step=5, frequency=2)
for _step in range(7):
    for _n, _p in _net.parameters().items():
        _net.gradients()[_n][...] = _rng.normal(size=_p.shape)
        _p += 0.01 * _rng.normal(size=_p.shape).astype(np.float32)
    _mp3.after_step(_net)
assert [_t for _t, _ in _mp3.history] == [1, 3, 5], f"pruning at steps [1, 3, 5], got {_mp3.history}"
assert int((_net.parameters()["0.weight"] == 0).sum()) == 24, "half of the 48 weights of 0.weight are zero at the end"

# %% nbgrader={"grade": true, "grade_id": "test-movement-errors", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# bad input gets a clear error (more cases are checked when grading)
expect_error(ValueError, MovementPruner().compute_masks, 0.5, match="accumulate")
### BEGIN HIDDEN TESTS
_mp = MovementPruner(final_sparsity=0.5, begin_step=0, end_step=0)
expect_error(ValueError, _mp.compute_masks, 0.5, match="accumulate")
_mp.scores = {"w": np.zeros((2, 2))}
assert _mp.compute_masks(0.5)["w"].tolist() == [[0, 0], [1, 1]], "ties: lower flat index goes first"
for _bad, _exc in [(1.5, ValueError), ("0.5", TypeError), (float("nan"), ValueError)]:
    expect_error(_exc, _mp.compute_masks, _bad, match="sparsity")
_net = Sequential(Linear(3, 2, seed=0))
_mp = MovementPruner(names=["0.bias"])
_net.gradients()["0.bias"][...] = 1.0
_net.parameters()["0.bias"][...] = 2.0
_mp.accumulate(_net)
assert list(_mp.scores) == ["0.bias"] and np.allclose(_mp.scores["0.bias"], -2.0), "names chooses what is scored"
expect_error(ValueError, MovementPruner(names=["nope"]).accumulate, _net)
for _kw, _exc in [({"final_sparsity": 1.5}, ValueError), ({"frequency": 0}, ValueError),
                  ({"begin_step": 5, "end_step": 2}, ValueError), ({"names": "0.weight"}, TypeError)]:
    expect_error(_exc, MovementPruner, **_kw)
### END HIDDEN TESTS

# %% [markdown]
# ### Movement against magnitude, on a transfer task
#
# The pretrained model: the MLP trained on the examples of classes 0-4 only. The new
# task: classes 5-9 (relabelled 0-4), with a fresh output layer. Fine-tuning trains all
# layers and prunes the two hidden weight matrices (the fresh output layer stays
# dense) on the cubic schedule from the first step to two thirds of the run, either by
# magnitude (module 04's `GradualPruner`, per layer) or by movement (`MovementPruner`):
# the same schedule, the same steps, the same data order, so the same training FLOPs.
# We run two fine-tuning lengths, because how long the weights have to move is exactly
# what movement pruning depends on. A dense fine-tuning run is the reference.

# %%
movement_start = time.perf_counter()
PRE_EPOCHS, FT_LENGTHS = 6, (6, 12)
MP_SPARSITIES = (0.9, 0.97)
BODY = ["0.weight", "2.weight"]
is_a_train, is_a_test = y_train < 5, y_test < 5
Xa, ya = X_train[is_a_train], y_train[is_a_train]
Xb, yb, Xb_test, yb_test = X_train[~is_a_train], y_train[~is_a_train] - 5, X_test[~is_a_test], y_test[~is_a_test] - 5
print(f"pretraining on {len(Xa)} examples of classes 0-4 for {PRE_EPOCHS} epochs; fine-tuning on {len(Xb)} examples "
      f"of classes 5-9 for {' or '.join(map(str, FT_LENGTHS))} epochs, pruning {BODY}")

pretrained = {}
for seed in SEEDS:
    net = make_net(seed, n_out=5)
    train(net, Xa, ya, epochs=PRE_EPOCHS, lr=LR, batch_size=BATCH, seed=seed)
    pretrained[seed] = net.state_dict()


def fine_tune(seed, epochs, pruner=None):
    net = make_net(seed, n_out=5)
    state = pretrained[seed]
    net.load_state_dict({**net.state_dict(), **{k: v for k, v in state.items() if not k.startswith("4.")}})
    train(net, Xb, yb, epochs=epochs, lr=LR / 2, batch_size=BATCH, seed=seed + 500,
          after_step=None if pruner is None else pruner.after_step)
    zeros = sum(int((net.parameters()[n] == 0).sum()) for n in BODY) / sum(net.parameters()[n].size for n in BODY)
    return evaluate(net, Xb_test, yb_test), zeros


ft_runs = []
for epochs in FT_LENGTHS:
    ft_steps = epochs * math.ceil(len(Xb) / BATCH)
    schedule = dict(begin_step=0, end_step=(2 * ft_steps) // 3, frequency=max(1, ft_steps // 30))
    print(f"{epochs} epochs = {ft_steps} steps, schedule {schedule}")
    for seed in SEEDS:
        acc, reached = fine_tune(seed, epochs)
        ft_runs.append({"method": "dense fine-tuning", "epochs": epochs, "sparsity": 0.0, "seed": seed,
                        "accuracy": acc, "reached": reached})
    for target in MP_SPARSITIES:
        for seed in SEEDS:
            for method, pruner in [
                    ("magnitude", GradualPruner(final_sparsity=target, scope="local", names=BODY, **schedule)),
                    ("movement", MovementPruner(final_sparsity=target, names=BODY, **schedule))]:
                acc, reached = fine_tune(seed, epochs, pruner)
                ft_runs.append({"method": method, "epochs": epochs, "sparsity": target, "seed": seed,
                                "accuracy": acc, "reached": reached})
print(f"{len(ft_runs)} fine-tuning runs in {time.perf_counter() - movement_start:.1f} s")

# %%
n_b = len(Xb_test)


def ft_select(method, epochs, sparsity):
    return [r for r in ft_runs if r["method"] == method and r["epochs"] == epochs and r["sparsity"] == sparsity]


print(f"fine-tuned on classes 5-9, {n_b} test examples, seeds {SEEDS}")
print(f"{'method':<18} {'epochs':>6} {'target':>6} {'reached':>8} {'mean acc':>9} {'correct':>8} {'spread (min-max)':>22}")
for epochs in FT_LENGTHS:
    for method, sparsity in [("dense fine-tuning", 0.0)] + [(m, s) for s in MP_SPARSITIES
                                                           for m in ("magnitude", "movement")]:
        chosen = ft_select(method, epochs, sparsity)
        accs = np.array([r["accuracy"] for r in chosen])
        print(f"{method:<18} {epochs:>6} {sparsity:>6.0%} {np.mean([r['reached'] for r in chosen]):>8.2%} "
              f"{accs.mean():>9.2%} {accs.mean() * n_b:>8.1f} "
              f"{f'{accs.min():.2%}-{accs.max():.2%} ({(accs.max() - accs.min()) * n_b:.0f} ex)':>22}")
for epochs in FT_LENGTHS:
    for sparsity in MP_SPARSITIES:
        mov = {r["seed"]: r["accuracy"] for r in ft_select("movement", epochs, sparsity)}
        mag = {r["seed"]: r["accuracy"] for r in ft_select("magnitude", epochs, sparsity)}
        gap = np.mean(list(mov.values())) - np.mean(list(mag.values()))
        wins = sum(mov[s] > mag[s] for s in SEEDS)
        print(f"{epochs:>2} epochs, {sparsity:.0%}: movement - magnitude = {100 * gap:+.2f} pt ({gap * n_b:+.1f} ex); "
              f"movement ahead on {wins} of {len(SEEDS)} seeds")
print(f"whole notebook: {time.perf_counter() - notebook_start:.1f} s")

# %% [markdown]
# Sanh et al. report that magnitude pruning is the better choice at low sparsity and
# movement pruning at high sparsity, where most of the pretrained weights must go and
# keeping the ones the new task needs matters most. The lines above say, for this
# small network and these seeds, at which sparsity and fine-tuning length movement is
# ahead and on how many seeds; compare the two lengths: the longer the fine-tuning,
# the more the surviving weights can adapt whichever rule chose them.

# %% [markdown]
# ## 8. Questions on your results
#
# Answer from what **your** notebook printed; the tests compare with your own run.
# Questions 1 to 3 are checked automatically, 4 and 5 by your instructor.
#
# **Q1 (number).** At the same training FLOPs, by how many **percentage points** does RigL
# (Erdős–Rényi) beat the better prune-after-training split on mean accuracy (the
# `vs prune-after-training` figure printed under the table of section 6)? Store it in
# `q1_rigl_vs_prune_after` (tolerance ±0.3).
#
# **Q2 (choice).** Compare RigL (Erdős–Rényi) with SET (Erdős–Rényi) in the table of
# section 6, in test examples (the `correct` column), against the larger of their two
# min–max spreads. Store the letter in `q2_choice`: `"A"` RigL's mean is ahead by more than
# that spread; `"B"` the two means differ by less than that spread; `"C"` SET's mean is
# ahead by more than that spread.
#
# **Q3 (choice).** In the movement table of section 7, where is movement pruning's lead over
# magnitude pruning largest (in test examples)? Store the letter in `q3_choice`: `"A"` 6
# epochs at 90%; `"B"` 6 epochs at 97%; `"C"` 12 epochs at 90%; `"D"` 12 epochs at 97%.

# %% nbgrader={"grade": false, "grade_id": "answers-results", "locked": false, "schema_version": 3, "solution": true}
q1_rigl_vs_prune_after = None  # a number, in percentage points
q2_choice = None               # "A", "B" or "C"
q3_choice = None               # "A", "B", "C" or "D"
### BEGIN SOLUTION
q1_rigl_vs_prune_after = 100 * (summary_of("RigL (Erdos-Renyi)")[0] - summary_of(pat_best)[0])
_rigl, _set = summary_of("RigL (Erdos-Renyi)"), summary_of("SET (Erdos-Renyi)")
_gap = (_rigl[0] - _set[0]) * n_test
_spread = max(_rigl[2] - _rigl[1], _set[2] - _set[1]) * n_test
q2_choice = "A" if _gap > _spread else ("C" if _gap < -_spread else "B")
_leads = {}
for _letter, (_epochs, _sparsity) in zip("ABCD", [(6, 0.9), (6, 0.97), (12, 0.9), (12, 0.97)]):
    _mov = np.mean([r["accuracy"] for r in ft_select("movement", _epochs, _sparsity)])
    _mag = np.mean([r["accuracy"] for r in ft_select("magnitude", _epochs, _sparsity)])
    _leads[_letter] = (_mov - _mag) * n_b
q3_choice = max(_leads, key=_leads.get)
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-q1-results", "locked": true, "points": 2, "schema_version": 3, "solution": false}
_pat = max([_m for _m in METHODS if _m.startswith("prune after")], key=lambda _m: summary_of(_m)[0])
_want = 100 * (summary_of("RigL (Erdos-Renyi)")[0] - summary_of(_pat)[0])
assert isinstance(q1_rigl_vs_prune_after, (int, float, np.number)) and not isinstance(q1_rigl_vs_prune_after, bool), \
    f"q1_rigl_vs_prune_after must be a number, got {q1_rigl_vs_prune_after!r}"
assert abs(float(q1_rigl_vs_prune_after) - _want) <= 0.3, \
    f"q1: {q1_rigl_vs_prune_after} does not match the 'vs prune-after-training' line of RigL (Erdos-Renyi) (±0.3 points)"
print("Q1 matches your run")

# %% nbgrader={"grade": true, "grade_id": "test-q2-results", "locked": true, "points": 2, "schema_version": 3, "solution": false}
_rigl, _set = summary_of("RigL (Erdos-Renyi)"), summary_of("SET (Erdos-Renyi)")
_gap = (_rigl[0] - _set[0]) * n_test
_spread = max(_rigl[2] - _rigl[1], _set[2] - _set[1]) * n_test
_ok = {"A"} if _gap > _spread + 2 else {"C"} if _gap < -_spread - 2 else {"B"} if abs(_gap) < _spread - 2 else {"A", "B", "C"}
assert q2_choice in ("A", "B", "C"), f"q2_choice must be 'A', 'B' or 'C', got {q2_choice!r}"
assert q2_choice in _ok, f"q2: {q2_choice!r} does not fit your table (difference of the 'correct' column against the spreads)"
print("Q2 fits your run")

# %% nbgrader={"grade": true, "grade_id": "test-q3-results", "locked": true, "points": 2, "schema_version": 3, "solution": false}
_leads = {}
for _letter, (_epochs, _sparsity) in zip("ABCD", [(6, 0.9), (6, 0.97), (12, 0.9), (12, 0.97)]):
    _mov = np.mean([_r["accuracy"] for _r in ft_runs if (_r["method"], _r["epochs"], _r["sparsity"]) == ("movement", _epochs, _sparsity)])
    _mag = np.mean([_r["accuracy"] for _r in ft_runs if (_r["method"], _r["epochs"], _r["sparsity"]) == ("magnitude", _epochs, _sparsity)])
    _leads[_letter] = (_mov - _mag) * n_b
_best = max(_leads.values())
_ok = {_l for _l, _v in _leads.items() if _v >= _best - 1}  # leads within one example of the largest count as a tie
assert q3_choice in ("A", "B", "C", "D"), f"q3_choice must be 'A', 'B', 'C' or 'D', got {q3_choice!r}"
assert q3_choice in _ok, f"q3: {q3_choice!r} does not fit your 'movement - magnitude' lines (in examples)"
print("Q3 fits your run")

# %% [markdown] nbgrader={"grade": true, "grade_id": "q4-rigl-vs-set", "locked": false, "points": 4, "schema_version": 3, "solution": true}
# **Q4 (written, 4 points).** RigL grows connections where the dense gradient is largest, SET
# grows them at random. Does the gradient-based regrowth buy anything in your table of
# section 6? Compare RigL with SET for each distribution against the seed spreads, and use
# the `FLOPs / B` and `epochs` columns to say what RigL pays for its choice. Then say which
# decision mattered more here, the regrowth rule or how the density is split over the
# layers, and why.
#
# ### BEGIN SOLUTION
# *Reference answer (instructor only; numbers of the reference run).* RigL is ahead of SET
# by about 0.3 points with Erdős–Rényi (about 6 test examples) and 0.7 points with uniform
# densities (about 15 examples), while the min–max spreads over seeds are 22 to 53
# examples: the seeds overlap, and three seeds show no advantage of the gradient. The
# `FLOPs / B` column shows why it does not pay here: every method stays within the budget,
# but RigL's update steps need the dense weight gradient, $(1-d)F$ extra per sample, so at
# the same budget it trains 34 sparse epochs where SET trains 40 (about 15% fewer); its
# better-placed connections are bought with less training, and with small layers and an
# update every 12 steps random growth explores enough. The split of the density matters
# more: Erdős–Rényi beats uniform by about 1.5 to 2 points for both rules, because uniform
# leaves the small output layer (10 x 64) with 64 weights while Erdős–Rényi keeps 37% of it
# and takes the density from the large 64 x 128 layer. (Both beat prune-after-training by
# 6 to 8 points: at density 0.1 the budget pays for ten times as many epochs.)
#
# *Rubric (4 points):* 1 point for the RigL − SET differences read against the spreads
# (not a result with three seeds, or whatever their run shows, with numbers); 1 point for
# the cost of the dense gradients in the FLOPs / epochs columns (fewer epochs at equal
# budget); 1 point for a sound reason why the gradient does not (or does) pay at this
# scale; 1 point for naming the distribution as the larger effect, with the output layer's
# density as the reason.
# ### END SOLUTION

# %% [markdown] nbgrader={"grade": true, "grade_id": "q5-movement", "locked": false, "points": 4, "schema_version": 3, "solution": true}
# **Q5 (written, 4 points).** In the movement table of section 7, movement pruning beats
# magnitude pruning clearly at 97% after 6 epochs of fine-tuning, but the two tie at 90%
# after 12 epochs. Explain both from how the two rules rank the weights and from the
# schedule (how many steps the weights have to move before and after they are judged, and
# how many survive), quoting your numbers with their seeds.
#
# ### BEGIN SOLUTION
# *Reference answer (numbers of the reference run).* Magnitude ranks by $|w|$ at the moment
# of pruning; right after pretraining that is mostly how much a weight mattered for the old
# task (classes 0-4). Movement ranks by $-\sum_t w\,g$, i.e. by whether the new task's
# gradient pushes the weight away from zero. At 97% only 3% of the hidden weights survive,
# so which ones survive decides the accuracy; with 6 epochs the schedule prunes at every
# step up to step 32 of 48, while the weights are still close to their pretrained values,
# so magnitude keeps the old task's weights. Movement wins by about 11.5 points (115 test
# examples) on all three seeds, far outside the spreads of 12-21 examples. With 12 epochs
# the ramp lasts 64 steps (pruning every 3 steps) and 32 steps follow it: the weights have
# moved, so $|w|$ itself reflects the new task (weights pushed outward have grown), and the
# survivors have time to adapt whichever rule chose them; at 90% enough weights survive for
# the choice to matter little: -0.5 points (-5 examples), movement ahead on 1 of 3 seeds,
# within the spreads of 14-15 examples, a tie. At 97% after 12 epochs movement is still
# ahead (about 2.7 points, 3 of 3 seeds), as Sanh et al. find: movement wins at high
# sparsity, magnitude catches up when few weights go or fine-tuning is long.
#
# *Rubric (4 points):* 1 point for what each rule ranks by (old task's magnitudes against
# the new task's movement); 1 point for high sparsity making the ranking matter more; 1
# point for the longer schedule letting magnitude reflect the new task and the survivors
# recover; 1 point for their own numbers with seed counts or spreads (the 12-epoch, 90% gap
# within the spread).
# ### END SOLUTION

# %% [markdown]
# ## Summary
#
# - Dynamic sparse training keeps the number of connections fixed from the first step:
#   `cosine_drop_fraction` and `is_update_step` say when and how much to change,
#   `drop_by_magnitude` removes the weakest active connections, `grow_random` (SET) and
#   `grow_by_gradient` (RigL) add the same number back, at zero, and
#   `DynamicSparsity.update` does it for every layer.
# - `erdos_renyi_densities` spends a global budget unevenly: small layers get more
#   density, capped at dense, with the overflow spread over the others.
# - `training_flops` counts what a sparse-aware trainer would pay. At the same FLOPs,
#   the sparse-from-scratch methods train many more epochs than dense training or
#   prune-after-training can afford; the table in section 6 shows, for this network,
#   data set and seeds, what that buys and how large the seed-to-seed spread is.
# - `MovementPruner` ranks weights by how fine-tuning moves them rather than by their
#   size; the last table compares it with magnitude pruning at the same schedule and
#   budget on a transfer task.
#
# What we left out: the speed. Our layers multiply masked dense matrices, so none of
# the FLOP savings shows in wall-clock time; module 03's CSR layers and module 06's
# kernels are where sparse storage pays, at high enough sparsity.
