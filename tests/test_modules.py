"""Every module is honest: the reference passes every test, the stub fails every graded cell,
both run as grading runs them (sandbox, due package only, integrity checks)."""
import pytest

from coursekit.layout import Course
from coursekit.validate import execute

from conftest import REPO

MODULES = Course.at(REPO).module_names()


@pytest.mark.parametrize("module", MODULES)
def test_reference_passes_and_stub_fails_every_graded_cell(built_course, module):
    course, _ = built_course
    ref = execute(course, course.notebook(module))
    assert ref.errors == [], f"reference of {module} fails: {ref.errors}"
    assert ref.graded, f"{module} has no graded cells"
    assert ref.stderr == {}, f"graded cells of {module} write to stderr (autograde scores them 0): {ref.stderr}"
    assert ref.report["flags"] == [] and ref.report["limits"] == [], f"{module} trips a grading check: {ref.report}"
    stub = execute(course, course.release(module))
    passing = [gid for gid in stub.graded if gid not in stub.failed]
    assert passing == [], f"{module}: graded cells pass on the untouched stub: {passing}"
    assert stub.graded == ref.graded
    print(f"{module}: reference ran in {ref.seconds:.1f}s")
