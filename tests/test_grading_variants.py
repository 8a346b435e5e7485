"""Correct answers written the ways good students write them earn full marks.

Each variant is the lab's correct submission (the master's solutions filled into the student
notebook from `cnnlab assign`) with one answer rewritten in another honest style that the
prompt allows: `np.ndindex` loops, `np.argmax` for a window's maximum, `math.floor` in a size
formula, a float32 result, `padding="same"`, a `%%time` cell magic, a temp file and a
`multiprocessing.Pool` next to an answer. All are graded by `cnnlab grade` in the real sandbox
(as root, student code runs as an unprivileged uid), and each must get every point and no cell
error. The attacks that must *not* pay live in ``test_grading_hostile.py``.
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

# (lab, variant name, answers replacing the master's cells that define the same names,
#  cells added after the first code cell)
VARIANTS = [
    ("lab1_convolution", "ndindex_and_floor", [CONV2D_NDINDEX], [IMPORT_MATH]),
    ("lab1_convolution", "float32_under_time_magic", [CORR2D_FLOAT32_TIMED], []),
    ("lab1_convolution", "pool_and_temp_file", [SHAPES_WITH_POOL_AND_TEMP_FILE], []),
    ("lab3_backward", "ndindex_input_gradient", [BACKWARD_INPUT_NDINDEX], []),
    ("lab3_backward", "argmax_pooling", [POOL_BACKWARD_ARGMAX], []),
    ("lab2_build_a_cnn", "padding_same", [BUILD_MODEL_SAME], []),
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


@functools.cache
def _full_marks(lab: str) -> dict[str, float]:
    """{question: its points}, from the master's cases."""
    from cnnlab.grading import master

    full: dict[str, float] = {}
    for case in master.read_cases(hh.LABS / f"{lab}.ipynb"):
        full[case.question] = full.get(case.question, 0.0) + case.points
    return full
