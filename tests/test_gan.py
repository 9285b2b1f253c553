"""GAN and DCGAN: each half of a training step moves only its own player, the shapes, the recipes end to
end on the packaged sample (mode-collapse signal, predict, exact resume)."""

import copy
import json

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from deepzoo.errors import DeepzooError
from deepzoo.models.gan import GAN, train_step
from deepzoo.train.run import predict, resume, train

quiet = dict(progress=False, log=lambda m: None)


def _sgd(model, lr_g, lr_d):
    return torch.optim.SGD([{"params": model.generator.parameters(), "lr": lr_g},
                            {"params": model.discriminator.parameters(), "lr": lr_d}])


@pytest.fixture
def float64_default():
    """Models and noise built in float64 (GAN.noise draws in the default dtype)."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


@pytest.mark.parametrize("kind", ["mlp", "dcgan"])
def test_each_player_moves_only_by_its_own_loss(kind, float64_default):
    # Float64: train_step's update (SGD's add_(g, alpha=-lr), gradients of the whole batch graph) is
    # compared with q - lr * g from a separate autograd pass; the two may round differently (fused or
    # not, BLAS blocking per CPU). In float64 that is a few ulps of parameters <= ~1 plus lr times a
    # gradient's rounding (sums of <= 6 x 14 x 14 terms): < 1e-12 on any CPU, while moving by the other
    # player's loss, or by the wrong sign or lr, is off by > 1e-4.
    tol = dict(atol=1e-10, rtol=1e-10)
    torch.manual_seed(0)
    model = GAN(kind, latent=8, width=8)
    real = torch.rand(6, 1, 28, 28) * 2 - 1
    lr = 0.05
    # D's step: with G frozen (lr 0), D must move exactly by -lr * grad of L_D, not by L_G's gradient
    a = copy.deepcopy(model)
    train_step(a, real, _sgd(a, 0.0, lr), torch.Generator().manual_seed(1))
    b = copy.deepcopy(model)
    fake = b.generator(b.noise(6, torch.Generator().manual_seed(1))).detach()
    loss_d = (F.binary_cross_entropy_with_logits(b.discriminator(real), torch.ones(6, 1)) +
              F.binary_cross_entropy_with_logits(b.discriminator(fake), torch.zeros(6, 1)))
    grads = torch.autograd.grad(loss_d, list(b.discriminator.parameters()))
    for p, q, g in zip(a.discriminator.parameters(), b.discriminator.parameters(), grads):
        assert_close(p, q - lr * g, **tol)
    for p, q in zip(a.generator.parameters(), model.generator.parameters()):
        assert torch.equal(p, q)
    # G's step: with D frozen, G moves by -lr * grad of the non-saturating L_G = BCE(D(G(z)), 1)
    a = copy.deepcopy(model)
    train_step(a, real, _sgd(a, lr, 0.0), torch.Generator().manual_seed(1))
    b = copy.deepcopy(model)
    b.discriminator(real)  # the D step's forward passes update BatchNorm statistics in a too
    fake = b.generator(b.noise(6, torch.Generator().manual_seed(1)))
    b.discriminator(fake.detach())
    loss_g = F.binary_cross_entropy_with_logits(b.discriminator(fake), torch.ones(6, 1))
    grads = torch.autograd.grad(loss_g, list(b.generator.parameters()))
    for p, q, g in zip(a.generator.parameters(), b.generator.parameters(), grads):
        assert_close(p, q - lr * g, **tol)
    for p, q in zip(a.discriminator.parameters(), model.discriminator.parameters()):
        assert torch.equal(p, q)


def test_shapes_and_errors():
    for kind in ("mlp", "dcgan"):
        model = GAN(kind, latent=16, width=8)
        x = model.sample(5)
        assert x.shape == (5, 1, 28, 28) and 0 <= float(x.min()) and float(x.max()) <= 1
        assert model.discriminator(x).shape == (5, 1)
    with pytest.raises(DeepzooError, match="model.kind"):
        GAN("vae")


@pytest.fixture
def one_thread():
    """Bit-identical comparisons on one thread: a multithreaded BLAS under CPU contention may split a
    product differently between two runs."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_gan_recipe_logs_mode_signal_predicts_and_resumes_exactly(tmp_path, one_thread):
    train("cnn-mnist", preset="quick", sets=["train.epochs=1"], out=tmp_path / "cnn", **quiet)
    sets = [f"eval.classifier={tmp_path / 'cnn'}", "eval.samples=200"]
    full = train("gan-mnist", preset="quick", sets=sets + ["train.epochs=2"], out=tmp_path / "full", **quiet)
    rows = [json.loads(l) for l in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert {"train_d_loss", "train_g_loss", "train_d_real", "sample_class_entropy"} <= set(rows[0])
    assert 0 <= rows[-1]["sample_class_entropy"] <= 2.31
    assert full["metric"] == "test_fd" and full["value"] > 0
    (result,) = predict(tmp_path / "full", [str(tmp_path / "g.png")])
    assert len(result["wrote"]) == 2
    # one epoch, then resume to two: the same weights as the unbroken run (noise comes from the saved RNG)
    train("gan-mnist", preset="quick", sets=sets + ["train.epochs=1"], out=tmp_path / "cut", **quiet)
    meta = json.loads((tmp_path / "cut" / "config.json").read_text())
    meta["config"]["train"]["epochs"] = 2
    (tmp_path / "cut" / "config.json").write_text(json.dumps(meta))
    resumed = resume(tmp_path / "cut", **quiet)
    # the same weights (checked below), the same seeded samples, one thread: the same computation, so
    # the same number
    assert resumed["value"] == full["value"]
    from deepzoo.train import checkpoint
    w1 = checkpoint.load_weights(tmp_path / "full" / "checkpoints" / "epoch-0002" / "model.safetensors")
    w2 = checkpoint.load_weights(tmp_path / "cut" / "checkpoints" / "epoch-0002" / "model.safetensors")
    assert all(torch.equal(w1[k], w2[k]) for k in w1)
