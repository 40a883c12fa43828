"""nbgrader configuration of the course (run nbgrader from this folder)."""
c = get_config()  # noqa: F821 (provided by nbgrader)

c.CourseDirectory.course_id = "sparse-nets"
# the root is set absolute in the exchange block below
# SQLite is fine for one grader at a time; a real course points this at PostgreSQL.
c.CourseDirectory.db_url = "sqlite:///gradebook.db"
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
# Seconds a single cell may run before it is interrupted (an infinite loop scores 0 there).
c.Execute.timeout = 60
# Students may edit only solution cells; locked cells are restored from the gradebook.
c.Autograde.create_student = True

# --- The nbgrader exchange (release, fetch, submit, collect, feedback) on one machine. ---
# The course root is absolute, whatever folder nbgrader starts in; the exchange is a folder
# the course owns (nbgrader's default, /srv/nbgrader/exchange, needs root to create). Point
# COURSE_EXCHANGE at a folder every student can reach, or a shared volume on JupyterHub.
import os as _os  # noqa: E402

_here = _os.path.dirname(_os.path.abspath(__file__))  # noqa: F821 (set by the config loader)
c.CourseDirectory.root = _here
c.Exchange.root = _os.environ.get("COURSE_EXCHANGE") or _os.path.join(_here, "exchange")
try:  # feedback of hand-collected submissions is skipped with a warning, not a crash
    import coursekit.exchange  # noqa: F401

    c.ExchangeFactory.release_feedback = "coursekit.exchange.ReleaseFeedback"
    # feedback and Formgrader load MathJax from the Jupyter server (jupyter-server-mathjax), no CDN
    import nbgrader as _nbgrader

    c.HTMLExporter.extra_template_basedirs = [
        _os.path.join(_os.path.dirname(coursekit.exchange.__file__), "templates"),
        _os.path.join(_os.path.dirname(_nbgrader.__file__), "server_extensions", "formgrader", "templates")]
except ImportError:
    pass
