r"""Long-range dependencies: an LSTM and a Transformer of the same size recall a token d positions back.

The claim. The notes (003, on the RNN: "short-term memory is possible, long-term memory is hard"; and on
the Transformer: it was proposed "to solve the long-range dependency problem" of RNNs and LSTMs; 004
repeats both, and adds that the LSTM's gates make it "better on long-term dependencies") say that a
recurrent net struggles to use a token far back, and that self-attention does not.

The maths. An RNN carries everything it knows about x_1..x_t in one state, h_t = F(h_{t-1}, x_t). For
the answer at step T to depend on x_{T-d}, information has to survive d applications of F, and the
gradient that teaches the net to keep it is a product of d Jacobians,

    ∂h_T/∂h_{T-d} = Π_{s=T-d+1..T} ∂h_s/∂h_{s-1},

which shrinks geometrically at initialisation (``deepzoo experiment vanishing`` measures it: about 0.6
per step for an LSTM at PyTorch's default initialisation, so ~1e-11 at d = 50). The LSTM's cell path,
c_s = f_s ⊙ c_{s-1} + i_s ⊙ g_s, can carry it unchanged once the forget gate f learns to stay at 1, but
the signal that teaches it so is that same vanishing product. Self-attention instead connects the last
position to every earlier one in one step,

    out_T = Σ_{j ≤ T} α_{Tj} v_j,     α_{Tj} = softmax_j(q_T · k_j / √D),

so the path from x_{T-d} to the answer has the same length (one layer) for every d, and so does its
gradient. What grows with d is only the number of positions the softmax must choose among.

The task. A sequence of L tokens: distractors drawn uniformly from 16 symbols, one *value* token drawn
from 8 other symbols, exactly d positions before the last, and a query symbol in the last position:

    position   0 ... L-2-d   L-1-d   L-d ... L-2   L-1
    token      distractors   value   distractors   query       answer: which of the 8 values (chance 1/8)

L is the same at every distance (one more than the largest d), so every run reads the same number of
tokens and only the gap changes. The value is marked by its alphabet: no search is needed, only memory.
Training batches are drawn fresh at every step (no sequence is seen twice); accuracy is measured at the
end on 1,000 held-out sequences, the same ones for both nets.

The nets, of the same width W (64) and about the same number of parameters (the table and the plot's
legend give both counts; 35,400 and 35,720 at W = 64):

- ``lstm``: token embedding, one ``nn.LSTM`` layer of width W, a linear read-out of h_T;
- ``transformer``: token embedding plus sinusoidal positions (no parameters), one pre-norm block of
  deepzoo's own ``EncoderLayer`` (4 heads, feed-forward 2W wide: 2W rather than the usual 4W keeps the
  parameter counts equal), a final LayerNorm and the same linear read-out of the last position.

The Transformer is causal: position t attends to positions ≤ t only, so both nets get the same
information at every position, as a left-to-right reader would. For the answer itself this changes
nothing (the last position sees everything either way); it keeps the comparison one of mechanism
(memory vs attention), not of who may look ahead.

The budget. Both nets get the same wall-clock time at each distance (``seconds``, 45 by default), the
comparison the claim asks for; a net that computes a step faster gets more steps, and the table says how many each
took. ``steps`` instead gives both the same number of steps (a machine-independent budget). Adam at
1e-3, batches of 32, gradients clipped to norm 1, seed 0 for both nets at every distance.

Measured verdict (``deepzoo experiment long-range``: 45 s per net and distance, 464 s in all, on one
thread of a 2-core AMD EPYC with its kernels capped to AVX2 by ``python -m deepzoo.cputarget avx2``,
beside another job; benchmarks/results/long-range.{json,md,png}). The claim holds here, sharply:

==========  ==============  ==================
distance d  LSTM            Transformer
==========  ==============  ==================
10          100.0%          100.0%
25          14.4%           100.0%
50          10.8%           100.0%
100         12.2%           87.9%
200         11.2%           100.0%
==========  ==============  ==================

The LSTM recalls the token at d = 10 and is at chance (12.5%) at every distance from 25 to 200, although
it took about twice the Transformer's steps in the same time (1,573-1,888 against 792-878: 24-29 ms a step
against 51-57). The Transformer answers at every distance; its 87.9% at d = 100 is a run still converging
when the time ran out (training loss 0.17; the others are below 0.001). One seed and one budget: with longer
training, a forget-gate bias of 1, or a curriculum from short gaps to long ones, LSTMs do learn such gaps
(Hochreiter & Schmidhuber 1997 bridge lags of 1,000 steps); what 45 s shows is how hard the vanishing
gradient makes it to start. On a GPU the Transformer's steps would cost less relative to the LSTM's
(``deepzoo experiment seq-throughput``), which could only widen the gap.

``--quick`` (W = 32, L = 33, d = 4, 16, 32, 2.5 s a run) checks the machinery in about 20 s; it is no
evidence either way.

    deepzoo experiment long-range --quick          # seconds
    deepzoo experiment long-range                  # 5 distances x 2 nets x 45 s, under 10 minutes
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
from deepzoo.nn.attention import EncoderLayer, LayerNorm, SinusoidalPositions
from deepzoo.report.format import markdown_table
from deepzoo.report.plots import save_png

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DISTRACTORS = 16                   # token ids 0..15
VALUES = 8                         # token ids 16..23: the answer is which one (chance 1/8)
QUERY = DISTRACTORS + VALUES       # token id 24, always the last token
VOCAB = QUERY + 1
MODELS = ("lstm", "transformer")

DISTANCES = (10, 25, 50, 100, 200)
SECONDS = 45.0
QUICK = dict(distances=(4, 16, 32), seconds=2.5, width=32)
EVAL_SEQUENCES = 1000


# --- the task ----------------------------------------------------------------------------------------

def make_batch(batch: int, length: int, distance: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch`` sequences of ``length`` tokens and their answers: (x (B, L) token ids, y (B,) in 0..7).

    x[:, L-1] is the query, x[:, L-1-distance] the value token (id 16 + y), and every
    other position a distractor (ids 0..15), so the answer sits exactly ``distance`` positions before
    the position where it is asked for."""
    if not 1 <= distance <= length - 1:
        raise DeepzooError(f"distance must be from 1 to length - 1 = {length - 1}, got {distance}")
    x = torch.randint(0, DISTRACTORS, (batch, length), generator=generator)
    y = torch.randint(0, VALUES, (batch,), generator=generator)
    x[:, length - 1 - distance] = DISTRACTORS + y
    x[:, length - 1] = QUERY
    return x, y


# --- the two nets --------------------------------------------------------------------------------------

class LSTMReader(nn.Module):
    """Embedding -> one LSTM layer -> linear read-out of the last hidden state h_T."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, width)
        self.lstm = nn.LSTM(width, width, num_layers=1, batch_first=True)
        self.head = nn.Linear(width, VALUES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states, _ = self.lstm(self.embed(x))
        return self.head(states[:, -1])


class TransformerReader(nn.Module):
    """Embedding + sinusoidal positions -> one causal pre-norm block -> LayerNorm -> read-out of position T."""

    def __init__(self, width: int, max_len: int, heads: int = 4) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, width)
        self.positions = SinusoidalPositions(width, max_len)
        self.block = EncoderLayer(width, heads, dim_feedforward=2 * width, dropout=0.0, activation="gelu",
                                  norm_first=True)
        self.norm = LayerNorm(width)
        self.head = nn.Linear(width, VALUES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.block(self.positions(self.embed(x)), causal=True)
        return self.head(self.norm(h)[:, -1])


def build(name: str, width: int, length: int) -> nn.Module:
    if name == "lstm":
        return LSTMReader(width)
    if name == "transformer":
        return TransformerReader(width, length)
    raise DeepzooError(f"unknown model {name!r} (choose from {', '.join(MODELS)})")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --- training and scoring ----------------------------------------------------------------------------

def train_and_score(name: str, width: int, length: int, distance: int, seconds: float | None = None,
                    steps: int | None = None, batch: int = 32, lr: float = 1e-3, seed: int = 0,
                    on_step=None) -> dict:
    """Train net ``name`` on the task at ``distance`` for ``seconds`` of wall-clock time (or, if given,
    ``steps`` steps), then score it on EVAL_SEQUENCES held-out sequences; return the table's row.
    ``on_step(steps_done, seconds_so_far)`` is called after every step (the progress bar)."""
    torch.manual_seed(seed)
    model = build(name, width, length)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    data = torch.Generator().manual_seed(seed * 1000 + distance)          # the same batches for both nets
    model.train()
    done, losses, start = 0, [], time.perf_counter()
    while (done < steps) if steps else (time.perf_counter() - start < seconds):
        x, y = make_batch(batch, length, distance, data)
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
        done += 1
        if on_step is not None:
            on_step(done, time.perf_counter() - start)
    train_seconds = time.perf_counter() - start
    model.eval()
    held_out = torch.Generator().manual_seed(10**6 + distance)            # the same test set for both nets
    with torch.no_grad():
        x, y = make_batch(EVAL_SEQUENCES, length, distance, held_out)
        accuracy = (model(x).argmax(-1) == y).float().mean().item()
    tail = losses[-max(1, len(losses) // 10):]                            # the last tenth of the steps
    return {"model": name, "distance": distance, "accuracy": round(accuracy, 4), "steps": done,
            "train_seconds": round(train_seconds, 2), "ms_per_step": round(1000 * train_seconds / done, 2),
            "final_train_loss": round(sum(tail) / len(tail), 4)}


def run(out, distances=None, seconds: float | None = None, steps: int | None = None, width: int | None = None,
        quick: bool = False, seed: int = 0, progress: bool = True, log=print) -> dict:
    """Train and score both nets at every distance; write long_range.{json,md,png} into ``out`` and
    return what the JSON holds. The sequence length is max(distances) + 1 for every run."""
    from tqdm.auto import tqdm

    from deepzoo.figures import machine_json
    started = time.perf_counter()
    distances = sorted(set(distances or (QUICK["distances"] if quick else DISTANCES)))
    seconds = (QUICK["seconds"] if quick else SECONDS) if seconds is None else seconds
    width = (QUICK["width"] if quick else 64) if width is None else width
    if not distances or any(not isinstance(d, int) or d < 1 for d in distances):
        raise DeepzooError(f"--distances must be one or more integers >= 1, got {distances!r}")
    if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds > 0):
        raise DeepzooError(f"--seconds must be a positive number, got {seconds!r}")
    if steps is not None and (not isinstance(steps, int) or steps < 1):
        raise DeepzooError(f"--steps must be an integer >= 1, got {steps!r}")
    if not isinstance(width, int) or width < 4 or width % 4:
        raise DeepzooError(f"--width must be a multiple of the 4 heads, got {width!r}")
    length = distances[-1] + 1
    parameters = {name: count_parameters(build(name, width, length)) for name in MODELS}
    log(f"sequences of {length} tokens; parameters: lstm {parameters['lstm']:,}, "
        f"transformer {parameters['transformer']:,}; "
        + (f"{steps} steps" if steps else f"{seconds:g} s") + " per net and distance")
    runs = [(name, d) for d in distances for name in MODELS]
    bar = tqdm(total=len(runs) * (steps or seconds), unit="step" if steps else "s", disable=not progress,
               leave=False, bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} {unit} [{elapsed}<{remaining}]")
    rows = []
    for i, (name, d) in enumerate(runs):
        bar.set_description(f"{name} d={d}")
        base = i * (steps or seconds)

        def on_step(done, elapsed, base=base):
            bar.n = base + (done if steps else min(elapsed, seconds))
            bar.update(0)                                  # redraws at most every 0.1 s
        rows.append(train_and_score(name, width, length, d, seconds=seconds, steps=steps, seed=seed,
                                    on_step=on_step))
        log(f"{name:<12} d={d:<4} accuracy {rows[-1]['accuracy']:.3f} after {rows[-1]['steps']} steps")
    bar.close()
    result = {"quick": quick, "length": length, "width": width, "distances": distances,
              "budget": {"steps": steps} if steps else {"seconds": seconds}, "seed": seed,
              "batch": 32, "lr": 1e-3, "eval_sequences": EVAL_SEQUENCES, "chance": 1 / VALUES,
              "parameters": parameters, "ran_under": machine_json(), "rows": rows}
    result["findings"] = findings(result)
    result["seconds"] = round(time.perf_counter() - started, 1)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "long_range.json", result)
    atomic_write_bytes(out / "long_range.md", markdown(result).encode("utf-8"))
    plot(result, out / "long_range.png")
    return result


def findings(result: dict) -> dict:
    """For each net, the distances at which it answers well (accuracy >= 0.9) and those at which it stays
    within 2 standard errors of chance (it learned nothing there)."""
    chance, n = result["chance"], result["eval_sequences"]
    near_chance = chance + 2 * math.sqrt(chance * (1 - chance) / n)
    out = {}
    for name in MODELS:
        acc = {r["distance"]: r["accuracy"] for r in result["rows"] if r["model"] == name}
        out[name] = {"solved": [d for d, a in acc.items() if a >= 0.9],
                     "at_chance": [d for d, a in acc.items() if a <= near_chance]}
    return out


# --- the outputs ---------------------------------------------------------------------------------------

HEADER = ["distance d", "LSTM accuracy", "LSTM steps", "Transformer accuracy", "Transformer steps"]


def _rows(result: dict) -> list[list[str]]:
    by = {(r["model"], r["distance"]): r for r in result["rows"]}
    return [[str(d), f"{100 * by['lstm', d]['accuracy']:.1f}%", f"{by['lstm', d]['steps']:,}",
             f"{100 * by['transformer', d]['accuracy']:.1f}%", f"{by['transformer', d]['steps']:,}"]
            for d in result["distances"]]


def _budget(result: dict) -> str:
    b = result["budget"]
    return f"{b['steps']} steps" if "steps" in b else f"{b['seconds']:g} s of training"


def verdict(result: dict) -> str:
    f = result["findings"]

    def at(distances):
        return f"d = {', '.join(map(str, distances))}" if distances else "no distance"
    return (f"accuracy >= 90%: LSTM at {at(f['lstm']['solved'])}, Transformer at {at(f['transformer']['solved'])}; "
            f"at chance ({100 * result['chance']:.1f}%, within 2 standard errors): LSTM at "
            f"{at(f['lstm']['at_chance'])}, Transformer at {at(f['transformer']['at_chance'])}")


def markdown(result: dict) -> str:
    p = result["parameters"]
    lines = [f"# Recall a token d positions back: LSTM ({p['lstm']:,} parameters) vs Transformer "
             f"({p['transformer']:,}), width {result['width']}, {_budget(result)} per net and distance", "",
             f"Sequences of {result['length']} tokens; accuracy on {result['eval_sequences']:,} held-out "
             f"sequences (chance {100 * result['chance']:.1f}%); {result['ran_under']['cpu']}, "
             f"{result['ran_under']['threads']} thread(s), kernels {result['ran_under']['isa']['aten']}; "
             f"{result['seconds']:.0f} s in all.", "",
             markdown_table(_rows(result), HEADER)]
    return "\n".join(lines + ["", verdict(result), ""])


def format_table(result: dict) -> str:
    from deepzoo.report.format import table
    return table(_rows(result), HEADER) + "\n" + verdict(result)


def plot(result: dict, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for name, colour, label in (("lstm", "tab:blue", "LSTM"), ("transformer", "tab:orange", "Transformer")):
        rows = [r for r in result["rows"] if r["model"] == name]
        ax.plot([r["distance"] for r in rows], [100 * r["accuracy"] for r in rows], "o-", color=colour, lw=2,
                label=f"{label} ({result['parameters'][name]:,} parameters)")
    ax.axhline(100 * result["chance"], color="grey", ls="--", lw=1, label="chance (1 in 8)")
    ax.set_xscale("log")
    ax.set_xticks(result["distances"])
    ax.set_xticklabels([str(d) for d in result["distances"]])
    ax.minorticks_off()
    ax.set_ylim(0, 105)
    ax.set(xlabel="distance d between the value token and the query (positions)",
           ylabel="held-out accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(loc="center left")
    ax.set_title(f"Recall a token d positions back, width {result['width']}, sequences of {result['length']},\n"
                 f"{_budget(result)} per net and distance{' (quick)' if result['quick'] else ''}", fontsize=10)
    return save_png(fig, path)
