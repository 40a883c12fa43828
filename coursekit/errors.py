"""The one error type of the course tooling: library code raises it, the CLI prints it."""


class CourseError(Exception):
    """Something the user can fix; the message says what and how."""
