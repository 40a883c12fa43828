"""One grading job: execute one prepared notebook in the sandbox and return plain data.

A job is pure in its inputs (the notebook, the files its kernel may see, the limits) and
returns the executed notebook, which limits were hit, and how long it took. It needs no
gradebook, no course tree and no nbgrader configuration, so it runs the same in the grader's
process, in a local worker pool or on a Dask worker.
"""
from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbgrader.preprocessors import Execute

from .sandbox import Sandbox, SandboxedKernelManager
from .warm import POOL, Kernel

# error outputs that mean a limit was hit: (ename pattern, evalue pattern, limit name)
LIMIT_ERRORS = [
    (r"MemoryError", r"", "memory limit"),
    (r"OSError|IOError", r"File too large|Errno 27", "file size limit"),
    (r"OSError|IOError", r"No space left|Errno 28", "disk limit"),
    (r"BlockingIOError|OSError|RuntimeError", r"Resource temporarily unavailable|Errno 11|can't start new thread",
     "process limit"),
]


_ACTIVE: set = set()  # kernels of running jobs (killed on Ctrl-C)
_ACTIVE_LOCK = threading.Lock()


def kill_all() -> None:
    """Kill every running job's kernel (and so its whole sandbox), and every warm one."""
    with _ACTIVE_LOCK:
        kernels = list(_ACTIVE)
    for kernel in kernels:
        kernel.kill()
    POOL.close()


class OutputLimit(Exception):
    pass


@dataclass
class JobResult:
    notebook: dict  # the executed notebook, as JSON-ready data
    limits: list[str] = field(default_factory=list)  # names of the limits that were hit
    stopped: str | None = None  # the limit that stopped the kernel, if one did
    seconds: float = 0.0


class SandboxExecute(Execute):
    """nbgrader's Execute (timeouts, error recording) on an already started sandboxed kernel,
    with a cap on the output it may send."""

    def __init__(self, kernel: Kernel, output_kb: int, **kwargs):
        # the sandbox holds nothing to save: kill the kernel at the end rather than wait for it
        super().__init__(kernel_manager_class=SandboxedKernelManager, shutdown_kernel="immediate", **kwargs)
        self.kernel, self.output_limit = kernel, output_kb * 1024
        self.output_bytes = 0

    def create_kernel_manager(self):
        self.km = self.kernel.km
        return self.km

    def _cleanup_kernel(self):
        # the job kills the kernel with its sandbox (Kernel.close); only the client goes here
        if self.kc is not None:
            self.kc.stop_channels()
        self.kc = self.km = None

    def output(self, outs, msg, display_id, cell_index):
        self.output_bytes += len(str(msg.get("content", "")))
        if self.output_bytes > self.output_limit:
            raise OutputLimit()
        return super().output(outs, msg, display_id, cell_index)


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


def run_job(notebook, files: dict[str, Path], sandbox: Sandbox, cell_timeout: int | None = None,
            ahead: int = 0) -> JobResult:
    """Execute `notebook` with only `files` (name -> host path) beside it; never raises for
    anything the notebook does. `ahead`: how many jobs with the same files and limits follow,
    whose kernels may start now (warm kernels, each still used by one job only)."""
    nb = nbformat.from_dict(notebook if isinstance(notebook, dict) else dict(notebook))
    started = time.perf_counter()
    stopped = None
    try:
        kernel = POOL.take(files, sandbox, ahead)
    except Exception as exc:
        return JobResult(nb, [f"kernel failure ({type(exc).__name__}: {' '.join(str(exc).split())[:120]})"],
                         "kernel failure", time.perf_counter() - started)
    executor = SandboxExecute(kernel, sandbox.output_kb, timeout=cell_timeout or 60)
    fired = threading.Event()

    def kill():
        fired.set()
        kernel.kill()

    timer = threading.Timer(sandbox.wall_seconds, kill)
    timer.daemon = True
    try:
        timer.start()
        with _ACTIVE_LOCK:
            _ACTIVE.add(kernel)
        executor.preprocess(nb, {"metadata": {"path": str(kernel.work)}})
    except OutputLimit:
        stopped = "output limit"
    except CellTimeoutError:  # the kernel ignored the interrupt after a cell's time limit
        stopped = "cell time limit (the kernel ignored the interrupt)"
    except DeadKernelError:
        stopped = "wall-clock limit" if fired.is_set() else _death_cause(kernel)
    except Exception as exc:  # the kernel could not start or broke the protocol
        stopped = f"kernel failure ({type(exc).__name__}: {' '.join(str(exc).split())[:120]})"
    finally:
        timer.cancel()
        with _ACTIVE_LOCK:
            _ACTIVE.discard(kernel)
        kernel.close()
    limits = limits_in_outputs(nb)
    if stopped and stopped not in limits:
        limits.insert(0, stopped)
    return JobResult(nb, limits, stopped, time.perf_counter() - started)


def _death_cause(kernel: Kernel) -> str:
    """Why the kernel died: a CPU-time limit shows as SIGXCPU/SIGKILL in bwrap's exit code."""
    code = kernel.process.poll() if kernel.process is not None else None
    if code in (-24, 128 + 24):
        return "CPU-time limit"
    if code in (-9, 137):
        return "kernel killed (memory or CPU-time limit)"
    return f"kernel died (exit code {code})"
