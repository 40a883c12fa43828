"""Integrity checks that run inside the grading kernel (this file's text is sent as the
notebook's first cell; it is never imported by the grader).

Before any student code runs, `baseline()` records the identity of everything a test relies
on: IPython's input and AST transformers, exception handlers, event callbacks and the shell
and kernel methods that run cells and send replies; trace and profile functions; import
hooks; builtins; numpy, math and the due `tinytorch` modules' functions. Before each graded
cell the grader sends a guard that prints one JSON line: the job's nonce for that guard and
the names of whatever differs from the baseline. The grader, outside the kernel, checks that
line. `plain()` wraps every value a graded cell reads, so an object whose comparisons or
truth value lie fails the test instead of passing it.
"""
import builtins as _b
import importlib as _il
import json as _json
import sys as _sys
import threading as _th

import numpy as _np

_SHELL = ("run_cell", "run_cell_async", "run_ast_nodes", "run_code", "transform_cell", "transform_ast",
          "showtraceback", "_showtraceback", "showsyntaxerror", "get_exception_only", "user_expressions",
          "should_run_async", "ex", "ev", "safe_execfile", "_run_cell", "dummy_mode")
_KERNEL = ("do_execute", "execute_request", "dispatch_shell", "process_one", "send_response",
           "_publish_execute_input", "_publish_status")
_LIES = ("__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__bool__", "__len__", "__contains__",
         "__abs__", "__neg__", "__sub__", "__rsub__", "__add__", "__radd__", "__float__", "__int__",
         "__index__", "__round__", "__array__", "__array_ufunc__", "__array_function__",
         "__array_interface__", "__getattr__", "__getattribute__")
# builtins that ipykernel itself swaps on every execution
_OWN_CALLBACKS = ("matplotlib", "IPython", "ipykernel", "matplotlib_inline")
_VOLATILE = {"input", "raw_input", "getpass", "_", "__", "___"}
_PLAIN = (int, float, bool, complex, str, bytes, type(None), type, range, slice, type(Ellipsis))
_CONTAINERS = (list, tuple, dict, set, frozenset)
_DTYPES = tuple({type(_np.dtype(t)) for t in "?bhilqBHILQefdgFDGUSMmV"})
_MODULE = type(_np)
_TRUSTED = ("numpy", "pyopencl", "matplotlib", "tinytorch", "scipy", "onnx", "onnxruntime", "google")
_ORDER = {"__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__"}


class Tampered(BaseException):
    """A graded cell read a value that is not plain data (not caught by `except Exception`)."""


def _ids(items):
    return [id(x) for x in items]


def _watched_modules():
    names = ["numpy", "numpy.linalg", "numpy.random", "numpy.testing", "math", "builtins"]
    names += sorted(n for n in _sys.modules if n == "tinytorch" or n.startswith("tinytorch."))
    return names


def _state():
    ip = get_ipython()  # noqa: F821 (IPython's builtin in the kernel)
    k = getattr(ip, "kernel", None)
    session = getattr(k, "session", None)
    state = {
        "input transformers": _ids(ip.input_transformers_cleanup) + _ids(ip.input_transformers_post),
        "input transformer manager": _ids(ip.input_transformer_manager.cleanup_transforms)
        + _ids(ip.input_transformer_manager.line_transforms)
        + _ids(getattr(ip.input_transformer_manager, "token_transformers", [])),
        "AST transformers": _ids(ip.ast_transformers),
        "trace function": [id(_sys.gettrace()), id(_sys.getprofile()),
                           id(_th.gettrace()), id(_th.getprofile())],
        "custom exception handler": [repr(ip.custom_exceptions), id(ip.CustomTB)],
        "event callbacks": sorted(f"{e}:{id(cb)}" for e, cbs in ip.events.callbacks.items() for cb in cbs
                                  if not str(getattr(cb, "__module__", "")).startswith(_OWN_CALLBACKS)),
        "shell methods": {n: id(getattr(type(ip), n, None)) for n in _SHELL},
        "shell instance overrides": sorted(n for n in vars(ip) if n in _SHELL),
        "kernel methods": {n: id(getattr(type(k), n, None)) for n in _KERNEL},
        "kernel instance overrides": sorted(n for n in vars(k) if n in _KERNEL) if k is not None else [],
        "reply channel": [id(session), id(getattr(type(session), "send", None)),
                          id(getattr(type(session), "serialize", None)),
                          sorted(n for n in vars(session) if n in ("send", "serialize", "sign"))],
        "display hooks": [id(_sys.displayhook), id(ip.displayhook),
                          id(ip.display_pub), id(type(ip.display_pub).publish)],
        "import hooks": _ids(_sys.meta_path) + _ids(_sys.path_hooks),
        "modules": {n: id(_sys.modules[n]) for n in _watched_modules() if n in _sys.modules},
        "integrity helpers": [id(plain), id(guard), id(Tampered)],
    }
    for name in _watched_modules():
        module = _sys.modules.get(name)
        if module is not None:
            state["module " + name] = {a: id(v) for a, v in list(vars(module).items())
                                       if not a.startswith("__") and (callable(v) or isinstance(v, _MODULE))}
    return state


_BASE = {}
_NAMES = {}  # name in __main__ -> id, recorded after the locked cell that defines it


def baseline(due):
    """Import the due package and record the clean state (the grader's first cell)."""
    for name in due:
        _il.import_module(name)
    _BASE.update(_state())


def record(*names):
    """Appended by the grader to each locked given cell: remember what it defined."""
    main = _sys.modules["__main__"].__dict__
    for name in names:
        if name in main:
            _NAMES[name] = id(main[name])


def _diff():
    now = _state()
    changed = []
    for key, before in _BASE.items():
        after = now.get(key)
        if isinstance(before, dict) and key.startswith("module "):
            bad = sorted(a for a, i in before.items() if a not in _VOLATILE and (after is None or after.get(a) != i))
            changed += [f"{key[7:]}.{a} replaced" for a in bad[:5]]
        elif isinstance(before, dict) and key == "modules":
            changed += [f"module {n} replaced" for n, i in before.items() if after.get(n, i) != i]
        elif after != before:
            changed.append(f"{key} changed")
    main = _sys.modules["__main__"].__dict__
    changed += [f"given name {n!r} redefined" for n, i in _NAMES.items() if id(main.get(n)) != i]
    return changed


def guard(index, nonce):
    """Print this guard's verdict as one JSON line (checked by the grader)."""
    _sys.stdout.write(_json.dumps({"guard": index, "nonce": nonce, "changed": _diff()}) + "\n")
    _sys.stdout.flush()


def _defined_outside_builtins(kind, name):
    """Whether the class that gives `kind` its `name` method is one the student could write."""
    for klass in kind.__mro__:
        if name in vars(klass):
            return klass.__module__ != "builtins"
    return False


def _generated(kind, name):
    """Whether kind's `name` method is the one @dataclass wrote (not the student)."""
    code = getattr(vars(kind).get(name), "__code__", None)
    return code is not None and code.co_filename == "<string>"


def plain(value, _depth=0):
    """Return value if it is plain data (or an object whose comparisons cannot lie), else raise."""
    kind = type(value)
    if kind in _PLAIN or kind in _DTYPES:
        return value
    if kind is _np.ndarray:
        if value.dtype.kind == "O":
            raise Tampered("a graded cell read an object array; return numbers, not objects")
        return value
    if isinstance(value, _np.generic) and kind.__module__ == "numpy":
        return value
    if kind in _CONTAINERS:
        if _depth < 4:
            items = value.items() if kind is dict else value
            for n, item in enumerate(items):
                if n >= 10000:
                    break
                if kind is dict:
                    plain(item[0], _depth + 1)
                    plain(item[1], _depth + 1)
                else:
                    plain(item, _depth + 1)
        return value
    if isinstance(value, (_b.type(_np), _b.type(len), _b.type(plain))) or callable(value) and kind.__module__ == "builtins":
        return value
    module = _sys.modules.get(getattr(kind, "__module__", "") or "")
    if (kind.__module__.split(".")[0] in _TRUSTED and module is not None
            and getattr(module, kind.__name__, None) is kind):
        return value
    lies = [n for n in _LIES if _defined_outside_builtins(kind, n)]
    fields = getattr(kind, "__dataclass_fields__", None)
    if fields and lies and set(lies) <= _ORDER and all(_generated(kind, n) for n in lies):
        # a dataclass compares its fields as a tuple: they must be plain then
        for name in fields:
            plain(getattr(value, name, None), _depth + 1)
        lies = []
    if lies or getattr(value, "__class__", kind) is not kind:
        raise Tampered(f"a graded cell read a {kind.__qualname__} that defines {', '.join(lies[:4]) or '__class__'}: "
                       "tests compare plain data (numbers, strings, numeric arrays, lists, dicts)")
    return value
