"""ddpm-mnist trained by 2 processes (torchrun, DDP, gloo) against 1 process on the same machine: training
images per second and the sample-quality figures after the same number of epochs.

    python benchmarks/ddpm_ddp.py --data-dir ../shared/data --classifier runs/cnn-mnist-X --epochs 2 \
        --record benchmarks/results/ddpm-ddp.json

Both runs have the default config but for ``train.epochs`` (``--epochs``), ``eval.classifier`` and any
``--set``: the same global batch (64), seed and data. (A run of one or two epochs wants ``--set
model.ema=0.99``: the default moving average, 0.999, still holds 39% of the initial weights after one
epoch's 937 steps, and its samples are noise.) The one process computes with every core (PyTorch's threads); the two
processes with one thread each (torchrun's OMP_NUM_THREADS=1), so both use the same cores. Two processes
make the updates one process makes (tests/test_distributed.py checks it in float64), so the sample-quality
figures should agree up to float32 rounding, and the comparison is one of speed: on a CPU, data parallelism
replaces the threads inside each convolution by whole processes, each on half the batch, plus an all-reduce
of the gradients per step. The figure of reference is the one-process run beside it, in the same command.
Under torchrun only rank 0 draws and scores the samples, on one thread, so scoring takes longer there; it is
not part of the training seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from deepzoo import figures

BATCH = 64                            # ddpm-mnist's global batch (data.batch_size)


def train(processes: int, epochs: int, classifier: str, data_dir: str | None, out: Path, sets: list[str]) -> dict:
    head = [sys.executable] if processes == 1 else \
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    rest = ["train", "ddpm-mnist", "--epochs", str(epochs), "--out", str(out), "--quiet",
            "--set", f"eval.classifier={classifier}", *(a for kv in sets for a in ("--set", kv)),
            *(["--data-dir", data_dir] if data_dir else [])]
    args = [*head, "-m", "deepzoo", *rest]
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"} if processes == 1 else \
        {**os.environ, "OMP_NUM_THREADS": "1"}
    print(" ".join(args), file=sys.stderr, flush=True)
    subprocess.run(args, check=True, env=env)
    summary = json.loads((out / "summary.json").read_text())
    seconds, r = summary["train_seconds"], summary["results"]
    steps = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])["step"]
    return {"processes": processes, "threads_per_process": torch.get_num_threads() if processes == 1 else 1,
            "epochs": epochs, "train_seconds": seconds,
            "train_images_per_s": round(steps * BATCH / seconds, 1), "precision": summary["precision"],
            **{k: r[k] for k in ("test_fd", "test_confidence", "test_class_entropy") if k in r},
            "command": " ".join(["deepzoo" if processes == 1 else
                                 f"torchrun --standalone --nproc_per_node={processes} -m deepzoo", *rest])}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir")
    ap.add_argument("--classifier", required=True, help="a finished cnn-mnist run (the sample-quality measure)")
    ap.add_argument("--epochs", type=int, default=2, help="epochs of each run (the recipe's default is 5)")
    ap.add_argument("--out", type=Path, help="folder for the two runs (default: temporary)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a config override for both runs (repeatable), e.g. eval.samples=1000")
    figures.add_record_argument(ap)
    args = ap.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="ddpm-ddp-"))
    machine, flags = figures.this_machine()
    one = train(1, args.epochs, args.classifier, args.data_dir, out / "one", args.set)
    two = train(2, args.epochs, args.classifier, args.data_dir, out / "two", args.set)
    result = {"benchmark": "ddpm-ddp", "torch": torch.__version__, "machine": machine, "cpu_flags": flags,
              "overrides": args.set, "one_process": one, "two_processes": two,
              "speedup_two_over_one": round(two["train_images_per_s"] / one["train_images_per_s"], 3),
              "reference": "the one-process run beside it (same config, seed, epochs and cores)"}
    print(json.dumps(result, indent=1))
    if args.record:
        figures.write_results(args.record, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
