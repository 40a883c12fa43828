"""Grading at scale: parallel jobs, a real Dask cluster and a real PostgreSQL gradebook all give
exactly the grades of serial grading into SQLite."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import copy_inputs, postgres_gradebook
from coursekit.build import build
from coursekit.config import db_url
from coursekit.demo import add_student
from coursekit.grading import autograde, grades

MODULE = "00_foundations"
KINDS = ("reference", "untouched", "one-exercise", "kernel-crash")


def _batch(course, prefix: str) -> list[str]:
    for kind in KINDS:
        add_student(course, MODULE, kind, f"{prefix}-{kind}")
    return [f"{prefix}-{kind}" for kind in KINDS]


def _cell_grades(url: str, students: list[str]) -> dict:
    from nbgrader.api import Gradebook
    out = {}
    with Gradebook(url) as gb:
        for student in students:
            sub = gb.find_submission(MODULE, student)
            out[student.split("-", 1)[1]] = {g.name: g.auto_score for nb in sub.notebooks for g in nb.grades}
    return out


@pytest.fixture(scope="module")
def serial(built_course):
    course, _ = built_course
    students = _batch(course, "serial")
    outcomes = autograde(course, MODULE, students, cell_timeout=30, force=True, jobs=1, progress=False)
    assert all(o.status != "failed" for o in outcomes), outcomes
    return course, _cell_grades(db_url(course), students)


def test_parallel_grades_equal_serial(serial):
    course, want = serial
    students = _batch(course, "parallel")
    autograde(course, MODULE, students, cell_timeout=30, force=True, jobs=2, progress=False)
    got = _cell_grades(db_url(course), students)
    assert got == want
    assert sum(v or 0 for v in want["reference"].values()) > 0
    assert sum(v or 0 for v in want["untouched"].values()) == 0


@pytest.fixture(scope="module")
def postgres_course(tmp_path_factory):
    """A course whose nbgrader_config.py points at a fresh database on the real server."""
    course = copy_inputs(tmp_path_factory.mktemp("pg"))
    with postgres_gradebook(course):
        build(course, [MODULE])
        yield course


def test_postgres_gradebook_equals_sqlite(serial, postgres_course):
    _, want = serial
    course = postgres_course
    assert db_url(course).startswith("postgresql")
    students = _batch(course, "pg")
    autograde(course, MODULE, students, cell_timeout=30, jobs=2, progress=False)
    assert _cell_grades(db_url(course), students) == want
    # nbgrader's own export reads the same gradebook through nbgrader_config.py
    with open(grades(course)) as handle:
        rows = {r["student_id"]: float(r["score"]) for r in csv.DictReader(handle)}
    assert rows["pg-reference"] == sum(v or 0 for v in want["reference"].values())
    assert not (course.grading_dir / "gradebook.db").exists(), "the SQLite default must not be used"


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """A real `dask scheduler` and two `dask worker` processes on localhost."""
    folder = tmp_path_factory.mktemp("dask")
    info = folder / "scheduler.json"
    dask = str(Path(sys.executable).parent / "dask")
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--scheduler-file", str(info)], cwd=folder,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    for _ in range(120):
        if info.exists() and info.stat().st_size:
            break
        time.sleep(0.5)
    address = json.loads(info.read_text())["address"]
    for index in range(2):  # each worker in its own empty folder: no shared file system
        home = folder / f"worker{index}"
        home.mkdir()
        procs.append(subprocess.Popen([dask, "worker", address, "--nworkers", "1", "--nthreads", "1",
                                       "--no-dashboard", "--local-directory", str(home)], cwd=home,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    from distributed import Client
    with Client(address, timeout="60s") as client:
        client.wait_for_workers(2, timeout=120)
    yield address
    from coursekit.distributed import close
    close()
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(timeout=30)


def test_dask_cluster_grades_equal_serial(serial, dask_cluster):
    course, want = serial
    students = _batch(course, "dask")
    outcomes = autograde(course, MODULE, students, cell_timeout=30, force=True, jobs=4,
                         scheduler=dask_cluster, progress=False)
    assert all(o.retries == 0 for o in outcomes)
    assert _cell_grades(db_url(course), students) == want
    from distributed import Client
    with Client(dask_cluster) as client:
        ran_on = client.run(lambda dask_worker: len(dask_worker.data) + len(dask_worker.state.tasks))
    assert len(ran_on) == 2


def _runs_a_kernel(pid: int) -> bool:
    """Whether a Python kernel runs below process `pid` (its sandbox has started)."""
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            if b"ipykernel_launcher" in Path(f"/proc/{current}/cmdline").read_bytes():
                return True
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:  # gone meanwhile
            continue
    return False


def test_worker_lost_mid_job_is_rerun_elsewhere(serial, dask_cluster, tmp_path):
    """SIGKILL a worker while it runs a job: the job runs again on another worker, every grade
    equals serial grading, and the summary counts the retry."""
    import signal
    import threading

    from distributed import Client

    course, want = serial
    students = _batch(course, "lost")
    doomed = subprocess.Popen([str(Path(sys.executable).parent / "dask"), "worker", dask_cluster, "--no-nanny",
                               "--nthreads", "1", "--name", "doomed", "--no-dashboard",
                               "--local-directory", str(tmp_path)], cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    killed = []
    with Client(dask_cluster, timeout="60s") as client:
        client.wait_for_workers(3, timeout=120)
        address = next(a for a, w in client.scheduler_info()["workers"].items() if w["name"] == "doomed")

        def kill_when_busy():
            deadline = time.time() + 300
            while time.time() < deadline and doomed.poll() is None:
                if client.processing([address]).get(address) and _runs_a_kernel(doomed.pid):
                    time.sleep(1)  # mid-job: its kernel is executing cells
                    doomed.send_signal(signal.SIGKILL)
                    killed.append(address)
                    return
                time.sleep(0.1)

        killer = threading.Thread(target=kill_when_busy)
        killer.start()
        outcomes = autograde(course, MODULE, students, cell_timeout=30, force=True, jobs=3,
                             scheduler=dask_cluster, progress=False)
        killer.join()
    doomed.wait(timeout=30)
    assert killed, "the doomed worker never got a job"
    assert sum(o.retries for o in outcomes) >= 1, [(o.student, o.retries) for o in outcomes]
    assert all(o.status != "failed" for o in outcomes), outcomes
    assert _cell_grades(db_url(course), students) == want


def test_killed_grader_keeps_finished_grades_and_resumes(serial):
    """SIGKILL the coordinator mid-batch: finished grades stay, no sandbox outlives it, and the
    next run grades only what is missing."""
    import signal
    from nbgrader.api import Gradebook, MissingEntry

    from coursekit.nbgrader_ext import report_of

    course, want = serial
    students = _batch(course, "killed")
    cmd = [str(Path(sys.executable).parent / "course"), "--root", str(course.root), "autograde", MODULE,
           "--jobs", "1", "--force", *[f"--student={s}" for s in students]]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def finished():
        done = []
        with Gradebook(db_url(course)) as gb:
            for s in students:
                try:
                    gb.find_submission(MODULE, s)
                    if report_of(course.grading_dir / "autograded" / s / MODULE / f"{MODULE}.ipynb"):
                        done.append(s)
                except MissingEntry:
                    pass
        return done

    deadline = time.time() + 600
    while time.time() < deadline and not finished() and proc.poll() is None:
        time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = finished()
    assert 0 < len(done) < len(students), f"kill the grader mid-batch (finished: {done})"
    time.sleep(1)
    ps = subprocess.run(["ps", "-eo", "ppid=,args="], capture_output=True, text=True).stdout.splitlines()
    orphans = [line for line in ps if "bwrap" in line and "<defunct>" not in line  # zombies have exited
               and line.split()[0] in ("1", str(proc.pid))]
    assert orphans == [], "a sandbox outlived the grader that started it"
    again = autograde(course, MODULE, students, cell_timeout=30, jobs=2, progress=False)
    skipped = [o.student for o in again if "already graded" in o.detail]
    assert set(skipped) >= set(done) and len(skipped) < len(students)
    assert _cell_grades(db_url(course), students) == want


def test_metadata_schema_checked_once_still_rejects_bad_cells():
    """nbgrader's per-cell metadata validation, with the schema checked once per process: valid
    metadata passes, invalid metadata raises as before."""
    import nbformat
    from jsonschema import ValidationError
    from nbgrader.nbgraderformat import MetadataValidator

    from coursekit.nbgrader_ext import check_metadata_schema_once

    check_metadata_schema_once()
    good = {"grade": True, "grade_id": "t1", "locked": True, "points": 2, "schema_version": 3,
            "solution": False, "task": False}
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1", metadata={"nbgrader": good})])
    MetadataValidator().validate_nb(nb)
    for bad in ({**good, "points": "two"}, {k: v for k, v in good.items() if k != "grade"},
                {**good, "grade_id": "not an id!"}, {**good, "extra": 1}):
        nb.cells[0].metadata["nbgrader"] = bad
        with pytest.raises(ValidationError):
            MetadataValidator().validate_nb(nb)
