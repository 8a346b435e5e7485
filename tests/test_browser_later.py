"""The second half of the lessons opened in JupyterLab in a real browser (see
``test_browser.py``, which checks the first half the same way)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from browser_support import LATER_LESSONS, _problems, chromium, serve


@pytest.fixture(scope="module")
def lab_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve(tmp_path_factory, labs=False)


@pytest.fixture(scope="module")
def browser(lab_url: str) -> Iterator[object]:
    yield from chromium()


@pytest.mark.parametrize("lesson", LATER_LESSONS)
def test_lesson_runs_in_jupyterlab(browser: object, lab_url: str, lesson: str) -> None:
    problems = _problems(browser, lab_url, lesson)
    assert not problems, f"{lesson}: " + "; ".join(problems)
