"""nbgrader configuration of the course (run nbgrader from this folder)."""
c = get_config()  # noqa: F821 (provided by nbgrader)

c.CourseDirectory.course_id = "sparse-nets"
c.CourseDirectory.root = "."
# SQLite is fine for one grader at a time; a real course points this at PostgreSQL.
c.CourseDirectory.db_url = "sqlite:///gradebook.db"
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
# Seconds a single cell may run before it is interrupted (an infinite loop scores 0 there).
c.Execute.timeout = 60
# Students may edit only solution cells; locked cells are restored from the gradebook.
c.Autograde.create_student = True
