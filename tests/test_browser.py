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

from collections.abc import Iterator

import pytest
from browser_support import EARLY_LESSONS, _problems, chromium, serve


@pytest.fixture(scope="module")
def lab_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve(tmp_path_factory, labs=False)


@pytest.fixture(scope="module")
def browser(lab_url: str) -> Iterator[object]:
    yield from chromium()


@pytest.mark.parametrize("lesson", EARLY_LESSONS)
def test_lesson_runs_in_jupyterlab(browser: object, lab_url: str, lesson: str) -> None:
    problems = _problems(browser, lab_url, lesson)
    assert not problems, f"{lesson}: " + "; ".join(problems)
