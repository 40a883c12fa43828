"""`course check` finds each grammar problem at the right file:line, and passes the real modules."""
from pathlib import Path

import pytest

from coursekit.cli import main
from coursekit.grammar import check_source

FIXTURES = Path(__file__).parent / "fixtures" / "grammar"
REPO = Path(__file__).resolve().parents[1]


def test_good_fixture_is_clean():
    assert check_source(FIXTURES / "good.py") == []


@pytest.mark.parametrize("name, line, fragment", [
    ("duplicate_grade_id.py", 20, "duplicate grade_id 'double' (first at line 16)"),
    ("missing_schema_version.py", 20, "lacks schema_version"),
    ("marker_in_test.py", 31, "'### BEGIN SOLUTION' is not allowed in a test cell"),
    ("exercise_without_markers.py", 20, "exercise cell has no '### BEGIN SOLUTION' region"),
    ("two_default_exp.py", 19, "exactly one '#| default_exp', found 2"),
    ("no_points.py", 28, "graded cell lacks points"),
])
def test_each_problem_is_reported_at_its_line(name, line, fragment):
    problems = check_source(FIXTURES / name)
    assert len(problems) == 1, f"expected one problem in {name}, got {[str(p) for p in problems]}"
    assert problems[0].line == line and fragment in problems[0].message, str(problems[0])
    assert str(problems[0]).startswith(f"{FIXTURES / name}:{line}: ")


def test_cli_exit_code_and_output(capsys):
    assert main(["check", str(FIXTURES / "good.py")]) == 0
    assert main(["check", str(FIXTURES / "marker_in_test.py")]) == 1
    out = capsys.readouterr().out
    assert f"{FIXTURES / 'marker_in_test.py'}:31:" in out


def test_every_course_module_follows_the_grammar():
    sources = sorted((REPO / "modules").glob("[0-9][0-9]_*.py"))
    assert sources, "no module sources found"
    problems = [str(p) for s in sources for p in check_source(s)]
    assert problems == []
