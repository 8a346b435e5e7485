"""Time every notebook as a student's Restart & Run All would, split into set-up and lesson.

    python benchmarks/notebooks.py [NOTEBOOK ...]     # default: lessons, then labs

"set-up" is the install cell (a no-op here) and the cell that imports cnnlab and seeds;
"lesson" is the time of all the other cells (what the 5-second budget is about); "total"
includes the kernel's start-up. Nothing is written back to the notebooks.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from cnnlab.hosted import is_install_cell

ROOT = Path(__file__).resolve().parent.parent


def cell_seconds(cell: nbformat.NotebookNode) -> float:
    timing = cell.get("metadata", {}).get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (start and end):
        return 0.0
    parse = datetime.fromisoformat
    return (parse(end.replace("Z", "+00:00")) - parse(start.replace("Z", "+00:00"))).total_seconds()


def time_notebook(path: Path) -> tuple[float, float, float]:
    """(total wall seconds, set-up cells seconds, other cells seconds)."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    total = time.perf_counter() - start
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    setup = next((i + 1 for i, c in enumerate(code)
                  if "import cnnlab" in c.source and not is_install_cell(c.source)), 1)
    return (total, sum(cell_seconds(c) for c in code[:setup]),
            sum(cell_seconds(c) for c in code[setup:]))


def main(argv: list[str]) -> None:
    paths = [Path(a).resolve() for a in argv] or (
        sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
        + sorted((ROOT / "notebooks" / "labs").glob("*.ipynb")))
    print("| notebook | total | set-up (install, imports) | lesson (other cells) |")
    print("|---|---:|---:|---:|")
    for path in paths:
        total, imports, lesson = time_notebook(path)
        print(f"| {path.relative_to(ROOT)} | {total:.1f} s | {imports:.1f} s | {lesson:.1f} s |")


if __name__ == "__main__":
    main(sys.argv[1:])
