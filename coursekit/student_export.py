"""`course student-export`: a student's own notebook -> their local tinytorch package.

The notebook is only read: it is copied into a scratch folder and exported from there,
so nothing, not even its timestamps, changes.
"""
from __future__ import annotations

from .errors import CourseError

import importlib.util
import shutil
import tempfile
from pathlib import Path

import nbformat

from .build import export_notebook
from .notebooks import grading_meta, is_exercise

STUB = "raise NotImplementedError()"


def installed_lib() -> Path:
    spec = importlib.util.find_spec("tinytorch")
    if spec is None or not spec.submodule_search_locations:
        raise CourseError("no tinytorch package found; install the course package or pass --lib DIR")
    return Path(list(spec.submodule_search_locations)[0])


def unfinished(nb) -> list[str]:
    return [grading_meta(c)["grade_id"] for c in nb.cells if is_exercise(c) and STUB in c.source]


def student_export(notebook: Path, lib: Path | None = None, allow_incomplete: bool = False) -> list[Path]:
    notebook = Path(notebook)
    if notebook.suffix != ".ipynb" or not notebook.is_file():
        raise CourseError(f"NOTEBOOK must be an existing .ipynb file, got {notebook}")
    try:
        nb = nbformat.read(notebook, as_version=4)
    except Exception as exc:
        raise CourseError(f"{notebook} is not a readable notebook: {exc}") from None
    if not any("#| default_exp" in c.source for c in nb.cells if c.cell_type == "code"):
        raise CourseError(f"{notebook} has no '#| default_exp' cell: is it a course notebook?")
    todo = unfinished(nb)
    if todo and not allow_incomplete:
        raise CourseError(f"exercises still hold the stub: {', '.join(todo)}; finish them "
                         "or pass --allow-incomplete to export anyway")
    lib = Path(lib) if lib else installed_lib()
    lib.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "nbs" / notebook.name
        copy.parent.mkdir()
        shutil.copyfile(notebook, copy)
        scratch_lib = Path(scratch) / "tinytorch"
        scratch_lib.mkdir()
        export_notebook(copy, scratch_lib, solo=True)
        written = []
        for made in sorted(scratch_lib.glob("*.py")):
            if made.name == "__init__.py":
                continue
            shutil.copyfile(made, lib / made.name)
            written.append(lib / made.name)
    return written
