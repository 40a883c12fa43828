"""nbgrader configuration of the course (run nbgrader from this folder, or use `course`).

It is read by every nbgrader process, so the protection below holds for `nbgrader autograde`
run by hand too: each submission's kernel runs in a bubblewrap sandbox that sees only the
release files and the reference `tinytorch` of the modules already due, with integrity checks
around every graded cell (coursekit/nbgrader_ext.py). Student code never sees this file.
"""
from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, ClearOutput, DeduplicateIds,
                                    GetGrades, IgnorePattern, LimitOutput, OverwriteCells, OverwriteKernelspec,
                                    SaveAutoGrades)

import os as _os

import nbgrader as _nbgrader

import coursekit.exchange
from coursekit.nbgrader_ext import DropUnknownGradeCells, GradeInSandbox, HideTestSource, RecordIntegrity

c = get_config()  # noqa: F821 (provided by nbgrader)
_here = _os.path.dirname(_os.path.abspath(__file__))  # noqa: F821 (set by the config loader)

c.CourseDirectory.course_id = "sparse-nets"
# The course root is absolute, whatever folder nbgrader starts in.
c.CourseDirectory.root = _here
# The gradebook, read from here by nbgrader and by `course`: SQLite for one grader; for a real
# course PostgreSQL, e.g. "postgresql+psycopg2://grader:PASSWORD@dbhost/sparse_nets".
c.CourseDirectory.db_url = "sqlite:///" + _os.path.join(_here, "gradebook.db")
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
# Seconds a single cell may run before it is interrupted (an infinite loop scores 0 there).
c.Execute.timeout = 60
# Students may edit only solution cells; locked cells are restored from the gradebook, and a
# deleted test cell is put back.
c.Autograde.create_student = True
c.OverwriteCells.add_missing_cells = True
# cells a student added with made-up grading metadata are treated as student cells
c.Autograde.sanitize_preprocessors = [ClearOutput, DeduplicateIds, OverwriteKernelspec, DropUnknownGradeCells,
                                      OverwriteCells, CheckCellMetadata]

# Execution in the sandbox with integrity checks instead of nbgrader's Execute; the job's
# report (flags, limits hit) is kept in the autograded notebook and flags the submission.
c.Autograde.autograde_preprocessors = [
    GradeInSandbox, IgnorePattern, ClearMetadataPreprocessor, LimitOutput, SaveAutoGrades,
    AssignLatePenalties, CheckCellMetadata, RecordIntegrity,
]
# Limits of one submission's sandbox (these are the defaults).
c.Sandbox.memory_mb = 2048      # per process (RLIMIT_DATA)
c.Sandbox.processes = 256       # processes and threads (RLIMIT_NPROC)
c.Sandbox.cpu_seconds = 900     # CPU time of the kernel (RLIMIT_CPU)
c.Sandbox.file_size_mb = 64     # largest file written (RLIMIT_FSIZE)
c.Sandbox.disk_mb = 256         # writable home and /tmp (tmpfs), each
c.Sandbox.output_kb = 8192      # cell output accepted from one notebook
c.Sandbox.wall_seconds = 1200   # hard wall-clock limit of one notebook

# Feedback shows each test's result and message; hidden tests' source stays hidden
# (set c.HideTestSource.enabled = False to reveal it).
c.GenerateFeedback.preprocessors = [HideTestSource, GetGrades, CSSHTMLHeaderPreprocessor]

# --- The nbgrader exchange (release, fetch, submit, collect, feedback) on one machine. ---
# The exchange is a folder the course owns (nbgrader's default, /srv/nbgrader/exchange, needs
# root to create). Point COURSE_EXCHANGE at a folder every student can reach, or a shared
# volume on JupyterHub.
c.Exchange.root = _os.environ.get("COURSE_EXCHANGE") or _os.path.join(_here, "exchange")
# feedback of hand-collected submissions is skipped with a warning, not a crash
c.ExchangeFactory.release_feedback = "coursekit.exchange.ReleaseFeedback"
# feedback and Formgrader load MathJax from the Jupyter server (jupyter-server-mathjax), no CDN
c.HTMLExporter.extra_template_basedirs = [
    _os.path.join(_os.path.dirname(coursekit.exchange.__file__), "templates"),
    _os.path.join(_os.path.dirname(_nbgrader.__file__), "server_extensions", "formgrader", "templates")]
