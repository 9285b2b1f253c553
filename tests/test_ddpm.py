"""DDPM: the noise schedules, the forward process, both samplers checked against the exact denoiser of a
one-point data set, the time-conditioned U-Net, and ddpm-mnist end to end on the packaged sample."""

import json
import math

import pytest
import torch
from torch.testing import assert_close

from deepzoo.errors import DeepzooError
from deepzoo.models.ddpm import Diffusion, UNet, betas_for, timestep_embedding
from deepzoo.train.run import predict, train

quiet = dict(progress=False, log=lambda m: None)


def test_schedules():
    lin = betas_for("linear", 1000)
    assert float(lin[0]) == pytest.approx(1e-4) and float(lin[-1]) == pytest.approx(0.02)
    for name in ("linear", "cosine"):
        abar = torch.cumprod(1 - betas_for(name, 1000), 0)
        assert torch.all(abar[1:] < abar[:-1]) and float(abar[-1]) < 1e-4   # x_T is (almost) pure noise
    cos = torch.cumprod(1 - betas_for("cosine", 1000), 0)
    # the cosine schedule keeps more signal half-way (Nichol & Dhariwal's point)
    assert float(cos[500]) > float(torch.cumprod(1 - lin, 0)[500])
    with pytest.raises(DeepzooError, match="schedule"):
        betas_for("sigmoid", 10)


def test_forward_process_formula():
    d = Diffusion(steps=50, width=8)
    x0, eps, t = torch.rand(4, 1, 28, 28), torch.randn(4, 1, 28, 28), torch.tensor([0, 10, 30, 49])
    a = torch.cumprod(1 - betas_for("linear", 50), 0).float()[t][:, None, None, None]
    assert_close(d.add_noise(x0, t, eps), a.sqrt() * x0 + (1 - a).sqrt() * eps)


class _Oracle(torch.nn.Module):
    """The exact noise predictor when every training image is the same image c:
    eps(x_t, t) = (x_t - sqrt(abar_t) c) / sqrt(1 - abar_t)."""

    def __init__(self, abar, c):
        super().__init__()
        self.abar, self.c = abar, c

    def forward(self, x, t):
        a = self.abar[t][:, None, None, None]
        return (x - a.sqrt() * self.c) / (1 - a).sqrt()


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_both_samplers_recover_a_one_point_distribution(schedule):
    d = Diffusion(steps=200, schedule=schedule, width=8).double()
    d.betas, d.abar = d.betas.double(), d.abar.double()
    c = torch.linspace(-0.8, 0.8, 784, dtype=torch.float64).reshape(1, 1, 28, 28)
    d.net = _Oracle(d.abar, c)
    target = (c + 1) / 2
    images, strip = d.sample_ancestral(3, torch.Generator().manual_seed(0), keep=5)
    assert_close(images.double(), target.expand(3, -1, -1, -1), atol=1e-5, rtol=0)  # exact up to rounding; a wrong step is off by >1e-2
    assert len(strip) == 6 and float((strip[0] - target).abs().mean()) > 0.2   # x_T was noise
    for steps in (200, 20, 1):
        assert_close(d.sample_ddim(3, steps, torch.Generator().manual_seed(0)).double(),
                     target.expand(3, -1, -1, -1), atol=1e-5, rtol=0)  # exact up to rounding; a wrong step is off by >1e-2
    with pytest.raises(DeepzooError, match="sample steps"):
        d.sample_ddim(1, 500)


@pytest.mark.parametrize("t", [150, 60, 5])
def test_an_ancestral_step_keeps_the_forward_marginals(t):
    """With the exact denoiser of a one-point data set c, x_t ~ q(x_t | c) = N(sqrt(abar_t) c, 1 - abar_t)
    must step to x_{t-1} ~ N(sqrt(abar_{t-1}) c, 1 - abar_{t-1}): this checks the mean and the variance
    sigma_t^2 of the reverse step."""
    d = Diffusion(steps=200, width=8).double()
    d.betas, d.abar = d.betas.double(), d.abar.double()
    c = torch.linspace(-0.8, 0.8, 784, dtype=torch.float64).reshape(1, 1, 28, 28)
    d.net = _Oracle(d.abar, c)
    g = torch.Generator().manual_seed(0)
    x = d.abar[t].sqrt() * c + (1 - d.abar[t]).sqrt() * torch.randn(64, 1, 28, 28, generator=g, dtype=torch.float64)
    r = d.ancestral_step(x, t, g) - d.abar[t - 1].sqrt() * c     # should be N(0, 1 - abar_{t-1})
    assert abs(float(r.mean())) < 0.01
    assert float(r.var()) == pytest.approx(float(1 - d.abar[t - 1]), rel=0.03)


def test_time_embedding_and_unet():
    e = timestep_embedding(torch.tensor([0, 5]), 8)
    assert e.shape == (2, 8)
    assert_close(e[1, :4], torch.sin(5 * torch.exp(-math.log(10000.0) * torch.arange(4) / 4)))
    net = UNet(16)
    x = torch.randn(2, 1, 28, 28)
    out = net(x, torch.tensor([3, 3]))
    assert out.shape == x.shape
    assert not torch.allclose(out, net(x, torch.tensor([900, 900])))   # the step changes the prediction
    with pytest.raises(DeepzooError, match="multiple of 8"):
        Diffusion(width=12)


def test_ddpm_quick_trains_and_predict_writes_the_denoising_strip(tmp_path):
    run = tmp_path / "r"
    train("ddpm-mnist", preset="quick", out=run, **quiet)
    rows = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"] < 1.5
    (result,) = predict(run, [str(tmp_path / "s.png")])
    assert [p.split("/")[-1] for p in result["wrote"]] == ["s.png", "s-denoising.png"]
    with pytest.raises(DeepzooError, match="eval.sample_steps"):
        train("ddpm-mnist", preset="quick", out=tmp_path / "bad", sets=["eval.sample_steps=0"], **quiet)
