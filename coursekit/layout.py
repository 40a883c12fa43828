"""Where everything lives in a course repository, and the markers the tools know."""
from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import CourseError

SOLUTION_BEGIN = "### BEGIN SOLUTION"
SOLUTION_END = "### END SOLUTION"
HIDDEN_BEGIN = "### BEGIN HIDDEN TESTS"
HIDDEN_END = "### END HIDDEN TESTS"
MARKERS = (SOLUTION_BEGIN, SOLUTION_END, HIDDEN_BEGIN, HIDDEN_END)


@dataclass(frozen=True)
class Course:
    """A course root: `modules/` in, `nbs/`, `tinytorch/`, `grading/` out."""

    root: Path

    @classmethod
    def at(cls, root: str | os.PathLike | None = None) -> "Course":
        root = Path(root or os.environ.get("COURSE_ROOT") or Path.cwd()).resolve()
        if not (root / "modules").is_dir():
            raise CourseError(f"{root} is not a course root (no modules/ folder); "
                             "run from the repository or pass --root")
        return cls(root)

    modules_dir = property(lambda self: self.root / "modules")
    nbs_dir = property(lambda self: self.root / "nbs")
    lib_dir = property(lambda self: self.root / "tinytorch")
    grading_dir = property(lambda self: self.root / "grading")

    def module_names(self) -> list[str]:
        return sorted(p.stem for p in self.modules_dir.glob("[0-9][0-9]_*.py"))

    def resolve(self, names: list[str] | None) -> list[str]:
        """Expand user-given names (`00`, `00_foundations`) to module names; all if none."""
        known = self.module_names()
        if not names:
            return known
        out = []
        for name in names:
            hits = [m for m in known if m == name or m.split("_", 1)[0] == name]
            if len(hits) != 1:
                raise CourseError(f"unknown module {name!r}; known: {', '.join(known)}")
            out.append(hits[0])
        return out

    def source(self, module: str) -> Path:
        return self.modules_dir / f"{module}.py"

    def notebook(self, module: str) -> Path:
        return self.nbs_dir / f"{module}.ipynb"

    def grading_source(self, module: str) -> Path:
        return self.grading_dir / "source" / module / f"{module}.ipynb"

    def release(self, module: str) -> Path:
        return self.grading_dir / "release" / module / f"{module}.ipynb"

    def subprocess_env(self) -> dict[str, str]:
        """Environment for tools and kernels: this venv's bin on PATH (nbgrader calls
        `alembic`), and this root first on PYTHONPATH so kernels import the reference
        `tinytorch` of this course root."""
        env = dict(os.environ)
        env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
        env["PYTHONPATH"] = str(self.root) + os.pathsep + env.get("PYTHONPATH", "")
        env.setdefault("MPLBACKEND", "Agg")
        # one BLAS thread: on small matrices thread start-up costs more than it saves
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(var, "1")
        return env


@contextlib.contextmanager
def working_dir(path: Path):
    """Run a block in `path` (nbdev and nbgrader resolve paths from the current folder)."""
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def say(msg: str) -> None:
    """Progress output, flushed at once so long steps show where they are."""
    print(msg, flush=True)
