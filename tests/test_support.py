"""tinytorch.support (module 00): the package's one home of input checks and timing."""
import numpy as np
import pytest

from tinytorch.nn import Linear, ReLU, Sequential, make_mlp, predict
from tinytorch.support import (inference_mode, is_inference, median_times_ms, validate_float_array, validate_int,
                               validate_mask, validate_sparsity, validate_weights)


def test_inference_mode_skips_checks_and_restores_the_flag_after_an_error():
    bad = np.array([[np.nan, 1.0]], np.float32)
    with pytest.raises(ValueError, match="x"):
        validate_float_array(bad, "x")
    with pytest.raises(RuntimeError):
        with inference_mode():
            assert is_inference()
            assert validate_float_array(bad, "x") is bad  # no check inside
            raise RuntimeError("leave the block by an error")
    assert not is_inference()
    with pytest.raises(ValueError, match="x"):
        validate_float_array(bad, "x")


def test_inference_path_gives_the_same_logits_and_keeps_nothing_for_backward():
    model = make_mlp(seed=3)
    x = np.random.default_rng(0).normal(size=(7, 64)).astype(np.float32)
    checked = model.forward(x)
    fresh = Sequential(ReLU())
    with inference_mode():
        fast = model.forward(x)
        fresh.forward(x)
    assert np.array_equal(checked, fast)
    assert np.array_equal(predict(model, x), checked)
    with pytest.raises(RuntimeError, match="before forward"):
        fresh.backward(np.ones_like(x))  # nothing was cached in inference mode


def test_predict_still_validates_its_input_once():
    with pytest.raises(ValueError, match="X"):
        predict(make_mlp(), np.full((2, 64), np.inf, np.float32))
    with pytest.raises(ValueError, match="in_features|columns"):
        predict(Sequential(Linear(3, 2)), np.ones((2, 4), np.float32))  # a shape slip still fails


def test_median_times_ms_interleaves_and_validates():
    calls = []
    t = median_times_ms({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeats=3, warmup=1)
    assert set(t) == {"a", "b"} and all(v >= 0 for v in t.values())
    assert calls == ["a", "b"] * 4
    with pytest.raises(TypeError, match="fns"):
        median_times_ms({"a": 1})
    with pytest.raises(ValueError, match="repeats"):
        median_times_ms({"a": lambda: None}, repeats=0)


@pytest.mark.parametrize("call,error,word", [
    (lambda: validate_weights(np.array([], np.float32)), ValueError, "weights"),
    (lambda: validate_weights(np.array([True]), name="w"), TypeError, "w"),
    (lambda: validate_sparsity(1.5), ValueError, "sparsity"),
    (lambda: validate_sparsity(float("nan")), ValueError, "sparsity"),
    (lambda: validate_int(2.0, "n"), TypeError, "n"),
    (lambda: validate_int(-1, "n", minimum=0), ValueError, "n"),
    (lambda: validate_mask(np.array([0.0, 0.5]), (2,)), ValueError, "mask"),
])
def test_validators_name_the_argument(call, error, word):
    with pytest.raises(error, match=word):
        call()
