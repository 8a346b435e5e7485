"""cnnlab: the helpers that the convolution lessons and labs import.

Names are imported lazily, so ``import cnnlab`` is cheap: torch, torchvision and matplotlib
load only when a function that needs them is first used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # shapes: pure-Python formulas
    "conv_output_size": "shapes",
    "conv_output_shape": "shapes",
    "pool_output_size": "shapes",
    "receptive_field": "shapes",
    "conv2d_params": "shapes",
    "linear_params": "shapes",
    "count_params": "shapes",
    # ops: from-scratch NumPy
    "conv2d": "ops",
    "conv2d_loops": "ops",
    "max_pool2d": "ops",
    "avg_pool2d": "ops",
    # images
    "load_image": "images",
    "list_images": "images",
    "to_nchw": "images",
    "to_hwc": "images",
    # plotting
    "plot_conv": "plotting",
    "plot_convs": "plotting",
    "plot_feature_maps": "plotting",
    "plot_filters": "plotting",
    "plot_conv_grid": "plotting",
    "plot_channel_sum": "plotting",
    "plot_pool_grid": "plotting",
    "plot_history": "plotting",
    "plot_images": "plotting",
    # widgets
    "conv_explorer": "widgets",
    "size_formula": "widgets",
    # data
    "make_shapes": "data",
    "load_digits": "data",
    "load_mnist": "data",
    "load_fashion_mnist": "data",
    "load_cifar10": "data",
    "shift_images": "data",
    "download_dataset": "data",
    "ImageData": "data",
    # models
    "ConvStack": "models",
    "ConvBNNet": "models",
    "SmallClassicNet": "models",
    "conv_blocks_cnn": "models",
    "mlp": "models",
    "conv_block": "models",
    "load_alexnet": "alexnet",
    "download_alexnet": "alexnet",
    "weights_path": "alexnet",
    "layer_table": "alexnet",
    "format_layer_table": "alexnet",
    "RandomWeightsWarning": "alexnet",
    # exercises at the end of each lesson
    "check_answer": "exercises",
    # training
    "fit": "train",
    "evaluate": "train",
    "History": "train",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cnnlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"cnnlab.{module}"), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
