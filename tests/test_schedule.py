"""Package tests for tinytorch.schedule (module 04): the Zhu & Gupta schedule, the gradual
pruner inside real training, IMP rounds against PyTorch's pruning containers, rewinding."""
import numpy as np
import pytest
import torch
import torch.nn.utils.prune as tprune
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tinytorch.data import load_digits_split
from tinytorch.nn import Linear, ReLU, Sequential, evaluate, make_mlp, train
from tinytorch.prune import finetune_masked, global_magnitude_masks, prune_remaining
from tinytorch.schedule import (GradualPruner, iterative_magnitude_pruning, polynomial_sparsity, prune_survivors,
                                rewind_weights)

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
fractions = st.floats(0.0, 1.0, allow_nan=False)


def formula(t, s_i, s_f, t0, t_end, power=3):
    """Zhu & Gupta, written independently: s_f + (s_i - s_f)(1 - (t - t0)/(n dt))^power, clamped."""
    if t <= t0:
        return s_i
    if t >= t_end:
        return s_f
    return s_f + (s_i - s_f) * (1.0 - (t - t0) / (t_end - t0)) ** power


def weight_names(model):
    return [n for n, p in model.parameters().items() if p.ndim >= 2]


# ---------------------------------------------------------------- the schedule
@pytest.mark.parametrize("t, s_i, s_f, t0, t_end, power", [
    (0, 0.0, 0.9, 0, 100, 3), (10, 0.0, 0.9, 0, 100, 3), (50, 0.0, 0.9, 0, 100, 3), (99, 0.0, 0.9, 0, 100, 3),
    (100, 0.0, 0.9, 0, 100, 3), (250, 0.1, 0.95, 200, 1200, 3), (700, 0.1, 0.95, 200, 1200, 3),
    (1199, 0.1, 0.95, 200, 1200, 3), (30, 0.0, 0.5, 10, 50, 1), (30, 0.0, 0.5, 10, 50, 2), (5, 0.3, 0.3, 0, 10, 3),
])
def test_schedule_matches_the_formula_at_chosen_steps(t, s_i, s_f, t0, t_end, power):
    assert polynomial_sparsity(t, s_i, s_f, t0, t_end, power) == pytest.approx(formula(t, s_i, s_f, t0, t_end, power),
                                                                           abs=1e-12)


def test_schedule_worked_values():
    # halfway through a cubic ramp from 0 to 0.8: 0.8 * (1 - 0.5**3) = 0.7
    assert polynomial_sparsity(50, 0.0, 0.8, 0, 100) == pytest.approx(0.7)
    # a quarter of the way: 0.8 * (1 - 0.75**3) = 0.4625
    assert polynomial_sparsity(25, 0.0, 0.8, 0, 100) == pytest.approx(0.4625)


@SETTINGS
@given(s_i=fractions, s_f=fractions, t0=st.integers(0, 500), length=st.integers(0, 500),
       power=st.sampled_from([1, 2, 3, 0.5, 4.5]), t=st.integers(0, 1500))
def test_schedule_is_clamped_monotone_and_between_the_ends(s_i, s_f, t0, length, power, t):
    s_i, s_f = min(s_i, s_f), max(s_i, s_f)
    t_end = t0 + length
    value = polynomial_sparsity(t, s_i, s_f, t0, t_end, power)
    assert s_i - 1e-12 <= value <= s_f + 1e-12
    assert polynomial_sparsity(t + 1, s_i, s_f, t0, t_end, power) >= value - 1e-12
    if t >= t_end:
        assert value == pytest.approx(s_f, abs=1e-12)
    if t < t0:
        assert value == s_i


def test_begin_equal_to_end_is_one_shot():
    assert polynomial_sparsity(4, 0.0, 0.9, 5, 5) == 0.0
    assert polynomial_sparsity(5, 0.0, 0.9, 5, 5) == 0.9
    pruner = GradualPruner(final_sparsity=0.9, begin_step=5, end_step=5, frequency=2)
    assert [t for t in range(30) if pruner.should_prune(t)] == [5]


# ---------------------------------------------------------------- begin / end / frequency
@SETTINGS
@given(t0=st.integers(0, 60), length=st.integers(0, 80), frequency=st.integers(1, 25))
def test_pruning_steps_are_begin_every_frequency_and_end(t0, length, frequency):
    t_end = t0 + length
    pruner = GradualPruner(final_sparsity=0.5, begin_step=t0, end_step=t_end, frequency=frequency)
    got = [t for t in range(t_end + 40) if pruner.should_prune(t)]
    expected = sorted(set(range(t0, t_end + 1, frequency)) | {t_end})
    assert got == expected
    assert got[0] == t0 and got[-1] == t_end
    for t in got:
        prune_now, sparsity = pruner(t)
        assert prune_now and sparsity == polynomial_sparsity(t, 0.0, 0.5, t0, t_end)


def test_end_step_is_a_pruning_step_even_off_the_frequency_grid():
    pruner = GradualPruner(final_sparsity=0.6, begin_step=3, end_step=20, frequency=5)
    assert [t for t in range(40) if pruner.should_prune(t)] == [3, 8, 13, 18, 20]
    assert pruner(21) == (False, pytest.approx(0.6))
    assert pruner(2) == (False, 0.0)


# ---------------------------------------------------------------- the pruner in real training
@pytest.fixture(scope="module")
def digits():
    return load_digits_split()


def test_gradual_pruner_inside_train_reaches_the_target_and_holds_masks(digits):
    model = make_mlp(seed=3)
    names = weight_names(model)
    steps_per_epoch = int(np.ceil(len(digits.X_train) / 64))
    pruner = GradualPruner(final_sparsity=0.9, begin_step=steps_per_epoch, end_step=4 * steps_per_epoch,
                           frequency=steps_per_epoch // 2)
    train(model, digits.X_train, digits.y_train, epochs=6, lr=1e-2, seed=3, after_step=pruner.after_step)
    params = model.parameters()
    total = sum(params[n].size for n in names)
    zeros = sum(int(np.sum(params[n] == 0)) for n in names)
    assert zeros == round(0.9 * total)  # exact count, global
    for n in names:
        assert np.all(params[n][pruner.masks[n] == 0] == 0)
    assert all(np.count_nonzero(params[n]) > 0 for n in ("0.bias", "2.bias"))  # biases are never pruned
    steps = [t for t, _ in pruner.history]
    assert steps[0] == steps_per_epoch and steps[-1] == 4 * steps_per_epoch
    assert pruner.step == 6 * steps_per_epoch
    levels = [s for _, s in pruner.history]
    assert levels == sorted(levels) and levels[-1] == pytest.approx(0.9)
    assert evaluate(model, digits.X_test, digits.y_test) > 0.85


def test_masks_only_lose_ones_during_training():
    net = Sequential(Linear(20, 30, seed=0), ReLU(), Linear(30, 10, seed=1))
    pruner = GradualPruner(final_sparsity=0.85, begin_step=0, end_step=40, frequency=3)
    rng = np.random.default_rng(0)
    previous = None
    for _ in range(60):
        for p in net.parameters().values():  # an "optimizer step" that revives every weight
            p += rng.normal(0, 0.1, p.shape).astype(np.float32)
        pruner.after_step(net)
        if pruner.masks:
            if previous is not None:
                assert all(np.all(pruner.masks[n] <= previous[n]) for n in pruner.masks)
            previous = {n: m.copy() for n, m in pruner.masks.items()}
            for n, m in pruner.masks.items():
                assert np.all(net.parameters()[n][m == 0] == 0)


def test_local_scope_prunes_every_layer_to_the_scheduled_sparsity():
    net = Sequential(Linear(16, 12, seed=0), ReLU(), Linear(12, 8, seed=1))
    pruner = GradualPruner(final_sparsity=0.75, begin_step=0, end_step=10, frequency=5, scope="local")
    for step in range(11):
        pruner.update(net, step)
    for n in ("0.weight", "2.weight"):
        w = net.parameters()[n]
        assert int(np.sum(w == 0)) == round(0.75 * w.size)


def test_callable_scope_and_names_restrict_what_is_pruned():
    net = Sequential(Linear(6, 5, seed=0), ReLU(), Linear(5, 4, seed=1))
    seen = []

    def half_of_each(weights, sparsity):
        seen.append((tuple(weights), sparsity))
        return {n: (np.abs(w) >= np.median(np.abs(w))).astype(np.float32) for n, w in weights.items()}

    pruner = GradualPruner(final_sparsity=0.5, begin_step=0, end_step=0, frequency=1, scope=half_of_each,
                           names=["2.weight"])
    before = net.parameters()["0.weight"].copy()
    assert pruner.update(net, 0) == 0.5
    assert seen == [(("2.weight",), 0.5)]
    assert np.array_equal(net.parameters()["0.weight"], before)
    assert pruner.update(net, 1) is None


# ---------------------------------------------------------------- IMP rounds
def torch_global_round(weights, masks, rate):
    """PyTorch's pruning container: amount applies to the still-unpruned entries."""
    modules = []
    for name, w in weights.items():
        lin = torch.nn.Linear(1, 1, bias=False)
        lin.weight = torch.nn.Parameter(torch.from_numpy(np.ascontiguousarray(w)))
        if masks is not None:
            tprune.custom_from_mask(lin, "weight", torch.from_numpy(masks[name]))
        modules.append((lin, "weight"))
    tprune.global_unstructured(modules, pruning_method=tprune.L1Unstructured, amount=rate)
    return {name: lin.weight_mask.detach().numpy() for (lin, _), name in zip(modules, weights)}


def assert_same_masks(ours, theirs, names):
    for name in names:
        np.testing.assert_array_equal(ours[name], theirs[name], err_msg=f"mask {name!r}")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), rates=st.lists(st.floats(0.0, 0.9), min_size=1, max_size=4))
def test_global_rounds_match_pytorch_pruning_containers(seed, rates):
    rng = np.random.default_rng(seed)
    weights = {"a": rng.normal(size=(7, 9)).astype(np.float32), "b": rng.normal(0, 0.5, size=(5, 4)).astype(np.float32)}
    flat = np.concatenate([np.abs(w).ravel() for w in weights.values()])
    assume(np.unique(flat).size == flat.size)  # no ties: torch's topk and a stable sort then agree
    ours, theirs = None, None
    for rate in rates:
        ours = prune_survivors(weights, ours, rate)
        theirs = torch_global_round(weights, theirs, rate)
        assert_same_masks(ours, theirs, weights)


@SETTINGS
@given(seed=st.integers(0, 2**16), rate=fractions, rounds=st.integers(1, 4))
def test_local_rounds_match_module_01_per_array(seed, rate, rounds):
    rng = np.random.default_rng(seed)
    weights = {"a": rng.normal(size=(6, 5)).astype(np.float32),
               "b": np.round(rng.normal(size=(3, 8)), 1).astype(np.float32)}  # ties on purpose
    ours = None
    theirs = {n: np.ones(w.shape, dtype=np.float32) for n, w in weights.items()}
    for _ in range(rounds):
        ours = prune_survivors(weights, ours, rate, scope="local")
        theirs = {n: prune_remaining(weights[n], theirs[n], rate) for n in weights}
        assert_same_masks(ours, theirs, weights)


@SETTINGS
@given(seed=st.integers(0, 2**16), sparsity=fractions)
def test_first_global_round_is_global_magnitude_pruning(seed, sparsity):
    rng = np.random.default_rng(seed)
    weights = {"x": np.round(rng.normal(size=(8, 6)), 1).astype(np.float32),
               "y": np.round(rng.normal(size=(4, 4)), 1).astype(np.float32)}
    ours = prune_survivors(weights, None, sparsity)
    theirs = global_magnitude_masks(weights, sparsity)
    assert_same_masks(ours, theirs, weights)


@SETTINGS
@given(seed=st.integers(0, 2**16), rate=fractions, rounds=st.integers(1, 5))
def test_survivor_counts_are_exact_and_masks_nested(seed, rate, rounds):
    rng = np.random.default_rng(seed)
    weights = {"a": rng.normal(size=(10, 3)).astype(np.float32), "b": np.ones((2, 5), dtype=np.float32)}
    alive, masks = 40, None
    for _ in range(rounds):
        new = prune_survivors(weights, masks, rate)
        alive -= round(rate * alive)
        assert int(sum(m.sum() for m in new.values())) == alive
        if masks is not None:
            assert all(np.all(new[n] <= masks[n]) for n in new)
        masks = new


def test_prune_survivors_leaves_inputs_alone_and_ignores_pruned_magnitudes():
    weights = {"w": np.array([9.0, 1.0, 2.0, 3.0], dtype=np.float32)}
    masks = {"w": np.array([0.0, 1.0, 1.0, 1.0], dtype=np.float32)}
    out = prune_survivors(weights, masks, rate=2 / 3)
    assert out["w"].tolist() == [0, 0, 0, 1]
    assert masks["w"].tolist() == [0, 1, 1, 1] and weights["w"].tolist() == [9, 1, 2, 3]


# ---------------------------------------------------------------- rewinding and the IMP loop
def test_imp_with_rewinding_trains_from_theta0_times_mask(digits):
    model = make_mlp(seed=5)
    theta0 = model.state_dict()
    starts = []

    def train_fn(m, masks):
        starts.append(m.state_dict())
        finetune_masked(m, masks, digits.X_train, digits.y_train, epochs=2, lr=1e-2, seed=0)

    result = iterative_magnitude_pruning(model, train_fn, lambda m: evaluate(m, digits.X_test, digits.y_test),
                                         rounds=3, rate=0.5, rewind_state=theta0)
    assert result["remaining"] == pytest.approx([1.0, 0.5, 0.25, 0.125], abs=1e-4)
    for r, masks in enumerate(result["masks"]):
        for n, m in masks.items():
            np.testing.assert_array_equal(starts[r][n], theta0[n] * m)
        for n in ("0.bias", "2.bias", "4.bias"):
            np.testing.assert_array_equal(starts[r][n], theta0[n])
    assert all(0.0 <= a <= 1.0 for a in result["accuracy"])
    assert result["accuracy"][0] > 0.85  # two epochs of dense training on the digits


def test_imp_without_rewinding_continues_from_trained_weights():
    net = Sequential(Linear(5, 6, seed=0), ReLU(), Linear(6, 3, seed=1))
    starts = []

    def train_fn(m, masks):
        starts.append(m.state_dict())
        for p in m.parameters().values():
            p += 1.0

    result = iterative_magnitude_pruning(net, train_fn, lambda m: 0.0, rounds=2, rate=0.5)
    for r in (1, 2):
        m = result["masks"][r]["0.weight"]
        expected = (starts[r - 1]["0.weight"] + 1.0) * m  # trained weights, newly masked
        np.testing.assert_allclose(starts[r]["0.weight"], expected)


def test_rewind_weights_loads_state_then_masks():
    net = Sequential(Linear(4, 3, seed=0))
    state = Sequential(Linear(4, 3, seed=9)).state_dict()
    mask = np.array([[1, 0, 1, 0]] * 3, dtype=np.float32)
    assert rewind_weights(net, state, {"0.weight": mask}) is net
    np.testing.assert_array_equal(net.parameters()["0.weight"], state["0.weight"] * mask)
    np.testing.assert_array_equal(net.parameters()["0.bias"], state["0.bias"])


# ---------------------------------------------------------------- validation
@pytest.mark.parametrize("args, error", [
    ((0, -0.1, 0.9, 0, 10), ValueError), ((0, 0.0, 1.01, 0, 10), ValueError), ((0, 0.0, float("nan"), 0, 10), ValueError),
    ((0, 0.6, 0.5, 0, 10), ValueError), ((0, 0.0, 0.9, 10, 9), ValueError), ((-1, 0.0, 0.9, 0, 10), ValueError),
    ((0.5, 0.0, 0.9, 0, 10), TypeError), ((0, None, 0.9, 0, 10), TypeError), ((0, 0.0, 0.9, 0, 10, -2), ValueError),
    ((0, 0.0, 0.9, 0, 10, "3"), TypeError), ((0, 0.0, 0.9, True, 10), TypeError),
])
def test_polynomial_sparsity_rejects_bad_input(args, error):
    with pytest.raises(error):
        polynomial_sparsity(*args)


@pytest.mark.parametrize("kwargs, error", [
    ({"frequency": 0}, ValueError), ({"frequency": 1.5}, TypeError), ({"final_sparsity": -0.2}, ValueError),
    ({"scope": "per-layer"}, ValueError), ({"begin_step": 10, "end_step": 5}, ValueError),
    ({"initial_sparsity": 0.95, "final_sparsity": 0.9}, ValueError),
])
def test_gradual_pruner_rejects_bad_settings(kwargs, error):
    with pytest.raises(error):
        GradualPruner(**kwargs)


def test_gradual_pruner_rejects_unknown_names():
    with pytest.raises(ValueError, match="nope"):
        GradualPruner(final_sparsity=0.5, begin_step=0, end_step=0, names=["nope"]).update(make_mlp(), 0)


@pytest.mark.parametrize("args, error", [
    (({"w": np.ones(3, dtype=np.float32)}, None, 1.2), ValueError),
    (({"w": np.ones(3, dtype=np.float32)}, None, 0.5, "all"), ValueError),
    (({"w": np.array([1.0, np.inf], dtype=np.float32)}, None, 0.5), ValueError),
    (({"w": np.zeros(0, dtype=np.float32)}, None, 0.5), ValueError),
    (({"w": np.arange(3)}, None, 0.5), TypeError),
    (({"w": np.ones(3, dtype=np.float32)}, {"v": np.ones(3)}, 0.5), ValueError),
    (({"w": np.ones(3, dtype=np.float32)}, {"w": np.ones(4)}, 0.5), ValueError),
    (({"w": np.ones(3, dtype=np.float32)}, {"w": np.full(3, 0.5)}, 0.5), ValueError),
    (({}, None, 0.5), TypeError),
])
def test_prune_survivors_rejects_bad_input(args, error):
    with pytest.raises(error):
        prune_survivors(*args)


@pytest.mark.parametrize("kwargs, error", [
    ({"rounds": -1}, ValueError), ({"rounds": 2.0}, TypeError), ({"rate": 1.5}, ValueError),
    ({"rewind_state": "theta0"}, TypeError), ({"scope": "layer"}, ValueError), ({"names": ["x"]}, ValueError),
])
def test_imp_rejects_bad_input(kwargs, error):
    with pytest.raises(error):
        iterative_magnitude_pruning(Sequential(Linear(3, 2, seed=0)), lambda m, k: None, lambda m: 1.0, **kwargs)


def test_rewind_weights_rejects_mismatched_masks():
    net = Sequential(Linear(3, 2, seed=0))
    with pytest.raises(ValueError):
        rewind_weights(net, net.state_dict(), {"0.weight": np.ones((3, 2))})
    with pytest.raises(ValueError):
        rewind_weights(net, net.state_dict(), {"1.weight": np.ones((2, 3))})
    with pytest.raises(TypeError):
        rewind_weights(net, [1, 2], {})
