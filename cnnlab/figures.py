"""Alt text for figures: a described Figure shows in a notebook as ``<img alt="...">``.

Why HTML: JupyterLab's image renderer and MyST-NB read no alt text from an ``image/png``
output, but both prefer ``text/html``; so a described figure displays as ``text/html`` (an
``<img>`` with the alt and the PNG inline, wrapped in ``<figure>`` with a visible
``<figcaption>`` when there is a caption) and ``text/plain`` (the alt, for terminals and
diffs), without a second copy of the PNG. The PNG is drawn by the kernel's own PNG
formatter, so it looks exactly as before (retina settings included).

How: ``describe_figure`` stores the text on the Figure and gives that one Figure an
``_ipython_display_`` method, which IPython calls instead of its formatters. Nothing global is
registered, so figures that nobody described display exactly as before, and ``%matplotlib
inline`` or ``%config InlineBackend`` cannot undo it. Outside IPython nothing changes.
"""

from __future__ import annotations

import base64
import html
import io
import textwrap
from functools import partial
from typing import TYPE_CHECKING, Any

from cnnlab._checks import describe, message

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["describe_figure"]

_ALT = "_cnnlab_alt"  # the Figure attribute that holds (alt, caption)
TEXT_WIDTH = 100  # text/plain lines, as the lessons' other outputs


def check_text(value: Any, name: str, where: str) -> str | None:
    """``value`` as alt or caption text: None stays None; else a non-blank str, or a teaching
    error."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(message(where, f"`{name}` as a str that says what the figure shows",
                                describe(value),
                                f'Write a sentence, e.g. {name}="Training loss per epoch, '
                                'falling from 2.3 to 0.4".'))
    if not value.strip():
        raise ValueError(message(where, f"`{name}` with some text", repr(value),
                                 f"Say what the figure shows; leave {name}=None for the "
                                 "default."))
    return " ".join(value.split())  # one line: alt text is read, not laid out


def describe_figure(fig: Figure, alt: str, caption: str | None = None) -> Figure:
    """Attach alt text (and an optional visible caption) to ``fig``; returns ``fig``.

    In a notebook the Figure then displays as ``<img alt="...">`` in ``text/html``, which
    JupyterLab, nbconvert's HTML and a MyST-NB site all show, with ``alt`` as ``text/plain``.
    ``alt`` says what the picture shows (screen readers read it instead of the image);
    ``caption`` is shown under the picture to everyone. Line breaks and runs of spaces become
    single spaces. Describing a figure again replaces the text.
    """
    where = "describe_figure"
    from matplotlib.figure import Figure

    if not isinstance(fig, Figure):
        raise TypeError(message(where, "a matplotlib Figure", describe(fig),
                                "Pass the figure, e.g. fig, ax = plt.subplots(); "
                                "describe_figure(fig, alt)."))
    text = check_text(alt, "alt", where)
    if text is None:
        raise TypeError(message(where, "`alt` as a str that says what the figure shows",
                                "None", "Write a sentence for people who cannot see the "
                                "picture."))
    setattr(fig, _ALT, (text, check_text(caption, "caption", where)))
    fig._ipython_display_ = partial(_display, fig)  # type: ignore[attr-defined]
    return fig


def alt_text(fig: Any) -> str | None:
    """The alt text given to ``fig`` by ``describe_figure``, or None."""
    return getattr(fig, _ALT, (None, None))[0]


def caption_text(fig: Any) -> str | None:
    """The visible caption given to ``fig`` by ``describe_figure``, or None."""
    return getattr(fig, _ALT, (None, None))[1]


def mimebundle(fig: Figure) -> tuple[dict[str, str], dict[str, Any]]:
    """(data, metadata) that a described ``fig`` displays as: text/html and text/plain."""
    alt, caption = getattr(fig, _ALT)
    mime, payload, size = _image(fig)
    dims = f' width="{size[0]}" height="{size[1]}"' if size else ""
    img = f'<img alt="{html.escape(alt, quote=True)}"{dims} src="data:{mime};base64,{payload}">'
    text = textwrap.fill(alt, TEXT_WIDTH)
    if caption is not None:
        img = f"<figure>{img}<figcaption>{html.escape(caption)}</figcaption></figure>"
        text += "\n" + textwrap.fill(caption, TEXT_WIDTH)
    return {"text/html": img, "text/plain": text}, {}


def _display(fig: Figure) -> None:
    """IPython's hook for a described figure: publish its bundle instead of the formatters'."""
    from IPython.display import display

    data, metadata = mimebundle(fig)
    display(data, raw=True, metadata=metadata)


def _image(fig: Figure) -> tuple[str, str, tuple[Any, Any] | None]:
    """(mime type, base64 PNG, (width, height) or None) drawn as the kernel draws figures."""
    formatter = _png_formatter(fig)
    result = formatter(fig) if formatter is not None else None  # None: a figure without axes
    if result is not None:
        data, metadata = result if isinstance(result, tuple) else (result, None)
        if isinstance(data, bytes):
            data = base64.b64encode(data).decode("ascii")
        if metadata and "width" in metadata:  # retina: shown at half its pixel size
            return "image/png", data, (metadata["width"], metadata["height"])
        return "image/png", data, None
    buffer = io.BytesIO()  # no IPython PNG formatter: what the inline backend draws by default
    fig.savefig(buffer, format="png", dpi=fig.dpi, bbox_inches="tight",
                facecolor=fig.get_facecolor(), edgecolor=fig.get_edgecolor())
    return "image/png", base64.b64encode(buffer.getvalue()).decode("ascii"), None


def _png_formatter(fig: Figure) -> Any:
    """The running IPython's image/png formatter for Figures, or None."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    if shell is None:
        return None
    try:
        return shell.display_formatter.formatters["image/png"].lookup(fig)
    except (KeyError, AttributeError):
        return None
