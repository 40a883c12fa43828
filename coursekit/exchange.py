"""nbgrader exchange pieces the course plugs in through grading/nbgrader_config.py."""
from __future__ import annotations

import glob
import os

from nbgrader.exchange.default.release_feedback import ExchangeReleaseFeedback


class ReleaseFeedback(ExchangeReleaseFeedback):
    """`nbgrader release_feedback` that skips, with a warning, submissions collected by hand.

    A submission put into submitted/ by hand (or by zip_collect) has no timestamp.txt or
    submission_secret.txt, so the exchange cannot match it to a student's fetch; nbgrader
    itself stops with a FileNotFoundError on the first such student. Their feedback HTML
    is under feedback/<student>/<assignment>/ to hand over directly."""

    def copy_files(self):
        skipped = set()
        for html in glob.glob(os.path.join(self.src_path, "*.html")):
            folder = os.path.dirname(html)
            if not all(os.path.isfile(os.path.join(folder, name))
                       for name in ("timestamp.txt", "submission_secret.txt")):
                student = os.path.basename(os.path.dirname(folder))
                if student not in skipped:
                    self.log.warning("Not releasing feedback of '%s' through the exchange: the submission was "
                                     "collected by hand (no timestamp.txt); hand over %s directly", student, folder)
                skipped.add(student)
        saved = self.coursedir.student_id_exclude
        self.coursedir.student_id_exclude = ",".join(filter(None, [saved, *sorted(skipped)]))
        try:
            super().copy_files()
        finally:
            self.coursedir.student_id_exclude = saved
