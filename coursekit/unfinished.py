"""Unfinished work fails clearly, decided at build time (no IPython hooks).

Two things, both plain code in the notebooks:

- Each exercise's stub names its exercise: nbgrader's `raise NotImplementedError()` becomes
  `raise NotImplementedError("Exercise 3 (accuracy) is not finished: ...")` (the
  `NamedStubs` preprocessor, run by `nbgrader generate_assignment` through
  `nbgrader_named_stubs.py`, so checksums and the gradebook agree with the release).
- A given or demo cell that uses a name an exercise defines, directly or through an earlier
  cell, starts with `_needs("accuracy", ...)`. `_needs` (defined in a small given cell added
  after the imports) stops the cell with "finish Exercise 3 (accuracy) first" while that
  exercise's code still holds its stub, instead of a NameError or KeyError further down.

Exported cells are left as written; a graded cell gets the check only when it reads a result
that a given cell computed from an exercise.
"""
from __future__ import annotations

import ast
import re
import symtable

import nbformat

from .notebooks import grading_meta, is_exercise, is_graded

EXERCISE_RE = re.compile(r"\bExercise\s+(\d+)\b")
UNFINISHED = "is not finished: replace this line with your code"
CHECK_ID = "unfinished-check"
CHECK_MARK = "# given: stops here, with a message, while an exercise it uses is unfinished"
DIRECTIVE = re.compile(r"^\s*#\|")


def exercise_labels(nb) -> dict[str, str]:
    """{exercise grade_id: "Exercise N (grade_id)"}, N as the markdown says it, else the order."""
    labels, pending, last, count = {}, None, None, 0
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            found = EXERCISE_RE.search(cell.source)
            if found:
                pending = int(found.group(1))
        elif is_exercise(cell):
            count += 1
            number = pending if pending is not None else (last if last is not None else count)
            pending, last = None, number
            gid = grading_meta(cell)["grade_id"]
            labels[gid] = f"Exercise {number} ({gid})"
    return labels


def named_stub(stub: str, label: str) -> str:
    return stub.replace("raise NotImplementedError()", f'raise NotImplementedError("{label} {UNFINISHED}")')


try:  # the preprocessor exists only where nbgrader is installed (the instructor's side)
    from nbgrader.preprocessors import ClearSolutions

    class NamedStubs(ClearSolutions):
        """nbgrader's ClearSolutions whose Python stub names the exercise it belongs to."""

        def preprocess(self, nb, resources):
            self._labels = exercise_labels(nb)
            return super().preprocess(nb, resources)

        def preprocess_cell(self, cell, resources, index):
            label = self._labels.get(grading_meta(cell).get("grade_id"))
            saved = dict(self.code_stub)
            if label and "python" in saved:
                self.code_stub = {**saved, "python": named_stub(saved["python"], label)}
            try:
                return super().preprocess_cell(cell, resources, index)
            finally:
                self.code_stub = saved
except ImportError:  # pragma: no cover
    pass


# ---------------------------------------------------------------- given-cell checks

def _parseable(code: str) -> str | None:
    """The cell as Python (IPython magics and shell lines blanked), or None if it does not parse."""
    lines = ["" if line.lstrip().startswith(("%", "!")) else line for line in code.split("\n")]
    text = "\n".join(lines)
    try:
        ast.parse(text)
    except SyntaxError:
        return None
    return text


def _top_level_nodes(tree):
    """Every node of the module outside function and class bodies."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            stack.extend(ast.iter_child_nodes(node))


def _uses_and_binds(code: str, top_only: bool = False) -> tuple[set[str], set[str]]:
    """(global names the cell reads, anywhere or with top_only at top level only: not inside
    the functions and classes it defines; global names it binds or mutates at top level)."""
    table = symtable.symtable(code, "<cell>", "exec")
    uses, binds = set(), set()

    def walk(tab, top):
        if top_only and not top:
            return
        for sym in tab.get_symbols():
            name = sym.get_name()
            if top:
                if sym.is_referenced():
                    uses.add(name)
                if sym.is_assigned() or sym.is_imported():
                    binds.add(name)
            elif sym.is_global() and sym.is_referenced():
                uses.add(name)
        for child in tab.get_children():
            walk(child, False)

    walk(table, True)
    # `results[key] = ...`, `model.weight = ...` at top level (not in a def or class) change
    # `results`, `model`
    for node in _top_level_nodes(ast.parse(code)):
        targets = []
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for target in targets:
            while isinstance(target, (ast.Subscript, ast.Attribute)):
                target = target.value
            if isinstance(target, ast.Name):
                binds.add(target.id)
    return uses, binds


def cell_needs(nb) -> dict[int, list[str]]:
    """{cell index: exercise grade_ids it waits for} for given and demo code cells."""
    deps: dict[str, set[str]] = {}
    order = [grading_meta(c)["grade_id"] for c in nb.cells if is_exercise(c)]
    out = {}
    direct: set[str] = set()  # names an exercise cell binds (even if a given cell changes them later)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        code = _parseable(cell.source)
        if code is None:
            continue
        uses, binds = _uses_and_binds(code)
        if is_exercise(cell):
            gid = grading_meta(cell)["grade_id"]
            for name in binds:
                deps[name] = {gid}
                direct.add(name)
            continue
        needed = set().union(*(deps.get(name, set()) for name in uses))
        # the check goes where the cell itself runs exercise code; a cell that only defines
        # functions using it (a test harness, a helper) runs fine and passes the need on
        top_uses, _ = _uses_and_binds(code, top_only=True)
        now = set().union(*(deps.get(name, set()) for name in top_uses))
        # a graded cell that reads what a given cell computed from an exercise (a question on
        # the module's results) says which exercise it waits for; one that calls the
        # exercise's own code fails with that code's named stub already
        indirect = set().union(*(deps.get(name, set()) for name in top_uses - binds - direct))
        for name in binds:
            deps[name] = deps.get(name, set()) | needed if name in uses else set(needed)
        exported = any(DIRECTIVE.match(line) and "export" in line for line in cell.source.split("\n"))
        if is_graded(cell):
            if indirect:
                out[index] = sorted(indirect, key=order.index)
        elif now and not exported:
            out[index] = sorted(now, key=order.index)
    return out


def _check_cell(nb, labels: dict[str, str], exercise_names: dict[str, list[str]]):
    table = {gid: (labels[gid], names) for gid, names in exercise_names.items()}
    source = f'''# Given (added by the course build): `_needs(...)` at the top of a cell stops it with a
# message naming the exercise it waits for, while that exercise is unfinished.
_EXERCISES = {table!r}


def _holds_stub(obj):
    """True while obj (a function, a class, a string) still holds its exercise's stub."""
    if isinstance(obj, str):
        return {UNFINISHED!r} in obj
    if isinstance(obj, type):
        return any(_holds_stub(member) for member in vars(obj).values() if not isinstance(member, type))
    for attr in ("__func__", "fget"):
        if getattr(obj, attr, None) is not None:
            return _holds_stub(getattr(obj, attr))
    code = getattr(obj, "__code__", None)
    stack = [code] if code is not None else []
    while stack:
        for const in stack.pop().co_consts:
            if isinstance(const, str) and {UNFINISHED!r} in const:
                return True
            if hasattr(const, "co_consts"):
                stack.append(const)
    return False


def _needs(*exercises):
    """Stop this cell, naming the exercises it waits for, while any of them is unfinished."""
    waiting = [label for label, names in (_EXERCISES[e] for e in exercises)
               if any(name not in globals() or _holds_stub(globals()[name]) for name in names)]
    if waiting:
        raise NotImplementedError(f"finish {{' and '.join(waiting)}} first (and run its cell): "
                                  "this cell uses its code")'''
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata = nbformat.from_dict({"nbgrader": {
        "grade": False, "grade_id": CHECK_ID, "locked": True, "schema_version": 3, "solution": False}})
    cell.id = CHECK_ID
    return cell


def add_unfinished_checks(nb) -> int:
    """Insert `_needs(...)` lines into given/demo cells that use exercises, and the cell that
    defines `_needs` after the first code cell. Returns how many cells got a check."""
    if any(grading_meta(c).get("grade_id") == CHECK_ID for c in nb.cells):
        return 0
    labels = exercise_labels(nb)
    needs = cell_needs(nb)
    if not needs:
        return 0
    exercise_names = {}
    for cell in nb.cells:
        if is_exercise(cell):
            code = _parseable(cell.source)
            _, binds = _uses_and_binds(code) if code else (set(), set())
            exercise_names[grading_meta(cell)["grade_id"]] = sorted(binds)
    used = sorted({gid for gids in needs.values() for gid in gids})
    for index, gids in needs.items():
        cell = nb.cells[index]
        lines = cell.source.split("\n")
        at = 0
        while at < len(lines) and (DIRECTIVE.match(lines[at]) or lines[at].startswith("%%")):
            at += 1
        call = f"_needs({', '.join(repr(g) for g in gids)})  {CHECK_MARK}"
        cell.source = "\n".join(lines[:at] + [call] + lines[at:])
    first_code = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    nb.cells.insert(first_code + 1, _check_cell(nb, labels, {g: exercise_names[g] for g in used}))
    return len(needs)
