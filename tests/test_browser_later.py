"""The second half of the lessons opened in JupyterLab in a real browser (see
``test_browser.py``, which checks the first half the same way)."""

from __future__ import annotations

from browser_support import LATER_LESSONS, lesson_test, module_fixtures

lab_url, browser = module_fixtures(labs=False)
test_lesson_runs_in_jupyterlab = lesson_test(LATER_LESSONS)
