"""The building blocks that followed AlexNet (lesson 09), and the formulas that count them.

- VGG: :func:`vgg_block`, a few 3x3 convolutions then a 2x2 max pool;
- ResNet: :class:`ResidualBlock`, ``y = relu(x + F(x))`` (a 1x1 projection on the shortcut
  when the shape changes), and :class:`PlainBlock`, the same ``F`` without the skip;
- MobileNet: :class:`DepthwiseSeparable`, a depthwise 3x3 (``groups=C``) then a 1x1 pointwise;
- :func:`deep_stack`, a deep narrow network of either block, to compare them on the same data;
- :func:`gradient_norms`, the size of the loss gradient at every convolution;
- :func:`grouped_conv2d_params` and :func:`conv2d_mult_adds`, by formula.

Shapes are (N, C, H, W). Weights come from PyTorch's default initialisation, drawn from the
global generator: call ``torch.manual_seed(...)`` first for repeatable models. A plain and a
residual stack built after the same seed hold the same weights under the same names.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from cnnlab._checks import as_int, as_pair, describe, is_tensor, message
from cnnlab.shapes import conv2d_params
from cnnlab.train import _loss_and_correct

__all__ = ["grouped_conv2d_params", "conv2d_mult_adds", "vgg_block", "PlainBlock",
           "ResidualBlock", "DepthwiseSeparable", "deep_stack", "gradient_norms"]


# --- formulas -------------------------------------------------------------------------------

def _groups(in_channels: int, out_channels: int, groups: int, where: str) -> int:
    groups = as_int(groups, "groups", where, minimum=1)
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
        if value % groups:
            raise ValueError(message(
                where, f"`{name}` divisible by groups={groups}", f"{name}={value}",
                "Each group takes in_channels / groups inputs and makes out_channels / groups "
                "outputs; pick channel counts that are multiples of the number of groups."))
    return groups


def grouped_conv2d_params(in_channels: int, out_channels: int,
                          kernel_size: int | tuple[int, int], groups: int = 1,
                          bias: bool = True) -> int:
    """Parameters of ``nn.Conv2d(..., groups=groups)``: (in/groups * kH * kW + bias) * out.

    Each output channel sees only the in_channels / groups inputs of its group, so the weight
    is (out, in / groups, kH, kW): ``groups`` divides the weights. ``groups=in_channels`` is a
    depthwise convolution (one kH x kW filter per channel when out = in).

    >>> grouped_conv2d_params(96, 256, 5, groups=2)   # AlexNet 2012's conv2, split over 2 GPUs
    307456
    """
    where = "grouped_conv2d_params"
    in_channels = as_int(in_channels, "in_channels", where, minimum=1)
    out_channels = as_int(out_channels, "out_channels", where, minimum=1)
    groups = _groups(in_channels, out_channels, groups, where)
    return conv2d_params(in_channels // groups, out_channels, kernel_size, bias=bias)


def conv2d_mult_adds(in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                     output_size: int | tuple[int, int], groups: int = 1,
                     bias: bool = True) -> int:
    """Multiply-adds of one image through ``nn.Conv2d``: every parameter, once per output pixel.

    ``output_size`` is the output's (H_out, W_out) (an int for a square). Each of the
    out * H_out * W_out outputs takes in/groups * kH * kW multiply-adds, plus one addition for
    the bias; this is what ``torchinfo.summary`` reports as mult-adds for a batch of one.

    >>> conv2d_mult_adds(3, 8, 3, 32)                # (3*3*3 + 1) * 8 params at 32*32 pixels
    229376
    """
    where = "conv2d_mult_adds"
    out_h, out_w = as_pair(output_size, "output_size", where, minimum=1)
    return grouped_conv2d_params(in_channels, out_channels, kernel_size, groups,
                                 bias) * out_h * out_w


# --- blocks ---------------------------------------------------------------------------------

def _conv(in_channels: int, out_channels: int, kernel_size: int, stride: int,
          batch_norm: bool) -> list[nn.Module]:
    """Conv (padding k // 2) and, with batch_norm, BatchNorm2d (the conv then needs no bias)."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                     padding=kernel_size // 2, bias=not batch_norm)
    return [conv, nn.BatchNorm2d(out_channels)] if batch_norm else [conv]


def vgg_block(in_channels: int, out_channels: int, num_convs: int = 2, *,
              batch_norm: bool = False) -> nn.Sequential:
    """VGG's block: ``num_convs`` times (3x3 conv, padding 1 [-> BatchNorm2d] -> ReLU), then
    MaxPool2d(2).

    The convolutions keep H and W; the pool halves them. A stack of n 3x3 convs sees
    (2n + 1) x (2n + 1) pixels with 9n C^2 weights, against (2n + 1)^2 C^2 for one big kernel.
    (N, in_channels, H, W) -> (N, out_channels, H // 2, W // 2).
    """
    where = "vgg_block"
    in_channels = as_int(in_channels, "in_channels", where, minimum=1)
    out_channels = as_int(out_channels, "out_channels", where, minimum=1)
    num_convs = as_int(num_convs, "num_convs", where, minimum=1)
    layers: list[nn.Module] = []
    for i in range(num_convs):
        layers += [*_conv(in_channels if i == 0 else out_channels, out_channels, 3, 1,
                          batch_norm), nn.ReLU()]
    return nn.Sequential(*layers, nn.MaxPool2d(2))


def _check_input(block: nn.Module, x: Any) -> None:
    """Raise a teaching error unless x is a batch (N, C, H, W) that ``block`` can take."""
    where, channels = type(block).__name__, block.in_channels
    if not is_tensor(x) or not x.is_floating_point():
        raise TypeError(message(where, "a float tensor (N, C, H, W)", describe(x),
                                "Convert with torch.as_tensor(x, dtype=torch.float32)."))
    if x.dim() != 4 or x.shape[1] != channels:
        hint = (f"The block was built for {channels} input channel(s); check the out_channels "
                "of the layer before it, or build the block with "
                f"{where}({x.shape[1]}, ...)." if x.dim() == 4 else
                "Add the batch axis with x[None] (one image) or the channel axis with "
                "x[:, None] (a batch of grey images (N, H, W)).")
        raise ValueError(message(where, f"a batch (N, {channels}, H, W)",
                                 f"shape {tuple(x.shape)}", hint))
    dtype = next(block.parameters()).dtype
    if x.dtype != dtype:
        raise TypeError(message(where, f"input of the block's dtype {dtype}",
                                f"dtype {x.dtype}", f"Convert the input with x.to({dtype}) or "
                                f"the block with block.to({x.dtype})."))


class PlainBlock(nn.Module):
    """Two 3x3 convolutions without a skip: ``y = relu(F(x))``, F = conv -> [BN] -> ReLU ->
    conv -> [BN]. The same layers, under the same names, as :class:`ResidualBlock`'s ``branch``.

    (N, channels, H, W) -> (N, channels, H, W).
    """

    def __init__(self, channels: int, *, batch_norm: bool = True):
        super().__init__()
        channels = as_int(channels, "channels", "PlainBlock", minimum=1)
        self.in_channels = self.out_channels = channels
        self.branch = nn.Sequential(*_conv(channels, channels, 3, 1, batch_norm), nn.ReLU(),
                                    *_conv(channels, channels, 3, 1, batch_norm))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(self, x)
        return torch.relu(self.branch(x))


class ResidualBlock(nn.Module):
    """ResNet's basic block: ``y = relu(shortcut(x) + F(x))``.

    ``branch`` (F): 3x3 conv (stride ``stride``) -> [BN] -> ReLU -> 3x3 conv -> [BN].
    ``shortcut``: ``nn.Identity()`` when the shape is kept (out_channels == in_channels and
    stride 1), so ``y = relu(x + F(x))``; otherwise a 1x1 conv with the same stride [-> BN]
    (a projection) that gives x the output's shape. With batch_norm the convs have no bias.

    (N, in_channels, H, W) -> (N, out_channels, H_out, W_out), H_out = (H - 1) // stride + 1.
    """

    def __init__(self, in_channels: int, out_channels: int | None = None, stride: int = 1, *,
                 batch_norm: bool = True):
        super().__init__()
        where = "ResidualBlock"
        in_channels = as_int(in_channels, "in_channels", where, minimum=1)
        out_channels = in_channels if out_channels is None else as_int(
            out_channels, "out_channels", where, minimum=1)
        stride = as_int(stride, "stride", where, minimum=1)
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.branch = nn.Sequential(*_conv(in_channels, out_channels, 3, stride, batch_norm),
                                    nn.ReLU(), *_conv(out_channels, out_channels, 3, 1, batch_norm))
        same_shape = in_channels == out_channels and stride == 1
        self.shortcut = nn.Identity() if same_shape else nn.Sequential(
            *_conv(in_channels, out_channels, 1, stride, batch_norm))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(self, x)
        return torch.relu(self.shortcut(x) + self.branch(x))


class DepthwiseSeparable(nn.Module):
    """A k x k convolution factorised as MobileNet does: ``pointwise(depthwise(x))``.

    ``depthwise``: ``nn.Conv2d(C, C, k, stride, padding=k // 2, groups=C, bias=False)``, one
    k x k filter per channel (C * k * k weights); ``pointwise``: ``nn.Conv2d(C, O, 1)``, which
    mixes channels at each pixel (C * O weights, plus O biases with ``bias``). Together
    C*k*k + C*O weights, where ``nn.Conv2d(C, O, k)`` has C*O*k*k. (MobileNet puts BatchNorm
    and ReLU after each of the two; here it is the bare replacement of one convolution.)

    (N, in_channels, H, W) -> (N, out_channels, H_out, W_out), the same shape as
    ``nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2)``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 stride: int = 1, *, bias: bool = True):
        super().__init__()
        where = "DepthwiseSeparable"
        in_channels = as_int(in_channels, "in_channels", where, minimum=1)
        out_channels = as_int(out_channels, "out_channels", where, minimum=1)
        kernel_size = as_int(kernel_size, "kernel_size", where, minimum=1)
        stride = as_int(stride, "stride", where, minimum=1)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.depthwise = nn.Conv2d(in_channels, in_channels, kernel_size, stride=stride,
                                   padding=kernel_size // 2, groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(self, x)
        return self.pointwise(self.depthwise(x))


# --- a deep stack, and its gradients --------------------------------------------------------

def deep_stack(depth: int, channels: int, *, residual: bool = False, batch_norm: bool = False,
               in_channels: int = 1, num_classes: int = 10) -> nn.Sequential:
    """A deep, narrow CNN: a stem, ``depth`` 3x3 convolutions in blocks of two, and a GAP head.

    stem:   3x3 conv (in_channels -> channels) [-> BN] -> ReLU
    blocks: depth // 2 blocks, :class:`ResidualBlock` with ``residual`` else :class:`PlainBlock`
    head:   AdaptiveAvgPool2d(1) -> Flatten -> Linear(channels, num_classes)

    H and W are kept until the head, so any image size works. Built after the same
    ``torch.manual_seed``, the plain and residual versions hold identical weights (same names,
    same values): they differ only by the skips. ``depth + 1`` convolutions in all.
    (N, in_channels, H, W) -> (N, num_classes).
    """
    where = "deep_stack"
    depth = as_int(depth, "depth", where, minimum=2)
    if depth % 2:
        raise ValueError(message(where, "an even `depth` (the blocks hold two convs each)",
                                 f"depth={depth}", f"Use depth={depth - 1} or {depth + 1}."))
    channels = as_int(channels, "channels", where, minimum=1)
    in_channels = as_int(in_channels, "in_channels", where, minimum=1)
    num_classes = as_int(num_classes, "num_classes", where, minimum=1)
    block = ResidualBlock if residual else PlainBlock
    return nn.Sequential(
        nn.Sequential(*_conv(in_channels, channels, 3, 1, batch_norm), nn.ReLU()),
        *[block(channels, batch_norm=batch_norm) for _ in range(depth // 2)],
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes))


def gradient_norms(model: nn.Module, images: torch.Tensor, labels: torch.Tensor
                   ) -> dict[str, float]:
    """The norm of dLoss/dweight for every ``nn.Conv2d`` of ``model``, in registration order.

    The loss is the mean cross-entropy of ``model(images)`` (N, K) against ``labels`` (N,).
    Returns {module name: Frobenius norm of its weight's gradient}; for a Sequential model the
    order is the order of the layers from input to output. The model is left as it was: its
    ``.grad`` fields (``torch.autograd.grad`` is used), its mode (in training mode BatchNorm
    uses the batch's statistics) and its buffers (BatchNorm's running statistics).
    """
    where = "gradient_norms"
    if isinstance(model, type) or not isinstance(model, nn.Module):
        raise TypeError(message(where, "a torch.nn.Module instance", describe(model),
                                "Build the network first, e.g. cnnlab.deep_stack(8, 8)."))
    convs = [(name, m.weight) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError(message(where, "a model with at least one nn.Conv2d",
                                 f"{type(model).__name__} without convolutions"))
    if not is_tensor(images) or images.dim() != 4:
        raise ValueError(message(where, "`images` as a tensor (N, C, H, W)", describe(images),
                                 "Pass a batch, e.g. train.images[:64]."))
    if not is_tensor(labels) or labels.shape != images.shape[:1]:
        raise ValueError(message(where, f"`labels` as a tensor of shape ({len(images)},)",
                                 describe(labels), "One class number per image."))
    dtype = next(p.dtype for p in model.parameters() if p.is_floating_point())
    buffers = [(buffer, buffer.clone()) for buffer in model.buffers()]
    try:
        logits = model(images.to(dtype))
        loss, _ = _loss_and_correct(logits, labels, where)
        grads = torch.autograd.grad(loss / len(images), [weight for _, weight in convs],
                                    allow_unused=True)
    finally:
        with torch.no_grad():
            for buffer, saved in buffers:
                buffer.copy_(saved)
    return {name: 0.0 if grad is None else float(grad.norm())
            for (name, _), grad in zip(convs, grads, strict=True)}
