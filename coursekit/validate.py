"""`course validate`: the reference passes every test; the student stub fails every graded cell."""
from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from .layout import Course, say
from .notebooks import grading_meta, is_graded


@dataclass
class Run:
    """One executed notebook: which graded cells errored or wrote to stderr, and how long."""

    seconds: float
    graded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # grade_id -> error name and value
    stderr: dict[str, str] = field(default_factory=dict)  # grade_id -> what it wrote
    errors: list[str] = field(default_factory=list)  # any cell's error, in order


def execute(course: Course, notebook: Path, timeout: int = 120) -> Run:
    """Execute a notebook in a scratch folder with the course root's tinytorch, keep going
    past errors, and summarise the outcome cell by cell."""
    nb = nbformat.read(notebook, as_version=4)
    with tempfile.TemporaryDirectory() as scratch:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                                resources={"metadata": {"path": scratch}})
        saved = dict(os.environ)
        os.environ.update(course.subprocess_env())
        started = time.perf_counter()
        try:
            client.execute()
        finally:
            os.environ.clear()
            os.environ.update(saved)
        seconds = time.perf_counter() - started
    run = Run(seconds)
    for cell in nb.cells:
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


def validate(course: Course, modules: list[str]) -> list[str]:
    """Return a list of problems (empty when every module is honest)."""
    problems = []
    for module in modules:
        ref = execute(course, course.notebook(module))
        stub = execute(course, course.release(module))
        for err in ref.errors:
            problems.append(f"{module}: reference cell fails: {err}")
        for gid, text in ref.stderr.items():
            problems.append(f"{module}: graded cell {gid} writes to stderr in the reference "
                            f"(autograde would score it 0): {text!r}")
        for gid in stub.graded:
            if gid not in stub.failed:
                problems.append(f"{module}: graded cell {gid} passes on the untouched student stub")
        if not ref.graded:
            problems.append(f"{module}: no graded cells")
        say(f"validated {module}: reference {ref.seconds:.1f}s, {len(ref.graded)} graded cells; "
            f"stub fails {len(stub.failed)}/{len(stub.graded)}")
    return problems
