"""The `course` command: one entry point for instructors (and `student-export` for students)."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .layout import Course, say


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="course", description=__doc__)
    parser.add_argument("--root", help="course root (default: $COURSE_ROOT or the current folder)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("build", help="modules/ -> nbs/ -> tinytorch/ -> grading/source -> grading/release")
    p.add_argument("modules", nargs="*", help="module names or numbers (default: all)")
    p = sub.add_parser("check", help="lint module sources against the source grammar")
    p.add_argument("paths", nargs="*", help="source files (default: every module)")
    p = sub.add_parser("validate", help="reference passes all tests; stub fails every graded cell")
    p.add_argument("modules", nargs="*")
    p = sub.add_parser("autograde", help="autograde every submission of an assignment")
    p.add_argument("assignment")
    p.add_argument("--student", action="append", help="only these students (repeatable)")
    p.add_argument("--cell-timeout", type=int, help="seconds per cell (default: nbgrader_config.py)")
    p.add_argument("--submission-limit", type=float, default=900, help="hard limit per submission, seconds")
    p = sub.add_parser("feedback", help="HTML feedback for an autograded assignment")
    p.add_argument("assignment")
    p = sub.add_parser("grades", help="export all grades to a CSV file")
    p.add_argument("--to", type=Path, help="CSV path (default: grading/grades.csv)")
    p = sub.add_parser("student-export", help="export your completed notebook into your tinytorch")
    p.add_argument("notebook", type=Path)
    p.add_argument("--lib", type=Path, help="tinytorch folder to write into (default: the installed one)")
    p.add_argument("--allow-incomplete", action="store_true", help="export even if an exercise holds the stub")
    p = sub.add_parser("package", help="the student kit of MODULE: release notebook, tinytorch of earlier "
                                       "modules, installable student tools (pip install DIR)")
    p.add_argument("module")
    p.add_argument("--out", type=Path, required=True, help="folder to write the kit into")
    p = sub.add_parser("demo", help="build, simulate submissions for every module, autograde, show scores")
    p.add_argument("modules", nargs="*")
    p.add_argument("--cell-timeout", type=int, default=30)
    args = parser.parse_args(argv)

    if args.command == "student-export":
        from .student_export import student_export
        for path in student_export(args.notebook, args.lib, args.allow_incomplete):
            say(f"wrote {path}")
        return 0

    course = Course.at(args.root)
    started = time.perf_counter()
    if args.command == "build":
        from .build import build
        build(course, course.resolve(args.modules))
        say(f"build finished in {time.perf_counter() - started:.1f}s")
    elif args.command == "check":
        from .grammar import check
        paths = [Path(p) for p in args.paths] or [course.source(m) for m in course.module_names()]
        problems = check(paths)
        for problem in problems:
            print(problem)
        say(f"{len(paths)} source(s) checked, {len(problems)} problem(s)")
        return 1 if problems else 0
    elif args.command == "validate":
        from .validate import validate
        problems = validate(course, course.resolve(args.modules))
        for problem in problems:
            print(problem)
        say(f"validate: {len(problems)} problem(s) in {time.perf_counter() - started:.1f}s")
        return 1 if problems else 0
    elif args.command == "autograde":
        from .grading import autograde, score_table
        outcomes = autograde(course, args.assignment, args.student, args.cell_timeout, args.submission_limit)
        if not outcomes:
            say(f"no submissions for {args.assignment} under grading/submitted/")
            return 1
        say(score_table([(args.assignment, o) for o in outcomes]))
        return 1 if any(o.status == "failed" for o in outcomes) else 0
    elif args.command == "feedback":
        from .grading import feedback
        say(f"feedback written under {feedback(course, args.assignment)}")
    elif args.command == "grades":
        from .grading import grades
        say(f"grades written to {grades(course, args.to)}")
    elif args.command == "package":
        from .package import write_kit
        written = write_kit(course, course.resolve([args.module])[0], args.out)
        say(f"wrote the student kit ({len(written)} files) to {args.out}; a student runs `pip install {args.out}`")
    elif args.command == "demo":
        from .demo import demo
        return 0 if demo(course, course.resolve(args.modules), args.cell_timeout) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
