"""nbgrader preprocessors that make autograding safe; grading/nbgrader_config.py installs them,
so `nbgrader autograde` run by hand gets the same protection as `course autograde`.

Autograde:  ... OverwriteCells (nbgrader restores tests) -> GradeInSandbox -> ... SaveAutoGrades
            -> RecordIntegrity
Feedback:   HideTestSource -> GetGrades -> ...
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import jsonschema
import nbformat
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Bool, Integer, Unicode

from .integrity import instrument, restore, signature, verify
from .job import JobResult, run_job
from .layout import HIDDEN_BEGIN, HIDDEN_END, Course
from .notebooks import is_graded
from .sandbox import Sandbox, require

METADATA_KEY = "coursekit"
SANITIZE_KEY = "coursekit_sanitize"  # what the student changed of the locked cells
# (assignment, student) -> (plan, JobResult, signature of the prepared notebook): jobs that
# `course autograde` ran ahead (in parallel or on Dask); GradeInSandbox uses them when the
# notebook nbgrader hands it is the one the job ran
PRECOMPUTED: dict[tuple[str, str], tuple] = {}


def release_files(course: Course, assignment: str) -> dict[str, Path]:
    """Non-notebook files and folders the release hands out beside its notebooks."""
    folder = course.release(assignment).parent
    return {p.name: p for p in sorted(folder.iterdir()) if p.suffix != ".ipynb" and not p.name.startswith(".")} \
        if folder.is_dir() else {}


_PACKAGES: dict[tuple[str, str], Path] = {}


def job_files(course: Course, assignment: str) -> dict[str, Path]:
    """What the kernel may see: the release's files and the reference tinytorch of the
    modules before this one (built once per process)."""
    from .package import package_for

    files = release_files(course, assignment)
    if assignment in course.module_names():
        key = (str(course.root), assignment)
        if key not in _PACKAGES:
            out = Path(tempfile.mkdtemp(prefix="cg-due-"))
            package_for(course, assignment, out)
            _PACKAGES[key] = out / "tinytorch"
        files["tinytorch"] = _PACKAGES[key]
    return files


def due_modules(files: dict[str, Path]) -> list[str]:
    package = files.get("tinytorch")
    if package is None:
        return []
    return ["tinytorch"] + [f"tinytorch.{p.stem}" for p in sorted(Path(package).glob("*.py")) if p.stem != "__init__"]


def grade_notebook(nb, files: dict[str, Path], sandbox: Sandbox, cell_timeout: int | None,
                   ran: JobResult | None = None, plan=None):
    """Instrument, execute in the sandbox (unless `ran` brings the result), judge; returns
    (notebook with outputs, report dict)."""
    if plan is None:
        plan = instrument(nb, due_modules(files))
    result = ran or run_job(plan.nb, files, sandbox, cell_timeout)
    executed = nbformat.from_dict(result.notebook)
    verdict = verify(plan, executed)
    graded = restore(nb, plan, executed, verdict, result.stopped)
    report = {"flags": verdict.flags, "review": list(nb.metadata.get(SANITIZE_KEY, [])) + verdict.review,
              "limits": result.limits,
              "stopped": result.stopped, "seconds": round(result.seconds, 2),
              "cells_seconds": round(cells_seconds(executed), 2)}
    return graded, report


class _SchemaCheckedOnce:
    """Stands in for the `jsonschema` module inside nbgrader's cell-metadata validator.
    nbgrader calls `jsonschema.validate` for every cell, which first checks the schema itself
    against its meta-schema (0.6 ms a cell, nine tenths of it that check; three passes over
    every cell per submission). Same validation, each schema checked once."""

    ValidationError = jsonschema.ValidationError

    def __init__(self):
        self._validators = {}

    def validate(self, instance, schema):
        key = json.dumps(schema, sort_keys=True)
        validator = self._validators.get(key)
        if validator is None:
            cls = jsonschema.validators.validator_for(schema)
            cls.check_schema(schema)
            validator = self._validators[key] = cls(schema)
        error = jsonschema.exceptions.best_match(validator.iter_errors(instance))
        if error is not None:
            raise error


def check_metadata_schema_once() -> None:
    """Make nbgrader's per-cell metadata validation in this process build its validator once."""
    from nbgrader.nbgraderformat import common

    if not isinstance(common.jsonschema, _SchemaCheckedOnce):
        common.jsonschema = _SchemaCheckedOnce()


class DropUnknownGradeCells(NbGraderPreprocessor):
    """Before nbgrader restores the locked cells: note every locked cell the student edited or
    deleted (nbgrader puts them back) and turn cells with made-up grading metadata (an unknown
    grade_id, e.g. a fake test worth 1000 points) into plain student cells (nbgrader itself
    would crash on them). The notes flag the submission for review."""

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        with Gradebook(info["db_url"]) as gb:
            known = {c.name for c in gb.find_notebook(info["notebook"], info["assignment"]).source_cells}
        release = Path(self.config.CourseDirectory.get("root", ".")) / "release" / info["assignment"] \
            / f"{info['notebook']}.ipynb"
        given = {}
        if release.exists():
            given = {c.metadata["nbgrader"]["grade_id"]: c.source
                     for c in nbformat.read(release, as_version=4).cells
                     if c.get("metadata", {}).get("nbgrader", {}).get("locked")}
        notes, seen = [], set()
        for cell in nb.cells:
            meta = cell.get("metadata", {}).get("nbgrader")
            if meta is None:
                continue
            gid = meta.get("grade_id")
            if gid not in known:
                notes.append(f"added a cell with grading metadata ({gid}): ignored")
                del cell.metadata["nbgrader"]
                continue
            seen.add(gid)
            if gid in given and cell.source != given[gid]:
                notes.append(f"edited locked cell {gid}: restored")
        notes += [f"deleted locked cell {gid}: restored" for gid in given if gid not in seen]
        if notes:
            nb.metadata[SANITIZE_KEY] = notes
        return nb, resources


class GradeInSandbox(NbGraderPreprocessor):
    """Execute the restored notebook in the sandbox with integrity checks (replaces Execute)."""

    timeout = Integer(60, help="Seconds a single cell may run").tag(config=True)
    course_root = Unicode("", help="The course root (default: the parent of the nbgrader root)").tag(config=True)

    def preprocess(self, nb, resources):
        sandbox = Sandbox(config=self.config)
        require(sandbox)
        root = Path(self.course_root or Path(self.config.CourseDirectory.get("root", ".")).resolve().parent)
        course = Course(root.resolve())
        assignment, student = resources["nbgrader"]["assignment"], resources["nbgrader"]["student"]
        plan = result = None
        ahead = PRECOMPUTED.get((assignment, student))
        if ahead is not None and ahead[2] == signature(nb):
            plan, result = ahead[0], ahead[1]
        nb, report = grade_notebook(nb, job_files(course, assignment), sandbox,
                                    self.config.Execute.get("timeout", self.timeout), ran=result, plan=plan)
        resources[METADATA_KEY] = report
        return nb, resources


class RecordIntegrity(NbGraderPreprocessor):
    """Keep the job's report in the autograded notebook and flag tampering in the gradebook."""

    def preprocess(self, nb, resources):
        report = resources.get(METADATA_KEY)
        if report is None:
            return nb, resources
        nb.metadata[METADATA_KEY] = report
        if report["flags"] or report["review"]:
            info = resources["nbgrader"]
            with Gradebook(info["db_url"]) as gb:
                try:
                    sub = gb.find_submission_notebook(info["notebook"], info["assignment"], info["student"])
                except MissingEntry:
                    return nb, resources
                sub.flagged = True
                gb.db.commit()
        return nb, resources


class HideTestSource(NbGraderPreprocessor):
    """Feedback shows each test's result and message, never hidden tests' source or tracebacks
    through test code."""

    enabled = Bool(True, help="Hide hidden tests' source in feedback (False reveals it)").tag(config=True)

    def preprocess(self, nb, resources):
        if not self.enabled:
            return nb, resources
        for cell in nb.cells:
            if cell.cell_type != "code" or not is_graded(cell):
                continue
            cell.source = hide_hidden(cell.source)
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    out["traceback"] = [f"{out.get('ename', 'Error')}: {out.get('evalue', '')}"]
        return nb, resources


def hide_hidden(source: str) -> str:
    kept, inside = [], False
    for line in source.split("\n"):
        if line.strip() == HIDDEN_BEGIN:
            inside = True
            kept.append("# (hidden tests: their results are shown below, their source is not)")
        elif line.strip() == HIDDEN_END:
            inside = False
        elif not inside:
            kept.append(line)
    return "\n".join(kept)


def cells_seconds(nb) -> float:
    """Time the kernel spent executing cells (nbclient's per-cell timestamps)."""
    from datetime import datetime

    total = 0.0
    for cell in nb.cells:
        stamps = cell.get("metadata", {}).get("execution", {})
        start, end = stamps.get("iopub.execute_input"), stamps.get("shell.execute_reply")
        if start and end:
            total += (datetime.fromisoformat(end.replace("Z", "+00:00"))
                      - datetime.fromisoformat(start.replace("Z", "+00:00"))).total_seconds()
    return total


def report_of(notebook: Path) -> dict | None:
    """The integrity report kept in an autograded notebook."""
    try:
        nb = nbformat.read(notebook, as_version=4)
    except Exception:
        return None
    return nb.metadata.get(METADATA_KEY)
