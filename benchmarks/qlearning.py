"""Tabular Q-learning on FrozenLake (slippery 4x4) and Taxi, 3 seeds each, through the recipes' defaults.

    python benchmarks/qlearning.py
    python benchmarks/qlearning.py --record benchmarks/results/qlearning.json   # + deepzoo/figures.json

For each run: the greedy policy's success rate and mean return over 1,000 evaluation episodes, and, from
the environment's own transition model, the exact expected return of that policy and the best any
policy can reach within the time limit (finite-horizon value iteration). References: gymnasium's reward
thresholds, FrozenLake-v1 0.70 and Taxi 8 (deepzoo issue 8's bars). Taxi-v4's exact optimum is 7.93, so
no policy averages 8 in expectation; a 1,000-episode mean lands above 8 only by sampling luck.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile

from deepzoo import figures
from deepzoo.train.run import train


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    figures.add_record_argument(ap)
    args = ap.parse_args(argv)
    out = {"benchmark": "qlearning", "recipes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("qlearning-frozenlake", "qlearning-taxi"):
            rows = []
            for seed in range(args.seeds):
                s = train(name, seed=seed, out=f"{tmp}/{name}-{seed}", progress=False, log=lambda *_: None)
                r = s["results"]
                rows.append({"seed": seed, "eval_success_rate": r["eval_success_rate"],
                             "eval_mean_return": r["eval_mean_return"], "exact_policy_return": r["exact_policy_return"],
                             "exact_optimal_return": r["exact_optimal_return"], "train_seconds": s["train_seconds"]})
                print(json.dumps({name: rows[-1]}), file=sys.stderr, flush=True)
            out["recipes"][name] = {"runs": rows, "reference": s["reference"]}
    fl, tx = out["recipes"]["qlearning-frozenlake"]["runs"], out["recipes"]["qlearning-taxi"]["runs"]
    out["bars"] = {"frozenlake_success_at_least_0.70": all(r["eval_success_rate"] >= 0.70 for r in fl),
                   "taxi_mean_return_at_least_8": all(r["eval_mean_return"] >= 8 for r in tx),
                   "taxi_policy_optimal": all(abs(r["exact_policy_return"] - r["exact_optimal_return"]) < 1e-6 for r in tx)}
    print(json.dumps(out, indent=1))
    if args.record:
        figures.write_results(args.record, out)
        record(out, args.record)
    return 0


def record(result: dict, path: str) -> None:
    """Seed 0 (the default config's seed) is the figure; the other seeds are named beside it."""
    results = result["recipes"]
    for name, key, episodes in (("qlearning-frozenlake", "eval_success_rate", "20,000"),
                                ("qlearning-taxi", "eval_mean_return", "10,000")):
        runs = results[name]["runs"]
        first, rest = runs[0], runs[1:]
        others = (f"; seeds {', '.join(str(r['seed']) for r in rest)}: "
                  f"{', '.join(figures.format_value(key, r[key]) for r in rest)}" if rest else "")
        what = "success rate" if key == "eval_success_rate" else "mean return"
        figures.record(name, first[key], results=path, train_seconds=first["train_seconds"],
                       reached=f"{what} {{value}} over 1,000 greedy episodes (seed 0{others}); exact expected "
                               f"return of the learned policy {first['exact_policy_return']:.4f}, the optimum "
                               f"{first['exact_optimal_return']:.4f}",
                       time=f"{round(first['train_seconds'])} s ({episodes} episodes)",
                       figures={f"seed_{r['seed']}": r[key] for r in rest} |
                               {k: first[k] for k in ("exact_policy_return", "exact_optimal_return")})


if __name__ == "__main__":
    sys.exit(main())
