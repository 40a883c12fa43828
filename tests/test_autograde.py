"""Autograde through nbgrader with exact scores, on module 00 and on every module."""
import csv

import nbformat
import pytest

from coursekit.demo import ALL_KINDS, make_submission, matches
from coursekit.grading import autograde, feedback, grades, score_table
from coursekit.notebooks import exercise_points, total_points

FIRST = "00_foundations"


def test_module_00_every_kind_of_submission(built_course):
    course, _ = built_course
    expected = dict(make_submission(course, FIRST, kind) for kind in ALL_KINDS)
    ref = nbformat.read(course.notebook(FIRST), as_version=4)
    total, (_, first_points) = total_points(ref), exercise_points(ref)[0]
    assert expected["reference"] == total > 0
    assert expected["untouched"] == expected["tampered"] == 0
    assert 0 < expected["one-exercise"] == first_points < total
    outcomes = {o.student: o for o in autograde(course, FIRST, list(ALL_KINDS), cell_timeout=30, progress=False)}
    print(score_table([(FIRST, o) for o in outcomes.values()]))
    assert set(outcomes) == set(ALL_KINDS), "every submission gets a row"
    for kind, want in expected.items():
        assert matches(outcomes[kind], want), f"{kind}: expected {want}, got {outcomes[kind]}"
    assert outcomes["infinite-loop"].status == "timeout"
    crash = outcomes["kernel-crash"]  # os._exit is also flagged for review by the static scan
    assert crash.status in ("limit", "flagged") and any("kernel died" in limit for limit in crash.limits), crash
    assert "invalid notebook" in outcomes["broken-json"].detail

    feedback(course, FIRST)
    assert (course.grading_dir / "feedback" / "reference" / FIRST / f"{FIRST}.html").is_file()
    with open(grades(course)) as handle:
        rows = {r["student_id"]: r for r in csv.DictReader(handle) if r["assignment"] == FIRST}
    assert float(rows["reference"]["score"]) == total
    assert float(rows["untouched"]["score"]) == 0


@pytest.mark.parametrize("module", [m for m in __import__("test_modules").MODULES if m != FIRST])
def test_reference_full_marks_and_untouched_zero(built_course, module):
    course, _ = built_course
    expected = dict(make_submission(course, module, kind) for kind in ("reference", "untouched"))
    outcomes = autograde(course, module, ["reference", "untouched"], cell_timeout=60, progress=False)
    for outcome in outcomes:
        assert matches(outcome, expected[outcome.student]), f"{module}: {outcome}"
