"""tinytorch.structure (module 08): slimming penalty, channel selection and removal, BN folding and
channel sorting invariants, residual dependency groups, the SVD error bound, the distillation
gradient, and the ONNX round trip through onnxruntime; bad input."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytorch.nn import (BatchNorm1d, BatchNorm2d, Conv2d, Linear, Module, ReLU, Residual, Sequential,
                          numerical_gradient, set_train_mode)
from tinytorch.structure import (ChannelGroup, add_l1_subgradient, count_model_flops, dependency_groups,
                                 distillation_loss, fold_all_batchnorms, fold_batchnorm, group_importance,
                                 low_rank_linear, make_bn_cnn, make_bn_mlp, make_residual_cnn, mask_bn_channels,
                                 mask_groups, named_batchnorms, onnx_latencies, onnx_session, round_keep, run_onnx,
                                 select_channels, shrink_bn_sequential, shrink_groups, slice_inputs, slice_outputs,
                                 sort_channels, to_onnx, train_bn)

torch.set_num_threads(1)
X_IMG = np.random.default_rng(0).random((5, 1, 8, 8)).astype(np.float32)


def randomised(model, seed):
    """Random BN scales, shifts, running statistics and biases; evaluation mode."""
    rng = np.random.default_rng(seed)
    for _, bn in named_batchnorms(model):
        n = bn.num_features
        bn.weight[...], bn.bias[...] = rng.uniform(0.3, 1.7, n) * rng.choice([-1, 1], n), rng.normal(0, 0.3, n)
        bn.running_mean[...], bn.running_var[...] = rng.normal(0, 0.5, n), rng.uniform(0.5, 2.0, n)
    for name, p in model.parameters().items():
        if name.endswith("bias") and p.ndim == 1 and not any(name.startswith(b + ".") for b, _ in named_batchnorms(model)):
            p[...] = rng.normal(0, 0.2, p.shape)
    return set_train_mode(model, False)


# ---------------------------------------------------------------- slimming
def test_l1_subgradient_is_the_penalty_gradient_and_training_shrinks_scales():
    model = randomised(make_bn_mlp(seed=0, hidden=(6, 4)), 1)
    model.zero_grad()
    penalty = add_l1_subgradient(model, 0.2)
    assert penalty == pytest.approx(0.2 * sum(np.abs(bn.weight).sum() for _, bn in named_batchnorms(model)), rel=1e-6)
    for _, bn in named_batchnorms(model):
        np.testing.assert_allclose(bn.grad_weight, 0.2 * np.sign(bn.weight))
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(128, 64)).astype(np.float32), rng.integers(0, 10, 128)
    plain, penalised = make_bn_mlp(seed=1, hidden=(16,)), make_bn_mlp(seed=1, hidden=(16,))
    train_bn(plain, X, y, epochs=20, lr=1e-2, l1=0.0, seed=0)
    train_bn(penalised, X, y, epochs=20, lr=1e-2, l1=0.05, seed=0)
    assert np.abs(penalised.layers[1].weight).sum() < 0.8 * np.abs(plain.layers[1].weight).sum()
    assert not penalised.layers[1].training   # train_bn leaves evaluation mode


def test_select_channels_prunes_the_global_count_with_per_layer_normalised_scores():
    model = make_bn_mlp(seed=0, hidden=(10, 6))
    rng = np.random.default_rng(3)
    model.layers[1].weight[...] = rng.uniform(0.1, 1.0, 10) * 0.01   # tiny scale: normalisation matters
    model.layers[4].weight[...] = rng.uniform(0.1, 1.0, 6)
    keep = select_channels(model, 0.5)
    assert sum(len(v) for v in keep.values()) == 8
    for name, idx in keep.items():
        g = np.abs(model.layers[int(name)].weight)
        dropped = np.setdiff1d(np.arange(len(g)), idx)
        if len(dropped):   # inside a layer, every kept channel outranks every dropped one
            assert g[idx].min() >= g[dropped].max()
    assert len(keep["1"]) >= 2   # a raw global threshold would empty the tiny-scale layer


@pytest.mark.parametrize("builder, shape", [(lambda: make_bn_cnn(seed=2, widths=(6, 9)), (1, 8, 8)),
                                            (lambda: make_bn_mlp(seed=2, hidden=(12, 7)), (64,))])
def test_shrunk_equals_masked_and_counts_drop(builder, shape):
    model = randomised(builder(), 4)
    x = X_IMG.reshape((5,) + shape)
    keep = select_channels(model, 0.6)
    small = shrink_bn_sequential(model, keep)
    np.testing.assert_allclose(small.forward(x), mask_bn_channels(model, keep).forward(x), atol=1e-5)
    assert small.num_parameters() < model.num_parameters()
    assert count_model_flops(small, shape) < count_model_flops(model, shape)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_folding_and_sorting_do_not_change_the_function(seed):
    model = randomised(make_bn_cnn(seed=seed % 7, widths=(5, 6)), seed)
    reference = model.forward(X_IMG)
    folded = fold_all_batchnorms(model)
    assert not named_batchnorms(folded)
    np.testing.assert_allclose(folded.forward(X_IMG), reference, atol=1e-4)
    sorted_model, orders = sort_channels(model)
    np.testing.assert_allclose(sorted_model.forward(X_IMG), reference, atol=1e-5)
    for name, order in orders.items():
        assert sorted(order.tolist()) == list(range(len(order)))
        g = np.abs(sorted_model.layers[int(name)].weight)
        assert np.all(np.diff(g) <= 0)


def test_fold_batchnorm_matches_torch_conv_bn_in_eval_mode():
    conv = Conv2d(3, 4, 3, stride=1, padding=1, seed=0)
    bn = randomised(Sequential(BatchNorm2d(4)), 3).layers[0]
    x = np.random.default_rng(1).normal(size=(2, 3, 6, 6)).astype(np.float32)
    tconv, tbn = torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4).eval()
    with torch.no_grad():
        tconv.weight.copy_(torch.tensor(conv.weight)); tconv.bias.copy_(torch.tensor(conv.bias))
        for attr, arr in (("weight", bn.weight), ("bias", bn.bias), ("running_mean", bn.running_mean), ("running_var", bn.running_var)):
            getattr(tbn, attr).copy_(torch.tensor(arr))
        want = tbn(tconv(torch.tensor(x))).numpy()
    np.testing.assert_allclose(fold_batchnorm(conv, bn).forward(x), want, atol=1e-5)


def test_round_keep_rounds_counts_and_keeps_the_top_channels():
    model = randomised(make_bn_cnn(seed=0, widths=(16, 32)), 2)
    keep = {"1": np.arange(5), "5": np.arange(21)}
    rounded = round_keep(model, keep, 8)
    assert [len(v) for v in rounded.values()] == [8, 24]
    g = np.abs(model.layers[5].weight)
    assert set(rounded["5"].tolist()) == set(np.argsort(-g, kind="stable")[:24].tolist())


# ---------------------------------------------------------------- residual groups
def test_residual_groups_shrink_exactly_like_the_mask():
    model = randomised(make_residual_cnn(seed=3, width=6), 5)
    groups = dependency_groups(model, 1)
    tied = [g for g in groups if len(g.producers) == 2][0]
    assert tied.producers == ["0", "3.branch.3"] and tied.prunable
    keep = {}
    for i, g in enumerate(groups):
        if g.prunable:
            keep[i] = np.sort(np.argsort(-group_importance(model, g), kind="stable")[: max(1, g.channels // 2)])
    small = shrink_groups(model, groups, keep)
    np.testing.assert_allclose(small.forward(X_IMG), mask_groups(model, groups, keep).forward(X_IMG), atol=1e-5)
    assert count_model_flops(small, (1, 8, 8)) < count_model_flops(model, (1, 8, 8)) / 2


def test_groups_with_projection_shortcut_and_without_batchnorm():
    model = Sequential(Linear(4, 6, seed=1), ReLU(),
                       Residual(Sequential(Linear(6, 5, seed=2), ReLU(), Linear(5, 5, seed=3)), shortcut=Linear(6, 5, seed=4)),
                       ReLU(), Linear(5, 3, seed=5))
    randomised(model, 0)
    groups = dependency_groups(model, 4)
    assert [g.producers for g in groups] == [[], ["0"], ["2.branch.0"], ["2.branch.2", "2.shortcut"], ["4"]]
    assert isinstance(groups[0], ChannelGroup) and not groups[0].prunable and not groups[-1].prunable
    keep = {1: [0, 2, 5], 3: [1, 3]}
    x = np.random.default_rng(2).normal(size=(4, 4)).astype(np.float32)
    np.testing.assert_allclose(shrink_groups(model, groups, keep).forward(x), mask_groups(model, groups, keep).forward(x), atol=1e-5)


def test_slice_helpers_permute_and_validate():
    lin = Linear(8, 3, seed=0)
    w = lin.weight.copy()
    slice_outputs(lin, [2, 0, 1])
    np.testing.assert_array_equal(lin.weight, w[[2, 0, 1]])
    slice_inputs(lin, [1, 3], hw=2)     # channels 1 and 3 of 4, two features each
    assert lin.weight.shape == (3, 4) and lin.in_features == 4
    np.testing.assert_array_equal(lin.weight, w[[2, 0, 1]][:, [2, 3, 6, 7]])
    with pytest.raises(ValueError, match="idx"):
        slice_outputs(BatchNorm1d(3), [0, 0])
    with pytest.raises(TypeError, match="layer"):
        slice_inputs(ReLU(), [0])


# ---------------------------------------------------------------- low rank
@settings(max_examples=25, deadline=None)
@given(m=st.integers(1, 12), n=st.integers(1, 12), energy=st.floats(0.05, 1.0), seed=st.integers(0, 1000))
def test_svd_error_bound_is_the_dropped_singular_values(m, n, energy, seed):
    layer = Linear(n, m, seed=seed)
    layer.bias[...] = np.random.default_rng(seed).normal(size=m)
    pair, info = low_rank_linear(layer, energy)
    s = np.linalg.svd(layer.weight.astype(np.float64), compute_uv=False)   # reference: numpy's SVD
    r = info["rank"]
    assert 1 <= r <= min(m, n)
    cumulative = np.cumsum(s ** 2) / np.sum(s ** 2)
    assert cumulative[r - 1] >= energy - 1e-9 and (r == 1 or cumulative[r - 2] < energy)
    w_r = pair.layers[1].weight.astype(np.float64) @ pair.layers[0].weight.astype(np.float64)
    bound = np.sqrt(np.sum(s[r:] ** 2))
    assert np.linalg.norm(layer.weight - w_r) == pytest.approx(bound, abs=1e-4 * (1 + s[0]))
    assert info["params_after"] == r * n + r + m * r + m and info["flops_after"] == 2 * r * (m + n)


# ---------------------------------------------------------------- distillation
def test_distillation_loss_and_gradient_match_torch():
    rng = np.random.default_rng(0)
    s, t = rng.normal(size=(6, 5)) * 2, rng.normal(size=(6, 5)) * 3
    y = rng.integers(0, 5, 6)
    loss, grad = distillation_loss(s, t, y, temperature=3.0, alpha=0.6)
    st_ = torch.tensor(s, requires_grad=True)
    kl = F.kl_div(F.log_softmax(st_ / 3.0, dim=1), F.softmax(torch.tensor(t) / 3.0, dim=1), reduction="batchmean")
    ref = 0.6 * 9.0 * kl + 0.4 * F.cross_entropy(st_, torch.tensor(y))
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-9)
    np.testing.assert_allclose(grad, st_.grad.numpy(), atol=1e-10)
    numeric = numerical_gradient(lambda: distillation_loss(s, t, y, 3.0, 0.6)[0], s, eps=1e-6)
    np.testing.assert_allclose(grad, numeric, atol=1e-6)


# ---------------------------------------------------------------- ONNX round trip
@pytest.mark.parametrize("builder, shape", [(lambda: make_bn_cnn(seed=1, widths=(4, 6)), (1, 8, 8)),
                                            (lambda: make_residual_cnn(seed=1, width=4), (1, 8, 8)),
                                            (lambda: make_bn_mlp(seed=1, hidden=(9,)), (64,))])
def test_onnx_round_trip_matches_tinytorch(builder, shape):
    import onnx
    model = randomised(builder(), 6)
    x = X_IMG.reshape((5,) + shape)
    for net in (model, fold_all_batchnorms(model)):
        proto = to_onnx(net, shape)
        onnx.checker.check_model(proto)
        restored = onnx.load_from_string(proto.SerializeToString())
        np.testing.assert_allclose(run_onnx(onnx_session(restored), x), net.forward(x), atol=1e-4)
    ms = onnx_latencies({"a": onnx_session(to_onnx(model, shape))}, x, repeats=3, warmup=1)
    assert ms["a"] > 0


def test_onnx_export_of_a_slimmed_network_is_smaller():
    model = randomised(make_bn_cnn(seed=0, widths=(8, 16)), 1)
    small = shrink_bn_sequential(model, select_channels(model, 0.5))
    big, little = to_onnx(fold_all_batchnorms(model), (1, 8, 8)), to_onnx(fold_all_batchnorms(small), (1, 8, 8))
    assert little.ByteSize() < big.ByteSize()
    np.testing.assert_allclose(run_onnx(onnx_session(little), X_IMG), small.forward(X_IMG), atol=1e-4)


# ---------------------------------------------------------------- bad input
class Unsupported(Module):
    """A layer to_onnx does not know."""

    def forward(self, x):
        return x


def test_bad_input_names_the_argument():
    mlp = make_bn_mlp(seed=0, hidden=(4,))
    cases = [
        (ValueError, "l1", lambda: add_l1_subgradient(mlp, -1.0)),
        (ValueError, "prune_ratio", lambda: select_channels(mlp, 2.0)),
        (ValueError, "BatchNorm", lambda: select_channels(Sequential(Linear(2, 2)), 0.5)),
        (ValueError, "keep", lambda: shrink_bn_sequential(mlp, {"0": [0]})),
        (TypeError, "model", lambda: shrink_bn_sequential(Linear(2, 2), {})),
        (ValueError, "channels", lambda: fold_batchnorm(Linear(2, 3), BatchNorm1d(2))),
        (TypeError, "bn", lambda: fold_batchnorm(Linear(2, 3), ReLU())),
        (TypeError, "model", lambda: sort_channels(Linear(2, 2))),
        (ValueError, "in_channels", lambda: dependency_groups(mlp, 0)),
        (ValueError, "cannot be pruned", lambda: shrink_groups(mlp, dependency_groups(mlp, 64), {0: [0]})),
        (ValueError, "energy", lambda: low_rank_linear(Linear(3, 3), 0.0)),
        (TypeError, "layer", lambda: low_rank_linear(Conv2d(1, 1, 1), 0.5)),
        (ValueError, "temperature", lambda: distillation_loss(np.zeros((1, 2)), np.zeros((1, 2)), np.array([0]), temperature=-1.0)),
        (ValueError, "teacher_logits", lambda: distillation_loss(np.zeros((1, 2)), np.zeros((2, 2)), np.array([0]))),
        (ValueError, "input_shape", lambda: to_onnx(mlp, (0,))),
        (TypeError, "Unsupported", lambda: to_onnx(Sequential(Linear(2, 2), Unsupported()), (2,))),
        (ValueError, "multiple", lambda: round_keep(make_bn_cnn(), {"1": [0]}, 0)),
        (ValueError, "input_shape", lambda: count_model_flops(mlp, (64, 0))),
    ]
    for error, text, call in cases:
        with pytest.raises(error, match=text):
            call()
