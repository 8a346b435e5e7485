"""Learning curves: ``plot_history`` draws what ``cnnlab.fit`` records, loss and accuracy per
epoch, one colour per run, and says in its alt text how each run began and ended."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cnnlab._checks import describe, message
from cnnlab.figures import check_text, describe_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_history"]

_HISTORY_KEYS = ("train_loss", "train_acc", "val_loss", "val_acc")


def _history_lists(history: Any, name: str, where: str) -> dict[str, list[float]]:
    lists = {}
    for key in _HISTORY_KEYS:
        if isinstance(history, Mapping):
            value = history.get(key)
        else:
            value = getattr(history, key, None)
        if value is None:
            raise TypeError(message(where, "a History (attributes or keys train_loss, "
                                    "train_acc, val_loss, val_acc) or a dict name -> History",
                                    f"{name}: {describe(history)} without `{key}`",
                                    "Pass what cnnlab.fit returns, or a dict of those."))
        try:
            lists[key] = [float(v) for v in value]
        except (TypeError, ValueError) as error:
            raise TypeError(message(where, f"`{key}` as a list of per-epoch numbers",
                                    f"{name}: {describe(value)}")) from error
    if not lists["train_loss"]:
        raise ValueError(message(where, "at least one epoch in `train_loss`",
                                 f"{name}: an empty list", "Train for an epoch first."))
    return lists


def plot_history(histories: Any, title: str | None = None,
                 eval_label: str = "validation", alt: str | None = None) -> Figure:
    """Learning curves: loss (left) and accuracy (right) per epoch; returns the Figure.

    ``histories`` is one History or a dict name -> History. A History has attributes or keys
    ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``: lists of per-epoch floats (the
    validation lists may be empty). Train is drawn solid, validation dashed, one colour per run.
    ``eval_label`` names the dashed curves in the legend: "test" when the data given to ``fit``
    was a test set. ``alt`` replaces the default alt text, which gives each run's first and
    last values.
    """
    where = "plot_history"
    alt = check_text(alt, "alt", where)
    if isinstance(histories, Mapping) and not all(k in histories for k in _HISTORY_KEYS):
        runs = dict(histories)
        if not runs:
            raise ValueError(message(where, "at least one History", "an empty dict"))
    else:
        runs = {"": histories}
    data = {name: _history_lists(h, repr(name) if name else "history", where)
            for name, h in runs.items()}
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    for index, (name, lists) in enumerate(data.items()):
        colour = f"C{index}"
        prefix = f"{name} " if name else ""
        for ax, metric in ((ax_loss, "loss"), (ax_acc, "acc")):
            for split, style in (("train", "-"), ("val", "--")):
                values = lists[f"{split}_{metric}"]
                if values:
                    epochs = range(1, len(values) + 1)
                    ax.plot(epochs, values, style, color=colour, marker="o", markersize=3,
                            label=f"{prefix}{split if split == 'train' else eval_label}")
    for ax, label in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.set_title(f"{label} per epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9)
        ax.xaxis.get_major_locator().set_params(integer=True)
    title = title or f"learning curves (solid: train, dashed: {eval_label})"
    fig.suptitle(title)
    return describe_figure(fig, alt or _history_alt(data, eval_label, title))


def _history_alt(data: dict[str, dict[str, list[float]]], eval_label: str, title: str) -> str:
    """plot_history's default alt text: the layout, then each run's first -> last values."""
    epochs = max(len(lists["train_loss"]) for lists in data.values())
    runs = (f"{len(data)} runs ({', '.join(data)})" if len(data) > 1 else
            f"run {next(iter(data))}" if next(iter(data)) else "one run")
    facts = []
    for name, lists in data.items():
        parts = []
        for key, label, style in (("train_loss", "training loss", ".2f"),
                                  ("val_loss", f"{eval_label} loss", ".2f"),
                                  ("train_acc", "training accuracy", ".0%"),
                                  ("val_acc", f"{eval_label} accuracy", ".0%")):
            if lists[key]:
                parts.append(f"{label} {lists[key][0]:{style}} to {lists[key][-1]:{style}}")
        facts.append((f"{name}: " if name else "") + ", ".join(parts))
    return (f"Learning curves of {runs} over {epochs} epoch{'s' if epochs > 1 else ''}: loss "
            f"per epoch on the left, accuracy on the right; training solid, {eval_label} "
            f"dashed. From the first epoch to the last: {'; '.join(facts)}. Title: {title}.")
