"""The grades CSV: one row per submission, written as each finishes, renamed into place at the end.

Rows go to ``OUT.partial`` (appended and fsync'ed), so a Ctrl-C or a killed worker keeps every
finished row; ``finish`` renames the file atomically onto ``OUT``. Cells that a spreadsheet
would run as a formula (starting with = + - @, tab or CR) are prefixed with a quote.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

STATUSES = ("ok", "errors", "timeout", "invalid", "wrong-lab", "failed")


@dataclass
class Grade:
    """One CSV row. ``status``: ok (graded), errors (graded, some cells raised), timeout,
    invalid (not a notebook), wrong-lab, failed (no valid results from the sandbox)."""

    file: str
    scores: dict[str, float] = field(default_factory=dict)
    status: str = "ok"
    reason: str = ""  # why it could not be graded normally (invalid, timeout, failed ...)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)  # every failed case: "q1/name: why"
    cell_errors: list[str] = field(default_factory=list)  # "cell 3: NameError: ..."

    @property
    def total(self) -> float:
        return sum(self.scores.values())

    @property
    def summary(self) -> str:
        """The reason column: the reason, else the first cell errors and failed cases."""
        if self.reason:
            return self.reason
        more = [f"{len(self.notes) - 4} more cases failed"] if len(self.notes) > 4 else []
        return "; ".join(self.cell_errors[:2] + self.notes[:4] + more)


def escape(cell: str) -> str:
    """Make a CSV cell inert in spreadsheets (a quote before = + - @ tab CR); drop NULs."""
    cell = cell.replace("\x00", "")  # the csv module quotes newlines; file names are data
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


class Report:
    """Writes rows of ``Grade`` to ``path`` via ``path.partial``; use as a context manager."""

    def __init__(self, path: Path, questions: dict[str, float]) -> None:
        self.path = path
        self.partial = path.with_name(path.name + ".partial")
        self.questions = questions
        self.possible = sum(questions.values())
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.partial, "w", newline="", encoding="utf-8")  # noqa: SIM115
        self._write(["file", *questions, "total", "possible", "status", "reason"])

    def _write(self, row: list[str]) -> None:
        buffer = io.StringIO()
        csv.writer(buffer).writerow([escape(str(c)) for c in row])
        self._file.write(buffer.getvalue())
        self._file.flush()
        os.fsync(self._file.fileno())

    def add(self, grade: Grade) -> None:
        """Append one finished submission's row, durably (ignored once the report is closed)."""
        if self._file.closed:
            return
        self._write([grade.file, *(f"{grade.scores.get(q, 0.0):g}" for q in self.questions),
                     f"{grade.total:g}", f"{self.possible:g}", grade.status, grade.summary])

    def finish(self) -> None:
        """Close and atomically move the rows onto the final path."""
        self._file.close()
        os.replace(self.partial, self.path)

    def close(self) -> None:
        """Close without renaming (interrupted): the .partial file keeps the finished rows."""
        if not self._file.closed:
            self._file.close()
