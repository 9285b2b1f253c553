r"""The variational autoencoder (Kingma & Welling 2014).

A latent variable z ~ p(z) = N(0, I) generates an image x through a decoder p_theta(x | z): here each
of the 784 pixels is a Bernoulli whose probability is sigmoid(logit), the logits being the decoder's
output. Learning theta by maximum likelihood needs log p(x) = log \int p(x | z) p(z) dz, which has no
closed form, so an encoder q_phi(z | x) = N(mu(x), diag sigma^2(x)) guesses which z made x, and both
are trained on the evidence lower bound

    log p(x) >= ELBO(x) = E_{z ~ q(z|x)} [ log p(x | z) ]  -  KL( q(z | x) || p(z) )

The first term is the reconstruction: minus the binary cross-entropy between x and the decoded
probabilities, summed over the pixels. The second keeps q close to the prior, in closed form for
two Gaussians:

    KL = -1/2 sum_j ( 1 + log sigma_j^2 - mu_j^2 - sigma_j^2 )

The loss is the negative ELBO in nats per image (lower is better; it bounds -log p(x) from above).

**The reparameterisation trick.** E_q[.] is estimated with one sample, and the gradient must flow
into mu and sigma through the sampling: draw eps ~ N(0, I) and set z = mu + sigma * eps. The noise
is outside the network, so z is a differentiable function of mu and sigma.

Because the decoder has been trained on z near the prior, any z ~ N(0, I) decodes to a digit, and
moving z along a line gives a continuously changing digit (:func:`interpolate`). With a 2-D latent
the whole map can be drawn on a grid.

``kind="mlp"``: the encoder is 784 - hidden - hidden - (mu, log sigma^2), the decoder the mirror image.
``kind="conv"``: two stride-2 4x4 convolutions (28 -> 14 -> 7) and a linear layer encode; a linear layer
and two stride-2 transposed convolutions decode.

``image`` = (channels, height, width) is MNIST's (1, 28, 28) by default; the MLP takes any size, the
convolutions sides that are multiples of 4 (two halvings and two doublings).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepzoo.errors import DeepzooError


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class VAE(nn.Module):
    def __init__(self, latent: int = 20, hidden: int = 400, layers: int = 1, kind: str = "mlp",
                 channels: int = 32, image: tuple[int, int, int] = (1, 28, 28)) -> None:
        super().__init__()
        if kind not in ("mlp", "conv"):
            raise DeepzooError(f"model.kind must be 'mlp' or 'conv', got {kind!r}")
        if latent < 1 or hidden < 1 or layers < 1 or channels < 1:
            raise DeepzooError("model.latent, model.hidden, model.layers and model.channels must be positive")
        ch, h, w = image
        if kind == "conv" and (h % 4 or w % 4):
            raise DeepzooError(f"the conv VAE takes image sides that are multiples of 4, got {w}x{h}")
        self.latent, self.kind, self.image = latent, kind, tuple(image)
        if kind == "mlp":
            self.encoder = nn.Sequential(nn.Flatten(), _mlp([ch * h * w] + [hidden] * layers), nn.ReLU())
            self.decoder = nn.Sequential(_mlp([latent] + [hidden] * layers + [ch * h * w]),
                                         nn.Unflatten(1, tuple(image)))
        else:
            c, cells = channels, (h // 4) * (w // 4)
            self.encoder = nn.Sequential(
                nn.Conv2d(ch, c, 4, 2, 1), nn.ReLU(), nn.Conv2d(c, 2 * c, 4, 2, 1), nn.ReLU(),  # 28 -> 14 -> 7
                nn.Flatten(), nn.Linear(2 * c * cells, hidden), nn.ReLU())
            self.decoder = nn.Sequential(
                nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, 2 * c * cells), nn.ReLU(),
                nn.Unflatten(1, (2 * c, h // 4, w // 4)),
                nn.ConvTranspose2d(2 * c, c, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(c, ch, 4, 2, 1))  # 7 -> 14 -> 28
        self.to_mu = nn.Linear(hidden, latent)
        self.to_logvar = nn.Linear(hidden, latent)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z | x): the mean and log-variance of the Gaussian over z."""
        h = self.encoder(x)
        return self.to_mu(h), self.to_logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """p(x | z): the logits of the Bernoulli pixels, shaped like images [N, 1, 28, 28] (``image``)."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)   # the reparameterisation trick
        return self.decode(z), mu, logvar

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n new images: z ~ N(0, I), decoded to pixel probabilities in [0, 1]."""
        z = torch.randn(n, self.latent, generator=generator).to(self.to_mu.weight.device)
        return torch.sigmoid(self.decode(z))


def negative_elbo_terms(out, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(reconstruction, KL), each summed over an image's pixels or latent units and averaged over the batch."""
    logits, mu, logvar = out
    recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(x)
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / len(x)
    return recon, kl


def negative_elbo(out, x: torch.Tensor) -> torch.Tensor:
    """The loss: -ELBO in nats per image = reconstruction (BCE) + KL."""
    recon, kl = negative_elbo_terms(out, x)
    return recon + kl


@torch.no_grad()
def interpolate(model: VAE, a: torch.Tensor, b: torch.Tensor, steps: int = 10) -> torch.Tensor:
    """Decode points on the line between the latent means of images a and b: [steps, 1, 28, 28]."""
    device = model.to_mu.weight.device
    mu_a, _ = model.encode(a[None].to(device))
    mu_b, _ = model.encode(b[None].to(device))
    t = torch.linspace(0, 1, steps, device=mu_a.device)[:, None]
    return torch.sigmoid(model.decode((1 - t) * mu_a + t * mu_b))


@torch.no_grad()
def latent_map(model: VAE, n: int = 20, span: float = 2.5) -> torch.Tensor:
    """For a 2-D latent: decode an n x n grid of z in [-span, span]^2, row-major: [n*n, 1, 28, 28]."""
    if model.latent != 2:
        raise DeepzooError(f"a latent map needs model.latent=2, this model has {model.latent}")
    ys, xs = torch.meshgrid(torch.linspace(span, -span, n), torch.linspace(-span, span, n), indexing="ij")
    z = torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1).to(model.to_mu.weight.device)  # row i, col j: (x_j, y_i)
    return torch.sigmoid(model.decode(z))
