"""Run one notebook's kernel inside a bubblewrap sandbox.

The kernel sees a read-only system and Python environment, a private /tmp and home (size
limited tmpfs), the job's own files (release files and the due `tinytorch`, read-only), no
network, its own PID namespace (nothing it starts outlives it) and rlimits on memory,
processes, CPU time and file size. The notebook client stays outside, in the trusted
grader, and talks to the kernel over Unix sockets in a per-job folder.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from queue import Empty

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from traitlets import Bool, Integer, Type, Unicode
from traitlets.config import Configurable

from .errors import CourseError

HOME = "/sandbox/home"  # inside the sandbox only (a tmpfs); nothing of the host
WORK = f"{HOME}/work"
# /etc entries a Python/numpy/matplotlib/OpenCL kernel needs; nothing else of /etc is visible
ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "OpenCL", "fonts", "passwd", "group",
       "nsswitch.conf", "localtime", "alternatives", "mime.types", "ssl/certs")
INSTALL_HINT = ("install Debian's bubblewrap (`apt-get install bubblewrap`, done by scripts/setup.sh), "
                "or grade without isolation with --no-sandbox, which lets student code read and change "
                "everything the grading user can (the course, the gradebook, other submissions)")


class Sandbox(Configurable):
    """Limits of one grading job (set as `c.Sandbox.<name>` in nbgrader_config.py)."""

    enabled = Bool(True, help="Run every kernel in the bubblewrap sandbox. Turning it off lets "
                   "student code read and change everything the grading user can.").tag(config=True)
    memory_mb = Integer(2048, help="Memory per process (RLIMIT_DATA), MiB").tag(config=True)
    processes = Integer(256, help="Processes and threads in the sandbox (RLIMIT_NPROC)").tag(config=True)
    cpu_seconds = Integer(900, help="CPU seconds of the kernel (RLIMIT_CPU)").tag(config=True)
    file_size_mb = Integer(64, help="Largest file the kernel may write (RLIMIT_FSIZE), MiB").tag(config=True)
    disk_mb = Integer(256, help="Size of the writable home and /tmp (tmpfs), MiB each").tag(config=True)
    output_kb = Integer(8192, help="Cell output the grader accepts from one notebook, KiB").tag(config=True)
    wall_seconds = Integer(1200, help="Hard wall-clock limit of one notebook, seconds").tag(config=True)
    bwrap = Unicode("bwrap", help="The bubblewrap executable").tag(config=True)

    def limits(self) -> dict[str, int]:
        names = ("memory_mb", "processes", "cpu_seconds", "file_size_mb", "disk_mb", "output_kb", "wall_seconds")
        return {name: getattr(self, name) for name in names}

    def prlimit(self) -> list[str]:
        mib = 1024 * 1024
        return ["/usr/bin/prlimit", f"--data={self.memory_mb * mib}", f"--nproc={self.processes}",
                f"--cpu={self.cpu_seconds}", f"--fsize={self.file_size_mb * mib}", "--core=0", "--"]

    def argv(self, run_dir: Path, files: dict[str, Path], command: list[str], env: dict[str, str]) -> list[str]:
        """The bwrap command line that runs `command` with `files` (name -> host path) in its
        working folder and `run_dir` (connection file, sockets) bound read-write at its own path."""
        args = [self.bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
        if os.geteuid() == 0:  # a user namespace so that the kernel is not uid 0 inside
            args += ["--unshare-user", "--uid", "65534", "--gid", "65534"]
        args += ["--ro-bind", "/usr", "/usr"]
        for top in ("bin", "sbin", "lib", "lib32", "lib64"):
            host = Path("/") / top
            if host.is_symlink():
                args += ["--symlink", os.readlink(host), str(host)]
            elif host.is_dir():
                args += ["--ro-bind", str(host), str(host)]
        for name in ETC:
            args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
        args += ["--ro-bind-try", "/sys/devices/system/cpu", "/sys/devices/system/cpu",
                 "--proc", "/proc", "--dev", "/dev"]
        size = str(self.disk_mb * 1024 * 1024)
        args += ["--size", size, "--tmpfs", "/tmp", "--size", size, "--tmpfs", HOME, "--dir", WORK]
        # after the tmpfs mounts, so that an environment or job folder under /tmp stays visible
        for prefix in python_prefixes():
            args += ["--ro-bind", prefix, prefix]
        args += ["--bind", str(run_dir), str(run_dir)]
        for name, host in sorted(files.items()):
            args += ["--ro-bind", str(host), f"{WORK}/{name}"]
        args += ["--chdir", WORK, "--clearenv"]
        for key, value in sorted(env.items()):
            args += ["--setenv", key, value]
        return args + ["--", *self.prlimit(), *command]


def kill_sandbox(process) -> None:
    """SIGKILL bwrap and everything in its sandbox. --die-with-parent takes the sandbox down with
    bwrap, except just after a start, before the inner bwrap has asked for that: so bwrap is
    stopped first (it can then start nothing), what it started is killed, then bwrap itself."""
    if process.poll() is not None:
        return
    children = []
    try:
        os.kill(process.pid, signal.SIGSTOP)
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    except OSError:  # gone meanwhile
        pass
    for pid in children:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except OSError:
            pass
    process.kill()


def python_prefixes() -> list[str]:
    """Real folders of this interpreter and its environment (bound read-only at their paths)."""
    paths = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    paths |= {os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))}
    paths = {p for p in paths if p not in ("/usr", "/")}
    return sorted(p for p in paths if not any(p != q and p.startswith(q + "/") for q in paths))


def kernel_env() -> dict[str, str]:
    """The kernel's whole environment: nothing of the grader's is passed on."""
    return {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": HOME, "USER": "student", "LANG": "C.UTF-8", "PYTHONPATH": WORK,
        "PYTHONWARNINGS": "ignore",  # a stray warning on stderr would zero a graded cell
        "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "Agg", "MPLCONFIGDIR": f"{HOME}/.mpl",
        "POCL_CACHE_DIR": "/tmp/pocl", "JUPYTER_PLATFORM_DIRS": "1",
        "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
    }


_PROBED: dict[str, str | None] = {}


def unavailable(sandbox: Sandbox) -> str | None:
    """None when a sandboxed Python starts here; else one sentence saying why and what to do."""
    if sandbox.bwrap in _PROBED:
        return _PROBED[sandbox.bwrap]
    why = None
    if shutil.which(sandbox.bwrap) is None:
        why = f"the sandbox cannot be created: `{sandbox.bwrap}` is not installed; {INSTALL_HINT}"
    else:
        with tempfile.TemporaryDirectory(prefix="cg-probe-") as run:
            argv = sandbox.argv(Path(run), {}, [sys.executable, "-c", "import numpy"], kernel_env())
            result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
            if result.returncode != 0:
                detail = " ".join(result.stderr.split())[:200]
                why = f"the sandbox cannot be created ({detail}); {INSTALL_HINT}"
    _PROBED[sandbox.bwrap] = why
    return why


def require(sandbox: Sandbox) -> None:
    if sandbox.enabled:
        why = unavailable(sandbox)
        if why:
            raise CourseError(why)


class PidsCgroup:
    """A pids cgroup capping the sandbox's processes and threads: RLIMIT_NPROC does not bind a
    grader that runs as root (the kernel exempts the root user), a cgroup does. Best effort:
    used where the cgroup file system is writable (v1 `pids` hierarchy or v2)."""

    ROOTS = (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup"))

    def __init__(self, limit: int):
        self.path = None
        for root in self.ROOTS:
            if (root / "cgroup.procs").exists() and os.access(root, os.W_OK):
                try:
                    path = Path(tempfile.mkdtemp(prefix="coursekit-", dir=root))
                except OSError:
                    continue
                if (path / "pids.max").exists():
                    (path / "pids.max").write_text(str(limit))
                    self.path = path
                    return
                path.rmdir()

    def remove(self) -> None:
        if self.path is None:
            return
        for _ in range(500):  # the namespace's processes take a moment to go
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.01)


class PromptClient(AsyncKernelClient):
    """jupyter_client's client, without its idle wait once the kernel answers (a fixed 0.2 s
    spent flushing IOPub, which a batch would pay for every submission)."""

    async def _async_wait_for_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (60 if timeout is None else timeout)
        while True:
            self.kernel_info()
            try:
                reply = await self.shell_channel.get_msg(timeout=0.5)
            except Empty:
                reply = None
            if reply is not None and reply["msg_type"] == "kernel_info_reply":
                try:  # the request's status messages show that IOPub is connected too
                    await self.iopub_channel.get_msg(timeout=0.2)
                    self._handle_kernel_info_reply(reply)
                    break
                except Empty:
                    pass
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout} seconds")
        while True:  # drop what IOPub holds already, without waiting for more
            try:
                await self.iopub_channel.get_msg(timeout=0)
            except Empty:
                break

    wait_for_ready = _async_wait_for_ready


class SandboxedKernelManager(AsyncKernelManager):
    """An ipykernel started inside bwrap, reached over Unix sockets in `run_dir`."""

    client_factory = Type(PromptClient, klass=AsyncKernelClient)

    run_dir = Unicode(help="per-job folder for the connection file and sockets")
    files = None  # name -> host path, bound read-only into the kernel's working folder
    sandbox: Sandbox | None = None
    plain_env: dict | None = None  # the whole environment when running without the sandbox
    cgroup: PidsCgroup | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.transport = "ipc"
        self.connection_file = str(Path(self.run_dir) / "kernel.json")
        self.ip = str(Path(self.run_dir) / "k")

    def format_kernel_cmd(self, extra_arguments=None):
        command = [sys.executable, "-m", "ipykernel_launcher", "-f", self.connection_file,
                   "--HistoryManager.hist_file=:memory:", "--IPKernelApp.matplotlib=None"]
        if self.sandbox is None or not self.sandbox.enabled:
            return ["env", "-i", *[f"{k}={v}" for k, v in (self.plain_env or kernel_env()).items()], *command]
        return self.sandbox.argv(Path(self.run_dir), self.files or {}, command, kernel_env())

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        # the kernel's own stdout/stderr carry only its banner; cell output travels on iopub
        kw.update(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        if self.cgroup is not None and self.cgroup.path is not None:
            procs = str(self.cgroup.path / "cgroup.procs")

            def join_cgroup():  # in the child, before bwrap starts: all it forks stays inside
                with open(procs, "w") as handle:
                    handle.write(str(os.getpid()))
            kw["preexec_fn"] = join_cgroup
        await super()._async_launch_kernel(kernel_cmd, **kw)

    async def interrupt_kernel(self):
        # signals do not cross bwrap's session; ipykernel takes interrupts as messages too
        self.kernel_spec.interrupt_mode = "message"
        await self._async_interrupt_kernel()
