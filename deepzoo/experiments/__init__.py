"""Small, self-contained experiments that check claims made in the notes.

``EXPERIMENTS`` names each one with the claim it checks, the note it comes from (the Chinese study notes
this project follows; file and line), the verdict measured (with the machine and the
results file) and whether its ``--quick`` form joins ``deepzoo tour``. ``deepzoo experiment list`` prints
it. This module imports nothing heavy: ``deepzoo experiment list`` runs without torch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Experiment:
    name: str           # deepzoo experiment NAME
    module: str         # deepzoo.experiments.MODULE, whose docstring has the maths and the full verdict
    claim: str
    notes: str          # note file (and lines) the claim comes from
    verdict: str        # what was measured, where, and on which machine
    results: str        # the results files, under benchmarks/results/
    quick: bool         # has a --quick form on the data shipped in the package
    tour: bool          # that quick form runs in `deepzoo tour` (with its figure in the report)


EXPERIMENTS = (
    Experiment(
        "vanishing", "vanishing",
        "In a plain RNN the gradient reaching early time steps shrinks with the distance (vanishing "
        "gradients); the gates of the GRU and the LSTM help.",
        "003 (line 21: RNN errors propagated over many steps vanish or diverge; long-term memory is hard); "
        "004 (lines 86-96: the LSTM's gates solve vanishing gradients)",
        "Holds at initialisation, in degree only: the gradient falls geometrically with the distance for all "
        "three cells, about 0.50 per step for the plain RNN and 0.6 for the GRU and LSTM (H = 64, T = 100, "
        "3 seeds, float64), so the gated cells keep ~1e5 times more at distance 50 and 1e9-1e10 times more at 99; after "
        "300 training steps the plain RNN's gradient at distance 50 rose to the GRU's level. Untrained nets; "
        "no timing involved.",
        "vanishing.json, vanishing.png", quick=True, tour=True),
    Experiment(
        "cnn-vs-rnn", "cnn_vs_rnn",
        "A CNN for text (TextCNN) trains much faster than a recurrent net, which must read the words one "
        "after the other.",
        "000 (line 80: an RNN's steps depend on each other and cannot run in parallel; a CNN's windows do "
        "not); 001 (line 157: CNNs extract local features, RNNs suit variable-length text)",
        "Half holds: on SST-2 (2 epochs, 2 threads; machine A of the README, a 2-core CPU, probably with "
        "AMX) TextCNN trained 2,956 sentences/s, about as fast as one fused GRU (2,917) or LSTM (2,735) "
        "layer and 3.2x the 2-layer BiLSTM (928), but slower than a plain RNN (4,188); test accuracy 79.8% "
        "against 81.0% (LSTM) and 81.1% (BiLSTM).",
        "cnn_vs_rnn_sst2.json", quick=True, tour=True),
    Experiment(
        "seq-throughput", "seq_throughput",
        "An RNN's sequential dependence cannot be parallelised; the Transformer, which computes every "
        "position at once, trains faster.",
        "000 (line 80: use the Transformer to speed up); 004 (line 175: parallel computation, fast training "
        "on GPUs)",
        "Does not hold on 2 CPU threads: the fused 2-layer LSTM trained more tokens/s than the 2-block "
        "Transformer of the same width at every length from 16 to 512 (Transformer / LSTM 0.58-0.81). The "
        "parallelism pays on hardware with idle parallel units (a GPU), not measured here.",
        "seq_throughput.json", quick=True, tour=True),
    Experiment(
        "degradation", "degradation",
        "Deeper plain nets train worse (degradation), not only test worse; residual connections fix it.",
        "004 (lines 49-61: ResNet's skip connections solve vanishing gradients and degradation)",
        "Holds: 8 epochs on 10,000 CIFAR-10 images (machine B, a 2-core CPU with AMX), plain-56 ends at "
        "70.2% training error against 36.8% for plain-20, while ResNet-56 (29.4%) trains better than "
        "ResNet-20 (31.3%).",
        "degradation.json, degradation.png", quick=True, tour=True),
    Experiment(
        "vit-vs-resnet", "vit_vs_resnet",
        "A Vision Transformer, without the convolution's inductive bias, needs more data than a CNN.",
        "003 (line 112: ViT among the Transformer's pre-trained variants; the data claim is Dosovitskiy et "
        "al.'s, as the notes use it)",
        "Holds in direction: with 3 minutes a run on 2 threads of an AVX2-only EPYC, ResNet-20 beats the ViT "
        "by 21.0 / 19.3 / 17.4 points at 2,500 / 10,000 / 30,000 CIFAR-10 images: the gap shrinks with more "
        "data, slowly (one seed, 1,000 test images: 3 points is noise).",
        "vit_vs_resnet.json, vit_vs_resnet.md, vit_vs_resnet.png", quick=True, tour=True),
    Experiment(
        "pretrain-finetune", "pretrain_finetune",
        "Unsupervised pre-training, then supervised fine-tuning, beats training on the small task alone.",
        "003 (line 116: large models are trained by unsupervised pre-training plus supervised fine-tuning)",
        "Holds: a char GPT pre-trained on 3 M characters of IMDB reviews, then 600 steps on 100,000 "
        "characters of Shakespeare, ends at 2.130 nats/char against 2.320 from scratch, ahead at every "
        "checkpoint (one thread of a 2-core AVX2 EPYC beside other jobs, 622 s).",
        "pretrain-finetune.json, pretrain-finetune.md, pretrain-finetune.png", quick=True, tour=True),
    Experiment(
        "long-range", "long_range",
        "An RNN/LSTM struggles with long-range dependencies; self-attention relates positions at any "
        "distance, which is why the Transformer replaced it.",
        "003 (line 21: long-term memory is hard for an RNN; line 83: the Transformer was proposed for the "
        "long-range dependency problem); 004 (lines 89, 173)",
        "Holds: with 45 s per net and distance (one thread of a 2-core AMD EPYC, kernels capped to AVX2, beside another job), a "
        "1-layer LSTM recalls the token at d = 10 and is at chance at d = 25 to 200, while a causal "
        "Transformer block of the same width and parameters (35,400 vs 35,720) reaches 100% at d = 10, 25, 50 "
        "and 200 and 87.9% at 100 (still converging), in half the LSTM's steps. Longer training or a "
        "forget-gate bias may let the LSTM bridge longer gaps (not measured).",
        "long-range.json, long-range.md, long-range.png", quick=True, tour=True),
    Experiment(
        "layernorm", "layernorm",
        "Layer normalisation stabilises training and speeds up convergence.",
        "003 (lines 104-108: Transformer normalisation)",
        "Holds for the Transformer (Adam, 400 steps, one thread of a 2-core AMD EPYC, kernels capped to AVX2, beside another job): "
        "0.32-0.54 nats/char lower loss at every rate where both train, the target reached at 4 of 6 rates against 1, no "
        "divergence where the model without it diverges (1e-2, 3e-2). For a 6-layer MLP with SGD it speeds "
        "convergence (target in 93-144 steps; without it, stuck at chance at small rates under PyTorch's "
        "default init) but does not stabilise: at rates 0.3 and 1 both diverge, the normalised net sooner.",
        "layernorm.json, layernorm.md, layernorm.png", quick=True, tour=True),
    Experiment(
        "linear-collapse", "linear_collapse",
        "Without activation functions a multi-layer network degenerates into a single layer.",
        "001 (line 33); 004 (line 11: a DNN's non-linear activations are what let it learn non-linear "
        "features)",
        "Holds exactly: each activation-free net equals the product of its weights to 2e-14 (float64) and "
        "never beats one linear layer (MNIST sample: 88.6% vs 86.3-88.6% at depth 2-4; rings: 50.9% vs "
        "44.0-49.9%), while ReLU nets reach 91.7-92.2% and 97.0-97.7% (one thread of a 2-core AMD EPYC, kernels capped to AVX2, beside another job; 13 s).",
        "linear-collapse.json, linear-collapse.md, linear-collapse.png", quick=True, tour=True),
)


def get(name: str) -> Experiment:
    from deepzoo.errors import DeepzooError
    for e in EXPERIMENTS:
        if e.name == name:
            return e
    raise DeepzooError(f"unknown experiment {name!r} (choose from {', '.join(e.name for e in EXPERIMENTS)})")


def listing() -> str:
    """``deepzoo experiment list``: every experiment, its claim, note, verdict and results files."""
    import textwrap
    blocks = []
    for e in EXPERIMENTS:
        lines = [f"{e.name}  (deepzoo experiment {e.name}{' [--quick]' if e.quick else ''}"
                 f"{'; its quick form runs in deepzoo tour' if e.tour else ''})"]
        for label, text in (("claim", e.claim), ("notes", e.notes), ("verdict", e.verdict),
                            ("results", "benchmarks/results/: " + e.results)):
            lines += textwrap.wrap(text, 100, initial_indent=f"  {label + ':':<9}", subsequent_indent=" " * 11)
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
