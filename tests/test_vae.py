"""The VAE: its loss terms against torch's own (BCE, Gaussian KL), the reparameterisation trick, the
interpolation and latent map, and vae-mnist end to end on the packaged sample."""

import json

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence
from torch.testing import assert_close

from deepzoo.errors import DeepzooError
from deepzoo.models.vae import VAE, interpolate, latent_map, negative_elbo, negative_elbo_terms
from deepzoo.train.run import predict, train

quiet = dict(progress=False, log=lambda m: None)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_loss_terms_equal_torch_bce_and_gaussian_kl():
    x = torch.rand(5, 1, 28, 28)
    logits, mu, logvar = torch.randn(5, 1, 28, 28), torch.randn(5, 7), torch.randn(5, 7)
    recon, kl = negative_elbo_terms((logits, mu, logvar), x)
    assert_close(recon, F.binary_cross_entropy(torch.sigmoid(logits), x, reduction="sum") / 5, rtol=1e-4, atol=1e-3)
    q = Normal(mu, torch.exp(0.5 * logvar))
    assert_close(kl, kl_divergence(q, Normal(torch.zeros(7), torch.ones(7))).sum() / 5)
    assert_close(negative_elbo((logits, mu, logvar), x), recon + kl)


def test_reparameterised_z_has_the_encoder_distribution_and_passes_gradients():
    model = VAE(latent=3, hidden=16, layers=1)
    mu = torch.tensor([[1.0, -2.0, 0.5]]).repeat(20000, 1).requires_grad_()
    logvar = torch.tensor([[0.0, 1.0, -1.0]]).repeat(20000, 1).requires_grad_()
    model.encode = lambda x: (mu, logvar)          # a fixed q(z|x)
    seen = []
    model.decode = lambda z: seen.append(z) or z.sum(1, keepdim=True)
    out, _, _ = model(torch.zeros(20000, 1, 28, 28))
    z = seen[0]
    assert_close(z.mean(0), mu[0].detach(), atol=0.05, rtol=0)
    assert_close(z.var(0), logvar[0].detach().exp(), atol=0.08, rtol=0)
    out.sum().backward()                            # the noise is outside: mu and sigma get gradients
    assert mu.grad is not None and logvar.grad is not None and float(logvar.grad.abs().sum()) > 0


@pytest.mark.parametrize("kind", ["mlp", "conv"])
def test_shapes_interpolation_and_latent_map(kind):
    model = VAE(latent=2, hidden=32, layers=2, kind=kind).eval()
    x = torch.rand(4, 1, 28, 28)
    logits, mu, logvar = model(x)
    assert logits.shape == x.shape and mu.shape == logvar.shape == (4, 2)
    line = interpolate(model, x[0], x[1], steps=6)
    assert line.shape == (6, 1, 28, 28)
    assert_close(line[0], torch.sigmoid(model.decode(model.encode(x[:1])[0]))[0])   # the ends are the digits' means
    assert_close(line[-1], torch.sigmoid(model.decode(model.encode(x[1:2])[0]))[0])
    grid = latent_map(model, n=5, span=2.0)
    assert grid.shape == (25, 1, 28, 28)
    assert_close(grid[4], torch.sigmoid(model.decode(torch.tensor([[2.0, 2.0]])))[0])    # top-right: (+x, +y)
    assert model.sample(3).shape == (3, 1, 28, 28)
    with pytest.raises(DeepzooError, match="latent=2"):
        latent_map(VAE(latent=3, hidden=8))
    with pytest.raises(DeepzooError, match="model.kind"):
        VAE(kind="gan")


def test_vae_quick_trains_and_predict_writes_grids(tmp_path):
    run = tmp_path / "r"
    s = train("vae-mnist", preset="quick", out=run, sets=["model.latent=2"], **quiet)
    rows = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["val_nelbo"] < rows[0]["val_nelbo"]
    assert rows[-1]["val_nelbo"] == pytest.approx(rows[-1]["val_recon"] + rows[-1]["val_kl"], rel=1e-6)
    assert s["metric"] == "test_nelbo" and s["value"] < 250
    (result,) = predict(run, [str(tmp_path / "samples.png")])
    assert len(result["wrote"]) == 3 and all((tmp_path / n).stat().st_size > 1000 for n in
                                             ("samples.png", "samples-interpolation.png", "samples-latent-map.png"))
    with pytest.raises(DeepzooError, match="PNG"):
        predict(run, [str(tmp_path / "samples.txt")])


def test_sample_quality_of_a_vae_run(tmp_path):
    train("cnn-mnist", preset="quick", sets=["train.epochs=1"], out=tmp_path / "cnn", **quiet)
    s = train("vae-mnist", preset="quick", out=tmp_path / "vae", **quiet,
              sets=[f"eval.classifier={tmp_path / 'cnn'}", "eval.samples=500", "train.epochs=2"])
    r = s["results"]
    assert r["test_fd"] > 0 and 0 < r["test_confidence"] <= 1 and 0 <= r["test_class_entropy"] <= 2.31
    assert sum(r["test_class_histogram"]) == pytest.approx(1.0, abs=1e-3)
    with pytest.raises(DeepzooError, match="must be a cnn-mnist run"):
        train("vae-mnist", preset="quick", out=tmp_path / "v2", **quiet,
              sets=[f"eval.classifier={tmp_path / 'vae'}", "train.epochs=1"])
    assert not (tmp_path / "v2").exists()  # refused before a run folder was made
