"""`course build`: modules/ -> nbs/ -> tinytorch/ -> grading/source -> grading/release.

Every step writes a file only when its content changes, so a second build is a no-op.
"""
from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from .grammar import check_source
from .errors import CourseError
from .layout import Course, say, working_dir
from .notebooks import dumps, source_to_notebook, strip_markers, write_if_changed
from .package import sync_due_package
from .unfinished import add_unfinished_checks

# extra nbgrader config (no .py: traitlets adds it) that names each exercise in its stub
NAMED_STUBS_CONFIG = Path(__file__).with_name("nbgrader_named_stubs")


def drop_marker_lines(cell) -> None:
    """nbdev cell processor: the package never sees solution or hidden-test markers."""
    cell.source = strip_markers(cell.source)


def export_notebook(notebook: Path, lib_dir: Path, solo: bool = False) -> list[Path]:
    """nbdev-export one notebook into lib_dir (markers stripped); return the files whose
    content changed.

    Each package module belongs to exactly one notebook, so every module the notebook
    exports to (`#| default_exp nn`, `#| export data`) is written afresh, never appended to.
    """
    from nbdev.export import nb_export
    from nbdev.maker import ModuleMaker

    class FreshModuleMaker(ModuleMaker):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**kwargs, "is_new": True})
            self.dest2nb = f"../modules/{Path(self.dest2nb).stem}.py (then run `course build`)"  # the header

    before = {p: p.read_bytes() for p in lib_dir.glob("*.py")}
    nb_export(str(notebook), lib_path=str(lib_dir), procs=[drop_marker_lines], solo_nb=solo,
              mod_maker=FreshModuleMaker)
    return [p for p in sorted(lib_dir.glob("*.py")) if before.get(p) != p.read_bytes()]


def generate_release(course: Course, module: str) -> bool:
    """nbgrader generate_assignment for one module; True when the release changed."""
    release = course.release(module)
    before = release.read_bytes() if release.exists() else None
    # the due package travels with the assignment: nbgrader copies source/<module>/tinytorch/
    # into the release (and the exchange), and every build writes it afresh
    due = sync_due_package(course, module, course.grading_source(module).parent)
    result = subprocess.run(
        ["nbgrader", "generate_assignment", module, "--force", "--log-level=WARN",
         f"--JupyterApp.config_file={NAMED_STUBS_CONFIG}"],
        cwd=course.grading_dir, env=course.subprocess_env(), capture_output=True, text=True)
    if result.returncode != 0:
        hint = ""
        if "submission" in (result.stdout + result.stderr).lower():
            hint = ("\nhint: the gradebook already holds submissions of this assignment, and nbgrader "
                    "will not change graded cells under them; grade the new version as a new "
                    "assignment, or (for test data only) remove the run-time data with `make clean`")
        raise CourseError(f"nbgrader generate_assignment {module} failed:\n"
                         f"{result.stdout[-3000:]}{result.stderr[-3000:]}{hint}")
    # nbgrader copies every non-notebook file of source/ into the release: allow only the
    # due package, byte for byte the reference of the modules before this one
    expected = {f"tinytorch/{p.name}": p.read_bytes() for p in due}
    extra = [p for p in release.parent.rglob("*") if p.is_file() and p.suffix != ".ipynb"
             and expected.get(p.relative_to(release.parent).as_posix()) != p.read_bytes()]
    if extra:
        raise CourseError(f"release of {module} holds files other than its notebook and the due "
                          f"package: {extra}")
    return before != release.read_bytes()


def build(course: Course, modules: list[str]) -> dict[str, list[str]]:
    """Build the given modules; return {module: [paths that changed]}."""
    problems = [p for m in modules for p in check_source(course.source(m))]
    if problems:
        raise CourseError("module sources break the grammar:\n" + "\n".join(map(str, problems)))
    report: dict[str, list[str]] = {}
    for module in modules:
        started = time.perf_counter()
        changed: list[Path] = []
        nb = source_to_notebook(course.source(module), module)
        add_unfinished_checks(nb)  # given cells say which exercise they wait for
        text = dumps(nb)
        if write_if_changed(course.notebook(module), text):
            changed.append(course.notebook(module))
        with working_dir(course.root):
            changed += export_notebook(course.notebook(module), course.lib_dir)
        if write_if_changed(course.grading_source(module), text):
            changed.append(course.grading_source(module))
        if generate_release(course, module):
            changed.append(course.release(module))
        rel = [str(p.relative_to(course.root)) for p in changed]
        report[module] = rel
        say(f"built {module} in {time.perf_counter() - started:.1f}s"
            + (f": {len(rel)} file(s) changed" if rel else ": up to date"))
    return report


def clean_runtime(course: Course) -> None:
    """Remove run-time grading data (gradebook, submissions, autograded, feedback)."""
    for name in ("submitted", "autograded", "feedback"):
        shutil.rmtree(course.grading_dir / name, ignore_errors=True)
    for name in ("gradebook.db", "grades.csv"):
        (course.grading_dir / name).unlink(missing_ok=True)
