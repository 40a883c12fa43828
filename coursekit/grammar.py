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
"""
from __future__ import annotations

import json
import re
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


def check(paths: list[Path]) -> list[Problem]:
    return [p for path in paths for p in check_source(path)]
