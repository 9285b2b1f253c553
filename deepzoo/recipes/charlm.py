"""``gpt-shakespeare``: a character-level GPT on tiny Shakespeare (or any text file you give).

The text is split as nanoGPT splits it: the first 90% of characters train, the last 10% validate; the
vocabulary is the set of characters of the whole file (65 for tiny Shakespeare). Training draws
``data.batch_size`` random windows of ``model.block_size`` characters per step (an "epoch" here is
``data.steps_per_epoch`` steps, so the engine validates, logs and checkpoints every that many steps).
Validation is the mean cross-entropy (nats per character) over the *whole* validation text, cut into
consecutive windows of ``data.eval_block`` characters (64, nanoGPT's CPU block, so figures compare
with its validation loss at any training block size). After each epoch, to pick the best one and draw
the curves, only ``data.eval_windows`` of those windows are scored (256, evenly spaced over the text:
16,384 characters, as many as nanoGPT's 20 batches of 12 x 64); the final figure scores all of them
(1,743 for tiny Shakespeare) with the best weights. Scoring the whole text every epoch took a quarter of
the default run's time.

The reference is nanoGPT's CPU configuration (4 layers, 4 heads, width 128, block 64, batch 12,
2000 iterations, lr 1e-3, no dropout): validation loss about 1.88. This recipe reaches it in less time
with a model half as deep (2 blocks: about half the time per step) trained at a 3x higher peak learning
rate (3e-3, 50 warm-up steps, cosine decay to 3e-4 over 1,600 steps, no weight decay). At this budget
(about 1.2 million characters seen) the model is data-starved rather than capacity-bound, so a cheaper
step buys more than a deeper network. Measured on 2 idle cores of an AVX2-only EPYC (``deepzoo train
gpt-shakespeare --set ...``, one run each): 3 blocks for 1,400 steps, validation loss 1.848 in 56 s of
training; 3 blocks for 1,200 steps, 1.885 (50 s); 2 blocks for 1,600 steps, 1.813 (39 s), the default.
benchmarks/charlm.py times the default against nanoGPT's model in one process, benchmarks/peers.py
against nanoGPT's own train.py as whole processes.

``--set data.path=book.txt`` trains on your own text (UTF-8). ``deepzoo predict RUN "ROMEO:"
--temperature 0.8 --top-k 40`` continues a prompt.

``--set model.pretrained=RUN`` fine-tunes: the new run starts from the weights of RUN, another finished
character-GPT run folder (its best checkpoint, read as ``deepzoo.load`` reads it: config.json,
``inference/`` and the checkpoint, no dataset), and keeps RUN's character table, which must hold every
character of the new text (else one error naming the missing ones, before any training). The model's
shape (``model.n_layer``, ``n_head``, ``n_embd``, ``block_size``, ``bias``) must equal RUN's: a key that
differs is one error naming both values, not silently taken from RUN, so config.json always says the
shape the run has. ``model.dropout`` and ``model.impl`` may differ. The new run's ``inference/`` holds
the character table and its checkpoints the weights, so it predicts without RUN; ``deepzoo resume`` and
``deepzoo eval``, which rebuild the training task, read RUN again. ``deepzoo experiment
pretrain-finetune`` measures what pre-training buys (deepzoo/experiments/pretrain_finetune.py).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from deepzoo.data.registry import locate, samples_dir
from deepzoo.data.text import json_fields, read_utf8
from deepzoo.errors import DeepzooError
from deepzoo.models.gpt import GPT
from deepzoo.recipes import Recipe, Reference, register
from deepzoo.train.engine import Task

MIN_CHARS = 1000
DAMAGED = "copy the run folder again, or retrain"  # what to do about a damaged inference/ file


def read_text(path: Path) -> str:
    text = read_utf8(path)
    if len(text) < MIN_CHARS:
        raise DeepzooError(f"{path}: only {len(text)} characters; a character model needs at least {MIN_CHARS}")
    return text


class CharVocab:
    """Characters <-> ids, in sorted order (nanoGPT's encoding, so ids match across the two)."""

    def __init__(self, chars) -> None:
        self.itos = sorted(set(chars))
        self.stoi = {c: i for i, c in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        unknown = sorted({c for c in text if c not in self.stoi})
        if unknown:
            raise DeepzooError(f"characters not in the training text: {''.join(unknown)!r}")
        return [self.stoi[c] for c in text]

    def decode(self, ids) -> str:
        return "".join(self.itos[int(i)] for i in ids)


class RandomWindows:
    """``steps`` batches of ``batch_size`` windows starting at uniformly random offsets; y = x shifted."""

    def __init__(self, data: torch.Tensor, batch_size: int, block: int, steps: int) -> None:
        if len(data) <= block + 1:
            raise DeepzooError(f"the training text ({len(data)} characters) is shorter than one window "
                               f"(model.block_size {block}); lower model.block_size")
        self.data, self.batch_size, self.block, self.steps = data, batch_size, block, steps
        self.offsets = torch.arange(block + 1)

    def __len__(self) -> int:
        return self.steps

    def epoch(self, generator=None):
        for _ in range(self.steps):
            start = torch.randint(len(self.data) - self.block - 1, (self.batch_size, 1), generator=generator)
            chunk = self.data[start + self.offsets]                         # B, block + 1
            yield chunk[:, :-1], chunk[:, 1:]


class ConsecutiveWindows:
    """The whole text in consecutive windows of ``block`` characters (the last partial one dropped)."""

    def __init__(self, data: torch.Tensor, block: int, batch_size: int = 64) -> None:
        n = (len(data) - 1) // block
        if n == 0:
            raise DeepzooError(f"the validation text ({len(data)} characters) is shorter than one window of "
                               f"{block}; give a longer text")
        self.x = data[: n * block].view(n, block)
        self.y = data[1: n * block + 1].view(n, block)
        self.batch_size = batch_size

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def spread(self, n: int) -> "ConsecutiveWindows":
        """``n`` of the windows, evenly spaced over the text (all of them if there are no more)."""
        part = ConsecutiveWindows.__new__(ConsecutiveWindows)
        keep = torch.linspace(0, len(self.x) - 1, min(n, len(self.x))).round().long()
        part.x, part.y, part.batch_size = self.x[keep], self.y[keep], self.batch_size
        return part

    def epoch(self, generator=None):
        for i in range(0, len(self.x), self.batch_size):
            yield self.x[i: i + self.batch_size], self.y[i: i + self.batch_size]


def source_path(cfg: dict, data_dir) -> Path:
    d = cfg["data"]
    if d["path"]:
        return Path(d["path"])
    if d["sample"]:
        return samples_dir() / "text" / "tinyshakespeare" / "sample-input.txt"
    return locate("tinyshakespeare", data_dir) / "input.txt"


def build(cfg: dict, data_dir) -> Task:
    d, m = cfg["data"], cfg["model"]
    path = source_path(cfg, data_dir)
    text = read_text(path)
    if m["pretrained"]:
        model, vocab = from_pretrained(cfg, text, path)
    else:
        vocab = CharVocab(text)
        model = gpt(cfg, len(vocab))
    data = torch.tensor(vocab.encode(text), dtype=torch.long)
    n = int(0.9 * len(data))
    eval_block = min(d["eval_block"], m["block_size"])
    val = ConsecutiveWindows(data[n:], eval_block)
    return Task(model=model, train=RandomWindows(data[:n], d["batch_size"], m["block_size"], d["steps_per_epoch"]),
                val=val, val_estimate=val.spread(d["eval_windows"]) if d["eval_windows"] else None, test=None,
                loss=lambda logits, y: F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1)),
                monitor="val_loss", headline="val_loss", context={"vocab": vocab})


def gpt(cfg: dict, vocab_size: int) -> GPT:
    m = cfg["model"]
    return GPT(vocab_size, block_size=m["block_size"], n_layer=m["n_layer"], n_head=m["n_head"],
               n_embd=m["n_embd"], dropout=m["dropout"], bias=m["bias"], impl=m["impl"])


SHAPE_KEYS = ("n_layer", "n_head", "n_embd", "block_size", "bias")  # must equal the pretrained run's
SHOW_MISSING = 20       # missing characters named in the error (then a count)


def from_pretrained(cfg: dict, text: str, path: Path) -> tuple[GPT, CharVocab]:
    """The model of ``cfg`` holding the weights of the run folder ``model.pretrained``, and that run's
    character table; one :class:`DeepzooError` if the run is not a character GPT, a shape key differs,
    or the table lacks a character of ``text``."""
    from deepzoo.train.run import load_model, read_run
    source = cfg["model"]["pretrained"]
    where = f"model.pretrained={source}"
    try:
        _, _, recipe, pre_cfg = read_run(source)
    except DeepzooError as e:
        raise DeepzooError(f"{where}: {e}") from None
    if recipe.build is not build:
        raise DeepzooError(f"{where} is a {recipe.name} run; fine-tuning needs a character-GPT run "
                           f"(gpt-shakespeare)")
    for key in SHAPE_KEYS:
        mine, theirs = cfg["model"][key], pre_cfg["model"][key]
        if mine != theirs:
            mine, theirs = (str(v).lower() if isinstance(v, bool) else v for v in (mine, theirs))
            raise DeepzooError(f"model.{key} is {mine} but the pretrained run {source} has {theirs}; "
                               f"set model.{key}={theirs} (the shape must match)")
    try:
        _, _, pre = load_model(source)      # config.json, inference/ and the best checkpoint: no dataset
    except DeepzooError as e:
        raise DeepzooError(f"{where}: {e}") from None
    vocab = pre.context["vocab"]
    missing = sorted({c for c in text if c not in vocab.stoi})
    if missing:
        shown = "".join(missing[:SHOW_MISSING])
        more = f" and {len(missing) - SHOW_MISSING} more" if len(missing) > SHOW_MISSING else ""
        raise DeepzooError(f"{path} has {len(missing)} character{'s' if len(missing) != 1 else ''} that the "
                           f"character table of the pretrained run {source} lacks: {shown!r}{more}; remove "
                           f"or replace them, or pre-train on a text that has them")
    model = gpt(cfg, len(vocab))
    model.load_state_dict(pre.model.state_dict())   # every tensor, strictly: same names and shapes
    return model, vocab


def artefacts(task: Task, cfg: dict) -> dict:
    """The character table (the sorted characters of the training text; id = position)."""
    return {"inference.json": {"chars": task.context["vocab"].itos}}


def restore(cfg: dict, stored) -> Task:
    path = stored.folder / "inference.json"
    chars = json_fields(stored.json(), path, {"chars": list}, DAMAGED)["chars"]
    if not chars or not all(isinstance(c, str) and len(c) == 1 for c in chars) or chars != sorted(set(chars)):
        raise DeepzooError(f"{path}: field 'chars' must be distinct single characters in sorted order; {DAMAGED}")
    return Task.for_inference(gpt(cfg, len(chars)), {"vocab": CharVocab(chars)})


def continue_texts(task: Task, cfg: dict, prompts: list, length: int = 300, temperature: float = 0.8,
                   top_k: int = 0, seed: int = 0) -> list[dict]:
    """Continue each prompt (:func:`continue_text`), each from the same ``seed``: a prompt's answer does
    not depend on the others in the list."""
    if temperature < 0:
        raise DeepzooError(f"--temperature must be >= 0, got {temperature}")
    for prompt in prompts:
        if not isinstance(prompt, str):
            raise DeepzooError(f"give prompts as text; got {type(prompt).__name__} {prompt!r:.60}")
    return [continue_text(task, cfg, prompt, length, temperature, top_k, seed) for prompt in prompts]


def continue_text(task: Task, cfg: dict, prompt: str, length: int = 300, temperature: float = 0.8,
                  top_k: int = 0, seed: int = 0) -> dict:
    """Continue ``prompt`` by ``length`` characters, sampled at ``temperature`` (0: greedy) from the
    ``top_k`` most likely characters (0: all)."""
    if temperature < 0:
        raise DeepzooError(f"--temperature must be >= 0, got {temperature}")
    vocab = task.context["vocab"]
    ids = torch.tensor([vocab.encode(prompt or "\n")])
    out = task.model.generate(ids, length, temperature=temperature, top_k=top_k,
                              generator=torch.Generator().manual_seed(seed))
    return {"input": prompt, "temperature": temperature, "top_k": top_k,
            "text": vocab.decode(out[0, ids.shape[1]:])}


register(Recipe(
    name="gpt-shakespeare", family="Transformer", dataset="tinyshakespeare",
    description="character-level GPT (2 pre-norm blocks, width 128, causal attention)",
    reference=Reference("val_loss", 1.88, "nanoGPT's CPU configuration on shakespeare_char (val loss; its "
                        "train.py takes about 110-130 s on 2 AVX2 cores, benchmarks/results/peers.json)",
                        "https://github.com/karpathy/nanoGPT",
                        higher_is_better=False),
    defaults={"data": {"sample": False, "path": "", "batch_size": 12, "steps_per_epoch": 100,
                       "eval_block": 64, "eval_windows": 256},
              "model": {"block_size": 64, "n_layer": 2, "n_head": 4, "n_embd": 128, "dropout": 0.0,
                        "bias": False, "impl": "torch", "pretrained": ""},
              "optim": {"name": "adamw", "lr": 3e-3, "schedule": "cosine", "warmup_epochs": 0.5,
                        "min_lr_factor": 0.1, "weight_decay": 0.0},
              "train": {"epochs": 16, "clip_grad_norm": 1.0}},
    presets={"quick": {"data": {"sample": True, "steps_per_epoch": 25},
                       "model": {"block_size": 64, "n_layer": 2, "n_embd": 64},
                       "train": {"epochs": 2}}},
    build=build, artefacts=artefacts, restore=restore,
    predict=continue_texts, predict_help="a prompt to continue, in quotes",
    predict_options=("length", "temperature", "top_k", "seed"),
))
