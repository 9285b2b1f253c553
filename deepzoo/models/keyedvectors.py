"""Trained word vectors and what one does with them: neighbours, analogies, evaluation, files.

The API follows gensim's ``KeyedVectors`` (the names users already know): ``most_similar``,
``similarity``, ``doesnt_match``, ``evaluate_word_analogies``, ``evaluate_word_pairs``, and
``save_word2vec_format`` / ``load_word2vec_format`` in the text and binary formats of word2vec.c, which
gensim reads back.

Similarity is the cosine, cos(a, b) = a . b / (|a| |b|). An analogy a : b :: c : ? is answered by
3CosAdd (Mikolov et al. 2013): the word whose unit vector is closest to unit(b) - unit(a) + unit(c),
leaving out a, b and c themselves.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np

from deepzoo.errors import DeepzooError
from deepzoo.files import atomic_write_bytes


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation: Pearson's correlation of the ranks (ties get their mean rank)."""
    return pearson(_ranks(np.asarray(x, float)), _ranks(np.asarray(y, float)))


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    x, y = np.asarray(x, float) - np.mean(x), np.asarray(y, float) - np.mean(y)
    denominator = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / denominator) if denominator > 0 else float("nan")


def _ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    for v in np.unique(values):  # ties: the mean of their ranks
        tied = values == v
        if tied.sum() > 1:
            ranks[tied] = ranks[tied].mean()
    return ranks


class KeyedVectors:
    """Words and their vectors: ``kv["king"]``, ``"king" in kv``, ``kv.most_similar("king")``."""

    def __init__(self, words: list[str], vectors: np.ndarray, counts: Iterable[int] | None = None) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(words):
            raise ValueError(f"{len(words)} words but vectors of shape {vectors.shape}")
        self.index_to_key = list(words)
        self.key_to_index = {w: i for i, w in enumerate(words)}
        if len(self.key_to_index) != len(words):
            raise ValueError("duplicate words")
        self.vectors = vectors
        self.counts = None if counts is None else np.asarray(list(counts), dtype=np.int64)
        self._unit = None

    # --- lookup -----------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.index_to_key)

    def __contains__(self, word: str) -> bool:
        return word in self.key_to_index

    def __getitem__(self, word: str) -> np.ndarray:
        return self.vectors[self.index(word)]

    @property
    def vector_size(self) -> int:
        return self.vectors.shape[1]

    def index(self, word: str) -> int:
        try:
            return self.key_to_index[word]
        except KeyError:
            raise DeepzooError(f"'{word}' is not in the vocabulary ({len(self)} words)") from None

    def unit_vectors(self) -> np.ndarray:
        if self._unit is None:
            norms = np.linalg.norm(self.vectors, axis=1, keepdims=True)
            self._unit = self.vectors / np.maximum(norms, 1e-12)
        return self._unit

    # --- similarity -------------------------------------------------------------------------------

    def similarity(self, a: str, b: str) -> float:
        u = self.unit_vectors()
        return float(u[self.index(a)] @ u[self.index(b)])

    def most_similar(self, positive: str | Iterable[str] = (), negative: str | Iterable[str] = (),
                     topn: int = 10, restrict_vocab: int | None = None) -> list[tuple[str, float]]:
        """The ``topn`` words closest (cosine) to the mean of the positive unit vectors minus the negative
        ones, the query words excluded; among the first ``restrict_vocab`` words only, if given."""
        positive = [positive] if isinstance(positive, str) else list(positive)
        negative = [negative] if isinstance(negative, str) else list(negative)
        if not positive and not negative:
            raise DeepzooError("most_similar needs at least one word")
        u = self.unit_vectors()
        query = sum(u[self.index(w)] for w in positive) - sum((u[self.index(w)] for w in negative), 0)
        query = query / max(np.linalg.norm(query), 1e-12)
        limit = len(self) if restrict_vocab is None else min(restrict_vocab, len(self))
        scores = u[:limit] @ query
        exclude = {self.key_to_index[w] for w in positive + negative}
        best = np.argsort(-scores)[: topn + len(exclude)]
        return [(self.index_to_key[i], float(scores[i])) for i in best if i not in exclude][:topn]

    def analogy(self, a: str, b: str, c: str, topn: int = 1) -> list[tuple[str, float]]:
        """a : b :: c : ?  (e.g. man : king :: woman : queen), by 3CosAdd."""
        return self.most_similar(positive=[b, c], negative=[a], topn=topn)

    def doesnt_match(self, words: Iterable[str]) -> str:
        """The word farthest (cosine) from the mean of the words' unit vectors."""
        words = [w for w in words if w in self]
        if not words:
            raise DeepzooError("doesnt_match: none of the words is in the vocabulary")
        u = self.unit_vectors()[[self.key_to_index[w] for w in words]]
        mean = u.mean(0)
        return words[int(np.argmin(u @ (mean / max(np.linalg.norm(mean), 1e-12))))]

    # --- evaluation -------------------------------------------------------------------------------

    def _lookup(self, restrict_vocab: int, case_insensitive: bool) -> tuple[int, dict[str, int]]:
        """The first ``restrict_vocab`` words (upper-cased if ``case_insensitive``; the most frequent
        spelling wins) -> their index, and how many words that is."""
        limit = min(restrict_vocab, len(self))
        lookup: dict[str, int] = {}
        for i, w in enumerate(self.index_to_key[:limit]):
            lookup.setdefault(w.upper() if case_insensitive else w, i)
        return limit, lookup

    def evaluate_word_analogies(self, path: str | os.PathLike, restrict_vocab: int = 300_000,
                                case_insensitive: bool = True) -> dict:
        """Accuracy on analogy questions ``a b c d`` (sections start with ``: name``), as gensim: only the
        first ``restrict_vocab`` words are candidates, and a question with a word outside them is skipped
        (counted in ``skipped``). Returns overall and per-section accuracy."""
        path = Path(path)
        limit, lookup = self._lookup(restrict_vocab, case_insensitive)
        u = self.unit_vectors()[:limit]
        sections, current, skipped = [], None, 0
        for number, line in enumerate(_read_lines(path), 1):
            line = line.strip()
            if not line:
                continue
            if line.startswith(":"):
                current = {"section": line[1:].strip(), "correct": 0, "total": 0}
                sections.append(current)
                continue
            parts = line.upper().split() if case_insensitive else line.split()
            if len(parts) != 4:
                raise DeepzooError(f"{path}, line {number}: expected 4 words, got {len(parts)}")
            if current is None:
                current = {"section": "questions", "correct": 0, "total": 0}
                sections.append(current)
            if any(p not in lookup for p in parts):
                skipped += 1
                continue
            a, b, c, d = (lookup[p] for p in parts)
            query = u[b] - u[a] + u[c]
            scores = u @ (query / max(np.linalg.norm(query), 1e-12))
            scores[[a, b, c]] = -np.inf
            current["total"] += 1
            current["correct"] += int(int(np.argmax(scores)) == d)
        correct, total = sum(s["correct"] for s in sections), sum(s["total"] for s in sections)
        for s in sections:
            s["accuracy"] = s["correct"] / s["total"] if s["total"] else None
        return {"accuracy": correct / total if total else 0.0, "correct": correct, "total": total,
                "skipped": skipped, "restrict_vocab": limit, "sections": sections}

    def evaluate_word_pairs(self, path: str | os.PathLike, restrict_vocab: int = 300_000,
                            case_insensitive: bool = True) -> dict:
        """Spearman and Pearson correlation between cosine similarities and human scores on a file of
        ``word1 <TAB> word2 <TAB> score`` lines (``#`` lines are comments). Pairs with a word outside the
        first ``restrict_vocab`` words are left out and counted (``oov_ratio``), as gensim does."""
        path = Path(path)
        _, lookup = self._lookup(restrict_vocab, case_insensitive)
        u = self.unit_vectors()
        model, human, oov, pairs = [], [], 0, 0
        for number, line in enumerate(_read_lines(path), 1):
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.rstrip("\n").split("\t")
            try:
                a, b, score = parts[0], parts[1], float(parts[2])
            except (IndexError, ValueError):
                raise DeepzooError(f"{path}, line {number}: expected 'word1<TAB>word2<TAB>score'") from None
            pairs += 1
            a, b = (a.upper(), b.upper()) if case_insensitive else (a, b)
            if a not in lookup or b not in lookup:
                oov += 1
                continue
            model.append(float(u[lookup[a]] @ u[lookup[b]]))
            human.append(score)
        if len(model) < 3:
            raise DeepzooError(f"{path}: fewer than 3 pairs have both words in the vocabulary")
        return {"spearman": spearman(model, human), "pearson": pearson(model, human),
                "pairs": pairs, "used": len(model), "oov_ratio": oov / pairs}

    # --- files ------------------------------------------------------------------------------------

    def save_word2vec_format(self, path: str | os.PathLike, binary: bool = False) -> None:
        """word2vec.c's format: a header ``V D``, then one word per line followed by its D numbers, as
        text, or (binary) as D little-endian float32 after the word and a space. Written atomically."""
        out = [f"{len(self)} {self.vector_size}\n".encode()]
        for word, vector in zip(self.index_to_key, self.vectors):
            if any(ch.isspace() for ch in word):
                raise DeepzooError(f"word {word!r} contains whitespace; the word2vec format cannot hold it")
            if binary:
                out.append(word.encode() + b" " + vector.astype("<f4").tobytes() + b"\n")
            else:
                out.append((word + " " + " ".join(f"{x:.6g}" for x in vector) + "\n").encode())
        atomic_write_bytes(Path(path), b"".join(out))

    @classmethod
    def load_word2vec_format(cls, path: str | os.PathLike, binary: bool = False, limit: int | None = None):
        """Read a file written by ``save_word2vec_format``, word2vec.c or gensim."""
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as e:
            raise DeepzooError(f"cannot read {path}: {e.strerror}") from None
        header, _, body = data.partition(b"\n")
        try:
            V, D = (int(x) for x in header.split())
        except ValueError:
            raise DeepzooError(f"{path}, line 1: expected the header 'VOCAB_SIZE DIMENSION'") from None
        V = V if limit is None else min(V, limit)
        words, vectors = [], np.empty((V, D), dtype=np.float32)
        if binary:
            pos = 0
            for i in range(V):
                space = body.find(b" ", pos)
                if space < 0 or space + 1 + 4 * D > len(body):
                    raise DeepzooError(f"{path}: truncated at word {i + 1} of {V}")
                words.append(body[pos:space].decode("utf-8", errors="replace").lstrip("\n"))
                vectors[i] = np.frombuffer(body, dtype="<f4", count=D, offset=space + 1)
                pos = space + 1 + 4 * D
        else:
            lines = body.decode("utf-8").splitlines()
            if len(lines) < V:
                raise DeepzooError(f"{path}: the header says {V} words but the file has {len(lines)}")
            for i in range(V):
                parts = lines[i].rstrip().split(" ")
                if len(parts) != D + 1:
                    raise DeepzooError(f"{path}, line {i + 2}: expected a word and {D} numbers, "
                                       f"got {len(parts) - 1} numbers")
                words.append(parts[0])
                try:
                    vectors[i] = [float(x) for x in parts[1:]]
                except ValueError:
                    raise DeepzooError(f"{path}, line {i + 2}: not a number among the values") from None
        return cls(words, vectors)


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise DeepzooError(f"cannot read {path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise DeepzooError(f"{path} is not UTF-8 text (byte {e.start})") from None
