"""Formgrader works unchanged on both gradebooks: SQLite (the course's default) and PostgreSQL.

Module 00 is built in a scratch course and two submissions are autograded; then the real
Formgrader (nbgrader's Jupyter server extension, started the standard way from grading/ so
that it reads grading/nbgrader_config.py) is driven through the JSON API its pages call. The
submissions it lists carry the scores the gradebook holds, and a manual score set on a
written answer, with the PUT of the grading page, reaches the gradebook and `nbgrader export`.
"""
from __future__ import annotations

import contextlib
import csv
import json
import re
import secrets
import urllib.error
import urllib.request

import pytest

from conftest import copy_inputs, jupyter_server, postgres_gradebook
from coursekit.build import build
from coursekit.config import db_url
from coursekit.demo import add_student
from coursekit.grading import autograde, grades

MODULE = "00_foundations"
STUDENTS = {"fg-reference": "reference", "fg-untouched": "untouched"}
TOKEN = "formgrader-" + secrets.token_hex(8)
# the submission fields Formgrader shows, as the gradebook computes them
SCORE_FIELDS = ("score", "max_score", "code_score", "max_code_score", "written_score", "max_written_score",
                "needs_manual_grade")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def graded(request, tmp_path_factory):
    """A scratch course with module 00 built and two submissions autograded into the gradebook
    that nbgrader_config.py names: the default SQLite file, or a fresh PostgreSQL database."""
    course = copy_inputs(tmp_path_factory.mktemp(f"fg-{request.param}"))
    with contextlib.ExitStack() as stack:
        if request.param == "postgresql":
            stack.enter_context(postgres_gradebook(course, "cg_fg"))
        url = db_url(course)
        assert url.startswith(request.param), f"gradebook URL: expected a {request.param} URL, got {url!r}"
        build(course, [MODULE])
        for student, kind in STUDENTS.items():
            add_student(course, MODULE, kind, student)
        outcomes = autograde(course, MODULE, list(STUDENTS), cell_timeout=30, jobs=2, progress=False)
        assert sorted(o.student for o in outcomes if o.status != "failed") == sorted(STUDENTS), \
            f"autograde: expected both submissions graded, got {[(o.student, o.status, o.detail) for o in outcomes]}"
        yield course, url


@pytest.fixture(scope="module")
def formgrader(graded, tmp_path_factory):
    """`jupyter server` with nbgrader's formgrader extension, started in the course's grading/
    folder; yields (course, db_url, base URL) and stops the server afterwards."""
    course, url = graded
    jupyter = tmp_path_factory.mktemp("jupyter")  # no user-level Jupyter or nbgrader settings
    env = course.subprocess_env()  # the venv's bin first on PATH
    env.update(JUPYTER_CONFIG_DIR=str(jupyter / "config"), JUPYTER_DATA_DIR=str(jupyter / "data"),
               JUPYTER_RUNTIME_DIR=str(jupyter / "runtime"))
    with jupyter_server("server", ['--ServerApp.jpserver_extensions={"nbgrader.server_extensions.formgrader": True}'],
                        course.grading_dir, env, jupyter / "server.log", "/formgrader/api/status", TOKEN) as base:
        yield course, url, base


def _api(base: str, path: str, method: str = "GET", body=None):
    """Formgrader's JSON answer to one request; an error status fails with what came back."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{base}/formgrader/api/{path}", data=data, method=method,
                                 headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as err:
        raise AssertionError(f"{method} /formgrader/api/{path}: expected 200, got {err.code}: "
                             f"{err.read().decode(errors='replace')[-2000:]}") from None


def _page(base: str, path: str) -> str:
    """The HTML of one Formgrader page; an error status fails with what came back."""
    req = urllib.request.Request(f"{base}/formgrader/{path}", headers={"Authorization": f"token {TOKEN}"})
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.read().decode()
    except urllib.error.HTTPError as err:
        raise AssertionError(f"GET /formgrader/{path}: expected 200, got {err.code}: "
                             f"{err.read().decode(errors='replace')[-2000:]}") from None


def _gradebook_submission(url: str, student: str) -> dict:
    """A submission's totals and per-cell grades, read straight from the gradebook."""
    from nbgrader.api import Gradebook
    with Gradebook(url) as gb:
        sub = gb.find_submission(MODULE, student)
        out = {field: getattr(sub, field) for field in SCORE_FIELDS}
        out["grades"] = {g.name: dict(id=g.id, score=g.score, auto_score=g.auto_score, manual_score=g.manual_score,
                                      max_score=g.max_score, cell_type=g.cell_type)
                         for nb in sub.notebooks for g in nb.grades}
    return out


def _close(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a == b
    return abs(float(a) - float(b)) < 1e-9


def test_formgrader_lists_the_gradebooks_scores(formgrader):
    course, url, base = formgrader
    listed = {s["student"]: s for s in _api(base, f"submissions/{MODULE}")}
    assert set(STUDENTS) <= set(listed), \
        f"submissions of {MODULE}: expected {sorted(STUDENTS)}, Formgrader listed {sorted(listed)}"
    for student in STUDENTS:
        want = _gradebook_submission(url, student)
        got = listed[student]
        assert got["autograded"] and got["submitted"], f"{student}: expected autograded and submitted, got {got}"
        wrong = {f: (want[f], got.get(f)) for f in SCORE_FIELDS if not _close(want[f], got.get(f))}
        assert not wrong, f"{student}: Formgrader's scores differ from the gradebook's (field: (gradebook, API)): {wrong}"
    reference, untouched = (_gradebook_submission(url, s) for s in STUDENTS)
    assert reference["code_score"] > 0 and untouched["code_score"] == 0, \
        f"autograde: expected the reference to score and the untouched one not, got " \
        f"{reference['code_score']} and {untouched['code_score']}"

    # the grading page's view of one submitted notebook: its cells' grades
    notebooks = _api(base, f"student_notebook_submissions/fg-reference/{MODULE}")
    assert [nb["name"] for nb in notebooks] == [MODULE], f"notebooks of fg-reference: got {notebooks}"
    cells = {g["name"]: g for g in _api(base, f"grades?submission_id={notebooks[0]['id']}")}
    want = {k: (v["auto_score"], v["manual_score"], v["max_score"]) for k, v in reference["grades"].items()}
    got = {k: (v["auto_score"], v["manual_score"], v["max_score"]) for k, v in cells.items()}
    assert got == want, f"grades of fg-reference: expected the gradebook's {want}, Formgrader gave {got}"
    # the grading page itself renders the autograded notebook with a score box per graded cell
    html = _page(base, f"submissions/{notebooks[0]['id']}/")
    boxes = set(re.findall(r'<input class="score tabbable" id="([^"]+)"', html))
    assert boxes == set(want), f"grading page of fg-reference: expected score boxes {sorted(want)}, got {sorted(boxes)}"


def test_manual_score_reaches_gradebook_and_export(formgrader):
    course, url, base = formgrader
    before = _gradebook_submission(url, "fg-reference")
    written = sorted(name for name, g in before["grades"].items() if g["cell_type"] == "markdown" and name.startswith("q"))
    assert written, f"expected written-answer cells (markdown, q...) in {MODULE}, got {sorted(before['grades'])}"
    cell = before["grades"][written[0]]
    new = cell["max_score"] - 1  # not the full score: a value autograding could not have given
    # what the grading page does: PUT the grade model with the grader's score
    model = _api(base, f"grade/{cell['id']}")
    model.update(manual_score=new, extra_credit=0)
    saved = _api(base, f"grade/{cell['id']}", method="PUT", body=model)
    assert _close(saved["manual_score"], new) and not saved["needs_manual_grade"], \
        f"PUT grade {written[0]}: expected manual_score {new} and needs_manual_grade false, got {saved}"

    want_total = before["score"] - (cell["score"] or 0) + new
    after = _gradebook_submission(url, "fg-reference")
    assert _close(after["grades"][written[0]]["manual_score"], new), \
        f"gradebook {written[0]}: expected manual_score {new}, got {after['grades'][written[0]]}"
    assert _close(after["score"], want_total), \
        f"gradebook total of fg-reference: expected {want_total} ({before['score']} before), got {after['score']}"
    listed = {s["student"]: s for s in _api(base, f"submissions/{MODULE}")}
    assert _close(listed["fg-reference"]["score"], want_total), \
        f"Formgrader's total of fg-reference: expected {want_total}, got {listed['fg-reference']['score']}"

    # nbgrader's CSV export, through nbgrader_config.py, while Formgrader still runs
    with open(grades(course)) as handle:
        rows = {r["student_id"]: r for r in csv.DictReader(handle) if r["assignment"] == MODULE}
    assert set(STUDENTS) <= set(rows), f"export: expected rows for {sorted(STUDENTS)}, got {sorted(rows)}"
    assert _close(float(rows["fg-reference"]["score"]), want_total), \
        f"export score of fg-reference: expected {want_total}, got {rows['fg-reference']['score']}"
    untouched = _gradebook_submission(url, "fg-untouched")
    assert _close(float(rows["fg-untouched"]["score"]), untouched["score"]), \
        f"export score of fg-untouched: expected {untouched['score']}, got {rows['fg-untouched']['score']}"
    if url.startswith("postgresql"):
        assert not (course.grading_dir / "gradebook.db").exists(), "the SQLite default must not be used"
