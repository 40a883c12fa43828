"""tinytorch.nn (module 00): gradients against finite differences and against PyTorch
(a reference only), state dicts, optimisers, input validation, and real training runs."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytorch.data import as_images, load_digits_split
from tinytorch.nn import (SGD, Adam, Conv2d, CrossEntropyLoss, Flatten, Linear, MaxPool2d, Module, ReLU,
                          Sequential, accuracy, col2im, count_flops, evaluate, im2col, make_cnn, make_mlp,
                          numerical_gradient, predict, softmax, train)

torch.set_num_threads(1)


def t64(a):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


@pytest.fixture(scope="module")
def digits():
    return load_digits_split(test_fraction=0.25, seed=0)


# ---------------------------------------------------------------- numerical gradient helper
def test_numerical_gradient_of_known_function_and_restores_input():
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    before = x.copy()
    grad = numerical_gradient(lambda: float(np.sum(x ** 3)), x, eps=1e-4)
    assert np.allclose(grad, 3 * before ** 2, rtol=1e-6)
    assert np.array_equal(x, before)


def test_numerical_gradient_uses_the_step_really_taken_in_float32():
    x = np.array([1000.0, 3.0], dtype=np.float32)  # fl(1000 + 1e-3) - 1000 != 1e-3 in float32
    grad = numerical_gradient(lambda: 2.0 * float(x.astype(np.float64).sum()), x, eps=1e-3)
    assert np.allclose(grad, 2.0, rtol=1e-9)


# ---------------------------------------------------------------- Linear
def test_linear_layout_init_and_determinism():
    layer = Linear(64, 128, seed=7)
    assert layer.weight.shape == (128, 64) and layer.bias.shape == (128,)
    assert layer.weight.dtype == np.float32 and layer.bias.dtype == np.float32
    bound = np.sqrt(6 / 64)
    assert np.abs(layer.weight).max() <= bound
    assert layer.weight.std() == pytest.approx(bound / np.sqrt(3), rel=0.05)  # std of U(-b, b)
    assert np.array_equal(layer.weight, Linear(64, 128, seed=7).weight)
    assert not np.array_equal(layer.weight, Linear(64, 128, seed=8).weight)
    assert set(layer.parameters()) == set(layer.gradients()) == {"weight", "bias"}
    assert layer.parameters()["weight"] is layer.weight


def test_linear_matches_torch_forward_and_backward():
    rng = np.random.default_rng(0)
    layer = Linear(7, 5, seed=1)
    layer.bias[...] = rng.normal(size=5)
    x = rng.normal(size=(6, 7))
    g = rng.normal(size=(6, 5))
    out = layer.forward(x)
    dx = layer.backward(g)
    xt, wt, bt = t64(x), t64(layer.weight), t64(layer.bias)
    ref = F.linear(xt, wt, bt)
    ref.backward(torch.tensor(g))
    assert np.allclose(out, ref.detach().numpy(), atol=1e-6)
    assert np.allclose(dx, xt.grad.numpy(), atol=1e-6)
    assert np.allclose(layer.grad_weight, wt.grad.numpy(), atol=1e-5)
    assert np.allclose(layer.grad_bias, bt.grad.numpy(), atol=1e-5)


def test_linear_gradients_accumulate_in_place_and_zero_grad_resets():
    layer = Linear(3, 2, seed=0)
    grads = layer.gradients()
    x = np.ones((4, 3), np.float32)
    g = np.ones((4, 2), np.float32)
    layer.forward(x)
    layer.backward(g)
    first = grads["weight"].copy()
    assert np.allclose(first, 4.0)
    layer.forward(x)
    layer.backward(g)
    assert grads["weight"] is layer.grad_weight
    assert np.allclose(layer.grad_weight, 2 * first)
    layer.zero_grad()
    assert not layer.grad_weight.any() and not layer.grad_bias.any()


# ---------------------------------------------------------------- im2col / Conv2d / MaxPool2d
CONV_CASES = [  # (N, C_in, H, W, C_out, kernel, stride, padding)
    (2, 1, 8, 8, 4, 3, 1, 1),
    (3, 2, 7, 6, 3, 3, 2, 1),
    (1, 3, 5, 5, 2, (2, 3), 1, 0),
    (2, 2, 6, 6, 5, 1, 1, 0),
    (1, 1, 9, 7, 2, 4, 3, 2),
]


@pytest.mark.parametrize("n,c,h,w,c_out,k,stride,pad", CONV_CASES)
def test_conv2d_matches_torch(n, c, h, w, c_out, k, stride, pad):
    rng = np.random.default_rng(n * 100 + h)
    conv = Conv2d(c, c_out, k, stride=stride, padding=pad, seed=3)
    conv.bias[...] = rng.normal(size=c_out)
    x = rng.normal(size=(n, c, h, w)).astype(np.float32)
    out = conv.forward(x)
    g = rng.normal(size=out.shape).astype(np.float32)
    dx = conv.backward(g)
    xt, wt, bt = t64(x), t64(conv.weight), t64(conv.bias)
    ref = F.conv2d(xt, wt, bt, stride=stride, padding=pad)
    ref.backward(torch.tensor(g, dtype=torch.float64))
    assert out.shape == tuple(ref.shape) and out.dtype == np.float32
    assert np.allclose(out, ref.detach().numpy(), atol=1e-4)
    assert np.allclose(dx, xt.grad.numpy(), atol=1e-4)
    assert np.allclose(conv.grad_weight, wt.grad.numpy(), atol=1e-3)
    assert np.allclose(conv.grad_bias, bt.grad.numpy(), atol=1e-3)


def test_conv2d_backward_matches_finite_differences():
    rng = np.random.default_rng(5)
    conv = Conv2d(2, 3, 3, stride=2, padding=1, seed=1)
    x = rng.normal(size=(2, 2, 5, 5))
    g = rng.normal(size=conv.forward(x).shape)
    conv.forward(x)
    dx = conv.backward(g)

    def f():
        return float(np.sum(g * conv.forward(x)))

    assert np.allclose(dx, numerical_gradient(f, x, eps=1e-5), atol=1e-7)
    assert np.allclose(conv.grad_weight, numerical_gradient(f, conv.weight), rtol=1e-3, atol=1e-3)
    assert np.allclose(conv.grad_bias, numerical_gradient(f, conv.bias), rtol=1e-3, atol=1e-3)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 3), c=st.integers(1, 3), h=st.integers(1, 7), w=st.integers(1, 7),
       k=st.integers(1, 4), stride=st.integers(1, 3), pad=st.integers(0, 2), seed=st.integers(0, 10_000))
def test_col2im_is_the_adjoint_of_im2col(n, c, h, w, k, stride, pad, seed):
    """<im2col(x), C> == <x, col2im(C)> for every x and C: exactly what backward needs."""
    if h + 2 * pad < k or w + 2 * pad < k:
        with pytest.raises(ValueError, match="kernel_size"):
            im2col(np.zeros((n, c, h, w)), k, stride, pad)
        return
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, c, h, w))
    cols, (h_out, w_out) = im2col(x, k, stride, pad)
    assert (h_out, w_out) == ((h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1)
    assert cols.shape == (n * h_out * w_out, c * k * k)
    C = rng.normal(size=cols.shape)
    assert np.isclose(np.sum(cols * C), np.sum(x * col2im(C, x.shape, k, stride, pad)))


def test_maxpool_matches_torch_including_odd_sizes():
    rng = np.random.default_rng(0)
    for shape, k in [((2, 3, 8, 8), 2), ((1, 2, 7, 5), 2), ((2, 1, 9, 9), 3)]:
        x = rng.normal(size=shape).astype(np.float32)
        pool = MaxPool2d(k)
        out = pool.forward(x)
        g = rng.normal(size=out.shape).astype(np.float32)
        dx = pool.backward(g)
        xt = t64(x)
        ref = F.max_pool2d(xt, k)
        ref.backward(torch.tensor(g, dtype=torch.float64))
        assert np.array_equal(out, ref.detach().numpy().astype(np.float32))
        assert np.allclose(dx, xt.grad.numpy())


def test_relu_and_flatten_backward():
    x = np.array([[-1.0, 0.0, 2.0]], np.float32)
    relu = ReLU()
    assert np.array_equal(relu.forward(x), [[0.0, 0.0, 2.0]])
    assert np.array_equal(relu.backward(np.full_like(x, 3.0)), [[0.0, 0.0, 3.0]])
    flat = Flatten()
    images = np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2)
    out = flat.forward(images)
    assert out.shape == (2, 12) and np.array_equal(out[1], np.arange(12, 24))
    assert np.array_equal(flat.backward(out), images)


# ---------------------------------------------------------------- softmax and cross-entropy
def test_softmax_and_cross_entropy_match_torch():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(8, 10)) * 4
    y = rng.integers(0, 10, size=8)
    assert np.allclose(softmax(z), torch.softmax(torch.tensor(z), dim=1).numpy(), atol=1e-12)
    loss_fn = CrossEntropyLoss()
    value = loss_fn(z, y)
    zt = t64(z)
    ref = F.cross_entropy(zt, torch.tensor(y))
    ref.backward()
    assert isinstance(value, float)
    assert value == pytest.approx(ref.item(), abs=1e-12)
    assert np.allclose(loss_fn.backward(), zt.grad.numpy(), atol=1e-12)


def test_cross_entropy_is_stable_for_huge_logits():
    loss_fn = CrossEntropyLoss()
    z = np.array([[1e4, 0.0, -1e4], [0.0, 0.0, 0.0]], dtype=np.float32)
    with np.errstate(all="raise"):
        try:
            value = loss_fn(z, np.array([2, 1]))
        except FloatingPointError:  # underflow of exp(-2e4) to 0 is fine; overflow is not
            with np.errstate(under="ignore", over="raise", invalid="raise", divide="raise"):
                value = loss_fn(z, np.array([2, 1]))
    assert value == pytest.approx((2e4 + np.log(3)) / 2, rel=1e-6)
    assert np.all(np.isfinite(loss_fn.backward()))


def test_cross_entropy_gradient_matches_finite_differences():
    rng = np.random.default_rng(3)
    z = rng.normal(size=(5, 4))
    y = np.array([0, 3, 3, 1, 2])
    loss_fn = CrossEntropyLoss()
    loss_fn(z, y)
    assert np.allclose(loss_fn.backward(), numerical_gradient(lambda: loss_fn(z, y), z, eps=1e-5), atol=1e-8)


def test_accuracy_and_argmax_ties():
    z = np.array([[0.2, 0.8], [0.5, 0.5], [0.9, 0.1]])
    assert accuracy(z, np.array([1, 0, 1])) == pytest.approx(2 / 3)
    assert isinstance(accuracy(z, np.array([1, 0, 0])), float)


# ---------------------------------------------------------------- whole networks
def test_mlp_gradient_matches_finite_differences_end_to_end():
    rng = np.random.default_rng(0)
    model = make_mlp(seed=1, hidden=(6, 5))
    x = rng.normal(size=(4, 64))
    y = np.array([0, 3, 9, 3])
    loss_fn = CrossEntropyLoss()

    def f():
        return loss_fn(model.forward(x), y)

    f()
    model.backward(loss_fn.backward())
    grads = {k: g.copy() for k, g in model.gradients().items()}
    for name, param in model.parameters().items():
        numeric = numerical_gradient(f, param, eps=1e-3)
        assert np.allclose(grads[name], numeric, rtol=2e-2, atol=2e-4), name


def test_cnn_gradient_matches_finite_differences_end_to_end():
    rng = np.random.default_rng(1)
    model = make_cnn(seed=2)
    x = rng.normal(size=(2, 1, 8, 8))
    y = np.array([4, 7])
    loss_fn = CrossEntropyLoss()

    def f():
        return loss_fn(model.forward(x), y)

    f()
    dx = model.backward(loss_fn.backward())
    assert dx.shape == x.shape
    assert np.allclose(dx, numerical_gradient(f, x, eps=1e-6), rtol=1e-3, atol=1e-7)
    grads = model.gradients()
    for name in ("0.weight", "3.bias", "7.weight"):
        numeric = numerical_gradient(f, model.parameters()[name], eps=1e-3)
        assert np.allclose(grads[name], numeric, rtol=2e-2, atol=5e-4), name


def _torch_cnn():
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(64, 10)).double()


def test_state_dict_names_and_layout_are_pytorch_compatible(digits):
    """Loading our state_dict into the same PyTorch architecture gives the same logits:
    names, weight layouts, NCHW and the flatten order all agree."""
    ours = make_cnn(seed=0)
    ours.parameters()["7.bias"][...] = np.linspace(-1, 1, 10)
    ref = _torch_cnn()
    state = ours.state_dict()
    assert set(state) == set(ref.state_dict())
    ref.load_state_dict({k: torch.tensor(v, dtype=torch.float64) for k, v in state.items()})
    x = as_images(digits.X_test[:32])
    with torch.no_grad():
        expected = ref(torch.tensor(x, dtype=torch.float64)).numpy()
    assert np.allclose(ours.forward(x), expected, atol=1e-4)
    mlp = make_mlp()
    assert list(mlp.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]


def test_state_dict_round_trip_is_a_copy_and_restores_outputs(digits):
    model = make_mlp(seed=0)
    x = digits.X_test[:16]
    before = model.forward(x).copy()
    snapshot = model.state_dict()
    for p in model.parameters().values():
        p += 1.0
    assert not np.allclose(model.forward(x), before)
    assert not any(np.shares_memory(snapshot[k], p) for k, p in model.parameters().items())
    arrays_before = {k: id(p) for k, p in model.parameters().items()}
    model.load_state_dict(snapshot)
    assert {k: id(p) for k, p in model.parameters().items()} == arrays_before  # copied in place
    assert np.array_equal(model.forward(x), before)
    other = make_mlp(seed=5)
    other.load_state_dict(snapshot)
    assert np.array_equal(other.forward(x), before)


@pytest.mark.parametrize("mutate,error,word", [
    (lambda s: s.pop("0.bias"), ValueError, "missing"),
    (lambda s: s.update({"9.weight": np.zeros(3, np.float32)}), ValueError, "unexpected"),
    (lambda s: s.update({"2.weight": np.zeros((3, 3), np.float32)}), ValueError, "2.weight"),
    (lambda s: s["4.bias"].__setitem__(0, np.nan), ValueError, "4.bias"),
    (lambda s: s.update({"0.bias": [0.0] * 128}), TypeError, "0.bias"),
])
def test_load_state_dict_rejects_bad_state_and_changes_nothing(mutate, error, word):
    model = make_mlp(seed=0)
    original = model.state_dict()
    state = make_mlp(seed=1).state_dict()
    mutate(state)
    with pytest.raises(error, match=word):
        model.load_state_dict(state)
    for name, value in model.state_dict().items():
        assert np.array_equal(value, original[name])
    with pytest.raises(TypeError, match="state"):
        model.load_state_dict([("0.weight", original["0.weight"])])


# ---------------------------------------------------------------- optimisers
def _torch_params(arrays):
    return [torch.tensor(a.astype(np.float64), requires_grad=True) for a in arrays]


@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_optimizers_match_torch_over_several_steps(kind):
    rng = np.random.default_rng(0)
    ps = {"a": rng.normal(size=(3, 4)), "b": rng.normal(size=5)}
    gs = {k: np.zeros_like(v) for k, v in ps.items()}
    tps = _torch_params(ps.values())
    if kind == "sgd":
        ours, ref = SGD(ps, gs, lr=0.05, momentum=0.9), torch.optim.SGD(tps, lr=0.05, momentum=0.9)
    else:
        ours, ref = Adam(ps, gs, lr=0.01), torch.optim.Adam(tps, lr=0.01, eps=1e-8)
    arrays = list(ps.values())
    for step in range(6):
        for (name, g), tp in zip(gs.items(), tps):
            g[...] = rng.normal(size=g.shape) * (step + 1)
            tp.grad = torch.tensor(g.copy())
        ours.step()
        ref.step()
        for a, tp in zip(ps.values(), tps):
            assert np.allclose(a, tp.detach().numpy(), atol=1e-10), f"{kind} step {step}"
    assert all(a is b for a, b in zip(ps.values(), arrays))  # updated in place


def test_optimizer_zero_grad_and_masks_survive_steps():
    layer = Linear(4, 3, seed=0)
    mask = (np.arange(12).reshape(3, 4) % 2).astype(np.float32)
    layer.weight *= mask
    opt = Adam(layer.parameters(), layer.gradients(), lr=0.1)
    x = np.ones((2, 4), np.float32)
    for _ in range(3):
        opt.zero_grad()
        layer.forward(x)
        layer.backward(np.ones((2, 3), np.float32))
        opt.step()
        layer.weight *= mask
    assert np.all(layer.weight[mask == 0] == 0)
    opt.zero_grad()
    assert not layer.grad_weight.any()


# ---------------------------------------------------------------- validation
def _lin():
    return Linear(4, 3)


@pytest.mark.parametrize("call,error,word", [
    (lambda: _lin().forward(np.ones((2, 5), np.float32)), ValueError, "x"),
    (lambda: _lin().forward(np.ones((2, 4), np.int32)), TypeError, "x"),
    (lambda: _lin().forward(np.full((2, 4), np.nan, np.float32)), ValueError, "NaN"),
    (lambda: _lin().forward(np.ones((0, 4), np.float32)), ValueError, "empty"),
    (lambda: _lin().forward([[1.0, 2.0, 3.0, 4.0]]), TypeError, "x"),
    (lambda: _lin().backward(np.ones((2, 3), np.float32)), RuntimeError, "before forward"),
    (lambda: Linear(0, 3), ValueError, "in_features"),
    (lambda: Linear(True, 3), TypeError, "in_features"),
    (lambda: Linear(3, 3, seed=-1), ValueError, "seed"),
    (lambda: Linear(3, 3, seed=1.5), TypeError, "seed"),
    (lambda: Conv2d(1, 2, 3).forward(np.ones((1, 2, 5, 5), np.float32)), ValueError, "in_channels"),
    (lambda: Conv2d(1, 2, 3).forward(np.ones((1, 5, 5), np.float32)), ValueError, "4-D"),
    (lambda: Conv2d(1, 2, 5).forward(np.ones((1, 1, 3, 3), np.float32)), ValueError, "kernel_size"),
    (lambda: Conv2d(1, 2, 3, padding=-1), ValueError, "padding"),
    (lambda: Conv2d(1, 2, "3"), TypeError, "kernel_size"),
    (lambda: MaxPool2d(2).forward(np.ones((1, 1, 1, 4), np.float32)), ValueError, "pooling window"),
    (lambda: Sequential(Linear(2, 2), "relu"), TypeError, "layers"),
    (lambda: softmax(np.ones(3)), ValueError, "logits"),
    (lambda: CrossEntropyLoss()(np.ones((2, 3)), np.array([0, 5])), ValueError, "labels"),
    (lambda: CrossEntropyLoss()(np.ones((2, 3)), np.array([0.0, 1.0])), TypeError, "labels"),
    (lambda: CrossEntropyLoss()(np.ones((2, 3)), np.array([True, False])), TypeError, "labels"),
    (lambda: CrossEntropyLoss().backward(), RuntimeError, "before forward"),
    (lambda: accuracy(np.ones((2, 3)), np.array([0])), ValueError, "labels"),
    (lambda: SGD({"w": np.ones(2)}, {"w": np.ones(3)}, lr=0.1), ValueError, "grads"),
    (lambda: SGD({"w": np.ones(2)}, {"w": np.ones(2)}, lr=0.0), ValueError, "lr"),
    (lambda: SGD({"w": np.ones(2)}, {"w": np.ones(2)}, lr=0.1, momentum=1.0), ValueError, "momentum"),
    (lambda: Adam({}, {}, lr=0.1), ValueError, "empty"),
    (lambda: Adam({"w": np.ones(2, np.int64)}, {"w": np.ones(2, np.int64)}), TypeError, "floating"),
    (lambda: count_flops(make_mlp(), 64), ValueError, "input_shape"),
    (lambda: predict("model", np.ones((2, 64), np.float32)), TypeError, "model"),
])
def test_bad_input_raises_naming_the_problem(call, error, word):
    with pytest.raises(error, match=word):
        call()


def test_train_validates_its_arguments(digits):
    model = make_mlp()
    X, y = digits.X_train[:64], digits.y_train[:64]
    for kwargs, error, word in [
        (dict(epochs=0), ValueError, "epochs"),
        (dict(lr=-0.1), ValueError, "lr"),
        (dict(optimizer="rmsprop"), ValueError, "optimizer"),
        (dict(after_step=3), TypeError, "after_step"),
        (dict(X_val=X), ValueError, "together"),
        (dict(batch_size=0), ValueError, "batch_size"),
    ]:
        args = dict(epochs=1, lr=0.01) | kwargs
        with pytest.raises(error, match=word):
            train(model, X, y, **args)
    with pytest.raises(ValueError, match="y"):
        train(model, X, y[:10], epochs=1, lr=0.01)


# ---------------------------------------------------------------- training on real data
def test_train_is_deterministic_and_calls_after_step(digits):
    X, y = digits.X_train[:256], digits.y_train[:256]
    calls = []
    a, b = make_mlp(seed=3), make_mlp(seed=3)
    hist_a = train(a, X, y, epochs=2, lr=0.01, batch_size=50, seed=4, after_step=lambda m: calls.append(m))
    hist_b = train(b, X, y, epochs=2, lr=0.01, batch_size=50, seed=4)
    assert hist_a == hist_b
    assert all(np.array_equal(p, b.parameters()[k]) for k, p in a.parameters().items())
    assert len(calls) == 2 * 6 and all(m is a for m in calls)  # ceil(256 / 50) = 6 steps per epoch
    assert len(hist_a["loss"]) == len(hist_a["train_acc"]) == 2 and hist_a["val_acc"] == []
    c = make_mlp(seed=3)
    assert train(c, X, y, epochs=2, lr=0.01, batch_size=50, seed=5)["loss"] != hist_a["loss"]


def test_after_step_masks_keep_pruned_weights_at_zero(digits):
    model = make_mlp(seed=0)
    w = model.parameters()["0.weight"]
    mask = (np.random.default_rng(0).random(w.shape) > 0.8).astype(np.float32)
    w *= mask
    train(model, digits.X_train, digits.y_train, epochs=2, lr=0.01, optimizer="sgd",
          after_step=lambda m: m.parameters()["0.weight"].__imul__(mask))
    assert np.all(model.parameters()["0.weight"][mask == 0] == 0)
    assert np.any(model.parameters()["0.weight"][mask == 1] != 0)


def test_mlp_reaches_95_percent_test_accuracy(digits):
    model = make_mlp(seed=0)
    history = train(model, digits.X_train, digits.y_train, epochs=30, lr=1e-2, seed=0,
                    X_val=digits.X_test, y_val=digits.y_test)
    acc = evaluate(model, digits.X_test, digits.y_test)
    assert acc >= 0.95, acc
    assert acc == history["val_acc"][-1]
    assert history["loss"][-1] < history["loss"][0] / 10


def test_cnn_reaches_95_percent_test_accuracy(digits):
    model = make_cnn(seed=0)
    train(model, as_images(digits.X_train), digits.y_train, epochs=30, lr=1e-2, seed=0)
    logits = predict(model, as_images(digits.X_test), batch_size=100)
    assert logits.shape == (len(digits.y_test), 10)
    assert accuracy(logits, digits.y_test) >= 0.95


def test_count_flops_and_parameter_counts():
    assert count_flops(make_mlp(), (64,)) == 2 * (64 * 128 + 128 * 64 + 64 * 10)
    assert count_flops(make_cnn(), (1, 8, 8)) == 2 * (9 * 8 * 64 + 72 * 16 * 16 + 64 * 10)
    assert make_mlp().num_parameters() == 64 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10
    assert isinstance(make_cnn(), Module) and len(make_cnn()) == 8
