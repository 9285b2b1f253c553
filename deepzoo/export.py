"""Export a trained run for another runtime: ONNX (onnxruntime, in any language) or TorchScript (C++ or
Python without deepzoo)::

    deepzoo export RUN --format onnx           # writes RUN/model.onnx
    deepzoo export RUN --format torchscript    # writes RUN/model.pt

Every family whose inference is one forward pass exports; :data:`SIGNATURES` says what each file takes and
returns. The batch axis is dynamic (and the time axis of the text models). Some models are exported through
a thin wrapper that computes exactly what the model computes, in operations the format has:

- the recurrent text classifiers, for ONNX: ``pack_padded_sequence`` has no ONNX form, so each direction of
  each layer runs over the padded batch, the backward one over every sentence reversed within its own
  length; the outputs at real positions, and so the final states and the pooled vector, are the packed ones
  (TorchScript traces the model itself, packing included);
- TextCNN: the model pads a sentence shorter than its widest filter, a branch on the length that a trace
  would freeze; the wrapper pads every batch and masks the windows that the model would not have;
- lstm-ptb: one window read from the zero state (the model itself carries its state between calls);
- the VAE decoder and the GAN generators: latent points to images in [0, 1];
- the GCN: the graph is an input (features and edge list); Â = D̃^-1/2 (A + I) D̃^-1/2 is computed from the
  edges by scatter-adds, since ONNX has no sparse product.

The file is then checked before it is written (atomically): loaded with its runtime (onnxruntime,
``torch.jit.load``) and run on 100 real inputs where the package ships some (MNIST and CIFAR-10 test
images, the text samples, the tabular files, CartPole states from played episodes, the run's own graph),
random valid ones otherwise (latent points), in batches of three sizes; its outputs must match the PyTorch
model's within :data:`TOLERANCE` (1e-4) times max(1, the largest output): 1e-4 absolute for outputs of order 1,
and relative beyond, where float32 rounding alone differs by more (plain-56 after one quick epoch has logits
of 1e6, and PyTorch's own float32 result differs from float64 by ~1 there).
"""

from __future__ import annotations

import io
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from deepzoo.errors import DeepzooError

FORMATS = {"onnx": "model.onnx", "torchscript": "model.pt"}
TOLERANCE = 1e-4            # max abs difference from PyTorch's outputs, per unit of their scale max(1, max |y|)
BATCHES = (1, 35, 64)       # 100 inputs, in three batch sizes (the batch axis is dynamic)
OPSET = 17

# What each exported file takes and returns (B = batch, T = time; dtypes float32 unless said).
SIGNATURES = {
    "image classifier": "image [B, C, H, W], standardised as in RUN/inference/inference.json -> logits [B, classes]",
    "tabular": "features [B, D], raw values in the columns of inference.json -> logit (logreg) / prediction [B]",
    "recurrent text classifier": "ids [B, T] int64 (padded with 0), lengths [B] int64 -> logits [B, classes]",
    "TextCNN": "ids [B, T] int64 (padded with 0) -> logits [B, classes]",
    "char GPT": "ids [B, T] int64, T <= model.block_size -> logits [B, T, vocab]",
    "word LM": "ids [B, T] int64 -> logits [B, T, vocab] (one window from the zero state)",
    "VAE decoder": "z [B, latent] -> images [B, 1, 28, 28] in [0, 1] (Bernoulli probabilities)",
    "GAN generator": "z [B, latent] ~ N(0, I) -> images [B, 1, 28, 28] in [0, 1]",
    "DQN": "observation [B, obs] -> q_values [B, actions]",
    "GCN": "features [N, F] (as the model saw them), edge_index [2, E] int64 (both directions, no self-loops) "
           "-> logits [N, classes]",
}

# Families whose inference is not one forward pass, and why (one line each).
REFUSED = {
    "transformer-multi30k": "translation decodes by beam search, a loop over the decoder with a search state",
    "qlearning-frozenlake": "a tabular Q-learning policy is a lookup table (RUN/qtable.safetensors), not a network",
    "qlearning-taxi": "a tabular Q-learning policy is a lookup table (RUN/qtable.safetensors), not a network",
    "autograd-mlp-mnist": "the model runs on deepzoo's NumPy autograd engine, not on PyTorch",
    "word2vec-ptb": "the result is a table of word vectors (RUN/vectors.bin, word2vec format), not a network",
    "word2vec-chinese": "the result is a table of word vectors (RUN/vectors.bin, word2vec format), not a network",
    "word2vec-text": "the result is a table of word vectors (RUN/vectors.bin, word2vec format), not a network",
    "ddpm-mnist": "sampling is an iterative loop of denoising steps with fresh noise, not one forward pass",
    **{name: "a pre-trained encoder is exported inside a classifier fine-tuned from it (bert-sst2, bert-imdb, "
             "bert-chnsenticorp)" for name in ("bert-pretrain", "bert-pretrain-zh")},
}


@dataclass
class Spec:
    """What one run exports and how it is checked."""
    kind: str                       # a key of SIGNATURES
    module: nn.Module               # traced for TorchScript (task.model, or a wrapper equal to it)
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    dynamic: dict                   # name -> {axis: axis name}, for ONNX
    example: tuple                  # the inputs the export traces
    checks: list                    # [(inputs, the PyTorch model's output)], 100 inputs in all
    described: str                  # what the check inputs are, for the report
    onnx_module: nn.Module | None = None   # a different module for ONNX (None: the same)


# --------------------------------------------------------------------------------------------------
# Real inputs


def _chunks(x: torch.Tensor, sizes=BATCHES) -> list[torch.Tensor]:
    out, start = [], 0
    for n in sizes:
        out.append(x[start:start + n])
        start += n
    return out


def _checks(reference: Callable, batches: list[tuple]) -> list[tuple]:
    with torch.no_grad():
        return [(b, reference(*b)) for b in batches]


def _batch_dim(names: tuple, axis_name: str = "batch") -> dict:
    return {n: {0: axis_name} for n in names}


# --------------------------------------------------------------------------------------------------
# Families


def _image_classifier(task, cfg) -> Spec:
    own = task.context.get("input")      # a run on your own images (data.path): their shape, no dataset to read
    if own is not None:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(100, own["channels"], own["height"], own["width"], generator=g)
        what = f"random {own['channels']}x{own['height']}x{own['width']} inputs (the run trained on its own images)"
    elif cfg["recipe"].endswith("-cifar10"):
        from deepzoo.data.cifar import load_cifar10, to_tensor
        x = to_tensor(load_cifar10(None, sample=True)["test"][0][:100])
        what = "CIFAR-10 test images (the package's sample)"
    else:
        from deepzoo.data.mnist import load_mnist
        from deepzoo.recipes.mnist import to_tensor
        x, what = to_tensor(load_mnist(None, sample=True)["test"][0][:100]), "MNIST test digits (the package's sample)"
    model = task.model
    return Spec("image classifier", model, ("image",), ("logits",), _batch_dim(("image", "logits")),
                (x[:2],), _checks(model, [(b,) for b in _chunks(x)]), f"100 {what}")


def _tabular(task, cfg) -> Spec:
    from deepzoo.data.registry import samples_dir
    from deepzoo.recipes.tabular import DEFAULT_TARGET, read_numeric_csv
    model, features = task.model, task.context["features"]
    shipped = {"logreg-binary": "breast_cancer.csv", "mlp-regression": "diabetes.csv"}[cfg["recipe"]]
    path = Path(cfg["data"]["path"]) if cfg["data"]["path"] else samples_dir() / "tabular" / shipped
    x, what = None, ""
    if path.is_file():
        try:
            names, rows, _ = read_numeric_csv(path, cfg["data"]["target"] or DEFAULT_TARGET[cfg["recipe"]],
                                              require_target=False)
            if all(f in names for f in features) and len(rows) >= 100:
                x, what = rows[:100, [names.index(f) for f in features]], f"the first 100 rows of {path.name}"
        except DeepzooError:
            pass
    if x is None:   # the training file is not here: rows drawn around the training rows' mean and deviation
        x = model.mu_x + model.sd_x * torch.randn(100, len(features), generator=torch.Generator().manual_seed(0))
        what = "100 random rows (mean and deviation of the training rows)"
    out = "logit" if cfg["recipe"] == "logreg-binary" else "prediction"
    return Spec("tabular", model, ("features",), (out,), _batch_dim(("features", out)), (x[:2],),
                _checks(model, [(b,) for b in _chunks(x)]), what)


def _sample_texts(cfg) -> tuple[list[str], str]:
    from deepzoo.data.registry import samples_dir
    from deepzoo.data.text import read_labelled
    d = cfg["data"]
    if d["dataset"] == "imdb":
        from deepzoo.data.text import read_imdb
        return read_imdb(samples_dir() / "text" / "imdb" / "sample-test.jsonl.gz")[0], \
            "IMDB test reviews (the package's sample)"
    if d["dataset"] == "sst2" or (d["dataset"] == "csv" and d["tokenizer"] not in ("zh", "zh-char")):
        texts, _, _ = read_labelled(samples_dir() / "text" / "sst2" / "dev.tsv", "sentence", "label")
        return texts, "SST-2 dev sentences (the package's sample)"
    name = "ChnSentiCorp_htl_sample.csv" if d["dataset"] == "chnsenticorp" else "waimai_sample.csv"
    texts, _, _ = read_labelled(samples_dir() / "text" / "chnsenticorp" / name, "review", "label", skip_bad=True)
    return texts, f"reviews of {name} (the package's sample)"


def _text_classifier(task, cfg) -> Spec:
    from deepzoo.models.bert import EncoderClassifier
    from deepzoo.models.textcnn import TextCNN
    from deepzoo.recipes.text import pad_index, text_ids
    ctx, model = task.context, task.model
    texts, what = _sample_texts(cfg)
    ids = text_ids(ctx, texts[:100])
    ids[0] = ids[0][:2]     # a sentence shorter than TextCNN's filters too (a batch of its own)
    pad = pad_index(ctx)

    def batch(rows):
        width = max(map(len, rows))
        return (torch.tensor([r + [pad] * (width - len(r)) for r in rows], dtype=torch.long),
                torch.tensor([len(r) for r in rows], dtype=torch.long))
    batches, start = [], 0
    for n in BATCHES:
        batches.append(batch(ids[start:start + n]))
        start += n
    example = batch(sorted(ids, key=len)[:1] + sorted(ids, key=len)[-2:])   # lengths differ within the batch
    checks = _checks(model, batches)
    what = f"100 {what}, the first cut to 2 tokens, padded per batch"
    if isinstance(model, TextCNN):
        module = _TextCNN(model)
        return Spec("TextCNN", module, ("ids",), ("logits",),
                    {"ids": {0: "batch", 1: "time"}, "logits": {0: "batch"}}, example[:1],
                    [((b[0],), out) for b, out in checks], what)
    if isinstance(model, EncoderClassifier):     # padding is masked inside attention and pooling
        return Spec("Transformer text classifier", model, ("ids", "lengths"), ("logits",),
                    {"ids": {0: "batch", 1: "time"}, "lengths": {0: "batch"}, "logits": {0: "batch"}},
                    example, checks, what)
    unpacked = _Unpacked(model)
    traced = model if isinstance(model.rnn, nn.RNNBase) else unpacked   # torch's packed RNN traces as it is;
    return Spec("recurrent text classifier", traced, ("ids", "lengths"), ("logits",),  # deepzoo.nn's loop not
                {"ids": {0: "batch", 1: "time"}, "lengths": {0: "batch"}, "logits": {0: "batch"}},
                example, checks, what, onnx_module=unpacked)


def _windows(stream: list[int], lengths) -> list[tuple]:
    """Windows of real text: batch k holds BATCHES[k] windows of lengths[k] tokens, at spread offsets."""
    out = []
    for n, t in zip(BATCHES, lengths):
        step = max(1, (len(stream) - t) // max(n, 1))
        out.append((torch.tensor([stream[i * step: i * step + t] for i in range(n)], dtype=torch.long),))
    return out


def _char_gpt(task, cfg) -> Spec:
    from deepzoo.data.registry import samples_dir
    model, vocab = task.model, task.context["vocab"]
    text = (samples_dir() / "text" / "tinyshakespeare" / "sample-input.txt").read_text(encoding="utf-8")
    stream = [vocab.stoi[c] for c in text if c in vocab.stoi]
    block = model.block_size
    batches = _windows(stream, (block, max(1, block // 3), max(1, block // 2)))
    return Spec("char GPT", model, ("ids",), ("logits",),
                {"ids": {0: "batch", 1: "time"}, "logits": {0: "batch", 1: "time"}}, (batches[1][0][:2],),
                _checks(model, batches),
                f"100 windows of tiny Shakespeare (the package's sample) of {block}, {max(1, block // 3)} and "
                f"{max(1, block // 2)} characters")


def _word_lm(task, cfg) -> Spec:
    from deepzoo.data.registry import samples_dir
    from deepzoo.data.text import EOS
    model, vocab = task.model, task.context["vocab"]
    lines = (samples_dir() / "text" / "ptb" / "sample-ptb.test.txt").read_text(encoding="utf-8").splitlines()
    stream = vocab.encode([w for line in lines if line.strip() for w in line.split() + [EOS]])
    lengths = (cfg["data"]["bptt"], 7, 2 * cfg["data"]["bptt"])
    batches = _windows(stream, lengths)
    module = _Window(model)
    return Spec("word LM", module, ("ids",), ("logits",),
                {"ids": {0: "batch", 1: "time"}, "logits": {0: "batch", 1: "time"}}, (batches[1][0][:2],),
                _checks(lambda x: model(x, True), batches),
                f"100 windows of PTB test text (the package's sample) of {', '.join(map(str, lengths))} words")


def _latent(task, cfg) -> Spec:
    from deepzoo.models.vae import VAE
    model = task.model
    vae = isinstance(model, VAE)
    z = torch.randn(100, model.latent, generator=torch.Generator().manual_seed(0))
    module = _Decoder(model.decoder if vae else model.generator, vae)
    reference = (lambda z: torch.sigmoid(model.decode(z))) if vae else model.decode
    return Spec("VAE decoder" if vae else "GAN generator", module, ("z",), ("images",),
                _batch_dim(("z", "images")), (z[:2],), _checks(reference, [(b,) for b in _chunks(z)]),
                "100 latent points z ~ N(0, I)")


def _dqn(q, cfg) -> Spec:
    from deepzoo.recipes.rl import env_maker
    env = env_maker(cfg, "box")()
    states, episode = [], 0
    while len(states) < 100:    # states met by the greedy policy, episode after episode
        obs, _ = env.reset(seed=episode)
        done = False
        while not done and len(states) < 100:
            states.append(torch.as_tensor(obs, dtype=torch.float32))
            with torch.no_grad():
                action = int(q(states[-1][None]).argmax())
            obs, _, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
        episode += 1
    env.close()
    x = torch.stack(states)
    return Spec("DQN", q, ("observation",), ("q_values",), _batch_dim(("observation", "q_values")), (x[:2],),
                _checks(q, [(b,) for b in _chunks(x)]),
                f"100 {cfg['env']['id']} states from {episode} greedy episodes")


def _gcn(task, cfg) -> Spec:
    from deepzoo.models.gcn import GCN
    model = task.model
    x, edges = _graph_of(model)
    n = len(x)
    half = torch.arange(n // 2 or 1)
    keep = (edges < len(half)).all(0)
    sub = (x[half], edges[:, keep])                        # the subgraph of the first half of the nodes
    m = cfg["model"]

    def fresh(x_sub, e_sub):                               # the run's GCN, weights and all, on another graph
        g = GCN(x_sub, e_sub, model.convs[-1].weight.shape[1], hidden=m["hidden"], layers=m["layers"],
                dropout=m["dropout"])
        g.load_state_dict(model.state_dict())
        return g.eval()()
    with torch.no_grad():
        checks = [((x, edges), model()), (sub, fresh(*sub))]
    return Spec("GCN", _GraphInput(model), ("features", "edge_index"), ("logits",),
                {"features": {0: "nodes"}, "edge_index": {1: "edges"}, "logits": {0: "nodes"}},
                (x[:5], edges[:, (edges < 5).all(0)]), checks,
                f"the run's graph ({n:,} nodes, {edges.shape[1]:,} directed edges) and the subgraph of its "
                f"first {len(half):,} nodes")


def _graph_of(model) -> tuple[torch.Tensor, torch.Tensor]:
    """The GCN's graph: its features exactly as the model sees them (dense) and its edge list [2, E], the
    off-diagonal entries of Â (deepzoo's graphs have no self-loops or repeated edges)."""
    x = model.x.dense() if hasattr(model.x, "dense") else model.x
    crow, col = model.adj.crow, model.adj.col
    row = torch.repeat_interleave(torch.arange(len(crow) - 1), crow[1:] - crow[:-1])
    return x, torch.stack([row, col])[:, row != col]


EXPORTERS: dict[str, Callable] = {
    **{name: _image_classifier for name in ("mlp-mnist", "cnn-mnist", "resnet20-cifar10", "resnet56-cifar10",
                                            "plain20-cifar10", "plain56-cifar10", "vgg-cifar10", "cnn7-cifar10",
                                            "vit-mnist", "vit-cifar10")},
    "logreg-binary": _tabular, "mlp-regression": _tabular,
    **{name: _text_classifier for name in ("rnn-sst2", "gru-sst2", "lstm-sst2", "bilstm-sst2", "textcnn-sst2",
                                           "bilstm-chnsenticorp", "textcnn-chnsenticorp", "bilstm-waimai",
                                           "lstm-text", "bilstm-imdb", "textcnn-imdb", "bert-sst2", "bert-imdb",
                                           "bert-chnsenticorp")},
    "gpt-shakespeare": _char_gpt, "lstm-ptb": _word_lm,
    "vae-mnist": _latent, "gan-mnist": _latent, "dcgan-mnist": _latent,
    "dqn-cartpole": _dqn,
    "gcn-cora": _gcn, "gcn-graph": _gcn,
}


# --------------------------------------------------------------------------------------------------
# Wrappers: the model's own computation, in operations both formats have


def _plain_rnn(kind: str, input_size: int, hidden: int, layers: int = 1, bidirectional: bool = False) -> nn.Module:
    cls = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[kind]
    return cls(input_size, hidden, num_layers=layers, bidirectional=bidirectional, batch_first=True)


def _rnn_kind(rnn: nn.Module) -> str:
    """"lstm", "gru" or "rnn" for torch's modules and deepzoo.nn.rnn.RNN alike."""
    return {"LSTM": "lstm", "GRU": "gru", "RNN_TANH": "rnn"}.get(rnn.mode, rnn.mode)


def _as_torch_rnn(rnn: nn.Module) -> nn.Module:
    """torch's fused module with ``rnn``'s weights (deepzoo.nn.rnn's step-by-step twin would trace to a
    fixed number of steps)."""
    if isinstance(rnn, nn.RNNBase):
        return rnn
    out = _plain_rnn(_rnn_kind(rnn), rnn.input_size, rnn.hidden_size, rnn.num_layers, rnn.bidirectional)
    out.load_state_dict(rnn.state_dict())
    return out.eval()


def _gather_time(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x[b, index[b, t]] for x [B, T, D] and index [B, T']."""
    return x.gather(1, index[:, :, None].expand(-1, -1, x.shape[2]))


class _Unpacked(nn.Module):
    """``RNNClassifier.forward`` without ``pack_padded_sequence``, which ONNX cannot express.

    Each direction of each layer runs on its own over the padded batch; the backward one reads every sentence
    reversed within its own length (the padding stays after it), and its outputs are put back in order. So
    every output at a real position is the packed one, each sentence's final states are its outputs at its
    last token (forward) and its first (backward), and the pooled vector is the model's."""

    def __init__(self, model) -> None:
        super().__init__()
        rnn, kind = model.rnn, _rnn_kind(model.rnn)
        self.embed, self.fc, self.pool = model.embed, model.fc, model.pool
        self.directions = 2 if rnn.bidirectional else 1
        state = rnn.state_dict()
        self.cells = nn.ModuleList()
        for layer in range(rnn.num_layers):
            for suffix in ("", "_reverse")[: self.directions]:
                size = rnn.input_size if layer == 0 else rnn.hidden_size * self.directions
                cell = _plain_rnn(kind, size, rnn.hidden_size)
                cell.load_state_dict({f"{name}_l0": state[f"{name}_l{layer}{suffix}"]
                                      for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")})
                self.cells.append(cell)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens)                                                 # B, T, E
        t = torch.ones_like(tokens).cumsum(1) - 1                              # positions 0 .. T-1
        n = lengths[:, None]
        real = t < n                                                           # B, T
        reverse = torch.where(real, n - 1 - t, t)                              # within each sentence
        last = (lengths - 1)[:, None]                                          # B, 1
        finals = []
        for layer in range(len(self.cells) // self.directions):
            outs, finals = [], []
            for d in range(self.directions):
                cell = self.cells[layer * self.directions + d]
                if d == 0:
                    out = cell(x)[0]
                    finals.append(_gather_time(out, last)[:, 0])               # the state after the last token
                else:
                    out = _gather_time(cell(_gather_time(x, reverse))[0], reverse)
                    finals.append(out[:, 0])                                   # the state after the first token
                outs.append(out)
            x = torch.cat(outs, dim=2)
        if self.pool == "last":
            feat = torch.cat(finals, dim=1)
        elif self.pool == "max":
            feat = x.masked_fill(~real[:, :, None], float("-inf")).amax(dim=1)
        else:
            feat = (x * real[:, :, None]).sum(dim=1) / lengths[:, None]
        return self.fc(feat)


class _TextCNN(nn.Module):
    """``TextCNN.forward`` with no branch on the sentence length (a trace would freeze it).

    The model pads a batch shorter than its widest filter w up to w. Here every batch is padded by w - 1 and
    the windows the model would not have (those ending on the added padding, past position w - 1) are masked
    to 0 before max-over-time: after ReLU every window is >= 0 and at least one window is kept, so the max is
    the model's."""

    def __init__(self, model) -> None:
        super().__init__()
        self.embed, self.convs, self.fc, self.widths = model.embed, model.convs, model.fc, model.widths

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        w = max(self.widths)
        padded = F.pad(tokens, (0, w - 1), value=self.embed.padding_idx)
        given = F.pad(torch.ones_like(tokens), (0, w - 1), value=0)             # 1 on the batch's own positions
        position = torch.ones_like(padded).cumsum(1) - 1
        ends = (given > 0) | (position < w)                                    # where a kept window may end
        x = self.embed(padded).transpose(1, 2)                                 # B, E, T + w - 1
        pooled = [(F.relu(conv(x)) * ends[:, None, k - 1:]).amax(dim=2) for k, conv in zip(self.widths, self.convs)]
        return self.fc(torch.cat(pooled, dim=1))


class _Window(nn.Module):
    """lstm-ptb: the logits of one window read from the zero state (the model carries its state between
    calls instead)."""

    def __init__(self, model) -> None:
        super().__init__()
        self.embed, self.rnn, self.fc, self.softmax = model.embed, _as_torch_rnn(model.rnn), model.fc, model.softmax

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out = self.rnn(self.embed(ids))[0]
        if self.softmax is None:
            return self.fc(out)
        # the adaptive softmax's exact log-probabilities, which read as logits (deepzoo/nn/softmax.py)
        return self.softmax.log_prob(out.reshape(-1, out.shape[-1])).reshape(out.shape[0], out.shape[1], -1)


class _Decoder(nn.Module):
    """Latent points to images in [0, 1]: sigmoid of the VAE decoder's logits, or (tanh output + 1) / 2 of a
    GAN generator."""

    def __init__(self, net: nn.Module, vae: bool) -> None:
        super().__init__()
        self.net, self.vae = net, vae

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = self.net(z)
        return torch.sigmoid(out) if self.vae else (out + 1) / 2


class _GraphInput(nn.Module):
    """The GCN with its graph as input: features [N, F] and edge list [2, E] (both directions, no self-loops).

    Â = D̃^-1/2 (A + I) D̃^-1/2 as edge weights (self-loops added, degrees by scatter-add), and each layer's
    product Â H as a scatter-add of weighted messages: the model's sparse product, in dense operations."""

    def __init__(self, model) -> None:
        super().__init__()
        self.convs = model.convs

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        loops = torch.ones_like(x[:, 0], dtype=torch.long).cumsum(0) - 1      # 0 .. N-1
        row, col = torch.cat([edge_index[0], loops]), torch.cat([edge_index[1], loops])
        degree = torch.zeros_like(x[:, 0]).scatter_add(0, row, torch.ones_like(row, dtype=x.dtype))
        inv_sqrt = degree.pow(-0.5)                                           # >= 1: every node has its loop
        weight = (inv_sqrt[row] * inv_sqrt[col])[:, None]

        def propagate(h):                                                     # Â h
            return torch.zeros_like(h).scatter_add(0, row[:, None].expand(-1, h.shape[1]), weight * h[col])
        h = x
        for i, conv in enumerate(self.convs):
            h = propagate(h @ conv.weight)
            h = h + conv.bias if conv.bias is not None else h
            if i < len(self.convs) - 1:
                h = torch.relu(h)
        return h


# --------------------------------------------------------------------------------------------------
# Export and check


def spec(run_dir) -> tuple[Spec, dict]:
    """The run's :class:`Spec` and config; a family that cannot be exported is one DeepzooError."""
    from deepzoo.train.run import load_model, read_run
    _, _, recipe, _ = read_run(run_dir)
    if recipe.name in REFUSED:
        raise DeepzooError(f"{recipe.name} cannot be exported: {REFUSED[recipe.name]}")
    if recipe.name not in EXPORTERS:
        raise DeepzooError(f"{recipe.name} has no export (families that export: "
                           f"{', '.join(sorted(SIGNATURES))})")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")  # (the GCN's graph)
        _, cfg, task = load_model(run_dir, log=lambda *_: None)
    model = getattr(task, "model", task)
    model.eval()
    return EXPORTERS[recipe.name](task, cfg), cfg


def _to_onnx(s: Spec) -> bytes:
    try:
        import onnx  # noqa: F401  (the exporter needs it)
    except ImportError:
        raise DeepzooError("ONNX export needs onnx and onnxruntime: pip install 'deepzoo[export]'") from None
    f = io.BytesIO()
    module = (s.onnx_module or s.module).eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, s.example, f, dynamo=False, opset_version=OPSET, input_names=list(s.inputs),
                          output_names=list(s.outputs), dynamic_axes=s.dynamic, do_constant_folding=True)
    return f.getvalue()


def _to_torchscript(s: Spec) -> bytes:
    f = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(s.module.eval(), s.example, check_trace=False)
        torch.jit.save(traced, f)
    return f.getvalue()


def _run_onnx(data: bytes, s: Spec) -> list:
    try:
        import onnxruntime as ort
    except ImportError:
        raise DeepzooError("checking an ONNX export needs onnxruntime: pip install 'deepzoo[export]'") from None
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = torch.get_num_threads()    # as many as PyTorch uses (spinning extra threads
    opts.inter_op_num_threads = 1                          # on a busy machine only slows the check down)
    session = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
    return [torch.from_numpy(session.run(None, {n: t.numpy() for n, t in zip(s.inputs, inputs)})[0])
            for inputs, _ in s.checks]


def _run_torchscript(data: bytes, s: Spec) -> list:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")           # torch 2.13 deprecates TorchScript (for torch.export)
        loaded = torch.jit.load(io.BytesIO(data))
    with torch.no_grad():
        return [loaded(*inputs) for inputs, _ in s.checks]


def export_report(run_dir, fmt: str = "onnx", out=None) -> dict:
    """Export the run, check the file with its runtime against the PyTorch model, write it; a dict of what
    was done: path, format, bytes, max_abs_diff, inputs, batches, described, seconds."""
    if fmt not in FORMATS:
        raise DeepzooError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    start = time.perf_counter()
    s, cfg = spec(run_dir)
    path = Path(out) if out else Path(run_dir) / FORMATS[fmt]
    if path.is_dir():
        raise DeepzooError(f"--out {path} is a folder; give the file to write, e.g. {path / FORMATS[fmt]}")
    try:
        data = (_to_onnx if fmt == "onnx" else _to_torchscript)(s)
        got = (_run_onnx if fmt == "onnx" else _run_torchscript)(data, s)
    except DeepzooError:
        raise
    except Exception as e:   # the exporter or the runtime refused the model: one line, not a traceback
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DeepzooError(f"{cfg['recipe']}: {fmt} export failed ({type(e).__name__}: {first[:300]})") from e
    diff = max(float((g.float() - want.float()).abs().max()) for g, (_, want) in zip(got, s.checks))
    scale = max([1.0] + [float(want.abs().max()) for _, want in s.checks])
    sizes = [len(inputs[0]) for inputs, _ in s.checks]
    if not diff <= TOLERANCE * scale:
        raise DeepzooError(f"{cfg['recipe']}: the {fmt} export differs from the PyTorch model by {diff:.3g} "
                           f"(tolerance {TOLERANCE * scale:.3g}) on {s.described}; nothing written")
    from deepzoo.files import atomic_write_bytes
    atomic_write_bytes(path, data)
    return {"path": str(path), "format": fmt, "recipe": cfg["recipe"], "kind": s.kind, "bytes": len(data),
            "inputs": list(s.inputs), "outputs": list(s.outputs), "signature": SIGNATURES[s.kind],
            "max_abs_diff": diff, "output_scale": scale, "batches": sizes, "described": s.described,
            "runtime": "onnxruntime" if fmt == "onnx" else "torch.jit.load",
            "seconds": round(time.perf_counter() - start, 2)}


def describe(r: dict) -> str:
    """The report of :func:`export_report` in two lines."""
    size = f"{r['bytes'] / 1e6:.1f} MB" if r["bytes"] >= 1e6 else f"{r['bytes'] / 1e3:.0f} kB"
    sizes = ", ".join(map(str, r["batches"]))
    return (f"wrote {r['path']} ({r['format']}, {size}): {r['signature']}\n"
            f"{r['runtime']} matches PyTorch on {r['described']} "
            f"({'graphs of ' + sizes + ' nodes' if r['kind'] == 'GCN' else 'batches of ' + sizes}): "
            f"max abs diff {r['max_abs_diff']:.2g}" + (f" on outputs up to {r['output_scale']:.3g} (relative "
                                                       f"{r['max_abs_diff'] / r['output_scale']:.2g})"
                                                       if r["output_scale"] > 1 else ""))


def export(run_dir, fmt: str = "onnx", out=None, log: Callable[[str], None] = print) -> Path:
    """Export a run to ``fmt`` ("onnx" or "torchscript"), by default RUN/model.onnx or RUN/model.pt, after
    checking it with its runtime against the PyTorch model (within :data:`TOLERANCE` x max(1, max |output|));
    the file's path."""
    r = export_report(run_dir, fmt, out)
    log(describe(r))
    return Path(r["path"])
