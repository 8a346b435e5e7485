"""Reading stored notebooks for the tests: cells, sources and the text of their outputs."""

from __future__ import annotations

import json
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def notebook(name: str) -> dict:
    """The notebook ``notebooks/<name>`` as parsed JSON."""
    return json.loads((NOTEBOOKS / name).read_text())


def cells(name: str) -> list[dict]:
    return notebook(name)["cells"]


def code_cells(name: str) -> list[dict]:
    return [c for c in cells(name) if c["cell_type"] == "code"]


def source(cell: dict) -> str:
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


def outputs_text(cell: dict) -> str:
    """What a reader sees as text: streams, and the text/plain of results and displays."""
    parts = []
    for out in cell.get("outputs", []):
        text = out.get("text") or out.get("data", {}).get("text/plain", "")
        parts.append("".join(text) if isinstance(text, list) else text)
    return "".join(parts)


def stored_text(name: str) -> str:
    """The text of every stored output of the notebook, in order."""
    return "".join(outputs_text(c) for c in code_cells(name))


def hidden(cell: dict) -> bool:
    """True when JupyterLab shows the cell's source collapsed."""
    return bool(cell.get("metadata", {}).get("jupyter", {}).get("source_hidden"))


def missing_facts(name: str, facts: list[str]) -> list[str]:
    """The facts (exact substrings) that the notebook's stored outputs lack."""
    text = stored_text(name)
    return [fact for fact in facts if fact not in text]
