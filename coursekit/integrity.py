"""Grading integrity, on the trusted side: instrument a prepared notebook, then judge the run.

Student code and tests share one kernel under nbgrader, so the grader combines four means,
each covering what the others cannot:

1. *Static scan* of every cell the student controls for the APIs that tampering needs (IPython
   hooks, trace functions, frame and import machinery, rebinding numpy or tinytorch names,
   comparison dunders). Cheap, catches copy-pasted attacks; flags, never scores by itself.
2. *Guards*: before every graded cell a trusted cell prints the kernel's state against the
   baseline recorded before any student code ran (kernel_guard.py); the verdict is read here,
   outside the kernel, and must carry that guard's random nonce.
3. *Canaries*: tests that must fail with their own nonce, hidden among the graded cells. A hook
   that rewrites, skips or silences later cells makes them pass.
4. *Plain data*: every value a graded cell reads goes through `plain()`, so an object that
   claims to equal anything fails the test.

Whatever runtime check fails zeroes the graded cells from that point on, and the submission
is flagged with the reason.
"""
from __future__ import annotations

import ast
import copy
import functools
import hashlib
import json
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .notebooks import grading_meta, is_graded, is_exercise

GUARD_SOURCE = (Path(__file__).with_name("kernel_guard.py")).read_text(encoding="utf-8")
ERROR_NAME = "IntegrityError"

# (pattern, reason) for the static scan of student-controlled cells
SUSPICIOUS = [(re.compile(p), why) for p, why in [
    (r"\bget_ipython\b|\bInteractiveShell\b|\bipykernel\b|\bIPython\b", "reaches into the IPython kernel"),
    (r"input_transformers|ast_transformers|set_custom_exc|events\.register|register_magic",
     "installs an IPython hook"),
    (r"\bsettrace\b|\bsetprofile\b|\bsys\.monitoring\b", "installs a trace function"),
    (r"\bsys\.modules\b|\bmeta_path\b|\bpath_hooks\b|\bimportlib\b|__import__", "manipulates imports"),
    (r"\bbuiltins\b|__builtins__", "touches builtins"),
    (r"_getframe|\bf_back\b|\bf_globals\b|\bf_locals\b|\bgc\.get_(?:referrers|objects)\b|\bctypes\b",
     "inspects frames or memory"),
    (r"NBGRADER_EXECUTION|\bnbgrader\b", "looks for the grader"),
    (r"\b_cg_\w+|kernel_guard|\bTampered\b", "touches the grader's checks"),
    (r"def\s+__(?:eq|ne|lt|le|gt|ge|bool|contains|getattr|getattribute|array\w*)__\b",
     "defines a comparison or truth method"),
    (r"\b(?:exec|eval|compile)\s*\(", "runs generated code"),
    (r"\bos\.(?:fork|kill|killpg|setsid|_exit)\b|\bsubprocess\b|\bsignal\.", "manages processes"),
]]
PATCHED_ROOTS = {"np", "numpy", "math", "tinytorch", "builtins", "sys", "nn", "testing"}


def student_cells(nb) -> list[tuple[str, str]]:
    """(label, source) of every code cell the student controls: exercises and added cells."""
    out = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        meta = grading_meta(cell)
        if is_exercise(cell) or not meta:
            out.append((meta.get("grade_id") or f"added cell {index}", cell.source))
    return out


def _patches(source: str) -> list[str]:
    """Names of numpy/tinytorch/builtins attributes a cell assigns (`np.allclose = ...`)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    hits = []
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else []
        for target in targets:
            root = target
            while isinstance(root, (ast.Attribute, ast.Subscript)):
                root = root.value
            if isinstance(target, ast.Attribute) and isinstance(root, ast.Name) and root.id in PATCHED_ROOTS:
                hits.append(ast.unparse(target))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("setattr", "delattr"):
            hits.append(f"{node.func.id}({ast.unparse(node.args[0]) if node.args else ''}, ...)")
    return hits


def static_scan(nb) -> list[str]:
    """Reasons a reviewer should look at this submission (empty when none)."""
    reasons = []
    for label, source in student_cells(nb):
        for pattern, why in SUSPICIOUS:
            match = pattern.search(source)
            if match:
                reasons.append(f"{label} {why} ({match.group(0).strip()})")
        reasons += [f"{label} rebinds {name}" for name in _patches(source)]
    return reasons


class _Plain(ast.NodeTransformer):
    """Wrap every value a graded cell loads (names, attributes, subscripts, call results)."""

    def __init__(self, helper: str):
        self.helper = helper

    def _wrap(self, node):
        return ast.copy_location(ast.Call(ast.Name(self.helper, ast.Load()), [node], []), node)

    def visit_Call(self, node):
        node.args = [self.visit(a) for a in node.args]
        node.keywords = [self.visit(k) for k in node.keywords]
        if not isinstance(node.func, ast.Name):  # a method's object is loaded through plain() too
            node.func = self.generic_visit(node.func) if isinstance(node.func, ast.Attribute) else node.func
        return self._wrap(node)

    def visit_Attribute(self, node):
        self.generic_visit(node)
        return self._wrap(node) if isinstance(node.ctx, ast.Load) else node

    def visit_Subscript(self, node):
        self.generic_visit(node)
        return self._wrap(node) if isinstance(node.ctx, ast.Load) else node

    def visit_Name(self, node):
        return self._wrap(node) if isinstance(node.ctx, ast.Load) and node.id != self.helper else node


_HELPER_SLOT = "_cg_helper_slot_"


def plain_wrapped(source: str, helper: str) -> str:
    """The graded cell's source with every loaded value checked by `helper`; unchanged if it
    is not plain Python (IPython magics)."""
    if _HELPER_SLOT in source:
        return _wrapped(source, helper)
    # the tests are the same in every submission: rewrite each once, then fill in the helper
    return _wrapped(source, _HELPER_SLOT).replace(_HELPER_SLOT, helper)


@functools.lru_cache(maxsize=4096)
def _wrapped(source: str, helper: str) -> str:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    tree = ast.fix_missing_locations(_Plain(helper).visit(tree))
    return ast.unparse(tree)


def defined_names(source: str) -> list[str]:
    """Public top-level functions and classes, and the imports, a given cell defines (a
    student's cell may rebind private helpers of its own; never what the tests call)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    names = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
            names.append(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names += [(a.asname or a.name).split(".")[0] for a in node.names if a.name != "*"]
    return names


@dataclass
class Plan:
    """An instrumented notebook and what each of its cells is for."""

    nb: nbformat.NotebookNode
    roles: list[tuple]  # per instrumented cell: ("preamble",), ("guard", k, nonce), ("canary", nonce), ("cell", i)
    static: list[str] = field(default_factory=list)


# canary tests: (source, the true value for `a`); `b` is always the truth plus 1..9, so each must fail
CANARIES = [
    ("_n = len(list(range({a})))\nassert _n == {b}, f\"expected {b} items, got {{_n}} ({nonce})\"",
     lambda a: a),
    ("_v = sum(i * i for i in range({a}))\nassert _v == {b}, f\"sum of squares: expected {b}, got {{_v}} ({nonce})\"",
     lambda a: sum(i * i for i in range(a))),
    ("_s = sorted([{a}, {b}, 1])\nassert _s[0] == {b}, f\"smallest of the three: expected {b}, got {{_s[0]}} ({nonce})\"",
     lambda a: 1),
]


def canary_source(rng, nonce: str) -> str:
    """A small test that must fail with `nonce` in its message, whatever the numbers drawn."""
    template, truth = rng.choice(CANARIES)
    a = rng.randint(3, 40)
    return template.format(a=a, b=truth(a) + rng.randint(1, 9), nonce=nonce)


def instrument(nb, due_modules: list[str], canaries: int = 3) -> Plan:
    """Insert the preamble, a guard before each graded cell and canaries; check graded cells' values."""
    token = secrets.token_hex(6)
    ns = f"_cg_{token}"
    helper = f"{ns}.plain"
    preamble = (f"import types as _cg_types\n{ns} = _cg_types.ModuleType({ns!r})\n"
                f"exec(compile({GUARD_SOURCE!r}, '<grader>', 'exec'), {ns}.__dict__)\n"
                f"del _cg_types\n{ns}.baseline({due_modules!r})\n{ns}.record({ns!r})")
    out = copy.deepcopy(nb)
    cells, roles = [nbformat.v4.new_code_cell(preamble)], [("preamble",)]
    graded = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and is_graded(c)]
    rng = secrets.SystemRandom()
    canary_at = set(rng.sample(graded, min(len(graded), canaries)))
    for index, cell in enumerate(out.cells):
        if cell.cell_type == "code" and is_graded(cell):
            nonce = secrets.token_hex(8)
            cells.append(nbformat.v4.new_code_cell(f"{ns}.guard({len(roles)}, {nonce!r})"))
            roles.append(("guard", len(roles), nonce))
            if index in canary_at:
                nonce = secrets.token_hex(8)
                cells.append(nbformat.v4.new_code_cell(plain_wrapped(canary_source(rng, nonce), helper)))
                roles.append(("canary", nonce))
            cell.source = plain_wrapped(cell.source, helper)
        elif cell.cell_type == "code" and grading_meta(cell).get("locked") and not is_exercise(cell):
            names = defined_names(cell.source)
            if names:
                cell.source += f"\n{ns}.record(*{names!r})"
        cells.append(cell)
        roles.append(("cell", index))
    out.cells = cells
    for position, cell in enumerate(out.cells):
        cell.id = f"cg-{position}"
    return Plan(out, roles, static_scan(nb))


def signature(nb) -> str:
    """Fingerprint of a prepared notebook's cells (to match a job's result to its notebook)."""
    text = "\x00".join(c.cell_type + "\x01" + c.source for c in nb.cells)
    return hashlib.sha256(text.encode()).hexdigest()


def _errors(cell) -> list:
    return [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]


def _executed(cell) -> bool:
    return cell.get("execution_count") is not None or bool(cell.get("outputs"))


@dataclass
class Verdict:
    flags: list[str]  # runtime findings: they zero graded cells
    review: list[str]  # static findings: shown, not scored
    zero_from: int | None  # instrumented position from which graded cells score 0


def verify(plan: Plan, executed) -> Verdict:
    flags: list[str] = []
    zero_from = None

    def hit(position, reason):
        nonlocal zero_from
        if reason not in flags:
            flags.append(reason)
        zero_from = position if zero_from is None else min(zero_from, position)

    for position, (role, cell) in enumerate(zip(plan.roles, executed.cells)):
        if not _executed(cell):
            continue
        if role[0] == "guard":
            _, index, nonce = role
            lines = [line for o in cell.get("outputs", []) if o.get("output_type") == "stream"
                     for line in o.get("text", "").splitlines()]
            reports = []
            for line in lines:
                try:
                    data = json.loads(line)
                except ValueError:
                    continue
                if isinstance(data, dict) and data.get("guard") == index and data.get("nonce") == nonce:
                    reports.append(data)
            if len(reports) != 1 or _errors(cell):
                hit(position, "an integrity check did not run as sent: cells are being rewritten, skipped or silenced")
            elif reports[0].get("changed"):
                changed = [str(c) for c in reports[0]["changed"]][:6]
                hit(position, "kernel tampering: " + "; ".join(changed))
        elif role[0] == "canary":
            errs = _errors(cell)
            if not (errs and errs[0].get("ename") == "AssertionError" and role[1] in errs[0].get("evalue", "")):
                hit(position, "a test that must fail passed: cells are being rewritten or errors swallowed")
        elif role[0] == "cell":
            for err in _errors(cell):
                if err.get("ename") == "Tampered":
                    gid = grading_meta(cell).get("grade_id", "?")
                    reason = f"{gid}: {err.get('evalue', '')}"[:300]
                    if reason not in flags:
                        flags.append(reason)
    return Verdict(flags, plan.static, zero_from)


def restore(original, plan: Plan, executed, verdict: Verdict, stopped: str | None = None):
    """The original notebook with the run's outputs; graded cells that tampering reached, or
    that never ran because a limit stopped the kernel, carry an error (they score 0)."""
    out = copy.deepcopy(original)
    for position, (role, cell) in enumerate(zip(plan.roles, executed.cells)):
        if role[0] != "cell":
            continue
        target = out.cells[role[1]]
        if target.cell_type != "code":
            continue
        target.outputs = cell.get("outputs", [])
        target.execution_count = cell.get("execution_count")
        if not is_graded(target):
            continue
        reason = None
        if verdict.zero_from is not None and position > verdict.zero_from:
            reason = "grading integrity check failed before this cell: " + verdict.flags[0]
        elif not _executed(cell):
            reason = f"not run: the notebook was stopped by the {stopped or 'kernel (it stopped answering)'}"
        if reason:
            target.outputs.append(nbformat.v4.new_output(
                "error", ename=ERROR_NAME, evalue=reason, traceback=[f"{ERROR_NAME}: {reason}"]))
    return out
