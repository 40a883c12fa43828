"""Hostile submissions against `course autograde`: each earns 0 or is flagged, reads nothing,
changes nothing, leaves no process behind; honest controls graded before and after keep their
exact scores.

Every hostile notebook starts from the untouched release of module 01 (so any point it earns
was stolen) and puts its attack in place of the first exercise.
"""
from __future__ import annotations

import copy
import csv
import hashlib
import subprocess
from pathlib import Path

import nbformat
import pytest

from coursekit.demo import add_student
from coursekit.grading import autograde, feedback, grades, score_table
from coursekit.nbgrader_ext import job_files
from coursekit.notebooks import grading_meta, is_exercise, split_regions

MODULE = "01_magnitude_pruning"
MARK = "cg_hostile_987654"  # in every process a hostile submission starts, to find survivors

ATTACKS = {
    # import the answer: the module being graded is not in the kernel's tinytorch
    "import-answer": "from tinytorch.prune import *\nfrom tinytorch.prune_structured import *\n",
    # IPython hooks that rewrite every later cell
    "input-transformer": (
        "ip = get_ipython()\n"
        "ip.input_transformers_post.append(lambda lines: ['pass\\n'] if any('assert' in l for l in lines) else lines)\n"),
    "ast-transformer": (
        "import ast\nclass Drop(ast.NodeTransformer):\n    def visit_Assert(self, node):\n        return ast.Pass()\n"
        "get_ipython().ast_transformers.append(Drop())\n"),
    "custom-exception-handler": "get_ipython().set_custom_exc((BaseException,), lambda *a, **k: None)\n",
    "trace-function": (
        "import sys\ndef tracer(frame, event, arg):\n    return tracer\nsys.settrace(tracer)\n"),
    "replaced-shell-method": (
        "ip = get_ipython()\nreal = ip.run_cell\n"
        "def quiet(raw_cell, *a, **k):\n    return real('pass' if 'assert' in raw_cell else raw_cell, *a, **k)\n"
        "ip.run_cell = quiet\n"),
    "event-callback": (
        "import builtins\ndef pre(info):\n    builtins.AssertionError = type('X', (Exception,), {})\n"
        "get_ipython().events.register('pre_run_cell', pre)\n"),
    # monkeypatching what the tests use
    "monkeypatch-numpy": (
        "import numpy as np\nnp.array_equal = lambda *a, **k: True\nnp.allclose = lambda *a, **k: True\n"
        "np.all = lambda *a, **k: True\n"),
    "monkeypatch-testing": (
        "import tinytorch.testing as t\nt.expect_error = lambda *a, **k: None\nexpect_error = t.expect_error\n"),
    "monkeypatch-builtins": "import builtins\nbuiltins.isinstance = lambda *a: True\nbuiltins.abs = lambda x: 0\n",
    # values that claim to equal anything
    "lying-values": (
        "class Any(float):\n    def __eq__(self, other): return True\n    __ne__ = lambda s, o: False\n"
        "    __lt__ = __le__ = __gt__ = __ge__ = __eq__\n    def __bool__(self): return True\n"
        "    def __getitem__(self, key): return self\n    def __contains__(self, key): return True\n"
        "    def __sub__(self, other): return 0.0\n    __rsub__ = __sub__\n    def __abs__(self): return 0.0\n"
        "    def __getattr__(self, name): return self\n    def __call__(self, *a, **k): return self\n"
        "    def __len__(self): return 1\n    def __iter__(self): return iter([self])\n"
        "A = Any(0.0)\n"
        "def analyze_weight_redundancy(*a, **k): return A\ndef prune_count(*a, **k): return A\n"
        "def magnitude_mask(*a, **k): return A\n"),
    # reading: everything above the working folder, printed into the student's own outputs
    "read-course": (
        "import os\nfound = []\nfor top in ('/', '/work', '/root', '/home', '/tmp'):\n"
        "    for dirpath, dirs, files in os.walk(top):\n"
        "        dirs[:] = [d for d in dirs if d not in ('proc', 'sys', 'dev', 'usr', 'lib', 'site-packages')]\n"
        "        for f in files:\n"
        "            if f.endswith(('.ipynb', '.db', 'nbgrader_config.py', 'prune.py')):\n"
        "                p = os.path.join(dirpath, f)\n"
        "                try:\n                    print(p, open(p, errors='replace').read()[:20000])\n"
        "                except OSError as e:\n                    print(p, e)\n"),
    # writing: the gradebook, the package, the config, other students' folders
    "write-course": (
        "import os, glob, sqlite3, tinytorch\n"
        "for p in glob.glob(os.path.dirname(tinytorch.__file__) + '/*.py'):\n"
        "    try:\n        open(p, 'a').write('\\nraise SystemExit(1)\\n')\n    except OSError: pass\n"
        "for top in ('/', '/work', '/root', '/tmp', '/home'):\n"
        "    for dirpath, dirs, files in os.walk(top):\n"
        "        dirs[:] = [d for d in dirs if d not in ('proc', 'sys', 'dev', 'usr')]\n"
        "        for f in files:\n"
        "            p = os.path.join(dirpath, f)\n"
        "            if f == 'gradebook.db':\n"
        "                try:\n                    db = sqlite3.connect(p); db.execute('update grade set auto_score = 10989'); db.commit()\n"
        "                except Exception: pass\n"
        "            elif f in ('nbgrader_config.py',) or f.endswith('.ipynb'):\n"
        "                try:\n                    open(p, 'a').write('\\nimport os; os.system(\"touch /tmp/pwned\")\\n')\n"
        "                except OSError: pass\n"),
    "network": (
        "import socket\nfor port in (5432, 8888, 80):\n    try:\n"
        "        socket.create_connection(('127.0.0.1', port), timeout=1).send(b'x')\n    except OSError: pass\n"),
    # escaping and exhausting
    "daemon": (
        "import os, subprocess, time\n"
        f"subprocess.Popen(['sh', '-c', 'exec -a {MARK} sleep 300'], start_new_session=True)\n"
        "if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        f"        os.execvp('sh', ['sh', '-c', 'exec -a {MARK} sleep 301'])\n    os._exit(0)\n"),
    "memory": "import numpy as np\nhog = np.ones(6 * 1024 ** 3 // 8)\n",
    "fork-flood": (
        "import subprocess\nkids = []\nfor i in range(2000):\n"
        f"    kids.append(subprocess.Popen(['sh', '-c', 'exec -a {MARK} sleep 30']))\n"),
    "output-flood": "for i in range(200):\n    print('x' * 100000)\n",
    "disk-fill": "with open('big.bin', 'wb') as f:\n    f.write(b'0' * 200 * 1024 * 1024)\n",
    "grader-detection": (
        "import os\nGRADING = 'NBGRADER_EXECUTION' in os.environ\n"
        "def prune_count(n, s):\n    return round(n * s) if not GRADING else 0\n"),
}
LIMIT_ROWS = {"memory": "memory limit", "fork-flood": "process limit", "output-flood": "output limit",
              "disk-fill": "file size limit"}


def _hostile(course, kind: str, attack: str) -> None:
    nb = nbformat.read(course.release(MODULE), as_version=4)
    first = next(c for c in nb.cells if is_exercise(c))
    first.source = attack
    target = course.grading_dir / "submitted" / kind / MODULE / f"{MODULE}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target)


def _edited_tests(course) -> None:
    """Untouched stub whose tests are edited to pass, one deleted, and a fake graded cell added."""
    nb = nbformat.read(course.release(MODULE), as_version=4)
    graded = [c for c in nb.cells if grading_meta(c).get("grade")]
    for cell in graded[:-1]:
        cell.source = "pass"
    nb.cells.remove(graded[-1])
    fake = copy.deepcopy(graded[0])
    fake.metadata["nbgrader"]["grade_id"] = "test-bonus"
    fake.metadata["nbgrader"]["points"] = 1000
    fake.source = "assert True"
    fake.id = "bonus"
    nb.cells.append(fake)
    target = course.grading_dir / "submitted" / "edited-tests" / MODULE / f"{MODULE}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target)


def _course_files(course) -> dict[str, str]:
    """Hash of every course file except what grading writes (submissions included)."""
    runtime = {"autograded", "feedback", "gradebook.db", "grades.csv"}
    out = {}
    for path in sorted(course.root.rglob("*")):
        rel = path.relative_to(course.root)
        if path.is_file() and not (rel.parts[0] == "grading" and len(rel.parts) > 1 and rel.parts[1] in runtime) \
                and "__pycache__" not in rel.parts:
            out[str(rel)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _survivors() -> list[str]:
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [line for line in ps.splitlines() if MARK in line and "ps -eo" not in line]


@pytest.fixture(scope="module")
def hostile_batch(built_course):
    course, _ = built_course
    expected = {}
    for name in ("control-reference-a", "control-untouched-a", "control-reference-z", "control-untouched-z"):
        expected[name] = add_student(course, MODULE, name.split("-")[1], name)
    for kind, attack in ATTACKS.items():
        _hostile(course, kind, attack)
    _edited_tests(course)
    before = _course_files(course)
    order = ["control-reference-a", "control-untouched-a", *ATTACKS, "edited-tests",
             "control-reference-z", "control-untouched-z"]
    outcomes = autograde(course, MODULE, order, cell_timeout=30, force=True, jobs=2, progress=False)
    print(score_table([(MODULE, o) for o in outcomes]))
    feedback(course, MODULE)
    return course, {o.student: o for o in outcomes}, before, expected


def test_controls_keep_exact_scores(hostile_batch):
    course, rows, _, expected = hostile_batch
    assert expected["control-reference-a"] > 0
    for name, want in expected.items():
        assert rows[name].status == "graded" and rows[name].score == want, rows[name]


@pytest.mark.parametrize("kind", [*ATTACKS, "edited-tests"])
def test_hostile_earns_nothing(hostile_batch, kind):
    _, rows, _, _ = hostile_batch
    row = rows[kind]
    assert row.status != "failed" or row.score is None, row
    assert not row.score, f"{kind} earned {row.score}: {row}"


@pytest.mark.parametrize("kind", ["input-transformer", "ast-transformer", "custom-exception-handler",
                                  "trace-function", "replaced-shell-method", "event-callback",
                                  "monkeypatch-numpy", "monkeypatch-testing", "monkeypatch-builtins",
                                  "lying-values", "grader-detection", "edited-tests"])
def test_tampering_is_flagged(hostile_batch, kind):
    _, rows, _, _ = hostile_batch
    assert rows[kind].status == "flagged" and rows[kind].flags, rows[kind]


@pytest.mark.parametrize("kind", sorted(LIMIT_ROWS))
def test_limit_named_in_row(hostile_batch, kind):
    _, rows, _, _ = hostile_batch
    assert LIMIT_ROWS[kind] in rows[kind].limits, rows[kind]


def test_nothing_read_nothing_changed_nothing_survives(hostile_batch):
    course, rows, before, _ = hostile_batch
    assert _course_files(course) == before, "a course file outside run-time grading data changed"
    assert not Path("/tmp/pwned").exists()
    assert _survivors() == [], "a process started by a submission outlived grading"
    # the reader saw no source notebook, gradebook or reference module
    executed = nbformat.read(course.grading_dir / "autograded" / "read-course" / MODULE / f"{MODULE}.ipynb",
                             as_version=4)
    printed = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    for secret in ("gradebook.db", "nbgrader_config.py", "/source/", "BEGIN SOLUTION", "def magnitude_mask"):
        assert secret not in printed, f"the kernel could read {secret!r}"


def test_feedback_has_no_solution_or_hidden_test_line(hostile_batch):
    course, rows, _, _ = hostile_batch
    source = nbformat.read(course.notebook(MODULE), as_version=4)
    # what the student already has: the release and the due package
    given = course.release(MODULE).read_text(encoding="utf-8")
    given += "".join(p.read_text(encoding="utf-8") for p in job_files(course, MODULE)["tinytorch"].glob("*.py"))
    secret = {line for c in source.cells if c.cell_type == "code" for line in split_regions(c.source)[1]
              if len(line) > 25 and line not in given}
    assert len(secret) > 20
    pages = list((course.grading_dir / "feedback").rglob(f"{MODULE}.html"))
    have = {page.parent.parent.name for page in pages}
    assert {name for name, r in rows.items() if r.status != "failed"} <= have
    import html
    for page in pages:
        text = html.unescape(page.read_text(encoding="utf-8"))
        leaked = [line for line in secret if line in text]
        assert not leaked, f"{page.parent.parent.name}'s feedback shows {leaked[:2]}"


def test_grades_csv_marks_flagged(hostile_batch):
    course, rows, _, _ = hostile_batch
    with open(grades(course)) as handle:
        table = {r["student_id"]: r for r in csv.DictReader(handle) if r["assignment"] == MODULE}
    assert table["lying-values"]["flagged"]
    assert table["control-reference-a"]["flagged"] == ""


def test_rerun_grades_only_what_is_missing(hostile_batch):
    course, rows, _, _ = hostile_batch
    again = autograde(course, MODULE, ["control-reference-a", "control-untouched-a"], progress=False)
    assert all("already graded" in o.detail for o in again)
    assert [o.score for o in again] == [rows["control-reference-a"].score, 0]


def test_every_canary_an_honest_kernel_runs_fails_with_its_nonce():
    """A canary that could pass would flag an honest submission: every template, for every
    number the instrumenter can draw, must raise AssertionError naming its nonce."""
    from coursekit.integrity import CANARIES

    class Fixed:  # draws a chosen template and chosen numbers, in canary_source's order
        def __init__(self, template, a, k):
            self.template, self.draws = template, [a, k]

        def choice(self, options):
            return options[self.template]

        def randint(self, low, high):
            value = self.draws.pop(0)
            assert low <= value <= high
            return value

    from coursekit.integrity import canary_source
    for template in range(len(CANARIES)):
        for a in range(3, 41):
            for k in range(1, 10):
                source = canary_source(Fixed(template, a, k), "nonce-x")
                with pytest.raises(AssertionError, match="nonce-x"):
                    exec(compile(source, "<canary>", "exec"), {})


def test_plain_wrapping_is_the_same_whether_cached_or_not():
    """Tests are rewritten once per batch and the helper's name filled in per submission: the
    result must equal a fresh rewrite with that helper, and no helper may leak into another."""
    from coursekit.integrity import _HELPER_SLOT, _wrapped, plain_wrapped

    source = "x = f(a.b[0], k=y)\nassert np.allclose(x, 1), f'{x} {z[1:]}'\n_r = [v for v in w]"
    fresh = _wrapped.__wrapped__  # the rewrite without the cache
    for helper in ("_cg_aaaa.plain", "_cg_bbbb.plain"):
        wrapped = plain_wrapped(source, helper)
        assert wrapped == fresh(source, helper)
        assert wrapped.count(helper) >= 8 and "_cg_aaaa" not in wrapped.replace(helper, "")
    tricky = f"{_HELPER_SLOT} = 1\nassert {_HELPER_SLOT} == 1"  # mentions the slot: rewritten directly
    assert plain_wrapped(tricky, "_cg_cccc.plain") == fresh(tricky, "_cg_cccc.plain")
    assert plain_wrapped("%timeit 1", "_cg_cccc.plain") == "%timeit 1"  # not plain Python: unchanged
