"""lstm-ptb: test perplexity and training tokens/s beside Zaremba et al.'s figure, and the cost of the
from-scratch LSTM cells against PyTorch's fused LSTM.

Part 1 trains ``lstm-ptb`` with its default config (or reads a finished run of it, ``--run DIR``, whose
config must equal the defaults) and reports test perplexity, training time and tokens per second
(training tokens x epochs / seconds spent in training steps; evaluation is not counted).

Part 2 times the training step with the adaptive softmax (the default, deepzoo/nn/softmax.py) against the
full softmax over the 10,000 words, in this one process, on the same batches, as part 3 does.

Part 3 times the same language model, same config, on the fused built-in (``model.impl=torch``) and on
the gate-by-gate cells of deepzoo/nn/rnn.py (``model.impl=scratch``), in this one process, on the same
batches: ``--steps`` training steps each (forward, backward, clipping, SGD update) after 5 warm-up steps,
alternating the two three times and keeping each one's fastest round. The ratio is scratch / fused.

    python benchmarks/ptb.py --data-dir ../shared/data                       # trains (about 20 minutes)
    python benchmarks/ptb.py --data-dir ../shared/data --run runs/lstm-ptb-X  # reuse a finished run
    python benchmarks/ptb.py --data-dir ../shared/data --skip-training       # parts 2 and 3 only
    python benchmarks/ptb.py --data-dir ../shared/data --record benchmarks/results/ptb.json

``--record FILE`` also writes the JSON to FILE and sets lstm-ptb's figure in deepzoo/figures.json.

Reference: Zaremba, Sutskever & Vinyals 2014, small LSTM (2 x 200, no dropout): valid 120.7, test 114.5.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

from deepzoo import config as cfglib
from deepzoo import figures, recipes
from deepzoo.errors import DeepzooError
from deepzoo.train.run import default_run

REFERENCE = {"test_ppl": 114.5, "valid_ppl": 120.7, "source": "Zaremba, Sutskever & Vinyals 2014, small LSTM",
             "url": "https://arxiv.org/abs/1409.2329"}
BAR_TEST_PPL, BAR_MINUTES = 115.0, 20.0  # deepzoo's bar: at most 115 within 20 minutes of training on 2 AVX2 cores


def training_figures(run_dir: Path, summary: dict, task) -> dict:
    tokens = task.train.data.numel()  # the stream laid out as [batch, N]: every token read once per epoch
    return {"run": str(run_dir), "test_ppl": round(summary["results"]["test_ppl"], 2),
            "valid_ppl": round(summary["results"]["val_ppl"], 2), "best_epoch": summary["best_epoch"],
            "epochs": summary["epochs_run"], "train_seconds": summary["train_seconds"],
            "train_minutes": round(summary["train_seconds"] / 60, 1),
            "train_tokens_per_s": round(tokens * summary["epochs_run"] / summary["train_seconds"], 1),
            "meets_bar": summary["results"]["test_ppl"] <= BAR_TEST_PPL
                         and summary["train_seconds"] <= BAR_MINUTES * 60}


def _steps(task, steps: int, warmup: int = 5) -> float:
    """Seconds for ``steps`` training steps after ``warmup`` untimed ones."""
    model = task.model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    batches = task.train.epoch()
    elapsed = 0.0
    for i in range(warmup + steps):
        inputs, y = next(batches)         # (x, first), or (x, first, y) for the adaptive softmax
        start = time.perf_counter()
        loss = task.loss(model(*inputs), y)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        if i >= warmup:
            elapsed += time.perf_counter() - start
    return elapsed


def fastest_rounds(data_dir, steps: int, variants: dict[str, list[str]]) -> tuple[dict, int]:
    """Each variant (a list of --set overrides of the default config) built on the same data, timed over
    ``steps`` training steps, the variants alternating three times; each one's fastest round, in seconds,
    and the tokens of ``steps`` steps."""
    recipe = recipes.get("lstm-ptb")
    tasks = {}
    for name, sets in variants.items():
        cfg = cfglib.resolve(recipe.full_defaults(), recipe.presets, sets=sets)
        torch.manual_seed(0)
        tasks[name] = recipe.build(cfg, data_dir)
    best = {name: float("inf") for name in tasks}
    for _ in range(3):
        for name, task in tasks.items():
            best[name] = min(best[name], _steps(task, steps))
            print(f"{name}: {steps} steps in {best[name]:.2f}s (best so far)", file=sys.stderr, flush=True)
    task = next(iter(tasks.values()))
    return best, steps * task.train.data.shape[0] * task.train.bptt


def scratch_vs_fused(data_dir, steps: int) -> dict:
    best, tokens = fastest_rounds(data_dir, steps, {"torch": ["model.impl=torch"], "scratch": ["model.impl=scratch"]})
    return {"steps": steps, "tokens_per_step": tokens // steps,
            "fused_tokens_per_s": round(tokens / best["torch"], 1),
            "scratch_tokens_per_s": round(tokens / best["scratch"], 1),
            "ratio_scratch_over_fused_time": round(best["scratch"] / best["torch"], 2)}


def adaptive_vs_full(data_dir, steps: int) -> dict:
    """The training step with the adaptive softmax (the default) against the full softmax it replaced."""
    best, tokens = fastest_rounds(data_dir, steps, {"full": ["model.softmax=full"],
                                                    "adaptive": ["model.softmax=adaptive"]})
    return {"steps": steps, "tokens_per_step": tokens // steps,
            "full_tokens_per_s": round(tokens / best["full"], 1),
            "adaptive_tokens_per_s": round(tokens / best["adaptive"], 1),
            "speedup_adaptive_over_full": round(best["full"] / best["adaptive"], 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir")
    p.add_argument("--run", metavar="DIR", help="a finished lstm-ptb run with the default config")
    p.add_argument("--skip-training", action="store_true", help="only the timings (softmax, scratch vs fused)")
    p.add_argument("--steps", type=int, default=40, help="timed steps per implementation and round")
    figures.add_record_argument(p)
    args = p.parse_args()

    recipe = recipes.get("lstm-ptb")
    result = {"benchmark": "lstm-ptb", "reference": REFERENCE, "bar_test_ppl": BAR_TEST_PPL,
              "bar_train_minutes": BAR_MINUTES}
    if not args.skip_training:
        try:
            run_dir, summary = default_run(recipe.name, args.run, args.data_dir,
                                           log=lambda s: print(s, file=sys.stderr, flush=True))
        except DeepzooError as e:
            sys.exit(f"error: {e}")
        cfg = {**recipe.full_defaults(), "recipe": recipe.name}
        result["training"] = training_figures(run_dir, summary, recipe.build(cfg, args.data_dir))
    result["adaptive_vs_full_softmax"] = adaptive_vs_full(args.data_dir, args.steps)
    result["scratch_vs_fused"] = scratch_vs_fused(args.data_dir, args.steps)
    result.update(threads=torch.get_num_threads(), torch=torch.__version__,
                  machine=platform.processor() or platform.machine())
    print(json.dumps(result, indent=1))
    if args.record:
        figures.write_results(args.record, result)
        record(result, args.record)


def record(result: dict, path: str) -> None:
    """lstm-ptb's default-config figure (if part 1 ran) into deepzoo/figures.json."""
    t = result.get("training")
    if t:
        figures.record("lstm-ptb", t["test_ppl"], results=path, train_seconds=t["train_seconds"],
                       reached=f"{{value}} test perplexity ({t['epochs']} epochs, best validation epoch "
                               f"{t['best_epoch']}; {t['train_tokens_per_s']:,.0f} tokens/s)",
                       figures={"valid_ppl": t["valid_ppl"], "train_tokens_per_s": t["train_tokens_per_s"]})


if __name__ == "__main__":
    main()
