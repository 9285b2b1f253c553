"""DDPM: the noise schedules, the forward process, both samplers checked against the exact denoiser of a
one-point data set, the time-conditioned U-Net, and ddpm-mnist end to end on the packaged sample."""

import json
import math

import pytest
import torch
from torch.testing import assert_close

from deepzoo.errors import DeepzooError
from deepzoo.models.ddpm import Diffusion, SelfAttention, UNet, betas_for, timestep_embedding
from deepzoo.train.run import predict, train

quiet = dict(progress=False, log=lambda m: None)
# Float64 checks of a formula against another way of computing it: a few elementwise roundings each
# (u = 1.1e-16; FMA contraction may differ between the CPU's kernels), amplified at most by
# 1 / sqrt(abar_t) <= 182 at the noisiest step here: ~1e-13 (seen: <= 4e-14), while a wrong
# coefficient (alpha for abar, a missing sqrt) is off by > 1e-3.
TOL = dict(atol=1e-11, rtol=1e-10)


def test_schedules():
    lin = betas_for("linear", 1000)
    assert float(lin[0]) == pytest.approx(1e-4) and float(lin[-1]) == pytest.approx(0.02)
    for name in ("linear", "cosine"):
        abar = torch.cumprod(1 - betas_for(name, 1000), 0)
        assert torch.all(abar[1:] < abar[:-1]) and float(abar[-1]) < 1e-4   # x_T is (almost) pure noise
    cos = torch.cumprod(1 - betas_for("cosine", 1000), 0)
    f = torch.cos((torch.arange(1001, dtype=torch.float64) / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2
    # abar_t = f(t) / f(0) wherever the 0.999 clip is inactive: float64, a cumulative product of 900
    # factors against one quotient, <= ~900 roundings of values <= 1: <= 1e-13
    assert_close(cos[:900], (f / f[0])[1:901], **TOL)
    # the cosine schedule keeps more signal half-way (Nichol & Dhariwal's point)
    assert float(cos[500]) > float(torch.cumprod(1 - lin, 0)[500])
    with pytest.raises(DeepzooError, match="schedule"):
        betas_for("sigmoid", 10)


def test_forward_process_formula():
    d = Diffusion(steps=50, width=8)
    x0, eps, t = torch.rand(4, 1, 28, 28), torch.randn(4, 1, 28, 28), torch.tensor([0, 10, 30, 49])
    a = torch.cumprod(1 - betas_for("linear", 50), 0).float()[t][:, None, None, None]
    # the same float32 formula, elementwise: a few ulps of values <= ~5 at most (<= 1e-6), inside the
    # float32 default of 1e-5 on any CPU; a wrong coefficient is off by > 1e-2
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


class _TwoPointOracle(torch.nn.Module):
    """The exact noise predictor when the data are two images c1, c2 with probability 1/2 each:
    E[x_0 | x_t] = sum_k w_k c_k with w = softmax_k( -||x_t - sqrt(abar_t) c_k||^2 / (2 (1 - abar_t)) ),
    and eps = (x_t - sqrt(abar_t) E[x_0 | x_t]) / sqrt(1 - abar_t)."""

    def __init__(self, abar, c):
        super().__init__()
        self.abar, self.c = abar, c                       # c: [2, 1, 28, 28]

    def forward(self, x, t):
        a = self.abar[t][:, None, None, None]
        d2 = ((x[:, None] - a[:, None].sqrt() * self.c[None]) ** 2).flatten(2).sum(-1)     # [N, 2]
        w = torch.softmax(-d2 / (2 * (1 - a.flatten()[:, None])), dim=1)
        x0 = (w[:, :, None, None, None] * self.c[None]).sum(1)
        return (x - a.sqrt() * x0) / (1 - a).sqrt()


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_both_samplers_land_on_the_data(schedule):
    """From pure noise, both samplers end on one of the two training images, and both images come out
    (the single steps are checked exactly by the two tests below)."""
    d = Diffusion(steps=200, schedule=schedule, width=8).double()
    d.betas, d.abar = d.betas.double(), d.abar.double()
    g = torch.Generator().manual_seed(0)
    c = (torch.rand(2, 1, 28, 28, generator=g, dtype=torch.float64) * 1.6 - 0.8)
    d.net = _TwoPointOracle(d.abar, c)
    targets = (c + 1) / 2

    def check(images):
        dist = ((images.double()[:, None] - targets[None]) ** 2).flatten(2).mean(-1).sqrt()   # [N, 2]
        assert float(dist.min(1).values.max()) < 1e-3          # every sample is one of the two images
        share = float((dist.argmin(1) == 0).double().mean())
        assert 0.15 < share < 0.85                              # and both come out
    images, strip = d.sample_ancestral(40, torch.Generator().manual_seed(1), keep=5)
    check(images)
    assert len(strip) == 6 and float((strip[0] - targets[0]).abs().mean()) > 0.2   # x_T was noise
    for steps in (200, 20):
        check(d.sample_ddim(40, steps, torch.Generator().manual_seed(1)))
    with pytest.raises(DeepzooError, match="sample steps"):
        d.sample_ddim(1, 500)


@pytest.mark.parametrize("t,t_next", [(199, 150), (120, 60), (10, 0)])
def test_a_ddim_step_keeps_the_noise_and_moves_the_level(t, t_next):
    """With the exact denoiser of a one-point data set c, x_t = sqrt(abar_t) c + sqrt(1 - abar_t) e must step
    to exactly sqrt(abar_t') c + sqrt(1 - abar_t') e, the same e: DDIM (eta = 0) adds no new noise."""
    d = Diffusion(steps=200, width=8).double()
    d.betas, d.abar = d.betas.double(), d.abar.double()
    c = torch.linspace(-0.8, 0.8, 784, dtype=torch.float64).reshape(1, 1, 28, 28)
    d.net = _Oracle(d.abar, c)
    e = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = d.abar[t].sqrt() * c + (1 - d.abar[t]).sqrt() * e
    assert_close(d.ddim_step(x, t, t_next), d.abar[t_next].sqrt() * c + (1 - d.abar[t_next]).sqrt() * e, **TOL)
    assert_close(d.ddim_step(x, t, None), c.expand(4, -1, -1, -1), **TOL)


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


@pytest.mark.parametrize("t", [150, 60, 5])
def test_ddim_with_eta_1_on_every_step_is_the_ancestral_step(t):
    """sigma = eta sqrt((1 - abar_{t-1}) / (1 - abar_t) (1 - alpha_t)) is the ancestral sigma_t for eta = 1, and
    the mean sqrt(abar_{t-1}) x0_hat + sqrt(1 - abar_{t-1} - sigma^2) eps is the ancestral mean: same z, same step."""
    d = Diffusion(steps=200, width=8).double()
    d.betas = betas_for("linear", 200)                     # float64, and abar from them exactly
    d.abar = torch.cumprod(1 - d.betas, 0)
    c = torch.linspace(-0.8, 0.8, 784, dtype=torch.float64).reshape(1, 1, 28, 28)
    d.net = _Oracle(d.abar, c)
    x = d.abar[t].sqrt() * c + (1 - d.abar[t]).sqrt() * torch.randn(8, 1, 28, 28, dtype=torch.float64,
                                                                    generator=torch.Generator().manual_seed(1))
    assert_close(d.ddim_step(x, t, t - 1, eta=1.0, generator=torch.Generator().manual_seed(2)),
                 d.ancestral_step(x, t, torch.Generator().manual_seed(2)), **TOL)


@pytest.mark.parametrize("eta", [0.5, 1.0])
def test_ddim_with_noise_skipping_steps_keeps_the_forward_marginals(eta):
    """With the exact one-point denoiser, x_t ~ N(sqrt(abar_t) c, 1 - abar_t) must step to
    x_t' ~ N(sqrt(abar_t') c, 1 - abar_t') for any eta: fresh noise replaces part of the predicted noise."""
    d = Diffusion(steps=200, width=8).double()
    d.betas, d.abar = d.betas.double(), d.abar.double()
    c = torch.linspace(-0.8, 0.8, 784, dtype=torch.float64).reshape(1, 1, 28, 28)
    d.net = _Oracle(d.abar, c)
    g = torch.Generator().manual_seed(0)
    x = d.abar[150].sqrt() * c + (1 - d.abar[150]).sqrt() * torch.randn(64, 1, 28, 28, generator=g, dtype=torch.float64)
    r = d.ddim_step(x, 150, 100, eta=eta, generator=g) - d.abar[100].sqrt() * c
    assert abs(float(r.mean())) < 0.01
    assert float(r.var()) == pytest.approx(float(1 - d.abar[100]), rel=0.03)
    with pytest.raises(DeepzooError, match="eta must be in"):
        d.sample_ddim(2, 5, eta=1.5)


def test_time_embedding_and_unet():
    e = timestep_embedding(torch.tensor([0, 5]), 8)
    assert e.shape == (2, 8)
    # the same float32 formula: an ulp or two of values <= 1, inside the float32 default of 1e-5
    assert_close(e[1, :4], torch.sin(5 * torch.exp(-math.log(10000.0) * torch.arange(4) / 4)))
    x = torch.randn(2, 1, 28, 28)
    for patch, attention in ((1, False), (2, True)):
        net = UNet(16, patch, attention)
        out = net(x, torch.tensor([3, 3]))
        assert out.shape == x.shape
        assert not torch.allclose(out, net(x, torch.tensor([900, 900])))   # the step changes the prediction
    # patch 2 folds each 2 x 2 square of pixels into 4 channels and unfolds the output the same way: lossless
    unshuffle, shuffle = torch.nn.PixelUnshuffle(2), torch.nn.PixelShuffle(2)
    assert torch.equal(shuffle(unshuffle(x)), x)
    with pytest.raises(DeepzooError, match="model.patch"):
        UNet(16, 3)
    with pytest.raises(DeepzooError, match="multiple of 8"):
        Diffusion(width=12)


def test_self_attention_block_matches_torch_multihead_attention():
    """x + MHA(GroupNorm(x)) over the H*W positions, against nn.MultiheadAttention given the same weights:
    outputs and the gradients of the input and of every weight."""
    torch.manual_seed(0)
    block = SelfAttention(16, heads=4).double()
    ref = torch.nn.MultiheadAttention(16, 4, batch_first=True).double()
    ref.load_state_dict(block.attn.state_dict())
    x = torch.randn(3, 16, 7, 7, dtype=torch.float64, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_(True)
    tokens = block.norm(x_ref).flatten(2).transpose(1, 2)
    expected = x_ref + ref(tokens, tokens, tokens, need_weights=False)[0].transpose(1, 2).reshape(3, 16, 7, 7)
    out = block(x)
    # float64: our attention against torch's kernel, sums over 49 positions x 3 images in other orders:
    # <= 2 * 147 * u * ~1500 ~ 5e-11 in the worst case (seen: <= 7e-15)
    tol = dict(atol=1e-9, rtol=1e-9)
    assert_close(out, expected, **tol)
    g = torch.randn_like(out)
    out.backward(g)
    expected.backward(g)
    assert_close(x.grad, x_ref.grad, **tol)
    for name, p in ref.named_parameters():
        assert_close(dict(block.attn.named_parameters())[name].grad, p.grad, **tol)


def test_ddpm_quick_trains_and_predict_writes_the_denoising_strip(tmp_path, quick_tour):
    run = quick_tour / "ddpm-mnist"                       # the tour's run of the quick preset
    rows = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    # eps ~ N(0, I): predicting no noise at all scores an MSE of 1; one quick epoch already does much better
    assert rows[-1]["train_loss"] < 0.8
    (result,) = predict(run, [str(tmp_path / "s.png")])
    assert [p.split("/")[-1] for p in result["wrote"]] == ["s.png", "s-denoising.png"]
    with pytest.raises(DeepzooError, match="eval.sample_steps"):
        train("ddpm-mnist", preset="quick", out=tmp_path / "bad", sets=["eval.sample_steps=0"], **quiet)


def test_linear_schedule_refuses_too_few_steps(tmp_path, capsys):
    """Ho et al.'s linear betas scaled by 1000/T end at 20/T: for T <= 20 they would pass 1."""
    from deepzoo.cli import main
    out = tmp_path / "run"
    assert main(["train", "ddpm-mnist", "--preset", "quick", "--set", "model.steps=20", "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == (
        "deepzoo: error: --set: the linear schedule scales Ho et al.'s betas by 1000/T, so its last beta 20/T "
        "passes 1 unless model.steps > 20; use model.schedule = cosine for fewer steps, got model.schedule = "
        "'linear', model.steps = 20")
    assert not out.exists()
    with pytest.raises(DeepzooError, match="more than 20 steps"):
        Diffusion(steps=20, schedule="linear", width=8)
    assert Diffusion(steps=10, schedule="cosine", width=8).betas.max() <= 0.999


def test_ema_weights_follow_the_moving_average_and_sample():
    d = Diffusion(steps=50, width=8, ema=0.75)
    assert {k for k in d.state_dict() if k.startswith("ema_net.")}            # checkpointed with the model
    assert all(not p.requires_grad for p in d.ema_net.parameters())
    before = [p.detach().clone() for p in d.ema_net.parameters()]
    with torch.no_grad():
        for p in d.net.parameters():
            p.add_(1.0)
    d.update_ema()
    for old, p_ema, p in zip(before, d.ema_net.parameters(), d.net.parameters()):
        # lerp_ computes old + 0.25 (p - old), the test 0.75 old + 0.25 p: a few float32 roundings of
        # values <= ~2 (<= 5e-7; seen: 3e-8), inside the float32 default of 1e-5 on any CPU
        assert_close(p_ema, 0.75 * old + 0.25 * p)
    assert d.denoiser is d.ema_net and Diffusion(width=8).denoiser is not None
    with pytest.raises(DeepzooError, match="model.ema must be in"):
        Diffusion(width=8, ema=1.0)
