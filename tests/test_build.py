"""`course build` from a clean copy: what it makes, that it is idempotent, that nothing leaks."""
import hashlib
import json
import subprocess
import sys

import nbformat

from coursekit.build import build
from coursekit.layout import MARKERS
from coursekit.notebooks import split_regions


def _digest(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for sub in ("nbs", "tinytorch", "grading/source", "grading/release")
            for p in sorted((root / sub).rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


def test_build_makes_every_output(built_course):
    course, report = built_course
    assert (course.root / "tinytorch" / "nn.py").is_file()
    assert (course.root / "tinytorch" / "data.py").is_file()
    for module in course.module_names():
        assert course.notebook(module).is_file()
        assert course.grading_source(module).is_file()
        assert course.release(module).is_file()
        assert str(course.release(module).relative_to(course.root)) in report[module]


def test_second_build_changes_nothing(built_course):
    course, _ = built_course
    before = _digest(course.root)
    report = build(course, course.module_names())
    assert all(changed == [] for changed in report.values()), report
    assert _digest(course.root) == before


def test_release_holds_only_notebooks_without_solutions(built_course):
    course, _ = built_course
    for module in course.module_names():
        from coursekit.package import due_files
        release_dir = course.release(module).parent
        files = sorted(p.relative_to(release_dir).as_posix() for p in release_dir.rglob("*") if p.is_file())
        # the notebook, and the due package (the reference of earlier modules) that travels with it
        expected = sorted([f"{module}.ipynb"] + [f"tinytorch/{p.name}" for p in due_files(course, module)])
        assert files == expected, f"release of {module} holds {files}"
        for name in expected[1:]:
            assert (release_dir / name).read_bytes() == (course.lib_dir / name.split("/")[1]).read_bytes()
        released = course.release(module).read_text(encoding="utf-8")
        for marker in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "END SOLUTION", "END HIDDEN TESTS"):
            assert marker not in released, f"{marker!r} in the release of {module}"
        reference = nbformat.read(course.notebook(module), as_version=4)
        released_lines = {line.strip() for cell in json.loads(released)["cells"]
                          for line in "".join(cell["source"]).split("\n")}
        regions = [split_regions(cell.source) for cell in reference.cells]
        public = {line for outside, _ in regions for line in outside}
        # a line that exists only inside solution or hidden-test regions must not be released
        secret = {line for _, inside in regions for line in inside} - public
        leaked = sorted(secret & released_lines - {"pass", "return", "else:", "try:", "break", "continue"})
        assert leaked == [], f"{module}: solution-only lines in the release: {leaked[:5]}"


def test_package_has_no_markers_and_imports_in_a_fresh_process(built_course):
    course, _ = built_course
    modules = sorted(p.stem for p in course.lib_dir.glob("*.py") if not p.stem.startswith("_"))
    assert {"nn", "data"} <= set(modules)
    for path in course.lib_dir.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not any(marker in text for marker in MARKERS), f"marker line in {path.name}"
    code = ("import sys, tinytorch, importlib; "
            f"assert tinytorch.__file__.startswith({str(course.root)!r}), tinytorch.__file__; "
            + "; ".join(f"importlib.import_module('tinytorch.{m}')" for m in modules))
    result = subprocess.run([sys.executable, "-c", code], env=course.subprocess_env(), cwd=course.root,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_student_package_holds_only_modules_already_due(built_course, tmp_path):
    """What goes out with module k: the exports of modules before k, enough for its imports."""
    import re

    from coursekit.package import package_for, package_modules

    course, _ = built_course
    modules = course.module_names()
    for position, module in enumerate(modules):
        out = tmp_path / module
        shipped = {p.stem for p in package_for(course, module, out)} - {"__init__"}
        due = {name for earlier in modules[:position] for name in package_modules(course, earlier)}
        assert shipped == due, f"{module}: shipped {sorted(shipped)}, due {sorted(due)}"
        assert not shipped & set(package_modules(course, module)), f"{module}'s own code was shipped"
        code = "\n".join(c.source for c in nbformat.read(course.release(module), as_version=4).cells
                         if c.cell_type == "code")
        imported = set(re.findall(r"from tinytorch\.(\w+) import", code))
        imported |= set(re.findall(r"import tinytorch\.(\w+)", code))
        assert imported <= shipped, f"{module} imports {sorted(imported - shipped)}, not shipped with it"
