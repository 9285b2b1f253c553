"""Parallel text for translation: Multi30k, your own aligned files or TSV, and a subword tokeniser.

Sentence pairs come from

- Multi30k (task 1, German-English): ``train``, ``val`` and ``test_2016_flickr`` ``.de.gz`` / ``.en.gz``,
  line i of one file the translation of line i of the other;
- your two aligned plain-text files (``data.src_path``, ``data.tgt_path``), line by line;
- your TSV (``data.path``), one pair per line: source TAB target.

Words are cut into subwords by byte-pair encoding (Sennrich et al. 2016), trained on the training pairs
with HF ``tokenizers``: BPE starts from characters and merges the most frequent adjacent pair, again and
again, until the vocabulary has ``vocab_size`` entries; frequent words end up whole, rare ones in pieces,
and no word is ever out of vocabulary. One vocabulary serves both languages (they share most of their
alphabet and many names), so the source embedding, the target embedding and the output layer can be
one matrix. The Metaspace pre-tokeniser marks word starts with "▁", so decoding gives the text back.
"""

from __future__ import annotations

from pathlib import Path

from deepzoo.data.text import read_utf8
from deepzoo.errors import DeepzooError

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
SPECIALS = (PAD, UNK, BOS, EOS)
MULTI30K_SPLITS = {"train": "train", "val": "val", "test": "test_2016_flickr"}


def _read_lines(path: Path) -> list[str]:
    text = read_utf8(path)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]


def read_aligned(src_path, tgt_path) -> list[tuple[str, str]]:
    """Pairs from two files with one sentence per line; every line must have its partner."""
    src, tgt = _read_lines(src_path), _read_lines(tgt_path)
    if len(src) != len(tgt):
        raise DeepzooError(f"{src_path} has {len(src)} lines but {tgt_path} has {len(tgt)}; "
                           f"the two files must be aligned line by line")
    for i, (s, t) in enumerate(zip(src, tgt), 1):
        if not s.strip() or not t.strip():
            which = src_path if not s.strip() else tgt_path
            raise DeepzooError(f"{which}, line {i}: empty sentence (its partner is {(t or s)[:40]!r})")
    return list(zip(src, tgt))


def read_tsv(path) -> list[tuple[str, str]]:
    """Pairs from a TSV file: source TAB target, one pair per line."""
    pairs = []
    for i, line in enumerate(_read_lines(path), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
            raise DeepzooError(f"{path}, line {i}: expected 'source<TAB>target', got {len(parts)} "
                               f"field(s): {line[:60]!r}")
        pairs.append((parts[0], parts[1]))
    return pairs


def load_multi30k(folder: Path, src: str = "de", tgt: str = "en", prefix: str = "") -> dict[str, list[tuple[str, str]]]:
    """Multi30k's train / val / test_2016_flickr pairs (``prefix="sample-"`` for the packaged sample)."""
    if {src, tgt} != {"de", "en"}:
        raise DeepzooError(f"Multi30k has German (de) and English (en); got {src}->{tgt}")
    return {split: read_aligned(Path(folder) / f"{prefix}{stem}.{src}.gz", Path(folder) / f"{prefix}{stem}.{tgt}.gz")
            for split, stem in MULTI30K_SPLITS.items()}


def split_pairs(pairs: list, seed: int, fractions=(0.05, 0.05)) -> dict[str, list]:
    """The user's pairs: a fixed shuffle (``seed``) into train / val / test."""
    import torch
    if len(pairs) < 50:
        raise DeepzooError(f"only {len(pairs)} sentence pairs; translation needs at least 50")
    order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(seed)).tolist()
    n_val, n_test = (max(1, int(f * len(pairs))) for f in fractions)
    pick = lambda idx: [pairs[i] for i in idx]  # noqa: E731
    return {"val": pick(order[:n_val]), "test": pick(order[n_val:n_val + n_test]),
            "train": pick(order[n_val + n_test:])}


class SubwordTokenizer:
    """A BPE vocabulary shared by both languages (HF ``tokenizers``), with <pad> <unk> <s> </s> = 0..3."""

    def __init__(self, tokenizer) -> None:
        self.tok = tokenizer
        self.pad_id, self.unk_id, self.bos_id, self.eos_id = (tokenizer.token_to_id(s) for s in SPECIALS)

    @classmethod
    def train(cls, texts, vocab_size: int = 8000, min_frequency: int = 2) -> "SubwordTokenizer":
        from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
        tok = Tokenizer(models.BPE(unk_token=UNK))
        tok.normalizer = normalizers.NFKC()
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                      special_tokens=list(SPECIALS), show_progress=False)
        tok.train_from_iterator(texts, trainer=trainer)
        return cls(tok)

    @classmethod
    def from_file(cls, path) -> "SubwordTokenizer":
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise DeepzooError(f"{path}: cannot read the tokenizer file ({e})") from None
        return cls.from_str(text, path)

    @classmethod
    def from_str(cls, text: str, where="the tokenizer") -> "SubwordTokenizer":
        """The tokeniser of a JSON string written by :meth:`to_str` (``where`` names it in errors)."""
        from tokenizers import Tokenizer
        try:
            tok = Tokenizer.from_str(text)
        except Exception as e:  # tokenizers raises its own Exception type for bad JSON
            raise DeepzooError(f"{where}: not a tokenizer file ({e})") from None
        missing = [s for s in SPECIALS if tok.token_to_id(s) is None]
        if missing:
            raise DeepzooError(f"{where}: the tokenizer lacks the special token(s) {' '.join(missing)}")
        return cls(tok)

    def to_str(self) -> str:
        """The whole tokeniser (normaliser, pre-tokeniser, BPE vocabulary and merges, decoder) as JSON;
        the same training text gives the same string."""
        return self.tok.to_str()

    def save(self, path) -> None:
        from deepzoo.files import atomic_write_bytes
        atomic_write_bytes(Path(path), self.to_str().encode("utf-8"))

    def __len__(self) -> int:
        return self.tok.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.tok.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids) -> str:
        ids = [int(i) for i in ids]
        if self.eos_id in ids:
            ids = ids[: ids.index(self.eos_id)]
        return self.tok.decode([i for i in ids if i not in (self.pad_id, self.bos_id)])
