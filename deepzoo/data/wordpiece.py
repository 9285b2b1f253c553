"""WordPiece subwords for the pre-trained encoder (BERT's tokeniser), trained with HF ``tokenizers``.

A text is normalised (lower-cased, control characters dropped, and every CJK character set apart by spaces,
so Chinese is split into characters before anything else, as BERT-Chinese does), cut into words at spaces
and punctuation, and each word into the longest pieces of the vocabulary, left to right: ``playing`` ->
``play ##ing``. The vocabulary is learnt from the pre-training corpus: it starts from characters and adds the
merge of two pieces that most raises the corpus likelihood, until it holds ``vocab_size`` entries. So no word
is ever out of vocabulary (at worst it is spelt out in pieces), and frequent words stay whole.

The first five ids are the specials: ``[PAD]`` 0, ``[UNK]`` 1, ``[CLS]`` 2, ``[SEP]`` 3, ``[MASK]`` 4.
:class:`WordPiece` wraps a trained tokenizer with what the recipes need: ids framed as
``[CLS] pieces [SEP]`` and cut to a length, the pieces of an id list, and the JSON that a run folder keeps.
"""

from __future__ import annotations

from typing import Iterable

from deepzoo.data.text import TRUNCATE, cut
from deepzoo.errors import DeepzooError

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIALS = (PAD, UNK, CLS, SEP, MASK)


class WordPiece:
    def __init__(self, tokenizer) -> None:
        self.tok = tokenizer
        for i, s in enumerate(SPECIALS):
            if tokenizer.token_to_id(s) != i:
                raise DeepzooError(f"the tokenizer's special token {s} must have id {i}, "
                                   f"has {tokenizer.token_to_id(s)}")
        self.pad_index, self.unk_index, self.cls_index, self.sep_index, self.mask_index = range(5)
        self.first_normal = len(SPECIALS)

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int, min_frequency: int = 2, length: int | None = None,
              progress: bool = False) -> "WordPiece":
        from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
        tok = Tokenizer(models.WordPiece(unk_token=UNK, max_input_chars_per_word=100))
        tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                    strip_accents=None, lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                            special_tokens=list(SPECIALS), show_progress=progress)
        tok.train_from_iterator(texts, trainer=trainer, length=length)
        # The trainer's vocabulary is the same set every time, but its ids are not: pieces of equal count come
        # out in the order of a hash map, which changes from run to run. The ids are made a function of the
        # corpus alone (specials, then the pieces in sorted order), so that a run trained twice, or resumed
        # after a kill (which builds the tokenizer again), gets the same ids. WordPiece itself reads only the
        # set: a word is cut into the longest pieces of the vocabulary, whatever their ids.
        pieces = sorted(set(tok.get_vocab()) - set(SPECIALS))
        tok.model = models.WordPiece({p: i for i, p in enumerate((*SPECIALS, *pieces))}, unk_token=UNK,
                                     max_input_chars_per_word=100)
        return cls(tok)

    @classmethod
    def from_str(cls, text: str, where: str = "tokenizer.json") -> "WordPiece":
        from tokenizers import Tokenizer
        try:
            return cls(Tokenizer.from_str(text))
        except Exception as e:     # tokenizers raises its own Exception type for a damaged file
            raise DeepzooError(f"{where}: not a tokenizer file ({str(e)[:120]})") from None

    def to_str(self) -> str:
        return self.tok.to_str()

    def __len__(self) -> int:
        return self.tok.get_vocab_size()

    def pieces(self, texts: list[str]) -> list[list[int]]:
        """The piece ids of each text, without specials."""
        return [e.ids for e in self.tok.encode_batch(list(texts), add_special_tokens=False)]

    def encode(self, texts: list[str], max_len: int, truncate: str = "head") -> list[list[int]]:
        """``[CLS] pieces [SEP]`` of each text, at most ``max_len`` ids. A longer text keeps its first
        pieces (``head``), or its first quarter and last three quarters (``head+tail``: a review's verdict
        is often in its last lines; Sun et al. 2019 found this cut best for IMDB)."""
        if truncate not in TRUNCATE:
            raise DeepzooError(f"data.truncate must be one of {', '.join(TRUNCATE)}, got {truncate!r}")
        room = max_len - 2
        if room < 1:
            raise DeepzooError(f"data.max_len = {max_len} leaves no room for a token between [CLS] and [SEP]")
        return [[self.cls_index, *cut(ids, room, truncate), self.sep_index] for ids in self.pieces(texts)]

    def decode(self, ids) -> list[str]:
        return [self.tok.id_to_token(int(i)) for i in ids]

    def unknown_rate(self, texts: list[str]) -> float:
        """The share of pieces that are ``[UNK]``: near 0 on text in the corpus's language and script."""
        ids = [i for row in self.pieces(texts) for i in row]
        return sum(i == self.unk_index for i in ids) / max(len(ids), 1)
