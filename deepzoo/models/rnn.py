"""Recurrent networks for text: a sentence classifier on top of an RNN, GRU or LSTM.

A sentence is a sequence of token ids w_1 .. w_T. An embedding table turns each id into a vector
x_t = E[w_t] (the table is a weight matrix, trained like any other). A recurrent network then reads the
vectors in order, carrying a hidden state that summarises what it has read so far:

    h_t = f(x_t, h_{t-1})        f = tanh RNN, GRU or LSTM cell (deepzoo/nn/rnn.py writes them out)

A bidirectional network runs a second recurrence from the end to the start, so the representation of
each position sees both its left and its right context; their states are concatenated. The sentence
vector is then either the final states (``pool="last"``: h_T of the forward pass and h_1 of the backward
one) or the element-wise maximum of the outputs over time (``pool="max"``), and a linear layer maps it to
class scores, trained with cross-entropy.

Sentences in a batch have different lengths. They are padded to the longest, and *packed*
(``pack_padded_sequence``) so that the recurrence stops at each sentence's own last token: the final
state is that of the last real word, not of the padding after it, and the backward pass starts there.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from deepzoo.errors import DeepzooError
from deepzoo.models.embedding import TokenEmbedding
from deepzoo.nn import recurrent
from deepzoo.nn.softmax import adaptive_softmax

POOLS = ("last", "max", "mean")


class RNNClassifier(nn.Module):
    def __init__(self, vocab_size: int, num_classes: int, cell: str = "lstm", embed_dim: int = 128,
                 hidden: int = 128, layers: int = 1, bidirectional: bool = False, dropout: float = 0.5,
                 pool: str = "last", pad_id: int = 0, unk_id: int = 1, word_dropout: float = 0.0,
                 impl: str = "torch") -> None:
        super().__init__()
        if pool not in POOLS:
            raise DeepzooError(f"model.pool: unknown pooling '{pool}' (choose from {', '.join(POOLS)})")
        self.pool, self.bidirectional, self.cell = pool, bidirectional, cell
        self.embed = TokenEmbedding(vocab_size, embed_dim, pad_id, unk_id, word_dropout)
        self.rnn = recurrent(cell, impl)(embed_dim, hidden, num_layers=layers, bidirectional=bidirectional,
                                         batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden * (2 if bidirectional else 1), num_classes)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.embed(tokens))                                   # B, T, E
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, h = self.rnn(packed)
        if self.pool == "last":
            h = h[0] if isinstance(h, tuple) else h                           # LSTM: (h_n, c_n)
            feat = torch.cat([h[-2], h[-1]], dim=1) if self.bidirectional else h[-1]
        else:
            out, _ = pad_packed_sequence(out, batch_first=True)                # B, T, D (zeros past length)
            mask = (torch.arange(out.shape[1], device=out.device)[None, :] < lengths.to(out.device)[:, None])
            if self.pool == "max":
                feat = out.masked_fill(~mask[:, :, None], float("-inf")).max(dim=1).values
            else:
                feat = out.sum(dim=1) / lengths.to(out.device)[:, None]
        return self.fc(self.dropout(feat))


class RNNLanguageModel(nn.Module):
    """A word-level language model: predict each next word from the words before it.

        x_t = E[w_t]                         embedding
        h_t = LSTM(x_t, h_{t-1})             2 layers, dropout between layers and before the output
        p(w_{t+1} | w_1..w_t) = softmax(W h_t + b)

    Trained with cross-entropy on the next word; perplexity = exp(mean cross-entropy) is the effective
    number of words the model hesitates between. Text is a single stream cut into windows of ``bptt``
    words (truncated backpropagation through time): the hidden state is carried from one window to the
    next (so the model sees context beyond the window), but detached, so gradients stop at the window
    edge. ``forward(x, first)`` starts from a zero state when ``first`` is true (a new pass over the
    text). ``tie=True`` shares the embedding and output matrices (Press & Wolf 2017; needs
    embed_dim == hidden).

    ``softmax="adaptive"`` replaces the full softmax by the adaptive one (deepzoo/nn/softmax.py: frequent
    words in a head, the rest in clusters split at ``cutoffs``, ids sorted by frequency). In training,
    ``forward(x, first, target)`` then returns -log p(target) per word [B, T], computing each tail only for
    the words that need it; in evaluation (``model.eval()``) and without a target it returns the exact
    log-probabilities of every word [B, T, V], which read as logits everywhere (softmax of a
    log-probability vector is the distribution itself).
    """

    def __init__(self, vocab_size: int, embed_dim: int = 200, hidden: int = 200, layers: int = 2,
                 dropout: float = 0.0, tie: bool = False, cell: str = "lstm", init_range: float = 0.1,
                 impl: str = "torch", softmax: str = "full", cutoffs=(2000,)) -> None:
        super().__init__()
        if tie and embed_dim != hidden:
            raise DeepzooError(f"model.tie needs model.embed_dim == model.hidden ({embed_dim} != {hidden})")
        if softmax not in ("full", "adaptive"):
            raise DeepzooError(f"model.softmax must be full or adaptive, got {softmax!r}")
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.rnn = recurrent(cell, impl)(embed_dim, hidden, num_layers=layers, batch_first=True,
                                         dropout=dropout if layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden, vocab_size) if softmax == "full" else None
        for p in self.parameters():  # Zaremba et al.: every weight uniform in [-0.1, 0.1]
            nn.init.uniform_(p, -init_range, init_range)
        self.softmax = adaptive_softmax(self.embed, hidden, cutoffs, tie) if softmax == "adaptive" else None
        if tie and self.fc is not None:
            self.fc.weight = self.embed.weight
        self.state = None

    def forward(self, x: torch.Tensor, first: torch.Tensor | bool = True,
                target: torch.Tensor | None = None) -> torch.Tensor:
        state = self.state
        if bool(first) or state is None or _batch_of(state) != x.shape[0]:
            state = None
        out, state = self.rnn(self.dropout(self.embed(x)), state)
        self.state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
        out = self.dropout(out)                                               # B, T, H
        if self.softmax is None:
            return self.fc(out)                                               # B, T, V (logits)
        flat = out.reshape(-1, out.shape[-1])
        if target is not None and self.training:
            return self.softmax.nll(flat, target.reshape(-1)).view(x.shape)  # B, T: -log p(target)
        return self.softmax.log_prob(flat).view(*x.shape, -1)                 # B, T, V (log p)


def _batch_of(state) -> int:
    return (state[0] if isinstance(state, tuple) else state).shape[1]
