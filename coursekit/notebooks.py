"""Small notebook helpers shared by build, validate, grading and demo."""
from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat

from .layout import HIDDEN_BEGIN, HIDDEN_END, MARKERS, SOLUTION_BEGIN, SOLUTION_END

NB_VERSION = 4


def source_to_notebook(source: Path, module: str) -> nbformat.NotebookNode:
    """Read a module source into a clean notebook: only nbgrader metadata on cells,
    stable cell ids (so a rebuild is byte-identical), a python3 kernelspec."""
    nb = jupytext.read(source)
    nb.metadata = nbformat.from_dict({
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    })
    for index, cell in enumerate(nb.cells):
        grading = cell.metadata.get("nbgrader")
        cell.metadata = nbformat.from_dict({"nbgrader": grading} if grading else {})
        cell.id = grading["grade_id"] if grading else f"{module[:40]}-{index}"
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.validate(nb)
    return nb


def write_if_changed(path: Path, text: str) -> bool:
    """Write text unless the file already holds it; True when written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True


def dumps(nb) -> str:
    return nbformat.writes(nb, version=NB_VERSION) + "\n"


def grading_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def is_exercise(cell) -> bool:
    """A code cell the student fills in (written answers in markdown are `is_manual`)."""
    return cell.get("cell_type") == "code" and bool(grading_meta(cell).get("solution"))


def is_graded(cell) -> bool:
    """An auto-graded test cell (code); written answers in markdown are `is_manual`."""
    return cell.get("cell_type") == "code" and bool(grading_meta(cell).get("grade"))


def is_manual(cell) -> bool:
    """A written answer graded by hand in Formgrader: a markdown cell with grade and solution set."""
    meta = grading_meta(cell)
    return cell.get("cell_type") == "markdown" and bool(meta.get("grade")) and bool(meta.get("solution"))


def manual_points(nb) -> float:
    return sum(float(grading_meta(c)["points"]) for c in nb.cells if is_manual(c))


def strip_markers(text: str) -> str:
    """Drop solution and hidden-test marker lines, keep everything between them."""
    return "\n".join(line for line in text.split("\n") if line.strip() not in MARKERS)


def split_regions(text: str) -> tuple[list[str], list[str]]:
    """(lines outside, lines inside) solution and hidden-test regions, stripped, non-blank."""
    inside, public, secret = False, [], []
    for line in text.split("\n"):
        marker = line.strip()
        if marker in (SOLUTION_BEGIN, HIDDEN_BEGIN):
            inside = True
        elif marker in (SOLUTION_END, HIDDEN_END):
            inside = False
        elif marker:
            (secret if inside else public).append(marker)
    return public, secret


def exercise_points(nb) -> list[tuple[str, float]]:
    """(exercise grade_id, points of the graded cells that follow it up to the next exercise)."""
    out: list[list] = []
    for cell in nb.cells:
        if is_exercise(cell):
            out.append([grading_meta(cell)["grade_id"], 0.0])
        elif is_graded(cell) and out:
            out[-1][1] += float(grading_meta(cell)["points"])
    return [(gid, pts) for gid, pts in out]


def total_points(nb) -> float:
    return sum(float(grading_meta(c)["points"]) for c in nb.cells if is_graded(c))
