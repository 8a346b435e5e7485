"""Layer tables: one row per layer of a model with its parameters and, optionally, output shape.

torchinfo's ``summary`` (lesson 05) shows the same counts, but not each layer's kernel size,
stride and padding, which lessons 06 and 07 read off these tables; so they have this small
module of their own.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from cnnlab._checks import describe, message


class LayerRow(NamedTuple):
    """One line of ``layer_table``: module name, its repr, its parameter count, output shape."""

    name: str
    layer: str
    params: int
    output_shape: tuple[int, ...] | None


def layer_table(model: nn.Module,
                input_shape: tuple[int, ...] | None = None) -> list[LayerRow]:
    """One row per leaf module of ``model``, in the order they were defined.

    ``params`` counts the module's own parameters, so the rows sum to the model's total
    (AlexNet: 61,100,840). With ``input_shape`` (e.g. ``(1, 3, 224, 224)``) a zero input of
    that shape is run through the model and each row also gets its output shape.
    """
    where = "layer_table"
    if not isinstance(model, nn.Module):
        raise TypeError(message(where, "a torch.nn.Module", describe(model),
                                "Pass the model itself, e.g. layer_table(cnnlab.ConvStack())."))
    leaves = [(name, module) for name, module in model.named_modules()
              if name and (not list(module.children())
                           or list(module.parameters(recurse=False)))]
    shapes: dict[str, tuple[int, ...]] = {}
    if input_shape is not None:
        if not (isinstance(input_shape, (tuple, list)) and input_shape
                and all(isinstance(n, int) and not isinstance(n, bool) and n > 0
                        for n in input_shape)):
            raise ValueError(message(where, "input_shape as a tuple of positive ints",
                                     describe(input_shape), "For one RGB image: (1, 3, 224, 224)."))
        hooks = [module.register_forward_hook(
            lambda _m, _i, out, name=name: shapes.__setitem__(name, tuple(out.shape)))
            for name, module in leaves]
        try:
            with torch.no_grad():
                model(torch.zeros(*input_shape))
        finally:
            for hook in hooks:
                hook.remove()
    return [LayerRow(name, _short_repr(module),
                     sum(p.numel() for p in module.parameters(recurse=False)),
                     shapes.get(name))
            for name, module in leaves]


def _short_repr(module: nn.Module) -> str:
    text = repr(module)
    return text if "\n" not in text else type(module).__name__


def format_layer_table(rows: list[LayerRow]) -> str:
    """The rows of ``layer_table`` as aligned text, with a total line."""
    with_shapes = any(row.output_shape is not None for row in rows)
    head = ["layer", "module", "params"] + (["output shape"] if with_shapes else [])
    body = [[row.name, row.layer, f"{row.params:,}"]
            + ([" x ".join(map(str, row.output_shape or ()))] if with_shapes else [])
            for row in rows]
    total = ["total", "", f"{sum(row.params for row in rows):,}"] + ([""] if with_shapes else [])
    table = [head, *body, total]
    widths = [max(len(line[i]) for line in table) for i in range(len(head))]

    def fmt(line: list[str]) -> str:
        cells = [cell.rjust(w) if i == 2 else cell.ljust(w)
                 for i, (cell, w) in enumerate(zip(line, widths, strict=True))]
        return "  ".join(cells).rstrip()

    rule = "-" * len(fmt(head))
    return "\n".join([fmt(head), rule, *map(fmt, body), rule, fmt(total)])


__all__ = ["layer_table", "format_layer_table"]
