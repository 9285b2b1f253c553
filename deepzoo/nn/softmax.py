"""Adaptive softmax (Grave et al. 2017, "Efficient softmax approximation for GPUs"), with its output
matrix tied to the input embedding.

A word-level language model ends in a softmax over the whole vocabulary: for a hidden vector h,

    p(w | h) = exp(e_w . h + b_w) / sum_v exp(e_v . h + b_v)

and with V = 10,000 words and h of 200 numbers that last matrix product is most of the model's
arithmetic (2 million multiply-adds a word, the two LSTM layers 640 thousand). Words are not equally
frequent: on the Penn Treebank the 2,000 most frequent cover about 87% of the running text. The adaptive
softmax splits the vocabulary, sorted by frequency, at cutoffs c_1 < c_2 < ... < V: the head holds the
frequent words [0, c_1) plus one entry per tail cluster k (the words [c_k, c_{k+1})), and

    p(w | h) = p_head(w | h)                          w in the head
    p(w | h) = p_head(cluster k | h) * p_k(w | h)     w in cluster k

each p a softmax over its own part: p_head over c_1 + K entries, p_k over the words of cluster k, computed
from a projection P_k h. Training needs p(target) only, so a tail's softmax is computed only for the rows
whose target lies in it (about 13% of them here): the output layer's arithmetic falls about 3x (2,001 +
0.13 x 8,000 outputs a word instead of 10,000). It is a different
model from the full softmax, not an approximation of it: its probabilities sum to one exactly, so
:meth:`log_prob` gives exact perplexities.

Tying (Press & Wolf 2017): the head's word rows are the embedding rows E[0:c_1], cluster k's output
rows are E[c_k:c_{k+1}]; only the cluster entries of the head (K vectors, K biases), the head's word
biases and the projections P_k (D x D, started at the identity, so that at first every word is scored by
e_w . h as in the tied full softmax) are the softmax's own. With the same weights it computes exactly what
``torch.nn.AdaptiveLogSoftmaxWithLoss(D, V, cutoffs, div_value=1.0, head_bias=True)`` computes
(tests/test_nn_blocks.py compares outputs and gradients); the built-in cannot share its matrices with an
embedding, hence this module. Untied models use the built-in directly (:func:`adaptive_softmax`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepzoo.errors import DeepzooError


def check_cutoffs(cutoffs, vocab_size: int) -> list[int]:
    """The cutoffs below ``vocab_size`` (a vocabulary smaller than a cutoff needs no cluster there);
    they must rise and be positive."""
    cutoffs = [int(c) for c in cutoffs]
    if any(c < 1 for c in cutoffs) or any(b <= a for a, b in zip(cutoffs, cutoffs[1:])):
        raise DeepzooError(f"model.cutoffs must be rising positive word counts, got {cutoffs}")
    return [c for c in cutoffs if c < vocab_size - 1]


class TiedAdaptiveSoftmax(nn.Module):
    """log p(w | h) by the adaptive softmax, its word rows taken from ``embedding`` (an nn.Embedding whose
    ids are sorted by falling frequency).

        nll(h [N, D], target [N]) -> [N]     -log p(target | h), tails only where needed (training)
        log_prob(h [N, D]) -> [N, V]         the whole distribution (evaluation, generation)
    """

    def __init__(self, embedding: nn.Embedding, cutoffs) -> None:
        super().__init__()
        vocab, dim = embedding.weight.shape
        self.embedding = embedding     # shared with the model's input (parameters() counts it once)
        self.bounds = [*check_cutoffs(cutoffs, vocab), vocab]
        self.shortlist, self.n_clusters = self.bounds[0], len(self.bounds) - 1
        self.cluster_weight = nn.Parameter(torch.empty(self.n_clusters, dim).uniform_(-0.1, 0.1))
        self.head_bias = nn.Parameter(torch.zeros(self.shortlist + self.n_clusters))
        self.proj = nn.ParameterList([nn.Parameter(torch.eye(dim)) for _ in range(self.n_clusters)])

    @property
    def weight(self) -> torch.Tensor:
        return self.embedding.weight

    def _head(self, h: torch.Tensor) -> torch.Tensor:
        """log p_head: [N, c_1 + K], the words of the head, then one entry per cluster."""
        w = torch.cat([self.weight[:self.shortlist], self.cluster_weight]) if self.n_clusters else self.weight
        return F.log_softmax(F.linear(h, w, self.head_bias), dim=-1)

    def _tail(self, h: torch.Tensor, k: int) -> torch.Tensor:
        """log p_k: [N, words of cluster k], from the projected hidden vector P_k h."""
        lo, hi = self.bounds[k], self.bounds[k + 1]
        return F.log_softmax(F.linear(F.linear(h, self.proj[k]), self.weight[lo:hi]), dim=-1)

    def nll(self, h: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        head = self._head(h)
        cluster = torch.bucketize(target, torch.tensor(self.bounds[:-1], device=target.device), right=True)
        in_head = torch.where(cluster == 0, target, self.shortlist + cluster - 1)
        logp = head.gather(1, in_head[:, None]).squeeze(1)
        for k in range(self.n_clusters):
            rows = (cluster == k + 1).nonzero().squeeze(1)
            if len(rows):
                tail = self._tail(h[rows], k).gather(1, (target[rows] - self.bounds[k])[:, None]).squeeze(1)
                logp = logp.index_add(0, rows, tail)
        return -logp

    def log_prob(self, h: torch.Tensor) -> torch.Tensor:
        head = self._head(h)
        parts = [head[:, :self.shortlist]]
        for k in range(self.n_clusters):
            parts.append(head[:, self.shortlist + k, None] + self._tail(h, k))
        return torch.cat(parts, dim=1)


class UntiedAdaptiveSoftmax(nn.AdaptiveLogSoftmaxWithLoss):
    """PyTorch's adaptive softmax with the same two calls as :class:`TiedAdaptiveSoftmax`; cluster k's
    projection is D / 4^k wide (Grave et al.'s default), or D / 2^k, D when that would leave none."""

    def __init__(self, dim: int, vocab_size: int, cutoffs) -> None:
        cutoffs = check_cutoffs(cutoffs, vocab_size) or [vocab_size - 1]
        div = 4.0
        while div > 1.0 and dim // div ** len(cutoffs) < 1:
            div /= 2
        super().__init__(dim, vocab_size, cutoffs, div_value=div, head_bias=True)

    def nll(self, h: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return -super().forward(h, target).output


def adaptive_softmax(embedding: nn.Embedding, hidden: int, cutoffs, tie: bool) -> nn.Module:
    """The adaptive softmax of a language model: tied to ``embedding`` or PyTorch's own."""
    if tie:
        return TiedAdaptiveSoftmax(embedding, cutoffs)
    return UntiedAdaptiveSoftmax(hidden, embedding.num_embeddings, cutoffs)
