"""`course check` finds each grammar problem at the right file:line, and passes the real modules."""
from pathlib import Path

import pytest

from coursekit.cli import main
from coursekit.grammar import check_source

FIXTURES = Path(__file__).parent / "fixtures" / "grammar"
REPO = Path(__file__).resolve().parents[1]


def test_good_fixture_is_clean():
    assert check_source(FIXTURES / "good.py") == []


# Each broken source is good.py with one edit: (name, text replaced, replacement).
BROKEN = {
    "duplicate_grade_id": ('"grade_id": "imports"', '"grade_id": "double"'),
    "missing_schema_version": ('"locked": false, "schema_version": 3, ', '"locked": false, '),
    "marker_in_test": ("### BEGIN HIDDEN TESTS\n", "### BEGIN HIDDEN TESTS\n### BEGIN SOLUTION\n"),
    "exercise_without_markers": ("    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n",
                                 "    return 2 * x\n"),
    "two_default_exp": ("import numpy as np\n", "import numpy as np\n#| default_exp other\n"),
    "no_points": ('"locked": true, "points": 1, ', '"locked": true, '),
}


def broken_source(tmp_path: Path, name: str) -> Path:
    good = (FIXTURES / "good.py").read_text()
    old, new = BROKEN[name]
    assert old in good
    path = tmp_path / f"{name}.py"
    path.write_text(good.replace(old, new, 1))
    return path


@pytest.mark.parametrize("name, line, fragment", [
    ("duplicate_grade_id", 20, "duplicate grade_id 'double' (first at line 16)"),
    ("missing_schema_version", 20, "lacks schema_version"),
    ("marker_in_test", 31, "'### BEGIN SOLUTION' is not allowed in a test cell"),
    ("exercise_without_markers", 20, "exercise cell has no '### BEGIN SOLUTION' region"),
    ("two_default_exp", 19, "exactly one '#| default_exp', found 2"),
    ("no_points", 28, "graded cell lacks points"),
])
def test_each_problem_is_reported_at_its_line(tmp_path, name, line, fragment):
    path = broken_source(tmp_path, name)
    problems = check_source(path)
    assert len(problems) == 1, f"expected one problem in {name}, got {[str(p) for p in problems]}"
    assert problems[0].line == line and fragment in problems[0].message, str(problems[0])
    assert str(problems[0]).startswith(f"{path}:{line}: ")


def test_cli_exit_code_and_output(tmp_path, capsys):
    assert main(["check", str(FIXTURES / "good.py")]) == 0
    path = broken_source(tmp_path, "marker_in_test")
    assert main(["check", str(path)]) == 1
    assert f"{path}:31:" in capsys.readouterr().out


def test_every_course_module_follows_the_grammar():
    sources = sorted((REPO / "modules").glob("[0-9][0-9]_*.py"))
    assert sources, "no module sources found"
    problems = [str(p) for s in sources for p in check_source(s)]
    assert problems == []


# --- written answers: graded markdown cells (manual grading in Formgrader) -----------------

MANUAL_OK = '''
# %% [markdown] nbgrader={"grade": true, "grade_id": "q-why", "locked": false, "points": 3, "schema_version": 3, "solution": true}
# **Q.** Why?
#
# ### BEGIN SOLUTION
# Reference answer and rubric.
# ### END SOLUTION
'''


def _with_manual(tmp_path: Path, cell: str) -> Path:
    path = tmp_path / "manual.py"
    path.write_text((FIXTURES / "good.py").read_text() + cell)
    return path


def test_a_written_answer_cell_is_accepted(tmp_path):
    assert check_source(_with_manual(tmp_path, MANUAL_OK)) == []


@pytest.mark.parametrize("old, new, fragment", [
    ('"points": 3, ', '', "exactly the keys"),
    ('"locked": false', '"locked": true', "must have"),
    ('"points": 3', '"points": 0', "positive points"),
    ("# ### BEGIN SOLUTION\n# Reference answer and rubric.\n# ### END SOLUTION\n", "# An answer.\n", "no '### BEGIN SOLUTION'"),
    ("# ### END SOLUTION\n", "", "never closed"),
])
def test_a_broken_written_answer_cell_is_reported(tmp_path, old, new, fragment):
    assert old in MANUAL_OK
    problems = check_source(_with_manual(tmp_path, MANUAL_OK.replace(old, new, 1)))
    assert problems and any(fragment in p.message for p in problems), problems


def test_written_answers_are_not_auto_graded_cells(tmp_path):
    import jupytext

    from coursekit.notebooks import is_exercise, is_graded, is_manual, manual_points, total_points
    nb = jupytext.read(_with_manual(tmp_path, MANUAL_OK))
    manual = [c for c in nb.cells if is_manual(c)]
    assert len(manual) == 1 and not is_graded(manual[0]) and not is_exercise(manual[0])
    assert manual_points(nb) == 3.0
    assert total_points(nb) == sum(float(c.metadata["nbgrader"]["points"]) for c in nb.cells
                                   if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade"))


# --- test-cell names: graded cells define only '_' names and read no other graded cell's ----

GRADED = '# %% nbgrader={{"grade": true, "grade_id": "test-{gid}", "locked": true, "points": 1, "schema_version": 3, "solution": false}}\n'
GOOD_LINES = len((FIXTURES / "good.py").read_text().splitlines())


def _with_cells(tmp_path: Path, *cells: str) -> Path:
    """good.py plus cells: (grade-id suffix, body) for a graded cell, a plain body for a demo cell."""
    text = (FIXTURES / "good.py").read_text()
    for cell in cells:
        if isinstance(cell, tuple):
            gid, body = cell
            text += "\n" + GRADED.format(gid=gid) + body
        else:
            text += "\n# %%\n" + cell
    path = tmp_path / "names.py"
    path.write_text(text)
    return path


def test_a_graded_cell_that_binds_a_plain_name_is_reported(tmp_path):
    path = _with_cells(tmp_path, ("w", "w = double(3)\nassert w == 6\n"))
    problems = check_source(path)
    assert [p.line for p in problems] == [GOOD_LINES + 3], [str(p) for p in problems]
    message = problems[0].message
    assert "graded cell 'test-w' defines 'w'" in message and "must start with '_'" in message
    assert "'_w'" in message


def test_underscored_names_in_a_graded_cell_pass(tmp_path):
    body = "_w = double(3)\nassert _w == 6, f'got {_w}'\n### BEGIN HIDDEN TESTS\n_w += 1\nassert _w == 7\n### END HIDDEN TESTS\n"
    assert check_source(_with_cells(tmp_path, ("w", body))) == []


@pytest.mark.parametrize("body, names", [
    ("a, (b, _c) = 1, (2, 3)\n", ["a", "b"]),
    ("n = 0\nn += 1\n", ["n"]),
    ("for i in range(2):\n    pass\n", ["i"]),
    ("import os\nimport numpy as npy\nfrom math import pi, tau as t\nimport os.path\n", ["os", "npy", "pi", "t"]),
    ("def helper(x):\n    y = x\n    return y\nclass Box:\n    size = 1\n", ["helper", "Box"]),
    ("with open(__file__) as fh:\n    pass\n", ["fh"]),
    ("if (k := 3) > 2:\n    pass\n_s = [(j := v) for v in range(3)]\n", ["k", "j"]),
    ("try:\n    pass\nexcept ValueError as err:\n    pass\n", ["err"]),
    ("_d = {}\n_d['key'] = 1\n_o = type('O', (), {})()\n_o.attr = 2\n", []),
    ("_f = lambda q: q + 1\n_g = [z * z for z in range(3)]\n_h = {z: z for z in range(2)}\n", []),
])
def test_every_kind_of_binding_is_checked(tmp_path, body, names):
    problems = check_source(_with_cells(tmp_path, ("b", body)))
    found = [p.message.split(" defines ")[1].split(";")[0].strip("'") for p in problems]
    assert sorted(found) == sorted(names), [str(p) for p in problems]


def test_reading_another_graded_cells_name_is_reported(tmp_path):
    path = _with_cells(tmp_path, ("first", "_w = double(2)\nassert _w == 4\n"),
                       ("second", "assert double(_w) == 8\n"))
    problems = check_source(path)
    assert len(problems) == 1, [str(p) for p in problems]
    assert problems[0].line == GOOD_LINES + 7
    assert problems[0].message.startswith(
        f"graded cell 'test-second' reads '_w', which only graded cell 'test-first' (line {GOOD_LINES + 3}) defines")


@pytest.mark.parametrize("second", [
    "def _check():\n    return double(_w)\nassert _check() == 8\n",   # inside a function: a global read
    "_w = _w + 1\n",                                               # read before the cell's own binding
    "_w += 1\n",
])
def test_indirect_reads_of_another_graded_cells_name_are_reported(tmp_path, second):
    path = _with_cells(tmp_path, ("first", "_w = double(2)\n"), ("second", second))
    problems = check_source(path)
    assert len(problems) == 1 and "reads '_w', which only graded cell 'test-first'" in problems[0].message, \
        [str(p) for p in problems]


def test_a_graded_cell_may_read_its_own_names_and_those_of_demo_cells(tmp_path):
    path = _with_cells(tmp_path, "_shared = 2\n",
                       ("first", "_w = double(_shared)\n_shared2 = _w\n"),
                       ("second", "_w = double(_shared)\nassert _w == 4\n"
                                  "def _twice(_w):\n    return 2 * _w\nassert _twice(1) == 2\n"))
    assert check_source(path) == []


def test_a_demo_cell_that_reads_a_graded_cells_name_is_reported(tmp_path):
    path = _with_cells(tmp_path, ("first", "_w = double(2)\n"), "print(_w)\n")
    problems = check_source(path)
    assert len(problems) == 1 and problems[0].line == GOOD_LINES + 6, [str(p) for p in problems]
    assert problems[0].message.startswith("demo cell reads '_w', which only graded cell 'test-first'")


def test_a_graded_cell_that_does_not_parse_is_reported(tmp_path):
    problems = check_source(_with_cells(tmp_path, ("bad", "assert double(2) ==\n")))
    assert len(problems) == 1 and "does not parse" in problems[0].message, [str(p) for p in problems]
