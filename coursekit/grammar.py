"""`course check`: lint module sources against the source grammar (CONVENTIONS.md).

A source is a percent-format jupytext file. Each cell header must have one of these
exact shapes, so that every module reads the same and nbgrader accepts the metadata:

    # %% [markdown]
    # %% nbgrader={"grade": false, "grade_id": ID, "locked": true, "schema_version": 3, "solution": false}
    # %% nbgrader={"grade": false, "grade_id": ID, "locked": false, "schema_version": 3, "solution": true}
    # %% nbgrader={"grade": true, "grade_id": "test-ID", "locked": true, "points": N, "schema_version": 3, "solution": false}
    # %% [markdown] nbgrader={"grade": true, "grade_id": "q-ID", "locked": false, "points": N, "schema_version": 3, "solution": true}
    # %%

The markdown shape is a written answer graded by hand in Formgrader: the question stays, the
reference answer and rubric sit in a solution region (the student sees "YOUR ANSWER HERE").

Test-cell names (CONTRIBUTING.md): every name a graded test cell binds at its top level
(assignment, augmented assignment, `for`, `with ... as`, `except ... as`, import, `def`,
`class`, `:=`) starts with '_', and no code cell reads a name that only graded cells bind.
"""
from __future__ import annotations

import ast
import json
import re
import symtable
from dataclasses import dataclass, field
from pathlib import Path

from .layout import HIDDEN_BEGIN, HIDDEN_END, SOLUTION_BEGIN, SOLUTION_END

HEADER_RE = re.compile(r"^# %%(?P<rest>.*)$")
GRADE_ID_RE = re.compile(r"^[A-Za-z0-9_-]+$")
KEY_ORDER = {
    "given": ["grade", "grade_id", "locked", "schema_version", "solution"],
    "exercise": ["grade", "grade_id", "locked", "schema_version", "solution"],
    "test": ["grade", "grade_id", "locked", "points", "schema_version", "solution"],
    "manual": ["grade", "grade_id", "locked", "points", "schema_version", "solution"],
}
MANUAL_SHAPE = {"grade": True, "locked": False, "solution": True}
MARKDOWN_NBGRADER = "[markdown] nbgrader="
SHAPES = {  # kind -> required values
    "given": {"grade": False, "locked": True, "solution": False},
    "exercise": {"grade": False, "locked": False, "solution": True},
    "test": {"grade": True, "locked": True, "solution": False},
}


@dataclass
class Cell:
    kind: str  # markdown | manual | given | exercise | test | demo | preamble
    line: int  # 1-based line of the header
    meta: dict = field(default_factory=dict)
    lines: list[tuple[int, str]] = field(default_factory=list)  # (line number, text)

    @property
    def grade_id(self) -> str | None:
        return self.meta.get("grade_id")


@dataclass(frozen=True)
class Problem:
    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def parse(path: Path) -> tuple[list[Cell], list[Problem]]:
    """Split a source into cells; report headers that match no allowed shape."""
    problems: list[Problem] = []
    cells = [Cell("preamble", 1)]
    for number, text in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        match = HEADER_RE.match(text)
        if not match:
            cells[-1].lines.append((number, text))
            continue
        rest = match.group("rest").strip()
        if rest == "":
            cells.append(Cell("demo", number))
        elif rest == "[markdown]":
            cells.append(Cell("markdown", number))
        elif rest.startswith(MARKDOWN_NBGRADER):
            meta, error = _classify_manual(rest[len(MARKDOWN_NBGRADER):])
            if error:
                problems.append(Problem(path, number, error))
            cells.append(Cell("manual", number, meta))
        elif rest.startswith("nbgrader="):
            kind, meta, error = _classify(rest[len("nbgrader="):])
            if error:
                problems.append(Problem(path, number, error))
            cells.append(Cell(kind, number, meta))
        else:
            problems.append(Problem(path, number, f"unknown cell header {text!r}"))
            cells.append(Cell("demo", number))
    return cells, problems


def _classify(raw: str) -> tuple[str, dict, str | None]:
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as exc:
        return "given", {}, f"nbgrader metadata is not valid JSON ({exc.msg})"
    if not isinstance(meta, dict):
        return "given", {}, "nbgrader metadata must be a JSON object"
    if "schema_version" not in meta:
        return _kind_of(meta), meta, "nbgrader metadata lacks schema_version (must be 3)"
    if meta["schema_version"] != 3:
        return _kind_of(meta), meta, f"schema_version must be 3, got {meta['schema_version']!r}"
    kind = _kind_of(meta)
    if kind is None:
        return "given", meta, (f"nbgrader flags {meta!r} match no cell shape "
                               "(given, exercise or graded test)")
    if kind == "test" and "points" not in meta:
        return kind, meta, "graded cell lacks points"
    if list(meta) != KEY_ORDER[kind]:
        return kind, meta, f"{kind} cell keys must be exactly {KEY_ORDER[kind]} in this order, got {list(meta)}"
    if kind == "test" and (not isinstance(meta["points"], (int, float)) or meta["points"] <= 0):
        return kind, meta, f"graded cell needs positive points, got {meta['points']!r}"
    return kind, meta, None


def _classify_manual(raw: str) -> tuple[dict, str | None]:
    """A markdown cell with nbgrader metadata must be a manually graded written answer."""
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as exc:
        return {}, f"nbgrader metadata is not valid JSON ({exc.msg})"
    if not isinstance(meta, dict) or list(meta) != KEY_ORDER["manual"]:
        return {}, f"a graded markdown cell needs exactly the keys {KEY_ORDER['manual']} in this order"
    if meta["schema_version"] != 3 or any(meta[k] is not v for k, v in MANUAL_SHAPE.items()):
        return meta, f"a graded markdown cell must have {MANUAL_SHAPE} and schema_version 3, got {meta!r}"
    if isinstance(meta["points"], bool) or not isinstance(meta["points"], (int, float)) or meta["points"] <= 0:
        return meta, f"graded cell needs positive points, got {meta['points']!r}"
    return meta, None


def _kind_of(meta: dict) -> str | None:
    for kind, flags in SHAPES.items():
        if all(meta.get(k) is v for k, v in flags.items()):
            return kind
    return None


def check_source(path: Path) -> list[Problem]:
    """Every grammar problem of one module source, in line order."""
    path = Path(path)
    cells, problems = parse(path)
    preamble = [t for _, t in cells[0].lines if t.strip()]
    if not preamble or preamble[0] != "# ---" or "#   kernelspec:" not in preamble:
        problems.append(Problem(path, 1, "missing jupytext YAML header with a python3 kernelspec"))

    seen: dict[str, int] = {}
    for cell in cells:
        gid = cell.grade_id
        if gid is not None:
            if not isinstance(gid, str) or not GRADE_ID_RE.match(gid):
                problems.append(Problem(path, cell.line, f"grade_id {gid!r} may hold only letters, digits, '_' and '-'"))
            elif gid in seen:
                problems.append(Problem(path, cell.line, f"duplicate grade_id {gid!r} (first at line {seen[gid]})"))
            else:
                seen[gid] = cell.line
            if cell.kind == "test" and isinstance(gid, str) and not gid.startswith("test-"):
                problems.append(Problem(path, cell.line, f"graded test grade_id must start with 'test-', got {gid!r}"))
        problems += _check_markers(path, cell)

    default_exp = [(n, cell) for cell in cells for n, t in cell.lines if t.startswith("#| default_exp")]
    if len(default_exp) != 1:
        where = default_exp[1][0] if len(default_exp) > 1 else 1
        problems.append(Problem(path, where, f"need exactly one '#| default_exp', found {len(default_exp)}"))
    else:
        first_code = next((c for c in cells if c.kind in ("given", "exercise", "test", "demo")), None)
        if default_exp[0][1] is not first_code:
            problems.append(Problem(path, default_exp[0][0], "'#| default_exp' must be in the first code cell"))
    for cell in cells:
        if cell.kind == "test" and any(t.startswith("#| export") for _, t in cell.lines):
            problems.append(Problem(path, cell.line, "a graded test cell must not be exported"))
    problems += _check_test_names(path, cells)
    return sorted(problems, key=lambda p: p.line)


def _check_markers(path: Path, cell: Cell) -> list[Problem]:
    """Solution markers only in exercises, hidden-test markers only in tests, balanced."""
    problems = []
    allowed = {"exercise": (SOLUTION_BEGIN, SOLUTION_END), "manual": (SOLUTION_BEGIN, SOLUTION_END),
               "test": (HIDDEN_BEGIN, HIDDEN_END)}.get(cell.kind)
    open_at = None
    regions = 0
    for number, text in cell.lines:
        if cell.kind == "manual" and text.startswith("# "):  # markdown lines are commented in the source
            text = text[2:]
        marker = text.strip()
        if marker not in (SOLUTION_BEGIN, SOLUTION_END, HIDDEN_BEGIN, HIDDEN_END):
            continue
        if allowed is None or marker not in allowed:
            problems.append(Problem(path, number, f"marker {marker!r} is not allowed in a {cell.kind} cell"))
            continue
        if marker == allowed[0]:
            if open_at is not None:
                problems.append(Problem(path, number, f"{marker!r} opened again before closing line {open_at}"))
            open_at = number
        else:
            if open_at is None:
                problems.append(Problem(path, number, f"{marker!r} without a matching begin"))
            else:
                regions += 1
            open_at = None
    if open_at is not None:
        problems.append(Problem(path, open_at, "marker region is never closed"))
    if cell.kind == "exercise" and regions == 0:
        problems.append(Problem(path, cell.line, "exercise cell has no '### BEGIN SOLUTION' region "
                                                 "(nbgrader would replace the whole cell, export line included)"))
    if cell.kind == "manual" and regions == 0:
        problems.append(Problem(path, cell.line, "written-answer cell has no '### BEGIN SOLUTION' region "
                                                 "(nbgrader would replace the whole cell, question included)"))
    return problems


# --- test-cell names (CONTRIBUTING.md, "Test-cell names") ---------------------------------
#
# Everything a graded test cell binds at its top level starts with '_', and no cell reads a
# name that only graded cells bind: each graded cell builds its own inputs or reads names from
# given, exercise and demo cells. Names local to a function, lambda, class body or
# comprehension inside a cell are the cell's own business and are not checked.

CODE_KINDS = ("given", "exercise", "test", "demo")


@dataclass
class _Names:
    """What one code cell binds and reads in the notebook namespace, with source lines.

    binds: name -> (line, position from which the binding is visible) for each binding.
    reads: (name, line, position) for each read at the cell's top level; nested: (name, line)
    for each global read from inside a function, lambda, class body or comprehension.
    Positions are (ast line, column) pairs inside the cell, used only to order a read
    against the cell's own bindings ('_n = _n + 1' reads before it binds).
    """
    binds: dict[str, list[tuple[int, tuple[int, int]]]] = field(default_factory=dict)
    reads: list[tuple[str, int, tuple[int, int]]] = field(default_factory=list)
    nested: list[tuple[str, int]] = field(default_factory=list)

    def first_visible(self, name: str) -> tuple[int, int] | None:
        return min((pos for _, pos in self.binds.get(name, [])), default=None)


class _TopLevel(ast.NodeVisitor):
    """Walk a cell's top level in evaluation order; nested scopes only for what they bind here."""

    def __init__(self, names: _Names, line_of):
        self.names = names
        self.line_of = line_of  # ast line -> source file line
        self.visible = (0, 0)   # where a Store name met now becomes visible

    def bind(self, name: str, lineno: int, visible: tuple[int, int]) -> None:
        self.names.binds.setdefault(name, []).append((self.line_of(lineno), visible))

    @staticmethod
    def end(node: ast.AST) -> tuple[int, int]:
        return (node.end_lineno, node.end_col_offset)

    def visit(self, node):
        if isinstance(node, ast.stmt):
            saved, self.visible = self.visible, self.end(node)
            super().visit(node)
            self.visible = saved
        else:
            super().visit(node)

    def visit_Name(self, node):
        if isinstance(node.ctx, ast.Load):
            self.names.reads.append((node.id, self.line_of(node.lineno), (node.lineno, node.col_offset)))
        elif isinstance(node.ctx, ast.Store):
            self.bind(node.id, node.lineno, self.visible)

    def visit_Assign(self, node):
        self.visit(node.value)
        for target in node.targets:
            self.visit(target)

    def visit_AnnAssign(self, node):
        if node.value is not None:
            self.visit(node.value)
        self.visit(node.annotation)
        self.visit(node.target)

    def visit_AugAssign(self, node):
        if isinstance(node.target, ast.Name):  # 'x += 1' reads x first
            self.names.reads.append((node.target.id, self.line_of(node.lineno),
                                     (node.target.lineno, node.target.col_offset)))
        self.visit(node.value)
        self.visit(node.target)

    def visit_NamedExpr(self, node):
        self.visit(node.value)
        self.bind(node.target.id, node.target.lineno, self.end(node))

    def visit_For(self, node):
        self.visit(node.iter)
        saved, self.visible = self.visible, self.end(node.target)
        self.visit(node.target)
        self.visible = saved
        for stmt in node.body + node.orelse:
            self.visit(stmt)

    visit_AsyncFor = visit_For

    def visit_With(self, node):
        for item in node.items:
            self.visit(item.context_expr)
            if item.optional_vars is not None:
                saved, self.visible = self.visible, self.end(item.optional_vars)
                self.visit(item.optional_vars)
                self.visible = saved
        for stmt in node.body:
            self.visit(stmt)

    visit_AsyncWith = visit_With

    def visit_ExceptHandler(self, node):
        if node.type is not None:
            self.visit(node.type)
        if node.name:
            self.bind(node.name, node.lineno, (node.body[0].lineno, node.body[0].col_offset))
        for stmt in node.body:
            self.visit(stmt)

    def visit_Import(self, node):
        for alias in node.names:
            self.bind(alias.asname or alias.name.split(".")[0], node.lineno, self.visible)

    def visit_ImportFrom(self, node):
        for alias in node.names:
            if alias.name != "*":
                self.bind(alias.asname or alias.name, node.lineno, self.visible)

    def _declared_global(self, node):
        for inner in ast.walk(node):
            if isinstance(inner, ast.Global):
                for name in inner.names:
                    self.bind(name, inner.lineno, self.visible)

    def _arguments(self, args: ast.arguments):
        for default in args.defaults + [d for d in args.kw_defaults if d is not None]:
            self.visit(default)

    def visit_FunctionDef(self, node):
        for expr in node.decorator_list:
            self.visit(expr)
        self._arguments(node.args)
        every = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
        every += [a for a in (node.args.vararg, node.args.kwarg) if a is not None]
        for expr in [a.annotation for a in every if a.annotation is not None] + [node.returns]:
            if expr is not None:
                self.visit(expr)
        self.bind(node.name, node.lineno, self.visible)
        self._declared_global(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node):
        for expr in node.decorator_list + node.bases + [k.value for k in node.keywords]:
            self.visit(expr)
        self.bind(node.name, node.lineno, self.visible)
        self._declared_global(node)

    def visit_Lambda(self, node):
        self._arguments(node.args)

    def _comprehension(self, node):
        self.visit(node.generators[0].iter)  # the only part evaluated in the cell's own scope
        for inner in ast.walk(node):  # ':=' in a comprehension binds in the enclosing scope
            if isinstance(inner, ast.NamedExpr):
                self.bind(inner.target.id, inner.target.lineno, self.end(node))

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _comprehension

    def visit_MatchAs(self, node):
        if node.pattern is not None:
            self.visit(node.pattern)
        if node.name:
            self.bind(node.name, node.lineno, self.end(node))

    def visit_MatchStar(self, node):
        if node.name:
            self.bind(node.name, node.lineno, self.end(node))

    def visit_MatchMapping(self, node):
        for expr in node.keys:
            self.visit(expr)
        for pattern in node.patterns:
            self.visit(pattern)
        if node.rest:
            self.bind(node.rest, node.lineno, self.end(node))


def _global_reads(table: symtable.SymbolTable) -> list[tuple[str, int]]:
    """(name, ast line) for each notebook-level name read inside a nested scope of a cell."""
    found = []
    for child in table.get_children():
        found += [(s.get_name(), child.get_lineno()) for s in child.get_symbols()
                  if s.is_referenced() and s.is_global()]
        found += _global_reads(child)
    return found


def cell_names(cell: Cell) -> _Names:
    """Names a code cell binds and reads in the notebook namespace; SyntaxError if it does not parse.

    The hidden-test and solution markers are comments, so the cell parses as it is.
    """
    numbers = [n for n, _ in cell.lines]
    source = "\n".join(t for _, t in cell.lines) + "\n"
    tree = ast.parse(source)
    names = _Names()

    def line_of(lineno: int) -> int:
        return numbers[min(lineno, len(numbers)) - 1] if numbers else cell.line

    _TopLevel(names, line_of).visit(tree)
    names.nested = [(n, line_of(l)) for n, l in _global_reads(symtable.symtable(source, "<cell>", "exec"))]
    return names


def _check_test_names(path: Path, cells: list[Cell]) -> list[Problem]:
    problems = []
    names: dict[int, _Names] = {}
    for index, cell in enumerate(cells):
        if cell.kind not in CODE_KINDS:
            continue
        try:
            names[index] = cell_names(cell)
        except SyntaxError as exc:
            if cell.kind == "test":
                line = cell.lines[exc.lineno - 1][0] if exc.lineno and exc.lineno <= len(cell.lines) else cell.line
                problems.append(Problem(path, line, f"graded cell does not parse as Python ({exc.msg}), "
                                                    "so its names cannot be checked"))
    ungraded = {n for i, found in names.items() if cells[i].kind != "test" for n in found.binds}
    graded: dict[str, list[tuple[int, int]]] = {}  # name -> (cell index, line) of each graded cell binding it
    for index, found in names.items():
        if cells[index].kind == "test":
            for name, binds in found.binds.items():
                graded.setdefault(name, []).append((index, min(line for line, _ in binds)))

    for index, found in names.items():
        cell = cells[index]
        if cell.kind == "test":
            for name, binds in found.binds.items():
                if not name.startswith("_"):
                    problems.append(Problem(path, min(line for line, _ in binds), (
                        f"graded cell {cell.grade_id!r} defines {name!r}; everything a graded cell "
                        f"defines must start with '_' (e.g. '_{name}'), so it cannot overwrite the "
                        "student's names")))
        reported = set()
        reads = found.reads + [(n, line, None) for n, line in found.nested]
        for name, line, pos in reads:
            if name in reported or name in ungraded:
                continue
            owners = [(i, owner_line) for i, owner_line in graded.get(name, []) if i != index]
            if not owners:
                continue
            visible = found.first_visible(name)
            if visible is not None and (pos is None or visible <= pos):
                continue  # the cell reads its own binding
            reported.add(name)
            owner, owner_line = cells[owners[0][0]], owners[0][1]
            if cell.kind == "test":
                problems.append(Problem(path, line, (
                    f"graded cell {cell.grade_id!r} reads {name!r}, which only graded cell "
                    f"{owner.grade_id!r} (line {owner_line}) defines; build it in this cell or "
                    "define it in a given or demo cell")))
            else:
                problems.append(Problem(path, line, (
                    f"{cell.kind} cell reads {name!r}, which only graded cell {owner.grade_id!r} "
                    f"(line {owner_line}) defines; define it in a given or demo cell")))
    return problems


def check(paths: list[Path]) -> list[Problem]:
    return [p for path in paths for p in check_source(path)]
