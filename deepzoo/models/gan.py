r"""Generative adversarial networks (Goodfellow et al. 2014) and DCGAN (Radford, Metz & Chintala 2016).

Two networks play a zero-sum game. The generator G turns noise z ~ N(0, I) into an image; the
discriminator D(x) outputs the probability that x is a real image rather than one of G's. D is trained
to tell them apart and G to fool it:

    min_G max_D  E_x [ log D(x) ] + E_z [ log(1 - D(G(z))) ]

With D's output a logit and BCE the binary cross-entropy, one training step is

    D step:  L_D = BCE(D(x), 1) + BCE(D(G(z)), 0)      (G's images detached: only D learns)
    G step:  L_G = BCE(D(G(z)), 1)                     (only G learns)

G's loss is the "non-saturating" form: minimising log(1 - D(G(z))) gives G almost no gradient early on,
when D rejects its images easily; maximising log D(G(z)) has the same fixed point and strong gradients.
At the game's equilibrium G's images are distributed like the data and D(x) = 1/2 everywhere.

The game is unstable: when D wins too easily G's gradient vanishes, and G can find a few images that
fool D and produce only those (mode collapse, visible as a lopsided histogram of generated classes).

**MLP GAN** (the notes' version): G is z (100) - 256 - 512 - 1024 - 784 with LeakyReLU and tanh, D is
784 - 512 - 256 - 1 with LeakyReLU(0.2).

**DCGAN**: G projects z to 128 x 7 x 7 and upsamples with 4x4 transposed convolutions of stride 2
(7 -> 14 -> 28), with BatchNorm and ReLU, tanh at the end; D mirrors it with stride-2 convolutions,
BatchNorm (not on its first layer) and LeakyReLU(0.2), and no pooling or fully connected hidden layers.
Both use Adam with lr 2e-4 and beta1 = 0.5, and weights drawn from N(0, 0.02) (DCGAN's recipe).
Images are scaled to [-1, 1] to match tanh.

``image`` = (channels, height, width) is MNIST's (1, 28, 28) by default: the MLPs take any size, DCGAN
sides that are multiples of 4 (it starts at a quarter of the size and doubles twice).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepzoo.errors import DeepzooError


MNIST = (1, 28, 28)


def mlp_generator(latent: int, image: tuple = MNIST) -> nn.Module:
    pixels = image[0] * image[1] * image[2]
    return nn.Sequential(
        nn.Linear(latent, 256), nn.LeakyReLU(0.2), nn.Linear(256, 512), nn.LeakyReLU(0.2),
        nn.Linear(512, 1024), nn.LeakyReLU(0.2), nn.Linear(1024, pixels), nn.Tanh(), nn.Unflatten(1, tuple(image)))


def mlp_discriminator(image: tuple = MNIST) -> nn.Module:
    pixels = image[0] * image[1] * image[2]
    return nn.Sequential(nn.Flatten(), nn.Linear(pixels, 512), nn.LeakyReLU(0.2), nn.Linear(512, 256),
                         nn.LeakyReLU(0.2), nn.Linear(256, 1))


def dc_generator(latent: int, width: int, image: tuple = MNIST) -> nn.Module:
    c, h, w = image[0], image[1] // 4, image[2] // 4
    return nn.Sequential(
        nn.Linear(latent, 2 * width * h * w, bias=False), nn.Unflatten(1, (2 * width, h, w)),      # 7x7
        nn.BatchNorm2d(2 * width), nn.ReLU(),
        nn.ConvTranspose2d(2 * width, width, 4, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),   # 14x14
        nn.ConvTranspose2d(width, c, 4, 2, 1), nn.Tanh())                                              # 28x28


def dc_discriminator(width: int, image: tuple = MNIST) -> nn.Module:
    c, h, w = image[0], image[1] // 4, image[2] // 4
    return nn.Sequential(
        nn.Conv2d(c, width, 4, 2, 1), nn.LeakyReLU(0.2),                                               # 14x14
        nn.Conv2d(width, 2 * width, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * width), nn.LeakyReLU(0.2),  # 7x7
        nn.Flatten(), nn.Linear(2 * width * h * w, 1))


class GAN(nn.Module):
    """The two players in one module (one state dict, one checkpoint): ``generator`` and ``discriminator``."""

    def __init__(self, kind: str = "mlp", latent: int = 100, width: int = 64, image: tuple = MNIST) -> None:
        super().__init__()
        if kind not in ("mlp", "dcgan"):
            raise DeepzooError(f"model.kind must be 'mlp' or 'dcgan', got {kind!r}")
        if latent < 1 or width < 1:
            raise DeepzooError("model.latent and model.width must be positive")
        if kind == "dcgan" and (image[1] % 4 or image[2] % 4):
            raise DeepzooError(f"DCGAN takes image sides that are multiples of 4, got {image[2]}x{image[1]}")
        self.kind, self.latent, self.image = kind, latent, tuple(image)
        if kind == "mlp":
            self.generator, self.discriminator = mlp_generator(latent, image), mlp_discriminator(image)
        else:
            self.generator, self.discriminator = dc_generator(latent, width, image), dc_discriminator(width, image)
            for m in self.modules():  # DCGAN: weights ~ N(0, 0.02); BatchNorm scales ~ N(1, 0.02)
                if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                    nn.init.normal_(m.weight, 0.0, 0.02)
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.normal_(m.weight, 1.0, 0.02)
                    nn.init.zeros_(m.bias)

    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """z ~ N(0, I), drawn on the CPU (from a seeded generator: a resumed run draws the same) and moved
        to the model's device and precision."""
        p = next(self.parameters())
        return torch.randn(n, self.latent, generator=generator).to(p.device, p.dtype)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] for latent points z (G in its current mode)."""
        return (self.generator(z) + 1) / 2

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n new images with pixel values in [0, 1] (G in evaluation mode: BatchNorm's running statistics)."""
        was = self.generator.training
        self.generator.eval()
        out = (self.generator(self.noise(n, generator)) + 1) / 2
        self.generator.train(was)
        return out


def train_step(model: GAN, real: torch.Tensor, optimizer: torch.optim.Optimizer,
               generator: torch.Generator | None = None, z: torch.Tensor | None = None,
               players: tuple[nn.Module, nn.Module] | None = None) -> dict:
    """One D step then one G step on a batch of real images in [-1, 1]; both players share one optimizer
    with one parameter group each, and each step leaves the other player's gradients at None, so Adam
    updates only the player whose loss it is.

    ``z``: the batch's latent codes (drawn from ``generator`` if not given). ``players``: G and D as the
    steps call them, their DDP wrappers under torchrun: each averages its own player's gradients across
    processes in the backward pass of that player's loss. The G step calls D itself, not its wrapper: D's
    gradients there are thrown away, so they are not averaged."""
    n = len(real)
    ones, zeros = real.new_ones(n, 1), real.new_zeros(n, 1)
    G, D = players or (model.generator, model.discriminator)
    fake = G(model.noise(n, generator) if z is None else z)

    optimizer.zero_grad(set_to_none=True)
    d_real, d_fake = D(real), D(fake.detach())
    loss_d = F.binary_cross_entropy_with_logits(d_real, ones) + F.binary_cross_entropy_with_logits(d_fake, zeros)
    loss_d.backward()
    optimizer.step()                                    # G's parameters have no gradient: only D moves

    optimizer.zero_grad(set_to_none=True)
    loss_g = F.binary_cross_entropy_with_logits(model.discriminator(fake), ones)   # non-saturating
    loss_g.backward()
    for p in model.discriminator.parameters():
        p.grad = None                                   # only G moves
    optimizer.step()
    loss_d, loss_g = float(loss_d.detach()), float(loss_g.detach())
    return {"loss": loss_d + loss_g, "d_loss": loss_d, "g_loss": loss_g,
            "d_real": float(torch.sigmoid(d_real.detach()).mean()),   # D's belief that real images are real
            "d_fake": float(torch.sigmoid(d_fake.detach()).mean())}   # ... and that G's images are
