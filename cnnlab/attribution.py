"""What a trained CNN looks at: saliency, occlusion, class activation maps and top patches.

Four ways to ask a trained classifier where its evidence lies (lesson 10):

- :func:`saliency`: how strongly each pixel moves a class score (the input gradient,
  Simonyan, Vedaldi and Zisserman 2014);
- :func:`occlusion`: how much the score drops when a patch of the image is covered
  (Zeiler and Fergus 2014);
- :func:`class_activation_map`: the last feature maps weighted by the class's weights in a
  global-average-pooling head (Zhou et al. 2016);
- :func:`top_patches`: the input patches (each unit's receptive field) that excite one
  channel of a layer most.

The model maps images (N, C, H, W) to logits (N, K); a *score* is one logit, before softmax.
While a function runs, the model is in evaluation mode (BatchNorm uses its running statistics,
so an image's map does not depend on the other images of its batch; dropout is off); every
module's own mode is restored afterwards. Images are converted to the dtype of the model's
parameters. Nothing here changes the parameters or their ``.grad``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab._checks import as_int, as_pair, describe, is_tensor, message

__all__ = ["saliency", "occlusion", "class_activation_map", "top_patches", "TopPatches"]


# --- shared checks ----------------------------------------------------------------------------

def _check_model(model: Any, where: str) -> None:
    if isinstance(model, type) or not isinstance(model, nn.Module):
        raise TypeError(message(where, "a trained torch.nn.Module", describe(model),
                                "Pass the network itself, e.g. saliency(model, images, 3)."))


def _dtype(model: nn.Module) -> torch.dtype:
    """The float dtype of the model's first floating-point parameter (default dtype if none)."""
    return next((p.dtype for p in model.parameters() if p.is_floating_point()),
                torch.get_default_dtype())


def _batch(images: Any, model: nn.Module, where: str, name: str = "images") -> torch.Tensor:
    """A float batch (N, C, H, W) in the model's dtype, detached; teaching errors otherwise."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    if not is_tensor(images):
        raise TypeError(message(where, f"`{name}` as a tensor of shape (N, C, H, W)",
                                describe(images), "e.g. test.images[:8] from cnnlab.load_digits."))
    if not images.is_floating_point():
        raise TypeError(message(where, f"`{name}` as floating-point numbers",
                                f"dtype {images.dtype}",
                                f"Scale to [0, 1] first, e.g. {name}.float() / 255."))
    if images.dim() != 4:
        hint = (f"One image (C, H, W) needs a batch axis: {name}[None] or {name}.unsqueeze(0)."
                if images.dim() == 3 else "A batch of images is 4-D: (N, C, H, W).")
        raise ValueError(message(where, f"`{name}` of shape (N, C, H, W)",
                                 f"shape {tuple(images.shape)} (rank {images.dim()})", hint))
    if 0 in images.shape:
        raise ValueError(message(where, f"at least one image in `{name}`",
                                 f"shape {tuple(images.shape)}", "Check how it was sliced."))
    return images.detach().to(_dtype(model))


def _one_image(image: Any, model: nn.Module, where: str) -> torch.Tensor:
    """One image as a batch of one, (1, C, H, W); accepts (C, H, W) too."""
    if isinstance(image, np.ndarray):
        image = torch.from_numpy(image)
    if is_tensor(image) and image.dim() == 3:
        image = image[None]
    x = _batch(image, model, where, "image")
    if x.shape[0] != 1:
        raise ValueError(message(where, "one image, (C, H, W) or (1, C, H, W)",
                                 f"a batch of shape {tuple(x.shape)}",
                                 "Pick one image first, e.g. images[0]."))
    return x


@contextmanager
def _evaluating(model: nn.Module) -> Iterator[None]:
    """Evaluation mode inside the block; every module's own mode restored after it."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


def _logits(model: nn.Module, x: torch.Tensor, where: str) -> torch.Tensor:
    """model(x), checked to be (N, K) logits."""
    try:
        out = model(x)
    except RuntimeError as error:
        error.add_note(f"{where}: the model failed on images of shape {tuple(x.shape)}; check "
                       "that they have the channels and size the model was trained on.")
        raise
    if out.dim() != 2 or out.shape[0] != x.shape[0]:
        raise ValueError(message(where, "a model that outputs logits of shape (N, classes)",
                                 f"output of shape {tuple(out.shape)} for {x.shape[0]} image(s)",
                                 "End the model with nn.Flatten() and nn.Linear(..., classes)."))
    return out


def _targets(target: Any, n: int, classes: int, where: str) -> torch.Tensor:
    """The class of each image as int64 (n,): one int for all, or one per image."""
    if is_tensor(target) or isinstance(target, (list, tuple, np.ndarray)):
        values = torch.as_tensor(target)
        if values.dim() == 0:
            values = values.reshape(1)
        if values.is_floating_point() or values.dtype == torch.bool or values.dim() != 1:
            raise TypeError(message(where, "`target` as class numbers (ints)", describe(target),
                                    "e.g. target=3, or the labels test.labels[:8]."))
        if len(values) not in (1, n):
            raise ValueError(message(where, f"one target class, or one per image ({n})",
                                     f"{len(values)} targets", "Pass labels[:n] with images[:n]."))
        values = values.long().expand(n) if len(values) == 1 else values.long()
    elif isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        values = torch.full((n,), int(target), dtype=torch.int64)
    else:
        raise TypeError(message(where, "`target` as a class number (int)", describe(target),
                                "e.g. target=3 for the logit of class 3."))
    bad = values[(values < 0) | (values >= classes)]
    if len(bad):
        raise ValueError(message(where, f"target classes from 0 to {classes - 1} (the model has "
                                 f"{classes} outputs)", f"class {int(bad[0])}",
                                 "A target names the logit to explain: a class number."))
    return values


# --- saliency ---------------------------------------------------------------------------------

def saliency(model: nn.Module, images: torch.Tensor, target: Any) -> torch.Tensor:
    """Saliency maps: ``|d score / d pixel|``, the largest over the colour channels.

    For image ``n`` the score is the logit ``model(images)[n, target[n]]`` (before softmax).
    Its gradient with respect to the input has the images' shape (N, C, H, W); the saliency
    map keeps, for every pixel, the largest absolute value over the C channels:

        saliency[n, i, j] = max over c of |d model(images)[n, target[n]] / d images[n, c, i, j]|

    ``images``: (N, C, H, W) floats (one image needs a batch axis: ``image[None]``).
    ``target``: one class for every image (an int) or one per image ((N,) ints, e.g. labels).
    Returns (N, H, W), >= 0, in the model's dtype. The model runs in evaluation mode (BatchNorm
    with its running statistics, so each map depends on its own image only; dropout off) and
    each module's mode is restored afterwards; the gradient is taken with
    ``torch.autograd.grad`` with respect to the images only, so the parameters' ``.grad`` stay
    as they were. The values are autograd's input gradient of ``model(images)[n, target[n]]``
    with the model in eval mode, exactly: the same as ``x.requires_grad_(True)``,
    ``model.eval()(x)[n, target[n]].backward()`` and ``x.grad.abs().amax(dim=1)``.
    """
    where = "saliency"
    _check_model(model, where)
    x = _batch(images, model, where).requires_grad_(True)
    with _evaluating(model), torch.enable_grad():
        logits = _logits(model, x, where)
        chosen = _targets(target, len(x), logits.shape[1], where)
        score = logits.gather(1, chosen[:, None]).sum()  # images are independent in eval mode
        (gradient,) = torch.autograd.grad(score, x)
    return gradient.abs().amax(dim=1)


# --- occlusion --------------------------------------------------------------------------------

def occlusion(model: nn.Module, image: torch.Tensor, target: int, patch: Any = 4,
              stride: Any = 1, fill: float = 0.0) -> torch.Tensor:
    """Occlusion map: how much the score of ``target`` drops when a patch is covered.

    A ``patch`` x ``patch`` square (an int or an (h, w) pair) filled with ``fill`` slides over
    the image with ``stride``, as a convolution window does (no padding). Entry (i, j) is

        score(image) - score(image with rows i*s .. i*s+p-1, columns j*s .. j*s+p-1 = fill)

    for the logit ``score = model(x)[0, target]``: positive where covering hurts the class
    (evidence for it), negative where covering helps. ``fill=0`` is the digits' black
    background; Zeiler and Fergus used grey (a dataset's mean).

    ``image``: (C, H, W) or (1, C, H, W). Returns (rows, cols) with rows = (H - p_h) // s_h + 1
    and cols = (W - p_w) // s_w + 1 (``cnnlab.conv_output_size``). The covered copies run in
    batches of 256, in evaluation mode (modes restored afterwards), without gradients.
    """
    where = "occlusion"
    _check_model(model, where)
    x = _one_image(image, model, where)
    (ph, pw), (sh, sw) = as_pair(patch, "patch", where, 1), as_pair(stride, "stride", where, 1)
    height, width = x.shape[2:]
    if ph > height or pw > width:
        raise ValueError(message(where, f"a patch that fits in the {height}x{width} image",
                                 f"patch {ph}x{pw}", "Use a smaller patch, e.g. patch=4."))
    if isinstance(fill, bool) or not isinstance(fill, (int, float)):
        raise TypeError(message(where, "`fill` as one number", describe(fill),
                                "e.g. fill=0.0 (black) or fill=float(images.mean())."))
    rows, cols = (height - ph) // sh + 1, (width - pw) // sw + 1
    with _evaluating(model), torch.no_grad():
        logits = _logits(model, x, where)
        t = int(_targets(target, 1, logits.shape[1], where)[0])
        corners = [(i * sh, j * sw) for i in range(rows) for j in range(cols)]
        scores = []
        for start in range(0, len(corners), 256):
            chunk = corners[start:start + 256]
            covered = x.repeat(len(chunk), 1, 1, 1)
            for n, (top, left) in enumerate(chunk):
                covered[n, :, top:top + ph, left:left + pw] = fill
            scores.append(_logits(model, covered, where)[:, t])
    return (logits[0, t] - torch.cat(scores)).reshape(rows, cols)


# --- class activation maps --------------------------------------------------------------------

def _in_order(module: nn.Module) -> list[nn.Module]:
    """The model's layers in order, with nn.Sequential containers opened up."""
    layers: list[nn.Module] = []
    for child in module.children():
        layers += _in_order(child) if isinstance(child, nn.Sequential) else [child]
    return layers


def _gap_head(model: nn.Module, where: str) -> tuple[nn.Sequential, nn.Linear]:
    """(body, linear) of a model that ends in AdaptiveAvgPool2d(1) [-> Flatten] -> Linear."""
    layers = _in_order(model) if len(list(model.children())) else [model]
    skip = (nn.Flatten, nn.Dropout, nn.Identity)
    i = len(layers) - 1
    linear = layers[i] if layers and isinstance(layers[i], nn.Linear) else None
    i -= 1
    while i >= 0 and isinstance(layers[i], skip):
        i -= 1
    pool = layers[i] if i >= 0 else None
    size = getattr(pool, "output_size", None)
    if linear is None or not isinstance(pool, nn.AdaptiveAvgPool2d) or size not in (1, (1, 1)):
        tail = " -> ".join(type(layer).__name__ for layer in layers[-3:]) or type(model).__name__
        raise ValueError(message(
            where, "a model whose last conv maps feed a global-average-pooling head "
            "(AdaptiveAvgPool2d(1) -> Flatten -> Linear)", f"a model ending in {tail}",
            "CAM weights the last maps by the class's Linear weights, one per channel, which "
            "needs the maps averaged before the Linear layer; a Flatten head has other weights "
            "at every position, global max pooling keeps one position per map (lesson 09 "
            "builds the GAP head)."))
    return nn.Sequential(*layers[:i]), linear


def class_activation_map(model: nn.Module, image: torch.Tensor, target: int,
                         upsample: bool = True) -> torch.Tensor:
    """Class activation map (CAM) of ``target`` for a model with a global-average-pooling head.

    The model must end in ``AdaptiveAvgPool2d(1)`` -> ``Flatten`` -> ``Linear(C, K)`` (nested
    ``nn.Sequential`` containers are fine). With the last feature maps ``f`` (C, h, w) and that
    layer's weight ``w`` (K, C) and bias ``b`` (K,):

        cam[y, x] = sum over c of w[target, c] * f[c, y, x]

    Because the head averages before it multiplies, the map explains the logit exactly:
    ``cam.mean() + b[target] == model(image)[0, target]`` (at the maps' size, ``upsample=False``).

    ``image``: (C, H, W) or (1, C, H, W). Returns (H, W), the map resized to the image with
    bilinear interpolation, or (h, w), the maps' own size, with ``upsample=False``. Runs in
    evaluation mode (modes restored afterwards), without gradients.
    """
    where = "class_activation_map"
    _check_model(model, where)
    body, linear = _gap_head(model, where)
    x = _one_image(image, model, where)
    with _evaluating(model), torch.no_grad():
        logits = _logits(model, x, where)
        t = int(_targets(target, 1, logits.shape[1], where)[0])
        maps = body(x)
        if maps.dim() != 4 or maps.shape[1] != linear.in_features:
            raise ValueError(message(where, f"last feature maps (1, {linear.in_features}, h, w) "
                                     "before the pooling", f"shape {tuple(maps.shape)}",
                                     "The layers before the pool should be convolutions."))
        if not torch.allclose(linear(maps.mean(dim=(2, 3))), logits, rtol=1e-4, atol=1e-5):
            raise ValueError(message(where, "a model whose forward applies its layers in the "
                                     "order they are listed", "logits that differ from "
                                     "Linear(mean of the last maps)",
                                     "Write the model as an nn.Sequential."))
        cam = torch.einsum("c,chw->hw", linear.weight[t], maps[0])
        if upsample:
            cam = F.interpolate(cam[None, None], size=tuple(x.shape[2:]), mode="bilinear",
                                align_corners=False)[0, 0]
    return cam


# --- the patches that excite a channel --------------------------------------------------------

class TopPatches(NamedTuple):
    """What :func:`top_patches` returns; k rows, the strongest activation first.

    ``patches`` (k, C, R_h, R_w): the input under each unit's receptive field (zeros where the
    field passes the border, as the convolutions' zero padding); ``values`` (k,): the
    activations; ``index`` (k,): which image; ``rows``, ``cols`` (k,): the field's top-left
    corner in the image (negative when it starts past the border); ``positions`` (k, 2): the
    unit's (y, x) in the layer's output.
    """

    patches: torch.Tensor
    values: torch.Tensor
    index: torch.Tensor
    rows: torch.Tensor
    cols: torch.Tensor
    positions: torch.Tensor


POINTWISE = (nn.BatchNorm2d, nn.Identity, nn.Dropout, nn.Dropout2d, nn.ReLU, nn.ReLU6,
             nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Mish,
             nn.PReLU, nn.Softplus)


def _geometry(model: nn.Module, layer: nn.Module, size: tuple[int, int],
              where: str) -> list[tuple[int, int, int, int]]:
    """Per axis (H, W): (field, jump, top-left of the first unit's field, output size)."""
    layers = _in_order(model)
    if not any(m is layer for m in layers):
        raise ValueError(message(where, "`layer` as one of the model's layers, e.g. model[6]",
                                 f"{layer}, which is not a layer of the model",
                                 "Index the model itself: top_patches(model, model[6], ...)."))
    geometry = [[1, 1, 0, size[0]], [1, 1, 0, size[1]]]
    for module in layers:
        if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            pairs = [module.kernel_size, module.stride, getattr(module, "dilation", 1)]
            kernel, stride, dilation = ((v, v) if isinstance(v, int) else tuple(v) for v in pairs)
            padding = module.padding
            if padding == "same":
                padding = tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation, strict=True))
            elif padding == "valid":
                padding = (0, 0)
            padding = (padding, padding) if isinstance(padding, int) else tuple(padding)
            for axis in (0, 1):
                field, jump, top, n = geometry[axis]
                k, s, p, d = kernel[axis], stride[axis], padding[axis], dilation[axis]
                geometry[axis] = [field + (k - 1) * d * jump, jump * s, top - p * jump,
                                  (n + 2 * p - d * (k - 1) - 1) // s + 1]
        elif not isinstance(module, POINTWISE):
            raise ValueError(message(where, "only convolutions, pooling, BatchNorm and "
                                     "activations before `layer`", f"{module}",
                                     "Pick a layer before the head (Flatten, global pooling)."))
        if module is layer:
            break
    return [(field, jump, top, n) for field, jump, top, n in geometry]


def top_patches(model: nn.Module, layer: nn.Module, images: torch.Tensor, channel: int,
                k: int = 8) -> TopPatches:
    """The ``k`` input patches that excite channel ``channel`` of ``layer`` most.

    ``layer`` is one of the model's layers (e.g. ``model[6]``, a ReLU after the second conv);
    only convolutions, pooling, BatchNorm and activations may come before it. Every unit of
    its output (N, C', h, w) sees one patch of the input, its receptive field, of R_h x R_w
    pixels (``cnnlab.receptive_field``). Over all images and positions, the k units of
    ``channel`` with the largest activations are chosen (ties: the earlier image and position
    first), and the patches they see are cut out of ``images``.

    ``images``: (N, C, H, W). Returns :class:`TopPatches` (``patches`` (k, C, R_h, R_w),
    ``values``, ``index``, ``rows``, ``cols``, ``positions``). Runs in evaluation mode (modes
    restored afterwards), without gradients.
    """
    where = "top_patches"
    _check_model(model, where)
    if not isinstance(layer, nn.Module):
        raise TypeError(message(where, "`layer` as a module of the model, e.g. model[6]",
                                describe(layer), "Pass the layer itself, not its index."))
    x = _batch(images, model, where)
    geometry = _geometry(model, layer, tuple(x.shape[2:]), where)
    (field_h, jump_h, top_h, size_h), (field_w, jump_w, top_w, size_w) = geometry
    captured: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda _m, _i, out: captured.append(out))
    try:
        with _evaluating(model), torch.no_grad():
            model(x)
    finally:
        handle.remove()
    acts = captured[0]
    channels = acts.shape[1]
    if isinstance(channel, bool) or not isinstance(channel, (int, np.integer)):
        raise TypeError(message(where, "`channel` as a channel number (int)", describe(channel)))
    if not 0 <= channel < channels:
        raise ValueError(message(where, f"`channel` from 0 to {channels - 1} (the layer has "
                                 f"{channels} channels)", repr(int(channel))))
    n, h, w = acts.shape[0], acts.shape[2], acts.shape[3]
    if (h, w) != (size_h, size_w):
        raise ValueError(message(where, f"`layer` output of {size_h}x{size_w} positions, as "
                                 "the layers listed before it predict", f"{h}x{w}",
                                 "The model's forward must apply its layers in the order "
                                 "they are listed (write it as an nn.Sequential)."))
    k = as_int(k, "k", where, 1)
    if k > n * h * w:
        raise ValueError(message(where, f"`k` at most {n * h * w} ({n} images x {h}x{w} "
                                 "positions)", repr(k), "Ask for fewer patches."))
    values, order = torch.sort(acts[:, channel].reshape(-1), descending=True, stable=True)
    values, order = values[:k], order[:k]
    index, rest = order // (h * w), order % (h * w)
    unit_y, unit_x = rest // w, rest % w
    rows, cols = top_h + unit_y * jump_h, top_w + unit_x * jump_w
    pad = max(field_h, field_w)
    padded = F.pad(x, (pad, pad, pad, pad))
    patches = torch.stack([padded[i, :, r + pad:r + pad + field_h, c + pad:c + pad + field_w]
                           for i, r, c in zip(index.tolist(), rows.tolist(), cols.tolist(),
                                              strict=True)])
    positions = torch.stack([unit_y, unit_x], dim=1)
    return TopPatches(patches, values, index, rows, cols, positions)
