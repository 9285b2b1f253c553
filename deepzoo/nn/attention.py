"""The Transformer's blocks, written out: attention, positions, LayerNorm, feed-forward, layers.

Shapes: B = batch, L = target length, S = source (key) length, E = model width (d_model),
H = heads, D = E / H per-head width. Everything is batch-first: (B, L, E).

Scaled dot-product attention (Vaswani et al. 2017, eq. 1). Each query is compared with every key;
the scores, softmaxed over the keys, weight the values:

    Attention(Q, K, V) = softmax(Q K^T / sqrt(D) + M) V

The division by sqrt(D) keeps the scores' variance near 1 whatever the width (a dot product of D
unit-variance terms has variance D), so the softmax does not saturate. M is the mask: 0 where a
query may look, -inf where it may not, so those keys get weight exactly 0. Two masks are used:

    padding mask   key j is padding                 (the batch's shorter sentences)
    causal mask    key j lies after query i (j > i) (a decoder must not see the future)

Multi-head attention runs H attentions side by side on learned projections of width D, and mixes
their concatenated outputs with one more projection:

    head_h = Attention(Q W_h^Q, K W_h^K, V W_h^V),   MHA(Q, K, V) = [head_1; ...; head_H] W^O

Each layer adds a position-wise feed-forward network FFN(x) = W_2 act(W_1 x + b_1) + b_2 (the same
two-layer MLP applied to every position) and wraps both sub-blocks in a residual connection and a
LayerNorm, either after the residual sum (post-norm, the original paper) or before the sub-block
(pre-norm, GPT-2 and most models since: its residual path is an identity from input to output, which
trains deep stacks without warm-up tricks):

    post-norm   x = LN(x + Sublayer(x))
    pre-norm    x = x + Sublayer(LN(x))

Every module keeps the parameter names of its torch twin (nn.MultiheadAttention, nn.LayerNorm,
nn.TransformerEncoderLayer, nn.TransformerDecoderLayer), so a state dict loads either way;
tests/test_attention.py copies weights across and compares outputs and gradients. ``impl="torch"``
computes attention with F.scaled_dot_product_attention (a fused kernel) and LayerNorm with
F.layer_norm; ``impl="scratch"`` uses the functions written out below.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from deepzoo.errors import DeepzooError
from deepzoo.nn.layers import dropout as _dropout
from deepzoo.nn.layers import softmax as _softmax

IMPLS = ("torch", "scratch")
ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


def _check(impl: str) -> str:
    if impl not in IMPLS:
        raise DeepzooError(f"unknown implementation {impl!r}; choose one of: {', '.join(IMPLS)}")
    return impl


# ----------------------------------------------------------------------------------------------
# Attention
# ----------------------------------------------------------------------------------------------


def scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, training=True):
    """softmax(q k^T / sqrt(D) + M) v, for q (..., L, D), k (..., S, D), v (..., S, Dv).

    ``attn_mask``: boolean, True where a query may attend (F.scaled_dot_product_attention's
    convention), or a float mask added to the scores; broadcast to (..., L, S). ``is_causal`` adds
    the lower-triangular mask (query i sees keys 0..i). Every query must keep at least one key.
    """
    L, S = q.shape[-2], k.shape[-2]
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])                 # (..., L, S)
    if is_causal:
        allowed = torch.ones(L, S, dtype=torch.bool, device=q.device).tril()
        scores = scores.masked_fill(~allowed, float("-inf"))
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        else:
            scores = scores + attn_mask
    weights = _dropout(_softmax(scores, dim=-1), dropout_p, training)
    return weights @ v


def attention_mask(batch: int, L: int, S: int, key_padding_mask=None, causal: bool = False, device=None):
    """One boolean mask (B, 1, L, S), True = may attend, from a padding mask and/or causality.

    ``key_padding_mask`` is (B, S) with True at padding (nn.MultiheadAttention's convention, the
    opposite of the attention mask's). Returns None when there is nothing to mask.
    """
    if key_padding_mask is None and not causal:
        return None
    allowed = torch.ones(batch, 1, L, S, dtype=torch.bool, device=device)
    if key_padding_mask is not None:
        allowed = allowed & ~key_padding_mask[:, None, None, :]
    if causal:
        allowed = allowed & torch.ones(L, S, dtype=torch.bool, device=device).tril()
    return allowed


class MultiheadAttention(nn.Module):
    """Multi-head attention, batch first, with nn.MultiheadAttention's parameters:
    ``in_proj_weight`` (3E, E) stacks W^Q, W^K, W^V; ``out_proj`` is W^O.

    ``forward(query, key, value, key_padding_mask=None, causal=False)`` returns (B, L, E).
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 impl: str = "torch") -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise DeepzooError(f"model width {embed_dim} is not divisible by the {num_heads} heads")
        self.embed_dim, self.num_heads, self.dropout, self.impl = embed_dim, num_heads, dropout, _check(impl)
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * embed_dim)) if bias else None
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        nn.init.xavier_uniform_(self.in_proj_weight)                          # torch's initialisation
        if bias:
            nn.init.zeros_(self.out_proj.bias)

    def forward(self, query, key, value, key_padding_mask=None, causal: bool = False):
        B, L, E = query.shape
        S = key.shape[1]
        W, b = self.in_proj_weight, self.in_proj_bias
        bq, bkv = (None, None) if b is None else (b[:E], b[E:])
        if query is key and key is value:                                     # self-attention: one matmul
            q, k, v = F.linear(query, W, b).chunk(3, dim=-1)
        else:
            q = F.linear(query, W[:E], bq)
            k, v = F.linear(key, W[E:], bkv).chunk(2, dim=-1) if key is value else (
                F.linear(key, W[E:2 * E], None if b is None else b[E:2 * E]),
                F.linear(value, W[2 * E:], None if b is None else b[2 * E:]))
        H, D = self.num_heads, E // self.num_heads
        q, k, v = (t.reshape(B, -1, H, D).transpose(1, 2) for t in (q, k, v))  # B, H, L|S, D
        p = self.dropout if self.training else 0.0
        if key_padding_mask is None:                                          # the fused kernel's own causal path
            mask, is_causal = None, causal
        else:
            mask, is_causal = attention_mask(B, L, S, key_padding_mask, causal, query.device), False
        if self.impl == "torch":
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, is_causal=is_causal)
        else:
            out = scaled_dot_product_attention(q, k, v, mask, p, is_causal, self.training)
        return self.out_proj(out.transpose(1, 2).reshape(B, L, E))             # concat heads, then W^O


# ----------------------------------------------------------------------------------------------
# Positions
# ----------------------------------------------------------------------------------------------


def sinusoids(length: int, dim: int) -> torch.Tensor:
    """PE[pos, 2i] = sin(pos / 10000^(2i/dim)),  PE[pos, 2i+1] = cos(pos / 10000^(2i/dim)).

    Each pair of channels is a clock at its own frequency, from one turn per 2*pi positions down to
    one per 10000*2*pi; PE[pos + k] is a fixed rotation of PE[pos] for every pos, which lets
    attention express relative offsets.
    """
    if dim % 2:
        raise DeepzooError(f"sinusoidal positions need an even width, got {dim}")
    pos = torch.arange(length, dtype=torch.float64)[:, None]
    freq = torch.exp(-math.log(10000.0) * torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    pe = torch.zeros(length, dim, dtype=torch.float64)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)
    return pe.float()


class SinusoidalPositions(nn.Module):
    """x * sqrt(E) + PE[:L] (fixed, not learned; the embedding is scaled up as in the paper)."""

    def __init__(self, dim: int, max_len: int = 1024, scale: bool = True) -> None:
        super().__init__()
        self.register_buffer("pe", sinusoids(max_len, dim), persistent=False)
        self.scale = math.sqrt(dim) if scale else 1.0

    def forward(self, x):
        if x.shape[1] > self.pe.shape[0]:
            raise DeepzooError(f"sequence of {x.shape[1]} positions is longer than max_len {self.pe.shape[0]}")
        return x * self.scale + self.pe[: x.shape[1]]


class LearnedPositions(nn.Module):
    """x + P[:L], with P a trained (max_len, E) table (GPT, BERT)."""

    def __init__(self, dim: int, max_len: int = 1024) -> None:
        super().__init__()
        self.table = nn.Embedding(max_len, dim)
        nn.init.normal_(self.table.weight, std=0.02)

    def forward(self, x):
        if x.shape[1] > self.table.num_embeddings:
            raise DeepzooError(f"sequence of {x.shape[1]} positions is longer than max_len "
                               f"{self.table.num_embeddings}")
        return x + self.table.weight[: x.shape[1]]


# ----------------------------------------------------------------------------------------------
# LayerNorm and the feed-forward network
# ----------------------------------------------------------------------------------------------


class LayerNorm(nn.Module):
    """LN(x) = (x - mean(x)) / sqrt(var(x) + eps) * gamma + beta, over the last dimension.

    Statistics are per position (not per batch, unlike BatchNorm), so it behaves the same in
    training and evaluation and for any batch size. var is the biased (1/E) variance.
    """

    def __init__(self, dim: int, eps: float = 1e-5, bias: bool = True, impl: str = "torch") -> None:
        super().__init__()
        self.eps, self.impl = eps, _check(impl)
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim)) if bias else None

    def forward(self, x):
        if self.impl == "torch":
            return F.layer_norm(x, self.weight.shape, self.weight, self.bias, self.eps)
        mean = x.mean(dim=-1, keepdim=True)
        var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
        y = (x - mean) / torch.sqrt(var + self.eps) * self.weight
        return y if self.bias is None else y + self.bias


class _FeedForward(nn.Module):
    """The shared half of both layers: FFN(x) = linear2(dropout(act(linear1(x)))) and the norms."""

    def _ff(self, x):
        return self.dropout_ff(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def _init_ff(self, d_model, dim_feedforward, dropout, activation, bias):
        if activation not in ACTIVATIONS:
            raise DeepzooError(f"unknown activation {activation!r}; choose one of: {', '.join(ACTIVATIONS)}")
        self.linear1 = nn.Linear(d_model, dim_feedforward, bias=bias)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model, bias=bias)
        self.activation = ACTIVATIONS[activation]


# ----------------------------------------------------------------------------------------------
# Encoder and decoder layers
# ----------------------------------------------------------------------------------------------


class EncoderLayer(_FeedForward):
    """Self-attention then feed-forward, each with a residual and a LayerNorm (post- or pre-norm).

    With ``causal=True`` in forward, the self-attention is masked to the past: this is a GPT block.
    Parameter names follow nn.TransformerEncoderLayer.
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str = "relu", norm_first: bool = False, bias: bool = True,
                 layer_norm_eps: float = 1e-5, impl: str = "torch") -> None:
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = MultiheadAttention(d_model, nhead, dropout, bias, impl)
        self._init_ff(d_model, dim_feedforward, dropout, activation, bias)
        self.norm1 = LayerNorm(d_model, layer_norm_eps, bias, impl)
        self.norm2 = LayerNorm(d_model, layer_norm_eps, bias, impl)
        self.dropout1, self.dropout_ff = nn.Dropout(dropout), nn.Dropout(dropout)

    def _sa(self, x, padding, causal):
        return self.dropout1(self.self_attn(x, x, x, key_padding_mask=padding, causal=causal))

    def forward(self, x, padding=None, causal: bool = False):
        """x (B, L, E); ``padding`` (B, L), True at padding positions."""
        if self.norm_first:
            x = x + self._sa(self.norm1(x), padding, causal)
            return x + self._ff(self.norm2(x))
        x = self.norm1(x + self._sa(x, padding, causal))
        return self.norm2(x + self._ff(x))


class DecoderLayer(_FeedForward):
    """Causal self-attention, cross-attention to the encoder's output (the memory), feed-forward;
    each with a residual and a LayerNorm. Parameter names follow nn.TransformerDecoderLayer.

    In cross-attention the queries come from the decoder and the keys and values from the memory:
    each target position looks at every source word it may need to translate next.
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str = "relu", norm_first: bool = False, bias: bool = True,
                 layer_norm_eps: float = 1e-5, impl: str = "torch") -> None:
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = MultiheadAttention(d_model, nhead, dropout, bias, impl)
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout, bias, impl)
        self._init_ff(d_model, dim_feedforward, dropout, activation, bias)
        self.norm1 = LayerNorm(d_model, layer_norm_eps, bias, impl)
        self.norm2 = LayerNorm(d_model, layer_norm_eps, bias, impl)
        self.norm3 = LayerNorm(d_model, layer_norm_eps, bias, impl)
        self.dropout1, self.dropout2, self.dropout_ff = nn.Dropout(dropout), nn.Dropout(dropout), nn.Dropout(dropout)

    def _sa(self, x, padding):
        return self.dropout1(self.self_attn(x, x, x, key_padding_mask=padding, causal=True))

    def _ca(self, x, memory, memory_padding):
        return self.dropout2(self.multihead_attn(x, memory, memory, key_padding_mask=memory_padding))

    def forward(self, x, memory, padding=None, memory_padding=None):
        """x (B, L, E) target so far; memory (B, S, E); paddings (B, L) and (B, S), True at padding."""
        if self.norm_first:
            x = x + self._sa(self.norm1(x), padding)
            x = x + self._ca(self.norm2(x), memory, memory_padding)
            return x + self._ff(self.norm3(x))
        x = self.norm1(x + self._sa(x, padding))
        x = self.norm2(x + self._ca(x, memory, memory_padding))
        return self.norm3(x + self._ff(x))
