"""Shared fixtures: a clean copy of the course, built once per test session."""
from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from coursekit.build import build
from coursekit.demo import scratch_course
from coursekit.layout import Course

REPO = Path(__file__).resolve().parents[1]
# the role scripts/setup.sh creates on the PostgreSQL server it starts
PG_SERVER = os.environ.get("TEST_PG_URL", "postgresql+psycopg2://coursekit:coursekit@127.0.0.1:5432")


def copy_inputs(dest: Path) -> Course:
    """What a clean clone holds that the build reads, copied into dest."""
    return scratch_course(Course.at(REPO), dest)


@pytest.fixture(scope="session")
def built_course(tmp_path_factory) -> tuple[Course, dict]:
    """The course copied like a fresh clone and built once: (course, first build's report)."""
    course = copy_inputs(tmp_path_factory.mktemp("clone"))
    report = build(course, course.module_names())
    return course, report


@contextlib.contextmanager
def postgres_gradebook(course: Course, prefix: str = "cg_test"):
    """A fresh database on the real PostgreSQL server, named as the course's gradebook in its
    nbgrader_config.py, dropped afterwards. Yields the gradebook URL."""
    import sqlalchemy
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = sqlalchemy.create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    config = course.grading_dir / "nbgrader_config.py"
    config.write_text(config.read_text() + f'\nc.CourseDirectory.db_url = "{PG_SERVER}/{name}"\n')
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def jupyter_server(app: str, args: list[str], cwd: Path, env: dict, log_path: Path, ready: str, token: str):
    """`jupyter APP` on a free local port, waited for until GET `ready` (a path) answers; yields
    its base URL and stops it afterwards. A server that exits or stays silent for 60 s fails
    with the end of its log."""
    port = free_port()
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "jupyter", app, "--no-browser", f"--ServerApp.port={port}",
             "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}", *args]
            + (["--allow-root"] if os.geteuid() == 0 else []),
            cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(f"{base}{ready}?token={token}", timeout=2)
                    break
                except OSError:
                    assert server.poll() is None, f"jupyter {app} exited:\n{log_path.read_text()[-3000:]}"
                    assert time.monotonic() < deadline, \
                        f"jupyter {app} did not answer in 60 s:\n{log_path.read_text()[-3000:]}"
                    time.sleep(0.5)
            yield base
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=10)
