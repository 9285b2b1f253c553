r"""Without activations, a deep network is one linear layer: depth 1-4, identity vs ReLU.

The claim. The notes (001: "without activation functions a multi-layer network degenerates into a
single layer"; 004, on deep networks: each layer "uses a non-linear activation to introduce non-linear
features") say that the non-linearity is what depth buys.

The maths. Let the activation be the identity. A net of L linear layers computes

    z = W_L (W_{L-1} ( ... (W_1 x + b_1) ... ) + b_{L-1}) + b_L
      = (W_L W_{L-1} ... W_1) x + (b_L + W_L b_{L-1} + W_L W_{L-1} b_{L-2} + ... + W_L ... W_2 b_1)
      = W x + b,

one matrix W (out x in) and one bias b, whatever L and the widths are: composition of affine maps is
affine. So an activation-free MLP can represent exactly the functions one linear layer can (when no
hidden layer is narrower than the output, as here; a narrower one would cap the rank of W, i.e. fewer
functions, never more). Training it is a different optimisation problem (the loss is no longer convex
in the weights, and depth changes the gradient dynamics), but its best fit is the linear model's.
With ReLU, f(a) = max(a, 0) between the layers, the product no longer exists: the map is piecewise
linear with as many pieces as the units' on/off patterns, and depth adds regions.

What is run. ``deepzoo.models.mlp.MLP`` with ``activation="none"`` and with ``"relu"``, depth 1 to 4
(the number of linear layers; depth 1 is the same single linear layer for both), hidden layers of
``width`` units (128), on two data sets where a linear model is not enough:

- ``mnist``: the packaged MNIST sample (5,000 training and 1,000 test images, pixels in [0, 1]);
  softmax regression gets about 90% on it, a ReLU MLP several points more;
- ``rings``: two concentric noisy rings in the plane (radius 1 and 2, 1,000 training and 1,000 test
  points); the classes have the same mean, so any linear classifier is near chance (50%).

Every net: Adam at 1e-3, batches of 64, the same epochs (MNIST 10, rings 60) and seed. After training,
each activation-free net is multiplied out (:func:`collapse`, in float64) and the product's outputs are
compared with the net's own (float64 copy) on the test inputs: the largest absolute difference is in the
table, with the product's accuracy, which must equal the net's.

Measured verdict (``deepzoo experiment linear-collapse``: 13 s in all, one thread of a 2-core AMD EPYC with
its kernels capped to AVX2 by ``python -m deepzoo.cputarget avx2``, beside another job;
benchmarks/results/linear-collapse.{json,md,png}; one seed). The claim holds exactly:

- every activation-free net equals its product W x + b to 1.8e-14 (MNIST) and 5e-16 (rings) in float64,
  with the same test accuracy; the 4-layer one has 134,794 parameters for a map that 7,850 express;
- MNIST: one linear layer 88.6% (± 1.0, one standard error of 1,000 test images); without activation,
  depth 2, 3, 4: 88.6%, 88.3%, 86.3%, never above it (the deeper linear nets fit the training images
  better, 94-96% against 92%, and generalise worse); with ReLU 91.7-92.2%;
- rings: one linear layer 50.9%; without activation 44.0-49.9%, chance; with ReLU 97.0-97.7%.

    deepzoo experiment linear-collapse --quick          # a few seconds
    deepzoo experiment linear-collapse                  # about 15 s on one CPU thread
"""

from __future__ import annotations

import copy
import math
import time
from pathlib import Path

import matplotlib
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deepzoo.errors import DeepzooError
from deepzoo.files import atomic_write_bytes, atomic_write_json
from deepzoo.models.mlp import MLP
from deepzoo.nn import layers as scratch
from deepzoo.report.format import markdown_table
from deepzoo.report.plots import save_png

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DATASETS = ("mnist", "rings")
DEPTHS = (1, 2, 3, 4)
EPOCHS = {"mnist": 10, "rings": 60}
QUICK = dict(epochs={"mnist": 2, "rings": 15}, train_size={"mnist": 1000, "rings": 400}, width=32)


# --- multiplying a linear network out ------------------------------------------------------------------

def collapse(model: MLP) -> tuple[torch.Tensor, torch.Tensor]:
    """The single affine map (W, b), in float64, that an activation-free MLP computes: model(x) = x W^T + b.

    Walks the layers in order, starting from the identity map (W = I, b = 0) and composing each linear
    layer y = A h + c with what came before: W <- A W, b <- A b + c. Flatten changes no value and dropout
    is the identity in evaluation mode; any other layer (an activation) is not affine and is refused."""
    W = b = None
    for layer in model.net:
        if isinstance(layer, (nn.Flatten, scratch.Flatten, nn.Dropout, scratch.Dropout)):
            continue
        if not isinstance(layer, (nn.Linear, scratch.Linear)):
            raise DeepzooError(f"the network has a {type(layer).__name__} layer: not one affine map")
        A = layer.weight.detach().double()
        c = layer.bias.detach().double() if layer.bias is not None else torch.zeros(A.shape[0], dtype=torch.float64)
        if W is None:
            W, b = torch.eye(A.shape[1], dtype=torch.float64), torch.zeros(A.shape[1], dtype=torch.float64)
        W, b = A @ W, A @ b + c
    if W is None:
        raise DeepzooError("the network has no linear layer")
    return W, b


# --- the data --------------------------------------------------------------------------------------------

def rings(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n points in the plane, half on a ring of radius 1 (class 0), half on one of radius 2 (class 1),
    at uniform angles, with N(0, 0.25²) noise on the radius."""
    y = torch.arange(n) % 2
    angle = 2 * math.pi * torch.rand(n, generator=generator)
    radius = 1.0 + y + 0.25 * torch.randn(n, generator=generator)
    return torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], dim=1), y


def load(name: str, train_size: int | None = None) -> dict:
    """{"train": (x, y), "test": (x, y)}: float32 inputs (N, features) and int64 labels."""
    if name == "mnist":
        from deepzoo.data.mnist import load_mnist
        d = load_mnist(sample=True)
        split = {k: (torch.from_numpy(np.asarray(x, dtype=np.float32).reshape(len(x), -1) / 255.0),
                     torch.from_numpy(np.asarray(y, dtype=np.int64))) for k, (x, y) in d.items()}
    elif name == "rings":
        g = torch.Generator().manual_seed(12345)
        split = {"train": rings(1000, g), "test": rings(1000, g)}
    else:
        raise DeepzooError(f"unknown data set {name!r} (choose from {', '.join(DATASETS)})")
    if train_size:
        split["train"] = tuple(t[:train_size] for t in split["train"])
    return split


# --- training one net ------------------------------------------------------------------------------------

def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return (model(x).argmax(-1) == y).double().mean().item()


def train(model: nn.Module, data: dict, epochs: int, seed: int, batch: int = 64, lr: float = 1e-3) -> nn.Module:
    x, y = data["train"]
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=g).split(batch):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return model.eval()


def one_net(data: dict, depth: int, activation: str, width: int, epochs: int, seed: int) -> dict:
    """Train an MLP of ``depth`` linear layers; score it; for activation "none", multiply it out and
    compare the product with the net on the test inputs (both in float64)."""
    x, y = data["test"]
    classes = int(data["train"][1].max()) + 1
    torch.manual_seed(seed)
    model = MLP(x.shape[1], [width] * (depth - 1), classes, activation=activation)
    start = time.perf_counter()
    train(model, data, epochs, seed)
    row = {"depth": depth, "activation": activation if depth > 1 else "(one linear layer)",
           "parameters": sum(p.numel() for p in model.parameters()),
           "train_acc": round(accuracy(model, *data["train"]), 4), "test_acc": round(accuracy(model, x, y), 4),
           "train_seconds": round(time.perf_counter() - start, 2)}
    if activation == "none" or depth == 1:
        W, b = collapse(model)
        net64, x64 = copy.deepcopy(model).double(), x.double()
        with torch.no_grad():
            by_net, by_product = net64(x64), x64 @ W.T + b
        row["collapsed"] = {"shape": list(W.shape), "max_abs_difference": (by_net - by_product).abs().max().item(),
                            "test_acc_of_product": round((by_product.argmax(-1) == y).double().mean().item(), 4),
                            "test_acc_of_net_float64": round((by_net.argmax(-1) == y).double().mean().item(), 4)}
    return row


def run(out, datasets=DATASETS, width: int | None = None, epochs: dict | None = None, quick: bool = False,
        seed: int = 0, progress: bool = True, log=print) -> dict:
    """Train depth 1-4 with and without ReLU on each data set; write linear_collapse.{json,md,png}
    into ``out`` and return what the JSON holds."""
    from tqdm.auto import tqdm

    from deepzoo.figures import machine_json
    started = time.perf_counter()
    datasets = list(datasets)
    for name in datasets:
        if name not in DATASETS:
            raise DeepzooError(f"--datasets: unknown data set {name!r} (choose from {', '.join(DATASETS)})")
    width = (QUICK["width"] if quick else 128) if width is None else width
    if not isinstance(width, int) or width < 10:      # narrower than the 10 classes would cap W's rank
        raise DeepzooError(f"--width must be an integer >= 10 (no narrower than the classes), got {width!r}")
    epochs = {**(QUICK["epochs"] if quick else EPOCHS), **(epochs or {})}
    jobs = [(name, depth, act) for name in datasets for depth in DEPTHS for act in (("none", "relu") if depth > 1 else ("none",))]
    bar = tqdm(jobs, disable=not progress, leave=False, unit="net")
    result = {"quick": quick, "width": width, "epochs": {n: epochs[n] for n in datasets}, "seed": seed,
              "batch": 64, "lr": 1e-3, "ran_under": machine_json(), "datasets": {}}
    loaded = {name: load(name, QUICK["train_size"][name] if quick else None) for name in datasets}
    for name, depth, act in bar:
        bar.set_description(f"{name} depth {depth} {act}")
        row = one_net(loaded[name], depth, act, width, epochs[name], seed)
        entry = result["datasets"].setdefault(name, {"train_size": len(loaded[name]["train"][1]),
                                                      "test_size": len(loaded[name]["test"][1]), "rows": []})
        entry["rows"].append(row)
        log(f"{name:<6} depth {depth} {act:<5} test accuracy {row['test_acc']:.4f}")
    result["findings"] = findings(result)
    result["seconds"] = round(time.perf_counter() - started, 1)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "linear_collapse.json", result)
    atomic_write_bytes(out / "linear_collapse.md", markdown(result).encode("utf-8"))
    plot(result, out / "linear_collapse.png")
    return result


def findings(result: dict) -> dict:
    """Per data set: the activation-free nets' best and worst test accuracy minus the single linear layer's,
    how much ReLU adds at its best depth, and the largest product-vs-net difference."""
    out = {}
    for name, entry in result["datasets"].items():
        rows = entry["rows"]
        linear = next(r["test_acc"] for r in rows if r["depth"] == 1)
        none = [r for r in rows if r["depth"] > 1 and r["activation"] == "none"]
        relu = [r for r in rows if r["activation"] == "relu"]
        n = entry["test_size"]
        out[name] = {
            "one_linear_layer": linear,
            "no_activation_best_minus_linear": round(max(r["test_acc"] for r in none) - linear, 4) if none else None,
            "no_activation_worst_minus_linear": round(min(r["test_acc"] for r in none) - linear, 4) if none else None,
            "relu_best_gain": round(max(r["test_acc"] for r in relu) - linear, 4) if relu else None,
            "standard_error": round(math.sqrt(linear * (1 - linear) / n), 4),
            "product_max_abs_difference": max(r["collapsed"]["max_abs_difference"] for r in rows if "collapsed" in r),
            "product_accuracy_equals_net": all(r["collapsed"]["test_acc_of_product"] == r["collapsed"]["test_acc_of_net_float64"]
                                               for r in rows if "collapsed" in r),
        }
    return out


# --- the outputs -----------------------------------------------------------------------------------------

HEADER = ["data", "depth", "activation", "parameters", "train accuracy", "test accuracy",
          "max |net - product|"]


def _rows(result: dict) -> list[list[str]]:
    return [[name, str(r["depth"]), r["activation"], f"{r['parameters']:,}", f"{100 * r['train_acc']:.2f}%",
             f"{100 * r['test_acc']:.2f}%",
             f"{r['collapsed']['max_abs_difference']:.1e}" if "collapsed" in r else "(not linear)"]
            for name, entry in result["datasets"].items() for r in entry["rows"]]


def verdict(result: dict) -> str:
    parts = []
    for name, f in result["findings"].items():
        parts.append(f"{name}: one linear layer {100 * f['one_linear_layer']:.2f}% (± {100 * f['standard_error']:.1f} "
                     f"standard error); without activation, depth 2-4 from {100 * (f['no_activation_worst_minus_linear'] or 0):+.2f} "
                     f"to {100 * (f['no_activation_best_minus_linear'] or 0):+.2f} points of it; ReLU at best "
                     f"{100 * (f['relu_best_gain'] or 0):+.2f} points; every activation-free net "
                     f"equals its product W x + b to {f['product_max_abs_difference']:.1e} (float64), same accuracy: "
                     f"{'yes' if f['product_accuracy_equals_net'] else 'NO'}")
    return "\n".join(parts)


def markdown(result: dict) -> str:
    m = result["ran_under"]
    lines = [f"# Linear collapse: MLPs of depth 1-4 without activation and with ReLU (hidden width {result['width']})",
             "", f"Epochs: {', '.join(f'{k} {v}' for k, v in result['epochs'].items())}; Adam 1e-3, batches of 64, "
             f"seed {result['seed']}; {m['cpu']}, {m['threads']} thread(s), kernels {m['isa']['aten']}; "
             f"{result['seconds']:.0f} s in all.", "",
             markdown_table(_rows(result), HEADER)]
    return "\n".join(lines + [""] + verdict(result).split("\n") + [""])


def format_table(result: dict) -> str:
    from deepzoo.report.format import table
    return table(_rows(result), HEADER) + "\n" + verdict(result)


def plot(result: dict, path: Path) -> Path:
    names = list(result["datasets"])
    fig, axes = plt.subplots(1, len(names), figsize=(5.2 * len(names), 4), squeeze=False)
    for ax, name in zip(axes[0], names):
        rows = result["datasets"][name]["rows"]
        linear = result["findings"][name]["one_linear_layer"]
        for act, colour, label in (("none", "tab:blue", "no activation (identity)"), ("relu", "tab:red", "ReLU")):
            pts = [(1, linear)] + [(r["depth"], r["test_acc"]) for r in rows if r["activation"] == act]
            ax.plot([d for d, _ in pts], [100 * a for _, a in pts], "o-", color=colour, lw=2, label=label)
        se = 100 * result["findings"][name]["standard_error"]
        ax.axhline(100 * linear, color="grey", ls="--", lw=1, label="one linear layer")
        ax.axhspan(100 * linear - 2 * se, 100 * linear + 2 * se, color="grey", alpha=0.15,
                   label="± 2 standard errors (test set)")
        ax.set_xticks(DEPTHS)
        ax.set(xlabel="depth (linear layers)", ylabel="test accuracy (%)",
               title=f"{name} ({result['datasets'][name]['train_size']:,} training examples)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"Test accuracy against depth, MLPs of width {result['width']} without an activation and with ReLU"
                 f"{' (quick)' if result['quick'] else ''}")
    return save_png(fig, path)
