"""Cold predict latency of a run folder, and its size: this deepzoo against another checkout of it.

A cold answer is a whole fresh process, as a user types it: ``python -m deepzoo predict RUN INPUT``,
timed from start to exit. Before run folders were portable, ``predict`` rebuilt the whole task from the
dataset (MNIST's 60,000 images, SST-2's 67,349 phrases and their vocabulary, Multi30k's pairs and a BPE
tokenizer trained anew); now it reads config.json, RUN/inference/ and the best checkpoint only. With
``--baseline PATH`` (a checkout of an older deepzoo, e.g. ``git worktree add /tmp/old a9f01bc``), each run
is answered by both, in alternating pairs (A B A B ...), and the median of each and their ratio are
reported; the two must give the same answer.

    python benchmarks/portable.py --data-dir ../shared/data --baseline /tmp/old \\
        mlp-mnist=runs/mlp digit.png  bilstm-sst2=runs/bilstm "a gripping film"  ...

Arguments come in pairs: RECIPE=RUN_DIR then the input. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from deepzoo import figures
from deepzoo.figures import cpu


def folder_size(path: Path) -> dict:
    files = [p for p in path.rglob("*") if p.is_file()]
    by = lambda pred: sum(p.stat().st_size for p in files if pred(p))   # noqa: E731
    return {"total_bytes": by(lambda p: True),
            "inference_bytes": by(lambda p: "inference" in p.relative_to(path).parts),
            "checkpoint_bytes": by(lambda p: "checkpoints" in p.relative_to(path).parts)}


def cold_predict(root: Path | None, run: str, item: str, data_dir: str | None) -> tuple[float, str]:
    """Seconds for one fresh ``deepzoo predict`` process (with ``root`` first on the import path), and
    its answer. The older code needs the data to rebuild the task; the newer one is given none."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "deepzoo", "predict", run, item]
    if root is not None:
        env["PYTHONPATH"] = str(root)
        if data_dir:
            cmd += ["--data-dir", data_dir]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=root or Path(__file__).parents[1])
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.strip()[-500:]}")
    return seconds, proc.stdout.strip()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("pairs", nargs="+", metavar="RECIPE=RUN INPUT")
    p.add_argument("--baseline", help="an older deepzoo checkout to time beside this one")
    p.add_argument("--data-dir", help="the datasets, for the baseline (which rebuilds the task from them)")
    p.add_argument("--repeats", type=int, default=3, help="alternating pairs per run (default 3)")
    args = p.parse_args()
    if len(args.pairs) % 2:
        p.error("give RECIPE=RUN_DIR INPUT pairs")
    here = Path(__file__).resolve().parents[1]
    rows = []
    for spec, item in zip(args.pairs[::2], args.pairs[1::2]):
        recipe, _, run = spec.partition("=")
        run = str(Path(run).resolve())                       # the processes run in their checkout's folder
        item = str(Path(item).resolve()) if Path(item).exists() else item
        new, old, answers = [], [], set()
        for _ in range(args.repeats):
            s, a = cold_predict(here, run, item, None)
            new.append(s)
            answers.add(("new", a))
            if args.baseline:
                s, a = cold_predict(Path(args.baseline).resolve(), run, item, args.data_dir)
                old.append(s)
                answers.add(("old", a))
        row = {"recipe": recipe, "run": run, "input": item, "seconds_now": statistics.median(new),
               "answer": next(a for k, a in answers if k == "new"), **folder_size(Path(run))}
        if args.baseline:
            row.update(seconds_before=statistics.median(old),
                       ratio_now_over_before=statistics.median(new) / statistics.median(old),
                       same_answer=len({a for _, a in answers}) == 1)
        rows.append(row)
    print(json.dumps({"benchmark": "cold predict latency and run folder size", "rows": rows,
                      "repeats": args.repeats, "baseline": args.baseline,
                      "machine": {"cpu_flags": cpu()[1], "cores": os.cpu_count(),
                                  "python": platform.python_version()},
                      "ran_under": figures.machine_json()}, indent=1))


if __name__ == "__main__":
    main()
