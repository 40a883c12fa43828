"""Shared fixtures: a clean copy of the course, built once per test session."""
from __future__ import annotations

from pathlib import Path

import pytest

from coursekit.build import build
from coursekit.demo import scratch_course
from coursekit.layout import Course

REPO = Path(__file__).resolve().parents[1]
def copy_inputs(dest: Path) -> Course:
    """What a clean clone holds that the build reads, copied into dest."""
    return scratch_course(Course.at(REPO), dest)


@pytest.fixture(scope="session")
def built_course(tmp_path_factory) -> tuple[Course, dict]:
    """The course copied like a fresh clone and built once: (course, first build's report)."""
    course = copy_inputs(tmp_path_factory.mktemp("clone"))
    report = build(course, course.module_names())
    return course, report
