"""Where a recipe's time goes: the whole command by phase, and the training step by operator, with the
FLOP/s it achieves against this CPU's peak.

Two parts, each printed as JSON (one object):

``phases``  ``deepzoo train RECIPE`` in a child process under cProfile, with the recipe's default config
            (or ``--set``): wall seconds of the whole process, and the cumulative seconds of its phases,
            read from the profile by function: importing (the ``import deepzoo.cli`` of the entry point,
            torch included), building the task (reading and preparing the data), training steps
            (``Trainer.train_epoch``), validation (``Trainer.evaluate`` during ``fit``), checkpoint writes
            (``checkpoint.save``), the end (best weights, test, summary, plots).
``step``    ``--steps`` training steps of the default config in this process under torch.profiler (after
            ``--warmup`` unprofiled ones): seconds per step, the operators that take the most CPU time (self
            time, share of the total), the FLOPs torch.profiler counts (every matrix product and convolution
            it sees, those of the backward pass included; attention kernels, element-wise ops and the
            optimiser are not counted, so the figure is a lower bound), and the achieved FLOP/s against the
            peak of this CPU's vector units: cores x clock x
            FLOPs per cycle (FMA: 2 per lane; 8 fp32 lanes for AVX2, 16 for AVX-512; two FMA units per core,
            as on every AVX2 core since Haswell and Zen 2). The clock is /proc/cpuinfo's current MHz, so the
            peak is an estimate; the ratio is the MFU of nanoGPT's estimate, for a CPU.

    python benchmarks/timeprofile.py --recipe gcn-cora --data-dir ../shared/data
    python benchmarks/timeprofile.py --recipe gpt-shakespeare --data-dir ../shared/data --only step --steps 30
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from deepzoo import figures

PHASES = {   # phase -> (file fragment, function name) whose cumulative time is the phase's
    "train_steps": ("deepzoo/train/engine.py", "train_epoch"),
    "evaluate_all": ("deepzoo/train/engine.py", "evaluate"),
    "checkpoint_writes": ("deepzoo/train/checkpoint.py", "save"),
    "build_task": ("deepzoo/train/run.py", "_build"),
    "finish_best_and_test": ("deepzoo/train/engine.py", "finish"),
    "summary_and_plots": ("deepzoo/train/run.py", "_summary"),
    "write_artefacts": ("deepzoo/train/run.py", "write_artefacts"),
}


def peak_flops(threads: int) -> tuple[float, str]:
    """(FLOP/s, how it was estimated) of ``threads`` cores' fp32 FMA units at the current clock."""
    _, flags = figures.cpu()
    lanes = 16 if "avx512f" in flags else 8 if "avx2" in flags else 4
    mhz = 0.0
    try:
        mhz = max(float(line.split(":")[1]) for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("cpu MHz"))
    except (OSError, ValueError):
        pass
    if not mhz:
        return 0.0, "unknown clock"
    per_cycle = 2 * lanes * 2      # two FMA units x lanes x (multiply + add)
    return threads * mhz * 1e6 * per_cycle, f"{threads} cores x {mhz:.0f} MHz x {per_cycle} FLOP/cycle (fp32, {lanes} lanes)"


def phases(recipe: str, data_dir: str | None, sets: list[str], log) -> dict:
    """The whole ``deepzoo train`` command in a child process under cProfile; its phases' seconds."""
    with tempfile.TemporaryDirectory(prefix="deepzoo-profile-") as tmp:
        prof = Path(tmp) / "train.prof"
        argv = ["train", recipe, "--out", str(Path(tmp) / "run"), "--quiet", *(["--data-dir", data_dir] if data_dir else []),
                *[a for s in sets for a in ("--set", s)]]
        code = ("import cProfile, sys, time\nt0 = time.perf_counter()\npr = cProfile.Profile()\npr.enable()\n"
                "import deepzoo.cli\nt1 = time.perf_counter()\n"
                f"rc = deepzoo.cli.main({argv!r})\npr.disable()\npr.dump_stats({str(prof)!r})\n"
                "print('IMPORT', t1 - t0)\nsys.exit(rc)\n")
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"deepzoo train {recipe} failed:\n{proc.stderr[-2000:]}")
        imports = float(next(l.split()[1] for l in proc.stdout.splitlines() if l.startswith("IMPORT")))
        stats = pstats.Stats(str(prof)).stats
        out = {"whole_process_seconds": round(wall, 2), "import_deepzoo_cli_seconds": round(imports, 2)}
        for phase, (fragment, name) in PHASES.items():
            out[phase + "_seconds"] = round(sum(v[3] for (f, _, n), v in stats.items()
                                                if n == name and f.replace(os.sep, "/").endswith(fragment)), 2)
        accounted = imports + out["build_task_seconds"] + out["train_steps_seconds"] + out["evaluate_all_seconds"] \
            + out["checkpoint_writes_seconds"] + out["summary_and_plots_seconds"] + out["write_artefacts_seconds"]
        out["python_start_and_other_seconds"] = round(wall - accounted, 2)
        log(f"{recipe}: whole {wall:.1f} s; " + ", ".join(f"{k} {v}" for k, v in out.items() if k != "whole_process_seconds"))
        return out


def step_profile(recipe_name: str, data_dir: str | None, sets: list[str], steps: int, warmup: int, log) -> dict:
    import torch
    from torch.profiler import ProfilerActivity, profile

    from deepzoo import config as cfglib
    from deepzoo import recipes, schema
    from deepzoo.train.engine import Trainer, to_device
    from deepzoo.train.run import _build
    recipe = recipes.get(recipe_name)
    if recipe.fit is not None:
        raise SystemExit(f"{recipe_name} trains with its own loop: --only phases")
    cfg = cfglib.resolve(recipe.full_defaults(), recipe.presets, None, None, sets, None, None,
                         schema=schema.for_recipe(recipe))
    cfg = {**cfg, "recipe": recipe.name, "preset": None}
    task = _build(recipe, cfg, data_dir)
    with tempfile.TemporaryDirectory(prefix="deepzoo-profile-") as tmp:
        trainer = Trainer(task, cfg, Path(tmp), progress=False, log=lambda *_: None)
        trainer.model.train()
        clip = cfg["train"]["clip_grad_norm"]
        batches = iter(task.train.epoch(trainer.generator))

        def one():
            nonlocal batches
            try:
                x, y = next(batches)
            except StopIteration:
                batches = iter(task.train.epoch(trainer.generator))
                x, y = next(batches)
            x, y = to_device(x, trainer.device, trainer.dtype), to_device(y, trainer.device, trainer.dtype)
            lr = trainer._set_lr()
            if task.train_step is not None:
                task.train_step(trainer, x, y)
            else:
                trainer._step(x, y, lr, clip, [])
        for _ in range(warmup):
            one()
        with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
            start = time.perf_counter()
            for _ in range(steps):
                one()
            seconds = (time.perf_counter() - start) / steps
        events = prof.key_averages()
        total_self = sum(e.self_cpu_time_total for e in events) or 1
        top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:12]
        counted_flops = sum(e.flops for e in events if e.flops) / steps
        # the profiler's own overhead inflates the profiled steps: time as many more without it
        start = time.perf_counter()
        for _ in range(steps):
            one()
        plain = (time.perf_counter() - start) / steps
    threads = torch.get_num_threads()
    peak, how = peak_flops(threads)
    achieved = counted_flops / plain
    out = {"steps": steps, "seconds_per_step": round(plain, 4), "seconds_per_step_under_profiler": round(seconds, 4),
           "threads": threads, "gflop_per_step_counted": round(counted_flops / 1e9, 3),
           "achieved_gflops_estimate": round(achieved / 1e9, 1), "peak_gflops_estimate": round(peak / 1e9, 1),
           "peak_how": how, "fraction_of_peak": round(achieved / peak, 3) if peak else None,
           "top_ops_by_self_cpu": [{"op": e.key, "share": round(e.self_cpu_time_total / total_self, 3),
                                    "calls_per_step": round(e.count / steps, 1)} for e in top]}
    log(f"{recipe_name}: {plain * 1e3:.1f} ms/step, ~{achieved / 1e9:.1f} GFLOP/s of ~{peak / 1e9:.0f} peak; top: "
        + ", ".join(f"{t['op']} {100 * t['share']:.0f}%" for t in out["top_ops_by_self_cpu"][:5]))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--recipe", required=True)
    ap.add_argument("--data-dir")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--only", choices=["phases", "step"])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args(argv)
    log = lambda s: print(s, file=sys.stderr, flush=True)   # noqa: E731
    result = {"benchmark": "profile", "recipe": args.recipe, "sets": args.set, "ran_under": figures.machine_json()}
    if args.only in (None, "phases"):
        result["phases"] = phases(args.recipe, args.data_dir, args.set, log)
    if args.only in (None, "step"):
        result["step"] = step_profile(args.recipe, args.data_dir, args.set, args.steps, args.warmup, log)
    print(json.dumps(result, indent=1))
    if args.out:
        figures.write_results(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
