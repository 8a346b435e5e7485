"""The reference networks of the lessons (05 and 06): small CNNs, an MLP and a conv recipe.

Each class's ``features`` / ``classifier`` split mirrors the idea: convolutions and pooling
turn an image into feature maps, then a small head turns them into logits. Shapes in the
comments are for one image (C x H x W); a batch adds N in front.

Weights are initialised by PyTorch's default (random) initialisation, drawn from the global
torch generator: call ``torch.manual_seed(...)`` before building a model for repeatable runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from cnnlab._checks import as_int, describe, message

__all__ = ["ConvStack", "ConvBNNet", "SmallClassicNet", "conv_blocks_cnn", "mlp"]


def conv_block(in_channels: int, out_channels: int, kernel_size: int = 3, *,
               batch_norm: bool = False, pool: bool = False, dropout: float = 0.0,
               padding: int | None = None) -> nn.Sequential:
    """The CNN recipe as one block: Conv2d -> ReLU -> [BatchNorm2d] -> [MaxPool2d(2)] -> [Dropout].

    ``padding`` defaults to ``kernel_size // 2``, which keeps H and W for odd kernels, so only
    the optional pool changes the size (it halves H and W).
    (N, in_channels, H, W) -> (N, out_channels, H, W), or H/2, W/2 with ``pool=True``.
    """
    where = "conv_block"
    in_channels = as_int(in_channels, "in_channels", where, 1)
    out_channels = as_int(out_channels, "out_channels", where, 1)
    kernel_size = as_int(kernel_size, "kernel_size", where, 1)
    padding = kernel_size // 2 if padding is None else as_int(padding, "padding", where, 0)
    if not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(message(where, "`dropout` (a probability) in [0, 1)", repr(dropout),
                                 "Use 0 for no dropout, or e.g. 0.25."))
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding),
                               nn.ReLU()]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_channels))
    if pool:
        layers.append(nn.MaxPool2d(2))
    if dropout:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class ConvStack(nn.Module):
    """Two conv+pool stages, then a fully connected head: 3x64x64 in, ``num_classes`` logits out.

    features:   3x64x64 -> conv 3x3 (12) -> ReLU -> pool -> 12x32x32
                        -> conv 3x3 (24) -> ReLU -> pool -> 24x16x16
    classifier: flatten 6144 -> 256 -> ReLU -> 128 -> ReLU -> num_classes

    (N, 3, 64, 64) -> (N, num_classes).
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        num_classes = as_int(num_classes, "num_classes", "ConvStack", 1)
        in_channels = as_int(in_channels, "in_channels", "ConvStack", 1)
        self.features = nn.Sequential(
            conv_block(in_channels, 12, pool=True),  # 12 x 32 x 32
            conv_block(12, 24, pool=True),  # 24 x 16 x 16
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),  # 24 * 16 * 16 = 6144
            nn.Linear(24 * 16 * 16, 256),
            nn.ReLU(),
            nn.Linear(256, 128),
            nn.ReLU(),
            nn.Linear(128, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def _conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int,
                  padding: int) -> list[nn.Module]:
    # The bias of the conv is left out: BatchNorm subtracts the mean right after, cancelling it.
    return [nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU()]


class ConvBNNet(nn.Module):
    """A deeper net for 1x28x28 images and 10 classes, from conv-BN-ReLU blocks.

    features:   1x28x28 -> 3x3 conv (16) -> 16x28x28 -> 3x3 conv (32) -> pool -> 32x14x14
                -> 3x3 conv (32) -> pool -> 32x7x7 -> 3x3 conv, no padding (32) -> 32x5x5
                -> 1x1 conv (24) -> 24x5x5 -> 1x1 conv (20) -> 20x5x5
    pool:       global average pooling: the mean of each map -> 20x1x1
    classifier: flatten 20 -> Linear(20, 10)

    The 1x1 convolutions mix channels at each pixel and shrink their number; global average
    pooling replaces a large flattened layer, so the head has only 20 * 10 + 10 weights.
    (N, 1, 28, 28) -> (N, 10).
    """

    def __init__(self, num_classes: int = 10):
        super().__init__()
        num_classes = as_int(num_classes, "num_classes", "ConvBNNet", 1)
        self.features = nn.Sequential(
            *_conv_bn_relu(1, 16, 3, padding=1),  # 16 x 28 x 28
            *_conv_bn_relu(16, 32, 3, padding=1),
            nn.MaxPool2d(2),  # 32 x 14 x 14
            *_conv_bn_relu(32, 32, 3, padding=1),
            nn.MaxPool2d(2),  # 32 x 7 x 7
            *_conv_bn_relu(32, 32, 3, padding=0),  # 32 x 5 x 5
            *_conv_bn_relu(32, 24, 1, padding=0),  # 24 x 5 x 5
            *_conv_bn_relu(24, 20, 1, padding=0),  # 20 x 5 x 5
        )
        self.pool = nn.AdaptiveAvgPool2d(1)  # 20 x 1 x 1
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(20, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)))


class SmallClassicNet(nn.Module):
    """The small classic network on 3x32x32 with one output (a binary classifier's logit).

    3x32x32 -> conv 5x5 (5) -> 5x28x28 -> ReLU -> pool -> 5x14x14 (980 units)
            -> conv 5x5 (10) -> 10x10x10 -> ReLU -> pool -> 10x5x5 (250 units)
            -> flatten 250 -> Linear(250, 32) -> ReLU -> Linear(32, 1)

    Channels grow (3, 5, 10) while height and width shrink (32, 14, 5).
    (N, 3, 32, 32) -> (N, 1).
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 5, 5), nn.ReLU(), nn.MaxPool2d(2),  # 5 x 14 x 14
            nn.Conv2d(5, 10, 5), nn.ReLU(), nn.MaxPool2d(2),  # 10 x 5 x 5
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(250, 32), nn.ReLU(), nn.Linear(32, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def conv_blocks_cnn(in_channels: int = 1, size: int = 128, blocks: int = 5,
                    channels: int = 3) -> nn.Sequential:
    """The CNN of the "CNN versus fully connected" comparison: 1x128x128 -> one logit.

    Five blocks Conv2d(3x3, padding 1) + ReLU with 3 channels each, no pooling, then
    Flatten and Linear(3 * 128 * 128 = 49152, 1). Padding 1 keeps 128x128 through every
    block, which is why the flattened layer has 49,152 features. Parameters:

        first conv   (1 * 3 * 3 + 1) * 3 =     30
        4 more convs (3 * 3 * 3 + 1) * 3 = 4 * 84 = 336
        Linear       49152 + 1           = 49,153
        total                              49,519

    against 4,238,337 for ``mlp([16384, 256, 128, 64, 32, 16, 1])`` on the same images.
    (N, in_channels, size, size) -> (N, 1).
    """
    where = "conv_blocks_cnn"
    in_channels = as_int(in_channels, "in_channels", where, 1)
    size = as_int(size, "size", where, 1)
    blocks = as_int(blocks, "blocks", where, 1)
    channels = as_int(channels, "channels", where, 1)
    layers: list[nn.Module] = []
    for i in range(blocks):
        layers += [nn.Conv2d(in_channels if i == 0 else channels, channels, 3, padding=1),
                   nn.ReLU()]
    layers += [nn.Flatten(), nn.Linear(channels * size * size, 1)]
    return nn.Sequential(*layers)


def mlp(sizes: Sequence[int], dropout: float = 0.0) -> nn.Sequential:
    """A fully connected network: Flatten, then Linear layers with ReLU between them.

    ``sizes`` lists the widths from input to output, e.g. ``mlp([16384, 256, 128, 64, 32, 16,
    1])`` (4,238,337 parameters) for 1x128x128 images and one logit. The first Flatten lets it
    take images directly: (N, C, H, W) with C*H*W = sizes[0] -> (N, sizes[-1]).
    """
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence) or len(sizes) < 2:
        raise TypeError(message("mlp", "a list of at least two layer widths", describe(sizes),
                                "e.g. mlp([256, 64, 10]) for 16x16 images and 10 classes."))
    widths = [as_int(s, f"sizes[{i}]", "mlp", 1) for i, s in enumerate(sizes)]
    if not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(message("mlp", "`dropout` (a probability) in [0, 1)", repr(dropout),
                                 "Use 0 for no dropout, or e.g. 0.25."))
    layers: list[nn.Module] = [nn.Flatten()]
    for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(widths) - 2:  # no activation after the last layer: it outputs logits
            layers.append(nn.ReLU())
            if dropout:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)
