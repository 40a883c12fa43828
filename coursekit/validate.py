"""`course validate`: the reference passes every test; the student stub fails every graded cell.

Both run exactly as a submission is graded: in the sandbox, with only the release files and
the reference tinytorch of the modules before this one, under the integrity checks. So a stub
that imports the module's answer, or a test that reads a value the checks reject, fails here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from . import config as course_config
from .layout import Course, say
from .nbgrader_ext import grade_notebook, job_files
from .notebooks import grading_meta, is_graded
from .sandbox import Sandbox, require


@dataclass
class Run:
    """One executed notebook: which graded cells errored or wrote to stderr, and how long."""

    seconds: float
    graded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # grade_id -> error name and value
    stderr: dict[str, str] = field(default_factory=dict)  # grade_id -> what it wrote
    errors: list[str] = field(default_factory=list)  # any cell's error, in order
    report: dict = field(default_factory=dict)  # the grading job's report (flags, limits)


def execute(course: Course, notebook: Path, sandbox: Sandbox | None = None, timeout: int = 120) -> Run:
    """Execute a notebook as a grading job would, and summarise the outcome cell by cell."""
    if sandbox is None:
        sandbox = Sandbox(config=course_config.load(course))
        require(sandbox)
    module = notebook.stem
    nb = nbformat.read(notebook, as_version=4)
    executed, report = grade_notebook(nb, job_files(course, module), sandbox, timeout)
    run = Run(report["seconds"], report=report)
    for cell in executed.cells:
        if cell.cell_type != "code":
            continue
        errs = [o for o in cell.outputs if o.output_type == "error"]
        if errs:
            run.errors.append(f"{cell.get('id')}: {errs[0].ename}: {errs[0].evalue}"[:300])
        if is_graded(cell):
            gid = grading_meta(cell)["grade_id"]
            run.graded.append(gid)
            if errs:
                run.failed[gid] = f"{errs[0].ename}: {errs[0].evalue}"[:200]
            err_text = "".join(o.text for o in cell.outputs
                               if o.output_type == "stream" and o.name == "stderr")
            if err_text:
                run.stderr[gid] = err_text[:200]
    return run


def validate(course: Course, modules: list[str], sandbox: bool = True) -> list[str]:
    """Return a list of problems (empty when every module is honest)."""
    config = course_config.load(course)
    if not sandbox:
        config.Sandbox.enabled = False
    box = Sandbox(config=config)
    require(box)
    problems = []
    for module in modules:
        ref = execute(course, course.notebook(module), box)
        stub = execute(course, course.release(module), box)
        for err in ref.errors:
            problems.append(f"{module}: reference cell fails: {err}")
        for gid, text in ref.stderr.items():
            problems.append(f"{module}: graded cell {gid} writes to stderr in the reference "
                            f"(autograde would score it 0): {text!r}")
        for flag in ref.report["flags"] + ref.report["limits"]:
            problems.append(f"{module}: the reference trips a grading check: {flag}")
        for gid in stub.graded:
            if gid not in stub.failed:
                problems.append(f"{module}: graded cell {gid} passes on the untouched student stub")
        if not ref.graded:
            problems.append(f"{module}: no graded cells")
        say(f"validated {module}: reference {ref.seconds:.1f}s, {len(ref.graded)} graded cells; "
            f"stub fails {len(stub.failed)}/{len(stub.graded)}")
    return problems
