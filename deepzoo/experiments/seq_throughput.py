r"""RNN vs Transformer: training throughput as the sequence grows.

The claim. The notes present the Transformer as the answer to the RNN's sequential bottleneck. An RNN
computes h_t = f(x_t, h_{t-1}): step t cannot start before step t - 1 has finished, so a sequence of
length L costs L dependent steps, each a small (B x H) @ (H x 4H) product that leaves most of the
machine idle. Self-attention computes every position at once,

    softmax(Q K^T / sqrt(d)) V     with Q, K, V = X W_q, X W_k, X W_v   for all L positions together,

so a training step is a handful of large matrix products over B * L rows, whatever L is. The price is
the score matrix: L x L per head, so attention's work per token grows linearly with L, and at long
enough L it dominates.

What is measured. Two language models of the same width, trained on random tokens (the speed of a
step does not depend on what the tokens are); at width 128 the Transformer has 495k parameters and the
LSTM 297k (the plot's legend gives both):

- ``lstm``: deepzoo's RNNLanguageModel, 2 LSTM layers of width ``width`` (the fused ``nn.LSTM``);
- ``transformer``: deepzoo's GPT, 2 pre-norm causal blocks of width ``width``, 4 heads, FFN 4x
  (``F.scaled_dot_product_attention``).

For each length L, a batch of ``batch`` sequences of L tokens: forward, cross-entropy on every
position, backward and an Adam step. The figure is training tokens per second (B * L / median step
time over ``steps`` timed steps, after ``warmup`` untimed ones), for both models in the same process
on the same threads. With B fixed, tokens per step grow with L. The Transformer turns them into larger
products, while the LSTM adds sequential steps of the same small size. On hardware with many idle
parallel units (a GPU) one expects the Transformer's step time to stay nearly flat in L until the
L x L scores start to cost, and the LSTM's to grow linearly (not measured here: no GPU).

What this CPU shows. Measured on 2 cores (batch 16, width 128, ``deepzoo experiment seq-throughput``),
the fused LSTM trained *faster* than the Transformer at every length from 16 to 512 (ratio
transformer / lstm 0.58 to 0.81), and both got faster per token as L grew. Two cores have no idle
units for the Transformer's parallelism to fill, oneDNN's fused LSTM keeps them busy even with 16 rows
per step, and the Transformer does more arithmetic per token (a 4x-wide FFN and the attention scores).
So the sequential bottleneck is a limit on latency and on parallel hardware, not on arithmetic: on a
small CPU it costs little. The ratio row of the table is the figure to read.

    deepzoo experiment seq-throughput                 # plot + table in runs/experiment-seq-throughput
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import matplotlib
import torch
import torch.nn.functional as F

from deepzoo.errors import DeepzooError
from deepzoo.files import atomic_write_json
from deepzoo.report.plots import save_png
from deepzoo.models.gpt import GPT
from deepzoo.models.rnn import RNNLanguageModel

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LENGTHS = (16, 32, 64, 128, 256, 512)
VOCAB = 256
MODELS = ("lstm", "transformer")


def build(name: str, width: int, max_len: int) -> torch.nn.Module:
    if name == "lstm":
        return RNNLanguageModel(VOCAB, embed_dim=width, hidden=width, layers=2, tie=True)
    if name == "transformer":
        return GPT(VOCAB, block_size=max_len, n_layer=2, n_head=4, n_embd=width)
    raise DeepzooError(f"unknown model {name!r} (choose from {', '.join(MODELS)})")


def step_seconds(model: torch.nn.Module, batch: int, length: int, steps: int, warmup: int, seed: int = 0) -> float:
    """Median wall time of one training step (forward, loss, backward, Adam) on random tokens."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    times = []
    for i in range(warmup + steps):
        x = torch.randint(VOCAB, (batch, length + 1), generator=gen)
        start = time.perf_counter()
        logits = model(x[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(out, lengths=LENGTHS, batch: int = 16, width: int = 128, steps: int = 5, warmup: int = 2,
        seed: int = 0) -> dict:
    """Measure both models at every length; write ``seq_throughput.json`` and ``seq_throughput.png``."""
    lengths = sorted(set(int(n) for n in lengths))
    if not lengths or lengths[0] < 2:
        raise DeepzooError(f"lengths must be integers >= 2, got {lengths}")
    for name, value in (("batch", batch), ("width", width), ("steps", steps)):
        if value < 1:
            raise DeepzooError(f"{name} must be >= 1, got {value}")
    if width % 4:
        raise DeepzooError(f"width must be a multiple of the 4 heads, got {width}")
    rows, params = [], {}
    for name in MODELS:
        torch.manual_seed(seed)
        model = build(name, width, lengths[-1])
        params[name] = sum(p.numel() for p in model.parameters())
        for length in lengths:
            seconds = step_seconds(model, batch, length, steps, warmup, seed)
            rows.append({"model": name, "length": length, "step_seconds": seconds,
                         "tokens_per_second": batch * length / seconds})
    speed = {(r["model"], r["length"]): r["tokens_per_second"] for r in rows}
    ratio = {n: speed["transformer", n] / speed["lstm", n] for n in lengths}
    result = {"settings": {"batch": batch, "width": width, "steps": steps, "warmup": warmup, "seed": seed,
                           "threads": torch.get_num_threads(), "torch": torch.__version__},
              "parameters": params, "rows": rows, "transformer_over_lstm": ratio}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "seq_throughput.json", result)
    _plot(result, out / "seq_throughput.png")
    return result


def _plot(result: dict, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in MODELS:
        pts = [(r["length"], r["tokens_per_second"]) for r in result["rows"] if r["model"] == name]
        ax.plot(*zip(*pts), marker="o", label=f"{name} ({result['parameters'][name] / 1e3:.0f}k params)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("sequence length L (batch of %d sequences)" % result["settings"]["batch"])
    ax.set_ylabel("training tokens / second")
    ax.set_title("LSTM vs Transformer: training throughput vs sequence length")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    save_png(fig, path, dpi=120)


def format_table(result: dict) -> str:
    lengths = sorted({r["length"] for r in result["rows"]})
    speed = {(r["model"], r["length"]): r["tokens_per_second"] for r in result["rows"]}
    lines = ["tokens/s     " + "".join(f"{'L=' + str(n):>10}" for n in lengths)]
    for name in MODELS:
        lines.append(f"{name:<13}" + "".join(f"{speed[name, n]:>10,.0f}" for n in lengths))
    lines.append(f"{'ratio T/L':<13}" + "".join(f"{result['transformer_over_lstm'][n]:>10.2f}" for n in lengths))
    return "\n".join(lines)
