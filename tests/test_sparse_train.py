"""Package tests for tinytorch.sparse_train (module 07): the drop-fraction schedule, the
Erdos-Renyi budget, drop and grow, SET/RigL updates inside real training, FLOP counting and
movement pruning."""
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinytorch.data import load_digits_split
from tinytorch.nn import Linear, ReLU, Sequential, evaluate, make_mlp, train
from tinytorch.sparse_train import (DynamicSparsity, MovementPruner, cosine_drop_fraction, drop_by_magnitude,
                                    erdos_renyi_densities, grow_by_gradient, grow_random, is_update_step,
                                    sparse_masks, training_flops, uniform_densities)

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def random_layer(seed, shape=(12, 9), density=0.4):
    rng = np.random.default_rng(seed)
    mask = (rng.random(shape) < density).astype(np.float32)
    weights = (rng.normal(size=shape) * mask).astype(np.float32)
    return weights, mask, rng.normal(size=shape).astype(np.float32)


# ---------------------------------------------------------------- the schedule
def test_drop_fraction_endpoints_and_midpoint():
    assert cosine_drop_fraction(0, 0.3, 1000) == 0.3
    assert cosine_drop_fraction(500, 0.3, 1000) == pytest.approx(0.15, abs=1e-15)
    assert cosine_drop_fraction(999, 0.3, 1000) == pytest.approx(0.15 * (1 + math.cos(math.pi * 0.999)))
    assert cosine_drop_fraction(999, 0.3, 1000) > 0.0
    assert cosine_drop_fraction(1000, 0.3, 1000) == 0.0
    assert cosine_drop_fraction(10 ** 6, 0.3, 1000) == 0.0


@SETTINGS
@given(st.integers(1, 400), st.floats(0.0, 1.0), st.integers(1, 50))
def test_drop_fraction_decays_and_updates_stop_at_end(end_step, alpha, delta_t):
    values = [cosine_drop_fraction(t, alpha, end_step) for t in range(end_step + 5)]
    assert all(0.0 <= v <= alpha for v in values)
    assert all(b <= a + 1e-15 for a, b in zip(values, values[1:]))
    updates = [t for t in range(end_step + 2 * delta_t) if is_update_step(t, delta_t, end_step)]
    assert updates == list(range(delta_t, end_step, delta_t))


@pytest.mark.parametrize("args", [(-1,), (1.5,), (True,), (0, 1.1), (0, -0.1), (0, float("nan")), (0, 0.3, 0)])
def test_drop_fraction_rejects_bad_input(args):
    with pytest.raises((TypeError, ValueError)):
        cosine_drop_fraction(*args)


# ---------------------------------------------------------------- layer budgets
@SETTINGS
@given(st.lists(st.tuples(st.integers(1, 60), st.integers(1, 60)), min_size=1, max_size=5), st.floats(0.0, 1.0))
def test_erdos_renyi_spends_exactly_the_budget_and_stays_in_bounds(dims, sparsity):
    shapes = {f"l{i}": d for i, d in enumerate(dims)}
    densities = erdos_renyi_densities(shapes, sparsity)
    sizes = {n: math.prod(s) for n, s in shapes.items()}
    total = sum(sizes.values())
    assert sum(densities[n] * sizes[n] for n in shapes) == pytest.approx((1 - sparsity) * total, rel=1e-9, abs=1e-9)
    assert all(-1e-12 <= d <= 1.0 for d in densities.values())
    # uncapped layers follow (n_in + n_out) / (n_in * n_out) with one common factor
    ratios = [densities[n] / (sum(s) / sizes[n]) for n, s in shapes.items() if densities[n] < 1.0]
    assert all(r == pytest.approx(ratios[0], rel=1e-9) for r in ratios)
    # a capped layer would have needed more than dense under that factor
    if ratios and ratios[0] > 0:
        for n, s in shapes.items():
            if densities[n] == 1.0:
                assert ratios[0] * sum(s) / sizes[n] >= 1.0 - 1e-9


def test_erdos_renyi_gives_small_layers_more_density():
    shapes = {"wide": (256, 256), "mid": (64, 256), "head": (10, 64)}
    d = erdos_renyi_densities(shapes, 0.9)
    assert d["wide"] < d["mid"] < d["head"]
    assert uniform_densities(shapes, 0.9) == {n: pytest.approx(0.1) for n in shapes}


@pytest.mark.parametrize("shapes, sparsity, error", [
    ({}, 0.5, ValueError), ({"a": (4,)}, 0.5, ValueError), ({"a": (4, 0)}, 0.5, ValueError),
    ({"a": (4, 5)}, 1.5, ValueError), ({"a": (4, 5)}, "0.5", TypeError), ([(4, 5)], 0.5, TypeError),
])
def test_erdos_renyi_rejects_bad_input(shapes, sparsity, error):
    with pytest.raises(error):
        erdos_renyi_densities(shapes, sparsity)


def test_sparse_masks_have_exact_counts():
    shapes = {"a": (30, 20), "b": (7, 3)}
    masks = sparse_masks(shapes, {"a": 0.25, "b": 0.5}, seed=3)
    assert int(masks["a"].sum()) == 150 and int(masks["b"].sum()) == round(0.5 * 21)
    assert all(m.dtype == np.float32 for m in masks.values())


# ---------------------------------------------------------------- drop and grow
@SETTINGS
@given(st.integers(0, 10 ** 6), st.data())
def test_drop_removes_the_smallest_active_and_nothing_else(seed, data):
    w, mask, _ = random_layer(seed)
    active = int(mask.sum())
    k = data.draw(st.integers(0, active))
    new = drop_by_magnitude(w, mask, k)
    assert int(new.sum()) == active - k
    assert np.all(new <= mask)
    dropped = (mask == 1) & (new == 0)
    if 0 < k < active:
        assert np.abs(w[dropped]).max() <= np.abs(w[new == 1]).min()


@SETTINGS
@given(st.integers(0, 10 ** 6), st.data())
def test_rigl_grows_the_largest_gradients_like_torch_topk(seed, data):
    _, mask, g = random_layer(seed)
    inactive = int((mask == 0).sum())
    k = data.draw(st.integers(0, inactive))
    new = grow_by_gradient(mask, g, k)
    assert np.all(new >= mask) and int(new.sum()) == int(mask.sum()) + k
    scores = torch.tensor(np.where(mask == 0, np.abs(g), -1.0).ravel())
    want = np.zeros(mask.size, dtype=np.float32)
    want[torch.topk(scores, k).indices.numpy()] = 1.0
    assert np.array_equal((new - mask).ravel(), want)


@SETTINGS
@given(st.integers(0, 10 ** 6), st.data())
def test_set_grows_only_inactive_positions(seed, data):
    _, mask, _ = random_layer(seed)
    k = data.draw(st.integers(0, int((mask == 0).sum())))
    new = grow_random(mask, k, seed=seed)
    assert np.all(new >= mask) and int(new.sum()) == int(mask.sum()) + k
    assert np.array_equal(new, grow_random(mask, k, seed=seed))


def test_drop_and_grow_reject_bad_input():
    w, mask, g = random_layer(0, shape=(3, 4))
    for call in (lambda: drop_by_magnitude(w, mask, int(mask.sum()) + 1),
                 lambda: drop_by_magnitude(w, mask, -1),
                 lambda: drop_by_magnitude(w, np.ones((4, 3)), 1),
                 lambda: drop_by_magnitude(w, mask * 0.5 + 0.25, 1),
                 lambda: grow_random(mask, int((mask == 0).sum()) + 1),
                 lambda: grow_by_gradient(mask, np.full(mask.shape, np.nan), 1),
                 lambda: grow_by_gradient(mask, g[:2], 1)):
        with pytest.raises(ValueError):
            call()
    with pytest.raises(TypeError):
        grow_random(mask, 1, seed="zero")


# ---------------------------------------------------------------- one update, and training
@pytest.mark.parametrize("method", ["set", "rigl"])
@pytest.mark.parametrize("distribution", ["uniform", "erdos-renyi"])
def test_update_keeps_nnz_and_grows_at_zero(method, distribution):
    net = Sequential(Linear(20, 30, seed=0), ReLU(), Linear(30, 5, seed=1))
    ds = DynamicSparsity(net, sparsity=0.8, method=method, distribution=distribution, alpha=0.4, delta_t=3,
                         end_step=50, seed=2)
    rng = np.random.default_rng(9)
    for n in ds.names:
        net.parameters()[n][...] = rng.normal(size=ds.masks[n].shape) * ds.masks[n]
        net.gradients()[n][...] = rng.normal(size=ds.masks[n].shape)
    before = {n: ds.masks[n].copy() for n in ds.names}
    weights = {n: net.parameters()[n].copy() for n in ds.names}
    replaced = ds.update(net, 3)
    assert replaced == sum(round(cosine_drop_fraction(3, 0.4, 50) * before[n].sum()) for n in ds.names) > 0
    for n in ds.names:
        new, w = ds.masks[n], net.parameters()[n]
        assert new.sum() == before[n].sum()
        grown = (new == 1) & (before[n] == 0)
        assert np.all(w[grown] == 0) and np.all(w[new == 0] == 0)
        assert np.array_equal(w[(new == 1) & (before[n] == 1)], weights[n][(new == 1) & (before[n] == 1)])
        if method == "rigl":  # every grown position has a gradient at least as large as any candidate left out
            left_out = (new == 0)
            assert np.abs(net.gradients()[n][grown]).min() >= np.abs(net.gradients()[n][left_out]).max()


def test_rigl_training_holds_the_sparsity_and_learns():
    data = load_digits_split(seed=0)
    net = make_mlp(seed=0)
    steps = 6 * math.ceil(len(data.X_train) / 64)
    ds = DynamicSparsity(net, sparsity=0.9, method="rigl", delta_t=10, end_step=int(0.75 * steps), seed=0)
    nnz = {n: int(m.sum()) for n, m in ds.masks.items()}
    seen = []

    def check(model):
        ds.after_step(model)
        p = model.parameters()
        seen.append(all(int(np.count_nonzero(p[n])) <= nnz[n] and int(ds.masks[n].sum()) == nnz[n] for n in nnz))

    train(net, data.X_train, data.y_train, epochs=6, lr=1e-2, seed=0, after_step=check)
    assert len(seen) == steps and all(seen)
    assert [h[0] for h in ds.history] == list(range(10, int(0.75 * steps), 10))
    assert sum(h[2] for h in ds.history) > 0
    assert evaluate(net, data.X_test, data.y_test) > 0.8


def test_dynamic_sparsity_rejects_bad_arguments():
    net = make_mlp(seed=0)
    for kwargs in ({"method": "random"}, {"distribution": "ER"}, {"sparsity": 1.0}, {"sparsity": -0.1},
                   {"delta_t": 0}, {"alpha": 1.5}, {"end_step": 0}, {"names": ["0.bias", "x"]}):
        with pytest.raises(ValueError):
            DynamicSparsity(net, **kwargs)
    with pytest.raises(TypeError):
        DynamicSparsity({"w": np.ones((2, 2))})


# ---------------------------------------------------------------- FLOPs
def test_training_flops_by_hand():
    flops = {"a": 100, "b": 40}
    assert training_flops(flops, {"a": 1.0, "b": 1.0}, 10) == 3 * 140 * 10
    assert training_flops(flops, {"a": 0.1, "b": 0.5}, 10) == pytest.approx(3 * (10 + 20) * 10)
    # RigL: 4 of the 10 samples need the dense weight gradient: (1 - d) F more each
    assert training_flops(flops, {"a": 0.1, "b": 0.5}, 10, 4) == pytest.approx(900 + 4 * (90 + 20))
    with pytest.raises(ValueError):
        training_flops(flops, {"a": 0.1, "b": 0.5}, 3, 4)
    with pytest.raises(ValueError):
        training_flops(flops, {"a": 0.1}, 3)


# ---------------------------------------------------------------- movement pruning
def test_movement_scores_and_masks():
    net = Sequential(Linear(8, 6, seed=0), ReLU(), Linear(6, 3, seed=1))
    rng = np.random.default_rng(0)
    mp = MovementPruner(final_sparsity=0.5, begin_step=0, end_step=0)
    total = {n: np.zeros_like(p, dtype=np.float64) for n, p in net.parameters().items() if p.ndim == 2}
    for _ in range(3):
        for n, g in net.gradients().items():
            g[...] = rng.normal(size=g.shape)
        for n in total:
            total[n] -= net.parameters()[n].astype(np.float64) * net.gradients()[n]
        mp.accumulate(net)
    for n in total:
        np.testing.assert_allclose(mp.scores[n], total[n])
    masks = mp.compute_masks(0.5)
    for n, m in masks.items():
        assert int((m == 0).sum()) == round(0.5 * m.size)
        assert total[n][m == 1].min() >= total[n][m == 0].max()


def test_movement_and_magnitude_disagree_when_weights_shrink():
    """A large weight that the gradient pulls to zero is kept by magnitude, dropped by movement."""
    net = Sequential(Linear(2, 1, seed=0))
    net.parameters()["0.weight"][...] = [[5.0, 0.1]]
    net.gradients()["0.weight"][...] = [[1.0, -1.0]]   # pushes 5.0 down, 0.1 up
    mp = MovementPruner(final_sparsity=0.5, begin_step=0, end_step=0)
    mp.accumulate(net)
    assert mp.compute_masks(0.5)["0.weight"].tolist() == [[0.0, 1.0]]


def test_movement_pruning_masks_only_lose_ones_during_training():
    data = load_digits_split(seed=0)
    net = make_mlp(seed=1)
    mp = MovementPruner(final_sparsity=0.8, begin_step=5, end_step=60, frequency=5)
    history = []

    def hook(model):
        mp.after_step(model)
        history.append({n: m.copy() for n, m in mp.masks.items()})

    train(net, data.X_train, data.y_train, epochs=4, lr=1e-2, seed=0, after_step=hook)
    for before, after in zip(history, history[1:]):
        for n in after:
            if n in before:
                assert np.all(after[n] <= before[n])
    for n, m in mp.masks.items():
        assert int((m == 0).sum()) == round(0.8 * m.size)
        assert np.all(net.parameters()[n][m == 0] == 0)
    with pytest.raises(ValueError):
        MovementPruner().compute_masks(0.5)
    with pytest.raises(ValueError):
        MovementPruner(final_sparsity=2.0)
