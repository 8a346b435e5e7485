"""Output sizes, receptive fields and parameter counts, by formula (pure Python).

The formulas are the ones PyTorch uses, so they can be checked against real modules:

    out = floor((n + 2p - d*(k - 1) - 1) / s) + 1

for a convolution or pooling over one spatial dimension of size n, with kernel k, stride s,
padding p on each side and dilation d.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from cnnlab._checks import as_int, as_pair, describe, message

Padding = int | tuple[int, int] | str


def padding_sides(padding: Padding, span: int, stride: int, where: str) -> tuple[int, int]:
    """Zeros (before, after) along one dimension for an int, (before, after), 'same' or 'valid'.

    ``span`` is how many input positions one window covers, d*(k - 1) + 1. 'same' adds
    span - 1 zeros in total, the odd one after (as PyTorch); it needs stride 1.
    """
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0
        if padding == "same":
            if stride != 1:
                raise ValueError(message(
                    where, "stride=1 with padding='same'", f"stride={stride}",
                    "PyTorch allows 'same' only at stride 1; give the padding as a number."))
            return (span - 1) // 2, span - 1 - (span - 1) // 2
        raise ValueError(message(where, "padding as an int, a pair, 'same' or 'valid'",
                                 repr(padding), "Did you mean padding='same'?"))
    before, after = as_pair(padding, "padding", where, minimum=0)
    return before, after


def conv_output_size(n: int, kernel_size: int, stride: int = 1, padding: Padding = 0,
                     dilation: int = 1) -> int:
    """Output length along one dimension of a convolution (or pooling) layer.

    ``padding`` is zeros on each side (int), ``(before, after)``, ``"same"`` or ``"valid"``.

    >>> conv_output_size(5, 3)                        # the 5x5 example: 3x3 out
    3
    >>> conv_output_size(100, 25, stride=3)
    26
    """
    where = "conv_output_size"
    n = as_int(n, "n", where, minimum=1)
    kernel_size = as_int(kernel_size, "kernel_size", where, minimum=1)
    stride = as_int(stride, "stride", where, minimum=1)
    dilation = as_int(dilation, "dilation", where, minimum=1)
    if isinstance(padding, int) and not isinstance(padding, bool):
        padding = as_int(padding, "padding", where, minimum=0)
        padding = (padding, padding)
    span = dilation * (kernel_size - 1) + 1  # how many input positions one window covers
    padded = n + sum(padding_sides(padding, span, stride, where))
    if span > padded:
        extra = " (dilated)" if dilation > 1 else ""
        raise ValueError(message(
            where, f"a kernel{extra} no larger than the padded input ({padded})",
            f"a window spanning {span} positions (kernel_size={kernel_size}, dilation={dilation})",
            "Use a smaller kernel or dilation, or add padding."))
    return (padded - span) // stride + 1


def conv_output_shape(input_shape: Sequence[int], out_channels: int,
                      kernel_size: int | tuple[int, int], stride: int | tuple[int, int] = 1,
                      padding: int | tuple[int, int] | str = 0,
                      dilation: int | tuple[int, int] = 1) -> tuple[int, ...]:
    """Shape after ``nn.Conv2d(C, out_channels, ...)`` of an (N, C, H, W) or (C, H, W) input.

    >>> conv_output_shape((32, 3, 128, 128), 7, 5)
    (32, 7, 124, 124)
    """
    where = "conv_output_shape"
    shape = _spatial_shape(input_shape, where)
    out_channels = as_int(out_channels, "out_channels", where, minimum=1)
    kh, kw = as_pair(kernel_size, "kernel_size", where, minimum=1)
    sh, sw = as_pair(stride, "stride", where, minimum=1)
    dh, dw = as_pair(dilation, "dilation", where, minimum=1)
    ph, pw = (padding, padding) if isinstance(padding, str) else as_pair(
        padding, "padding", where, minimum=0)
    h = conv_output_size(shape[-2], kh, sh, ph, dh)
    w = conv_output_size(shape[-1], kw, sw, pw, dw)
    return (*shape[:-3], out_channels, h, w)


def _spatial_shape(input_shape: Sequence[int], where: str) -> tuple[int, ...]:
    if not isinstance(input_shape, Sequence) or isinstance(input_shape, str):
        raise TypeError(message(where, "input_shape as a tuple such as (N, C, H, W)",
                                describe(input_shape), "Use x.shape of the input tensor."))
    shape = tuple(as_int(v, "input_shape[i]", where, minimum=1) for v in input_shape)
    if len(shape) not in (3, 4):
        hint = ("A single-channel image (H, W) needs a channel axis: (1, H, W)."
                if len(shape) == 2 else "Convolutions take (C, H, W) or (N, C, H, W).")
        raise ValueError(message(where, "a shape of length 3 (C, H, W) or 4 (N, C, H, W)",
                                 f"{shape} (length {len(shape)})", hint))
    return shape


def pool_output_size(n: int, kernel_size: int, stride: int | None = None,
                     padding: int = 0, dilation: int = 1) -> int:
    """Output length of max/avg pooling along one dimension; ``stride`` defaults to the kernel.

    >>> pool_output_size(4, 2)
    2
    """
    where = "pool_output_size"
    kernel_size = as_int(kernel_size, "kernel_size", where, minimum=1)
    stride = kernel_size if stride is None else stride
    padding = as_int(padding, "padding", where, minimum=0)
    if 2 * padding > kernel_size:
        raise ValueError(message(where, f"padding at most half the kernel ({kernel_size // 2})",
                                 f"padding={padding}",
                                 "PyTorch rejects larger pooling padding: a window would "
                                 "see only padding."))
    return conv_output_size(n, kernel_size, stride, padding, dilation)


def receptive_field(layers: Iterable[Any]) -> int:
    """Size of the input patch that one output unit of a stack of layers sees.

    ``layers`` are (kernel, stride) or (kernel, stride, dilation) tuples, dicts with those keys,
    or torch modules: anything with ``kernel_size`` (Conv2d, MaxPool2d, ...) counts, other
    modules (ReLU, BatchNorm) are skipped and ``nn.Sequential`` is walked. Square kernels.

    >>> receptive_field([(3, 1), (3, 1)])            # two 3x3 convs see 5x5
    5
    >>> receptive_field([(3, 1), (2, 2), (3, 1)])    # a 2x2 pool doubles the next step
    8
    """
    where = "receptive_field"
    field, jump = 1, 1  # jump: distance in input pixels between neighbouring units
    for kernel, stride, dilation in _layer_geometry(layers, where):
        field += (kernel - 1) * dilation * jump
        jump *= stride
    return field


def _layer_geometry(layers: Iterable[Any], where: str) -> Iterable[tuple[int, int, int]]:
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Iterable):
        raise TypeError(message(where, "a list of layers such as [(3, 1), (2, 2)] or an "
                                "nn.Sequential", describe(layers)))
    for layer in layers:
        if hasattr(layer, "kernel_size"):  # a torch layer
            values = [layer.kernel_size, getattr(layer, "stride", 1) or layer.kernel_size,
                      getattr(layer, "dilation", 1)]
            kernel, stride, dilation = (v[0] if isinstance(v, tuple) else v for v in values)
        elif hasattr(layer, "children") and callable(layer.children):
            yield from _layer_geometry(list(layer.children()), where)
            continue
        elif isinstance(layer, dict):
            kernel, stride = layer.get("kernel_size"), layer.get("stride", 1)
            dilation = layer.get("dilation", 1)
        elif isinstance(layer, (tuple, list)) and len(layer) in (2, 3):
            kernel, stride, dilation = (*layer, 1)[:3]
        else:
            raise TypeError(message(where, "each layer as (kernel, stride[, dilation]), a dict "
                                    "or a torch layer", describe(layer),
                                    "For a 3x3 conv with stride 1 write (3, 1)."))
        yield (as_int(kernel, "kernel_size", where, 1), as_int(stride, "stride", where, 1),
               as_int(dilation, "dilation", where, 1))


def conv2d_params(in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                  bias: bool = True) -> int:
    """Trainable parameters of ``nn.Conv2d``: (in_channels * kH * kW + bias) * out_channels.

    >>> conv2d_params(1, 3, 3), conv2d_params(3, 3, 3)
    (30, 84)
    """
    where = "conv2d_params"
    in_channels = as_int(in_channels, "in_channels", where, minimum=1)
    out_channels = as_int(out_channels, "out_channels", where, minimum=1)
    kh, kw = as_pair(kernel_size, "kernel_size", where, minimum=1)
    return (in_channels * kh * kw + int(bool(bias))) * out_channels


def linear_params(in_features: int, out_features: int, bias: bool = True) -> int:
    """Trainable parameters of ``nn.Linear``: (in_features + bias) * out_features.

    >>> linear_params(20000, 1)
    20001
    """
    where = "linear_params"
    in_features = as_int(in_features, "in_features", where, minimum=1)
    out_features = as_int(out_features, "out_features", where, minimum=1)
    return (in_features + int(bool(bias))) * out_features


def count_params(model: Any, trainable_only: bool = False) -> int:
    """Number of parameters (scalars) in a torch module; optionally only trainable ones."""
    where = "count_params"
    if isinstance(model, type):
        raise TypeError(message(where, "a module instance", f"the class {model.__name__}",
                                f"Create the layer first, e.g. {model.__name__}(...), "
                                "then count its parameters."))
    parameters = getattr(model, "parameters", None)
    if not callable(parameters):
        raise TypeError(message(where, "a torch.nn.Module such as nn.Conv2d(3, 8, 3)",
                                describe(model),
                                "For a layer's size by formula use conv2d_params or "
                                "linear_params."))
    return sum(p.numel() for p in parameters() if p.requires_grad or not trainable_only)


__all__ = ["conv_output_size", "conv_output_shape", "pool_output_size", "receptive_field",
           "conv2d_params", "linear_params", "count_params"]
