"""Extra nbgrader config that `course build` passes to `nbgrader generate_assignment`:
each exercise's stub names its exercise ("Exercise 3 (accuracy) is not finished: ...").
To get the same from a hand-run `nbgrader generate_assignment`, add `--config` with this
file's path, or copy these lines into grading/nbgrader_config.py."""
from nbgrader.converters.generate_assignment import GenerateAssignment
from nbgrader.preprocessors import ClearSolutions

from coursekit.unfinished import NamedStubs

c = get_config()  # noqa: F821 (provided by traitlets)
c.GenerateAssignment.preprocessors = [NamedStubs if p is ClearSolutions else p
                                      for p in GenerateAssignment.class_traits()["preprocessors"].default()]
