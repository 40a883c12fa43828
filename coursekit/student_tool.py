"""`course-student`: the one command a student needs, shipped in every student kit.

    course-student export NOTEBOOK [--lib DIR] [--allow-incomplete]

copies the student's own code from a finished course notebook (the cells marked
`#| export`) into their `tinytorch` package: by default the `tinytorch/` folder next to
the notebook, which is the one the notebook's kernel imports. A module written this way
replaces the reference copy of the same module that came with the kit, so later modules
run on the student's own code.

This file is course tooling only: it uses the standard library alone and holds no
module's code, so it can go to students with every kit (a test checks that). The
instructor's `course student-export` runs the same function.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import re
import sys
import tempfile
from pathlib import Path

DIRECTIVE = re.compile(r"^#\|\s*(default_exp|exporti?)\b\s*([A-Za-z_][\w.]*)?\s*$")
MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION", "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")
STUB = re.compile(r"^\s*raise NotImplementedError\((\)|\".*is not finished)")
HEADER = ("# Written by `course-student export` from {notebook}: your own code.\n"
          "# Edit the notebook and export again; this file is replaced on each export.\n")


class ExportError(Exception):
    """A notebook that cannot be exported; the message says why and what to do."""


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def read_notebook(path: Path) -> dict:
    path = Path(path)
    if path.suffix != ".ipynb" or not path.is_file():
        raise ExportError(f"NOTEBOOK must be an existing .ipynb file, got {path}")
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
        cells = nb["cells"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ExportError(f"{path} is not a readable notebook: {exc}") from None
    if not isinstance(cells, list):
        raise ExportError(f"{path} is not a readable notebook: 'cells' is not a list")
    return nb


def unfinished(nb: dict) -> list[str]:
    """grade_ids of exercise cells that still hold nbgrader's stub."""
    out = []
    for cell in nb["cells"]:
        meta = (cell.get("metadata") or {}).get("nbgrader") or {}
        if meta.get("solution") and cell.get("cell_type") == "code":
            if any(STUB.match(line) for line in _source(cell).split("\n")):
                out.append(meta.get("grade_id", "?"))
    return out


def _public_names(code: str, private: bool) -> list[str]:
    """Top-level names a cell defines that nbdev would list in __all__."""
    if private:
        return []
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    names = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names += [t.id for t in targets if isinstance(t, ast.Name)]
    return [n for n in names if not n.startswith("_")]


def split_exports(nb: dict) -> dict[str, list[tuple[str, bool]]]:
    """{package module: [(cell code, private)]} in notebook order."""
    default, modules = None, {}
    for cell in nb["cells"]:
        if cell.get("cell_type") != "code":
            continue
        lines = _source(cell).split("\n")
        target, private, body = None, False, []
        for line in lines:
            match = DIRECTIVE.match(line.strip())
            if match:
                kind, name = match.groups()
                if kind == "default_exp":
                    default = name
                else:
                    target, private = name or "", kind == "exporti"
            elif line.strip() not in MARKERS:
                body.append(line)
        if target is None:
            continue
        module = target or default
        if not module:
            raise ExportError("an '#| export' cell comes before the notebook's '#| default_exp' cell")
        code = "\n".join(body).strip("\n")
        # package modules import each other relatively, as nbdev writes them
        code = re.sub(r"^(\s*)from tinytorch\.", r"\1from .", code, flags=re.M)
        modules.setdefault(module, []).append((code, private))
    if default is None:
        raise ExportError("the notebook has no '#| default_exp' cell: is it a course notebook?")
    return modules


def render(notebook_name: str, cells: list[tuple[str, bool]]) -> str:
    names = [n for code, private in cells for n in _public_names(code, private)]
    head = HEADER.format(notebook=notebook_name)
    body = "\n\n\n".join(code for code, _ in cells if code.strip())
    return f"{head}\n__all__ = {sorted(set(names), key=names.index)!r}\n\n{body}\n"


def export(notebook: Path, lib: Path | None = None, allow_incomplete: bool = False) -> list[Path]:
    """Write the notebook's exported cells to lib/<module>.py; return the files written.

    The notebook is only read. Nothing is written unless every module renders."""
    notebook = Path(notebook)
    nb = read_notebook(notebook)
    todo = unfinished(nb)
    if todo and not allow_incomplete:
        raise ExportError(f"exercises still hold the stub: {', '.join(todo)}; finish them "
                          "or pass --allow-incomplete to export anyway")
    modules = split_exports(nb)
    lib = Path(lib) if lib else notebook.resolve().parent / "tinytorch"
    texts = {lib / f"{name}.py": render(notebook.name, cells) for name, cells in modules.items()}
    for path, text in texts.items():
        try:
            compile(text, str(path), "exec")
        except SyntaxError as exc:
            raise ExportError(f"your code for {path.name} does not parse (line {exc.lineno}: {exc.msg}); "
                              "fix the notebook and export again") from None
    lib.mkdir(parents=True, exist_ok=True)
    init = lib / "__init__.py"
    if not init.exists():
        init.write_text('"""tinytorch: your own package, written by course-student export."""\n', encoding="utf-8")
    for path, text in texts.items():
        # write beside, then rename: a crash never leaves half a module
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=lib, suffix=".tmp", delete=False) as tmp:
            tmp.write(text)
        os.replace(tmp.name, path)
    return sorted(texts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="course-student", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("export", help="copy your finished notebook's code into your tinytorch package")
    p.add_argument("notebook", type=Path)
    p.add_argument("--lib", type=Path, help="tinytorch folder to write into (default: tinytorch/ next to the notebook)")
    p.add_argument("--allow-incomplete", action="store_true", help="export even if an exercise holds the stub")
    args = parser.parse_args(argv)
    try:
        for path in export(args.notebook, args.lib, args.allow_incomplete):
            print(f"wrote {path}")
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
