"""What pre-training buys: a fine-tuned encoder against the same encoder from random initialisation.

For each fine-tuning recipe (bert-sst2, bert-chnsenticorp, bert-imdb) and each seed, two runs with the
recipe's default config and ``model.pretrained`` set to a ``bert-pretrain`` (or ``bert-pretrain-zh``) run:
``model.init=pretrained`` (its encoder weights) and ``model.init=random`` (its tokenizer and shape only, new
weights). The two kinds alternate (pretrained, random, pretrained, ...), or with ``--parallel`` each seed's pair runs
side by side on one thread each, so that a machine that slows down during the command slows both alike. Each run is a separate ``deepzoo train`` process; the JSON gives the test
accuracy of every run, the mean and standard deviation over seeds, the gain of pre-training, the figures
deepzoo reached before (the best recurrent or CNN model) and the published references, and the machine.

    python benchmarks/finetune.py --data-dir ../shared/data --pretrained runs/bert-pretrain-X \\
        --only bert-sst2 --seeds 0 1 2 --parallel --record benchmarks/results/finetune-sst2.json
    python benchmarks/finetune.py --data-dir ../shared/data --pretrained-zh runs/bert-pretrain-zh-X \\
        --only bert-chnsenticorp

The bar (the issue that added pre-training): the pre-trained encoder at least 2 points above the random
one on SST-2 dev, ChnSentiCorp test and IMDB test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from deepzoo import figures

# The best figure deepzoo had before pre-training (README), and the published marks.
BEFORE = {"bert-sst2": (0.8372, "bilstm-sst2 (GloVe vectors), SST-2 dev"),
          "bert-chnsenticorp": (0.8919, "bilstm-chnsenticorp (word2vec vectors), ChnSentiCorp test"),
          "bert-imdb": (None, "no IMDB recipe before")}
PUBLISHED = {"bert-sst2": (0.868, "Kim 2014 CNN"), "bert-chnsenticorp": (0.909, "Senta LSTM"),
             "bert-imdb": (0.8889, "Maas et al. 2011; NBSVM-bi 91.22% (Wang & Manning 2012)")}

# What complete pre-training buys encoders of this size (Turc et al. 2019, the 24 BERT miniatures: BERT's
# full recipe, about a million steps of 256 texts, then fine-tuned; GLUE test set, SST-2 only): the scale of
# the gain to expect from 13 million tokens, a ten-thousandth of that.
FULLY_PRETRAINED = {"bert-sst2": {"BERT-Tiny (2 layers, width 128)": 0.832, "BERT-Mini (4 layers, width 256)": 0.859,
                                  "source": "Turc et al. 2019, https://arxiv.org/abs/1908.08962 (SST-2 test)"}}


def start(recipe: str, pretrained: str, init: str, seed: int, data_dir: str, work: Path, extra: list[str],
          env: dict | None = None):
    out = work / f"{recipe}-{init}-{seed}"
    cmd = [sys.executable, "-m", "deepzoo", "train", recipe, "--data-dir", data_dir, "--seed", str(seed),
           "--set", f"model.pretrained={pretrained}", "--set", f"model.init={init}", "--out", str(out), "--quiet",
           *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    return proc, cmd, out, {"seed": seed, "init": init, "started": time.perf_counter()}


def finish(proc, cmd, out, row) -> dict:
    err = proc.communicate()[1]
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{err[-2000:]}")
    summary = json.loads((out / "summary.json").read_text())
    return {"seed": row["seed"], "init": row["init"], "test_acc": summary["results"]["test_acc"],
            "best_epoch": summary.get("best_epoch"), "train_seconds": summary.get("train_seconds"),
            "wall_seconds": round(time.perf_counter() - row["started"], 1), "run_dir": str(out)}


def stats(values: list[float]) -> dict:
    return {"mean": round(statistics.fmean(values), 4),
            "sd": round(statistics.stdev(values), 4) if len(values) > 1 else None, "values": values}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--pretrained", help="a bert-pretrain run (English: bert-sst2, bert-imdb)")
    ap.add_argument("--pretrained-zh", help="a bert-pretrain-zh run (bert-chnsenticorp)")
    ap.add_argument("--only", nargs="+", default=list(BEFORE), choices=list(BEFORE))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra config for every run")
    ap.add_argument("--work", help="keep the runs in this folder (default: a temporary one)")
    ap.add_argument("--parallel", action="store_true",
                    help="run each seed's two runs side by side, one thread each (else one after the other)")
    ap.add_argument("--record", help="also write the JSON to this file")
    args = ap.parse_args(argv)
    extra = [a for s in args.set for a in ("--set", s)]
    model, flags = figures.cpu()
    result = {"command": " ".join(["python", "benchmarks/finetune.py", *(argv or sys.argv[1:])]),
              "date": time.strftime("%Y-%m-%d %H:%M"), "cpu": model, "cpu_flags": flags,
              "ran_under": figures.machine_json(), "recipes": {}}
    with tempfile.TemporaryDirectory(prefix="deepzoo-finetune-") as tmp:
        work = Path(args.work or tmp)
        for recipe in args.only:
            pretrained = args.pretrained_zh if recipe == "bert-chnsenticorp" else args.pretrained
            if not pretrained:
                raise SystemExit(f"{recipe} needs --{'pretrained-zh' if recipe == 'bert-chnsenticorp' else 'pretrained'}")
            runs = []
            for seed in args.seeds:
                if args.parallel:       # the pair side by side, one thread each: both see the same machine
                    env = {**os.environ, "OMP_NUM_THREADS": "1"}
                    started = [start(recipe, pretrained, init, seed, args.data_dir, work, extra, env)
                               for init in ("pretrained", "random")]
                    done = [finish(*s) for s in started]
                else:
                    done = [finish(*start(recipe, pretrained, init, seed, args.data_dir, work, extra))
                            for init in ("pretrained", "random")]
                for row in done:
                    runs.append(row)
                    print(json.dumps({"recipe": recipe, **row}), file=sys.stderr, flush=True)
            by = {init: stats([r["test_acc"] for r in runs if r["init"] == init]) for init in ("pretrained", "random")}
            before, what = BEFORE[recipe]
            ref, ref_what = PUBLISHED[recipe]
            gain = round(by["pretrained"]["mean"] - by["random"]["mean"], 4)
            result["recipes"][recipe] = {
                "pretrained_run": pretrained, "pretrained": by["pretrained"], "random_init": by["random"],
                "gain": gain, "bar_2_points_met": gain >= 0.02,
                "deepzoo_before": before, "deepzoo_before_is": what,
                "beats_deepzoo_before": None if before is None else by["pretrained"]["mean"] > before,
                "published": ref, "published_is": ref_what,
                "fully_pretrained_small_encoders": FULLY_PRETRAINED.get(recipe), "runs": runs}
    text = json.dumps(result, indent=1)
    print(text)
    if args.record:
        Path(args.record).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
