"""Correct answers written the ways good students write them earn full marks.

Each variant is the lab's correct submission (the master's solutions filled into the student
notebook from `cnnlab assign`) with one answer rewritten in another honest style that the
prompt allows: `np.ndindex` loops, `np.argmax` for a window's maximum, `math.floor` in a size
formula, a float32 result, `padding="same"`, a `%%time` cell magic, a temp file and a
`multiprocessing.Pool` next to an answer, lab 4's blocks with named layers or `torch.relu`.
All are graded by `cnnlab grade` in the real sandbox (as root, student code runs as an
unprivileged uid), and each must get every point and no cell error. Lab 4's typical mistakes
(the ReLU after the sum of lesson 09's block, a projection of `x`, ReLU for ReLU6, the logit's
saliency, training mode) must each lose points in their own question and nowhere else. The
attacks that must *not* pay live in ``test_grading_hostile.py``.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import hostile_helpers as hh
import pytest
from assigned import assigned_dist

CONV2D_NDINDEX = '''def conv2d_loops(x, weight, bias=None, stride=1, padding=0):
    """np.ndindex over (o, i, j), math.floor for the output size."""
    x = np.pad(np.asarray(x, dtype=float), ((0, 0), (padding, padding), (padding, padding)))
    weight = np.asarray(weight, dtype=float)
    n_out, _, kh, kw = weight.shape
    h_out = math.floor((x.shape[1] - kh) / stride) + 1
    w_out = math.floor((x.shape[2] - kw) / stride) + 1
    out = np.zeros((n_out, h_out, w_out))
    for o, i, j in np.ndindex(n_out, h_out, w_out):
        window = x[:, i * stride:i * stride + kh, j * stride:j * stride + kw]
        out[o, i, j] = (window * weight[o]).sum() + (0.0 if bias is None else bias[o])
    return out
'''

CORR2D_FLOAT32_TIMED = '''%%time
def corr2d(image, kernel, dilation=1):
    """float32 throughout, as a student might choose for speed; index arithmetic per tap."""
    image = np.asarray(image, dtype=np.float32)
    kernel = np.asarray(kernel, dtype=np.float32)
    kh, kw = kernel.shape
    out = np.zeros((image.shape[0] - dilation * (kh - 1), image.shape[1] - dilation * (kw - 1)),
                   dtype=np.float32)
    for i, j in np.ndindex(out.shape):
        total = np.float32(0)
        for a, b in np.ndindex(kh, kw):
            total += kernel[a, b] * image[i + dilation * a, j + dilation * b]
        out[i, j] = total
    return out
'''

SHAPES_WITH_POOL_AND_TEMP_FILE = '''import multiprocessing
import tempfile

with multiprocessing.Pool(2) as pool:  # a student checking sizes in parallel
    sizes = pool.map(abs, [58, 42, 64, 48, 19, 6])
with tempfile.TemporaryDirectory() as folder, open(folder + "/notes.txt", "w") as notes:
    notes.write("shapes worked out by hand")
shape_a = (8, 9, sizes[0], sizes[1])
shape_b = (8, 9, sizes[2], sizes[3])
shape_c = (1, 6, sizes[4], sizes[4])
shape_d = (1, 6, sizes[5], sizes[5])
'''

BACKWARD_INPUT_NDINDEX = '''def conv_backward_input(dout, x, weight, stride=1, padding=0):
    dout = np.asarray(dout, dtype=float)
    weight = np.asarray(weight, dtype=float)
    channels, height, width = np.shape(x)
    kh, kw = weight.shape[2:]
    dx = np.zeros((channels, height + 2 * padding, width + 2 * padding))
    for o, i, j in np.ndindex(dout.shape):
        dx[:, i * stride:i * stride + kh, j * stride:j * stride + kw] += dout[o, i, j] * weight[o]
    return dx[:, padding:padding + height, padding:padding + width]
'''

POOL_BACKWARD_ARGMAX = '''def max_pool_backward(dout, x, k, stride=None):
    """np.argmax finds the first maximum of each window, as the prompt allows."""
    stride = k if stride is None else stride
    x = np.asarray(x, dtype=float)
    dout = np.asarray(dout, dtype=float)
    dx = np.zeros_like(x)
    for c, i, j in np.ndindex(dout.shape):
        window = x[c, i * stride:i * stride + k, j * stride:j * stride + k]
        r, s = np.unravel_index(np.argmax(window), window.shape)
        dx[c, i * stride + r, j * stride + s] += dout[c, i, j]
    return dx
'''

BUILD_MODEL_SAME = '''def build_model():
    """padding="same" is padding 1 for a 3x3 kernel: the same network."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, padding="same"), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 12, 3, padding="same"), nn.ReLU(), nn.MaxPool2d(kernel_size=2),
        nn.Flatten(), nn.Linear(108, 10),
    )
'''

IMPORT_MATH = "import math\n"

PREACT_TORCH_RELU = '''class PreActBlock(nn.Module):
    """torch.relu, an nn.Identity shortcut and an if in forward: the same computation."""

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride,
                               padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.same = stride == 1 and in_channels == out_channels
        self.shortcut = nn.Identity() if self.same else nn.Conv2d(
            in_channels, out_channels, kernel_size=1, stride=stride, bias=False)

    def forward(self, x):
        h = torch.relu(self.bn1(x))
        main = self.conv2(torch.relu(self.bn2(self.conv1(h))))
        return main + (x if self.same else self.shortcut(h))
'''

INVERTED_NAMED_LAYERS = '''class InvertedResidual(nn.Module):
    """Named layers and F.relu6 instead of one nn.Sequential."""

    def __init__(self, in_channels, out_channels, stride=1, expansion=6):
        super().__init__()
        hidden = expansion * in_channels
        self.expand = nn.Conv2d(in_channels, hidden, 1, bias=False)
        self.bn_expand = nn.BatchNorm2d(hidden)
        self.depthwise = nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False)
        self.bn_depthwise = nn.BatchNorm2d(hidden)
        self.project = nn.Conv2d(hidden, out_channels, 1, bias=False)
        self.bn_project = nn.BatchNorm2d(out_channels)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x):
        out = F.relu6(self.bn_expand(self.expand(x)))
        out = F.relu6(self.bn_depthwise(self.depthwise(out)))
        out = self.bn_project(self.project(out))
        if self.residual:
            out = out + x
        return out
'''

SALIENCY_AUTOGRAD_GRAD = '''def saliency(model, image, target):
    """torch.autograd.grad, and a NumPy array back."""
    model.eval()
    x = image.clone().detach().requires_grad_()
    score = torch.log_softmax(model(x.unsqueeze(0)), dim=1)[0, target]
    (grad,) = torch.autograd.grad(score, x)
    return grad.abs().max(dim=0).values.numpy()
'''

OCCLUSION_TWO_PASSES = '''def occlusion_drop(model, image, target, top, left, size):
    """Two forward passes and .item()."""
    model.eval()
    covered = image.clone()
    covered[..., top:top + size, left:left + size] = 0.0
    with torch.no_grad():
        before = F.log_softmax(model(image[None]), dim=1)[0, target]
        after = F.log_softmax(model(covered[None]), dim=1)[0, target]
    return (before - after).item()
'''

# mistakes a student makes on lab 4; each must lose points in its own question, and only there
MISTAKES = [
    ("post_activation_sum", "q1", "return self.conv2(F.relu(self.bn2(self.conv1(h)))) + shortcut",
     "return F.relu(self.conv2(F.relu(self.bn2(self.conv1(h)))) + shortcut)"),
    ("projection_of_x", "q1", "self.projection(h)", "self.projection(x)"),
    ("relu_for_relu6", "q2", "nn.ReLU6()", "nn.ReLU()"),
    ("saliency_of_the_logit", "q4", "log_probs = F.log_softmax(model(x[None]), dim=1)",
     "log_probs = model(x[None])"),
    ("saliency_in_training_mode", "q4", "    model.eval()\n    x = image", "    x = image"),
]

# (lab, variant name, answers replacing the master's cells that define the same names,
#  cells added after the first code cell)
VARIANTS = [
    ("lab1_convolution", "ndindex_and_floor", [CONV2D_NDINDEX], [IMPORT_MATH]),
    ("lab1_convolution", "float32_under_time_magic", [CORR2D_FLOAT32_TIMED], []),
    ("lab1_convolution", "pool_and_temp_file", [SHAPES_WITH_POOL_AND_TEMP_FILE], []),
    ("lab3_backward", "ndindex_input_gradient", [BACKWARD_INPUT_NDINDEX], []),
    ("lab3_backward", "argmax_pooling", [POOL_BACKWARD_ARGMAX], []),
    ("lab2_build_a_cnn", "padding_same", [BUILD_MODEL_SAME], []),
    ("lab4_modern_blocks", "torch_relu_and_identity", [PREACT_TORCH_RELU], []),
    ("lab4_modern_blocks", "named_layers_relu6",
     [INVERTED_NAMED_LAYERS, SALIENCY_AUTOGRAD_GRAD, OCCLUSION_TWO_PASSES], []),
]
LABS = sorted({lab for lab, *_ in VARIANTS})


def _replace(solutions: list[str], answers: list[str]) -> list[str]:
    """The master's answer cells with each given answer in place of the one defining its names."""
    result = list(solutions)
    for answer in answers:
        names = hh.bound_names(answer)
        index = next(i for i, s in enumerate(result) if hh.bound_names(s) & names)
        result[index] = answer
    return result


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict[str, dict[str, dict[str, str]]]:
    """{lab: {variant: CSV row}}: each lab's variants graded in one `cnnlab grade` run."""
    hh.require_bwrap()
    work = tmp_path_factory.mktemp("variants")
    env = {**os.environ, "HOME": str(work)}
    rows = {}
    dist = assigned_dist(tmp_path_factory)
    for lab_name in LABS:
        lab = hh.read_lab(lab_name, dist)
        files = []
        for name, answers, extra in [(v, a, e) for lab_, v, a, e in VARIANTS if lab_ == lab_name]:
            notebook = hh.fill(lab.student, _replace(lab.solutions, answers))
            notebook = hh.add_cells(notebook, extra, at_start=True) if extra else notebook
            files.append(str(hh.write(work / f"{name}.ipynb", notebook)))
        for name, _, old, new in MISTAKES if lab_name == "lab4_modern_blocks" else []:
            changed = [s.replace(old, new) for s in lab.solutions]
            assert changed != lab.solutions, f"{name}: the master no longer has {old!r}"
            files.append(str(hh.write(work / f"{name}.ipynb", hh.fill(lab.student, changed))))
        run = hh.grade(files, work / f"{lab_name}.csv", work, env, lab_name, timeout=120,
                       extra=["--dist", str(dist)])
        assert run.status == 0, run.stdout[-2000:] + run.stderr[-2000:]
        rows[lab_name] = {Path(f).stem: hh.find_row(run.rows, f) for f in files}
    return rows


@pytest.mark.parametrize("lab, variant", [(lab, name) for lab, name, *_ in VARIANTS])
def test_honest_variant_scores_full_marks(graded, lab, variant):
    row = graded[lab][variant]
    assert row is not None, f"no CSV row for {variant}"
    assert row["status"] == "ok", row
    full = _full_marks(lab)
    got = {q: float(row[q]) for q in full}
    assert got == full, f"{variant} lost points: {got} of {full}; {row.get('reason')}"


@pytest.mark.parametrize("variant, question", [(name, q) for name, q, *_ in MISTAKES])
def test_a_mistake_loses_points_in_its_question_only(graded, variant, question):
    row = graded["lab4_modern_blocks"][variant]
    assert row is not None and row["status"] == "ok", row
    full = _full_marks("lab4_modern_blocks")
    lost = {q for q in full if float(row[q]) < full[q]}
    assert lost == {question}, f"{variant}: lost points in {lost}; {row.get('reason')}"


@functools.cache
def _full_marks(lab: str) -> dict[str, float]:
    """{question: its points}, from the master's cases."""
    from cnnlab.grading import master

    full: dict[str, float] = {}
    for case in master.read_cases(hh.LABS / f"{lab}.ipynb"):
        full[case.question] = full.get(case.question, 0.0) + case.points
    return full
