"""A convolutional network for sentences (Kim 2014, "Convolutional Neural Networks for Sentence
Classification").

Embed the tokens, x_1 .. x_T in R^E. A filter of width k is a weight matrix W in R^{k x E}; sliding it
over the sentence gives one feature per window,

    c_i = ReLU(W . x_{i:i+k-1} + b)          i = 1 .. T - k + 1,

an n-gram detector ("not good", "waste of time") that fires wherever its n-gram appears.
Max-over-time pooling keeps each filter's strongest response, c = max_i c_i, so the sentence vector has
one entry per filter whatever the sentence length. Kim uses 100 filters of each width 3, 4 and 5,
dropout 0.5 on the pooled vector, and a softmax layer. Unlike a recurrent network, every window is
computed at once, so the network trains in parallel over positions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepzoo.models.embedding import TokenEmbedding


class TextCNN(nn.Module):
    def __init__(self, vocab_size: int, num_classes: int, embed_dim: int = 128, widths: list[int] = (3, 4, 5),
                 filters: int = 100, dropout: float = 0.5, pad_id: int = 0, unk_id: int = 1,
                 word_dropout: float = 0.0) -> None:
        super().__init__()
        self.widths = list(widths)
        self.embed = TokenEmbedding(vocab_size, embed_dim, pad_id, unk_id, word_dropout)
        self.convs = nn.ModuleList(nn.Conv1d(embed_dim, filters, k) for k in self.widths)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(filters * len(self.widths), num_classes)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        shortfall = max(self.widths) - tokens.shape[1]
        if shortfall > 0:  # a sentence shorter than the widest filter: pad so every filter has a window
            tokens = F.pad(tokens, (0, shortfall), value=self.embed.padding_idx)
        x = self.embed(tokens).transpose(1, 2)                                 # B, E, T
        pooled = [F.relu(conv(x)).amax(dim=2) for conv in self.convs]          # each B, filters
        return self.fc(self.dropout(torch.cat(pooled, dim=1)))
