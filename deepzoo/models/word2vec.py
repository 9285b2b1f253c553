r"""Word2Vec (Mikolov et al. 2013): word vectors learned by predicting words from their neighbours.

Every word w has two vectors: an input vector v_w (a row of the embedding table, the vector we keep)
and an output vector u_w. A sliding window over the text gives (centre, context) pairs: for the word
at position t, the words at t-c .. t+c other than t itself, where the radius c is drawn uniformly from
1 .. window for each centre word, so near neighbours are used more often than far ones (the "dynamic
window").

**Skip-gram** predicts each context word o from the centre word c,

    p(o | c) = exp(u_o . v_c) / sum_w exp(u_w . v_c),

and **CBOW** (continuous bag of words) predicts the centre word from the mean (or the sum) of its
context vectors, h = mean_j v_{c_j}, p(c | context) = softmax_w(u_w . h).

The softmax sums over the whole vocabulary (tens of thousands of words) for every pair: too expensive.
Two cheaper objectives replace it.

**Negative sampling** turns the prediction into k + 1 binary decisions: is this the real word or a
noise word? With the noise words n_1 .. n_k drawn from P(w) proportional to count(w)^0.75 (the power
flattens the distribution, so rare words are drawn more often than their frequency alone gives),

    loss = -log sigma(u_o . v_c) - sum_{i=1..k} log sigma(-u_{n_i} . v_c).

**Hierarchical softmax** puts the words at the leaves of a binary tree built by Huffman coding (frequent
words get short paths) and writes p(o | c) as the product of the left/right decisions on the path from
the root to o. Each inner node n has its own vector u_n; with d_n = 1 for "go right",

    loss = -sum_{nodes n on the path} log sigma((2 d_n - 1) u_n . v_c)      (about log2 V terms).

**Subsampling.** Very frequent words ("the", "of") carry little information and dominate the pairs.
Each occurrence of w is kept with probability (gensim's and word2vec.c's formula, f(w) = count(w) /
total, t = ``sample``)

    keep(w) = (sqrt(f(w) / t) + 1) * t / f(w),   capped at 1.

**Training** is plain SGD with a learning rate falling linearly from ``alpha`` to ``min_alpha`` over
all the words of all epochs. After training, v_w is the word's vector: words used in similar contexts
get similar vectors (cosine similarity), and vector offsets carry relations (king - man + woman is
closest to queen).

This file is the readable version: the vocabulary statistics, the Huffman tree, and both models with
the losses written out in PyTorch (``SkipGram``, ``CBOW``, ``train_torch``). It is for learning and for
small corpora; deepzoo/models/word2vec_fast.py runs the same updates compiled, for real corpora, and
``tests/test_word2vec.py`` checks that the two make the same update for one prediction (negative
sampling and hierarchical softmax). One difference: in CBOW, autograd gives each context vector its
exact share of the gradient, while the compiled kernel follows word2vec.c and gensim (see there).
"""

from __future__ import annotations

import heapq
from collections import Counter
from typing import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# --- vocabulary statistics ------------------------------------------------------------------------


def count_words(sentences: Iterable[list[str]]) -> tuple[Counter, int]:
    """Word counts and the number of sentences, in one streaming pass."""
    counts, n = Counter(), 0
    for sentence in sentences:
        counts.update(sentence)
        n += 1
    return counts, n


def build_vocab(counts: Counter, min_count: int = 5, max_size: int | None = None) -> tuple[list[str], np.ndarray]:
    """Words seen at least ``min_count`` times, most frequent first (ties alphabetical), and their counts."""
    items = sorted(((w, c) for w, c in counts.items() if c >= min_count), key=lambda wc: (-wc[1], wc[0]))
    if max_size is not None:
        items = items[:max_size]
    return [w for w, _ in items], np.array([c for _, c in items], dtype=np.int64)


def keep_probabilities(counts: np.ndarray, sample: float) -> np.ndarray:
    """keep(w) = (sqrt(f / t) + 1) * t / f, capped at 1 (f = count / total, t = sample); 1 if sample = 0."""
    if sample <= 0:
        return np.ones(len(counts))
    f = counts / counts.sum()
    return np.minimum((np.sqrt(f / sample) + 1.0) * sample / f, 1.0)


def noise_distribution(counts: np.ndarray, power: float = 0.75) -> np.ndarray:
    """P(w) proportional to count(w) ** power: the distribution negative samples are drawn from."""
    weights = counts.astype(np.float64) ** power
    return weights / weights.sum()


def huffman_tree(counts: np.ndarray) -> tuple[list[list[int]], list[list[int]]]:
    """Huffman coding of the vocabulary: for each word, its ``codes`` (0 = left, 1 = right) and the inner
    nodes on its path, ``points`` (0 .. V - 2, root first). Frequent words get short codes, so the mean
    path length is close to the entropy of the word distribution (about 9 for a 10,000-word vocabulary).

    Built as in word2vec.c: repeatedly merge the two least frequent nodes into a new inner node; the
    first merged (smaller) one is the left child (code 0). Ties break by node index.
    """
    V = len(counts)
    if V < 2:
        return [[] for _ in range(V)], [[] for _ in range(V)]
    heap = [(int(c), i) for i, c in enumerate(counts)]
    heapq.heapify(heap)
    parent, code = {}, {}
    next_node = V
    while len(heap) > 1:
        c1, a = heapq.heappop(heap)
        c2, b = heapq.heappop(heap)
        parent[a], code[a] = next_node, 0
        parent[b], code[b] = next_node, 1
        heapq.heappush(heap, (c1 + c2, next_node))
        next_node += 1
    root = next_node - 1
    codes, points = [], []
    for w in range(V):
        c, p, node = [], [], w
        while node != root:
            c.append(code[node])
            p.append(parent[node] - V)  # inner nodes V .. 2V-2 -> rows 0 .. V-2 of the node table
            node = parent[node]
        codes.append(c[::-1])
        points.append(p[::-1])
    return codes, points


# --- (centre, context) pairs ----------------------------------------------------------------------


def context_pairs(ids: list[int], window: int, generator: torch.Generator) -> list[tuple[int, list[int]]]:
    """For each position t: (ids[t], the ids within a radius c ~ U{1..window} of t, t excluded)."""
    out = []
    for t, centre in enumerate(ids):
        c = int(torch.randint(1, window + 1, (1,), generator=generator))
        context = ids[max(0, t - c):t] + ids[t + 1:t + 1 + c]
        if context:
            out.append((centre, context))
    return out


# --- the two models, losses written out -----------------------------------------------------------


class SkipGram(nn.Module):
    """Skip-gram: one word's input vector predicts a word of its window.

    (Like word2vec.c and gensim, the pairs are built as input = context word, target = centre word; over
    a whole corpus every (centre, context) pair also occurs the other way round, so this is the same
    objective as "the centre predicts its context".)
    """

    def __init__(self, vocab_size: int, dim: int) -> None:
        super().__init__()
        self.in_embed = nn.Embedding(vocab_size, dim)                 # v_w: the word vectors we keep
        self.out_embed = nn.Embedding(vocab_size, dim)                # u_w: for negative sampling
        self.node_embed = nn.Embedding(max(vocab_size - 1, 1), dim)   # u_n: Huffman inner nodes
        nn.init.uniform_(self.in_embed.weight, -0.5 / dim, 0.5 / dim)  # word2vec.c's initialisation
        nn.init.zeros_(self.out_embed.weight)
        nn.init.zeros_(self.node_embed.weight)

    def hidden(self, inputs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """h = v_input, [B, D]."""
        return self.in_embed(inputs)

    def negative_sampling_loss(self, h: torch.Tensor, targets: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """-log sigma(u_o . h) - sum_k log sigma(-u_{n_k} . h), summed over the batch.
        h [B, D], targets [B], noise [B, K]."""
        pos = (self.out_embed(targets) * h).sum(-1)                             # [B]
        neg = torch.bmm(self.out_embed(noise), h.unsqueeze(2)).squeeze(2)       # [B, K]
        return -(F.logsigmoid(pos).sum() + F.logsigmoid(-neg).sum())

    def hierarchical_softmax_loss(self, h: torch.Tensor, points, signs, mask) -> torch.Tensor:
        """-sum over the path of log sigma(sign * u_n . h), sign = +1 where the code is 0 (word2vec.c's
        convention), -1 where it is 1. points, signs, mask: [B, L], padded to the longest path."""
        scores = torch.bmm(self.node_embed(points), h.unsqueeze(2)).squeeze(2)  # [B, L]
        return -(F.logsigmoid(signs * scores) * mask).sum()


class CBOW(SkipGram):
    """CBOW: the mean (or the sum) of the context words' input vectors predicts the centre word."""

    def __init__(self, vocab_size: int, dim: int, mean: bool = True) -> None:
        super().__init__(vocab_size, dim)
        self.mean = mean

    def hidden(self, inputs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """h = mean (or sum) of v_j over the context; inputs [B, C] padded, mask [B, C] 1 on real words."""
        mask = torch.ones(inputs.shape) if mask is None else mask
        total = (self.in_embed(inputs) * mask.unsqueeze(2)).sum(1)
        return total / mask.sum(1, keepdim=True) if self.mean else total


def path_tensors(words: torch.Tensor, codes: list[list[int]], points: list[list[int]]):
    """Padded [B, L] points, signs (+1 for code 0, -1 for code 1) and mask for a batch of words."""
    L = max(len(codes[int(w)]) for w in words)
    P = torch.zeros(len(words), L, dtype=torch.long)
    S = torch.zeros(len(words), L)
    M = torch.zeros(len(words), L)
    for i, w in enumerate(words.tolist()):
        n = len(codes[w])
        P[i, :n] = torch.tensor(points[w])
        S[i, :n] = 1.0 - 2.0 * torch.tensor(codes[w], dtype=torch.float32)
        M[i, :n] = 1.0
    return P, S, M


def train_torch(sentences: list[list[int]], counts: np.ndarray, dim: int = 50, window: int = 5, sg: bool = True,
                negative: int = 5, hs: bool = False, cbow_mean: bool = True, sample: float = 1e-3,
                alpha: float = 0.025, min_alpha: float = 1e-4, epochs: int = 5, batch_size: int = 256,
                seed: int = 1) -> tuple[nn.Module, list[float]]:
    """Train on id sentences with plain SGD, batch by batch; return the model and the mean loss per epoch.

    The loss of a batch is summed over its pairs, so an SGD step at rate alpha moves each row as
    word2vec.c's per-pair updates would (up to the order of the updates within a batch). A word that
    occurs in many pairs of one batch gets all their updates at once, so with a tiny vocabulary keep the
    batches small.
    """
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    V = len(counts)
    model = SkipGram(V, dim) if sg else CBOW(V, dim, mean=cbow_mean)
    keep = torch.from_numpy(keep_probabilities(counts, sample))
    noise = torch.from_numpy(noise_distribution(counts))
    codes, points = huffman_tree(counts) if hs else ([], [])
    losses = []
    opt = torch.optim.SGD(model.parameters(), lr=alpha)
    for epoch in range(epochs):
        pairs = []
        for s in sentences:
            ids = torch.tensor(s, dtype=torch.long)
            kept = ids[torch.rand(len(ids), generator=gen, dtype=torch.float64) < keep[ids]].tolist()
            if sg:  # one (input = context word, target = centre word) pair per context word, as gensim
                pairs += [(o, c) for c, ctx in context_pairs(kept, window, gen) for o in ctx]
            else:
                pairs += [(ctx, c) for c, ctx in context_pairs(kept, window, gen)]
        order = torch.randperm(len(pairs), generator=gen).tolist()
        epoch_loss, n = 0.0, 0
        for start in range(0, len(pairs), batch_size):
            batch = [pairs[i] for i in order[start:start + batch_size]]
            targets = torch.tensor([t for _, t in batch])
            if sg:
                h = model.hidden(torch.tensor([i for i, _ in batch]))
            else:
                width = max(len(i) for i, _ in batch)
                inputs = torch.tensor([i + [0] * (width - len(i)) for i, _ in batch])
                mask = torch.tensor([[1.0] * len(i) + [0.0] * (width - len(i)) for i, _ in batch])
                h = model.hidden(inputs, mask)
            loss = torch.zeros(())
            if negative > 0:
                draws = torch.multinomial(noise, len(batch) * negative, replacement=True, generator=gen)
                loss = loss + model.negative_sampling_loss(h, targets, draws.view(len(batch), negative))
            if hs:
                loss = loss + model.hierarchical_softmax_loss(h, *path_tensors(targets, codes, points))
            for group in opt.param_groups:  # linear decay over all words of all epochs
                progress = (epoch + start / len(pairs)) / epochs
                group["lr"] = max(alpha - (alpha - min_alpha) * progress, min_alpha)
            opt.zero_grad()
            loss.backward()
            opt.step()
            epoch_loss, n = epoch_loss + loss.item(), n + len(batch)
        losses.append(epoch_loss / max(n, 1))
    return model, losses
