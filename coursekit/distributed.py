"""Grading jobs on a Dask distributed cluster (`dask scheduler`, `dask worker`).

A worker needs this package, Python with the course's packages and bubblewrap; no shared
file system, no gradebook, no course tree: each job carries its notebook, and the files its
kernel may see travel once per assignment (scattered to every worker) as bytes.
"""
from __future__ import annotations

import hashlib
import io
import tarfile
import tempfile
import threading
from pathlib import Path

from .errors import CourseError
from .job import JobResult, run_job
from .sandbox import Sandbox

_LOCK = threading.Lock()
_CLIENTS: dict[str, object] = {}
_SCATTERED: dict[tuple[str, str], object] = {}


def pack(files: dict[str, Path]) -> bytes:
    """The job's files (name -> file or folder) as one tar archive."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, path in sorted(files.items()):
            tar.add(str(path), arcname=name, filter=lambda info: None if "__pycache__" in info.name else info)
    return buffer.getvalue()


_UNPACKED: dict[str, tempfile.TemporaryDirectory] = {}  # on a worker: archive digest -> its files


def unpacked(archive: bytes) -> dict[str, Path]:
    """The archive's files on this worker, unpacked once per assignment (warm kernels bind them)."""
    digest = hashlib.sha256(archive).hexdigest()
    with _LOCK:
        if digest not in _UNPACKED:
            folder = tempfile.TemporaryDirectory(prefix="cg-files-")
            with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
                tar.extractall(folder.name, filter="data")
            _UNPACKED[digest] = folder
        return {p.name: p for p in Path(_UNPACKED[digest].name).iterdir()}


def remote_job(notebook: dict, archive: bytes, limits: dict, cell_timeout: int | None, ahead: int = 0) -> dict:
    """What a Dask worker runs: the job on the archive's files, as plain data. `ahead`: keep
    that many kernels warm for the jobs that follow (killed if none comes)."""
    result = run_job(notebook, unpacked(archive), Sandbox(**limits), cell_timeout, ahead)
    return {"notebook": result.notebook, "limits": result.limits, "stopped": result.stopped,
            "seconds": result.seconds}


def client(address: str):
    with _LOCK:
        if address not in _CLIENTS:
            from distributed import Client
            try:
                _CLIENTS[address] = Client(address, timeout="20s")
            except Exception as exc:
                raise CourseError(f"no Dask scheduler answers at {address} ({type(exc).__name__}); start one "
                                  "with `dask scheduler` and workers with `dask worker ADDRESS`") from None
        return _CLIENTS[address]


def submit_job(address: str, notebook, files: dict[str, Path], sandbox: Sandbox, cell_timeout,
               attempts: int = 3, ahead: int = 0) -> tuple[JobResult, int]:
    """Run one job on the cluster: (result, retries). A worker lost mid-job has its tasks
    re-run elsewhere by Dask itself (counted as retries); a job that still fails (workers
    killed again and again, a broken connection) is submitted again, up to `attempts` times."""
    dask = client(address)
    key = (address, "|".join(f"{n}={p}" for n, p in sorted(files.items())))
    with _LOCK:
        if key not in _SCATTERED:
            _SCATTERED[key] = dask.scatter(pack(files), broadcast=True, hash=False)
        archive = _SCATTERED[key]
    limits = {name: getattr(sandbox, name) for name in (*sandbox.limits(), "enabled", "bwrap")}
    for attempt in range(attempts):
        future = dask.submit(remote_job, dict(notebook), archive, limits, cell_timeout, ahead, pure=False)
        try:
            result = JobResult(**future.result())
        except Exception as exc:  # KilledWorker, CommClosedError, a worker without bwrap, ...
            error = exc
            continue
        return result, attempt + _times_lost(dask, future.key)
    raise CourseError(f"a grading job failed on the cluster {attempts} times: {type(error).__name__}: {error}")


def _times_lost(dask, key) -> int:
    """How often the scheduler re-ran this task because its worker died mid-job."""
    def count(dask_scheduler, key=key):
        task = dask_scheduler.tasks.get(key)
        return task.suspicious if task is not None else 0
    try:
        return int(dask.run_on_scheduler(count))
    except Exception:  # the count is for the summary only
        return 0


def close() -> None:
    with _LOCK:
        for dask in _CLIENTS.values():
            dask.close()
        _CLIENTS.clear()
        _SCATTERED.clear()
