"""Tests of cnnlab.train: determinism, learning, history, evaluation and teaching errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from cnnlab.train import History, evaluate, fit, resolve_device


def _blobs(n: int = 200, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """An easy problem: 1x4x4 images whose class is which quadrant is bright."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 4, (n,), generator=g)
    images = 0.3 * torch.rand(n, 1, 4, 4, generator=g)
    for k, (r, c) in enumerate([(0, 0), (0, 2), (2, 0), (2, 2)]):
        images[labels == k, :, r:r + 2, c:c + 2] += 1.0
    return images, labels


def _model(seed: int = 0, outputs: int = 4) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Dropout(0.2),
                         nn.Flatten(), nn.Linear(64, outputs))


def test_fit_is_deterministic_for_a_seed():
    train, test = _blobs(120, 0), _blobs(40, 1)
    runs = [fit(_model(), train, test, epochs=3, lr=1e-2, batch_size=16, seed=1,
                progress=False) for _ in range(2)]
    assert runs[0] == runs[1]
    other = fit(_model(), train, test, epochs=3, lr=1e-2, batch_size=16, seed=2, progress=False)
    assert other.train_loss != runs[0].train_loss  # the seed changes the shuffling


def test_a_float64_model_trains_and_evaluates_on_float32_data():
    train, test = _blobs(120, 0), _blobs(40, 1)
    assert train[0].dtype == torch.float32
    model = _model().double()
    history = fit(model, train, test, epochs=3, lr=1e-2, batch_size=16, seed=1, progress=False)
    assert all(p.dtype == torch.float64 for p in model.parameters())
    assert history.val_acc[-1] > 0.9
    assert evaluate(model, test) == (history.val_loss[-1], history.val_acc[-1])
    float32 = fit(_model(), train, test, epochs=3, lr=1e-2, batch_size=16, seed=1,
                  progress=False)
    assert float32.val_acc[-1] > 0.9  # the same training, in the other precision
    assert float32.train_loss != history.train_loss


def test_fit_leaves_the_global_random_state_alone():
    before = torch.get_rng_state()
    fit(_model(), _blobs(40), epochs=1, lr=1e-2, seed=3, progress=False)
    assert torch.equal(before, torch.get_rng_state())


def test_fit_learns_an_easy_problem_and_records_every_epoch():
    train, test = _blobs(200, 0), TensorDataset(*_blobs(100, 1))
    model = _model()
    loss_before, acc_before = evaluate(model, test)
    history = fit(model, train, test, epochs=6, lr=2e-2, batch_size=20, seed=0, progress=False)
    assert isinstance(history, History) and history.epochs == 6
    assert all(len(v) == 6 for v in (history.train_loss, history.train_acc,
                                     history.val_loss, history.val_acc))
    assert history.val_acc[-1] >= 0.95 > acc_before
    assert history.train_loss[-1] < history.train_loss[0]
    loss_after, acc_after = evaluate(model, test)
    assert loss_after < loss_before
    assert acc_after == pytest.approx(history.val_acc[-1])


def test_fit_without_test_data_leaves_test_lists_empty():
    history = fit(_model(), _blobs(40), epochs=2, lr=1e-2, progress=False)
    assert len(history.train_acc) == 2 and history.val_loss == [] and history.val_acc == []
    assert all(0 <= a <= 1 for a in history.train_acc)


def test_binary_model_with_one_logit():
    images, labels = _blobs(160)
    binary = (labels >= 2).long()  # bright quadrant in the lower half
    history = fit(_model(outputs=1), (images, binary), (images, binary), epochs=5, lr=2e-2,
                  batch_size=16, progress=False)
    assert history.val_acc[-1] >= 0.95
    with pytest.raises(ValueError, match="labels 0 or 1"):
        fit(_model(outputs=1), (images, labels), epochs=1, progress=False)


def test_evaluate_matches_a_hand_computation_and_restores_mode():
    images, labels = _blobs(30)
    model = _model()
    model.train()
    loss, acc = evaluate(model, (images, labels), batch_size=7)
    assert model.training
    model.eval()
    with torch.no_grad():
        logits = model(images)
    torch.testing.assert_close(torch.tensor(loss), nn.functional.cross_entropy(logits, labels))
    assert acc == pytest.approx(float((logits.argmax(1) == labels).float().mean()))


def test_progress_bar_is_shown_finished_or_hidden(capsys):
    fit(_model(), _blobs(20), epochs=2, lr=1e-2, progress=True)
    shown = capsys.readouterr().out
    last = shown.replace("\r", "\n").strip().splitlines()[-1]
    assert last.startswith("training: 100%|") and "2/2" in last  # plain text, stored finished
    assert len(last) <= 100
    fit(_model(), _blobs(20), epochs=2, lr=1e-2, progress=False)
    assert capsys.readouterr() == ("", "")


def test_custom_optimizer_and_sgd():
    images, labels = _blobs(60)
    h1 = fit(_model(), (images, labels), epochs=2, lr=1e-2, optimizer="sgd", progress=False)
    h2 = fit(_model(), (images, labels), epochs=2, lr=1e-2, optimizer=torch.optim.AdamW,
             progress=False)
    assert h1.train_loss != h2.train_loss
    with pytest.raises(ValueError, match="optimizer"):
        fit(_model(), (images, labels), epochs=1, optimizer="rmsprop", progress=False)


def test_devices():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")).type == "cpu"
    with pytest.raises(ValueError, match="cnnlab doctor"):
        resolve_device("gpu")
    with pytest.raises(TypeError, match="cpu"):
        resolve_device(0.5)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_requested_without_a_gpu_explains():
    with pytest.raises(ValueError, match="device='cpu'"):
        fit(_model(), _blobs(10), epochs=1, device="cuda", progress=False)


def test_mps_requested_without_metal_explains():
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        pytest.skip("this machine has MPS")
    with pytest.raises(ValueError, match="mps"):
        evaluate(_model(), _blobs(10), device="mps")


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"epochs": 0}, ValueError, "epochs"),
        ({"epochs": 2.0}, TypeError, "integer 2"),
        ({"lr": 0}, ValueError, "lr"),
        ({"lr": "fast"}, ValueError, "lr"),
        ({"batch_size": 0}, ValueError, "batch_size"),
    ],
)
def test_bad_settings(kwargs, error, words):
    args = {"epochs": 1, "progress": False} | kwargs
    with pytest.raises(error, match=words):
        fit(_model(), _blobs(10), **args)


def test_bad_data_and_models():
    images, labels = _blobs(10)
    with pytest.raises(TypeError, match="Dataset"):
        fit(_model(), images, epochs=1, progress=False)
    with pytest.raises(ValueError, match="as many labels"):
        fit(_model(), (images, labels[:5]), epochs=1, progress=False)
    with pytest.raises(ValueError, match="at least one example"):
        fit(_model(), (images[:0], labels[:0]), epochs=1, progress=False)
    with pytest.raises(TypeError, match="pairs"):
        fit(_model(), TensorDataset(images), epochs=1, progress=False)
    with pytest.raises(TypeError, match="Module instance"):
        fit(nn.Linear, (images, labels), epochs=1, progress=False)


def test_labels_out_of_range_explain_the_last_layer():
    images, labels = _blobs(10)
    with pytest.raises(ValueError, match="one output per class"):
        fit(_model(outputs=3), (images, labels + 1), epochs=1, progress=False)
    with pytest.raises(ValueError, match="integer class label"):
        evaluate(_model(), (images, labels.float()))


@pytest.mark.parametrize("run", ["fit", "evaluate"])
def test_shape_mismatch_keeps_torchs_error_and_adds_a_note(run):
    images, labels = _blobs(10)
    wrong = nn.Sequential(nn.Flatten(), nn.Linear(20, 4))
    with pytest.raises(RuntimeError) as info:
        if run == "fit":
            fit(wrong, (images, labels), epochs=1, progress=False)
        else:
            evaluate(nn.Conv2d(3, 4, 3), (images, labels))
    assert type(info.value) is RuntimeError  # torch's own exception, not a re-raised copy
    notes = info.value.__notes__
    assert len(notes) == 1 and notes[0].startswith(run)
    assert str(tuple(images[:10].shape)) in notes[0]
