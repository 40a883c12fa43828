"""tinytorch.data (module 00): the offline digits, a stratified deterministic split,
image views and mini-batches."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_digits

from tinytorch.data import Digits, as_images, iterate_minibatches, load_digits_split

X_ALL, Y_ALL = load_digits(return_X_y=True)


def _rows(X, y):
    """Multiset of (pixels, label) rows, comparable across orderings."""
    keyed = np.concatenate([np.round(X * 16).astype(np.int64), y[:, None]], axis=1)
    return keyed[np.lexsort(keyed.T[::-1])]


def test_default_split_shapes_dtypes_and_ranges():
    d = load_digits_split()
    assert isinstance(d, Digits) and d.n_classes == 10
    assert d.X_train.shape == (1347, 64) and d.X_test.shape == (450, 64)
    assert d.y_train.shape == (1347,) and d.y_test.shape == (450,)
    assert d.X_train.dtype == np.float32 and d.X_test.dtype == np.float32
    assert d.y_train.dtype == np.int64 and d.y_test.dtype == np.int64
    for X in (d.X_train, d.X_test):
        assert X.min() == 0.0 and X.max() == 1.0
    assert "X_train=(1347, 64)" in repr(d)


def test_split_is_a_partition_of_the_whole_dataset():
    d = load_digits_split(test_fraction=0.3, seed=2)
    X = np.concatenate([d.X_train, d.X_test])
    y = np.concatenate([d.y_train, d.y_test])
    assert np.array_equal(_rows(X, y), _rows(X_ALL / 16.0, Y_ALL))


def test_split_is_deterministic_and_ignores_global_random_state():
    np.random.seed(123)
    a = load_digits_split(seed=7)
    np.random.seed(456)
    np.random.random(10)
    b = load_digits_split(seed=7)
    for field in ("X_train", "y_train", "X_test", "y_test"):
        assert np.array_equal(getattr(a, field), getattr(b, field))
    c = load_digits_split(seed=8)
    assert not np.array_equal(a.y_test, c.y_test) or not np.array_equal(a.X_test, c.X_test)


@settings(max_examples=15, deadline=None)
@given(fraction=st.floats(0.05, 0.9), seed=st.integers(0, 2**31))
def test_split_is_stratified_for_any_fraction_and_seed(fraction, seed):
    d = load_digits_split(test_fraction=fraction, seed=seed)
    per_class = np.bincount(Y_ALL, minlength=10)
    expected_test = np.array([int(round(fraction * n)) for n in per_class])
    assert np.array_equal(np.bincount(d.y_test, minlength=10), expected_test)
    assert np.array_equal(np.bincount(d.y_train, minlength=10), per_class - expected_test)


@pytest.mark.parametrize("kwargs,error,word", [
    (dict(test_fraction=0.0), ValueError, "test_fraction"),
    (dict(test_fraction=1.0), ValueError, "test_fraction"),
    (dict(test_fraction=float("nan")), ValueError, "test_fraction"),
    (dict(test_fraction="0.2"), TypeError, "test_fraction"),
    (dict(test_fraction=True), TypeError, "test_fraction"),
    (dict(test_fraction=0.001), ValueError, "empty"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(seed=1.0), TypeError, "seed"),
])
def test_load_digits_split_rejects_bad_arguments(kwargs, error, word):
    with pytest.raises(error, match=word):
        load_digits_split(**kwargs)


def test_as_images_is_a_view_in_nchw_layout():
    d = load_digits_split()
    images = as_images(d.X_train)
    assert images.shape == (1347, 1, 8, 8)
    assert np.shares_memory(images, d.X_train)
    assert np.array_equal(images[5, 0, 2], d.X_train[5, 16:24])  # row 2 of image 5
    with pytest.raises(ValueError, match="X"):
        as_images(np.zeros((3, 63), np.float32))
    with pytest.raises(TypeError, match="X"):
        as_images([[0.0] * 64])


def test_iterate_minibatches_covers_every_sample_once():
    X = np.arange(23, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    y = np.arange(23)
    batches = list(iterate_minibatches(X, y, batch_size=5, rng=np.random.default_rng(0)))
    assert [len(yb) for _, yb in batches] == [5, 5, 5, 5, 3]
    seen = np.concatenate([yb for _, yb in batches])
    assert sorted(seen) == list(range(23)) and not np.array_equal(seen, np.arange(23))
    for xb, yb in batches:
        assert np.array_equal(xb[:, 0], yb)  # rows stay paired with their labels
    in_order = np.concatenate([yb for _, yb in iterate_minibatches(X, y, 10)])
    assert np.array_equal(in_order, np.arange(23))
    again = [yb for _, yb in iterate_minibatches(X, y, 5, rng=3)]
    assert all(np.array_equal(a, b) for a, b in zip(again, [yb for _, yb in iterate_minibatches(X, y, 5, rng=3)]))


@pytest.mark.parametrize("args,error,word", [
    ((np.zeros((4, 2)), np.zeros(3, int), 2), ValueError, "same length"),
    ((np.zeros((4, 2)), np.zeros(4, int), 0), ValueError, "batch_size"),
    ((np.zeros((4, 2)), np.zeros(4, int), 2.0), ValueError, "batch_size"),
    (([[0.0]], np.zeros(1, int), 1), TypeError, "X and y"),
])
def test_iterate_minibatches_rejects_bad_arguments_immediately(args, error, word):
    with pytest.raises(error, match=word):
        iterate_minibatches(*args)  # raised at the call, not at the first next()


def test_iterate_minibatches_rejects_a_bad_rng():
    with pytest.raises(TypeError, match="rng"):
        iterate_minibatches(np.zeros((2, 2)), np.zeros(2, int), 1, rng="seed")


# --- MNIST-1D (generated locally) -----------------------------------------------------------

from tinytorch.data import load_mnist1d  # noqa: E402


def test_mnist1d_shapes_dtypes_and_balanced_classes():
    d = load_mnist1d(seed=0, n_train=1003, n_test=250)
    assert isinstance(d, Digits) and d.n_classes == 10
    assert d.X_train.shape == (1003, 40) and d.X_test.shape == (250, 40)
    assert d.X_train.dtype == np.float32 and d.y_train.dtype == np.int64
    assert np.all(np.isfinite(d.X_train)) and np.all(np.isfinite(d.X_test))
    for y, n in ((d.y_train, 1003), (d.y_test, 250)):
        counts = np.bincount(y, minlength=10)
        assert counts.sum() == n and counts.max() - counts.min() <= 1
    assert not np.array_equal(d.y_train[:20], np.arange(20) % 10)  # shuffled, not in class order


def test_mnist1d_is_deterministic_and_leaves_global_random_state_alone():
    np.random.seed(11)
    before = np.random.get_state()
    a = load_mnist1d(seed=3, n_train=200, n_test=100)
    after = np.random.get_state()
    assert before[0] == after[0] and np.array_equal(before[1], after[1]) and before[2:] == after[2:]
    np.random.seed(99)
    b = load_mnist1d(seed=3, n_train=200, n_test=100)
    for field in ("X_train", "y_train", "X_test", "y_test"):
        assert np.array_equal(getattr(a, field), getattr(b, field))
    c = load_mnist1d(seed=4, n_train=200, n_test=100)
    assert not np.array_equal(a.X_train, c.X_train)
    # the test part comes from its own stream: a bigger test set leaves the training set as it was
    d = load_mnist1d(seed=3, n_train=200, n_test=300)
    assert np.array_equal(a.X_train, d.X_train) and not np.array_equal(a.X_test, d.X_test[:100])


def test_mnist1d_is_harder_than_a_linear_model_and_learnable():
    """The point of the data set: a linear classifier is far from solving it, yet it holds signal."""
    from sklearn.linear_model import LogisticRegression
    d = load_mnist1d(seed=0, n_train=2000, n_test=1000)
    score = LogisticRegression(max_iter=2000).fit(d.X_train, d.y_train).score(d.X_test, d.y_test)
    assert 0.2 < score < 0.6, score  # chance is 0.1


def test_mnist1d_length_resamples():
    d = load_mnist1d(seed=1, n_train=20, n_test=10, length=64)
    assert d.X_train.shape == (20, 64)


@pytest.mark.parametrize("kwargs,error,word", [
    (dict(seed=-1), ValueError, "seed"),
    (dict(seed=1.5), TypeError, "seed"),
    (dict(n_train=5), ValueError, "n_train"),
    (dict(n_test=True), TypeError, "n_test"),
    (dict(length=4), ValueError, "length"),
    (dict(length=40.0), TypeError, "length"),
])
def test_load_mnist1d_rejects_bad_arguments(kwargs, error, word):
    with pytest.raises(error, match=word):
        load_mnist1d(**kwargs)
