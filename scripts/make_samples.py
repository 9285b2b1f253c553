#!/usr/bin/env python
"""Build the small MNIST sample shipped in the package (deepzoo/samples/mnist/).

The sample is the first 5,000 training and the first 1,000 test images and labels of the official MNIST
files, written in the same gzip-compressed IDX format under the four file names prefixed with ``sample-``. The output is
deterministic (gzip header without file name and with mtime 0), so running this again gives the same bytes.

    python scripts/make_samples.py [MNIST_DIR]

MNIST_DIR is a folder holding the four official files, or a folder with an ``mnist/`` subfolder (default:
$DEEPZOO_DATA). The full files are verified against their pinned sha256 before use.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from deepzoo.data import registry  # noqa: E402
from deepzoo.data.mnist import FILES, SAMPLE_FILES, read_idx, write_idx  # noqa: E402
from deepzoo.errors import DeepzooError  # noqa: E402

N_TRAIN = 5000
N_TEST = 1000


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data_dir", nargs="?", default=os.environ.get("DEEPZOO_DATA"),
                    help="folder with the full MNIST files, or its parent (default: $DEEPZOO_DATA)")
    ap.add_argument("--out", default=str(registry.samples_dir() / "mnist"), help="output folder")
    args = ap.parse_args(argv)
    if not args.data_dir:
        print("make_samples: error: give the MNIST folder as an argument or set DEEPZOO_DATA", file=sys.stderr)
        return 2
    try:
        src = registry.locate("mnist", args.data_dir)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for split, n in (("train", N_TRAIN), ("test", N_TEST)):
            for name, sample_name in zip(FILES[split], SAMPLE_FILES[split]):
                arr = read_idx(src / name)
                write_idx(out / sample_name, arr[:n])
                data = (out / sample_name).read_bytes()
                print(f"{out / sample_name}: {arr[:n].shape}, {len(data)} bytes, "
                      f"sha256 {hashlib.sha256(data).hexdigest()}")
    except DeepzooError as e:
        print(f"make_samples: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
