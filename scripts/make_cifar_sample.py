#!/usr/bin/env python
"""Build the small CIFAR-10 sample shipped in the package (deepzoo/samples/cifar10/cifar10-sample.npz).

The sample is the first 500 training images (of data_batch_1) and the first 100 test images, with their
labels, taken from the verified cifar10.npz of the registry (or from the canonical pickles), and written
with numpy.savez_compressed under the same array names (x_train, y_train, x_test, y_test, label_names).

    python scripts/make_cifar_sample.py [DATA_DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from deepzoo.data import registry  # noqa: E402
from deepzoo.data.cifar import LABEL_NAMES, SAMPLE, load_cifar10  # noqa: E402
from deepzoo.errors import DeepzooError  # noqa: E402

N_TRAIN, N_TEST = 500, 500


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data_dir", nargs="?", default=os.environ.get("DEEPZOO_DATA"))
    ap.add_argument("--out", default=str(registry.samples_dir() / "cifar10" / SAMPLE))
    args = ap.parse_args(argv)
    try:
        data = load_cifar10(args.data_dir)
    except DeepzooError as e:
        print(f"make_cifar_sample: error: {e}", file=sys.stderr)
        return 2
    (xtr, ytr), (xte, yte) = data["train"], data["test"]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, x_train=xtr[:N_TRAIN], y_train=ytr[:N_TRAIN].astype(np.uint8),
                        x_test=xte[:N_TEST], y_test=yte[:N_TEST].astype(np.uint8),
                        label_names=np.array(LABEL_NAMES))
    print(f"wrote {out} ({out.stat().st_size:,} bytes) from {data['source']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
