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
# # Module 00 — Foundations: a tiny neural-network stack in numpy
#
# Every later module of this course *prunes*, *compresses* or *sparsifies* a
# trained network. Before we can take a network apart we need one we fully
# understand, down to every gradient. In this module we build `tinytorch.nn`, a
# deliberately small, PyTorch-shaped library written in plain numpy, and
# `tinytorch.data`, a real (small) dataset that works offline.
#
# **Learning goals.** After this module you can
#
# 1. derive and implement the forward and backward pass of a fully connected
#    (`Linear`) layer, and check it against finite differences;
# 2. explain how a convolution becomes one matrix product (*im2col*), and why
#    its backward pass is the `Linear` backward pass plus a scatter-add;
# 3. implement a numerically stable softmax cross-entropy loss and its
#    remarkably simple gradient;
# 4. implement SGD with momentum so that it updates weights **in place** (later
#    modules rely on that to keep pruned weights at zero);
# 5. train an MLP and a small CNN on handwritten digits to high test accuracy in
#    a few seconds, and read their training curves.
#
# **What you write.** Four exercises, each followed by tests that tell you what
# was expected and what came back:
# `Linear.forward`/`Linear.backward`, `softmax` + `CrossEntropyLoss`,
# `accuracy`, and `SGD.step`. Everything else (the data, `Conv2d`, pooling,
# `Adam`, the training loop) is given, and worth reading.
#
# **Conventions used everywhere in the course.** numpy in, numpy out; weights
# are `float32`; a layer's parameters are exposed as a dict `{name: ndarray}`
# whose arrays are the *live* weights (optimisers and pruning masks modify them
# in place); nothing uses numpy's global random state — every random choice takes
# a `seed`.

# %% nbgrader={"grade": false, "grade_id": "imports", "locked": true, "schema_version": 3, "solution": false}
#| default_exp nn
#| export
import math
import time
from collections.abc import Callable, Mapping

import numpy as np

try:  # installed with scikit-learn; only used to keep tiny matrix products on one BLAS thread
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - still correct, possibly slower on a busy machine
    from contextlib import nullcontext as _nullcontext

    def threadpool_limits(limits=None, user_api=None):
        return _nullcontext()

# %% [markdown]
# ## 1. The data: 8×8 handwritten digits, offline
#
# scikit-learn ships a copy of the UCI *Optical Recognition of Handwritten
# Digits* data (Alpaydin & Kaynak, 1998): a couple of thousand images of 8×8
# pixels with grey levels 0–16, ten roughly balanced classes (the cell below
# prints the exact counts). It is small enough to train on in seconds and real
# enough that accuracy means something.
#
# `load_digits_split` scales pixels to `[0, 1]` as `float32` and makes a
# **stratified, deterministic** split: for every class separately it shuffles
# that class's indices with `np.random.default_rng(seed)` and sends
# `round(test_fraction * n_class)` of them to the test set. The same seed always
# gives the same split, and every class keeps the same share in train and test.
#
# This cell is exported to a second file, `tinytorch/data.py` (note the
# `#| export data` line), so later modules can write
# `from tinytorch.data import load_digits_split`.

# %% nbgrader={"grade": false, "grade_id": "data", "locked": true, "schema_version": 3, "solution": false}
#| export data
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False, repr=False)
class Digits:
    """A train/test split of a ten-class data set: X float32 of shape (n, features), y int64 labels 0..9.
    The 8x8 digits have 64 features in [0, 1]; MNIST-1D (load_mnist1d) has 40 real-valued ones."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray

    @property
    def n_classes(self) -> int:
        return 10

    def __repr__(self) -> str:
        return (f"Digits(X_train={self.X_train.shape}, y_train={self.y_train.shape}, "
                f"X_test={self.X_test.shape}, y_test={self.y_test.shape})")


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def load_digits_split(test_fraction: float = 0.25, seed: int = 0) -> Digits:
    """scikit-learn's bundled 8x8 digits, scaled to [0, 1], split per class (stratified)
    and deterministically: the same seed always gives the same split. No download."""
    if isinstance(test_fraction, (bool, np.bool_)) or not isinstance(test_fraction, (int, float, np.number)):
        raise TypeError(f"test_fraction must be a number in (0, 1), got {type(test_fraction).__name__}")
    if not (0.0 < float(test_fraction) < 1.0):
        raise ValueError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction!r}")
    if not _is_int(seed):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no network

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    y = y.astype(np.int64)
    rng = np.random.default_rng(seed)
    test_parts = []
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        n_test = int(round(float(test_fraction) * len(members)))
        if not 1 <= n_test < len(members):
            raise ValueError(f"test_fraction={test_fraction!r} leaves class {label} "
                             f"with an empty train or test part")
        test_parts.append(members[:n_test])
    is_test = np.zeros(len(y), dtype=bool)
    is_test[np.concatenate(test_parts)] = True
    return Digits(X_train=np.ascontiguousarray(X[~is_test]), y_train=y[~is_test],
                  X_test=np.ascontiguousarray(X[is_test]), y_test=y[is_test])


def as_images(X: np.ndarray) -> np.ndarray:
    """(n, 64) flattened digits -> (n, 1, 8, 8) images in NCHW layout (a view when possible)."""
    if not isinstance(X, np.ndarray):
        raise TypeError(f"X must be a numpy array, got {type(X).__name__}")
    if X.ndim != 2 or X.shape[1] != 64:
        raise ValueError(f"X must have shape (n, 64), got {X.shape}")
    return X.reshape(X.shape[0], 1, 8, 8)


def iterate_minibatches(X: np.ndarray, y: np.ndarray, batch_size: int, rng=None):
    """Yield (X_batch, y_batch) covering every sample once; shuffled when rng (a
    np.random.Generator or an int seed) is given, in order when rng is None."""
    if not isinstance(X, np.ndarray) or not isinstance(y, np.ndarray):
        raise TypeError(f"X and y must be numpy arrays, got {type(X).__name__} and {type(y).__name__}")
    if X.ndim == 0 or y.ndim != 1 or len(X) != len(y):
        raise ValueError(f"X and y must have the same length with y 1-D, got shapes {X.shape} and {y.shape}")
    if not _is_int(batch_size) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if rng is not None and not (_is_int(rng) or isinstance(rng, np.random.Generator)):
        raise TypeError(f"rng must be None, an int seed or a np.random.Generator, got {type(rng).__name__}")
    order = np.arange(len(X)) if rng is None else np.random.default_rng(rng).permutation(len(X))

    def batches():
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            yield X[idx], y[idx]

    return batches()


_MNIST1D_TEMPLATE_POINTS = 12
_MNIST1D_CANVAS = 60


def _mnist1d_templates() -> np.ndarray:
    """Ten one-dimensional shapes of 12 points, one per class, in [-1, 1]."""
    u = np.linspace(0.0, 1.0, _MNIST1D_TEMPLATE_POINTS)
    bump = lambda centre, width: np.exp(-((u - centre) / width) ** 2)
    return np.stack([
        np.sin(2 * np.pi * u),                                  # 0: one full wave
        -np.sin(2 * np.pi * u),                                 # 1: the same wave upside down
        bump(0.5, 0.18),                                        # 2: one bump
        bump(0.25, 0.12) + bump(0.75, 0.12),                    # 3: two bumps
        2 * u - 1,                                              # 4: a rising ramp
        np.where(u < 0.5, 1.0, -1.0),                           # 5: a step down
        np.sin(4 * np.pi * u),                                  # 6: two waves
        -bump(0.5, 0.18),                                       # 7: one dip
        np.abs(4 * u - 2) - 1,                                  # 8: a V
        np.where((u >= 0.33) & (u < 0.66), 1.0, -1.0),          # 9: a plateau
    ])


def _mnist1d_examples(n: int, rng: np.random.Generator, length: int) -> tuple[np.ndarray, np.ndarray]:
    """n examples, classes balanced (counts differ by at most one), in random order."""
    templates = _mnist1d_templates()
    y = rng.permutation(np.arange(n) % 10)
    grid = np.arange(_MNIST1D_CANVAS, dtype=np.float64)
    out_grid = np.linspace(0.0, _MNIST1D_CANVAS - 1, length)
    kernel = np.exp(-0.5 * (np.arange(-6, 7) / 2.0) ** 2)
    kernel /= np.sqrt(np.sum(kernel ** 2))  # smoothed noise keeps unit variance
    X = np.empty((n, length))
    for i in range(n):
        width = int(rng.integers(18, 31))                        # stretch in time
        shape = np.interp(np.linspace(0, _MNIST1D_TEMPLATE_POINTS - 1, width),
                          np.arange(_MNIST1D_TEMPLATE_POINTS), templates[y[i]])
        signal = np.zeros(_MNIST1D_CANVAS)
        start = int(rng.integers(0, _MNIST1D_CANVAS - width + 1))  # shift
        signal[start:start + width] = shape * rng.uniform(0.6, 1.4)  # amplitude
        signal += rng.uniform(-0.02, 0.02) * (grid - _MNIST1D_CANVAS / 2)  # shear (a slope)
        signal += 0.25 * np.convolve(rng.standard_normal(_MNIST1D_CANVAS + 12), kernel,
                                     mode="valid")[:_MNIST1D_CANVAS]  # correlated noise
        X[i] = np.interp(out_grid, grid, signal) + 0.1 * rng.standard_normal(length)  # resample, white noise
    return X.astype(np.float32), y.astype(np.int64)


def load_mnist1d(seed: int = 0, n_train: int = 4000, n_test: int = 2000, length: int = 40) -> Digits:
    """MNIST-1D-style data generated here, offline: ten 1-D template shapes, each example
    stretched, shifted, scaled, sheared and noised, then resampled to `length` points.
    Deterministic in seed; never touches numpy's global random state. Train and test come from
    independent streams, so n_test does not change the training set."""
    for value, name in ((seed, "seed"), (n_train, "n_train"), (n_test, "n_test"), (length, "length")):
        if not _is_int(value):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    for value, name in ((n_train, "n_train"), (n_test, "n_test")):
        if value < 10:
            raise ValueError(f"{name} must be >= 10 so that every class appears, got {value}")
    if not 8 <= length <= 4 * _MNIST1D_CANVAS:
        raise ValueError(f"length must lie in [8, {4 * _MNIST1D_CANVAS}], got {length}")
    X_train, y_train = _mnist1d_examples(int(n_train), np.random.default_rng([int(seed), 0]), int(length))
    X_test, y_test = _mnist1d_examples(int(n_test), np.random.default_rng([int(seed), 1]), int(length))
    return Digits(X_train=X_train, y_train=y_train, X_test=X_test, y_test=y_test)


# %%
digits = load_digits_split(test_fraction=0.25, seed=0)
print(digits)
print("train class counts:", np.bincount(digits.y_train))
print("test class counts: ", np.bincount(digits.y_test))
print(f"pixel range: [{digits.X_train.min():.1f}, {digits.X_train.max():.1f}], dtype {digits.X_train.dtype}")

# %%
import matplotlib.pyplot as plt

fig, axes = plt.subplots(2, 10, figsize=(10, 2.6), gridspec_kw={"hspace": 0.25, "wspace": 0.15})
for label in range(10):
    for row in range(2):
        image = digits.X_train[np.flatnonzero(digits.y_train == label)[row]].reshape(8, 8)
        axes[row, label].imshow(image, cmap="gray_r", vmin=0, vmax=1)
        axes[row, label].set_axis_off()
    axes[0, label].set_title(str(label))
fig.suptitle("Two training examples per class (8×8 pixels)", y=1.02)
plt.show()

# %% [markdown]
# ### A harder data set: MNIST-1D, generated here
#
# The digits are *easy*: a small MLP gets most of the 450 test images right, so
# one image is worth 0.22 points and two methods rarely differ by more than a
# couple of images. Later modules compare pruning methods, and a comparison on
# data where everything scores the same teaches nothing.
#
# `load_mnist1d` builds a data set in the spirit of Greydanus's MNIST-1D (2020):
# ten short one-dimensional shapes (a wave, a bump, a ramp, a step, …), and
# every example is one of them **stretched** in time, **shifted**, **scaled**,
# **sheared** (a random slope added), covered in smooth *correlated* noise plus
# a little white noise, and resampled to 40 points. A linear model is far from
# solving it (the package tests check that), an MLP does better, and a model that
# knows about shifts (a convolution) better still (section 8 measures both):
# capacity and structure matter here, which is exactly what pruning takes away. It is generated locally from a seed (no
# download, no global random state), with 4000 training and 2000 test examples
# (one test example = 0.05 points) and the classes balanced.

# %%
mnist1d = load_mnist1d(seed=0)
print(mnist1d)
print("train class counts:", np.bincount(mnist1d.y_train))
fig, axes = plt.subplots(2, 5, figsize=(10, 3.2), sharex=True, sharey=True)
for label, ax in enumerate(axes.ravel()):
    for k in np.flatnonzero(mnist1d.y_train == label)[:3]:
        ax.plot(mnist1d.X_train[k], lw=1)
    ax.set_title(f"class {label}", fontsize=9)
fig.suptitle("MNIST-1D: three training examples per class", y=1.02)
plt.show()

# %% [markdown]
# ## 2. Checking inputs, the `Module` base class, and a gradient checker
#
# Every public function in `tinytorch` checks its arguments *at the boundary*
# and raises a `TypeError` (wrong type or dtype) or `ValueError` (wrong shape,
# empty, NaN/inf, out of range) that names the argument and the bad value —
# the same discipline as scikit-learn's input validation. A NaN that silently
# spreads through a few epochs is much harder to debug than an error on the
# first call.
#
# A `Module` has `forward(x)` and `backward(grad_out)`. `backward` receives
# $\partial L/\partial y$ for the module's output $y$, **adds** the parameter
# gradients into `grad_<name>` arrays (as PyTorch accumulates into `.grad`), and
# returns $\partial L/\partial x$ for the previous layer. `parameters()` and
# `gradients()` return dicts of the live arrays; `state_dict()` returns copies.
#
# To trust a backward pass we compare it with **central finite differences**:
# for a scalar function $f$ and each entry $\theta_i$,
# $$\frac{\partial f}{\partial \theta_i} \approx \frac{f(\theta + h e_i) - f(\theta - h e_i)}{2h},$$
# whose error shrinks like $h^2$. `numerical_gradient` perturbs an array in
# place, calls `f()`, and restores the entry. (For `float32` arrays the step
# actually taken is $\mathrm{fl}(\theta_i + h) - \theta_i$, not exactly $h$; the
# helper divides by the step it really took.)

# %% [markdown]
# ### The support layer: validation and timing, in one place
#
# The checks, and the way we time code, live in **one** exported module,
# `tinytorch.support`, which every later module imports (`from tinytorch.support
# import validate_int, median_times_ms`). One copy means one behaviour: the same
# bad input gives the same message in module 01 and in module 05.
#
# Checking costs time, though. `np.isfinite(x).all()` reads the whole input,
# and a layer that checks *every* call pays for it on every forward pass. For a
# ReLU that is as much work as the ReLU itself, so a latency table measured with
# checks on partly measures the checks. Like PyTorch's `torch.inference_mode()`,
# `with inference_mode():` turns the per-call checks (and the caching that only
# backward needs) off; `predict` validates its input once and then runs the model
# that way, and `median_times_ms` times a dict of callables interleaved (one of
# each per round, so a slow spell of a shared machine hits all of them alike)
# and reports medians. Every latency table of the course goes through these two.

# %% nbgrader={"grade": false, "grade_id": "support", "locked": true, "schema_version": 3, "solution": false}
#| export support
import contextlib
import math
import numbers
import time

import numpy as np

_INFERENCE = [False]  # one flag for the whole package; set only by inference_mode()


@contextlib.contextmanager
def inference_mode():
    """Inside this block layers skip their per-call input checks and keep nothing for backward:
    the path used to measure latency. Validate the input once before entering it."""
    previous = _INFERENCE[0]
    _INFERENCE[0] = True
    try:
        yield
    finally:
        _INFERENCE[0] = previous


def is_inference() -> bool:
    """True inside `inference_mode()`."""
    return _INFERENCE[0]


def is_int(value) -> bool:
    """An int or numpy integer, but not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def validate_float_array(x, name: str, ndim: int | None = None) -> np.ndarray:
    """x must be a non-empty, finite, floating-point ndarray (of rank ndim when given).
    Skipped inside inference_mode()."""
    if _INFERENCE[0]:
        return x
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(x).__name__}")
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{name} must have a floating-point dtype, got {x.dtype}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf ({int((~np.isfinite(x)).sum())} entries)")
    return x


def validate_weights(weights, name="weights", ndim=None, min_ndim=1):
    """Return `weights` as a numpy array of real numbers, or raise TypeError/ValueError naming `name`.
    Checks: numeric (integer or floating, not bool/complex/object) dtype, the rank (`ndim` exactly,
    or at least `min_ndim`), non-empty, and only finite values."""
    if isinstance(weights, np.ndarray):
        arr = weights
    else:
        try:
            arr = np.asarray(weights)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must be a numpy array of real numbers, got {type(weights).__name__}") from exc
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(f"{name} must hold real numbers (integer or floating dtype), got dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {arr.shape}")
    if ndim is None and min_ndim is not None and arr.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimension(s), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def validate_labels(labels, name: str, n: int | None = None, n_classes: int | None = None) -> np.ndarray:
    """labels must be a 1-D integer ndarray (of length n; values in [0, n_classes) when given)."""
    if not isinstance(labels, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(labels).__name__}")
    if labels.dtype == np.bool_ or not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"{name} must have an integer dtype, got {labels.dtype}")
    if labels.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {labels.shape}")
    if n is not None and len(labels) != n:
        raise ValueError(f"{name} must have length {n} (one label per row), got {len(labels)}")
    if labels.size == 0:
        raise ValueError(f"{name} must not be empty")
    if n_classes is not None and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"{name} must lie in [0, {n_classes}), got values in "
                         f"[{labels.min()}, {labels.max()}]")
    return labels


def validate_sparsity(sparsity, name="sparsity"):
    """Return `sparsity` as a float in [0, 1], or raise TypeError/ValueError naming `name`."""
    if isinstance(sparsity, (bool, np.bool_)) or not isinstance(sparsity, numbers.Real):
        raise TypeError(f"{name} must be a real number in [0, 1], got {sparsity!r} ({type(sparsity).__name__})")
    value = float(sparsity)
    if not (0.0 <= value <= 1.0):  # also false for NaN
        raise ValueError(f"{name} must be in [0, 1], got {sparsity!r}")
    return value


def validate_int(value, name, minimum=None):
    """Return `value` as a Python int (at least `minimum` when given), or raise naming `name`."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def validate_positive_int(value, name: str) -> int:
    """An int > 0 (TypeError for other types, ValueError for <= 0)."""
    if not is_int(value):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return int(value)


def validate_positive_float(value, name: str) -> float:
    """A finite real number > 0."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not (math.isfinite(float(value)) and float(value) > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def validate_mask(mask, shape, name="mask"):
    """Return `mask` as an array of 0/1 values of the given shape, or raise naming `name`."""
    mask = validate_weights(mask, name)
    if mask.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {mask.shape}")
    if not np.all((mask == 0) | (mask == 1)):
        raise ValueError(f"{name} must hold only 0 and 1")
    return mask


def make_rng(seed) -> np.random.Generator:
    """seed: a non-negative int or a np.random.Generator (never the global state)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if not is_int(seed):
        raise TypeError(f"seed must be an int or a np.random.Generator, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return np.random.default_rng(int(seed))


def mean_and_spread(values) -> tuple[float, float]:
    """(mean, sample standard deviation with ddof=1) of per-seed results; spread 0.0 for one value.
    Every comparison of the course reports its seeds this way."""
    arr = validate_weights(np.asarray(values, dtype=np.float64), "values", ndim=1)
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else 0.0


def median_times_ms(fns, repeats=20, warmup=3):
    """Median wall time in milliseconds of each callable in the dict `fns`, run interleaved (one of
    each per round) after `warmup` untimed rounds, so a slow spell of a shared machine hits all alike.
    Wrap model calls in inference_mode() (or call predict) so that checks are not timed."""
    if not isinstance(fns, dict) or not fns or not all(callable(f) for f in fns.values()):
        raise TypeError(f"fns must be a non-empty dict of callables, got {fns!r}")
    repeats = validate_int(repeats, "repeats", 1)
    warmup = validate_int(warmup, "warmup", 0)
    for _ in range(warmup):
        for f in fns.values():
            f()
    samples = {name: [] for name in fns}
    for _ in range(repeats):
        for name, f in fns.items():
            start = time.perf_counter()
            f()
            samples[name].append(time.perf_counter() - start)
    return {name: 1e3 * float(np.median(times)) for name, times in samples.items()}


# %% nbgrader={"grade": false, "grade_id": "module-base", "locked": true, "schema_version": 3, "solution": false}
#| export
try:  # in the package the checks live in tinytorch.support; in this notebook the cell above defined them
    from .support import (inference_mode, is_inference, is_int, make_rng, validate_float_array,
                          validate_labels, validate_positive_float, validate_positive_int)
except ImportError:
    pass
_is_int, _make_rng = is_int, make_rng
_check_float_array, _check_labels = validate_float_array, validate_labels
_check_positive_int, _check_positive_float = validate_positive_int, validate_positive_float


def _child_seeds(seed, count: int) -> list[int]:
    """Independent integer seeds for the layers of a model built from one seed."""
    if isinstance(seed, np.random.Generator):
        return [int(s) for s in seed.integers(0, 2**31 - 1, size=count)]
    _make_rng(seed)  # validates
    return [int(s) for s in np.random.SeedSequence(int(seed)).generate_state(count)]


class Module:
    """Base class: forward/backward, parameters as live arrays, gradients, state dicts."""

    _param_names: tuple[str, ...] = ()

    def forward(self, x):
        raise NotImplementedError(f"{type(self).__name__}.forward")

    def backward(self, grad_out):
        raise NotImplementedError(f"{type(self).__name__}.backward")

    def __call__(self, x):
        return self.forward(x)

    def parameters(self) -> dict[str, np.ndarray]:
        """{name: array}; the arrays ARE the weights (modify them in place)."""
        return {name: getattr(self, name) for name in self._param_names}

    def gradients(self) -> dict[str, np.ndarray]:
        """{name: gradient array}, same keys as parameters(); filled by backward()."""
        return {name: getattr(self, "grad_" + name) for name in self._param_names}

    def zero_grad(self) -> None:
        for grad in self.gradients().values():
            grad[...] = 0

    def num_parameters(self) -> int:
        return int(sum(p.size for p in self.parameters().values()))

    def state_dict(self) -> dict[str, np.ndarray]:
        """{name: copy of the parameter}: a snapshot that later training does not change."""
        return {name: p.copy() for name, p in self.parameters().items()}

    def load_state_dict(self, state: Mapping) -> None:
        """Copy arrays from state into the parameters in place, after checking that the keys,
        shapes and values fit (nothing is changed when anything is wrong)."""
        if not isinstance(state, Mapping):
            raise TypeError(f"state must be a dict of arrays, got {type(state).__name__}")
        params = self.parameters()
        missing = sorted(set(params) - set(state))
        unexpected = sorted(set(state) - set(params))
        if missing or unexpected:
            raise ValueError(f"state keys do not match the model: missing {missing}, unexpected {unexpected}")
        for name, target in params.items():
            value = state[name]
            if not isinstance(value, np.ndarray):
                raise TypeError(f"state[{name!r}] must be a numpy array, got {type(value).__name__}")
            if value.shape != target.shape:
                raise ValueError(f"state[{name!r}] has shape {value.shape}, expected {target.shape}")
            if not (np.issubdtype(value.dtype, np.floating) or np.issubdtype(value.dtype, np.integer)):
                raise TypeError(f"state[{name!r}] must be numeric, got dtype {value.dtype}")
            if not np.isfinite(value).all():
                raise ValueError(f"state[{name!r}] contains NaN or inf")
        for name, target in params.items():
            target[...] = state[name]

    def _need_forward(self, cached) -> None:
        if cached is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")

    def _check_grad(self, grad_out, shape: tuple) -> np.ndarray:
        grad_out = _check_float_array(grad_out, "grad_out")
        if grad_out.shape != tuple(shape):
            raise ValueError(f"grad_out must have the forward output's shape {tuple(shape)}, got {grad_out.shape}")
        return grad_out


def numerical_gradient(f: Callable[[], float], x: np.ndarray, eps: float = 1e-3) -> np.ndarray:
    """Central-difference gradient of the scalar f() with respect to the array x, which is
    perturbed in place one entry at a time (and restored). Returns float64, x's shape."""
    x = _check_float_array(x, "x")
    eps = _check_positive_float(eps, "eps")
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    grad = np.zeros(x.shape, dtype=np.float64)
    flat_view = x.reshape(-1)
    if not np.shares_memory(flat_view, x):
        raise ValueError("x must be contiguous so that it can be perturbed in place")
    for i in range(flat_view.size):
        original = flat_view[i].copy()
        flat_view[i] = original + eps
        up_step = float(flat_view[i]) - float(original)
        f_up = float(f())
        flat_view[i] = original - eps
        down_step = float(original) - float(flat_view[i])
        f_down = float(f())
        flat_view[i] = original
        grad.reshape(-1)[i] = (f_up - f_down) / (up_step + down_step)
    return grad


# %% [markdown]
# The graded tests below (and those of every later module) check bad input the
# same way: call a function and insist that it raises the right error. One given
# helper does that, `expect_error(error_types, fn, *args, match=None, **kwargs)`.
# It calls `fn(*args, **kwargs)` and returns the exception when it is one of
# `error_types` (and, with `match`, names that text in its message); otherwise it
# raises an `AssertionError` that says what was called, what was expected and
# what happened instead. It is exported to `tinytorch/testing.py` (the
# `#| export testing` line), so later modules write
# `from tinytorch.testing import expect_error`.

# %% nbgrader={"grade": false, "grade_id": "testing", "locked": true, "schema_version": 3, "solution": false}
#| export testing
import numpy as np


def _short_repr(value, limit: int = 60) -> str:
    """A one-line repr of an argument, cut to `limit` characters (big arrays by shape and dtype)."""
    text = " ".join(repr(value).split())
    if len(text) <= limit:
        return text
    if isinstance(value, np.ndarray):
        return f"array(shape={value.shape}, dtype={value.dtype})"
    return text[:limit - 3] + "..."


def describe_call(fn, args=(), kwargs=None) -> str:
    """How a call reads in a message: `name(arg, ..., key=value)`."""
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or _short_repr(fn, 40)
    parts = [_short_repr(a) for a in args] + [f"{k}={_short_repr(v)}" for k, v in (kwargs or {}).items()]
    return f"{name}({', '.join(parts)})"


def expect_error(error_types, fn, /, *args, match=None, **kwargs):
    """Call fn(*args, **kwargs); it must raise one of `error_types` (an exception class or a
    tuple of them) whose message contains `match` when given. Returns that exception; raises
    AssertionError saying what was called, what was expected and what happened otherwise."""
    expected = error_types if isinstance(error_types, tuple) else (error_types,)
    if not expected or not all(isinstance(t, type) and issubclass(t, BaseException) for t in expected):
        raise TypeError(f"error_types must be an exception class or a tuple of them, got {error_types!r}")
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    if match is not None and not isinstance(match, str):
        raise TypeError(f"match must be a string or None, got {type(match).__name__}")
    want = " or ".join(t.__name__ for t in expected) + ("" if match is None else f" naming {match!r}")
    try:
        fn(*args, **kwargs)
    except expected as err:
        if match is not None and match not in str(err):
            raise AssertionError(f"{describe_call(fn, args, kwargs)}: expected {want}, "
                                 f"got {type(err).__name__}: {err}") from err
        return err
    except Exception as err:
        raise AssertionError(f"{describe_call(fn, args, kwargs)}: expected {want}, "
                             f"got {type(err).__name__}: {err}") from err
    raise AssertionError(f"{describe_call(fn, args, kwargs)}: expected {want}, nothing was raised")


# %% [markdown]
# ## 3. The `Linear` layer — Exercise 1
#
# A fully connected layer maps a batch $X \in \mathbb{R}^{N\times d_{in}}$ to
# $$Y = X W^\top + b, \qquad W \in \mathbb{R}^{d_{out}\times d_{in}},\; b \in \mathbb{R}^{d_{out}},$$
# with the weight stored as `(out_features, in_features)` exactly like PyTorch
# (so row $j$ of $W$ holds the incoming weights of output neuron $j$ — the unit
# that *structured* pruning will remove in module 02).
#
# **Backward.** Let $G = \partial L/\partial Y \in \mathbb{R}^{N\times d_{out}}$.
# Since $Y_{nj} = \sum_i X_{ni} W_{ji} + b_j$, the chain rule gives
# $$\frac{\partial L}{\partial W} = G^\top X,\qquad
#   \frac{\partial L}{\partial b} = \sum_{n} G_{n,:},\qquad
#   \frac{\partial L}{\partial X} = G\,W .$$
# A quick shape check is the best mnemonic: $G^\top X$ is
# $(d_{out}\times N)(N\times d_{in})$, the shape of $W$; $G W$ is
# $(N\times d_{out})(d_{out}\times d_{in})$, the shape of $X$. The batch sum in
# $G^\top X$ happens inside the matrix product.
#
# **Initialisation.** Weights start from the He/Kaiming uniform distribution
# $U(-\sqrt{6/d_{in}}, \sqrt{6/d_{in}})$ (He et al., 2015), which keeps the
# variance of activations roughly constant through ReLU layers; biases start
# at zero.
#
# **Your task.** Fill in `forward` (one matrix expression) and `backward`.
# `backward` must **add** into the existing `self.grad_weight` and
# `self.grad_bias` arrays (`+=`), never rebind them: an optimiser holds
# references to those arrays, and `self.grad_weight = ...` would silently
# disconnect it. The input is already validated and cached in `self._x` for you.

# %% nbgrader={"grade": false, "grade_id": "linear", "locked": false, "schema_version": 3, "solution": true}
#| export
class Linear(Module):
    """Fully connected layer y = x @ weight.T + bias; weight (out_features, in_features)."""

    _param_names = ("weight", "bias")

    def __init__(self, in_features: int, out_features: int, seed=0):
        self.in_features = _check_positive_int(in_features, "in_features")
        self.out_features = _check_positive_int(out_features, "out_features")
        rng = _make_rng(seed)
        bound = math.sqrt(6.0 / self.in_features)  # He/Kaiming uniform for ReLU nets
        self.weight = rng.uniform(-bound, bound, size=(self.out_features, self.in_features)).astype(np.float32)
        self.bias = np.zeros(self.out_features, dtype=np.float32)
        self.grad_weight = np.zeros_like(self.weight)
        self.grad_bias = np.zeros_like(self.bias)
        self._x = None

    def __repr__(self) -> str:
        return f"Linear(in_features={self.in_features}, out_features={self.out_features})"

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x of shape (N, in_features) -> (N, out_features)."""
        x = _check_float_array(x, "x", ndim=2)
        if x.shape[1] != self.in_features:
            raise ValueError(f"x must have {self.in_features} columns (in_features), got shape {x.shape}")
        self._x = x  # cached for backward
        # Hint: one line with `@`, `.T` and broadcasting of the bias.
        ### BEGIN SOLUTION
        return x @ self.weight.T + self.bias
        ### END SOLUTION

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """grad_out = dL/dy (N, out_features). Adds dL/dW and dL/db into grad_weight and
        grad_bias (in place) and returns dL/dx (N, in_features)."""
        self._need_forward(self._x)
        grad_out = self._check_grad(grad_out, (self._x.shape[0], self.out_features))
        # Hint: use self._x; accumulate with `+=` into the existing gradient arrays.
        ### BEGIN SOLUTION
        self.grad_weight += grad_out.T @ self._x
        self.grad_bias += grad_out.sum(axis=0)
        return grad_out @ self.weight
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-linear-forward", "locked": true, "points": 5, "schema_version": 3, "solution": false}
# Linear.forward: shapes, values, initialisation
_layer = Linear(3, 2, seed=0)
assert _layer.weight.shape == (2, 3) and _layer.bias.shape == (2,), \
    f"expected weight (2, 3) and bias (2,), got {_layer.weight.shape} and {_layer.bias.shape}"
assert _layer.weight.dtype == np.float32, f"expected float32 weights, got {_layer.weight.dtype}"
_layer.weight[...] = np.array([[1.0, 2.0, 3.0], [-1.0, 0.0, 0.5]], dtype=np.float32)
_layer.bias[...] = np.array([0.5, -2.0], dtype=np.float32)
_x = np.array([[1.0, 0.0, -1.0], [2.0, 1.0, 0.0]], dtype=np.float32)
_out = _layer.forward(_x)
_expected = np.array([[-1.5, -3.5], [4.5, -4.0]], dtype=np.float32)
assert isinstance(_out, np.ndarray) and _out.shape == (2, 2), \
    f"expected an array of shape (2, 2), got {type(_out).__name__} {getattr(_out, 'shape', None)}"
assert np.allclose(_out, _expected), f"forward: expected\n{_expected}\ngot\n{_out}"
assert _out.dtype == np.float32, f"float32 input and weights should give float32 output, got {_out.dtype}"
assert np.allclose(_layer(_x), _expected), "calling the layer, layer(x), should run forward"

_big = Linear(64, 128, seed=3)
_bound = np.sqrt(6 / 64)
assert np.abs(_big.weight).max() <= _bound, f"He-uniform weights must lie within ±{_bound:.3f}"
assert np.array_equal(_big.weight, Linear(64, 128, seed=3).weight), "the same seed must give the same weights"
_x = np.random.default_rng(1).normal(size=(5, 64)).astype(np.float32)
_ref = _x.astype(np.float64) @ _big.weight.T.astype(np.float64) + _big.bias
assert np.allclose(_big.forward(_x), _ref, atol=1e-4), "forward on a (5, 64) batch disagrees with x @ W.T + b"
print("Linear.forward looks right")
### BEGIN HIDDEN TESTS
_lin = Linear(4, 3, seed=1)
# one sample works too
assert _lin.forward(np.ones((1, 4), np.float32)).shape == (1, 3), "a batch of one sample should work"
assert not np.array_equal(Linear(4, 3, seed=1).weight, Linear(4, 3, seed=2).weight), "different seeds, different weights"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "test-linear-bad-input", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# Linear: bad input gets a clear error (its own small cell, apart from the algorithm's points)
_lin = Linear(4, 3, seed=1)
_lin.weight[...] = 1.0
assert np.allclose(_lin.forward(np.ones((2, 4), np.float32)), 4.0), "forward of ones with weights of ones: expected 4.0 everywhere"
### BEGIN HIDDEN TESTS
expect_error(ValueError, _lin.forward, np.ones((2, 5), np.float32), match="x")
expect_error(ValueError, _lin.forward, np.ones(4, np.float32), match="x")
expect_error(TypeError, _lin.forward, np.ones((2, 4), np.int64), match="x")
expect_error(ValueError, _lin.forward, np.array([[1.0, np.nan, 0.0, 0.0]], np.float32), match="x")
expect_error(TypeError, _lin.forward, [[1.0, 2.0, 3.0, 4.0]], match="x")
expect_error(ValueError, Linear, 0, 3, match="in_features")
expect_error(TypeError, Linear, 3, 2.5, match="out_features")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "test-linear-backward", "locked": true, "points": 7, "schema_version": 3, "solution": false}
# Linear.backward: compare with finite differences; gradients accumulate in place
_rng = np.random.default_rng(0)
_layer = Linear(5, 4, seed=0)
_layer.bias[...] = _rng.normal(size=4).astype(np.float32)
_x = _rng.normal(size=(6, 5))          # float64 input: a precise check
_upstream = _rng.normal(size=(6, 4))   # L = sum(upstream * y), so dL/dy = upstream

def _loss_value():
    return float(np.sum(_upstream * _layer.forward(_x)))

_grads = _layer.gradients()            # taken BEFORE backward: must see the update (in place)
_layer.forward(_x)
_grad_x = _layer.backward(_upstream)
assert isinstance(_grad_x, np.ndarray) and _grad_x.shape == _x.shape, \
    f"backward must return dL/dx of shape {_x.shape}, got {getattr(_grad_x, 'shape', _grad_x)}"
_num_x = numerical_gradient(_loss_value, _x)
_num_w = numerical_gradient(_loss_value, _layer.weight)
_num_b = numerical_gradient(_loss_value, _layer.bias)
assert np.allclose(_grad_x, _num_x, rtol=1e-4, atol=1e-4), \
    f"dL/dx: max abs difference to finite differences {np.abs(_grad_x - _num_x).max():.3g}"
assert np.allclose(_grads["weight"], _num_w, rtol=1e-3, atol=1e-3), \
    f"dL/dW in layer.gradients()['weight']: max abs difference {np.abs(_grads['weight'] - _num_w).max():.3g}" \
    " (did you add into self.grad_weight in place?)"
assert np.allclose(_grads["bias"], _num_b, rtol=1e-3, atol=1e-3), \
    f"dL/db in layer.gradients()['bias']: max abs difference {np.abs(_grads['bias'] - _num_b).max():.3g}"
assert _layer.grad_weight is _grads["weight"], "grad_weight was rebound; update it in place with +="

# a second backward adds to the first (like PyTorch); zero_grad resets
_layer.forward(_x)
_layer.backward(_upstream)
assert np.allclose(_layer.grad_weight, 2 * _num_w, rtol=1e-3, atol=1e-3), \
    "a second backward should ADD to grad_weight (expected twice the gradient)"
_layer.zero_grad()
assert not _layer.grad_weight.any() and not _layer.grad_bias.any(), "zero_grad should reset the gradients"
print("Linear.backward matches finite differences")
### BEGIN HIDDEN TESTS
_lin = Linear(3, 2, seed=4)
_lin.forward(np.ones((4, 3), np.float32))
_g = _lin.backward(np.ones((4, 2), np.float32))
assert _g.dtype == np.float32, f"float32 gradients in, float32 gradient out; got {_g.dtype}"
assert np.allclose(_lin.grad_bias, [4.0, 4.0]), f"dL/db should sum over the batch: expected [4, 4], got {_lin.grad_bias}"
assert np.allclose(_g, np.ones((4, 2)) @ _lin.weight), "dL/dx should be grad_out @ weight"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "test-linear-backward-bad-input", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# Linear.backward: bad input gets a clear error (its own small cell, apart from the algorithm's points)
_lin = Linear(3, 2, seed=4)
_lin.forward(np.ones((4, 3), np.float32))
_g = _lin.backward(np.ones((4, 2), np.float32))
assert np.allclose(_lin.grad_bias, [4.0, 4.0]), f"dL/db should sum over the batch: expected [4, 4], got {_lin.grad_bias}"
### BEGIN HIDDEN TESTS
expect_error(ValueError, _lin.backward, np.ones((4, 3), np.float32), match="grad_out")  # wrong shape
### END HIDDEN TESTS

# %% [markdown]
# ## 4. ReLU, Flatten and Sequential (given)
#
# `ReLU` computes $\max(x, 0)$; its backward passes the gradient where the
# input was positive and blocks it elsewhere. `Flatten` turns `(N, C, H, W)`
# into `(N, C·H·W)` and back. `Sequential` chains layers: forward runs them in
# order, backward runs their `backward` in **reverse** order — that is all
# back-propagation is. Its parameter names are `"<index>.<name>"` (for example
# `"0.weight"`, `"2.bias"`), exactly as in PyTorch, so a `state_dict` from here
# reads like one from there.

# %% nbgrader={"grade": false, "grade_id": "layers", "locked": true, "schema_version": 3, "solution": false}
#| export
class ReLU(Module):
    """max(x, 0), element-wise."""

    def __init__(self):
        self._mask = None

    def __repr__(self) -> str:
        return "ReLU()"

    def forward(self, x: np.ndarray) -> np.ndarray:
        if is_inference():  # no check, nothing kept for backward: one pass over x
            return np.maximum(x, np.zeros((), dtype=x.dtype))
        x = _check_float_array(x, "x")
        self._mask = x > 0
        return np.where(self._mask, x, np.zeros((), dtype=x.dtype))

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        self._need_forward(self._mask)
        grad_out = self._check_grad(grad_out, self._mask.shape)
        return np.where(self._mask, grad_out, np.zeros((), dtype=grad_out.dtype))


class Flatten(Module):
    """(N, C, H, W) -> (N, C*H*W) (any trailing dims are flattened)."""

    def __init__(self):
        self._shape = None

    def __repr__(self) -> str:
        return "Flatten()"

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = _check_float_array(x, "x")
        if x.ndim < 2:
            raise ValueError(f"x must have a batch dimension and at least one more, got shape {x.shape}")
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        self._need_forward(self._shape)
        grad_out = self._check_grad(grad_out, (self._shape[0], int(np.prod(self._shape[1:]))))
        return grad_out.reshape(self._shape)


class Sequential(Module):
    """Layers applied in order; parameters named '<index>.<name>' like PyTorch."""

    def __init__(self, *layers: Module):
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"layers[{i}] must be a Module, got {type(layer).__name__}")
        self.layers = list(layers)

    def __repr__(self) -> str:
        inner = "\n".join(f"  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential(\n{inner}\n)"

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index: int) -> Module:
        return self.layers[index]

    def __iter__(self):
        return iter(self.layers)

    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        for layer in reversed(self.layers):
            grad_out = layer.backward(grad_out)
        return grad_out

    def parameters(self) -> dict[str, np.ndarray]:
        return {f"{i}.{name}": p for i, layer in enumerate(self.layers)
                for name, p in layer.parameters().items()}

    def gradients(self) -> dict[str, np.ndarray]:
        return {f"{i}.{name}": g for i, layer in enumerate(self.layers)
                for name, g in layer.gradients().items()}


# %% [markdown]
# ## 5. Convolution as one matrix product: im2col (given)
#
# A 2-D convolution (really a cross-correlation, as in every deep-learning
# library) with weight $K \in \mathbb{R}^{C_{out}\times C_{in}\times k_h\times k_w}$
# computes, for every output position,
# $$Y_{n,o,i,j} = b_o + \sum_{c,u,v} K_{o,c,u,v}\, X_{n,c,\,i s + u,\, j s + v}$$
# on the zero-padded input ($s$ is the stride). Output size:
# $H_{out} = \lfloor (H + 2p - k_h)/s \rfloor + 1$, and likewise for the width.
#
# **im2col** (Chellapilla et al., 2006) copies every receptive field — a
# $C_{in}\cdot k_h\cdot k_w$ patch — into one row of a matrix
# $\mathrm{cols} \in \mathbb{R}^{(N H_{out} W_{out})\times(C_{in}k_hk_w)}$.
# Flatten the kernel into $K_{mat} \in \mathbb{R}^{C_{out}\times(C_{in}k_hk_w)}$ and
# the convolution *is* a `Linear` layer applied to the patches:
# $$Y_{mat} = \mathrm{cols}\,K_{mat}^\top + b .$$
# So the backward pass is the one you just derived: $\partial L/\partial K_{mat}
# = G^\top\,\mathrm{cols}$, $\partial L/\partial b = \sum G$, and
# $\partial L/\partial\,\mathrm{cols} = G\,K_{mat}$. The only new piece is
# **col2im**: every input pixel appears in several patches, so the patch
# gradients are *scatter-added* back into an image-shaped array (and the
# padding is cut off). This one-big-GEMM view matters later in the course: a
# pruned conv filter is a pruned row of $K_{mat}$, and sparse kernels work on
# exactly this matrix.
#
# Max pooling keeps the largest value of each $k\times k$ window; its backward
# sends each window's gradient to the position that won (ties go to the first).

# %% nbgrader={"grade": false, "grade_id": "conv", "locked": true, "schema_version": 3, "solution": false}
#| export
def _pair(value, name: str) -> tuple[int, int]:
    if _is_int(value):
        value = (value, value)
    if not (isinstance(value, tuple) and len(value) == 2 and all(_is_int(v) for v in value)):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    return int(value[0]), int(value[1])


def im2col(x: np.ndarray, kernel_size, stride: int = 1, padding: int = 0) -> tuple[np.ndarray, tuple[int, int]]:
    """(N, C, H, W) -> (cols of shape (N*H_out*W_out, C*kh*kw), (H_out, W_out)).
    Row n*H_out*W_out + i*W_out + j holds the receptive field of output (n, :, i, j)."""
    x = _check_float_array(x, "x", ndim=4)
    kh, kw = _pair(kernel_size, "kernel_size")
    stride = _check_positive_int(stride, "stride")
    if not _is_int(padding) or padding < 0:
        raise ValueError(f"padding must be a non-negative int, got {padding!r}")
    n, c, h, w = x.shape
    h_out, w_out = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1
    if kh <= 0 or kw <= 0 or h_out <= 0 or w_out <= 0:
        raise ValueError(f"kernel_size {(kh, kw)} does not fit input of shape {x.shape} with padding {padding}")
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
    windows = windows[:, :, ::stride, ::stride][:, :, :h_out, :w_out]       # (N, C, Ho, Wo, kh, kw)
    cols = windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * h_out * w_out, c * kh * kw)
    return cols, (h_out, w_out)


def col2im(cols: np.ndarray, x_shape: tuple, kernel_size, stride: int = 1, padding: int = 0) -> np.ndarray:
    """Adjoint of im2col: scatter-add patch rows back into an array of shape x_shape."""
    cols = _check_float_array(cols, "cols", ndim=2)
    n, c, h, w = x_shape
    kh, kw = _pair(kernel_size, "kernel_size")
    h_out, w_out = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1
    if cols.shape != (n * h_out * w_out, c * kh * kw):
        raise ValueError(f"cols must have shape {(n * h_out * w_out, c * kh * kw)} for x_shape {tuple(x_shape)}, "
                         f"got {cols.shape}")
    patches = cols.reshape(n, h_out, w_out, c, kh, kw).transpose(0, 3, 4, 5, 1, 2)  # (N, C, kh, kw, Ho, Wo)
    padded = np.zeros((n, c, h + 2 * padding, w + 2 * padding), dtype=cols.dtype)
    for u in range(kh):
        for v in range(kw):
            padded[:, :, u:u + stride * h_out:stride, v:v + stride * w_out:stride] += patches[:, :, u, v]
    return padded[:, :, padding:padding + h, padding:padding + w]


class Conv2d(Module):
    """2-D convolution (cross-correlation) on NCHW input via im2col; weight (out, in, kh, kw)."""

    _param_names = ("weight", "bias")

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride: int = 1,
                 padding: int = 0, seed=0):
        self.in_channels = _check_positive_int(in_channels, "in_channels")
        self.out_channels = _check_positive_int(out_channels, "out_channels")
        self.kernel_size = _pair(kernel_size, "kernel_size")
        if min(self.kernel_size) <= 0:
            raise ValueError(f"kernel_size must be positive, got {kernel_size!r}")
        self.stride = _check_positive_int(stride, "stride")
        if not _is_int(padding) or padding < 0:
            raise ValueError(f"padding must be a non-negative int, got {padding!r}")
        self.padding = int(padding)
        rng = _make_rng(seed)
        kh, kw = self.kernel_size
        bound = math.sqrt(6.0 / (self.in_channels * kh * kw))
        self.weight = rng.uniform(-bound, bound, size=(self.out_channels, self.in_channels, kh, kw)).astype(np.float32)
        self.bias = np.zeros(self.out_channels, dtype=np.float32)
        self.grad_weight = np.zeros_like(self.weight)
        self.grad_bias = np.zeros_like(self.bias)
        self._cache = None

    def __repr__(self) -> str:
        return (f"Conv2d({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding})")

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = _check_float_array(x, "x", ndim=4)
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x must have {self.in_channels} channels (in_channels), got shape {x.shape}")
        cols, (h_out, w_out) = im2col(x, self.kernel_size, self.stride, self.padding)
        out = cols @ self.weight.reshape(self.out_channels, -1).T + self.bias       # (N*Ho*Wo, C_out)
        self._cache = (x.shape, cols, (h_out, w_out))
        return np.ascontiguousarray(out.reshape(x.shape[0], h_out, w_out, self.out_channels).transpose(0, 3, 1, 2))

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        self._need_forward(self._cache)
        x_shape, cols, (h_out, w_out) = self._cache
        grad_out = self._check_grad(grad_out, (x_shape[0], self.out_channels, h_out, w_out))
        g = grad_out.transpose(0, 2, 3, 1).reshape(-1, self.out_channels)           # (N*Ho*Wo, C_out)
        self.grad_weight += (g.T @ cols).reshape(self.weight.shape)
        self.grad_bias += g.sum(axis=0)
        grad_cols = g @ self.weight.reshape(self.out_channels, -1)
        return col2im(grad_cols, x_shape, self.kernel_size, self.stride, self.padding)


class MaxPool2d(Module):
    """Max over non-overlapping k x k windows (stride k); trailing rows/columns that do not
    fill a window are dropped, as in PyTorch."""

    def __init__(self, kernel_size: int = 2):
        self.kernel_size = _check_positive_int(kernel_size, "kernel_size")
        self._cache = None

    def __repr__(self) -> str:
        return f"MaxPool2d(kernel_size={self.kernel_size})"

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = _check_float_array(x, "x", ndim=4)
        k = self.kernel_size
        n, c, h, w = x.shape
        h_out, w_out = h // k, w // k
        if h_out == 0 or w_out == 0:
            raise ValueError(f"x of shape {x.shape} is smaller than the pooling window {k}")
        windows = (x[:, :, :h_out * k, :w_out * k].reshape(n, c, h_out, k, w_out, k)
                   .transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h_out, w_out, k * k))
        winner = windows.argmax(axis=-1)[..., None]
        self._cache = (x.shape, winner)
        return np.take_along_axis(windows, winner, axis=-1)[..., 0]

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        self._need_forward(self._cache)
        x_shape, winner = self._cache
        n, c, h, w = x_shape
        k = self.kernel_size
        h_out, w_out = h // k, w // k
        grad_out = self._check_grad(grad_out, (n, c, h_out, w_out))
        windows = np.zeros((n, c, h_out, w_out, k * k), dtype=grad_out.dtype)
        np.put_along_axis(windows, winner, grad_out[..., None], axis=-1)
        grad_x = np.zeros(x_shape, dtype=grad_out.dtype)
        grad_x[:, :, :h_out * k, :w_out * k] = (windows.reshape(n, c, h_out, w_out, k, k)
                                                .transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h_out * k, w_out * k))
        return grad_x


# %% [markdown]
# The given convolution is checked the same way as your `Linear`: against
# finite differences, on a small float64 input with stride 2 and padding 1.

# %%
conv_check = Conv2d(2, 3, kernel_size=3, stride=2, padding=1, seed=1)
conv_rng = np.random.default_rng(2)
conv_x = conv_rng.normal(size=(2, 2, 5, 5))
conv_g = conv_rng.normal(size=conv_check.forward(conv_x).shape)
conv_check.forward(conv_x)
conv_dx = conv_check.backward(conv_g)


def conv_loss():
    return float(np.sum(conv_g * conv_check.forward(conv_x)))


conv_num_x = numerical_gradient(conv_loss, conv_x)
conv_num_w = numerical_gradient(conv_loss, conv_check.weight)
print(f"Conv2d output shape for input {conv_x.shape}: {conv_g.shape}")
print(f"max |dL/dx - finite difference| = {np.abs(conv_dx - conv_num_x).max():.2e}")
print(f"max |dL/dK - finite difference| = {np.abs(conv_check.grad_weight - conv_num_w).max():.2e}")

# %% [markdown]
# ## 6. Softmax cross-entropy — Exercise 2
#
# A classifier outputs one **logit** $z_c$ per class. Softmax turns them into
# probabilities and cross-entropy scores the probability of the true class $y$:
# $$p_c = \frac{e^{z_c}}{\sum_{k} e^{z_k}}, \qquad
#   \ell(z, y) = -\log p_y = -z_y + \log\sum_k e^{z_k},$$
# averaged over the batch: $L = \frac1N\sum_n \ell(z^{(n)}, y^{(n)})$.
#
# **Numerical stability.** $e^{z}$ overflows `float32` once $z$ exceeds
# $\log(\text{largest float32})$ (printed below). Both
# formulas are unchanged when a constant is subtracted from every logit of a row,
# so subtract the row maximum $m = \max_k z_k$ first (the *log-sum-exp trick*):
# $\log\sum_k e^{z_k} = m + \log\sum_k e^{z_k - m}$; now every exponent is
# $\le 0$ and the largest term is exactly 1.
#
# **Gradient.** Differentiating $\ell = -z_y + \log\sum_k e^{z_k}$ gives
# $\partial \ell/\partial z_c = p_c - [c = y]$: *predicted probability minus the
# one-hot target*. For the batch mean,
# $$\frac{\partial L}{\partial Z} = \frac{1}{N}\left(P - \mathrm{onehot}(y)\right).$$
# The loss has no parameters; its `backward()` takes no argument and returns
# $\partial L/\partial Z$, which starts the backward pass through the network.
#
# The cell below shows the problem on logits near 1000: the naive formula
# returns NaN, the shifted one the right answer.

# %%
float32_limit = float(np.log(np.finfo(np.float32).max))
print(f"exp(z) overflows float32 for z > {float32_limit:.2f}")
demo_logits = np.array([1000.0, 1001.0, 1002.0], dtype=np.float32)
with np.errstate(over="ignore", invalid="ignore"):
    naive = np.exp(demo_logits) / np.exp(demo_logits).sum()
shifted_exps = np.exp(demo_logits - demo_logits.max())
print("naive   softmax:", naive)
print("shifted softmax:", shifted_exps / shifted_exps.sum())

# %% [markdown]
# **Your task.** Implement `softmax` (stable, row-wise) and
# `CrossEntropyLoss.forward` / `backward`. In `forward`, store the
# probabilities in `self._probs` for `backward` (the labels are stored for you)
# and return the mean loss as a Python `float`. Hint: `labels` index one column
# per row with `array[np.arange(N), labels]`.

# %% nbgrader={"grade": false, "grade_id": "cross-entropy", "locked": false, "schema_version": 3, "solution": true}
#| export
def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, C) logits, computed stably (subtract each row's max)."""
    logits = _check_float_array(logits, "logits", ndim=2)
    # Hint: subtract each row's maximum (keepdims=True keeps it broadcastable) before np.exp.
    ### BEGIN SOLUTION
    exps = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exps / exps.sum(axis=1, keepdims=True)
    ### END SOLUTION


class CrossEntropyLoss:
    """Mean softmax cross-entropy of (N, C) logits against N integer labels."""

    def __init__(self):
        self._probs = None
        self._labels = None

    def __repr__(self) -> str:
        return "CrossEntropyLoss()"

    def __call__(self, logits: np.ndarray, labels: np.ndarray) -> float:
        return self.forward(logits, labels)

    def forward(self, logits: np.ndarray, labels: np.ndarray) -> float:
        """Mean of -log softmax(logits)[n, labels[n]] over the batch, as a float."""
        logits = _check_float_array(logits, "logits", ndim=2)
        labels = _check_labels(labels, "labels", n=logits.shape[0], n_classes=logits.shape[1])
        self._labels = labels
        # Hint: log-sum-exp on the shifted logits; keep the probabilities in self._probs.
        ### BEGIN SOLUTION
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(shifted).sum(axis=1))
        self._probs = np.exp(shifted - log_norm[:, None])
        picked = shifted[np.arange(len(labels)), labels]
        return float(np.mean(log_norm - picked))
        ### END SOLUTION

    def backward(self) -> np.ndarray:
        """dL/dlogits = (softmax(logits) - onehot(labels)) / N, shape (N, C)."""
        if self._labels is None:
            raise RuntimeError("CrossEntropyLoss.backward called before forward")
        # Hint: start from a copy of self._probs (never modify it in place).
        ### BEGIN SOLUTION
        grad_logits = self._probs.copy()
        grad_logits[np.arange(len(self._labels)), self._labels] -= 1
        return grad_logits / len(self._labels)
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-softmax", "locked": true, "points": 3, "schema_version": 3, "solution": false}
# softmax: a probability distribution per row, stable for huge logits
_z = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], dtype=np.float32)
_p = softmax(_z)
_expected = np.exp([1.0, 2.0, 3.0]) / np.exp([1.0, 2.0, 3.0]).sum()
assert isinstance(_p, np.ndarray) and _p.shape == (2, 3), f"expected shape (2, 3), got {getattr(_p, 'shape', _p)}"
assert np.allclose(_p[0], _expected, atol=1e-6), f"softmax([1, 2, 3]): expected {_expected}, got {_p[0]}"
assert np.allclose(_p[1], 1 / 3), f"equal logits should give equal probabilities, got {_p[1]}"
assert np.allclose(_p.sum(axis=1), 1.0), f"every row should sum to 1, got {_p.sum(axis=1)}"
try:
    with np.errstate(over="raise", invalid="raise"):
        _huge = softmax(np.array([[1000.0, 1001.0, 1002.0]], dtype=np.float32))
except FloatingPointError as _err:
    raise AssertionError(f"softmax overflowed on logits near 1000 ({_err}): subtract the row max first")
assert np.allclose(_huge[0], _expected, atol=1e-6), f"softmax must not change when a constant is added: got {_huge[0]}"
print("softmax looks right")
### BEGIN HIDDEN TESTS
with np.errstate(under="ignore"):
    _q = softmax(np.array([[-1000.0, 0.0], [5.0, -5.0]]))
assert np.all(np.isfinite(_q)) and np.allclose(_q.sum(axis=1), 1), f"very negative logits must not give NaN: {_q}"
assert np.allclose(_q[0], [0.0, 1.0]), f"softmax([-1000, 0]) should be [0, 1], got {_q[0]}"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "test-cross-entropy", "locked": true, "points": 7, "schema_version": 3, "solution": false}
# CrossEntropyLoss: value, stability, gradient = (p - onehot) / N
_loss_fn = CrossEntropyLoss()
_logits = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]], dtype=np.float32)
_labels = np.array([0, 2])
_value = _loss_fn(_logits, _labels)
_probs = np.exp(_logits) / np.exp(_logits).sum(axis=1, keepdims=True)
_expected = -np.mean(np.log(_probs[[0, 1], [0, 2]]))
assert isinstance(_value, float), f"the loss should be a Python float, got {type(_value).__name__}"
assert abs(_value - _expected) < 1e-5, f"loss: expected {_expected:.6f}, got {_value:.6f}"

_grad = _loss_fn.backward()
_onehot = np.eye(3)[_labels]
assert isinstance(_grad, np.ndarray) and _grad.shape == (2, 3), f"expected a (2, 3) gradient, got {getattr(_grad, 'shape', _grad)}"
assert np.allclose(_grad, (_probs - _onehot) / 2, atol=1e-6), f"dL/dlogits: expected\n{(_probs - _onehot) / 2}\ngot\n{_grad}"

try:
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        _big = _loss_fn(np.array([[1000.0, 0.0], [0.0, 1000.0]], dtype=np.float32), np.array([1, 1]))
except FloatingPointError as _err:
    raise AssertionError(f"the loss overflowed for logits of 1000 ({_err}): use the log-sum-exp trick")
assert abs(_big - 500.0) < 1e-2, f"logits [[1000, 0], [0, 1000]] with labels [1, 1]: expected 500.0, got {_big}"

# finite differences on a random float64 batch
_rng = np.random.default_rng(0)
_z = _rng.normal(size=(4, 5)) * 3
_y = np.array([0, 4, 2, 2])
_loss_fn(_z, _y)
_analytic = _loss_fn.backward()
_numeric = numerical_gradient(lambda: _loss_fn.forward(_z, _y), _z, eps=1e-5)
assert np.allclose(_analytic, _numeric, atol=1e-6), \
    f"backward disagrees with finite differences: max difference {np.abs(_analytic - _numeric).max():.3g}"
print("CrossEntropyLoss matches its definition and finite differences")
### BEGIN HIDDEN TESTS
assert abs(CrossEntropyLoss()(np.zeros((3, 10)), np.array([1, 2, 3])) - np.log(10)) < 1e-9, \
    "uniform logits over 10 classes should give log(10)"
_g = CrossEntropyLoss()
_g(np.array([[0.0, 0.0]], dtype=np.float32), np.array([0]))
assert np.allclose(_g.backward().sum(axis=1), 0.0), "each row of the gradient should sum to zero"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "test-cross-entropy-bad-input", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# softmax / CrossEntropyLoss: bad input gets a clear error
_loss_fn = CrossEntropyLoss()
assert abs(_loss_fn(np.zeros((2, 3)), np.array([0, 2])) - np.log(3)) < 1e-9, "uniform logits over 3 classes give log(3)"
### BEGIN HIDDEN TESTS
expect_error(ValueError, _loss_fn, np.zeros((2, 3)), np.array([0, 3]), match="labels")
expect_error(ValueError, _loss_fn, np.zeros((2, 3)), np.array([0, -1]), match="labels")
expect_error(TypeError, _loss_fn, np.zeros((2, 3)), np.array([0.0, 1.0]), match="labels")
expect_error(ValueError, _loss_fn, np.zeros((2, 3)), np.array([0, 1, 2]), match="labels")
expect_error(ValueError, _loss_fn, np.array([[np.nan, 0.0, 0.0]]), np.array([0]), match="logits")
expect_error(ValueError, _loss_fn, np.zeros(3), np.array([0]), match="logits")
expect_error(ValueError, softmax, np.ones(3, np.float32), match="logits")
expect_error(TypeError, softmax, np.ones((2, 2), np.int32), match="logits")
expect_error(ValueError, softmax, np.array([[np.inf, 0.0]]), match="logits")
### END HIDDEN TESTS

# %% [markdown]
# ## 7. Accuracy — Exercise 3
#
# Accuracy is the fraction of samples whose **largest logit** belongs to the true
# class: $\frac1N\sum_n [\arg\max_c z^{(n)}_c = y^{(n)}]$. (Softmax is monotone,
# so the arg-max of the logits equals the arg-max of the probabilities.) Ties
# go to the smallest class index, as with `np.argmax`.
#
# **Your task.** Implement `accuracy(logits, labels)`, including the input
# checks this time: `logits` must be a 2-D floating-point array and `labels` a
# 1-D integer array with one label per row. Hint: the helpers
# `_check_float_array(x, name, ndim)` and `_check_labels(labels, name, n)` from
# section 2 raise the right errors with the right messages.

# %% nbgrader={"grade": false, "grade_id": "accuracy", "locked": false, "schema_version": 3, "solution": true}
#| export
def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Fraction (a float in [0, 1]) of rows of (N, C) logits whose arg-max equals the label.
    Raises TypeError/ValueError naming the argument for bad input."""
    # Hint: validate both arguments first, then compare np.argmax(..., axis=1) with the labels.
    ### BEGIN SOLUTION
    logits = _check_float_array(logits, "logits", ndim=2)
    labels = _check_labels(labels, "labels", n=logits.shape[0])
    return float(np.mean(np.argmax(logits, axis=1) == labels))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-accuracy", "locked": true, "points": 5, "schema_version": 3, "solution": false}
_logits = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]], dtype=np.float32)
_acc = accuracy(_logits, np.array([1, 0, 0, 0]))
assert isinstance(_acc, float), f"accuracy should return a Python float, got {type(_acc).__name__}"
assert abs(_acc - 0.75) < 1e-12, f"3 of 4 predictions are right: expected 0.75, got {_acc}"
assert accuracy(_logits, np.array([0, 1, 0, 1])) == 0.0, "no prediction is right: expected 0.0"
assert accuracy(_logits, np.array([1, 0, 1, 0])) == 1.0, "every prediction is right: expected 1.0"
print("accuracy looks right")
### BEGIN HIDDEN TESTS
assert accuracy(np.array([[1.0, 1.0, 0.0]]), np.array([0])) == 1.0, "ties go to the smallest index (np.argmax)"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "test-accuracy-bad-input", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# accuracy: bad input gets a clear error
_logits = np.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0], [0.0, 1.0]])
assert accuracy(_logits, np.array([0, 1, 1, 1])) == 0.75, "3 of 4 rows right: expected 0.75"
### BEGIN HIDDEN TESTS
expect_error(ValueError, accuracy, _logits, np.array([1, 0, 0]), match="labels")
expect_error(TypeError, accuracy, _logits, np.array([1.0, 0.0, 0.0, 0.0]), match="labels")
expect_error(ValueError, accuracy, np.array([0.1, 0.9]), np.array([1]), match="logits")
expect_error(TypeError, accuracy, np.array([[1, 0], [0, 1]]), np.array([0, 1]), match="logits")
expect_error(ValueError, accuracy, np.array([[np.nan, 0.0]]), np.array([0]), match="logits")
expect_error(TypeError, accuracy, [[0.1, 0.9]], np.array([1]), match="logits")
### END HIDDEN TESTS

# %% [markdown]
# ## 8. Optimisers: SGD with momentum — Exercise 4 — and Adam (given)
#
# Plain gradient descent moves every parameter against its gradient,
# $\theta \leftarrow \theta - \eta\, g$. **Momentum** (Polyak, 1964; Sutskever et
# al., 2013) keeps a running velocity so that consistent directions accelerate
# and oscillating ones cancel:
# $$v \leftarrow \mu\, v + g, \qquad \theta \leftarrow \theta - \eta\, v,$$
# with $v$ starting at zero (this is PyTorch's formulation of `SGD(momentum=μ)`).
#
# The optimiser is built from `model.parameters()` and `model.gradients()`: two
# dicts of the **live** arrays. `step()` must change the parameter arrays **in
# place** (`p -= ...`, or `p[...] = ...`), so that the model — and any pruning
# mask applied right after the step with `w *= mask` — sees the update. Writing
# `self.params[name] = p - lr * v` would create a new array the model never sees.
#
# **Your task.** Implement `SGD.step`. The velocity buffers `self.velocity[name]`
# (zeros, one per parameter) are created for you; update them in place too.

# %% nbgrader={"grade": false, "grade_id": "optimizer-base", "locked": true, "schema_version": 3, "solution": false}
#| export
class _Optimizer:
    """Holds the live parameter and gradient dicts (same keys, same shapes)."""

    def __init__(self, params: Mapping, grads: Mapping, lr: float):
        if not isinstance(params, Mapping) or not isinstance(grads, Mapping):
            raise TypeError(f"params and grads must be dicts of arrays (model.parameters(), model.gradients()), "
                            f"got {type(params).__name__} and {type(grads).__name__}")
        if set(params) != set(grads):
            raise ValueError(f"params and grads must have the same keys, got {sorted(params)} and {sorted(grads)}")
        if not params:
            raise ValueError("params must not be empty")
        for name in params:
            p, g = params[name], grads[name]
            if not isinstance(p, np.ndarray) or not isinstance(g, np.ndarray):
                raise TypeError(f"params[{name!r}] and grads[{name!r}] must be numpy arrays")
            if not np.issubdtype(p.dtype, np.floating):
                raise TypeError(f"params[{name!r}] must be floating-point, got {p.dtype}")
            if p.shape != g.shape:
                raise ValueError(f"grads[{name!r}] has shape {g.shape}, params[{name!r}] has {p.shape}")
        self.params = dict(params)
        self.grads = dict(grads)
        self.lr = _check_positive_float(lr, "lr")

    def zero_grad(self) -> None:
        for g in self.grads.values():
            g[...] = 0

    def step(self) -> None:
        raise NotImplementedError


# %% nbgrader={"grade": false, "grade_id": "sgd", "locked": false, "schema_version": 3, "solution": true}
#| export
class SGD(_Optimizer):
    """Stochastic gradient descent with momentum (PyTorch's form): v = mu*v + g; p -= lr*v."""

    def __init__(self, params: Mapping, grads: Mapping, lr: float, momentum: float = 0.9):
        super().__init__(params, grads, lr)
        if isinstance(momentum, (bool, np.bool_)) or not isinstance(momentum, (int, float, np.number)):
            raise TypeError(f"momentum must be a number in [0, 1), got {type(momentum).__name__}")
        if not 0.0 <= float(momentum) < 1.0:
            raise ValueError(f"momentum must lie in [0, 1), got {momentum!r}")
        self.momentum = float(momentum)
        self.velocity = {name: np.zeros_like(p) for name, p in self.params.items()}

    def step(self) -> None:
        """One update of every parameter, in place."""
        # Hint: loop over self.params; for each name update self.velocity[name] with *= and +=,
        # then the parameter with -=.
        ### BEGIN SOLUTION
        for name, param in self.params.items():
            velocity = self.velocity[name]
            velocity *= self.momentum
            velocity += self.grads[name]
            param -= self.lr * velocity
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-sgd", "locked": true, "points": 4, "schema_version": 3, "solution": false}
_w = np.array([1.0, -2.0, 3.0], dtype=np.float32)
_gw = np.array([0.5, 0.5, -1.0], dtype=np.float32)
_params, _grads = {"w": _w}, {"w": _gw}
_opt = SGD(_params, _grads, lr=0.1, momentum=0.9)
_opt.step()
assert _params["w"] is _w, "step must update the parameter array in place, not replace it in the dict"
assert np.allclose(_w, [0.95, -2.05, 3.1]), f"after one step (v = g): expected [0.95, -2.05, 3.1], got {_w}"
_opt.step()   # v = 0.9 * g + g = 1.9 g
assert np.allclose(_w, [0.855, -2.145, 3.29]), \
    f"after two steps with the same gradient (v = 1.9 g): expected [0.855, -2.145, 3.29], got {_w}"
assert _w.dtype == np.float32, f"the parameter should stay float32, got {_w.dtype}"
print("SGD with momentum looks right")
### BEGIN HIDDEN TESTS
# momentum 0 is plain gradient descent
_w0 = np.ones((2, 2), np.float32)
_g0 = np.full((2, 2), 2.0, np.float32)
_plain = SGD({"a": _w0}, {"a": _g0}, lr=0.25, momentum=0.0)
_plain.step(); _plain.step()
assert np.allclose(_w0, 0.0), f"two plain steps of 0.25 * 2 from 1: expected 0, got {_w0}"
# a mask applied after the step keeps pruned weights at zero, and the velocity keeps decaying
_w1 = np.array([1.0, 1.0], np.float32)
_g1 = np.array([1.0, 1.0], np.float32)
_mask = np.array([1.0, 0.0], np.float32)
_masked = SGD({"w": _w1}, {"w": _g1}, lr=0.1, momentum=0.5)
for _ in range(3):
    _masked.step()
    _w1 *= _mask
assert _w1[1] == 0.0 and np.isclose(_w1[0], 1 - 0.1 * (1 + 1.5 + 1.75)), f"masked SGD run went wrong: {_w1}"
# the velocity is updated in place as well
assert _masked.velocity["w"] is not None and np.allclose(_masked.velocity["w"], 1.75), \
    f"velocity after three steps with mu=0.5: expected 1.75, got {_masked.velocity['w']}"
# several parameters are all updated
_pa, _pb = np.zeros(2, np.float32), np.zeros(3, np.float32)
_multi = SGD({"a": _pa, "b": _pb}, {"a": np.ones(2, np.float32), "b": -np.ones(3, np.float32)}, lr=1.0, momentum=0.9)
_multi.step()
assert np.allclose(_pa, -1) and np.allclose(_pb, 1), f"every parameter must be updated, got {_pa} and {_pb}"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "test-sgd-bad-input", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# SGD: bad input gets a clear error (its own small cell, apart from the algorithm's points)
_w = np.array([1.0, -2.0], dtype=np.float32)
_gw = np.array([0.5, 0.5], dtype=np.float32)
SGD({"w": _w}, {"w": _gw}, lr=0.1, momentum=0.0).step()
assert np.allclose(_w, [0.95, -2.05]), f"one plain step of 0.1 * [0.5, 0.5]: expected [0.95, -2.05], got {_w}"
### BEGIN HIDDEN TESTS
expect_error(ValueError, SGD, {"w": _w}, {"w": _gw}, lr=-1.0, match="lr")
expect_error(ValueError, SGD, {"w": _w}, {"w": _gw}, lr=0.1, momentum=1.5, match="momentum")
expect_error(ValueError, SGD, {"w": _w}, {"v": _gw}, lr=0.1, match="keys")
### END HIDDEN TESTS

# %% [markdown]
# **Adam** (Kingma & Ba, 2015) keeps per-parameter running means of the
# gradient and of its square, corrects their start-up bias, and scales each
# step by the inverse root-mean-square gradient:
# $$m \leftarrow \beta_1 m + (1-\beta_1) g,\quad s \leftarrow \beta_2 s + (1-\beta_2) g^2,\quad
#   \theta \leftarrow \theta - \eta\,\frac{m/(1-\beta_1^t)}{\sqrt{s/(1-\beta_2^t)} + \epsilon}.$$
# Adapting the step size per weight makes it forgiving about the learning rate,
# which is why the training loop below uses it by default.

# %% nbgrader={"grade": false, "grade_id": "adam", "locked": true, "schema_version": 3, "solution": false}
#| export
class Adam(_Optimizer):
    """Adam with bias correction; updates the parameter arrays in place."""

    def __init__(self, params: Mapping, grads: Mapping, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        super().__init__(params, grads, lr)
        if not (isinstance(betas, tuple) and len(betas) == 2 and all(0.0 <= float(b) < 1.0 for b in betas)):
            raise ValueError(f"betas must be a pair of numbers in [0, 1), got {betas!r}")
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps = _check_positive_float(eps, "eps")
        self.t = 0
        self.m = {name: np.zeros_like(p) for name, p in self.params.items()}
        self.s = {name: np.zeros_like(p) for name, p in self.params.items()}

    def step(self) -> None:
        self.t += 1
        beta1, beta2 = self.betas
        step_size = self.lr * math.sqrt(1 - beta2 ** self.t) / (1 - beta1 ** self.t)
        eps_hat = self.eps * math.sqrt(1 - beta2 ** self.t)
        for name, param in self.params.items():
            grad = self.grads[name]
            m, s = self.m[name], self.s[name]
            m *= beta1
            m += (1 - beta1) * grad
            s *= beta2
            s += (1 - beta2) * grad * grad
            param -= step_size * m / (np.sqrt(s) + eps_hat)


# %% [markdown]
# ## 9. Training (given)
#
# `train` runs mini-batch training: every epoch shuffles the training set with
# a generator seeded from `seed`, and for each batch runs forward, the loss,
# `zero_grad`, backward, `step()` and — if given — `after_step(model)`. That
# last hook is how later modules keep pruned weights at zero during fine-tuning.
# It returns a history with the mean training loss, the training accuracy
# (measured on the batches as they were seen during the epoch) and, when a
# validation set is given, the accuracy on it after each epoch.
#
# Two models: an MLP on the 64 flattened pixels, and a small CNN on the 1×8×8
# images: two 3×3 convolutions (8 and 16 filters, padding 1) each followed by
# ReLU and 2×2 max pooling, then a `Linear(64, 10)`. `count_flops` counts the
# multiply-adds (×2) of the `Linear` and `Conv2d` layers per sample — the
# "theoretical cost" that pruning will try to cut.

# %% nbgrader={"grade": false, "grade_id": "training", "locked": true, "schema_version": 3, "solution": false}
#| export
def _one_blas_thread():
    """Context: BLAS on one thread. The matrices here are tiny; on a shared or busy machine
    multi-threaded BLAS spends more time waiting for its threads than multiplying."""
    return threadpool_limits(limits=1, user_api="blas")


def _check_model(model) -> None:
    if not isinstance(model, Module):
        raise TypeError(f"model must be a tinytorch Module, got {type(model).__name__}")


def predict(model: Module, X: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Logits of model on X, computed in batches: X is validated once, then the model runs in
    inference_mode() (no per-layer checks). This is the path to time."""
    _check_model(model)
    X = _check_float_array(X, "X")
    batch_size = _check_positive_int(batch_size, "batch_size")
    with _one_blas_thread(), inference_mode():  # X checked once above; the layers skip their checks
        return np.concatenate([model.forward(X[start:start + batch_size])
                               for start in range(0, len(X), batch_size)])


def evaluate(model: Module, X: np.ndarray, y: np.ndarray, batch_size: int = 512) -> float:
    """Accuracy of model on (X, y), in [0, 1]."""
    X = _check_float_array(X, "X")
    y = _check_labels(y, "y", n=len(X))
    return accuracy(predict(model, X, batch_size), y)


def train(model: Module, X: np.ndarray, y: np.ndarray, epochs: int, lr: float, batch_size: int = 64,
          seed=0, optimizer: str = "adam", after_step: Callable | None = None,
          X_val: np.ndarray | None = None, y_val: np.ndarray | None = None) -> dict[str, list[float]]:
    """Mini-batch training with softmax cross-entropy. Returns {"loss", "train_acc", "val_acc"}
    (one entry per epoch; "val_acc" stays empty without X_val/y_val)."""
    _check_model(model)
    X = _check_float_array(X, "X")
    y = _check_labels(y, "y", n=len(X))
    epochs = _check_positive_int(epochs, "epochs")
    lr = _check_positive_float(lr, "lr")
    batch_size = _check_positive_int(batch_size, "batch_size")
    rng = _make_rng(seed)
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    if after_step is not None and not callable(after_step):
        raise TypeError(f"after_step must be callable or None, got {type(after_step).__name__}")
    if (X_val is None) != (y_val is None):
        raise ValueError("X_val and y_val must be given together")
    if X_val is not None:
        X_val = _check_float_array(X_val, "X_val")
        y_val = _check_labels(y_val, "y_val", n=len(X_val))
    params, grads = model.parameters(), model.gradients()
    opt = Adam(params, grads, lr=lr) if optimizer == "adam" else SGD(params, grads, lr=lr)
    loss_fn = CrossEntropyLoss()
    history: dict[str, list[float]] = {"loss": [], "train_acc": [], "val_acc": []}
    with _one_blas_thread():
        for _ in range(epochs):
            order = rng.permutation(len(X))
            loss_sum, correct = 0.0, 0
            for start in range(0, len(X), batch_size):
                idx = order[start:start + batch_size]
                xb, yb = X[idx], y[idx]
                logits = model.forward(xb)
                loss_sum += loss_fn.forward(logits, yb) * len(idx)
                correct += int(np.sum(np.argmax(logits, axis=1) == yb))
                opt.zero_grad()
                model.backward(loss_fn.backward())
                opt.step()
                if after_step is not None:
                    after_step(model)
            history["loss"].append(loss_sum / len(X))
            history["train_acc"].append(correct / len(X))
            if X_val is not None:
                history["val_acc"].append(evaluate(model, X_val, y_val))
    return history


def make_mlp(seed=0, hidden: tuple[int, ...] = (128, 64), in_features: int = 64) -> Sequential:
    """MLP for flat inputs (64 for the 8x8 digits, 40 for MNIST-1D): Linear(in_features, h1), ReLU,
    ..., Linear(h_last, 10)."""
    if not (isinstance(hidden, (tuple, list)) and len(hidden) > 0):
        raise ValueError(f"hidden must be a non-empty tuple of layer widths, got {hidden!r}")
    widths = [_check_positive_int(in_features, "in_features")] + [_check_positive_int(h, "hidden") for h in hidden] + [10]
    seeds = _child_seeds(seed, len(widths) - 1)
    layers: list[Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(Linear(fan_in, fan_out, seed=seeds[i]))
        if i < len(widths) - 2:
            layers.append(ReLU())
    return Sequential(*layers)


def make_cnn(seed=0) -> Sequential:
    """Small CNN for (N, 1, 8, 8) digits: [Conv 3x3 -> ReLU -> MaxPool 2] x 2 -> Flatten -> Linear(64, 10)."""
    s = _child_seeds(seed, 3)
    return Sequential(
        Conv2d(1, 8, 3, padding=1, seed=s[0]), ReLU(), MaxPool2d(2),
        Conv2d(8, 16, 3, padding=1, seed=s[1]), ReLU(), MaxPool2d(2),
        Flatten(), Linear(64, 10, seed=s[2]),
    )


def count_flops(model: Module, input_shape: tuple) -> int:
    """FLOPs (2 x multiply-adds) of the Linear and Conv2d layers for ONE sample of input_shape
    (without the batch dimension); activations, pooling and biases are not counted."""
    _check_model(model)
    if not (isinstance(input_shape, tuple) and input_shape and all(_is_int(d) and d > 0 for d in input_shape)):
        raise ValueError(f"input_shape must be a tuple of positive ints (no batch dimension), got {input_shape!r}")
    layers = model.layers if isinstance(model, Sequential) else [model]
    x = np.zeros((1,) + tuple(input_shape), dtype=np.float32)
    flops = 0
    for layer in layers:
        out = layer.forward(x)
        if isinstance(layer, Linear):
            flops += 2 * layer.in_features * layer.out_features
        elif isinstance(layer, Conv2d):
            flops += 2 * layer.weight[0].size * out[0].size
        x = out
    return int(flops)


# %% [markdown]
# ### Train the MLP
# Adam on the stratified split from section 1. The cell prints the settings,
# the wall time and the test accuracy. (To keep the lesson short the test set
# also draws the "validation" curve; nothing here is tuned on it. When you
# choose hyperparameters, hold out a separate validation split instead.)

# %%
settings = dict(epochs=30, lr=1e-2, batch_size=64, seed=0)
print("training settings:", settings)
mlp = make_mlp(seed=0)
print(mlp)
print("parameters:", mlp.num_parameters(), "| FLOPs per sample:", count_flops(mlp, (64,)))
started = time.perf_counter()
mlp_history = train(mlp, digits.X_train, digits.y_train, **settings, X_val=digits.X_test, y_val=digits.y_test)
mlp_seconds = time.perf_counter() - started
mlp_test_acc = evaluate(mlp, digits.X_test, digits.y_test)
print(f"MLP: trained in {mlp_seconds:.1f} s, final train loss {mlp_history['loss'][-1]:.4f}, "
      f"test accuracy {mlp_test_acc:.2%}")

# %% [markdown]
# ### Train the CNN
# The same data reshaped to images with `as_images`, the same settings.

# %%
cnn = make_cnn(seed=0)
images_train, images_test = as_images(digits.X_train), as_images(digits.X_test)
print(cnn)
print("parameters:", cnn.num_parameters(), "| FLOPs per sample:", count_flops(cnn, (1, 8, 8)))
started = time.perf_counter()
cnn_history = train(cnn, images_train, digits.y_train, **settings, X_val=images_test, y_val=digits.y_test)
cnn_seconds = time.perf_counter() - started
cnn_test_acc = evaluate(cnn, images_test, digits.y_test)
print(f"CNN: trained in {cnn_seconds:.1f} s, final train loss {cnn_history['loss'][-1]:.4f}, "
      f"test accuracy {cnn_test_acc:.2%}")

# %%
fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 3.8))
for name, hist in [("MLP", mlp_history), ("CNN", cnn_history)]:
    epochs_axis = np.arange(1, len(hist["loss"]) + 1)
    ax_loss.plot(epochs_axis, hist["loss"], label=name)
    ax_acc.plot(epochs_axis, hist["train_acc"], "--", label=f"{name} train")
    ax_acc.plot(epochs_axis, hist["val_acc"], label=f"{name} test")
ax_loss.set_yscale("log")
ax_loss.set(xlabel="epoch", ylabel="mean training loss", title="Training loss")
ax_acc.set(xlabel="epoch", ylabel="accuracy", title="Accuracy", ylim=(0.8, 1.005))
ax_loss.legend()
ax_acc.legend(loc="lower right")
plt.tight_layout()
plt.show()

# %% [markdown]
# Which test digits does the CNN still get wrong? Often they are ones a person
# would hesitate over too.

# %%
cnn_predictions = np.argmax(predict(cnn, images_test), axis=1)
wrong = np.flatnonzero(cnn_predictions != digits.y_test)
print(f"the CNN misclassifies {len(wrong)} of {len(digits.y_test)} test digits")
if len(wrong):
    shown = wrong[:10]
    fig, axes = plt.subplots(1, len(shown), figsize=(1.1 * len(shown), 1.6), squeeze=False)
    for ax, i in zip(axes[0], shown):
        ax.imshow(digits.X_test[i].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(f"{digits.y_test[i]}→{cnn_predictions[i]}", fontsize=9)
        ax.set_axis_off()
    fig.suptitle("Misclassified test digits (true→predicted)", y=1.05)
    plt.show()

# %% [markdown]
# ### Saving and restoring weights
# `state_dict()` is a dict of copies, `load_state_dict()` copies them back in
# place. Later modules use this to reset a network to its trained weights
# before each pruning experiment.

# %%
snapshot = cnn.state_dict()
print({name: array.shape for name, array in snapshot.items()})
fresh = make_cnn(seed=123)
print(f"fresh CNN (other seed) test accuracy: {evaluate(fresh, images_test, digits.y_test):.2%}")
fresh.load_state_dict(snapshot)
print(f"after load_state_dict:                {evaluate(fresh, images_test, digits.y_test):.2%}")

# %% [markdown]
# ## Results

# %%
print(f"{'model':<5} {'parameters':>10} {'FLOPs/sample':>13} {'train s':>8} {'test accuracy':>14}")
for name, model, shape, seconds, acc in [("MLP", mlp, (64,), mlp_seconds, mlp_test_acc),
                                         ("CNN", cnn, (1, 8, 8), cnn_seconds, cnn_test_acc)]:
    print(f"{name:<5} {model.num_parameters():>10} {count_flops(model, shape):>13} {seconds:>8.1f} {acc:>14.2%}")

# %% [markdown]
# ## Appendix: batch normalisation and residual blocks (given; used from module 08 on)
#
# **Batch normalisation** (Ioffe & Szegedy, 2015) standardises every channel over the batch
# and then rescales it with two learned vectors, $\gamma$ (`weight`) and $\beta$ (`bias`):
# $$\hat x = \frac{x - \mu_B}{\sqrt{\sigma_B^2 + \epsilon}}, \qquad y = \gamma\,\hat x + \beta .$$
# `BatchNorm1d` takes `(N, C)` and averages over the batch; `BatchNorm2d` takes `(N, C, H, W)`
# and averages over batch and positions. In training mode it uses the batch's statistics and
# keeps exponential running averages (`momentum` 0.1, the unbiased variance, as PyTorch does);
# after `eval()` it uses those running averages, so a single sample gives a fixed answer.
# With $m$ values per channel and $G = \partial L/\partial y$, the backward pass in training mode is
# $$\frac{\partial L}{\partial x} = \frac{\gamma}{m\sqrt{\sigma_B^2+\epsilon}}
#   \Big(m\,G - \textstyle\sum G - \hat x \sum G\,\hat x\Big),\quad
#   \frac{\partial L}{\partial \gamma} = \textstyle\sum G\,\hat x,\quad
#   \frac{\partial L}{\partial \beta} = \textstyle\sum G .$$
# $\gamma$ and $\beta$ are ordinary parameters (optimisers and `state_dict` see them); the running
# statistics are *buffers*: not trained and not in `state_dict` (copy a model with
# `copy.deepcopy` to keep them). `set_train_mode(model, False)` switches every BatchNorm inside a
# model to evaluation mode; the given `train` does not do it for you.
#
# A **residual block** `Residual(branch, shortcut=None)` returns `branch(x) + shortcut(x)` (the
# identity when `shortcut` is None; He et al., 2016). The gradient reaching the input is the
# sum of the gradients through both paths. Its parameters are named `branch.<name>` and
# `shortcut.<name>`.

# %% nbgrader={"grade": false, "grade_id": "batchnorm-residual", "locked": true, "schema_version": 3, "solution": false}
#| export
class _BatchNorm(Module):
    """Shared code of BatchNorm1d/2d: statistics per channel (axis 1) over all other axes."""

    _param_names = ("weight", "bias")
    _ndim = 2

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1):
        self.num_features = _check_positive_int(num_features, "num_features")
        self.eps = _check_positive_float(eps, "eps")
        self.momentum = _check_positive_float(momentum, "momentum")
        if self.momentum > 1:
            raise ValueError(f"momentum must lie in (0, 1], got {momentum!r}")
        self.weight = np.ones(self.num_features, dtype=np.float32)
        self.bias = np.zeros(self.num_features, dtype=np.float32)
        self.grad_weight = np.zeros_like(self.weight)
        self.grad_bias = np.zeros_like(self.bias)
        self.running_mean = np.zeros(self.num_features, dtype=np.float32)
        self.running_var = np.ones(self.num_features, dtype=np.float32)
        self.training = True
        self._cache = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.num_features}, eps={self.eps}, momentum={self.momentum})"

    def train(self, mode: bool = True) -> "_BatchNorm":
        self.training = bool(mode)
        return self

    def eval(self) -> "_BatchNorm":
        return self.train(False)

    def _per_channel(self, v: np.ndarray) -> np.ndarray:
        return v.reshape((1, -1) + (1,) * (self._ndim - 2))

    def forward(self, x: np.ndarray) -> np.ndarray:
        if is_inference() and not self.training:  # no check, nothing kept: one affine map per channel
            scale = self.weight / np.sqrt(self.running_var + self.eps)
            shift = self.bias - self.running_mean * scale
            return x * self._per_channel(scale.astype(x.dtype)) + self._per_channel(shift.astype(x.dtype))
        x = _check_float_array(x, "x", ndim=self._ndim)
        if x.shape[1] != self.num_features:
            raise ValueError(f"x must have {self.num_features} channels (num_features), got shape {x.shape}")
        axes = (0,) + tuple(range(2, self._ndim))
        count = x.size // self.num_features
        if self.training:
            if count < 2:
                raise ValueError(f"x must hold more than one value per channel in training mode, got shape {x.shape}")
            mean, var = x.mean(axis=axes), x.var(axis=axes)
            m = self.momentum
            self.running_mean[...] = (1 - m) * self.running_mean + m * mean
            self.running_var[...] = (1 - m) * self.running_var + m * var * (count / (count - 1))
        else:
            mean, var = self.running_mean.astype(x.dtype), self.running_var.astype(x.dtype)
        inv_std = (1.0 / np.sqrt(var + self.eps)).astype(x.dtype)
        x_hat = (x - self._per_channel(mean)) * self._per_channel(inv_std)
        self._cache = (x_hat, inv_std, axes, count, self.training)
        return (x_hat * self._per_channel(self.weight.astype(x.dtype))
                + self._per_channel(self.bias.astype(x.dtype)))

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        self._need_forward(self._cache)
        x_hat, inv_std, axes, count, training = self._cache
        grad_out = self._check_grad(grad_out, x_hat.shape)
        sum_g, sum_g_xhat = grad_out.sum(axis=axes), (grad_out * x_hat).sum(axis=axes)
        self.grad_weight += sum_g_xhat.astype(np.float32)
        self.grad_bias += sum_g.astype(np.float32)
        scale = self._per_channel((self.weight * inv_std).astype(grad_out.dtype))
        if not training:  # running statistics are constants: an affine map per channel
            return grad_out * scale
        return scale / count * (count * grad_out - self._per_channel(sum_g) - x_hat * self._per_channel(sum_g_xhat))


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) features; gamma = weight, beta = bias."""

    _ndim = 2


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) feature maps per channel; gamma = weight, beta = bias."""

    _ndim = 4


class Residual(Module):
    """y = branch(x) + shortcut(x) (identity shortcut when None); both must give the same shape."""

    def __init__(self, branch: Module, shortcut: Module | None = None):
        if not isinstance(branch, Module):
            raise TypeError(f"branch must be a Module, got {type(branch).__name__}")
        if shortcut is not None and not isinstance(shortcut, Module):
            raise TypeError(f"shortcut must be a Module or None, got {type(shortcut).__name__}")
        self.branch, self.shortcut = branch, shortcut

    def __repr__(self) -> str:
        inner = "\n".join("  " + line for line in f"branch={self.branch!r},\nshortcut={self.shortcut!r}".split("\n"))
        return f"Residual(\n{inner}\n)"

    def _paths(self):
        return [("branch", self.branch)] + ([] if self.shortcut is None else [("shortcut", self.shortcut)])

    def forward(self, x: np.ndarray) -> np.ndarray:
        if not is_inference():
            x = _check_float_array(x, "x")
        out = self.branch.forward(x)
        skip = x if self.shortcut is None else self.shortcut.forward(x)
        if out.shape != skip.shape:
            raise ValueError(f"branch output {out.shape} and shortcut output {skip.shape} must have the same shape")
        return out + skip

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        grad_x = self.branch.backward(grad_out)
        return grad_x + (grad_out if self.shortcut is None else self.shortcut.backward(grad_out))

    def parameters(self) -> dict[str, np.ndarray]:
        return {f"{path}.{name}": p for path, m in self._paths() for name, p in m.parameters().items()}

    def gradients(self) -> dict[str, np.ndarray]:
        return {f"{path}.{name}": g for path, m in self._paths() for name, g in m.gradients().items()}


def iter_modules(model: Module):
    """Yield (name, module) for model and every module inside it, depth first ('' is the model);
    names follow the parameter names ('3.branch.0')."""
    _check_model(model)
    stack = [("", model)]
    while stack:
        name, module = stack.pop()
        yield name, module
        if isinstance(module, Sequential):
            children = [(str(i), m) for i, m in enumerate(module.layers)]
        elif isinstance(module, Residual):
            children = module._paths()
        else:
            children = []
        stack.extend((f"{name}.{child}" if name else child, m) for child, m in reversed(children))


def set_train_mode(model: Module, training: bool = True) -> Module:
    """Put every BatchNorm in model into training (True) or evaluation (False) mode; returns model."""
    if not isinstance(training, (bool, np.bool_)):
        raise TypeError(f"training must be a bool, got {type(training).__name__}")
    for _, module in iter_modules(model):
        if isinstance(module, _BatchNorm):
            module.train(bool(training))
    return model


# %% [markdown]
# A quick check of both against finite differences on float64 input (module 08 and the package
# tests compare them with PyTorch as well):

# %%
bn_check = BatchNorm2d(3)
bn_rng = np.random.default_rng(5)
bn_check.weight[...] = bn_rng.uniform(0.5, 1.5, 3)
bn_x = bn_rng.normal(size=(4, 3, 2, 2))
bn_g = bn_rng.normal(size=bn_x.shape)
res_check = Residual(Sequential(Linear(6, 6, seed=1), ReLU(), Linear(6, 6, seed=2)))
res_x = bn_rng.normal(size=(5, 6))
res_g = bn_rng.normal(size=(5, 6))
for label, layer, x_in, g_in in [("BatchNorm2d", bn_check, bn_x, bn_g), ("Residual", res_check, res_x, res_g)]:
    layer.forward(x_in)
    analytic = layer.backward(g_in)
    numeric = numerical_gradient(lambda: float(np.sum(g_in * layer.forward(x_in))), x_in, eps=1e-5)
    print(f"{label}: max |dL/dx - finite difference| = {np.abs(analytic - numeric).max():.2e}")

# %% [markdown]
# ## Summary
#
# - A layer is a forward function plus the chain rule. For `Linear`,
#   $\partial L/\partial W = G^\top X$, $\partial L/\partial b = \sum_n G_n$ and
#   $\partial L/\partial X = G W$; a finite-difference check catches mistakes.
# - A convolution is a `Linear` layer applied to im2col patches; its backward
#   adds a col2im scatter. Pruning a conv filter removes a row of that matrix.
# - Softmax cross-entropy must be computed with the log-sum-exp trick; its
#   gradient is $(P - \mathrm{onehot}(y))/N$.
# - Optimisers update the live parameter arrays **in place** — the property
#   that lets later modules apply a pruning mask after every step.
# - The results table above shows both networks trained in seconds to high
#   test accuracy; the CNN gets there with far fewer parameters than the MLP
#   but more FLOPs per sample. These trained networks are the starting point
#   of module 01, where we remove most of their weights and measure what
#   survives.
#
# **References.** E. Alpaydin and C. Kaynak, *Optical Recognition of
# Handwritten Digits*, UCI ML Repository, 1998. K. He et al., *Delving Deep
# into Rectifiers*, ICCV 2015. K. Chellapilla, S. Puri and P. Simard, *High
# Performance Convolutional Neural Networks for Document Processing*, 2006.
# B. T. Polyak, *Some methods of speeding up the convergence of iteration
# methods*, 1964. I. Sutskever et al., *On the importance of initialization and
# momentum in deep learning*, ICML 2013. D. P. Kingma and J. Ba, *Adam: A
# Method for Stochastic Optimization*, ICLR 2015.

# %% [markdown]
# ## 8. Where the digits stop telling models apart
#
# On the digits the MLP and the CNN end within a few test images of each other (the results
# table above). On MNIST-1D (section 1) the shapes move around: a model that shares its
# weights across positions (a convolution) has a real advantage over one that must learn
# every position separately. We train both on 2000 MNIST-1D training signals with **three
# seeds** and the same budget. The "CNN" is the `Conv2d` of section 5 used on signals as
# 1 × 40 images, with 1 × 5 kernels.

# %%
def make_cnn1d(seed=0):
    s = np.random.SeedSequence(seed).generate_state(3)
    return Sequential(Conv2d(1, 16, (1, 5), seed=int(s[0])), ReLU(), Conv2d(16, 16, (1, 5), seed=int(s[1])), ReLU(),
                      Flatten(), Linear(16 * 32, 10, seed=int(s[2])))


m1d = load_mnist1d(seed=0, n_train=2000)
SEEDS_1D, EPOCHS_1D = (0, 1, 2), 8
started = time.perf_counter()
acc_1d = {"MLP": [], "CNN": []}
for seed in SEEDS_1D:
    net = make_mlp(seed=seed, in_features=40)
    train(net, m1d.X_train, m1d.y_train, epochs=EPOCHS_1D, lr=3e-3, seed=seed)
    acc_1d["MLP"].append(evaluate(net, m1d.X_test, m1d.y_test))
    net = make_cnn1d(seed)
    train(net, m1d.X_train.reshape(-1, 1, 1, 40), m1d.y_train, epochs=EPOCHS_1D, lr=3e-3, seed=seed)
    acc_1d["CNN"].append(evaluate(net, m1d.X_test.reshape(-1, 1, 1, 40), m1d.y_test))
print(f"MNIST-1D, {EPOCHS_1D} epochs each, seeds {SEEDS_1D} ({time.perf_counter() - started:.1f} s)")
for name, params in (("MLP", make_mlp(in_features=40).num_parameters()), ("CNN", make_cnn1d().num_parameters())):
    print(f"{name}: {params} parameters, test accuracy {100 * np.mean(acc_1d[name]):.1f} ± "
          f"{100 * np.std(acc_1d[name], ddof=1):.1f}% (mean ± std), per seed {[round(100 * a, 1) for a in acc_1d[name]]}")
gap_1d = [len(m1d.y_test) * (c - m) for c, m in zip(acc_1d["CNN"], acc_1d["MLP"])]
print(f"CNN - MLP: {np.mean(gap_1d):+.0f} ± {np.std(gap_1d, ddof=1):.0f} of {len(m1d.y_test)} test signals; "
      f"on the digits: {round((cnn_test_acc - mlp_test_acc) * len(digits.y_test)):+d} of {len(digits.y_test)} test images (one seed)")

# %% [markdown]
# ## 9. Questions on your results
#
# Answer from what **your** notebook printed; the tests compare with your own run.
# Questions 1 and 2 are checked automatically, 3 and 4 by your instructor.
#
# **Q1 (number).** On MNIST-1D, by how many **percentage points** does the CNN beat the MLP
# on average over the seeds? Store it in `q1_cnn_minus_mlp_points` (tolerance ±0.3).
#
# **Q2 (choice).** On the digits (the results table), by how many test images do the MLP and
# the CNN differ? Store the letter in `q2_choice`: `"A"` fewer than 5; `"B"` 5 to 15;
# `"C"` more than 15.

# %% nbgrader={"grade": false, "grade_id": "answers-results", "locked": false, "schema_version": 3, "solution": true}
q1_cnn_minus_mlp_points = None  # a number, in percentage points
q2_choice = None                # "A", "B" or "C"
### BEGIN SOLUTION
q1_cnn_minus_mlp_points = 100 * (np.mean(acc_1d["CNN"]) - np.mean(acc_1d["MLP"]))
_images = abs(round((cnn_test_acc - mlp_test_acc) * len(digits.y_test)))
q2_choice = "A" if _images < 5 else ("B" if _images <= 15 else "C")
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-q1-results", "locked": true, "points": 3, "schema_version": 3, "solution": false}
_want = 100 * (np.mean(acc_1d["CNN"]) - np.mean(acc_1d["MLP"]))
assert isinstance(q1_cnn_minus_mlp_points, (int, float, np.number)) and not isinstance(q1_cnn_minus_mlp_points, bool), \
    f"q1_cnn_minus_mlp_points must be a number, got {q1_cnn_minus_mlp_points!r}"
assert abs(float(q1_cnn_minus_mlp_points) - _want) <= 0.3, \
    f"q1: {q1_cnn_minus_mlp_points} does not match the mean accuracies printed in section 8 (tolerance ±0.3 points)"
print("Q1 matches your run")

# %% nbgrader={"grade": true, "grade_id": "test-q2-results", "locked": true, "points": 3, "schema_version": 3, "solution": false}
_images = abs(round((cnn_test_acc - mlp_test_acc) * len(digits.y_test)))
_want = "A" if _images < 5 else ("B" if _images <= 15 else "C")
assert q2_choice in ("A", "B", "C"), f"q2_choice must be 'A', 'B' or 'C', got {q2_choice!r}"
assert q2_choice == _want, f"q2: {q2_choice!r} does not fit your results table (count the test images, not points)"
print("Q2 fits your run")

# %% [markdown] nbgrader={"grade": true, "grade_id": "q3-structure", "locked": false, "points": 4, "schema_version": 3, "solution": true}
# **Q3 (written, 4 points).** The CNN has fewer parameters than the MLP yet wins clearly on
# MNIST-1D, while on the digits the two tie. Explain both observations from how the two data
# sets are made (section 1) and how the two layers compute (sections 3 and 5).
#
# ### BEGIN SOLUTION
# *Reference answer (instructor only).* MNIST-1D shifts, stretches and shears every template,
# so the same shape appears at many positions; a convolution applies the same small filter
# at every position (weight sharing, translation equivariance), so it learns a shape once,
# while the MLP needs separate weights for every position and overfits with 2000 examples.
# The digits are centred and size-normalised, so position hardly varies and an MLP that sees
# all 64 pixels does as well as a small CNN; both are near the ceiling of 450 test images.
#
# *Rubric (4 points):* 1 point for the shift/stretch variation of MNIST-1D; 1 point for
# weight sharing (same filter at every position, fewer parameters); 1 point for the digits
# being centred / easy so both are at the ceiling; 1 point for citing their own numbers.
# ### END SOLUTION

# %% [markdown] nbgrader={"grade": true, "grade_id": "q4-evidence", "locked": false, "points": 4, "schema_version": 3, "solution": true}
# **Q4 (written, 4 points).** Later modules compare pruning methods. Using your numbers
# (the seed spread on MNIST-1D, what one test image is worth on the digits), explain why
# they do it on MNIST-1D with three seeds, and what a difference between two methods must
# look like before you believe it.
#
# ### BEGIN SOLUTION
# *Reference answer.* On the digits one test image is 0.22 points and the two models differ
# by a handful of images, about what another seed changes, so a comparison there cannot
# separate methods. On MNIST-1D the models are far from the ceiling, methods can differ by
# tens of test signals, and the seed spread (printed, about a point here) says how large a
# difference must be: a difference smaller than the spread of the paired per-seed
# differences is noise; one several spreads wide, in the same direction for every seed, is
# evidence.
#
# *Rubric (4 points):* 1 point for the value of one image on the digits; 1 point for the
# ceiling argument; 1 point for using the measured spread; 1 point for a clear criterion
# (paired differences, consistent sign, larger than the spread).
# ### END SOLUTION

