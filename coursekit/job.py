"""One grading job: execute one prepared notebook in the sandbox and return plain data.

A job is pure in its inputs (the notebook, the files its kernel may see, the limits) and
returns the executed notebook, which limits were hit, and how long it took. It needs no
gradebook, no course tree and no nbgrader configuration, so it runs the same in the grader's
process, in a local worker pool or on a Dask worker.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbgrader.preprocessors import Execute

from .sandbox import PidsCgroup, Sandbox, SandboxedKernelManager, kernel_env

# error outputs that mean a limit was hit: (ename pattern, evalue pattern, limit name)
LIMIT_ERRORS = [
    (r"MemoryError", r"", "memory limit"),
    (r"OSError|IOError", r"File too large|Errno 27", "file size limit"),
    (r"OSError|IOError", r"No space left|Errno 28", "disk limit"),
    (r"BlockingIOError|OSError|RuntimeError", r"Resource temporarily unavailable|Errno 11|can't start new thread",
     "process limit"),
]


_ACTIVE: set = set()  # executors whose kernels are running (killed on Ctrl-C)
_ACTIVE_LOCK = threading.Lock()


def _kernel_process(executor):
    """The process the kernel manager launched (bwrap, or the bare kernel), if any."""
    return getattr(getattr(getattr(executor, "km", None), "provisioner", None), "process", None)


def kill_all() -> None:
    """Kill every running job's kernel (and so its whole sandbox)."""
    with _ACTIVE_LOCK:
        executors = list(_ACTIVE)
    for executor in executors:
        process = _kernel_process(executor)
        if process is not None:
            process.kill()


class OutputLimit(Exception):
    pass


@dataclass
class JobResult:
    notebook: dict  # the executed notebook, as JSON-ready data
    limits: list[str] = field(default_factory=list)  # names of the limits that were hit
    stopped: str | None = None  # the limit that stopped the kernel, if one did
    seconds: float = 0.0


class SandboxExecute(Execute):
    """nbgrader's Execute (timeouts, error recording), with the kernel in the sandbox and a
    cap on the output it may send."""

    def __init__(self, sandbox: Sandbox, run_dir: Path, files: dict[str, Path], **kwargs):
        # the sandbox holds nothing to save: kill the kernel at the end rather than wait for it
        super().__init__(kernel_manager_class=SandboxedKernelManager, shutdown_kernel="immediate", **kwargs)
        self.sandbox, self.run_dir, self.files = sandbox, run_dir, files
        self.output_bytes = 0
        self.plain_env: dict[str, str] = {}
        self.cgroup = None

    def create_kernel_manager(self):
        self.km = SandboxedKernelManager(run_dir=str(self.run_dir), kernel_name="python3", config=self.config)
        self.km.files, self.km.sandbox, self.km.plain_env = self.files, self.sandbox, self.plain_env
        self.km.cgroup = self.cgroup
        return self.km

    def output(self, outs, msg, display_id, cell_index):
        self.output_bytes += len(str(msg.get("content", "")))
        if self.output_bytes > self.sandbox.output_kb * 1024:
            raise OutputLimit()
        return super().output(outs, msg, display_id, cell_index)


def _materialise(files: dict[str, Path], work: Path) -> None:
    """The working folder of a kernel run without the sandbox (the sandbox binds the files)."""
    work.mkdir(parents=True)
    for name, source in files.items():
        (shutil.copytree if Path(source).is_dir() else shutil.copyfile)(source, work / name)


def limits_in_outputs(nb) -> list[str]:
    found = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") != "error":
                continue
            for ename, evalue, name in LIMIT_ERRORS:
                if re.search(ename, out.get("ename", "")) and re.search(evalue, out.get("evalue", "")):
                    if name not in found:
                        found.append(name)
    return found


def run_job(notebook, files: dict[str, Path], sandbox: Sandbox, cell_timeout: int | None = None) -> JobResult:
    """Execute `notebook` with only `files` (name -> host path) beside it; never raises for
    anything the notebook does."""
    nb = nbformat.from_dict(notebook if isinstance(notebook, dict) else dict(notebook))
    started = time.perf_counter()
    stopped = None
    with tempfile.TemporaryDirectory(prefix="cg-") as tmp:
        run_dir, work = Path(tmp), Path(tmp) / "work"
        if sandbox.enabled:
            work.mkdir()
        else:
            _materialise(files, work)
        executor = SandboxExecute(sandbox, run_dir, files, timeout=cell_timeout or 60)
        executor.plain_env = {**kernel_env(), "HOME": str(run_dir), "PYTHONPATH": str(work),
                              "MPLCONFIGDIR": str(run_dir), "POCL_CACHE_DIR": str(run_dir / "pocl")}
        cgroup = PidsCgroup(sandbox.processes) if sandbox.enabled and os.geteuid() == 0 else None
        executor.cgroup = cgroup
        fired = threading.Event()

        def kill():
            fired.set()
            process = _kernel_process(executor)
            if process is not None:
                process.kill()

        timer = threading.Timer(sandbox.wall_seconds, kill)
        timer.start()
        with _ACTIVE_LOCK:
            _ACTIVE.add(executor)
        try:
            executor.preprocess(nb, {"metadata": {"path": str(work)}})
        except OutputLimit:
            stopped = "output limit"
        except CellTimeoutError:  # the kernel ignored the interrupt after a cell's time limit
            stopped = "cell time limit (the kernel ignored the interrupt)"
        except DeadKernelError:
            stopped = "wall-clock limit" if fired.is_set() else _death_cause(executor)
        except Exception as exc:  # the kernel could not start or broke the protocol
            stopped = f"kernel failure ({type(exc).__name__}: {' '.join(str(exc).split())[:120]})"
        finally:
            timer.cancel()
            with _ACTIVE_LOCK:
                _ACTIVE.discard(executor)
            if cgroup is not None:
                cgroup.remove()
    limits = limits_in_outputs(nb)
    if stopped and stopped not in limits:
        limits.insert(0, stopped)
    return JobResult(nb, limits, stopped, time.perf_counter() - started)


def _death_cause(executor) -> str:
    """Why the kernel died: a CPU-time limit shows as SIGXCPU/SIGKILL in bwrap's exit code."""
    process = _kernel_process(executor)
    code = process.poll() if process is not None else None
    if code in (-24, 128 + 24):
        return "CPU-time limit"
    if code in (-9, 137):
        return "kernel killed (memory or CPU-time limit)"
    return f"kernel died (exit code {code})"
