#!/usr/bin/env python
"""Widen the test part of the two packaged Chinese review samples (deepzoo/samples/text/chnsenticorp/).

Each sample is 1,500 reviews of its full file (shuffled with seed 0, non-empty) followed by EXTRA more
reviews (of at most 300 characters) of the full file that lie in its *test* part under split seed 0 (deepzoo.data.text.split_labelled,
the one split every labelled-text door uses), in the full file's order. Every row is a row of the full file,
so each lands in the part it has there; the extra rows give a quick preset (split seed 0) about 650 test
reviews instead of about 150, enough to tell a model that learned from the majority class (at 150 reviews
a 3-point swing from the CPU's rounding could decide it). Running this again on a widened sample leaves it
as it is (the first 1,500 rows are the base).

    python scripts/make_text_samples.py [DATA_DIR]
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from deepzoo.data import registry  # noqa: E402
from deepzoo.data.text import read_labelled, split_labelled  # noqa: E402
from deepzoo.errors import DeepzooError  # noqa: E402

BASE, EXTRA, MAX_CHARS = 1500, 500, 300   # the hotel sample's base rows are at most 300 characters too
FILES = {"ChnSentiCorp_htl_sample.csv": "ChnSentiCorp_htl_all.csv", "waimai_sample.csv": "waimai_10k.csv"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data_dir", nargs="?", default=os.environ.get("DEEPZOO_DATA"))
    args = ap.parse_args(argv)
    out_dir = registry.samples_dir() / "text" / "chnsenticorp"
    try:
        full_dir = registry.locate("chnsenticorp", args.data_dir)
        for sample_name, full_name in FILES.items():
            texts, labels, _ = read_labelled(out_dir / sample_name, "review", "label")
            base = list(zip(labels, texts))[:BASE]
            full_texts, full_labels, _ = read_labelled(full_dir / full_name, "review", "label", skip_bad=True)
            test = split_labelled(full_texts, full_labels, seed=0)["test"]
            have = {t for _, t in base}
            extra = [(label, text) for text, label in zip(*test) if text not in have and len(text) <= MAX_CHARS][:EXTRA]
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow(["label", "review"])
            writer.writerows(base + extra)
            (out_dir / sample_name).write_text(buffer.getvalue(), encoding="utf-8")
            print(f"{out_dir / sample_name}: {len(base)} + {len(extra)} test-part reviews of {full_name}")
    except DeepzooError as e:
        print(f"make_text_samples: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
