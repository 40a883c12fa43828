"""`course package NN --out DIR`: everything a student receives for module NN.

    DIR/NN_name.ipynb          the release notebook(s)
    DIR/tinytorch/             the reference package of the modules before NN (nothing of NN or later)
    DIR/pyproject.toml         `pip install DIR`: the student's dependencies and `course-student`
    DIR/course_student.py      the student command (export their own code into tinytorch/)
    DIR/jupyter-config/        installed with the kit: student tools only in JupyterLab
    DIR/nbgrader_config.py     the course id and exchange folder, for `nbgrader fetch_assignment` etc.
    DIR/README.md              what to do, command by command

Later modules import earlier ones, so students get the reference package of the modules
already due; their own exported code replaces it module by module (see README).
"""
from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

from .errors import CourseError
from .layout import Course

EXPORT_RE = re.compile(r"^#\|\s*(?:default_exp|exporti?)\s+([A-Za-z_][\w.]*)\s*$")
IMPORT_RE = re.compile(r"^\s*(?:from\s+([A-Za-z_]\w*)[\w.]*\s+import|import\s+([A-Za-z_]\w*))", re.M)
KIT_NAME = "sparse-course-student"
# import name -> requirement name, for what a module's code or the due package imports
IMPORT_TO_REQUIREMENT = {"numpy": "numpy", "sklearn": "scikit-learn", "matplotlib": "matplotlib",
                         "threadpoolctl": "threadpoolctl", "pyopencl": "pyopencl", "scipy": "scipy",
                         "onnx": "onnx", "onnxruntime": "onnxruntime", "mnist1d": "mnist1d"}
# what every student needs whatever the module: JupyterLab, the kernel, nbgrader's student
# tools (Assignment List, Validate) and MathJax served locally (formulas render offline)
ALWAYS = ["jupyterlab", "ipykernel", "nbgrader", "jupyter-server-mathjax"]
# imported by the notebooks or the package but provided by the packages above
PROVIDED = {"IPython", "ipykernel", "nbformat", "tinytorch", "pytest"}
# nbgrader's tools a student must not see; the JupyterLab plugins and server extensions
STUDENT_LAB_CONFIG = {"disabledExtensions": {"@jupyter/nbgrader:formgrader": True,
                                             "@jupyter/nbgrader:create-assignment": True,
                                             "@jupyter/nbgrader:course-list": True}}
STUDENT_SERVER_CONFIG = {"ServerApp": {"jpserver_extensions": {
    "nbgrader.server_extensions.formgrader": False,
    "nbgrader.server_extensions.course_list": False,
    "nbgrader.server_extensions.assignment_list": True,
    "nbgrader.server_extensions.validate_assignment": True,
    "jupyter_server_mathjax": True}}}


def package_modules(course: Course, module: str) -> list[str]:
    """Package module names a course module writes (`nn`, `data` for 00_foundations)."""
    names = []
    for line in course.source(module).read_text(encoding="utf-8").splitlines():
        match = EXPORT_RE.match(line)
        if match and match.group(1) not in names:
            names.append(match.group(1))
    return names


def due_files(course: Course, module: str) -> list[Path]:
    """The reference package files a student gets with `module`: __init__ and the exports of
    every module before it."""
    modules = course.module_names()
    if module not in modules:
        raise CourseError(f"unknown module {module!r}")
    files = [course.lib_dir / "__init__.py"]
    for earlier in modules[: modules.index(module)]:
        for name in package_modules(course, earlier):
            source = course.lib_dir / f"{name}.py"
            if not source.exists():
                raise CourseError(f"{source} is missing: run `course build` first")
            files.append(source)
    return files


def sync_due_package(course: Course, module: str, out: Path) -> list[Path]:
    """Make out/tinytorch/ hold exactly the due package (files rewritten only when they
    change); return the reference files it mirrors."""
    files = due_files(course, module)
    target = Path(out) / "tinytorch"
    target.mkdir(parents=True, exist_ok=True)
    wanted = {p.name for p in files}
    for stale in target.iterdir():
        if stale.name not in wanted:
            shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    for source in files:
        dest = target / source.name
        if not dest.exists() or dest.read_bytes() != source.read_bytes():
            shutil.copyfile(source, dest)
    return files


def package_for(course: Course, module: str, out: Path) -> list[Path]:
    """Write the due package to out/tinytorch; return the files written."""
    target = Path(out) / "tinytorch"
    if target.exists():
        shutil.rmtree(target)
    return [target / p.name for p in sync_due_package(course, module, out)]


def pins(course: Course) -> dict[str, str]:
    """{lower-case requirement name: 'name==version'} from requirements*.txt."""
    out = {}
    for name in ("requirements.txt", "requirements-dev.txt"):
        path = course.root / name
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.split("#", 1)[0].strip()
            match = re.match(r"^([A-Za-z0-9_.-]+)\s*(==.*|[<>].*)?$", line)
            if match:
                out.setdefault(match.group(1).lower(), line)
    return out


def student_requirements(course: Course, texts: list[str]) -> list[str]:
    """Pinned requirements for code that imports what `texts` import, plus ALWAYS."""
    stdlib = set(sys.stdlib_module_names)
    wanted, unknown = list(ALWAYS), set()
    for text in texts:
        for match in IMPORT_RE.finditer(text):
            name = match.group(1) or match.group(2)
            if name in stdlib or name in PROVIDED or name.startswith("_"):
                continue
            requirement = IMPORT_TO_REQUIREMENT.get(name)
            if requirement is None:
                unknown.add(name)
            elif requirement not in wanted:
                wanted.append(requirement)
    if unknown:
        raise CourseError(f"the student kit does not know which package provides {sorted(unknown)}: "
                         "add them to IMPORT_TO_REQUIREMENT in coursekit/package.py")
    known = pins(course)
    return [known.get(r.lower(), r) for r in wanted]


def exchange_settings(course: Course) -> tuple[str, str | None]:
    """(course id, exchange root) as grading/nbgrader_config.py sets them."""
    from .config import load

    config = load(course)
    course_id = config.CourseDirectory.get("course_id", "")
    root = config.Exchange.get("root") if "Exchange" in config else None
    return course_id, (str(root) if root else None)


def _code_of(notebook: Path) -> str:
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    return "\n".join("".join(c["source"]) if isinstance(c["source"], list) else c["source"]
                     for c in nb["cells"] if c["cell_type"] == "code")


def write_kit(course: Course, module: str, out: Path) -> list[Path]:
    """Write the student kit of `module` into `out` (see the module docstring); return its files."""
    release_dir = course.release(module).parent
    if not course.release(module).exists():
        raise CourseError(f"{course.release(module)} is missing: run `course build {module}` first")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    notebooks = sorted(release_dir.glob("*.ipynb"))
    for notebook in notebooks:
        shutil.copyfile(notebook, out / notebook.name)
        written.append(out / notebook.name)
    written += package_for(course, module, out)
    texts = [_code_of(nb) for nb in notebooks] + [p.read_text(encoding="utf-8") for p in written if p.suffix == ".py"]
    requirements = student_requirements(course, texts)
    number = int(module.split("_", 1)[0])
    shutil.copyfile(Path(__file__).with_name("student_tool.py"), out / "course_student.py")
    written.append(out / "course_student.py")
    config_dir = out / "jupyter-config"
    (config_dir / "labconfig").mkdir(parents=True, exist_ok=True)
    (config_dir / "server").mkdir(parents=True, exist_ok=True)
    lab = config_dir / "labconfig" / "course_student.json"
    # loaded in name order after nbgrader's own nbgrader.json, which enables everything
    server = config_dir / "server" / "zz_course_student.json"
    lab.write_text(json.dumps(STUDENT_LAB_CONFIG, indent=2) + "\n", encoding="utf-8")
    server.write_text(json.dumps(STUDENT_SERVER_CONFIG, indent=2) + "\n", encoding="utf-8")
    written += [lab, server]
    deps = "".join(f'    "{r}",\n' for r in requirements)
    pyproject = out / "pyproject.toml"
    pyproject.write_text(f'''# The student kit of {module}: `pip install .` brings the student's tools and dependencies.
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "{KIT_NAME}"
version = "0.1.{number}"
description = "Student tools and dependencies for the sparse networks course, module {module}"
requires-python = ">=3.10"
dependencies = [
{deps}]

[project.scripts]
course-student = "course_student:main"

[tool.setuptools]
py-modules = ["course_student"]
# JupyterLab shows the student tools only (Assignment List, Validate)
data-files = {{"etc/jupyter/labconfig/page_config.d" = ["jupyter-config/labconfig/course_student.json"], "etc/jupyter/jupyter_server_config.d" = ["jupyter-config/server/zz_course_student.json"]}}
''', encoding="utf-8")
    written.append(pyproject)
    course_id, exchange = exchange_settings(course)
    config = out / "nbgrader_config.py"
    lines = ['"""nbgrader settings for students of this course (`jupyter lab` and `nbgrader` read it',
             'from the folder they start in; copy it to ~/.jupyter/ to use it everywhere)."""',
             "c = get_config()  # noqa: F821", f"c.CourseDirectory.course_id = {course_id!r}"]
    if exchange:
        lines.append(f"c.Exchange.root = {exchange!r}  # the course's exchange folder on this machine")
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    written.append(config)
    readme = out / "README.md"
    readme.write_text(STUDENT_README.format(module=module, notebooks=", ".join(n.name for n in notebooks),
                                            due=", ".join(p.stem for p in written if p.parent.name == "tinytorch"
                                                          and p.stem != "__init__") or "none"),
                      encoding="utf-8")
    written.append(readme)
    return written


STUDENT_README = """# {module}: your student kit

What is here: the notebook(s) ({notebooks}); `tinytorch/`, the course package of the modules
before this one (reference code of: {due}); and the course's student tools.

## Set up once per module (a fresh virtual environment is best)

```bash
python3 -m venv ~/course-env && . ~/course-env/bin/activate
pip install .                 # from this folder: JupyterLab, nbgrader's student tools, numpy, ...
jupyter lab                   # from this folder, so the notebook finds tinytorch/
```

## Work

1. Fill in every cell that says `# YOUR CODE HERE`. Run the test cell below each exercise:
   its message says what was expected and what came back. Some tests are hidden and run
   only when your work is graded (edge cases and bad input).
2. *Run All* stops at the first failing test, so with exercises still to do the cells
   after it do not run; run them one by one, or finish the exercise. A given cell that needs
   an unfinished exercise says which one ("finish Exercise 3 (accuracy) first").
3. Before you submit, press **Validate** (or `nbgrader validate {module}.ipynb`): it
   restarts the kernel, runs every cell, and lists each test that fails.
4. Put your own code into your package: `course-student export {module}.ipynb` writes
   `tinytorch/<module>.py` next to the notebook from your `#| export` cells (the notebook is
   only read; it refuses while an exercise still holds its stub).

## Your code wins over the reference

The `tinytorch/` of each module's kit holds the course's reference code of the modules
before it. Once you have finished a module, export it into the next module's folder, and
that module runs on your own code instead of the reference:

```bash
course-student export ../00_foundations/00_foundations.ipynb --lib tinytorch
```

A file written by `course-student export` says so in its first line. Grading always uses
the reference code of earlier modules, so a mistake there never costs you points twice.
"""
