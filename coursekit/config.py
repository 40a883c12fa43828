"""The course's nbgrader configuration, read from its one home: grading/nbgrader_config.py."""
from __future__ import annotations


from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from .errors import CourseError
from .layout import Course

CONFIG_FILE = "nbgrader_config.py"


def load(course: Course) -> Config:
    path = course.grading_dir / CONFIG_FILE
    if not path.is_file():
        raise CourseError(f"{path} is missing: the course's nbgrader configuration lives there")
    try:
        return PyFileConfigLoader(CONFIG_FILE, path=str(course.grading_dir)).load_config()
    except Exception as exc:
        raise CourseError(f"{path} could not be read: {type(exc).__name__}: {exc}") from None


def db_url(course: Course, config: Config | None = None) -> str:
    """The gradebook URL of nbgrader_config.py; a relative SQLite path is taken from grading/."""
    config = config or load(course)
    url = config.CourseDirectory.get("db_url") or "sqlite:///gradebook.db"
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/"):
        url = prefix + str((course.grading_dir / url[len(prefix):]).resolve())
    return url
