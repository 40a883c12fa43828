"""tinytorch.nn BatchNorm1d/BatchNorm2d against PyTorch (a reference only): forward, backward,
running statistics, eval mode; Residual against finite differences; bad input."""
import copy

import numpy as np
import pytest
import torch

from tinytorch.nn import (Adam, BatchNorm1d, BatchNorm2d, Conv2d, Linear, ReLU, Residual, Sequential,
                          iter_modules, numerical_gradient, set_train_mode)

torch.set_num_threads(1)


def _pair(cls, shape, seed):
    """A tinytorch BN and a torch BN with the same random gamma/beta, and float64 input."""
    rng = np.random.default_rng(seed)
    c = shape[1]
    ours = cls(c, momentum=0.2)
    ours.weight[...] = rng.uniform(0.5, 2.0, c)
    ours.bias[...] = rng.normal(size=c)
    ref = (torch.nn.BatchNorm1d if len(shape) == 2 else torch.nn.BatchNorm2d)(c, momentum=0.2).double()
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(ours.weight.astype(np.float64)))
        ref.bias.copy_(torch.tensor(ours.bias.astype(np.float64)))
    x = rng.normal(loc=1.5, scale=2.0, size=shape)
    return ours, ref, x, rng


@pytest.mark.parametrize("cls, shape", [(BatchNorm1d, (7, 5)), (BatchNorm2d, (4, 3, 5, 6)), (BatchNorm1d, (2, 3))])
def test_batchnorm_training_forward_backward_matches_torch(cls, shape):
    ours, ref, x, rng = _pair(cls, shape, seed=len(shape))
    g = rng.normal(size=shape)
    y = ours.forward(x)
    xt = torch.tensor(x, requires_grad=True)
    yt = ref(xt)
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-6, atol=1e-6)
    dx = ours.backward(g)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.grad_weight, ref.weight.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours.grad_bias, ref.bias.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours.running_mean, ref.running_mean.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ours.running_var, ref.running_var.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls, shape", [(BatchNorm1d, (6, 4)), (BatchNorm2d, (3, 2, 4, 4))])
def test_running_statistics_over_several_batches_and_eval_mode(cls, shape):
    ours, ref, _, rng = _pair(cls, shape, seed=11)
    for step in range(5):
        x = rng.normal(loc=step, scale=1 + step, size=shape)
        ours.forward(x)
        ref(torch.tensor(x))
    np.testing.assert_allclose(ours.running_mean, ref.running_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.running_var, ref.running_var.numpy(), rtol=1e-5, atol=1e-5)
    ours.eval()
    ref.eval()
    x = rng.normal(size=(1,) + shape[1:])   # one sample is fine in eval mode
    g = rng.normal(size=x.shape)
    xt = torch.tensor(x, requires_grad=True)
    yt = ref(xt)
    yt.backward(torch.tensor(g))
    before = ours.running_mean.copy()
    np.testing.assert_allclose(ours.forward(x), yt.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.backward(g), xt.grad.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(ours.running_mean, before)   # eval never updates the statistics


def test_batchnorm_float32_in_float32_out_and_gradient_check():
    bn = BatchNorm1d(3)
    x = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
    assert bn.forward(x).dtype == np.float32
    assert bn.backward(np.ones((8, 3), np.float32)).dtype == np.float32
    bn2 = BatchNorm2d(2)
    bn2.weight[...] = [0.7, 1.3]
    x64 = np.random.default_rng(1).normal(size=(3, 2, 2, 3))
    g = np.random.default_rng(2).normal(size=x64.shape)
    bn2.forward(x64)
    analytic = bn2.backward(g)
    numeric = numerical_gradient(lambda: float(np.sum(g * bn2.forward(x64))), x64, eps=1e-5)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7)


def test_gamma_beta_are_parameters_the_optimizer_and_state_dict_handle():
    model = Sequential(Linear(4, 6, seed=0), BatchNorm1d(6), ReLU(), Linear(6, 2, seed=1))
    assert set(model.parameters()) == {"0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias"}
    assert model.parameters()["1.weight"] is model.layers[1].weight
    opt = Adam(model.parameters(), model.gradients(), lr=0.1)
    x = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    model.forward(x)
    model.backward(np.ones((10, 2), np.float32))
    gamma_before = model.layers[1].weight.copy()
    opt.step()
    assert not np.array_equal(model.layers[1].weight, gamma_before)
    state = model.state_dict()
    model.layers[1].weight[...] = 5.0
    model.load_state_dict(state)
    np.testing.assert_array_equal(model.layers[1].weight, state["1.weight"])


def test_set_train_mode_reaches_batchnorm_inside_residual_and_sequential():
    inner = BatchNorm2d(2)
    model = Sequential(Conv2d(1, 2, 3, padding=1), Residual(Sequential(inner, ReLU())), BatchNorm2d(2))
    names = [name for name, _ in iter_modules(model)]
    assert names == ["", "0", "1", "1.branch", "1.branch.0", "1.branch.1", "2"]
    set_train_mode(model, False)
    assert not inner.training and not model.layers[2].training
    set_train_mode(model, True)
    assert inner.training and model.layers[2].training


def test_residual_gradients_match_finite_differences():
    rng = np.random.default_rng(3)
    branch = Sequential(Linear(5, 5, seed=1), ReLU(), Linear(5, 5, seed=2))
    shortcut = Linear(5, 5, seed=3)
    for block in (Residual(branch), Residual(copy.deepcopy(branch), shortcut)):
        for p in block.parameters().values():
            p[...] = rng.normal(size=p.shape)
        x = rng.normal(size=(4, 5))
        g = rng.normal(size=(4, 5))
        block.forward(x)
        dx = block.backward(g)

        def loss():
            return float(np.sum(g * block.forward(x)))

        np.testing.assert_allclose(dx, numerical_gradient(loss, x, eps=1e-6), rtol=1e-5, atol=1e-6)
        for name, p in block.parameters().items():
            np.testing.assert_allclose(block.gradients()[name], numerical_gradient(loss, p, eps=1e-6),
                                       rtol=1e-4, atol=1e-5, err_msg=name)
    # identity shortcut: output is branch + x
    x = rng.normal(size=(2, 5))
    np.testing.assert_allclose(Residual(branch).forward(x), branch.forward(x) + x)
    assert set(Residual(branch, shortcut).parameters()) == {
        "branch.0.weight", "branch.0.bias", "branch.2.weight", "branch.2.bias", "shortcut.weight", "shortcut.bias"}


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="num_features"):
        BatchNorm1d(0)
    with pytest.raises(TypeError, match="num_features"):
        BatchNorm2d(2.0)
    with pytest.raises(ValueError, match="momentum"):
        BatchNorm1d(3, momentum=1.5)
    bn = BatchNorm1d(3)
    with pytest.raises(ValueError, match="x"):
        bn.forward(np.ones((4, 2), np.float32))
    with pytest.raises(ValueError, match="x"):
        bn.forward(np.ones((1, 3), np.float32))          # one value per channel in training mode
    with pytest.raises(ValueError, match="x"):
        BatchNorm2d(3).forward(np.ones((4, 3), np.float32))
    with pytest.raises(TypeError, match="x"):
        bn.forward(np.ones((4, 3), np.int32))
    with pytest.raises(RuntimeError):
        BatchNorm1d(2).backward(np.ones((2, 2)))
    with pytest.raises(TypeError, match="branch"):
        Residual("not a module")
    with pytest.raises(TypeError, match="shortcut"):
        Residual(ReLU(), shortcut=3)
    with pytest.raises(ValueError, match="shape"):
        Residual(Linear(3, 2)).forward(np.ones((2, 3), np.float32))
    with pytest.raises(TypeError, match="training"):
        set_train_mode(Sequential(BatchNorm1d(2)), "no")


def test_inference_mode_path_matches_eval_forward():
    from tinytorch.nn import predict
    model = Sequential(Conv2d(1, 3, 3, padding=1, seed=0), BatchNorm2d(3), ReLU(),
                       Residual(Sequential(Conv2d(3, 3, 3, padding=1, seed=1), BatchNorm2d(3))))
    rng = np.random.default_rng(0)
    for _, m in iter_modules(model):
        if isinstance(m, BatchNorm2d):
            m.weight[...], m.bias[...] = rng.uniform(0.5, 1.5, 3), rng.normal(size=3)
            m.running_mean[...], m.running_var[...] = rng.normal(size=3), rng.uniform(0.5, 2, 3)
    set_train_mode(model, False)
    x = rng.normal(size=(4, 1, 5, 5)).astype(np.float32)
    np.testing.assert_allclose(predict(model, x), model.forward(x), rtol=1e-5, atol=1e-5)
