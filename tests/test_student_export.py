"""`course student-export` writes the student's own code to their package, never their notebook."""
import hashlib
import os
import subprocess
import sys

import pytest

from coursekit.demo import make_submission
from coursekit.errors import CourseError
from coursekit.student_export import student_export

FIRST = "00_foundations"


def test_export_of_a_finished_notebook(built_course, tmp_path):
    course, _ = built_course
    make_submission(course, FIRST, "reference")
    notebook = course.grading_dir / "submitted" / "reference" / FIRST / f"{FIRST}.ipynb"
    before = (hashlib.sha256(notebook.read_bytes()).hexdigest(), os.stat(notebook).st_mtime_ns)
    lib = tmp_path / "tinytorch"
    lib.mkdir()
    (lib / "__init__.py").write_text("")
    written = student_export(notebook, lib)
    assert {p.name for p in written} >= {"nn.py", "data.py"}
    assert (hashlib.sha256(notebook.read_bytes()).hexdigest(), os.stat(notebook).st_mtime_ns) == before
    assert "BEGIN SOLUTION" not in (lib / "nn.py").read_text()
    check = "import tinytorch.nn as nn; m = nn.make_mlp(seed=0); print(type(m).__name__)"
    result = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert result.returncode == 0 and "Sequential" in result.stdout, result.stderr


def test_export_refuses_unfinished_work_and_bad_paths(built_course, tmp_path):
    course, _ = built_course
    with pytest.raises(CourseError, match="still hold the stub"):
        student_export(course.release(FIRST), tmp_path)
    with pytest.raises(CourseError, match="existing .ipynb"):
        student_export(tmp_path / "missing.ipynb", tmp_path)
    assert list(tmp_path.iterdir()) == []
