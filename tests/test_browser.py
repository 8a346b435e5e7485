"""Each lesson opened in JupyterLab in a real browser, as a student first sees it.

A JupyterLab server runs on a copy of the lessons; headless Chromium opens every lesson and
checks that
- opening it does not mark it modified (stored metadata matches what JupyterLab writes),
- every stored output shows (none left without a view), and every image in them loads and has
  alt text (cnnlab's figures carry it in their HTML output).
Screenshots of each lesson go to ``tests/artifacts/browser/`` (git-ignored) for CI artefacts.
Running every cell is nbval's part; lesson 03 (its live explorer), the student labs and a
broken lesson run in JupyterLab in ``test_browser_labs.py``, on a server and a browser of their
own so that the two files run side by side on pytest-xdist's workers. The server, the browser
and the helpers live in ``browser_support.py``.
"""

from __future__ import annotations

import pytest
from browser_support import (
    ARTIFACTS,
    LESSONS,
    _close,
    _display_problems,
    _open,
    _opened_modified,
    _settle,
    module_fixtures,
)

lab_url, browser = module_fixtures(labs=False)


@pytest.mark.parametrize("lesson", LESSONS)
def test_lesson_shows_in_jupyterlab(browser: object, lab_url: str, lesson: str) -> None:
    page = _open(browser, lab_url, lesson)
    try:
        _settle(page)
        problems = (["opening it marks it modified (stored metadata is stale)"]
                    if _opened_modified(page, lab_url, f"notebooks/{lesson}") else [])
        problems += _display_problems(page)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{lesson}.png"))
    finally:
        _close(page, lab_url)
    assert not problems, f"{lesson}: " + "; ".join(problems)
