"""Every notebook is saved the way CI checks it, and keeps the curriculum's facts in its outputs.

nbval proves that re-running a notebook reproduces its stored outputs; these tests prove that
the stored outputs are the right ones (the course's numbers), so a regenerated notebook cannot
silently drop a fact, and that each notebook was saved from one clean run.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from notebook_text import (
    NOTEBOOKS,
    code_cells,
    figures,
    hidden,
    missing_facts,
    notebook,
    outputs_text,
    source,
)

from cnnlab import hosted

ALL = sorted(p.relative_to(NOTEBOOKS).as_posix() for p in NOTEBOOKS.rglob("*.ipynb")
             if ".ipynb_checkpoints" not in p.parts)

FACTS = {
    "01_from_dense_to_convolution.ipynb": [
        "formula 20,000,000, real layer 20,000,000",
        "3*32*32*100 = 307,200 (real layer: 307,200)",
        "16*3*3*3    = 432 (real layer: 432)",
        "(16*4 + 4) + (4*1 + 1) = 73; real model: 73",
        "(4*4 + 4) + (4*1 + 1) = 25; real model: 25",
        "conv(shifted) == shift(conv(image)): True",
        # stride 2 follows only shifts by a multiple of 2 (the stride-1 demo follows every shift)
        "shift by 1 pixel: output is a shift of the original: False",
        "shift by 2 pixels: output shifted by 1: True",
    ],
    "02_the_convolution_operation.ipynb": [
        "output[0, 0] written out:         12",
        "by hand:             [[12, 12, 17], [10, 17, 19], [9, 6, 14]]",
        "cnnlab.conv2d_loops: [[12, 12, 17], [10, 17, 19], [9, 6, 14]]",
        "F.conv2d:            [[12, 12, 17], [10, 17, 19], [9, 6, 14]]",
        "ours with flipped kernel equals convolve2d: True",
        "conv2d_loops and conv2d agree with F.conv2d",
        # a convolution as one matrix product: the window matrix times the flattened kernel
        "window matrix of the 5x5 example: (9, 9)",
        "windows @ K.flatten(): [[12, 12, 17], [10, 17, 19], [9, 6, 14]]",
    ],
    "03_padding_and_stride.ipynb": [
        "3x3 kernel on 4x4: formula 2, nn.Conv2d 2",
        "51x51 kernel on 100x100: formula 50, nn.Conv2d 50",
        "51x51 kernel on 100x100 with padding 25: formula 100 | nn.Conv2d 100",
        "formula: 26 | nn.Conv2d: 26",
        "padding 0: formula (32, 7, 124, 124), nn.Conv2d (32, 7, 124, 124)",
        "padding 2: formula (32, 7, 128, 128), nn.Conv2d (32, 7, 128, 128)",
        "formula (16, 1, 28, 28), nn.Conv2d (16, 1, 28, 28)",
        "formula (16, 5, 30, 30), nn.Conv2d (16, 5, 30, 30)",
        # with stride 2 padding can keep the size (n=5, k=3, s=2, p=3 gives 5), wasting windows
        *[f"stride 2, padding {p}: formula {n}, nn.Conv2d {n}"
          for p, n in enumerate([(5 + 2 * p - 3) // 2 + 1 for p in range(5)])],
        "windows that see only padding: 16 of 25",
        "smallest padding by the rule below: "
        f"{min(p for p in range(9) if (5 + 2 * p - 3) // 2 + 1 == 5)}",
    ],
    "04_channels_and_layout.ipynb": [
        "all equal: True",
        "weight: torch.Size([5, 3, 2, 2])",
        "16 x 3 = 48 kernels of 3x3, grouped into 16 filters",
        "(266, 400, 3) uint8",
        "RGBA: (266, 400, 4)",
        "HWC (266, 400, 3) -> CHW (3, 266, 400) -> NCHW (1, 3, 266, 400)",
        "RuntimeError: Given groups=1",
        "It looks like an HWC",
        "nn.Conv2d: (10, 6, 28, 28)  F.conv2d: (10, 6, 28, 28)",
        "module and function agree: True",
        "per-pixel Linear agrees: True",
    ],
    "05_pooling_and_parameters.ipynb": [
        "[[3 7]\n [4 4]]",
        "[[7 9]\n [8 4]]",
        "MaxPool2d(2) parameters: []",
        # overlapping pooling, 3x3 windows with stride 2 as in AlexNet
        "[[8 8]\n [9 7]]",
        "55x55 -> formula 27, nn.MaxPool2d 27",
        "27x27 -> formula 13, nn.MaxPool2d 13",
        "13x13 -> formula 6, nn.MaxPool2d 6",
        "Conv2d(1, 3, 3): weight 27 + bias 3 = 30; formula: 30",
        "Conv2d(3, 3, 3): weight 81 + bias 3 = 84; formula: 84",
        "Total params: 20,087",
        # torchinfo's "Total mult-adds (Units.MEGABYTES): 0.88" is a count: 880,001
        "Total mult-adds (Units.MEGABYTES): 0.88",
        "torchinfo's mult-adds: 880,001; by hand: 880,001",
        "Total params: 1,337",
        "counted:    MLP 4,238,337, CNN 49,519",
        # the gap depends on the MLP chosen
        "share of the CNN's parameters in its last linear layer: 99.3%",
        "MLP 16384 -> 1: 16,385 parameters",
        "pool -> (5, 14, 14) (980 units)",
        "pool -> (10, 5, 5) (250 units)",
        # exercise 6: the rule that every convolution keeps and max pooling breaks
        "a random convolution keeps the rule: True",
    ],
}


LESSONS = [name for name in ALL if re.match(r"\d\d_", name)]
TESTS = Path(__file__).resolve().parent


def test_every_lesson_is_listed():
    # a lesson's facts live in FACTS or in its own tests/test_lessonNN.py
    own_file = [name for name in LESSONS if (TESTS / f"test_lesson{name[:2]}.py").exists()]
    assert LESSONS == sorted(set(FACTS) | set(own_file)), "add the new lesson's facts to FACTS"


@pytest.mark.parametrize("name", sorted(FACTS))
def test_facts_are_in_stored_outputs(name: str) -> None:
    missing = missing_facts(name, FACTS[name])
    assert not missing, f"{name}: stored outputs lack {missing}; re-run the notebook top to bottom"


@pytest.mark.parametrize("name", ALL)
def test_saved_from_one_clean_run(name: str) -> None:
    counts = [c["execution_count"] for c in code_cells(name) if source(c).strip()]
    assert counts == list(range(1, len(counts) + 1)), (
        f"{name}: execution counts {counts}; save it from one top-to-bottom run "
        "(jupyter nbconvert --to notebook --execute --inplace)")


@pytest.mark.parametrize("name", ALL)
def test_no_execution_timestamps(name: str) -> None:
    # nbconvert records when each cell ran; stored, that changes every cell on every re-run
    stamped = [i for i, c in enumerate(notebook(name)["cells"])
               if "execution" in c.get("metadata", {})]
    assert not stamped, (f"{name}: cells {stamped[:8]} store execution timestamps; execute with "
                         "--ExecutePreprocessor.record_timing=False")


@pytest.mark.parametrize("name", ALL)
def test_kernelspec_and_relative_paths(name: str) -> None:
    kernelspec = notebook(name)["metadata"]["kernelspec"]
    assert kernelspec["name"] == "python3"
    # JupyterLab rewrites any other display name on open and marks the notebook modified
    assert kernelspec["display_name"] == "Python 3 (ipykernel)", (
        f"{name}: kernelspec display_name {kernelspec['display_name']!r}")
    for cell in notebook(name)["cells"]:
        found = re.findall(r"""["'](/(?:root|home|work|tmp|Users)/[^"']*)""", source(cell))
        assert not found, f"{name}: absolute path {found} in a cell; use a relative path"


@pytest.mark.parametrize("name", ALL)
def test_install_cell_first(name: str) -> None:
    # Hosted runtimes (Colab, Kaggle) lack cnnlab: the first code cell installs it from the
    # source `cnnlab install-source` set, and does nothing, showing nothing, where it is
    # importable. JupyterLab shows it collapsed.
    first = code_cells(name)[0]
    chosen = hosted.install_source(notebook(name))
    assert chosen is not None and source(first) == hosted.install_cell(chosen), (
        f"{name}: the first code cell should be cnnlab's install cell; run "
        "`cnnlab install-source --clear` (or with the course's source)")
    assert first["metadata"].get("jupyter", {}).get("source_hidden") is True
    assert not first["outputs"], f"{name}: the install cell shows {first['outputs']}"


@pytest.mark.parametrize("name", ALL)
def test_imports_and_seeds_follow_the_install_cell(name: str) -> None:
    imports = next(source(c) for c in code_cells(name)[1:] if "import" in source(c))
    if name in LESSONS:
        assert source(code_cells(name)[1]) == imports and "import cnnlab" in imports, (
            f"{name}: the second code cell should hold the imports")
    if "torch" in imports:
        assert "manual_seed" in imports, f"{name}: seed torch in the cell that imports it"


@pytest.mark.parametrize("name", ALL)
def test_no_test_jargon_in_cells(name: str) -> None:
    # nbval reads cell tags: markers and harness words in the source are noise for students
    for cell in notebook(name)["cells"]:
        text = source(cell)
        assert "NBVAL_" not in text and "(not compared" not in text, (
            f"{name}: test-harness wording in a cell; use a cell tag and plain English:\n"
            f"{text[:200]}")


@pytest.mark.parametrize("name", ALL)
def test_tagged_cells_give_a_reason(name: str) -> None:
    cells = notebook(name)["cells"]
    for i, cell in enumerate(cells):
        tags = [t for t in cell.get("metadata", {}).get("tags", []) if t.startswith("nbval-")]
        if not tags:
            continue
        comments = [line.lstrip("# ").strip() for line in source(cell).splitlines()
                    if line.lstrip().startswith("#")]
        said_in_cell = any(len(c.split()) >= 4 for c in comments)
        before = next((c for c in reversed(cells[:i]) if c["cell_type"] == "markdown"), None)
        said_above = before is not None and re.search(r"\btests?\b", source(before)) is not None
        assert said_in_cell or said_above, (
            f"{name}: a cell tagged {tags} should say why, in a comment or in the text above "
            f"it (for example 'timings differ on every run'):\n{source(cell)[:200]}")


@pytest.mark.parametrize("name", ALL)
def test_exercises_start_unanswered(name: str) -> None:
    # each check shows "not answered yet"; the solution in the next cell, collapsed, passes it
    cells = code_cells(name)
    checks = [i for i, c in enumerate(cells) if "check_answer(" in source(c) and not hidden(c)]
    for i in checks:
        check, solution = cells[i], cells[i + 1] if i + 1 < len(cells) else None
        assert "not answered yet" in outputs_text(check), (
            f"{name}: this check should start unanswered:\n{source(check)[:200]}")
        assert solution is not None and hidden(solution), (
            f"{name}: the cell after this check should hold its solution with its source "
            f"collapsed (metadata.jupyter.source_hidden):\n{source(check)[:200]}")
        verdicts = outputs_text(solution)
        assert "check_answer(" in source(solution) and ": correct" in verdicts, (
            f"{name}: the solution should re-run the check and pass it:\n{verdicts[:200]}")
        assert "not yet" not in verdicts and "not answered" not in verdicts


@pytest.mark.parametrize("name", LESSONS)
def test_lessons_with_exercises_use_check_answer(name: str) -> None:
    markdown = "".join(source(c) for c in notebook(name)["cells"] if c["cell_type"] == "markdown")
    if "## Exercises" not in markdown:
        pytest.skip(f"{name} has no exercises section")
    checks = [c for c in code_cells(name) if "check_answer(" in source(c) and not hidden(c)]
    assert checks, f"{name}: exercises should be checked with cnnlab.check_answer"
    solved = [c for c in code_cells(name) if re.search(r"^\s*assert answer", source(c), re.M)]
    assert not solved, f"{name}: an exercise still checks with assert:\n{source(solved[0])[:200]}"


@pytest.mark.parametrize("name", ALL)
def test_stored_output_fits_the_page(name: str) -> None:
    # JupyterLab wraps longer lines, which breaks printed tables
    for cell in code_cells(name):
        for line in outputs_text(cell).splitlines():
            assert len(line) <= 100, f"{name}: an output line of {len(line)} characters:\n{line}"


@pytest.mark.parametrize("name", ALL)
def test_no_unfinished_progress_bar(name: str) -> None:
    # a bar's updates end in carriage returns; JupyterLab keeps the last one when it saves, and
    # nbconvert does with --CoalesceStreamsPreprocessor.enabled=True (see the README)
    for cell in code_cells(name):
        for out in cell.get("outputs", []):
            text = "".join(out.get("text", ""))
            assert "\r" not in text.replace("\r\n", "\n"), (
                f"{name}: a stored stream keeps every update of a progress bar; store the last")
            bars = re.findall(r"(\d+)%\|", text)
            assert all(int(b) == 100 for b in bars[-1:]), (
                f"{name}: the stored progress bar stops at {bars[-1]}%; store the finished bar")


@pytest.mark.parametrize("name", ALL)
def test_no_display_maths(name: str) -> None:
    # $$...$$ needs MathJax from the network: an offline HTML export shows it raw
    for cell in notebook(name)["cells"]:
        if cell["cell_type"] == "markdown":
            assert "$$" not in source(cell), (
                f"{name}: display maths; write the formula as code or inline text:\n"
                f"{source(cell)[:200]}")


@pytest.mark.parametrize("name", ALL)
def test_no_figure_left_to_a_semicolon(name: str) -> None:
    # nbval runs cells with store_history=False, so IPython ignores a trailing ';' there and a
    # returned Figure would be shown twice: assign it (fig = cnnlab.plot_...(...)).
    for cell in code_cells(name):
        lines = source(cell).strip().splitlines()
        last = lines[-1] if lines else ""
        assert not (last.startswith("cnnlab.plot_") and last.endswith(";")), (
            f"{name}: '{last}' relies on ';', which nbval ignores; write fig = {last[:-1]}")


@pytest.mark.parametrize("name", ALL)
def test_every_figure_has_alt_text(name: str) -> None:
    # JupyterLab and MyST-NB read alt text only from an <img> in text/html: a bare image/png
    # output reaches a screen reader as nothing (describe it: cnnlab.describe_figure)
    for cell in code_cells(name):
        for out in figures(cell):
            page = "".join(out["data"].get("text/html", ""))
            tags = re.findall(r"<img\b[^>]*>", page)
            alts = [re.search(r'\balt="([^"]*)"', tag) for tag in tags]
            assert tags and all(alt and alt.group(1).strip() for alt in alts), (
                f"{name}: a figure without alt text, from:\n{source(cell)[:200]}")


@pytest.mark.parametrize("name", ALL)
def test_no_machine_paths_in_outputs(name: str) -> None:
    # a warning's file name or a cache folder shows the author's machine, and differs on yours
    for cell in code_cells(name):
        found = re.findall(r"(?:/work/|/tmp/|/home/|/root/|/Users/)\S*", outputs_text(cell))
        assert not found, f"{name}: a machine path in a stored output: {found[:2]}"


# ---- Exercises: one layout in every lesson ------------------------------------------------------
# A markdown cell "**Exercise N.** ...", an answer cell (answer_N = ...), a check cell that calls
# cnnlab.check_answer("Exercise N", ...), then the solution, collapsed, whose first line is
# "# Solution" (a collapsed cell still shows its first line). Checks and solutions print verdicts
# only: "correct" never comes with the value, and nothing else in those cells shows the answer.

STANDARD_SENTENCE = (
    "Replace each `...` with your answer, then run that cell and the check under it. Each solution "
    "waits in the collapsed cell after its check: click the three dots to open it once you have "
    "tried.")
VERDICT = re.compile(r"Exercise \d+(?:[ ,][^:\n]*)?: (?:correct|not answered yet "
                     r"\(replace the \.\.\. with your answer and run again\))")
EXERCISE = re.compile(r"^\*\*Exercise (\d+)\b", re.M)


def _solution_cells(name: str) -> list[dict]:
    """The collapsed code cells other than the install cell: every one holds a solution."""
    return [c for c in code_cells(name)[1:] if hidden(c)]


def _check_cells(name: str) -> list[dict]:
    return [c for c in code_cells(name) if "check_answer(" in source(c) and not hidden(c)]


def _exercises(name: str) -> list[tuple[int, int]]:
    """(exercise number, index of its markdown cell) for every "**Exercise N" cell."""
    found = []
    for i, cell in enumerate(notebook(name)["cells"]):
        if cell["cell_type"] == "markdown":
            found += [(int(n), i) for n in EXERCISE.findall(source(cell))]
    return found


@pytest.mark.parametrize("name", ALL)
def test_solutions_start_with_the_solution_line(name: str) -> None:
    # JupyterLab shows the first line of a collapsed cell: it must give nothing away
    for cell in _solution_cells(name):
        first = source(cell).split("\n", 1)[0]
        assert first == "# Solution", (
            f"{name}: a collapsed solution starts with {first!r}; its first line should be "
            "exactly '# Solution'")


@pytest.mark.parametrize("name", ALL)
def test_checks_and_solutions_print_verdicts_only(name: str) -> None:
    for cell in _check_cells(name) + _solution_cells(name):
        kinds = {out["output_type"] for out in cell.get("outputs", [])}
        assert kinds <= {"stream"}, (
            f"{name}: a check or solution cell shows {sorted(kinds)}; it should only print "
            f"check_answer's verdicts:\n{source(cell)[:200]}")
        others = [line for line in outputs_text(cell).splitlines()
                  if not VERDICT.fullmatch(line)]
        assert not others, (
            f"{name}: a check or solution cell prints {others[:3]}, not only check_answer's "
            f"verdicts; a printed value can give the answer away:\n{source(cell)[:200]}")


@pytest.mark.parametrize("name", LESSONS)
def test_exercises_section_says_how_to_work(name: str) -> None:
    sections = [source(c) for c in notebook(name)["cells"]
                if c["cell_type"] == "markdown" and "## Exercises" in source(c)]
    if not sections:
        pytest.skip(f"{name} has no exercises section")
    text = " ".join(sections[0].split())
    assert STANDARD_SENTENCE in text, (
        f"{name}: the '## Exercises' cell should say, in these words: {STANDARD_SENTENCE}")


@pytest.mark.parametrize("name", LESSONS)
def test_one_exercise_layout(name: str) -> None:
    exercises = _exercises(name)
    if not exercises:
        pytest.skip(f"{name} has no exercises")
    numbers = [n for n, _ in exercises]
    assert numbers == list(range(1, len(numbers) + 1)), f"{name}: exercises numbered {numbers}"
    cells = notebook(name)["cells"]
    for n, i in exercises:
        following = cells[i + 1:i + 4]
        where = f"{name}, exercise {n}"
        assert len(following) == 3 and all(c["cell_type"] == "code" for c in following), (
            f"{where}: the exercise text should be followed by three code cells: the answer, "
            "the check and the collapsed solution")
        answer, check, solution = following
        assert re.search(rf"^answer_{n}\w* = ", source(answer), re.M) and "..." in source(answer), (
            f"{where}: the first cell should hold answer_{n} = ...:\n{source(answer)[:200]}")
        assert not hidden(answer) and "check_answer(" not in source(answer), (
            f"{where}: the answer cell is visible and leaves the checking to the next cell")
        assert not answer.get("outputs"), f"{where}: the answer cell should print nothing"
        assert not hidden(check) and f'check_answer("Exercise {n}' in source(check), (
            f"{where}: the second cell should check with "
            f'cnnlab.check_answer("Exercise {n}", ...):\n{source(check)[:200]}')
        assert re.search(rf"\banswer_{n}", source(check)), (
            f"{where}: the check should read answer_{n}:\n{source(check)[:200]}")
        assert hidden(solution) and f'check_answer("Exercise {n}' in source(solution), (
            f"{where}: the third cell should be the collapsed solution, ending with the check")


def test_lesson02_diagram_follows_the_prediction():
    # the step diagram draws the whole output grid: it must come after the cell that asks for
    # output[0, 1] and output[2, 2]
    cells = code_cells("02_the_convolution_operation.ipynb")
    diagram = next(i for i, c in enumerate(cells) if "plot_conv_grid(" in source(c))
    asked = next(i for i, c in enumerate(cells) if "out_22 =" in source(c))
    assert asked < diagram


def test_lesson04_random_filters_match_the_prose():
    # the text says: maps 0, 2, 4, 6 follow the grey photo (0 and 6 inverted), map 3 hardly
    # does, and map 5 weighs red up and blue down
    name = "04_channels_and_layout.ipynb"
    table = next(outputs_text(c) for c in code_cells(name)
                 if outputs_text(c).startswith("map  correlation  sum R"))
    rows = {int(m): [float(v) for v in vals.split()] for m, vals in
            re.findall(r"^ *(\d+) +(\S+ +\S+ +\S+ +\S+)$", table, re.M)}
    assert sorted(rows) == list(range(7)), table
    correlation = {m: values[0] for m, values in rows.items()}
    assert all(abs(correlation[m]) > 0.7 for m in (0, 2, 4, 6)), correlation
    assert correlation[0] < 0 and correlation[6] < 0 and correlation[2] > 0 < correlation[4]
    assert abs(correlation[3]) < 0.3 and min(abs(correlation[m]) for m in (0, 2, 4, 6)) >= 0.75
    assert 0.3 < correlation[1] < 0.7, correlation
    red, _, blue = rows[5][1:]
    assert red > 0.3 and blue < -0.3, rows[5]
    prose = "".join(source(c) for c in notebook(name)["cells"] if c["cell_type"] == "markdown")
    assert "already pick out edges" not in prose and "blurred, noisy" in prose


@pytest.mark.parametrize("name", ALL)
def test_source_lines_fit_the_page(name: str) -> None:
    # ruff's line length does not reach notebooks' markdown; JupyterLab and the diff wrap both
    for index, cell in enumerate(notebook(name)["cells"]):
        if cell["cell_type"] == "raw":
            continue  # a lab's cases: read by the grader, never shown to a student
        long = [line for line in source(cell).splitlines() if len(line) > 100]
        assert not long, f"{name} cell {index}: a line of {len(long[0])} characters:\n{long[0]}"
