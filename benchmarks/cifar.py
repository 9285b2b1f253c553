"""CIFAR-10 nets: training and inference images/s, what channels-last and bf16 buy, and the time
resnet20-cifar10 takes to reach 85% on the 1,000 test images.

Part 1 (throughput) times each net on batches of 128 random 32x32 images in this one process: training
steps (forward, cross-entropy, backward, SGD update) and inference (forward, no grad), ``--steps``
timed steps after 3 warm-up steps, the best of 2 rounds. Each net runs as PyTorch would by default
(fp32, NCHW) and as deepzoo runs it (channels-last, ``train.precision=auto``, bf16 on this CPU); the
speed-up is the ratio of the two. ResNet-20 also runs the two mixed combinations and the from-scratch
blocks (``model.impl=scratch``: convolution as unfold + matmul, BatchNorm, pooling written out).

Part 2 trains ``resnet20-cifar10`` (or ``--recipe NAME``) with its default config (the 30,000 training
images of the shared copy, 29,952 an epoch as the last partial batch is dropped; no validation split) and evaluates the test images after every epoch (this selects nothing: the figure is
the last epoch's). It reports the final test accuracy, the first epoch at or above 85% and the training
seconds until then, and the training images/s (images x epochs / seconds spent in training steps).

    python benchmarks/cifar.py --data-dir ../shared/data                  # both parts
    python benchmarks/cifar.py --data-dir ../shared/data --skip-training  # part 1 only
    python benchmarks/cifar.py --data-dir ../shared/data --skip-throughput
    python benchmarks/cifar.py --data-dir ../shared/data --skip-throughput --recipe resnet56-cifar10
    python benchmarks/cifar.py --data-dir ../shared/data --record benchmarks/results/cifar.json

``--record FILE`` also writes the JSON to FILE and sets the trained recipe's figure in deepzoo/figures.json.

Reference: He et al. 2016, Table 6: ResNet-20 91.25% (trained on all 50,000 images for 164 epochs,
tested on all 10,000). deepzoo's bar: >= 85% on the 1,000 test images, trained on the 30,000, within
20 minutes of training on 2 AVX2 cores (60 minutes until 2026-12-04).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from deepzoo import figures, recipes
from deepzoo.train.engine import autocast, resolve_precision
from deepzoo.train.run import train

NETS = ("resnet20-cifar10", "resnet56-cifar10", "plain20-cifar10", "plain56-cifar10", "vgg-cifar10",
        "cnn7-cifar10")
BAR_ACC, BAR_MINUTES = 0.85, 20.0


def build_model(recipe_name: str, channels_last: bool, impl: str = "torch") -> torch.nn.Module:
    """The recipe's own model at its defaults, with the memory format and implementation chosen here."""
    recipe = recipes.get(recipe_name)
    cfg = recipe.full_defaults()
    cfg["model"].update(channels_last=channels_last, impl=impl)
    return recipe.make_model(cfg)


def images_per_second(model: torch.nn.Module, precision: str, steps: int, batch: int = 128) -> dict:
    device = torch.device("cpu")
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(batch, 3, 32, 32, generator=gen), torch.randint(0, 10, (batch,), generator=gen)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def train_step():
        with autocast(device, precision):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    @torch.no_grad()
    def infer_step():
        with autocast(device, precision):
            model(x)

    out = {}
    for name, fn, mode in (("train", train_step, model.train), ("infer", infer_step, model.eval)):
        mode()
        for _ in range(3):
            fn()
        best = float("inf")
        for _ in range(2):
            start = time.perf_counter()
            for _ in range(steps):
                fn()
            best = min(best, time.perf_counter() - start)
        out[f"{name}_images_per_s"] = round(steps * batch / best, 1)
    return out


def throughput(steps: int, log) -> dict:
    fast = resolve_precision("auto", torch.device("cpu"))
    rows = {}
    for name in NETS:
        row = {"baseline (fp32, NCHW)": images_per_second(build_model(name, False), "fp32", steps),
               f"deepzoo ({fast}, channels-last)": images_per_second(build_model(name, True), fast, steps)}
        if name == "resnet20-cifar10":
            if fast != "fp32":  # each change alone (without bf16 hardware they are the two rows above)
                row["fp32, channels-last"] = images_per_second(build_model(name, True), "fp32", steps)
                row[f"{fast}, NCHW"] = images_per_second(build_model(name, False), fast, steps)
            row["from-scratch blocks (fp32, NCHW)"] = images_per_second(build_model(name, False, "scratch"),
                                                                        "fp32", max(2, steps // 3))
        base, ours = row["baseline (fp32, NCHW)"], row[f"deepzoo ({fast}, channels-last)"]
        row["speedup_train"] = round(ours["train_images_per_s"] / base["train_images_per_s"], 2)
        row["speedup_infer"] = round(ours["infer_images_per_s"] / base["infer_images_per_s"], 2)
        log(f"{name}: {json.dumps(row)}")
        rows[name] = row
    return {"batch": 128, "timed_steps": steps, "fast_precision": fast, "nets": rows}


def time_to_accuracy(data_dir, out: Path | None, log, recipe: str = "resnet20-cifar10", sets=()) -> dict:
    curve, seen = [], {}

    def test_each_epoch(trainer, row):
        seen["images_per_epoch"] = len(trainer.task.train) * trainer.task.train.batch_size  # drop_last
        test = trainer.evaluate(trainer.task.test, "test")
        curve.append({"epoch": row["epoch"], "train_seconds": row["train_seconds"],
                      "train_acc": round(row["train_acc"], 4), "test_acc": round(test["test_acc"], 4)})
        log(f"  epoch {row['epoch']}: test_acc {test['test_acc']:.4f} at {row['train_seconds']:.0f}s")

    run_dir = out or Path(tempfile.mkdtemp(prefix=f"bench-{recipe}-"))
    start = time.perf_counter()
    summary = train(recipe, out=run_dir, data_dir=data_dir, progress=False, log=log, sets=sets,
                    callbacks=[test_each_epoch])
    wall = time.perf_counter() - start
    first = next((c for c in curve if c["test_acc"] >= BAR_ACC), None)
    steps_images = seen["images_per_epoch"]
    return {"recipe": recipe, "set": list(sets), "run": str(run_dir), "train_images_per_epoch": steps_images,
            "epochs": summary["epochs_run"], "test_acc": round(summary["results"]["test_acc"], 4),
            "train_seconds": summary["train_seconds"], "train_minutes": round(summary["train_seconds"] / 60, 1),
            "wall_seconds_incl_loading_and_test_each_epoch": round(wall, 1),
            "train_images_per_s": round(steps_images * summary["epochs_run"] / summary["train_seconds"], 1),
            "first_epoch_at_85": first and first["epoch"], "seconds_to_85": first and first["train_seconds"],
            "meets_bar": summary["results"]["test_acc"] >= BAR_ACC and summary["train_seconds"] < BAR_MINUTES * 60,
            "precision": summary["precision"], "curve": curve}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir")
    ap.add_argument("--steps", type=int, default=10, help="timed steps per throughput point")
    ap.add_argument("--skip-training", action="store_true")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--out", type=Path, help="run folder of the training")
    ap.add_argument("--recipe", default="resnet20-cifar10", choices=NETS,
                    help="the recipe part 2 trains (default resnet20-cifar10; the 85%% bar is for it)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a config override for part 2, as `deepzoo train --set` takes it (repeatable)")
    figures.add_record_argument(ap)
    args = ap.parse_args(argv)
    log = lambda s: print(s, file=sys.stderr, flush=True)
    result = {"benchmark": "cifar", "torch": torch.__version__, "threads": torch.get_num_threads(),
              "machine": platform.processor() or platform.machine(),
              "reference": {"resnet20_test_acc": 0.9125, "source": "He et al. 2016, Table 6 (50k train, 10k test)",
                            "url": "https://arxiv.org/abs/1512.03385"},
              "bar": {"test_acc": BAR_ACC, "train_minutes": BAR_MINUTES}}
    if not args.skip_throughput:
        result["throughput"] = throughput(args.steps, log)
    if not args.skip_training:
        key = "resnet20" if args.recipe == "resnet20-cifar10" else args.recipe
        result[key] = time_to_accuracy(args.data_dir, args.out, log, args.recipe, args.set)
    print(json.dumps(result, indent=1))
    if args.record:
        figures.write_results(args.record, result)
        record(result, args.record)
    return 0


def record(result: dict, results: str) -> None:
    """The trained recipe's default-config figure (part 2, if it ran) into deepzoo/figures.json."""
    for key, r in result.items():
        if isinstance(r, dict) and "test_acc" in r and "first_epoch_at_85" in r:
            record_one(r.get("recipe") or f"{key}-cifar10", r, results)


def record_one(recipe: str, r: dict, results: str) -> None:
    bar = (f"85% first reached at epoch {r['first_epoch_at_85']}, after {r['seconds_to_85']:.0f} s"
           if r["first_epoch_at_85"] else "85% not reached")
    figures.record(recipe, r["test_acc"], results=results, train_seconds=r["train_seconds"],
                   reached=f"{{value}} test accuracy ({r['epochs']} epochs; {bar}); "
                           f"{r['train_images_per_s']:,.0f} training images/s ({r['precision']})",
                   figures={"train_images_per_s": r["train_images_per_s"],
                            "first_epoch_at_85": r["first_epoch_at_85"], "seconds_to_85": r["seconds_to_85"]})


if __name__ == "__main__":
    sys.exit(main())
