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
# # Module 08: The structure of real networks: slimming, residual groups, low rank, deployment
#
# Module 02 removed neurons and filters from plain chains of layers. Real networks have two
# more pieces of structure that decide what can be removed and how: **batch normalisation**
# after almost every convolution, and **residual connections** that add the outputs of two
# paths. This module uses both, then compresses a layer a second way (low rank), transfers
# knowledge from a big network to a small one (distillation), and finally runs a pruned
# network in a real inference runtime, `onnxruntime`, to see what the removed channels buy.
#
# **Learning goals.** After this module you can
# 1. train with an L1 penalty on the BatchNorm scales and choose channels by $|\gamma|$ with one
#    global threshold (Network Slimming, Liu et al. 2017), then remove them physically;
# 2. fold a BatchNorm into the layer before it and permute channels without changing the
#    function the network computes;
# 3. build a small dependency graph of a residual network (in the spirit of Torch-Pruning's
#    DepGraph, Fang et al. 2023) and shrink whole channel groups across an addition;
# 4. factorise a `Linear` layer with a truncated SVD, choosing the rank by an energy threshold,
#    and count what it saves;
# 5. write a distillation loss with temperature-softened targets and its gradient;
# 6. export a network to ONNX, run it in onnxruntime, and compare the measured speedup of the
#    shrunk network with its FLOP reduction.
#
# Everything builds on `tinytorch.nn` (module 00: `BatchNorm1d`, `BatchNorm2d`, `Residual`).

# %% nbgrader={"grade": false, "grade_id": "imports", "locked": true, "schema_version": 3, "solution": false}
#| default_exp structure
#| export
import copy
import math
import numbers
import time
from dataclasses import dataclass, field

import numpy as np

from tinytorch.nn import (Adam, BatchNorm1d, BatchNorm2d, Conv2d, CrossEntropyLoss, Flatten, Linear, MaxPool2d,
                          Module, ReLU, Residual, Sequential, iter_modules, set_train_mode, softmax, train)
from tinytorch.prune import validate_int, validate_sparsity, validate_weights

# %% nbgrader={"grade": false, "grade_id": "notebook-imports", "locked": true, "schema_version": 3, "solution": false}
# Used by this notebook only (not exported).
import matplotlib.pyplot as plt
from threadpoolctl import threadpool_limits

from tinytorch.data import as_images, load_digits_split, load_mnist1d
from tinytorch.nn import evaluate, numerical_gradient
from tinytorch.support import mean_and_spread
from tinytorch.testing import expect_error

threadpool_limits(1)  # one BLAS thread: tiny matrices, a shared CPU, steadier timings

# %% [markdown]
# ## Given: models, layer surgery and counting
#
# * `make_bn_cnn(seed, widths=(16, 32))`: two blocks of Conv 3×3 → BatchNorm2d → ReLU → MaxPool 2
#   on the 1×8×8 digits, then Flatten → Linear(4·widths[1], 10).
# * `make_bn_mlp(seed, hidden=(128, 64), in_features=64)`: Linear → BatchNorm1d → ReLU per hidden
#   layer, then Linear(·, 10).
# * `make_residual_cnn(seed, width=16)`: a stem Conv → BN → ReLU, a residual block whose branch
#   is Conv → BN → ReLU → Conv → BN, a ReLU after the addition, pooling and a classifier.
# * `named_batchnorms(model)` lists `(name, layer)` of every BatchNorm; `get_module(model, name)`
#   finds a layer by the names of `iter_modules` (`"2.branch.3"`).
# * `slice_outputs(layer, idx)` keeps only output channels `idx` (in that order) of a
#   `Linear`, `Conv2d` or BatchNorm **in place** (weights, bias, running statistics and
#   gradient buffers); `slice_inputs(layer, idx, hw=1)` keeps input channels `idx` of a
#   `Linear` or `Conv2d`. A `Linear` after a `Flatten` sees each channel as `hw` consecutive
#   features (NCHW order), so channel $c$ is columns $c\,hw, \dots, c\,hw + hw - 1$.
#   An index array that is a permutation reorders channels instead of removing them.
# * `count_model_flops(model, input_shape)`: 2 × multiply-adds of every `Linear` and `Conv2d`,
#   inside residual blocks too, for one sample.
# * `train_bn(model, X, y, epochs, lr, l1=0.0, seed=0)` trains with BatchNorms in training mode
#   (and an L1 penalty on their scales when `l1 > 0`, exercise 1), then switches them to
#   evaluation mode.

# %% nbgrader={"grade": false, "grade_id": "given-structure", "locked": true, "schema_version": 3, "solution": false}
#| export
BN_TYPES = (BatchNorm1d, BatchNorm2d)
WEIGHTED = (Linear, Conv2d)


def _check_model(model, name="model"):
    if not isinstance(model, Module):
        raise TypeError(f"{name} must be a tinytorch Module, got {type(model).__name__}")
    return model


def _check_float(value, name, low=None, high=None, low_open=False):
    """A finite real number in [low, high] ((low, high] with low_open), or raise naming `name`."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not math.isfinite(value) or (low is not None and (value <= low if low_open else value < low)) \
            or (high is not None and value > high):
        span = f"{'(' if low_open else '['}{low}, {high}]"
        raise ValueError(f"{name} must be a finite number in {span}, got {value!r}")
    return value


def _check_index(idx, n, name, sort=True):
    """Unique int64 indices in [0, n), at least one (sorted unless sort=False), or raise naming `name`."""
    arr = np.asarray(idx)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of channel indices, got shape {arr.shape}")
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integers, got dtype {arr.dtype}")
    if arr.min() < 0 or arr.max() >= n:
        raise ValueError(f"{name} indices must lie in [0, {n}), got min {arr.min()} and max {arr.max()}")
    if len(np.unique(arr)) != arr.size:
        raise ValueError(f"{name} has duplicate indices")
    return (np.sort(arr) if sort else arr).astype(np.int64)


def make_bn_cnn(seed=0, widths=(16, 32)):
    """[Conv 3x3 -> BatchNorm2d -> ReLU -> MaxPool 2] x 2 -> Flatten -> Linear for (N, 1, 8, 8) digits."""
    if not (isinstance(widths, (tuple, list)) and len(widths) == 2):
        raise ValueError(f"widths must be a pair of channel counts, got {widths!r}")
    w1, w2 = (validate_int(w, "widths", minimum=1) for w in widths)
    s = np.random.SeedSequence(validate_int(seed, "seed", minimum=0)).generate_state(3)
    return Sequential(Conv2d(1, w1, 3, padding=1, seed=int(s[0])), BatchNorm2d(w1), ReLU(), MaxPool2d(2),
                      Conv2d(w1, w2, 3, padding=1, seed=int(s[1])), BatchNorm2d(w2), ReLU(), MaxPool2d(2),
                      Flatten(), Linear(4 * w2, 10, seed=int(s[2])))


def make_bn_mlp(seed=0, hidden=(128, 64), in_features=64):
    """[Linear -> BatchNorm1d -> ReLU] per hidden width -> Linear(., 10) (64 inputs: flattened digits)."""
    if not (isinstance(hidden, (tuple, list)) and len(hidden) > 0):
        raise ValueError(f"hidden must be a non-empty tuple of widths, got {hidden!r}")
    widths = [validate_int(in_features, "in_features", minimum=1)] + [validate_int(h, "hidden", minimum=1) for h in hidden]
    s = np.random.SeedSequence(validate_int(seed, "seed", minimum=0)).generate_state(len(widths))
    layers = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers += [Linear(a, b, seed=int(s[i])), BatchNorm1d(b), ReLU()]
    return Sequential(*layers, Linear(widths[-1], 10, seed=int(s[-1])))


def make_residual_cnn(seed=0, width=16):
    """Stem Conv-BN-ReLU, Residual(Conv-BN-ReLU-Conv-BN), ReLU, MaxPool 2, Conv-BN-ReLU, MaxPool 2, Flatten, Linear."""
    w = validate_int(width, "width", minimum=1)
    s = [int(v) for v in np.random.SeedSequence(validate_int(seed, "seed", minimum=0)).generate_state(5)]
    branch = Sequential(Conv2d(w, w, 3, padding=1, seed=s[1]), BatchNorm2d(w), ReLU(),
                        Conv2d(w, w, 3, padding=1, seed=s[2]), BatchNorm2d(w))
    return Sequential(Conv2d(1, w, 3, padding=1, seed=s[0]), BatchNorm2d(w), ReLU(),
                      Residual(branch), ReLU(), MaxPool2d(2),
                      Conv2d(w, 2 * w, 3, padding=1, seed=s[3]), BatchNorm2d(2 * w), ReLU(), MaxPool2d(2),
                      Flatten(), Linear(8 * w, 10, seed=s[4]))


def named_batchnorms(model):
    """[(name, layer)] of every BatchNorm1d/2d in model, in forward order."""
    _check_model(model)
    return [(name, m) for name, m in iter_modules(model) if isinstance(m, BN_TYPES)]


def get_module(model, name):
    """The module called `name` in iter_modules(model) (e.g. '3.branch.0')."""
    _check_model(model)
    for candidate, module in iter_modules(model):
        if candidate == name:
            return module
    raise ValueError(f"name {name!r} is not a module of the model")


def slice_outputs(layer, idx):
    """Keep output channels `idx` (in that order) of a Linear, Conv2d or BatchNorm, in place."""
    if isinstance(layer, BN_TYPES):
        idx = _check_index(idx, layer.num_features, "idx", sort=False)
        for attr in ("weight", "bias", "grad_weight", "grad_bias", "running_mean", "running_var"):
            setattr(layer, attr, np.ascontiguousarray(getattr(layer, attr)[idx]))
        layer.num_features = len(idx)
    elif isinstance(layer, WEIGHTED):
        idx = _check_index(idx, layer.weight.shape[0], "idx", sort=False)
        for attr in ("weight", "bias", "grad_weight", "grad_bias"):
            setattr(layer, attr, np.ascontiguousarray(getattr(layer, attr)[idx]))
        setattr(layer, "out_features" if isinstance(layer, Linear) else "out_channels", len(idx))
    else:
        raise TypeError(f"layer must be a Linear, Conv2d or BatchNorm, got {type(layer).__name__}")
    layer._cache = layer._x = None
    return layer


def slice_inputs(layer, idx, hw=1):
    """Keep input channels `idx` of a Linear or Conv2d in place; a Linear after a Flatten reads
    each channel as `hw` consecutive features."""
    hw = validate_int(hw, "hw", minimum=1)
    if isinstance(layer, Linear):
        if layer.in_features % hw:
            raise ValueError(f"hw={hw} does not divide in_features={layer.in_features}")
        idx = _check_index(idx, layer.in_features // hw, "idx", sort=False)
        cols = (idx[:, None] * hw + np.arange(hw)).ravel()
        layer.in_features = len(cols)
    elif isinstance(layer, Conv2d):
        idx = _check_index(idx, layer.in_channels, "idx", sort=False)
        cols = idx
        layer.in_channels = len(idx)
    else:
        raise TypeError(f"layer must be a Linear or Conv2d, got {type(layer).__name__}")
    layer.weight = np.ascontiguousarray(layer.weight[:, cols])
    layer.grad_weight = np.zeros_like(layer.weight)
    layer._cache = layer._x = None
    return layer


def count_model_flops(model, input_shape):
    """FLOPs (2 x multiply-adds) of every Linear and Conv2d for one sample of input_shape."""
    _check_model(model)
    if not (isinstance(input_shape, tuple) and input_shape and all(isinstance(d, int) and d > 0 for d in input_shape)):
        raise ValueError(f"input_shape must be a tuple of positive ints (no batch dimension), got {input_shape!r}")
    probe = set_train_mode(copy.deepcopy(model), False)

    def walk(module, x):
        if isinstance(module, Sequential):
            total = 0
            for layer in module.layers:
                x, f = walk(layer, x)
                total += f
            return x, total
        if isinstance(module, Residual):
            out, f = walk(module.branch, x)
            if module.shortcut is not None:
                skip, g = walk(module.shortcut, x)
                f += g
            return module.forward(x), f
        out = module.forward(x)
        if isinstance(module, Linear):
            return out, 2 * module.in_features * module.out_features
        if isinstance(module, Conv2d):
            return out, 2 * module.weight[0].size * out[0].size
        return out, 0

    return int(walk(probe, np.zeros((2,) + input_shape, dtype=np.float32))[1])


class _PenalisedModel(Module):
    """Wraps a model so that backward() also adds the L1 subgradient of the BN scales."""

    def __init__(self, model, l1):
        self.model, self.l1 = model, l1

    def forward(self, x):
        return self.model.forward(x)

    def backward(self, grad_out):
        grad_in = self.model.backward(grad_out)
        add_l1_subgradient(self.model, self.l1)
        return grad_in

    def parameters(self):
        return self.model.parameters()

    def gradients(self):
        return self.model.gradients()


def train_bn(model, X, y, epochs, lr, l1=0.0, seed=0, batch_size=64):
    """Train (Adam, softmax cross-entropy) with BatchNorms in training mode and an L1 penalty
    l1 * sum |gamma| when l1 > 0; leaves the model in evaluation mode. Returns the history."""
    _check_model(model)
    l1 = _check_float(l1, "l1", low=0.0)
    set_train_mode(model, True)
    try:
        return train(_PenalisedModel(model, l1) if l1 > 0 else model, X, y, epochs=epochs, lr=lr,
                     batch_size=batch_size, seed=seed)
    finally:
        set_train_mode(model, False)


# %% [markdown]
# The data: module 00's 8×8 digits (the same stratified split) for the CNNs, and module 00's
# harder MNIST-1D data set (1-D signals of 40 points, generated offline; 2000 training examples
# here to keep the notebook fast) for the comparisons over seeds, where the methods separate.

# %%
digits = load_digits_split(test_fraction=0.25, seed=0)
X_train, X_test = as_images(digits.X_train), as_images(digits.X_test)
y_train, y_test = digits.y_train, digits.y_test
mnist = load_mnist1d(seed=0, n_train=2000)
print(digits)
print("MNIST-1D:", mnist)
print(make_bn_cnn(seed=0))

# %% [markdown]
# ## 1. Network Slimming: an L1 penalty on the BatchNorm scales
#
# After a convolution, a BatchNorm multiplies every channel by its own scale $\gamma_c$. A
# channel whose $\gamma_c$ is (nearly) zero contributes (nearly) nothing but its constant
# $\beta_c$. Liu et al. (2017) turn this into a pruning criterion and make it sharper by
# training with a sparsity penalty on the scales:
# $$L = \sum_{(x, y)} \ell\big(f(x; W), y\big) + \lambda \sum_{\gamma \in \Gamma} |\gamma| .$$
# $|\gamma|$ is not differentiable at 0; the **subgradient** $\lambda\,\mathrm{sign}(\gamma)$ (with
# $\mathrm{sign}(0) = 0$) is added to each scale's gradient after the backward pass, and the
# optimiser does the rest.
#
# **Exercise 1.** Write `add_l1_subgradient(model, l1)`: for every BatchNorm in `model`
# (`named_batchnorms`), add `l1 * sign(gamma)` to its `grad_weight` **in place**, and return
# the penalty $\lambda \sum |\gamma|$ over all of them as a Python float.

# %% nbgrader={"grade": false, "grade_id": "add_l1_subgradient", "locked": false, "schema_version": 3, "solution": true}
#| export
def add_l1_subgradient(model, l1):
    """Add l1 * sign(gamma) to the gradient of every BatchNorm scale in model (in place);
    returns the penalty l1 * sum |gamma| as a float."""
    _check_model(model)
    l1 = _check_float(l1, "l1", low=0.0)
    # Hint: loop over named_batchnorms(model); np.sign gives 0 at 0; keep grad_weight's dtype.
    ### BEGIN SOLUTION
    penalty = 0.0
    for _, bn in named_batchnorms(model):
        bn.grad_weight += (l1 * np.sign(bn.weight)).astype(bn.grad_weight.dtype)
        penalty += l1 * float(np.abs(bn.weight.astype(np.float64)).sum())
    return penalty
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-add_l1_subgradient", "locked": true, "points": 2, "schema_version": 3, "solution": false}
_model = make_bn_mlp(seed=1, hidden=(4, 3))
_model.layers[1].weight[...] = [0.5, -2.0, 0.0, 1.0]
_model.layers[4].weight[...] = [-0.25, 3.0, 0.1]
_grads_before = {n: g.copy() for n, g in _model.gradients().items()}
_handle = _model.layers[1].grad_weight
_pen = add_l1_subgradient(_model, 0.1)
assert isinstance(_pen, float), f"the penalty should be a Python float, got {type(_pen).__name__}"
assert abs(_pen - 0.1 * (0.5 + 2 + 0 + 1 + 0.25 + 3 + 0.1)) < 1e-6, f"penalty: expected 0.685, got {_pen}"
assert _model.layers[1].grad_weight is _handle, "grad_weight must be updated in place (+=), not rebound"
assert np.allclose(_model.layers[1].grad_weight, [0.1, -0.1, 0.0, 0.1]), \
    f"first BN: expected grad [0.1, -0.1, 0, 0.1], got {_model.layers[1].grad_weight}"
assert np.allclose(_model.layers[4].grad_weight, [-0.1, 0.1, 0.1]), \
    f"second BN: expected grad [-0.1, 0.1, 0.1], got {_model.layers[4].grad_weight}"
for _n, _g in _model.gradients().items():
    if not (_n.endswith(".weight") and _n.split(".")[0] in ("1", "4")):
        assert np.array_equal(_g, _grads_before[_n]), f"only the BN scales' gradients may change; {_n} changed"
# the subgradient is the derivative of the penalty wherever gamma != 0
_model.zero_grad()
add_l1_subgradient(_model, 0.3)
_gamma = _model.layers[4].weight
_num = numerical_gradient(lambda: add_l1_subgradient(copy.deepcopy(_model), 0.3), _gamma, eps=1e-3)
assert np.allclose(_model.layers[4].grad_weight, _num, atol=1e-4), \
    f"the added gradient should match finite differences of the penalty: {_model.layers[4].grad_weight} vs {_num}"
print("add_l1_subgradient looks right")

# %% nbgrader={"grade": true, "grade_id": "test-add_l1_subgradient-hidden", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# Edge cases; more (bad input) run at grading as hidden tests.
_plain = Sequential(Linear(3, 2))
assert add_l1_subgradient(_plain, 0.5) == 0.0, "a model without BatchNorm has no penalty"
### BEGIN HIDDEN TESTS
_m2 = make_bn_mlp(seed=2, hidden=(3,))
assert add_l1_subgradient(_m2, 0.0) == 0.0 and not _m2.layers[1].grad_weight.any(), "l1 = 0 adds nothing"
expect_error(ValueError, add_l1_subgradient, _m2, -0.1, match="l1")
expect_error(ValueError, add_l1_subgradient, _m2, float("nan"), match="l1")
expect_error(TypeError, add_l1_subgradient, _m2, "0.1", match="l1")
expect_error(TypeError, add_l1_subgradient, "model", 0.1, match="model")
### END HIDDEN TESTS

# %% [markdown]
# ## 2. Choosing channels with one global threshold
#
# After training, Network Slimming ranks the scales of **all** layers together and prunes a fixed
# fraction of channels: everything below one global threshold goes, so layers that matter less
# lose more channels and the method spreads the budget across layers by itself.
#
# One catch makes raw $|\gamma|$ of different layers hard to compare. A BatchNorm *after* the next
# convolution removes any common scale of its input: multiply every $\gamma$ and $\beta$ of the first
# block by 10 and the second BatchNorm divides it out again. So the size of a layer's scales says
# little by itself, and an L1 penalty can shrink all scales of such a layer together at almost
# no cost to the loss; a raw global threshold would then empty that layer. We therefore divide
# each score by the mean $|\gamma|$ of its layer before ranking (the default `mean` normaliser of
# Torch-Pruning's importance scores): within a layer the order is unchanged, across layers the
# scores become comparable. One more rule keeps the network connected: every layer keeps at
# least one channel (its largest $|\gamma|$), so the pruned count can fall a little short.
#
# **Exercise 2.** Write `select_channels(model, prune_ratio)`. For every BatchNorm (in
# `named_batchnorms` order) compute $|\gamma_c| / \mathrm{mean}_c |\gamma_c|$ (a layer whose scales are
# all 0 scores 0), put all scores into one vector, prune the `round(prune_ratio * total)`
# smallest (a stable sort: among equal scores the earlier layer and the lower index go first),
# put back the largest $|\gamma|$ of any layer that lost all, and return
# `{bn name: sorted kept indices}` (int64 arrays).

# %% nbgrader={"grade": false, "grade_id": "select_channels", "locked": false, "schema_version": 3, "solution": true}
#| export
def select_channels(model, prune_ratio):
    """Global slimming selection: {BN name: sorted int64 indices of the channels kept}."""
    bns = named_batchnorms(model)
    if not bns:
        raise ValueError("model has no BatchNorm layer to select channels from")
    prune_ratio = validate_sparsity(prune_ratio, "prune_ratio")
    # Hint: np.concatenate the normalised scores, np.argsort(..., kind="stable"), then cut the vector per layer.
    ### BEGIN SOLUTION
    scores = []
    for _, bn in bns:
        magnitude = np.abs(bn.weight.astype(np.float64))
        mean = magnitude.mean()
        scores.append(magnitude / mean if mean > 0 else np.zeros_like(magnitude))
    scores = np.concatenate(scores)
    n_prune = int(round(prune_ratio * scores.size))
    alive = np.ones(scores.size, dtype=bool)
    alive[np.argsort(scores, kind="stable")[:n_prune]] = False
    keep, start = {}, 0
    for name, bn in bns:
        part = alive[start:start + bn.num_features].copy()
        if not part.any():
            part[np.argmax(np.abs(bn.weight))] = True
        keep[name] = np.flatnonzero(part).astype(np.int64)
        start += bn.num_features
    return keep
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-select_channels", "locked": true, "points": 2, "schema_version": 3, "solution": false}
_model = make_bn_mlp(seed=1, hidden=(4, 3))
_model.layers[1].weight[...] = [0.5, -2.0, 0.05, 1.0]
_model.layers[4].weight[...] = [-0.25, 3.0, 0.1]
_keep = select_channels(_model, 3 / 7)
assert isinstance(_keep, dict) and sorted(_keep) == ["1", "4"], f"expected keys '1' and '4', got {sorted(_keep) if isinstance(_keep, dict) else _keep}"
assert np.asarray(_keep["1"]).tolist() == [0, 1, 3], f"first BN keeps [0, 1, 3], got {np.asarray(_keep['1']).tolist()}"
assert np.asarray(_keep["4"]).tolist() == [1], f"second BN keeps [1] (|gamma| 0.1 and 0.25 are below the threshold), got {np.asarray(_keep['4']).tolist()}"
assert np.asarray(_keep["1"]).dtype == np.int64, f"indices must be int64, got {np.asarray(_keep['1']).dtype}"
_keep = select_channels(_model, 6 / 7)   # would empty the first layer: its largest channel comes back
assert np.asarray(_keep["1"]).tolist() == [1], f"every layer keeps at least its largest |gamma|: expected [1], got {np.asarray(_keep['1']).tolist()}"
assert np.asarray(_keep["4"]).tolist() == [1], f"expected [1], got {np.asarray(_keep['4']).tolist()}"
# scores are divided by each layer's mean |gamma| before the global ranking
_model.layers[1].weight[...] = [0.1, 0.2, 0.3, 0.4]   # normalised: 0.4, 0.8, 1.2, 1.6
_model.layers[4].weight[...] = [1.0, 2.0, 3.0]        # normalised: 0.5, 1.0, 1.5
_keep = select_channels(_model, 3 / 7)
assert (np.asarray(_keep["1"]).tolist(), np.asarray(_keep["4"]).tolist()) == ([2, 3], [1, 2]), \
    f"with per-layer normalised scores expected [2, 3] and [1, 2], got {np.asarray(_keep['1']).tolist()} and {np.asarray(_keep['4']).tolist()}"
print("select_channels looks right")

# %% nbgrader={"grade": true, "grade_id": "test-select_channels-hidden", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# Edge cases; more (ties, bad input) run at grading as hidden tests.
_m = make_bn_mlp(seed=3, hidden=(5, 5))
assert [len(v) for v in select_channels(_m, 0.0).values()] == [5, 5], "ratio 0 keeps everything"
### BEGIN HIDDEN TESTS
assert [len(v) for v in select_channels(_m, 1.0).values()] == [1, 1], "ratio 1 keeps one channel per layer"
_m.layers[1].weight[...] = 0.0
assert np.asarray(select_channels(_m, 0.5)["1"]).tolist() == [0], "a layer of zero scales scores 0 and keeps one channel"
_m.layers[1].weight[...] = 1.0
_k = select_channels(_m, 0.5)   # all gammas are 1: ties, the earlier layer and lower index go first
assert np.asarray(_k["1"]).tolist() == [0] and np.asarray(_k["4"]).tolist() == [0, 1, 2, 3, 4], f"ties: got {_k}"
expect_error(ValueError, select_channels, _m, 1.5, match="prune_ratio")
expect_error(TypeError, select_channels, _m, "half", match="prune_ratio")
expect_error(ValueError, select_channels, Sequential(Linear(2, 2)), 0.5, match="BatchNorm")
### END HIDDEN TESTS

# %% [markdown]
# ## 3. Removing the channels: conv → BN → conv and linear → BN → linear
#
# A channel of a BatchNorm is fed by one output of the layer before it (a filter of a `Conv2d`,
# a row of a `Linear`) and read by one input of the next weighted layer (an input channel of a
# `Conv2d`, a column — or `hw` columns after a `Flatten` — of a `Linear`). Removing the channel
# removes all three. ReLU and max-pooling act per channel and need nothing.
#
# How do we know the surgery is right? Zero the BatchNorm's $\gamma_c$ **and** $\beta_c$ of every
# dropped channel (`mask_bn_channels`, given): that channel then outputs exactly 0, so the
# next layer's weights on it multiply zeros. The shrunk network must compute what this masked
# network computes.
#
# `producer_consumer(model, i)` (given) returns, for the BatchNorm at index `i` of a
# `Sequential`, the index of the weighted layer before it, the index of the weighted layer
# after it (or None) and that layer's `hw` (1 unless a `Flatten` sits in between).
#
# **Exercise 3.** Write `shrink_bn_sequential(model, keep)`: `keep` maps the names of BatchNorm
# layers of a `Sequential` (their index as a string, as `select_channels` returns them) to the
# channels kept. Work on a `copy.deepcopy` of the model (the model itself must not change);
# for every entry apply `slice_inputs` to the consumer (with its `hw`) and `slice_outputs` to
# the producer and the BatchNorm, and return the copy.

# %% nbgrader={"grade": false, "grade_id": "given-bn-surgery", "locked": true, "schema_version": 3, "solution": false}
#| export
def producer_consumer(model, i):
    """For the BatchNorm at index i of a Sequential: (index of the Linear/Conv2d before it,
    index of the Linear/Conv2d after it or None, hw of that consumer)."""
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a Sequential, got {type(model).__name__}")
    i = validate_int(i, "i", minimum=0)
    if i >= len(model.layers) or not isinstance(model.layers[i], BN_TYPES):
        raise ValueError(f"i={i} is not the index of a BatchNorm layer of the model")
    before = [j for j in range(i) if isinstance(model.layers[j], WEIGHTED)]
    if not before or any(isinstance(model.layers[j], (Flatten, Residual)) for j in range(before[-1] + 1, i)):
        raise ValueError(f"the BatchNorm at index {i} has no Linear or Conv2d directly before it")
    after = [j for j in range(i + 1, len(model.layers)) if isinstance(model.layers[j], WEIGHTED)]
    if any(isinstance(model.layers[j], (Residual, BN_TYPES)) for j in range(i + 1, after[0] if after else len(model.layers))):
        raise ValueError(f"the channels of the BatchNorm at index {i} reach a Residual or another BatchNorm")
    if not after:
        return before[-1], None, 1
    consumer = model.layers[after[0]]
    n = model.layers[i].num_features
    hw = consumer.in_features // n if isinstance(consumer, Linear) else 1
    return before[-1], after[0], hw


def _check_bn_keep(model, keep, sort=True):
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a Sequential, got {type(model).__name__}")
    if not isinstance(keep, dict):
        raise TypeError(f"keep must be a dict {{BatchNorm name: kept channels}}, got {type(keep).__name__}")
    checked = {}
    for name, idx in keep.items():
        if not (isinstance(name, str) and name.isdigit() and int(name) < len(model.layers)
                and isinstance(model.layers[int(name)], BN_TYPES)):
            raise ValueError(f"keep has key {name!r}, not the name of a top-level BatchNorm of the model")
        producer_consumer(model, int(name))
        checked[name] = _check_index(idx, model.layers[int(name)].num_features, f"keep[{name!r}]", sort=sort)
    return checked


def mask_bn_channels(model, keep):
    """A copy of model whose BatchNorms output exactly 0 on the channels not kept (gamma = beta = 0)."""
    keep = _check_bn_keep(model, keep)
    masked = copy.deepcopy(model)
    for name, idx in keep.items():
        bn = masked.layers[int(name)]
        dropped = np.setdiff1d(np.arange(bn.num_features), idx)
        bn.weight[dropped] = 0.0
        bn.bias[dropped] = 0.0
    return masked


# %% nbgrader={"grade": false, "grade_id": "graded-cell-fixtures", "locked": true, "schema_version": 3, "solution": false}
# Shared by the graded test cells below (not exported): random BatchNorm statistics and a batch of images.
def _randomise_bn(model, seed):
    """Random scales, shifts and running statistics, so that every channel differs; eval mode."""
    rng = np.random.default_rng(seed)
    for _, bn in named_batchnorms(model):
        n = bn.num_features
        bn.weight[...], bn.bias[...] = rng.uniform(0.5, 1.5, n), rng.normal(0, 0.3, n)
        bn.running_mean[...], bn.running_var[...] = rng.normal(0, 0.5, n), rng.uniform(0.5, 2.0, n)
    return set_train_mode(model, False)


_X6 = np.random.default_rng(1).random((6, 1, 8, 8)).astype(np.float32)


# %% nbgrader={"grade": false, "grade_id": "shrink_bn_sequential", "locked": false, "schema_version": 3, "solution": true}
#| export
def shrink_bn_sequential(model, keep):
    """A smaller copy of a Sequential: BatchNorm channels not in keep removed with the filters that
    produce them and the inputs of the next weighted layer that read them."""
    keep = _check_bn_keep(model, keep)
    ### BEGIN SOLUTION
    small = copy.deepcopy(model)
    for name, idx in keep.items():
        i = int(name)
        producer, consumer, hw = producer_consumer(small, i)
        if consumer is not None:
            slice_inputs(small.layers[consumer], idx, hw)
        slice_outputs(small.layers[producer], idx)
        slice_outputs(small.layers[i], idx)
    return small
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-shrink_bn_sequential", "locked": true, "points": 4, "schema_version": 3, "solution": false}
_cnn = _randomise_bn(make_bn_cnn(seed=3, widths=(6, 8)), 0)
_before = {n: p.copy() for n, p in _cnn.parameters().items()}
_keep = {"1": [0, 2, 3, 5], "5": [1, 4, 6]}
_small = shrink_bn_sequential(_cnn, _keep)
assert isinstance(_small, Sequential) and len(_small.layers) == len(_cnn.layers), "expected a Sequential with as many layers"
_shapes = [p.shape for p in _small.parameters().values()]
assert _shapes == [(4, 1, 3, 3), (4,), (4,), (4,), (3, 4, 3, 3), (3,), (3,), (3,), (10, 12), (10,)], f"shrunk parameter shapes: got {_shapes}"
assert _small.layers[1].running_mean.shape == (4,), "the BatchNorm's running statistics must shrink too"
assert all(np.array_equal(_before[n], p) for n, p in _cnn.parameters().items()), "the original model must not change"
_want, _got = mask_bn_channels(_cnn, _keep).forward(_X6), _small.forward(_X6)
assert np.allclose(_got, _want, atol=1e-5), f"shrunk CNN must compute what the masked CNN computes; max diff {np.abs(_got - _want).max():.2e}"
_mlp = _randomise_bn(make_bn_mlp(seed=4, hidden=(10, 6)), 1)
_mk = {"1": np.arange(0, 10, 3), "4": [5]}
_small = shrink_bn_sequential(_mlp, _mk)
assert [p.shape for p in _small.parameters().values()][:8] == [(4, 64), (4,), (4,), (4,), (1, 4), (1,), (1,), (1,)], \
    f"MLP 10->4, 6->1: got {[p.shape for p in _small.parameters().values()]}"
_xm = _X6.reshape(6, 64)
assert np.allclose(_small.forward(_xm), mask_bn_channels(_mlp, _mk).forward(_xm), atol=1e-5), "shrunk MLP must compute what the masked MLP computes"
print("shrink_bn_sequential looks right")

# %% nbgrader={"grade": true, "grade_id": "test-shrink_bn_sequential-hidden", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# Edge cases; more (one channel, bad input) run at grading as hidden tests.
_cnn = _randomise_bn(make_bn_cnn(seed=3, widths=(6, 8)), 0)
assert np.allclose(shrink_bn_sequential(_cnn, {}).forward(_X6), _cnn.forward(_X6), atol=1e-6), "an empty keep map copies the model"
### BEGIN HIDDEN TESTS
_one = shrink_bn_sequential(_cnn, {"5": [7]})
assert _one.layers[9].weight.shape == (10, 4), f"one channel of 2x2 positions leaves 4 classifier columns, got {_one.layers[9].weight.shape}"
for _bad, _exc in (({"0": [0]}, ValueError), ({"1": [6]}, ValueError), ({"1": []}, ValueError), ({1: [0]}, ValueError),
                   ({"1": [0.5]}, TypeError), ([("1", [0])], TypeError)):
    expect_error(_exc, shrink_bn_sequential, _cnn, _bad)
expect_error(TypeError, shrink_bn_sequential, Linear(2, 2), {}, match="model")
### END HIDDEN TESTS

# %% [markdown]
# ## 4. Folding BatchNorm into the layer before it
#
# In evaluation mode a BatchNorm is an affine map per channel with constants:
# $y_c = \gamma_c\,(z_c - \mu_c)/\sqrt{\sigma^2_c + \epsilon} + \beta_c$. When $z = W x + b$ comes
# from a `Linear` or `Conv2d`, the two maps compose into one layer of the same shape:
# $$s_c = \frac{\gamma_c}{\sqrt{\sigma^2_c + \epsilon}},\qquad W'_c = s_c\,W_c,\qquad
#   b'_c = s_c\,(b_c - \mu_c) + \beta_c ,$$
# where $W_c$ is row (filter) $c$. Inference then skips the BatchNorm entirely: one pass over
# memory less per layer, and no change in the answer (up to rounding). Every deployment tool
# does this; it only holds in evaluation mode, with the running statistics.
#
# **Exercise 4.** Write `fold_batchnorm(layer, bn)`: a **new** `Linear` or `Conv2d` (same sizes,
# kernel, stride and padding; `copy.deepcopy(layer)` is a good start) whose weights and bias are
# $W'$ and $b'$, computed in float64 and stored as float32. `fold_all_batchnorms(model)` (given,
# above) applies it to every weighted layer that a BatchNorm follows, inside residual blocks too.

# %% nbgrader={"grade": false, "grade_id": "given-fold-all", "locked": true, "schema_version": 3, "solution": false}
#| export
def fold_all_batchnorms(model):
    """A copy of model in which every Linear/Conv2d directly followed by a BatchNorm is replaced by
    the folded layer and the BatchNorm is dropped (also inside residual blocks); for inference."""
    _check_model(model)

    def fold(module):
        if isinstance(module, Residual):
            return Residual(fold(module.branch), None if module.shortcut is None else fold(module.shortcut))
        if not isinstance(module, Sequential):
            return copy.deepcopy(module)
        layers = []
        for layer in module.layers:
            if isinstance(layer, BN_TYPES) and layers and isinstance(layers[-1], WEIGHTED):
                layers[-1] = fold_batchnorm(layers[-1], layer)
            else:
                layers.append(fold(layer))
        return Sequential(*layers)

    return fold(model)


# %% nbgrader={"grade": false, "grade_id": "fold_batchnorm", "locked": false, "schema_version": 3, "solution": true}
#| export
def fold_batchnorm(layer, bn):
    """A new Linear/Conv2d computing bn(layer(x)) with bn in evaluation mode (running statistics)."""
    if not isinstance(layer, WEIGHTED):
        raise TypeError(f"layer must be a Linear or Conv2d, got {type(layer).__name__}")
    if not isinstance(bn, BN_TYPES):
        raise TypeError(f"bn must be a BatchNorm1d or BatchNorm2d, got {type(bn).__name__}")
    if bn.num_features != layer.weight.shape[0]:
        raise ValueError(f"bn has {bn.num_features} channels but layer has {layer.weight.shape[0]} outputs")
    ### BEGIN SOLUTION
    scale = bn.weight.astype(np.float64) / np.sqrt(bn.running_var.astype(np.float64) + bn.eps)
    folded = copy.deepcopy(layer)
    folded.weight[...] = layer.weight.astype(np.float64) * scale.reshape((-1,) + (1,) * (layer.weight.ndim - 1))
    folded.bias[...] = scale * (layer.bias.astype(np.float64) - bn.running_mean) + bn.bias
    return folded
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-fold_batchnorm", "locked": true, "points": 2, "schema_version": 3, "solution": false}
_rng = np.random.default_rng(2)
_lin = Linear(5, 3, seed=1)
_lin.bias[...] = _rng.normal(size=3)
_bn = BatchNorm1d(3)
_bn.weight[...], _bn.bias[...] = [2.0, -0.5, 1.0], [0.1, 0.2, -0.3]
_bn.running_mean[...], _bn.running_var[...] = [1.0, -1.0, 0.0], [4.0, 0.25, 1.0]
_bn.eval()
_f = fold_batchnorm(_lin, _bn)
assert isinstance(_f, Linear) and _f is not _lin and _f.weight.shape == (3, 5), f"expected a new Linear(5, 3), got {_f!r}"
_s = np.array([2.0, -0.5, 1.0]) / np.sqrt(np.array([4.0, 0.25, 1.0]) + _bn.eps)
assert np.allclose(_f.weight, _lin.weight * _s[:, None], atol=1e-6), "W' should be s_c * W_c"
assert np.allclose(_f.bias, _s * (_lin.bias - [1.0, -1.0, 0.0]) + [0.1, 0.2, -0.3], atol=1e-6), f"b': got {_f.bias}"
assert _f.weight.dtype == np.float32 and _f.bias.dtype == np.float32, "folded weights must stay float32"
_xl = _rng.normal(size=(4, 5)).astype(np.float32)
assert np.allclose(_f.forward(_xl), _bn.forward(_lin.forward(_xl)), atol=1e-5), "folded Linear must compute bn(linear(x)) in eval mode"
_conv = Conv2d(2, 4, 3, stride=2, padding=1, seed=3)
_bn2 = _randomise_bn(Sequential(BatchNorm2d(4)), 5).layers[0]
_xc = _rng.normal(size=(3, 2, 7, 7)).astype(np.float32)
_fc = fold_batchnorm(_conv, _bn2)
assert isinstance(_fc, Conv2d) and (_fc.stride, _fc.padding) == (2, 1), "the folded conv keeps stride and padding"
assert np.allclose(_fc.forward(_xc), _bn2.forward(_conv.forward(_xc)), atol=1e-5), "folded Conv2d must compute bn(conv(x)) in eval mode"
_cnn = _randomise_bn(make_bn_cnn(seed=1, widths=(6, 8)), 3)
_folded = fold_all_batchnorms(_cnn)
assert not named_batchnorms(_folded) and len(_folded.layers) == len(_cnn.layers) - 2, "fold_all_batchnorms should remove both BatchNorms"
assert np.allclose(_folded.forward(_X6), _cnn.forward(_X6), atol=1e-4), "the folded CNN must compute what the CNN computes in eval mode"
print("fold_batchnorm looks right")

# %% nbgrader={"grade": true, "grade_id": "test-fold_batchnorm-hidden", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# Edge cases; more (unchanged inputs, bad input) run at grading as hidden tests.
_lin, _bn = Linear(5, 3, seed=1), _randomise_bn(Sequential(BatchNorm1d(3)), 2).layers[0]
_lin.bias[...] = 0.5
assert np.allclose(fold_batchnorm(_lin, _bn).bias, _bn.forward(_lin.forward(np.zeros((1, 5), np.float32)))[0], atol=1e-5), \
    "the folded bias is bn(linear(0))"
### BEGIN HIDDEN TESTS
_w0 = _lin.weight.copy()
fold_batchnorm(_lin, _bn)
assert np.array_equal(_lin.weight, _w0), "fold_batchnorm must not change the layer it folds into"
expect_error(ValueError, fold_batchnorm, Linear(5, 4), _bn, match="channels")
expect_error(TypeError, fold_batchnorm, ReLU(), _bn, match="layer")
expect_error(TypeError, fold_batchnorm, _lin, Linear(3, 3), match="bn")
### END HIDDEN TESTS

# %% [markdown]
# ## 5. Sorting channels: a permutation changes nothing
#
# The channels of a layer have no order: permute the filters of a conv, the channels of its
# BatchNorm and the input channels of the next layer by the same permutation, and the network
# computes exactly the same function. Sorting channels by decreasing $|\gamma|$ is useful: then
# pruning at any ratio is a **truncation** (keep the first $k$ channels), which is how
# "slimmable" networks and some deployment tools store one model for several widths.
#
# **Exercise 5.** Write `sort_channels(model)`: a copy of a `Sequential` in which the channels of
# every top-level BatchNorm are ordered by decreasing $|\gamma|$ (a stable sort of $-|\gamma|$), with
# the producer's outputs and the consumer's inputs permuted to match (`producer_consumer`,
# `slice_outputs` and `slice_inputs` accept a permutation). Return `(sorted_model, orders)` with
# `orders = {bn name: the permutation applied}`.

# %% nbgrader={"grade": false, "grade_id": "sort_channels", "locked": false, "schema_version": 3, "solution": true}
#| export
def sort_channels(model):
    """(copy of a Sequential with every BatchNorm's channels sorted by decreasing |gamma|,
    {BN name: permutation}); the function the network computes does not change."""
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a Sequential, got {type(model).__name__}")
    ### BEGIN SOLUTION
    result = copy.deepcopy(model)
    orders = {}
    for i, layer in enumerate(result.layers):
        if not isinstance(layer, BN_TYPES):
            continue
        order = np.argsort(-np.abs(layer.weight.astype(np.float64)), kind="stable").astype(np.int64)
        producer, consumer, hw = producer_consumer(result, i)
        if consumer is not None:
            slice_inputs(result.layers[consumer], order, hw)
        slice_outputs(result.layers[producer], order)
        slice_outputs(layer, order)
        orders[str(i)] = order
    return result, orders
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-sort_channels", "locked": true, "points": 2, "schema_version": 3, "solution": false}
_cnn = _randomise_bn(make_bn_cnn(seed=2, widths=(6, 8)), 4)
_cnn.layers[1].weight[...] = [0.3, -1.2, 0.8, 0.05, -0.9, 1.0]
_sorted, _orders = sort_channels(_cnn)
assert isinstance(_sorted, Sequential) and _sorted is not _cnn, "expected a new Sequential"
assert sorted(_orders) == ["1", "5"], f"expected orders for BatchNorms '1' and '5', got {sorted(_orders)}"
assert np.asarray(_orders["1"]).tolist() == [1, 5, 4, 2, 0, 3], f"order of the first BN by decreasing |gamma|: got {np.asarray(_orders['1']).tolist()}"
for _name in ("1", "5"):
    _g = np.abs(_sorted.layers[int(_name)].weight)
    assert np.all(np.diff(_g) <= 0), f"|gamma| of BatchNorm {_name} must be non-increasing after sorting, got {np.round(_g, 3)}"
assert np.allclose(_sorted.forward(_X6), _cnn.forward(_X6), atol=1e-5), \
    f"sorting must not change the outputs; max diff {np.abs(_sorted.forward(_X6) - _cnn.forward(_X6)).max():.2e}"
assert np.allclose(_sorted.layers[0].weight, _cnn.layers[0].weight[_orders["1"]]), "the conv filters must be permuted with the BatchNorm"
# after sorting, the top-k channels by |gamma| are the first k
_k = {"1": np.arange(3), "5": np.arange(4)}
_top = {"1": np.sort(_orders["1"][:3]), "5": np.sort(_orders["5"][:4])}
assert np.allclose(shrink_bn_sequential(_sorted, _k).forward(_X6), shrink_bn_sequential(_cnn, _top).forward(_X6), atol=1e-5), \
    "truncating the sorted network must equal keeping the top |gamma| channels of the original"
print("sort_channels looks right")

# %% nbgrader={"grade": true, "grade_id": "test-sort_channels-hidden", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# Edge cases; more (ties, bad input) run at grading as hidden tests.
_mlp = _randomise_bn(make_bn_mlp(seed=5, hidden=(7, 5)), 6)
_w0 = _mlp.layers[0].weight.copy()
_s, _o = sort_channels(_mlp)
assert np.allclose(_s.forward(_X6.reshape(6, 64)), _mlp.forward(_X6.reshape(6, 64)), atol=1e-5), "sorting the MLP changed its outputs"
### BEGIN HIDDEN TESTS
assert np.array_equal(_mlp.layers[0].weight, _w0), "sort_channels must not change the model"
_ties = _randomise_bn(make_bn_mlp(seed=5, hidden=(3,)), 0)
_ties.layers[1].weight[...] = [1.0, -1.0, 1.0]
assert np.asarray(sort_channels(_ties)[1]["1"]).tolist() == [0, 1, 2], "equal |gamma| keep their order (stable sort)"
expect_error(TypeError, sort_channels, Linear(2, 2), match="model")
### END HIDDEN TESTS

# %% [markdown]
# ## 6. The slimming result, over three seeds
#
# Now the whole method, against a baseline with the same training budget: both train for the
# same epochs from the same initialisation, one without the penalty ($\lambda = 0$) and one with
# it; both lose the same fraction of channels chosen by `select_channels`, are physically
# shrunk, and are fine-tuned for the same few epochs. Liu et al.'s claim is that the penalty
# moves the information into fewer channels, so that pruning costs less accuracy *before*
# fine-tuning. The comparison runs on MNIST-1D with the BatchNorm MLP (40 → 128 → 64 → 10,
# linear → BN → linear) over three seeds; the CNN on the digits (conv → BN → conv) follows, on
# one seed, for deployment in section 10.

# %%
SLIM = dict(hidden=(128, 64), epochs=10, lr=1e-2, l1=1e-2, prune_ratios=(0.5, 0.75), finetune_epochs=2, finetune_lr=3e-3)
SEEDS = (0, 1, 2)
METHODS = {"baseline (l1=0)": 0.0, f"slimming (l1={SLIM['l1']})": SLIM["l1"]}
print("settings:", SLIM, "| seeds:", SEEDS)
slim_rows, teachers = {}, {}
_started = time.perf_counter()
for seed in SEEDS:
    for method, l1 in METHODS.items():
        dense = make_bn_mlp(seed=seed, hidden=SLIM["hidden"], in_features=40)
        train_bn(dense, mnist.X_train, mnist.y_train, epochs=SLIM["epochs"], lr=SLIM["lr"], l1=l1, seed=seed)
        teachers[method, seed] = dense
        for ratio in SLIM["prune_ratios"]:
            keep = select_channels(dense, ratio)
            small = shrink_bn_sequential(dense, keep)
            row = {"dense": evaluate(dense, mnist.X_test, mnist.y_test), "pruned": evaluate(small, mnist.X_test, mnist.y_test)}
            train_bn(small, mnist.X_train, mnist.y_train, epochs=SLIM["finetune_epochs"], lr=SLIM["finetune_lr"], seed=seed + 100)
            row["fine-tuned"] = evaluate(small, mnist.X_test, mnist.y_test)
            row["channels"] = tuple(len(v) for v in keep.values())
            row["params"] = (dense.num_parameters(), small.num_parameters())
            row["flops"] = (count_model_flops(dense, (40,)), count_model_flops(small, (40,)))
            slim_rows[method, ratio, seed] = row
print(f"trained {len(SEEDS) * len(METHODS)} networks and fine-tuned {len(slim_rows)} in {time.perf_counter() - _started:.1f} s")
print(f"{'method':<20} {'ratio':>5} {'kept (of 128/64)':>16} {'params':>14} {'FLOPs':>15} | MNIST-1D test accuracy %, mean ± std over seeds")
print(f"{'':<20} {'':>5} {'':>16} {'dense -> small':>14} {'dense -> small':>15} | {'dense':>12} {'pruned':>13} {'fine-tuned':>12}")
slim_summary = {}
for ratio in SLIM["prune_ratios"]:
    for method in METHODS:
        rows = [slim_rows[method, ratio, s] for s in SEEDS]
        stat = {k: tuple(100 * v for v in mean_and_spread([r[k] for r in rows])) for k in ("dense", "pruned", "fine-tuned")}
        slim_summary[method, ratio] = stat
        kept = "/".join(f"{np.mean([r['channels'][j] for r in rows]):.0f}" for j in range(2))
        params = f"{rows[0]['params'][0]} -> {np.mean([r['params'][1] for r in rows]):.0f}"
        flops = f"{rows[0]['flops'][0]} -> {np.mean([r['flops'][1] for r in rows]):.0f}"
        print(f"{method:<20} {ratio:>5} {kept:>16} {params:>14} {flops:>15} | "
              + " ".join(f"{m:>6.2f} ± {s:4.2f}" for m, s in stat.values()))
for ratio in SLIM["prune_ratios"]:
    _b, _s = (slim_summary[m, ratio] for m in METHODS)
    _wins = sum(slim_rows[list(METHODS)[1], ratio, s]["pruned"] > slim_rows[list(METHODS)[0], ratio, s]["pruned"] for s in SEEDS)
    print(f"ratio {ratio}: before fine-tuning slimming is ahead on {_wins} of {len(SEEDS)} seeds "
          f"({_s['pruned'][0]:.1f}% against {_b['pruned'][0]:.1f}%); after fine-tuning {_s['fine-tuned'][0]:.1f}% against {_b['fine-tuned'][0]:.1f}%")

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.2), sharey=True)
for ax, method in zip(axes, METHODS):
    for name, bn in named_batchnorms(teachers[method, 0]):
        ax.hist(np.abs(bn.weight), bins=30, alpha=0.6, label=f"BatchNorm {name} ({bn.num_features} channels)")
    ax.set(title=f"{method}, seed 0", xlabel="|gamma|")
axes[0].set_ylabel("channels")
axes[0].legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# The histograms show what the penalty does to the scales; the table shows what it does to
# the accuracy of the pruned network, before and after fine-tuning, with the spread over
# seeds (the printed lines under it count the seeds on which slimming is ahead).
#
# The CNN gets the same treatment on one seed (its channels go through conv → BN → conv and
# through the `Flatten` into the classifier); it is the network we deploy in section 10.

# %%
CNN_SLIM = dict(widths=(16, 32), epochs=6, lr=1e-2, l1=1e-2, prune_ratio=0.5, finetune_epochs=2, finetune_lr=3e-3)
print("settings:", CNN_SLIM, "| seed 0")
_started = time.perf_counter()
cnn_dense = make_bn_cnn(seed=0, widths=CNN_SLIM["widths"])
train_bn(cnn_dense, X_train, y_train, epochs=CNN_SLIM["epochs"], lr=CNN_SLIM["lr"], l1=CNN_SLIM["l1"], seed=0)
cnn_keep = select_channels(cnn_dense, CNN_SLIM["prune_ratio"])
cnn_small = shrink_bn_sequential(cnn_dense, cnn_keep)
cnn_acc = {"dense": evaluate(cnn_dense, X_test, y_test), "pruned": evaluate(cnn_small, X_test, y_test)}
train_bn(cnn_small, X_train, y_train, epochs=CNN_SLIM["finetune_epochs"], lr=CNN_SLIM["finetune_lr"], seed=100)
cnn_acc["fine-tuned"] = evaluate(cnn_small, X_test, y_test)
print(f"trained and fine-tuned in {time.perf_counter() - _started:.1f} s")
print(f"channels {[bn.num_features for _, bn in named_batchnorms(cnn_dense)]} -> {[len(v) for v in cnn_keep.values()]}, "
      f"parameters {cnn_dense.num_parameters()} -> {cnn_small.num_parameters()}, FLOPs "
      f"{count_model_flops(cnn_dense, (1, 8, 8))} -> {count_model_flops(cnn_small, (1, 8, 8))}; test accuracy "
      + ", ".join(f"{k} {v:.2%}" for k, v in cnn_acc.items()))

# %% [markdown]
# ## 7. Residual connections tie channels together
#
# A residual block adds its input to the output of its branch: $y = x + F(x)$. Channel $c$ of
# $y$ is channel $c$ of $x$ plus channel $c$ of $F(x)$. So the output channels of the layer that
# produced $x$ (the stem convolution below) and of the **last** layer of the branch are tied:
# removing channel $c$ from one but not the other leaves the addition with mismatched shapes,
# and every layer that reads $y$, including the first layer *inside* the branch, must lose
# input channel $c$ as well. The channels inside the branch (between its two convolutions) are
# free: nothing outside reads them.
#
# Torch-Pruning (Fang et al. 2023, *DepGraph*) finds such groups automatically by building a
# graph of which layers' channels depend on which. We build a small version for `Sequential`
# and `Residual` models. Think of every place where a tensor's channels live as a **channel
# space**: the model's input is one, and every `Linear`/`Conv2d` creates a new one (its output).
# BatchNorm, ReLU and pooling act inside the space they receive; `Flatten` keeps the space but
# spreads each channel over `hw` features. A `Residual` **merges** the space at the end of its
# branch with the space of its shortcut (its input, for an identity shortcut): a union-find
# structure (given) keeps track of merged spaces. A group then lists, for one merged space:
#
# * `producers`: the `Linear`/`Conv2d` layers whose **outputs** are these channels,
# * `norms`: the BatchNorms acting on them,
# * `consumers`: `(name, hw)` of the layers whose **inputs** are these channels,
# * `prunable`: False for the space of the model's input and of its output (the pixels and the
#   ten class scores cannot go).
#
# **Exercise 6.** Write `dependency_groups(model, in_channels)`. Walk the model in forward order
# with names as `iter_modules` gives them (`"3.branch.0"`), record each event with the space it
# concerns, merge spaces at each `Residual`, and at the end collect one `ChannelGroup` per merged
# space, ordered by the space that was created first (lists in the order of the walk).

# %% nbgrader={"grade": false, "grade_id": "given-groups", "locked": true, "schema_version": 3, "solution": false}
#| export
@dataclass
class ChannelGroup:
    """Channels that are pruned together: who produces them, normalises them and reads them."""

    channels: int
    producers: list = field(default_factory=list)   # names of Linear/Conv2d whose outputs these are
    norms: list = field(default_factory=list)       # names of BatchNorms acting on them
    consumers: list = field(default_factory=list)   # (name, hw) of Linear/Conv2d reading them as inputs
    prunable: bool = True


class UnionFind:
    """Disjoint sets of 0, 1, 2, ...; the representative of a set is its smallest member."""

    def __init__(self):
        self.parent = []

    def add(self):
        """A new singleton set; returns its id."""
        self.parent.append(len(self.parent))
        return len(self.parent) - 1

    def find(self, a):
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def union(self, a, b):
        ra, rb = self.find(a), self.find(b)
        self.parent[max(ra, rb)] = min(ra, rb)
        return min(ra, rb)


# %% nbgrader={"grade": false, "grade_id": "dependency_groups", "locked": false, "schema_version": 3, "solution": true}
#| export
def dependency_groups(model, in_channels):
    """[ChannelGroup] of a model built from Sequential, Residual, Linear, Conv2d, BatchNorm, ReLU,
    MaxPool2d and Flatten, whose input has `in_channels` channels (features)."""
    _check_model(model)
    in_channels = validate_int(in_channels, "in_channels", minimum=1)
    # Hint: a recursive walk(name, module, space, flattened) -> (space, flattened); events as
    # (space, "producers" | "norms" | "consumers", item); sizes[space] = number of channels.
    ### BEGIN SOLUTION
    spaces, sizes, events = UnionFind(), [], []

    def new_space(n):
        sizes.append(int(n))
        return spaces.add()

    def child(name, part):
        return f"{name}.{part}" if name else str(part)

    def walk(name, module, space, flattened):
        if isinstance(module, Sequential):
            for i, layer in enumerate(module.layers):
                space, flattened = walk(child(name, i), layer, space, flattened)
            return space, flattened
        if isinstance(module, Residual):
            out, out_flat = walk(child(name, "branch"), module.branch, space, flattened)
            skip = space if module.shortcut is None else walk(child(name, "shortcut"), module.shortcut, space, flattened)[0]
            spaces.union(out, skip)
            return out, out_flat
        if isinstance(module, WEIGHTED):
            n_in = module.in_features if isinstance(module, Linear) else module.in_channels
            hw = n_in // sizes[space] if flattened else 1
            events.append((space, "consumers", (name, hw)))
            out = new_space(module.weight.shape[0])
            events.append((out, "producers", name))
            return out, False
        if isinstance(module, BN_TYPES):
            events.append((space, "norms", name))
        return space, flattened or isinstance(module, Flatten)

    first = new_space(in_channels)
    last, _ = walk("", model, first, False)
    fixed = {spaces.find(first), spaces.find(last)}
    groups = {}
    for space, kind, item in events:
        root = spaces.find(space)
        if root not in groups:
            groups[root] = ChannelGroup(sizes[root], prunable=root not in fixed)
        getattr(groups[root], kind).append(item)
    return [groups[root] for root in sorted(groups)]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-dependency_groups", "locked": true, "points": 4, "schema_version": 3, "solution": false}
_res = make_residual_cnn(seed=0, width=4)
_groups = dependency_groups(_res, 1)
assert isinstance(_groups, list) and all(isinstance(g, ChannelGroup) for g in _groups), "expected a list of ChannelGroup"
_by = {tuple(g.producers): g for g in _groups}
assert sorted(_by) == [(), ("0", "3.branch.3"), ("11",), ("3.branch.0",), ("6",)], \
    f"producers of the groups: expected the stem and the branch's last conv together, got {sorted(_by)}"
_tied = _by["0", "3.branch.3"]
assert _tied.norms == ["1", "3.branch.4"], f"tied group: BatchNorms expected ['1', '3.branch.4'], got {_tied.norms}"
assert _tied.consumers == [("3.branch.0", 1), ("6", 1)], f"tied group: consumers expected the branch's first conv and conv 6, got {_tied.consumers}"
assert _tied.channels == 4 and _tied.prunable, f"tied group: 4 prunable channels expected, got {_tied.channels}, {_tied.prunable}"
_inner = _by[("3.branch.0",)]
assert (_inner.norms, _inner.consumers) == (["3.branch.1"], [("3.branch.3", 1)]), f"the branch's inner group: got {_inner}"
assert _by[("6",)].consumers == [("11", 4)], f"conv 6 feeds the classifier through Flatten with hw = 2*2 = 4, got {_by[('6',)].consumers}"
assert not _by[()].prunable and _by[()].consumers == [("0", 1)] and _by[()].channels == 1, f"the input group: got {_by[()]}"
assert not _by[("11",)].prunable and _by[("11",)].channels == 10, f"the output group (class scores) is not prunable, got {_by[('11',)]}"
assert [g.producers for g in _groups] == [[], ["0", "3.branch.3"], ["3.branch.0"], ["6"], ["11"]], \
    f"groups must be ordered by the space created first, got {[g.producers for g in _groups]}"
# a plain chain: one group per weighted layer, nothing tied
_plain = dependency_groups(make_bn_mlp(seed=0, hidden=(5, 3)), 64)
assert [g.producers for g in _plain] == [[], ["0"], ["3"], ["6"]], f"MLP: got {[g.producers for g in _plain]}"
assert [g.prunable for g in _plain] == [False, True, True, False], f"MLP prunable flags: got {[g.prunable for g in _plain]}"
print("dependency_groups looks right")

# %% nbgrader={"grade": true, "grade_id": "test-dependency_groups-hidden", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# Edge cases; more (a projection shortcut, bad input) run at grading as hidden tests.
_blk = lambda: Residual(Sequential(Linear(6, 6), ReLU(), Linear(6, 6)))
_two = Sequential(Linear(4, 6), _blk(), _blk(), Linear(6, 3))
_g = dependency_groups(_two, 4)
_tied = [g for g in _g if "0" in g.producers][0]
assert _tied.producers == ["0", "1.branch.2", "2.branch.2"], f"two identity blocks tie three producers, got {_tied.producers}"
### BEGIN HIDDEN TESTS
assert [c for c, _ in _tied.consumers] == ["1.branch.0", "2.branch.0", "3"], f"consumers: got {_tied.consumers}"
_proj = Sequential(Linear(4, 6), Residual(Sequential(Linear(6, 5)), shortcut=Linear(6, 5)), Linear(5, 2))
_g = dependency_groups(_proj, 4)
_t = [g for g in _g if "1.branch.0" in g.producers][0]
assert _t.producers == ["1.branch.0", "1.shortcut"] and _t.consumers == [("2", 1)], f"projection shortcut: got {_t}"
_first = [g for g in _g if g.producers == ["0"]][0]
assert [c for c, _ in _first.consumers] == ["1.branch.0", "1.shortcut"], f"both paths read the block's input, got {_first.consumers}"
expect_error(ValueError, dependency_groups, _two, 0, match="in_channels")
expect_error(TypeError, dependency_groups, _two, 2.5, match="in_channels")
expect_error(TypeError, dependency_groups, [Linear(2, 2)], 2, match="model")
### END HIDDEN TESTS

# %% [markdown]
# **Pruning whole groups.** A group's channel $c$ goes everywhere at once: the rows of all its
# producers, the entries of all its BatchNorms, the input channels of all its consumers. Its
# importance combines the members (Torch-Pruning sums or averages member scores): here the
# mean over the group's BatchNorms of $|\gamma_c| / \mathrm{mean}|\gamma|$, or the L2 norm of the
# producers' filters when there is no BatchNorm (`group_importance`, given). `mask_groups`
# (given) zeroes the dropped channels' filters, biases, $\gamma$ and $\beta$, so they carry exact zeros
# through the additions; the shrunk network must compute what the masked one computes.
#
# **Exercise 7.** Write `shrink_groups(model, groups, keep)`: `keep` maps a group's index in
# `groups` to the channels kept. On a deep copy of the model, for every entry, `slice_inputs`
# each consumer (with its `hw`) and `slice_outputs` each producer and BatchNorm (find layers
# with `get_module`). Return the copy.

# %% nbgrader={"grade": false, "grade_id": "given-group-tools", "locked": true, "schema_version": 3, "solution": false}
#| export
def _check_group_keep(model, groups, keep):
    _check_model(model)
    if not (isinstance(groups, list) and all(isinstance(g, ChannelGroup) for g in groups)):
        raise TypeError(f"groups must be the list that dependency_groups returns, got {type(groups).__name__}")
    if not isinstance(keep, dict):
        raise TypeError(f"keep must be a dict {{group index: kept channels}}, got {type(keep).__name__}")
    checked = {}
    for index, idx in keep.items():
        if isinstance(index, bool) or not isinstance(index, numbers.Integral) or not 0 <= index < len(groups):
            raise ValueError(f"keep has key {index!r}, not a group index in [0, {len(groups)})")
        if not groups[index].prunable:
            raise ValueError(f"keep[{index}]: group {index} holds the model's input or output channels and cannot be pruned")
        checked[int(index)] = _check_index(idx, groups[index].channels, f"keep[{index}]")
    return checked


def group_importance(model, group):
    """Per-channel importance of a group: mean over its BatchNorms of |gamma| / mean |gamma|, or
    the L2 norm of its producers' filters when it has no BatchNorm."""
    if group.norms:
        scores = [np.abs(get_module(model, n).weight.astype(np.float64)) for n in group.norms]
        return np.mean([s / s.mean() if s.mean() > 0 else s for s in scores], axis=0)
    rows = [get_module(model, n).weight.reshape(group.channels, -1).astype(np.float64) for n in group.producers]
    return np.sqrt(sum((r ** 2).sum(axis=1) for r in rows))


def mask_groups(model, groups, keep):
    """A copy of model whose dropped group channels are exactly zero (filters, biases, gamma, beta)."""
    keep = _check_group_keep(model, groups, keep)
    masked = copy.deepcopy(model)
    for index, idx in keep.items():
        group = groups[index]
        dropped = np.setdiff1d(np.arange(group.channels), idx)
        for name in group.producers + group.norms:
            layer = get_module(masked, name)
            layer.weight[dropped] = 0.0
            layer.bias[dropped] = 0.0
    return masked


# %% nbgrader={"grade": false, "grade_id": "shrink_groups", "locked": false, "schema_version": 3, "solution": true}
#| export
def shrink_groups(model, groups, keep):
    """A smaller copy of model keeping channels keep[g] of every group g listed (all channels of the others)."""
    keep = _check_group_keep(model, groups, keep)
    ### BEGIN SOLUTION
    small = copy.deepcopy(model)
    for index, idx in keep.items():
        group = groups[index]
        for name, hw in group.consumers:
            slice_inputs(get_module(small, name), idx, hw)
        for name in group.producers + group.norms:
            slice_outputs(get_module(small, name), idx)
    return small
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-shrink_groups", "locked": true, "points": 4, "schema_version": 3, "solution": false}
_res = _randomise_bn(make_residual_cnn(seed=1, width=4), 7)
for _n, _p in _res.parameters().items():
    if _n.endswith("bias"):
        _p[...] = np.random.default_rng(3).normal(0, 0.2, _p.shape)
_groups = dependency_groups(_res, 1)
_keep = {1: [0, 3], 2: [1, 2, 3], 3: [0, 2, 4, 5, 7]}
_before = {n: p.copy() for n, p in _res.parameters().items()}
_small = shrink_groups(_res, _groups, _keep)
assert isinstance(_small, Sequential) and _small is not _res, "expected a new model"
_shapes = {n: p.shape for n, p in _small.parameters().items()}
for _n, _want in (("0.weight", (2, 1, 3, 3)), ("1.weight", (2,)), ("3.branch.0.weight", (3, 2, 3, 3)),
                  ("3.branch.3.weight", (2, 3, 3, 3)), ("3.branch.4.weight", (2,)), ("6.weight", (5, 2, 3, 3)), ("11.weight", (10, 20))):
    assert _shapes[_n] == _want, f"{_n}: expected shape {_want}, got {_shapes[_n]}"
assert all(np.array_equal(_before[n], p) for n, p in _res.parameters().items()), "the original model must not change"
_want, _got = mask_groups(_res, _groups, _keep).forward(_X6), _small.forward(_X6)
assert np.allclose(_got, _want, atol=1e-5), f"the shrunk residual CNN must compute what the masked one does; max diff {np.abs(_got - _want).max():.2e}"
assert not np.allclose(_want, _res.forward(_X6), atol=1e-3), "(check of the test itself: masking should change the outputs)"
print("shrink_groups looks right")

# %% nbgrader={"grade": true, "grade_id": "test-shrink_groups-hidden", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# Edge cases; more (a projection shortcut, bad input) run at grading as hidden tests.
_res = _randomise_bn(make_residual_cnn(seed=2, width=3), 8)
_groups = dependency_groups(_res, 1)
assert np.allclose(shrink_groups(_res, _groups, {}).forward(_X6), _res.forward(_X6), atol=1e-6), "an empty keep map copies the model"
### BEGIN HIDDEN TESTS
_proj = Sequential(Linear(4, 6), Residual(Sequential(Linear(6, 5)), shortcut=Linear(6, 5)), ReLU(), Linear(5, 2))
_gp = dependency_groups(_proj, 4)
_ti = [i for i, g in enumerate(_gp) if "1.shortcut" in g.producers][0]
_xp = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
assert np.allclose(shrink_groups(_proj, _gp, {_ti: [1, 4]}).forward(_xp), mask_groups(_proj, _gp, {_ti: [1, 4]}).forward(_xp), atol=1e-5), \
    "projection shortcut: shrunk and masked differ"
expect_error(ValueError, shrink_groups, _res, _groups, {0: [0]}, match="cannot be pruned")
expect_error(ValueError, shrink_groups, _res, _groups, {1: [5]}, match="keep[1]")
expect_error(ValueError, shrink_groups, _res, _groups, {9: [0]}, match="keep")
expect_error(TypeError, shrink_groups, _res, "groups", {}, match="groups")
### END HIDDEN TESTS

# %% [markdown]
# ### Pruning the residual CNN
#
# The residual CNN, trained briefly, loses half of the channels of every prunable group (by
# `group_importance`). First, what happens without the graph: removing channels from the stem
# convolution alone breaks the addition.

# %%
RES = dict(width=8, epochs=3, lr=1e-2, keep_fraction=0.5, finetune_epochs=2, finetune_lr=3e-3)
print("settings:", RES)
res_model = make_residual_cnn(seed=0, width=RES["width"])
_started = time.perf_counter()
train_bn(res_model, X_train, y_train, epochs=RES["epochs"], lr=RES["lr"], seed=0)
print(f"trained in {time.perf_counter() - _started:.1f} s; test accuracy {evaluate(res_model, X_test, y_test):.2%}")

naive = copy.deepcopy(res_model)
for _layer in (naive.layers[0], naive.layers[1]):        # the stem conv and its BatchNorm only
    slice_outputs(_layer, np.arange(RES["width"] // 2))
slice_inputs(naive.layers[3].branch.layers[0], np.arange(RES["width"] // 2))
try:
    naive.forward(X_test[:2])
except ValueError as err:
    print("shrinking the stem alone fails:", err)

res_groups = dependency_groups(res_model, 1)
print(f"{'group':>5} {'channels':>8} {'prunable':>8}  producers | BatchNorms | consumers (name, hw)")
for i, g in enumerate(res_groups):
    print(f"{i:>5} {g.channels:>8} {str(g.prunable):>8}  {g.producers} | {g.norms} | {g.consumers}")

# %%
res_keep = {}
for i, g in enumerate(res_groups):
    if g.prunable:
        n_keep = max(1, int(round(RES["keep_fraction"] * g.channels)))
        res_keep[i] = np.sort(np.argsort(-group_importance(res_model, g), kind="stable")[:n_keep])
res_small = shrink_groups(res_model, res_groups, res_keep)
_masked = mask_groups(res_model, res_groups, res_keep)
_diff = np.abs(res_small.forward(X_test) - _masked.forward(X_test)).max()
print(f"shrunk vs masked on the whole test set: max |difference| = {_diff:.2e}")
assert _diff < 1e-4, "the shrunk residual network must compute what the masked one computes"
res_acc = {"dense": evaluate(res_model, X_test, y_test), "pruned": evaluate(res_small, X_test, y_test)}
train_bn(res_small, X_train, y_train, epochs=RES["finetune_epochs"], lr=RES["finetune_lr"], seed=1)
res_acc["fine-tuned"] = evaluate(res_small, X_test, y_test)
print(f"parameters {res_model.num_parameters()} -> {res_small.num_parameters()}, FLOPs "
      f"{count_model_flops(res_model, (1, 8, 8))} -> {count_model_flops(res_small, (1, 8, 8))}, test accuracy "
      + ", ".join(f"{k} {v:.2%}" for k, v in res_acc.items()) + " (one seed: an illustration, not a comparison)")

# %% [markdown]
# ## 8. Low rank: a truncated SVD of a layer
#
# Pruning removes units; a **low-rank factorisation** keeps every unit but replaces a weight
# matrix $W \in \mathbb{R}^{m \times n}$ (out × in) by a product of two thin ones. The singular value
# decomposition $W = U \Sigma V^\top$, $\sigma_1 \ge \sigma_2 \ge \dots$, gives the best rank-$r$
# approximation in the Frobenius norm (Eckart–Young): $W_r = U_r \Sigma_r V_r^\top$, with error
# $$\lVert W - W_r \rVert_F = \sqrt{\textstyle\sum_{i > r} \sigma_i^2} .$$
# So the **energy** $\sum_{i \le r}\sigma_i^2 / \sum_i \sigma_i^2$ tells how much of $W$ a rank keeps.
# The layer becomes two `Linear` layers, $x \mapsto V_r^\top x$ (r outputs, no bias) and then
# $U_r\Sigma_r(\cdot) + b$: $r(m + n)$ weights instead of $mn$, which saves only when
# $r < mn/(m+n)$ (Denton et al. 2014, Jaderberg et al. 2014 do the same for convolutions).
#
# **Exercise 8.** Write `low_rank_linear(layer, energy)`: the SVD of `layer.weight` in float64
# (`np.linalg.svd(..., full_matrices=False)`), the smallest rank $r$ whose energy is at least
# `energy` (compare with a tolerance of 1e-12, so that `energy=1` keeps the numerical rank),
# and return `(Sequential(first, second), info)` with `first = Linear(in, r)` holding
# $V_r^\top$ and a zero bias, `second = Linear(r, out)` holding $U_r\Sigma_r$ and the original
# bias (float32), and `info` with `rank`, `full_rank` (min(m, n)), `energy_kept`,
# `error_fro` ($\sqrt{\sum_{i>r}\sigma_i^2}$), `singular_values` (all, float64), `params_before`
# (m·n + m), `params_after` (r·n + r + m·r + m: both layers as stored), `flops_before` (2·m·n)
# and `flops_after` (2·r·(m + n)) per sample.

# %% nbgrader={"grade": false, "grade_id": "low_rank_linear", "locked": false, "schema_version": 3, "solution": true}
#| export
def low_rank_linear(layer, energy=0.9):
    """Truncated SVD of a Linear: (Sequential(Linear(in, r), Linear(r, out)), info) with the
    smallest rank r keeping at least `energy` of the squared singular values."""
    if not isinstance(layer, Linear):
        raise TypeError(f"layer must be a Linear, got {type(layer).__name__}")
    energy = _check_float(energy, "energy", low=0.0, high=1.0, low_open=True)
    validate_weights(layer.weight, "layer.weight", ndim=2)
    ### BEGIN SOLUTION
    u, s, vt = np.linalg.svd(layer.weight.astype(np.float64), full_matrices=False)
    total = float(np.sum(s ** 2))
    cumulative = np.cumsum(s ** 2) / total if total > 0 else np.ones_like(s)
    rank = int(np.searchsorted(cumulative, energy - 1e-12) + 1)
    rank = min(rank, len(s))
    m, n = layer.weight.shape
    first, second = Linear(n, rank), Linear(rank, m)
    first.weight[...] = vt[:rank]
    first.bias[...] = 0.0
    second.weight[...] = u[:, :rank] * s[:rank]
    second.bias[...] = layer.bias
    info = {"rank": rank, "full_rank": len(s), "energy_kept": float(cumulative[rank - 1]),
            "error_fro": float(np.sqrt(np.sum(s[rank:] ** 2))), "singular_values": s,
            "params_before": m * n + m, "params_after": rank * n + rank + m * rank + m,
            "flops_before": 2 * m * n, "flops_after": 2 * rank * (m + n)}
    return Sequential(first, second), info
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-low_rank_linear", "locked": true, "points": 3, "schema_version": 3, "solution": false}
_rng = np.random.default_rng(0)
_u, _ = np.linalg.qr(_rng.normal(size=(6, 6)))
_v, _ = np.linalg.qr(_rng.normal(size=(5, 5)))
_sv = np.array([4.0, 2.0, 1.0, 0.5, 0.1])
_lin = Linear(5, 6)
_lin.weight[...] = (_u[:, :5] * _sv) @ _v.T
_lin.bias[...] = _rng.normal(size=6)
_energy = np.cumsum(_sv ** 2) / np.sum(_sv ** 2)        # 0.753, 0.941, 0.988, 0.9995, 1
_pair, _info = low_rank_linear(_lin, 0.9)
assert isinstance(_pair, Sequential) and len(_pair.layers) == 2, "expected Sequential(Linear(in, r), Linear(r, out))"
assert _info["rank"] == 2, f"energy 0.9 needs rank 2 (energy {_energy[1]:.4f}), got {_info['rank']}"
assert _pair.layers[0].weight.shape == (2, 5) and _pair.layers[1].weight.shape == (6, 2), \
    f"factor shapes: expected (2, 5) and (6, 2), got {_pair.layers[0].weight.shape} and {_pair.layers[1].weight.shape}"
_wr = _pair.layers[1].weight.astype(np.float64) @ _pair.layers[0].weight
assert abs(np.linalg.norm(_lin.weight - _wr) - np.sqrt(1.0 + 0.25 + 0.01)) < 1e-4, \
    f"|W - W_r|_F should be sqrt(1 + 0.25 + 0.01), got {np.linalg.norm(_lin.weight - _wr):.5f}"
assert abs(_info["error_fro"] - np.sqrt(1.26)) < 1e-5 and abs(_info["energy_kept"] - _energy[1]) < 1e-6, f"info: got {_info}"
_xl = _rng.normal(size=(3, 5)).astype(np.float32)
assert np.allclose(_pair.forward(_xl), _xl @ _wr.T + _lin.bias, atol=1e-4), "the pair must compute x @ W_r.T + b"
for _k, _want in (("full_rank", 5), ("params_before", 36), ("params_after", 2 * 5 + 2 + 6 * 2 + 6),
                  ("flops_before", 60), ("flops_after", 44)):
    assert _info.get(_k) == _want, f"info[{_k!r}]: expected {_want}, got {_info.get(_k)}"
assert np.allclose(_info["singular_values"], _sv), f"singular_values: got {_info['singular_values']}"
assert low_rank_linear(_lin, 0.94)[1]["rank"] == 2 and low_rank_linear(_lin, 0.95)[1]["rank"] == 3, "rank at energy 0.94 / 0.95"
print("low_rank_linear looks right")

# %% nbgrader={"grade": true, "grade_id": "test-low_rank_linear-hidden", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# Edge cases; more (a rank-one matrix, bad input) run at grading as hidden tests.
_lin = Linear(7, 4, seed=3)
_pair, _info = low_rank_linear(_lin, 1.0)
assert _info["rank"] == 4 and np.allclose(_pair.forward(np.eye(7, dtype=np.float32)), _lin.forward(np.eye(7, dtype=np.float32)), atol=1e-5), \
    "energy 1 keeps the full rank and the layer's function"
### BEGIN HIDDEN TESTS
_one = Linear(3, 3)
_one.weight[...] = np.outer([1.0, 2.0, 3.0], [1.0, 0.0, -1.0])
assert low_rank_linear(_one, 1.0)[1]["rank"] == 1, "a rank-one matrix needs rank 1 even at energy 1"
expect_error(ValueError, low_rank_linear, _lin, 0.0, match="energy")
expect_error(ValueError, low_rank_linear, _lin, 1.5, match="energy")
expect_error(TypeError, low_rank_linear, _lin, "0.9", match="energy")
expect_error(TypeError, low_rank_linear, Conv2d(1, 1, 3), 0.9, match="layer")
### END HIDDEN TESTS

# %% [markdown]
# On a trained network: the seed-0 baseline MLP of section 6 (MNIST-1D), each `Linear` replaced
# by its factorisation at several energy thresholds (the BatchNorms stay). The table shows rank,
# parameters, FLOPs and test accuracy without any retraining.

# %%
lr_mlp = teachers[list(METHODS)[0], 0]
lr_dense_acc = evaluate(lr_mlp, mnist.X_test, mnist.y_test)
print(f"dense MLP: {lr_mlp.num_parameters()} parameters, {count_model_flops(lr_mlp, (40,))} FLOPs, test accuracy {lr_dense_acc:.2%}")
print(f"{'energy':>6} {'ranks (of 40, 64, 10)':>22} {'params':>7} {'FLOPs':>7} {'test acc':>9}")
lr_curve = []
for energy in (0.5, 0.7, 0.8, 0.9, 0.95, 0.99):
    layers, ranks = [], []
    for layer in lr_mlp.layers:
        if isinstance(layer, Linear):
            pair, info = low_rank_linear(layer, energy)
            ranks.append(info["rank"])
            layers.extend(pair.layers if info["params_after"] < info["params_before"] else [copy.deepcopy(layer)])
        else:
            layers.append(copy.deepcopy(layer))
    factored = Sequential(*layers)
    acc = evaluate(factored, mnist.X_test, mnist.y_test)
    lr_curve.append((energy, factored.num_parameters(), acc))
    print(f"{energy:>6} {str(ranks):>22} {factored.num_parameters():>7} {count_model_flops(factored, (40,)):>7} {acc:>9.2%}")

# %% [markdown]
# (A factorisation is used only where it saves parameters, $r(m+n) < mn$; elsewhere the layer
# stays as it is.) Low rank and pruning compose: the factors are ordinary `Linear` layers.
#
# ## 9. Knowledge distillation
#
# A small network can learn more from a big one than from the labels alone (Hinton et al.
# 2015): the big network's probabilities say which wrong classes are *almost* right. Both
# networks' logits are softened with a temperature $T > 1$, $p^T = \mathrm{softmax}(z/T)$, and the
# student minimises a mix of the KL divergence to the teacher and the usual cross-entropy:
# $$L = \alpha\,T^2\,\frac1N\sum_n \mathrm{KL}\big(p^T_{t,n} \,\Vert\, p^T_{s,n}\big) + (1-\alpha)\,\frac1N\sum_n -\log p_{s,n}[y_n] .$$
# The $T^2$ keeps the soft term's gradient on the same scale as the hard one's, because
# $$\frac{\partial L}{\partial z_s} = \frac{\alpha\,T}{N}\big(p^T_s - p^T_t\big) + \frac{1-\alpha}{N}\big(p_s - \mathrm{onehot}(y)\big).$$
#
# **Exercise 9.** Write `distillation_loss(student_logits, teacher_logits, labels,
# temperature=4.0, alpha=0.9)` returning `(loss, grad)`: the loss as a Python float and its
# gradient with respect to the student's logits. Compute the logs stably (log-softmax with the
# row maximum subtracted), so that confident teachers (probabilities that underflow to 0) give
# no NaN.

# %% nbgrader={"grade": false, "grade_id": "distillation_loss", "locked": false, "schema_version": 3, "solution": true}
#| export
def _log_softmax(z):
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def distillation_loss(student_logits, teacher_logits, labels, temperature=4.0, alpha=0.9):
    """(loss, d loss / d student_logits) of alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE."""
    student_logits = validate_weights(student_logits, "student_logits", ndim=2)
    teacher_logits = validate_weights(teacher_logits, "teacher_logits", ndim=2)
    if teacher_logits.shape != student_logits.shape:
        raise ValueError(f"teacher_logits must have the student's shape {student_logits.shape}, got {teacher_logits.shape}")
    labels = np.asarray(labels)
    if labels.dtype == np.bool_ or not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"labels must hold integers, got dtype {labels.dtype}")
    if labels.shape != (len(student_logits),) or labels.min() < 0 or labels.max() >= student_logits.shape[1]:
        raise ValueError(f"labels must be {len(student_logits)} class indices in [0, {student_logits.shape[1]})")
    temperature = _check_float(temperature, "temperature", low=0.0, low_open=True)
    alpha = _check_float(alpha, "alpha", low=0.0, high=1.0)
    ### BEGIN SOLUTION
    s = student_logits.astype(np.float64)
    t = teacher_logits.astype(np.float64)
    n = len(s)
    log_ps_t, log_pt_t = _log_softmax(s / temperature), _log_softmax(t / temperature)
    pt_t = np.exp(log_pt_t)
    kl = float(np.sum(pt_t * (log_pt_t - log_ps_t)) / n)
    log_ps = _log_softmax(s)
    ce = float(-np.mean(log_ps[np.arange(n), labels]))
    loss = alpha * temperature ** 2 * kl + (1 - alpha) * ce
    onehot = np.zeros_like(s)
    onehot[np.arange(n), labels] = 1.0
    grad = alpha * temperature * (np.exp(log_ps_t) - pt_t) / n + (1 - alpha) * (np.exp(log_ps) - onehot) / n
    return float(loss), grad.astype(student_logits.dtype if np.issubdtype(student_logits.dtype, np.floating) else np.float64)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-distillation_loss", "locked": true, "points": 3, "schema_version": 3, "solution": false}
_rng = np.random.default_rng(0)
_s, _t = _rng.normal(size=(5, 4)) * 2, _rng.normal(size=(5, 4)) * 3
_y = np.array([0, 3, 1, 1, 2])
_out = distillation_loss(_s, _t, _y, temperature=3.0, alpha=0.7)
assert isinstance(_out, tuple) and len(_out) == 2, "expected (loss, grad)"
_loss, _grad = _out
_pt, _ps = softmax(_t / 3.0), softmax(_s / 3.0)
_want = 0.7 * 9 * np.mean(np.sum(_pt * np.log(_pt / _ps), axis=1)) + 0.3 * np.mean(-np.log(softmax(_s)[np.arange(5), _y]))
assert isinstance(_loss, float) and abs(_loss - _want) < 1e-8, f"loss: expected {_want:.6f}, got {_loss}"
assert isinstance(_grad, np.ndarray) and _grad.shape == (5, 4), f"grad must have the logits' shape (5, 4), got {getattr(_grad, 'shape', _grad)}"
_num = numerical_gradient(lambda: distillation_loss(_s, _t, _y, 3.0, 0.7)[0], _s, eps=1e-6)
assert np.allclose(_grad, _num, atol=1e-6), f"grad disagrees with finite differences by {np.abs(_grad - _num).max():.2e}"
assert abs(distillation_loss(_s, _t, _y, 3.0, 0.0)[0] - np.mean(-np.log(softmax(_s)[np.arange(5), _y]))) < 1e-8, "alpha = 0 is plain cross-entropy"
assert abs(distillation_loss(_t, _t, _y, 2.0, 1.0)[0]) < 1e-10, "a student equal to its teacher has zero KL"
print("distillation_loss looks right")

# %% nbgrader={"grade": true, "grade_id": "test-distillation_loss-hidden", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# Edge cases; more (a very confident teacher, bad input) run at grading as hidden tests.
_l32, _g32 = distillation_loss(np.ones((2, 3), np.float32), np.zeros((2, 3), np.float32), np.array([0, 2]))
assert _g32.dtype == np.float32, f"float32 logits give a float32 gradient, got {_g32.dtype}"
### BEGIN HIDDEN TESTS
with np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
    try:
        _l, _g = distillation_loss(np.zeros((2, 3)), np.array([[1000.0, 0.0, -1000.0], [0.0, 500.0, 0.0]]), np.array([0, 1]), 1.0, 0.5)
    except FloatingPointError as _err:
        raise AssertionError(f"a confident teacher must not overflow or divide by zero: {_err}")
assert np.isfinite(_l) and np.all(np.isfinite(_g)), "a confident teacher gave NaN"
_z = np.zeros((2, 3))
expect_error(ValueError, distillation_loss, _z, np.zeros((2, 4)), np.array([0, 1]), match="teacher_logits")
expect_error(ValueError, distillation_loss, _z, _z, np.array([0, 3]), match="labels")
expect_error(TypeError, distillation_loss, _z, _z, np.array([0.0, 1.0]), match="labels")
expect_error(ValueError, distillation_loss, _z, _z, np.array([0, 1]), temperature=0.0, match="temperature")
expect_error(ValueError, distillation_loss, _z, _z, np.array([0, 1]), alpha=1.5, match="alpha")
expect_error(ValueError, distillation_loss, np.full((2, 3), np.nan), _z, np.array([0, 1]), match="student_logits")
### END HIDDEN TESTS

# %% [markdown]
# `train_distilled` (given) trains a student with this loss against precomputed teacher logits.
# Below, on MNIST-1D, a small MLP student (one hidden layer of 16 units) learns from the labels
# alone ($\alpha = 0$) or from the dense BatchNorm MLP of section 6's baseline (same seed) as
# teacher, with the same epochs, learning rate and seeds.

# %% nbgrader={"grade": false, "grade_id": "given-distill", "locked": true, "schema_version": 3, "solution": false}
#| export
def train_distilled(student, X, y, teacher_logits, epochs, lr, temperature=4.0, alpha=0.9, seed=0, batch_size=64):
    """Train student (Adam) on distillation_loss against fixed teacher logits; returns the mean loss per epoch."""
    _check_model(student, "student")
    X = validate_weights(X, "X", min_ndim=2)
    teacher_logits = validate_weights(teacher_logits, "teacher_logits", ndim=2)
    if len(teacher_logits) != len(X) or len(y) != len(X):
        raise ValueError(f"X, y and teacher_logits must have the same length, got {len(X)}, {len(y)}, {len(teacher_logits)}")
    epochs, batch_size = validate_int(epochs, "epochs", minimum=1), validate_int(batch_size, "batch_size", minimum=1)
    opt = Adam(student.parameters(), student.gradients(), lr=lr)
    rng = np.random.default_rng(validate_int(seed, "seed", minimum=0))
    set_train_mode(student, True)
    history = []
    for _ in range(epochs):
        order, total = rng.permutation(len(X)), 0.0
        for start in range(0, len(X), batch_size):
            idx = order[start:start + batch_size]
            loss, grad = distillation_loss(student.forward(X[idx]), teacher_logits[idx], y[idx], temperature, alpha)
            opt.zero_grad()
            student.backward(grad.astype(np.float32))
            opt.step()
            total += loss * len(idx)
        history.append(total / len(X))
    set_train_mode(student, False)
    return history


# %%
from tinytorch.nn import make_mlp, predict

KD = dict(hidden=(16,), epochs=12, lr=1e-2, temperature=2.0, alpha=0.5)
print("settings:", KD, "| seeds:", SEEDS)
kd_acc = {"labels only": [], "distilled": []}
_started = time.perf_counter()
for seed in SEEDS:
    teacher_logits = predict(teachers[list(METHODS)[0], seed], mnist.X_train)
    for method, alpha in (("labels only", 0.0), ("distilled", KD["alpha"])):
        student = make_mlp(seed=seed, hidden=KD["hidden"], in_features=40)
        train_distilled(student, mnist.X_train, mnist.y_train, teacher_logits, epochs=KD["epochs"], lr=KD["lr"],
                        temperature=KD["temperature"], alpha=alpha, seed=seed)
        kd_acc[method].append(evaluate(student, mnist.X_test, mnist.y_test))
print(f"trained {2 * len(SEEDS)} students in {time.perf_counter() - _started:.1f} s "
      f"({make_mlp(hidden=KD['hidden'], in_features=40).num_parameters()} parameters each; the teachers have "
      f"{teachers[list(METHODS)[0], 0].num_parameters()})")
for method, accs in kd_acc.items():
    print(f"{method:<12} test accuracy {100 * mean_and_spread(accs)[0]:.2f} ± {100 * mean_and_spread(accs)[1]:.2f} "
          f"(seeds: {', '.join(f'{100 * a:.1f}' for a in accs)})")
_wins = sum(d > l for d, l in zip(kd_acc["distilled"], kd_acc["labels only"]))
print(f"the distilled student is better on {_wins} of {len(SEEDS)} seeds")

# %% [markdown]
# Compare the difference between the two rows with their spread over seeds and with the count
# of seeds on which the distilled student is ahead: a difference smaller than the spread, or a
# split count, is no evidence of a gain.

# %% [markdown]
# ## 10. Deployment: ONNX and onnxruntime
#
# A numpy network is a teaching tool; a deployed network runs in an inference engine. ONNX is a
# common file format for such graphs: a list of **nodes** (operators such as `Conv`, `Gemm`,
# `Relu`, `Add`), named **initializers** (the weights), and typed graph inputs and outputs.
# onnxruntime loads such a graph, optimises it (it fuses operators, picks kernels) and runs it.
#
# The given `OnnxGraphBuilder` wraps the `onnx.helper` calls: `constant(array)` adds a float32
# initializer and returns its name, `node(op, inputs, **attributes)` adds a node and returns the
# name of its output, and `finish(input_name, output_name, input_shape)` builds and checks the
# model (opset 17, a free batch dimension `N`).
#
# **Exercise 10.** Write `to_onnx(model, input_shape)`: walk the model from the graph input
# `"input"` and emit, for each layer,
#
# | tinytorch | ONNX node | inputs | attributes |
# | --- | --- | --- | --- |
# | `Linear` | `Gemm` | x, weight, bias | `transB=1` (the weight is out × in) |
# | `Conv2d` | `Conv` | x, weight, bias | `kernel_shape=[kh, kw]`, `strides=[s, s]`, `pads=[p, p, p, p]` |
# | `BatchNorm1d/2d` | `BatchNormalization` | x, gamma, beta, running mean, running var | `epsilon` |
# | `ReLU` | `Relu` | x | |
# | `MaxPool2d` | `MaxPool` | x | `kernel_shape=[k, k]`, `strides=[k, k]` |
# | `Flatten` | `Flatten` | x | `axis=1` |
# | `Residual` | its branch, its shortcut, then `Add` | both outputs | |
# | `Sequential` | its layers in order | | |
#
# and raise a `TypeError` naming any other layer type. BatchNorms are exported with their running
# statistics (evaluation mode).

# %% nbgrader={"grade": false, "grade_id": "given-onnx", "locked": true, "schema_version": 3, "solution": false}
#| export
def _onnx():
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError as err:  # pragma: no cover - a runtime dependency of this module (requirements.txt)
        raise ImportError("tinytorch.structure's ONNX export needs the onnx package: pip install onnx") from err
    return onnx, helper, numpy_helper


class OnnxGraphBuilder:
    """Collects ONNX nodes and float32 initializers; finish() returns a checked ModelProto."""

    OPSET = 17

    def __init__(self):
        self.nodes, self.initializers, self._count = [], [], 0

    def _name(self, prefix):
        self._count += 1
        return f"{prefix}_{self._count}"

    def constant(self, array, prefix="w"):
        """Add a float32 initializer; returns its name."""
        _, _, numpy_helper = _onnx()
        name = self._name(prefix)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array, dtype=np.float32), name))
        return name

    def node(self, op, inputs, **attributes):
        """Add a node op(inputs) with attributes; returns the name of its output."""
        _, helper, _ = _onnx()
        out = self._name(op.lower())
        self.nodes.append(helper.make_node(op, list(inputs), [out], **attributes))
        return out

    def finish(self, input_name, output_name, input_shape):
        """The checked ONNX model (opset 17) with input (N, *input_shape) and one output."""
        onnx, helper, _ = _onnx()
        graph = helper.make_graph(
            self.nodes, "tinytorch", [helper.make_tensor_value_info(input_name, onnx.TensorProto.FLOAT, ["N", *input_shape])],
            [helper.make_tensor_value_info(output_name, onnx.TensorProto.FLOAT, None)], self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.OPSET)], producer_name="tinytorch")
        model.ir_version = 8
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True)  # fills in the output's shape
        onnx.checker.check_model(model)
        return model


def _check_input_shape(input_shape):
    if not (isinstance(input_shape, tuple) and input_shape
            and all(isinstance(d, numbers.Integral) and not isinstance(d, bool) and d > 0 for d in input_shape)):
        raise ValueError(f"input_shape must be a tuple of positive ints (no batch dimension), got {input_shape!r}")
    return tuple(int(d) for d in input_shape)


def onnx_session(model_proto, threads=1):
    """An onnxruntime InferenceSession (CPU, `threads` intra-op threads, all graph optimisations)."""
    try:
        import onnxruntime as ort
    except ImportError as err:  # pragma: no cover
        raise ImportError("running ONNX models needs onnxruntime: pip install onnxruntime") from err
    options = ort.SessionOptions()
    options.intra_op_num_threads = validate_int(threads, "threads", minimum=1)
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model_proto.SerializeToString(), options, providers=["CPUExecutionProvider"])


def run_onnx(session, x):
    """Output of an onnxruntime session on a float32 batch x."""
    x = validate_weights(x, "x", min_ndim=2)
    return session.run(None, {session.get_inputs()[0].name: np.ascontiguousarray(x, dtype=np.float32)})[0]


def onnx_latencies(sessions, x, repeats=30, warmup=3):
    """{name: median ms of one run} for a dict of sessions, timed in turn (one run each per round)."""
    if not isinstance(sessions, dict) or not sessions:
        raise TypeError("sessions must be a non-empty dict {name: InferenceSession}")
    repeats, warmup = validate_int(repeats, "repeats", minimum=1), validate_int(warmup, "warmup", minimum=0)
    x = np.ascontiguousarray(validate_weights(x, "x", min_ndim=2), dtype=np.float32)
    feeds = {name: {s.get_inputs()[0].name: x} for name, s in sessions.items()}
    for _ in range(warmup):
        for name, s in sessions.items():
            s.run(None, feeds[name])
    times = {name: [] for name in sessions}
    for _ in range(repeats):
        for name, s in sessions.items():
            start = time.perf_counter()
            s.run(None, feeds[name])
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t) * 1e3) for name, t in times.items()}


# %% nbgrader={"grade": false, "grade_id": "to_onnx", "locked": false, "schema_version": 3, "solution": true}
#| export
def to_onnx(model, input_shape):
    """The model as a checked ONNX ModelProto with graph input "input" of shape (N, *input_shape)."""
    _check_model(model)
    input_shape = _check_input_shape(input_shape)
    builder = OnnxGraphBuilder()
    # Hint: a recursive emit(module, x_name) -> output name; builder.constant(...) for every array.
    ### BEGIN SOLUTION
    def emit(module, x):
        if isinstance(module, Sequential):
            for layer in module.layers:
                x = emit(layer, x)
            return x
        if isinstance(module, Residual):
            out = emit(module.branch, x)
            skip = x if module.shortcut is None else emit(module.shortcut, x)
            return builder.node("Add", [out, skip])
        if isinstance(module, Linear):
            return builder.node("Gemm", [x, builder.constant(module.weight), builder.constant(module.bias)], transB=1)
        if isinstance(module, Conv2d):
            p = module.padding
            return builder.node("Conv", [x, builder.constant(module.weight), builder.constant(module.bias)],
                                kernel_shape=list(module.kernel_size), strides=[module.stride] * 2, pads=[p] * 4)
        if isinstance(module, BN_TYPES):
            arrays = (module.weight, module.bias, module.running_mean, module.running_var)
            return builder.node("BatchNormalization", [x] + [builder.constant(a) for a in arrays], epsilon=module.eps)
        if isinstance(module, ReLU):
            return builder.node("Relu", [x])
        if isinstance(module, MaxPool2d):
            k = module.kernel_size
            return builder.node("MaxPool", [x], kernel_shape=[k, k], strides=[k, k])
        if isinstance(module, Flatten):
            return builder.node("Flatten", [x], axis=1)
        raise TypeError(f"to_onnx cannot export a layer of type {type(module).__name__}")

    return builder.finish("input", emit(model, "input"), input_shape)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-to_onnx", "locked": true, "points": 4, "schema_version": 3, "solution": false}
_cnn = _randomise_bn(make_bn_cnn(seed=4, widths=(5, 7)), 9)
_proto = to_onnx(_cnn, (1, 8, 8))
assert type(_proto).__name__ == "ModelProto", f"expected an onnx ModelProto, got {type(_proto).__name__}"
_ops = [n.op_type for n in _proto.graph.node]
assert _ops == ["Conv", "BatchNormalization", "Relu", "MaxPool"] * 2 + ["Flatten", "Gemm"], f"nodes: got {_ops}"
assert _proto.graph.input[0].name == "input", f"the graph input must be called 'input', got {_proto.graph.input[0].name!r}"
_got = run_onnx(onnx_session(_proto), _X6)
assert _got.shape == (6, 10) and np.allclose(_got, _cnn.forward(_X6), atol=1e-4), \
    f"onnxruntime's output must match tinytorch's (eval mode); max diff {np.abs(_got - _cnn.forward(_X6)).max():.2e}"
_res = _randomise_bn(make_residual_cnn(seed=5, width=3), 10)
_proto = to_onnx(_res, (1, 8, 8))
assert [n.op_type for n in _proto.graph.node].count("Add") == 1, "a residual block becomes one Add node"
assert np.allclose(run_onnx(onnx_session(_proto), _X6), _res.forward(_X6), atol=1e-4), "the residual CNN in onnxruntime differs from tinytorch"
_mlp = make_bn_mlp(seed=2, hidden=(6,))
assert np.allclose(run_onnx(onnx_session(to_onnx(_mlp, (64,))), _X6.reshape(6, 64)), set_train_mode(_mlp, False).forward(_X6.reshape(6, 64)), atol=1e-4), \
    "the MLP in onnxruntime differs from tinytorch"
print("to_onnx looks right")

# %% nbgrader={"grade": true, "grade_id": "test-to_onnx-hidden", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# Edge cases; more (a projection shortcut, unsupported layers, bad input) run at grading as hidden tests.
_conv = Sequential(Conv2d(1, 3, 3, stride=2, padding=1, seed=1), ReLU())
assert np.allclose(run_onnx(onnx_session(to_onnx(_conv, (1, 8, 8))), _X6), _conv.forward(_X6), atol=1e-5), "stride 2, padding 1"
### BEGIN HIDDEN TESTS
_proj = Sequential(Linear(4, 6), Residual(Sequential(Linear(6, 5)), shortcut=Linear(6, 5)))
_xp = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
assert np.allclose(run_onnx(onnx_session(to_onnx(_proj, (4,))), _xp), _proj.forward(_xp), atol=1e-5), "projection shortcut"
class _Odd(Module):
    def forward(self, x):
        return x
expect_error(TypeError, to_onnx, Sequential(Linear(2, 2), _Odd()), (2,), match="_Odd")
expect_error(ValueError, to_onnx, _conv, (1, 8, 0), match="input_shape")
expect_error(ValueError, to_onnx, _conv, [1, 8, 8], match="input_shape")
expect_error(TypeError, to_onnx, "model", (2,), match="model")
### END HIDDEN TESTS

# %% [markdown]
# ### The slimmed network in onnxruntime
#
# The CNN of section 6, dense and slimmed (pruned and fine-tuned), with BatchNorms folded
# (section 4), goes through ONNX into onnxruntime (one thread, as the numpy code uses one BLAS
# thread). A third variant keeps the same ranking of channels but rounds each layer's count to
# a multiple of 16 (Torch-Pruning's `round_to`): CPU convolution kernels work on blocks of
# channels as wide as a SIMD register (16 floats with AVX-512, 8 with AVX2), and onnxruntime
# can reorder a convolution's data into such blocks (the NCHWc layout), so a channel count that
# fills whole blocks may run faster than a smaller one that does not. First the outputs are
# compared with tinytorch's; then the sessions are timed in turn, one run each per round, and
# the **median** of many rounds is kept. The measured speedups sit beside the FLOP ratios.

# %% nbgrader={"grade": false, "grade_id": "given-round", "locked": true, "schema_version": 3, "solution": false}
#| export
def round_keep(model, keep, multiple):
    """The same per-layer choice as `keep`, with each count rounded to the nearest multiple of
    `multiple` (at least one multiple, at most the layer's size): the top channels by |gamma|."""
    keep = _check_bn_keep(model, keep)
    multiple = validate_int(multiple, "multiple", minimum=1)
    rounded = {}
    for name, idx in keep.items():
        bn = model.layers[int(name)]
        n = min(bn.num_features, max(multiple, int(round(len(idx) / multiple)) * multiple))
        rounded[name] = np.sort(np.argsort(-np.abs(bn.weight.astype(np.float64)), kind="stable")[:n]).astype(np.int64)
    return rounded


# %%
DEPLOY = dict(batches=(1, 64, 512), repeats=30, warmup=5, round_to=16)
print("settings:", DEPLOY)
cnn_round = shrink_bn_sequential(cnn_dense, round_keep(cnn_dense, cnn_keep, DEPLOY["round_to"]))
train_bn(cnn_round, X_train, y_train, epochs=CNN_SLIM["finetune_epochs"], lr=CNN_SLIM["finetune_lr"], seed=100)
variants = {"dense": cnn_dense, "slimmed": cnn_small, f"slimmed, round to {DEPLOY['round_to']}": cnn_round}
sessions, flops = {}, {}
print(f"{'network':>20} {'channels':>9} {'params':>7} {'FLOPs':>7} {'ONNX nodes':>10} {'test acc':>8}  max |onnxruntime - tinytorch|")
for name, net in variants.items():
    folded = fold_all_batchnorms(net)
    proto = to_onnx(folded, (1, 8, 8))
    sessions[name], flops[name] = onnx_session(proto), count_model_flops(folded, (1, 8, 8))
    diff = float(np.abs(run_onnx(sessions[name], X_test) - net.forward(X_test)).max())
    channels = "/".join(str(bn.num_features) for _, bn in named_batchnorms(net))
    print(f"{name:>20} {channels:>9} {folded.num_parameters():>7} {flops[name]:>7} {len(proto.graph.node):>10} "
          f"{evaluate(net, X_test, y_test):>8.2%}  {diff:.1e}")
    assert diff < 1e-3, "onnxruntime must compute what tinytorch computes"
print(f"\n{'batch':>5} " + " ".join(f"{name + ' ms':>26}" for name in variants))
deploy_speedups = {}
for batch in DEPLOY["batches"]:
    x = np.resize(X_test, (batch,) + X_test.shape[1:])
    ms = onnx_latencies(sessions, x, repeats=DEPLOY["repeats"], warmup=DEPLOY["warmup"])
    deploy_speedups[batch] = {name: ms["dense"] / ms[name] for name in variants}
    print(f"{batch:>5} " + " ".join(f"{ms[name]:>26.3f}" for name in variants))
print("\nspeedup over dense (measured) against the FLOP ratio:")
for name in list(variants)[1:]:
    print(f"  {name:<20} FLOP ratio {flops['dense'] / flops[name]:.2f}; measured "
          + ", ".join(f"batch {b}: {deploy_speedups[b][name]:.2f}x" for b in DEPLOY["batches"]))

# %% [markdown]
# Read the tables together. For one sample the network is so small that the time is mostly
# the runtime's fixed cost per call and per node, which pruning does not reduce. For larger
# batches the convolutions dominate, and the speedup depends on more than FLOPs: pooling and
# activations shrink less than the convolutions, and a channel count that does not fill the
# CPU's blocks can cost as much as a bigger one that does (compare the two slimmed variants).
# Hence the advice of pruning toolkits to round channel counts to the hardware's preferred
# multiple. These numbers come from this machine and this run; on another CPU the ratios differ,
# which is exactly why they are measured rather than computed.

# %% [markdown]
# ## 11. Questions on your results
#
# Answer from what **your** notebook printed; the tests compare with your own run.
# Questions 1 and 2 are checked automatically, 3 and 4 by your instructor.
#
# **Q1 (number).** In the slimming table of section 6, at prune ratio 0.75, by how many
# **percentage points** is slimming ahead of the baseline **after fine-tuning** (mean over
# the seeds)? Store it in `q1_slimming_gain_075` (tolerance ±0.3).
#
# **Q2 (choice).** In section 10, at the largest batch, which slimmed variant has the larger
# measured speedup over dense? Store the letter in `q2_choice`: `"A"` the plain slimmed
# network; `"B"` the slimmed network rounded to 16 channels.

# %% nbgrader={"grade": false, "grade_id": "answers-results", "locked": false, "schema_version": 3, "solution": true}
q1_slimming_gain_075 = None  # a number, in percentage points
q2_choice = None             # "A" or "B"
### BEGIN SOLUTION
_base, _slim = list(METHODS)
q1_slimming_gain_075 = slim_summary[_slim, 0.75]["fine-tuned"][0] - slim_summary[_base, 0.75]["fine-tuned"][0]
_plain, _rounded = list(variants)[1:]
_largest = max(DEPLOY["batches"])
q2_choice = "A" if deploy_speedups[_largest][_plain] > deploy_speedups[_largest][_rounded] else "B"
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-q1-results", "locked": true, "points": 2, "schema_version": 3, "solution": false}
_base, _slim = list(METHODS)
_want = 100 * (np.mean([slim_rows[_slim, 0.75, _s]["fine-tuned"] for _s in SEEDS])
               - np.mean([slim_rows[_base, 0.75, _s]["fine-tuned"] for _s in SEEDS]))
assert isinstance(q1_slimming_gain_075, (int, float, np.number)) and not isinstance(q1_slimming_gain_075, bool), \
    f"q1_slimming_gain_075 must be a number, got {q1_slimming_gain_075!r}"
assert abs(float(q1_slimming_gain_075) - _want) <= 0.3, \
    f"q1: {q1_slimming_gain_075} does not match the fine-tuned means at ratio 0.75 in your table (tolerance ±0.3 points)"
print("Q1 matches your run")

# %% nbgrader={"grade": true, "grade_id": "test-q2-results", "locked": true, "points": 2, "schema_version": 3, "solution": false}
_plain, _rounded = list(variants)[1:]
_speed = deploy_speedups[max(DEPLOY["batches"])]
_ratio = _speed[_plain] / _speed[_rounded]
_ok = {"A"} if _ratio > 1.02 else {"B"} if _ratio < 1 / 1.02 else {"A", "B"}  # within 2%: either reading is fair
assert q2_choice in ("A", "B"), f"q2_choice must be 'A' or 'B', got {q2_choice!r}"
assert q2_choice in _ok, f"q2: {q2_choice!r} does not fit the measured speedups printed in section 10 (largest batch)"
print("Q2 fits your run")

# %% [markdown] nbgrader={"grade": true, "grade_id": "q3-slimming", "locked": false, "points": 3, "schema_version": 3, "solution": true}
# **Q3 (written, 3 points).** In your slimming table the penalty makes the *dense* network
# worse, yet the pruned network better. Explain both. Then compare the gap before and after
# fine-tuning at the two prune ratios: where is slimming's advantage a result (against the
# spreads over seeds), where does fine-tuning erase it, and why?
#
# ### BEGIN SOLUTION
# *Reference answer (instructor only; numbers of the reference run).* The L1 penalty pulls
# the BatchNorm scales to zero, so part of the network's capacity and of the training budget
# goes into making channels unused: the dense slimming network reaches 54.3% against 58.2%
# for the baseline (std 0.7 to 1.1, three seeds). In return the information sits in fewer
# channels, and the channels with small $|\gamma|$ carry almost nothing, so removing them costs
# little: before fine-tuning slimming is ahead by about 10 points at ratio 0.5 (45.8% against
# 35.2%) and 7 points at 0.75, on 3 of 3 seeds, well beyond the stds of 1.5 to 3.9. Two
# epochs of fine-tuning let the baseline recover most of what it lost when enough channels
# remain (ratio 0.5, 65/31 channels): 57.0% against 55.8%, about one point with stds of
# 0.7 to 0.9, weak evidence. At ratio 0.75 (34/14 channels) the baseline has lost too much
# for two epochs to repair: 49.7% against 41.8%, about 8 points with stds of 1.3 to 2.4, a
# result.
#
# *Rubric (3 points):* 1 point for the dense cost of the penalty (capacity and budget spent
# on sparsity); 1 point for why the pruned network is better before fine-tuning (small
# scales carry little); 1 point for the before/after comparison at both ratios read against
# their spreads with their own numbers.
# ### END SOLUTION

# %% [markdown] nbgrader={"grade": true, "grade_id": "q4-small-mlps", "locked": false, "points": 3, "schema_version": 3, "solution": true}
# **Q4 (written, 3 points).** This notebook made small MNIST-1D networks three ways: slimming
# at ratio 0.75 and fine-tuning (section 6), a truncated SVD without retraining (section 8,
# the smallest factorised network) and a distilled student (section 9). Using your numbers,
# which gives the most accuracy for its parameters? Then say why this comparison is not
# fair as it stands, and what you would change to make it one.
#
# ### BEGIN SOLUTION
# *Reference answer.* In the reference run: the distilled student reaches 50.7 ± 1.5% with
# 826 parameters; slimming at 0.75 reaches 49.7 ± 2.4% with about 2140 parameters; the SVD
# at energy 0.5 keeps 4793 parameters and reaches 35.0% (one seed). Per parameter the
# student wins, slimming is close in accuracy at 2.6 times the size, and low rank without
# retraining is far behind. Not fair: the budgets differ (the student trains 12 epochs
# against a teacher that itself took 10; slimming trains 10 epochs plus 2 of fine-tuning;
# the factorised network is not retrained at all), the sizes differ, low rank is measured
# on one seed, and the architectures differ (BatchNorm or not). A fair comparison fixes the
# parameter count (or FLOPs), gives every method the same total epochs, counting the
# teacher's, fine-tunes the factorised network too, and reports three seeds with spreads
# and paired differences.
#
# *Rubric (3 points):* 1 point for the three accuracies with their sizes read correctly;
# 1 point for at least two sources of unfairness (budget, size, seeds, no retraining,
# teacher cost); 1 point for a concrete fair protocol.
# ### END SOLUTION

# %% [markdown]
# ## Summary
#
# * **Network Slimming** adds $\lambda\,\mathrm{sign}(\gamma)$ to the BatchNorm scales' gradients; a
#   global threshold on (per-layer normalised) $|\gamma|$ picks channels across layers, and the
#   table of section 6 shows, over three seeds and equal budgets, what the penalty changes in the
#   accuracy of the pruned network before and after fine-tuning.
# * A channel is removed in three places: the filter that produces it, its BatchNorm entry and
#   the inputs that read it (`hw` columns after a `Flatten`). A masked network is the test oracle.
# * **BatchNorm folding** turns conv + BN into one conv for inference; **channel sorting** is a
#   permutation that leaves the function unchanged and turns pruning into truncation.
# * **Residual additions tie channels** across layers. A dependency graph of channel spaces,
#   merged at each addition, lists what must shrink together (DepGraph in miniature).
# * **Low rank**: a truncated SVD keeps the energy you ask for with the error
#   $\sqrt{\sum_{i>r}\sigma_i^2}$, and saves only when $r < mn/(m+n)$.
# * **Distillation**: $\alpha T^2\,\mathrm{KL} + (1-\alpha)\,\mathrm{CE}$ with gradient
#   $\alpha T (p^T_s - p^T_t)/N + (1-\alpha)(p_s - y)/N$; section 9 measures what it did for a
#   small student here, over three seeds.
# * **Deployment**: the shrunk, folded network exported to ONNX computes the same outputs in
#   onnxruntime; its measured speedup is set beside the FLOP ratio, per batch size, and depends
#   on whether the channel counts suit the runtime's kernels.
#
# **References.** Z. Liu et al., *Learning Efficient Convolutional Networks through Network
# Slimming*, ICCV 2017. S. Ioffe and C. Szegedy, *Batch Normalization*, ICML 2015. K. He et al.,
# *Deep Residual Learning for Image Recognition*, CVPR 2016. G. Fang et al., *DepGraph: Towards
# Any Structural Pruning*, CVPR 2023. C. Eckart and G. Young, *The approximation of one matrix by
# another of lower rank*, 1936. E. Denton et al., *Exploiting Linear Structure Within
# Convolutional Networks for Efficient Evaluation*, NeurIPS 2014. M. Jaderberg et al., *Speeding
# up Convolutional Neural Networks with Low Rank Expansions*, BMVC 2014. G. Hinton, O. Vinyals
# and J. Dean, *Distilling the Knowledge in a Neural Network*, 2015. J. Yu et al., *Slimmable
# Neural Networks*, ICLR 2019. ONNX and onnxruntime documentation.
