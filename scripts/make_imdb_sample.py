#!/usr/bin/env python
"""Cut the packaged IMDB sample (deepzoo/samples/text/imdb/) from the full reviews.

    python scripts/make_imdb_sample.py [DATA_DIR]

``sample-train.jsonl.gz`` / ``sample-test.jsonl.gz``: TRAIN and TEST reviews of the canonical train and test
files, half negative and half positive, drawn with seed 0 among the reviews of at most MAX_CHARS characters;
``sample-unsup.jsonl.gz``: UNSUP of the unlabelled reviews, drawn the same way. Each line is the full file's
line, byte for byte, and the output is deterministic (gzip without a name or time), so running this again
gives the same bytes.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from deepzoo.data import registry  # noqa: E402
from deepzoo.errors import DeepzooError  # noqa: E402

TRAIN, TEST, UNSUP, MAX_CHARS = 600, 400, 800, 1000


def _lines(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [line for line in f if len(json.loads(line)["text"]) <= MAX_CHARS]


def _write(path: Path, lines: list[str]) -> None:
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, filename="") as f:
        f.write("".join(lines).encode("utf-8"))
    path.write_bytes(buffer.getvalue())
    print(f"{path}: {len(lines)} reviews, {len(buffer.getvalue()):,} bytes")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data_dir", nargs="?", default=os.environ.get("DEEPZOO_DATA"))
    args = ap.parse_args(argv)
    out = registry.samples_dir() / "text" / "imdb"
    try:
        full = registry.locate("imdb", args.data_dir)
    except DeepzooError as e:
        print(f"make_imdb_sample: error: {e}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", TRAIN), ("test", TEST)):
        lines = _lines(full / f"{split}.jsonl.gz")
        rng = random.Random(0)
        pick = []
        for label in (0, 1):
            mine = [x for x in lines if json.loads(x)["label"] == label]
            pick += rng.sample(mine, n // 2)
        rng.shuffle(pick)
        _write(out / f"sample-{split}.jsonl.gz", pick)
    _write(out / "sample-unsup.jsonl.gz", random.Random(0).sample(_lines(full / "unsup.jsonl.gz"), UNSUP))
    return 0


if __name__ == "__main__":
    sys.exit(main())
