"""The `course` command: one entry point for instructors (and `student-export` for students)."""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .errors import CourseError
from .layout import Course, say


def cmd_build(course: Course, args) -> int:
    from .build import build
    started = time.perf_counter()
    build(course, course.resolve(args.modules))
    say(f"build finished in {time.perf_counter() - started:.1f}s")
    return 0


def cmd_check(course: Course, args) -> int:
    from .grammar import check
    paths = [Path(p) for p in args.paths] or [course.source(m) for m in course.module_names()]
    problems = check(paths)
    for problem in problems:
        print(problem)
    say(f"{len(paths)} source(s) checked, {len(problems)} problem(s)")
    return 1 if problems else 0


def cmd_validate(course: Course, args) -> int:
    from .validate import validate
    started = time.perf_counter()
    problems = validate(course, course.resolve(args.modules), sandbox=not args.no_sandbox)
    for problem in problems:
        print(problem)
    say(f"validate: {len(problems)} problem(s) in {time.perf_counter() - started:.1f}s")
    return 1 if problems else 0


def cmd_autograde(course: Course, args) -> int:
    from .grading import autograde, score_table
    if args.no_sandbox:
        say("warning: --no-sandbox: student code runs as you, and can read and change the course, "
            "the gradebook and other submissions")
    outcomes = autograde(course, args.assignment, args.student, args.cell_timeout, force=args.force,
                         jobs=args.jobs, scheduler=args.scheduler, sandbox=not args.no_sandbox)
    if not outcomes:
        say(f"no submissions for {args.assignment} under grading/submitted/")
        return 1
    say(score_table([(args.assignment, o) for o in outcomes]))
    counts = {s: sum(o.status == s for o in outcomes) for s in ("graded", "timeout", "limit", "flagged", "failed")}
    retried = sum(o.retries > 0 for o in outcomes)
    say(f"summary: {len(outcomes)} submissions: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        + f", {retried} retried")
    return 1 if counts["failed"] else 0


def cmd_feedback(course: Course, args) -> int:
    from .grading import feedback
    say(f"feedback written under {feedback(course, args.assignment)}")
    return 0


def cmd_grades(course: Course, args) -> int:
    from .grading import grades
    say(f"grades written to {grades(course, args.to)}")
    return 0


def cmd_package(course: Course, args) -> int:
    from .package import write_kit
    written = write_kit(course, course.resolve([args.module])[0], args.out)
    say(f"wrote the student kit ({len(written)} files) to {args.out}; a student runs `pip install {args.out}`")
    return 0


def cmd_demo(course: Course, args) -> int:
    from .demo import demo
    return 0 if demo(course, course.resolve(args.modules), args.cell_timeout, args.workdir) else 1


def cmd_student_export(args) -> int:
    from .student_export import student_export
    for path in student_export(args.notebook, args.lib, args.allow_incomplete):
        say(f"wrote {path}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="course", description=__doc__)
    p.add_argument("--root", help="course root (default: $COURSE_ROOT or the current folder)")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("build", help="modules/ -> nbs/ -> tinytorch/ -> grading/source -> grading/release")
    s.add_argument("modules", nargs="*", help="module names or numbers (default: all)")
    s.set_defaults(run=cmd_build)
    s = sub.add_parser("check", help="lint module sources against the source grammar")
    s.add_argument("paths", nargs="*", help="source files (default: every module)")
    s.set_defaults(run=cmd_check)
    s = sub.add_parser("validate", help="reference passes all tests; stub fails every graded cell (sandboxed)")
    s.add_argument("modules", nargs="*")
    s.add_argument("--no-sandbox", action="store_true", help="run the notebooks without the sandbox")
    s.set_defaults(run=cmd_validate)
    s = sub.add_parser("autograde", help="autograde the submissions of an assignment, each in a sandbox")
    s.add_argument("assignment")
    s.add_argument("--student", action="append", help="only these students (repeatable)")
    s.add_argument("--cell-timeout", type=int, help="seconds per cell (default: nbgrader_config.py)")
    s.add_argument("--force", action="store_true", help="regrade submissions that already have a grade")
    s.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="submissions run at once (default: cores)")
    s.add_argument("--scheduler", help="address of a Dask scheduler whose workers run the jobs")
    s.add_argument("--no-sandbox", action="store_true",
                   help="run student code without isolation: it can read and change the course, the "
                        "gradebook and other submissions (only for code you trust)")
    s.set_defaults(run=cmd_autograde)
    s = sub.add_parser("feedback", help="HTML feedback for an autograded assignment")
    s.add_argument("assignment")
    s.set_defaults(run=cmd_feedback)
    s = sub.add_parser("grades", help="export all grades (with flags) to a CSV file")
    s.add_argument("--to", type=Path, help="CSV path (default: grading/grades.csv)")
    s.set_defaults(run=cmd_grades)
    s = sub.add_parser("student-export", help="export your completed notebook into your tinytorch")
    s.add_argument("notebook", type=Path)
    s.add_argument("--lib", type=Path, help="tinytorch folder to write into (default: the installed one)")
    s.add_argument("--allow-incomplete", action="store_true", help="export even if an exercise holds the stub")
    s.set_defaults(run=None)
    s = sub.add_parser("package", help="the student kit of MODULE: release notebook, tinytorch of earlier "
                                       "modules, installable student tools (pip install DIR)")
    s.add_argument("module")
    s.add_argument("--out", type=Path, required=True, help="folder to write the kit into")
    s.set_defaults(run=cmd_package)
    s = sub.add_parser("demo", help="in a scratch copy of the course: build, simulate submissions, autograde")
    s.add_argument("modules", nargs="*")
    s.add_argument("--cell-timeout", type=int, default=30)
    s.add_argument("--workdir", type=Path, help="where the scratch course goes (default: a new temp folder)")
    s.set_defaults(run=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "student-export":
            return cmd_student_export(args)
        return args.run(Course.at(args.root), args)
    except CourseError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: every finished grade is in the gradebook; run again to grade the rest",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
