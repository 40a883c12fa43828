"""Grading throughput: one batch graded serially, with --jobs 2, and on a local Dask cluster
of 2 worker processes, in one run (ratios side by side; this machine is noisy).

    .venv/bin/python benchmarks/bench_grading.py [--n 24] [--module 01]

Prints submissions per minute, speedup over serial, and the seconds each submission costs
beyond its notebook's own cell execution (what is left of the sandboxed kernel's start once
warm kernels start ahead, instrumenting, nbgrader's restore and scoring where they do not
overlap a running job), then the arithmetic for 3,500 submissions. Serial grading already
overlaps the coordinator's scoring with the next job, so the speedup of --jobs 2 on two
cores is bounded by the CPU time both runs share.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from coursekit.build import build  # noqa: E402
from coursekit.demo import add_student, scratch_course  # noqa: E402
from coursekit.grading import autograde  # noqa: E402
from coursekit.layout import Course  # noqa: E402
from coursekit.nbgrader_ext import report_of  # noqa: E402


def batch(course: Course, module: str, n: int) -> list[str]:
    mix = ["reference", "untouched", "one-exercise", "reference", "untouched", "broken-json"]
    students = []
    for index in range(n):
        kind = mix[index % len(mix)]
        name = f"{index:03d}-{kind}"
        add_student(course, module, kind, name)
        students.append(name)
    return students


def run(course, module, students, label, **kw) -> dict:
    started = time.perf_counter()
    outcomes = autograde(course, module, students, force=True, progress=False, cell_timeout=60, **kw)
    wall = time.perf_counter() - started
    cells = []
    for o in outcomes:
        report = report_of(course.grading_dir / "autograded" / o.student / module / f"{module}.ipynb") or {}
        if o.status != "failed":
            cells.append(report.get("cells_seconds", 0.0))
    return {"label": label, "wall": wall, "n": len(outcomes), "cells": sum(cells), "parallel": kw.get("jobs", 1),
            "coordinator": sum(o.coordinator_seconds for o in outcomes),
            "scores": {o.student: o.score for o in outcomes}}


def sandbox_cost(course: Course, module: str, rounds: int) -> tuple[float, float]:
    """Median seconds of one job (the reference notebook, instrumented) with and without the
    sandbox, run alternately so that both see the same machine."""
    import nbformat

    from coursekit.integrity import instrument
    from coursekit.job import run_job
    from coursekit.nbgrader_ext import due_modules, job_files
    from coursekit.sandbox import Sandbox

    files = job_files(course, module)
    plan = instrument(nbformat.read(course.notebook(module), as_version=4), due_modules(files))
    boxed, bare = Sandbox(), Sandbox(enabled=False)
    times = {True: [], False: []}
    for index in range(2 * rounds):
        sandboxed = index % 2 == 0 if (index // 2) % 2 == 0 else index % 2 == 1
        started = time.perf_counter()
        run_job(plan.nb, files, boxed if sandboxed else bare, 60)
        times[sandboxed].append(time.perf_counter() - started)
    return statistics.median(times[True]), statistics.median(times[False])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=24)
    parser.add_argument("--module", default="01")
    parser.add_argument("--rounds", type=int, default=4, help="alternating job pairs for the sandbox cost")
    parser.add_argument("--sandbox-only", action="store_true", help="measure only the sandbox cost")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-grading-"))
    course = scratch_course(Course.at(ROOT), work / "course")
    module = course.resolve([args.module])[0]
    build(course, course.module_names()[: course.module_names().index(module) + 1])
    boxed, bare = sandbox_cost(course, module, args.rounds)
    print(f"\nsandbox cost: one job of the {module} reference takes {boxed:.2f} s sandboxed and {bare:.2f} s "
          f"without (medians of {args.rounds} alternating pairs): {boxed / bare:.3f}x")
    if args.sandbox_only:
        return
    students = batch(course, module, args.n)

    from distributed import LocalCluster
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    try:
        results = [run(course, module, students, "serial", jobs=1),
                   run(course, module, students, "serial, no sandbox", jobs=1, sandbox=False),
                   run(course, module, students, "--jobs 2", jobs=2),
                   run(course, module, students, "Dask, 2 workers", jobs=2, scheduler=cluster.scheduler_address)]
    finally:
        from coursekit.distributed import close
        close()
        cluster.close()
    assert all(r["scores"] == results[0]["scores"] for r in results), "scores differ between runs"
    serial = results[0]
    graded = sum(1 for s in serial["scores"].values() if s is not None)
    print(f"\n{args.n} submissions of {module} ({graded} executed, the rest broken), identical scores in every run\n")
    print(f"{'run':<18}{'wall s':>8}{'subs/min':>10}{'speedup':>9}{'overhead s/sub':>16}{'coordinator s/sub':>19}")
    for r in results:
        overhead = (r["wall"] - r["cells"] / r["parallel"]) / graded
        print(f"{r['label']:<18}{r['wall']:>8.1f}{60 * r['n'] / r['wall']:>10.1f}{serial['wall'] / r['wall']:>9.2f}"
              f"{overhead:>16.2f}{r['coordinator'] / graded:>19.2f}")
    print(f"\nserial grading of the batch takes {serial['wall'] / results[1]['wall']:.3f}x the time it takes "
          "without the sandbox (run one after the other: the alternating pairs above are the fairer measure)")
    per_job = serial["wall"] / graded
    coordinator = serial["coordinator"] / graded
    print(f"\nserial: {per_job:.2f} s per executed submission: {serial['cells'] / graded:.2f} s executing cells, "
          f"{per_job - serial['cells'] / graded:.2f} s overhead (sandboxed kernel start, instrumenting, nbgrader "
          f"restore and scoring), of which {coordinator:.2f} s in the coordinator")
    for workers in (1, 4, 16):
        hours = 3500 * max(per_job / workers, coordinator) / 3600
        print(f"3,500 submissions on {workers:>2} worker core(s): {hours:5.2f} h "
              f"(max of {per_job:.2f} s / {workers} per job and the coordinator's {coordinator:.2f} s)")
    print(f"work left at {work} (delete it when done)")


if __name__ == "__main__":
    main()
