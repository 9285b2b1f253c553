"""GPT: a decoder-only Transformer that predicts the next token (Radford et al. 2018, 2019).

A text is a sequence of token ids t_1 .. t_T (here characters). The model reads a window of at most
``block_size`` tokens and, at every position i, outputs a distribution over the token that comes next:

    h_0 = E[t_i] + P[i]                          token embedding + learned position embedding
    h_l = Block(h_{l-1}),  l = 1..n_layer        pre-norm Transformer block, causal self-attention:
          a = h + MHA(LN(h)),  masked so position i sees positions <= i only
          h = a + FFN(LN(a)),  FFN(x) = W_2 GELU(W_1 x),  4x wider inside
    logits_i = LN(h_n)_i E^T                     the output matrix is the embedding (tied)
    loss = mean_i -log softmax(logits_i)[t_{i+1}]

The causal mask makes one forward pass train every position at once: T predictions per window, each
seeing only its own past, which is what lets a Transformer use all its parallelism in training (an RNN
must walk the positions in order). Generation is the opposite: one token at a time, each fed back in.

Initialisation follows GPT-2: weights N(0, 0.02); the two projections that write into the residual
stream (attention output and FFN output) N(0, 0.02 / sqrt(2 n_layer)), so the stream's variance does
not grow with depth.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from deepzoo.errors import DeepzooError
from deepzoo.nn.attention import EncoderLayer, LayerNorm, LearnedPositions


class GPT(nn.Module):
    def __init__(self, vocab_size: int, block_size: int = 64, n_layer: int = 4, n_head: int = 4,
                 n_embd: int = 128, dropout: float = 0.0, bias: bool = True, impl: str = "torch") -> None:
        super().__init__()
        self.block_size = block_size
        self.embed = nn.Embedding(vocab_size, n_embd)
        self.positions = LearnedPositions(n_embd, block_size)
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            EncoderLayer(n_embd, n_head, 4 * n_embd, dropout, activation="gelu", norm_first=True, bias=bias,
                         impl=impl) for _ in range(n_layer))
        self.norm = LayerNorm(n_embd, bias=bias, impl=impl)
        self.head = nn.Linear(n_embd, vocab_size, bias=False)
        self.apply(self._init)
        for block in self.blocks:
            for proj in (block.self_attn.out_proj, block.linear2):
                nn.init.normal_(proj.weight, std=0.02 / math.sqrt(2 * n_layer))
        self.head.weight = self.embed.weight                                  # tied input/output matrix

    @staticmethod
    def _init(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
        if hasattr(module, "in_proj_weight"):
            nn.init.normal_(module.in_proj_weight, std=0.02)
            if module.in_proj_bias is not None:
                nn.init.zeros_(module.in_proj_bias)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """idx (B, T) token ids, T <= block_size -> logits (B, T, vocab)."""
        if idx.shape[1] > self.block_size:
            raise DeepzooError(f"{idx.shape[1]} tokens do not fit the model's block_size {self.block_size}")
        x = self.dropout(self.positions(self.embed(idx)))
        for block in self.blocks:
            x = block(x, causal=True)
        return self.head(self.norm(x))

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, new_tokens: int, temperature: float = 1.0, top_k: int = 0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Append ``new_tokens`` tokens to idx (B, T), one at a time, each conditioned on at most the
        last block_size tokens. temperature 0 is greedy (argmax); otherwise sample from
        softmax(logits / temperature), restricted to the top_k most likely tokens when top_k > 0."""
        self.eval()
        for _ in range(new_tokens):
            logits = self(idx[:, -self.block_size:])[:, -1]
            if temperature == 0:
                nxt = logits.argmax(dim=-1, keepdim=True)
            else:
                logits = logits / temperature
                if top_k > 0:
                    kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, -1:]
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                nxt = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator)
            idx = torch.cat([idx, nxt], dim=1)
        return idx
