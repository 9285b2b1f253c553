"""Time to validation loss 1.88 on tiny Shakespeare: gpt-shakespeare against nanoGPT's CPU configuration.

Both run in this one process, on the same threads, and the clock counts training steps only: every 100
steps the whole validation text (the last 10% of characters, in consecutive windows of 64, as
gpt-shakespeare validates) is scored outside the timed region, and the time to target is the training
time at the first evaluation at or below the target.

The baseline is nanoGPT's README recipe for a CPU ("python train.py config/train_shakespeare_char.py
--device=cpu --compile=False --eval_iters=20 --log_interval=1 --block_size=64 --batch_size=12
--n_layer=4 --n_head=4 --n_embd=128 --max_iters=2000 --lr_decay_iters=2000 --dropout=0.0"), rebuilt
here op for op: deepzoo's GPT class with those sizes and no biases (nanoGPT's default), AdamW with
betas (0.9, 0.99) and weight decay 0.1 on matrices only, 100 warm-up steps then cosine decay from 1e-3
to 1e-4 over 2000 steps, gradients clipped to norm 1, batches of random windows. nanoGPT's README
reports validation loss about 1.88 for it (its estimate uses 20 random batches; here the whole
validation text is scored).

    python benchmarks/charlm.py --data-dir ../shared/data          # prints one JSON object
    python benchmarks/charlm.py --data-dir ../shared/data --record benchmarks/results/charlm.json

``--record FILE`` also writes the JSON to FILE and, for the default config (no --set, seed 0), sets
gpt-shakespeare's figure (its final validation loss) in deepzoo/figures.json.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import tempfile
import time

import torch
import torch.nn.functional as F

from deepzoo import config as cfglib
from deepzoo import figures, recipes
from deepzoo.models.gpt import GPT
from deepzoo.recipes.charlm import CharVocab, ConsecutiveWindows, RandomWindows, read_text, source_path
from deepzoo.train.engine import Trainer

TARGET = 1.88
REFERENCE = {"source": "nanoGPT README, CPU configuration of train_shakespeare_char", "val_loss": 1.88,
             "seconds_on_this_machine": 150, "url": "https://github.com/karpathy/nanoGPT"}


@torch.no_grad()
def val_loss(model, windows: ConsecutiveWindows) -> float:
    model.eval()
    total, n = 0.0, 0
    for x, y in windows.epoch():
        logits = model(x)
        total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum"))
        n += y.numel()
    model.train()
    return total / n


def run_nanogpt(data: torch.Tensor, vocab_size: int, iters: int, eval_every: int, seed: int) -> dict:
    torch.manual_seed(seed)
    n = int(0.9 * len(data))
    val = ConsecutiveWindows(data[n:], 64)
    model = GPT(vocab_size, block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0, bias=False)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.99))
    windows = RandomWindows(data[:n], 12, 64, eval_every)
    gen = torch.Generator().manual_seed(seed)

    def lr_at(it):  # nanoGPT's get_lr: linear warm-up, cosine to min_lr
        if it < 100:
            return 1e-3 * (it + 1) / 101
        ratio = min(1.0, (it - 100) / (iters - 100))
        return 1e-4 + 0.5 * (1 + math.cos(math.pi * ratio)) * (1e-3 - 1e-4)

    curve, seconds, it, reached = [], 0.0, 0, None
    while it < iters:
        start = time.perf_counter()
        for x, y in windows.epoch(gen):
            for group in opt.param_groups:
                group["lr"] = lr_at(it)
            logits = model(x)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            it += 1
        seconds += time.perf_counter() - start
        v = val_loss(model, val)
        curve.append({"step": it, "train_seconds": round(seconds, 2), "val_loss": round(v, 4)})
        print(f"nanoGPT config  step {it}  val {v:.4f}  {seconds:.1f}s", file=sys.stderr)
        if reached is None and v <= TARGET:
            reached = seconds
    return {"steps": it, "train_seconds": round(seconds, 2), "final_val_loss": curve[-1]["val_loss"],
            "seconds_to_target": None if reached is None else round(reached, 2), "curve": curve}


def run_recipe(data_dir, sets: list[str], seed: int) -> dict:
    recipe = recipes.get("gpt-shakespeare")
    cfg = cfglib.resolve(recipe.full_defaults(), recipe.presets, None, None, sets, None, seed)
    cfg = {**cfg, "recipe": recipe.name, "preset": None}
    task = recipe.build(cfg, data_dir)
    curve = []
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(task, cfg, tmp, progress=False, log=lambda s: print(s, file=sys.stderr))
        trainer.callbacks.append(lambda t, row: curve.append(
            {"step": row["step"], "train_seconds": round(row["train_seconds"], 2), "val_loss": round(row["val_loss"], 4)}))
        trainer.fit()
    reached = next((c["train_seconds"] for c in curve if c["val_loss"] <= TARGET), None)
    return {"config": {k: cfg[k] for k in ("data", "model", "optim", "train")}, "steps": curve[-1]["step"],
            "train_seconds": curve[-1]["train_seconds"], "final_val_loss": curve[-1]["val_loss"],
            "seconds_to_target": reached, "curve": curve}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--baseline-iters", type=int, default=2000)
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="override gpt-shakespeare's config (as deepzoo train --set)")
    ap.add_argument("--skip-baseline", action="store_true")
    figures.add_record_argument(ap)
    args = ap.parse_args()
    recipe = recipes.get("gpt-shakespeare")
    cfg = cfglib.resolve(recipe.full_defaults(), recipe.presets, None, None, [], None, args.seed)
    text = read_text(source_path(cfg, args.data_dir))
    vocab = CharVocab(text)
    data = torch.tensor(vocab.encode(text), dtype=torch.long)

    ours = run_recipe(args.data_dir, args.sets, args.seed)
    base = None if args.skip_baseline else run_nanogpt(data, len(vocab), args.baseline_iters, 100, args.seed)
    ratio = same_loss = None
    if base and base["seconds_to_target"] and ours["seconds_to_target"]:
        ratio = round(ours["seconds_to_target"] / base["seconds_to_target"], 3)
    if base:  # the baseline may end above the target: compare the time each takes to the baseline's own end
        end = base["final_val_loss"]
        mine = next((c["train_seconds"] for c in ours["curve"] if c["val_loss"] <= end), None)
        theirs = next(c["train_seconds"] for c in base["curve"] if c["val_loss"] <= end)
        same_loss = {"val_loss": end, "gpt_shakespeare_seconds": mine, "nanogpt_cpu_config_seconds": theirs,
                     "ratio": None if mine is None else round(mine / theirs, 3)}
    result = {
        "benchmark": "charlm", "target_val_loss": TARGET, "gpt_shakespeare": ours, "nanogpt_cpu_config": base,
        "time_ratio_ours_over_nanogpt": ratio, "time_to_the_baseline_final_loss": same_loss,
        "reference": REFERENCE,
        "torch_threads": torch.get_num_threads(),
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "cpu": platform.processor()},
    }
    print(json.dumps(result, indent=1))
    if args.record:
        figures.write_results(args.record, result)
        if args.sets or args.seed != 0:
            print("not recorded in deepzoo/figures.json: not the default config (--set or --seed)", file=sys.stderr)
            return
        record(result, args.record)


def record(result: dict, path: str) -> None:
    """gpt-shakespeare's default-config figure (its final validation loss) into deepzoo/figures.json."""
    ours = result["gpt_shakespeare"]
    target = (f"{TARGET} reached after {ours['seconds_to_target']:.1f} s" if ours["seconds_to_target"]
              else f"{TARGET} not reached")
    figures.record("gpt-shakespeare", ours["final_val_loss"], results=path, train_seconds=ours["train_seconds"],
                   reached=f"validation loss {{value}} after {ours['steps']:,} steps ({target})",
                   figures={"seconds_to_target": ours["seconds_to_target"]})


if __name__ == "__main__":
    main()
