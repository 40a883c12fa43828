"""Warm kernels: sandboxed kernels started ahead of the jobs that will use them.

Starting a sandboxed kernel (bubblewrap, then Python importing ipykernel) takes most of a
second. A batch knows that more jobs with the same files and limits follow, so it starts
their kernels early, while earlier jobs execute or the coordinator scores them. Each kernel
still serves exactly one job and is killed after it: no interpreter, file or process of one
submission is ever seen by another. Only the start-up moves off the critical path.

Every kernel is launched from one long-lived thread: bubblewrap's --die-with-parent follows
the thread that started it, so a short-lived thread would take its kernels down with it.
"""
from __future__ import annotations

import asyncio
import os
import queue
import shutil
import tempfile
import threading
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from .sandbox import PidsCgroup, Sandbox, SandboxedKernelManager, kernel_env, kill_sandbox

IDLE_SECONDS = 120  # a warm kernel nobody took by then is killed (a Dask worker between batches)


@dataclass(eq=False)  # compared and hashed by identity
class Kernel:
    """A started kernel and what it holds: its per-job folder and its pids cgroup."""

    km: SandboxedKernelManager
    folder: tempfile.TemporaryDirectory
    cgroup: PidsCgroup | None
    timer: threading.Timer | None = field(default=None, repr=False)

    @property
    def run_dir(self) -> Path:
        return Path(self.folder.name)

    @property
    def work(self) -> Path:
        return self.run_dir / "work"

    @property
    def process(self):
        return getattr(self.km.provisioner, "process", None)

    def kill(self) -> None:
        if self.process is not None:
            kill_sandbox(self.process)

    def alive(self) -> bool:
        process = self.process
        return process is not None and process.poll() is None

    def close(self) -> None:
        """Kill the kernel (and so its sandbox) and remove what it held; safe to call twice."""
        if self.timer is not None:
            self.timer.cancel()
        self.kill()
        if self.process is not None:
            self.process.wait()
        try:  # sockets, zmq context, connection file (again, if the notebook client did it)
            asyncio.run(self.km.cleanup_resources())
        except Exception:
            pass
        if self.cgroup is not None:
            self.cgroup.remove()
        self.folder.cleanup()


def _materialise(files: dict[str, Path], work: Path) -> None:
    """The working folder of a kernel run without the sandbox (the sandbox binds the files)."""
    work.mkdir(parents=True)
    for name, source in files.items():
        (shutil.copytree if Path(source).is_dir() else shutil.copyfile)(source, work / name)


async def _start(files: dict[str, Path], sandbox: Sandbox) -> Kernel:
    folder = tempfile.TemporaryDirectory(prefix="cg-")
    run_dir = Path(folder.name)
    work = run_dir / "work"
    if sandbox.enabled:
        work.mkdir()
    else:
        _materialise(files, work)
    km = SandboxedKernelManager(run_dir=str(run_dir), kernel_name="python3")
    km.files, km.sandbox = files, sandbox
    km.plain_env = {**kernel_env(), "HOME": str(run_dir), "PYTHONPATH": str(work), "MPLCONFIGDIR": str(run_dir),
                    "POCL_CACHE_DIR": str(run_dir / "pocl")}
    km.cgroup = PidsCgroup(sandbox.processes) if sandbox.enabled and os.geteuid() == 0 else None
    kernel = Kernel(km, folder, km.cgroup)
    try:
        await km.start_kernel(cwd=str(work))
    except BaseException:
        kernel.close()
        raise
    return kernel


def _key(files: dict[str, Path], sandbox: Sandbox) -> tuple:
    return (tuple(sorted((name, str(path)) for name, path in files.items())),
            tuple(sorted(sandbox.limits().items())), sandbox.enabled, sandbox.bwrap)


class WarmKernels:
    """Kernels per (files, limits), started in order by one thread, handed out first in, first out."""

    def __init__(self, idle_seconds: float = IDLE_SECONDS):
        self.idle_seconds = idle_seconds
        self._lock = threading.Lock()
        self._waiting: dict[tuple, deque[Future]] = {}  # started or starting, not yet taken
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def take(self, files: dict[str, Path], sandbox: Sandbox, ahead: int = 0) -> Kernel:
        """A started kernel for one job (the oldest warm one, else a new one), and keep `ahead`
        more warm or starting for the jobs that follow. Raises if the kernel cannot start."""
        key = _key(files, sandbox)
        with self._lock:
            waiting = self._waiting.setdefault(key, deque())
            future = waiting.popleft() if waiting else self._request(files, sandbox, None)
            for _ in range(ahead - len(waiting)):
                waiting.append(self._request(files, sandbox, key))
        kernel = future.result()
        if kernel.timer is not None:
            kernel.timer.cancel()
        if not kernel.alive():  # died while it waited: start one now
            kernel.close()
            kernel = self._request(files, sandbox, None).result()
        return kernel

    def warm_up(self, files: dict[str, Path], sandbox: Sandbox, count: int) -> None:
        """Start kernels for the first `count` jobs of a batch before they are ready to run."""
        key = _key(files, sandbox)
        with self._lock:
            waiting = self._waiting.setdefault(key, deque())
            for _ in range(count - len(waiting)):
                waiting.append(self._request(files, sandbox, key))

    def close(self) -> None:
        """Kill every kernel nobody has taken."""
        with self._lock:
            futures = [f for waiting in self._waiting.values() for f in waiting]
            self._waiting.clear()
        for future in futures:
            future.add_done_callback(_close_result)

    def _request(self, files, sandbox, key) -> Future:
        future: Future = Future()
        self._requests.put((files, sandbox, key, future))
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._serve, name="coursekit-kernel-starter", daemon=True)
            self._thread.start()
        return future

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        while True:
            files, sandbox, key, future = self._requests.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                kernel = loop.run_until_complete(_start(files, sandbox))
            except BaseException as exc:  # bwrap missing, no memory: the job reports it
                future.set_exception(exc)
                continue
            if key is not None:  # kept warm: killed if nobody takes it in time
                kernel.timer = threading.Timer(self.idle_seconds, self._expire, (key, future))
                kernel.timer.daemon = True
                kernel.timer.start()
            future.set_result(kernel)

    def _expire(self, key, future: Future) -> None:
        with self._lock:
            waiting = self._waiting.get(key)
            if waiting is None or future not in waiting:
                return  # taken meanwhile
            waiting.remove(future)
        future.result().close()


def _close_result(future: Future) -> None:
    if future.exception() is None:
        future.result().close()


POOL = WarmKernels()  # one per process: the grader's, or a Dask worker's
