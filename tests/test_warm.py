"""Warm kernels: started ahead of their jobs, yet each serves one job only and none outlives
its batch or its idle time."""
from __future__ import annotations

import subprocess
import time

import nbformat

from coursekit.job import run_job
from coursekit.sandbox import Sandbox
from coursekit.warm import WarmKernels


def _notebook(*sources: str):
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])


def _text(result) -> str:
    return "".join(o.get("text", "") for c in result.notebook.cells for o in c.get("outputs", []))


def _waiting(pool: WarmKernels) -> list:
    """The pool's kernels not yet taken (started, or starting)."""
    return [future.result(timeout=60) for waiting in pool._waiting.values() for future in waiting]


def _gone(kernel, seconds: float = 30) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline and kernel.alive():
        time.sleep(0.1)
    return not kernel.alive()


def test_a_warm_kernel_holds_nothing_of_the_job_before():
    sandbox = Sandbox()
    first = run_job(_notebook("import builtins, os\nbuiltins.LEAK = 1\nopen('/tmp/leak', 'w').write('x')\n"
                              "open(os.path.expanduser('~/leak'), 'w').write('x')\nprint('pid', os.getpid())"),
                    {}, sandbox, 30, ahead=1)
    assert "pid" in _text(first), first.notebook
    time.sleep(1)  # the second job's kernel started during the first job and is warm now
    second = run_job(_notebook("import builtins, os\nprint(hasattr(builtins, 'LEAK'), os.path.exists('/tmp/leak'),"
                               " os.path.exists(os.path.expanduser('~/leak')))"), {}, sandbox, 30, ahead=0)
    assert _text(second).strip() == "False False False", f"state crossed between jobs: {_text(second)!r}"


def test_warm_kernels_are_killed_when_idle_or_closed():
    pool = WarmKernels(idle_seconds=2)
    pool.warm_up({}, Sandbox(), 2)
    first, second = _waiting(pool)
    taken = pool.take({}, Sandbox(), ahead=0)
    assert taken is first and taken.alive() and second.alive()
    taken.close()
    assert _gone(taken), "a job's kernel outlived its job"
    assert _gone(second), "a warm kernel nobody took outlived its idle time"
    pool.warm_up({}, Sandbox(), 1)
    (third,) = _waiting(pool)
    pool.close()
    assert _gone(third, seconds=10), "a warm kernel outlived the pool's close()"


def test_a_kernel_that_cannot_start_is_a_row_not_a_crash():
    result = run_job(_notebook("print(1)"), {}, Sandbox(bwrap="/nonexistent/bwrap"), 30)
    assert result.stopped and "kernel failure" in result.limits[0], result.limits


def _processes_holding(folder: str) -> list[str]:
    ps = subprocess.run(["ps", "-eo", "stat=,args="], capture_output=True, text=True).stdout.splitlines()
    return [line for line in ps if folder in line and not line.lstrip().startswith("Z")]


def test_a_kernel_closed_right_after_its_start_leaves_no_process():
    """The inner bwrap asks to die with its parent only a moment after it starts; a kernel
    closed inside that moment must not leave it (and the interpreter) running, orphaned."""
    pool = WarmKernels()
    folders = []
    for _ in range(60):
        kernel = pool.take({}, Sandbox(), ahead=0)
        folders.append(str(kernel.run_dir))
        kernel.close()
    time.sleep(1)
    left = [line for folder in folders for line in _processes_holding(folder)]
    assert left == [], f"{len(left)} sandbox processes outlived their kernel: {left[:2]}"
