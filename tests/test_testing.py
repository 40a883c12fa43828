"""Package tests for tinytorch.testing (module 00): expect_error, the check behind every
bad-input test in the graded cells."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinytorch.testing import describe_call, expect_error


def raiser(error):
    def fn(*args, **kwargs):
        raise error
    return fn


def quiet(*args, **kwargs):
    return "fine"


def test_returns_the_expected_error():
    err = ValueError("sparsity must be in [0, 1], got 1.5")
    assert expect_error(ValueError, raiser(err)) is err
    assert expect_error((TypeError, ValueError), raiser(err)) is err
    assert expect_error(Exception, raiser(err)) is err          # a subclass counts
    assert expect_error(ValueError, raiser(err), match="sparsity") is err


def test_passes_arguments_through():
    seen = []

    def record(*args, **kwargs):
        seen.append((args, kwargs))
        raise TypeError("x")

    expect_error(TypeError, record, 1, "a", key=np.ones(2))
    assert seen[0][0] == (1, "a") and list(seen[0][1]) == ["key"]
    # fn's own keywords may be called fn or error_types: expect_error's are positional-only
    expect_error(TypeError, record, fn=1, error_types=2)
    assert seen[1][1] == {"fn": 1, "error_types": 2}


def test_nothing_raised_fails_and_says_what_was_called():
    with pytest.raises(AssertionError) as info:
        expect_error(ValueError, quiet, 3, flag=True)
    text = str(info.value)
    assert "quiet(3, flag=True)" in text and "expected ValueError" in text and "nothing was raised" in text


def test_wrong_error_fails_and_says_what_happened():
    with pytest.raises(AssertionError) as info:
        expect_error(ValueError, raiser(KeyError("nope")), "w")
    text = str(info.value)
    assert "expected ValueError" in text and "got KeyError" in text and "nope" in text
    assert isinstance(info.value.__cause__, KeyError)
    # an untouched stub raises NotImplementedError: that is a failure, not a pass
    with pytest.raises(AssertionError, match="got NotImplementedError"):
        expect_error((TypeError, ValueError), raiser(NotImplementedError()))


def test_match_must_appear_in_the_message():
    with pytest.raises(AssertionError) as info:
        expect_error(ValueError, raiser(ValueError("weights is empty")), match="sparsity")
    text = str(info.value)
    assert "naming 'sparsity'" in text and "weights is empty" in text
    assert isinstance(info.value.__cause__, ValueError)


def test_bad_use_is_a_type_error():
    with pytest.raises(TypeError, match="error_types"):
        expect_error("ValueError", quiet)
    with pytest.raises(TypeError, match="error_types"):
        expect_error((), quiet)
    with pytest.raises(TypeError, match="error_types"):
        expect_error((ValueError, int), quiet)
    with pytest.raises(TypeError, match="fn"):
        expect_error(ValueError, 3)
    with pytest.raises(TypeError, match="match"):
        expect_error(ValueError, raiser(ValueError("x")), match=1)


def test_messages_stay_short_for_big_arguments():
    text = describe_call(quiet, (np.zeros((300, 200), np.float32), "s" * 500), {"k": list(range(1000))})
    assert "array(shape=(300, 200), dtype=float32)" in text
    assert len(text) < 250 and "\n" not in text
    assert describe_call(np.linalg.norm, (np.ones(2),)).startswith("norm(array([1., 1.])")


def test_writes_nothing_to_stdout_or_stderr(capfd):
    expect_error(ValueError, raiser(ValueError("a")), match="a")
    for call in (lambda: expect_error(ValueError, quiet), lambda: expect_error(ValueError, raiser(KeyError()))):
        with pytest.raises(AssertionError):
            call()
    out, err = capfd.readouterr()
    assert out == "" and err == ""


@given(message=st.text(max_size=40), start=st.integers(0, 40), length=st.integers(0, 40))
def test_any_substring_of_the_message_matches(message, start, length):
    part = message[start:start + length]
    assert expect_error(ValueError, raiser(ValueError(message)), match=part).args == (message,)
