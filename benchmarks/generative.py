"""The generative models side by side: sample quality on one measure, training time, sampling time.

Each recipe is trained with its default config and ``eval.classifier`` set to one trained ``cnn-mnist``
run (``--classifier RUN``, or trained here first with its default config). The figures of
deepzoo/report/sample_quality.py are then computed on 10,000 samples against the 10,000 test images:
the Fréchet distance of the classifier's penultimate features (not the Inception FID of papers), the
mean confidence and the entropy of the predicted-class histogram (ln 10 = 2.303 at best). Sampling
time is the seconds to draw 1,000 images after training (DDPM: DDIM with ``eval.sample_steps``; the
1,000-step ancestral sampler is timed on 20 images and scaled).

    python benchmarks/generative.py --data-dir ../shared/data
    python benchmarks/generative.py --data-dir ../shared/data --classifier runs/cnn-mnist-X --only vae-mnist
    python benchmarks/generative.py --data-dir ../shared/data --classifier runs/cnn-mnist-X --only ddpm-mnist \
        --runs ddpm-mnist=runs/ddpm-mnist-X --ddpm-samplers 50:0,100:0,50:1,100:1
    python benchmarks/generative.py --data-dir ../shared/data --record benchmarks/results/generative.json

``--record FILE`` also writes the JSON to FILE and sets each model's figure in deepzoo/figures.json (every
model here trains with its default config; only eval.classifier is set).

Bars (deepzoo issue 7): vae-mnist test -ELBO <= 100 nats in < 15 min (pytorch/examples: about 106.7 after
7 epochs); ddpm-mnist's Fréchet distance below dcgan-mnist's, both with class entropy >= 2.2, each trained
in < 30 min.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from deepzoo import figures
from deepzoo.train.run import load_with_data, train

MODELS = ("vae-mnist", "gan-mnist", "dcgan-mnist", "ddpm-mnist")


def scored_cfg(cfg: dict, name: str, classifier: str) -> dict:
    """The run's config with the recipe's current eval settings (sampler, sample count) and the classifier."""
    from deepzoo import recipes
    return {**cfg, "eval": {**recipes.get(name).full_defaults()["eval"], "classifier": classifier}}


def sampling_seconds_per_1000(model, cfg: dict) -> dict:
    from deepzoo.models.ddpm import Diffusion
    from deepzoo.recipes.generative import _sample
    start = time.perf_counter()
    _sample(model, cfg, 1000, torch.Generator().manual_seed(1))
    out = {"sample_seconds_per_1000": round(time.perf_counter() - start, 2)}
    if isinstance(model, Diffusion):
        start = time.perf_counter()
        model.sample_ancestral(20, torch.Generator().manual_seed(1))
        out["ancestral_seconds_per_1000"] = round(50 * (time.perf_counter() - start), 1)
    return out


def sampler_sweep(model, test_images, classifier, samplers: list[tuple[int, float]], n: int) -> list[dict]:
    """The sample-quality figures of one trained DDPM under several (DDIM steps, eta) samplers, on n samples
    each (fewer than 10,000: comparable with each other, not with the 10,000-sample rows)."""
    from deepzoo.recipes.generative import _sample
    from deepzoo.report.sample_quality import sample_quality
    rows = []
    for steps, eta in samplers:
        start = time.perf_counter()
        images = _sample(model, {"eval": {"sample_steps": steps, "eta": eta}}, n, torch.Generator().manual_seed(0))
        seconds = time.perf_counter() - start
        q = sample_quality(images, test_images, classifier)
        rows.append({"sample_steps": steps, "eta": eta, "samples": n, "fd": round(q["frechet_distance"], 2),
                     "confidence": round(q["mean_confidence"], 4), "class_entropy": round(q["class_entropy"], 4),
                     "sample_seconds_per_1000": round(1000 * seconds / n, 1)})
        print(f"ddpm sampler {steps} steps, eta {eta}: {json.dumps(rows[-1])}", file=sys.stderr, flush=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir")
    ap.add_argument("--classifier", help="a finished cnn-mnist run (default: train one first)")
    ap.add_argument("--only", help="comma-separated recipes (default: all four)")
    ap.add_argument("--out", type=Path, help="folder for the runs (default: a temporary folder)")
    ap.add_argument("--runs", default="", help="score finished default runs instead of training them: "
                    "NAME=RUN_DIR,... (their eval settings are replaced by the recipe's current ones)")
    ap.add_argument("--ddpm-samplers", default="", help="also score the DDPM under these samplers, "
                    "STEPS:ETA,... (e.g. 50:0,100:0,100:1), on --sweep-samples samples each")
    ap.add_argument("--sweep-samples", type=int, default=2000)
    figures.add_record_argument(ap)
    args = ap.parse_args(argv)
    from deepzoo.recipes.generative import load_classifier
    from deepzoo.train.run import read_default_run
    log = lambda s: print(s, file=sys.stderr, flush=True)
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-generative-"))
    runs = dict(item.split("=", 1) for item in args.runs.split(",") if item)
    classifier = args.classifier
    if classifier is None:
        classifier = str(out / "cnn-mnist")
        train("cnn-mnist", out=classifier, data_dir=args.data_dir, progress=False, log=log)
    result = {"benchmark": "generative", "classifier": classifier, "threads": torch.get_num_threads(),
              "measure": "Fréchet distance of cnn-mnist penultimate features, 10,000 samples vs 10,000 test "
                         "images (not Inception FID)", "models": {}}
    for name in (args.only.split(",") if args.only else MODELS):
        if name in runs:      # a finished default run: score its weights with the current eval settings
            run_dir, s = read_default_run(runs[name], name, ignore=("eval",))
        else:
            run_dir = out / name
            s = train(name, out=run_dir, data_dir=args.data_dir, progress=False, log=log,
                      sets=[f"eval.classifier={classifier}"])
        recipe, cfg, task = load_with_data(run_dir, args.data_dir, log=log)
        cfg = scored_cfg(cfg, name, classifier)
        model = task.model.eval()
        start = time.perf_counter()
        r = {**s["results"], **recipe.score(task, cfg)} if name in runs else s["results"]
        row = {k: r[k] for k in ("test_fd", "test_confidence", "test_class_entropy", "test_class_histogram",
                                 "test_nelbo", "test_recon", "test_kl") if k in r}
        row.update({"train_seconds": s["train_seconds"], "train_minutes": round(s["train_seconds"] / 60, 1),
                    "epochs": s["epochs_run"], "run": str(run_dir)})
        if name in runs:
            row["score_seconds"] = round(time.perf_counter() - start, 1)
        if name == "ddpm-mnist":
            row["sampler"] = {"sample_steps": cfg["eval"]["sample_steps"], "eta": cfg["eval"]["eta"]}
            if args.ddpm_samplers:
                samplers = [(int(a), float(b)) for a, b in (x.split(":") for x in args.ddpm_samplers.split(","))]
                row["sampler_sweep"] = sampler_sweep(model, task.context["test_images"],
                                                     load_classifier(classifier), samplers, args.sweep_samples)
        row.update(sampling_seconds_per_1000(model, cfg))
        log(f"{name}: {json.dumps(row)}")
        result["models"][name] = row
    m = result["models"]
    bars = {}
    if "vae-mnist" in m:
        bars["vae_nelbo_at_most_100_in_15_min"] = m["vae-mnist"]["test_nelbo"] <= 100 and m["vae-mnist"]["train_seconds"] < 900
    if {"ddpm-mnist", "dcgan-mnist"} <= set(m):
        bars["ddpm_fd_below_dcgan"] = m["ddpm-mnist"]["test_fd"] < m["dcgan-mnist"]["test_fd"]
        bars["entropy_at_least_2.2"] = all(m[k]["test_class_entropy"] >= 2.2 for k in ("ddpm-mnist", "dcgan-mnist"))
        bars["each_under_30_min"] = all(m[k]["train_seconds"] < 1800 for k in ("ddpm-mnist", "dcgan-mnist"))
    result["bars"] = bars
    print(json.dumps(result, indent=1))
    if args.record:
        figures.write_results(args.record, result)
        record(result, args.record)
    return 0


def record(result: dict, path: str) -> None:
    """Each model's default-config figure into deepzoo/figures.json."""
    for name, row in result["models"].items():
        record_one(name, row, path)


def record_one(name: str, row: dict, results: str) -> None:
    quality = (f"class entropy {row['test_class_entropy']:.3f} nats, confidence {row['test_confidence']:.3f}"
               if "test_class_entropy" in row else "")
    keep = {k: row[k] for k in ("test_fd", "test_class_entropy", "test_confidence", "test_recon", "test_kl",
                                "sample_seconds_per_1000", "ancestral_seconds_per_1000") if k in row}
    if name == "vae-mnist":
        samples = (f"; samples: Fréchet distance {row['test_fd']:.1f}, {quality}" if "test_fd" in row else "")
        reached = (f"{{value}} nats test -ELBO (reconstruction {row['test_recon']:.2f} + KL {row['test_kl']:.2f}; "
                   f"{row['epochs']} epochs){samples}")
        value = row["test_nelbo"]
    else:
        sampler = row.get("sampler")
        how = f" ({sampler['sample_steps']} steps, eta {sampler['eta']:g})" if sampler else ""
        reached = f"Fréchet distance {{value}}{how}, {quality} ({row['epochs']} epochs)"
        if "ancestral_seconds_per_1000" in row:
            reached += (f"; {row['sample_seconds_per_1000']:.0f} s to sample 1,000 images with "
                        f"{sampler['sample_steps']} steps, {row['ancestral_seconds_per_1000']:.0f} s with the "
                        f"1,000-step ancestral sampler")
        value = row["test_fd"]
    figures.record(name, value, reached=reached, figures=keep, results=results, train_seconds=row["train_seconds"])


if __name__ == "__main__":
    sys.exit(main())
