r"""Denoising diffusion probabilistic models (Ho, Jain & Abbeel 2020), with DDIM sampling (Song et al. 2021).

**Forward process.** Noise is added in T small steps, x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) eps,
until x_T is pure Gaussian noise. With alpha_t = 1 - beta_t and abar_t = prod_{s <= t} alpha_s, any step
can be reached in one go:

    x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps,      eps ~ N(0, I)

The schedule: *linear* beta_t from 1e-4 to 0.02 over T = 1000 (Ho et al.), or *cosine*,
abar_t = f(t) / f(0) with f(t) = cos^2( (t/T + s) / (1 + s) * pi/2 ), s = 0.008 (Nichol & Dhariwal 2021),
which destroys information more evenly over the steps.

**Training.** One network eps_theta(x_t, t) (one U-Net for every step, told t through a sinusoidal
embedding) learns to predict the noise that was added:

    L = E_{x_0, t ~ U{1..T}, eps} || eps - eps_theta( sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, t ) ||^2

**Ancestral sampling** runs the process backwards from x_T ~ N(0, I), one step at a time:

    x_{t-1} = 1/sqrt(alpha_t) * ( x_t - beta_t / sqrt(1 - abar_t) * eps_theta(x_t, t) ) + sigma_t z,
    sigma_t^2 = beta_t (1 - abar_{t-1}) / (1 - abar_t),   z ~ N(0, I)  (z = 0 at the last step)

T network evaluations per image: stable, but slow. **DDIM** (eta = 0) is deterministic and skips steps:
on a sub-sequence tau_1 < ... < tau_S of the steps, with x_0 predicted from the noise estimate,

    x0_hat = ( x_t - sqrt(1 - abar_t) eps_theta(x_t, t) ) / sqrt(abar_t)
    x_{t'} = sqrt(abar_{t'}) x0_hat + sqrt(1 - abar_{t'}) eps_theta(x_t, t)

so 50 steps replace 1000, with the same trained network. (When x0_hat is clipped to [-1, 1], the noise
estimate is recomputed from it, eps = (x_t - sqrt(abar_t) x0_hat) / sqrt(1 - abar_t), so both agree.)
DDIM's eta in [0, 1] puts fresh noise back at each step, sigma = eta * sqrt((1 - abar_t') / (1 - abar_t)
* (1 - abar_t / abar_t')), taken from the eps_theta term: eta = 1 on every step is exactly the ancestral
sampler, and on fewer steps it is that sampler with skipped steps.

**EMA.** Sampling uses an exponential moving average of the weights, theta_ema <- d theta_ema + (1 - d) theta
after every step (d = ``ema``, e.g. 0.999; 0 turns it off): the average of the last ~1 / (1 - d) steps'
weights is a better denoiser than the last step's, most of all early in training.

**The U-Net** (two resolutions and back, with skip connections): residual blocks of GroupNorm, SiLU and
3x3 convolutions, the time embedding added to every block's feature maps, and self-attention over the
positions of the coarsest level. It first folds each 2 x 2 square of pixels into 4 channels (lossless), so
it works at 14 x 14 and 7 x 7: four times less arithmetic than at 28 x 28 for the same width.
Images are scaled to [-1, 1]; t is 0-based in the code (step t of the maths is index t - 1).
``image`` = (channels, height, width) is MNIST's (1, 28, 28) by default; the U-Net takes sides that are
multiples of 2 x ``patch`` (one fold into squares, one halving).
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from deepzoo.errors import DeepzooError
from deepzoo.nn.attention import MultiheadAttention


def betas_for(schedule: str, steps: int) -> torch.Tensor:
    if steps < 2:
        raise DeepzooError(f"model.steps must be at least 2, got {steps}")
    if schedule == "linear":  # Ho et al.'s 1e-4 .. 0.02 for T = 1000, scaled for other T (T > 20: beta_T < 1)
        if steps <= 20:
            raise DeepzooError(f"model.steps: the linear schedule needs more than 20 steps (its last beta is "
                               f"20/T), got {steps}; use model.schedule = cosine")
        scale = 1000 / steps
        return torch.linspace(scale * 1e-4, scale * 0.02, steps, dtype=torch.float64).clamp(max=0.999)
    if schedule == "cosine":
        s = 0.008
        t = torch.arange(steps + 1, dtype=torch.float64) / steps
        f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
        abar = f / f[0]
        return (1 - abar[1:] / abar[:-1]).clamp(max=0.999)
    raise DeepzooError(f"model.schedule must be 'linear' or 'cosine', got {schedule!r}")


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of integer steps, as the Transformer's positions: [sin(t w_i), cos(t w_i)],
    w_i = 10000^(-i / (dim/2))."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    angles = t.float()[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, tdim: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(8, cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.time = nn.Linear(tdim, cout)
        self.norm2, self.conv2 = nn.GroupNorm(8, cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time(temb)[:, :, None, None]            # "which step is this": added to every pixel
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.skip(x)


class SelfAttention(nn.Module):
    """Every position of a feature map attends to every other (Ho et al. put one at 16 x 16): the
    H * W positions are the tokens, x + MultiHead(GroupNorm(x)), so distant strokes can agree on one digit."""

    def __init__(self, channels: int, heads: int = 4) -> None:
        super().__init__()
        self.norm, self.attn = nn.GroupNorm(8, channels), MultiheadAttention(channels, heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        tokens = self.norm(x).flatten(2).transpose(1, 2)                # [B, H*W, C]
        return x + self.attn(tokens, tokens, tokens).transpose(1, 2).reshape(b, c, h, w)


class UNet(nn.Module):
    """eps_theta(x_t, t) for 1 x 28 x 28 images (or ``channels`` x H x W).

    The image is first cut into ``patch`` x ``patch`` squares stacked as channels (pixel unshuffle: lossless,
    28 x 28 x 1 -> 14 x 14 x 4 for patch 2), so the convolutions run at 14 x 14 and 7 x 7 instead of
    28 x 28 and 14 x 14: a quarter of the arithmetic for the same width, which is what lets a CPU train it
    in minutes. The output is put back together the same way (pixel shuffle). ``patch=1`` works on the pixels.
    """

    def __init__(self, width: int = 32, patch: int = 2, attention: bool = True, channels: int = 1) -> None:
        super().__init__()
        if patch not in (1, 2):
            raise DeepzooError(f"model.patch must be 1 (pixels) or 2 (2 x 2 squares as channels), got {patch}")
        c, tdim, p2 = width, 4 * width, patch * patch * channels
        self.tdim = c
        self.time_mlp = nn.Sequential(nn.Linear(c, tdim), nn.SiLU(), nn.Linear(tdim, tdim))
        self.unshuffle, self.shuffle = nn.PixelUnshuffle(patch), nn.PixelShuffle(patch)
        self.inp = nn.Conv2d(p2, c, 3, padding=1)
        self.down1, self.pool1 = ResBlock(c, c, tdim), nn.Conv2d(c, c, 4, 2, 1)                     # R -> R/2
        self.down2 = ResBlock(c, 2 * c, tdim)
        self.mid = ResBlock(2 * c, 2 * c, tdim)
        self.attn = SelfAttention(2 * c) if attention else nn.Identity()                        # at R/2
        self.dec2 = ResBlock(4 * c, 2 * c, tdim)
        self.up1, self.dec1 = nn.ConvTranspose2d(2 * c, c, 4, 2, 1), ResBlock(2 * c, c, tdim)      # R/2 -> R
        self.out = nn.Sequential(nn.GroupNorm(8, c), nn.SiLU(), nn.Conv2d(c, p2, 3, padding=1))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        temb = self.time_mlp(timestep_embedding(t, self.tdim).to(x.dtype))
        h1 = self.down1(self.inp(self.unshuffle(x)), temb)    # R x R, c      (R = 28 / patch)
        h2 = self.down2(self.pool1(h1), temb)                  # R/2 x R/2, 2c
        h = self.attn(self.mid(h2, temb))
        h = self.dec2(torch.cat([h, h2], 1), temb)             # skip connections from the way down
        h = self.dec1(torch.cat([self.up1(h), h1], 1), temb)   # R x R, c
        return self.shuffle(self.out(h))


class Diffusion(nn.Module):
    """The noise schedule (buffers) and the noise-predicting U-Net."""

    def __init__(self, steps: int = 1000, schedule: str = "linear", width: int = 32, ema: float = 0.0,
                 patch: int = 2, attention: bool = True, image: tuple = (1, 28, 28)) -> None:
        super().__init__()
        if image[1] % (2 * patch) or image[2] % (2 * patch):
            raise DeepzooError(f"the U-Net with model.patch={patch} takes image sides that are multiples of "
                               f"{2 * patch}, got {image[2]}x{image[1]}")
        self.image = tuple(image)
        if width < 8 or width % 8:
            raise DeepzooError(f"model.width must be a multiple of 8 (GroupNorm of 8 groups), got {width}")
        if not 0 <= ema < 1:
            raise DeepzooError(f"model.ema must be in [0, 1) (0: no moving average), got {ema}")
        betas = betas_for(schedule, steps)
        abar = torch.cumprod(1 - betas, 0)
        self.steps = steps
        self.register_buffer("betas", betas.float(), persistent=False)
        self.register_buffer("abar", abar.float(), persistent=False)
        self.net = UNet(width, patch, attention, channels=image[0])
        self.ema = ema
        if ema > 0:      # a submodule: it is in the state dict, so checkpoints and resumption keep it
            self.ema_net = copy.deepcopy(self.net).requires_grad_(False)

    @property
    def denoiser(self) -> nn.Module:
        """The network the samplers use: the moving average when there is one."""
        return self.ema_net if self.ema > 0 else self.net

    @torch.no_grad()
    def update_ema(self) -> None:
        """theta_ema <- ema theta_ema + (1 - ema) theta (call after each optimiser step)."""
        if self.ema > 0:
            for p_ema, p in zip(self.ema_net.parameters(), self.net.parameters()):
                p_ema.lerp_(p, 1 - self.ema)

    def add_noise(self, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps."""
        a = self.abar[t][:, None, None, None]
        return a.sqrt() * x0 + (1 - a).sqrt() * eps

    def draw(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The steps t ~ U{0, ..., T-1} and the noise eps ~ N(0, I) of n training images, drawn on the CPU
        (from a seeded generator: a resumed run draws the same) and moved to the model's device and precision."""
        p = next(self.net.parameters())
        t = torch.randint(0, self.steps, (n,), generator=generator).to(p.device)
        eps = torch.randn(n, *self.image, generator=generator).to(p.device, p.dtype)
        return t, eps

    def loss(self, x0: torch.Tensor, generator: torch.Generator | None = None,
             draws: tuple[torch.Tensor, torch.Tensor] | None = None, net: nn.Module | None = None) -> torch.Tensor:
        """The noise-prediction MSE at a uniformly drawn step for each image: || eps - net(x_t, t) ||^2.

        ``draws``: (t, eps) for these images (drawn from ``generator`` if not given); ``net``: the U-Net as
        the step calls it (its DDP wrapper under torchrun)."""
        t, eps = self.draw(len(x0), generator) if draws is None else draws
        return F.mse_loss((net or self.net)(self.add_noise(x0, t, eps), t), eps)

    @torch.no_grad()
    def ancestral_step(self, x: torch.Tensor, t: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """x_t -> x_{t-1}: the mean from the predicted noise, plus sigma_t z (none at the last step)."""
        eps = self.denoiser(x, torch.full((len(x),), t, device=x.device, dtype=torch.long))
        beta, abar = self.betas[t], self.abar[t]
        x = (x - beta / (1 - abar).sqrt() * eps) / (1 - beta).sqrt()
        if t > 0:
            var = beta * (1 - self.abar[t - 1]) / (1 - abar)
            x = x + var.sqrt() * torch.randn(x.shape, generator=generator).to(x.device, x.dtype)
        return x

    @torch.no_grad()
    def sample_ancestral(self, n: int, generator: torch.Generator | None = None, keep: int = 0):
        """Ho et al.'s sampler, T steps; returns images in [0, 1] and, if ``keep`` > 0, ``keep`` snapshots of
        x along the way (x_T first), each decoded as an image."""
        device = self.betas.device
        x = torch.randn(n, *self.image, generator=generator).to(device)
        marks = set(torch.linspace(self.steps - 1, 0, keep).round().long().tolist()) if keep else set()
        strip = []
        for t in range(self.steps - 1, -1, -1):
            if t in marks:
                strip.append(((x.clamp(-1, 1) + 1) / 2).cpu())
            x = self.ancestral_step(x, t, generator)
        images = ((x.clamp(-1, 1) + 1) / 2).cpu()
        return (images, strip + [images]) if keep else images

    @torch.no_grad()
    def sample_ddim(self, n: int, sample_steps: int = 50, generator: torch.Generator | None = None,
                    eta: float = 0.0) -> torch.Tensor:
        """Song et al.'s sampler on ``sample_steps`` evenly spaced steps: deterministic for eta = 0;
        eta = 1 with every step is the ancestral sampler."""
        if not 1 <= sample_steps <= self.steps:
            raise DeepzooError(f"sample steps must be 1 to {self.steps}, got {sample_steps}")
        if not 0 <= eta <= 1:
            raise DeepzooError(f"eta must be in [0, 1] (0: deterministic DDIM, 1: ancestral noise), got {eta}")
        device = self.betas.device
        x = torch.randn(n, *self.image, generator=generator).to(device)
        taus = torch.linspace(self.steps - 1, 0, sample_steps).round().long().tolist()
        for i, t in enumerate(taus):
            x = self.ddim_step(x, t, taus[i + 1] if i + 1 < len(taus) else None, eta, generator)
        return ((x.clamp(-1, 1) + 1) / 2).cpu()

    @torch.no_grad()
    def ddim_step(self, x: torch.Tensor, t: int, t_next: int | None, eta: float = 0.0,
                  generator: torch.Generator | None = None) -> torch.Tensor:
        """x_t -> x_{t'} (t' < t, or x_0 when t_next is None): predict x_0, then re-noise it to the level of t'
        with the predicted noise and, for eta > 0, some fresh noise:

            sigma = eta * sqrt( (1 - abar_t') / (1 - abar_t) * (1 - abar_t / abar_t') )
            x_t' = sqrt(abar_t') x0_hat + sqrt(1 - abar_t' - sigma^2) eps_theta + sigma z
        """
        eps = self.denoiser(x, torch.full((len(x),), t, device=x.device, dtype=torch.long))
        abar = self.abar[t]
        x0 = ((x - (1 - abar).sqrt() * eps) / abar.sqrt()).clamp(-1, 1)
        eps = (x - abar.sqrt() * x0) / (1 - abar).sqrt()     # the noise that agrees with the clipped x0
        if t_next is None:
            return x0
        abar_next = self.abar[t_next]
        sigma = eta * ((1 - abar_next) / (1 - abar) * (1 - abar / abar_next)).sqrt()
        x = abar_next.sqrt() * x0 + (1 - abar_next - sigma ** 2).clamp(min=0).sqrt() * eps   # >= 0 up to rounding
        if eta > 0:
            x = x + sigma * torch.randn(x.shape, generator=generator).to(x.device, x.dtype)
        return x

    def sample(self, n: int, generator: torch.Generator | None = None, sample_steps: int = 50,
               eta: float = 0.0) -> torch.Tensor:
        return self.sample_ddim(n, sample_steps, generator, eta)
