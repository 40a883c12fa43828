"""`course autograde|feedback|grades`: nbgrader, one submission at a time, never stopping.

Each submission is autograded in its own `nbgrader autograde --student` process under a
hard wall-clock limit, so an invalid notebook, a crashed kernel or a loop that ignores
interrupts becomes one failure row while every other submission is still graded.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .layout import Course, say

ERROR_LINE_RE = re.compile(r"^\s*(?:[\w.]+\.)?(\w*(?:Error|Exception|Interrupt)): ?(.*)$")


@dataclass
class Outcome:
    student: str
    status: str  # "graded", "timeout" (graded, a cell hit the limit) or "failed"
    score: float | None
    max_score: float | None
    seconds: float
    detail: str = ""


def db_url(course: Course) -> str:
    return f"sqlite:///{course.grading_dir / 'gradebook.db'}"


def submissions(course: Course, assignment: str) -> list[str]:
    root = course.grading_dir / "submitted"
    return sorted(p.parent.name for p in root.glob(f"*/{assignment}") if p.is_dir())


def _invalid_notebook(folder: Path, assignment: str) -> str | None:
    """Why a submission cannot be graded before running anything, or None."""
    expected = folder / f"{assignment}.ipynb"
    if not expected.exists():
        return f"missing {expected.name}"
    for path in sorted(folder.glob("*.ipynb")):
        try:
            nbformat.validate(nbformat.read(path, as_version=4))
        except Exception as exc:  # nbformat raises several types for bad files
            reason = " ".join(str(exc).split()).split(":")[0][:100]
            return f"invalid notebook {path.name}: {reason}"
    return None


def _last_error(log: str) -> str:
    hits = [m for m in map(ERROR_LINE_RE.match, log.splitlines()) if m]
    if not hits:
        return "nbgrader failed (see log)"
    name, text = hits[-1].groups()
    return f"{name}: {text}".strip()[:160]


def _run_limited(cmd: list[str], cwd: Path, env: dict, limit: float) -> tuple[int | None, str]:
    """Run cmd in its own process group; kill the whole group (kernel included) past limit."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=limit)
        return proc.returncode, out
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return None, out


def _timeouts(notebook: Path) -> list[str]:
    nb = nbformat.read(notebook, as_version=4)
    return [cell.get("id", "?") for cell in nb.cells if cell.cell_type == "code"
            and any(o.output_type == "error" and o.ename == "CellTimeoutError" for o in cell.outputs)]


def autograde(course: Course, assignment: str, students: list[str] | None = None,
              cell_timeout: int | None = None, submission_limit: float = 900) -> list[Outcome]:
    from nbgrader.api import Gradebook, MissingEntry

    students = students or submissions(course, assignment)
    env = course.subprocess_env()
    env["PYTHONWARNINGS"] = "ignore"  # a stray warning on stderr would zero a graded cell
    outcomes = []
    for index, student in enumerate(students, 1):
        started = time.perf_counter()
        folder = course.grading_dir / "submitted" / student / assignment
        why = _invalid_notebook(folder, assignment)
        if why is None:
            cmd = ["nbgrader", "autograde", assignment, f"--student={student}", "--force"]
            if cell_timeout:
                cmd.append(f"--Execute.timeout={cell_timeout}")
            code, log = _run_limited(cmd, course.grading_dir, env, submission_limit)
            graded = course.grading_dir / "autograded" / student / assignment / f"{assignment}.ipynb"
            if code is None:
                why = f"killed after the {submission_limit:.0f}s submission limit"
            elif code != 0 or not graded.exists():
                why = _last_error(log)
        seconds = time.perf_counter() - started
        if why is not None:
            outcome = Outcome(student, "failed", None, None, seconds, why)
        else:
            with Gradebook(db_url(course)) as gb:
                try:
                    sub = gb.find_submission(assignment, student)
                    score, max_score = sub.score, sub.max_score
                except MissingEntry:
                    score = max_score = None
            stuck = _timeouts(graded)
            outcome = Outcome(student, "timeout" if stuck else "graded", score, max_score, seconds,
                              f"cell {', '.join(stuck)} hit the time limit" if stuck else "")
        outcomes.append(outcome)
        say(f"[{index}/{len(students)}] {assignment} {student}: {outcome.status}"
            + (f" {outcome.score:g}/{outcome.max_score:g}" if outcome.score is not None else "")
            + (f" ({outcome.detail})" if outcome.detail else "") + f" in {seconds:.1f}s")
    return outcomes


def score_table(rows: list[tuple[str, Outcome]]) -> str:
    """Plain-text table of (assignment, outcome) rows."""
    header = ("assignment", "student", "status", "score", "seconds", "detail")
    lines = [header]
    for assignment, o in rows:
        score = f"{o.score:g}/{o.max_score:g}" if o.score is not None else "-"
        lines.append((assignment, o.student, o.status, score, f"{o.seconds:.1f}", o.detail))
    widths = [max(len(str(r[i])) for r in lines) for i in range(len(header) - 1)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths) + "  {}"
    return "\n".join(fmt.format(*r).rstrip() for r in lines)


def _nbgrader(course: Course, *args: str) -> None:
    result = subprocess.run(["nbgrader", *args], cwd=course.grading_dir, env=course.subprocess_env(),
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"error: nbgrader {' '.join(args)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")


def feedback(course: Course, assignment: str) -> Path:
    _nbgrader(course, "generate_feedback", assignment, "--force", "--log-level=WARN")
    return course.grading_dir / "feedback"


def grades(course: Course, to: Path | None = None) -> Path:
    to = Path(to or course.grading_dir / "grades.csv").resolve()
    _nbgrader(course, "export", f"--to={to}", "--log-level=WARN")
    return to
