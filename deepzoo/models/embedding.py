"""The embedding table of the text models, with word dropout.

An embedding is a trained lookup table, x_t = E[w_t], one row per vocabulary entry. Two rows are
special: ``<pad>`` (kept at zero, it only fills batches) and ``<unk>``, which stands for every word
the vocabulary lacks. When the vocabulary is every word of the training text, ``<unk>`` never
occurs in training, its row is never trained, and at test time each unseen word (6% of the tokens of
SST-2's dev set, in 59% of its sentences) brings an arbitrary random vector into the sentence.

Word dropout fixes that and regularises at once: during training each real token is replaced by
``<unk>`` with probability p, so the ``<unk>`` row learns what "some word I do not know" should
mean, and the network learns not to lean on any single word (Iyyer et al. 2015 drop words entirely;
replacing them by ``<unk>`` keeps positions, which a convolution or a recurrence needs). In
evaluation mode nothing is replaced.
"""

from __future__ import annotations

import torch
from torch import nn


class TokenEmbedding(nn.Embedding):
    """``nn.Embedding`` (same parameter, same state-dict key) plus word dropout to ``unk_id``."""

    def __init__(self, num_embeddings: int, embedding_dim: int, pad_id: int = 0, unk_id: int = 1,
                 word_dropout: float = 0.0) -> None:
        if not 0.0 <= word_dropout < 1.0:
            raise ValueError(f"word_dropout must be in [0, 1), got {word_dropout}")
        super().__init__(num_embeddings, embedding_dim, padding_idx=pad_id)
        self.unk_id, self.word_dropout = unk_id, word_dropout

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.training and self.word_dropout > 0:
            drop = (torch.rand(tokens.shape, device=tokens.device) < self.word_dropout) & (tokens != self.padding_idx)
            tokens = tokens.masked_fill(drop, self.unk_id)
        return super().forward(tokens)
