"""``transformer-multi30k``: German -> English translation on Multi30k with a Transformer.

The pipeline: a BPE vocabulary shared by both languages, trained on the training pairs; batches of
pairs of similar length (sorted, then cut at ``data.max_tokens`` padded tokens, the batch order shuffled
each epoch); the encoder-decoder of deepzoo/models/transformer.py (3 layers, width 256, 8 heads, FFN 512,
the size of the bentrevett/pytorch-seq2seq reference); label-smoothed cross-entropy (0.1); Adam with a
linear warm-up then inverse-square-root decay; the best epoch by validation loss; then the test set
translated by beam search (5) and greedy decoding and scored with sacreBLEU against the references.

``test_bleu`` is sacreBLEU's standard score (cased, 13a tokenisation, detokenised text).
``test_bleu_lc`` is the same on lower-cased text, which is how the reference figure (bentrevett's
Transformer, 36.5 on test_2016_flickr) was measured: lower-cased spaCy tokens.

Your own parallel text: ``--set data.path=pairs.tsv`` (source TAB target per line) or
``--set data.src_path=a.txt --set data.tgt_path=b.txt`` (aligned lines); 90/5/5 split with
``data.split_seed``. ``deepzoo predict RUN "Ein Hund läuft." --beam 5`` translates a sentence.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from deepzoo.artefacts import reused
from deepzoo.data.parallel import SubwordTokenizer, load_multi30k, read_aligned, read_tsv, split_pairs
from deepzoo.data.registry import locate, samples_dir
from deepzoo.errors import DeepzooError
from deepzoo.models.transformer import Transformer
from deepzoo.recipes import Recipe, Reference, register
from deepzoo.train.engine import Task


class PairBatches:
    """Batches of (source, target) id sequences of similar length, at most ``max_tokens`` tokens each.

    Input ``(src, tgt_in)`` with tgt_in = <s> y_1 .. y_T; target tgt_out = y_1 .. y_T </s>.
    """

    def __init__(self, pairs: list[tuple[list[int], list[int]]], max_tokens: int, pad: int, bos: int, eos: int,
                 shuffle: bool) -> None:
        order = sorted(range(len(pairs)), key=lambda i: (len(pairs[i][0]), len(pairs[i][1])))
        self.batches, batch, longest = [], [], 0
        for i in order:
            need = max(len(pairs[i][0]), len(pairs[i][1]) + 1)              # + 1: <s> / </s>
            new_longest = max(longest, need)
            if batch and new_longest * (len(batch) + 1) > max_tokens:      # padded size if i joined
                self.batches.append(batch)
                batch, new_longest = [], need
            batch.append(i)
            longest = new_longest
        if batch:
            self.batches.append(batch)
        self.pairs, self.pad, self.bos, self.eos, self.shuffle = pairs, pad, bos, eos, shuffle

    def __len__(self) -> int:
        return len(self.batches)

    def _tensor(self, rows: list[list[int]]) -> torch.Tensor:
        width = max(len(r) for r in rows)
        return torch.tensor([r + [self.pad] * (width - len(r)) for r in rows], dtype=torch.long)

    def epoch(self, generator=None):
        order = (torch.randperm(len(self.batches), generator=generator).tolist() if self.shuffle
                 else range(len(self.batches)))
        for b in order:
            src = [self.pairs[i][0] for i in self.batches[b]]
            tgt = [self.pairs[i][1] for i in self.batches[b]]
            yield ((self._tensor(src), self._tensor([[self.bos] + t for t in tgt])),
                   self._tensor([t + [self.eos] for t in tgt]))


def read_pairs(cfg: dict, data_dir) -> dict[str, list[tuple[str, str]]]:
    d = cfg["data"]
    if d["path"]:
        return split_pairs(read_tsv(d["path"]), d["split_seed"])
    if d["src_path"] or d["tgt_path"]:
        if not (d["src_path"] and d["tgt_path"]):
            raise DeepzooError("give both data.src_path and data.tgt_path (two files aligned line by line)")
        return split_pairs(read_aligned(d["src_path"], d["tgt_path"]), d["split_seed"])
    if d["sample"]:
        return load_multi30k(samples_dir() / "text" / "multi30k", d["src"], d["tgt"], prefix="sample-")
    return load_multi30k(locate("multi30k", data_dir), d["src"], d["tgt"])


def build(cfg: dict, data_dir) -> Task:
    d, m = cfg["data"], cfg["model"]
    text = read_pairs(cfg, data_dir)
    stored = reused("tokenizer.json")      # a resumed or evaluated run keeps its tokenizer's ids
    tok = SubwordTokenizer.from_str(stored) if stored else \
        SubwordTokenizer.train([s for pair in text["train"] for s in pair], vocab_size=d["vocab_size"])
    ids = {}
    for split, pairs in text.items():
        src, tgt = tok.encode_batch([p[0] for p in pairs]), tok.encode_batch([p[1] for p in pairs])
        keep = [(s, t) for s, t in zip(src, tgt) if 0 < len(s) <= d["max_len"] and 0 < len(t) < d["max_len"]]
        ids[split] = keep if split == "train" else list(zip(src, tgt))          # never drop evaluation pairs
    model = transformer(cfg, tok)
    batches = {split: PairBatches(p, d["max_tokens"], tok.pad_id, tok.bos_id, tok.eos_id, shuffle=(split == "train"))
               for split, p in ids.items()}
    smoothing, pad = m["label_smoothing"], tok.pad_id

    def loss(logits, y):
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=pad,
                               label_smoothing=smoothing)

    return Task(model=model, train=batches["train"], val=batches["val"], test=batches["test"], loss=loss,
                monitor="val_loss", headline="test_bleu",
                context={"tokenizer": tok, "test_text": text["test"], "test_ids": ids["test"]})


def transformer(cfg: dict, tok: SubwordTokenizer) -> Transformer:
    d, m = cfg["data"], cfg["model"]
    return Transformer(len(tok), d_model=m["d_model"], nhead=m["nhead"], layers=m["layers"],
                       dim_feedforward=m["dim_feedforward"], dropout=m["dropout"], norm_first=m["norm_first"],
                       pad_id=tok.pad_id, max_len=max(512, 2 * d["max_len"] + 10), impl=m["impl"])


def artefacts(task: Task, cfg: dict) -> dict:
    """The BPE tokeniser, whole (HF ``tokenizers`` JSON): its vocabulary is the model's, both languages."""
    return {"tokenizer.json": task.context["tokenizer"].to_str()}


def restore(cfg: dict, stored) -> Task:
    tok = SubwordTokenizer.from_str(stored.text("tokenizer.json"), stored.folder / "tokenizer.json")
    return Task.for_inference(transformer(cfg, tok), {"tokenizer": tok})


@torch.no_grad()
def translate(model: Transformer, tok: SubwordTokenizer, sources: list[list[int]], beam: int = 5,
              batch_size: int = 64) -> list[str]:
    """Translate id sequences in batches of similar length; beam 1 is greedy decoding."""
    limit = model.positions.pe.shape[0] - 1                                  # positions the model has
    sources = [s[:limit] for s in sources]                                   # a longer source is cut there
    device = next(model.parameters()).device
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    out = [""] * len(sources)
    for start in range(0, len(order), batch_size):
        idx = order[start: start + batch_size]
        width = max(len(sources[i]) for i in idx)
        src = torch.tensor([sources[i] + [tok.pad_id] * (width - len(sources[i])) for i in idx], device=device)
        max_len = min(int(1.5 * width) + 10, limit)
        if beam <= 1:
            hyp = model.greedy(src, tok.bos_id, tok.eos_id, max_len)
        else:
            hyp = model.beam_search(src, tok.bos_id, tok.eos_id, max_len, beam=beam)
        for i, row in zip(idx, hyp.tolist()):
            out[i] = tok.decode(row)
    return out


def bleu(hypotheses: list[str], references: list[str], lowercase: bool = False) -> float:
    import sacrebleu
    return sacrebleu.corpus_bleu(hypotheses, [references], lowercase=lowercase).score


def score(task: Task, cfg: dict) -> dict:
    """BLEU of the test set, translated by beam search (``model.beam``) and by greedy decoding (once, when
    ``model.beam`` is 1)."""
    tok, pairs = task.context["tokenizer"], task.context["test_text"]
    sources = [s for s, _ in task.context["test_ids"]]
    refs = [t for _, t in pairs]
    greedy = translate(task.model, tok, sources, beam=1)
    beam = greedy if cfg["model"]["beam"] <= 1 else translate(task.model, tok, sources, beam=cfg["model"]["beam"])
    return {"test_bleu": bleu(beam, refs), "test_bleu_lc": bleu(beam, refs, lowercase=True),
            "test_bleu_greedy": bleu(greedy, refs)}


def translate_sentences(task: Task, cfg: dict, texts: list, beam: int | None = None) -> list[dict]:
    """Translate sentences; ``beam`` defaults to the run's ``model.beam`` (1: greedy).

    Sentences of the same length in subwords are translated in one batch. (A batch of mixed lengths
    would pad the shorter sources and decode them as far as the longest one allows: an unfinished
    translation would then depend on its neighbours in the list.)"""
    for text in texts:
        if not isinstance(text, str) or not text.strip():
            raise DeepzooError("give a sentence to translate" + ("" if isinstance(text, str) else
                                                                   f"; got {type(text).__name__} {text!r:.60}"))
    if beam is None:
        beam = cfg["model"]["beam"]
    if beam < 1:
        raise DeepzooError(f"--beam must be >= 1, got {beam}")
    tok = task.context["tokenizer"]
    sources = [tok.encode(t) for t in texts]
    groups: dict[int, list[int]] = {}
    for i, ids in enumerate(sources):
        groups.setdefault(len(ids), []).append(i)
    out = [""] * len(texts)
    for idx in groups.values():
        for i, translation in zip(idx, translate(task.model, tok, [sources[i] for i in idx], beam=beam)):
            out[i] = translation
    return [{"input": text, "beam": beam, "translation": t} for text, t in zip(texts, out)]


register(Recipe(
    name="transformer-multi30k", family="Transformer", dataset="multi30k",
    description="encoder-decoder Transformer, 3+3 layers, width 256, shared BPE, beam search (de->en)",
    reference=Reference("test_bleu_lc", 36.5, "bentrevett/pytorch-seq2seq Transformer (3 layers, 256 wide) "
                        "on test_2016_flickr, lower-cased", "https://github.com/bentrevett/pytorch-seq2seq"),
    defaults={"data": {"sample": False, "path": "", "src_path": "", "tgt_path": "", "src": "de", "tgt": "en",
                       "vocab_size": 8000, "max_len": 100, "max_tokens": 4096, "split_seed": 0},
              "model": {"d_model": 256, "nhead": 8, "layers": 3, "dim_feedforward": 512, "dropout": 0.1,
                        "norm_first": False, "label_smoothing": 0.1, "beam": 5, "impl": "torch"},
              "optim": {"name": "adam", "lr": 1e-3, "schedule": "inverse_sqrt", "warmup_epochs": 1.0},
              "train": {"epochs": 16, "clip_grad_norm": 1.0}},
    # quick: a small model on the 3,000 packaged pairs, small batches at a high rate (about 65 steps an epoch),
    # greedy decoding (beam search is for the full model; `deepzoo predict RUN --beam 3` still uses it)
    presets={"quick": {"data": {"sample": True, "vocab_size": 2000, "max_tokens": 1024},
                       "model": {"d_model": 64, "nhead": 4, "layers": 2, "dim_feedforward": 128, "beam": 1},
                       "optim": {"lr": 5e-3, "warmup_epochs": 0.5}, "train": {"epochs": 3}}},
    build=build, artefacts=artefacts, restore=restore,
    predict=translate_sentences, predict_help="a sentence to translate, in quotes",
    predict_options=("beam",), score=score,
))
