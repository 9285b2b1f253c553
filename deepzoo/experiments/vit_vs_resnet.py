r"""ViT vs ResNet-20 on CIFAR-10: the same time, the same images, several amounts of data.

The claim. The notes, after Dosovitskiy et al. 2021: a Vision Transformer needs more data than a CNN,
because it lacks the convolution's inductive bias. A convolution assumes locality (a unit sees a small
neighbourhood) and translation equivariance (one filter slides over every position); ViT assumes
neither, cuts the image into patches and must learn from the data even which patches are neighbours
(deepzoo/models/vit.py). With little data a ResNet should win clearly; as the data grow, the ViT should
close part of the gap (the paper sees it overtake only past ~14 M images, far beyond CIFAR-10).

What is run. ``vit-cifar10`` and ``resnet20-cifar10``, each through the ordinary engine into its own run
folder under ``out/`` (``vit-cifar10-n2500``, ...), on the first N training images of the same copy of
CIFAR-10 for each N of ``sizes`` (2,500 / 10,000 / 30,000 by default), with each recipe's own optimiser,
schedule, augmentation (random crops and flips for both) and the same seed; the test images (all of the
copy: 1,000 in the shared partial copy, 10,000 in the canonical one) score each run once, at the end.
Both nets get the same wall-clock budget per run (``minutes``): the experiment first times a few training
steps of each net on this machine (training images per second), then gives each run the whole number of
epochs that fits the budget (at least one), so that its learning-rate schedule (warm-up over the first
tenth at most, then the recipe's decay) runs to its end. It records, for each net and size: the test
accuracy, the training images per second, the epochs, the images seen and the training time.
Outputs: ``vit_vs_resnet.json``, ``vit_vs_resnet.md`` (the table) and ``vit_vs_resnet.png`` (test accuracy
against training-set size, one line per net).

What it does not say. With one budget for every size, a larger training set also means fewer passes over
it: the curve mixes "more data" with "fewer epochs", as it would for anyone with a fixed amount of time.
A faster net sees more images in the budget, so the comparison is of accuracy per second of CPU, not per
parameter or per multiply-add. The test set of the shared copy has 1,000 images: differences under ~3
points are within noise (one seed).

Measured verdict (``deepzoo experiment vit-vs-resnet --data-dir ../shared/data``, 2 idle threads of an
AVX2-only AMD EPYC, 3 minutes a run; benchmarks/results/vit_vs_resnet.{json,md,png}; the ViT then read its
class token and trained in batches of 128, the ``vit-cifar10`` default of that day): ResNet-20 beats the
ViT at every size, by 21.0 points with 2,500 images (63.5% vs 42.5%), 19.3 with 10,000 (67.2% vs 47.9%)
and 17.4 with 30,000 (64.5% vs 47.1%). The gap shrinks as the data grow, as the claim says, but slowly,
and with one seed and 1,000 test images a 3-point change is within noise. Both nets train at about the
same images/s here (417-458), so the gap is one of sample efficiency, not speed. On a GPU, with far more
images and epochs, the ViT closes more of it (Dosovitskiy et al. need ~14 M images to overtake).

``--quick`` trains each recipe's quick preset (a ViT of 2 layers and width 64, ResNet-20 without augmentation)
on the 500 packaged images for a few seconds a run: it checks the machinery, it is no evidence either way.

    deepzoo experiment vit-vs-resnet --quick                       # the packaged 500 images, < 60 s
    deepzoo experiment vit-vs-resnet --data-dir ../shared/data     # 3 sizes x 2 nets x 3 minutes
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import matplotlib
import torch

from deepzoo.errors import DeepzooError
from deepzoo.files import atomic_write_bytes, atomic_write_json
from deepzoo.report.format import markdown_table
from deepzoo.report.plots import save_png

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

NETS = ("vit-cifar10", "resnet20-cifar10")
SIZES = (2500, 10000, 30000)
QUICK_SIZES = (100, 250, 500)      # the packaged sample has 500 training images
MINUTES = 3.0                      # per run: 3 sizes x 2 nets x 3 min = 18 min of training
QUICK_MINUTES = 0.06               # per run: 6 x 3.6 s


def images_per_second(name: str, cfg: dict, seconds: float = 2.0, max_steps: int = 10) -> float:
    """Training images per second of recipe ``name``'s net with config ``cfg``, on this machine now: full
    training steps (forward, loss, backward, optimiser step) on random images of one batch, after one
    warm-up step; as many steps as fit in ``seconds`` (at least two, at most ``max_steps``). The nets'
    cost does not depend on the pixels, so random images time them as well as real ones."""
    from deepzoo import recipes
    from deepzoo.nn import loss_functions
    from deepzoo.train.engine import autocast, build_optimizer, resolve_precision
    recipe = recipes.get(name)
    torch.manual_seed(cfg["seed"])
    model = recipe.make_model(cfg)
    model.train()
    optimizer = build_optimizer(model, cfg["optim"])
    batch = cfg["data"]["batch_size"]
    x = torch.randn(batch, *recipe.input_shape)
    y = torch.randint(0, 10, (batch,))
    loss_fn = loss_functions("torch").cross_entropy
    precision = resolve_precision(cfg["train"]["precision"], torch.device("cpu"))

    def step():
        with autocast(torch.device("cpu"), precision):
            loss = loss_fn(model(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    step()                                                    # warm-up: first-call allocations
    steps, start = 0, time.perf_counter()
    while steps < 2 or (steps < max_steps and time.perf_counter() - start < seconds):
        step()
        steps += 1
    return steps * batch / (time.perf_counter() - start)


def _label(name: str, cfg: dict) -> str:
    """The net as the plot's legend names it."""
    m = cfg["model"]
    if name.startswith("vit"):
        return f"ViT ({m['depth']} layers, width {m['dim']}, {m['patch']}x{m['patch']} patches)"
    return f"ResNet-{m['depth']}"


def _config(name: str, sets: list[str], quick: bool) -> dict:
    from deepzoo import config as cfglib
    from deepzoo import recipes, schema
    recipe = recipes.get(name)
    return cfglib.resolve(recipe.full_defaults(), recipe.presets, "quick" if quick else None, sets=sets,
                          schema=schema.for_recipe(recipe))


def run(out, minutes: float | None = None, sizes=None, quick: bool = False, data_dir=None, seed: int = 0,
        progress: bool = True, log=print) -> dict:
    """Train each net of NETS on the first N training images for each N of ``sizes``, each run for
    ``minutes`` of training; write vit_vs_resnet.{json,md,png} into ``out`` and return what the JSON holds."""
    from deepzoo.train.run import train
    minutes = (QUICK_MINUTES if quick else MINUTES) if minutes is None else minutes
    sizes = list(sizes or (QUICK_SIZES if quick else SIZES))
    if not (isinstance(minutes, (int, float)) and math.isfinite(minutes) and 0 < minutes <= 1440):
        raise DeepzooError(f"--minutes must be a number in (0, 1440], got {minutes!r}")
    if not sizes or any(not isinstance(n, int) or n < 1 for n in sizes):
        raise DeepzooError(f"--sizes must be one or more positive numbers of training images, got {sizes!r}")
    sizes = sorted(set(sizes))
    out = Path(out)
    budget = 60.0 * minutes
    base = [f"seed={seed}", "data.val_size=0"] + (["data.sample=true"] if quick else [])
    rates = {}
    for name in NETS:                                        # the budget in images, from each net's speed here
        rates[name] = images_per_second(name, _config(name, base, quick), seconds=0.5 if quick else 3.0,
                                        max_steps=4 if quick else 10)
        log(f"{name}: {rates[name]:,.0f} training images/s on this machine (timed before the runs)")
    from deepzoo.figures import cpu
    result = {"minutes_per_run": minutes, "sizes": sizes, "quick": quick, "seed": seed, "cpu": cpu()[0],
              "cpu_flags": cpu()[1], "threads": torch.get_num_threads(), "timed_images_per_s": {k: round(v, 1) for k, v in rates.items()},
              "labels": {name: _label(name, _config(name, base, quick)) for name in NETS}, "runs": []}
    for n in sizes:
        for name in NETS:
            cfg = _config(name, base, quick)
            epochs = max(1, int(budget * rates[name] / n))
            warmup = min(cfg["optim"]["warmup_epochs"], round(0.1 * epochs, 3))
            sets = base + [f"data.train_size={n}", f"train.epochs={epochs}", f"optim.warmup_epochs={warmup}"]
            log(f"== {name}, {n:,} training images, {epochs} epoch{'s' if epochs > 1 else ''}")
            summary = train(name, preset="quick" if quick else None, sets=sets, out=out / f"{name}-n{n}",
                            data_dir=data_dir, progress=progress, log=log)
            seconds = summary["train_seconds"]
            seen = n * summary["epochs_run"]
            result["runs"].append({
                "net": name, "train_size": n, "epochs": summary["epochs_run"], "images_seen": seen,
                "train_seconds": round(seconds, 1), "train_images_per_s": round(seen / max(seconds, 1e-9), 1),
                "test_acc": summary["results"]["test_acc"], "parameters": summary["parameters"],
                "run_dir": f"{name}-n{n}"})
    result["findings"] = findings(result)
    atomic_write_json(out / "vit_vs_resnet.json", result)
    atomic_write_bytes(out / "vit_vs_resnet.md", markdown(result).encode("utf-8"))
    plot(result, out / "vit_vs_resnet.png")
    return result


def findings(result: dict) -> dict:
    """The gap (ResNet-20's test accuracy minus the ViT's) at each size, and whether the ViT gains on ResNet-20
    from the smallest training set to the largest (a smaller gap there)."""
    acc = {(r["net"], r["train_size"]): r["test_acc"] for r in result["runs"]}
    gaps = {n: round(acc[("resnet20-cifar10", n)] - acc[("vit-cifar10", n)], 4) for n in result["sizes"]}
    first, last = result["sizes"][0], result["sizes"][-1]
    return {"gap_resnet_minus_vit": gaps,
            "resnet_better_at_every_size": all(g > 0 for g in gaps.values()),
            "vit_gains_with_more_data": gaps[last] < gaps[first] if len(gaps) > 1 else None}


def _rows(result: dict) -> list[list[str]]:
    return [[r["net"], f"{r['train_size']:,}", f"{100 * r['test_acc']:.2f}%", f"{r['train_images_per_s']:,.0f}",
             str(r["epochs"]), f"{r['train_seconds']:.0f} s", f"{r['parameters']:,}"] for r in result["runs"]]


HEADER = ["net", "training images", "test accuracy", "training images/s", "epochs", "training time", "parameters"]


def verdict(result: dict) -> str:
    f = result["findings"]
    gaps = ", ".join(f"{int(n):,}: {100 * g:+.1f}" for n, g in f["gap_resnet_minus_vit"].items())   # (str keys from JSON)
    gains = {True: "yes", False: "no", None: "-"}[f["vit_gains_with_more_data"]]
    return (f"ResNet-20 minus ViT, test accuracy points by training images: {gaps}; ResNet-20 better at every "
            f"size: {'yes' if f['resnet_better_at_every_size'] else 'no'}; the ViT gains on it from the smallest "
            f"training set to the largest: {gains}")


def markdown(result: dict) -> str:
    size = "the packaged sample" if result["quick"] else "CIFAR-10"
    lines = [f"# ViT vs ResNet-20 on {size}: {result['minutes_per_run']:g} minutes of training per run, "
             f"{result['threads']} thread{'s' if result['threads'] != 1 else ''}", "",
             markdown_table(_rows(result), HEADER)]
    return "\n".join(lines + ["", verdict(result), ""])


def format_table(result: dict) -> str:
    from deepzoo.report.format import table
    return table(_rows(result), HEADER) + "\n" + verdict(result)


def plot(result: dict, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for name, colour in zip(NETS, ("tab:purple", "tab:green")):
        runs = [r for r in result["runs"] if r["net"] == name]
        ax.plot([r["train_size"] for r in runs], [100 * r["test_acc"] for r in runs], "o-", color=colour, lw=2,
                label=result["labels"][name])
    ax.set_xscale("log")
    ax.set_xticks(result["sizes"])
    ax.set_xticklabels([f"{n:,}" for n in result["sizes"]])
    ax.minorticks_off()
    ax.set(xlabel="training images", ylabel="test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend()
    where = "the packaged sample" if result["quick"] else "CIFAR-10"
    ax.set_title(f"ViT vs ResNet-20 on {where}, {result['minutes_per_run']:g} min of training per run",
                 fontsize=10)
    return save_png(fig, path)
