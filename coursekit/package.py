"""`course package`: the tinytorch a student receives with module NN: modules up to NN-1 only.

Later modules import earlier ones, so students get the reference package of the modules
already due, and nothing of the module they are about to do or any later one.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

from .errors import CourseError
from .layout import Course

EXPORT_RE = re.compile(r"^#\|\s*(?:default_exp|exporti?)\s+([A-Za-z_][\w.]*)\s*$")


def package_modules(course: Course, module: str) -> list[str]:
    """Package module names a course module writes (`nn`, `data` for 00_foundations)."""
    names = []
    for line in course.source(module).read_text(encoding="utf-8").splitlines():
        match = EXPORT_RE.match(line)
        if match and match.group(1) not in names:
            names.append(match.group(1))
    return names


def package_for(course: Course, module: str, out: Path) -> list[Path]:
    """Copy tinytorch with the exports of every module before `module` into out/tinytorch."""
    modules = course.module_names()
    if module not in modules:
        raise CourseError(f"unknown module {module!r}")
    due = modules[: modules.index(module)]
    target = Path(out) / "tinytorch"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    written = [target / "__init__.py"]
    shutil.copyfile(course.lib_dir / "__init__.py", written[0])
    for earlier in due:
        for name in package_modules(course, earlier):
            source = course.lib_dir / f"{name}.py"
            if not source.exists():
                raise CourseError(f"{source} is missing: run `course build` first")
            shutil.copyfile(source, target / source.name)
            written.append(target / source.name)
    return written
