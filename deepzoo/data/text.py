"""Text data: from files of sentences to padded mini-batches of token ids.

A neural network reads numbers, not words, so every NLP model starts with the same pipeline:

    1. prepare data     read the files, keep (text, label) pairs, split train / dev / test
    2. tokenise         "This isn't bad." -> ["this", "is", "n't", "bad", "."]
    3. vocabulary       map each distinct token to an integer id (most frequent first); rare tokens
                        share one id, <unk>, so the embedding table stays small and every id was seen
                        often enough in training to learn something
    4. ids              ["this", "is", "n't", "bad", "."] -> [12, 9, 31, 140, 2]
    5. padded batches   sentences differ in length but a tensor is rectangular, so a batch of B
                        sentences of lengths L_1..L_B becomes a [B, T] matrix, T = max L_i, with the
                        short rows filled by <pad> (id 0); the true lengths travel with the batch so
                        the model can ignore the padding (masking, or ``pack_padded_sequence``)

Padding is wasted work: a recurrent network still steps through the pad positions, and a batch that
holds one 50-token sentence and 31 five-token ones is 86 % padding. Putting sentences of similar length
in the same batch ("bucketing", :class:`TextBatches` with ``sort_within=True``) removes most of it,
while shuffling within large random chunks and shuffling the order of batches keeps training random.

Language modelling needs no padding at all: the corpus is one long stream of ids, cut into
``batch_size`` parallel rows (:func:`lm_batches`) and read in windows of ``bptt`` steps
(:func:`bptt_windows`), the target being the input shifted one token to the left.

User mistakes (a missing column, a malformed row, a corrupt vocabulary file) raise
:class:`~deepzoo.errors.DeepzooError` with one line naming the file, the line and what to do.
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import json
import logging
import math
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import torch

from deepzoo.data import registry
from deepzoo.data.batches import keyed_split
from deepzoo.errors import DeepzooError
from deepzoo.files import atomic_write_json

__all__ = [
    "PAD", "UNK", "EOS",
    "tokenize_en", "tokenize_zh", "get_tokenizer", "TOKENIZERS",
    "Vocab", "LabelMap",
    "read_labelled", "read_labelled_rows", "LabelledRows", "read_utf8", "split_labelled", "read_lm_file",
    "TextDataset", "load_sst2", "load_chnsenticorp", "load_waimai", "load_ptb",
    "read_imdb", "load_imdb",
    "encode_texts", "encode_stream", "TextBatches", "lm_batches", "bptt_windows",
]

PAD, UNK, EOS = "<pad>", "<unk>", "<eos>"

# ----------------------------------------------------------------------------------------------
# Tokenisers
# ----------------------------------------------------------------------------------------------

# One English token, tried left to right at each position (the first alternative that matches wins).
# The conventions are the Penn Treebank's, which GLUE SST-2 already follows, so that re-tokenising its
# space-separated text gives back exactly its tokens.
_EN_TOKEN = re.compile(
    r"""
      (?:[^\W\d_]\.){2,}                          # dotted abbreviations: u.s.  e.t.
    | (?:mr|mrs|ms|dr|jr|sr|st|vs|mt|messrs|etc|inc|co|corp|ltd|bros|al|
         jan|feb|mar|apr|aug|sept|sep|oct|nov|dec)\.(?!\w)   # abbreviations that keep their period
    | no\.(?=\s*\d)                                # no. 1
    | [^\W\d_]\.(?![\w.])                         # initials: j. edgar, malcolm x.
    | \w+(?=n't\b)                                # "does" of "doesn't" (split as does + n't)
    | n't\b                                       # the negation clitic
    | '(?:s|re|ve|ll|d|m|em|til)\b                # clitics: 's 're 've 'll 'd 'm 'em 'til
    | 'n'?(?!\w)                                  # rock 'n' roll, nice 'n safe
    | '\d+s?\b                                    # years and decades: '53  '70s
    | \d+(?:,\d{3})+(?:\.\d+)?                     # numbers with thousands separators: 10,000
    | \w+(?:[-/.&]\w+|'(?!(?:s|re|ve|ll|d|m|t)\b)\w+)*   # words, with inner - / . & or ': sci-fi and/or 3.5 o'clock
    | [?!]+                                       # ?!?
    | ([^\w\s])\1*                                # other punctuation; a run of one mark is one token: ... --
    """,
    re.VERBOSE,
)


def tokenize_en(text: str) -> list[str]:
    """Lower-cased English word tokens, Penn-Treebank style.

    Punctuation is split off (``"bad."`` -> ``bad .``), and so are the clitics: ``"isn't"`` -> ``is n't``,
    ``"it's"`` -> ``it 's``, which keeps the vocabulary small (one ``n't`` instead of ``isn't``, ``don't``,
    ``wasn't`` ...). Hyphenated words (``sci-fi``), numbers (``3.5``, ``1/2``), abbreviations (``u.s.``,
    ``mr.``) and runs of one punctuation mark (``...``, ``--``) stay whole. Text that is already tokenised
    this way with spaces, such as GLUE SST-2, comes back unchanged: ``tokenize_en(s) == s.split()`` (for
    all but 14 of its 68,221 sentences). A single letter followed by a period is taken for an initial
    (``j. edgar``), so a sentence that ends in a one-letter word ("plan b.") keeps the period on it.
    """
    return [m.group(0) for m in _EN_TOKEN.finditer(text.lower())]


_jieba = None
_ZH_CHAR = re.compile(r"[a-z0-9]+|\S")


def _load_jieba():
    """Import jieba on first use (importing it costs time and loading its dictionary ~1 s)."""
    global _jieba
    if _jieba is None:
        import jieba
        jieba.setLogLevel(logging.WARNING)  # silence "Building prefix dict ..." on every process
        _jieba = jieba
    return _jieba


def tokenize_zh(text: str, mode: str = "word") -> list[str]:
    """Chinese tokens: words (``mode="word"``, segmented by jieba) or characters (``mode="char"``).

    Written Chinese puts no spaces between words: 房间很大早餐不错 is four words, 房间 / 很大 / 早餐 /
    不错, but nothing in the text marks where they end, so splitting on whitespace would make the whole
    sentence one "word". A segmenter has to find the boundaries; jieba does it with a dictionary of
    word frequencies (the most probable path through the sentence's possible words) plus a hidden
    Markov model for words it does not know. The alternative is to skip segmentation and use each
    character as a token ("char"): no segmentation errors and a small vocabulary (a few thousand
    characters), at the price of longer sequences and of leaving the model to learn what a word is.

    Whitespace is dropped and Latin letters are lower-cased (``WiFi`` -> ``wifi``). In char mode a run
    of ASCII letters and digits (``wifi``, ``2m``) stays one token; every other character is its own.
    """
    if mode == "word":
        return list(_jieba_words(text))
    if mode == "char":
        return _ZH_CHAR.findall(text.lower())
    raise DeepzooError(f"tokenize_zh: unknown mode '{mode}' (choices: word, char)")


@functools.lru_cache(maxsize=200_000)
def _jieba_words(text: str) -> tuple[str, ...]:
    """jieba's words of ``text``, remembered: segmenting is the slow part of reading Chinese text (about 3 ms
    a review), and the tour and the experiments read the same files in several recipes of one process."""
    return tuple(t.lower() for t in _load_jieba().lcut(text) if not t.isspace() and t)


def _tokenize_zh_char(text: str) -> list[str]:
    return tokenize_zh(text, mode="char")


TOKENIZERS: dict[str, Callable[[str], list[str]]] = {
    "en": tokenize_en,
    "zh": tokenize_zh,
    "zh-char": _tokenize_zh_char,
}


def get_tokenizer(name: str) -> Callable[[str], list[str]]:
    """The tokeniser called ``name``: "en" (English words), "zh" (jieba words), "zh-char" (characters)."""
    try:
        return TOKENIZERS[name]
    except (KeyError, TypeError):
        raise DeepzooError(f"unknown tokenizer '{name}' (choices: {', '.join(TOKENIZERS)})") from None


# ----------------------------------------------------------------------------------------------
# JSON files, written atomically
# ----------------------------------------------------------------------------------------------


def _read_json(path: str | os.PathLike, what: str) -> dict:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DeepzooError(f"{what} file {path} not found; build it again (or check the path)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DeepzooError(f"{what} file {path} cannot be read ({e}); delete it and build it again") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise DeepzooError(f"{path}, line {e.lineno}: corrupt {what} file, not valid JSON ({e.msg}); "
                           "delete it and build it again") from None
    if not isinstance(obj, dict):
        raise DeepzooError(f"{path}: corrupt {what} file, expected a JSON object; delete it and build it again")
    return obj


REBUILD = "delete it and build it again"


def _string_list(obj: dict, key: str, path, what: str, fix: str = REBUILD) -> list[str]:
    value = obj.get(key)
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise DeepzooError(f"{path}: corrupt {what} file, field '{key}' must be a list of strings; {fix}")
    if len(set(value)) != len(value):
        raise DeepzooError(f"{path}: corrupt {what} file, field '{key}' has duplicate entries; {fix}")
    return value


def json_fields(obj, path, fields: dict[str, type | tuple], fix: str = REBUILD) -> dict:
    """Check that the JSON object ``obj`` (read from ``path``) has each of ``fields`` with the given type
    (``None`` allowed where the type tuple holds ``type(None)``); a DeepzooError naming the file if not."""
    if not isinstance(obj, dict):
        raise DeepzooError(f"{path}: expected a JSON object; {fix}")
    for key, kind in fields.items():
        if key not in obj:
            raise DeepzooError(f"{path}: field '{key}' is missing; {fix}")
        value, kinds = obj[key], kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise DeepzooError(f"{path}: field '{key}' has the wrong type ({type(value).__name__}); {fix}")
    return obj


# ----------------------------------------------------------------------------------------------
# Vocabulary and labels
# ----------------------------------------------------------------------------------------------


class Vocab:
    """A token <-> id table. Id 0 is ``<pad>``, id 1 is ``<unk>``, then any extra specials, then words.

    Built by :meth:`build` from training text only (tokens of dev/test that training never saw become
    ``<unk>``, as they would for a deployed model). Words are ordered by frequency, most frequent first,
    ties broken by first appearance, so the same text always gives the same ids. A literal special in
    the text (PTB's corpus already contains ``<unk>``) maps to that special's id.
    """

    FORMAT = "deepzoo-vocab"
    pad_index, unk_index = 0, 1

    def __init__(self, itos: Sequence[str], labels: LabelMap | None = None) -> None:
        itos = list(itos)
        if itos[:2] != [PAD, UNK]:
            raise ValueError(f"a vocabulary starts with {PAD}, {UNK}; got {itos[:2]}")
        if len(set(itos)) != len(itos):
            raise ValueError("a vocabulary may not hold a token twice")
        self.itos: list[str] = itos
        self.stoi: dict[str, int] = {s: i for i, s in enumerate(itos)}
        self.labels = labels  # optional: the LabelMap saved in the same file

    @classmethod
    def build(cls, token_lists: Iterable[Iterable[str]], min_freq: int = 1, max_size: int | None = None,
              specials: Sequence[str] = ()) -> Vocab:
        """Count tokens and keep those seen at least ``min_freq`` times.

        ``specials`` are extra reserved tokens after ``<pad>`` and ``<unk>`` (for example ``"<eos>"``).
        ``max_size`` caps ``len(vocab)``, specials included (the rows of the embedding table); the least
        frequent words are dropped first.
        """
        if min_freq < 1:
            raise ValueError(f"min_freq must be >= 1, got {min_freq}")
        reserved = [PAD, UNK] + [s for s in specials if s not in (PAD, UNK)]
        counts: Counter[str] = Counter()
        for tokens in token_lists:
            counts.update(tokens)
        for s in reserved:
            counts.pop(s, None)
        # sorted() is stable and a Counter remembers first insertion, so ties keep first appearance.
        words = [w for w, c in sorted(counts.items(), key=lambda wc: -wc[1]) if c >= min_freq]
        if max_size is not None:
            if max_size < len(reserved):
                raise ValueError(f"max_size {max_size} leaves no room for the {len(reserved)} special tokens")
            words = words[:max_size - len(reserved)]
        return cls(reserved + words)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def __getitem__(self, token: str) -> int:
        return self.stoi.get(token, self.unk_index)

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Token ids; a token not in the vocabulary gets the id of ``<unk>`` (1)."""
        get, unk = self.stoi.get, self.unk_index
        return [get(t, unk) for t in tokens]

    def decode(self, ids: Iterable[int] | torch.Tensor) -> list[str]:
        """Tokens of ``ids`` (a list or a 1-D tensor)."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        return [self.itos[i] for i in ids]

    def to_json(self, labels: LabelMap | None = None) -> dict:
        """The JSON object :meth:`save` writes (a run folder keeps it as ``inference/vocab.json``)."""
        labels = labels if labels is not None else self.labels
        obj = {"format": self.FORMAT, "version": 1, "itos": self.itos}
        if labels is not None:
            obj["labels"] = labels.names
        return obj

    def save(self, path: str | os.PathLike, labels: LabelMap | None = None) -> None:
        """Write the vocabulary (and the label names, if any) as JSON, atomically."""
        atomic_write_json(path, self.to_json(labels), indent=1)

    @classmethod
    def from_json(cls, obj, path, fix: str = REBUILD) -> Vocab:
        """The vocabulary of a JSON object written by :meth:`to_json`, read from ``path`` (named in errors,
        with ``fix``: what to do about a damaged file)."""
        if not isinstance(obj, dict) or obj.get("format") != cls.FORMAT:
            found = obj.get("format") if isinstance(obj, dict) else type(obj).__name__
            raise DeepzooError(f"{path}: not a deepzoo vocabulary file (field 'format' is "
                               f"{found!r}, expected '{cls.FORMAT}')")
        itos = _string_list(obj, "itos", path, "vocabulary", fix)
        if itos[:2] != [PAD, UNK]:
            raise DeepzooError(f"{path}: corrupt vocabulary file, field 'itos' must start with {PAD}, {UNK}; "
                               f"{fix}")
        labels = LabelMap(_string_list(obj, "labels", path, "vocabulary", fix)) if "labels" in obj else None
        return cls(itos, labels)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Vocab:
        """Read a file written by :meth:`save`; ``vocab.labels`` is its LabelMap or None."""
        return cls.from_json(_read_json(path, "vocabulary"), path)

    def __repr__(self) -> str:
        return f"Vocab({len(self)} tokens: {', '.join(self.itos[:6])}{', ...' if len(self) > 6 else ''})"


def _is_number(s: str) -> bool:
    try:
        return math.isfinite(float(s))
    except ValueError:
        return False


class LabelMap:
    """Label strings <-> class indices 0..K-1.

    The files keep labels as text ("0"/"1", "pos"/"neg"); :meth:`fit` sorts the distinct ones, numerically
    when they all look like numbers, so "2" comes before "10" (as strings "10" < "2") and "-1", "0", "1"
    become classes 0, 1, 2.
    """

    FORMAT = "deepzoo-labels"

    def __init__(self, names: Sequence[str]) -> None:
        self.names: list[str] = list(names)
        if len(set(self.names)) != len(self.names):
            raise ValueError("label names must be distinct")
        self.index: dict[str, int] = {s: i for i, s in enumerate(self.names)}

    @classmethod
    def fit(cls, labels: Iterable[str]) -> LabelMap:
        distinct = set(labels)
        if distinct and all(_is_number(s) for s in distinct):
            return cls(sorted(distinct, key=lambda s: (float(s), s)))
        return cls(sorted(distinct))

    def __len__(self) -> int:
        return len(self.names)

    def encode(self, labels: Iterable[str]) -> list[int]:
        out = []
        for s in labels:
            i = self.index.get(s)
            if i is None:
                raise DeepzooError(f"label '{s}' is not one of the known labels ({', '.join(self.names)})")
            out.append(i)
        return out

    def decode(self, ids: Iterable[int] | torch.Tensor) -> list[str]:
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        return [self.names[i] for i in ids]

    def save(self, path: str | os.PathLike) -> None:
        atomic_write_json(path, {"format": self.FORMAT, "version": 1, "labels": self.names}, indent=1)

    @classmethod
    def load(cls, path: str | os.PathLike) -> LabelMap:
        obj = _read_json(path, "label")
        if obj.get("format") != cls.FORMAT:
            raise DeepzooError(f"{path}: not a deepzoo label file (field 'format' is {obj.get('format')!r}, "
                               f"expected '{cls.FORMAT}')")
        return cls(_string_list(obj, "labels", path, "label"))

    def __repr__(self) -> str:
        return f"LabelMap({self.names})"


# ----------------------------------------------------------------------------------------------
# Reading labelled text from CSV / TSV / JSON lines
# ----------------------------------------------------------------------------------------------


def read_utf8(path: str | os.PathLike) -> str:
    """The text of a UTF-8 file (``.gz``: decompressed first). A missing, unreadable or damaged file, or
    bytes that are not UTF-8, is one DeepzooError naming the file (and the line)."""
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                data = f.read()
        else:
            data = path.read_bytes()
    except FileNotFoundError:
        raise DeepzooError(f"{path} not found; check the path") from None
    except (OSError, EOFError) as e:  # a directory, a truncated or not-really-gzip .gz, no permission
        raise DeepzooError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        return data.decode("utf-8-sig")  # a leading byte-order mark (Excel writes one) is dropped
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise DeepzooError(f"{path}, line {line}: not valid UTF-8 (byte {e.start}); save the file as UTF-8") from None


def _suffix(path: Path) -> str:
    """The extension that tells the format, past a ``.gz``: ``train.tsv.gz`` -> ``.tsv``."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


JSON_LINES = (".jsonl", ".ndjson", ".json")


def _delimiter(path: Path, text: str, delimiter: str | None) -> str:
    """The field delimiter, or ``"json"`` for JSON lines."""
    if delimiter is not None:
        return delimiter
    suffix = _suffix(path)
    if suffix in JSON_LINES:
        return "json"
    if suffix == ".tsv":
        return "\t"
    if suffix == ".csv":
        return ","
    if text.lstrip().startswith("{"):
        return "json"
    try:
        return csv.Sniffer().sniff(text[:65536], delimiters=",\t;|").delimiter
    except csv.Error:
        raise DeepzooError(f"{path}: cannot tell whether the file is CSV, TSV or JSON lines; name it .csv, .tsv "
                           "or .jsonl or pass the delimiter") from None


@dataclass
class LabelledRows:
    """What :func:`read_labelled_rows` read: the texts, their labels (as the file spells them), the line
    where each row starts, and how many bad rows were skipped."""

    path: Path
    texts: list[str]
    labels: list[str]
    lines: list[int]
    skipped: int = 0


def read_labelled(path: str | os.PathLike, text_column: str, label_column: str, delimiter: str | None = None,
                  skip_bad: bool = False) -> tuple[list[str], list[str], int]:
    """``(texts, labels, skipped)`` from a CSV or TSV file with a header row, or a JSON-lines file.

    The format comes from the extension (``.tsv`` tab, ``.csv`` comma, ``.jsonl`` / ``.ndjson`` /
    ``.json`` JSON lines; a ``.gz`` after it is decompressed), else from the content (JSON lines if it
    starts with ``{``, else the delimiter is guessed). CSV fields may be quoted, and a quoted field may
    hold the delimiter, doubled quotes and newlines. TSV (tab) files are read without quoting, one record
    per line, as GLUE writes them: a ``"`` there is an ordinary character. JSON lines hold one object a
    line, ``text_column`` and ``label_column`` being two of its keys (a number label such as ``1`` reads
    as ``"1"``, as a CSV would give it). The file must be UTF-8; a byte-order mark is tolerated.

    Labels are returned as the strings in the file (see :class:`LabelMap`). A bad row -- fewer or more
    fields than the header, an empty text or an empty label, a line that is not a JSON object -- is an
    error naming the line where the record starts, or, with ``skip_bad=True``, is left out and counted in
    ``skipped``. Blank lines are ignored. A missing column (in the header, or in the first JSON object)
    is always an error, and so is broken CSV quoting (a quote never closed, text after a closing quote):
    past it, where one record ends and the next begins is anyone's guess.
    """
    rows = read_labelled_rows(path, text_column, label_column, delimiter, skip_bad)
    return rows.texts, rows.labels, rows.skipped


def read_labelled_rows(path: str | os.PathLike, text_column: str, label_column: str,
                       delimiter: str | None = None, skip_bad: bool = False) -> LabelledRows:
    """:func:`read_labelled`, with the line where each row starts (for errors about a row's content)."""
    path = Path(path)
    text = read_utf8(path)
    delim = _delimiter(path, text, delimiter)
    if delim == "json":
        return _read_json_lines(path, text, text_column, label_column, skip_bad)
    quoting = csv.QUOTE_NONE if delim == "\t" else csv.QUOTE_MINIMAL
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim, quoting=quoting, strict=True)
    kind = "TSV" if delim == "\t" else "CSV"

    def next_row() -> tuple[int, list[str]] | None:
        start = reader.line_num + 1  # line_num counts physical lines read so far
        try:
            row = next(reader)
        except StopIteration:
            return None
        except csv.Error as e:
            raise DeepzooError(f"{path}, line {start}: malformed {kind} ({e}); fix the quoting") from None
        return start, row  # a blank line comes back as [] (skipped by the callers)

    first = next_row()
    while first is not None and not first[1]:
        first = next_row()
    if first is None:
        raise DeepzooError(f"{path} is empty; expected a header row naming the columns "
                           f"'{text_column}' and '{label_column}'")
    header_line, header = first
    header = [h.strip() for h in header]
    missing = [c for c in (text_column, label_column) if c not in header]
    if missing:
        raise DeepzooError(f"{path}, line {header_line}: no column {' or '.join(repr(c) for c in missing)}; "
                           f"the header has columns {', '.join(repr(h) for h in header)}")
    ti, li = header.index(text_column), header.index(label_column)

    rows = LabelledRows(path, [], [], [])
    while (item := next_row()) is not None:
        line, row = item
        if not row:
            continue
        if len(row) != len(header):
            problem = (f"{len(row)} fields but the header has {len(header)}"
                       + (" (an unquoted delimiter inside the text?)" if len(row) > len(header) else ""))
        elif not row[ti].strip():
            problem = f"empty text in column '{text_column}'"
        elif not row[li].strip():
            problem = f"empty label in column '{label_column}'"
        else:
            rows.texts.append(row[ti])
            rows.labels.append(row[li].strip())
            rows.lines.append(line)
            continue
        if not skip_bad:
            raise DeepzooError(f"{path}, line {line}: {problem}; fix or delete the row (or skip bad rows)")
        rows.skipped += 1
    return rows


_JSON_TYPES = {str: "text", bool: "true/false", int: "a number", float: "a number", list: "a list",
               dict: "an object", type(None): "null"}


def _read_json_lines(path: Path, text: str, text_column: str, label_column: str, skip_bad: bool) -> LabelledRows:
    """JSON lines: one object a line (a blank line is skipped). Lines are cut at ``\\n`` only: a JSON string
    may hold U+2028, which ``str.splitlines`` would also cut at."""
    if text.lstrip().startswith("["):
        raise DeepzooError(f"{path}: one JSON array; give JSON lines instead, one object a line "
                           f"(jq -c '.[]' {path.name} > {path.stem}.jsonl does it)")
    rows, first = LabelledRows(path, [], [], []), True
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        label = None
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            problem = f"not valid JSON ({e.msg}, column {e.colno})"
        else:
            if not isinstance(obj, dict):
                problem = f"expected a JSON object {{...}}, got {_JSON_TYPES.get(type(obj), type(obj).__name__)}"
            elif text_column not in obj or label_column not in obj:
                missing = " or ".join(repr(k) for k in (text_column, label_column) if k not in obj)
                problem = f"no key {missing}; the object has keys {', '.join(repr(k) for k in obj) or 'none'}"
                if first:  # the first object shows the file's keys: a wrong key name, not a bad row
                    raise DeepzooError(f"{path}, line {number}: {problem}")
            else:
                value, raw = obj[text_column], obj[label_column]
                if isinstance(raw, str):
                    label = raw.strip()
                elif isinstance(raw, (bool, int)) or (isinstance(raw, float) and math.isfinite(raw)):
                    label = json.dumps(raw)  # 1 -> "1", true -> "true": the label a CSV would give
                if not isinstance(value, str):
                    problem = f"key '{text_column}' holds {_JSON_TYPES.get(type(value), 'a value')}, not text"
                elif not value.strip():
                    problem = f"empty text in key '{text_column}'"
                elif label is None:
                    problem = (f"key '{label_column}' holds {_JSON_TYPES.get(type(raw), 'a value')}; "
                               "a label is text or a number")
                elif not label:
                    problem = f"empty label in key '{label_column}'"
                else:
                    rows.texts.append(value)
                    rows.labels.append(label)
                    rows.lines.append(number)
                    first = False
                    continue
        first = False
        if not skip_bad:
            raise DeepzooError(f"{path}, line {number}: {problem}; fix or delete the row (or skip bad rows)")
        rows.skipped += 1
    if first and not rows.skipped:
        raise DeepzooError(f"{path} is empty; expected JSON lines, one object a line with the keys "
                           f"'{text_column}' and '{label_column}'")
    return rows


# ----------------------------------------------------------------------------------------------
# Datasets
# ----------------------------------------------------------------------------------------------


@dataclass
class TextDataset:
    """Labelled text split into named parts: ``data["train"]`` is ``(texts, labels)``, two plain lists.

    ``labels`` are class indices, ``label_map.names[i]`` the label string of class i as the file spells it.
    ``dropped`` counts the rows left out (empty texts), ``folder`` is where the files were found.
    """

    splits: dict[str, tuple[list[str], list[int]]]
    label_map: LabelMap
    dropped: int = 0
    folder: Path | None = None
    notes: dict = field(default_factory=dict)

    def __getitem__(self, split: str) -> tuple[list[str], list[int]]:
        try:
            return self.splits[split]
        except KeyError:
            raise DeepzooError(f"no split '{split}' (choices: {', '.join(self.splits)})") from None

    def sizes(self) -> dict[str, int]:
        return {name: len(texts) for name, (texts, _) in self.splits.items()}


def load_sst2(data_dir: str | os.PathLike | None = None) -> TextDataset:
    """GLUE SST-2: splits "train" (67,349 phrases and sentences) and "dev" (872 sentences), labels 0/1.

    GLUE's ``test.tsv`` has no labels (they are kept on the GLUE server), so it is not returned: the
    accuracies that papers quote for SST-2 without a leaderboard submission are on this dev set, and a
    model should therefore be tuned on a part of train, not on dev, if its dev figure is to be honest.
    The text is already lower-cased and tokenised with spaces (``tokenize_en`` keeps its tokens).
    """
    folder = registry.locate("sst2", data_dir)
    label_map = LabelMap(["0", "1"])
    splits, dropped = {}, 0
    for name in ("train", "dev"):
        texts, labels, skipped = read_labelled(folder / f"{name}.tsv", "sentence", "label")
        splits[name] = (texts, label_map.encode(labels))
        dropped += skipped
    return TextDataset(splits, label_map, dropped, folder)


SPLIT_801010 = (("train", 0.8), ("dev", 0.1), ("test", 0.1))


def split_labelled(texts: list[str], labels: list, seed: int,
                   parts: Sequence[tuple[str, float]] = SPLIT_801010) -> dict[str, tuple[list[str], list]]:
    """``{part: (texts, labels)}``, each row in the part that :func:`~deepzoo.data.batches.keyed_split`
    gives its text under ``seed`` (80/10/10 train / dev / test unless ``parts`` says otherwise); each part
    keeps the file's order.

    The one split of every labelled-text door: the named Chinese datasets, their packaged samples (rows of
    the full files, so a sample's row lands in the part it has in the full file), a user's one file
    (``data.path``) and the validation part cut from a user's training file (``data.train_path``). A row's
    part is a function of its text and the seed alone, so identical texts share a part; the sizes are
    close to the fractions, not exact.
    """
    idx = keyed_split(texts, [f for _, f in parts], seed)
    return {name: ([texts[i] for i in ix], [labels[i] for i in ix]) for (name, _), ix in zip(parts, idx)}


def _load_chinese_csv(file: str, data_dir, seed: int) -> TextDataset:
    folder = registry.locate("chnsenticorp", data_dir)
    texts, labels, dropped = read_labelled(folder / file, "review", "label", skip_bad=True)
    label_map = LabelMap(["0", "1"])
    return TextDataset(split_labelled(texts, label_map.encode(labels), seed), label_map, dropped, folder,
                       {"file": file, "seed": seed})


def load_chnsenticorp(data_dir: str | os.PathLike | None = None, seed: int = 0) -> TextDataset:
    """ChnSentiCorp hotel reviews (``ChnSentiCorp_htl_all.csv``), label 1 positive / 0 negative.

    The file has no official split, so this one is fixed here: rows with an empty review are dropped
    (one row, line 6376 of the file, in the published copy), then :func:`split_labelled` puts each review
    in "train" (80 %), "dev" (10 %) or "test" (10 %) by a hash of its text and the seed: 6207 / 775 / 783
    of the 7765 reviews for seed 0. The packaged sample's reviews land in the same parts. Another seed
    gives another split; results are comparable only between runs on the same one.
    """
    return _load_chinese_csv("ChnSentiCorp_htl_all.csv", data_dir, seed)


def load_waimai(data_dir: str | os.PathLike | None = None, seed: int = 0) -> TextDataset:
    """Food-delivery reviews (``waimai_10k.csv``, in the chnsenticorp folder), label 1 positive / 0 negative.

    Split like :func:`load_chnsenticorp`: empty reviews dropped (none in the published copy), then 80/10/10
    by a hash of each text and the seed: 9606 / 1158 / 1223 of the 11,987 reviews for seed 0 (the 7 texts
    that occur twice have both copies in one part).
    """
    return _load_chinese_csv("waimai_10k.csv", data_dir, seed)


IMDB_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)


def read_imdb(path: str | os.PathLike) -> tuple[list[str], list[int]]:
    """The reviews of one IMDB JSON-lines file (gzip or plain) and their labels (-1 where there is none).

    The review files keep IMDb's HTML line breaks (``<br /><br />`` in 59% of them); each becomes a space."""
    path = Path(path)
    texts, labels = [], []
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for i, line in enumerate(f, 1):
                try:
                    row = json.loads(line)
                    text, label = row["text"], int(row.get("label", -1))
                except (ValueError, KeyError, TypeError) as e:
                    raise DeepzooError(f"{path}, line {i}: not an IMDB review row {{\"text\": ..., \"label\": 0|1}} "
                                       f"({type(e).__name__}: {e})") from None
                texts.append(IMDB_BREAK.sub(" ", text))
                labels.append(label)
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise DeepzooError(f"{path}: cannot read ({e})") from None
    return texts, labels


def load_imdb(data_dir: str | os.PathLike | None = None, seed: int = 0, val: int = 2500) -> TextDataset:
    """IMDB (Maas et al. 2011): the canonical 25,000 / 25,000 train / test reviews, labels 0 negative /
    1 positive, and a validation part of ``val`` training reviews (about 10%) cut by a hash of each text and
    ``seed`` (:func:`split_labelled`), which picks the best epoch; the test reviews are read for the final
    figure only. The 50,000 unlabelled reviews are :func:`read_imdb` of ``unsup.jsonl.gz``."""
    folder = registry.locate("imdb", data_dir)
    texts, labels = read_imdb(folder / "train.jsonl.gz")
    frac = val / len(texts)
    parts = split_labelled(texts, labels, seed, (("train", 1 - frac), ("dev", frac)))
    parts["test"] = read_imdb(folder / "test.jsonl.gz")
    return TextDataset(parts, LabelMap(["0", "1"]), 0, folder, {"seed": seed})


def load_ptb(data_dir: str | os.PathLike | None = None) -> dict[str, list[list[str]]]:
    """Penn Treebank for language modelling: ``{"train", "valid", "test"}`` -> one token list per line.

    Each line gets ``<eos>`` appended, as in Zaremba et al. (2014) and Mikolov's RNNLM, so the model also
    learns where sentences end. The corpus is already lower-cased, with numbers as ``N`` and words outside
    its 10,000-word vocabulary as the literal token ``<unk>``.
    """
    folder = registry.locate("ptb", data_dir)
    return {name: read_lm_file(folder / f"ptb.{name}.txt") for name in ("train", "valid", "test")}


def read_lm_file(path: str | os.PathLike) -> list[list[str]]:
    """A word-level corpus file as a language model reads it: each line split on whitespace, plus ``<eos>``.

    Every token is kept as written: markers such as ``<unk>`` (PTB's and WikiText's stand-in for rare
    words) and WikiText's ``= Heading =`` lines are ordinary tokens, and nothing is lower-cased. A blank
    line is a lone ``<eos>``, as PyTorch's word_language_model example and AWD-LSTM read WikiText, so
    perplexities compare with theirs. (Lines end at ``\n``, ``\r\n`` or ``\r`` only.)
    """
    text = read_utf8(path)
    return [line.split() + [EOS] for line in re.split(r"\r\n|\r|\n", text.removesuffix("\n").removesuffix("\r"))] \
        if text else []


# ----------------------------------------------------------------------------------------------
# Ids and batches
# ----------------------------------------------------------------------------------------------


TRUNCATE = ("head", "head+tail")


def cut(ids: list[int], max_len: int, truncate: str = "head") -> list[int]:
    """``ids`` cut to ``max_len``: the first ones (``head``), or the first quarter and the last three
    quarters (``head+tail``; Sun et al. 2019 found this cut best for IMDB reviews)."""
    if len(ids) <= max_len:
        return ids
    head = max_len if truncate == "head" else max_len // 4
    return ids[:head] + (ids[len(ids) - (max_len - head):] if max_len > head else [])


def encode_texts(texts: Iterable[str], tokenizer: Callable[[str], list[str]] | str, vocab: Vocab,
                 max_len: int | None = None, truncate: str = "head") -> list[list[int]]:
    """Token ids of each text, cut to ``max_len`` tokens: the first ones (``truncate="head"``), or the first
    quarter and the last three quarters of them (``"head+tail"``: a long review's verdict is often at its end).

    A text with no tokens at all (only spaces or only characters the tokeniser drops) becomes ``[<unk>]``:
    a sequence of length 0 would break ``pack_padded_sequence`` and mean-pooling alike.
    """
    tok = get_tokenizer(tokenizer) if isinstance(tokenizer, str) else tokenizer
    if max_len is not None and max_len < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}")
    if truncate not in TRUNCATE:
        raise ValueError(f"truncate must be head or head+tail, got {truncate!r}")
    out = []
    for text in texts:
        ids = vocab.encode(tok(text))
        out.append((cut(ids, max_len, truncate) if max_len else ids) or [vocab.unk_index])
    return out


def encode_stream(lines: Iterable[Iterable[str]], vocab: Vocab) -> torch.Tensor:
    """One LongTensor of the ids of every token of every line, in order (the language-model stream)."""
    ids: list[int] = []
    for tokens in lines:
        ids.extend(vocab.encode(tokens))
    return torch.tensor(ids, dtype=torch.long)


class TextBatches:
    """Mini-batches of variable-length token-id sequences, padded to the longest in each batch.

    ``epoch(generator)`` yields ``(padded [B, T], lengths [B], labels [B])``, all LongTensors; row i of
    ``padded`` holds ``lengths[i]`` ids followed by ``pad_id``. With ``pairs=True`` it yields
    ``((padded, lengths), labels)`` instead, the ``(input, target)`` form the training engine iterates.

    ``shuffle=True, sort_within=True`` (bucketing): draw a random permutation of the examples, cut it
    into chunks of ``chunk_batches`` (50) batches, sort each chunk by length (longest first), cut the
    chunk into batches, and shuffle the order of all the batches. Each batch then holds sentences of
    similar length, so little of it is padding, yet which sentences meet in a batch and the order of the
    batches still change every epoch. ``sort_within=False`` batches the permutation as it is.
    Without ``shuffle`` the examples keep their order (sorted within chunks if ``sort_within``) and the
    batches come in order: the same batches every time, for evaluation.

    All randomness comes from ``generator``, so the same seed gives the same batches. Sorted batches have
    lengths in decreasing order, as ``pack_padded_sequence(..., enforce_sorted=True)`` wants.
    """

    def __init__(self, ids: Sequence[Sequence[int]], labels: Sequence[int] | torch.Tensor, batch_size: int,
                 shuffle: bool = False, sort_within: bool = True, pad_id: int = 0, chunk_batches: int = 50,
                 pairs: bool = False) -> None:
        if len(ids) != len(labels):
            raise ValueError(f"texts and labels differ in length: {len(ids)} != {len(labels)}")
        if batch_size < 1 or chunk_batches < 1:
            raise ValueError("batch_size and chunk_batches must be >= 1")
        self.ids = [list(s) for s in ids]
        if any(len(s) == 0 for s in self.ids):
            raise ValueError("an empty sequence cannot be batched; encode_texts gives every text >= 1 token")
        self.labels = torch.as_tensor(labels, dtype=torch.long)
        self.lengths = torch.tensor([len(s) for s in self.ids], dtype=torch.long)
        self.batch_size, self.shuffle, self.sort_within = batch_size, shuffle, sort_within
        self.pad_id, self.chunk_batches, self.pairs = pad_id, chunk_batches, pairs

    def __len__(self) -> int:
        return -(-len(self.ids) // self.batch_size)

    @property
    def num_samples(self) -> int:
        return len(self.ids)

    def batch_indices(self, generator: torch.Generator | None = None) -> list[list[int]]:
        """The example indices of each batch of one epoch, in the order :meth:`epoch` yields them."""
        n, bs = len(self.ids), self.batch_size
        order = torch.randperm(n, generator=generator).tolist() if self.shuffle else list(range(n))
        if self.sort_within:
            chunk = bs * self.chunk_batches
            lengths = self.lengths.tolist()
            order = [i for c in range(0, n, chunk)
                     for i in sorted(order[c:c + chunk], key=lambda i: -lengths[i])]  # stable sort
        batches = [order[b:b + bs] for b in range(0, n, bs)]
        if self.shuffle and self.sort_within:
            batches = [batches[k] for k in torch.randperm(len(batches), generator=generator).tolist()]
        return batches

    def collate(self, idx: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        seqs = [self.ids[i] for i in idx]
        width = max(len(s) for s in seqs)
        padded = torch.tensor([s + [self.pad_id] * (width - len(s)) for s in seqs], dtype=torch.long)
        index = torch.tensor(idx, dtype=torch.long)
        return padded, self.lengths[index], self.labels[index]

    def epoch(self, generator: torch.Generator | None = None) -> Iterator[tuple]:
        for idx in self.batch_indices(generator):
            padded, lengths, labels = self.collate(idx)
            yield ((padded, lengths), labels) if self.pairs else (padded, lengths, labels)

    __iter__ = epoch

    def padding_fraction(self, generator: torch.Generator | None = None) -> float:
        """Share of the padded tensors' cells that are padding over one epoch (0 = none wasted)."""
        cells = real = 0
        for idx in self.batch_indices(generator):
            lens = self.lengths[torch.tensor(idx)]
            cells += int(lens.max()) * len(idx)
            real += int(lens.sum())
        return 1 - real / cells if cells else 0.0


def lm_batches(token_ids: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Cut a 1-D stream of ids into ``batch_size`` contiguous rows: a ``[batch_size, N]`` LongTensor.

    Row b is tokens ``b*N .. (b+1)*N - 1`` of the stream (the last ``len % batch_size`` tokens are
    dropped). Reading the columns left to right, each row is its own continuous piece of text, so the
    hidden state at the end of one window is the right start for the next (Zaremba et al., 2014).
    """
    token_ids = torch.as_tensor(token_ids, dtype=torch.long).reshape(-1)
    n = len(token_ids) // batch_size
    if n < 2:
        raise ValueError(f"{len(token_ids)} tokens are too few for {batch_size} rows of at least 2")
    return token_ids[:n * batch_size].view(batch_size, n)


def bptt_windows(data: torch.Tensor, bptt: int, drop_last: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Windows ``(x, y)`` of ``bptt`` columns over ``data`` [B, N]; ``y`` is ``x`` shifted one to the left.

    ``x = data[:, i:i+bptt]``, ``y = data[:, i+1:i+1+bptt]`` for i = 0, bptt, 2*bptt, ...: at every
    position the target is the next token. The last window is shorter unless ``drop_last`` (Zaremba's
    reader drops it: ``(N - 1) // bptt`` windows).
    """
    if bptt < 1:
        raise ValueError(f"bptt must be >= 1, got {bptt}")
    n = data.shape[1]
    for i in range(0, n - 1, bptt):
        width = min(bptt, n - 1 - i)
        if drop_last and width < bptt:
            return
        yield data[:, i:i + width], data[:, i + 1:i + 1 + width]
