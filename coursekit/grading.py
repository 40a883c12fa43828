"""`course autograde|feedback|grades`: nbgrader in one process, each submission a sandboxed job.

For every submission the trusted coordinator (this process) lets nbgrader restore the tests
(*prepare*), runs the notebook's kernel in the sandbox with integrity checks (*execute*: one
job, local or on Dask workers), and lets nbgrader record the grades (*score*). Only this
process touches the gradebook. A broken, hostile or runaway submission costs only its own row.
"""
from __future__ import annotations

import re
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from . import config as course_config
from .errors import CourseError
from .layout import Course, working_dir

ERROR_LINE_RE = re.compile(r"^\s*(?:[\w.]+\.)?(\w*(?:Error|Exception|Interrupt)): ?(.*)$")


@dataclass
class Outcome:
    student: str
    status: str  # graded | timeout (a cell hit its limit) | limit | flagged | failed
    score: float | None
    max_score: float | None
    seconds: float
    detail: str = ""
    flags: list[str] = field(default_factory=list)
    limits: list[str] = field(default_factory=list)
    retries: int = 0  # times its job was submitted again after the cluster lost it
    coordinator_seconds: float = 0.0  # time the trusted coordinator spent on it (prepare, score)


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


def run_nbgrader(course: Course, *args: str, check: bool = True, timeout: float | None = None) -> tuple[int, str]:
    """The one way the tooling runs an nbgrader command (from grading/, this venv on PATH)."""
    try:
        result = subprocess.run(["nbgrader", *args], cwd=course.grading_dir, env=course.subprocess_env(),
                                capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise CourseError(f"nbgrader {' '.join(args)} did not finish in {timeout:.0f}s") from None
    log = result.stdout + result.stderr
    if check and result.returncode != 0:
        raise CourseError(f"nbgrader {' '.join(args)} failed:\n{log[-3000:]}")
    return result.returncode, log


class Grader:
    """nbgrader's API inside this process, configured from the course's nbgrader_config.py."""

    def __init__(self, course: Course, cell_timeout: int | None = None, sandbox: bool = True):
        from nbgrader.apps import NbGraderAPI
        from nbgrader.coursedir import CourseDirectory

        from . import nbgrader_ext
        from .sandbox import Sandbox, require

        import warnings

        from sqlalchemy.exc import SAWarning
        warnings.filterwarnings("ignore", category=SAWarning)  # nbgrader's own session use
        self.course = course
        self.config = course_config.load(course)
        self.config.CourseDirectory.root = str(course.grading_dir)
        self.config.CourseDirectory.db_url = self.db_url = course_config.db_url(course, self.config)
        if cell_timeout:
            self.config.Execute.timeout = cell_timeout
        if not sandbox:
            self.config.Sandbox.enabled = False
        self.sandbox = Sandbox(config=self.config)
        require(self.sandbox)
        nbgrader_ext.check_metadata_schema_once()
        with working_dir(course.grading_dir):
            self.api = NbGraderAPI(coursedir=CourseDirectory(config=self.config), config=self.config)

    def graded_already(self, assignment: str, student: str) -> bool:
        """A finished grade exists and is newer than the submission. nbgrader writes the
        autograded notebook with the job's report only after every grade is in the gradebook, so
        a grader killed half-way through scoring leaves no report and the submission is redone."""
        from nbgrader.api import Gradebook, MissingEntry

        from .nbgrader_ext import report_of

        graded = self.course.grading_dir / "autograded" / student / assignment / f"{assignment}.ipynb"
        submitted = self.course.grading_dir / "submitted" / student / assignment / f"{assignment}.ipynb"
        if not graded.exists() or graded.stat().st_mtime < submitted.stat().st_mtime or report_of(graded) is None:
            return False
        with Gradebook(self.db_url) as gb:
            try:
                gb.find_submission(assignment, student)
            except MissingEntry:
                return False
        return True

    def prepare(self, assignment: str, student: str):
        """The submission with nbgrader's tests restored (what autograde would execute)."""
        from nbgrader.converters import Autograde

        path = self.course.grading_dir / "submitted" / student / assignment / f"{assignment}.ipynb"
        nb = nbformat.read(path, as_version=4)
        resources = {"nbgrader": {"student": student, "assignment": assignment, "notebook": assignment,
                                  "db_url": self.db_url}}
        for step in Autograde(config=self.config).sanitize_preprocessors:
            nb, resources = step(config=self.config).preprocess(nb, resources)
        return nb

    def score(self, assignment: str, student: str) -> tuple[bool, str]:
        """nbgrader autograde of one submission, in this process."""
        with working_dir(self.course.grading_dir):
            result = self.api.autograde(assignment, student, force=True, create=True)
        return bool(result.get("success")), (result.get("log") or "") + (result.get("error") or "")

    def outcome(self, assignment: str, student: str, seconds: float, ok: bool, log: str) -> Outcome:
        from nbgrader.api import Gradebook, MissingEntry

        from .nbgrader_ext import METADATA_KEY

        graded = self.course.grading_dir / "autograded" / student / assignment / f"{assignment}.ipynb"
        if not ok or not graded.exists():
            return Outcome(student, "failed", None, None, seconds, _last_error(log))
        with Gradebook(self.db_url) as gb:
            try:
                sub = gb.find_submission(assignment, student)
                score, max_score = sub.score, sub.max_score
            except MissingEntry:
                score = max_score = None
        nb = nbformat.read(graded, as_version=4)
        report = nb.metadata.get(METADATA_KEY) or {}
        flags = list(report.get("flags", [])) + [f"review: {r}" for r in report.get("review", [])]
        limits = list(report.get("limits", []))
        stuck = _timeouts(nb)
        status, detail = "graded", ""
        if stuck:
            status, detail = "timeout", f"cell {', '.join(stuck)} hit the time limit"
        if limits:
            status, detail = "limit", "; ".join(limits)
        if flags:
            status, detail = "flagged", "; ".join(flags)[:300]
        return Outcome(student, status, score, max_score, seconds, detail, flags, limits)


def _timeouts(nb) -> list[str]:
    return [cell.get("id", "?") for cell in nb.cells if cell.cell_type == "code"
            and any(o.output_type == "error" and o.ename == "CellTimeoutError" for o in cell.outputs)]


def autograde(course: Course, assignment: str, students: list[str] | None = None,
              cell_timeout: int | None = None, force: bool = False, jobs: int = 1,
              scheduler: str | None = None, sandbox: bool = True, progress: bool = True) -> list[Outcome]:
    """Grade every submission of `assignment` (only the missing ones unless `force`)."""
    from . import nbgrader_ext
    from .integrity import instrument, signature
    from .job import kill_all, run_job
    from .warm import POOL

    if assignment not in course.module_names() and not course.release(assignment).exists():
        raise CourseError(f"unknown assignment {assignment!r}")
    grader = Grader(course, cell_timeout, sandbox)
    students = students or submissions(course, assignment)
    outcomes: dict[str, Outcome] = {}
    todo = []
    for student in students:
        folder = course.grading_dir / "submitted" / student / assignment
        why = _invalid_notebook(folder, assignment)
        if why:
            outcomes[student] = Outcome(student, "failed", None, None, 0.0, why)
        elif not force and grader.graded_already(assignment, student):
            outcomes[student] = grader.outcome(assignment, student, 0.0, True, "")
            outcomes[student].detail = ("already graded; " + outcomes[student].detail).rstrip("; ")
        else:
            todo.append(student)
    files = nbgrader_ext.job_files(course, assignment)
    due = nbgrader_ext.due_modules(files)
    timeout = grader.config.Execute.get("timeout", 60)
    slots = max(1, jobs)
    if not scheduler:  # the first kernels start while the submissions are prepared
        POOL.warm_up(files, grader.sandbox, min(slots, len(todo)))

    prepared, spent = {}, {}
    queued = [len(todo)]
    queued_lock = threading.Lock()

    def execute(student):
        started = time.perf_counter()
        plan, sig = prepared[student]
        with queued_lock:  # jobs after this one, whose kernels may start early (never more than needed)
            queued[0] -= 1
            ahead = min(queued[0], slots)
        retries = 0
        if scheduler:
            from .distributed import submit_job
            result, retries = submit_job(scheduler, plan.nb, files, grader.sandbox, timeout, ahead=min(ahead, 1))
        else:
            result = run_job(plan.nb, files, grader.sandbox, timeout, ahead=ahead)
        return student, (plan, result, sig), time.perf_counter() - started, retries

    bar = _progress(len(todo), progress)
    pool = ThreadPoolExecutor(max_workers=slots)
    futures = {}
    try:
        for student in todo:  # each job starts as soon as its notebook is prepared
            try:
                started = time.perf_counter()
                nb = grader.prepare(assignment, student)
                prepared[student] = (instrument(nb, due), signature(nb))
                spent[student] = time.perf_counter() - started
            except Exception as exc:
                outcomes[student] = Outcome(student, "failed", None, None, 0.0,
                                            f"prepare: {type(exc).__name__}: {exc}"[:200])
                bar.update(outcomes[student])
                continue
            futures[pool.submit(execute, student)] = student
        for future in as_completed(futures):
            try:
                student, ran, seconds, retries = future.result()
            except CourseError as err:  # the cluster could not run it: a row, not a stop
                student = futures[future]
                outcomes[student] = Outcome(student, "failed", None, None, 0.0, str(err)[:200])
                bar.update(outcomes[student])
                continue
            started = time.perf_counter()
            nbgrader_ext.PRECOMPUTED[(assignment, student)] = ran
            try:
                ok, log = grader.score(assignment, student)  # only this thread writes the gradebook
            finally:
                nbgrader_ext.PRECOMPUTED.pop((assignment, student), None)
            outcome = grader.outcome(assignment, student, seconds + time.perf_counter() - started, ok, log)
            outcome.retries = retries
            outcome.coordinator_seconds = spent[student] + time.perf_counter() - started
            outcomes[student] = outcome
            bar.update(outcome)
    except KeyboardInterrupt:
        pool.shutdown(wait=False, cancel_futures=True)
        kill_all()
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        POOL.close()
        bar.close()
    return [outcomes[s] for s in students if s in outcomes]


class _progress:
    """tqdm bar with done/total, failures and time left; a line per submission when not a tty."""

    def __init__(self, total: int, enabled: bool):
        self.bar = None
        self.counts = {"failed": 0, "flagged": 0, "limit": 0}
        if enabled and total:
            from tqdm import tqdm
            self.bar = tqdm(total=total, unit="sub", dynamic_ncols=True)

    def update(self, outcome: Outcome):
        if outcome.status in self.counts:
            self.counts[outcome.status] += 1
        if self.bar is not None:
            self.bar.set_postfix({k: v for k, v in self.counts.items() if v}, refresh=False)
            self.bar.update(1)
            self.bar.write(_row_line(outcome))

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _row_line(o: Outcome) -> str:
    score = f" {o.score:g}/{o.max_score:g}" if o.score is not None else ""
    return f"{o.student}: {o.status}{score}" + (f" ({o.detail})" if o.detail else "") + f" in {o.seconds:.1f}s"


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


def feedback(course: Course, assignment: str) -> Path:
    run_nbgrader(course, "generate_feedback", assignment, "--force", "--log-level=WARN")
    return course.grading_dir / "feedback"


def grades(course: Course, to: Path | None = None) -> Path:
    """nbgrader's grade export plus a `flagged` column with the reasons."""
    import csv

    from .nbgrader_ext import report_of

    to = Path(to or course.grading_dir / "grades.csv").resolve()
    run_nbgrader(course, "export", f"--to={to}", "--log-level=WARN")
    with open(to, newline="") as handle:
        rows = list(csv.DictReader(handle))
    fields = list(rows[0].keys()) if rows else ["assignment", "student_id", "score", "max_score"]
    for row in rows:
        report = report_of(course.grading_dir / "autograded" / row["student_id"] / row["assignment"]
                           / f"{row['assignment']}.ipynb") or {}
        reasons = list(report.get("flags", [])) + [f"review: {r}" for r in report.get("review", [])]
        row["flagged"] = "; ".join(reasons)
    with open(to, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields + ["flagged"])
        writer.writeheader()
        writer.writerows(rows)
    return to
