"""A student and an instructor go through the standard nbgrader exchange in a real browser.

JupyterLab runs for the student with the student kit's settings; Debian's Chromium, driven
by Playwright (the system browser: nothing downloads one), fetches module 00 from the
exchange, runs it, sees a failing test's message and an unfinished exercise named, fills in
one exercise, validates and submits. The instructor collects, autogrades, and releases
feedback with plain nbgrader commands; the student fetches the feedback and sees the score.
Screenshots of every step are kept under test-artifacts/browser/.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import expect, sync_playwright

from coursekit.build import build
from coursekit.notebooks import exercise_points, source_to_notebook
from coursekit.package import write_kit
from conftest import REPO, copy_inputs, jupyter_server

MODULE = "00_foundations"
EXERCISE = "accuracy"          # the exercise the student fills in
# points of the graded cells that check that exercise, read from the module's source
EXERCISE_POINTS = dict(exercise_points(source_to_notebook(REPO / "modules" / f"{MODULE}.py", MODULE)))[EXERCISE]
ARTIFACTS = REPO / "test-artifacts" / "browser"
TOKEN = "student-token"


def _nbgrader(course, *args, cwd=None, env=None):
    result = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=cwd or course.grading_dir,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{result.stdout[-2000:]}{result.stderr[-3000:]}"
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A course with module 00 built and released to a course-owned exchange, a student home
    with the kit's nbgrader settings, and the kit's Jupyter settings (student tools only)."""
    root = tmp_path_factory.mktemp("browser")
    course = copy_inputs(root / "course")
    build(course, [MODULE])
    # the exchange is the course-owned default, grading/exchange (no COURSE_EXCHANGE)
    env = {k: v for k, v in os.environ.items() if k != "COURSE_EXCHANGE"}
    env.update(PYTHONPATH=str(REPO), MPLBACKEND="Agg")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env["PATH"]
    _nbgrader(course, "release_assignment", MODULE, env=env)
    exchange = course.grading_dir / "exchange"  # modes that let other (non-root) accounts use it
    assert exchange.stat().st_mode & 0o777 == 0o777
    assert (exchange / "sparse-nets/inbound").stat().st_mode & 0o033 == 0o033  # others may submit
    assert (exchange / "sparse-nets/outbound").stat().st_mode & 0o005 == 0o005  # and fetch
    kit = write_kit(course, MODULE, root / "kit")[0].parent
    home = root / "student"
    (home / ".jupyter").mkdir(parents=True)
    shutil.copyfile(kit / "nbgrader_config.py", home / ".jupyter" / "nbgrader_config.py")
    etc = root / "student-etc"  # what `pip install kit` puts under the environment's etc/jupyter
    (etc / "jupyter_server_config.d").mkdir(parents=True)
    (etc / "labconfig" / "page_config.d").mkdir(parents=True)
    shutil.copyfile(kit / "jupyter-config/server/zz_course_student.json",
                    etc / "jupyter_server_config.d/zz_course_student.json")
    shutil.copyfile(kit / "jupyter-config/labconfig/course_student.json", etc / "labconfig/page_config.d/course_student.json")
    student_env = {k: v for k, v in env.items() if k not in ("PYTHONPATH", "MPLBACKEND")}
    student_env.update(HOME=str(home), JUPYTER_CONFIG_DIR=str(home / ".jupyter"), JUPYTER_CONFIG_PATH=str(etc),
                       JUPYTER_DATA_DIR=str(home / ".local/share/jupyter"), JUPYTER_RUNTIME_DIR=str(home / ".run"))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    with jupyter_server("lab", [f"--ServerApp.root_dir={home}", "--LabApp.news_url=",
                                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
                        home, student_env, root / "jupyter.log", "/api/status", TOKEN) as url:
        yield dict(course=course, env=env, home=home, url=url, root=root)


def _shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def _reference_source(course, grade_id: str) -> str:
    nb = nbformat.read(course.notebook(MODULE), as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    return "\n".join(line for line in cell.source.split("\n") if "### " not in line)


def _cell(page, text: str):
    """The first notebook cell whose text contains `text`."""
    return page.locator(".jp-Notebook .jp-Cell").filter(has_text=text).first


def test_student_and_instructor_in_a_browser(scene):
    started = time.monotonic()
    url = scene["url"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=url)
        # offline: anything not served by the student's own Jupyter server (a CDN) fails
        context.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/])"), lambda route: route.abort())
        page = context.new_page()
        page.set_default_timeout(60_000)
        try:
            _student_and_instructor(scene, context, page)
        except Exception:
            _shot(page, "failure")
            raise
        finally:
            browser.close()
    assert time.monotonic() - started < 240


def _student_and_instructor(scene, context, page):
    """The steps, each ending in a screenshot under test-artifacts/browser/."""
    course, home, url = scene["course"], scene["home"], scene["url"]
    page.goto(f"{url}/lab?token={TOKEN}")
    page.locator(".jp-LabShell").wait_for()
    page.get_by_role("menuitem", name="Nbgrader").wait_for()
    _shot(page, "01-lab")

    # student tools only: the Nbgrader menu offers the Assignment List, not Formgrader or Create
    page.get_by_role("menuitem", name="Nbgrader").click()
    menu = page.locator(".lm-Menu").last
    expect(menu).to_contain_text("Assignment List")
    assert "Formgrader" not in menu.inner_text() and "Create" not in menu.inner_text(), menu.inner_text()
    _shot(page, "02-student-menu")
    menu.get_by_text("Assignment List").click()

    # fetch module 00 from the exchange
    assignments = page.locator(".lm-DockPanel-widget:visible").filter(has_text="Released assignments").first
    assignments.get_by_role("button", name="Fetch").first.click()
    assignments.get_by_role("button", name="Submit").wait_for()
    news = page.get_by_role("button", name="No")
    if news.count():
        news.first.click()  # JupyterLab's question about news
    assignments.get_by_text(MODULE, exact=True).first.click()  # unfolds the notebook list
    notebook_link = assignments.locator("a", has_text=MODULE).last
    assignments.get_by_role("button", name="Validate").wait_for()
    _shot(page, "03-fetched")
    assert (home / MODULE / f"{MODULE}.ipynb").is_file() and (home / MODULE / "tinytorch/__init__.py").is_file()

    # open it and run everything: Run All stops at the first failing test, whose message names the exercise
    notebook_link.click()
    page.locator(".jp-NotebookPanel .jp-Notebook").first.wait_for()
    select_kernel = page.locator(".jp-Dialog").filter(has_text="Select Kernel")
    try:
        select_kernel.get_by_role("button", name="Select").click(timeout=10_000)
    except Exception:  # no question asked: the notebook's kernelspec was found at once
        pass
    page.get_by_text("Python 3 (ipykernel) | Idle").wait_for()
    page.get_by_role("menuitem", name="Run").click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    first_failure = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").first
    expect(first_failure).to_contain_text("Exercise 1 (linear) is not finished", timeout=90_000)
    first_failure.scroll_into_view_if_needed()
    _shot(page, "04-failing-test")

    # a given cell that needs an unfinished exercise says which one
    training = _cell(page, "mlp_history =")
    training.scroll_into_view_if_needed()
    training.click()
    page.keyboard.press("Shift+Enter")
    expect(training.locator(".jp-OutputArea-output")).to_contain_text("first (and run its cell)", timeout=60_000)
    _shot(page, "05-given-cell-waits")

    # fill in one exercise (paste the code, as a student would), run it and its test
    exercise = _cell(page, f"def {EXERCISE}(")
    exercise.scroll_into_view_if_needed()
    exercise.locator(".cm-content").click()
    page.keyboard.press("Control+A")
    page.evaluate("text => navigator.clipboard.writeText(text)", _reference_source(course, EXERCISE))
    page.keyboard.press("Control+V")
    expect(exercise.locator(".cm-content")).not_to_contain_text("raise NotImplementedError")
    page.keyboard.press("Shift+Enter")  # runs the exercise, moves to its test
    page.keyboard.press("Shift+Enter")  # runs the test
    passed = _cell(page, 'print("accuracy looks right")').locator(".jp-OutputArea-output")
    expect(passed.first).to_contain_text("accuracy looks right")  # the test cell's own output
    page.keyboard.press("Control+S")
    _shot(page, "06-exercise-done")

    # Validate: nbgrader runs the whole notebook and lists what fails (the other exercises)
    page.get_by_role("button", name="Validate").first.click()
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_contain_text("Validation Results", timeout=120_000)
    expect(dialog).to_contain_text("failed")
    _shot(page, "07-validate")
    dialog.get_by_role("button").last.click()

    # submit through the Assignment List
    page.get_by_role("menuitem", name="Nbgrader").click()
    page.locator(".lm-Menu").last.get_by_text("Assignment List").click()
    assignments = page.locator(".lm-DockPanel-widget:visible").filter(has_text="Released assignments").first
    assignments.get_by_role("button", name="Submit").first.click()
    expect(assignments).to_contain_text("Submitted assignments", timeout=60_000)
    page.wait_for_timeout(1500)
    _shot(page, "08-submitted")

    # the instructor: collect, autograde, feedback (plain nbgrader, from the course's grading folder)
    env = scene["env"]
    _nbgrader(course, "collect", MODULE, env=env)
    _nbgrader(course, "autograde", MODULE, env=env)
    _nbgrader(course, "generate_feedback", MODULE, env=env)
    _nbgrader(course, "release_feedback", MODULE, env=env)
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{course.grading_dir / 'gradebook.db'}") as gb:
        (submission,) = gb.assignment_submissions(MODULE)
        score, max_score = submission.score, submission.max_score
    assert score == EXERCISE_POINTS, f"autograde gave {score}/{max_score}, expected {EXERCISE_POINTS}"

    # the student fetches feedback and sees the score
    page.get_by_role("menuitem", name="Nbgrader").click()
    page.locator(".lm-Menu").last.get_by_text("Assignment List").click()
    assignments = page.locator(".lm-DockPanel-widget:visible").filter(has_text="Released assignments").first
    assignments.get_by_role("button", name="Fetch Feedback").first.click()
    assignments.get_by_text("(view feedback)").first.click()
    feedback = sorted((home / MODULE / "feedback").rglob(f"{MODULE}.html"))
    assert feedback, "no feedback fetched"
    rel = feedback[-1].relative_to(home).as_posix()
    view = context.new_page()
    view.goto(f"{url}/files/{urllib.request.quote(rel)}?token={TOKEN}")
    expect(view.locator("body")).to_contain_text(f"Score: {EXERCISE_POINTS:.1f}")
    # formulas typeset by MathJax from the student's server, not shown as raw $...$
    expect(view.locator(".MathJax").first).to_be_visible(timeout=30_000)
    view.locator("p", has=view.locator(".MathJax")).first.scroll_into_view_if_needed()
    _shot(view, "09-feedback")
