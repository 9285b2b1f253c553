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
small CPU it costs little. The ratio row of the table is the figure to read. Measured verdict, then: the
claim does not hold on this CPU (benchmarks/results/seq_throughput.json, 2 threads; the machine was not
recorded); it is untested on a GPU.

``--quick`` (lengths 16, 64 and 256, batch 8, width 64, 3 timed steps a point; seconds) times the same two
models smaller: it checks the machinery and shows the ratio's trend on this machine; it joins
``deepzoo tour``. Timings move with whatever else the machine runs.

    deepzoo experiment seq-throughput --quick         # seconds
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
from deepzoo.files import atomic_write_bytes, atomic_write_json
from deepzoo.report.format import markdown_table
from deepzoo.report.plots import save_png
from deepzoo.models.gpt import GPT
from deepzoo.models.rnn import RNNLanguageModel

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LENGTHS = (16, 32, 64, 128, 256, 512)
DEFAULT = dict(lengths=LENGTHS, batch=16, width=128, steps=5, warmup=2)
QUICK = dict(lengths=(16, 64, 256), batch=8, width=64, steps=3, warmup=1)
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


def run(out, lengths=None, batch: int | None = None, width: int | None = None, steps: int | None = None,
        warmup: int | None = None, seed: int = 0, quick: bool = False, progress: bool = True, log=print) -> dict:
    """Measure both models at every length; write ``seq_throughput.json``, ``seq_throughput.md`` (the table)
    and ``seq_throughput.png``; return what the JSON holds. Unset settings take DEFAULT's values, or QUICK's
    with ``quick``."""
    from tqdm.auto import tqdm

    from deepzoo.figures import machine_json
    started = time.perf_counter()
    s = {**(QUICK if quick else DEFAULT)}
    for key, value in (("lengths", lengths), ("batch", batch), ("width", width), ("steps", steps),
                       ("warmup", warmup)):
        if value is not None:
            s[key] = value
    lengths, batch, width, steps, warmup = s["lengths"], s["batch"], s["width"], s["steps"], s["warmup"]
    lengths = sorted(set(int(n) for n in lengths))
    if not lengths or lengths[0] < 2:
        raise DeepzooError(f"lengths must be integers >= 2, got {lengths}")
    for name, value in (("batch", batch), ("width", width), ("steps", steps)):
        if value < 1:
            raise DeepzooError(f"{name} must be >= 1, got {value}")
    if width % 4:
        raise DeepzooError(f"width must be a multiple of the 4 heads, got {width}")
    rows, params = [], {}
    bar = tqdm(total=len(MODELS) * len(lengths), unit="point", disable=not progress, leave=False)
    for name in MODELS:
        torch.manual_seed(seed)
        model = build(name, width, lengths[-1])
        params[name] = sum(p.numel() for p in model.parameters())
        for length in lengths:
            bar.set_description(f"{name} L={length}")
            seconds = step_seconds(model, batch, length, steps, warmup, seed)
            rows.append({"model": name, "length": length, "step_seconds": seconds,
                         "tokens_per_second": batch * length / seconds})
            bar.update(1)
            log(f"{name:<11} L={length:<5} {batch * length / seconds:>10,.0f} training tokens/s")
    bar.close()
    speed = {(r["model"], r["length"]): r["tokens_per_second"] for r in rows}
    ratio = {n: speed["transformer", n] / speed["lstm", n] for n in lengths}
    result = {"quick": quick,
              "settings": {"batch": batch, "width": width, "steps": steps, "warmup": warmup, "seed": seed,
                           "threads": torch.get_num_threads(), "torch": torch.__version__},
              "ran_under": machine_json(), "parameters": params, "rows": rows, "transformer_over_lstm": ratio}
    result["findings"] = findings(result)
    result["seconds"] = round(time.perf_counter() - started, 1)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "seq_throughput.json", result)
    atomic_write_bytes(out / "seq_throughput.md", markdown(result).encode("utf-8"))
    _plot(result, out / "seq_throughput.png")
    return result


def findings(result: dict) -> dict:
    """The ratio Transformer / LSTM (training tokens/s) at its lowest and highest, and the lengths where the
    Transformer was the faster one."""
    ratio = {int(n): r for n, r in result["transformer_over_lstm"].items()}
    low, high = min(ratio, key=ratio.get), max(ratio, key=ratio.get)
    return {"lowest_ratio": {"length": low, "ratio": round(ratio[low], 3)},
            "highest_ratio": {"length": high, "ratio": round(ratio[high], 3)},
            "transformer_faster_at": [n for n in sorted(ratio) if ratio[n] > 1]}


def verdict(result: dict) -> str:
    """One line from the findings: where the Transformer trained faster, and the ratio's range."""
    f = result["findings"]
    faster = f["transformer_faster_at"]
    lengths = sorted(int(n) for n in result["transformer_over_lstm"])
    where = ("at no length" if not faster else "at every length" if len(faster) == len(lengths)
             else "at L = " + ", ".join(map(str, faster)))
    return (f"the Transformer trained more tokens/s than the LSTM {where} of {', '.join(map(str, lengths))}; "
            f"Transformer / LSTM from {f['lowest_ratio']['ratio']:.2f} (L = {f['lowest_ratio']['length']}) to "
            f"{f['highest_ratio']['ratio']:.2f} (L = {f['highest_ratio']['length']}) on "
            f"{result['settings']['threads']} thread(s)")


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


def _rows(result: dict) -> tuple[list[list[str]], list[str]]:
    lengths = sorted({r["length"] for r in result["rows"]})
    speed = {(r["model"], r["length"]): r["tokens_per_second"] for r in result["rows"]}
    ratio = {int(n): v for n, v in result["transformer_over_lstm"].items()}
    rows = [[name] + [f"{speed[name, n]:,.0f}" for n in lengths] for name in MODELS]
    rows.append(["ratio T/L"] + [f"{ratio[n]:.2f}" for n in lengths])
    return rows, ["tokens/s"] + [f"L={n}" for n in lengths]


def markdown(result: dict) -> str:
    s, m, p = result["settings"], result["ran_under"], result["parameters"]
    rows, header = _rows(result)
    lines = ["# LSTM vs Transformer: training tokens per second against the sequence length L", "",
             f"2-layer LSTM ({p['lstm']:,} parameters) and 2-block Transformer ({p['transformer']:,}), width "
             f"{s['width']}, batches of {s['batch']} sequences, median of {s['steps']} timed steps after "
             f"{s['warmup']} untimed; {m['cpu']}, {s['threads']} thread(s), kernels {m['isa']['aten']}; "
             f"{result['seconds']:.0f} s in all.", "",
             markdown_table(rows, header)]
    return "\n".join(lines + ["", verdict(result), ""])


def format_table(result: dict) -> str:
    from deepzoo.report.format import table
    rows, header = _rows(result)
    return table(rows, header) + "\n" + verdict(result)
