"""Each lesson opened in JupyterLab in a real browser, as a student opens it.

A JupyterLab server runs on a copy of the lessons; headless Chromium opens every lesson and
checks that
- opening it does not mark it modified (stored metadata matches what JupyterLab writes),
- "Run All" finishes with no error output, except in cells tagged ``nbval-raises-exception``
  (those show an error on purpose).
Screenshots of each lesson go to ``tests/artifacts/browser/`` (git-ignored) for CI artefacts.
This file checks the first half of the lessons and ``test_browser_later.py`` the second half;
the student labs, a broken lesson and lesson 03's live explorer are checked in
``test_browser_labs.py``. Each file has a server and a browser of its own, so that the three
run side by side on pytest-xdist's workers; the server, the browser and the helpers live in
``browser_support.py``.
"""

from __future__ import annotations

from browser_support import EARLY_LESSONS, lesson_test, module_fixtures

lab_url, browser = module_fixtures(labs=False)
test_lesson_runs_in_jupyterlab = lesson_test(EARLY_LESSONS)
