"""breaching as the PyTorch anchor for gradient inversion (converters.torch_reference.
breaching_anchor): its model is the same network as ours and its target is our shared gradient.

Tolerances: the gradient breaching's reconstructed model computes at the true batch against the
gradient our TF client shared, max |diff| / max |shared| per tensor <= 1e-4 (float32 TF vs
PyTorch on resnet20_cifar; measured 4e-6 in eval mode, 3e-5 in train mode). The short
attack run checks the plumbing only (shapes, box, labels); reconstruction quality belongs to
benchmarks/.
"""

import converters  # noqa: F401  (before torch: it blocks the triton import)

# isort: split
import numpy as np
import pytest
import torch

import model_zoo
from converters import onnx_to_tf
from converters.torch_reference import breaching_anchor as anchor
from tf_impl.gradient_inversion import client_gradient

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def case():
    path = model_zoo.load("resnet20_cifar")
    model = onnx_to_tf.load(path)
    x, y = model_zoo.data.cifar10("test", n=2)
    mean, std = model.contract.preprocessing
    return path, model, x, y, mean, std


def breaching_gradient(path, shared, x, y, mean, std):
    """The gradient of breaching's own reconstruction model (built from our payload) at the
    true batch, and the target it was given."""
    breaching = anchor._breaching()
    module = anchor.breaching_module(path)
    server, user = anchor.payload(module, path, shared, y, mean=mean, std=std,
                                  image_shape=x.shape[1:], num_classes=10)
    attacker = breaching.attacks.prepare_attack(
        module, torch.nn.CrossEntropyLoss(), anchor.attack_config("invertinggradients", 1),
        {"dtype": torch.float, "device": torch.device("cpu")})
    rec_models, labels, _ = attacker.prepare_attack(server, user)
    rec = rec_models[0]
    loss = torch.nn.CrossEntropyLoss()(rec(torch.as_tensor(x)), labels)
    grads = torch.autograd.grad(loss, list(rec.parameters()))
    return grads, user[0]["gradients"], rec.training


@pytest.mark.parametrize("bn_mode", ["eval", "train"])
def test_breaching_sees_our_shared_gradient(case, bn_mode):
    path, model, x, y, mean, std = case
    shared = client_gradient(model, x, y, bn_mode=bn_mode)
    got, target, training = breaching_gradient(path, shared, x, y, mean, std)
    assert training == (bn_mode == "train")
    assert len(got) == len(target) == len(shared.grads)
    for g, t in zip(got, target):
        t = t.numpy()
        rel = np.abs(g.detach().numpy() - t).max() / max(np.abs(t).max(), 1e-12)
        assert rel <= 1e-4, (bn_mode, t.shape, rel)


def test_a_short_breaching_run(case):
    path, model, x, y, mean, std = case
    shared = client_gradient(model, x, y)
    run = anchor.reconstruct(path, shared, y, attack="invertinggradients", iterations=3,
                             mean=mean, std=std)
    assert run.images.shape == x.shape and np.isfinite(run.images).all()
    assert run.images.min() >= 0 and run.images.max() <= 1
    np.testing.assert_array_equal(run.labels, y)
    assert run.iterations == 3 and run.seconds > 0


def test_breaching_config_and_bad_input(case):
    path, model, x, y, mean, std = case
    cfg = anchor.attack_config("seethroughgradients")
    assert cfg.optim.max_iterations == 20000  # breaching's own budget, read from the package
    with pytest.raises(ValueError, match="attack must be one of"):
        anchor.attack_config("dlg-ish")
    shared = client_gradient(model, x, y, reduction="sum")
    with pytest.raises(ValueError, match="reduction='mean'"):
        anchor.payload(anchor.breaching_module(path), path, shared, y, mean=mean, std=std,
                       image_shape=x.shape[1:], num_classes=10)


# -- label strategies -----------------------------------------------------------------------------
def _last_layer(shared):
    return shared.grads["linear.weight"], shared.grads["linear.bias"]


def test_breachings_label_strategies_run_on_our_gradient(case):
    path, model, x, y, mean, std = case
    x4, y4 = model_zoo.data.cifar10("test", n=4)
    shared = client_gradient(model, x4, y4)
    module = anchor.breaching_module(path).eval()
    for strategy in anchor.LABEL_STRATEGIES:
        labels = anchor.restore_labels(strategy, *_last_layer(shared), 4, module=module,
                                       image_shape=(3, 32, 32))
        assert labels.shape == (4,) and labels.dtype == np.int64, strategy
        assert labels.min() >= 0 and labels.max() < 10, strategy
    # one sample that leaves a trace (the trained model gives some images p(label) = 1 in
    # float32, a zero gradient): the label's row is the only negative one, all find it
    for i in range(4):
        shared1 = client_gradient(model, x4[i:i + 1], y4[i:i + 1])
        if np.flatnonzero(_last_layer(shared1)[1] < 0).tolist() == [y4[i]]:
            break
    else:
        pytest.fail("no test image of the four leaves a trace")
    for strategy in ("bias-corrected", "wainakh-simple", "analytic", "iDLG", "yin"):
        got = anchor.restore_labels(strategy, *_last_layer(shared1), 1).tolist()
        assert got == [y4[i]], strategy
    with pytest.raises(ValueError, match="module="):
        anchor.restore_labels("wainakh-whitebox", *_last_layer(shared), 4)
    with pytest.raises(ValueError, match="strategy must be one of"):
        anchor.restore_labels("llg", *_last_layer(shared), 4)


def test_whitebox_transcription_keeps_breachings_recovery_stages(monkeypatch):
    """breaching's wainakh-whitebox cannot run (see the adapter); its recovery stages are the
    ones wainakh-simple runs in breaching. With wainakh-simple's impact and no offset, the
    transcription must return what breaching's wainakh-simple returns."""
    rng = np.random.default_rng(0)
    for trial in range(6):
        k, n = 10, int(rng.integers(2, 9))
        w = rng.standard_normal((k, 16)).astype(np.float32)
        b = rng.standard_normal(k).astype(np.float32)
        g = torch.as_tensor(w).sum(dim=1)
        m = torch.where(g < 0, g, torch.zeros_like(g)).sum() * (1 + 1 / k) / n
        monkeypatch.setattr(anchor, "_whitebox_estimates",
                            lambda *a, m=m, k=k: (m, torch.zeros(k)))
        ours = anchor._wainakh_whitebox(torch.as_tensor(w), n, None, (3, 32, 32), 0)
        theirs = anchor.restore_labels("wainakh-simple", w, b, n)
        assert ours.tolist() == theirs.tolist(), trial


def test_breachings_own_whitebox_still_fails_on_this_torch(case):
    """The reason for the transcription: if a breaching release mends it, use its own."""
    path = case[0]
    breaching = anchor._breaching()
    module = anchor.breaching_module(path).eval()
    cfg = anchor.attack_config("invertinggradients")
    cfg.label_strategy = "wainakh-whitebox"
    attacker = breaching.attacks.prepare_attack(
        module, anchor._class_index_loss, cfg,
        {"dtype": torch.float, "device": torch.device("cpu")})
    attacker.data_shape = (3, 32, 32)
    w = torch.zeros(10, 64)
    with pytest.raises(RuntimeError, match="not have been used in the graph"):
        attacker._recover_label_information(
            [{"gradients": [w, torch.zeros(10)], "metadata": {"num_data_points": 2}}], None,
            [module])
