"""Masked-language-model pre-training: the default ``bert-pretrain`` / ``bert-pretrain-zh`` run, epoch by epoch.

Trains the recipe with its default config (``deepzoo train RECIPE``, a separate process), or reads a run
folder that was (``--run RUN``: refused if any setting differs from the defaults), and prints one JSON
object: the held-out masked-token loss and accuracy after every epoch and at the end (test), the training
seconds, the threads, the machine and its CPU flags, and the model's fill-mask answers for the recipe's
example texts. There is no published figure for these corpora and this size; what the pre-training buys is
measured by fine-tuning (benchmarks/finetune.py).

    python benchmarks/pretrain.py --data-dir ../shared/data --recipe bert-pretrain \\
        --record benchmarks/results/bert-pretrain.json
    python benchmarks/pretrain.py --run runs/bert-pretrain-zh-X --recipe bert-pretrain-zh --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from deepzoo import figures
from deepzoo.recipes.pretrain import EXAMPLES
from deepzoo.runs import changed_settings
from deepzoo.train.run import load_model, read_run


def summarise(run_dir: Path, recipe: str, threads: str) -> dict:
    run_dir, meta, rec, _ = read_run(run_dir)
    if rec.name != recipe:
        raise SystemExit(f"{run_dir} is a {rec.name} run, not {recipe}")
    changed = changed_settings(meta, rec)
    if changed or meta.get("preset"):
        raise SystemExit(f"{run_dir} is not the default config: {', '.join(changed) or meta['preset']}")
    summary = json.loads((run_dir / "summary.json").read_text())
    curve = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    _, cfg, task = load_model(run_dir)
    examples = EXAMPLES[cfg["data"]["language"]]
    return {"recipe": recipe, "run": str(run_dir), "threads": threads,
            "test_loss": round(summary["results"]["test_loss"], 4), "test_acc": round(summary["results"]["test_acc"], 4),
            "val_acc": round(summary["results"]["val_acc"], 4), "train_seconds": summary["train_seconds"],
            "steps": curve[-1]["step"] if curve else None, "parameters": summary.get("parameters"),
            "curve": [{k: round(r[k], 4) if isinstance(r[k], float) else r[k]
                       for k in ("epoch", "step", "train_loss", "val_loss", "val_acc", "train_seconds")} for r in curve],
            "fill_mask": rec.predict(task, cfg, examples)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--recipe", choices=["bert-pretrain", "bert-pretrain-zh"], default="bert-pretrain")
    ap.add_argument("--data-dir")
    ap.add_argument("--run", type=Path, help="summarise this finished default-config run instead of training one")
    ap.add_argument("--threads", default=os.environ.get("OMP_NUM_THREADS", "all cores"),
                    help="what the run trained on, for the record (default: this process's OMP_NUM_THREADS)")
    figures.add_record_argument(ap)
    args = ap.parse_args(argv)
    run_dir = args.run
    if run_dir is None:
        run_dir = Path(tempfile.mkdtemp(prefix=f"bench-{args.recipe}-")) / "run"
        cmd = [sys.executable, "-m", "deepzoo", "train", args.recipe, "--out", str(run_dir), "--quiet"]
        subprocess.run(cmd + (["--data-dir", args.data_dir] if args.data_dir else []), check=True)
    machine, flags = figures.this_machine()
    result = {"benchmark": "pretrain", "machine": machine, "cpu_flags": flags,
              **summarise(run_dir, args.recipe, args.threads)}
    print(json.dumps(result, indent=1, ensure_ascii=False))
    if args.record:
        figures.write_results(args.record, result)
        figures.record(args.recipe, result["test_loss"], results=args.record, train_seconds=result["train_seconds"],
                       reached=f"{{value}} masked-token loss (nats) on held-out text, {result['test_acc']:.2%} of "
                               f"masked pieces guessed first ({result['steps']:,} steps)",
                       figures={"test_acc": result["test_acc"], "val_acc": result["val_acc"]},
                       time=f"{figures.seconds_text(result['train_seconds'])} ({args.threads})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
