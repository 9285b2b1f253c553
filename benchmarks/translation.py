"""transformer-multi30k: BLEU on test_2016_flickr (de->en), training time and tokens/s, beside the
reference Transformer of bentrevett/pytorch-seq2seq (3 layers, width 256: BLEU 36.5, lower-cased).

Trains ``transformer-multi30k`` with its default config (or reads a finished run of it, ``--run DIR``,
whose config must equal the defaults) and reports:

- ``test_bleu``: sacreBLEU's standard score of the beam-search (5) translations (cased, 13a);
- ``test_bleu_lc``: the same, lower-cased, the way the reference figure was measured;
- ``test_bleu_greedy``: greedy decoding, cased;
- training seconds (the engine's clock: training steps only, no validation, no decoding) and training
  tokens per second (source + target subword tokens of the training pairs, times epochs, over those
  seconds).

    python benchmarks/translation.py --data-dir ../shared/data                        # trains
    python benchmarks/translation.py --data-dir ../shared/data --run runs/transformer-multi30k-X
    python benchmarks/translation.py --data-dir ../shared/data --record benchmarks/results/translation.json

``--record FILE`` also writes the JSON to FILE and sets transformer-multi30k's figure in deepzoo/figures.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import torch

from deepzoo import figures, recipes
from deepzoo.errors import DeepzooError
from deepzoo.train.run import default_run

REFERENCE = {"test_bleu_lc": 36.5, "source": "bentrevett/pytorch-seq2seq, 6 - Attention is All You Need "
             "(3 layers, 256 wide, 8 heads), test_2016_flickr", "url": "https://github.com/bentrevett/pytorch-seq2seq"}
BAR = {"test_bleu_lc": 36.5, "train_minutes": 45}


def training_figures(run_dir: Path, summary: dict, task) -> dict:
    pairs = [p for b in task.train.batches for p in b]
    tokens = sum(len(task.train.pairs[i][0]) + len(task.train.pairs[i][1]) + 1 for i in pairs)
    r, seconds = summary["results"], summary["train_seconds"]
    return {"run": str(run_dir), "test_bleu": round(r["test_bleu"], 2), "test_bleu_lc": round(r["test_bleu_lc"], 2),
            "test_bleu_greedy": round(r["test_bleu_greedy"], 2), "val_loss": round(r["val_loss"], 4),
            "best_epoch": summary["best_epoch"], "epochs": summary["epochs_run"], "train_seconds": seconds,
            "train_minutes": round(seconds / 60, 1), "train_tokens_per_epoch": tokens,
            "train_tokens_per_s": round(tokens * summary["epochs_run"] / seconds, 1),
            "meets_bar": r["test_bleu_lc"] >= BAR["test_bleu_lc"] and seconds <= 60 * BAR["train_minutes"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir")
    p.add_argument("--run", metavar="DIR", help="a finished transformer-multi30k run with the default config")
    figures.add_record_argument(p)
    args = p.parse_args()
    recipe = recipes.get("transformer-multi30k")
    defaults = recipe.full_defaults()
    try:
        run_dir, summary = default_run(recipe.name, args.run, args.data_dir,
                                       log=lambda s: print(s, file=sys.stderr, flush=True))
    except DeepzooError as e:
        sys.exit(f"error: {e}")
    task = recipe.build({**defaults, "recipe": recipe.name}, args.data_dir)
    t = training_figures(run_dir, summary, task)
    result = {"benchmark": "transformer-multi30k", "reference": REFERENCE, "bar": BAR, "training": t,
              "threads": torch.get_num_threads(), "torch": torch.__version__,
              "machine": platform.processor() or platform.machine()}
    print(json.dumps(result, indent=1))
    if args.record:
        figures.write_results(args.record, result)
        record(result, args.record)


def record(result: dict, path: str) -> None:
    """transformer-multi30k's default-config figure into deepzoo/figures.json."""
    t = result["training"]
    figures.record("transformer-multi30k", t["test_bleu_lc"], results=path, train_seconds=t["train_seconds"],
                   reached=f"BLEU {{value}} lower-cased, {t['test_bleu']:.2f} cased (sacreBLEU, beam 5, "
                           f"test_2016_flickr; greedy {t['test_bleu_greedy']:.2f}); "
                           f"{t['train_tokens_per_s']:,.0f} training tokens/s",
                   time=f"{round(t['train_seconds']):,} s ({t['epochs']} epochs)",
                   figures={k: t[k] for k in ("test_bleu", "test_bleu_greedy", "train_tokens_per_s")})


if __name__ == "__main__":
    main()
