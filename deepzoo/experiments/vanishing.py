r"""Vanishing gradients: how much of the gradient reaches early time steps, RNN vs GRU vs LSTM.

The claim. The notes say that in a plain RNN the gradient reaching early time steps shrinks with
the distance (vanishing gradients) and that the gates of the GRU and the LSTM help. This module
measures it.

The maths. Unroll a one-layer recurrent net over T steps, h_t = F(h_{t-1}, x_t), and put a loss
on the last state only, L = ℓ(h_T). By the chain rule the gradient reaching the input at step t is

    ∂L/∂x_t = ∂L/∂h_T · ∂h_T/∂h_t · ∂h_t/∂x_t,     ∂h_T/∂h_t = Π_{s=t+1..T} ∂h_s/∂h_{s-1},

a product of T - t Jacobians, one per step between t and T. Everything depends on how those
factors behave.

* Plain (Elman) RNN, h_s = tanh(W_ih x_s + b_ih + W_hh h_{s-1} + b_hh). Each factor is

      ∂h_s/∂h_{s-1} = diag(1 - h_s²) W_hh,

  the recurrent matrix scaled row by row by the tanh slopes tanh' = 1 - h_s² ∈ (0, 1]. Hence
  ||∂h_T/∂h_t|| ≤ Π_s ||diag(1 - h_s²)|| ||W_hh|| ≤ σ_max(W_hh)^(T-t), and in practice the norm
  behaves like γ^(T-t) for a typical per-step gain γ ≈ ρ(W_hh) × (typical tanh'), where over
  long products it is the spectral radius ρ (the largest |eigenvalue|, at most the largest
  singular value σ_max) that sets the rate. When γ < 1 the gradient shrinks geometrically with the
  distance k = T - t: after 50 steps at γ = 0.6 it is 0.6^50 ≈ 1e-11 of what it was, and the
  net gets no signal telling it to use inputs that far back. When γ > 1 it can grow
  geometrically instead (exploding gradients), which is why recurrent nets are usually trained
  with gradient clipping. With PyTorch's default initialisation, every weight ~ U(-1/√H, 1/√H),
  W_hh has entries of standard deviation 1/√(3H), so by the circular law its eigenvalues fill a
  disc of radius about √H · 1/√(3H) = 1/√3 ≈ 0.58, whatever H is: at initialisation the plain
  RNN is firmly in the vanishing regime.

* LSTM, c_s = f_s ⊙ c_{s-1} + i_s ⊙ g_s, h_s = o_s ⊙ tanh(c_s). Besides the paths through the
  gates, there is the cell path, whose Jacobian is simply

      ∂c_s/∂c_{s-1} = diag(f_s)     (holding the gates fixed),

  with no weight matrix and no squashing slope in it. Along that path the gradient over k steps
  is multiplied elementwise by f_{t+1} ⊙ … ⊙ f_T: close to the identity while the forget gate is
  open (f ≈ 1), so gradients can survive over long distances.

* GRU, h_s = (1 - z_s) ⊙ n_s + z_s ⊙ h_{s-1} in torch's convention, where z weighs the old
  state. The direct path contributes diag(z_s): an additive skip connection through time, close
  to the identity where the update gate says "keep" (z ≈ 1). (Texts that write
  h_s = z_s ⊙ n_s + (1 - z_s) ⊙ h_{s-1} get diag(1 - z_s); same mechanism, other sign of z.)

  Whether the gates actually are open is up to the initialisation and to training. At PyTorch's
  default initialisation the gate pre-activations are small, so f and z sit near
  sigmoid(0) = 1/2: the gated paths halve the gradient at every step too, and all three cell
  types show geometric decay. The gates only make it slower: in the measurement below (H = 64,
  T = 100) the per-step factor is about 0.50 for the RNN and about 0.6 for the GRU and LSTM,
  a small difference per step that compounds to roughly 10^5 at distance 50 and 10^10 at
  distance 99. Pushing the forget gate open, e.g. by adding 1 to the LSTM's forget-gate bias
  (a common trick, not done here), lifts the LSTM's relative gradient at distance 99 from
  ~1e-21 to ~1e-8.

What is measured. For a 1-layer, unidirectional net of the given cell type with PyTorch's default
initialisation (seeded), random inputs x ~ N(0, 1) of shape (B, T, I), and a fixed random linear
readout L = Σ_b w · h_T^(b) of the last hidden state only (inputs x_1, ..., x_T), we
backpropagate and record, for each distance k = T - t (k = 0 is the last, supervised step), the gradient norm ||∂L/∂x_t||₂ averaged over the
batch. Each seed's curve is divided by its own value at k = 0 and the curves are averaged over
seeds, so every curve starts at 1 and reads "fraction of the gradient that reaches an input k
steps before the supervised step". Note that this includes the input Jacobian ∂h_t/∂x_t, so the
value at k = 0 differs between cell types; normalising by it compares how fast each curve falls,
not its absolute size.

What it does not say. The numbers are for untrained nets at default initialisation; they depend
on the initialisation (scale of W_hh, forget-gate bias), on the input statistics and, above all,
on training, which can move a plain RNN towards a per-step gain of 1 or saturate an LSTM's gates.
``trained_steps`` shows how fragile the ordering is: after 300 Adam steps on the memory task
below the plain RNN's relative gradient at distance 50 rose from ~4e-16
to ~1e-10, level with the GRU's and above the LSTM's. So the experiment supports "at
initialisation the plain RNN's gradient vanishes geometrically, and faster than the gated cells'",
not "a trained LSTM keeps long-range gradients". Vanishing is a problem because, when a task does
need a long memory, the signal to learn it is exponentially weak at the start of training. The
computation runs in float64, because the plain RNN's relative gradient at distance ~100 is around
1e-30, next to float32's underflow threshold (~1e-38, denormals from ~1e-45).

Measured verdict (``deepzoo experiment vanishing``, the defaults: T = 100, H = 64, 3 seeds; 3 s on one
thread of a 2-core AMD EPYC, kernels capped to AVX2, beside another job; benchmarks/results/vanishing.json
and vanishing.png). The claim holds at initialisation, in degree only. Relative gradient at distance
k = 10 / 25 / 50 / 99: RNN 7.2e-4 / 1.6e-8 / 4.1e-16 / 8.6e-31; GRU 5.8e-3 / 5.0e-6 / 5.6e-11 / 1.8e-20;
LSTM 5.1e-3 / 4.0e-6 / 2.5e-11 / 1.1e-21. All three vanish geometrically; the gates slow the fall (about
0.49 a step for the RNN, about 0.6 for the gated cells), by ~1e5 at distance 50; they do not stop it.

``--quick`` (T = 60, H = 32, 2 seeds; under a second of computing) draws the same curves on smaller nets:
the same geometric fall, the gated cells' slower; it joins ``deepzoo tour``.

    deepzoo experiment vanishing --quick              # T = 60, H = 32, 2 seeds
    deepzoo experiment vanishing                      # plot + table in runs/experiment-vanishing

    >>> from deepzoo.experiments.vanishing import gradient_vs_distance, run, format_table
    >>> curve = gradient_vs_distance("lstm", seq_len=50)      # curve[k], k = 0..49, curve[0] == 1
    >>> print(format_table(run("out/vanishing")))            # writes vanishing.png, .md and .json
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import matplotlib
import torch

from deepzoo.errors import DeepzooError
from deepzoo.nn import recurrent
from deepzoo.files import atomic_write_bytes, atomic_write_json
from deepzoo.report.format import markdown_table
from deepzoo.report.plots import save_png

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

MODES = ("rnn", "gru", "lstm")
TABLE_DISTANCES = (1, 10, 25, 50, 99)
DEFAULT = dict(seq_len=100, hidden_size=64, seeds=3)
QUICK = dict(seq_len=60, hidden_size=32, seeds=2)
MEMORY_STEPS = 5          # the training task: sign of Σ_{t<5} x_t[0]
_DATA_SEED_OFFSET = 10_000  # inputs and readout use their own generator, independent of the init stream
_DTYPE = torch.float64


def _check_positive_int(name, value, minimum=1):
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise DeepzooError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _build(mode, input_size, hidden_size, impl, seed):
    """A 1-layer unidirectional net, default init drawn right after torch.manual_seed(seed)."""
    cls = recurrent(mode, impl)
    torch.manual_seed(seed)
    net = cls(input_size, hidden_size, num_layers=1, bidirectional=False, batch_first=True, dropout=0.0)
    return net.to(_DTYPE)


def _last_state(net, x):
    """h_T, the last step's hidden state (B, H), for any of the three cell types."""
    output, _ = net(x)
    return output[:, -1]


def _train_memory_task(net, hidden_size, input_size, seq_len, batch, steps, gen):
    """A few Adam steps on a task that needs a memory of length seq_len - MEMORY_STEPS:
    y = [Σ_{t < 5} x_t[0] > 0], predicted from h_T by a trainable linear head (BCE with logits)."""
    head = torch.nn.Linear(hidden_size, 1).to(_DTYPE)
    opt = torch.optim.Adam([*net.parameters(), *head.parameters()], lr=3e-3)
    window = min(MEMORY_STEPS, seq_len)
    for _ in range(steps):
        x = torch.randn(batch, seq_len, input_size, generator=gen, dtype=_DTYPE)
        y = (x[:, :window, 0].sum(dim=1) > 0).to(_DTYPE)
        logit = head(_last_state(net, x)).squeeze(-1)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logit, y)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([*net.parameters(), *head.parameters()], 1.0)
        opt.step()


def _one_seed(mode, hidden_size, input_size, seq_len, batch, seed, impl, trained_steps):
    """Batch-mean ||∂L/∂x_t||₂ for t = T, T-1, ..., 1 (index = distance k = T - t), for one seed."""
    net = _build(mode, input_size, hidden_size, impl, seed)
    gen = torch.Generator().manual_seed(seed + _DATA_SEED_OFFSET)
    if trained_steps:
        net.train()
        _train_memory_task(net, hidden_size, input_size, seq_len, batch, trained_steps, gen)
    net.eval()
    readout = torch.randn(hidden_size, generator=gen, dtype=_DTYPE) / math.sqrt(hidden_size)
    x = torch.randn(batch, seq_len, input_size, generator=gen, dtype=_DTYPE, requires_grad=True)
    loss = (_last_state(net, x) @ readout).sum()     # Σ_b w · h_T^(b): only the last step is supervised
    (grad,) = torch.autograd.grad(loss, x)           # (B, T, I)
    norms = grad.norm(dim=-1).mean(dim=0)            # (T,): batch mean of ||∂L/∂x_t||₂
    return norms.flip(0)                             # index k = T - t (t = 1..T)


def gradient_vs_distance(mode: str, hidden_size: int = 64, input_size: int = 32, seq_len: int = 100,
                         batch: int = 32, seeds: int = 3, impl: str = "torch",
                         trained_steps: int = 0, *, first_seed: int = 0) -> list[float]:
    """Relative gradient norm reaching the input k steps before the supervised last step.

    With inputs x_1, ..., x_T (T = seq_len), returns ``curve`` of length T with ``curve[k]`` =
    mean over the seeds first_seed, ..., first_seed + seeds - 1 of
    (batch-mean ||∂L/∂x_{T-k}||₂) / (batch-mean ||∂L/∂x_T||₂), where L is a fixed random linear
    readout of h_T (see the module docstring). So curve[0] == 1, and curve[k] is the
    fraction of the gradient that survives k steps of backpropagation through time.

    mode: "rnn", "gru" or "lstm"; impl: "torch" (fused built-ins) or "scratch" (deepzoo.nn.rnn,
    identical init, so the same curve up to rounding). trained_steps > 0 first trains the net for
    that many Adam steps on a long-memory task (sign of the sum of feature 0 over the first 5
    steps, from h_T); 0, the default, measures at initialisation.
    """
    for name, value in (("hidden_size", hidden_size), ("input_size", input_size), ("seq_len", seq_len),
                        ("batch", batch), ("seeds", seeds)):
        _check_positive_int(name, value)
    _check_positive_int("trained_steps", trained_steps, minimum=0)
    _check_positive_int("first_seed", first_seed, minimum=0)
    total = torch.zeros(seq_len, dtype=_DTYPE)
    # The work is a chain of T small (B x H) @ (H x G*H) matmuls, one after the other: intra-op
    # threads cannot speed that up, only add synchronisation (several times slower on a busy
    # machine), so run on one thread and give the caller's setting back afterwards.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):      # leave the caller's global RNG as it was
            for seed in range(first_seed, first_seed + seeds):
                norms = _one_seed(mode, hidden_size, input_size, seq_len, batch, seed, impl, trained_steps)
                total += norms / norms[0]
    finally:
        torch.set_num_threads(threads)
    return (total / seeds).tolist()


def _table(curves: dict, seq_len: int) -> dict:
    distances = [k for k in TABLE_DISTANCES if k < seq_len]
    return {mode: {k: curve[k] for k in distances} for mode, curve in curves.items()}


def _plot(curves: dict, path: Path, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for mode, curve in curves.items():
        ax.plot(range(len(curve)), curve, label=mode.upper())
    ax.set_yscale("log")
    ax.set(xlabel="distance k = T - t (steps between input x_t and the supervised last state h_T)",
           ylabel="||∂L/∂x_t||₂ / ||∂L/∂x_T||₂ (log scale)", title=title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend()
    return save_png(fig, path, dpi=100)


def run(out_dir, seq_len: int | None = None, hidden_size: int | None = None, seeds: int | None = None,
        impl: str = "torch", quick: bool = False, progress: bool = True, log=print) -> dict:
    """Measure the curves for "rnn", "gru" and "lstm"; write out_dir/vanishing.png (log-scale
    relative gradient norm vs distance, one line per cell type), out_dir/vanishing.md (the table) and
    out_dir/vanishing.json; return what the JSON holds: the settings, the full curves, the table
    ``{mode: {"k": relative gradient norm at distance k}}`` for k in (1, 10, 25, 50, 99), k < seq_len, and
    the findings (:func:`findings`). Unset sizes take DEFAULT's values, or QUICK's with ``quick``.
    ``progress`` is accepted for the common interface (three curves take seconds: no bar)."""
    started = time.perf_counter()
    sizes = {**(QUICK if quick else DEFAULT)}
    for key, value in (("seq_len", seq_len), ("hidden_size", hidden_size), ("seeds", seeds)):
        if value is not None:
            sizes[key] = value
    seq_len, hidden_size, seeds = sizes["seq_len"], sizes["hidden_size"], sizes["seeds"]
    out_dir = Path(out_dir)
    settings = dict(seq_len=seq_len, hidden_size=hidden_size, input_size=32, batch=32, seeds=seeds,
                    impl=impl, trained_steps=0, dtype="float64")
    curves = {}
    for mode in MODES:
        curves[mode] = gradient_vs_distance(mode, hidden_size=hidden_size, seq_len=seq_len, seeds=seeds, impl=impl)
        log(f"{mode:<5} relative gradient at distance {seq_len - 1}: {curves[mode][-1]:.2e}")
    from deepzoo.figures import machine_json
    result = {
        "measured": "batch-mean ||dL/dx_t||_2 / its value at k=0, averaged over seeds; "
                    "k = T-t (k=0: last step); L = fixed random linear readout of h_T; "
                    "default init, untrained",
        "quick": quick,
        "settings": settings,
        "ran_under": machine_json(),
        "curves": curves,
        "table": {mode: {str(k): v for k, v in row.items()} for mode, row in _table(curves, seq_len).items()},
    }
    result["findings"] = findings(result)
    result["seconds"] = round(time.perf_counter() - started, 2)
    title = (f"Gradient reaching x_t from a loss on h_T only (T={seq_len}, H={hidden_size},\n"
             f"default init, untrained, mean of {seeds} seed{'s' if seeds != 1 else ''})")
    out_dir.mkdir(parents=True, exist_ok=True)
    _plot(curves, out_dir / "vanishing.png", title)
    atomic_write_json(out_dir / "vanishing.json", result)
    atomic_write_bytes(out_dir / "vanishing.md", markdown(result).encode("utf-8"))
    return result


def findings(result: dict) -> dict:
    """At the farthest distance k = T - 1: each cell's relative gradient and its mean per-step factor
    (curve[k] ** (1 / k), the geometric rate of the fall), and how many times more of the gradient the
    GRU and the LSTM keep there than the plain RNN."""
    far = result["settings"]["seq_len"] - 1
    out = {"distance": far}
    for mode, curve in result["curves"].items():
        value = curve[far]
        out[mode] = {"relative_gradient": value,
                     "per_step_factor": round(value ** (1 / far), 4) if far and value > 0 else None}
    for mode in ("gru", "lstm"):
        if mode in out and "rnn" in out and out["rnn"]["relative_gradient"] > 0:
            out[mode]["times_the_rnn"] = out[mode]["relative_gradient"] / out["rnn"]["relative_gradient"]
    return out


def verdict(result: dict) -> str:
    """One line from the findings: how fast each cell's gradient falls, and what the gates keep."""
    f = result["findings"]
    k = f["distance"]
    if not k:
        return "T = 1: no distance to fall over"
    rates = ", ".join(f"{mode.upper()} " + ("-" if f[mode]["per_step_factor"] is None else
                                            f"{f[mode]['per_step_factor']:.2f}") for mode in MODES if mode in f)
    keep = " and ".join(f"{mode.upper()} {f[mode]['times_the_rnn']:.1e}" for mode in ("gru", "lstm")
                        if "times_the_rnn" in f.get(mode, {}))
    vanish = all(f[mode]["relative_gradient"] < 1e-3 for mode in MODES if mode in f)
    return (f"per-step factor of the gradient's fall (distance {k}): {rates}; "
            f"{'all vanish geometrically' if vanish else 'not all below 1e-3'} at distance {k}; "
            f"the gated cells keep {keep} times the RNN's gradient there")


def _rows(result: dict) -> tuple[list[list[str]], list[str]]:
    table = result["table"]
    distances = sorted({int(k) for row in table.values() for k in row})
    rows = [[mode] + [f"{row[str(k)]:.2e}" if str(k) in row else "-" for k in distances]
            for mode, row in table.items()]
    return rows, ["cell"] + [f"k={k}" for k in distances]


def markdown(result: dict) -> str:
    s, m = result["settings"], result["ran_under"]
    rows, header = _rows(result)
    lines = ["# Vanishing gradients: relative gradient norm ||dL/dx_t|| / ||dL/dx_T|| at distance k = T - t",
             "", f"T = {s['seq_len']}, H = {s['hidden_size']}, batch {s['batch']}, {s['seeds']} seed(s), "
             f"{s['impl']} cells, {s['dtype']}, default init, untrained; {m['cpu']}, {m['threads']} thread(s), "
             f"kernels {m['isa']['aten']}; {result['seconds']:.1f} s.", "",
             markdown_table(rows, header)]
    return "\n".join(lines + ["", verdict(result), ""])


def format_table(result: dict) -> str:
    """The table of :func:`run`'s result as plain text, one row per cell type, then the verdict."""
    from deepzoo.report.format import table
    rows, header = _rows(result)
    return ("relative gradient norm ||dL/dx_t|| / ||dL/dx_T|| at distance k = T - t\n"
            + table(rows, header) + "\n" + verdict(result))


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--seq-len", type=int)
    parser.add_argument("--hidden-size", type=int)
    parser.add_argument("--seeds", type=int)
    parser.add_argument("--impl", default="torch")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    start = time.perf_counter()
    result = run(args.out_dir, seq_len=args.seq_len, hidden_size=args.hidden_size, seeds=args.seeds,
                 impl=args.impl, quick=args.quick)
    print(format_table(result))
    print(f"({time.perf_counter() - start:.1f} s; wrote {args.out_dir}/vanishing.png, .md and .json)")
