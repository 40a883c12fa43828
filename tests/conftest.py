"""Shared fixtures: a clean copy of the course, built once per test session."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from coursekit.build import build
from coursekit.layout import Course

REPO = Path(__file__).resolve().parents[1]
# What a clean clone holds that the build reads; everything else is generated.
INPUTS = ["modules", "settings.ini", "pyproject.toml", "grading/nbgrader_config.py", "tinytorch/__init__.py"]


def copy_inputs(dest: Path) -> Course:
    for rel in INPUTS:
        src, dst = REPO / rel, dest / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dst)
    return Course.at(dest)


@pytest.fixture(scope="session")
def built_course(tmp_path_factory) -> tuple[Course, dict]:
    """The course copied like a fresh clone and built once: (course, first build's report)."""
    course = copy_inputs(tmp_path_factory.mktemp("clone"))
    report = build(course, course.module_names())
    return course, report
