r"""The degradation problem (He et al. 2016, Figure 6): deeper plain nets train worse; residual nets do not.

The claim. Adding layers to a plain convolutional network (with batch norm, so the signal does not
vanish) makes its *training* error higher, not just its test error: it is not overfitting, the optimiser
fails to use the extra depth. With shortcut connections the same 56 layers train to a lower error than 20.

What is run. ``plain20-cifar10``, ``plain56-cifar10``, ``resnet20-cifar10`` and ``resnet56-cifar10``, each
through the ordinary engine into its own run folder under ``out/``, with the same budget: the same
training images (``train_size``, the first N), epochs, batches, learning-rate schedule, augmentation and
seed. For each epoch we record the training error (on the augmented mini-batches, in training mode, as
in the paper's thin curves) and the test error (all test images after the epoch, the bold curves). The
test images select nothing. One figure: plain nets on the left, ResNets on the right, as in Figure 6.

What it does not say. The budget is far smaller than the paper's 164 epochs on 50,000 images, so the
errors are higher; the ordering is the finding.

Measured verdict (``deepzoo experiment degradation --epochs 8 --train-size 10000 --data-dir ../shared/data``,
2026-12-02, machine B of the README's table: 2 cores of a CPU with AMX; benchmarks/results/degradation.json
and degradation.png): the claim holds. After 8 epochs on 10,000 images, plain-56 ends at 70.2% training error
against 36.8% for plain-20 (test 68.8% against 35.5%), while ResNet-56 trains better than ResNet-20 (29.4%
against 31.3% training error; test 31.7% against 30.9%, within the noise of 1,000 test images). The deeper
plain net is worse on the training set itself, so it is an optimisation failure, not overfitting.

    deepzoo experiment degradation --quick                # the packaged sample, 3 epochs: about 30 s
    deepzoo experiment degradation --epochs 8 --train-size 10000 --data-dir ../shared/data
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

from deepzoo.errors import DeepzooError
from deepzoo.files import atomic_write_bytes, atomic_write_json
from deepzoo.report.format import markdown_table
from deepzoo.report.plots import save_png

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

NETS = ("plain20-cifar10", "plain56-cifar10", "resnet20-cifar10", "resnet56-cifar10")
EPOCHS = 8
QUICK_EPOCHS = 3


def run(out, epochs: int | None = None, train_size: int = 10000, quick: bool = False, data_dir=None, seed: int = 0,
        progress: bool = True, log=print) -> dict:
    """Train the four nets of NETS with one budget (``epochs``: 8, or 3 with ``quick``, on the packaged
    sample); write degradation.{json,md,png} into ``out`` and return what the JSON holds."""
    from deepzoo.train.run import train
    out = Path(out)
    if epochs is None:
        epochs = QUICK_EPOCHS if quick else EPOCHS
    if epochs < 1:
        raise DeepzooError(f"--epochs must be at least 1, got {epochs}")
    sets = [f"train.epochs={epochs}", f"seed={seed}", "data.val_size=0"]
    sets += ["data.sample=true", "data.train_size=0"] if quick else [f"data.train_size={train_size}"]
    result = {"epochs": epochs, "train_size": None if quick else train_size, "quick": quick, "seed": seed,
              "nets": {}}
    for name in NETS:
        log(f"== {name}")
        curve = []

        def record(trainer, row, curve=curve):
            test = trainer.evaluate(trainer.task.test, "test")
            curve.append({"epoch": row["epoch"], "train_error": round(1 - row["train_acc"], 4),
                          "test_error": round(1 - test["test_acc"], 4), "train_seconds": row["train_seconds"]})
        summary = train(name, sets=sets, out=out / name, data_dir=data_dir, progress=progress, log=log,
                        callbacks=[record])
        result["nets"][name] = {"parameters": summary["parameters"], "train_seconds": summary["train_seconds"],
                                "final_train_error": curve[-1]["train_error"],
                                "final_test_error": curve[-1]["test_error"], "curve": curve}
    n = result["nets"]
    result["findings"] = {
        "plain56_trains_worse_than_plain20":
            n["plain56-cifar10"]["final_train_error"] > n["plain20-cifar10"]["final_train_error"],
        "resnet56_trains_better_than_plain56":
            n["resnet56-cifar10"]["final_train_error"] < n["plain56-cifar10"]["final_train_error"],
    }
    atomic_write_json(out / "degradation.json", result)
    atomic_write_bytes(out / "degradation.md", markdown(result).encode("utf-8"))
    plot(result, out / "degradation.png")
    return result


def plot(result: dict, path: Path) -> Path:
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, family, title in ((axes[0], "plain", "plain nets"), (axes[1], "resnet", "ResNets")):
        for depth, colour in (("20", "tab:orange"), ("56", "tab:red")):
            name = f"{family}{depth}-cifar10"
            curve = result["nets"][name]["curve"]
            epochs = [c["epoch"] for c in curve]
            label = f"{'plain' if family == 'plain' else 'ResNet'}-{depth}"
            ax.plot(epochs, [100 * c["train_error"] for c in curve], "--", color=colour, lw=1,
                    label=f"{label} train")
            ax.plot(epochs, [100 * c["test_error"] for c in curve], "-", color=colour, lw=2.2,
                    label=f"{label} test")
        ax.set(title=title, xlabel="epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_ylabel("error (%)")
    size = "the packaged sample" if result["quick"] else f"{result['train_size']:,} training images"
    fig.suptitle(f"Degradation on CIFAR-10: same budget ({result['epochs']} epochs, {size}); "
                 f"dashed: training error, solid: test error")
    return save_png(fig, path)


HEADER = ["net", "parameters", "final training error", "final test error", "training time"]


def _rows(result: dict) -> list[list[str]]:
    return [[name, f"{r['parameters']:,}", f"{100 * r['final_train_error']:.2f}%",
             f"{100 * r['final_test_error']:.2f}%", f"{r['train_seconds']:.0f}s"]
            for name, r in result["nets"].items()]


def verdict(result: dict) -> str:
    """One line from the final training errors: does depth hurt the plain net, and do shortcuts fix it."""
    f, n = result["findings"], result["nets"]

    def err(name):
        return f"{100 * n[name]['final_train_error']:.1f}%"
    return (f"plain-56 trains worse than plain-20: {'yes' if f['plain56_trains_worse_than_plain20'] else 'no'} "
            f"({err('plain56-cifar10')} vs {err('plain20-cifar10')} training error); ResNet-56 trains better than "
            f"plain-56: {'yes' if f['resnet56_trains_better_than_plain56'] else 'no'} ({err('resnet56-cifar10')}; "
            f"ResNet-20 {err('resnet20-cifar10')})")


def markdown(result: dict) -> str:
    size = "the packaged sample" if result["quick"] else f"{result['train_size']:,} CIFAR-10 training images"
    lines = [f"# Degradation: plain-20/56 vs ResNet-20/56, {result['epochs']} epochs on {size}", "",
             markdown_table(_rows(result), HEADER)]
    return "\n".join(lines + ["", verdict(result), ""])


def format_table(result: dict) -> str:
    from deepzoo.report.format import table
    return table(_rows(result), HEADER) + "\n" + verdict(result)
