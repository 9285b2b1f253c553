"""The quick tour as a fresh machine runs it: ``deepzoo tour`` in a new process, timed, then its results.

    python benchmarks/tour.py                      # prints one JSON object
    python benchmarks/tour.py --out runs/tour-bench --recipes cnn-mnist,gcn-cora

For each recipe: its wall seconds (training including building the task and the test evaluation, then
checking that it learned and showing what it does, from tour.json), the seconds spent in epochs, its
figure, and the learned-versus-untrained comparison (deepzoo/report/learned.py); then the total wall time
of the command (process start and imports included), the CPU's name and flags (avx2, avx512*, amx*, from
/proc/cpuinfo), torch's CPU capability (the kernels it dispatches to) and the load average before and
after, since a 2-core machine shared with other work gives other times.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from deepzoo import figures


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", metavar="DIR", help="the tour's folder (default: a temporary one, removed after)")
    ap.add_argument("--recipes", metavar="A,B", help="only these recipes")
    ap.add_argument("--full", action="store_true", help="the default configs on the full datasets")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="deepzoo-tour-bench-") as tmp:
        out = Path(args.out or Path(tmp) / "tour")
        cmd = [sys.executable, "-m", "deepzoo", "tour", "--full" if args.full else "--quick", "--quiet", "--out", str(out)]
        if args.recipes:
            cmd += ["--recipes", args.recipes]
        load_before = os.getloadavg()
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - start
        load_after = os.getloadavg()
        if not (out / "tour.json").exists():
            print(proc.stderr[-3000:], file=sys.stderr)
            return proc.returncode or 1
        tour = json.loads((out / "tour.json").read_text())
    recipes = {}
    for e in tour["recipes"]:
        v = e.get("learned") or {}
        recipes[e["recipe"]] = {
            "seconds": e["seconds"].get("total"), "seconds_training": e["seconds"].get("train"),
            "seconds_checking_and_showing": e["seconds"].get("report"), "epoch_seconds": e.get("train_seconds"),
            "figure": {"metric": e.get("metric"), "value": e.get("value")},
            "learned": {k: v[k] for k in ("metric", "trained", "baseline", "baseline_name", "baselines", "threshold",
                                          "learned") if k in v} or None,
            **({"error": e["error"]} if e["error"] else {})}
    result = {
        "benchmark": "tour", "quick": tour["quick"], "command": " ".join(["deepzoo", *cmd[3:]]),
        "exit_status": proc.returncode, "total_wall_seconds": round(wall, 1),
        "tour_seconds": tour["total_seconds"],
        "recipes_learned": sum(1 for r in recipes.values() if (r["learned"] or {}).get("learned")),
        "recipes": len(recipes), "not_learned": [n for n, r in recipes.items() if not (r["learned"] or {}).get("learned")],
        "failed": [n for n, r in recipes.items() if "error" in r],
        "machine": {**tour["machine"], "load_average_before": [round(x, 2) for x in load_before],
                    "load_average_after": [round(x, 2) for x in load_after]},
        "date": tour["date"], "ran_under": figures.machine_json(), "per_recipe": recipes,
    }
    print(json.dumps(result, indent=1, ensure_ascii=False))
    return 0 if proc.returncode == 0 else proc.returncode


if __name__ == "__main__":
    sys.exit(main())
