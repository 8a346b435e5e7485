"""The student lab notebooks (as `cnnlab assign` writes them), a broken lesson and the live
explorer of lesson 03, each in JupyterLab in headless Chromium; see ``test_browser.py``.
"""

from __future__ import annotations

import time

import pytest
from browser_support import (
    ARTIFACTS,
    CELLS_JS,
    FIXTURE,
    LABS,
    LESSONS,
    OUTPUT_TEXT_JS,
    _close,
    _open,
    _opened_modified,
    _problems,
    _run_all,
    _settle,
    module_fixtures,
)

lab_url, browser = module_fixtures(labs=True)


@pytest.mark.parametrize("lab", LABS)
def test_student_lab_runs_in_jupyterlab(browser: object, lab_url: str, lab: str) -> None:
    """The handed-out notebook, unanswered: every cell runs and the checks say what is missing."""
    page = _open(browser, lab_url, f"{lab}/{lab}.ipynb")
    try:
        _settle(page)
        assert not _opened_modified(page, lab_url, f"notebooks/{lab}/{lab}.ipynb"), \
            "opening it marks it modified"
        _run_all(page)
        cells = page.evaluate(CELLS_JS)
        text = page.evaluate(OUTPUT_TEXT_JS)  # from the model: the view shows only some cells
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{lab}_student.png"), full_page=True)
    finally:
        _close(page, lab_url)
    assert all(c["count"] is not None for c in cells)
    assert not [c for c in cells if c["errors"]], [c["errors"] for c in cells if c["errors"]]
    assert "q1:" in text and "public checks failed" in text


def test_the_check_catches_a_broken_lesson(browser: object, lab_url: str) -> None:
    problems = _problems(browser, lab_url, FIXTURE.name)
    assert any("marks it modified" in p for p in problems), problems
    assert any("ZeroDivisionError" in p for p in problems), problems


def test_lesson03_runs_and_its_explorer_redraws(browser: object, lab_url: str) -> None:
    lesson = next(name for name in LESSONS if name.startswith("03_"))
    page = _open(browser, lab_url, lesson)
    try:
        time.sleep(1.5)  # let JupyterLab settle (its widget manager) before the explorer runs
        _run_all(page)
        cells = page.evaluate(CELLS_JS)  # the lesson runs in JupyterLab, as nbval runs it
        errors = [c["errors"] for c in cells
                  if c["errors"] and "nbval-raises-exception" not in c["tags"]]
        assert not errors and all(c["count"] is not None for c in cells), errors
        slider = page.locator(".widget-slider", has_text="kernel size").first
        slider.wait_for(state="attached", timeout=60_000)
        slider.scroll_into_view_if_needed(timeout=60_000)
        explorer = slider.locator("xpath=ancestor::div[contains(@class,'widget-vbox')][1]")
        before_img = explorer.locator("img").first.get_attribute("src")
        before_formula = explorer.locator("pre").first.inner_text()
        slider.locator(".noUi-handle").first.focus()
        page.keyboard.press("ArrowRight")
        page.wait_for_function(
            "([old]) => { const imgs = [...document.querySelectorAll('.widget-vbox img')];"
            " return imgs.length && imgs.every(i => i.src !== old); }",
            arg=[before_img], timeout=30_000)
        after_formula = explorer.locator("pre").first.inner_text()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        explorer.screenshot(path=str(ARTIFACTS / "03_explorer_after_slider.png"))
        assert after_formula != before_formula, "the formula did not change with the slider"
    finally:
        _close(page, lab_url)
