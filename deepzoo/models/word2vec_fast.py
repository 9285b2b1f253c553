"""The fast Word2Vec training kernel: the same updates as deepzoo/models/word2vec.py, compiled.

Why not PyTorch. One Word2Vec update touches a handful of rows of two tables (an input vector, the
target's output vector and ``negative`` noise vectors: about 6 dot products of length 100), and a
real corpus needs tens of millions of them. Batched in PyTorch, every batch pays for gathering rows
into new tensors, a scatter-add back, autograd bookkeeping and an optimiser pass, so the arithmetic
is a small part of the time and a CPU reaches a fraction of gensim's words/s. gensim gets its speed
from a C loop that updates the rows in place, one pair after another, in several threads that share
the tables without locks ("Hogwild": two threads rarely touch the same row at once, and when they do
the lost update does not matter). The same loop written in Python would be ~100x slower; numba
compiles it to machine code (LLVM, with SIMD dot products), and its ``prange`` runs chunks of the
corpus on all cores, so the loop stays readable Python and needs no C compiler on the user's
machine. That is the tool chosen here.

Conventions follow word2vec.c and gensim: a linear congruential generator per chunk (the same
``r = r * 25214903917 + 11``) for subsampling, window shrinking and negative draws; the learning
rate falls linearly with the number of raw corpus words processed; in skip-gram the context word's
input vector predicts the centre word; in CBOW the mean (or sum) of the context vectors predicts it,
and every context vector then receives the whole update computed for that mean (with the sum, the
update divided by the number of context words). That is word2vec.c's and gensim's rule, the one their
published results use; the exact gradient of the mean would be 1/count of it (and of the sum, all of it).
Unlike word2vec.c, the sigmoid is computed exactly (clipped at |x| = 20) rather than read from a
1,000-entry table.

Shapes: ``syn0`` [V, D] input vectors (the embeddings), ``syn1neg`` [V, D] output vectors for negative
sampling, ``syn1`` [V - 1, D] the inner nodes of the Huffman tree for hierarchical softmax.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

LCG_MUL = np.uint64(25214903917)
LCG_ADD = np.uint64(11)


@njit(cache=True, inline="always")
def _next(state):
    return state * LCG_MUL + LCG_ADD


@njit(cache=True, inline="always")
def _sigmoid(x):
    if x > 20.0:
        x = 20.0
    elif x < -20.0:
        x = -20.0
    return 1.0 / (1.0 + math.exp(-x))


# Rows are 1-D float32 views; keeping every scalar float32 lets LLVM vectorise these loops (SIMD).

@njit(cache=True, inline="always", fastmath=True)
def _dot(a, b):
    s = np.float32(0.0)
    for k in range(a.shape[0]):
        s += a[k] * b[k]
    return s


@njit(cache=True, inline="always", fastmath=True)
def _axpy(g, x, y):
    """y += g * x"""
    for k in range(x.shape[0]):
        y[k] += g * x[k]


def alias_table(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker's alias method (Vose's construction) for drawing from a discrete distribution ``p`` in
    O(1): column i of n equal columns holds word i with probability threshold[i] / 2^32 and word
    alias[i] otherwise. (word2vec.c reads a 10^8-entry table instead; gensim bisects a cumulative table,
    O(log V) per draw.) Returns (threshold uint64, alias int32)."""
    n = len(p)
    scaled = np.asarray(p, dtype=np.float64) * n / np.sum(p)
    threshold = np.ones(n)
    alias = np.arange(n, dtype=np.int32)
    small = [i for i in range(n) if scaled[i] < 1.0]
    large = [i for i in range(n) if scaled[i] >= 1.0]
    while small and large:
        s, big = small.pop(), large.pop()
        threshold[s], alias[s] = scaled[s], big
        scaled[big] -= 1.0 - scaled[s]
        (small if scaled[big] < 1.0 else large).append(big)
    return np.minimum(np.round(threshold * 2 ** 32), 2 ** 32).astype(np.uint64), alias


@njit(cache=True, inline="always")
def _draw(threshold, alias, state):
    """One draw from the alias table: a column uniformly, then the column's coin."""
    state = _next(state)
    column = (state >> np.uint64(16)) % np.uint64(threshold.shape[0])
    state = _next(state)
    if (state >> np.uint64(16)) & np.uint64(0xFFFFFFFF) < threshold[column]:
        return np.int64(column), state
    return np.int64(alias[column]), state


@njit(cache=True, inline="always")
def _output(d, word, threshold, alias, state):
    """The d-th output of a negative-sampling round: ``word`` itself (label 1) for d = 0, else a noise word
    drawn from the alias table (label 0), or -1 (skip it) when the draw is ``word``. (target, label, state)."""
    if d == 0:
        return np.int64(word), np.float32(1.0), state
    target, state = _draw(threshold, alias, state)
    if target == word:
        return np.int64(-1), np.float32(0.0), state
    return target, np.float32(0.0), state


@njit(cache=True, inline="always", fastmath=True)
def _logistic(l1, row, label, alpha, with_loss):
    """One logistic regression on dot(l1, row): the update coefficient (label - p) * alpha and, with
    ``with_loss``, its loss -log p(label)."""
    p = _sigmoid(_dot(l1, row))
    loss = 0.0
    if with_loss:
        loss = -math.log(p + 1e-12) if label == 1.0 else -math.log(1.0 - p + 1e-12)
    return np.float32((label - p) * alpha), loss


@njit(cache=True, fastmath=True)
def _negative(l1, word, syn1neg, threshold, alias, negative, alpha, work, state, with_loss=True):
    """One positive (``word``, label 1) and ``negative`` noise words (label 0) drawn from the unigram^0.75
    distribution, each a logistic regression on dot(l1, output vector). Updates the output vectors, adds
    the gradient for l1 into ``work``; returns (loss, state)."""
    loss = 0.0
    for d in range(negative + 1):
        target, label, state = _output(d, word, threshold, alias, state)
        if target < 0:
            continue
        row = syn1neg[target]
        g, part = _logistic(l1, row, label, alpha, with_loss)
        loss += part
        _axpy(g, row, work)      # the gradient for l1, with the output vector before its update
        _axpy(g, l1, row)
    return loss, state


@njit(cache=True, fastmath=True)
def _hierarchical(l1, word, syn1, points, codes, lengths, alpha, work, with_loss=True):
    """Walk ``word``'s Huffman path: at each inner node a logistic regression decides left (code 0) or
    right (code 1), p(right) = sigmoid(dot(l1, node vector)). Returns the loss -log p(word)."""
    loss = 0.0
    for step in range(lengths[word]):
        row = syn1[points[word, step]]
        p = _sigmoid(_dot(l1, row))
        label = np.float32(1.0 - codes[word, step])  # word2vec.c's convention: target 1 - code
        if with_loss:
            loss -= math.log(p + 1e-12) if label == 1.0 else math.log(1.0 - p + 1e-12)
        g = np.float32((label - p) * alpha)
        _axpy(g, row, work)
        _axpy(g, l1, row)
    return loss


@njit(cache=True, inline="always", fastmath=True)
def _predict(h, word, syn1, points, codes, lengths, syn1neg, threshold, alias, hs, negative, alpha, work,
             state, with_loss):
    """Predict ``word`` from the hidden vector ``h`` (a context word's vector in skip-gram, the context
    mean or sum in CBOW) by hierarchical softmax and/or negative sampling; the gradient for ``h`` is left
    in ``work``. Returns (loss, state)."""
    work[:] = 0.0
    loss = 0.0
    if hs:
        loss += _hierarchical(h, word, syn1, points, codes, lengths, alpha, work, with_loss)
    if negative > 0:
        part, state = _negative(h, word, syn1neg, threshold, alias, negative, alpha, work, state, with_loss)
        loss += part
    return loss, state


@njit(cache=True, fastmath=True)
def _window_shared(syn0, syn1neg, ctx, m, word, threshold, alias, negative, alpha, grads, upd, state, with_loss):
    """Skip-gram with negatives shared by a window (Ji et al. 2016, "Parallelizing Word2Vec in Shared and
    Distributed Memory"): the ``m`` context words ``ctx[:m]`` of one centre ``word`` all predict it against
    the same ``negative`` noise words, drawn once. The output vectors are taken one after the other: each
    is scored against all m context vectors as they were before this window, then takes the sum of its m
    updates (a noise word drawn twice sees its first update, as in gensim); the context vectors take theirs
    at the end of the window. It is one SGD step on the window's summed loss, a small matrix product
    (m x D times D x (1 + negative)) in place of m separate rounds, and each output row is read from memory
    once per window instead of once per context word. Returns (loss, state)."""
    loss = 0.0
    grads[:m] = 0.0
    for d in range(negative + 1):
        target, label, state = _output(d, word, threshold, alias, state)
        if target < 0:
            continue
        row = syn1neg[target]
        upd[:] = 0.0
        for a in range(m):
            l1 = syn0[ctx[a]]
            g, part = _logistic(l1, row, label, alpha, with_loss)
            loss += part
            _axpy(g, row, grads[a])
            _axpy(g, l1, upd)
        _axpy(np.float32(1.0), upd, row)
    for a in range(m):
        _axpy(np.float32(1.0), grads[a], syn0[ctx[a]])
    return loss, state


@njit(cache=True, fastmath=True)
def train_chunk(words, sent_starts, syn0, syn1neg, syn1, keep, threshold, alias, points, codes, lengths,
                sg, hs, negative, window, cbow_mean, alpha_start, alpha_end, words_before, words_total,
                seed, with_loss, shared=False):
    """Train on the sentences ``words[sent_starts[s]:sent_starts[s + 1]]``; returns (loss sum, pairs
    or predictions trained, words kept after subsampling). ``shared``: skip-gram with negative sampling
    only, one draw of negatives per window (:func:`_window_shared`)."""
    dim = syn0.shape[1]
    work = np.zeros(dim, dtype=np.float32)
    neu1 = np.zeros(dim, dtype=np.float32)
    ctx = np.empty(2 * window, dtype=np.int64)
    grads = np.zeros((2 * window, dim), dtype=np.float32)
    buf = np.empty(words.shape[0], dtype=np.int32)
    state = np.uint64(seed)
    loss, trained, kept_total = 0.0, 0, 0
    for s in range(sent_starts.shape[0] - 1):
        a, b = sent_starts[s], sent_starts[s + 1]
        progress = (words_before + a) / max(words_total, 1)
        alpha = max(alpha_start - (alpha_start - alpha_end) * progress, alpha_end)
        n = 0
        for p in range(a, b):  # frequent-word subsampling: keep w with probability keep[w] / 2^32
            w = words[p]
            state = _next(state)
            if keep[w] >= (state >> np.uint64(16)) & np.uint64(0xFFFFFFFF):
                buf[n] = w
                n += 1
        kept_total += n
        for i in range(n):
            state = _next(state)
            shrink = np.int64((state >> np.uint64(16)) % np.uint64(window))  # dynamic window
            lo, hi = max(0, i - window + shrink), min(n, i + window + 1 - shrink)
            word = buf[i]
            if sg and shared and not hs and negative > 0:
                m = 0
                for j in range(lo, hi):
                    if j != i:
                        ctx[m] = buf[j]
                        m += 1
                if m == 0:
                    continue
                part, state = _window_shared(syn0, syn1neg, ctx, m, word, threshold, alias, negative, alpha,
                                             grads, work, state, with_loss)
                loss += part
                trained += m
            elif sg:
                for j in range(lo, hi):
                    if j == i:
                        continue
                    l1 = syn0[buf[j]]
                    part, state = _predict(l1, word, syn1, points, codes, lengths, syn1neg, threshold, alias,
                                           hs, negative, alpha, work, state, with_loss)
                    loss += part
                    _axpy(np.float32(1.0), work, l1)
                    trained += 1
            else:
                neu1[:] = 0.0
                count = 0
                for j in range(lo, hi):
                    if j != i:
                        count += 1
                        _axpy(np.float32(1.0), syn0[buf[j]], neu1)
                if count == 0:
                    continue
                if cbow_mean:
                    neu1 /= np.float32(count)
                part, state = _predict(neu1, word, syn1, points, codes, lengths, syn1neg, threshold, alias,
                                       hs, negative, alpha, work, state, with_loss)
                loss += part
                if not cbow_mean:  # the sum's gradient is shared out over the summed vectors
                    work /= np.float32(count)
                for j in range(lo, hi):
                    if j != i:
                        _axpy(np.float32(1.0), work, syn0[buf[j]])
                trained += 1
    return loss, trained, kept_total


@njit(cache=True, parallel=True)
def train_chunks(words, sent_starts, chunk_bounds, syn0, syn1neg, syn1, keep, threshold, alias, points,
                 codes, lengths, sg, hs, negative, window, cbow_mean, alpha_start, alpha_end, words_before,
                 words_total, seed, with_loss, shared=False):
    """Train the chunks ``sent_starts[chunk_bounds[c]:chunk_bounds[c + 1] + 1]`` in parallel threads that
    share the tables (Hogwild). Returns per-chunk (loss, trained, kept) as a [C, 3] array."""
    n_chunks = chunk_bounds.shape[0] - 1
    out = np.zeros((n_chunks, 3), dtype=np.float64)
    for c in prange(n_chunks):
        starts = sent_starts[chunk_bounds[c]:chunk_bounds[c + 1] + 1]
        loss, trained, kept = train_chunk(words, starts, syn0, syn1neg, syn1, keep, threshold, alias, points,
                                          codes, lengths, sg, hs, negative, window, cbow_mean, alpha_start,
                                          alpha_end, words_before, words_total,
                                          seed * 1000003 + c * 7919 + 1, with_loss, shared)
        out[c, 0], out[c, 1], out[c, 2] = loss, trained, kept
    return out


# --- the driver: vocabulary, tables, jobs, epochs ----------------------------------------------------


class Word2Vec:
    """Train word vectors on a corpus streamed sentence by sentence (any re-iterable of token lists).

    The parameters and their defaults are gensim's: ``vector_size`` 100, ``window`` 5, ``min_count`` 5,
    ``sg`` (skip-gram; else CBOW), ``hs`` (hierarchical softmax), ``negative`` 5 (0 = none),
    ``ns_exponent`` 0.75, ``cbow_mean`` (mean; else sum), ``sample`` 1e-3, ``alpha`` 0.025 falling
    linearly to ``min_alpha`` 1e-4, ``epochs`` 5, ``workers`` threads (0 = every core), ``seed``;
    ``compute_loss`` adds the loss to each epoch's report (about 10% slower; gensim's default is off).
    Two departures from gensim, both for speed: ``shared_negatives`` (skip-gram with negative sampling
    only; default on) draws one set of noise words per window instead of one per context word
    (:func:`_window_shared`); and a corpus of at most ``cache_words`` words is encoded to ids once and
    kept for the later epochs (4 bytes a word) instead of being read and encoded again each epoch.

        model = Word2Vec(sg=True, epochs=5).build_vocab(corpus)
        history = model.train(corpus)
        model.wv.most_similar("king")
    """

    MAX_SENTENCE = 10_000  # longer sentences are cut into pieces of this many words (gensim does the same)

    def __init__(self, vector_size: int = 100, window: int = 5, min_count: int = 5, sg: bool = False,
                 hs: bool = False, negative: int = 5, ns_exponent: float = 0.75, cbow_mean: bool = True,
                 sample: float = 1e-3, alpha: float = 0.025, min_alpha: float = 1e-4, epochs: int = 5,
                 workers: int = 0, seed: int = 1, max_vocab_size: int | None = None,
                 compute_loss: bool = False, job_words: int = 500_000, shared_negatives: bool = True,
                 cache_words: int = 16_000_000) -> None:
        if not hs and negative <= 0:
            raise ValueError("choose hierarchical softmax (hs=True) or negative sampling (negative > 0), or both")
        if vector_size < 1 or window < 1 or epochs < 1 or min_count < 1:
            raise ValueError("vector_size, window, epochs and min_count must be >= 1")
        self.vector_size, self.window, self.min_count = vector_size, window, min_count
        self.sg, self.hs, self.negative, self.ns_exponent = bool(sg), bool(hs), int(negative), ns_exponent
        self.cbow_mean, self.sample, self.alpha, self.min_alpha = bool(cbow_mean), sample, alpha, min_alpha
        self.epochs, self.workers, self.seed = epochs, workers, seed
        self.max_vocab_size, self.job_words, self.compute_loss = max_vocab_size, job_words, compute_loss
        self.shared_negatives, self.cache_words = bool(shared_negatives), cache_words
        self.words: list[str] = []

    # --- vocabulary and the tables derived from it --------------------------------------------------

    def build_vocab(self, corpus) -> "Word2Vec":
        from deepzoo.models.word2vec import build_vocab, count_words, huffman_tree, keep_probabilities
        counts, self.corpus_sentences = count_words(corpus)
        self.corpus_words = sum(counts.values())
        self.words, self.counts = build_vocab(counts, self.min_count, self.max_vocab_size)
        if len(self.words) < 2:
            raise ValueError(f"only {len(self.words)} words occur at least min_count={self.min_count} times "
                             f"in a corpus of {self.corpus_words} words; lower min_count or give more text")
        self.index = {w: i for i, w in enumerate(self.words)}
        V, D = len(self.words), self.vector_size
        self.keep = np.minimum(np.round(keep_probabilities(self.counts, self.sample) * 2 ** 32), 2 ** 32).astype(np.uint64)
        self.noise_threshold, self.noise_alias = alias_table(self.counts.astype(np.float64) ** self.ns_exponent)
        codes, points = huffman_tree(self.counts) if self.hs else ([[]] * V, [[]] * V)
        depth = max(1, max(len(c) for c in codes))
        self.codes = np.zeros((V, depth), dtype=np.int8)
        self.points = np.zeros((V, depth), dtype=np.int32)
        self.lengths = np.array([len(c) for c in codes], dtype=np.int32)
        for w in range(V):
            self.codes[w, :len(codes[w])] = codes[w]
            self.points[w, :len(points[w])] = points[w]
        rng = np.random.default_rng(self.seed)
        self.syn0 = ((rng.random((V, D), dtype=np.float32) - 0.5) / D).astype(np.float32)
        self.syn1neg = np.zeros((V if self.negative else 1, D), dtype=np.float32)
        self.syn1 = np.zeros((V - 1 if self.hs else 1, D), dtype=np.float32)
        return self

    @property
    def wv(self):
        from deepzoo.models.keyedvectors import KeyedVectors
        return KeyedVectors(self.words, self.syn0, self.counts)

    # --- training -----------------------------------------------------------------------------------

    def _jobs(self, corpus):
        """(word ids int32, sentence starts int64) of about ``job_words`` in-vocabulary words each;
        out-of-vocabulary words are dropped before windowing, as in gensim."""
        ids, starts, index = [], [0], self.index
        for sentence in corpus:
            encoded = [index[w] for w in sentence if w in index]
            for a in range(0, len(encoded), self.MAX_SENTENCE):
                ids.extend(encoded[a:a + self.MAX_SENTENCE])
                starts.append(len(ids))
            if len(ids) >= self.job_words:
                yield np.array(ids, dtype=np.int32), np.array(starts, dtype=np.int64)
                ids, starts = [], [0]
        if ids:
            yield np.array(ids, dtype=np.int32), np.array(starts, dtype=np.int64)

    def vocabulary_digest(self) -> str:
        """A fingerprint of the vocabulary and its counts: a checkpoint's tables fit this corpus only."""
        import hashlib
        h = hashlib.sha256("\n".join(self.words).encode())
        h.update(np.ascontiguousarray(self.counts, dtype=np.int64).tobytes())
        return h.hexdigest()

    def train(self, corpus, progress: bool = False, on_epoch=None, on_position=None,
              start: dict | None = None) -> list[dict]:
        """See :meth:`_train`. numba's OpenMP threading layer is the one PyTorch computes with, so setting
        numba's thread count sets PyTorch's too: the count PyTorch had is put back afterwards."""
        import torch
        threads = torch.get_num_threads()
        try:
            return self._train(corpus, progress, on_epoch, on_position, start)
        finally:
            torch.set_num_threads(threads)

    def _train(self, corpus, progress: bool = False, on_epoch=None, on_position=None,
               start: dict | None = None) -> list[dict]:
        """Run ``epochs`` passes over ``corpus``; return one dict per epoch (loss per prediction, words,
        seconds, words per second, learning rate reached). ``on_epoch(row)`` is called after each.

        Stopping and going on: after each job (``job_words`` words) ``on_position(position)`` gets where
        training stands, {"epoch", "job" (jobs of that epoch done), and the epoch's running sums "words",
        "loss", "trained", "kept", "seconds"}; with the tables (syn0, syn1neg, syn1) that is everything
        needed to go on, since each job's random numbers come from its own seed (seed, epoch, job) and the
        learning rate from the words done. ``start`` = such a position (with the tables already loaded)
        continues from there: exactly as the unbroken run when ``workers`` = 1 (with more threads, Hogwild
        updates race, and two unbroken runs differ too)."""
        import time

        import numba
        from tqdm.auto import tqdm

        if not self.words:
            raise ValueError("call build_vocab(corpus) before train(corpus)")
        threads = self.workers or numba.config.NUMBA_NUM_THREADS
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        per_epoch = int(self.counts.sum())
        total = per_epoch * self.epochs
        history = []
        cache = [] if self.epochs > 1 and self.corpus_words <= self.cache_words else None
        first = start or {"epoch": 0, "job": 0, "words": 0, "loss": 0.0, "trained": 0, "kept": 0, "seconds": 0.0}
        if cache is not None and first["epoch"] > 0:         # resumed after epoch 1: encode the corpus once
            cache.extend(self._jobs(corpus))
        for epoch in range(first["epoch"], self.epochs):
            resumed = epoch == first["epoch"]
            skip = first["job"] if resumed else 0
            done, loss, trained, kept = (first["words"], first["loss"], first["trained"], first["kept"]) if resumed \
                else (0, 0.0, 0, 0)
            start = time.perf_counter() - (first["seconds"] if resumed else 0.0)
            bar = tqdm(total=per_epoch, initial=done, unit="w", unit_scale=True, disable=not progress, leave=False,
                       desc=f"epoch {epoch + 1}/{self.epochs}")
            jobs = cache if cache and epoch > 0 else self._jobs(corpus)
            for job, (ids, starts) in enumerate(jobs):
                if cache is not None and epoch == 0:
                    cache.append((ids, starts))
                if job < skip:                                 # done before the checkpoint resumed from
                    continue
                sizes = np.diff(starts)
                n_chunks = max(1, min(len(sizes), threads * 4))
                cuts = np.searchsorted(np.cumsum(sizes), np.linspace(0, len(ids), n_chunks + 1)[1:-1])
                bounds = np.unique(np.concatenate([[0], cuts, [len(sizes)]])).astype(np.int64)
                out = train_chunks(ids, starts, bounds, self.syn0, self.syn1neg, self.syn1, self.keep,
                                   self.noise_threshold, self.noise_alias, self.points, self.codes, self.lengths, self.sg, self.hs,
                                   self.negative, self.window, self.cbow_mean, self.alpha, self.min_alpha,
                                   epoch * per_epoch + done, total,
                                   self.seed * 100_003 + epoch * 1_009 + job, self.compute_loss,
                                   self.shared_negatives)
                loss, trained, kept = loss + out[:, 0].sum(), trained + int(out[:, 1].sum()), kept + int(out[:, 2].sum())
                done += len(ids)
                bar.update(len(ids))
                if on_position is not None:
                    on_position({"epoch": epoch, "job": job + 1, "words": done, "loss": float(loss),
                                 "trained": trained, "kept": kept, "seconds": time.perf_counter() - start})
            bar.close()
            seconds = time.perf_counter() - start
            row = {"epoch": epoch + 1, "loss": loss / max(trained, 1) if self.compute_loss else None,
                   "words": done, "words_kept": kept,
                   "seconds": round(seconds, 3), "words_per_s": round(done / seconds, 1),
                   "alpha": max(self.alpha - (self.alpha - self.min_alpha) * (epoch + 1) / self.epochs,
                                self.min_alpha)}
            history.append(row)
            if on_epoch is not None:
                on_epoch(row)
            if on_position is not None and epoch + 1 < self.epochs:
                on_position({"epoch": epoch + 1, "job": 0, "words": 0, "loss": 0.0, "trained": 0, "kept": 0,
                             "seconds": 0.0})
        return history
