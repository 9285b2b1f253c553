r"""LayerNorm: the same Transformer and the same deep MLP trained with and without it, over a sweep of learning rates.

The claim. The notes (003, "Transformer normalisation": layer normalisation makes each sample's feature
vector mean 0 and variance 1, and so "stabilises training and speeds up convergence"; every sub-layer of
the Transformer has "a residual connection and a layer normalisation") say that LayerNorm makes training
stable and fast.

The maths. For one position's feature vector h ∈ R^E,

    LN(h) = γ ⊙ (h - μ) / √(σ² + ε) + β,     μ = (1/E) Σ_i h_i,   σ² = (1/E) Σ_i (h_i - μ)²,

so LN(c·h) = LN(h) for every c > 0: whatever scale the previous layers produce, the next one sees
unit-scale inputs, and its gradient is scaled by 1/σ: ∂LN(h)/∂h = (γ/σ) (I - 1/E - ĥ ĥ^T / E), with ĥ
the normalised h. Two consequences. Forward, activations cannot drift to huge or tiny scales over depth
(or over training, as weights grow), so the softmax of attention and of the output does not saturate.
Backward, a weight update that inflates a layer's output also shrinks the gradient that reaches it,
a built-in brake on the runaway that makes a too-large learning rate diverge. Without LN nothing
bounds either: the residual stream of a Transformer, x_{l+1} = x_l + F_l(x_l), grows with every layer
and every step that pushes it.

What is run. Two models, each with and without LayerNorm and nothing else changed (same
initialisation of every shared weight: the same seed, and LayerNorm's γ = 1, β = 0 draw no random
numbers):

- ``transformer``: deepzoo's GPT (``deepzoo/models/gpt.py``: 4 pre-norm blocks, width 64, 4 heads,
  context 64), a character language model on the packaged tiny-Shakespeare sample (101,614 characters,
  65 symbols); "without" replaces its 9 LayerNorms (two per block and the final one) by the identity.
  Adam, as Transformers are trained (no warm-up, no gradient clipping: either would hide what LN does);
  learning rates 1e-4 to 3e-2; 400 steps of 32 random windows; target loss 2.5 nats per character.
- ``mlp``: 6 hidden layers of 256 ReLU units (PyTorch's default initialisation), on the packaged MNIST
  sample (5,000 images); "with" puts a LayerNorm after each hidden linear layer, before the ReLU. SGD
  with momentum 0.9, as MLPs are classically trained; learning rates 1e-3 to 1; 400 steps of 64 images;
  target loss 0.3 nats.

For every run, from the training loss of every step (each on a fresh batch): *final loss*, the mean over
the last 10% of the steps; *steps to target*, the first step at which the mean of the last 10 losses is
at most the target; *diverged*, the loss became NaN or infinite, or rose above 3 ln K (three times the
loss of a uniform guess over the K classes: 12.5 for the 65 characters, 6.9 for the 10 digits), where
training stops.

Why the MLP needs it here. PyTorch's default initialisation draws W ~ U(-1/√n, 1/√n), variance 1/(3n),
so a layer's pre-activation has second moment E[x²]/3, and after a ReLU half of that: each hidden layer
divides the signal's second moment by 6. After 6 layers the outputs are ~6^-3 ≈ 1/216 of the input's
(standard deviation ÷ 15): the logits are nearly constant, the loss sits at ln 10 = 2.30 and the
gradients are as small. LayerNorm restores unit scale at every layer, whatever the weights.

Measured verdict (``deepzoo experiment layernorm``: 26 runs, 253 s in all, one thread of a 2-core AMD EPYC
with its kernels capped to AVX2 by ``python -m deepzoo.cputarget avx2``, beside another job;
benchmarks/results/layernorm.{json,md,png}; one seed):

- Transformer (Adam): the claim holds on both counts. With LayerNorm the final loss is 0.32-0.54 nats per
  character lower at every rate where both train (best 2.035 at 3e-3 against 2.359), the target 2.5 is
  reached at 4 of the 6 rates (in 91 steps at best) against 1 (238 steps), and at 1e-2 and 3e-2 the
  model without LayerNorm diverges (at steps 19 and 3) while the one with it trains (2.41 and 2.75).
- MLP (SGD with momentum): "speeds up convergence" holds strongly, "stabilises" does not. With LayerNorm
  the target 0.3 is reached in 93-144 steps at rates 1e-3 to 3e-2; without it the net does not leave
  chance (2.30) at 1e-3 to 1e-2 in 400 steps (the shrinking signal above) and reaches 0.48 at 3e-2. At 0.1
  both just reach the target (371 and 376 steps); at 0.3 and 1 both diverge, the normalised net sooner
  (steps 5 and 3, against 168 and 46). LayerNorm did not widen the range of stable rates for SGD here; it
  made the small rates work.

Where it may differ: with an initialisation that keeps the scale (He's, variance 2/n) the MLP without
LayerNorm would start training at small rates too (not measured); longer training, deeper stacks and the
original post-norm Transformer lean on LayerNorm more; the figures are per step, so a GPU would change
the time, not the curves.

    deepzoo experiment layernorm --quick          # seconds
    deepzoo experiment layernorm                  # 26 runs, about 4 minutes on one CPU thread
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import matplotlib
import torch
import torch.nn.functional as F
from torch import nn

from deepzoo.errors import DeepzooError
from deepzoo.files import atomic_write_bytes, atomic_write_json
from deepzoo.nn.attention import LayerNorm
from deepzoo.report.format import markdown_table
from deepzoo.report.plots import save_png

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

MODELS = ("transformer", "mlp")
SETTINGS = {
    "transformer": dict(lrs=(1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2), steps=400, target=2.5, optimizer="adam",
                        layers=4, width=64, batch=32, context=64),
    "mlp": dict(lrs=(1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0), steps=400, target=0.3, optimizer="sgd",
                layers=6, width=256, batch=64),
}
QUICK = {
    "transformer": dict(lrs=(1e-3, 1e-2, 1e-1), steps=40, layers=2, width=32),
    "mlp": dict(lrs=(1e-2, 1e-1, 1.0), steps=40, layers=3, width=64),
}
SMOOTH = 10                       # steps to target: the mean of the last 10 losses must reach the target


# --- the two models, with and without LayerNorm ------------------------------------------------------

def transformer(vocab: int, layers: int, width: int, context: int, norm: bool) -> nn.Module:
    """deepzoo's GPT; with ``norm=False`` its LayerNorms (norm1 and norm2 of every block, and the final
    one) become identities, so x_{l+1} = x_l + Attention(x_l), then + FFN(.), unnormalised."""
    from deepzoo.models.gpt import GPT
    model = GPT(vocab, block_size=context, n_layer=layers, n_head=4, n_embd=width)
    if not norm:
        for block in model.blocks:
            block.norm1, block.norm2 = nn.Identity(), nn.Identity()
        model.norm = nn.Identity()
    return model


def mlp(inputs: int, classes: int, layers: int, width: int, norm: bool) -> nn.Module:
    """``layers`` hidden layers Linear -> [LayerNorm] -> ReLU, then a linear output layer."""
    stack: list[nn.Module] = [nn.Flatten()]
    for i in range(layers):
        stack.append(nn.Linear(inputs if i == 0 else width, width))
        if norm:
            stack.append(LayerNorm(width))
        stack.append(nn.ReLU())
    stack.append(nn.Linear(width, classes))
    return nn.Sequential(*stack)


# --- the data: a batch sampler per model ---------------------------------------------------------------

def _shakespeare(batch: int, context: int):
    """(vocabulary size, sample(generator) -> (windows (B, context), next characters (B, context)))."""
    from deepzoo.data.registry import samples_dir
    text = (samples_dir() / "text" / "tinyshakespeare" / "sample-input.txt").read_text(encoding="utf-8")
    chars = sorted(set(text))
    ids = torch.tensor([chars.index(c) for c in text])

    def sample(g):
        starts = torch.randint(0, len(ids) - context - 1, (batch,), generator=g)
        rows = torch.stack([ids[s:s + context + 1] for s in starts.tolist()])
        return rows[:, :-1], rows[:, 1:]
    return len(chars), sample


def _mnist(batch: int):
    """(classes, sample(generator) -> (images (B, 784) in [0, 1], labels (B,)))."""
    import numpy as np

    from deepzoo.data.mnist import load_mnist
    images, labels = load_mnist(sample=True)["train"]
    x = torch.from_numpy(np.asarray(images, dtype=np.float32).reshape(len(images), -1) / 255.0)
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64))

    def sample(g):
        idx = torch.randint(0, len(x), (batch,), generator=g)
        return x[idx], y[idx]
    return 10, sample


# --- one training run ------------------------------------------------------------------------------------

def train_run(name: str, norm: bool, lr: float, settings: dict, seed: int = 0, on_step=None) -> dict:
    """Train model ``name`` (with or without LayerNorm) at learning rate ``lr`` for settings["steps"] steps;
    return its loss curve, final loss, steps to target and whether (and where) it diverged."""
    s = settings
    if name == "transformer":
        classes, sample = _shakespeare(s["batch"], s["context"])
        torch.manual_seed(seed)
        model = transformer(classes, s["layers"], s["width"], s["context"], norm)
    else:
        classes, sample = _mnist(s["batch"])
        torch.manual_seed(seed)
        model = mlp(784, classes, s["layers"], s["width"], norm)
    if s["optimizer"] == "adam":
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    bound = 3 * math.log(classes)
    g = torch.Generator().manual_seed(seed)                      # the same batches for every run
    losses, diverged_at, start = [], None, time.perf_counter()
    model.train()
    for step in range(1, s["steps"] + 1):
        x, y = sample(g)
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, classes), y.reshape(-1))
        value = loss.item()
        if not math.isfinite(value) or value > bound:
            diverged_at = step
            break
        losses.append(value)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if on_step is not None:
            on_step()
    smoothed = [sum(losses[max(0, i - SMOOTH + 1):i + 1]) / len(losses[max(0, i - SMOOTH + 1):i + 1])
                for i in range(len(losses))]
    reached = next((i + 1 for i, v in enumerate(smoothed) if i + 1 >= SMOOTH and v <= s["target"]), None)
    tail = losses[-max(1, s["steps"] // 10):]
    return {"model": name, "layernorm": norm, "lr": lr, "steps": len(losses), "diverged_at": diverged_at,
            "final_loss": None if diverged_at or not tail else round(sum(tail) / len(tail), 4),
            "steps_to_target": reached, "first_loss": round(losses[0], 4) if losses else None,
            "train_seconds": round(time.perf_counter() - start, 2), "bound": round(bound, 3),
            "parameters": sum(p.numel() for p in model.parameters()),
            "curve": [round(v, 4) for v in smoothed[SMOOTH - 1::SMOOTH]]}


def run(out, models=MODELS, quick: bool = False, seed: int = 0, progress: bool = True, log=print) -> dict:
    """Every (model, with/without LayerNorm, learning rate) run; write layernorm.{json,md,png} into
    ``out`` and return what the JSON holds."""
    from tqdm.auto import tqdm

    from deepzoo.figures import machine_json
    started = time.perf_counter()
    models = list(models)
    for name in models:
        if name not in MODELS:
            raise DeepzooError(f"--models: unknown model {name!r} (choose from {', '.join(MODELS)})")
    settings = {name: {**SETTINGS[name], **(QUICK[name] if quick else {})} for name in models}
    jobs = [(name, norm, lr) for name in models for lr in settings[name]["lrs"] for norm in (True, False)]
    bar = tqdm(total=sum(settings[name]["steps"] for name, _, _ in jobs), unit="step", disable=not progress,
               leave=False)
    rows = []
    for name, norm, lr in jobs:
        bar.set_description(f"{name} {'with' if norm else 'without'} LN, lr {lr:g}")
        start = bar.n
        rows.append(train_run(name, norm, lr, settings[name], seed, on_step=lambda: bar.update(1)))
        bar.n = start + settings[name]["steps"]                 # a diverged run stops early
        r = rows[-1]
        log(f"{name:<11} {'with' if norm else 'without':<7} LN  lr {lr:<7g} "
            + (f"diverged at step {r['diverged_at']}" if r["diverged_at"] else f"final loss {r['final_loss']:.3f}"))
    bar.close()
    result = {"quick": quick, "seed": seed, "smooth": SMOOTH, "settings": settings, "ran_under": machine_json(),
              "rows": rows}
    result["findings"] = findings(result)
    result["seconds"] = round(time.perf_counter() - started, 1)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "layernorm.json", result)
    atomic_write_bytes(out / "layernorm.md", markdown(result).encode("utf-8"))
    plot(result, out / "layernorm.png")
    return result


def findings(result: dict) -> dict:
    """Per model and with/without LN: the runs that diverged, the best final loss (and its rate), the rates
    that reached the target and the fewest steps it took."""
    out = {}
    for name in result["settings"]:
        for norm in (True, False):
            rows = [r for r in result["rows"] if r["model"] == name and r["layernorm"] == norm]
            ok = [r for r in rows if r["final_loss"] is not None]
            best = min(ok, key=lambda r: r["final_loss"]) if ok else None
            reached = [r for r in rows if r["steps_to_target"]]
            out[f"{name} {'with' if norm else 'without'} LayerNorm"] = {
                "diverged_at_lrs": [r["lr"] for r in rows if r["diverged_at"]],
                "best_final_loss": best and best["final_loss"], "best_lr": best and best["lr"],
                "lrs_reaching_target": [r["lr"] for r in reached],
                "fewest_steps_to_target": min((r["steps_to_target"] for r in reached), default=None)}
    return out


# --- the outputs -----------------------------------------------------------------------------------------

HEADER = ["model", "learning rate", "with LN: final loss", "with LN: steps to target", "without LN: final loss",
          "without LN: steps to target"]


def _cell(r: dict) -> tuple[str, str]:
    if r["diverged_at"]:
        return f"diverged (step {r['diverged_at']})", "-"
    return f"{r['final_loss']:.3f}", str(r["steps_to_target"]) if r["steps_to_target"] else "never"


def _rows(result: dict) -> list[list[str]]:
    by = {(r["model"], r["layernorm"], r["lr"]): r for r in result["rows"]}
    return [[f"{name} (target {s['target']:g})", f"{lr:g}", *_cell(by[name, True, lr]), *_cell(by[name, False, lr])]
            for name, s in result["settings"].items() for lr in s["lrs"]]


def verdict(result: dict) -> str:
    lines = []
    for key, f in result["findings"].items():
        lines.append(f"{key}: diverged at lr {', '.join(f'{x:g}' for x in f['diverged_at_lrs']) or 'none'}; "
                     + (f"best final loss {f['best_final_loss']:.3f} (lr {f['best_lr']:g}); " if f["best_lr"] else "")
                     + (f"target reached at {len(f['lrs_reaching_target'])} rate(s), in {f['fewest_steps_to_target']} "
                        f"steps at best" if f["lrs_reaching_target"] else "target never reached"))
    return "\n".join(lines)


def markdown(result: dict) -> str:
    m = result["ran_under"]
    lines = ["# LayerNorm: the same models with and without it, over a sweep of learning rates", "",
             "; ".join(f"{name}: {s['layers']} layers of width {s['width']}, {s['optimizer']}, {s['steps']} steps, "
                       f"target {s['target']:g}" for name, s in result["settings"].items())
             + f"; {m['cpu']}, {m['threads']} thread(s), kernels {m['isa']['aten']}; {result['seconds']:.0f} s in all.", "",
             markdown_table(_rows(result), HEADER)]
    return "\n".join(lines + [""] + verdict(result).split("\n") + [""])


def format_table(result: dict) -> str:
    from deepzoo.report.format import table
    return table(_rows(result), HEADER) + "\n" + verdict(result)


def plot(result: dict, path: Path) -> Path:
    names = list(result["settings"])
    fig, axes = plt.subplots(2, len(names), figsize=(5.5 * len(names), 7), squeeze=False, sharex="col")
    for col, name in enumerate(names):
        s = result["settings"][name]
        top, bottom = axes[0, col], axes[1, col]
        for norm, colour in ((True, "tab:green"), (False, "tab:purple")):
            rows = [r for r in result["rows"] if r["model"] == name and r["layernorm"] == norm]
            label = "with LayerNorm" if norm else "without"
            ok = [r for r in rows if not r["diverged_at"]]
            top.plot([r["lr"] for r in ok], [r["final_loss"] for r in ok], "o-", color=colour, lw=2, label=label)
            reached = [r for r in ok if r["steps_to_target"]]
            bottom.plot([r["lr"] for r in reached], [r["steps_to_target"] for r in reached], "o-", color=colour,
                        lw=2, label=label)
            bad = [r["lr"] for r in rows if r["diverged_at"]]
            if bad:                                     # at ln K (a uniform guess), nudged apart to show both
                top.plot(bad, [rows[0]["bound"] / 3 * (1.04 if norm else 0.96)] * len(bad), "x", color=colour,
                         ms=11, mew=3, label=f"{label}: diverged")
        top.axhline(s["target"], color="grey", ls="--", lw=1, label=f"target {s['target']:g}")
        top.set(ylabel=f"final training loss (mean of the last {s['steps'] // 10} steps)",
                title=f"{name}: {s['layers']} layers, width {s['width']}, {s['optimizer']}, {s['steps']} steps")
        bottom.set(xlabel="learning rate", ylabel=f"steps to target loss {s['target']:g}")
        bottom.set_ylim(0, s["steps"])
        for ax in (top, bottom):
            ax.set_xscale("log")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.suptitle("LayerNorm: final loss and speed against the learning rate (x: diverged, plotted at ln K; "
                 f"a missing point below: target not reached){' (quick)' if result['quick'] else ''}", fontsize=10)
    return save_png(fig, path)
