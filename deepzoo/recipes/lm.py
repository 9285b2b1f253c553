"""``lstm-ptb``: a word-level LSTM language model on the Penn Treebank (Zaremba et al. 2014, "small").

The model is Zaremba's small one: 2 layers of 200 LSTM units, no dropout, weights uniform in
[-0.1, 0.1], batch 20, windows of 20 words (truncated BPTT), plain SGD at a constant rate and then
halved every epoch, gradients clipped by norm; the paper reports test perplexity 114.5 (valid 120.7)
after 13 epochs, the rate constant for 4 of them. Here the rate is constant for 5 epochs
(``optim.decay_start = 4``: the factor is 0.5 ** max(0, e - 4) for the 0-based epoch e), and two changes
make the default fit in 20 minutes on 2 AVX2 cores and land below the paper's figure: the input
embedding and the output matrix are one shared matrix (weight tying, Press & Wolf 2017; ``model.tie``),
and training stops after 7 epochs (the rate then 1/4 of its start; a 10-epoch run validated best at epoch
7 and overfitted after it). ``--set model.tie=false --set optim.decay_start=3 --epochs 13`` is the
paper's setup exactly.

``model.softmax=adaptive`` replaces the softmax over the 10,000 words by the adaptive softmax
(deepzoo/nn/softmax.py: the 2,000 most frequent words in a head, the rest in a cluster whose softmax is
computed only for the words that fall in it). A training step is then 1.9x faster on 2 AVX2 cores, but
on PTB at this size the model overfits sooner: validation perplexity 137 at its best (epoch 3), against
the full softmax's 114, so the default keeps the full softmax; the adaptive one is for vocabularies of
100,000 words and more, where the output layer is most of the cost.

The rate is written for the loss as the engine computes it, the mean cross-entropy per word: the
paper's lr 1 and clipping norm 5 apply to the loss summed over the 20 steps of a window (averaged over
the batch), whose gradient is 20 times larger, so the same updates are lr 20 and norm 0.25 here.

Your own text, two doors (words are split on whitespace and kept as written, nothing lower-cased):

- ``--set data.train_path=train.txt --set data.valid_path=valid.txt --set data.test_path=test.txt``: the
  three files of a corpus (WikiText's ``wiki.train.tokens`` ..., PTB's ``ptb.train.txt`` ...), read like
  PTB (:func:`deepzoo.data.text.read_lm_file`: every line ends in ``<eos>``, a blank line is a lone
  ``<eos>``, markers such as ``<unk>`` and WikiText's ``= Heading =`` lines are ordinary tokens). The
  vocabulary is the training file's words; a validation or test word it lacks becomes ``<unk>``, and
  training prints how many there were.
- ``--set data.path=corpus.txt``: one file (one sentence or paragraph per line, blank lines left out), cut
  by lines: the first 90% train, the next 5% validate, the last 5% test. The cut is contiguous, not the
  hashed row split of the text classifiers: consecutive lines of a text share their context, so lines
  scattered among all three parts would let the model see the test text's neighbours in training.
"""

from __future__ import annotations

from pathlib import Path

import torch

from deepzoo.data.registry import samples_dir
from deepzoo.data.text import EOS, Vocab, bptt_windows, encode_stream, lm_batches, load_ptb, read_lm_file, read_utf8
from deepzoo.errors import DeepzooError
from deepzoo.models.rnn import RNNLanguageModel
from deepzoo.nn import loss_functions
from deepzoo.recipes import Recipe, Reference, register
from deepzoo.train.engine import Task
from deepzoo.train.metrics import Perplexity


class LMBatches:
    """Windows over a token stream laid out as [batch, N]; input ``(x, first)``, target ``y`` (x shifted).
    With ``target_in_input`` the input is ``(x, first, y)``: the adaptive softmax computes -log p(y) inside
    the model's forward (so that under DDP every weight it uses is seen there).

    The order is fixed (a language model reads its text in order; the carried state depends on it).
    """

    def __init__(self, stream: torch.Tensor, batch_size: int, bptt: int, target_in_input: bool = False) -> None:
        self.data, self.bptt, self.target_in_input = lm_batches(stream, batch_size), bptt, target_in_input

    def __len__(self) -> int:
        return -(-(self.data.shape[1] - 1) // self.bptt)

    def epoch(self, generator=None):
        for i, (x, y) in enumerate(bptt_windows(self.data, self.bptt)):
            yield ((x, torch.tensor(i == 0), y) if self.target_in_input else (x, torch.tensor(i == 0))), y


def _lines(path: Path) -> list[list[str]]:
    return [line.split() + [EOS] for line in read_utf8(path).splitlines() if line.strip()]


PARTS = ("train", "valid", "test")


def read_corpus(cfg: dict, data_dir) -> dict[str, list[list[str]]]:
    d = cfg["data"]
    if d["train_path"]:
        corpus = {}
        for part in PARTS:
            corpus[part] = read_lm_file(Path(d[f"{part}_path"]))
            if not any(len(line) > 1 for line in corpus[part]):
                raise DeepzooError(f"{d[f'{part}_path']} (data.{part}_path): no words; give the {part} text")
        return corpus
    if d["path"]:
        lines = _lines(Path(d["path"]))
        if len(lines) < 20:
            raise DeepzooError(f"{d['path']}: only {len(lines)} non-empty lines; need at least 20")
        a, b = int(0.9 * len(lines)), int(0.95 * len(lines))
        return {"train": lines[:a], "valid": lines[a:b], "test": lines[b:]}
    if d["sample"]:
        folder = samples_dir() / "text" / "ptb"
        return {k: _lines(folder / f"sample-ptb.{k}.txt") for k in ("train", "valid", "test")}
    return load_ptb(data_dir)


def unseen_words(lines: list[list[str]], vocab: Vocab) -> tuple[int, int]:
    """``(unseen, total)``: how many of the tokens of ``lines`` the vocabulary lacks (they become <unk>)."""
    total = unseen = 0
    for tokens in lines:
        total += len(tokens)
        unseen += sum(t not in vocab for t in tokens)
    return unseen, total


def _file(d: dict, part: str) -> str:
    return d[f"{part}_path"] if d["train_path"] else d["path"]


def build(cfg: dict, data_dir) -> Task:
    d, m = cfg["data"], cfg["model"]
    corpus = read_corpus(cfg, data_dir)
    vocab = Vocab.build(corpus["train"], min_freq=d["min_freq"], specials=(EOS,))
    if d["train_path"] or d["path"]:  # the user's text: say what the vocabulary leaves out
        for part in ("valid", "test"):
            unseen, total = unseen_words(corpus[part], vocab)
            print(f"{part}: {unseen:,} of {total:,} words not in the training vocabulary -> <unk>")
    streams = {k: encode_stream(v, vocab) for k, v in corpus.items()}
    model = language_model(cfg, len(vocab))
    ce = loss_functions(m["impl"]).cross_entropy
    bs, bptt = d["batch_size"], d["bptt"]
    for part, stream in streams.items():
        if len(stream) < 2 * bs:
            raise DeepzooError(f"{_file(d, part) or part}: the {part} text has {len(stream):,} words (with <eos>), "
                               f"too few for data.batch_size = {bs} rows of at least 2; lower data.batch_size "
                               f"or give more text")
    adaptive = m["softmax"] == "adaptive"

    def loss(out, y):  # out: logits or log-probabilities [B, T, V], or (adaptive, training) -log p(y) [B, T]
        return out.mean() if out.dim() == 2 else ce(out.reshape(-1, out.shape[-1]), y.reshape(-1))

    return Task(model=model, train=LMBatches(streams["train"], bs, bptt, target_in_input=adaptive),
                val=LMBatches(streams["valid"], bs, bptt), test=LMBatches(streams["test"], bs, bptt),
                loss=loss,
                metrics=[Perplexity], monitor="val_ppl", headline="test_ppl", context={"vocab": vocab})


def language_model(cfg: dict, vocab_size: int) -> RNNLanguageModel:
    m = cfg["model"]
    return RNNLanguageModel(vocab_size, embed_dim=m["embed_dim"], hidden=m["hidden"], layers=m["layers"],
                            dropout=m["dropout"], tie=m["tie"], cell=m["cell"], impl=m["impl"],
                            softmax=m["softmax"], cutoffs=m["cutoffs"])


def artefacts(task: Task, cfg: dict) -> dict:
    """The vocabulary (the words of the training text): all a prompt needs besides the weights."""
    return {"vocab.json": task.context["vocab"].to_json()}


def restore(cfg: dict, stored) -> Task:
    vocab = Vocab.from_json(stored.json("vocab.json"), stored.folder / "vocab.json",
                            "copy the run folder again, or retrain")
    return Task.for_inference(language_model(cfg, len(vocab)), {"vocab": vocab})


def continue_prompts(task: Task, cfg: dict, prompts: list, words: int = 20) -> list[dict]:
    """Continue each prompt (one after the other: :func:`continue_prompt`)."""
    for prompt in prompts:
        if not isinstance(prompt, str):
            raise DeepzooError(f"give prompts as text; got {type(prompt).__name__} {prompt!r:.60}")
    return [continue_prompt(task, cfg, prompt, words) for prompt in prompts]


@torch.no_grad()
def continue_prompt(task: Task, cfg: dict, prompt: str, words: int = 20) -> dict:
    """Continue ``prompt`` word by word: greedily (the most likely word each time) and by sampling
    with temperature 1.0 (p ** (1 / T), renormalised; a fixed seed makes it repeatable)."""
    vocab, model = task.context["vocab"], task.model.eval()
    # each word as written if the vocabulary has it, else lower-cased (PTB is all lower case; a cased
    # corpus such as WikiText keeps "The" and "the" apart)
    given = [w if w in vocab else w.lower() for w in prompt.split()]
    ids = vocab.encode(given) or [vocab[EOS]]
    result = {"input": prompt, "unknown_words": [w for w in given if w not in vocab]}
    gen = torch.Generator().manual_seed(0)
    for label, temperature in (("greedy", 0.0), ("sampled (T=1.0)", 1.0)):
        out, x, first = [], torch.tensor([ids]), True
        for _ in range(words):
            logits = model(x, first)[0, -1]
            first = False
            if temperature == 0.0:
                nxt = int(logits.argmax())
            else:
                nxt = int(torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=gen))
            out.append(vocab.itos[nxt])
            x = torch.tensor([[nxt]])
        result[label] = " ".join(out)
    return result


register(Recipe(
    name="lstm-ptb", family="RNN family", dataset="ptb",
    description="word-level 2x200 LSTM language model, truncated BPTT (Zaremba et al. 2014, small)",
    reference=Reference("test_ppl", 114.5, "Zaremba, Sutskever & Vinyals 2014, small LSTM (test perplexity)",
                        "https://arxiv.org/abs/1409.2329", higher_is_better=False),
    defaults={"data": {"sample": False, "path": "", "train_path": "", "valid_path": "", "test_path": "",
                       "min_freq": 1, "batch_size": 20, "bptt": 20},
              "model": {"cell": "lstm", "embed_dim": 200, "hidden": 200, "layers": 2, "dropout": 0.0,
                        "tie": True, "softmax": "full", "cutoffs": [2000], "impl": "torch"},
              # lr 20 and clip 0.25 on the mean loss per word = Zaremba's lr 1 and clip 5 on the loss
              # summed over the 20 steps of a window (and averaged over the batch): same updates
              "optim": {"name": "sgd", "lr": 20.0, "momentum": 0.0, "schedule": "exponential", "gamma": 0.5,
                        "decay_start": 4},
              "train": {"epochs": 7, "clip_grad_norm": 0.25}},
    presets={"quick": {"data": {"sample": True}, "model": {"embed_dim": 64, "hidden": 64}, "train": {"epochs": 2}}},
    build=build, artefacts=artefacts, restore=restore,
    predict=continue_prompts, predict_help="a prompt to continue, in quotes",
))
