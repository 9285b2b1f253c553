"""The config schema: every key of every recipe, with its type, what it allows, and what it means.

Declared once, here, as one table read top to bottom:

- :data:`SHARED`: keys that mean the same wherever they appear (the engine's ``optim.*`` and ``train.*``,
  ``seed``, and most ``data.*`` / ``model.*`` keys);
- :data:`FAMILIES`: keys that mean something particular in some recipes (``model.hidden`` is one width in
  the recurrent nets and a list of widths in the MLPs; ``model.kind`` is mlp|conv for the VAE and mlp|dcgan
  for the GANs); the recipes are named by shell patterns (``*-cifar10``), and a later entry wins;
- :data:`RULES`: the few constraints between two or more keys (``model.n_embd`` a multiple of
  ``model.n_head``);
- :data:`RENAMED`: keys an older deepzoo called otherwise, mapped when a run folder's config.json is read.

:func:`for_recipe` gives a recipe its :class:`Schema`; ``config.resolve(..., schema=...)`` checks the
whole resolved config against it before a run folder, config.json or any data file is touched, and
``deepzoo.train.run.read_run`` checks a run folder's config.json the same way. A bad value is one
:class:`~deepzoo.errors.DeepzooError` line naming where it came from, the key, what is allowed and the
value: ``--set: optim.lr must be in (0, 100], got -1.0``.

Plain frozen dataclasses rather than a validation library: the rules are few (a type, choices or a range
with open or closed ends, a rule for each element of a list, an extra predicate for the odd key), the table
stays readable as documentation, and ``deepzoo train RECIPE --help`` and ``--print-config`` print it.
The checks inside the recipes' build functions and the models stay, as a second line of defence for code
that builds models directly.
"""

from __future__ import annotations

import fnmatch
import math
import re
import tomllib
from dataclasses import dataclass, field
from typing import Any, Callable

from deepzoo.config import flatten, show
from deepzoo.errors import DeepzooError

# the choices the code itself defines (one source: a new schedule or optimiser is allowed here at once)
from deepzoo.data.text import TOKENIZERS as _TOKENIZERS
from deepzoo.models.rnn import POOLS
from deepzoo.nn import IMPLS, OPTIMIZERS
from deepzoo.train.engine import PRECISIONS
from deepzoo.train.schedules import SCHEDULES

TOKENIZERS = tuple(_TOKENIZERS)
MAX_SEED = 2**31 - 1   # numpy, torch, gymnasium and the word2vec kernel all take it


@dataclass(frozen=True)
class Key:
    """One config key: its type, what it allows, and a one-line description.

    ``type`` is "bool", "int", "float", "str" or "list". Numbers lie in [lo, hi] (``lo_open`` /
    ``hi_open``: that end excluded); floats must also be finite (TOML reads nan and inf). Strings never
    hold NUL characters (no file can be named so) and are non-empty unless ``empty``. A list's entries
    each follow ``item``; its length is ``min_len`` to ``max_len``. ``check`` is an extra rule on a value
    that passed the others, and ``says`` then tells what is allowed in words.
    """
    help: str
    type: str
    choices: tuple = ()
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    empty: bool = True
    item: "Key | None" = None
    min_len: int = 0
    max_len: int | None = None
    check: Callable[[Any], bool] | None = None
    says: str = ""

    def ok(self, value: Any) -> bool:
        if not self._typed(value):
            return False
        if self.choices and value not in self.choices:
            return False
        if self.type in ("int", "float"):
            if self.lo is not None and (value < self.lo or (self.lo_open and value == self.lo)):
                return False
            if self.hi is not None and (value > self.hi or (self.hi_open and value == self.hi)):
                return False
        if self.type == "str" and not self.empty and not value.strip():
            return False
        if self.type == "list":
            if len(value) < self.min_len or (self.max_len is not None and len(value) > self.max_len):
                return False
            if self.item is not None and not all(self.item.ok(v) for v in value):
                return False
        return self.check is None or bool(self.check(value))

    def _typed(self, value: Any) -> bool:
        if self.type == "bool":
            return isinstance(value, bool)
        if self.type == "int":
            return isinstance(value, int) and not isinstance(value, bool)
        if self.type == "float":
            return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if self.type == "str":
            return isinstance(value, str) and "\x00" not in value
        if self.type == "list":
            return isinstance(value, list)
        return True     # "any": an item of a mixed list, checked by ``check``

    def allowed(self) -> str:
        """What the key allows, in words: ``one of relu, tanh``, ``in (0, 100]``, ``an integer from 1 to 64``."""
        if self.says:
            return self.says
        if self.choices:
            return "one of " + ", ".join(str(c) for c in self.choices)
        if self.type == "bool":
            return "true or false"
        if self.type == "int":
            if self.lo is not None and self.hi is not None:
                return f"an integer from {_num(self.lo)} to {_num(self.hi)}"
            return f"an integer >= {_num(self.lo)}" if self.lo is not None else "an integer"
        if self.type == "float":
            return f"in {'(' if self.lo_open else '['}{_num(self.lo)}, {_num(self.hi)}{')' if self.hi_open else ']'}"
        if self.type == "str":
            return "a string" if self.empty else "a non-empty string"
        if self.type == "list":
            if self.max_len is not None and self.max_len == self.min_len:
                size = f"{self.min_len} "
            elif self.min_len:
                size = "a non-empty " if self.min_len == 1 else f"at least {self.min_len} "
            else:
                size = "a "
            body = f"list{'s' if size[0].isdigit() else ''}"
            return f"{size}{body}" + (f" whose entries are each {self.item.allowed()}" if self.item else "")
        return "a value"

    def spec(self) -> str:
        """The type and the allowed values, short, for the key tables."""
        if self.says or self.choices or self.type in ("bool", "list"):
            return self.allowed()
        return f"a number {self.allowed()}" if self.type == "float" else self.allowed()


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


# --- constructors: the table below reads as what each key is ----------------------------------------

def Bool(help: str) -> Key:
    return Key(help, "bool")


def Int(help: str, lo: int | None = None, hi: int | None = None, **kw) -> Key:
    return Key(help, "int", lo=lo, hi=hi, **kw)


def Float(help: str, lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False, **kw) -> Key:
    return Key(help, "float", lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open, **kw)


def Choice(help: str, *choices) -> Key:
    return Key(help, "int" if all(isinstance(c, int) for c in choices) else "str", choices=tuple(choices))


def Text(help: str, *, empty: bool = True, **kw) -> Key:
    return Key(help, "str", empty=empty, **kw)


def Path(help: str) -> Key:
    """A file or folder; empty means the recipe's own choice. Whether it exists is for the reader to say."""
    return Key(help, "str", empty=True, says="a path")


def List(help: str, item: Key | None, min_len: int = 0, max_len: int | None = None, **kw) -> Key:
    return Key(help, "list", item=item, min_len=min_len, max_len=max_len, **kw)


def Widths(help: str, min_len: int = 1, hi: int = 65536) -> Key:
    """A list of layer widths."""
    return List(help, Int("", 1, hi), min_len, 64,
                says=f"a list of {'one or more ' if min_len else ''}integers from 1 to {hi} such as [256, 256]"
                     + ("" if min_len else " ([] for none)"))


# --- extra rules ---------------------------------------------------------------------------------------

def _toml_pairs(raw: str) -> bool:
    try:
        tomllib.loads(f"v = {{{raw.strip()}}}")
    except tomllib.TOMLDecodeError:
        return False
    return True


def _conv_config(config: list) -> bool:
    return (bool(config) and config.count("M") <= 5 and any(v != "M" for v in config)
            and all(v == "M" or (isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 4096) for v in config))


def _split(fractions: list) -> bool:
    return (len(fractions) == 3 and all(isinstance(f, (int, float)) and not isinstance(f, bool)
                                        and math.isfinite(f) and 0 <= f <= 1 for f in fractions)
            and abs(sum(fractions) - 1) <= 1e-6)


_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d{1,3})?")
_ENV_ID = re.compile(r"[A-Za-z0-9_./:-]+")

# --- the table -------------------------------------------------------------------------------------------

SHARED: dict[str, Key] = {
    "seed": Int("random seed: initial weights, shuffling, augmentation, sampling", 0, MAX_SEED),

    # the optimiser and its learning-rate schedule (deepzoo/train/engine.py, schedules.py)
    "optim.name": Choice("the optimiser", *OPTIMIZERS),
    "optim.impl": Choice("the optimiser's code: PyTorch's, or deepzoo's own (deepzoo/nn/optim.py)", *IMPLS),
    "optim.lr": Float("peak learning rate", 0, 100, lo_open=True),
    "optim.momentum": Float("SGD momentum", 0, 1, hi_open=True),
    "optim.nesterov": Bool("Nesterov momentum (SGD)"),
    "optim.weight_decay": Float("L2 weight decay", 0, 1),
    "optim.schedule": Choice("learning-rate schedule after the warm-up", *SCHEDULES),
    "optim.warmup_epochs": Float("epochs of linear learning-rate warm-up (fractions allowed; 0: none)", 0, 10_000),
    "optim.gamma": Float("decay factor per epoch of the step and exponential schedules", 0, 1, lo_open=True),
    "optim.step_size": Int("epochs between two decays of the step schedule", 1, 1_000_000),
    "optim.min_lr_factor": Float("floor of the linear, cosine and inverse_sqrt schedules, as a fraction of optim.lr",
                                 0, 1),
    "optim.decay_start": Int("epochs before the step and exponential schedules start to decay", 0, 1_000_000),
    "optim.beta1": Float("Adam's beta1, the momentum of the gradient average", 0, 1, hi_open=True),

    # the training loop
    "train.epochs": Int("training epochs", 1, 100_000),
    "train.clip_grad_norm": Float("clip the gradient's norm to this (0: no clipping)", 0, 1e6),
    "train.early_stopping": Int("stop after this many epochs without a better validation figure (0: never)",
                                0, 100_000),
    "train.device": Text("where to train (auto: a CUDA or MPS GPU if PyTorch sees one, else the CPU)",
                         check=lambda v: bool(_DEVICE.fullmatch(v)), says="one of auto, cpu, cuda, cuda:N, mps"),
    "train.keep_checkpoints": Int("most recent checkpoints kept, besides the best", 1, 1000),
    "train.checkpoint_seconds": Float("write a checkpoint after an epoch that ends this many seconds after the "
                                      "last one, and after the last epoch (0: every epoch; word2vec, DQN and "
                                      "Q-learning: after a batch of words or an episode); a killed run loses "
                                      "about this much training", 0, 1e7),
    "train.precision": Choice("arithmetic: fp32, mixed bf16 or fp16 (CUDA), fp64, or auto (bf16 where the CPU or "
                              "GPU runs it natively)", *PRECISIONS),
    "train.log_steps": Bool("also write every step's loss to steps.jsonl"),
    "train.tensorboard": Bool("also write TensorBoard event files into RUN/tensorboard/ (needs the tensorboard "
                              "package)"),

    # data
    "data.sample": Bool("use the small sample shipped in the package instead of the full dataset"),
    "data.batch_size": Int("training examples per step", 1, 1_000_000),
    "data.path": Path("your own data file or folder (empty: the recipe's dataset)"),
    "data.val_size": Int("training images held out for validation, which picks the best epoch (0: none)",
                         0, 10_000_000),
    "data.split_seed": Int("seed of the fixed train / validation / test split", 0, MAX_SEED),
    "data.min_freq": Int("a token enters the vocabulary if seen at least this often in training text", 1, 1_000_000),
    "data.tokenizer": Choice("tokeniser: en (English words), zh (jieba words), zh-char (characters)", *TOKENIZERS),

    # model
    "model.impl": Choice("the layers' code: PyTorch's, or deepzoo's own from-scratch blocks (deepzoo/nn)", *IMPLS),
    "model.dropout": Float("dropout probability", 0, 1, hi_open=True),
    "model.channels_last": Bool("channels-last memory layout for the convolutions (faster on CPUs)"),
    "model.layers": Int("number of layers", 1, 100),
    "model.embed_dim": Int("width of the token embedding", 1, 65536),
}

_TEXT = "*-sst2 *-chnsenticorp bilstm-waimai lstm-text *-imdb"
_IMAGE_CLASSIFIERS = "mlp-mnist cnn-mnist autograd-mlp-mnist"
_GENERATIVE = "vae-mnist gan-mnist dcgan-mnist ddpm-mnist"
_TEXT_DATASETS = ("sst2", "chnsenticorp", "waimai", "imdb")

FAMILIES: list[tuple[str, dict[str, Key]]] = [
    (_IMAGE_CLASSIFIERS, {
        "data.augment_shift": Int("shift training images by up to this many pixels at random (0: no shift)", 0, 14),
    }),
    ("mlp-mnist", {
        "model.hidden": Widths("widths of the hidden layers"),
        "model.activation": Choice("activation of the hidden layers (none: the identity, a linear net)",
                                   "relu", "tanh", "sigmoid", "none"),
    }),
    ("cnn-mnist", {
        "model.c1": Int("channels of the first convolution", 1, 4096),
        "model.c2": Int("channels of the second convolution", 1, 4096),
        "model.hidden": Int("units of the fully connected layer", 1, 65536),
    }),
    ("autograd-mlp-mnist", {
        "data.val_size": Int("training images held out for validation, which picks the best epoch", 1, 10_000_000),
        "model.hidden": Widths("widths of the hidden layers"),
        "optim.name": Choice("the optimiser (deepzoo.autograd's)", "adam", "sgd"),
    }),
    ("*-cifar10", {
        "data.path": Path("CIFAR-10's python archive or its folder, or your images: class folders (optionally under "
                          "train/ val/ test/), IDX files or an .npz (empty: the registered copy)"),
        "data.val_size": Int("training images held out to pick the best epoch (0: none; the last epoch is kept)",
                             0, 10_000_000),
        "data.train_size": Int("train on the first N training images (0: all)", 0, 10_000_000),
        "data.crop_padding": Int("random crop from the image padded by this many pixels (0: no crop)", 0, 16),
        "data.flip": Bool("random horizontal flips"),
        "model.depth": Int("layers: 6n + 2", 8, 1202, check=lambda d: (d - 2) % 6 == 0,
                           says="6n + 2 (20, 32, 44, 56, 110, ...) from 8 to 1202"),
        "model.residual": Bool("shortcut connections (false: the plain net)"),
        "model.shortcut": Choice("shortcut across a change of size: A (identity, zero-padded) or B (projection)",
                                 "A", "B"),
        "model.width": Int("channels of the first stage (the stages have 1, 2 and 4 times as many)", 1, 1024),
        "model.config": List("the conv layers: channel counts, and \"M\" for a 2x2 max-pool", None,
                             check=_conv_config,
                             says="a list of channel counts (1 to 4096) and at most five \"M\" (2x2 max-pools)"),
        "model.hidden": Widths("widths of the fully connected layers before the classifier", min_len=0),
        "model.batch_norm": Bool("batch normalisation after each convolution"),
    }),
    (_GENERATIVE, {
        "eval.classifier": Path("a cnn-mnist run folder, to score samples (Fréchet distance, class entropy; "
                                "empty: no scoring)"),
        "eval.samples": Int("samples drawn to score the model", 2, 1_000_000),
    }),
    ("mlp-mnist cnn-mnist " + _GENERATIVE, {
        "data.path": Path("your images: a folder of class folders (optionally under train/ val/ test/), MNIST-style "
                          "IDX files, or an .npz (empty: MNIST)"),
    }),
    ("mlp-mnist cnn-mnist *-cifar10 " + _GENERATIVE, {     # your images (data.path; deepzoo/data/images.py)
        "data.image_size": Int("resize every image of data.path to N x N (0: keep their size, which must then be "
                               "one for all)", 0, 4096),
        "data.split": List("train / val / test fractions of data.path's images, for the splits it lacks (no val/ or "
                           "test/ folder, no x_test); with data.path it replaces data.val_size", None,
                           check=lambda v: _split(v) and v[0] > 0,
                           says="three numbers in [0, 1] summing to 1, the first above 0, such as [0.8, 0.1, 0.1]"),
        "data.skip_bad_rows": Bool("skip images of data.path that cannot be read, and say how many (else stop at the "
                                   "first)"),
    }),
    ("vae-mnist", {
        "model.kind": Choice("encoder and decoder: MLPs or convolutions", "mlp", "conv"),
        "model.latent": Int("dimensions of the latent code z", 1, 10_000),
        "model.hidden": Int("units of each hidden layer (mlp)", 1, 65536),
        "model.layers": Int("hidden layers of the encoder and of the decoder (mlp)", 1, 100),
        "model.channels": Int("channels of the first convolution (conv)", 1, 4096),
    }),
    ("gan-mnist dcgan-mnist", {
        "model.kind": Choice("the players: MLPs (the notes' GAN) or DCGAN's convolutions", "mlp", "dcgan"),
        "model.latent": Int("dimensions of the generator's noise input", 1, 10_000),
        "model.width": Int("base width of both players", 1, 4096),
        "optim.name": Choice("the optimiser (one parameter group per player)", "adam"),
    }),
    ("ddpm-mnist", {
        "model.steps": Int("diffusion steps T", 2, 100_000),
        "model.schedule": Choice("noise schedule", "linear", "cosine"),
        "model.width": Int("base channels of the U-Net", 8, 1024, check=lambda w: w % 8 == 0,
                           says="a multiple of 8 (GroupNorm of 8 groups) from 8 to 1024"),
        "model.patch": Choice("1: pixels; 2: 2x2 squares folded into channels", 1, 2),
        "model.attention": Bool("self-attention at 7x7"),
        "model.ema": Float("decay of the weights' moving average used to sample (0: none)", 0, 1, hi_open=True),
        "eval.sample_steps": Int("sampling steps (DDIM over a subsequence of the T steps)", 1, 100_000),
        "eval.eta": Float("DDIM's eta: 0 deterministic, 1 fresh noise at each step (ancestral)", 0, 1),
    }),
    ("gcn-*", {
        "data.format": Choice("planetoid (ind.NAME.* files: Cora, CiteSeer, PubMed) or csv (your edges.csv, "
                              "labels.csv, features.csv)",
                              "planetoid", "csv"),
        "data.name": Text("the Planetoid graph: cora, citeseer, pubmed or your own (its files are ind.NAME.*; "
                          "the published figure follows it)", empty=False,
                          check=lambda v: "/" not in v and "\\" not in v),
        "data.path": Path("a folder of Planetoid files ind.NAME.* (empty: the registered Cora)"),
        "data.normalise_features": Bool("scale each node's features to sum to 1"),
        "data.edges": Path("your edges.csv (source,target)"),
        "data.labels": Path("your labels.csv (node,label[,split])"),
        "data.features": Path("your features.csv (node, then one column a feature; empty: one-hot ids)"),
        "data.split": List("train / val / test fractions of the labelled nodes, when labels.csv has no split "
                           "column", None, check=_split, says="three numbers in [0, 1] summing to 1"),
        "model.hidden": Int("width of the hidden graph convolutions", 1, 65536),
        "model.layers": Int("graph convolutions", 1, 100),
        "optim.name": Choice("the optimiser (weight decay on the first layer only)", "adam"),
    }),
    ("lstm-ptb", {
        "data.path": Path("your text file, one sentence or paragraph a line, cut 90/5/5 (empty: Penn Treebank)"),
        "data.train_path": Path("your corpus's training file, words split on spaces (with data.valid_path and "
                                "data.test_path)"),
        "data.valid_path": Path("your corpus's validation file"),
        "data.test_path": Path("your corpus's test file"),
        "data.batch_size": Int("parallel streams the text is laid out in", 1, 1_000_000),
        "data.bptt": Int("words per window of truncated backpropagation through time", 1, 100_000),
        "model.cell": Choice("recurrent cell", "rnn", "gru", "lstm"),
        "model.hidden": Int("units of each recurrent layer", 1, 65536),
        "model.layers": Int("recurrent layers", 1, 100),
        "model.tie": Bool("one matrix for the input embedding and the output layer (needs embed_dim == hidden)"),
        "model.softmax": Choice("the output layer: full softmax over the vocabulary, or adaptive (frequent words in a "
                                "head, the rest in clusters; exact probabilities, about 3x less arithmetic on PTB)",
                                "full", "adaptive"),
        "model.cutoffs": List("model.softmax=adaptive: where the frequency-sorted vocabulary is split into head "
                              "and clusters", Int("", 1, 10_000_000), 1, 8,
                              says="rising word counts such as [2000] or [2000, 10000]",
                              check=lambda v: all(b > a for a, b in zip(v, v[1:]))),
    }),
    ("gpt-shakespeare", {
        "data.path": Path("your UTF-8 text file (empty: tiny Shakespeare)"),
        "data.batch_size": Int("random windows per step", 1, 1_000_000),
        "data.steps_per_epoch": Int("steps per \"epoch\" (validation, logging and checkpoint)", 1, 10_000_000),
        "data.eval_block": Int("characters per validation window", 1, 65536),
        "data.eval_windows": Int("validation windows scored after each epoch, evenly spaced (0: all); the final "
                                 "figure scores all", 0, 10_000_000),
        "model.block_size": Int("characters of context", 1, 65536),
        "model.n_layer": Int("transformer blocks", 1, 100),
        "model.n_head": Int("attention heads", 1, 1024),
        "model.n_embd": Int("model width", 1, 65536),
        "model.bias": Bool("biases in the linear layers and LayerNorms"),
        "model.pretrained": Path("a character-GPT run folder to start from: its weights and character table "
                                 "(same model shape; empty: train from scratch)"),
    }),
    ("transformer-multi30k", {
        "data.path": Path("your pairs: source TAB target, one a line (empty: Multi30k)"),
        "data.src_path": Path("your source sentences, one a line, aligned with data.tgt_path"),
        "data.tgt_path": Path("your target sentences, one a line, aligned with data.src_path"),
        "data.src": Choice("Multi30k's source language", "de", "en"),
        "data.tgt": Choice("Multi30k's target language", "de", "en"),
        "data.vocab_size": Int("BPE vocabulary size, shared by both languages", 100, 1_000_000),
        "data.max_len": Int("training pairs longer than this many subwords are left out", 1, 10_000),
        "data.max_tokens": Int("padded tokens per batch", 1, 10_000_000),
        "model.d_model": Int("model width", 1, 65536),
        "model.nhead": Int("attention heads", 1, 1024),
        "model.layers": Int("encoder layers and decoder layers", 1, 100),
        "model.dim_feedforward": Int("width of the feed-forward layers", 1, 1_000_000),
        "model.norm_first": Bool("pre-norm blocks (LayerNorm before attention and feed-forward)"),
        "model.label_smoothing": Float("label smoothing of the cross-entropy", 0, 1, hi_open=True),
        "model.beam": Int("beam width when translating (1: greedy)", 1, 100),
    }),
    (_TEXT, {
        "data.dataset": Choice("sst2, chnsenticorp, waimai, imdb, or csv (your files: data.path or data.train_path)",
                               "csv", *_TEXT_DATASETS),
        "data.path": Path("your one CSV, TSV or JSON-lines file, cut 80/10/10 (data.dataset = csv)"),
        "data.train_path": Path("your training file, CSV, TSV or JSON lines (data.dataset = csv; with data.test_path)"),
        "data.val_path": Path("your validation file (empty: 10% of the training rows)"),
        "data.test_path": Path("your test file (with data.train_path)"),
        "data.text_column": Text("column (or JSON key) of the texts (data.dataset = csv)", empty=False),
        "data.label_column": Text("column (or JSON key) of the labels (data.dataset = csv)", empty=False),
        "data.skip_bad_rows": Bool("skip rows that cannot be read, and say how many (else stop at the first)"),
        "data.max_len": Int("cut texts to this many tokens (0: no cut; a pre-trained encoder: its positions)",
                            0, 1_000_000),
        "data.truncate": Choice("a longer text keeps its first tokens (head), or its first quarter and last three "
                                "quarters (head+tail)", "head", "head+tail"),
        "data.extra_train": List("other datasets whose training split is added to training", Choice("", *_TEXT_DATASETS),
                                 0, 4, says="a list of sst2, chnsenticorp, waimai, imdb, such as [\"waimai\"]"),
        "model.arch": Choice("the network: a recurrent cell, Kim's CNN, or a Transformer encoder", "rnn", "gru",
                             "lstm", "textcnn", "transformer"),
        "model.heads": Int("attention heads (transformer)", 1, 1024),
        "model.pretrained": Path("a bert-pretrain run folder: its tokenizer and encoder weights, a new head "
                                 "(model.arch = transformer; empty: none)"),
        "model.init": Choice("with model.pretrained: start from its weights, or from random ones (its tokenizer "
                             "and shape only)", "pretrained", "random"),
        "model.freeze_layers": Int("keep the embeddings and the lowest N encoder layers fixed (0: none)", 0, 100),
        "model.hidden": Int("units of each recurrent layer (per direction)", 1, 65536),
        "model.layers": Int("recurrent layers", 1, 100),
        "model.bidirectional": Bool("read the text both ways (recurrent nets)"),
        "model.word_dropout": Float("probability of replacing a training token by <unk>", 0, 1, hi_open=True),
        "model.pool": Choice("sentence vector: the last states, the maximum or mean over time, or the [CLS] "
                             "token's (pre-trained transformer)", *POOLS, "cls"),
        "model.widths": List("TextCNN filter widths", Int("", 1, 100), 1, 16,
                             says="a non-empty list of integers from 1 to 100 such as [3, 4, 5]"),
        "model.filters": Int("TextCNN filters per width", 1, 100_000),
        "model.vectors": Text("pretrained word vectors: a word2vec .txt/.bin file, a word2vec run folder, or "
                              "glove-6b-50d (empty: none)"),
        "model.vectors_vocab": Int("also add the N most frequent words of model.vectors to the vocabulary", 0,
                                   100_000_000),
        "model.freeze_vectors": Bool("keep the pretrained vectors fixed"),
    }),
    ("bert-pretrain*", {
        "data.corpus": Choice("en (IMDB reviews, PTB, SST-2 sentences), zh (the Chinese reviews' training text) or "
                              "path (data.path)", "en", "zh", "path"),
        "data.path": Path("your text: a file, or a folder of .txt files, one text a line (data.corpus = path)"),
        "data.language": Choice("the language of data.path (fine-tuning checks it against the classifier's text)",
                                "en", "zh"),
        "data.vocab_size": Int("WordPiece vocabulary size", 100, 1_000_000),
        "data.max_len": Int("tokens per row (the encoder's positions)", 8, 4096),
        "data.batch_size": Int("rows per step", 1, 1_000_000),
        "data.steps_per_epoch": Int("steps per \"epoch\" (validation, logging and checkpoint)", 1, 10_000_000),
        "model.d_model": Int("model width", 1, 65536),
        "model.layers": Int("encoder layers", 1, 100),
        "model.heads": Int("attention heads", 1, 1024),
        "model.mask_prob": Float("share of tokens to guess (80% [MASK], 10% random, 10% kept)", 0, 1, lo_open=True,
                                 hi_open=True),
    }),
    ("logreg-binary mlp-regression", {
        "data.path": Path("your numeric CSV with a header row (empty: the shipped dataset)"),
        "data.target": Text("the target column of data.path (empty: the shipped dataset's)"),
        "data.split_seed": Int("seed of the fixed 60/20/20 split", 0, MAX_SEED),
        "model.hidden": Widths("widths of the hidden layers", min_len=0),
        "model.activation": Choice("activation of the hidden layers (none: the identity, a linear net)",
                                   "relu", "tanh", "sigmoid", "none"),
    }),
    ("word2vec-*", {
        "data.corpus": Choice("ptb, chinese (the review datasets' training texts) or path (data.path)",
                              "ptb", "chinese", "path"),
        "data.path": Path("your text file, or a folder of them (data.corpus = path)"),
        "data.tokenizer": Choice("tokeniser of data.path: space (as written), en, zh (jieba), zh-char",
                                 "space", *TOKENIZERS),
        "model.vector_size": Int("dimensions of the vectors", 1, 10_000),
        "model.window": Int("context words on each side", 1, 1000),
        "model.min_count": Int("ignore words seen fewer times", 1, 1_000_000_000),
        "model.sg": Bool("skip-gram (false: CBOW)"),
        "model.hs": Bool("hierarchical softmax"),
        "model.negative": Int("negative samples per word (0: none)", 0, 100),
        "model.ns_exponent": Float("exponent of the negative-sampling distribution", -10, 10),
        "model.cbow_mean": Bool("CBOW averages the context vectors (false: sums them)"),
        "model.sample": Float("threshold of frequent-word downsampling (0: none)", 0, 1),
        "model.alpha": Float("initial learning rate", 0, 10, lo_open=True),
        "model.min_alpha": Float("final learning rate", 0, 10),
        "model.workers": Int("threads (0: every core)", 0, 4096),
        "model.compute_loss": Bool("compute the loss to log it"),
        "model.shared_negatives": Bool("skip-gram with negative sampling: one draw of noise words per window, "
                                       "shared by its context words (false: one per context word, as gensim)"),
        "eval.restrict_vocab": Int("the analogy and similarity tests use the N most frequent words", 1, 100_000_000),
    }),
    ("qlearning-* dqn-cartpole", {
        "env.id": Text("the gymnasium environment (discrete actions)", empty=False,
                       check=lambda v: bool(_ENV_ID.fullmatch(v)), says="a gymnasium id such as FrozenLake-v1"),
        "env.kwargs": Text("options of gymnasium.make (empty: none)",
                           check=_toml_pairs, says="TOML pairs such as \"map_name = '8x8', is_slippery = true\""),
        "agent.gamma": Float("discount factor", 0, 1),
        "agent.eps_start": Float("ε, the probability of a random action, at the start", 0, 1),
        "agent.eps_end": Float("ε at the end of its decay", 0, 1),
        "agent.eps_fraction": Float("fraction of training over which ε decays linearly", 0, 1),
        "eval.episodes": Int("greedy episodes of the final evaluation", 1, 10_000_000),
    }),
    ("qlearning-*", {
        "agent.lr": Float("α, the step size of the update, at the start", 0, 1, lo_open=True),
        "agent.lr_end": Float("α at the end of its decay", 0, 1),
        "agent.lr_fraction": Float("fraction of the episodes over which α decays linearly", 0, 1),
        "train.episodes": Int("training episodes", 1, 100_000_000),
    }),
    ("dqn-cartpole", {
        "agent.lr": Float("Adam's learning rate", 0, 100, lo_open=True),
        "agent.batch_size": Int("transitions per minibatch", 1, 1_000_000),
        "agent.buffer_size": Int("transitions the replay buffer holds", 1, 10_000_000),
        "agent.learning_starts": Int("environment steps before the first update", 0, 1_000_000_000),
        "agent.train_every": Int("environment steps between two rounds of updates", 1, 1_000_000_000),
        "agent.gradient_steps": Int("minibatch updates per round", 1, 100_000),
        "agent.target_every": Int("environment steps between two target-network updates", 1, 1_000_000_000),
        "agent.tau": Float("target update θ⁻ <- τ θ + (1 - τ) θ⁻ (1: a hard copy)", 0, 1),
        "agent.double": Bool("Double DQN target"),
        "agent.hidden": Widths("widths of the Q-network's hidden layers"),
        "agent.clip_grad_norm": Float("clip the gradient's norm to this (0: no clipping)", 0, 1e6),
        "train.steps": Int("environment steps of training", 1, 1_000_000_000),
        "eval.every": Int("environment steps between two evaluations", 1, 1_000_000_000),
        "eval.episodes": Int("greedy episodes of each evaluation (they pick the network kept)", 1, 10_000_000),
        "eval.final_episodes": Int("greedy episodes of the final evaluation of the kept network", 1, 10_000_000),
        "eval.target_return": Float("stop once an evaluation's mean return reaches it (0: never)", -1e9, 1e9),
    }),
    ("vit-mnist", {     # MNIST's data keys, as in mlp-mnist and cnn-mnist (the model keys: "vit-*" below)
        "data.augment_shift": Int("shift training images by up to this many pixels at random (0: no shift)", 0, 14),
        "data.path": Path("your images: a folder of class folders (optionally under train/ val/ test/), MNIST-style "
                          "IDX files, or an .npz (empty: MNIST); their sides must be multiples of model.patch"),
        "data.image_size": Int("resize every image of data.path to N x N (0: keep their size, which must then be "
                               "one for all)", 0, 4096),
        "data.split": List("train / val / test fractions of data.path's images, for the splits it lacks (no val/ or "
                           "test/ folder, no x_test); with data.path it replaces data.val_size", None,
                           check=lambda v: _split(v) and v[0] > 0,
                           says="three numbers in [0, 1] summing to 1, the first above 0, such as [0.8, 0.1, 0.1]"),
        "data.skip_bad_rows": Bool("skip images of data.path that cannot be read, and say how many (else stop at the "
                                   "first)"),
    }),
    ("vit-*", {         # after "*-cifar10": its model.depth (6n + 2) is the ResNets'
        "model.patch": Int("side of the square patches the image is cut into (it must divide the image sides)",
                           1, 4096),
        "model.dim": Int("model width D: each patch token's size", 1, 65536),
        "model.depth": Int("encoder layers", 1, 100),
        "model.heads": Int("attention heads (model.dim must be a multiple)", 1, 1024),
        "model.mlp_dim": Int("width inside each encoder layer's MLP", 1, 1_000_000),
        "model.head_hidden": Int("width of the classification head's tanh hidden layer (0: one linear layer)",
                                 0, 1_000_000),
        "model.label_smoothing": Float("label smoothing of the training cross-entropy", 0, 1, hi_open=True),
        "model.pool": Choice("what the head reads: the class token's final state (cls), or the mean of the patch "
                             "tokens' final states with no class token (mean)", "cls", "mean"),
    }),
]


@dataclass(frozen=True)
class Rule:
    """A constraint between keys: ``ok(*values)`` must hold; ``says`` what it asks for."""
    recipes: str
    keys: tuple[str, ...]
    ok: Callable[..., bool]
    says: str


RULES: list[Rule] = [
    Rule("*", ("optim.name", "optim.nesterov", "optim.momentum"), lambda n, nesterov, m: n != "sgd" or not nesterov or m > 0,
         "optim.nesterov needs optim.momentum > 0"),
    Rule("gpt-shakespeare", ("model.n_embd", "model.n_head"), lambda e, h: e % h == 0,
         "model.n_embd must be a multiple of model.n_head"),
    Rule("transformer-multi30k", ("model.d_model", "model.nhead"), lambda d, h: d % h == 0,
         "model.d_model must be a multiple of model.nhead"),
    Rule("bert-pretrain*", ("model.d_model", "model.heads"), lambda d, h: d % h == 0,
         "model.d_model must be a multiple of model.heads"),
    Rule("transformer-multi30k", ("data.src", "data.tgt"), lambda s, t: s != t, "data.src and data.tgt must differ"),
    Rule("transformer-multi30k", ("data.src_path", "data.tgt_path"), lambda s, t: bool(s) == bool(t),
         "give both data.src_path and data.tgt_path (two files aligned line by line), or neither"),
    Rule("lstm-ptb", ("model.tie", "model.embed_dim", "model.hidden"), lambda tie, e, h: not tie or e == h,
         "model.tie needs model.embed_dim == model.hidden"),
    Rule("ddpm-mnist", ("eval.sample_steps", "model.steps"), lambda s, t: s <= t,
         "eval.sample_steps must be at most model.steps"),
    Rule("ddpm-mnist", ("model.schedule", "model.steps"), lambda sched, t: sched != "linear" or t > 20,
         "the linear schedule scales Ho et al.'s betas by 1000/T, so its last beta 20/T passes 1 unless "
         "model.steps > 20; use model.schedule = cosine for fewer steps"),
    Rule("gcn-*", ("data.format", "data.edges", "data.labels"), lambda f, e, l: f != "csv" or bool(e and l),
         "data.format = csv needs data.edges and data.labels"),
    Rule(_TEXT + " lstm-ptb", ("data.path", "data.train_path"), lambda p, t: not (p and t),
         "give data.path (one file to cut) or data.train_path (files already split), not both "
         "(--set data.path= clears it)"),
    Rule(_TEXT, ("data.train_path", "data.val_path", "data.test_path"), lambda tr, v, te: bool(tr) == bool(te)
         and (tr or not v), "data.train_path and data.test_path go together (data.val_path is optional)"),
    Rule(_TEXT, ("data.dataset", "data.path", "data.train_path"), lambda d, p, t: d == "csv" or not (p or t),
         "your own files need data.dataset = csv"),
    Rule("lstm-ptb", ("data.train_path", "data.valid_path", "data.test_path"),
         lambda *paths: all(paths) or not any(paths),
         "give the three files of a corpus: data.train_path, data.valid_path and data.test_path"),
    Rule(_TEXT, ("model.arch", "model.pretrained"), lambda arch, pre: arch == "transformer" or not pre,
         "model.pretrained needs model.arch = transformer"),
    Rule(_TEXT, ("model.arch", "model.pool"), lambda arch, pool: (pool == "cls") <= (arch == "transformer")
         and (arch != "transformer" or pool != "last"),
         "model.pool = cls needs model.arch = transformer, which pools with cls, mean or max (not last)"),
    Rule(_TEXT, ("model.arch", "model.embed_dim", "model.heads"), lambda arch, e, h: arch != "transformer" or e % h == 0,
         "model.embed_dim must be a multiple of model.heads"),
    Rule(_TEXT, ("data.dataset", "data.extra_train"), lambda d, extra: d not in extra,
         "data.extra_train must name datasets other than data.dataset"),
    Rule("word2vec-*", ("model.hs", "model.negative"), lambda hs, n: hs or n > 0,
         "choose hierarchical softmax (model.hs = true) or negative sampling (model.negative > 0), or both"),
    Rule("word2vec-*", ("model.min_alpha", "model.alpha"), lambda lo, hi: lo <= hi,
         "model.min_alpha must be at most model.alpha"),
]

# Keys added to a recipe with a default that differs from what runs made before had: {recipes: {key: the
# value an older run folder's config.json means by leaving the key out}}.
ADDED: dict[str, dict[str, object]] = {
    "vit-*": {"model.pool": "cls"},
    "word2vec-*": {"model.shared_negatives": False},
}

# Keys an older deepzoo called otherwise: {recipes: {old key: (new keys, ...)}}. A run folder's config.json
# is read with them mapped; --set and --config name the new key in their error.
RENAMED: dict[str, dict[str, tuple[str, ...]]] = {
    "qlearning-*": {"agent.epsilon": ("agent.eps_start",), "agent.epsilon_end": ("agent.eps_end",),
                    "agent.decay_fraction": ("agent.eps_fraction", "agent.lr_fraction")},
}


def _matches(name: str, patterns: str) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns.split())


@dataclass(frozen=True)
class Schema:
    """The keys, rules and renamed keys of one recipe."""
    recipe: str
    keys: dict[str, Key]
    rules: tuple[Rule, ...]
    renamed: dict[str, tuple[str, ...]]
    added: dict[str, object] = field(default_factory=dict)

    def check(self, cfg: dict, sources: dict[str, str] | None = None, where: str = "config") -> None:
        """Raise one DeepzooError line for the first value the schema does not allow (``sources``: where each
        key's value came from, e.g. "--set"; others are put down to ``where``)."""
        sources = sources or {}
        flat = flatten(cfg)
        for dotted, value in flat.items():
            key = self.keys.get(dotted)        # (resolve refuses unknown keys; an old run may hold removed ones)
            if key is not None and not key.ok(value):
                raise DeepzooError(f"{sources.get(dotted, where)}: {dotted} must be {key.allowed()}, "
                                   f"got {show(value)}")
        for rule in self.rules:
            values = [flat.get(k) for k in rule.keys]
            if not rule.ok(*values):
                source = next((sources[k] for k in reversed(rule.keys) if k in sources), where)
                got = ", ".join(f"{k} = {show(v, 40)}" for k, v in zip(rule.keys, values))
                raise DeepzooError(f"{source}: {rule.says}, got {got}")

    def table(self, cfg: dict) -> list[str]:
        """One line per key: ``key = value`` (TOML), then ``# description (allowed)``: --print-config's and
        --help's table. The lines read back as a TOML file of overrides (--config)."""
        import json
        rows = [(f"{k} = {json.dumps(v, ensure_ascii=False)}", self.keys.get(k)) for k, v in flatten(cfg).items()]
        width = min(max((len(r) for r, _ in rows), default=0), 48)
        return [f"{r.ljust(width)}  # {key.help}; {key.spec()}" if key else r for r, key in rows]


def for_recipe(recipe) -> Schema:
    """The schema of ``recipe`` (a Recipe): an entry for each of its keys, FAMILIES over SHARED."""
    keys = {}
    for dotted in flatten(recipe.full_defaults()):
        key = SHARED.get(dotted)
        for patterns, table in FAMILIES:
            if dotted in table and _matches(recipe.name, patterns):
                key = table[dotted]
        if key is not None:
            keys[dotted] = key
    rules = tuple(r for r in RULES if _matches(recipe.name, r.recipes) and all(k in keys for k in r.keys))
    renamed = {old: new for patterns, table in RENAMED.items() if _matches(recipe.name, patterns)
               for old, new in table.items()}
    added = {key: value for patterns, table in ADDED.items() if _matches(recipe.name, patterns)
             for key, value in table.items() if key in keys}
    return Schema(recipe.name, keys, rules, renamed, added)


def upgrade(schema: Schema, config: dict) -> dict:
    """A run's stored config with the keys an older deepzoo named otherwise given their new names (a new
    name already present wins), and the keys added since with the value the run had (ADDED)."""
    import copy
    config = copy.deepcopy(config)
    for dotted, value in schema.added.items():
        section, _, leaf = dotted.rpartition(".")
        node = config.get(section) if section else config
        if isinstance(node, dict) and leaf not in node:
            node[leaf] = value
    for old, new_keys in schema.renamed.items():
        section, _, leaf = old.rpartition(".")
        node = config.get(section) if section else config
        if not isinstance(node, dict) or leaf not in node:
            continue
        value = node.pop(leaf)
        for new in new_keys:
            new_section, _, new_leaf = new.rpartition(".")
            target = config.setdefault(new_section, {}) if new_section else config
            if isinstance(target, dict):
                target.setdefault(new_leaf, value)
    return config
