"""``bert-pretrain`` and ``bert-pretrain-zh``: an encoder pre-trained by masked language modelling.

The notes end the Transformer chapter with how BERT is trained: first without labels, on a lot of text, by
guessing masked words (deepzoo/models/bert.py has the maths), then fine-tuned on a small labelled set. This
recipe is the first half; the text classifiers take its run folder (``--set model.pretrained=RUN``, or the
``bert-*`` recipes) for the second.

Corpus (``data.corpus``):

- ``en``: 17 million words of movie reviews and news, the domain of SST-2 and IMDB: IMDB's 50,000 unlabelled
  and 25,000 training reviews (never its test reviews), Penn Treebank's training text and SST-2's training
  sentences (their labels are never read). Held out: a text goes to validation or test (1% each) by a hash of
  it, so a review is never both trained on and scored.
- ``zh``: the training reviews of ChnSentiCorp and waimai (the 80% part of their fixed split: never their
  validation or test reviews), about 1.3 million characters.
- ``path``: your text, ``data.path``: a file, or a folder of ``.txt`` files, one text a line, read line by
  line; the lines are held as strings while the tokenizer trains, then encoded 10,000 at a time into int32
  ids (a corpus of N tokens ends as 4N bytes), so memory grows with the corpus, not with the encoder's work.

Tokens: WordPiece (deepzoo/data/wordpiece.py), trained on the corpus's training part, ``data.vocab_size``
pieces; Chinese is split into characters first. The texts' pieces, each text followed by ``[SEP]``, are laid
end to end and cut into rows of ``data.max_len`` ids that start with ``[CLS]`` (RoBERTa's full-sentence
packing: no padding is computed). Each "epoch" is ``data.steps_per_epoch`` batches of rows drawn without
replacement, masked anew (15% of tokens: 80% ``[MASK]``, 10% random, 10% kept). Validation and test use the
same held-out rows and the same masks every time (a fixed generator), so their figures compare across epochs.

Figures: the masked-token loss (``test_loss``, nats; the headline) and accuracy (``test_acc``: the share of
masked positions whose original token is the model's first guess) on held-out text. For scale: predicting
every masked piece from the corpus's piece frequencies alone scores a loss equal to their entropy (about 6
nats for the quick preset's 2,000 pieces) and an accuracy equal to the share of the commonest piece ("the",
about 3%); a short run such as the quick preset gets no further than that plateau, and the encoder only
starts to use the context after it. There is no published figure for this corpus and model size; what
pre-training buys is measured by fine-tuning (benchmarks/finetune.py).

Size: 4 pre-norm layers of width 128 (4 heads, feed-forward 512), 128 positions, 10,000 pieces (the depth of
BERT-mini, Turc et al. 2019, at half its width), sized for about half an hour of two AVX2 cores: 8 epochs x 800
steps x 16 rows x 128 tokens = 13 million tokens, half a pass over the English corpus. No dropout: in less than
one pass over the text nothing is seen twice, so there is nothing to overfit and dropout only slows learning
(as Geiping & Goldstein 2022 found for BERT on a small budget); and small batches of 16 rows give four times
as many updates as 64 for the same tokens. Measured on the English corpus, one thread each of a shared 2-core
AVX2 EPYC: after the first 12,800 rows the held-out masked-token accuracy was 10.4% this way, 8.9% with
batches of 64 and 6.4% with batches of 64 and dropout 0.1 (the first defaults).
Measured with these defaults (benchmarks/pretrain.py; one thread each of that EPYC, two runs side by side):

- English, 6,400 steps in 2,039 s: held-out masked-token loss 6.15 nats, 12.6% of masked pieces guessed
  first. Still on the plateau where the encoder predicts from the pieces' frequencies, not the context:
  "the film was [MASK] ." gets ".", "the", ",". Half a pass over 25 million tokens is too little here.
- Chinese, 6,400 steps in 1,916 s: loss 4.54, 23.9%. Its 1 million tokens are seen 12 times, and the
  encoder left the plateau in epoch 6 (validation accuracy 14.8%, 17.0%, 24.3%, 26.1% in epochs 5-8):
  "房间很[MASK]净。" gets 干, "味道不[MASK]，送餐也快。" gets 错, "服务[MASK]度很好。" gets 态.

What that buys a classifier: benchmarks/results/finetune-*.json and the README.

``deepzoo predict RUN "the film was [MASK] ."`` fills the masks: the five likeliest pieces for each.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from deepzoo.artefacts import reused
from deepzoo.data import registry
from deepzoo.data.batches import keyed_split
from deepzoo.data.registry import samples_dir
from deepzoo.data.text import json_fields, read_imdb, read_labelled, read_utf8
from deepzoo.data.wordpiece import MASK, WordPiece
from deepzoo.errors import DeepzooError
from deepzoo.models.bert import Encoder, MaskedLM, mask_tokens
from deepzoo.recipes import Recipe, Reference, register
from deepzoo.train.engine import Task
from deepzoo.train.metrics import Accuracy

HELD_OUT = 0.01          # of the texts, each for validation and for test
EVAL_ROWS = 256          # rows of held-out text scored at each validation (and at test)
DAMAGED = "copy the run folder again, or retrain"


# --- the corpus ------------------------------------------------------------------------------------------

def _sst2_sentences(path: Path) -> list[str]:
    texts, _, _ = read_labelled(path, "sentence", "label")      # the labels are read with the row, never used
    return list(dict.fromkeys(texts))


def corpus_texts(cfg: dict, data_dir):
    """The texts of ``data.corpus`` (a list, or a stream of lines for ``data.path``)."""
    d = cfg["data"]
    if d["corpus"] == "path":
        if not d["path"]:
            raise DeepzooError("data.path: give your text file or folder (one text a line), with data.corpus = path")
        return LineStream(Path(d["path"]))
    if d["sample"]:
        text = samples_dir() / "text"
        if d["corpus"] == "zh":   # the training part only, as the classifiers cut the samples
            from deepzoo.data.text import split_labelled
            out = []
            for name in ("ChnSentiCorp_htl_sample.csv", "waimai_sample.csv"):
                texts, labels, _ = read_labelled(text / "chnsenticorp" / name, "review", "label", skip_bad=True)
                out += split_labelled(texts, labels, d["split_seed"])["train"][0]
            return out
        texts = _sst2_sentences(text / "sst2" / "train.tsv")
        texts += read_imdb(text / "imdb" / "sample-unsup.jsonl.gz")[0]
        return texts
    if d["corpus"] == "zh":
        from deepzoo.data.text import load_chnsenticorp, load_waimai
        return [t for load in (load_chnsenticorp, load_waimai) for t in load(data_dir, d["split_seed"])["train"][0]]
    imdb = registry.locate("imdb", data_dir)
    texts = read_imdb(imdb / "unsup.jsonl.gz")[0] + read_imdb(imdb / "train.jsonl.gz")[0]
    ptb = registry.locate("ptb", data_dir) / "ptb.train.txt"
    texts += [line.strip().replace("<unk>", "[UNK]") for line in read_utf8(ptb).splitlines() if line.strip()]
    texts += _sst2_sentences(registry.locate("sst2", data_dir) / "train.tsv")
    return texts


class LineStream:
    """The non-empty lines of a text file, or of every ``.txt`` file of a folder (sorted), read lazily."""

    def __init__(self, path: Path) -> None:
        if not path.exists():
            raise DeepzooError(f"data.path: {path} does not exist")
        self.files = sorted(path.rglob("*.txt")) if path.is_dir() else [path]
        if not self.files:
            raise DeepzooError(f"data.path: {path} holds no .txt file")

    def __iter__(self):
        for file in self.files:
            try:
                with open(file, encoding="utf-8") as f:
                    for line in f:
                        if line.strip():
                            yield line.strip()
            except UnicodeDecodeError as e:
                raise DeepzooError(f"{file}: not UTF-8 text (byte {e.start}); convert it to UTF-8") from None


def held_out(texts, seed: int) -> dict[str, list[str]]:
    """Train / val / test texts, each text's part decided by a hash of it (and identical texts together)."""
    texts = list(texts)
    if len(texts) < 3:
        raise DeepzooError(f"the corpus has {len(texts)} non-empty lines; pre-training needs many more")
    # salted: the Chinese corpus is the training part of a keyed_split with this seed, and the same hashes
    # would all fall below 0.8 again, leaving nothing to hold out
    parts = keyed_split([f"held-out\n{t}" for t in texts], [1 - 2 * HELD_OUT, HELD_OUT, HELD_OUT], seed)
    if not parts[1] or not parts[2]:   # a tiny corpus: hold out its last lines
        n = len(texts)
        parts = [list(range(n - 2)), [n - 2], [n - 1]]
    return {name: [texts[i] for i in idx] for name, idx in zip(("train", "val", "test"), parts)}


CHUNK = 10_000   # texts encoded at a time: the tokenizer's encodings of a whole corpus would take gigabytes


def pack(texts: list[str], tok: WordPiece, max_len: int) -> torch.Tensor:
    """Rows (N, max_len): ``[CLS]`` then the next max_len - 1 ids of the texts laid end to end, each
    followed by ``[SEP]``; the last partial row is dropped (or padded, when it is the only one). The texts
    are encoded ``CHUNK`` at a time into int32 ids (4 bytes a token)."""
    chunks = []
    for start in range(0, len(texts), CHUNK):
        pieces = tok.pieces(texts[start:start + CHUNK])
        chunks.append(torch.tensor([i for row in pieces for i in (*row, tok.sep_index)], dtype=torch.int32))
    stream = torch.cat(chunks) if chunks else torch.zeros(0, dtype=torch.int32)
    width = max_len - 1
    n = len(stream) // width
    if n == 0:
        stream = torch.cat([stream, torch.full((width - len(stream),), tok.pad_index, dtype=torch.int32)])
        n = 1
    body = stream[: n * width].view(n, width)
    return torch.cat([torch.full((n, 1), tok.cls_index, dtype=torch.int32), body], dim=1)


class MaskedRows:
    """Batches of packed rows, masked: ``((inputs, lengths, labels), original ids at the masked positions)``.

    Training (``steps`` > 0): each epoch draws ``steps`` batches of rows without replacement (a fresh
    permutation each epoch) and fresh masks, all from the engine's generator. Evaluation (``steps`` = 0):
    every row once, in order, with the masks of a generator seeded ``seed``: the same questions every time."""

    def __init__(self, rows: torch.Tensor, tok: WordPiece, batch_size: int, steps: int = 0,
                 p: float = 0.15, seed: int = 0) -> None:
        self.rows, self.tok, self.batch_size, self.steps, self.p, self.seed = rows, tok, batch_size, steps, p, seed
        self.vocab = len(tok)

    def __len__(self) -> int:
        return self.steps or -(-len(self.rows) // self.batch_size)

    @property
    def num_samples(self) -> int:
        return len(self.rows)

    def epoch(self, generator=None):
        if self.steps:
            order = torch.cat([torch.randperm(len(self.rows), generator=generator)
                               for _ in range(-(-self.steps * self.batch_size // len(self.rows)))])
        else:
            order, generator = torch.arange(len(self.rows)), torch.Generator().manual_seed(self.seed)
        for b in range(len(self)):
            ids = self.rows[order[b * self.batch_size:(b + 1) * self.batch_size]].long()
            lengths = (ids != self.tok.pad_index).sum(1)
            inputs, labels = mask_tokens(ids, lengths, self.vocab, self.tok.mask_index, self.tok.first_normal,
                                         generator, self.p)
            yield (inputs, lengths, labels), labels[labels >= 0]


# --- the recipe ----------------------------------------------------------------------------------------------

def encoder(cfg: dict, vocab_size: int) -> Encoder:
    m = cfg["model"]
    return Encoder(vocab_size, max_len=cfg["data"]["max_len"], d_model=m["d_model"], n_layer=m["layers"],
                   n_head=m["heads"], dropout=m["dropout"], impl=m["impl"])


def build(cfg: dict, data_dir) -> Task:
    d = cfg["data"]
    parts = held_out(corpus_texts(cfg, data_dir), d["split_seed"])
    stored = reused("tokenizer.json")      # a resumed run keeps its tokenizer's ids
    tok = WordPiece.from_str(stored) if stored else WordPiece.train(parts["train"], d["vocab_size"],
                                                                    length=len(parts["train"]))
    rows = {k: pack(v, tok, d["max_len"]) for k, v in parts.items()}
    print(f"corpus: {len(parts['train']):,} texts, {rows['train'].numel():,} training tokens in "
          f"{len(rows['train']):,} rows of {d['max_len']}; WordPiece vocabulary {len(tok):,}")
    bs = d["batch_size"]
    return Task(model=MaskedLM(encoder(cfg, len(tok))),
                train=MaskedRows(rows["train"], tok, bs, d["steps_per_epoch"], cfg["model"]["mask_prob"]),
                val=MaskedRows(rows["val"][:EVAL_ROWS], tok, 128, p=cfg["model"]["mask_prob"], seed=1),
                test=MaskedRows(rows["test"][:EVAL_ROWS], tok, 128, p=cfg["model"]["mask_prob"], seed=2),
                loss=F.cross_entropy, metrics=[Accuracy], monitor="val_loss", headline="test_loss",
                context={"tokenizer": tok, "language": language(cfg)})


def language(cfg: dict) -> str:
    return {"en": "en", "zh": "zh"}.get(cfg["data"]["corpus"], cfg["data"]["language"])


def artefacts(task: Task, cfg: dict) -> dict:
    return {"tokenizer.json": task.context["tokenizer"].to_str(),
            "inference.json": {"language": task.context["language"]}}


def restore(cfg: dict, stored) -> Task:
    tok = WordPiece.from_str(stored.text("tokenizer.json"), stored.folder / "tokenizer.json")
    info = json_fields(stored.json(), stored.folder / "inference.json", {"language": str}, DAMAGED)
    return Task.for_inference(MaskedLM(encoder(cfg, len(tok))), {"tokenizer": tok, "language": info["language"]})


@torch.no_grad()
def fill_masks(task: Task, cfg: dict, items: list, top: int = 5) -> list[dict]:
    """For each text, the ``top`` likeliest pieces at each ``[MASK]`` (with their probabilities)."""
    tok, model = task.context["tokenizer"], task.model.eval()
    out = []
    for text in items:
        if not isinstance(text, str):
            raise DeepzooError(f"give texts as text; got {type(text).__name__} {text!r:.60}")
        ids = tok.encode([text], cfg["data"]["max_len"])[0]
        where = [i for i, t in enumerate(ids) if t == tok.mask_index]
        if not where:
            raise DeepzooError(f"put {MASK} where a word should be guessed, e.g. \"the film was {MASK} .\"; "
                               f"got {text!r:.80}")
        x = torch.tensor([ids])
        labels = torch.full_like(x, -100)
        labels[0, where] = 0
        probs = torch.softmax(model(x, torch.tensor([len(ids)]), labels).float(), dim=-1)
        guesses = []
        for p in probs:
            best = torch.topk(p, top)
            guesses.append({tok.decode([i])[0]: round(float(q), 4) for q, i in zip(best.values, best.indices)})
        out.append({"input": text, "tokens": tok.decode(ids), "masks": guesses})
    return out


EXAMPLES = {"en": ["the film was [MASK] .", "i have never seen a [MASK] movie .", "the [MASK] was great ."],
            "zh": ["房间很[MASK]净。", "味道不[MASK]，送餐也快。", "服务[MASK]度很好。"]}   # shown by the tour and serve

DEFAULTS = {
    "data": {"corpus": "en", "path": "", "language": "en", "sample": False, "vocab_size": 10000,
             "max_len": 128, "batch_size": 16, "steps_per_epoch": 800, "split_seed": 0},
    "model": {"d_model": 128, "layers": 4, "heads": 4, "dropout": 0.0, "mask_prob": 0.15, "impl": "torch"},
    "optim": {"name": "adamw", "lr": 2e-3, "weight_decay": 0.01, "schedule": "linear", "warmup_epochs": 0.5},
    "train": {"epochs": 8, "clip_grad_norm": 1.0},
}
# quick: the packaged SST-2 sentences and IMDB reviews (or the Chinese review samples), a 2-layer encoder of
# width 64 on a 2,000-piece vocabulary, rows of 64, a few hundred steps.
QUICK = {"data": {"sample": True, "vocab_size": 2000, "max_len": 64, "batch_size": 32, "steps_per_epoch": 60},
         "model": {"d_model": 64, "layers": 2, "heads": 2, "dropout": 0.0},
         "optim": {"lr": 3e-3, "warmup_epochs": 0.2}, "train": {"epochs": 4}}
NO_FIGURE = Reference("test_loss", None, "no published masked-token loss for this corpus and size; "
                      "fine-tuning measures what it buys (benchmarks/finetune.py)", higher_is_better=False)

for name, corpus, vocab, what in (
        ("bert-pretrain", "en", 10000, "English: IMDB reviews (unlabelled + train), PTB, SST-2 sentences"),
        ("bert-pretrain-zh", "zh", 8000, "Chinese: ChnSentiCorp + waimai training reviews, characters first")):
    register(Recipe(
        name=name, family="BERT (pre-training)", dataset=corpus if corpus == "zh" else "imdb+ptb+sst2",
        description=f"BERT-style encoder by masked language modelling; {what}",
        reference=NO_FIGURE,
        defaults={**DEFAULTS, "data": {**DEFAULTS["data"], "corpus": corpus, "language": corpus,
                                       "vocab_size": vocab}},
        presets={"quick": QUICK}, build=build, artefacts=artefacts, restore=restore,
        predict=fill_masks, predict_help=f"a text with {MASK} where a word is to be guessed, in quotes",
        predict_options=("top",)))
