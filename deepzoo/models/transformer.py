"""The Transformer encoder-decoder for translation (Vaswani et al. 2017, "Attention is all you need").

The source sentence x_1..x_S and the target y_1..y_T are subword ids from one shared vocabulary.

    encoder   e_0 = E[x] * sqrt(d) + PE            embedding (scaled) + sinusoidal positions
              e_l = EncoderLayer(e_l-1)             self-attention (padding masked) + FFN, l = 1..N
    decoder   d_0 = E[<s> y_1..y_T-1] * sqrt(d) + PE   the target shifted right ("teacher forcing")
              d_l = DecoderLayer(d_l-1, e_N)        causal self-attention, cross-attention to e_N, FFN
    output    p(y_t | y_<t, x) = softmax(d_N,t E^T)  the output matrix is the embedding (tied)

Training minimises label-smoothed cross-entropy of every target position at once (the causal mask
keeps position t from seeing y_t and later). Translation then runs the decoder one token at a time:
greedy (take the argmax, feed it back) or beam search (keep the ``beam`` best partial translations by
total log-probability, normalised by length so that short hypotheses are not favoured).

The source, target and output embeddings are one matrix ("three-way tying", Press & Wolf 2017): both
languages share a subword vocabulary, and on 29k sentence pairs the saving in parameters helps.
"""

from __future__ import annotations

import torch
from torch import nn

from deepzoo.nn.attention import DecoderLayer, EncoderLayer, LayerNorm, SinusoidalPositions


class Transformer(nn.Module):
    def __init__(self, vocab_size: int, d_model: int = 256, nhead: int = 8, layers: int = 3,
                 dim_feedforward: int = 512, dropout: float = 0.1, norm_first: bool = False,
                 pad_id: int = 0, max_len: int = 512, impl: str = "torch") -> None:
        super().__init__()
        self.pad_id = pad_id
        self.embed = nn.Embedding(vocab_size, d_model, padding_idx=pad_id)
        nn.init.normal_(self.embed.weight, std=d_model ** -0.5)               # so E * sqrt(d) has unit scale
        with torch.no_grad():
            self.embed.weight[pad_id].zero_()
        self.positions = SinusoidalPositions(d_model, max_len)
        self.dropout = nn.Dropout(dropout)
        kw = dict(dim_feedforward=dim_feedforward, dropout=dropout, norm_first=norm_first, impl=impl)
        self.encoder = nn.ModuleList(EncoderLayer(d_model, nhead, **kw) for _ in range(layers))
        self.decoder = nn.ModuleList(DecoderLayer(d_model, nhead, **kw) for _ in range(layers))
        # pre-norm stacks end with a LayerNorm (their residual stream is never normalised otherwise)
        self.enc_norm = LayerNorm(d_model, impl=impl) if norm_first else nn.Identity()
        self.dec_norm = LayerNorm(d_model, impl=impl) if norm_first else nn.Identity()

    def encode(self, src: torch.Tensor):
        """src (B, S) -> memory (B, S, d) and the source padding mask (B, S)."""
        pad = src == self.pad_id
        x = self.dropout(self.positions(self.embed(src)))
        for layer in self.encoder:
            x = layer(x, padding=pad)
        return self.enc_norm(x), pad

    def decode(self, tgt_in: torch.Tensor, memory: torch.Tensor, src_pad: torch.Tensor) -> torch.Tensor:
        """tgt_in (B, T) starting with <s> -> logits (B, T, vocab) for the next token at each position."""
        pad = tgt_in == self.pad_id
        x = self.dropout(self.positions(self.embed(tgt_in)))
        for layer in self.decoder:
            x = layer(x, memory, padding=pad, memory_padding=src_pad)
        return self.dec_norm(x) @ self.embed.weight.T

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        memory, src_pad = self.encode(src)
        return self.decode(tgt_in, memory, src_pad)

    # --- translation ------------------------------------------------------------------------------
    @torch.no_grad()
    def greedy(self, src: torch.Tensor, bos: int, eos: int, max_len: int) -> torch.Tensor:
        """(B, S) -> (B, <= max_len) token ids, each the argmax given the ones before; stops at </s>."""
        self.eval()
        memory, src_pad = self.encode(src)
        out = torch.full((src.shape[0], 1), bos, dtype=torch.long, device=src.device)
        done = torch.zeros(src.shape[0], dtype=torch.bool, device=src.device)
        for _ in range(max_len):
            nxt = self.decode(out, memory, src_pad)[:, -1].argmax(-1)
            nxt = nxt.masked_fill(done, self.pad_id)
            out = torch.cat([out, nxt[:, None]], dim=1)
            done |= nxt == eos
            if done.all():
                break
        return out[:, 1:]

    @torch.no_grad()
    def beam_search(self, src: torch.Tensor, bos: int, eos: int, max_len: int, beam: int = 5,
                    alpha: float = 0.6) -> torch.Tensor:
        """Beam search, batched over sentences: each keeps ``beam`` hypotheses; a finished one (it
        produced </s>) is scored by log p / lp, lp = ((5 + length) / 6) ** alpha (Wu et al. 2016)
        and the best finished hypothesis wins. Returns (B, <= max_len) ids, padded after </s>."""
        self.eval()
        B, K, device = src.shape[0], beam, src.device
        memory, src_pad = self.encode(src)
        memory = memory.repeat_interleave(K, dim=0)                             # B*K, S, d
        src_pad = src_pad.repeat_interleave(K, dim=0)
        seqs = torch.full((B * K, 1), bos, dtype=torch.long, device=device)
        scores = torch.full((B, K), float("-inf"), device=device)
        scores[:, 0] = 0.0                                                      # one live hypothesis to start
        best = [None] * B
        best_score = torch.full((B,), float("-inf"), device=device)
        for step in range(1, max_len + 1):
            logp = torch.log_softmax(self.decode(seqs, memory, src_pad)[:, -1], dim=-1)  # B*K, V
            V = logp.shape[-1]
            total = (scores.reshape(-1, 1) + logp).reshape(B, K * V)
            top, idx = total.topk(2 * K, dim=1)                                 # room for K live after finishing
            origin, token = idx // V, idx % V
            lp = ((5 + step) / 6) ** alpha
            new_seqs, new_scores = [], torch.full((B, K), float("-inf"), device=device)
            rows = []
            for b in range(B):
                kept = 0
                for j in range(2 * K):
                    s, o, t = top[b, j], int(origin[b, j]), int(token[b, j])
                    if s == float("-inf"):
                        break
                    if t == eos:                                                # finished: compare, do not extend
                        if s / lp > best_score[b]:
                            best_score[b], best[b] = s / lp, seqs[b * K + o, 1:].tolist()
                        continue
                    rows.append(torch.cat([seqs[b * K + o], top.new_tensor([t], dtype=torch.long)]))
                    new_scores[b, kept] = s
                    kept += 1
                    if kept == K:
                        break
                while kept < K:                                                 # pad with dead hypotheses
                    rows.append(torch.cat([seqs[b * K], top.new_tensor([eos], dtype=torch.long)]))
                    kept += 1
            seqs, scores = torch.stack(rows), new_scores
            # stop when no live hypothesis can still beat the best finished one (scores only fall)
            live_best = scores.max(dim=1).values / (((5 + max_len) / 6) ** alpha)
            if bool((live_best <= best_score).all()):
                break
        out = []
        for b in range(B):
            if best[b] is None:                                                 # nothing finished: best live one
                k = int(scores[b].argmax())
                best[b] = seqs[b * K + k, 1:].tolist()
            out.append(best[b] + [eos])
        width = max(len(o) for o in out)
        return torch.tensor([o + [self.pad_id] * (width - len(o)) for o in out], device=device)
