"""BERT: an encoder pre-trained by masked language modelling, then fine-tuned (Devlin et al. 2019).

Pre-training needs no labels. A text is cut into subword tokens t_1 .. t_T (WordPiece), framed as
``[CLS] t_1 .. t_T [SEP]``, and 15% of the positions are chosen at random. Of those, 80% are replaced by
``[MASK]``, 10% by a random token and 10% are left as they are; the model must recover the original token
at every chosen position, from both sides of its context:

    h_0 = E[t_i] + P[i]                         token embedding + learned position embedding
    h_l = Block(h_{l-1}),  l = 1..n_layer       pre-norm Transformer block, self-attention over the whole
          a = h + MHA(LN(h))                    text (no causal mask: every position sees both sides;
          h = a + FFN(LN(a))                    padding is masked), FFN(x) = W_2 GELU(W_1 x + b_1) + b_2
    H   = LN(h_n)                               the encoder's output, one vector a token
    logits_i = LN(GELU(W_t H_i + b_t)) E^T + b  the MLM head: a transform, then the tied embedding
    loss = mean over chosen i of -log softmax(logits_i)[t_i]

Why the 80/10/10 split: ``[MASK]`` never occurs when the model is fine-tuned, so if it were the only
corruption the encoder could learn to represent well only the positions that show it. Random and unchanged
tokens force a good representation of *every* token, since any one may be a question. Masks are drawn
anew every epoch (RoBERTa's dynamic masking), so the model never sees the same question twice.

Fine-tuning keeps the encoder and puts a new head on it: the sentence vector is H at ``[CLS]`` (the token
whose only job is to gather the sentence), or the mean of H over the real tokens; a dropout and one linear
layer give the class scores. All the weights train, at a small learning rate with warm-up and linear decay
(AdamW), so the pre-trained knowledge is adjusted rather than overwritten; ``freeze_layers`` keeps the
embeddings and the lowest layers fixed.

Sizes here are small (the defaults: 4 layers of width 128, BERT-base has 12 of 768) so that pre-training
fits in half an hour of two CPU cores; the recipe's docstring (deepzoo/recipes/pretrain.py) says what that
buys. The blocks are deepzoo's own (deepzoo/nn/attention.py), tested against PyTorch's.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from deepzoo.errors import DeepzooError
from deepzoo.nn.attention import EncoderLayer, LayerNorm, LearnedPositions

POOLS = ("cls", "mean", "max")


class Encoder(nn.Module):
    """Token ids (B, L) and a padding mask (B, L), True at padding -> H (B, L, E)."""

    def __init__(self, vocab_size: int, max_len: int = 128, d_model: int = 256, n_layer: int = 4,
                 n_head: int = 4, dropout: float = 0.1, pad_id: int = 0, impl: str = "torch") -> None:
        super().__init__()
        self.max_len, self.pad_id = max_len, pad_id
        self.embed = nn.Embedding(vocab_size, d_model)
        self.positions = LearnedPositions(d_model, max_len)
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(
            EncoderLayer(d_model, n_head, 4 * d_model, dropout, activation="gelu", norm_first=True, impl=impl)
            for _ in range(n_layer))
        self.norm = LayerNorm(d_model, impl=impl)
        self.apply(_init)
        for layer in self.layers:   # the projections that write into the residual stream, as in GPT-2
            for proj in (layer.self_attn.out_proj, layer.linear2):
                nn.init.normal_(proj.weight, std=0.02 / math.sqrt(2 * n_layer))

    def forward(self, ids: torch.Tensor, padding: torch.Tensor | None = None) -> torch.Tensor:
        if ids.shape[1] > self.max_len:
            raise DeepzooError(f"{ids.shape[1]} tokens do not fit the encoder's {self.max_len} positions")
        x = self.dropout(self.positions(self.embed(ids)))
        for layer in self.layers:
            x = layer(x, padding=padding)
        return self.norm(x)


def _init(module: nn.Module) -> None:
    """BERT's initialisation: weights N(0, 0.02), biases 0 (LayerNorms keep 1 and 0)."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
    if hasattr(module, "in_proj_weight"):
        nn.init.normal_(module.in_proj_weight, std=0.02)
        if module.in_proj_bias is not None:
            nn.init.zeros_(module.in_proj_bias)


def padding_mask(lengths: torch.Tensor | None, width: int) -> torch.Tensor | None:
    """(B, width) True at the positions past each row's length; None when no row has any (packed rows):
    attention then runs without a mask, on the fused kernel's fastest path."""
    if lengths is None or (not torch.jit.is_tracing() and bool((lengths >= width).all())):
        return None                       # (an export traces the masked path, which serves every batch)
    return torch.arange(width, device=lengths.device)[None, :] >= lengths[:, None]


class MaskedLM(nn.Module):
    """The encoder with the MLM head; ``forward(ids, lengths)`` -> logits (B, L, V) at every position
    (the loss reads only the chosen ones: their labels are the token ids, the others -100)."""

    def __init__(self, encoder: Encoder) -> None:
        super().__init__()
        self.encoder = encoder
        d, v = encoder.embed.embedding_dim, encoder.embed.num_embeddings
        self.transform = nn.Linear(d, d)
        self.transform_norm = LayerNorm(d)
        self.bias = nn.Parameter(torch.zeros(v))
        _init(self.transform)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor | None = None, labels: torch.Tensor | None = None):
        """With ``labels`` (B, L), only the chosen positions (label >= 0) go through the head: the output
        matrix over the vocabulary is the costliest product, and 85% of its rows would be thrown away."""
        h = self.encoder(ids, padding_mask(lengths, ids.shape[1]))
        if labels is not None:
            h = h[labels >= 0]                                                # (N chosen, E)
        h = self.transform_norm(F.gelu(self.transform(h)))
        return F.linear(h, self.encoder.embed.weight, self.bias)              # tied with the input embedding


def mask_tokens(ids: torch.Tensor, lengths: torch.Tensor, vocab_size: int, mask_id: int, first_normal: int,
                generator: torch.Generator | None = None, p: float = 0.15) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's corruption of a batch (B, L): (inputs, labels).

    Each real token other than the specials ([CLS], [SEP], padding: ids below ``first_normal`` are special)
    is chosen with probability ``p``; a chosen token becomes ``[MASK]`` (80%), a random normal token (10%)
    or stays (10%). ``labels`` holds the original id at chosen positions and -100 elsewhere (cross-entropy's
    ignore index). At least one token of the batch is chosen, so the loss is always defined."""
    real = (ids >= first_normal) & (torch.arange(ids.shape[1])[None, :] < lengths[:, None])
    u = torch.rand(ids.shape, generator=generator)
    chosen = (u < p) & real
    if not chosen.any():                                          # a batch of very short texts: ask one
        chosen.view(-1)[int(torch.nonzero(real.view(-1))[0])] = True
    kind = torch.rand(ids.shape, generator=generator)             # which corruption, per position
    random_ids = torch.randint(first_normal, vocab_size, ids.shape, generator=generator)
    inputs = ids.clone()
    inputs[chosen & (kind < 0.8)] = mask_id
    swap = chosen & (kind >= 0.8) & (kind < 0.9)
    inputs[swap] = random_ids[swap]
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    return inputs, labels


class EncoderClassifier(nn.Module):
    """A sentence classifier on the encoder: ``forward(ids, lengths)`` -> class scores (B, C).

    The sentence vector is H at position 0 (``[CLS]``: the tokenizer puts it first), or the mean or the
    maximum of H over the real tokens; then dropout and one linear layer."""

    def __init__(self, encoder: Encoder, num_classes: int, pool: str = "cls", dropout: float = 0.1) -> None:
        super().__init__()
        if pool not in POOLS:
            raise DeepzooError(f"model.pool: the encoder pools with {', '.join(POOLS)}, got {pool!r}")
        self.encoder, self.pool = encoder, pool
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.embed.embedding_dim, num_classes)
        _init(self.head)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        padding = padding_mask(lengths, ids.shape[1])
        h = self.encoder(ids, padding)
        if self.pool == "cls":
            v = h[:, 0]
        elif self.pool == "mean":
            v = (h if padding is None else h.masked_fill(padding[..., None], 0.0)).sum(1) / lengths[:, None].to(h.dtype)
        else:
            v = (h if padding is None else h.masked_fill(padding[..., None], float("-inf"))).max(1).values
        return self.head(self.dropout(v))

    def freeze(self, layers: int) -> None:
        """Keep the embeddings and the lowest ``layers`` blocks fixed (0: train everything)."""
        if layers > len(self.encoder.layers):
            raise DeepzooError(f"model.freeze_layers = {layers}, but the encoder has {len(self.encoder.layers)} layers")
        if layers > 0:
            for module in (self.encoder.embed, self.encoder.positions, *self.encoder.layers[:layers]):
                module.requires_grad_(False)
