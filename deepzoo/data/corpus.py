"""A text corpus streamed line by line: one file, or every file of a folder, never loaded whole.

``LineCorpus(path, tokenizer)`` can be iterated any number of times (once per training epoch); each
iteration reads the files again and yields one list of tokens per non-empty line. Tokenisers are those
of the text pipeline (``en``: lower-case words; ``zh``: jieba words; ``zh-char``: characters) plus
``space``: split on whitespace and keep the tokens as they are (for text that is already tokenised,
such as PTB).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterator

from deepzoo.errors import DeepzooError

SKIP_SUFFIXES = (".gz", ".zip", ".bz2", ".xz", ".npz", ".npy", ".png", ".jpg", ".pdf")


def _tokenizer(name: str) -> Callable[[str], list[str]]:
    if name == "space":
        return str.split
    from deepzoo.data.text import get_tokenizer
    return get_tokenizer(name)


class LineCorpus:
    """Re-iterable stream of tokenised lines from ``path`` (a file, or a folder read recursively in sorted
    order, hidden files and binary formats left out)."""

    def __init__(self, path: str | os.PathLike, tokenizer: str = "en") -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise DeepzooError(f"corpus {self.path} does not exist")
        self.tokenizer_name = tokenizer
        self.tokenize = _tokenizer(tokenizer)
        self.files = self._files()
        if not self.files:
            raise DeepzooError(f"corpus folder {self.path} has no text files")

    def _files(self) -> list[Path]:
        if self.path.is_file():
            return [self.path]
        return sorted(p for p in self.path.rglob("*") if p.is_file() and not any(
            part.startswith(".") for part in p.relative_to(self.path).parts) and p.suffix not in SKIP_SUFFIXES)

    def lines(self) -> Iterator[tuple[Path, int, str]]:
        for file in self.files:
            with open(file, "rb") as f:
                for number, raw in enumerate(f, 1):
                    try:
                        yield file, number, raw.decode("utf-8")
                    except UnicodeDecodeError as e:
                        raise DeepzooError(f"{file}, line {number}: not UTF-8 text (byte {e.start} of the "
                                           f"line); convert the file, e.g. iconv -f GBK -t UTF-8") from None

    def __iter__(self) -> Iterator[list[str]]:
        for _, _, line in self.lines():
            tokens = self.tokenize(line)
            if tokens:
                yield tokens


class ListCorpus:
    """Sentences already in memory (lists of tokens), with the same interface."""

    def __init__(self, sentences: list[list[str]]) -> None:
        self.sentences = sentences

    def __iter__(self) -> Iterator[list[str]]:
        return iter(self.sentences)
