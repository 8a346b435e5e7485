"""Reading stored notebooks for the tests: cells, sources and the text of their outputs."""

from __future__ import annotations

import base64
import json
import re
import struct
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


def figures(cell: dict) -> list[dict]:
    """The outputs of a cell that show a picture: an image/* output, or an <img> in text/html
    (how cnnlab's figures and animations carry their alt text)."""
    return [out for out in cell.get("outputs", []) if any(
        mime.startswith("image/") or (mime == "text/html" and "<img" in "".join(value))
        for mime, value in out.get("data", {}).items())]


def png_size(out: dict) -> tuple[int, int]:
    """(width, height) in pixels of the PNG that a figure output shows."""
    data = out["data"]
    payload = "".join(data.get("image/png") or re.search(
        r'src="data:image/png;base64,([^"]+)"', "".join(data["text/html"])).group(1))
    return struct.unpack(">II", base64.b64decode(payload)[16:24])  # the PNG's IHDR chunk
