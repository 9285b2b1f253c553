r"""The Vision Transformer (ViT): an image read as a sentence of patches (Dosovitskiy et al. 2021).

"An image is worth 16x16 words." Cut the image x (C, H, W) into N = (H / P)(W / P) square patches of
P x P pixels, flatten each into a vector x_p^i of C P^2 numbers, and the image is a sequence of N tokens.
From there on it is the Transformer encoder of the text models, unchanged (eqs. 1-4 of the paper):

    z_0  = [x_class; x_p^1 E; x_p^2 E; ...; x_p^N E] + E_pos,   E (C P^2, D),  E_pos (N + 1, D)   (1)
    z'_l = MSA(LN(z_{l-1})) + z_{l-1},                           l = 1..L                          (2)
    z_l  = MLP(LN(z'_l)) + z'_l,                                 l = 1..L                          (3)
    y    = LN(z_L^0)                                                                               (4)

E is one linear map shared by every patch (the patch embedding); x_class is a learned vector put in
front of the patches, like BERT's [CLS] token: it belongs to no patch, attends to all of them in every
layer, and its final state z_L^0 is the image's summary, which a small MLP head turns into class scores.
E_pos is a learned table of positions: without it the encoder would see a *set* of patches (attention
is permutation-equivariant) and could not tell the top-left corner from the bottom-right. MSA is
multi-head self-attention, MLP is two linear layers with a GELU between, LN is LayerNorm; the norms
come *before* each sub-block (pre-norm), so the residual stream runs from z_0 to z_L untouched
(deepzoo/nn/attention.py explains both orders).

Splitting into patches and multiplying by E is exactly a convolution with a P x P kernel and stride P:
each output position of the convolution is the dot product of one patch with each of the D filters,
and the filters are the columns of E reshaped to (C, P, P). :class:`PatchEmbedding` is that Conv2d (one
fast kernel); its :meth:`PatchEmbedding.unfold_linear` computes the same numbers the long way, cutting
the patches out with ``F.unfold`` and applying E as a linear layer (tests/test_vit.py checks that the
two agree, values and gradients).

The inductive-bias claim (section 3.1 and 4). A convolutional network builds two assumptions about
images into every layer: *locality* (a unit sees only a small neighbourhood) and *translation
equivariance* (the same filter slides over every position, so a shifted cat gives shifted features).
ViT has almost neither: only the patch cut is local, and only the shared E is translation-equivariant
(and only by multiples of P). Every spatial relation, even "these two patches are neighbours", has to be
learned from the data, starting from position embeddings that know nothing of the 2-D grid. The
paper's finding is that this costs accuracy when data are scarce: trained on ImageNet's 1.3 M images a
ViT ends a few points below a ResNet of comparable size; pre-trained on ImageNet-21k (14 M images) it
draws level, and on JFT-300M (300 M) it pulls ahead: "large scale training trumps inductive bias". So on
CIFAR-10 from scratch, with 50,000 images or fewer, expect a ViT to need more epochs and to stay below a
ResNet of the same cost; ``deepzoo experiment vit-vs-resnet`` measures that at several training-set
sizes on this machine.

Initialisation follows the paper's code (google-research/vision_transformer): the linear layers (W^Q,
W^K, W^V each on its own, W^O, the MLPs) Glorot/Xavier uniform, U(-a, a) with
a = sqrt(6 / (fan_in + fan_out)), and zero biases; the patch embedding's filters LeCun normal,
N(0, 1 / fan_in) with fan_in = C P^2; the positions N(0, 0.02). Two departures for training from
scratch: the head is Xavier too (their code starts it at zero, for fine-tuning), and the class token
starts from N(0, 0.02) rather than from zero. The GPT-style N(0, 0.02) for the linear layers is far too
small for a net this narrow: trained for 3 epochs on the 5,000 packaged MNIST digits (234 steps of 64), a
ViT of width 64 and 4 layers reached 31% test accuracy with it and 67% with Xavier's.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from deepzoo.errors import DeepzooError
from deepzoo.nn.attention import EncoderLayer, LayerNorm, LearnedPositions


class PatchEmbedding(nn.Module):
    """Image (B, C, H, W) -> tokens (B, N, D): each P x P patch, flattened, times E (plus a bias).

    A Conv2d with kernel = stride = P. Rows and columns beyond the last whole patch (H mod P, W mod P)
    are not seen, as the convolution drops them.
    """

    def __init__(self, in_channels: int, dim: int, patch: int) -> None:
        super().__init__()
        self.patch = patch
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=patch, stride=patch)
        fan_in = in_channels * patch * patch
        nn.init.normal_(self.proj.weight, std=1.0 / math.sqrt(fan_in))         # LeCun normal
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)                        # (B, D, H/P, W/P) -> (B, N, D)

    def unfold_linear(self, x: torch.Tensor) -> torch.Tensor:
        """The same map written as the paper writes it: cut out the patches x_p^i (B, N, C P^2), in the
        order the convolution visits them (row by row), and multiply by E = the filters as a (C P^2, D)
        matrix."""
        P = self.patch
        patches = F.unfold(x, kernel_size=P, stride=P).transpose(1, 2)        # (B, N, C P^2)
        E = self.proj.weight.reshape(self.proj.out_channels, -1)              # (D, C P^2): rows are filters
        return F.linear(patches, E, self.proj.bias)                           # x_p E + b


class ViT(nn.Module):
    """Vision Transformer classifier: patches -> [class token; patch tokens] + positions -> L pre-norm
    encoder layers -> LayerNorm -> MLP head on the class token's state.

    ``image_size`` (H, W) fixes the number of positions, N + 1 = (H // patch)(W // patch) + 1.
    ``mlp_dim`` is the width inside each encoder layer's MLP. ``head_hidden`` > 0 gives the head one
    tanh hidden layer of that width (the paper's pre-training head); 0 gives a single linear layer (its
    fine-tuning head). ``dropout`` applies after the embeddings, inside the attention and the MLPs.
    ``pool`` picks the summary the head reads: ``"cls"``, the class token's final state (eq. 4, the
    paper's); ``"mean"``, no class token at all and y = mean_i LN(z_L^i), the global average of the patch
    tokens' final states (Beyer et al. 2022, "Better plain ViT baselines"; the paper's appendix D.3 finds
    the two equally good when each has its own learning rate). Averaging gives every patch token a
    direct gradient from the loss from the first step, where the class token has to learn whom to attend
    to first.
    """

    def __init__(self, image_size: tuple[int, int] = (28, 28), patch: int = 4, in_channels: int = 1,
                 num_classes: int = 10, dim: int = 128, depth: int = 6, heads: int = 4, mlp_dim: int = 256,
                 dropout: float = 0.0, head_hidden: int = 0, impl: str = "torch", pool: str = "cls") -> None:
        super().__init__()
        H, W = image_size
        if pool not in ("cls", "mean"):
            raise DeepzooError(f'pool must be "cls" (the class token) or "mean" (average of the patch tokens), '
                               f"got {pool!r}")
        if patch < 1 or H < patch or W < patch:
            raise DeepzooError(f"patches of {patch}x{patch} pixels do not fit images of {H}x{W}")
        if dim % heads:
            raise DeepzooError(f"model width {dim} is not divisible by the {heads} heads")
        self.num_patches = (H // patch) * (W // patch)
        self.patch_embed = PatchEmbedding(in_channels, dim, patch)                      # x_p E
        self.pool = pool
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if pool == "cls" else None  # x_class
        self.positions = LearnedPositions(dim, self.num_patches + (pool == "cls"))     # E_pos
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            EncoderLayer(dim, heads, mlp_dim, dropout, activation="gelu", norm_first=True, impl=impl)
            for _ in range(depth))                                                     # eqs. 2 and 3
        self.norm = LayerNorm(dim, impl=impl)                                          # eq. 4
        self.head = (nn.Sequential(nn.Linear(dim, head_hidden), nn.Tanh(), nn.Linear(head_hidden, num_classes))
                     if head_hidden > 0 else nn.Linear(dim, num_classes))
        self._init_weights()

    def _init_weights(self) -> None:
        if self.cls_token is not None:
            nn.init.normal_(self.cls_token, std=0.02)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            if hasattr(module, "in_proj_weight"):                                      # W^Q, W^K, W^V
                with torch.no_grad():
                    for w in module.in_proj_weight.chunk(3):                           # each (D, D) on its own
                        nn.init.xavier_uniform_(w)
                if module.in_proj_bias is not None:
                    nn.init.zeros_(module.in_proj_bias)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Eq. 1: images (B, C, H, W) -> z_0 (B, N + 1, D); (B, N, D) without the class token."""
        tokens = self.patch_embed(x)                                                  # (B, N, D)
        if tokens.shape[1] != self.num_patches:
            raise DeepzooError(f"the image gives {tokens.shape[1]} patches; this model was built for "
                               f"{self.num_patches} (its image size)")
        if self.cls_token is not None:
            cls = self.cls_token.expand(len(x), -1, -1)                               # (B, 1, D)
            tokens = torch.cat([cls, tokens], dim=1)
        return self.dropout(self.positions(tokens))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """y = LN(z_L^0), the class token's final state, or mean_i LN(z_L^i) with ``pool="mean"``: (B, D)."""
        z = self.embed(x)
        for block in self.blocks:
            z = block(z)
        if self.pool == "mean":
            return self.norm(z).mean(dim=1)
        return self.norm(z[:, 0])          # LN is per position: normalising only z_L^0 gives the same y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """images (B, C, H, W) -> class scores (B, num_classes)."""
        return self.head(self.features(x))
