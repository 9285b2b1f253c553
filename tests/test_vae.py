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


@pytest.fixture
def float64_default():
    """Models and the latent grid built in float64 (latent_map makes its grid in the default dtype)."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


def test_loss_terms_equal_torch_bce_and_gaussian_kl():
    # Float64: our terms against torch's formulas, sums of 3,920 (BCE) and 35 (KL) terms in other orders
    # and BCE from logits against BCE of sigmoid(logits). The BCE terms are all >= 0, so any two orders
    # agree within 2 * 3920 * u ~ 9e-13 relative (u = 1.1e-16), the per-term formulas within ~1e-14
    # relative (|logits| <= ~5); the KL within ~1e-14 (seen: all ~1e-16 relative). A missing term,
    # factor 1/2 or batch mean is off by > 1e-2.
    tol = dict(atol=1e-10, rtol=1e-10)
    x = torch.rand(5, 1, 28, 28, dtype=torch.float64)
    logits, mu, logvar = (torch.randn(*shape, dtype=torch.float64) for shape in ((5, 1, 28, 28), (5, 7), (5, 7)))
    recon, kl = negative_elbo_terms((logits, mu, logvar), x)
    assert_close(recon, F.binary_cross_entropy(torch.sigmoid(logits), x, reduction="sum") / 5, **tol)
    q = Normal(mu, torch.exp(0.5 * logvar))
    assert_close(kl, kl_divergence(q, Normal(torch.zeros(7, dtype=torch.float64), torch.ones(7, dtype=torch.float64))).sum() / 5, **tol)
    assert torch.equal(negative_elbo((logits, mu, logvar), x), recon + kl)   # the same two terms, added


def test_reparameterised_z_has_the_encoder_distribution_and_passes_gradients():
    model = VAE(latent=3, hidden=16, layers=1)
    mu = torch.tensor([[1.0, -2.0, 0.5]]).repeat(20000, 1).requires_grad_()
    logvar = torch.tensor([[0.0, 1.0, -1.0]]).repeat(20000, 1).requires_grad_()
    model.encode = lambda x: (mu, logvar)          # a fixed q(z|x)
    seen = []
    model.decode = lambda z: seen.append(z) or z.sum(1, keepdim=True)
    out, _, _ = model(torch.zeros(20000, 1, 28, 28))
    z = seen[0]
    # statistical, not rounding: with 20,000 draws the sample mean's sd is sigma / 141 <= 0.012 and the
    # variance's sd is sigma^2 sqrt(2 / 20000) <= 0.027, so the bands are >= 4 and ~3 sd (seeded draws)
    assert_close(z.mean(0), mu[0].detach(), atol=0.05, rtol=0)
    assert_close(z.var(0), logvar[0].detach().exp(), atol=0.08, rtol=0)
    out.sum().backward()                            # the noise is outside: mu and sigma get gradients
    assert mu.grad is not None and logvar.grad is not None and float(logvar.grad.abs().sum()) > 0


@pytest.mark.parametrize("kind", ["mlp", "conv"])
def test_shapes_interpolation_and_latent_map(kind, float64_default):
    # Float64: the interpolation's ends and the map's corner decode a batch of 6 or 25 where the check
    # decodes one, and a product may be blocked differently for another batch size (per CPU). In float64
    # the decoder's sums (<= 32 x 9 terms per output) keep that below ~1e-12 (seen: ~1e-16); a swapped
    # axis or end moves pixels by > 1e-3.
    tol = dict(atol=1e-10, rtol=1e-10)
    model = VAE(latent=2, hidden=32, layers=2, kind=kind).eval()
    x = torch.rand(4, 1, 28, 28)
    logits, mu, logvar = model(x)
    assert logits.shape == x.shape and mu.shape == logvar.shape == (4, 2)
    line = interpolate(model, x[0], x[1], steps=6)
    assert line.shape == (6, 1, 28, 28)
    assert_close(line[0], torch.sigmoid(model.decode(model.encode(x[:1])[0]))[0], **tol)   # the ends are the digits' means
    assert_close(line[-1], torch.sigmoid(model.decode(model.encode(x[1:2])[0]))[0], **tol)
    grid = latent_map(model, n=5, span=2.0)
    assert grid.shape == (25, 1, 28, 28)
    assert_close(grid[4], torch.sigmoid(model.decode(torch.tensor([[2.0, 2.0]])))[0], **tol)    # top-right: (+x, +y)
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
    # val_nelbo averages each batch's float32 recon + kl (one rounding: <= 6e-8 relative), the other two
    # average the terms apart (in double): <= ~1e-7 relative apart on any CPU
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
    assert sum(r["test_class_histogram"]) == pytest.approx(1.0, abs=1e-3)   # 10 shares rounded to 4 decimals: <= 5e-4 off
    with pytest.raises(DeepzooError, match="must be a cnn-mnist run"):
        train("vae-mnist", preset="quick", out=tmp_path / "v2", **quiet,
              sets=[f"eval.classifier={tmp_path / 'vae'}", "train.epochs=1"])
    assert not (tmp_path / "v2").exists()  # refused before a run folder was made
