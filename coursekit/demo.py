"""`course demo`: build, simulate a class of submissions, autograde them, show the scores.

Each simulated student stands for a case the grader must get exactly right:

    reference      every exercise solved with the reference code       -> full marks
    untouched      the release notebook as handed out                  -> 0
    one-exercise   only the first exercise solved                      -> that exercise's points
    tampered       untouched, with its first test cell edited to `pass` -> 0 (nbgrader restores it)
    infinite-loop  reference, the last exercise cell then loops forever -> full marks, timeout row
    kernel-crash   reference, but the last exercise kills the kernel   -> all but the last tests, limit row
    broken-json    a truncated, invalid notebook file                  -> failure row
"""
from __future__ import annotations

import copy
import shutil
import tempfile
import time
from pathlib import Path

import nbformat

from .build import build
from .grading import Outcome, autograde, feedback, grades, score_table
from .errors import CourseError
from .layout import Course, say
from .notebooks import exercise_points, grading_meta, is_exercise, is_graded, strip_markers, total_points

ALL_KINDS = ("reference", "untouched", "one-exercise", "tampered", "infinite-loop", "kernel-crash", "broken-json")
BASIC_KINDS = ("reference", "untouched", "one-exercise", "broken-json")


def _solutions(course: Course, module: str) -> dict[str, str]:
    """Reference source of every exercise cell, markers removed, by grade_id."""
    nb = nbformat.read(course.notebook(module), as_version=4)
    return {grading_meta(c)["grade_id"]: strip_markers(c.source) for c in nb.cells if is_exercise(c)}


def make_submission(course: Course, module: str, kind: str) -> tuple[str, float | None]:
    """Write grading/submitted/<kind>/<module>/<module>.ipynb; return (kind, expected score),
    expected None meaning a failure row."""
    release = nbformat.read(course.release(module), as_version=4)
    solutions = _solutions(course, module)
    points = exercise_points(release)
    total = total_points(nbformat.read(course.notebook(module), as_version=4))
    first_ex, first_pts = points[0]
    last_ex = points[-1][0]
    nb = copy.deepcopy(release)
    fill: set[str] = set()
    expected: float | None = 0.0
    if kind in ("reference", "infinite-loop", "kernel-crash"):
        fill, expected = set(solutions), total
    elif kind == "one-exercise":
        fill, expected = {first_ex}, first_pts
    for cell in nb.cells:
        gid = grading_meta(cell).get("grade_id")
        if gid in fill:
            cell.source = solutions[gid]
    if kind == "tampered":
        test = next(c for c in nb.cells if is_graded(c))
        test.source = "pass"
    elif kind == "infinite-loop":  # the loop runs after the definitions: interrupted, no loss
        cell = next(c for c in nb.cells if grading_meta(c).get("grade_id") == last_ex)
        cell.source += "\nwhile True:\n    pass\n"
    elif kind == "kernel-crash":  # the tests after the last exercise never run
        cell = next(c for c in nb.cells if grading_meta(c).get("grade_id") == last_ex)
        cell.source += "\nimport os\nos._exit(1)\n"
        expected = total - points[-1][1]
    target = course.grading_dir / "submitted" / kind / module / f"{module}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    text = nbformat.writes(nb)
    if kind == "broken-json":
        text, expected = text[: len(text) // 2], None
    target.write_text(text, encoding="utf-8")
    return kind, expected


def add_student(course: Course, module: str, kind: str, name: str) -> float | None:
    """A simulated submission of `kind` handed in by student `name`; returns its expected score."""
    _, expected = make_submission(course, module, kind)
    dst = course.grading_dir / "submitted" / name / module
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(course.grading_dir / "submitted" / kind / module / f"{module}.ipynb", dst / f"{module}.ipynb")
    return expected


def matches(outcome: Outcome, expected: float | None) -> bool:
    if expected is None:
        return outcome.status == "failed"
    return outcome.status != "failed" and outcome.score is not None and abs(outcome.score - expected) < 1e-9


# what a clean clone holds that the build reads: the demo copies only this
COURSE_INPUTS = ("modules", "settings.ini", "pyproject.toml", "grading/nbgrader_config.py", "tinytorch/__init__.py")


def scratch_course(course: Course, where: Path | None = None) -> Course:
    """A copy of the course's inputs in a new folder: the demo never touches the real course,
    its gradebook or its submissions."""
    root = Path(where) if where else Path(tempfile.mkdtemp(prefix="course-demo-"))
    if root.exists() and any(root.iterdir()):
        raise CourseError(f"{root} is not empty: the demo needs a new folder")
    for rel in COURSE_INPUTS:
        src, dst = course.root / rel, root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dst)
    return Course.at(root)


def demo(course: Course, modules: list[str], cell_timeout: int = 30, workdir: Path | None = None) -> bool:
    started = time.perf_counter()
    course = scratch_course(course, workdir)
    say(f"== scratch course in {course.root}: build ==")
    build(course, modules)
    rows, mismatches = [], []
    for position, module in enumerate(modules):
        kinds = ALL_KINDS if position == 0 else BASIC_KINDS
        say(f"== {module}: simulating {', '.join(kinds)} ==")
        expected = dict(make_submission(course, module, kind) for kind in kinds)
        for outcome in autograde(course, module, list(kinds), cell_timeout=cell_timeout, progress=False):
            want = expected[outcome.student]
            rows.append((module, outcome))
            if not matches(outcome, want):
                mismatches.append(f"{module}/{outcome.student}: expected "
                                  f"{'a failure row' if want is None else want}, got {outcome.status} {outcome.score}")
        feedback(course, module)
    csv = grades(course)
    say("\n" + score_table(rows))
    say(f"\nfeedback HTML in {course.grading_dir / 'feedback'}, grades in {csv}")
    if mismatches:
        say("SCORES THAT DIFFER FROM WHAT IS EXPECTED:\n  " + "\n  ".join(mismatches))
    else:
        say(f"all {len(rows)} submissions scored as expected")
    say(f"demo finished in {time.perf_counter() - started:.0f}s")
    return not mismatches
