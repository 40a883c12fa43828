"""`course student-export`: a student's own notebook -> their tinytorch package.

The same code as the students' `course-student export` (coursekit/student_tool.py, which
goes out with every kit): the notebook is only read; its `#| export` cells are written to
`tinytorch/` next to the notebook unless another folder is given.
"""
from __future__ import annotations

from pathlib import Path

from .errors import CourseError
from .student_tool import ExportError, export


def student_export(notebook: Path, lib: Path | None = None, allow_incomplete: bool = False) -> list[Path]:
    try:
        return export(notebook, lib, allow_incomplete)
    except ExportError as exc:
        raise CourseError(str(exc)) from None
